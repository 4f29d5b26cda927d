package cli

import (
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
)

var testApps = []gatehouse.Application{
	{
		Name: "web", Project: "shop", CreatedAt: testNow.Add(-48 * time.Hour),
		Spec:   gatehouse.AppSpec{RepoURL: "https://git.example.com/shop.git", Path: "deploy/web", TargetRevision: "HEAD", Destination: gatehouse.AppDestination{Server: "https://kubernetes.default.svc", Namespace: "shop"}},
		Status: gatehouse.AppStatus{Sync: "Synced", Health: "Healthy", Revision: "4f2a9c1", Message: "all good", ReportedAt: testNow.Add(-5 * time.Minute)},
	},
	{
		Name: "worker", Project: "shop", CreatedAt: testNow.Add(-24 * time.Hour),
		Spec: gatehouse.AppSpec{RepoURL: "https://git.example.com/shop.git", Path: "deploy/worker", TargetRevision: "v1.2.0", Destination: gatehouse.AppDestination{Server: "https://prod.example.com", Namespace: "jobs"}},
	},
}

var testOps = []gatehouse.Operation{
	{ID: "op-2", Application: "web", State: gatehouse.OpRunning, Revision: "4f2a9c1", Prune: true, RequestedBy: "alice", CreatedAt: testNow.Add(-2 * time.Minute), UpdatedAt: testNow.Add(-time.Minute)},
	{ID: "op-1", Application: "web", State: gatehouse.OpFailed, DryRun: true, RequestedBy: "ci", CreatedAt: testNow.Add(-time.Hour), UpdatedAt: testNow.Add(-59 * time.Minute), Message: "manifest invalid"},
}

func TestApplicationReadCommandsGolden(t *testing.T) {
	api := newFakeAPI(t, map[string]http.HandlerFunc{
		"GET /api/v1/applications":                reply(gatehouse.List[gatehouse.Application]{Items: testApps}),
		"GET /api/v1/applications/web":            reply(testApps[0]),
		"GET /api/v1/applications/web/operations": reply(gatehouse.List[gatehouse.Operation]{Items: testOps}),
	})
	r := authed(t, api)
	tests := []struct {
		golden    string
		args      []string
		wantQuery string
		path      string
	}{
		{"app_list", []string{"app", "list"}, "", "/api/v1/applications"},
		{"app_list", []string{"app", "list", "--project", "shop"}, "project=shop", "/api/v1/applications"},
		{"app_get", []string{"app", "get", "web"}, "", "/api/v1/applications/web"},
		{"app_operations", []string{"app", "operations", "web"}, "", "/api/v1/applications/web/operations"},
		{"app_operations", []string{"app", "operations", "web", "--state", "Running"}, "state=Running", "/api/v1/applications/web/operations"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			res := r.run(t, tt.args...)
			mustSucceed(t, res)
			golden(t, tt.golden, res.stdout)
			if got := api.last(t, "GET", tt.path).query; got != tt.wantQuery {
				t.Errorf("query = %q, want %q", got, tt.wantQuery)
			}
		})
	}
}

func TestApplicationWrites(t *testing.T) {
	op := gatehouse.Operation{ID: "op-3", Application: "web", State: gatehouse.OpPending, Revision: "v2", Prune: true, RequestedBy: "admin", CreatedAt: testNow, UpdatedAt: testNow}
	api := newFakeAPI(t, map[string]http.HandlerFunc{
		"POST /api/v1/applications":           reply(testApps[0]),
		"DELETE /api/v1/applications/{n}":     reply(struct{}{}),
		"POST /api/v1/applications/{n}/sync":  reply(op),
		"PUT /api/v1/applications/{n}/status": reply(testApps[0]),
		"PUT /api/v1/applications/{n}/operations/{id}": func(w http.ResponseWriter, r *http.Request) {
			var in gatehouse.OperationReport
			_ = jsonDecoder(r).Decode(&in)
			o := op
			o.ID, o.State = r.PathValue("id"), in.State
			writeJSON(w, o)
		},
	})
	r := authed(t, api)

	res := r.run(t, "app", "create", "web", "--project", "shop", "--repo", "https://git.example.com/shop.git", "--path", "deploy/web",
		"--dest-server", "https://kubernetes.default.svc", "--dest-namespace", "shop")
	mustSucceed(t, res)
	gotApp := decodeBody[gatehouse.Application](t, api.last(t, "POST", "/api/v1/applications"))
	wantApp := gatehouse.Application{Name: "web", Project: "shop", Spec: testApps[0].Spec}
	if !reflect.DeepEqual(gotApp, wantApp) {
		t.Errorf("create %+v, want %+v", gotApp, wantApp)
	}
	mustFail(t, r.run(t, "app", "create", "x", "--project", "shop"), "required flag(s)")

	res = r.run(t, "app", "sync", "web", "--revision", "v2", "--prune")
	mustSucceed(t, res)
	golden(t, "app_sync", res.stdout)
	if got := decodeBody[gatehouse.SyncRequest](t, api.last(t, "POST", "/api/v1/applications/web/sync")); got != (gatehouse.SyncRequest{Revision: "v2", Prune: true}) {
		t.Errorf("sync %+v", got)
	}
	mustSucceed(t, r.run(t, "app", "sync", "web", "--dry-run"))
	if got := decodeBody[gatehouse.SyncRequest](t, api.last(t, "POST", "/api/v1/applications/web/sync")); got != (gatehouse.SyncRequest{DryRun: true}) {
		t.Errorf("sync --dry-run %+v", got)
	}

	res = r.run(t, "app", "set-status", "web", "--sync", "Synced", "--health", "Healthy", "--revision", "4f2a9c1", "--message", "ok")
	mustSucceed(t, res)
	if got := decodeBody[gatehouse.StatusReport](t, api.last(t, "PUT", "/api/v1/applications/web/status")); got != (gatehouse.StatusReport{Sync: "Synced", Health: "Healthy", Revision: "4f2a9c1", Message: "ok"}) {
		t.Errorf("status %+v", got)
	}
	mustFail(t, r.run(t, "app", "set-status", "web", "--sync", "Synced"), `required flag(s) "health" not set`)

	res = r.run(t, "app", "report-operation", "web", "op-3", "--state", "Failed", "--message", "boom")
	mustSucceed(t, res)
	if want := "operation op-3 of application 'web' is Failed\n"; res.stdout != want {
		t.Errorf("stdout = %q, want %q", res.stdout, want)
	}
	if got := decodeBody[gatehouse.OperationReport](t, api.last(t, "PUT", "/api/v1/applications/web/operations/op-3")); got != (gatehouse.OperationReport{State: "Failed", Message: "boom"}) {
		t.Errorf("report %+v", got)
	}

	mustSucceed(t, r.run(t, "app", "delete", "web"))
	api.last(t, "DELETE", "/api/v1/applications/web")
}

func TestApplicationNotFound(t *testing.T) {
	api := newFakeAPI(t, map[string]http.HandlerFunc{
		"GET /api/v1/applications/{n}": replyError(http.StatusNotFound, gatehouse.ENOTFOUND, "application 'nope' not found"),
	})
	res := authed(t, api).run(t, "app", "get", "nope")
	mustFail(t, res, "")
	if want := "error: application 'nope' not found\n"; res.stderr != want {
		t.Errorf("stderr = %q, want %q", res.stderr, want)
	}
}
