package server_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/internal/testop"
	"github.com/gatehouse/gatehouse/service"
)

const ssoPolicy = "p, role:dev, applications, get, web/*, allow\ng, devs, role:dev\np, role:ops, applications, sync, web/*, allow\ng, ops, role:ops"

// The first SSO login creates the account (source sso, no password,
// login and apiKey, the provider's groups, lastLoginAt), sets the same
// session cookie as a password login, and the groups map to roles
// through g lines.
func TestSSOLoginCreatesAccount(t *testing.T) {
	s := newSSOEnv(t, ssoPolicy)
	tok := s.ssoLogin("u-alice")

	info, status := s.userinfo(tok)
	if status != http.StatusOK || info.Username != "alice@example.com" || info.TokenKind != gatehouse.KindSession {
		t.Fatalf("userinfo = %+v, %d; want alice's session", info, status)
	}
	if !slices.Equal(info.Groups, []string{"devs"}) || !slices.Contains(info.Roles, "role:dev") {
		t.Errorf("groups %v roles %v, want devs and role:dev", info.Groups, info.Roles)
	}
	if got := s.canI(tok, "applications", "get", "web/shop"); got != "yes" {
		t.Errorf("can-i get web/shop = %s, want yes (devs -> role:dev)", got)
	}
	if got := s.canI(tok, "applications", "sync", "web/shop"); got != "no" {
		t.Errorf("can-i sync = %s, want no", got)
	}
	var a struct {
		gatehouse.Account
		Source      string    `json:"source"`
		LastLoginAt time.Time `json:"lastLoginAt"`
	}
	s.call("GET", "/api/v1/account/alice@example.com", s.admin, nil, 200, &a)
	if a.Source != "sso" || a.LastLoginAt.IsZero() || !a.Enabled ||
		!slices.Equal(a.Capabilities, []gatehouse.Capability{"login", "apiKey"}) || !slices.Equal(a.Groups, []string{"devs"}) {
		t.Errorf("account = %+v", a)
	}
	var admin struct{ Source string }
	s.call("GET", "/api/v1/account/admin", s.admin, nil, 200, &admin)
	if admin.Source != "local" {
		t.Errorf("admin source = %q, want local", admin.Source)
	}
	// A second login is the same account, with a new session.
	if again := s.ssoLogin("u-alice"); again == tok {
		t.Error("the second login returned the same session")
	}
}

// An SSO user mints a personal token (the seed's flow) and the token
// follows the user's current groups: a group removed at the provider is
// gone from the token within one refresh interval; one added arrives the
// same way.
func TestSSOTokenFollowsLiveGroups(t *testing.T) {
	s := newSSOEnv(t, ssoPolicy)
	tok := s.ssoLogin("u-alice")
	api := s.mint(tok, "alice@example.com", gatehouse.TokenRequest{Name: "laptop"})
	if got := s.canI(api.Token, "applications", "get", "web/shop"); got != "yes" {
		t.Fatalf("new token: can-i get = %s, want yes", got)
	}

	s.op.SetGroups("u-alice", "ops")
	// Not yet due: the groups are a few seconds old.
	s.refresh(10 * time.Second)
	if got := s.canI(api.Token, "applications", "get", "web/shop"); got != "yes" {
		t.Errorf("before the interval: can-i get = %s, want yes (last known groups)", got)
	}
	// One interval after the login the refresh runs.
	began := time.Now()
	s.refresh(ssoInterval)
	t.Logf("refresh to refusal: %s of wall time (one refresh pass against the provider)", time.Since(began))
	if got := s.canI(api.Token, "applications", "get", "web/shop"); got != "no" {
		t.Errorf("after the group's removal: can-i get = %s, want no", got)
	}
	if got := s.canI(api.Token, "applications", "sync", "web/shop"); got != "yes" {
		t.Errorf("after the group's addition: can-i sync = %s, want yes", got)
	}
	if got := s.canI(tok, "applications", "get", "web/shop"); got != "no" {
		t.Errorf("the session too: can-i get = %s, want no", got)
	}
	if n := s.op.Refreshes(); n != 1 {
		t.Errorf("provider answered %d refreshes, want 1", n)
	}
	var events gatehouse.List[gatehouse.Event]
	s.call("GET", "/api/v1/audit?type="+gatehouse.EventSSOGroupsChanged, s.admin, nil, 200, &events)
	if len(events.Items) != 1 || !strings.Contains(events.Items[0].Detail, `["devs"] -> ["ops"]`) {
		t.Errorf("groups-changed events = %+v", events.Items)
	}
}

