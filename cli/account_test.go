package cli

import (
	"encoding/json"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/gatehouse/gatehouse"
)

// testTokens covers every EXPIRES and LAST USED case against testNow.
var testTokens = []gatehouse.Token{
	{ID: tokenID1, Name: "deploy", Kind: gatehouse.KindAPI, Account: "ci", IssuedAt: testNow.Add(-2 * time.Hour), ExpiresAt: testNow.Add(10 * time.Hour), LastUsedAt: testNow.Add(-time.Minute), LastUsedFrom: "10.0.0.7", CreatedBy: "admin"},
	{ID: tokenID2, Name: "forever", Kind: gatehouse.KindAPI, Account: "ci", IssuedAt: testNow.Add(-48 * time.Hour), CreatedBy: "admin"},
	{ID: tokenID3, Kind: gatehouse.KindAPI, Account: "ci", IssuedAt: testNow.Add(-72 * time.Hour), ExpiresAt: testNow, CreatedBy: "ci"},
}

var testAccounts = []gatehouse.Account{
	{Name: "admin", Enabled: true, Capabilities: []gatehouse.Capability{gatehouse.CapLogin, gatehouse.CapAPIKey}, Groups: []string{}, CreatedAt: testNow.Add(-240 * time.Hour)},
	{Name: "ci", Enabled: false, Capabilities: []gatehouse.Capability{gatehouse.CapAPIKey}, Groups: []string{"deployers", "ops"}, CreatedAt: testNow.Add(-24 * time.Hour), Tokens: testTokens},
}

func TestAccountReadCommandsGolden(t *testing.T) {
	api := newFakeAPI(t, map[string]http.HandlerFunc{
		"GET /api/v1/session/userinfo": reply(gatehouse.UserInfo{LoggedIn: true, Username: "ci", Iss: "gatehouse", Groups: []string{"deployers"}, Roles: []string{"role:deployer"}, TokenID: tokenID1, TokenKind: gatehouse.KindAPI, ExpiresAt: testNow.Add(10 * time.Hour)}),
		"GET /api/v1/account":          reply(gatehouse.List[gatehouse.Account]{Items: testAccounts}),
		"GET /api/v1/account/ci":       reply(testAccounts[1]),
		"GET /api/v1/account/admin":    reply(testAccounts[0]),
		"GET /api/v1/account/ci/token": reply(gatehouse.List[gatehouse.Token]{Items: testTokens}),
	})
	r := authed(t, api)
	tests := []struct {
		golden string
		args   []string
	}{
		{"account_get_user_info", []string{"account", "get-user-info"}},
		{"account_list", []string{"account", "list"}},
		{"account_get", []string{"account", "get", "--account", "ci"}},
		{"account_get_no_tokens", []string{"account", "get", "--account", "admin"}},
		{"account_list_tokens", []string{"account", "list-tokens", "--account", "ci"}},
		// Without --account the caller's own (ci, from userinfo).
		{"account_list_tokens", []string{"account", "list-tokens"}},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			res := r.run(t, tt.args...)
			mustSucceed(t, res)
			golden(t, tt.golden, res.stdout)
		})
	}
}

