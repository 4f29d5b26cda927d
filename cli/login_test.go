package cli

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse"
)

// loginAPI accepts admin/s3cret and hands out the test token.
func loginAPI(t *testing.T, extra map[string]http.HandlerFunc) *fakeAPI {
	t.Helper()
	routes := map[string]http.HandlerFunc{
		"POST /api/v1/session": func(w http.ResponseWriter, r *http.Request) {
			var in gatehouse.LoginRequest
			if err := decodeJSON(r, &in); err != nil || in.Username != "admin" || in.Password != "s3cret" {
				apiError(w, http.StatusUnauthorized, gatehouse.EUNAUTHORIZED, "invalid username or password")
				return
			}
			writeJSON(w, map[string]string{"token": testToken})
		},
		"GET /api/v1/session/userinfo": userinfo("admin"),
		"DELETE /api/v1/session":       reply(struct{}{}),
	}
	for k, v := range extra {
		routes[k] = v
	}
	return newFakeAPI(t, routes)
}

func readConfig(t *testing.T, path string) config {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	c, err := parseConfig(b)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestLoginStoresTokenInPrivateConfig(t *testing.T) {
	api := loginAPI(t, nil)
	r, path := newRun(t)

	res := r.run(t, "login", api.URL, "--username", "admin", "--password", "s3cret")
	mustSucceed(t, res)
	if want := "'admin' logged in successfully\nContext '" + api.URL + "' updated\n"; res.stdout != want {
		t.Errorf("stdout = %q, want %q", res.stdout, want)
	}
	if strings.Contains(res.stdout+res.stderr, testToken) || strings.Contains(res.stdout+res.stderr, "s3cret") {
		t.Errorf("output shows a secret: %q %q", res.stdout, res.stderr)
	}

	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got != 0o600 {
		t.Errorf("config mode = %04o, want 0600", got)
	}
	di, err := os.Stat(filepath.Dir(path))
	if err != nil {
		t.Fatal(err)
	}
	if got := di.Mode().Perm(); got != 0o700 {
		t.Errorf("config dir mode = %04o, want 0700", got)
	}
	cfg := readConfig(t, path)
	if cfg.CurrentContext != api.URL {
		t.Errorf("current-context = %q, want %q", cfg.CurrentContext, api.URL)
	}
	want := configContext{Name: api.URL, Server: api.URL, User: "admin", Token: testToken}
	if len(cfg.Contexts) != 1 || cfg.Contexts[0] != want {
		t.Errorf("contexts = %+v, want [%+v]", cfg.Contexts, want)
	}

	// The stored context is used by the next command.
	r2, _ := newRun(t)
	r2.env = r.env
	res = r2.run(t, "account", "get-user-info", "-o", "json")
	mustSucceed(t, res)
	if got := api.last(t, "GET", "/api/v1/session/userinfo").auth; got != "Bearer "+testToken {
		t.Errorf("Authorization = %q, want the stored token", got)
	}
}

func TestLoginNameAndPlaintextAreStored(t *testing.T) {
	api := loginAPI(t, nil)
	r, path := newRun(t)
	hostport := strings.TrimPrefix(api.URL, "http://")
	mustSucceed(t, r.run(t, "login", hostport, "--plaintext", "--name", "local", "--username", "admin", "--password", "s3cret"))
	cfg := readConfig(t, path)
	want := configContext{Name: "local", Server: hostport, User: "admin", Token: testToken, transport: transport{Plaintext: true}}
	if len(cfg.Contexts) != 1 || cfg.Contexts[0] != want || cfg.CurrentContext != "local" {
		t.Fatalf("config = %+v, want current local and [%+v]", cfg, want)
	}
	// Without --plaintext now: the context remembers it.
	mustSucceed(t, r.run(t, "account", "get-user-info"))
}

func TestLoginPrompts(t *testing.T) {
	tests := []struct {
		name       string
		stdin      string
		terminal   *fakeTerminal
		wantStderr string
	}{
		{name: "from a pipe", stdin: "admin\ns3cret\n", wantStderr: ""},
		{name: "from a pipe without final newline", stdin: "admin\ns3cret", wantStderr: ""},
		{name: "from a terminal", stdin: "admin\n", terminal: &fakeTerminal{passwords: []string{"s3cret"}}, wantStderr: "Username: Password: \n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			api := loginAPI(t, nil)
			r, path := newRun(t)
			r.stdin, r.terminal = tt.stdin, tt.terminal
			res := r.run(t, "login", api.URL)
			mustSucceed(t, res)
			if res.stderr != tt.wantStderr {
				t.Errorf("stderr = %q, want %q", res.stderr, tt.wantStderr)
			}
			if got := readConfig(t, path).Contexts[0].Token; got != testToken {
				t.Errorf("stored token = %q, want the test token", got)
			}
			body := decodeBody[gatehouse.LoginRequest](t, api.last(t, "POST", "/api/v1/session"))
			if body.Username != "admin" || body.Password != "s3cret" {
				t.Errorf("login body = %+v", body)
			}
		})
	}
}

