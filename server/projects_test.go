package server_test

import (
	"fmt"
	"sync"
	"testing"

	"github.com/gatehouse/gatehouse"
)

func app(name, project string) gatehouse.Application {
	return gatehouse.Application{Name: name, Project: project, Spec: gatehouse.AppSpec{
		RepoURL: "https://git.example/" + project + ".git", Path: "deploy",
		Destination: gatehouse.AppDestination{Server: "https://kubernetes.default.svc", Namespace: project},
	}}
}

// teams creates projects team-a (role deployer: sync team-a/*) and team-b,
// each with an application "web"/"api".
func teams(e *env) {
	e.t.Helper()
	e.call("POST", "/api/v1/projects", e.admin, gatehouse.Project{Name: "team-a", Roles: []gatehouse.ProjectRole{{
		Name: "deployer", Policies: []string{"p, proj:team-a:deployer, applications, sync, team-a/*, allow"},
	}}}, 200, nil)
	e.call("POST", "/api/v1/projects", e.admin, gatehouse.Project{Name: "team-b"}, 200, nil)
	e.call("POST", "/api/v1/applications", e.admin, app("web", "team-a"), 200, nil)
	e.call("POST", "/api/v1/applications", e.admin, app("api", "team-b"), 200, nil)
}

func roleToken(e *env, project, role string) gatehouse.NewToken {
	e.t.Helper()
	var nt gatehouse.NewToken
	e.call("POST", "/api/v1/projects/"+project+"/roles/"+role+"/token", e.admin, gatehouse.TokenRequest{Name: "ci"}, 200, &nt)
	e.remember(nt.Token)
	return nt
}

func TestProjectRoleTokenIsConfinedToItsProject(t *testing.T) {
	e := newEnv(t)
	teams(e)
	tok := roleToken(e, "team-a", "deployer").Token

	if s, b := e.do("POST", "/api/v1/applications/web/sync", tok, gatehouse.SyncRequest{}); s != 200 {
		t.Fatalf("sync team-a/web: %d %s", s, b)
	}
	if s := e.status("POST", "/api/v1/applications/api/sync", tok, gatehouse.SyncRequest{}); s != 403 {
		t.Fatalf("sync team-b/api: %d, want 403", s)
	}
	if s := e.status("POST", "/api/v1/applications", tok, app("new", "team-a")); s != 403 {
		t.Fatalf("create application: %d, want 403", s)
	}
	if s := e.status("GET", "/api/v1/projects/team-a", tok, nil); s != 200 {
		t.Fatalf("implicit get of own project: %d", s)
	}
	if s := e.status("GET", "/api/v1/projects/team-b", tok, nil); s != 403 {
		t.Fatalf("get other project: %d, want 403", s)
	}

	// Deleting the role kills the token at once.
	e.call("PUT", "/api/v1/projects/team-a", e.admin, gatehouse.Project{Name: "team-a"}, 200, nil)
	if s := e.status("POST", "/api/v1/applications/web/sync", tok, gatehouse.SyncRequest{}); s != 401 {
		t.Fatalf("after role deletion: %d, want 401", s)
	}
}

func TestCrossProjectRulesHoldEvenIfThePolicySaysOtherwise(t *testing.T) {
	e := newEnv(t)
	teams(e)
	tok := roleToken(e, "team-a", "deployer").Token
	// A global line that tries to widen the project role is ignored for
	// objects of other projects.
	e.setPolicy("p, proj:team-a:deployer, applications, *, *, allow\np, proj:team-a:deployer, projects, get, *, allow", "")
	if s := e.status("POST", "/api/v1/applications/api/sync", tok, gatehouse.SyncRequest{}); s != 403 {
		t.Fatalf("sync other project via global line: %d, want 403", s)
	}
	if s := e.status("GET", "/api/v1/projects/team-b", tok, nil); s != 403 {
		t.Fatalf("get other project via global line: %d, want 403", s)
	}
	if s := e.status("GET", "/api/v1/applications/web", tok, nil); s != 200 {
		t.Fatalf("get own application: %d", s)
	}
}

func TestRoleLinesAreValidated(t *testing.T) {
	e := newEnv(t)
	e.call("POST", "/api/v1/projects", e.admin, gatehouse.Project{Name: "team-a"}, 200, nil)
	bad := map[string]string{
		"other project": "p, proj:team-a:r, applications, get, team-b/*, allow",
		"other subject": "p, proj:team-b:r, applications, get, team-a/*, allow",
		"a user":        "p, alice, applications, get, team-a/*, allow",
		"other kind":    "p, proj:team-a:r, accounts, get, team-a/*, allow",
		"g line":        "g, proj:team-a:r, role:admin",
		"wildcard obj":  "p, proj:team-a:r, applications, get, *, allow",
		"malformed":     "p, proj:team-a:r, applications",
	}
	for name, line := range bad {
		pr := gatehouse.Project{Name: "team-a", Roles: []gatehouse.ProjectRole{{Name: "r", Policies: []string{line}}}}
		s, b := e.do("PUT", "/api/v1/projects/team-a", e.admin, pr)
		if s != 400 || !contains(b, "policy 1") {
			t.Errorf("%s: %d %s, want 400 naming the line", name, s, b)
		}
	}
	if s := e.status("PUT", "/api/v1/projects/team-a", e.admin, gatehouse.Project{Name: "team-a", Roles: []gatehouse.ProjectRole{{Name: "-bad-"}}}); s != 400 {
		t.Errorf("bad role name: %d, want 400", s)
	}
	var pr gatehouse.Project
	e.call("GET", "/api/v1/projects/team-a", e.admin, nil, 200, &pr)
	if len(pr.Roles) != 0 {
		t.Fatalf("refused updates changed the project: %+v", pr)
	}
}

