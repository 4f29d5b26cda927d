package server_test

import (
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/server"
)

// fromEvilSite are the headers of a form posted from another site: the
// dashboard's CSRF guard (the global cross-origin protection) refuses it.
var fromEvilSite = []string{"Origin", "https://evil.example", "Sec-Fetch-Site", "cross-site"}

// accountStatus is the API's status for GET /api/v1/account/name.
func (e *env) accountStatus(name string) int {
	e.t.Helper()
	return e.status("GET", "/api/v1/account/"+name, e.admin, nil)
}

// canLogIn reports whether user logs in with password through the API.
func (e *env) canLogIn(user, password string) bool {
	e.t.Helper()
	return e.status("POST", "/api/v1/session", "", gatehouse.LoginRequest{Username: user, Password: password}) == http.StatusOK
}

func userForm(name, password, again string, caps ...string) url.Values {
	return url.Values{"name": {name}, "password": {password}, "password_again": {again}, "capability": caps}
}

func TestDashboardUserCreate(t *testing.T) {
	t.Parallel()
	e := newDashEnv(t, withPolicy("p, creator, accounts, create, *, allow\np, creator, accounts, get, *, allow", ""))
	e.createUser("alice")
	e.createUser("creator")
	e.remember("carol-password-1", "dave-password-1", "dave-password-2", "erin-password-1", "frank-password-1")
	w := newWeb(t, e)
	w.login("admin", adminPassword)

	if list := w.get("/accounts"); !strings.Contains(list.body, `href="/users/new"`) {
		t.Errorf("the accounts page offers no Create local user")
	}
	form := w.get("/users/new")
	for _, want := range []string{`<form method="post" action="/users/new"`, `<label for="user-password">Password</label>`,
		`<label for="user-password-again">Password again</label>`, `id="cap-login" name="capability" type="checkbox" value="login" checked`} {
		if form.status != 200 || !strings.Contains(form.body, want) {
			t.Errorf("the form (%d) lacks %q", form.status, want)
		}
	}

	for _, tc := range []struct {
		name   string
		web    *web
		form   url.Values
		hdr    []string
		status int
		want   string
	}{
		{"fail/passwords differ", w, userForm("dave", "dave-password-1", "dave-password-2", "login"), nil, 400, "The two passwords differ"},
		{"fail/password too short", w, userForm("dave", "short", "short", "login"), nil, 400, "password must be 8 to 72 bytes long"},
		{"fail/login without a password", w, userForm("dave", "", "", "login"), nil, 400, "an account with the login capability needs a password"},
		{"fail/bad name", w, userForm("Dave!", "dave-password-1", "dave-password-1", "login"), nil, 400, "account name must be"},
		{"fail/unknown capability", w, userForm("dave", "dave-password-1", "dave-password-1", "root"), nil, 400, `unknown capability`},
		{"fail/name taken", w, userForm("alice", "dave-password-1", "dave-password-1", "login"), nil, 409, `account &#34;alice&#34; already exists`},
		{"fail/not allowed", webAs(t, e, "alice"), userForm("dave", "dave-password-1", "dave-password-1", "login"), nil, 403, "permission denied"},
		{"fail/groups need the policy right", webAs(t, e, "creator"), url.Values{"name": {"dave"}, "password": {"dave-password-1"}, "password_again": {"dave-password-1"}, "capability": {"login"}, "groups": {"devs"}}, nil, 403, "settings, update, rbac"},
		{"fail/cross-site", w, userForm("dave", "dave-password-1", "dave-password-1", "login"), fromEvilSite, 403, "cross-origin request refused"},
	} {
		r := tc.web.post("/users/new", tc.form, tc.hdr...)
		if r.status != tc.status || !strings.Contains(r.body, tc.want) {
			t.Errorf("%s: %d, want %d with %q\n%s", tc.name, r.status, tc.status, tc.want, r.body)
		}
		if strings.Contains(r.body, "dave-password-1") {
			t.Errorf("%s: the page shows the password back", tc.name)
		}
		if got := e.accountStatus("dave"); got != http.StatusNotFound {
			t.Fatalf("%s: dave exists after a refused form (%d)", tc.name, got)
		}
	}

	// Created: with its password and capabilities, through the service
	// the API uses, recorded as the API's creation is.
	w.wantRedirect(w.post("/users/new", userForm("carol", "carol-password-1", "carol-password-1", "login")), "/accounts/carol?notice=user-created")
	page := w.get("/accounts/carol?notice=user-created")
	if !strings.Contains(page.body, "Local user created.") || !strings.Contains(page.body, `href="/accounts/carol/password"`) {
		t.Errorf("carol's page:\n%s", page.body)
	}
	var carol gatehouse.Account
	e.call("GET", "/api/v1/account/carol", e.admin, nil, 200, &carol)
	if !slices.Equal(carol.Capabilities, []gatehouse.Capability{gatehouse.CapLogin}) || carol.Source != gatehouse.SourceLocal || !carol.Enabled {
		t.Errorf("carol = %+v, want a local user with login only", carol)
	}
	if !e.canLogIn("carol", "carol-password-1") {
		t.Error("carol cannot log in with the password she was created with")
	}
	e.call("POST", "/api/v1/account", e.admin, gatehouse.AccountCreate{Name: "erin", Password: "erin-password-1",
		Capabilities: []gatehouse.Capability{gatehouse.CapLogin}}, 200, nil)
	byForm, byAPI := creationEvent(t, e, "carol"), creationEvent(t, e, "erin")
	byForm.ID, byForm.Time, byForm.Object, byForm.Account, byForm.TokenID = byAPI.ID, byAPI.Time, "erin", "erin", byAPI.TokenID
	if byForm != byAPI {
		t.Errorf("the form's creation event %+v differs from the API's %+v", byForm, byAPI)
	}

	// Both capabilities, and a service account with a password.
	w.wantRedirect(w.post("/users/new", userForm("frank", "frank-password-1", "frank-password-1", "login", "apiKey")), "/accounts/frank?notice=user-created")
	var frank gatehouse.Account
	e.call("GET", "/api/v1/account/frank", e.admin, nil, 200, &frank)
	if !slices.Equal(frank.Capabilities, []gatehouse.Capability{gatehouse.CapLogin, gatehouse.CapAPIKey}) {
		t.Errorf("frank's capabilities %v", frank.Capabilities)
	}
	// The creator may create accounts without groups.
	c := webAs(t, e, "creator")
	c.wantRedirect(c.post("/users/new", userForm("dave", "dave-password-1", "dave-password-1", "login")), "/accounts/dave?notice=user-created")
}

