package server_test

import (
	"net/http"
	"net/url"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/policy"
)

// The RBAC policy page through the real server: saving is PutRBAC,
// checking and asking a draft change nothing, and the explain box gives
// the API's explain answer.

// rbacPolicy lets the group auditors read the RBAC settings (not change
// them) and the group devs get team-a's applications.
const rbacPolicy = "p, role:rbac-reader, settings, get, rbac, allow\n" +
	"g, auditors, role:rbac-reader\n" +
	"p, role:dev, applications, get, team-a/*, allow\n" +
	"g, devs, role:dev"

// newRBACEnv is a dashboard env with the admin, rita (who may read the
// settings) and bob (who may not) logged in, and alice in devs.
func newRBACEnv(t *testing.T) (e *env, admin, rita, bob *web) {
	t.Helper()
	e = newDashEnv(t, withPolicy(rbacPolicy, ""))
	e.createUser("rita", "auditors")
	e.createUser("bob")
	e.createUser("alice", "devs")
	admin, rita, bob = newWeb(t, e), newWeb(t, e), newWeb(t, e)
	admin.login("admin", adminPassword)
	rita.login("rita", "rita-password")
	bob.login("bob", "bob-password")
	return e, admin, rita, bob
}

func (e *env) rbac() gatehouse.RBAC {
	e.t.Helper()
	var rb gatehouse.RBAC
	e.call("GET", "/api/v1/settings/rbac", e.admin, nil, 200, &rb)
	return rb
}

// rbacForm is the settings form filled with rb, asking op.
func rbacForm(rb gatehouse.RBAC, op string) url.Values {
	return url.Values{"policy_csv": {rb.PolicyCSV}, "policy_default": {rb.PolicyDefault}, "scopes": {rb.Scopes}, "match_mode": {rb.MatchMode}, "op": {op}}
}

func TestDashboardRBACPage(t *testing.T) {
	t.Parallel()
	e, admin, rita, bob := newRBACEnv(t)
	nav := func(w *web) string { return between(w.get("/user-info").body, `<nav class="mainnav"`, `</nav>`) }

	page := admin.get("/settings/rbac")
	wantPage(t, page, 200, rbacPolicy+"</textarea>", "Save policy", "Explain a decision")
	if !strings.Contains(nav(admin), ">RBAC policy</a>") {
		t.Errorf("the admin's nav lacks RBAC policy")
	}
	if !strings.Contains(admin.get("/settings/rbac").body, `href="/settings/rbac" aria-current="page"`) {
		t.Errorf("the nav does not mark RBAC policy as the current page")
	}

	// Read-only: the text, the explain box and Check, no Save.
	page = rita.get("/settings/rbac")
	wantPage(t, page, 200, "You may read the policy and ask it questions, but not change it.", "Check draft", "Ask the saved policy")
	if strings.Contains(page.body, `value="save"`) || !strings.Contains(page.body, `wrap="off" readonly`) {
		t.Errorf("rita's page offers Save or an editable policy:\n%s", page.body)
	}
	if !strings.Contains(nav(rita), ">RBAC policy</a>") {
		t.Errorf("rita's nav lacks RBAC policy")
	}

	// No right at all: no entry, and the page refuses.
	if strings.Contains(nav(bob), "RBAC policy") {
		t.Errorf("bob's nav shows RBAC policy")
	}
	wantPage(t, bob.get("/settings/rbac"), http.StatusForbidden, "permission denied: settings, get, rbac")

	// The saved policy's warnings are shown.
	e.setPolicy(rbacPolicy+"\ng, ops, role:nothing", "")
	wantPage(t, admin.get("/settings/rbac"), 200, `line 5: role "role:nothing" has no policy lines`)
}

