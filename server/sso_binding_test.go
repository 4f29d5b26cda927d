package server_test

import (
	"context"
	"encoding/json"
	"html"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/internal/loopback"
	"github.com/gatehouse/gatehouse/internal/testop"
	"github.com/gatehouse/gatehouse/server"
	"github.com/gatehouse/gatehouse/service"
	"github.com/gatehouse/gatehouse/store/sqlite"
)

// ssoAccounts lists the SSO accounts by name.
func (s *ssoEnv) ssoAccounts() []string {
	s.t.Helper()
	var all gatehouse.List[gatehouse.Account]
	s.call("GET", "/api/v1/account", s.admin, nil, 200, &all)
	var out []string
	for _, a := range all.Items {
		if a.Source == gatehouse.SourceSSO {
			out = append(out, a.Name)
		}
	}
	return out
}

// tryLogin logs user in through the provider in a fresh browser and
// returns the callback's status, page and session cookie ("" for none).
func (s *ssoEnv) tryLogin(user string) (int, string, string) {
	s.t.Helper()
	c := s.browserClient(s.atCallback)
	status, body := s.finish(c, s.begin(c, user))
	return status, body, s.session(c)
}

func (s *ssoEnv) groupsOf(account string) []string {
	s.t.Helper()
	var a gatehouse.Account
	s.call("GET", "/api/v1/account/"+account, s.admin, nil, 200, &a)
	return a.Groups
}

// An SSO account is bound to the provider's user (issuer, sub), not to
// the username the provider hands out: a new email for the same user is
// the same account, so an administrator's disabling is not undone by the
// provider renaming the user, and the same user never gets a second
// account.
func TestSSOAccountBoundToSubject(t *testing.T) {
	s := newSSOEnv(t, ssoPolicy)
	s.ssoLogin("u-alice")
	off, on := false, true
	s.call("PATCH", "/api/v1/account/alice@example.com", s.admin, gatehouse.AccountPatch{Enabled: &off}, 200, nil)

	// The provider gives the disabled user a new email: still refused.
	s.op.AddUser(testop.User{ID: "u-alice", Email: "alice2@example.com", EmailVerified: true, Groups: []string{"devs"}})
	if status, body, tok := s.tryLogin("u-alice"); status != http.StatusUnauthorized || tok != "" || !strings.Contains(body, "disabled") {
		t.Errorf("disabled user with a new email: %d, session %t; body %s", status, tok != "", body)
	}
	// Or no email at all (the username would be the sub): still refused.
	s.op.AddUser(testop.User{ID: "u-alice", Groups: []string{"devs"}})
	if status, _, tok := s.tryLogin("u-alice"); status != http.StatusUnauthorized || tok != "" {
		t.Errorf("disabled user without an email: %d, session %t", status, tok != "")
	}
	if got := s.ssoAccounts(); !slices.Equal(got, []string{"alice@example.com"}) {
		t.Fatalf("SSO accounts %v, want only alice@example.com", got)
	}

	// Enabled again: the same user logs in to the same account under
	// either name the provider gives.
	s.call("PATCH", "/api/v1/account/alice@example.com", s.admin, gatehouse.AccountPatch{Enabled: &on}, 200, nil)
	for _, email := range []string{"", "alice2@example.com"} {
		s.op.AddUser(testop.User{ID: "u-alice", Email: email, EmailVerified: true, Groups: []string{"devs"}})
		tok := s.ssoLogin("u-alice")
		if info, _ := s.userinfo(tok); info.Username != "alice@example.com" {
			t.Errorf("with email %q the login is %q, want alice@example.com", email, info.Username)
		}
	}
	if got := s.ssoAccounts(); !slices.Equal(got, []string{"alice@example.com"}) {
		t.Errorf("SSO accounts %v, want only alice@example.com", got)
	}

	// The old name given to another user of the provider is not theirs.
	s.op.AddUser(testop.User{ID: "u-mallory", Email: "alice@example.com", EmailVerified: true})
	if status, _, tok := s.tryLogin("u-mallory"); status != http.StatusConflict || tok != "" {
		t.Errorf("another user with alice's old email: %d, session %t", status, tok != "")
	}
}

