package service_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/service"
	"github.com/gatehouse/gatehouse/store/sqlite"
)

const fileAdminPassword = "file-rbac-admin-password"

// restarts runs one server after another on one database, as restarts
// of a server (or replicas starting in turn) do.
type restarts struct {
	t    *testing.T
	path string
}

func newRestarts(t *testing.T) *restarts {
	return &restarts{t: t, path: filepath.Join(t.TempDir(), "gatehouse.db")}
}

// started is one start: the service, an admin principal and its log.
type started struct {
	svc   *service.Service
	admin *service.Principal
	log   *bytes.Buffer
}

// start starts a server with the configuration file's settings f, as
// replica, and returns it with its log; or the error New returned.
func (r *restarts) start(f service.FileRBAC, replica string) (*started, error) {
	r.t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, r.path)
	if err != nil {
		r.t.Fatal(err)
	}
	r.t.Cleanup(func() { st.Close() })
	log := &bytes.Buffer{}
	svc, err := service.New(ctx, service.Options{
		Store: st, BcryptCost: 10, FileRBAC: f, Replica: replica,
		RBAC:   gatehouse.RBAC{MatchMode: "glob"},
		Logger: slog.New(slog.NewJSONHandler(log, nil)),
	})
	if err != nil {
		st.Close()
		return nil, err
	}
	if _, err := svc.Bootstrap(ctx, fileAdminPassword); err != nil {
		r.t.Fatal(err)
	}
	nt, err := svc.Login(ctx, "admin", fileAdminPassword, "127.0.0.1")
	if err != nil {
		r.t.Fatal(err)
	}
	admin, err := svc.Authenticate(ctx, nt.Token)
	if err != nil {
		r.t.Fatal(err)
	}
	return &started{svc: svc, admin: admin, log: log}, nil
}

func (r *restarts) mustStart(f service.FileRBAC, replica string) *started {
	r.t.Helper()
	s, err := r.start(f, replica)
	if err != nil {
		r.t.Fatalf("start: %v", err)
	}
	return s
}

func (s *started) rbac(t *testing.T) gatehouse.RBAC {
	t.Helper()
	rb, err := s.svc.GetRBAC(context.Background(), s.admin)
	if err != nil {
		t.Fatal(err)
	}
	return rb
}

// policyEvents are the policy.changed events, newest first.
func (s *started) policyEvents(t *testing.T) []gatehouse.Event {
	t.Helper()
	l, err := s.svc.ListEvents(context.Background(), s.admin, gatehouse.EventFilter{Type: gatehouse.EventPolicyChanged}, "")
	if err != nil {
		t.Fatal(err)
	}
	return l.Items
}

// logged returns the log lines at level.
func (s *started) logged(t *testing.T, level string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for line := range strings.Lines(s.log.String()) {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		if m["level"] == level {
			out = append(out, m)
		}
	}
	return out
}

func csvFile(csv string) service.FileRBAC {
	return service.FileRBAC{File: "/etc/gatehouse/config.yaml", Settings: []service.FileSetting{
		{Field: "policyCSV", Value: csv, Line: 4, FirstLine: 5},
	}}
}

const (
	readerPolicy   = "g, alice, role:readonly\n"
	deployerPolicy = "p, role:deployer, applications, sync, */*, allow\ng, alice, role:deployer\n"
)