// creationEvent is the account.changed event of account's creation.
func creationEvent(t *testing.T, e *env, account string) gatehouse.Event {
	t.Helper()
	var list gatehouse.List[gatehouse.Event]
	e.call("GET", "/api/v1/audit?type=account.changed&account="+account, e.admin, nil, 200, &list)
	if len(list.Items) != 1 {
		t.Fatalf("%d account.changed events about %s, want 1", len(list.Items), account)
	}
	return list.Items[0]
}

// webAs is a browser logged in as user (password user-password).
func webAs(t *testing.T, e *env, user string) *web {
	t.Helper()
	w := newWeb(t, e)
	w.login(user, user+"-password")
	return w
}

func TestDashboardPasswordSetByAdmin(t *testing.T) {
	t.Parallel()
	e := newDashEnv(t, withPolicy("g, reader, role:readonly", ""))
	e.createUser("alice")
	e.createUser("bob")
	e.createUser("reader")
	e.remember("alice-new-password", "alice-new-passw0rd", "not-the-admin-password")
	session := e.login("alice", "alice-password")
	apiTok := e.mint(session, "alice", gatehouse.TokenRequest{Name: "ci"})
	w := newWeb(t, e)
	w.login("admin", adminPassword)

	form := w.get("/accounts/alice/password")
	for _, want := range []string{`action="/accounts/alice/password"`, "logs out every session of alice", "Its API tokens keep working",
		`<label for="current-password">Your own current password</label>`, `<label for="new-password-again">New password again</label>`} {
		if form.status != 200 || !strings.Contains(form.body, want) {
			t.Errorf("the form (%d) lacks %q", form.status, want)
		}
	}
	if r := w.get("/accounts/admin/password"); r.status != http.StatusSeeOther || r.location != "/user-info/password" {
		t.Errorf("one's own account: %d to %q, want the Change password page", r.status, r.location)
	}

	set := func(newPw, again, current string) url.Values {
		return url.Values{"new_password": {newPw}, "new_password_again": {again}, "current_password": {current}}
	}
	for _, tc := range []struct {
		name   string
		web    *web
		form   url.Values
		hdr    []string
		status int
		want   string
	}{
		{"fail/passwords differ", w, set("alice-new-password", "alice-new-passw0rd", adminPassword), nil, 400, "The two new passwords differ"},
		{"fail/too short", w, set("short", "short", adminPassword), nil, 400, "password must be 8 to 72 bytes long"},
		{"fail/wrong own password", w, set("alice-new-password", "alice-new-password", "not-the-admin-password"), nil, 401, "Your current password is wrong."},
		{"fail/may only read", webAs(t, e, "reader"), set("alice-new-password", "alice-new-password", "reader-password"), nil, 403, "permission denied"},
		{"fail/may not see alice", webAs(t, e, "bob"), set("alice-new-password", "alice-new-password", "bob-password"), nil, 403, "permission denied"},
		{"fail/cross-site", w, set("alice-new-password", "alice-new-password", adminPassword), fromEvilSite, 403, "cross-origin request refused"},
	} {
		r := tc.web.post("/accounts/alice/password", tc.form, tc.hdr...)
		if r.status != tc.status || !strings.Contains(r.body, tc.want) {
			t.Errorf("%s: %d, want %d with %q\n%s", tc.name, r.status, tc.status, tc.want, r.body)
		}
		if strings.Contains(r.body, "alice-new-password") || strings.Contains(r.body, adminPassword) {
			t.Errorf("%s: the page shows a password back", tc.name)
		}
		if !e.canLogIn("alice", "alice-password") || e.status("GET", "/api/v1/session/userinfo", session, nil) != 200 {
			t.Fatalf("%s: alice's password or session changed", tc.name)
		}
	}
	if r := webAs(t, e, "reader").get("/accounts/alice/password"); r.status != 200 || strings.Contains(r.body, "<form method=\"post\" action=\"/accounts/alice/password\"") {
		t.Errorf("reader's page: %d, offers the form %v", r.status, strings.Contains(r.body, "action=\"/accounts/alice/password\""))
	}

	w.wantRedirect(w.post("/accounts/alice/password", set("alice-new-password", "alice-new-password", adminPassword)), "/accounts/alice?notice=password-set")
	if got := w.get("/accounts/alice?notice=password-set"); !strings.Contains(got.body, "Password set. Every session of the account was ended; its API tokens keep working.") {
		t.Errorf("no notice after setting the password")
	}
	if e.canLogIn("alice", "alice-password") || !e.canLogIn("alice", "alice-new-password") {
		t.Error("alice's password did not change")
	}
	if s := e.status("GET", "/api/v1/session/userinfo", session, nil); s != http.StatusUnauthorized {
		t.Errorf("alice's session after the reset: %d, want 401 (as the API's password change does)", s)
	}
	if s := e.status("GET", "/api/v1/session/userinfo", apiTok.Token, nil); s != 200 {
		t.Errorf("alice's API token after the reset: %d, want 200", s)
	}
	if s := e.status("GET", "/api/v1/session/userinfo", w.cookie(server.CookieName, "/"), nil); s != 200 {
		t.Errorf("the admin's own session after the reset: %d, want 200", s)
	}
	var list gatehouse.List[gatehouse.Event]
	e.call("GET", "/api/v1/audit?account=alice&type=account.changed", e.admin, nil, 200, &list)
	if len(list.Items) == 0 || list.Items[0].Detail != "password changed" || list.Items[0].Actor != "admin" {
		t.Errorf("the reset's audit event: %+v", list.Items)
	}
}