// A username that must come from the userinfo endpoint is never
// replaced by the subject when that endpoint fails: the login is refused.
func TestSSOUserinfoFailureRefusesLogin(t *testing.T) {
	s := newSSOEnv(t, ssoPolicy)
	s.op.AddUser(testop.User{ID: "u-bob", Email: "bob@example.com", EmailVerified: true, Groups: []string{"devs"}})
	s.op.SetTamper(testop.Tamper{EmailInUserinfoOnly: true, UserinfoDown: true})
	if status, body, tok := s.tryLogin("u-bob"); status/100 == 2 || tok != "" {
		t.Errorf("userinfo down: %d, session %t; body %s", status, tok != "", body)
	}
	if got := s.ssoAccounts(); len(got) != 0 {
		t.Errorf("userinfo down: SSO accounts %v, want none", got)
	}
	// With the endpoint up, the username comes from it.
	s.op.SetTamper(testop.Tamper{EmailInUserinfoOnly: true})
	tok := s.ssoLogin("u-bob")
	if info, _ := s.userinfo(tok); info.Username != "bob@example.com" {
		t.Errorf("username from userinfo = %q", info.Username)
	}
}

// An ID token's email without email_verified is not vouched for by the
// userinfo endpoint's email_verified when userinfo gives another address:
// the flag is about the address beside it. A user whose verified address
// is mallory's, and whose ID token carries alice's (unverified), does not
// become alice@example.com.
func TestSSOUserinfoVerifiesOnlyItsOwnEmail(t *testing.T) {
	s := newSSOEnv(t, ssoPolicy)
	s.op.AddUser(testop.User{ID: "u-mallory", Email: "mallory@example.com", EmailVerified: true, Groups: []string{"devs"}})
	s.op.SetTamper(testop.Tamper{IDTokenEmail: "alice@example.com"})
	status, body, tok := s.tryLogin("u-mallory")
	if got := s.ssoAccounts(); slices.Contains(got, "alice@example.com") || tok != "" {
		t.Errorf("ID token email alice (unverified), userinfo mallory (verified): %d, session %t, SSO accounts %v; body %s", status, tok != "", got, body)
	}
}

// A provider's group named like an account that is created later is
// taken from every SSO account that has it in the same write, so the
// policy's lines about the new account do not reach them.
func TestSSOGroupNamedLikeNewAccount(t *testing.T) {
	s := newSSOEnv(t, ssoPolicy+"\np, carol, applications, sync, web/*, allow")
	s.op.AddUser(testop.User{ID: "u-bob", Email: "bob@example.com", EmailVerified: true, Groups: []string{"devs", "carol", "dave@example.com"}})
	bob := s.ssoLogin("u-bob")
	if got := s.groupsOf("bob@example.com"); !slices.Equal(got, []string{"carol", "dave@example.com", "devs"}) {
		t.Fatalf("bob's groups %v", got)
	}

	// A local account named carol: bob loses the group at once, not at
	// his next refresh.
	s.createUser("carol")
	if got := s.groupsOf("bob@example.com"); !slices.Equal(got, []string{"dave@example.com", "devs"}) {
		t.Errorf("after creating carol, bob's groups %v", got)
	}
	if got := s.canI(bob, "applications", "sync", "web/shop"); got != "no" {
		t.Errorf("bob can-i sync (carol's line) = %s, want no", got)
	}
	// An SSO account named dave@example.com, by dave's first login.
	s.op.AddUser(testop.User{ID: "u-dave", Email: "dave@example.com", EmailVerified: true})
	s.ssoLogin("u-dave")
	if got := s.groupsOf("bob@example.com"); !slices.Equal(got, []string{"devs"}) {
		t.Errorf("after dave's first login, bob's groups %v", got)
	}
	var events gatehouse.List[gatehouse.Event]
	s.call("GET", "/api/v1/audit?type="+gatehouse.EventSSOGroupsChanged, s.admin, nil, 200, &events)
	if len(events.Items) != 2 {
		t.Errorf("%d groups-changed events, want 2: %+v", len(events.Items), events.Items)
	}
	// And a refresh keeps them out.
	s.refresh(ssoInterval)
	if got := s.groupsOf("bob@example.com"); !slices.Equal(got, []string{"devs"}) {
		t.Errorf("after a refresh, bob's groups %v", got)
	}
}

