package storetest

import (
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
)

func testProjects(t *testing.T, open func(t *testing.T) gatehouse.Store) {
	s := open(t)
	ctx := t.Context()
	got := read(t, s, func(tx gatehouse.Tx) ([]gatehouse.Project, error) { return tx.ListProjects(ctx) })
	if got == nil || len(got) != 0 {
		t.Errorf("ListProjects on an empty store: got %#v, want []", got)
	}

	web, api := project("web"), project("api")
	inTx(t, s, func(tx gatehouse.Tx) error {
		if err := tx.CreateProject(ctx, web); err != nil {
			return err
		}
		return tx.CreateProject(ctx, api)
	})
	p := read(t, s, func(tx gatehouse.Tx) (gatehouse.Project, error) { return tx.GetProject(ctx, "web") })
	equal(t, "GetProject", p, web)
	got = read(t, s, func(tx gatehouse.Tx) ([]gatehouse.Project, error) { return tx.ListProjects(ctx) })
	equal(t, "ListProjects sorted by name", got, []gatehouse.Project{api, web})

	// Roles are replaced as a whole: add one, change one, drop one.
	changed := web
	changed.Description = "the web shop"
	changed.Roles = []gatehouse.ProjectRole{
		{Name: "viewer", Description: "reads and logs", Policies: []string{
			"p, proj:web:viewer, applications, get, web/*, allow",
			"p, proj:web:viewer, logs, get, web/*, allow",
		}, Groups: []string{"dev"}},
		{Name: "admin", Description: "all", Policies: []string{"p, proj:web:admin, applications, *, web/*, allow"}, Groups: []string{}},
	}
	inTx(t, s, func(tx gatehouse.Tx) error { return tx.UpdateProject(ctx, changed) })
	p = read(t, s, func(tx gatehouse.Tx) (gatehouse.Project, error) { return tx.GetProject(ctx, "web") })
	equal(t, "GetProject after update", p, changed)

	inTx(t, s, func(tx gatehouse.Tx) error { return tx.DeleteProject(ctx, "web") })
	got = read(t, s, func(tx gatehouse.Tx) ([]gatehouse.Project, error) { return tx.ListProjects(ctx) })
	equal(t, "ListProjects after delete", got, []gatehouse.Project{api})
}

func testApplications(t *testing.T, open func(t *testing.T) gatehouse.Store) {
	s := open(t)
	ctx := t.Context()
	apps := []gatehouse.Application{
		application("web-front", "web"),
		application("api-gw", "api"),
		application("web-back", "web"),
		application("batch", "api"),
		application("web-admin", "web"),
	}
	inTx(t, s, func(tx gatehouse.Tx) error {
		for _, a := range apps {
			if err := tx.CreateApplication(ctx, a); err != nil {
				return err
			}
		}
		return nil
	})
	got := read(t, s, func(tx gatehouse.Tx) (gatehouse.Application, error) { return tx.GetApplication(ctx, "web-back") })
	equal(t, "GetApplication", got, apps[2])

	lists := []struct {
		project string
		want    []gatehouse.Application
	}{
		{"", []gatehouse.Application{apps[1], apps[3], apps[4], apps[2], apps[0]}},
		{"web", []gatehouse.Application{apps[4], apps[2], apps[0]}},
		{"api", []gatehouse.Application{apps[1], apps[3]}},
		{"nope", []gatehouse.Application{}},
	}
	for _, tc := range lists {
		got := read(t, s, func(tx gatehouse.Tx) ([]gatehouse.Application, error) { return tx.ListApplications(ctx, tc.project) })
		equal(t, "ListApplications("+tc.project+")", got, tc.want)
	}

	// An agent reports a new status; the spec changes too.
	changed := apps[0]
	changed.Status = gatehouse.AppStatus{Sync: "OutOfSync", Health: "Degraded", Message: "pod crash-looping", ReportedAt: at(time.Hour)}
	changed.Spec.TargetRevision = "v2"
	inTx(t, s, func(tx gatehouse.Tx) error { return tx.UpdateApplication(ctx, changed) })
	got = read(t, s, func(tx gatehouse.Tx) (gatehouse.Application, error) { return tx.GetApplication(ctx, "web-front") })
	equal(t, "GetApplication after update", got, changed)

	inTx(t, s, func(tx gatehouse.Tx) error { return tx.DeleteApplication(ctx, "web-front") })
	list := read(t, s, func(tx gatehouse.Tx) ([]gatehouse.Application, error) { return tx.ListApplications(ctx, "web") })
	equal(t, "ListApplications(web) after delete", list, []gatehouse.Application{apps[4], apps[2]})
}

