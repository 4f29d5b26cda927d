package service_test

import (
	"context"
	"errors"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/policy"
	"github.com/gatehouse/gatehouse/service"
	"github.com/gatehouse/gatehouse/store/sqlite"
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

// draftReaderPolicy lets rita read the RBAC settings, get the account dave and
// the project open, and nothing else; the group devs gets team-a's
// applications.
const draftReaderPolicy = previewPolicy + `
p, role:reader, settings, get, rbac, allow
g, rita, role:reader
p, rita, accounts, get, dave, allow
p, rita, projects, get, open, allow`

// newReaderEnv is a previewEnv with rita logged in and dave and erin in
// devs.
func newReaderEnv(t *testing.T) (*previewEnv, *service.Principal) {
	t.Helper()
	e := newPreviewEnv(t, draftReaderPolicy)
	e.account("rita", both)
	e.account("dave", both, "devs")
	e.account("erin", both, "devs")
	return e, e.session("rita", "rita-password")
}

// TestExplainCountsGroupsOnlyForReadableAccounts: the groups of the
// subject's account count only when the caller may get the account.
// Otherwise a reader of the settings would learn any account's groups by
// asking, against the saved policy or a draft of its own, about a line
// that only a group grants.
func TestExplainCountsGroupsOnlyForReadableAccounts(t *testing.T) {
	t.Parallel()
	e, rita := newReaderEnv(t)
	noGroups := func(subject string) string {
		return "answered without the subject's groups: counting them needs accounts, get, " + subject
	}
	// A draft that grants x, y, z to the group devs: an oracle of who is
	// in devs, if groups were looked up for anyone.
	draft := gatehouse.RBAC{PolicyCSV: "p, role:q, x, y, z, allow\ng, devs, role:q"}
	asRita, err := e.svc.CheckRBAC(e.ctx, rita, draft)
	if err != nil {
		t.Fatal(err)
	}
	asAdmin, err := e.svc.CheckRBAC(e.ctx, e.adm, draft)
	if err != nil {
		t.Fatal(err)
	}
	type question = [4]string
	for name, tc := range map[string]struct {
		p       *service.Principal
		explain func(subject, resource, action, object string) (gatehouse.Explanation, error) // nil: Service.Explain
		q       question
		value   string
		note    string
	}{
		"ok/saved, an account rita may get":    {rita, nil, question{"dave", "applications", "get", "team-a/web"}, "yes", ""},
		"ok/saved, as the admin":               {e.adm, nil, question{"erin", "applications", "get", "team-a/web"}, "yes", ""},
		"ok/saved, a role is no account":       {rita, nil, question{"role:dev", "applications", "get", "team-a/web"}, "yes", ""},
		"fail/saved, an account rita may not":  {rita, nil, question{"erin", "applications", "get", "team-a/web"}, "no", noGroups("erin")},
		"fail/saved, no such account, alike":   {rita, nil, question{"zed", "applications", "get", "team-a/web"}, "no", noGroups("zed")},
		"ok/draft, an account rita may get":    {rita, asRita.Explain, question{"dave", "x", "y", "z"}, "yes", ""},
		"ok/draft, as the admin":               {e.adm, asAdmin.Explain, question{"erin", "x", "y", "z"}, "yes", ""},
		"fail/draft, an account rita may not":  {rita, asRita.Explain, question{"erin", "x", "y", "z"}, "no", noGroups("erin")},
		"fail/draft, no such account, alike":   {rita, asRita.Explain, question{"zed", "x", "y", "z"}, "no", noGroups("zed")},
		"ok/draft, a group's own lines answer": {rita, asRita.Explain, question{"devs", "x", "y", "z"}, "yes", noGroups("devs")},
	} {
		t.Run(name, func(t *testing.T) {
			explain := tc.explain
			if explain == nil {
				explain = func(subject, resource, action, object string) (gatehouse.Explanation, error) {
					return e.svc.Explain(tc.p, subject, resource, action, object)
				}
			}
			got, err := explain(tc.q[0], tc.q[1], tc.q[2], tc.q[3])
			if err != nil {
				t.Fatal(err)
			}
			if got.Value != tc.value || got.Note != tc.note {
				t.Errorf("%v: got %q, note %q; want %q, note %q", tc.q, got.Value, got.Note, tc.value, tc.note)
			}
			// The request's audit record stays the reading of the
			// settings: asking about the account is no decision of its.
			if d := tc.p.LastDecision(); d.Resource != "settings" || d.Action != "get" || d.Object != "rbac" || !d.Allowed {
				t.Errorf("the caller's last decision %+v, want settings, get, rbac allowed", d)
			}
		})
	}
}

// TestCheckRBACHidesProjectLinesTheCallerCannotRead: a draft check
// compiles the projects' role lines with the draft, and names a bad one,
// or shows a matched one, by its text only to a caller who may get the
// project.
func TestCheckRBACHidesProjectLinesTheCallerCannotRead(t *testing.T) {
	t.Parallel()
	e, rita := newReaderEnv(t)
	for _, name := range []string{"open", "hidden"} {
		if _, err := e.svc.CreateProject(e.ctx, e.adm, gatehouse.Project{Name: name, Roles: []gatehouse.ProjectRole{{Name: "r",
			Policies: []string{"p, proj:" + name + ":r, applications, *, " + name + "/secret-app, allow"}}}}); err != nil {
			t.Fatal(err)
		}
	}
	// In regex mode the role lines' * does not compile.
	texts := func(p *service.Principal) string {
		t.Helper()
		d, err := e.svc.CheckRBAC(e.ctx, p, gatehouse.RBAC{MatchMode: "regex"})
		if err != nil {
			t.Fatal(err)
		}
		if len(d.Problems) != 2 {
			t.Fatalf("problems %+v, want the two project lines", d.Problems)
		}
		var out []string
		for _, pp := range d.Problems {
			if pp.Line != 0 || pp.Message == "" {
				t.Errorf("problem %+v: want a project line (0) with a message", pp)
			}
			out = append(out, pp.Text+" | "+pp.Message)
		}
		return strings.Join(out, "\n")
	}
	if got := texts(e.adm); !strings.Contains(got, "hidden/secret-app") || !strings.Contains(got, "open/secret-app") {
		t.Errorf("the admin's problems do not show both lines:\n%s", got)
	}
	got := texts(rita)
	if strings.Contains(got, "hidden") || !strings.Contains(got, "a line of a project role you cannot read") {
		t.Errorf("rita's problems show the line of project hidden, or do not say one is hidden:\n%s", got)
	}
	if !strings.Contains(got, "open/secret-app") {
		t.Errorf("rita's problems do not show the line of project open, which she may get:\n%s", got)
	}

	// The matched lines of an answer, against a draft and the saved policy.
	d, err := e.svc.CheckRBAC(e.ctx, rita, gatehouse.RBAC{})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		project string
		want    string
	}{
		{"hidden", "a line of a project role you cannot read"},
		{"open", "p, proj:open:r, applications, *, open/secret-app, allow"},
	} {
		subject, object := "proj:"+tc.project+":r", tc.project+"/secret-app"
		draft, err := d.Explain(subject, "applications", "sync", object)
		if err != nil {
			t.Fatal(err)
		}
		saved, err := e.svc.Explain(rita, subject, "applications", "sync", object)
		if err != nil {
			t.Fatal(err)
		}
		for _, x := range []gatehouse.Explanation{draft, saved} {
			if x.Value != "yes" || !slices.Equal(x.Matched, []string{tc.want}) {
				t.Errorf("%s: rita's answer %+v, want yes matching %q", subject, x, tc.want)
			}
		}
	}
}