// A first SSO login does not create an account the policy already names
// (here the group devs): the user would inherit the group's roles.
func TestSSOUsernameBoundByPolicy(t *testing.T) {
	s := newSSOEnv(t, ssoPolicy)
	s.op.AddUser(testop.User{ID: "devs"}) // no email: the username is the sub
	status, body, tok := s.tryLogin("devs")
	if status != http.StatusConflict || tok != "" || !strings.Contains(body, "policy") {
		t.Errorf("username the policy binds: %d, session %t; body %s", status, tok != "", body)
	}
	if status, _ := s.do("GET", "/api/v1/account/devs", s.admin, nil); status != http.StatusNotFound {
		t.Errorf("the account devs was created: %d", status)
	}
	var events gatehouse.List[gatehouse.Event]
	s.call("GET", "/api/v1/audit?type="+gatehouse.EventSSOLoginRefused, s.admin, nil, 200, &events)
	if len(events.Items) != 1 || events.Items[0].Object != "devs" {
		t.Errorf("refused-login events %+v", events.Items)
	}
}

// An email is a username only if the provider says it verified it:
// boolean true or the string "true" (Cognito), nothing else.
func TestSSOEmailVerifiedShapes(t *testing.T) {
	s := newSSOEnv(t, ssoPolicy)
	cases := []struct {
		name string
		user testop.User
		ok   bool
	}{
		{"bool true", testop.User{EmailVerified: true}, true},
		{"string true", testop.User{EmailVerifiedClaim: "true"}, true},
		{"string TRUE", testop.User{EmailVerifiedClaim: "TRUE"}, true},
		{"bool false", testop.User{EmailVerified: false}, false},
		{"string false", testop.User{EmailVerifiedClaim: "false"}, false},
		{"number 1", testop.User{EmailVerifiedClaim: 1}, false},
		{"number 0", testop.User{EmailVerifiedClaim: 0}, false},
		{"string yes", testop.User{EmailVerifiedClaim: "yes"}, false},
		{"missing", testop.User{OmitEmailVerified: true}, false},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			u := tc.user
			u.ID, u.Email = "u-"+strconv.Itoa(i), "user"+strconv.Itoa(i)+"@example.com"
			s.op.AddUser(u)
			status, body, tok := s.tryLogin(u.ID)
			if tc.ok != (status == http.StatusOK && tok != "") {
				t.Errorf("status %d, session %t, want ok %t; body %s", status, tok != "", tc.ok, body)
			}
			if !tc.ok {
				if status, _ := s.do("GET", "/api/v1/account/"+u.Email, s.admin, nil); status != http.StatusNotFound {
					t.Errorf("an unverified email became an account: %d", status)
				}
			}
		})
	}
}