func TestDashboardRBACSave(t *testing.T) {
	t.Parallel()
	e, admin, rita, bob := newRBACEnv(t)
	saved := e.rbac()

	bad := saved
	// Line 2 has too few fields and line 4 an unknown effect; CRLF as a
	// browser sends a textarea.
	bad.PolicyCSV = "p, role:dev, applications, get, team-a/*, allow\r\np, role:dev, applications, sync\r\n# a comment\r\np, role:dev, applications, sync, team-a/*, maybe\r\ng, devs, role:dev"
	badRegex := saved
	badRegex.MatchMode = "regex"
	badRegex.PolicyCSV = "p, role:dev, applications, get, team-a/.*, allow\n\np, role:dev, applications, get, team-a/(, allow"
	badMode := saved
	badMode.MatchMode = "fnord"
	good := saved
	good.PolicyCSV = saved.PolicyCSV + "\np, role:dev, applications, sync, team-a/*, allow"

	for name, tc := range map[string]struct {
		w      *web
		form   url.Values
		hdr    []string
		status int
		want   []string
	}{
		"fail/bad lines": {admin, rbacForm(bad, "save"), nil, 400, []string{
			"invalid policy: line 2:", `data-line="2">Line 2</a>`, `data-line="4">Line 4</a>`, "maybe",
			"p, role:dev, applications, sync\n# a comment\n", `aria-invalid="true"`}},
		"fail/bad regex": {admin, rbacForm(badRegex, "save"), nil, 400, []string{`data-line="3">Line 3</a>`, "team-a/(", `<option value="regex" selected>`}},
		"fail/bad match mode": {admin, rbacForm(badMode, "save"), nil, 400, []string{
			"matchMode must be glob or regex", `class="field-error" id="policy-invalid">match mode "fnord": want glob or regex`}},
		"fail/read-only user":      {rita, rbacForm(good, "save"), nil, 403, []string{"Permission denied", "permission denied: settings, update, rbac"}},
		"fail/no right":            {bob, rbacForm(good, "save"), nil, 403, []string{"Permission denied", "permission denied: settings, update, rbac"}},
		"fail/cross-site":          {admin, rbacForm(good, "save"), crossSite, 403, nil},
		"ok/check changes nothing": {admin, rbacForm(good, "check"), nil, 200, []string{"The draft compiles. It is not saved yet.", "unsaved draft"}},
		"ok/Enter (no op) checks":  {admin, func() url.Values { f := rbacForm(good, ""); f.Del("op"); return f }(), nil, 200, []string{"The draft compiles."}},
		"ok/check names bad lines": {admin, rbacForm(bad, "check"), nil, 200, []string{`data-line="2">Line 2</a>`, `data-line="4">Line 4</a>`}},
	} {
		t.Run(name, func(t *testing.T) {
			r := tc.w.post("/settings/rbac", tc.form, tc.hdr...)
			wantPage(t, r, tc.status, tc.want...)
			if got := e.rbac(); !reflect.DeepEqual(got, saved) {
				t.Errorf("the settings changed: %+v", got)
			}
		})
	}
	// The line numbers are the box's: line 3 is a comment, not reported.
	r := admin.post("/settings/rbac", rbacForm(bad, "save"))
	if strings.Contains(r.body, `data-line="1"`) || strings.Contains(r.body, `data-line="3"`) || strings.Contains(r.body, `data-line="5"`) {
		t.Errorf("a good line is reported:\n%s", r.body)
	}

	var can gatehouse.CanI
	alice := e.login("alice", "alice-password")
	e.call("GET", "/api/v1/account/can-i/applications/sync/team-a/web", alice, nil, 200, &can)
	if can.Value != "no" {
		t.Fatalf("alice may sync before the save")
	}
	good.PolicyDefault = "role:readonly"
	admin.wantRedirect(admin.post("/settings/rbac", rbacForm(good, "save")), "/settings/rbac?notice=rbac-saved")
	if got := e.rbac(); got.PolicyCSV != good.PolicyCSV || got.PolicyDefault != "role:readonly" {
		t.Errorf("saved settings: %+v", got)
	}
	e.call("GET", "/api/v1/account/can-i/applications/sync/team-a/web", alice, nil, 200, &can)
	if can.Value != "yes" {
		t.Errorf("alice may not sync after the save: the new policy is not in force")
	}
	wantPage(t, admin.get("/settings/rbac?notice=rbac-saved"), 200, "Policy saved.", `value="role:readonly"`)

	// The audit trail records the dashboard's save as the API's.
	e.svc.Flush(t.Context())
	var events gatehouse.List[gatehouse.Event]
	e.call("GET", "/api/v1/audit?type=policy.changed&actor=admin", e.admin, nil, 200, &events)
	if len(events.Items) == 0 || events.Items[0].Object != "rbac" {
		t.Errorf("no policy.changed event for the save: %+v", events.Items)
	}
}