func TestLoginFailures(t *testing.T) {
	tests := []struct {
		name  string
		args  []string
		stdin string
		want  string
	}{
		{name: "wrong password", args: []string{"--username", "admin", "--password", "nope"}, want: "error: invalid username or password\n"},
		{name: "no password on stdin", args: []string{"--username", "admin"}, want: "error: no password on standard input\n"},
		{name: "empty password line", args: []string{"--username", "admin"}, stdin: "\n", want: "error: password is empty\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			api := loginAPI(t, nil)
			r, path := newRun(t)
			r.stdin = tt.stdin
			res := r.run(t, append([]string{"login", api.URL}, tt.args...)...)
			mustFail(t, res, "")
			if res.stderr != tt.want {
				t.Errorf("stderr = %q, want %q", res.stderr, tt.want)
			}
			if _, err := os.Stat(path); !os.IsNotExist(err) {
				t.Errorf("a failed login wrote the config (%v)", err)
			}
		})
	}
}

func TestLoginThrottledShowsRetryAfter(t *testing.T) {
	api := newFakeAPI(t, map[string]http.HandlerFunc{
		"POST /api/v1/session": func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Retry-After", "90")
			apiError(w, http.StatusTooManyRequests, gatehouse.ETHROTTLED, "too many failed logins")
		},
	})
	r, _ := newRun(t)
	res := r.run(t, "login", api.URL, "--username", "admin", "--password", "x")
	mustFail(t, res, "")
	if want := "error: too many failed logins; retry in 1m30s\n"; res.stderr != want {
		t.Errorf("stderr = %q, want %q", res.stderr, want)
	}
}

func TestConfigWithLooseModeIsRefused(t *testing.T) {
	api := loginAPI(t, nil)
	r, path := newRun(t)
	mustSucceed(t, r.run(t, "login", api.URL, "--username", "admin", "--password", "s3cret"))
	for _, mode := range []os.FileMode{0o644, 0o640, 0o604, 0o660} {
		if err := os.Chmod(path, mode); err != nil {
			t.Fatal(err)
		}
		res := r.run(t, "account", "get-user-info")
		mustFail(t, res, "")
		want := "error: config file " + path + " has mode " + octal(mode) + "; run chmod 600 " + path + "\n"
		if res.stderr != want {
			t.Errorf("mode %04o: stderr = %q, want %q", mode, res.stderr, want)
		}
		// login refuses too, before asking for a password.
		res = r.run(t, "login", api.URL, "--username", "admin", "--password", "s3cret")
		mustFail(t, res, "chmod 600")
	}
	if n := api.count("GET", "/api/v1/session/userinfo"); n != 0 {
		t.Errorf("%d requests were sent with a refused config, want 0", n)
	}
}

func octal(m os.FileMode) string {
	const digits = "01234567"
	p := m.Perm()
	return "0" + string(digits[p>>6&7]) + string(digits[p>>3&7]) + string(digits[p&7])
}