// A user deleted at the provider: the next refresh is refused
// (invalid_grant), the account is disabled and every one of its tokens
// and sessions refused at once, audited. A later successful login
// enables it again, without bringing the old tokens back.
func TestSSOUserDeletedAtProvider(t *testing.T) {
	s := newSSOEnv(t, ssoPolicy)
	tok := s.ssoLogin("u-alice")
	api := s.mint(tok, "alice@example.com", gatehouse.TokenRequest{Name: "ci"})

	s.op.DeleteUser("u-alice")
	s.refresh(ssoInterval)
	for name, k := range map[string]string{"api token": api.Token, "session": tok} {
		if _, status := s.userinfo(k); status != http.StatusUnauthorized {
			t.Errorf("%s after the user's deletion: %d, want 401", name, status)
		}
	}
	var a gatehouse.Account
	s.call("GET", "/api/v1/account/alice@example.com", s.admin, nil, 200, &a)
	if a.Enabled || len(a.Tokens) != 0 {
		t.Errorf("account after deletion at the provider: enabled %t, %d tokens", a.Enabled, len(a.Tokens))
	}
	var events gatehouse.List[gatehouse.Event]
	s.call("GET", "/api/v1/audit?type="+gatehouse.EventSSORefreshRefused, s.admin, nil, 200, &events)
	if len(events.Items) != 1 {
		t.Errorf("%d refresh-refused events, want 1", len(events.Items))
	}
	s.call("GET", "/api/v1/audit?type="+gatehouse.EventTokenRevoked, s.admin, nil, 200, &events)
	if len(events.Items) != 2 {
		t.Errorf("%d token-revoked events, want 2 (the API token and the session)", len(events.Items))
	}

	// Back at the provider: the login enables the account again.
	s.op.AddUser(testop.User{ID: "u-alice", Email: "alice@example.com", EmailVerified: true, Groups: []string{"devs"}})
	fresh := s.ssoLogin("u-alice")
	if got := s.canI(fresh, "applications", "get", "web/shop"); got != "yes" {
		t.Errorf("after logging in again: can-i = %s", got)
	}
	if _, status := s.userinfo(api.Token); status != http.StatusUnauthorized {
		t.Errorf("the old API token came back: %d", status)
	}

	// An administrator's disabling is different: a login does not undo it.
	off := false
	s.call("PATCH", "/api/v1/account/alice@example.com", s.admin, gatehouse.AccountPatch{Enabled: &off}, 200, nil)
	c := s.browserClient(s.atCallback)
	if status, _ := s.finish(c, s.begin(c, "u-alice")); status != http.StatusUnauthorized || s.session(c) != "" {
		t.Errorf("login of an account an administrator disabled: %d, want 401 and no session", status)
	}
}

// The provider unreachable: the last groups stay in force until
// groupsMaxAge after the last successful refresh; past it the user's
// tokens and sessions are refused (fail closed); once the provider
// answers again, they work again.
func TestSSOProviderDownFailsClosedAfterMaxAge(t *testing.T) {
	s := newSSOEnv(t, ssoPolicy)
	tok := s.ssoLogin("u-alice")
	api := s.mint(tok, "alice@example.com", gatehouse.TokenRequest{Name: "ci"})

	s.op.SetDown(true)
	for elapsed := ssoInterval; elapsed < ssoMaxAge; elapsed += ssoInterval {
		s.refresh(ssoInterval)
		if got := s.canI(api.Token, "applications", "get", "web/shop"); got != "yes" {
			t.Fatalf("%s after the last refresh, provider down: can-i = %s, want yes (last known groups)", elapsed, got)
		}
	}
	s.refresh(ssoInterval + time.Second) // now past groupsMaxAge
	for name, k := range map[string]string{"api token": api.Token, "session": tok} {
		if status, b := s.do("GET", "/api/v1/session/userinfo", k, nil); status != http.StatusUnauthorized || !contains(b, "log in again") {
			t.Errorf("%s past groupsMaxAge: %d %s, want 401", name, status, b)
		}
	}
	s.op.SetDown(false)
	s.refresh(time.Second)
	if got := s.canI(api.Token, "applications", "get", "web/shop"); got != "yes" {
		t.Errorf("provider back: can-i = %s, want yes", got)
	}
}