func TestJSONAndYAMLOutputDecodeIntoAPITypes(t *testing.T) {
	api := newFakeAPI(t, map[string]http.HandlerFunc{
		"GET /api/v1/account":          reply(gatehouse.List[gatehouse.Account]{Items: testAccounts}),
		"GET /api/v1/account/ci":       reply(testAccounts[1]),
		"GET /api/v1/account/ci/token": reply(gatehouse.List[gatehouse.Token]{Items: testTokens}),
	})
	r := authed(t, api)
	tests := []struct {
		args []string
		into func() any
		want any
	}{
		{[]string{"account", "list"}, func() any { return &[]gatehouse.Account{} }, &testAccounts},
		{[]string{"account", "get", "--account", "ci"}, func() any { return &gatehouse.Account{} }, &testAccounts[1]},
		{[]string{"account", "list-tokens", "--account", "ci"}, func() any { return &[]gatehouse.Token{} }, &testTokens},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			res := r.run(t, append(tt.args, "-o", "json")...)
			mustSucceed(t, res)
			got := tt.into()
			dec := json.NewDecoder(strings.NewReader(res.stdout))
			dec.DisallowUnknownFields()
			if err := dec.Decode(got); err != nil {
				t.Fatalf("-o json: %v\n%s", err, res.stdout)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("-o json decoded %+v, want %+v", got, tt.want)
			}

			// YAML carries the same data under the same field names.
			res = r.run(t, append(tt.args, "-o", "yaml")...)
			mustSucceed(t, res)
			var generic any
			if err := yaml.Unmarshal([]byte(res.stdout), &generic); err != nil {
				t.Fatalf("-o yaml: %v\n%s", err, res.stdout)
			}
			b, err := json.Marshal(generic)
			if err != nil {
				t.Fatalf("-o yaml is not JSON-shaped: %v\n%s", err, res.stdout)
			}
			got = tt.into()
			if err := json.Unmarshal(b, got); err != nil {
				t.Fatalf("-o yaml as JSON: %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("-o yaml decoded %+v, want %+v", got, tt.want)
			}
		})
	}

	before := len(api.requests())
	res := r.run(t, "account", "list", "-o", "xml")
	mustFail(t, res, `unknown output format "xml"`)
	if n := len(api.requests()) - before; n != 0 {
		t.Errorf("-o xml sent %d requests, want 0", n)
	}
}

func TestGenerateToken(t *testing.T) {
	newTok := gatehouse.NewToken{Token: testToken, ID: tokenID1, Name: "deploy", IssuedAt: testNow, ExpiresAt: testNow.Add(7 * 24 * time.Hour)}
	tests := []struct {
		name     string
		args     []string
		wantPath string
		want     gatehouse.TokenRequest
	}{
		{
			name:     "own account, server default lifetime",
			args:     nil,
			wantPath: "/api/v1/account/ci/token",
			want:     gatehouse.TokenRequest{},
		},
		{
			name:     "days and scopes",
			args:     []string{"--account", "svc", "--name", "deploy", "-e", "7d", "--scope", "applications:sync:shop/*", "--scope", "applications:get:shop/web:blue"},
			wantPath: "/api/v1/account/svc/token",
			want: gatehouse.TokenRequest{Name: "deploy", ExpiresIn: ptr(int64(604800)), Scopes: []gatehouse.Scope{
				{Resource: "applications", Action: "sync", Object: "shop/*"},
				{Resource: "applications", Action: "get", Object: "shop/web:blue"},
			}},
		},
		{
			name:     "never expires",
			args:     []string{"--account", "svc", "--expires-in", "0"},
			wantPath: "/api/v1/account/svc/token",
			want:     gatehouse.TokenRequest{ExpiresIn: ptr(int64(0))},
		},
		{
			name:     "minutes",
			args:     []string{"--account", "svc", "-e", "30m"},
			wantPath: "/api/v1/account/svc/token",
			want:     gatehouse.TokenRequest{ExpiresIn: ptr(int64(1800))},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			api := newFakeAPI(t, map[string]http.HandlerFunc{
				"GET /api/v1/session/userinfo":   userinfo("ci"),
				"POST /api/v1/account/{n}/token": reply(newTok),
			})
			res := authed(t, api).run(t, append([]string{"account", "generate-token"}, tt.args...)...)
			mustSucceed(t, res)
			if res.stdout != testToken+"\n" {
				t.Errorf("stdout = %q, want only the token and a newline", res.stdout)
			}
			if res.stderr != "" {
				t.Errorf("stderr = %q, want nothing", res.stderr)
			}
			got := decodeBody[gatehouse.TokenRequest](t, api.last(t, "POST", tt.wantPath))
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("request %+v, want %+v", got, tt.want)
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

func TestGenerateTokenRejectsBadFlagsBeforeSending(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"-e", "12"}, `invalid duration "12"`},
		{[]string{"-e", "-1h"}, `invalid duration "-1h"`},
		{[]string{"-e", "0s"}, "use 0 for a token that never expires"},
		{[]string{"-e", "1500ms"}, "not a whole number of seconds"},
		{[]string{"--scope", "applications:sync"}, "want resource:action:object"},
		{[]string{"--scope", "applications::x"}, `invalid scope "applications::x"`},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			api := newFakeAPI(t, nil)
			res := authed(t, api).run(t, append([]string{"account", "generate-token", "--account", "ci"}, tt.args...)...)
			mustFail(t, res, tt.want)
			if n := len(api.requests()); n != 0 {
				t.Errorf("%d requests sent, want 0", n)
			}
		})
	}
}

