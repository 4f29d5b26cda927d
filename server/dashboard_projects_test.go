package server_test

import (
	"encoding/json"
	"html"
	"net/http"
	"net/url"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse"
)

// The project and role forms, through the real server: each change
// succeeds for a user the policy allows, and a refused one (invalid
// input, no permission, a cross-site post) changes nothing.

// projectPolicy lets the group viewers read every project and nothing
// else.
const projectPolicy = "p, role:viewer, projects, get, *, allow\ng, viewers, role:viewer"

var crossSite = []string{"Origin", "https://evil.example", "Sec-Fetch-Site", "cross-site"}

// newProjectEnv is a dashboard env with the project team-a (role
// deployer, one role token), an admin and a viewer (vera, who may only
// read projects) logged in.
func newProjectEnv(t *testing.T) (e *env, admin, vera *web, roleToken gatehouse.NewToken) {
	t.Helper()
	e = newDashEnv(t, withPolicy(projectPolicy, ""))
	e.call("POST", "/api/v1/projects", e.admin, gatehouse.Project{Name: "team-a", Description: "Team A",
		Roles: []gatehouse.ProjectRole{{Name: "deployer", Policies: []string{"p, proj:team-a:deployer, applications, sync, team-a/*, allow"}, Groups: []string{"deployers"}}}}, 200, nil)
	e.call("POST", "/api/v1/projects/team-a/roles/deployer/token", e.admin, gatehouse.TokenRequest{Name: "ci"}, 200, &roleToken)
	e.remember(roleToken.Token)
	e.createUser("vera", "viewers")
	admin, vera = newWeb(t, e), newWeb(t, e)
	admin.login("admin", adminPassword)
	vera.login("vera", "vera-password")
	return e, admin, vera, roleToken
}

// project reads a project through the API: (project, HTTP status).
func (e *env) project(name string) (gatehouse.Project, int) {
	e.t.Helper()
	var pr gatehouse.Project
	status, body := e.do("GET", "/api/v1/projects/"+name, e.admin, nil)
	if status == 200 {
		if err := json.Unmarshal(body, &pr); err != nil {
			e.t.Fatalf("decoding %s: %v", body, err)
		}
	}
	return pr, status
}

// unchanged fails the test if team-a differs from before.
func (e *env) unchanged(before gatehouse.Project, what string) {
	e.t.Helper()
	after, status := e.project(before.Name)
	if status != 200 || !reflect.DeepEqual(after, before) {
		e.t.Errorf("%s changed the project:\nbefore %+v\nafter  %+v (status %d)", what, before, after, status)
	}
}

// wantPage checks a rendered (not redirected) answer: its status and
// that its text contains every want.
func wantPage(t *testing.T, r resp, status int, want ...string) {
	t.Helper()
	text := html.UnescapeString(r.body)
	if r.status != status {
		t.Errorf("status %d, want %d; body:\n%s", r.status, status, r.body)
		return
	}
	for _, s := range want {
		if !strings.Contains(text, s) {
			t.Errorf("the page lacks %q:\n%s", s, r.body)
		}
	}
}