// quotingGateway stands for a gateway in front of the provider (a proxy,
// a WAF) that answers some requests itself, quoting the request it did
// not forward: its Authorization header and its form. When set, it
// answers the requests to the endpoint ending in path (with grant_type
// grant, when given) with status, and a text/plain body, or the JSON of
// an OAuth error with the quote as its error_description when code is
// given.
type quotingGateway struct {
	next              http.RoundTripper
	mu                sync.Mutex
	path, grant, code string
	status            int
}

func (g *quotingGateway) set(path, grant string, status int, code string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.path, g.grant, g.status, g.code = path, grant, status, code
}

func (g *quotingGateway) RoundTrip(req *http.Request) (*http.Response, error) {
	g.mu.Lock()
	path, grant, status, code := g.path, g.grant, g.status, g.code
	g.mu.Unlock()
	if path == "" || !strings.HasSuffix(req.URL.Path, path) || req.Body == nil {
		return g.next.RoundTrip(req)
	}
	b, err := io.ReadAll(req.Body)
	req.Body.Close()
	if err != nil {
		return nil, err
	}
	form, _ := url.ParseQuery(string(b))
	if grant != "" && form.Get("grant_type") != grant {
		req.Body = io.NopCloser(bytes.NewReader(b))
		return g.next.RoundTrip(req)
	}
	quote := "could not forward: Authorization: " + req.Header.Get("Authorization") + "\n" + string(b)
	ct, body := "text/plain", quote
	if code != "" {
		j, _ := json.Marshal(map[string]string{"error": code, "error_description": quote})
		ct, body = "application/json", string(j)
	}
	return &http.Response{StatusCode: status, Status: fmt.Sprintf("%d %s", status, http.StatusText(status)),
		Header: http.Header{"Content-Type": {ct}}, Body: io.NopCloser(strings.NewReader(body)), Request: req}, nil
}