// With an https redirect URL the state cookie is __Host-gatehouse.sso
// (Secure, Path=/, no Domain), which a sibling subdomain cannot set; a
// cookie under the unprefixed name is not read.
func TestSSOStateCookieHostPrefix(t *testing.T) {
	const public = "https://gatehouse.example"
	s := newSSOEnv(t, ssoPolicy, func(o *ssoOptions) { o.RedirectURL = public + "/auth/callback" })
	s.op.SetRedirectURIs([]string{public + "/auth/callback"}, nil)
	s.op.AutoLogin("u-alice")

	c := s.browserClient(func(u *url.URL) bool {
		return u.Host == "gatehouse.example" || strings.HasPrefix(u.String(), s.op.Issuer)
	})
	resp, err := c.Get(s.srv.URL + "/auth/login")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	var ck *http.Cookie
	for _, x := range resp.Cookies() {
		if strings.Contains(x.Name, "gatehouse.sso") {
			if ck != nil {
				t.Errorf("two state cookies: %s and %s", ck.Name, x.Name)
			}
			ck = x
		}
	}
	if ck == nil || ck.Name != "__Host-gatehouse.sso" || !ck.Secure || ck.Path != "/" || ck.Domain != "" ||
		!ck.HttpOnly || ck.SameSite != http.SameSiteLaxMode || ck.MaxAge <= 0 {
		t.Fatalf("state cookie %+v", ck)
	}

	// The provider's answer, brought to this server by hand (the
	// browser would go to gatehouse.example).
	auth, err := resp.Location()
	if err != nil {
		t.Fatal(err)
	}
	resp, err = c.Get(auth.String())
	for err == nil && resp.StatusCode/100 == 3 {
		resp.Body.Close()
		loc, _ := resp.Location()
		if loc.Host == "gatehouse.example" {
			break
		}
		resp, err = c.Get(loc.String())
	}
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	cb, _ := resp.Location()
	if cb == nil || cb.Host != "gatehouse.example" {
		t.Fatalf("the provider did not send the browser back: %d %v", resp.StatusCode, cb)
	}
	callback := s.srv.URL + cb.RequestURI()
	try := func(cookie string) int {
		req, _ := http.NewRequest("GET", callback, nil)
		req.Header.Set("Cookie", cookie+"="+ck.Value)
		r, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		r.Body.Close()
		for _, x := range r.Cookies() {
			if x.Name == server.CookieName {
				s.remember(x.Value)
			}
		}
		return r.StatusCode
	}
	if got := try("gatehouse.sso"); got != http.StatusUnauthorized {
		t.Errorf("callback with the unprefixed cookie: %d, want 401", got)
	}
	if got := try("__Host-gatehouse.sso"); got != http.StatusOK {
		t.Errorf("callback with the __Host- cookie: %d, want 200", got)
	}
}

var cliLink = regexp.MustCompile(`id="cli-open" href="([^"]+)"`)

// cliBrowser starts a CLI login (as the link a CLI, or an attacker,
// makes) in a fresh browser as user, and returns the browser and the page
// the callback shows.
func (s *ssoEnv) cliBrowser(user string, port int, key string) (*http.Client, int, string) {
	s.t.Helper()
	s.op.AutoLogin(user)
	c := s.browserClient(func(u *url.URL) bool { return u.Hostname() == "127.0.0.1" && u.Port() == strconv.Itoa(port) })
	resp, err := c.Get(s.srv.URL + "/auth/login?" + url.Values{"cli_port": {strconv.Itoa(port)}, "cli_key": {key}}.Encode())
	if err != nil {
		s.t.Fatal(err)
	}
	var b strings.Builder
	_, _ = ioCopy(&b, resp)
	return c, resp.StatusCode, b.String()
}