func TestDashboardRBACExplain(t *testing.T) {
	t.Parallel()
	e, admin, rita, bob := newRBACEnv(t)
	saved := e.rbac()
	ask := func(w *web, rb gatehouse.RBAC, op string, q ...string) resp {
		t.Helper()
		f := rbacForm(rb, op)
		for i, k := range []string{"subject", "resource", "action", "object"} {
			if i < len(q) {
				f.Set(k, q[i])
			}
		}
		return w.post("/settings/rbac", f)
	}

	// The saved policy answers as the API's explain does.
	var x gatehouse.Explanation
	e.call("GET", "/api/v1/settings/rbac/can?subject=alice&resource=applications&action=get&object=team-a/web", e.admin, nil, 200, &x)
	if x.Value != "yes" || len(x.Matched) == 0 {
		t.Fatalf("API explain: %+v", x)
	}
	r := ask(admin, saved, "explain", "alice", "applications", "get", "team-a/web")
	want := []string{"Yes</strong>, according to the saved policy.", "<code>" + x.Rule + "</code>", `alice`}
	for _, l := range x.Matched {
		want = append(want, "<li><code>"+l+"</code></li>")
	}
	wantPage(t, r, 200, want...)
	wantPage(t, ask(rita, saved, "explain", "alice", "applications", "sync", "team-a/web"), 200, "No</strong>, according to the saved policy.", "No line allows it.")

	// A draft that grants sync says yes; the saved policy still says no.
	draft := saved
	draft.PolicyCSV += "\np, role:dev, applications, sync, team-a/*, allow"
	wantPage(t, ask(admin, draft, "check", "alice", "applications", "sync", "team-a/web"), 200,
		"Yes</strong>, according to the draft.", "p, role:dev, applications, sync, team-a/*, allow</code></li>", "The draft compiles.")
	wantPage(t, ask(admin, draft, "explain", "alice", "applications", "sync", "team-a/web"), 200, "No</strong>, according to the saved policy.",
		"p, role:dev, applications, sync, team-a/*, allow</textarea>")
	if got := e.rbac(); !reflect.DeepEqual(got, saved) {
		t.Errorf("asking changed the settings: %+v", got)
	}

	// Refused questions.
	broken := saved
	broken.PolicyCSV += "\np, role:dev"
	for name, tc := range map[string]struct {
		r      resp
		status int
		want   string
	}{
		"fail/saved, no object": {ask(admin, saved, "explain", "alice", "applications", "get"), 400, "subject, resource, action and object are required"},
		"fail/draft, no object": {ask(admin, draft, "check", "alice", "applications", "get"), 400, "subject, resource, action and object are required"},
		"fail/broken draft":     {ask(admin, broken, "check", "alice", "applications", "get", "team-a/web"), 412, "the draft does not compile; fix its problems first"},
		"fail/no right, saved":  {ask(bob, saved, "explain", "alice", "applications", "get", "team-a/web"), 403, "permission denied: settings, get, rbac"},
		"fail/no right, draft":  {ask(bob, draft, "check", "alice", "applications", "get", "team-a/web"), 403, "permission denied: settings, get, rbac"},
	} {
		t.Run(name, func(t *testing.T) { wantPage(t, tc.r, tc.status, tc.want) })
	}
	if r := admin.post("/settings/rbac", url.Values{"op": {"explain"}, "subject": {"alice"}, "resource": {"applications"}, "action": {"get"}, "object": {"x"}}, crossSite...); r.status != http.StatusForbidden {
		t.Errorf("cross-site explain: %d, want 403", r.status)
	}
}