// An answer of the provider's endpoints that quotes the request (a
// gateway's 502, an OAuth error whose error_description echoes it) puts
// none of the request's secrets — the refresh token, the code, the
// device code, the client secret — in the log or in any answer: what is
// logged is the HTTP status and the OAuth error code. The decisions on
// the provider's answer still hold: a 502 keeps the last groups, an
// invalid_grant disables the account.
func TestSSOProviderErrorBodyNotLogged(t *testing.T) {
	g := &quotingGateway{}
	s := newSSOEnv(t, ssoPolicy, func(o *service.SSOOptions) {
		hc := *o.HTTPClient
		g.next = hc.Transport
		hc.Transport = g
		o.HTTPClient = &hc
	})
	// The client authenticates with HTTP Basic: the header's value.
	s.remember(base64.StdEncoding.EncodeToString([]byte(ssoClientID + ":" + ssoClientSecret)))
	tok := s.ssoLogin("u-alice")
	logged := func(what, want string) {
		t.Helper()
		for _, l := range strings.Split(string(s.logs.Bytes()), "\n") {
			if strings.Contains(l, what) && strings.Contains(l, want) {
				return
			}
		}
		t.Errorf("no log line of %q says %q", what, want)
	}

	// The refresh: a gateway's 502, then a 503 with an OAuth error. The
	// last groups stay.
	g.set("/token", "refresh_token", http.StatusBadGateway, "")
	s.refresh(ssoInterval)
	logged("keeping the last groups", "the identity provider answered HTTP 502")
	g.set("/token", "refresh_token", http.StatusServiceUnavailable, "temporarily_unavailable")
	s.refresh(ssoInterval)
	logged("keeping the last groups", "the identity provider answered HTTP 503 (temporarily_unavailable)")
	if got := s.canI(tok, "applications", "get", "web/shop"); got != "yes" {
		t.Errorf("after refreshes the provider did not answer: can-i = %s, want yes (last known groups)", got)
	}

	// The login's code exchange: unavailable, then refused.
	login := func(want int, says string) {
		t.Helper()
		c := s.browserClient(s.atCallback)
		cb := s.begin(c, "u-alice")
		s.remember(cb.Query().Get("code"))
		status, page := s.finish(c, cb)
		if status != want || !strings.Contains(page, says) || s.session(c) != "" {
			t.Errorf("login, code exchange answered by the gateway: %d, want %d saying %q, no session", status, want, says)
		}
		s.checkNoSecretIn("the login page", []byte(page))
	}
	g.set("/token", "authorization_code", http.StatusBadGateway, "")
	login(http.StatusServiceUnavailable, "cannot be reached")
	logged("SSO login", "exchanging the code: the identity provider answered HTTP 502")
	g.set("/token", "authorization_code", http.StatusBadRequest, "invalid_grant")
	login(http.StatusUnauthorized, "refused the login (invalid_grant)")
	logged("SSO login refused", "exchanging the code: the identity provider answered HTTP 400 (invalid_grant)")

	// A device login: its start (whose form carries the client secret),
	// then a poll (the device code). The server logs neither error (a
	// 503, a 401), so they are checked as the service returns them, and
	// the start's answer as the CLI gets it.
	said := func(what string, err error, want string) {
		t.Helper()
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want it to say %q", what, err, want)
		}
		s.checkNoSecretIn(what, []byte(fmt.Sprint(err)))
	}
	g.set("/device_authorization", "", http.StatusBadGateway, "")
	status, body := s.do("POST", "/api/v1/session/device", "", struct{}{})
	if status != http.StatusServiceUnavailable {
		t.Errorf("device start answered by the gateway: %d %s, want 503", status, body)
	}
	s.checkNoSecretIn("the device start's answer", body)
	_, err := s.svc.StartDeviceLogin(context.Background(), "192.0.2.1")
	said("the device start's error", err, "starting a device login: the identity provider answered HTTP 502")
	g.set("", "", 0, "")
	dl := s.startDevice()
	s.answerDevice(dl, "u-alice", "approve")
	g.set("/token", "urn:ietf:params:oauth:grant-type:device_code", http.StatusBadGateway, "")
	_, err = s.svc.PollDeviceLogin(context.Background(), dl.Handle, "192.0.2.1")
	said("the device poll's error", err, "polling a device login: the identity provider answered HTTP 502")

	// The refresh refused, with an error_description quoting the
	// request: the account is disabled all the same.
	g.set("/token", "refresh_token", http.StatusBadRequest, "invalid_grant")
	s.refresh(ssoInterval)
	if _, status := s.userinfo(tok); status != http.StatusUnauthorized {
		t.Errorf("session after the provider refused the refresh: %d, want 401", status)
	}
	// (newSSOEnv's cleanup scans the log and the database for every
	// secret remembered, and every refresh token the provider issued.)
}

// Without a refresh token (no offline_access), the groups are confirmed
// only at login, and the tokens of the account are refused groupsMaxAge
// after it.
func TestSSOWithoutRefreshTokenExpiresAtMaxAge(t *testing.T) {
	s := newSSOEnv(t, ssoPolicy, func(o *ssoOptions) { o.Scopes = []string{"openid", "email", "groups"} })
	tok := s.ssoLogin("u-alice")
	s.refresh(ssoMaxAge - time.Second)
	if _, status := s.userinfo(tok); status != http.StatusOK {
		t.Fatalf("within groupsMaxAge: %d", status)
	}
	s.refresh(2 * time.Second)
	if _, status := s.userinfo(tok); status != http.StatusUnauthorized {
		t.Errorf("past groupsMaxAge with no refresh token: %d, want 401", status)
	}
	if n := s.op.Refreshes(); n != 0 {
		t.Errorf("%d refreshes without a refresh token", n)
	}
}