// postCLI submits the consent form in browser c.
func (s *ssoEnv) postCLI(c *http.Client, op string, header ...string) (int, string) {
	s.t.Helper()
	req, _ := http.NewRequest("POST", s.srv.URL+"/auth/cli", strings.NewReader(url.Values{"op": {op}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	var b strings.Builder
	_, _ = ioCopy(&b, resp)
	return resp.StatusCode, b.String()
}

// A CLI login asks the browser's user to confirm before the session is
// sealed to the CLI's key: a link with someone else's key no longer
// mints the victim's session silently. Continue (a same-origin POST)
// hands the session to the loopback address; Cancel and a cross-site
// POST hand nothing.
func TestSSOCLILoginNeedsConsent(t *testing.T) {
	s := newSSOEnv(t, ssoPolicy)
	key, err := loopback.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	const port = 45678
	countLogins := func() int {
		var events gatehouse.List[gatehouse.Event]
		s.call("GET", "/api/v1/audit?type="+gatehouse.EventLoginSucceeded, s.admin, nil, 200, &events)
		n := 0
		for _, e := range events.Items {
			if e.Actor == "alice@example.com" {
				n++
			}
		}
		return n
	}

	c, status, page := s.cliBrowser("u-alice", port, key.Public())
	if status != http.StatusOK || !strings.Contains(html.UnescapeString(page), "Log in the Gatehouse CLI on this computer as alice@example.com?") ||
		!strings.Contains(page, `action="/auth/cli"`) || strings.Contains(page, "127.0.0.1:"+strconv.Itoa(port)+"/callback") {
		t.Fatalf("callback of a CLI login: %d\n%s", status, page)
	}
	if n := countLogins(); n != 0 {
		t.Errorf("%d logins before the user confirmed", n)
	}
	// A cross-site form cannot confirm it.
	if status, _ := s.postCLI(c, "continue", "Origin", "https://evil.example", "Sec-Fetch-Site", "cross-site"); status != http.StatusForbidden {
		t.Errorf("cross-site confirmation: %d, want 403", status)
	}
	status, page = s.postCLI(c, "continue")
	m := cliLink.FindStringSubmatch(page)
	if status != http.StatusOK || m == nil {
		t.Fatalf("continue: %d\n%s", status, page)
	}
	to, err := url.Parse(html.UnescapeString(m[1]))
	if err != nil || to.Scheme != "http" || to.Host != "127.0.0.1:"+strconv.Itoa(port) || to.Path != "/callback" {
		t.Fatalf("continue leads to %q", m[1])
	}
	plain, err := key.Open(to.Query().Get("result"))
	if err != nil {
		t.Fatal(err)
	}
	var nt gatehouse.NewToken
	if err := json.Unmarshal(plain, &nt); err != nil {
		t.Fatal(err)
	}
	s.remember(nt.Token)
	if info, status := s.userinfo(nt.Token); status != 200 || info.Username != "alice@example.com" {
		t.Errorf("the CLI's session: %+v %d", info, status)
	}
	if n := countLogins(); n != 1 {
		t.Errorf("%d logins after confirming, want 1", n)
	}
	// The confirmation is spent.
	if status, page := s.postCLI(c, "continue"); status == http.StatusOK || cliLink.MatchString(page) {
		t.Errorf("a second confirmation: %d", status)
	}

	// Cancel: nothing goes to the loopback, no session.
	c, status, _ = s.cliBrowser("u-alice", port, key.Public())
	if status != http.StatusOK {
		t.Fatalf("second CLI login: %d", status)
	}
	status, page = s.postCLI(c, "cancel")
	if status != http.StatusOK || cliLink.MatchString(page) || !strings.Contains(page, "cancelled") {
		t.Errorf("cancel: %d\n%s", status, page)
	}
	if status, page := s.postCLI(c, "continue"); status == http.StatusOK || cliLink.MatchString(page) {
		t.Errorf("continue after cancel: %d", status)
	}
	if n := countLogins(); n != 1 {
		t.Errorf("%d logins after cancelling, want 1", n)
	}
}

// A CLI login's confirmation is answered once, on any replica: clearing
// its cookie spends it only in the browser that answered, so the answer
// is recorded in the store, and a copy of the cookie (taken before the
// user pressed Continue or Cancel) is refused (401) whether it asks to
// continue or to cancel, through this server or another on the same
// database. An answer the account refuses is recorded too.
func TestSSOCLIConfirmationAnsweredOnce(t *testing.T) {
	s := newSSOEnv(t, ssoPolicy)
	key, err := loopback.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	const port = 45679
	// pending starts a CLI login and returns its browser and a copy of
	// its confirmation cookie.
	pending := func() (*http.Client, *http.Cookie) {
		t.Helper()
		c, status, _ := s.cliBrowser("u-alice", port, key.Public())
		if status != http.StatusOK {
			t.Fatalf("callback of a CLI login: %d", status)
		}
		u, _ := url.Parse(s.srv.URL + "/auth/cli")
		for _, ck := range c.Jar.Cookies(u) {
			if strings.Contains(ck.Name, "sso-cli") {
				s.remember(ck.Value)
				return c, &http.Cookie{Name: ck.Name, Value: ck.Value, Path: "/auth/cli"}
			}
		}
		t.Fatal("no confirmation cookie")
		return nil, nil
	}
	// replay answers op with a copy of the cookie, in another browser,
	// at the server at base.
	replay := func(base string, copied *http.Cookie, op string) (int, string) {
		t.Helper()
		c := s.browserClient(nil)
		u, _ := url.Parse(base + "/auth/cli")
		c.Jar.SetCookies(u, []*http.Cookie{copied})
		resp, err := c.PostForm(base+"/auth/cli", url.Values{"op": {op}})
		if err != nil {
			t.Fatal(err)
		}
		var b strings.Builder
		_, _ = ioCopy(&b, resp)
		return resp.StatusCode, b.String()
	}
	refused := func(what string, status int, page string) {
		t.Helper()
		if status != http.StatusUnauthorized || cliLink.MatchString(page) || !strings.Contains(page, "already answered") {
			t.Errorf("%s: %d, want 401 saying it was already answered, no link", what, status)
		}
	}
	cliLogins := func() int {
		var events gatehouse.List[gatehouse.Event]
		s.call("GET", "/api/v1/audit?type="+gatehouse.EventLoginSucceeded, s.admin, nil, 200, &events)
		n := 0
		for _, e := range events.Items {
			if e.Actor == "alice@example.com" && e.Detail == "sso (cli)" {
				n++
			}
		}
		return n
	}

	// Continue, then a copy continues or cancels.
	c, copied := pending()
	if status, page := s.postCLI(c, "continue"); status != http.StatusOK || !cliLink.MatchString(page) {
		t.Fatalf("continue: %d", status)
	}
	status, page := replay(s.srv.URL, copied, "continue")
	refused("a copy continuing after Continue", status, page)
	status, page = replay(s.srv.URL, copied, "cancel")
	refused("a copy cancelling after Continue", status, page)

	// Cancel, then a copy continues or cancels.
	c, copied = pending()
	if status, page := s.postCLI(c, "cancel"); status != http.StatusOK || !strings.Contains(page, "cancelled") {
		t.Fatalf("cancel: %d", status)
	}
	status, page = replay(s.srv.URL, copied, "continue")
	refused("a copy continuing after Cancel", status, page)
	status, page = replay(s.srv.URL, copied, "cancel")
	refused("a copy cancelling after Cancel", status, page)
	if n := cliLogins(); n != 1 {
		t.Errorf("%d CLI logins, want 1 (the first Continue's)", n)
	}

	// Another replica on the same database refuses a copy too.
	st, err := sqlite.Open(context.Background(), s.dbPath)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	log := slog.New(slog.NewJSONHandler(s.logs, nil))
	opts := s.replicaOptions(st)
	opts.Logger = log
	other, err := service.New(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	replica := httptest.NewServer(server.New(server.Options{Service: other, Logger: log}))
	defer replica.Close()
	c, copied = pending()
	if status, page := s.postCLI(c, "continue"); status != http.StatusOK || !cliLink.MatchString(page) {
		t.Fatalf("continue: %d", status)
	}
	status, page = replay(replica.URL, copied, "continue")
	refused("a copy continuing at another replica", status, page)

	// Continue refused because the account is disabled: the copy stays
	// refused once an administrator enables it again.
	c, copied = pending()
	off, on := false, true
	s.call("PATCH", "/api/v1/account/alice@example.com", s.admin, gatehouse.AccountPatch{Enabled: &off}, 200, nil)
	if status, page := s.postCLI(c, "continue"); status != http.StatusUnauthorized || !strings.Contains(page, "disabled") {
		t.Fatalf("continue of a disabled account: %d", status)
	}
	s.call("PATCH", "/api/v1/account/alice@example.com", s.admin, gatehouse.AccountPatch{Enabled: &on}, 200, nil)
	status, page = replay(s.srv.URL, copied, "continue")
	refused("a copy continuing after a refused Continue", status, page)
	if n := cliLogins(); n != 2 {
		t.Errorf("%d CLI logins, want 2 (the two Continues that were not refused)", n)
	}
}