func testApplicationNamesUnique(t *testing.T, open func(t *testing.T) gatehouse.Store) {
	s := open(t)
	ctx := t.Context()
	inTx(t, s, func(tx gatehouse.Tx) error { return tx.CreateApplication(ctx, application("shop", "web")) })
	err := s.Tx(ctx, func(tx gatehouse.Tx) error { return tx.CreateApplication(ctx, application("shop", "api")) })
	wantCode(t, "CreateApplication with a name taken in another project", err, gatehouse.ECONFLICT)
	got := read(t, s, func(tx gatehouse.Tx) (gatehouse.Application, error) { return tx.GetApplication(ctx, "shop") })
	equal(t, "the first application", got, application("shop", "web"))
}

func testOperations(t *testing.T, open func(t *testing.T) gatehouse.Store) {
	s := open(t)
	ctx := t.Context()
	ops := []gatehouse.Operation{
		operation("op-1", "shop", at(1*time.Minute), gatehouse.OpSucceeded),
		operation("op-2", "shop", at(2*time.Minute), gatehouse.OpFailed),
		operation("op-3", "shop", at(3*time.Minute), gatehouse.OpPending),
		operation("op-4", "shop", at(4*time.Minute), gatehouse.OpPending),
		operation("op-5", "other", at(5*time.Minute), gatehouse.OpPending),
	}
	ops[1].DryRun, ops[1].Prune, ops[1].Message = true, false, "dry run failed"
	inTx(t, s, func(tx gatehouse.Tx) error {
		for _, a := range []string{"shop", "other", "idle"} {
			if err := tx.CreateApplication(ctx, application(a, "web")); err != nil {
				return err
			}
		}
		// Created out of order: the list order comes from CreatedAt.
		for _, i := range []int{2, 0, 3, 1, 4} {
			if err := tx.CreateOperation(ctx, ops[i]); err != nil {
				return err
			}
		}
		return nil
	})
	got := read(t, s, func(tx gatehouse.Tx) (gatehouse.Operation, error) { return tx.GetOperation(ctx, "shop", "op-2") })
	equal(t, "GetOperation", got, ops[1])

	lists := []struct {
		app, state string
		want       []gatehouse.Operation
	}{
		{"shop", "", []gatehouse.Operation{ops[3], ops[2], ops[1], ops[0]}},
		{"shop", gatehouse.OpPending, []gatehouse.Operation{ops[3], ops[2]}},
		{"shop", gatehouse.OpFailed, []gatehouse.Operation{ops[1]}},
		{"shop", gatehouse.OpRunning, []gatehouse.Operation{}},
		{"other", "", []gatehouse.Operation{ops[4]}},
		{"idle", "", []gatehouse.Operation{}},
		{"unknown", "", []gatehouse.Operation{}},
	}
	for _, tc := range lists {
		got := read(t, s, func(tx gatehouse.Tx) ([]gatehouse.Operation, error) { return tx.ListOperations(ctx, tc.app, tc.state) })
		equal(t, "ListOperations("+tc.app+", "+tc.state+")", got, tc.want)
	}

	// An agent picks the oldest pending operation up, then completes it.
	op := ops[2]
	op.State, op.UpdatedAt, op.Message = gatehouse.OpRunning, at(10*time.Minute), "syncing"
	inTx(t, s, func(tx gatehouse.Tx) error { return tx.UpdateOperation(ctx, op) })
	op.State, op.UpdatedAt, op.Message, op.Revision = gatehouse.OpSucceeded, at(11*time.Minute), "synced", "abc123"
	inTx(t, s, func(tx gatehouse.Tx) error { return tx.UpdateOperation(ctx, op) })
	got = read(t, s, func(tx gatehouse.Tx) (gatehouse.Operation, error) { return tx.GetOperation(ctx, "shop", "op-3") })
	equal(t, "GetOperation after update", got, op)
	pending := read(t, s, func(tx gatehouse.Tx) ([]gatehouse.Operation, error) {
		return tx.ListOperations(ctx, "shop", gatehouse.OpPending)
	})
	equal(t, "pending after update", pending, []gatehouse.Operation{ops[3]})
}