func TestDashboardProjectCreate(t *testing.T) {
	t.Parallel()
	e, admin, vera, _ := newProjectEnv(t)

	if list := admin.get("/projects"); !strings.Contains(list.body, `action="/projects"`) {
		t.Errorf("the admin's project list lacks the create form")
	}
	if list := vera.get("/projects"); list.status != 200 || strings.Contains(list.body, `action="/projects"`) {
		t.Errorf("vera's project list (%d) offers the create form", list.status)
	}

	for name, tc := range map[string]struct {
		w       *web
		form    url.Values
		hdr     []string
		status  int
		message string
	}{
		"fail/not a DNS label": {admin, url.Values{"name": {"Team B!"}, "description": {"kept text"}}, nil, 400, "project name must be a DNS label"},
		"fail/exists":          {admin, url.Values{"name": {"team-a"}}, nil, 409, `project "team-a" already exists`},
		"fail/forbidden":       {vera, url.Values{"name": {"team-v"}}, nil, 403, "permission denied: projects, create, team-v"},
		"fail/cross-site":      {admin, url.Values{"name": {"team-x"}}, crossSite, 403, ""},
	} {
		t.Run(name, func(t *testing.T) {
			before, _ := e.project("team-a")
			r := tc.w.post("/projects", tc.form, tc.hdr...)
			if tc.message == "" {
				if r.status != tc.status {
					t.Fatalf("status %d, want %d", r.status, tc.status)
				}
			} else {
				wantPage(t, r, tc.status, tc.message)
			}
			if n := tc.form.Get("name"); n != "team-a" {
				if _, status := e.project(url.PathEscape(n)); status != 404 {
					t.Errorf("refused create: project %q answers %d, want 404", n, status)
				}
			}
			e.unchanged(before, name)
			if d := tc.form.Get("description"); d != "" && !strings.Contains(r.body, `value="`+d+`"`) {
				t.Errorf("the form lost the description %q", d)
			}
		})
	}

	admin.wantRedirect(admin.post("/projects", url.Values{"name": {"team-b"}, "description": {"Team B's services"}}), "/projects/team-b?notice=project-created")
	pr, status := e.project("team-b")
	if status != 200 || pr.Description != "Team B's services" || len(pr.Roles) != 0 {
		t.Fatalf("created project: %d %+v", status, pr)
	}
	wantPage(t, admin.get("/projects/team-b?notice=project-created"), 200, "Project created.", "This project has no roles.")

	// The audit trail records the dashboard's create as the API's.
	e.svc.Flush(t.Context())
	var events gatehouse.List[gatehouse.Event]
	e.call("GET", "/api/v1/audit?type=project.changed&actor=admin", e.admin, nil, 200, &events)
	found := false
	for _, ev := range events.Items {
		found = found || (ev.Action == "create" && ev.Object == "team-b")
	}
	if !found {
		t.Errorf("no project.changed event for the create: %+v", events.Items)
	}
}

func TestDashboardProjectEdit(t *testing.T) {
	t.Parallel()
	e, admin, vera, _ := newProjectEnv(t)

	page := admin.get("/projects/team-a")
	for _, want := range []string{`href="/projects/team-a/edit"`, `href="/projects/team-a/roles/new"`, `href="/projects/team-a/roles/deployer/edit"`, `action="/projects/team-a/delete"`} {
		if !strings.Contains(page.body, want) {
			t.Errorf("the admin's project page lacks %s", want)
		}
	}
	page = vera.get("/projects/team-a")
	if page.status != 200 {
		t.Fatalf("vera's project page: %d", page.status)
	}
	for _, hidden := range []string{"/projects/team-a/edit", "/projects/team-a/roles/new", "/roles/deployer/edit", "/projects/team-a/delete", "/tokens/new", "/revoke"} {
		if strings.Contains(page.body, hidden) {
			t.Errorf("vera's project page offers %s", hidden)
		}
	}
	wantPage(t, admin.get("/projects/team-a/edit"), 200, "Edit project", `Team A</textarea>`)
	if r := vera.get("/projects/team-a/edit"); r.status != http.StatusForbidden {
		t.Errorf("vera opening the edit form: %d, want 403", r.status)
	}

	for name, tc := range map[string]struct {
		w       *web
		form    url.Values
		hdr     []string
		status  int
		message string
	}{
		"fail/description too long": {admin, url.Values{"description": {strings.Repeat("d", 4097)}}, nil, 400, "description is at most 4096 bytes"},
		"fail/forbidden":            {vera, url.Values{"description": {"vera's"}}, nil, 403, "permission denied: projects, update, team-a"},
		"fail/cross-site":           {admin, url.Values{"description": {"evil"}}, crossSite, 403, ""},
	} {
		t.Run(name, func(t *testing.T) {
			before, _ := e.project("team-a")
			r := tc.w.post("/projects/team-a/edit", tc.form, tc.hdr...)
			if r.status != tc.status || !strings.Contains(html.UnescapeString(r.body), tc.message) {
				t.Errorf("got %d, want %d with %q:\n%s", r.status, tc.status, tc.message, r.body)
			}
			e.unchanged(before, name)
		})
	}

	before, _ := e.project("team-a")
	admin.wantRedirect(admin.post("/projects/team-a/edit", url.Values{"description": {"Team A, shop and web\r\nsecond line"}}), "/projects/team-a?notice=project-updated")
	after, _ := e.project("team-a")
	if after.Description != "Team A, shop and web\nsecond line" || !reflect.DeepEqual(after.Roles, before.Roles) {
		t.Errorf("after the edit: %+v, want the new description and the roles as before", after)
	}
}