func TestDashboardPasswordChangeOwn(t *testing.T) {
	t.Parallel()
	e := newDashEnv(t)
	e.createUser("alice")
	e.remember("alice-new-password", "alice-new-passwordx", "not-alice-password")
	other := e.login("alice", "alice-password") // another session: a CLI login
	apiTok := e.mint(other, "alice", gatehouse.TokenRequest{Name: "ci"})
	w := webAs(t, e, "alice")

	if r := w.get("/user-info"); !strings.Contains(r.body, `href="/user-info/password"`) {
		t.Error("the user menu has no Change password")
	}
	form := w.get("/user-info/password")
	for _, want := range []string{`action="/user-info/password"`, "logs out every other session of yours", "This session stays logged in, and your API tokens keep working.",
		`<label for="current-password">Current password</label>`, `<label for="new-password">New password</label>`, `<label for="new-password-again">New password again</label>`} {
		if form.status != 200 || !strings.Contains(form.body, want) {
			t.Errorf("the form (%d) lacks %q", form.status, want)
		}
	}
	change := func(current, newPw, again string) url.Values {
		return url.Values{"current_password": {current}, "new_password": {newPw}, "new_password_again": {again}}
	}
	for _, tc := range []struct {
		name   string
		form   url.Values
		hdr    []string
		status int
		want   string
	}{
		{"fail/passwords differ", change("alice-password", "alice-new-password", "alice-new-passwordx"), nil, 400, "The two new passwords differ"},
		{"fail/wrong current password", change("not-alice-password", "alice-new-password", "alice-new-password"), nil, 401, "Your current password is wrong."},
		{"fail/too long", change("alice-password", strings.Repeat("x", 73), strings.Repeat("x", 73)), nil, 400, "password must be 8 to 72 bytes long"},
		{"fail/cross-site", change("alice-password", "alice-new-password", "alice-new-password"), fromEvilSite, 403, "cross-origin request refused"},
	} {
		r := w.post("/user-info/password", tc.form, tc.hdr...)
		if r.status != tc.status || !strings.Contains(r.body, tc.want) {
			t.Errorf("%s: %d, want %d with %q\n%s", tc.name, r.status, tc.status, tc.want, r.body)
		}
		if strings.Contains(r.body, "alice-new-password") || strings.Contains(r.body, "value=\"alice-password\"") {
			t.Errorf("%s: the page shows a password back", tc.name)
		}
		if !e.canLogIn("alice", "alice-password") || e.status("GET", "/api/v1/session/userinfo", other, nil) != 200 {
			t.Fatalf("%s: alice's password or other session changed", tc.name)
		}
	}

	w.wantRedirect(w.post("/user-info/password", change("alice-password", "alice-new-password", "alice-new-password")), "/user-info?notice=password-changed")
	if r := w.get("/user-info?notice=password-changed"); r.status != 200 || !strings.Contains(r.body, "Password changed. Your other sessions were ended; this one and your API tokens keep working.") {
		t.Errorf("after the change: %d\n%s", r.status, r.body)
	}
	if s := e.status("GET", "/api/v1/session/userinfo", other, nil); s != http.StatusUnauthorized {
		t.Errorf("alice's other session: %d, want 401", s)
	}
	if s := e.status("GET", "/api/v1/session/userinfo", apiTok.Token, nil); s != 200 {
		t.Errorf("alice's API token: %d, want 200", s)
	}
	if e.canLogIn("alice", "alice-password") || !e.canLogIn("alice", "alice-new-password") {
		t.Error("the password did not change")
	}
}