// The file's settings across restarts: the first start stores them (and
// records it), an identical file writes nothing, a changed file is
// applied and audited, and a file that stops setting a field leaves the
// stored value, now editable.
func TestFileRBACAcrossRestarts(t *testing.T) {
	r := newRestarts(t)

	first := r.mustStart(csvFile(readerPolicy), "a")
	rb := first.rbac(t)
	// A file that sets the policy owns the default role and the match
	// mode too (either changes what the policy means).
	if rb.PolicyCSV != readerPolicy || !slices.Equal(rb.ManagedByConfig, []string{"policyCSV", "policyDefault", "matchMode"}) || rb.PolicyDefault != "" || (rb.MatchMode != "" && rb.MatchMode != "glob") {
		t.Fatalf("after the first start: %+v, want the file's policy, managed with the default role and match mode, and glob", rb)
	}
	evs := first.policyEvents(t)
	if len(evs) != 1 || evs[0].Actor != "system:config" || !strings.Contains(evs[0].Detail, "changed rbac.policyCSV") ||
		!strings.Contains(evs[0].Detail, `file "/etc/gatehouse/config.yaml"`) {
		t.Fatalf("policy events after the first start: %+v, want one by config naming the file and rbac.policyCSV", evs)
	}

	same := r.mustStart(csvFile(readerPolicy), "a")
	if got := len(same.policyEvents(t)); got != 1 {
		t.Errorf("an identical file recorded %d policy events in all, want still 1", got)
	}
	if infos := same.logged(t, "INFO"); slices.ContainsFunc(infos, func(m map[string]any) bool { return strings.Contains(m["msg"].(string), "applied") }) {
		t.Errorf("an identical file logged an apply: %v", infos)
	}

	changed := r.mustStart(csvFile(deployerPolicy), "a")
	if got := changed.rbac(t).PolicyCSV; got != deployerPolicy {
		t.Errorf("after a changed file, policyCSV = %q, want the file's %q", got, deployerPolicy)
	}
	evs = changed.policyEvents(t)
	if len(evs) != 2 || evs[0].Actor != "system:config" {
		t.Errorf("after a changed file: %+v, want a second event by config", evs)
	}
	if !changed.svc.Engine().Enforce("alice", nil, "applications", "sync", "shop/web") {
		t.Error("the changed file's policy is not in force")
	}
	if warns := changed.logged(t, "WARN"); len(warns) != 0 {
		t.Errorf("a server that changed its own file warned: %v", warns)
	}

	// The file no longer sets policyCSV: the stored value stays, and the
	// API may now change it.
	gone := r.mustStart(service.FileRBAC{File: "/etc/gatehouse/config.yaml"}, "a")
	rb = gone.rbac(t)
	if rb.PolicyCSV != deployerPolicy || len(rb.ManagedByConfig) != 0 {
		t.Fatalf("with the key removed: %+v, want the stored policy, managed by nothing", rb)
	}
	if _, err := gone.svc.PutRBAC(context.Background(), gone.admin, gatehouse.RBAC{PolicyCSV: readerPolicy, MatchMode: "glob"}); err != nil {
		t.Fatalf("PutRBAC of a field the file no longer sets: %v", err)
	}
	if got := gone.rbac(t).PolicyCSV; got != readerPolicy {
		t.Errorf("policyCSV = %q after the API edit, want %q", got, readerPolicy)
	}
}

// While the file sets a field, an API edit that would change it is
// refused whole and changes nothing; the fields the file does not set
// stay editable, and sending a managed field as stored is no change.
func TestPutRBACRefusesFieldsTheFileSets(t *testing.T) {
	r := newRestarts(t)
	f := service.FileRBAC{File: "/etc/gatehouse/config.yaml", Settings: []service.FileSetting{
		{Field: "policyCSV", Value: readerPolicy, Line: 2, FirstLine: 3},
		{Field: "matchMode", Value: "glob", Line: 5},
	}}
	s := r.mustStart(f, "a")
	ctx := context.Background()
	before := s.rbac(t)
	nEvents := len(s.policyEvents(t))

	tests := []struct {
		name    string
		put     gatehouse.RBAC
		wantErr string // "" for success
	}{
		{"fail/policyCSV", gatehouse.RBAC{PolicyCSV: deployerPolicy, MatchMode: "glob"},
			"rbac.policyCSV is set in the configuration file (/etc/gatehouse/config.yaml); edit the file and restart"},
		{"fail/policyCSV and matchMode", gatehouse.RBAC{PolicyCSV: deployerPolicy, MatchMode: "regex"},
			"rbac.policyCSV and rbac.matchMode are set in the configuration file (/etc/gatehouse/config.yaml); edit the file and restart"},
		{"fail/with an unmanaged change too", gatehouse.RBAC{PolicyCSV: "", Scopes: "[groups]", MatchMode: "glob"},
			"rbac.policyCSV is set in the configuration file"},
		// The file sets the policy, so it owns the default role too: a
		// default role's allow ends every decision, so it would void the
		// file's denies.
		{"fail/policyDefault, owned with the policy", gatehouse.RBAC{PolicyCSV: readerPolicy, PolicyDefault: "role:admin", MatchMode: "glob"},
			"rbac.policyDefault is set in the configuration file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := s.svc.PutRBAC(ctx, s.admin, tt.put)
			if got := gatehouse.ErrorCode(err); got != gatehouse.ECONFLICT {
				t.Fatalf("PutRBAC(%+v): code %q (%v), want %q", tt.put, got, err, gatehouse.ECONFLICT)
			}
			if msg := gatehouse.ErrorMessage(err); !strings.HasPrefix(msg, tt.wantErr) {
				t.Errorf("message %q, want it to start with %q", msg, tt.wantErr)
			}
			if got := s.rbac(t); got.PolicyCSV != before.PolicyCSV || got.PolicyDefault != before.PolicyDefault || got.MatchMode != before.MatchMode {
				t.Errorf("a refused edit changed the settings: %+v, want %+v", got, before)
			}
			if got := len(s.policyEvents(t)); got != nEvents {
				t.Errorf("a refused edit recorded an event: %d events, want %d", got, nEvents)
			}
		})
	}

	// A read followed by a write of another field is accepted; an empty
	// matchMode is glob.
	put := s.rbac(t)
	put.Scopes = "[groups]"
	put.MatchMode = ""
	got, err := s.svc.PutRBAC(ctx, s.admin, put)
	if err != nil {
		t.Fatalf("PutRBAC of an unmanaged field: %v", err)
	}
	if got.Scopes != "[groups]" || got.MatchMode != "glob" || got.PolicyCSV != readerPolicy ||
		!slices.Equal(got.ManagedByConfig, []string{"policyCSV", "matchMode", "policyDefault"}) {
		t.Errorf("PutRBAC answered %+v, want the new scopes, the file's fields as stored, and managedByConfig", got)
	}
	if rb := s.rbac(t); rb.Scopes != "[groups]" || rb.MatchMode != "glob" {
		t.Errorf("stored %+v after the edit", rb)
	}
}

