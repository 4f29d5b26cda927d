package service_test

import (
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse"
)

const draftPolicy = `p, role:dev, applications, get, team-a/*, allow
p, role:dev, applications, delete, team-a/prod, deny
g, devs, role:dev
p, carol, audit, get, carol, allow`

// TestCheckRBACAgreesWithPutRBAC holds CheckRBAC to PutRBAC's answer:
// a draft with problems is one PutRBAC refuses, and one without is one
// it saves; the problems name the lines PutRBAC's message names.
func TestCheckRBACAgreesWithPutRBAC(t *testing.T) {
	t.Parallel()
	for name, tc := range map[string]struct {
		rbac  gatehouse.RBAC
		lines []int // the bad lines; nil: the draft compiles
	}{
		"ok/policy":              {rbac: gatehouse.RBAC{PolicyCSV: draftPolicy}},
		"ok/regex":               {rbac: gatehouse.RBAC{PolicyCSV: "p, role:dev, applications, get, team-a/.*, allow", MatchMode: "regex"}},
		"ok/default role":        {rbac: gatehouse.RBAC{PolicyCSV: draftPolicy, PolicyDefault: "role:dev"}},
		"fail/few fields":        {rbac: gatehouse.RBAC{PolicyCSV: "p, role:dev, applications, get, team-a/*, allow\np, role:dev, applications"}, lines: []int{2}},
		"fail/two lines":         {rbac: gatehouse.RBAC{PolicyCSV: "x, y\n\n# fine\np, a, b, c, d, maybe\ng, devs, role:dev"}, lines: []int{1, 4}},
		"fail/bad regex":         {rbac: gatehouse.RBAC{PolicyCSV: "p, role:dev, applications, get, team-a/(, allow", MatchMode: "regex"}, lines: []int{1}},
		"fail/glob only in glob": {rbac: gatehouse.RBAC{PolicyCSV: "\n\np, role:dev, applications, get, team-a/[, allow"}, lines: []int{3}},
		"fail/CRLF":              {rbac: gatehouse.RBAC{PolicyCSV: "p, role:dev, applications, get, team-a/*, allow\r\ng, devs\r\n"}, lines: []int{2}},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			e := newPreviewEnv(t, previewPolicy)
			d, err := e.svc.CheckRBAC(e.ctx, e.adm, tc.rbac)
			if err != nil {
				t.Fatal(err)
			}
			var got []int
			for _, p := range d.Problems {
				got = append(got, p.Line)
				if p.Text == "" || p.Message == "" {
					t.Errorf("problem without text or message: %+v", p)
				}
			}
			if !reflect.DeepEqual(got, tc.lines) || d.OK() != (tc.lines == nil) {
				t.Fatalf("problems on lines %v (ok %v), want %v", got, d.OK(), tc.lines)
			}
			_, err = e.svc.PutRBAC(e.ctx, e.adm, tc.rbac)
			if tc.lines == nil {
				if err != nil {
					t.Fatalf("PutRBAC refused a draft CheckRBAC passed: %v", err)
				}
				return
			}
			if gatehouse.ErrorCode(err) != gatehouse.EINVALID {
				t.Fatalf("PutRBAC: %v, want invalid", err)
			}
			for _, p := range d.Problems {
				if want := "line " + strconv.Itoa(p.Line) + ": " + p.Message; !strings.Contains(gatehouse.ErrorMessage(err), want) {
					t.Errorf("PutRBAC's message %q does not name %q", gatehouse.ErrorMessage(err), want)
				}
			}
		})
	}
}

func TestCheckRBACUnknownMatchMode(t *testing.T) {
	t.Parallel()
	e := newPreviewEnv(t, previewPolicy)
	d, err := e.svc.CheckRBAC(e.ctx, e.adm, gatehouse.RBAC{PolicyCSV: draftPolicy, MatchMode: "fnord"})
	if err != nil {
		t.Fatal(err)
	}
	if d.OK() || d.Invalid == "" || len(d.Problems) != 0 {
		t.Fatalf("draft = %+v, want invalid without line problems", d)
	}
	if _, err := d.Explain("alice", "applications", "get", "team-a/web"); gatehouse.ErrorCode(err) != gatehouse.EPRECONDITION {
		t.Fatalf("explain on a draft that does not compile: %v", err)
	}
}

func TestCheckRBACWarnsAndNeedsTheRight(t *testing.T) {
	t.Parallel()
	e := newPreviewEnv(t, previewPolicy)
	d, err := e.svc.CheckRBAC(e.ctx, e.adm, gatehouse.RBAC{PolicyCSV: draftPolicy + "\ng, ops, role:empty"})
	if err != nil {
		t.Fatal(err)
	}
	if !d.OK() || len(d.Warnings) != 1 || !strings.Contains(d.Warnings[0], `line 5: role "role:empty" has no policy lines`) {
		t.Fatalf("warnings = %q", d.Warnings)
	}
	e.account("bob", both)
	bob := e.session("bob", "bob-password")
	if _, err := e.svc.CheckRBAC(e.ctx, bob, gatehouse.RBAC{PolicyCSV: draftPolicy}); gatehouse.ErrorCode(err) != gatehouse.EFORBIDDEN {
		t.Fatalf("bob checking a draft: %v, want permission denied", err)
	}
	// Checking applies nothing.
	rb, err := e.svc.GetRBAC(e.ctx, e.adm)
	if err != nil || rb.PolicyCSV != previewPolicy {
		t.Fatalf("after checks the policy is %q (%v)", rb.PolicyCSV, err)
	}
}