func TestAuthTokenWithoutConfig(t *testing.T) {
	api := loginAPI(t, nil)
	tests := []struct {
		name string
		env  map[string]string
		args []string
	}{
		{name: "environment", env: map[string]string{"GATEHOUSE_SERVER": api.URL, "GATEHOUSE_AUTH_TOKEN": testToken}},
		{name: "flags", args: []string{"--server", api.URL, "--auth-token", testToken}},
		{name: "server flag, token env", env: map[string]string{"GATEHOUSE_AUTH_TOKEN": testToken}, args: []string{"--server", api.URL}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// No HOME, no config dir: there is no config to read at all.
			r := cliRun{env: tt.env}
			res := r.run(t, append([]string{"account", "get-user-info"}, tt.args...)...)
			mustSucceed(t, res)
			if !strings.Contains(res.stdout, "admin") {
				t.Errorf("stdout %q does not name the user", res.stdout)
			}
		})
	}

	t.Run("a refused config is not even read", func(t *testing.T) {
		r, path := newRun(t)
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte("current-context: x\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		r.env["GATEHOUSE_SERVER"], r.env["GATEHOUSE_AUTH_TOKEN"] = api.URL, testToken
		mustSucceed(t, r.run(t, "account", "get-user-info"))
	})
}

func TestAuthTokenOverridesContext(t *testing.T) {
	api := loginAPI(t, nil)
	r, path := newRun(t)
	writeConfig(t, path, config{CurrentContext: "c", Contexts: []configContext{{Name: "c", Server: api.URL, Token: "stale"}}})
	res := r.run(t, "account", "get-user-info", "--auth-token", testToken)
	mustSucceed(t, res)
	if got := api.last(t, "GET", "/api/v1/session/userinfo").auth; got != "Bearer "+testToken {
		t.Errorf("Authorization = %q, want the --auth-token", got)
	}
}

func TestServerFlagDoesNotBorrowAnotherServersToken(t *testing.T) {
	api := loginAPI(t, nil)
	r, path := newRun(t)
	writeConfig(t, path, config{CurrentContext: "other", Contexts: []configContext{{Name: "other", Server: "https://other.example.com", Token: testToken}}})
	res := r.run(t, "account", "get-user-info", "--server", api.URL)
	mustSucceed(t, res)
	if got := api.last(t, "GET", "/api/v1/session/userinfo").auth; got != "" {
		t.Errorf("Authorization = %q, want none: the token belongs to another server", got)
	}
	if !strings.Contains(res.stdout, "false") {
		t.Errorf("stdout %q, want logged in false", res.stdout)
	}

	res = r.run(t, "account", "get-user-info", "--server", api.URL, "--context", "other")
	mustFail(t, res, "differs from the server")
}

func writeConfig(t *testing.T, path string, c config) {
	t.Helper()
	if err := saveConfig(path, c); err != nil {
		t.Fatal(err)
	}
}

func TestUnauthorizedHints(t *testing.T) {
	api := loginAPI(t, map[string]http.HandlerFunc{
		"GET /api/v1/account": reply(gatehouse.List[gatehouse.Account]{}),
	})
	other := configContext{Name: "other", Server: "https://other.example.com", User: "bob", Token: "t"}
	tests := []struct {
		name    string
		ctx     configContext
		current string // default: ctx.Name
		env     map[string]string
		args    []string
		want    string
	}{
		{
			name: "context with a user",
			ctx:  configContext{Name: "c", Server: api.URL, User: "admin", Token: "expired"},
			want: "error: invalid token; run: gatehouse relogin\n",
		},
		{
			name: "context without a user",
			ctx:  configContext{Name: "c", Server: api.URL, Token: "expired"},
			want: "error: invalid token; run: gatehouse login " + api.URL + "\n",
		},
		{
			name: "logged-out context with a user",
			ctx:  configContext{Name: "c", Server: api.URL, User: "admin"},
			want: "error: invalid token; run: gatehouse relogin\n",
		},
		{
			name: "logged-out context without a user",
			ctx:  configContext{Name: "c", Server: api.URL},
			want: "error: invalid token; run: gatehouse login " + api.URL + "\n",
		},
		{
			name:    "context that is not the current one",
			ctx:     configContext{Name: "c", Server: api.URL, User: "admin", Token: "expired"},
			current: other.Name,
			args:    []string{"--server", api.URL},
			want:    "error: invalid token; run: gatehouse relogin --context c\n",
		},
		{
			name: "token from the environment",
			env:  map[string]string{"GATEHOUSE_SERVER": api.URL, "GATEHOUSE_AUTH_TOKEN": "wrong"},
			want: "error: invalid token; the token from GATEHOUSE_AUTH_TOKEN was refused\n",
		},
		{
			name: "server from the environment without a token",
			env:  map[string]string{"GATEHOUSE_SERVER": api.URL},
			want: "error: invalid token; run: gatehouse login " + api.URL + "\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, path := newRun(t)
			if tt.ctx.Name != "" {
				current := tt.current
				if current == "" {
					current = tt.ctx.Name
				}
				writeConfig(t, path, config{CurrentContext: current, Contexts: []configContext{tt.ctx, other}})
			}
			for k, v := range tt.env {
				r.env[k] = v
			}
			res := r.run(t, append([]string{"account", "list"}, tt.args...)...)
			mustFail(t, res, "")
			if res.stderr != tt.want {
				t.Errorf("stderr = %q, want %q", res.stderr, tt.want)
			}
		})
	}
}