func TestDashboardProjectDelete(t *testing.T) {
	t.Parallel()
	e, admin, vera, roleToken := newProjectEnv(t)
	e.call("POST", "/api/v1/applications", e.admin, gatehouse.Application{Name: "web", Project: "team-a",
		Spec: gatehouse.AppSpec{RepoURL: "https://git.example/web.git", Destination: gatehouse.AppDestination{Namespace: "web"}}}, 200, nil)

	for name, tc := range map[string]struct {
		w       *web
		confirm string
		hdr     []string
		status  int
		message string
	}{
		"fail/no confirmation":    {admin, "", nil, 400, "type its name, team-a,"},
		"fail/wrong confirmation": {admin, "team-b", nil, 400, "type its name, team-a,"},
		"fail/still has apps":     {admin, "team-a", nil, 412, `project "team-a" still has 1 application(s)`},
		"fail/forbidden":          {vera, "team-a", nil, 403, "permission denied: projects, delete, team-a"},
		"fail/cross-site":         {admin, "team-a", crossSite, 403, ""},
	} {
		t.Run(name, func(t *testing.T) {
			before, _ := e.project("team-a")
			r := tc.w.post("/projects/team-a/delete", url.Values{"confirm": {tc.confirm}}, tc.hdr...)
			if r.status != tc.status || !strings.Contains(html.UnescapeString(r.body), tc.message) {
				t.Errorf("got %d, want %d with %q:\n%s", r.status, tc.status, tc.message, r.body)
			}
			e.unchanged(before, name)
			if s := e.status("GET", "/api/v1/session/userinfo", roleToken.Token, nil); s != 200 {
				t.Errorf("the role token after a refused delete: %d, want 200", s)
			}
		})
	}

	e.call("DELETE", "/api/v1/applications/web", e.admin, nil, 200, nil)
	admin.wantRedirect(admin.post("/projects/team-a/delete", url.Values{"confirm": {"team-a"}}), "/projects?notice=project-deleted")
	if _, status := e.project("team-a"); status != 404 {
		t.Errorf("deleted project answers %d, want 404", status)
	}
	if s := e.status("GET", "/api/v1/session/userinfo", roleToken.Token, nil); s != 401 {
		t.Errorf("role token of a deleted project: %d, want 401", s)
	}
	wantPage(t, admin.get("/projects?notice=project-deleted"), 200, "Project deleted.")
}

