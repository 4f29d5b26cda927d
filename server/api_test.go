package server_test

import (
	"bytes"
	"net/http"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse"
)

func TestUserInfo(t *testing.T) {
	e := newEnv(t)
	var info gatehouse.UserInfo
	e.call("GET", "/api/v1/session/userinfo", "", nil, 200, &info)
	if info.LoggedIn {
		t.Fatalf("no credential: %+v, want loggedIn false", info)
	}
	if s := e.status("GET", "/api/v1/session/userinfo", "gatehouse:bogus", nil); s != 401 {
		t.Fatalf("bad credential: %d, want 401", s)
	}
	e.call("GET", "/api/v1/session/userinfo", e.admin, nil, 200, &info)
	if !info.LoggedIn || info.Username != "admin" || info.TokenKind != "session" || info.Iss != "gatehouse" {
		t.Fatalf("admin: %+v", info)
	}
	if !containsString(info.Roles, "role:admin") {
		t.Errorf("roles %v lack role:admin", info.Roles)
	}
}

func TestLoginSetsStrictCookieAndLogoutRevokes(t *testing.T) {
	e := newEnv(t)
	req, _ := http.NewRequest("POST", e.srv.URL+"/api/v1/session", strings.NewReader(`{"username":"admin","password":"`+adminPassword+`"}`))
	req.Header.Set("Content-Type", "application/json")
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var out struct{ Token string }
	decodeJSON(t, resp, &out)
	resp.Body.Close()
	var cookie *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == "gatehouse.token" {
			cookie = c
		}
	}
	if cookie == nil || !cookie.HttpOnly || cookie.SameSite != http.SameSiteStrictMode || cookie.Value != out.Token {
		t.Fatalf("session cookie = %+v", cookie)
	}
	e.call("DELETE", "/api/v1/session", out.Token, nil, 200, nil)
	if s := e.status("GET", "/api/v1/projects", out.Token, nil); s != 401 {
		t.Fatalf("session after logout: %d, want 401", s)
	}
}

func TestRequestHygiene(t *testing.T) {
	e := newEnv(t)
	send := func(method, path, ctype string, body []byte) (int, []byte) {
		req, _ := http.NewRequest(method, e.srv.URL+path, bytes.NewReader(body))
		if ctype != "" {
			req.Header.Set("Content-Type", ctype)
		}
		req.Header.Set("Authorization", "Bearer "+e.admin)
		return e.send(req)
	}
	cases := map[string]struct {
		method, ctype string
		body          []byte
		status        int
		code          string
	}{
		"fail/no content type": {"POST", "", []byte(`{"name":"x"}`), 415, "unsupported_media_type"},
		"fail/form":            {"POST", "application/x-www-form-urlencoded", []byte(`name=x`), 415, "unsupported_media_type"},
		"fail/too large":       {"POST", "application/json", append([]byte(`{"name":"`), bytes.Repeat([]byte("a"), 1<<20+10)...), 413, "payload_too_large"},
		"fail/unknown field":   {"POST", "application/json", []byte(`{"name":"x","bogus":1}`), 400, "invalid_argument"},
		"fail/syntax":          {"POST", "application/json", []byte(`{"name":`), 400, "invalid_argument"},
		"fail/two values":      {"POST", "application/json", []byte(`{"name":"x"}{}`), 400, "invalid_argument"},
		"fail/wrong type":      {"POST", "application/json", []byte(`{"name":5}`), 400, "invalid_argument"},
		"ok/json with charset": {"POST", "application/json; charset=utf-8", []byte(`{"name":"x"}`), 200, ""},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			s, b := send(c.method, "/api/v1/account/admin/token", c.ctype, c.body)
			if s != c.status {
				t.Fatalf("status %d, want %d: %s", s, c.status, b)
			}
			if c.code != "" {
				if code, msg := errorOf(t, b); code != c.code || msg == "" {
					t.Fatalf("error %q %q, want code %q", code, msg, c.code)
				}
			}
		})
	}
	// Nothing was minted by the refused requests.
	var list gatehouse.List[gatehouse.Token]
	e.call("GET", "/api/v1/account/admin/token", e.admin, nil, 200, &list)
	if len(list.Items) != 1 {
		t.Fatalf("tokens after hygiene tests = %d, want 1 (the ok case)", len(list.Items))
	}
	if s, b := e.do("GET", "/api/v1/nope", e.admin, nil); s != 404 || !contains(b, "not_found") {
		t.Fatalf("unknown API path: %d %s", s, b)
	}
}

