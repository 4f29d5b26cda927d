package server_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
)

// Regression tests for the bypasses of issue 11 that are not forward
// auth: each would have caught its break on the tree that had it.

// Break 3: groups grant roles. A caller holding only accounts, update,
// <name> could hand that account role:admin through its groups.
func TestGroupsAreGrants(t *testing.T) {
	e := newEnv(t)
	e.createUser("carol")
	e.createUser("erin")
	e.createUser("mallory")
	e.setPolicy("p, mallory, accounts, update, carol, allow\n"+
		"p, mallory, accounts, update, mallory, allow\n"+
		"p, mallory, accounts, create, *, allow\n"+
		"p, role:ops, applications, get, *, allow\n"+
		"g, ops, role:ops", "")
	mallory := e.login("mallory", "mallory-password")

	// Reserved names are refused for everyone, admin included.
	for _, g := range []string{"role:admin", "role:readonly", "proj:shop:ci", "role:", "proj:"} {
		s, b := e.do("PATCH", "/api/v1/account/carol", e.admin, gatehouse.AccountPatch{Groups: &[]string{g}})
		if s != 400 || !contains(b, "role: or proj:") {
			t.Errorf("admin setting group %q: %d %s, want 400 naming the rule", g, s, b)
		}
	}
	for _, g := range []string{"", " ops", "ops\n", "a\x00b", strings.Repeat("g", 254)} {
		if s := e.status("PATCH", "/api/v1/account/carol", e.admin, gatehouse.AccountPatch{Groups: &[]string{g}}); s != 400 {
			t.Errorf("admin setting group %q: %d, want 400", g, s)
		}
	}

	// Without settings, update, rbac nobody changes groups: not another
	// account's, not their own, not at creation.
	for _, name := range []string{"carol", "mallory"} {
		s, b := e.do("PATCH", "/api/v1/account/"+name, mallory, gatehouse.AccountPatch{Groups: &[]string{"ops"}})
		if s != 403 || !contains(b, "settings, update, rbac") {
			t.Errorf("mallory setting %s's groups: %d %s, want 403 naming settings, update, rbac", name, s, b)
		}
	}
	if s := e.status("POST", "/api/v1/account", mallory, gatehouse.AccountCreate{Name: "sock", Capabilities: []gatehouse.Capability{"apiKey"}, Groups: []string{"ops"}}); s != 403 {
		t.Errorf("mallory creating an account with groups: %d, want 403", s)
	}
	// What the permission does allow still works, and changes no grant.
	off := false
	e.call("PATCH", "/api/v1/account/carol", mallory, gatehouse.AccountPatch{Enabled: &off}, 200, nil)
	e.call("POST", "/api/v1/account", mallory, gatehouse.AccountCreate{Name: "sock", Capabilities: []gatehouse.Capability{"apiKey"}}, 200, nil)
	// Sending the groups an account already has is not a change.
	e.call("PATCH", "/api/v1/account/mallory", mallory, gatehouse.AccountPatch{Groups: &[]string{}}, 200, nil)

	var carol gatehouse.Account
	e.call("GET", "/api/v1/account/carol", e.admin, nil, 200, &carol)
	if len(carol.Groups) != 0 {
		t.Errorf("carol's groups after the refused requests: %v", carol.Groups)
	}

	// The erin escalation: self-grant, then mint. Neither step works.
	e.setPolicy("p, erin, accounts, update, erin, allow", "")
	erin := e.login("erin", "erin-password")
	if s := e.status("PATCH", "/api/v1/account/erin", erin, gatehouse.AccountPatch{Groups: &[]string{"role:admin"}}); s != 400 {
		t.Errorf("erin granting herself role:admin: %d, want 400", s)
	}
	if s := e.status("PATCH", "/api/v1/account/erin", erin, gatehouse.AccountPatch{Groups: &[]string{"admin"}}); s != 403 {
		t.Errorf("erin joining the group named admin: %d, want 403", s)
	}
	tok := e.mint(erin, "erin", gatehouse.TokenRequest{})
	var v gatehouse.CanI
	e.call("GET", "/api/v1/account/can-i/settings/update/rbac", tok.Token, nil, 200, &v)
	if v.Value != "no" {
		t.Errorf("erin's token may update the RBAC policy")
	}

	// An admin may set groups, and the grant applies at once.
	e.call("PATCH", "/api/v1/account/carol", e.admin, gatehouse.AccountPatch{Groups: &[]string{"ops"}}, 200, nil)
	on := true
	e.call("PATCH", "/api/v1/account/carol", e.admin, gatehouse.AccountPatch{Enabled: &on}, 200, nil)
	e.setPolicy("p, role:ops, applications, get, *, allow\ng, ops, role:ops", "")
	carolTok := e.mint(e.admin, "carol", gatehouse.TokenRequest{})
	e.call("GET", "/api/v1/account/can-i/applications/get/shop/web", carolTok.Token, nil, 200, &v)
	if v.Value != "yes" {
		t.Errorf("carol in group ops cannot get applications")
	}
}