func TestPlaintextHint(t *testing.T) {
	api := loginAPI(t, nil)
	hostport := strings.TrimPrefix(api.URL, "http://")
	r := cliRun{env: map[string]string{"GATEHOUSE_AUTH_TOKEN": testToken}}
	res := r.run(t, "account", "get-user-info", "--server", hostport)
	mustFail(t, res, "use --plaintext or http://"+hostport)
	mustSucceed(t, r.run(t, "account", "get-user-info", "--server", hostport, "--plaintext"))
}

func TestLogout(t *testing.T) {
	tests := []struct {
		name       string
		logout     http.HandlerFunc
		wantCode   int
		wantStdout string
		wantStderr string
	}{
		{
			name:       "revoked on the server",
			logout:     reply(struct{}{}),
			wantStdout: "Logged out from 'c'\n",
		},
		{
			name:       "already invalid",
			logout:     replyError(http.StatusUnauthorized, gatehouse.EUNAUTHORIZED, "token expired"),
			wantStdout: "Logged out from 'c'\n",
		},
		{
			name:       "server failed",
			logout:     replyError(http.StatusServiceUnavailable, gatehouse.EUNAVAILABLE, "store unreachable"),
			wantCode:   1,
			wantStdout: "Removed the token of context 'c' from CONFIG\n",
			wantStderr: "error: the server did not revoke the session, which stays valid until it expires: store unreachable\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			api := loginAPI(t, map[string]http.HandlerFunc{"DELETE /api/v1/session": tt.logout})
			r, path := newRun(t)
			writeConfig(t, path, config{CurrentContext: "c", Contexts: []configContext{{Name: "c", Server: api.URL, User: "admin", Token: testToken}}})
			res := r.run(t, "logout")
			if res.code != tt.wantCode {
				t.Errorf("exit %d, want %d (stderr %q)", res.code, tt.wantCode, res.stderr)
			}
			if want := strings.ReplaceAll(tt.wantStdout, "CONFIG", path); res.stdout != want {
				t.Errorf("stdout = %q, want %q", res.stdout, want)
			}
			if res.stderr != tt.wantStderr {
				t.Errorf("stderr = %q, want %q", res.stderr, tt.wantStderr)
			}
			if got := api.last(t, "DELETE", "/api/v1/session").auth; got != "Bearer "+testToken {
				t.Errorf("logout Authorization = %q, want the session token", got)
			}
			cfg := readConfig(t, path)
			if got := cfg.Contexts[0]; got.Token != "" || got.User != "admin" || got.Server != api.URL {
				t.Errorf("context after logout = %+v, want it kept without its token", got)
			}
		})
	}
}