// The provider's groups are no side door: groups naming a role or a
// project role, or an account (admin), are left out, so they grant only
// through the policy's g lines about groups.
func TestSSOGroupsAreNoSideDoor(t *testing.T) {
	s := newSSOEnv(t, ssoPolicy)
	s.op.SetGroups("u-alice", "role:admin", "proj:shop:deployer", "admin", "devs", " devs", "devs")
	tok := s.ssoLogin("u-alice")
	info, _ := s.userinfo(tok)
	if !slices.Equal(info.Groups, []string{"devs"}) || slices.Contains(info.Roles, "role:admin") {
		t.Errorf("groups %v roles %v, want only devs", info.Groups, info.Roles)
	}
	if got := s.canI(tok, "settings", "update", "rbac"); got != "no" {
		t.Errorf("can-i update rbac = %s, want no", got)
	}
	// Nor may an administrator patch an SSO account's groups: the
	// provider owns them.
	groups := []string{"ops"}
	if status, b := s.do("PATCH", "/api/v1/account/alice@example.com", s.admin, gatehouse.AccountPatch{Groups: &groups}); status != http.StatusPreconditionFailed {
		t.Errorf("patching an SSO account's groups: %d %s, want 412", status, b)
	}
}

// SSO users have no password: password login fails like any wrong
// password, and no administrator can give them one. A local account
// whose name an SSO username would take is never merged into.
func TestSSOAccountsAndPasswords(t *testing.T) {
	s := newSSOEnv(t, ssoPolicy)
	s.ssoLogin("u-alice")
	if status, _ := s.do("POST", "/api/v1/session", "", gatehouse.LoginRequest{Username: "alice@example.com", Password: "anything-at-all"}); status != http.StatusUnauthorized {
		t.Errorf("password login of an SSO account: %d, want 401", status)
	}
	if status, b := s.do("PUT", "/api/v1/account/password", s.admin, gatehouse.PasswordChange{Name: "alice@example.com", CurrentPassword: adminPassword, NewPassword: "a-new-password"}); status != http.StatusPreconditionFailed {
		t.Errorf("setting an SSO account's password: %d %s, want 412", status, b)
	}

	// carol has no email at the provider: her username is her subject,
	// which a local account already has.
	s.op.AddUser(testop.User{ID: "carol", Groups: []string{"devs"}})
	s.createUser("carol")
	c := s.browserClient(s.atCallback)
	status, body := s.finish(c, s.begin(c, "carol"))
	if status != http.StatusConflict || !strings.Contains(body, "local account") || s.session(c) != "" {
		t.Errorf("SSO login onto a local account: %d, session %t; body %s", status, s.session(c) != "", body)
	}
	var a struct{ Source string }
	s.call("GET", "/api/v1/account/carol", s.admin, nil, 200, &a)
	if a.Source != "local" {
		t.Errorf("carol's account became %q", a.Source)
	}
	var events gatehouse.List[gatehouse.Event]
	s.call("GET", "/api/v1/audit?type="+gatehouse.EventSSOLoginRefused, s.admin, nil, 200, &events)
	if len(events.Items) != 1 {
		t.Errorf("%d refused-login events, want 1", len(events.Items))
	}

	// A username that is not a canonical account name is refused, not
	// rewritten.
	s.op.AddUser(testop.User{ID: "u-dave", Email: "Dave@Example.com", EmailVerified: true})
	c = s.browserClient(s.atCallback)
	if status, _ := s.finish(c, s.begin(c, "u-dave")); status != http.StatusUnauthorized {
		t.Errorf("a non-canonical username: %d, want 401", status)
	}
	// An email the provider has not verified is not a username.
	s.op.AddUser(testop.User{ID: "u-erin", Email: "erin@example.com", EmailVerified: false})
	c = s.browserClient(s.atCallback)
	if status, _ := s.finish(c, s.begin(c, "u-erin")); status != http.StatusUnauthorized {
		t.Errorf("an unverified email: %d, want 401", status)
	}
}

