package cli

import (
	"bufio"
	"bytes"
	"context"
	"html"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/internal/testop"
	"github.com/gatehouse/gatehouse/server"
	"github.com/gatehouse/gatehouse/service"
	"github.com/gatehouse/gatehouse/store/sqlite"
)

// ssoServer is a real Gatehouse server with SSO through a real OpenID
// provider (internal/testop), for the CLI's `login --sso`.
func ssoServer(t *testing.T) (string, *testop.Provider) {
	t.Helper()
	ctx := context.Background()
	op := testop.New(t, testop.Options{ClientID: "gatehouse", ClientSecret: "client-secret-of-the-test-provider"})
	op.AddUser(testop.User{ID: "u-alice", Email: "alice@example.com", EmailVerified: true, Groups: []string{"devs"}})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + ln.Addr().String()
	op.SetRedirectURIs([]string{base + "/auth/callback"}, nil)
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "gatehouse.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	svc, err := service.New(ctx, service.Options{
		Store: st, BcryptCost: 10, Logger: slog.New(slog.DiscardHandler),
		RBAC: gatehouse.RBAC{PolicyCSV: "p, role:dev, applications, get, web/*, allow\ng, devs, role:dev"},
		SSO: &service.SSOOptions{
			Name: "Acme SSO", Issuer: op.Issuer, ClientID: "gatehouse", ClientSecret: "client-secret-of-the-test-provider",
			RedirectURL: base + "/auth/callback", HTTPClient: op.Client(), DeviceLogin: true,
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(server.New(server.Options{Service: svc}))
	srv.Listener.Close()
	srv.Listener = ln
	srv.Start()
	t.Cleanup(srv.Close)
	return base, op
}

// browse is the browser step of a CLI login, done by an HTTP client that
// follows every redirect: to the provider (whose login step the test
// provider answers at once) and back to Gatehouse's callback, which asks
// the user to confirm the CLI login as the provider's user. browse checks
// the question names alice, presses Continue (a same-origin form POST)
// and follows the link that hands the sealed session to the CLI's
// loopback listener.
func browse(t *testing.T, u string) (status int, page string) {
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, Timeout: 10 * time.Second}
	read := func(resp *http.Response, err error) bool {
		if err != nil {
			t.Errorf("browser: %v", err)
			return false
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		status, page = resp.StatusCode, string(b)
		return true
	}
	if !read(c.Get(u)) {
		return status, page
	}
	if !strings.Contains(page, `action="/auth/cli"`) {
		if strings.Contains(u, "/auth/login?") {
			t.Errorf("a CLI login did not ask the browser's user to confirm it: %d\n%s", status, page)
		}
		return status, page
	}
	if !strings.Contains(page, "Log in the Gatehouse CLI on this computer as alice@example.com?") {
		t.Errorf("the confirmation page does not name the user:\n%s", page)
	}
	base, _ := url.Parse(u)
	if !read(c.PostForm(base.Scheme+"://"+base.Host+"/auth/cli", url.Values{"op": {"continue"}})) {
		return status, page
	}
	m := regexp.MustCompile(`id="cli-open" href="([^"]+)"`).FindStringSubmatch(page)
	if m == nil {
		return status, page
	}
	read(c.Get(html.UnescapeString(m[1])))
	return status, page
}

// ssoRun runs the CLI with a browser that browse drives.
func ssoRun(t *testing.T, r cliRun, stderr io.Writer, open func(string) error, args ...string) result {
	t.Helper()
	var stdout, errBuf bytes.Buffer
	env := Env{
		Stdin: strings.NewReader(""), Stdout: &stdout, Stderr: io.MultiWriter(&errBuf, stderr),
		Getenv: func(k string) string { return r.env[k] }, OpenBrowser: open,
	}
	code := Run(context.Background(), env, args)
	return result{code: code, stdout: stdout.String(), stderr: errBuf.String()}
}

// `gatehouse login HOST --sso` opens the browser at the server's SSO
// login, gets the session back through the loopback port, and stores it
// in the context like a password login: the SSO user can then mint API
// tokens from the CLI (Argo CD's `account generate-token` after
// `login --sso` fails with "account does not exist").
func TestLoginSSO(t *testing.T) {
	base, op := ssoServer(t)
	op.AutoLogin("u-alice")
	r, path := newRun(t)
	var pages []string
	var mu sync.Mutex
	open := func(u string) error {
		if !strings.HasPrefix(u, base+"/auth/login?") || !strings.Contains(u, "cli_key=") {
			t.Errorf("browser opened %s", u)
		}
		go func() {
			status, page := browse(t, u)
			mu.Lock()
			pages = append(pages, page)
			mu.Unlock()
			if status != http.StatusOK {
				t.Errorf("browser ended at %d: %s", status, page)
			}
		}()
		return nil
	}
	res := ssoRun(t, r, io.Discard, open, "login", base, "--sso")
	mustSucceed(t, res)
	if want := "'alice@example.com' logged in successfully\nContext '" + base + "' updated\n"; res.stdout != want {
		t.Errorf("stdout = %q, want %q", res.stdout, want)
	}
	cfg := readConfig(t, path)
	ctx, ok := cfg.find(base)
	if !ok || ctx.User != "alice@example.com" || ctx.Token == "" || cfg.CurrentContext != base {
		t.Fatalf("config %+v", cfg)
	}
	if strings.Contains(res.stdout+res.stderr, ctx.Token) {
		t.Error("the CLI printed the session token")
	}
	mu.Lock()
	if len(pages) == 1 && !strings.Contains(pages[0], "You are logged in to the Gatehouse CLI") {
		t.Errorf("the browser's last page: %s", pages[0])
	}
	mu.Unlock()

	res = r.run(t, "account", "get-user-info")
	mustSucceed(t, res)
	if !strings.Contains(res.stdout, "alice@example.com") || !strings.Contains(res.stdout, "devs") {
		t.Errorf("get-user-info:\n%s", res.stdout)
	}
	res = r.run(t, "account", "generate-token", "--name", "laptop")
	mustSucceed(t, res)
	tok := strings.TrimSpace(res.stdout)
	res = r.run(t, "account", "can-i", "get", "applications", "web/shop", "--auth-token", tok)
	mustSucceed(t, res)
	if strings.TrimSpace(res.stdout) != "yes" {
		t.Errorf("the SSO user's new token: can-i = %q", res.stdout)
	}
}

// With --sso-launch-browser=false the address is printed for the user to
// open; a sealed answer for another key does not log in.
func TestLoginSSOPrintsAddress(t *testing.T) {
	base, op := ssoServer(t)
	op.AutoLogin("u-alice")
	r, path := newRun(t)
	pr, pw := io.Pipe()
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			if line := sc.Text(); strings.HasPrefix(line, base+"/auth/login?") {
				// Something other than the browser knocks on the loopback
				// port first.
				u, err := url.Parse(line)
				if err != nil {
					t.Error(err)
					return
				}
				port := u.Query().Get("cli_port")
				if status, _ := browse(t, "http://127.0.0.1:"+port+"/callback?result=forged"); status != http.StatusBadRequest {
					t.Errorf("forged loopback answer: %d, want 400", status)
				}
				go browse(t, line)
			}
		}
	}()
	res := ssoRun(t, r, pw, func(string) error {
		t.Error("opened a browser with --sso-launch-browser=false")
		return nil
	}, "login", base, "--sso", "--sso-launch-browser=false")
	pw.Close()
	mustSucceed(t, res)
	if !strings.Contains(res.stderr, "open this address in a browser") {
		t.Errorf("stderr %q", res.stderr)
	}
	cfg := readConfig(t, path)
	if ctx, ok := cfg.find(base); !ok || ctx.User != "alice@example.com" {
		t.Errorf("no context for alice")
	}
}