func TestMonitoringTokenReadsButCannotSync(t *testing.T) {
	e := newEnv(t)
	teams(e)
	e.call("POST", "/api/v1/account", e.admin, gatehouse.AccountCreate{Name: "monitor", Capabilities: []gatehouse.Capability{"apiKey"}}, 200, nil)
	e.setPolicy("g, monitor, role:readonly", "")
	tok := e.mint(e.admin, "monitor", gatehouse.TokenRequest{Name: "grafana"}).Token

	var list gatehouse.List[gatehouse.Application]
	e.call("GET", "/api/v1/applications", tok, nil, 200, &list)
	if len(list.Items) != 2 {
		t.Fatalf("monitor sees %d applications, want 2", len(list.Items))
	}
	var a gatehouse.Application
	e.call("GET", "/api/v1/applications/web", tok, nil, 200, &a)
	if a.Status.Health != "Unknown" {
		t.Errorf("health = %q", a.Status.Health)
	}
	if s := e.status("POST", "/api/v1/applications/web/sync", tok, gatehouse.SyncRequest{}); s != 403 {
		t.Fatalf("monitor sync: %d, want 403", s)
	}
}

func TestListShowsOnlyWhatTheCallerMayGet(t *testing.T) {
	e := newEnv(t)
	teams(e)
	e.createUser("ann")
	e.setPolicy("p, ann, applications, get, team-a/*, allow", "")
	var list gatehouse.List[gatehouse.Application]
	e.call("GET", "/api/v1/applications", e.login("ann", "ann-password"), nil, 200, &list)
	if len(list.Items) != 1 || list.Items[0].Name != "web" {
		t.Fatalf("ann sees %+v, want only web", list.Items)
	}
}

func TestOperationLifecycle(t *testing.T) {
	e := newEnv(t)
	teams(e)
	var op gatehouse.Operation
	e.call("POST", "/api/v1/applications/web/sync", e.admin, gatehouse.SyncRequest{Revision: "v1.2.3", Prune: true}, 200, &op)
	if op.State != "Pending" || op.RequestedBy != "admin" || op.Revision != "v1.2.3" || !op.Prune {
		t.Fatalf("new operation = %+v", op)
	}
	path := "/api/v1/applications/web/operations/" + op.ID
	steps := []struct {
		state string
		want  int
	}{
		{"Succeeded", 412}, // Pending cannot jump to Succeeded
		{"Running", 200},
		{"Pending", 412},
		{"Running", 412},
		{"Succeeded", 200},
		{"Failed", 412}, // terminal
		{"Bogus", 400},
	}
	for _, st := range steps {
		if s, b := e.do("PUT", path, e.admin, gatehouse.OperationReport{State: st.state}); s != st.want {
			t.Fatalf("move to %s: %d %s, want %d", st.state, s, b, st.want)
		}
	}
	var a gatehouse.Application
	e.call("PUT", "/api/v1/applications/web/status", e.admin, gatehouse.StatusReport{Sync: "Synced", Health: "Healthy", Revision: "v1.2.3"}, 200, &a)
	if a.Status.Health != "Healthy" || a.Status.ReportedAt.IsZero() {
		t.Fatalf("status = %+v", a.Status)
	}
	if s := e.status("PUT", "/api/v1/applications/web/status", e.admin, gatehouse.StatusReport{Sync: "Synced", Health: "Great"}); s != 400 {
		t.Fatalf("bad health: %d, want 400", s)
	}
}

func TestConcurrentSyncsAreAllRecorded(t *testing.T) {
	e := newEnv(t)
	teams(e)
	const n = 20
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if s, b := e.do("POST", "/api/v1/applications/web/sync", e.admin, gatehouse.SyncRequest{Revision: fmt.Sprint(i)}); s != 200 {
				errs <- fmt.Errorf("sync %d: %d %s", i, s, b)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	var ops gatehouse.List[gatehouse.Operation]
	e.call("GET", "/api/v1/applications/web/operations?state=Pending", e.admin, nil, 200, &ops)
	if len(ops.Items) != n {
		t.Fatalf("recorded %d operations, want %d", len(ops.Items), n)
	}
}

func TestProjectDeletionAndMoves(t *testing.T) {
	e := newEnv(t)
	teams(e)
	tok := roleToken(e, "team-a", "deployer").Token
	if s := e.status("DELETE", "/api/v1/projects/team-a", e.admin, nil); s != 412 {
		t.Fatalf("delete project with applications: %d, want 412", s)
	}
	// Moving needs update on both projects.
	e.createUser("mover")
	e.setPolicy("p, mover, applications, update, team-a/*, allow", "")
	mover := e.login("mover", "mover-password")
	if s := e.status("PUT", "/api/v1/applications/web", mover, app("web", "team-b")); s != 403 {
		t.Fatalf("move without rights on the target: %d, want 403", s)
	}
	e.call("PUT", "/api/v1/applications/web", e.admin, app("web", "team-b"), 200, nil)
	e.call("DELETE", "/api/v1/projects/team-a", e.admin, nil, 200, nil)
	if s := e.status("GET", "/api/v1/session/userinfo", tok, nil); s != 401 {
		t.Fatalf("role token after project deletion: %d, want 401", s)
	}
}