// Every check of the protocol refuses the login: state, PKCE, nonce,
// issuer, audience, expiry and the signing algorithm, and a refusal by
// the provider. A refused login sets no session and creates no account.
func TestSSOProtocolRefusals(t *testing.T) {
	s := newSSOEnv(t, ssoPolicy)
	query := func(u *url.URL, k, v string) *url.URL {
		cp := *u
		q := cp.Query()
		q.Set(k, v)
		cp.RawQuery = q.Encode()
		return &cp
	}
	cases := map[string]struct {
		tamper testop.Tamper
		// callback builds the URL the victim's browser follows from the
		// provider's genuine answer (and the browser's own state).
		callback func(t *testing.T, c *http.Client, genuine *url.URL) *url.URL
		want     int
		message  string
	}{
		"fail/state changed": {callback: func(_ *testing.T, _ *http.Client, u *url.URL) *url.URL {
			return query(u, "state", "forged-state")
		}, want: 401, message: "start the login again"},
		"fail/state cookie of another browser": {callback: func(t *testing.T, c *http.Client, u *url.URL) *url.URL {
			c.Jar, _ = newJar()
			return u
		}, want: 401, message: "start the login again"},
		"fail/state expired": {callback: func(_ *testing.T, _ *http.Client, u *url.URL) *url.URL {
			s.clock.Advance(11 * time.Minute)
			return u
		}, want: 401, message: "start the login again"},
		"fail/PKCE: a code from another login": {callback: func(t *testing.T, _ *http.Client, u *url.URL) *url.URL {
			// The attacker's own login, whose code it injects with the
			// victim's state: the victim's verifier does not match.
			attacker := s.browserClient(s.atCallback)
			theirs := s.begin(attacker, "u-alice")
			return query(u, "code", theirs.Query().Get("code"))
		}, want: 401, message: "invalid_grant"},
		"fail/provider refused": {callback: func(_ *testing.T, _ *http.Client, u *url.URL) *url.URL {
			v := query(u, "error", "access_denied")
			q := v.Query()
			q.Del("code")
			v.RawQuery = q.Encode()
			return v
		}, want: 401, message: "access_denied"},
		"fail/nonce":    {tamper: testop.Tamper{Nonce: "nonce-of-another-login"}, want: 401, message: "nonce"},
		"fail/issuer":   {tamper: testop.Tamper{Issuer: "http://127.0.0.1:1/another-provider"}, want: 401, message: "issuer"},
		"fail/audience": {tamper: testop.Tamper{Audience: "another-client"}, want: 401, message: "audience"},
		"fail/expired":  {tamper: testop.Tamper{IDTokenLifetime: -10 * time.Minute}, want: 401, message: "expired"},
		"fail/alg":      {tamper: testop.Tamper{SignES256: true}, want: 401, message: "algorithm"},
		"ok/genuine":    {want: 200},
	}
	n := 0
	for name, tc := range cases {
		n++
		user, email := fmt.Sprintf("u-%d", n), fmt.Sprintf("user%d@example.com", n)
		t.Run(name, func(t *testing.T) {
			s.op.AddUser(testop.User{ID: user, Email: email, EmailVerified: true})
			s.op.SetTamper(tc.tamper)
			defer s.op.SetTamper(testop.Tamper{})
			c := s.browserClient(s.atCallback)
			u := s.begin(c, user)
			if tc.callback != nil {
				u = tc.callback(t, c, u)
			}
			status, body := s.finish(c, u)
			if status != tc.want {
				t.Fatalf("status %d, want %d; body %s", status, tc.want, body)
			}
			if tc.want != 200 {
				if !strings.Contains(body, tc.message) {
					t.Errorf("page does not say %q:\n%s", tc.message, body)
				}
				if s.session(c) != "" {
					t.Error("a refused login set a session cookie")
				}
				if status, _ := s.do("GET", "/api/v1/account/"+email, s.admin, nil); status != http.StatusNotFound {
					t.Errorf("a refused login created the account: %d", status)
				}
			}
		})
	}
}

// The login's authorization request carries PKCE (S256), a state and a
// nonce; the state cookie is HttpOnly, scoped to the callback, SameSite
// Lax; the login page offers the button.
func TestSSOAuthorizationRequest(t *testing.T) {
	s := newSSOEnv(t, ssoPolicy)
	status, page := s.do("GET", "/", "", nil)
	if status != 200 || !contains(page, `href="/auth/login"`) || !contains(page, "Log in with Acme SSO") {
		t.Fatalf("login page %d has no SSO button:\n%s", status, page)
	}
	c := s.browserClient(func(*url.URL) bool { return true })
	resp, err := c.Get(s.srv.URL + "/auth/login")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc, err := resp.Location()
	if err != nil || !strings.HasPrefix(loc.String(), s.op.Issuer) {
		t.Fatalf("GET /auth/login: %d to %v", resp.StatusCode, loc)
	}
	q := loc.Query()
	for _, k := range []string{"state", "nonce", "code_challenge"} {
		if len(q.Get(k)) < 40 {
			t.Errorf("%s = %q, want a fresh random value", k, q.Get(k))
		}
	}
	if q.Get("code_challenge_method") != "S256" || q.Get("client_id") != ssoClientID || q.Get("response_type") != "code" {
		t.Errorf("authorization request %v", q)
	}
	var ck *http.Cookie
	for _, x := range resp.Cookies() {
		if x.Name == "gatehouse.sso" {
			ck = x
		}
	}
	if ck == nil || !ck.HttpOnly || ck.Path != "/auth/callback" || ck.SameSite != http.SameSiteLaxMode || ck.MaxAge <= 0 {
		t.Errorf("state cookie %+v", ck)
	}
	for _, k := range []string{q.Get("state"), q.Get("nonce")} {
		if strings.Contains(ck.Value, k) {
			t.Error("the state cookie carries the state or nonce in the clear")
		}
	}
}