func TestDisablingOrDeletingAnAccountKillsItsTokens(t *testing.T) {
	e := newEnv(t)
	e.createUser("erin")
	e.setPolicy("g, erin, role:readonly", "")
	session := e.login("erin", "erin-password")
	api := e.mint(session, "erin", gatehouse.TokenRequest{})
	off, on := false, true
	e.call("PATCH", "/api/v1/account/erin", e.admin, gatehouse.AccountPatch{Enabled: &off}, 200, nil)
	for _, tok := range []string{session, api.Token} {
		if s := e.status("GET", "/api/v1/projects", tok, nil); s != 401 {
			t.Fatalf("token of a disabled account: %d, want 401", s)
		}
	}
	// Tokens issued before the account was disabled stay dead when it is
	// enabled again (issue 11): disabling revoked them.
	e.call("PATCH", "/api/v1/account/erin", e.admin, gatehouse.AccountPatch{Enabled: &on}, 200, nil)
	for _, tok := range []string{session, api.Token} {
		if s := e.status("GET", "/api/v1/projects", tok, nil); s != 401 {
			t.Fatalf("token issued before the account was disabled, after re-enabling: %d, want 401", s)
		}
	}
	api = e.mint(e.login("erin", "erin-password"), "erin", gatehouse.TokenRequest{})
	if s := e.status("GET", "/api/v1/projects", api.Token, nil); s != 200 {
		t.Fatalf("token minted after re-enabling: %d, want 200", s)
	}
	e.call("DELETE", "/api/v1/account/erin", e.admin, nil, 200, nil)
	if s := e.status("GET", "/api/v1/projects", api.Token, nil); s != 401 {
		t.Fatalf("token of a deleted account: %d, want 401", s)
	}
	// Re-creating the name does not resurrect the old tokens.
	e.createUser("erin")
	if s := e.status("GET", "/api/v1/projects", api.Token, nil); s != 401 {
		t.Fatalf("token after re-creating the account: %d, want 401", s)
	}
}

func TestPasswordChangeRevokesOtherSessions(t *testing.T) {
	e := newEnv(t)
	e.createUser("frank")
	s1 := e.login("frank", "frank-password")
	s2 := e.login("frank", "frank-password")
	s, b := e.do("PUT", "/api/v1/account/password", s1, gatehouse.PasswordChange{CurrentPassword: "wrong-one", NewPassword: "new-password-1"})
	if s != 401 {
		t.Fatalf("wrong current password: %d %s", s, b)
	}
	if s := e.status("PUT", "/api/v1/account/password", s1, gatehouse.PasswordChange{CurrentPassword: "frank-password", NewPassword: "short"}); s != 400 {
		t.Fatalf("short new password: %d, want 400", s)
	}
	e.call("PUT", "/api/v1/account/password", s1, gatehouse.PasswordChange{CurrentPassword: "frank-password", NewPassword: "new-password-1"}, 200, nil)
	if s := e.status("GET", "/api/v1/session/userinfo", s1, nil); s != 200 {
		t.Fatalf("caller's session after change: %d", s)
	}
	if s := e.status("GET", "/api/v1/session/userinfo", s2, nil); s != 401 {
		t.Fatalf("other session after change: %d, want 401", s)
	}
	e.login("frank", "new-password-1")
}

func TestPolicyReplacementIsAllOrNothing(t *testing.T) {
	e := newEnv(t)
	e.setPolicy("p, role:dev, applications, get, */*, allow\ng, gina, role:dev", "")
	s, b := e.do("PUT", "/api/v1/settings/rbac", e.admin, gatehouse.RBAC{PolicyCSV: "p, role:x, applications, get, */*, allow\nq, nonsense\np, too, few"})
	if s != 400 || !contains(b, "line 2") || !contains(b, "line 3") {
		t.Fatalf("bad policy: %d %s, want 400 naming lines 2 and 3", s, b)
	}
	var got gatehouse.RBAC
	e.call("GET", "/api/v1/settings/rbac", e.admin, nil, 200, &got)
	if !strings.Contains(got.PolicyCSV, "role:dev") {
		t.Fatalf("old policy not kept: %+v", got)
	}
	var x gatehouse.Explanation
	e.call("GET", "/api/v1/settings/rbac/can?subject=gina&resource=applications&action=get&object=a/b", e.admin, nil, 200, &x)
	if x.Value != "yes" || len(x.Matched) == 0 {
		t.Fatalf("explain = %+v", x)
	}
}

func TestServiceAccountsAndForeignTokens(t *testing.T) {
	e := newEnv(t)
	e.call("POST", "/api/v1/account", e.admin, gatehouse.AccountCreate{Name: "ci-bot", Capabilities: []gatehouse.Capability{"apiKey"}}, 200, nil)
	e.setPolicy("g, ci-bot, role:readonly", "")
	// Cannot log in with a password (it has none, and no login capability).
	if s := e.status("POST", "/api/v1/session", "", gatehouse.LoginRequest{Username: "ci-bot", Password: "anything-at-all"}); s != 401 {
		t.Fatalf("service account login: %d, want 401", s)
	}
	bot := e.mint(e.admin, "ci-bot", gatehouse.TokenRequest{Name: "pipeline"})
	if s := e.status("GET", "/api/v1/projects", bot.Token, nil); s != 200 {
		t.Fatalf("service account token: %d", s)
	}
	// A non-admin cannot mint for another account.
	e.createUser("hank")
	hank := e.login("hank", "hank-password")
	if s := e.status("POST", "/api/v1/account/ci-bot/token", hank, gatehouse.TokenRequest{Name: "x"}); s != 403 {
		t.Fatalf("minting for another account: %d, want 403", s)
	}
	off := false
	e.call("PATCH", "/api/v1/account/ci-bot", e.admin, gatehouse.AccountPatch{Enabled: &off}, 200, nil)
	if s := e.status("GET", "/api/v1/projects", bot.Token, nil); s != 401 {
		t.Fatalf("disabled service account token: %d, want 401", s)
	}
}

func containsString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