func TestRotateToken(t *testing.T) {
	api := newFakeAPI(t, map[string]http.HandlerFunc{
		"GET /api/v1/session/userinfo":               userinfo("ci"),
		"POST /api/v1/account/{n}/token/{id}/rotate": reply(gatehouse.NewToken{Token: testToken, ID: tokenID2, IssuedAt: testNow}),
	})
	r := authed(t, api)
	res := r.run(t, "account", "rotate-token", tokenID1, "--grace", "5m", "-e", "1d")
	mustSucceed(t, res)
	if res.stdout != testToken+"\n" {
		t.Errorf("stdout = %q, want only the new token", res.stdout)
	}
	got := decodeBody[gatehouse.RotateRequest](t, api.last(t, "POST", "/api/v1/account/ci/token/"+tokenID1+"/rotate"))
	if want := (gatehouse.RotateRequest{ExpiresIn: ptr(int64(86400)), GraceSeconds: 300}); !reflect.DeepEqual(got, want) {
		t.Errorf("request %+v, want %+v", got, want)
	}

	mustSucceed(t, r.run(t, "account", "rotate-token", "--account", "svc", tokenID1))
	got = decodeBody[gatehouse.RotateRequest](t, api.last(t, "POST", "/api/v1/account/svc/token/"+tokenID1+"/rotate"))
	if want := (gatehouse.RotateRequest{}); !reflect.DeepEqual(got, want) {
		t.Errorf("request %+v, want %+v (revoke now, server lifetime)", got, want)
	}
}

func TestDeleteToken(t *testing.T) {
	api := newFakeAPI(t, map[string]http.HandlerFunc{
		"GET /api/v1/session/userinfo":          userinfo("ci"),
		"DELETE /api/v1/account/{n}/token/{id}": reply(struct{}{}),
	})
	res := authed(t, api).run(t, "account", "delete-token", tokenID1)
	mustSucceed(t, res)
	api.last(t, "DELETE", "/api/v1/account/ci/token/"+tokenID1)
	if want := "token " + tokenID1 + " of account 'ci' deleted\n"; res.stdout != want {
		t.Errorf("stdout = %q, want %q", res.stdout, want)
	}
}

func TestRevokeAll(t *testing.T) {
	routes := func() map[string]http.HandlerFunc {
		return map[string]http.HandlerFunc{
			"GET /api/v1/session/userinfo":     userinfo("ci"),
			"DELETE /api/v1/account/{n}/token": reply(map[string]int{"revoked": 3}),
		}
	}
	tests := []struct {
		name      string
		args      []string
		stdin     string
		terminal  bool
		wantQuery string
		wantErr   string
	}{
		{name: "yes", args: []string{"--yes"}},
		{name: "issued before a time", args: []string{"--yes", "--issued-before", "2025-03-01T00:00:00Z"}, wantQuery: "issuedBefore=2025-03-01T00%3A00%3A00Z"},
		{name: "issued before a duration ago", args: []string{"-y", "--issued-before", "24h"}, wantQuery: "issuedBefore=2025-03-03T12%3A00%3A00Z"},
		{name: "confirmed on a terminal", terminal: true, stdin: "y\n"},
		{name: "declined on a terminal", terminal: true, stdin: "n\n", wantErr: "aborted"},
		{name: "no terminal, no --yes", stdin: "y\n", wantErr: "standard input is not a terminal; pass --yes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			api := newFakeAPI(t, routes())
			r := authed(t, api)
			r.stdin = tt.stdin
			if tt.terminal {
				r.terminal = &fakeTerminal{}
			}
			res := r.run(t, append([]string{"account", "revoke-all"}, tt.args...)...)
			if tt.wantErr != "" {
				mustFail(t, res, tt.wantErr)
				if n := api.count("DELETE", "/api/v1/account/ci/token"); n != 0 {
					t.Errorf("%d revocations sent, want 0", n)
				}
				return
			}
			mustSucceed(t, res)
			if want := "revoked 3 tokens of account 'ci'\n"; res.stdout != want {
				t.Errorf("stdout = %q, want %q", res.stdout, want)
			}
			if got := api.last(t, "DELETE", "/api/v1/account/ci/token").query; got != tt.wantQuery {
				t.Errorf("query = %q, want %q", got, tt.wantQuery)
			}
			if tt.terminal && !strings.Contains(res.stderr, "Revoke every token of account 'ci'? [y/N] ") {
				t.Errorf("stderr = %q, want the confirmation question", res.stderr)
			}
		})
	}
}