func TestRelogin(t *testing.T) {
	api := loginAPI(t, nil)
	r, path := newRun(t)
	writeConfig(t, path, config{CurrentContext: "c", Contexts: []configContext{{Name: "c", Server: api.URL, User: "admin"}}})
	r.terminal = &fakeTerminal{passwords: []string{"s3cret"}}
	res := r.run(t, "relogin")
	mustSucceed(t, res)
	if res.stderr != "Password for admin: \n" {
		t.Errorf("stderr = %q, want the password prompt", res.stderr)
	}
	if got := readConfig(t, path).Contexts[0].Token; got != testToken {
		t.Errorf("token after relogin = %q, want the new one", got)
	}

	writeConfig(t, path, config{CurrentContext: "c", Contexts: []configContext{{Name: "c", Server: api.URL}}})
	mustFail(t, r.run(t, "relogin", "--password", "s3cret"), "has no user name; run: gatehouse login "+api.URL)
}

func TestContextCommand(t *testing.T) {
	r, path := newRun(t)
	writeConfig(t, path, config{CurrentContext: "prod", Contexts: []configContext{
		{Name: "prod", Server: "gatehouse.example.com:443", User: "alice", Token: testToken},
		{Name: "local", Server: "http://127.0.0.1:8080", User: "admin", Token: testToken},
		{Name: "ci", Server: "ci.example.com"},
	}})

	res := r.run(t, "context")
	mustSucceed(t, res)
	golden(t, "context_list", res.stdout)

	res = r.run(t, "context", "-o", "json")
	mustSucceed(t, res)
	if strings.Contains(res.stdout, testToken) {
		t.Errorf("context -o json shows a token: %s", res.stdout)
	}

	mustSucceed(t, r.run(t, "context", "local"))
	if got := readConfig(t, path).CurrentContext; got != "local" {
		t.Errorf("current-context = %q, want local", got)
	}
	mustFail(t, r.run(t, "context", "nope"), `context "nope" is not in`)

	// A context without a token: nothing to revoke (TestContextDelete*
	// revoke real sessions).
	mustSucceed(t, r.run(t, "context", "ci"))
	mustSucceed(t, r.run(t, "context", "ci", "--delete"))
	cfg := readConfig(t, path)
	if cfg.CurrentContext != "" || len(cfg.Contexts) != 2 {
		t.Errorf("after deleting the current context: %+v", cfg)
	}
	mustFail(t, r.run(t, "context", "--delete"), "--delete needs a context NAME")
}

func decodeJSON(r *http.Request, v any) error {
	dec := jsonDecoder(r)
	return dec.Decode(v)
}

func TestInsecureTLS(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+testToken {
			apiError(w, http.StatusUnauthorized, gatehouse.EUNAUTHORIZED, "invalid token")
			return
		}
		writeJSON(w, gatehouse.UserInfo{LoggedIn: true, Username: "admin"})
	}))
	t.Cleanup(srv.Close)
	hostport := strings.TrimPrefix(srv.URL, "https://")
	r := cliRun{env: map[string]string{"GATEHOUSE_SERVER": hostport, "GATEHOUSE_AUTH_TOKEN": testToken}}

	mustFail(t, r.run(t, "account", "get-user-info"), "certificate")
	res := r.run(t, "account", "get-user-info", "--insecure")
	mustSucceed(t, res)
	if !strings.Contains(res.stdout, "admin") {
		t.Errorf("stdout %q does not name the user", res.stdout)
	}
}

func TestMainUsesTheGivenStreams(t *testing.T) {
	var stdout, stderr strings.Builder
	// --client: the developer's own config may name a server.
	if code := Main([]string{"version", "--client", "--short"}, strings.NewReader(""), &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d, stderr %q", code, stderr.String())
	}
	if stdout.String() != "gatehouse: "+Version+"\n" || stderr.String() != "" {
		t.Errorf("stdout %q, stderr %q", stdout.String(), stderr.String())
	}
	if code := Main([]string{"token", "inspect", "x"}, strings.NewReader(""), &stdout, &stderr); code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	if !strings.HasPrefix(stderr.String(), "error: invalid token: ") {
		t.Errorf("stderr %q, want the error line", stderr.String())
	}
}