// SSO accounts have no password: the pages say so, and the service's
// refusal of a form posted anyway is what the page shows.
func TestDashboardPasswordSSOAccount(t *testing.T) {
	t.Parallel()
	s := newSSOEnv(t, ssoPolicy)
	tok := s.ssoLogin("u-alice")
	s.remember("a-new-password")
	const name = "alice@example.com"
	w := newWeb(t, s.env)
	w.login("admin", adminPassword)
	if r := w.get("/accounts/" + name); !strings.Contains(r.body, "none: logs in through single sign-on") || strings.Contains(r.body, `href="/accounts/`+name+`/password"`) {
		t.Errorf("the SSO account's page offers a password")
	}
	r := w.get("/accounts/" + name + "/password")
	if r.status != 200 || !strings.Contains(r.body, "logs in through single sign-on: it has no password here") || strings.Contains(r.body, "<form method=\"post\" action=\"/accounts/") {
		t.Errorf("the Set password page of an SSO account: %d\n%s", r.status, r.body)
	}
	r = w.post("/accounts/"+name+"/password", url.Values{"new_password": {"a-new-password"}, "new_password_again": {"a-new-password"}, "current_password": {adminPassword}})
	if r.status != http.StatusPreconditionFailed || !strings.Contains(r.body, "has no password: it logs in through the identity provider") {
		t.Errorf("setting an SSO account's password: %d\n%s", r.status, r.body)
	}

	// The SSO user's own page.
	a := newWeb(t, s.env)
	u, _ := url.Parse(s.srv.URL)
	a.c.Jar.SetCookies(u, []*http.Cookie{{Name: server.CookieName, Value: tok, Path: "/"}})
	own := a.get("/user-info/password")
	if own.status != 200 || !strings.Contains(own.body, "Your account logs in through single sign-on") || strings.Contains(own.body, `name="new_password"`) {
		t.Errorf("an SSO user's Change password page: %d\n%s", own.status, own.body)
	}
	if r := a.post("/user-info/password", url.Values{"current_password": {""}, "new_password": {"a-new-password"}, "new_password_again": {"a-new-password"}}); r.status != http.StatusUnauthorized {
		t.Errorf("an SSO user setting a password: %d, want the service's 401", r.status)
	}
	if s.canLogIn(name, "a-new-password") {
		t.Error("the SSO account got a password")
	}
}