// TestDashboardRBACAndRoleRefusalsAreAudited: the audit record of a
// refused change names the change's check, not a read made to show the
// form again. (The admin's: for other users the navigation's own reads,
// which every page makes, come last.)
func TestDashboardRBACAndRoleRefusalsAreAudited(t *testing.T) {
	t.Parallel()
	e, admin, _, _ := newRBACEnv(t)
	e.call("POST", "/api/v1/projects", e.admin, gatehouse.Project{Name: "team-a"}, 200, nil)
	broken := e.rbac()
	broken.PolicyCSV += "\np, role:dev"
	wantPage(t, admin.post("/settings/rbac", rbacForm(broken, "save")), 400, "Line 5")
	wantPage(t, admin.post("/projects/team-a/roles/new", url.Values{"name": {"ci"}, "policies": {"p, nope"}}), 400, "Line 1")
	e.svc.Flush(t.Context())
	for _, tc := range []struct {
		actor, route, status string
		want                 [3]string
	}{
		{"admin", "POST /settings/rbac", "400", [3]string{"settings", "update", "rbac"}},
		{"admin", "POST /projects/{name}/roles/new", "400", [3]string{"projects", "update", "team-a"}},
	} {
		var events gatehouse.List[gatehouse.Event]
		e.call("GET", "/api/v1/audit?type=request&actor="+tc.actor+"&status="+tc.status+"&route="+url.QueryEscape(tc.route), e.admin, nil, 200, &events)
		if len(events.Items) != 1 {
			t.Errorf("%s %s %s: %d events, want 1", tc.actor, tc.route, tc.status, len(events.Items))
			continue
		}
		ev := events.Items[0]
		if got := [3]string{ev.Resource, ev.Action, ev.Object}; got != tc.want {
			t.Errorf("%s %s %s: recorded %v, want %v", tc.actor, tc.route, tc.status, got, tc.want)
		}
	}
}

// TestDashboardRBACDraftCountsGroupsOnlyForReadableAccounts: rita may read
// the settings but not the accounts, so an answer about alice does not
// count alice's groups, whether asked of a draft of rita's own (which
// could grant anything to any group), of the saved policy, or through the
// API; the answer says so. The admin's answer counts them.
func TestDashboardRBACDraftCountsGroupsOnlyForReadableAccounts(t *testing.T) {
	t.Parallel()
	e, admin, rita, _ := newRBACEnv(t)
	const note = "Note: answered without the subject&#39;s groups: counting them needs accounts, get, alice."
	probe := url.Values{"policy_csv": {"p, role:q, x, y, z, allow\ng, devs, role:q"}, "op": {"check"},
		"subject": {"alice"}, "resource": {"x"}, "action": {"y"}, "object": {"z"}}
	saved := rbacForm(e.rbac(), "explain")
	for k, v := range map[string]string{"subject": "alice", "resource": "applications", "action": "get", "object": "team-a/web"} {
		saved.Set(k, v)
	}
	for name, tc := range map[string]struct {
		w    *web
		form url.Values
		want string
	}{
		"fail/rita, her draft":         {rita, probe, "answer-no"},
		"fail/rita, the saved policy":  {rita, saved, "answer-no"},
		"ok/the admin, the same draft": {admin, probe, "answer-yes"},
		"ok/the admin, saved policy":   {admin, saved, "answer-yes"},
	} {
		t.Run(name, func(t *testing.T) {
			r := tc.w.post("/settings/rbac", tc.form)
			wantPage(t, r, 200, tc.want)
			if hasNote := strings.Contains(r.body, note); hasNote != (tc.w == rita) {
				t.Errorf("the note about groups shown: %v, want %v\n%s", hasNote, tc.w == rita, between(r.body, `id="explain-answer"`, "</div>"))
			}
		})
	}

	// The API's explain: the same rule, and the note in the answer.
	const q = "/api/v1/settings/rbac/can?subject=alice&resource=applications&action=get&object=team-a/web"
	var x gatehouse.Explanation
	e.call("GET", q, e.login("rita", "rita-password"), nil, 200, &x)
	if x.Value != "no" || x.Note != "answered without the subject's groups: counting them needs accounts, get, alice" {
		t.Errorf("rita's API explain: %+v, want no, with a note", x)
	}
	x = gatehouse.Explanation{}
	e.call("GET", q, e.admin, nil, 200, &x)
	if x.Value != "yes" || x.Note != "" {
		t.Errorf("the admin's API explain: %+v, want yes without a note", x)
	}
}