// `gatehouse login HOST --sso-device` shows the provider's address and a
// code; the user approves the code there (here: the provider's form,
// posted as the user's browser on another device would), and the CLI
// stores the session it polled for. No browser is opened on this
// machine.
func TestLoginSSODevice(t *testing.T) {
	base, _ := ssoServer(t)
	r, path := newRun(t)
	pr, pw := io.Pipe()
	approved := make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		re := regexp.MustCompile(`^To log in, open (\S+) on any device and enter the code (\S+)$`)
		for sc.Scan() {
			m := re.FindStringSubmatch(sc.Text())
			if m == nil {
				continue
			}
			resp, err := http.PostForm(m[1], url.Values{"user_code": {m[2]}, "username": {"u-alice"}, "action": {"approve"}})
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					err = io.ErrUnexpectedEOF
				}
			}
			approved <- err
		}
		_, _ = io.Copy(io.Discard, pr)
	}()
	res := ssoRun(t, r, pw, func(string) error {
		t.Error("opened a browser for a device login")
		return nil
	}, "login", base, "--sso-device")
	pw.Close()
	mustSucceed(t, res)
	select {
	case err := <-approved:
		if err != nil {
			t.Fatalf("approving at the provider: %v", err)
		}
	default:
		t.Fatalf("the CLI showed no address and code:\n%s", res.stderr)
	}
	if want := "'alice@example.com' logged in successfully\nContext '" + base + "' updated\n"; res.stdout != want {
		t.Errorf("stdout = %q, want %q", res.stdout, want)
	}
	cfg := readConfig(t, path)
	ctx, ok := cfg.find(base)
	if !ok || ctx.User != "alice@example.com" || ctx.Token == "" {
		t.Fatalf("config %+v", cfg)
	}
	if strings.Contains(res.stdout+res.stderr, ctx.Token) {
		t.Error("the CLI printed the session token")
	}
	res = r.run(t, "account", "can-i", "get", "applications", "web/shop")
	mustSucceed(t, res)
	if strings.TrimSpace(res.stdout) != "yes" {
		t.Errorf("can-i after the device login = %q, want yes", res.stdout)
	}

	// --sso-device excludes the browser flags and a password.
	res = ssoRun(t, r, io.Discard, nil, "login", base, "--sso-device", "--sso")
	if res.code == 0 || !strings.Contains(res.stderr, "sso") {
		t.Errorf("--sso-device --sso: exit %d, %s", res.code, res.stderr)
	}
	res = ssoRun(t, r, io.Discard, nil, "login", base, "--sso-device", "--username", "x")
	if res.code == 0 {
		t.Errorf("--sso-device --username: exit 0")
	}
}

// What a server says reaches the terminal without what a terminal would
// act on: escape sequences, other control characters and bidirectional
// overrides are shown as U+FFFD, in table cells and in error messages.
func TestTermSafe(t *testing.T) {
	for in, want := range map[string]string{
		"alice@example.com":                   "alice@example.com",
		"\x1b]52;c;cm0gLXJmIH4K\x07\x1b[2Jok": "\uFFFD]52;c;cm0gLXJmIH4K\uFFFD\uFFFD[2Jok",
		"a\rb\tc\x7fd\u009be":                 "a\uFFFDb\uFFFDc\uFFFDd\uFFFDe",
		"user\u202egnp.exe":                   "user\uFFFDgnp.exe",
		"grüße, 東京":                           "grüße, 東京",
	} {
		if got := termSafe(in); got != want {
			t.Errorf("termSafe(%q) = %q, want %q", in, got, want)
		}
	}
	a := newApp(Env{})
	if got := a.describe(&gatehouse.Error{Code: gatehouse.EFORBIDDEN, Message: "no\x1b[2J"}); strings.ContainsRune(got, 0x1b) {
		t.Errorf("describe kept an escape: %q", got)
	}
}