// Logout ends the Gatehouse session and, since the provider advertises
// an end_session_endpoint, offers to log out there too; the provider
// sends the browser back to the login page.
func TestSSOLogoutOffersProviderLogout(t *testing.T) {
	s := newSSOEnv(t, ssoPolicy)
	c := s.browserClient(s.atCallback)
	if status, _ := s.finish(c, s.begin(c, "u-alice")); status != 200 {
		t.Fatal("login failed")
	}
	tok := s.session(c)
	resp, err := c.PostForm(s.srv.URL+"/logout", url.Values{})
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	_, _ = ioCopy(&b, resp)
	if resp.StatusCode != 200 || !strings.Contains(b.String(), "Also log out of Acme SSO") {
		t.Fatalf("logout: %d\n%s", resp.StatusCode, b.String())
	}
	if _, status := s.userinfo(tok); status != http.StatusUnauthorized {
		t.Errorf("session after logout: %d, want 401", status)
	}
	i := strings.Index(b.String(), `id="sso-logout" href="`)
	href := b.String()[i+len(`id="sso-logout" href="`):]
	href = strings.ReplaceAll(href[:strings.Index(href, `"`)], "&amp;", "&")
	if !strings.HasPrefix(href, s.op.Issuer) || !strings.Contains(href, "client_id="+ssoClientID) {
		t.Fatalf("provider logout link %q", href)
	}
	follow := s.browserClient(nil)
	resp, err = follow.Get(href)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.Request.URL.String() != s.srv.URL+"/" {
		t.Errorf("after the provider's logout the browser is at %s, want the login page", resp.Request.URL)
	}

	// A password user is not offered the provider's logout.
	c2 := s.browserClient(nil)
	if _, err := c2.PostForm(s.srv.URL+"/login", url.Values{"username": {"admin"}, "password": {adminPassword}}); err != nil {
		t.Fatal(err)
	}
	resp, err = c2.PostForm(s.srv.URL+"/logout", url.Values{})
	if err != nil {
		t.Fatal(err)
	}
	b.Reset()
	_, _ = ioCopy(&b, resp)
	if strings.Contains(b.String(), "sso-logout") {
		t.Error("a local user was offered the provider's logout")
	}
}

// The account's link to the provider (subject, sealed refresh token)
// never leaves the server; the env's cleanup checks the database file and
// the log for the provider's tokens, the client secret and the session.
func TestSSOLinkStaysInside(t *testing.T) {
	s := newSSOEnv(t, ssoPolicy)
	s.ssoLogin("u-alice")
	s.refresh(ssoInterval)
	// The leak check at cleanup looks for what the provider really sent.
	s.mu.Lock()
	var idTokens, refreshTokens int
	for _, x := range s.secrets {
		switch {
		case strings.HasPrefix(x, "eyJ") && strings.Count(x, ".") == 2:
			idTokens++
		case strings.HasPrefix(x, "rt-"):
			refreshTokens++
		}
	}
	s.mu.Unlock()
	if idTokens < 2 || refreshTokens < 2 {
		t.Errorf("remembered %d ID tokens and %d refresh tokens, want those of the login and the refresh", idTokens, refreshTokens)
	}
	var raw json.RawMessage
	s.call("GET", "/api/v1/account/alice@example.com", s.admin, nil, 200, &raw)
	for _, leak := range []string{"refresh\"", "\"sso\":", "subject", "u-alice"} {
		if strings.Contains(string(raw), leak) {
			t.Errorf("account JSON shows %q: %s", leak, raw)
		}
	}
}