// A file that sets only the policy also owns the match mode: flipping
// glob to regex through the API would change what its lines mean (a
// deny of prod-.* would stop covering prod-db).
func TestFileRBACOwnsTheMatchModeWithThePolicy(t *testing.T) {
	r := newRestarts(t)
	s := r.mustStart(csvFile("g, alice, role:admin\np, alice, applications, delete, prod-*, deny\n"), "a")
	for _, put := range []gatehouse.RBAC{
		{PolicyCSV: "g, alice, role:admin\np, alice, applications, delete, prod-*, deny\n", MatchMode: "regex"},
		{PolicyCSV: "g, alice, role:admin\np, alice, applications, delete, prod-*, deny\n", PolicyDefault: "role:admin"},
	} {
		if _, err := s.svc.PutRBAC(context.Background(), s.admin, put); !gatehouse.IsCode(err, gatehouse.ECONFLICT) {
			t.Errorf("PutRBAC(%+v) = %v, want a conflict", put, err)
		}
	}
	if !s.svc.Engine().Enforce("alice", nil, "applications", "delete", "dev/db") || s.svc.Engine().Enforce("alice", nil, "applications", "delete", "prod-eu/db") {
		t.Error("alice's policy is not the file's: admin everywhere but prod-*")
	}
}

// Settings that an API edit would refuse stop the start, naming the key
// and the file's line, and the stored settings stay as they were.
func TestInvalidFileRBACRefusesToStart(t *testing.T) {
	r := newRestarts(t)
	good := r.mustStart(csvFile(readerPolicy), "a")
	nEvents := len(good.policyEvents(t))

	tests := []struct {
		name  string
		f     service.FileRBAC
		wants []string
	}{
		{"fail/a bad policy line", csvFile("g, alice, role:readonly\np, role:x, applications, get\n"),
			[]string{"configuration file /etc/gatehouse/config.yaml", "rbac.policyCSV (line 4)", "policy line 2 (file line 6)", "p line needs 5 or 6 fields, got 4"}},
		{"fail/a bad match mode", service.FileRBAC{File: "/etc/gatehouse/config.yaml", Settings: []service.FileSetting{{Field: "matchMode", Value: "fuzzy", Line: 7}}},
			[]string{"rbac.matchMode (line 7)", "matchMode must be glob or regex"}},
		{"fail/a pattern the match mode refuses", service.FileRBAC{File: "/etc/gatehouse/config.yaml", Settings: []service.FileSetting{
			{Field: "policyCSV", Value: "p, alice, applications, get, (, allow\n", Line: 3},
			{Field: "matchMode", Value: "regex", Line: 4},
		}}, []string{"rbac.policyCSV (line 3)", "policy line 1:"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := r.start(tt.f, "a")
			if err == nil {
				t.Fatal("the server started")
			}
			for _, want := range tt.wants {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not contain %q", err, want)
				}
			}
		})
	}
	after := r.mustStart(csvFile(readerPolicy), "a")
	if got := after.rbac(t).PolicyCSV; got != readerPolicy {
		t.Errorf("policyCSV = %q after refused starts, want %q", got, readerPolicy)
	}
	if got := len(after.policyEvents(t)); got != nEvents {
		t.Errorf("refused starts recorded events: %d, want %d", got, nEvents)
	}
}