func TestCanI(t *testing.T) {
	api := newFakeAPI(t, map[string]http.HandlerFunc{
		"GET /api/v1/account/can-i/applications/sync/shop/web": reply(gatehouse.CanI{Value: "yes"}),
		"GET /api/v1/account/can-i/accounts/delete/admin":      reply(gatehouse.CanI{Value: "no"}),
	})
	r := authed(t, api)
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"sync", "applications", "shop/web"}, "yes\n"},
		{[]string{"delete", "accounts", "admin"}, "no\n"},
	}
	for _, tt := range tests {
		res := r.run(t, append([]string{"account", "can-i"}, tt.args...)...)
		mustSucceed(t, res)
		if res.stdout != tt.want {
			t.Errorf("can-i %v = %q, want %q", tt.args, res.stdout, tt.want)
		}
	}
}

func TestAccountWrites(t *testing.T) {
	api := newFakeAPI(t, map[string]http.HandlerFunc{
		"POST /api/v1/account":         reply(testAccounts[1]),
		"PATCH /api/v1/account/{n}":    reply(testAccounts[1]),
		"DELETE /api/v1/account/{n}":   reply(struct{}{}),
		"PUT /api/v1/account/password": reply(struct{}{}),
	})
	r := authed(t, api)

	mustSucceed(t, r.run(t, "account", "create", "ci", "--capabilities", "apiKey", "--group", "deployers", "--group", "ops"))
	got := decodeBody[gatehouse.AccountCreate](t, api.last(t, "POST", "/api/v1/account"))
	if want := (gatehouse.AccountCreate{Name: "ci", Capabilities: []gatehouse.Capability{"apiKey"}, Groups: []string{"deployers", "ops"}}); !reflect.DeepEqual(got, want) {
		t.Errorf("create %+v, want %+v", got, want)
	}

	r.stdin = "pw1\n"
	mustSucceed(t, r.run(t, "account", "create", "alice", "--capabilities", "login,apiKey"))
	got = decodeBody[gatehouse.AccountCreate](t, api.last(t, "POST", "/api/v1/account"))
	if want := (gatehouse.AccountCreate{Name: "alice", Capabilities: []gatehouse.Capability{"login", "apiKey"}, Password: "pw1"}); !reflect.DeepEqual(got, want) {
		t.Errorf("create %+v, want %+v", got, want)
	}
	r.stdin = ""
	mustFail(t, r.run(t, "account", "create", "x", "--capabilities", "root"), `unknown capability "root"`)
	mustFail(t, r.run(t, "account", "create", "x", "--capabilities", "apiKey", "--password", "p"), "--password needs the login capability")
	mustFail(t, r.run(t, "account", "create", "x"), `required flag(s) "capabilities" not set`)

	for _, tt := range []struct {
		verb    string
		enabled bool
	}{{"disable", false}, {"enable", true}} {
		res := r.run(t, "account", tt.verb, "ci")
		mustSucceed(t, res)
		patch := decodeBody[gatehouse.AccountPatch](t, api.last(t, "PATCH", "/api/v1/account/ci"))
		if patch.Enabled == nil || *patch.Enabled != tt.enabled || patch.Groups != nil || patch.Capabilities != nil {
			t.Errorf("%s sent %s, want only enabled=%v", tt.verb, api.last(t, "PATCH", "/api/v1/account/ci").body, tt.enabled)
		}
		if want := "account 'ci' " + tt.verb + "d\n"; res.stdout != want {
			t.Errorf("stdout = %q, want %q", res.stdout, want)
		}
	}

	mustSucceed(t, r.run(t, "account", "delete", "ci"))
	api.last(t, "DELETE", "/api/v1/account/ci")
}