// blockingStore holds the next ListProjects it is armed for until
// released, so that a test can keep a draft check running.
type blockingStore struct {
	gatehouse.Store
	armed   atomic.Bool
	entered chan struct{}
	release chan struct{}
}

func (s *blockingStore) View(ctx context.Context, fn func(gatehouse.Tx) error) error {
	return s.Store.View(ctx, func(tx gatehouse.Tx) error { return fn(blockingTx{tx, s}) })
}

type blockingTx struct {
	gatehouse.Tx
	s *blockingStore
}

func (tx blockingTx) ListProjects(ctx context.Context) ([]gatehouse.Project, error) {
	if tx.s.armed.CompareAndSwap(true, false) {
		tx.s.entered <- struct{}{}
		<-tx.s.release
	}
	return tx.Tx.ListProjects(ctx)
}

// TestCheckRBACRunsOneAtATime: any reader of the settings may have a
// draft compiled, so the server compiles one at a time; a check asked
// for meanwhile is refused as throttled, to be tried again, and a check
// whose request has gone away stops.
func TestCheckRBACRunsOneAtATime(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "gatehouse.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	bs := &blockingStore{Store: st, entered: make(chan struct{}), release: make(chan struct{})}
	svc, err := service.New(ctx, service.Options{Store: bs, BcryptCost: 10, RBAC: gatehouse.RBAC{PolicyCSV: previewPolicy}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Bootstrap(ctx, previewAdminPassword); err != nil {
		t.Fatal(err)
	}
	e := &previewEnv{t: t, ctx: ctx, svc: svc}
	e.adm = e.session("admin", previewAdminPassword)
	draft := gatehouse.RBAC{PolicyCSV: draftPolicy}

	bs.armed.Store(true)
	first := make(chan error, 1)
	go func() {
		_, err := svc.CheckRBAC(ctx, e.adm, draft)
		first <- err
	}()
	<-bs.entered // the first check is running
	_, err = svc.CheckRBAC(ctx, e.adm, draft)
	var ge *gatehouse.Error
	if !errors.As(err, &ge) || ge.Code != gatehouse.ETHROTTLED || ge.RetryAfter <= 0 {
		t.Fatalf("a check while another runs: %v, want throttled with a retry time", err)
	}
	close(bs.release)
	if err := <-first; err != nil {
		t.Fatalf("the first check: %v", err)
	}
	if d, err := svc.CheckRBAC(ctx, e.adm, draft); err != nil || !d.OK() {
		t.Fatalf("a check after the first ended: %+v, %v", d, err)
	}

	gone, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := svc.CheckRBAC(gone, e.adm, draft); !errors.Is(err, context.Canceled) {
		t.Fatalf("a check for a request that has gone away: %v, want it cancelled", err)
	}
	if _, err := svc.CheckRBAC(ctx, e.adm, draft); err != nil {
		t.Fatalf("a check after a cancelled one: %v", err)
	}
}

// TestCheckRBACRefusesADraftOverTheReachLimit: a draft whose roles reach
// too far is refused as PutRBAC refuses it, naming the limit.
func TestCheckRBACRefusesADraftOverTheReachLimit(t *testing.T) {
	t.Parallel()
	e := newPreviewEnv(t, previewPolicy)
	var b strings.Builder
	for i := range 8000 {
		b.WriteString("p, r" + strconv.Itoa(i) + ", a, b, c\ng, r" + strconv.Itoa(i) + ", r" + strconv.Itoa(i+1) + "\n")
	}
	draft := gatehouse.RBAC{PolicyCSV: b.String()}
	d, err := e.svc.CheckRBAC(e.ctx, e.adm, draft)
	if err != nil {
		t.Fatal(err)
	}
	limit := strconv.Itoa(policy.MaxReach)
	if d.OK() || !strings.Contains(d.Invalid, limit) {
		t.Errorf("the draft check: ok %v, invalid %q; want refused naming the limit %s", d.OK(), d.Invalid, limit)
	}
	_, err = e.svc.PutRBAC(e.ctx, e.adm, draft)
	if gatehouse.ErrorCode(err) != gatehouse.EINVALID || !strings.Contains(gatehouse.ErrorMessage(err), limit) {
		t.Errorf("PutRBAC: %v, want invalid naming the limit %s", err, limit)
	}
}