// TestRBACDraftExplainsAsExplain: a draft of the saved settings answers
// every question as Explain does, groups of known accounts included.
func TestRBACDraftExplainsAsExplain(t *testing.T) {
	t.Parallel()
	e := newPreviewEnv(t, previewPolicy)
	e.account("dave", both, "devs")
	if _, err := e.svc.CreateProject(e.ctx, e.adm, gatehouse.Project{Name: "team-a", Roles: []gatehouse.ProjectRole{{
		Name: "ci", Policies: []string{"p, proj:team-a:ci, applications, sync, team-a/*, allow"}, Groups: []string{"ops"}}}}); err != nil {
		t.Fatal(err)
	}
	rb, err := e.svc.GetRBAC(e.ctx, e.adm)
	if err != nil {
		t.Fatal(err)
	}
	d, err := e.svc.CheckRBAC(e.ctx, e.adm, rb)
	if err != nil || !d.OK() {
		t.Fatalf("the saved settings: %+v, %v", d, err)
	}
	for _, q := range [][4]string{
		{"dave", "applications", "get", "team-a/web"},
		{"dave", "applications", "delete", "team-a/prod"},
		{"dave", "applications", "get", "team-b/web"},
		{"carol", "audit", "get", "carol"},
		{"role:dev", "applications", "get", "team-a/x"},
		{"proj:team-a:ci", "applications", "sync", "team-a/web"},
		{"proj:team-a:ci", "applications", "sync", "team-b/web"},
		{"admin", "accounts", "delete", "bob"},
		{"nobody", "projects", "get", "team-a"},
		{"dave", "applications", "", "team-a/web"},
	} {
		want, wantErr := e.svc.Explain(e.adm, q[0], q[1], q[2], q[3])
		got, gotErr := d.Explain(q[0], q[1], q[2], q[3])
		if !reflect.DeepEqual(got, want) || gatehouse.ErrorCode(gotErr) != gatehouse.ErrorCode(wantErr) {
			t.Errorf("%v: draft %+v (%v), Explain %+v (%v)", q, got, gotErr, want, wantErr)
		}
	}
	// A draft answers for itself, not for the policy in force.
	d, err = e.svc.CheckRBAC(e.ctx, e.adm, gatehouse.RBAC{PolicyCSV: previewPolicy + "\np, role:dev, applications, get, team-b/*, allow"})
	if err != nil {
		t.Fatal(err)
	}
	got, err := d.Explain("dave", "applications", "get", "team-b/web")
	saved, _ := e.svc.Explain(e.adm, "dave", "applications", "get", "team-b/web")
	if err != nil || got.Value != "yes" || saved.Value != "no" {
		t.Fatalf("draft says %+v (%v), saved says %+v", got, err, saved)
	}
}

func TestRolePolicyProblems(t *testing.T) {
	t.Parallel()
	e := newPreviewEnv(t, previewPolicy)
	if _, err := e.svc.CreateProject(e.ctx, e.adm, gatehouse.Project{Name: "team-a"}); err != nil {
		t.Fatal(err)
	}
	role := gatehouse.ProjectRole{Name: "ci", Policies: []string{
		"p, proj:team-a:ci, applications, sync, team-a/*, allow", // 1: fine
		"p, proj:team-a:ci, applications, sync, team-b/*, allow", // 2: another project
		"p, proj:team-a:other, applications, sync, team-a/*",     // 3: another subject
		"g, devs, proj:team-a:ci",                                // 4: not a p line
		"p, proj:team-a:ci, applications",                        // 5: too few fields
		"p, proj:team-a:ci, applications, get, team-a/[, allow",  // 6: a bad glob
		"p, proj:team-a:ci, accounts, get, team-a/x, allow",      // 7: not applications
	}}
	got := e.svc.RolePolicyProblems("team-a", role)
	var lines []int
	for _, p := range got {
		lines = append(lines, p.Line)
		if p.Text != role.Policies[p.Line-1] || p.Message == "" {
			t.Errorf("problem %+v: want the line's text and a message", p)
		}
	}
	if want := []int{2, 3, 4, 5, 6, 7}; !reflect.DeepEqual(lines, want) {
		t.Fatalf("bad lines %v, want %v: %+v", lines, want, got)
	}
	for _, p := range got {
		if strings.HasPrefix(p.Message, "line ") {
			t.Errorf("line %d: the message %q names a line itself", p.Line, p.Message)
		}
	}
	// UpdateProject agrees, one line at a time.
	for i, l := range role.Policies {
		one := gatehouse.ProjectRole{Name: "ci", Policies: []string{l}}
		_, err := e.svc.UpdateProject(e.ctx, e.adm, "team-a", gatehouse.Project{Name: "team-a", Roles: []gatehouse.ProjectRole{one}})
		bad := len(e.svc.RolePolicyProblems("team-a", one)) > 0
		if bad != (err != nil) || (err != nil && gatehouse.ErrorCode(err) != gatehouse.EINVALID) {
			t.Errorf("line %d: RolePolicyProblems says bad=%v, UpdateProject says %v", i+1, bad, err)
		}
	}
	if got := e.svc.RolePolicyProblems("team-a", gatehouse.ProjectRole{Name: "ci"}); got != nil {
		t.Errorf("a role without policies: %+v", got)
	}
}