// Break 3, second half: project roles' groups obey the same rule.
func TestProjectRoleGroupsMayNotNameRoles(t *testing.T) {
	e := newEnv(t)
	for _, g := range []string{"role:admin", "proj:other:r"} {
		s, b := e.do("POST", "/api/v1/projects", e.admin, gatehouse.Project{Name: "shop", Roles: []gatehouse.ProjectRole{{Name: "ci", Groups: []string{g}}}})
		if s != 400 {
			t.Errorf("project role bound to group %q: %d %s, want 400", g, s, b)
		}
	}
}

// Break 4: a project admin writes a regex role line that reaches another
// project, binds himself to the role, and acts on that project's apps.
func TestProjectBoundaryHoldsOnTheDecision(t *testing.T) {
	e := newEnv(t)
	e.call("PUT", "/api/v1/settings/rbac", e.admin, gatehouse.RBAC{MatchMode: "regex",
		PolicyCSV: "p, mallory, projects, update, team-a, allow\np, mallory, projects, get, team-a, allow"}, 200, nil)
	for _, p := range []string{"team-a", "team-b"} {
		e.call("POST", "/api/v1/projects", e.admin, gatehouse.Project{Name: p}, 200, nil)
		e.call("POST", "/api/v1/applications", e.admin, gatehouse.Application{Name: p + "-web", Project: p,
			Spec: gatehouse.AppSpec{RepoURL: "https://git.example/x.git", Destination: gatehouse.AppDestination{Namespace: "x"}}}, 200, nil)
	}
	e.createUser("mallory")
	mallory := e.login("mallory", "mallory-password")
	escape := gatehouse.Project{Name: "team-a", Roles: []gatehouse.ProjectRole{{
		Name:     "deployer",
		Policies: []string{"p, proj:team-a:deployer, applications, .*, team-a/.*|team-b/.*, allow"},
		Groups:   []string{"mallory"},
	}}}
	// The line's text starts with team-a/, so it is accepted; what it may
	// allow is confined on the decision.
	e.call("PUT", "/api/v1/projects/team-a", mallory, escape, 200, nil)
	for _, tc := range []struct {
		method, path string
		body         any
		want         int
	}{
		{"GET", "/api/v1/applications/team-a-web", nil, 200},
		{"POST", "/api/v1/applications/team-a-web/sync", gatehouse.SyncRequest{}, 200},
		{"GET", "/api/v1/applications/team-b-web", nil, 403},
		{"POST", "/api/v1/applications/team-b-web/sync", gatehouse.SyncRequest{}, 403},
		{"DELETE", "/api/v1/applications/team-b-web", nil, 403},
	} {
		if s, b := e.do(tc.method, tc.path, mallory, tc.body); s != tc.want {
			t.Errorf("mallory %s %s: %d %s, want %d", tc.method, tc.path, s, b, tc.want)
		}
	}
	// The role's token is confined the same way.
	var rt gatehouse.NewToken
	e.call("POST", "/api/v1/projects/team-a/roles/deployer/token", mallory, gatehouse.TokenRequest{}, 200, &rt)
	e.remember(rt.Token)
	if s := e.status("GET", "/api/v1/applications/team-b-web", rt.Token, nil); s != 403 {
		t.Errorf("role token reading team-b's app: %d, want 403", s)
	}
	var list gatehouse.List[gatehouse.Application]
	e.call("GET", "/api/v1/applications", mallory, nil, 200, &list)
	for _, a := range list.Items {
		if a.Project != "team-a" {
			t.Errorf("mallory's application list shows %s/%s", a.Project, a.Name)
		}
	}
	// A global line with a project subject is confined too.
	e.call("PUT", "/api/v1/settings/rbac", e.admin, gatehouse.RBAC{PolicyCSV: "p, proj:team-a:deployer, *, *, *, allow\ng, mallory, proj:team-a:deployer"}, 200, nil)
	for _, q := range []string{"applications/get/team-b/team-b-web", "settings/update/rbac", "accounts/update/admin", "projects/update/team-a"} {
		var v gatehouse.CanI
		e.call("GET", "/api/v1/account/can-i/"+q, mallory, nil, 200, &v)
		if v.Value != "no" {
			t.Errorf("mallory through a global proj: line: can-i %s = yes", q)
		}
	}
}