// TestDashboardUserAndAuditPagesAreAccessible checks the pages of local
// users, passwords and token activity as TestDashboardPagesAreAccessible
// checks the others: every form control has a <label for>, and no inline
// script or style (the CSP forbids them) sneaks in, the chart included.
func TestDashboardUserAndAuditPagesAreAccessible(t *testing.T) {
	t.Parallel()
	e := newDashEnv(t)
	e.createUser("alice")
	nt := e.mint(e.admin, "alice", gatehouse.TokenRequest{Name: "ci"})
	e.call("GET", "/api/v1/session/userinfo", nt.Token, nil, 200, nil)
	e.call("GET", "/api/v1/account/admin", nt.Token, nil, 403, nil)
	w := newWeb(t, e)
	w.login("admin", adminPassword)
	e.remember("bob-password", "bob-passw0rd")
	pages := map[string]resp{}
	for _, path := range []string{"/users/new", "/user-info/password", "/accounts/alice/password", "/audit/tokens/" + nt.ID, "/audit?tokenId=" + nt.ID} {
		pages[path] = w.get(path)
	}
	pages["POST /users/new"] = w.post("/users/new", userForm("bob", "bob-password", "bob-passw0rd", "login"))
	controlRE := regexp.MustCompile(`<(input|select|textarea)\b[^>]*>`)
	idRE := regexp.MustCompile(`\bid="([^"]+)"`)
	for path, r := range pages {
		if want := 200; path == "POST /users/new" {
			want = 400
			if r.status != want {
				t.Errorf("%s: %d, want %d", path, r.status, want)
			}
		} else if r.status != want {
			t.Errorf("%s: %d, want %d", path, r.status, want)
		}
		for _, c := range controlRE.FindAllString(r.body, -1) {
			if strings.Contains(c, `type="hidden"`) {
				continue
			}
			m := idRE.FindStringSubmatch(c)
			if m == nil {
				t.Errorf("%s: control without id: %s", path, c)
				continue
			}
			if !strings.Contains(r.body, `<label for="`+m[1]+`"`) {
				t.Errorf("%s: no <label for=%q>", path, m[1])
			}
		}
		for _, bad := range []string{"<script>", " style=", "<style", "onclick=", "onsubmit=", "onload=", "javascript:"} {
			if strings.Contains(r.body, bad) {
				t.Errorf("%s: contains %q (the CSP forbids inline code and styles)", path, bad)
			}
		}
	}
}