// TestDashboardRBACDraftHidesUnreadableProjectLines: a draft check
// compiles the projects' role lines too; one rita may not get (projects,
// get) is not shown to her, neither as a bad line nor as a matched one.
func TestDashboardRBACDraftHidesUnreadableProjectLines(t *testing.T) {
	t.Parallel()
	e, admin, rita, _ := newRBACEnv(t)
	e.call("POST", "/api/v1/projects", e.admin, gatehouse.Project{Name: "hidden", Roles: []gatehouse.ProjectRole{{Name: "r",
		Policies: []string{"p, proj:hidden:r, applications, *, hidden/secret-app, allow"}}}}, 200, nil)
	const hidden = "a line of a project role you cannot read"
	// In regex mode the line's * does not compile: a bad line.
	regex := url.Values{"policy_csv": {""}, "match_mode": {"regex"}, "op": {"check"}}
	r := rita.post("/settings/rbac", regex)
	wantPage(t, r, 200, hidden)
	if strings.Contains(r.body, "secret-app") || strings.Contains(r.body, "proj:hidden") {
		t.Errorf("rita's check shows the line of project hidden:\n%s", r.body)
	}
	wantPage(t, admin.post("/settings/rbac", regex), 200, "p, proj:hidden:r, applications, *, hidden/secret-app, allow")

	// In glob mode it compiles, and matches a question about its role.
	ask := url.Values{"policy_csv": {""}, "op": {"check"},
		"subject": {"proj:hidden:r"}, "resource": {"applications"}, "action": {"sync"}, "object": {"hidden/secret-app"}}
	r = rita.post("/settings/rbac", ask)
	wantPage(t, r, 200, "answer-yes", "<li><code>"+hidden+"</code></li>")
	if strings.Contains(between(r.body, `id="explain-answer"`, "</div>"), "applications, *") {
		t.Errorf("rita's answer shows the line of project hidden:\n%s", r.body)
	}
	wantPage(t, admin.post("/settings/rbac", ask), 200, "<li><code>p, proj:hidden:r, applications, *, hidden/secret-app, allow</code></li>")
}

// TestDashboardRBACCheckRefusesADraftOverTheReachLimit: a reader of the
// settings asks for a check of a draft whose roles form a chain (8,000
// roles, each joining the next, about 220 KB): its reach grows with the
// square of its length, and the check refuses it, naming the limit,
// instead of resolving it.
func TestDashboardRBACCheckRefusesADraftOverTheReachLimit(t *testing.T) {
	t.Parallel()
	_, _, rita, _ := newRBACEnv(t)
	var b strings.Builder
	for i := range 8000 {
		b.WriteString("p,r" + strconv.Itoa(i) + ",a,b,c\ng,r" + strconv.Itoa(i) + ",r" + strconv.Itoa(i+1) + "\n")
	}
	r := rita.post("/settings/rbac", url.Values{"policy_csv": {b.String()}, "op": {"check"}})
	wantPage(t, r, 200, "the policy's role graph is too large", strconv.Itoa(policy.MaxReach)+" steps (the reach limit)")
}