func testDeleteApplicationDeletesOperations(t *testing.T, open func(t *testing.T) gatehouse.Store) {
	s := open(t)
	ctx := t.Context()
	inTx(t, s, func(tx gatehouse.Tx) error {
		for _, a := range []string{"shop", "other"} {
			if err := tx.CreateApplication(ctx, application(a, "web")); err != nil {
				return err
			}
		}
		for _, op := range []gatehouse.Operation{
			operation("op-1", "shop", at(time.Minute), gatehouse.OpSucceeded),
			operation("op-2", "shop", at(2*time.Minute), gatehouse.OpPending),
			operation("op-3", "other", at(3*time.Minute), gatehouse.OpPending),
		} {
			if err := tx.CreateOperation(ctx, op); err != nil {
				return err
			}
		}
		return nil
	})
	inTx(t, s, func(tx gatehouse.Tx) error { return tx.DeleteApplication(ctx, "shop") })

	// A new application of the same name starts with no history.
	inTx(t, s, func(tx gatehouse.Tx) error { return tx.CreateApplication(ctx, application("shop", "api")) })
	got := read(t, s, func(tx gatehouse.Tx) ([]gatehouse.Operation, error) { return tx.ListOperations(ctx, "shop", "") })
	equal(t, "operations of a re-created application", got, []gatehouse.Operation{})
	err := s.Tx(ctx, func(tx gatehouse.Tx) error {
		_, err := tx.GetOperation(ctx, "shop", "op-1")
		return err
	})
	wantCode(t, "GetOperation of a deleted application", err, gatehouse.ENOTFOUND)
	// The ids are free again, and other applications keep their operations.
	inTx(t, s, func(tx gatehouse.Tx) error {
		return tx.CreateOperation(ctx, operation("op-1", "shop", at(time.Hour), gatehouse.OpPending))
	})
	other := read(t, s, func(tx gatehouse.Tx) ([]gatehouse.Operation, error) { return tx.ListOperations(ctx, "other", "") })
	equal(t, "operations of another application",
		other, []gatehouse.Operation{operation("op-3", "other", at(3*time.Minute), gatehouse.OpPending)})
}

func testRBAC(t *testing.T, open func(t *testing.T) gatehouse.Store) {
	s := open(t)
	ctx := t.Context()
	err := s.Tx(ctx, func(tx gatehouse.Tx) error {
		_, err := tx.GetRBAC(ctx)
		return err
	})
	wantCode(t, "GetRBAC before PutRBAC", err, gatehouse.ENOTFOUND)

	for _, want := range []gatehouse.RBAC{
		{PolicyCSV: "p, role:dev, applications, get, */*, allow\ng, dev, role:dev\n", PolicyDefault: "role:readonly", Scopes: "[groups]", MatchMode: "glob"},
		{PolicyCSV: "p, role:ops, applications, *, */*, allow\n", PolicyDefault: "", Scopes: "[groups, email]", MatchMode: "regex"},
		{},
	} {
		inTx(t, s, func(tx gatehouse.Tx) error { return tx.PutRBAC(ctx, want) })
		got := read(t, s, func(tx gatehouse.Tx) (gatehouse.RBAC, error) { return tx.GetRBAC(ctx) })
		equal(t, "GetRBAC after PutRBAC", got, want)
	}
}