// TestDashboardRefusedFormsAreRecordedAsTheirAction: a form refused for
// its own content (passwords that differ, a wrong confirmation) is
// recorded as the action it asked for, with the service's decision on
// it, so that the trail shows who tried what: the service decides on the
// action before the form is checked.
func TestDashboardRefusedFormsAreRecordedAsTheirAction(t *testing.T) {
	t.Parallel()
	e := newDashEnv(t, withPolicy("p, u, accounts, get, *, allow\np, u, projects, get, *, allow", ""))
	e.createUser("u")
	e.createUser("alice")
	e.call("POST", "/api/v1/projects", e.admin, gatehouse.Project{Name: "p1"}, 200, nil)
	e.remember("zzzzzzzz1", "zzzzzzzz2")
	u := webAs(t, e, "u")
	admin := newWeb(t, e)
	admin.login("admin", adminPassword)
	newUser := url.Values{"name": {"mallory"}, "password": {"zzzzzzzz1"}, "password_again": {"zzzzzzzz2"}, "capability": {"login"}}
	setPassword := url.Values{"current_password": {"zzzzzzzz1"}, "new_password": {"zzzzzzzz1"}, "new_password_again": {"zzzzzzzz2"}}
	deleteProject := url.Values{"confirm": {"not-p1"}}
	for name, tc := range map[string]struct {
		w        *web
		actor    string
		path     string
		route    string
		form     url.Values
		status   int
		triple   [3]string
		decision string
	}{
		"fail/create, no right":          {u, "u", "/users/new", "POST /users/new", newUser, 403, [3]string{"accounts", "create", "mallory"}, "deny"},
		"fail/set password, no right":    {u, "u", "/accounts/alice/password", "POST /accounts/{name}/password", setPassword, 403, [3]string{"accounts", "update", "alice"}, "deny"},
		"fail/delete project, no right":  {u, "u", "/projects/p1/delete", "POST /projects/{name}/delete", deleteProject, 403, [3]string{"projects", "delete", "p1"}, "deny"},
		"fail/create, passwords differ":  {admin, "admin", "/users/new", "POST /users/new", newUser, 400, [3]string{"accounts", "create", "mallory"}, "allow"},
		"fail/set password, they differ": {admin, "admin", "/accounts/alice/password", "POST /accounts/{name}/password", setPassword, 400, [3]string{"accounts", "update", "alice"}, "allow"},
		"fail/delete project, not typed": {admin, "admin", "/projects/p1/delete", "POST /projects/{name}/delete", deleteProject, 400, [3]string{"projects", "delete", "p1"}, "allow"},
	} {
		t.Run(name, func(t *testing.T) {
			if r := tc.w.post(tc.path, tc.form); r.status != tc.status {
				t.Fatalf("POST %s: %d, want %d\n%s", tc.path, r.status, tc.status, r.body)
			}
			var list gatehouse.List[gatehouse.Event]
			e.call("GET", "/api/v1/audit?type=request&actor="+tc.actor+"&status="+strconv.Itoa(tc.status)+"&route="+url.QueryEscape(tc.route), e.admin, nil, 200, &list)
			if len(list.Items) == 0 {
				t.Fatalf("no record of the request")
			}
			ev := list.Items[0]
			if got := [3]string{ev.Resource, ev.Action, ev.Object}; got != tc.triple || ev.Decision != tc.decision {
				t.Errorf("recorded [%s, %s, %s] %s, want %v %s", ev.Resource, ev.Action, ev.Object, ev.Decision, tc.triple, tc.decision)
			}
		})
	}
	// Nothing happened.
	e.call("GET", "/api/v1/account/mallory", e.admin, nil, 404, nil)
	e.call("GET", "/api/v1/projects/p1", e.admin, nil, 200, nil)
	e.login("alice", "alice-password")
}

// TestPasswordChangeIsThrottledLikeLogin: the current password a password
// change asks for, through the API or the dashboard, is throttled as a
// login is: after 5 wrong ones the sixth attempt is refused with 429 and
// Retry-After, the right password included, and the password stays.
func TestPasswordChangeIsThrottledLikeLogin(t *testing.T) {
	t.Parallel()
	e := newDashEnv(t)
	e.createUser("alice")
	e.createUser("bob")
	e.remember("alice-new-password", "bob-new-password")

	alice := e.login("alice", "alice-password")
	change := func(current string) (int, []byte) {
		return e.do("PUT", "/api/v1/account/password", alice, gatehouse.PasswordChange{CurrentPassword: current, NewPassword: "alice-new-password"})
	}
	for i := range 5 {
		if status, _ := change("wrong-password-" + strconv.Itoa(i)); status != http.StatusUnauthorized {
			t.Fatalf("API, wrong current password %d: %d, want 401", i+1, status)
		}
	}
	req, err := http.NewRequest("PUT", e.srv.URL+"/api/v1/account/password", strings.NewReader(`{"currentPassword":"alice-password","newPassword":"alice-new-password"}`))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+alice)
	req.Header.Set("Content-Type", "application/json")
	res, err := e.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if n, _ := strconv.Atoi(res.Header.Get("Retry-After")); res.StatusCode != http.StatusTooManyRequests || n < 1 || n > 300 {
		t.Errorf("API, the right current password after 5 wrong ones: %d, Retry-After %q; want 429 and 1..300 seconds", res.StatusCode, res.Header.Get("Retry-After"))
	}

	bob := webAs(t, e, "bob")
	form := func(current string) url.Values {
		return url.Values{"current_password": {current}, "new_password": {"bob-new-password"}, "new_password_again": {"bob-new-password"}}
	}
	for i := range 5 {
		if r := bob.post("/user-info/password", form("wrong-password-"+strconv.Itoa(i))); r.status != http.StatusUnauthorized {
			t.Fatalf("dashboard, wrong current password %d: %d, want 401", i+1, r.status)
		}
	}
	wantPage(t, bob.post("/user-info/password", form("bob-password")), http.StatusTooManyRequests, "too many wrong passwords")

	// Neither password changed.
	for _, user := range []string{"alice", "bob"} {
		if status, _ := e.do("POST", "/api/v1/session", "", gatehouse.LoginRequest{Username: user, Password: user + "-new-password"}); status == http.StatusOK {
			t.Errorf("%s logs in with the new password: the change went through", user)
		}
	}
}