// Break 5: 64 concurrent wrong guesses for one user get at most
// login.maxFailures (5) answers of 401; the rest are 429.
func TestLoginThrottleCountsBeforeItChecks(t *testing.T) {
	e := newEnv(t)
	e.createUser("victim")
	const n = 64
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		counts = map[int]int{}
	)
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			body := fmt.Sprintf(`{"username":"victim","password":"wrong-guess-%d"}`, i)
			req, _ := http.NewRequest("POST", e.srv.URL+"/api/v1/session", strings.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			resp, err := e.srv.Client().Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			resp.Body.Close()
			mu.Lock()
			counts[resp.StatusCode]++
			mu.Unlock()
		}()
	}
	close(start)
	wg.Wait()
	if counts[401] > 5 || counts[401] == 0 {
		t.Errorf("64 concurrent wrong guesses: %d answers of 401, want 1 to 5 (all: %v)", counts[401], counts)
	}
	if counts[401]+counts[429] != n {
		t.Errorf("answers other than 401 and 429: %v", counts)
	}
	t.Logf("64 concurrent wrong guesses: %v", counts)
}

// Break 8: introspection tells only those who may see the owner.
func TestIntrospectionNeedsPermissionOnTheOwner(t *testing.T) {
	e := newEnv(t)
	e.createUser("alice")
	e.call("POST", "/api/v1/projects", e.admin, gatehouse.Project{Name: "shop", Roles: []gatehouse.ProjectRole{{Name: "ci"}}}, 200, nil)
	var rt gatehouse.NewToken
	e.call("POST", "/api/v1/projects/shop/roles/ci/token", e.admin, gatehouse.TokenRequest{}, 200, &rt)
	e.remember(rt.Token)
	alice := e.login("alice", "alice-password")
	aliceAPI := e.mint(alice, "alice", gatehouse.TokenRequest{})

	introspect := func(caller, tok string) gatehouse.Introspection {
		t.Helper()
		req, _ := http.NewRequest("POST", e.srv.URL+"/api/v1/introspect", strings.NewReader(url.Values{"token": {tok}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Authorization", "Bearer "+caller)
		var out gatehouse.Introspection
		s, b := e.send(req)
		if s != 200 {
			t.Fatalf("introspect: %d %s", s, b)
		}
		if err := json.Unmarshal(b, &out); err != nil {
			t.Fatal(err)
		}
		return out
	}
	// A project token with no rights learns nothing of the admin's session.
	if got := introspect(rt.Token, e.admin); got.Active || got.Sub != "" || got.Exp != 0 {
		t.Errorf("role token introspecting the admin's session: %+v, want inactive and empty", got)
	}
	if got := introspect(alice, e.admin); got.Active {
		t.Errorf("alice introspecting the admin's session: %+v", got)
	}
	if got := introspect(alice, rt.Token); got.Active {
		t.Errorf("alice introspecting a shop role token: %+v", got)
	}
	// One's own tokens, and anything for an admin.
	if got := introspect(alice, aliceAPI.Token); !got.Active || got.Sub != "alice" {
		t.Errorf("alice introspecting her own token: %+v", got)
	}
	if got := introspect(e.admin, alice); !got.Active || got.Sub != "alice" || got.TokenType != "session" {
		t.Errorf("admin introspecting alice's session: %+v", got)
	}
	if got := introspect(e.admin, rt.Token); !got.Active || got.Sub != "proj:shop:ci" {
		t.Errorf("admin introspecting the role token: %+v", got)
	}
}

// Break 8: graceSeconds is range-checked before any conversion, and the
// old token never outlives what it had left.
func TestRotationGraceIsBounded(t *testing.T) {
	e := newEnv(t)
	tok := e.mint(e.admin, "admin", gatehouse.TokenRequest{ExpiresIn: seconds(3600)})
	path := "/api/v1/account/admin/token/" + tok.ID + "/rotate"
	for _, g := range []int64{-1, 9223372037, 1 << 62, 7*24*3600 + 1, 3601} {
		s, b := e.do("POST", path, e.admin, gatehouse.RotateRequest{GraceSeconds: g})
		if s != 400 {
			t.Errorf("graceSeconds %d: %d %s, want 400", g, s, b)
		}
	}
	if s := e.status("GET", "/api/v1/session/userinfo", tok.Token, nil); s != 200 {
		t.Fatalf("refused rotations changed the token: %d", s)
	}
	var nt gatehouse.NewToken
	e.call("POST", path, e.admin, gatehouse.RotateRequest{GraceSeconds: 3600}, 200, &nt)
	e.remember(nt.Token)
}

// Break 8: a caller who may not get an application cannot tell a missing
// one from an existing one, nor learn its project.
func TestApplicationExistenceDoesNotLeak(t *testing.T) {
	e := newEnv(t)
	for _, p := range []string{"team-a", "team-b"} {
		e.call("POST", "/api/v1/projects", e.admin, gatehouse.Project{Name: p}, 200, nil)
	}
	e.call("POST", "/api/v1/applications", e.admin, gatehouse.Application{Name: "secret-app", Project: "team-b",
		Spec: gatehouse.AppSpec{RepoURL: "https://git.example/x.git", Destination: gatehouse.AppDestination{Namespace: "x"}}}, 200, nil)
	e.createUser("alice")
	e.setPolicy("p, alice, applications, *, team-a/*, allow", "")
	alice := e.login("alice", "alice-password")
	for _, op := range []struct{ method, suffix string }{
		{"GET", ""}, {"DELETE", ""}, {"GET", "/operations"}, {"POST", "/sync"},
		{"PUT", "/status"}, {"PUT", "/operations/00000000-0000-4000-8000-000000000000"},
	} {
		var body any
		switch op.suffix {
		case "/sync":
			body = gatehouse.SyncRequest{}
		case "/status":
			body = gatehouse.StatusReport{Sync: "Synced", Health: "Healthy"}
		case "/operations/00000000-0000-4000-8000-000000000000":
			body = gatehouse.OperationReport{State: "Running"}
		}
		s1, b1 := e.do(op.method, "/api/v1/applications/secret-app"+op.suffix, alice, body)
		s2, b2 := e.do(op.method, "/api/v1/applications/no-such-app"+op.suffix, alice, body)
		_, m1 := errorOf(t, b1)
		_, m2 := errorOf(t, b2)
		if s1 != s2 || strings.ReplaceAll(m1, "secret-app", "X") != strings.ReplaceAll(m2, "no-such-app", "X") {
			t.Errorf("%s %s: existing %d %q vs missing %d %q", op.method, op.suffix, s1, m1, s2, m2)
		}
		if strings.Contains(m1, "team-b") {
			t.Errorf("%s %s: the refusal names the project: %q", op.method, op.suffix, m1)
		}
	}
	// A caller who may get applications anywhere is told what is missing.
	if s := e.status("GET", "/api/v1/applications/no-such-app", e.admin, nil); s != 404 {
		t.Errorf("admin getting a missing application: %d, want 404", s)
	}
}

// Two Authorization headers are refused whatever they hold: behind a proxy
// that copies client headers next to its own, neither may pick which one
// counts.
func TestTwoAuthorizationHeadersAreRefused(t *testing.T) {
	e := newEnv(t)
	for _, second := range []string{"Bearer garbage", "Bearer " + e.admin} {
		req, _ := http.NewRequest("GET", e.srv.URL+"/api/v1/session/userinfo", nil)
		req.Header.Add("Authorization", "Bearer "+e.admin)
		req.Header.Add("Authorization", second)
		if s, b := e.send(req); s != 401 {
			t.Errorf("two Authorization headers: %d %s, want 401", s, b)
		}
	}
}

// The outside review of issue 11's fixes found these side doors; each test
// reproduces one.

// Creating an account whose name the policy already binds is a grant:
// with only accounts, create, a caller could create "ops" (g, ops,
// role:admin) with a password of its choosing and log in as an admin.
func TestCreatingABoundNameIsAGrant(t *testing.T) {
	e := newEnv(t)
	e.createUser("um")
	e.setPolicy("p, um, accounts, create, *, allow\n"+
		"g, ops, role:admin\n"+
		"p, sre, applications, *, */*, allow", "")
	e.call("POST", "/api/v1/projects", e.admin, gatehouse.Project{Name: "team-a", Roles: []gatehouse.ProjectRole{{Name: "r", Groups: []string{"deployer"}}}}, 200, nil)
	um := e.login("um", "um-password")
	for _, name := range []string{"ops", "sre", "deployer"} {
		s, b := e.do("POST", "/api/v1/account", um, gatehouse.AccountCreate{Name: name, Capabilities: []gatehouse.Capability{"login"}, Password: "chosen-by-um"})
		if s != 403 || !contains(b, "settings, update, rbac") {
			t.Errorf("um creating %q, a name the policy binds: %d %s, want 403", name, s, b)
		}
	}
	// A name the policy does not mention is an ordinary account.
	e.call("POST", "/api/v1/account", um, gatehouse.AccountCreate{Name: "fresh", Capabilities: []gatehouse.Capability{"apiKey"}}, 200, nil)
	// An admin may create a bound name: that is the admin's grant.
	e.call("POST", "/api/v1/account", e.admin, gatehouse.AccountCreate{Name: "ops", Capabilities: []gatehouse.Capability{"apiKey"}}, 200, nil)
}

// Binding a group to a project role grants that role, and nothing of the
// group's own lines elsewhere in the policy.
func TestProjectRoleGroupsDoNotSwitchOnAGroup(t *testing.T) {
	e := newEnv(t)
	for _, p := range []string{"team-a", "team-b"} {
		e.call("POST", "/api/v1/projects", e.admin, gatehouse.Project{Name: p}, 200, nil)
	}
	e.call("POST", "/api/v1/applications", e.admin, gatehouse.Application{Name: "secret", Project: "team-b",
		Spec: gatehouse.AppSpec{RepoURL: "https://git.example/x.git", Destination: gatehouse.AppDestination{Namespace: "x"}}}, 200, nil)
	e.createUser("carol", "sre")
	e.createUser("pm")
	e.setPolicy("p, sre, applications, *, */*, allow\n"+
		"p, pm, projects, update, team-a, allow\np, pm, projects, get, team-a, allow", "")
	carol := e.login("carol", "carol-password")
	pm := e.login("pm", "pm-password")
	can := func(q string) string {
		var v gatehouse.CanI
		e.call("GET", "/api/v1/account/can-i/"+q, carol, nil, 200, &v)
		return v.Value
	}
	if got := can("applications/sync/team-b/secret"); got != "no" {
		t.Fatalf("before: carol may sync team-b/secret: %s (group sre is bound by no g line)", got)
	}
	e.call("PUT", "/api/v1/projects/team-a", pm, gatehouse.Project{Name: "team-a", Roles: []gatehouse.ProjectRole{{
		Name: "r", Policies: []string{"p, proj:team-a:r, applications, get, team-a/*, allow"}, Groups: []string{"sre"},
	}}}, 200, nil)
	if got := can("applications/sync/team-b/secret"); got != "no" {
		t.Errorf("pm binding group sre to a team-a role switched on sre's global lines: can-i sync team-b/secret = %s", got)
	}
	if s := e.status("POST", "/api/v1/applications/secret/sync", carol, gatehouse.SyncRequest{}); s != 403 {
		t.Errorf("carol syncing team-b/secret after the binding: %d, want 403", s)
	}
	if got := can("applications/get/team-a/web"); got != "yes" {
		t.Errorf("the project role bound through group sre does not apply: %s", got)
	}
}

// Taking a capability away revokes what it carried, like disabling: giving
// it back does not revive old sessions or tokens. The admin account keeps
// login.
func TestRemovingACapabilityRevokes(t *testing.T) {
	e := newEnv(t)
	e.createUser("carol")
	session := e.login("carol", "carol-password")
	api := e.mint(session, "carol", gatehouse.TokenRequest{})
	none, both := []gatehouse.Capability{}, []gatehouse.Capability{"login", "apiKey"}
	e.call("PATCH", "/api/v1/account/carol", e.admin, gatehouse.AccountPatch{Capabilities: &none}, 200, nil)
	e.call("PATCH", "/api/v1/account/carol", e.admin, gatehouse.AccountPatch{Capabilities: &both}, 200, nil)
	for name, tok := range map[string]string{"session": session, "API token": api.Token} {
		if s := e.status("GET", "/api/v1/session/userinfo", tok, nil); s != 401 {
			t.Errorf("carol's %s after her capabilities were removed and given back: %d, want 401", name, s)
		}
	}
	for _, caps := range [][]gatehouse.Capability{{}, {"apiKey"}} {
		if s, b := e.do("PATCH", "/api/v1/account/admin", e.admin, gatehouse.AccountPatch{Capabilities: &caps}); s != 412 {
			t.Errorf("taking login from admin (%v): %d %s, want 412", caps, s, b)
		}
	}
	if s := e.status("GET", "/api/v1/session/userinfo", e.admin, nil); s != 200 {
		t.Errorf("admin's session after the refused changes: %d", s)
	}
}

// A login that began before a password change must not mint a session
// after it: bcrypt runs outside the transaction, so the mint re-checks
// that the password it verified is still the account's.
func TestLoginRacingAPasswordChange(t *testing.T) {
	// The throttle stays out of the way: 24 logins in flight are 24
	// reservations of alice's failure budget, which the password change's
	// own check of her current password shares (and would be refused
	// by); this test is about the mint's re-check, not the throttle.
	e := newEnv(t, func(o *envSettings) { o.LoginMaxConcurrent = 2; o.LoginMaxFailures = 1000 })
	e.createUser("alice")
	alice := e.login("alice", "alice-password")
	const n = 24
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		tokens []string
	)
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequest("POST", e.srv.URL+"/api/v1/session", strings.NewReader(`{"username":"alice","password":"alice-password"}`))
			req.Header.Set("Content-Type", "application/json")
			resp, err := e.srv.Client().Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			defer resp.Body.Close()
			var out struct{ Token string }
			if resp.StatusCode == 200 && json.NewDecoder(resp.Body).Decode(&out) == nil {
				mu.Lock()
				tokens = append(tokens, out.Token)
				mu.Unlock()
			}
		}()
	}
	e.remember("alice-new-password")
	// The change's check of the current password waits for a bcrypt slot
	// like the logins (429 "in progress" while they hold both): a client
	// asks again, as this one does.
	for try := 0; ; try++ {
		status, body := e.do("PUT", "/api/v1/account/password", alice, gatehouse.PasswordChange{CurrentPassword: "alice-password", NewPassword: "alice-new-password"})
		if status == http.StatusOK {
			break
		}
		if status != http.StatusTooManyRequests || try == 200 {
			t.Fatalf("PUT /api/v1/account/password: %d %s", status, body)
		}
		time.Sleep(10 * time.Millisecond)
	}
	wg.Wait()
	e.remember(tokens...)
	for _, tok := range tokens {
		if s := e.status("GET", "/api/v1/session/userinfo", tok, nil); s != 401 {
			t.Errorf("a session from the old password works after the change: %d", s)
		}
	}
	t.Logf("%d of %d racing logins got a session, all refused after the change", len(tokens), n)
}

// A project administrator cannot hand his project role to everyone by
// binding the default role (which every account holds) to it.
func TestProjectRolesCannotBindTheDefaultRole(t *testing.T) {
	e := newEnv(t)
	e.createUser("pat")
	e.setPolicy("p, pat, projects, update, shop, allow\np, pat, projects, get, shop, allow\ng, everyone, team", "everyone")
	e.call("POST", "/api/v1/projects", e.admin, gatehouse.Project{Name: "shop"}, 200, nil)
	pat := e.login("pat", "pat-password")
	for _, g := range []string{"everyone", "team"} {
		s, b := e.do("PUT", "/api/v1/projects/shop", pat, gatehouse.Project{Name: "shop", Roles: []gatehouse.ProjectRole{{
			Name: "dev", Policies: []string{"p, proj:shop:dev, applications, *, shop/*, allow"}, Groups: []string{g},
		}}})
		if s != 400 || !contains(b, "default role") {
			t.Errorf("binding %q (the default role or one it reaches) to a project role: %d %s, want 400", g, s, b)
		}
	}
}