// Replicas whose files disagree: each start applies its own file (the
// last start wins), and a start that replaces values another replica's
// file applied warns; replacing one's own earlier values does not.
func TestFileRBACOfAnotherReplicaWarns(t *testing.T) {
	r := newRestarts(t)
	warned := func(s *started) []map[string]any {
		var out []map[string]any
		for _, m := range s.logged(t, "WARN") {
			if strings.Contains(m["msg"].(string), "another replica's configuration file") {
				out = append(out, m)
			}
		}
		return out
	}

	a := r.mustStart(csvFile(readerPolicy), "replica-a")
	if w := warned(a); len(w) != 0 {
		t.Errorf("the first start warned: %v", w)
	}
	b := r.mustStart(csvFile(deployerPolicy), "replica-b")
	w := warned(b)
	if len(w) != 1 || w[0]["other_replica"] != "replica-a" || !slices.Equal(w[0]["fields"].([]any), []any{"rbac.policyCSV"}) {
		t.Fatalf("b, whose file differs from the one a applied, logged %v; want one warning naming replica-a and rbac.policyCSV", w)
	}
	if got := b.rbac(t).PolicyCSV; got != deployerPolicy {
		t.Errorf("b's start left policyCSV %q, want b's file's (the last start wins)", got)
	}
	evs := b.policyEvents(t)
	if !strings.Contains(evs[0].Detail, `replica "replica-b"`) {
		t.Errorf("b's change is recorded as %q, want it to name replica-b", evs[0].Detail)
	}

	// a restarts with the file it applied before: b's file has changed
	// the settings since, so a's is the stale one and applying it would
	// undo b's edit (say a revocation made in Git). It keeps what is in
	// force and says so at error level.
	a = r.mustStart(csvFile(readerPolicy), "replica-a")
	var refused []map[string]any
	for _, m := range a.logged(t, "ERROR") {
		if strings.Contains(m["msg"].(string), "not applying this replica's RBAC settings") {
			refused = append(refused, m)
		}
	}
	if len(refused) != 1 || refused[0]["other_replica"] != "replica-b" {
		t.Errorf("a, restarted with its old file over b's, logged %v; want one error naming replica-b", refused)
	}
	if got := a.rbac(t).PolicyCSV; got != deployerPolicy {
		t.Errorf("a's stale file replaced b's policy: %q", got)
	}
	// a's file brought up to date: nothing to do.
	a = r.mustStart(csvFile(deployerPolicy), "replica-a")
	if w := warned(a); len(w) != 0 {
		t.Errorf("a, restarted with the file in force, warned: %v", w)
	}
	// a's file edited since its own last apply: a new edit, applied,
	// with a warning that it replaces b's values.
	const third = "p, role:deployer, applications, get, */*, allow\ng, alice, role:deployer\n"
	a = r.mustStart(csvFile(third), "replica-a")
	if got := a.rbac(t).PolicyCSV; got != third {
		t.Errorf("a's edited file was not applied: %q", got)
	}
	if w := warned(a); len(w) != 1 || w[0]["other_replica"] != "replica-b" {
		t.Errorf("a, applying an edited file over b's values, logged %v; want a warning naming replica-b", w)
	}
	a = r.mustStart(csvFile(readerPolicy), "replica-a")
	if got := a.rbac(t).PolicyCSV; got != readerPolicy {
		t.Errorf("a, replacing values its own file applied, left %q", got)
	}
}