func TestUpdatePassword(t *testing.T) {
	tests := []struct {
		name     string
		args     []string
		stdin    string
		terminal *fakeTerminal
		want     gatehouse.PasswordChange
		wantErr  string
	}{
		{
			name: "flags",
			args: []string{"--account", "alice", "--current-password", "old-pw-1", "--new-password", "new-pw-2"},
			want: gatehouse.PasswordChange{Name: "alice", CurrentPassword: "old-pw-1", NewPassword: "new-pw-2"},
		},
		{
			name:  "stdin lines",
			stdin: "old-pw-1\nnew-pw-2\n",
			want:  gatehouse.PasswordChange{CurrentPassword: "old-pw-1", NewPassword: "new-pw-2"},
		},
		{
			name:     "terminal with confirmation",
			terminal: &fakeTerminal{passwords: []string{"old-pw-1", "new-pw-2", "new-pw-2"}},
			want:     gatehouse.PasswordChange{CurrentPassword: "old-pw-1", NewPassword: "new-pw-2"},
		},
		{
			name:     "terminal, confirmation differs",
			terminal: &fakeTerminal{passwords: []string{"old-pw-1", "new-pw-2", "typo"}},
			wantErr:  "the passwords do not match",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			api := newFakeAPI(t, map[string]http.HandlerFunc{"PUT /api/v1/account/password": reply(struct{}{})})
			r := authed(t, api)
			r.stdin, r.terminal = tt.stdin, tt.terminal
			res := r.run(t, append([]string{"account", "update-password"}, tt.args...)...)
			if tt.wantErr != "" {
				mustFail(t, res, tt.wantErr)
				if n := len(api.requests()); n != 0 {
					t.Errorf("%d requests sent, want 0", n)
				}
				return
			}
			mustSucceed(t, res)
			got := decodeBody[gatehouse.PasswordChange](t, api.last(t, "PUT", "/api/v1/account/password"))
			if got != tt.want {
				t.Errorf("request %+v, want %+v", got, tt.want)
			}
			for _, secret := range []string{"old-pw-1", "new-pw-2"} {
				if strings.Contains(res.stdout+res.stderr, secret) {
					t.Errorf("output %q %q shows a password", res.stdout, res.stderr)
				}
			}
		})
	}
}

func TestAPIErrorIsOneLine(t *testing.T) {
	api := newFakeAPI(t, map[string]http.HandlerFunc{
		"GET /api/v1/account/{n}": replyError(http.StatusForbidden, gatehouse.EFORBIDDEN, "permission denied: accounts, get, admin"),
	})
	res := authed(t, api).run(t, "account", "get", "--account", "admin")
	mustFail(t, res, "")
	if want := "error: permission denied: accounts, get, admin\n"; res.stderr != want {
		t.Errorf("stderr = %q, want %q", res.stderr, want)
	}
	if res.code != 1 {
		t.Errorf("exit %d, want 1", res.code)
	}
}

func TestAccountCommandsWithARoleTokenNeedAnAccount(t *testing.T) {
	api := newFakeAPI(t, map[string]http.HandlerFunc{
		"GET /api/v1/session/userinfo": reply(gatehouse.UserInfo{LoggedIn: true, Username: "proj:shop:ci", Iss: "gatehouse", TokenID: tokenID1, TokenKind: gatehouse.KindProject}),
	})
	r := authed(t, api)
	for _, args := range [][]string{
		{"account", "list-tokens"},
		{"account", "get"},
		{"account", "generate-token"},
		{"account", "delete-token", tokenID2},
		{"account", "rotate-token", tokenID2},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			mustFail(t, r.run(t, args...), "this token acts as project role proj:shop:ci, not as an account; pass --account")
			if n := len(api.requests()); api.requests()[n-1].path != "/api/v1/session/userinfo" {
				t.Errorf("last request %s %s, want nothing after userinfo", api.requests()[n-1].method, api.requests()[n-1].path)
			}
		})
	}
}