func TestDashboardProjectRoleForms(t *testing.T) {
	t.Parallel()
	e, admin, vera, roleToken := newProjectEnv(t)
	e.createUser("dana", "shippers")
	dana := e.login("dana", "dana-password")

	wantPage(t, admin.get("/projects/team-a/roles/new"), 200, "New role", "p, proj:team-a:<role>, applications")
	wantPage(t, admin.get("/projects/team-a/roles/deployer/edit"), 200, "p, proj:team-a:deployer, applications, sync, team-a/*, allow</textarea>", `value="deployers"`)
	for _, path := range []string{"/projects/team-a/roles/new", "/projects/team-a/roles/deployer/edit"} {
		if r := vera.get(path); r.status != http.StatusForbidden {
			t.Errorf("vera opening %s: %d, want 403", path, r.status)
		}
	}
	if r := admin.get("/projects/team-a/roles/nobody/edit"); r.status != http.StatusNotFound {
		t.Errorf("editing an unknown role: %d, want 404", r.status)
	}

	// Every refusal leaves the project (and the role's token) as it was.
	bad := "p, proj:team-a:shipper, applications, sync, team-b/*, allow\n\n" + // line 1: another project
		"p, proj:team-a:shipper, applications, get, team-a/*, allow\r\n" + // line 3: fine
		"p, proj:team-a:shipper, applications, get\n" + // line 4: too few fields
		"g, shippers, proj:team-a:shipper" // line 5: not a p line
	for name, tc := range map[string]struct {
		w      *web
		path   string
		form   url.Values
		hdr    []string
		status int
		want   []string
	}{
		"fail/bad policy lines": {admin, "/projects/team-a/roles/new",
			url.Values{"name": {"shipper"}, "policies": {bad}, "groups": {"shippers"}}, nil, 400,
			[]string{`role "shipper" policy 1`, "Line 1", "object must lie under team-a/", "Line 4", "Line 5", "only p lines are allowed", "p, proj:team-a:shipper, applications, get\n", `value="shippers"`}},
		"fail/duplicate role": {admin, "/projects/team-a/roles/new",
			url.Values{"name": {"deployer"}}, nil, 409, []string{`already has a role`}},
		"fail/bad role name": {admin, "/projects/team-a/roles/new",
			url.Values{"name": {"-ship-"}}, nil, 400, []string{`role name "-ship-"`}},
		"fail/reserved group": {admin, "/projects/team-a/roles/deployer/edit",
			url.Values{"policies": {"p, proj:team-a:deployer, applications, sync, team-a/*, allow"}, "groups": {"role:admin"}}, nil, 400, []string{"group names may not start with role:"}},
		"fail/edit bad line": {admin, "/projects/team-a/roles/deployer/edit",
			url.Values{"policies": {"p, proj:team-a:deployer, applications, sync, team-a/*, allow\np, proj:team-a:other, applications, sync, team-a/*, allow"}}, nil, 400,
			[]string{"Line 2", "subject must be proj:team-a:deployer"}},
		"fail/create forbidden": {vera, "/projects/team-a/roles/new",
			url.Values{"name": {"vera"}}, nil, 403, []string{"permission denied: projects, update, team-a"}},
		"fail/edit forbidden": {vera, "/projects/team-a/roles/deployer/edit",
			url.Values{"groups": {"viewers"}}, nil, 403, []string{"permission denied: projects, update, team-a"}},
		"fail/delete forbidden": {vera, "/projects/team-a/roles/deployer/delete", nil, nil, 403, []string{"permission denied: projects, update, team-a"}},
		"fail/create cross-site": {admin, "/projects/team-a/roles/new",
			url.Values{"name": {"evil"}}, crossSite, 403, nil},
		"fail/edit cross-site": {admin, "/projects/team-a/roles/deployer/edit",
			url.Values{"groups": {"evil"}}, crossSite, 403, nil},
		"fail/delete cross-site": {admin, "/projects/team-a/roles/deployer/delete", nil, crossSite, 403, nil},
		"fail/delete unknown":    {admin, "/projects/team-a/roles/nobody/delete", nil, nil, 404, []string{`project "team-a" has no role "nobody"`}},
	} {
		t.Run(name, func(t *testing.T) {
			before, _ := e.project("team-a")
			r := tc.w.post(tc.path, tc.form, tc.hdr...)
			wantPage(t, r, tc.status, tc.want...)
			e.unchanged(before, name)
			if s := e.status("GET", "/api/v1/session/userinfo", roleToken.Token, nil); s != 200 {
				t.Errorf("the role token after a refused change: %d, want 200", s)
			}
		})
	}
	// A bad line is named by its line in the box, with aria-invalid.
	r := admin.post("/projects/team-a/roles/new", url.Values{"name": {"shipper"}, "policies": {bad}})
	for _, want := range []string{`aria-invalid="true"`, `data-line="1">Line 1</a>`, `data-line="4">Line 4</a>`, `data-line="5">Line 5</a>`} {
		if !strings.Contains(r.body, want) {
			t.Errorf("the refused form lacks %s", want)
		}
	}
	if strings.Contains(r.body, `data-line="3"`) || strings.Contains(r.body, `data-line="2"`) {
		t.Errorf("a good or blank line is marked as bad:\n%s", r.body)
	}

	// Create a role with a policy; bind a group; the group's member may
	// then do what the role allows, inside the project only.
	admin.wantRedirect(admin.post("/projects/team-a/roles/new", url.Values{"name": {"shipper"}, "description": {"Ships"},
		"policies": {"p, proj:team-a:shipper, applications, get, team-a/*, allow\r\n\r\n"}}), "/projects/team-a?notice=role-created")
	pr, _ := e.project("team-a")
	shipper, ok := pr.Role("shipper")
	if !ok || shipper.Description != "Ships" || !reflect.DeepEqual(shipper.Policies, []string{"p, proj:team-a:shipper, applications, get, team-a/*, allow"}) || len(shipper.Groups) != 0 {
		t.Fatalf("created role: %+v", pr.Roles)
	}
	var can gatehouse.CanI
	e.call("GET", "/api/v1/account/can-i/applications/get/team-a/web", dana, nil, 200, &can)
	if can.Value != "no" {
		t.Fatalf("dana before the binding: %s", can.Value)
	}
	admin.wantRedirect(admin.post("/projects/team-a/roles/shipper/edit", url.Values{"description": {"Ships"},
		"policies": {shipper.Policies[0] + "\np, proj:team-a:shipper, applications, sync, team-a/*, allow"}, "groups": {"shippers, qa"},
		"name": {"renamed"}}), "/projects/team-a?notice=role-updated")
	pr, _ = e.project("team-a")
	shipper, ok = pr.Role("shipper")
	if !ok || len(shipper.Policies) != 2 || !reflect.DeepEqual(shipper.Groups, []string{"shippers", "qa"}) {
		t.Fatalf("edited role (the name stays): %+v", pr.Roles)
	}
	for _, path := range []string{"applications/sync/team-a/web", "applications/sync/team-b/web"} {
		e.call("GET", "/api/v1/account/can-i/"+path, dana, nil, 200, &can)
		if want := map[bool]string{true: "yes", false: "no"}[strings.Contains(path, "team-a")]; can.Value != want {
			t.Errorf("dana bound through shippers: %s = %s, want %s", path, can.Value, want)
		}
	}
	page := admin.get("/projects/team-a?notice=role-updated")
	wantPage(t, page, 200, "Role saved.", `<li class="chip">shippers</li>`, `id="role-shipper"`)

	// Deleting a role revokes its tokens and keeps the others.
	shipTok := admin.generate("/projects/team-a/roles/shipper/tokens/new", url.Values{"name": {"ship-ci"}, "expiration": {"1h0m0s"}})
	if r := admin.get("/projects/team-a/roles/shipper/edit"); !strings.Contains(r.body, "Its tokens stop working at once") {
		t.Errorf("the role form does not say what deleting revokes:\n%s", r.body)
	}
	admin.wantRedirect(admin.post("/projects/team-a/roles/shipper/delete", nil), "/projects/team-a?notice=role-deleted")
	pr, _ = e.project("team-a")
	if _, ok := pr.Role("shipper"); ok || len(pr.Roles) != 1 {
		t.Errorf("after deleting shipper: %+v", pr.Roles)
	}
	if s := e.status("GET", "/api/v1/session/userinfo", shipTok, nil); s != 401 {
		t.Errorf("token of a deleted role: %d, want 401", s)
	}
	if s := e.status("GET", "/api/v1/session/userinfo", roleToken.Token, nil); s != 200 {
		t.Errorf("token of the other role: %d, want 200", s)
	}
}

// TestDashboardProjectAndRBACPagesAreAccessible holds the new pages to
// the dashboard's rules: every control has a <label for>, no inline
// script or style, and a GET of a form's address changes nothing.
func TestDashboardProjectAndRBACPagesAreAccessible(t *testing.T) {
	t.Parallel()
	e, admin, _, roleToken := newProjectEnv(t)
	before, _ := e.project("team-a")
	pages := map[string]resp{}
	for _, path := range []string{
		"/projects", "/projects/team-a", "/projects/team-a/edit", "/projects/team-a/roles/new",
		"/projects/team-a/roles/deployer/edit", "/settings/rbac",
		// Addresses that change state on POST only.
		"/projects/team-a/delete?confirm=team-a", "/projects/team-a/roles/deployer/delete",
	} {
		pages[path] = admin.get(path)
	}
	pages["POST refused role"] = admin.post("/projects/team-a/roles/new", url.Values{"name": {"x"}, "policies": {"p, nope"}})
	pages["POST refused policy"] = admin.post("/settings/rbac", url.Values{"policy_csv": {"p, nope"}, "op": {"save"}})
	pages["POST explain"] = admin.post("/settings/rbac", url.Values{"op": {"check"}, "subject": {"admin"}, "resource": {"projects"}, "action": {"get"}, "object": {"team-a"}})
	e.unchanged(before, "GETs")
	if s := e.status("GET", "/api/v1/session/userinfo", roleToken.Token, nil); s != 200 {
		t.Errorf("the role token after GETs: %d", s)
	}

	controlRE := regexp.MustCompile(`<(input|select|textarea)\b[^>]*>`)
	idRE := regexp.MustCompile(`\bid="([^"]+)"`)
	for path, r := range pages {
		if strings.HasSuffix(path, "/delete") || strings.Contains(path, "/delete?") {
			if r.status != http.StatusMethodNotAllowed && r.status != http.StatusNotFound {
				t.Errorf("GET %s: %d, want 405 or 404", path, r.status)
			}
			continue
		}
		if r.status >= 500 {
			t.Errorf("%s: %d", path, r.status)
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
		for _, bad := range []string{"<script>", " style=", "<style", "onclick=", "onsubmit=", "javascript:"} {
			if strings.Contains(r.body, bad) {
				t.Errorf("%s: contains %q (the CSP forbids inline code and styles)", path, bad)
			}
		}
	}
}
