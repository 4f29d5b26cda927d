package service_test

import (
	"context"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/service"
	"github.com/gatehouse/gatehouse/store/sqlite"
)

// activityEnv is a real Service over SQLite with a clock the test moves.
type activityEnv struct {
	t   *testing.T
	ctx context.Context
	svc *service.Service
	adm *service.Principal

	mu  sync.Mutex
	now time.Time
}

func newActivityEnv(t *testing.T, policy string) *activityEnv {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "gatehouse.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	e := &activityEnv{t: t, ctx: ctx, now: time.Date(2026, 11, 26, 12, 30, 0, 0, time.UTC)}
	e.svc, err = service.New(ctx, service.Options{Store: st, Now: e.clock, BcryptCost: 10, RBAC: gatehouse.RBAC{PolicyCSV: policy}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.Bootstrap(ctx, "admin-password-for-activity"); err != nil {
		t.Fatal(err)
	}
	e.adm = e.session("admin", "admin-password-for-activity")
	return e
}

func (e *activityEnv) clock() time.Time {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.now
}

func (e *activityEnv) set(t time.Time) {
	e.mu.Lock()
	e.now = t
	e.mu.Unlock()
}

func (e *activityEnv) session(user, password string) *service.Principal {
	e.t.Helper()
	nt, err := e.svc.Login(e.ctx, user, password, "127.0.0.1")
	if err != nil {
		e.t.Fatalf("login %s: %v", user, err)
	}
	return e.authenticate(nt.Token)
}

func (e *activityEnv) authenticate(tok string) *service.Principal {
	e.t.Helper()
	p, err := e.svc.Authenticate(e.ctx, tok)
	if err != nil {
		e.t.Fatalf("authenticate: %v", err)
	}
	return p
}

func (e *activityEnv) user(name string) *service.Principal {
	e.t.Helper()
	if _, err := e.svc.CreateAccount(e.ctx, e.adm, gatehouse.AccountCreate{Name: name, Password: name + "-password",
		Capabilities: []gatehouse.Capability{gatehouse.CapLogin, gatehouse.CapAPIKey}}); err != nil {
		e.t.Fatalf("create %s: %v", name, err)
	}
	return e.session(name, name+"-password")
}

// request records a request made with p's token at the instant at, as
// the server records one.
func (e *activityEnv) request(p *service.Principal, at time.Time, decision string) {
	e.set(at)
	e.svc.RecordRequest(gatehouse.Event{Actor: p.Subject(), Account: p.Account(), TokenID: p.TokenID(), TokenKind: p.Kind(),
		Method: "GET", Path: "/api/v1/applications", Decision: decision, Status: 200})
}

// nonZero lists the hours of a that saw requests.
func nonZero(a service.TokenActivity) []gatehouse.HourCount {
	out := []gatehouse.HourCount{}
	for _, h := range a.Hours {
		if h.Allowed+h.Denied > 0 {
			out = append(out, h)
		}
	}
	return out
}

func TestTokenActivity(t *testing.T) {
	e := newActivityEnv(t, "p, carol, audit, get, alice, allow")
	alice := e.user("alice")
	bob := e.user("bob")
	carol := e.user("carol")
	nt, err := e.svc.CreateToken(e.ctx, alice, "alice", gatehouse.TokenRequest{Name: "ci"})
	if err != nil {
		t.Fatal(err)
	}
	tok := e.authenticate(nt.Token)

	now := time.Date(2026, 11, 26, 12, 30, 0, 0, time.UTC)
	since := time.Date(2026, 11, 19, 13, 0, 0, 0, time.UTC) // 168 hours before the end of this hour
	e.request(tok, since.Add(-time.Second), "allow")        // a second too old
	e.request(tok, since, "allow")
	e.request(tok, since.Add(59*time.Minute), "deny")
	e.request(tok, now.Add(-26*time.Hour), "allow")
	e.request(tok, now.Add(-26*time.Hour+time.Minute), "allow")
	e.request(tok, now.Add(-26*time.Hour+2*time.Minute), "deny")
	e.request(alice, now.Add(-time.Hour), "allow") // her session, not the token
	e.request(tok, now, "deny")
	want := []gatehouse.HourCount{
		{Hour: since, Allowed: 1, Denied: 1},
		{Hour: time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC), Allowed: 2, Denied: 1},
		{Hour: time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC), Denied: 1},
	}

	for _, tc := range []struct {
		name string
		p    *service.Principal
	}{{"ok/own token", alice}, {"ok/admin", e.adm}, {"ok/audit get on the owner", carol}} {
		a, err := e.svc.TokenActivity(e.ctx, tc.p, nt.ID)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if got := nonZero(a); !equalHours(got, want) {
			t.Errorf("%s: hours with requests %v, want %v", tc.name, got, want)
		}
		if len(a.Hours) != service.ActivityHours || !a.Hours[0].Hour.Equal(since) || !a.Since.Equal(since) ||
			!a.Until.Equal(since.Add(service.ActivityHours*time.Hour)) || !a.Hours[len(a.Hours)-1].Hour.Equal(now.Truncate(time.Hour)) {
			t.Errorf("%s: window [%v, %v) in %d hours from %v, want 168 hours from %v", tc.name, a.Since, a.Until, len(a.Hours), a.Hours[0].Hour, since)
		}
		if a.Allowed != 3 || a.Denied != 3 || a.Owner != "alice" || a.Kind != gatehouse.KindAPI || a.Name != "ci" {
			t.Errorf("%s: %d allowed, %d denied, owner %q kind %q name %q; want 3, 3, alice, api, ci", tc.name, a.Allowed, a.Denied, a.Owner, a.Kind, a.Name)
		}
	}
	if _, err := e.svc.TokenActivity(e.ctx, bob, nt.ID); gatehouse.ErrorCode(err) != gatehouse.EFORBIDDEN || strings.Contains(err.Error(), "alice") {
		t.Errorf("fail/bob reading alice's token: %v, want EFORBIDDEN not naming the owner", err)
	}
	if d := bob.LastDecision(); d.Resource != "audit" || d.Object != "*" || d.Allowed {
		t.Errorf("bob's recorded decision %+v, want audit get * denied (TestTokenActivityRefusalNamesNoOwner)", d)
	}

	// Revoked: the trail still says whose it was.
	if err := e.svc.DeleteToken(e.ctx, alice, "alice", nt.ID); err != nil {
		t.Fatal(err)
	}
	a, err := e.svc.TokenActivity(e.ctx, alice, nt.ID)
	if err != nil || a.Owner != "alice" || a.Name != "" || a.Allowed != 3 || a.Denied != 3 {
		t.Errorf("ok/revoked, own: %+v, %v", a, err)
	}
	if _, err := e.svc.TokenActivity(e.ctx, bob, nt.ID); gatehouse.ErrorCode(err) != gatehouse.EFORBIDDEN {
		t.Errorf("fail/revoked, bob: %v, want EFORBIDDEN", err)
	}

	// A token no one knows: all of the trail, or nothing.
	const unknown = "6f1c2a7e-3b4d-4c5e-8f90-0a1b2c3d4e5f"
	if a, err := e.svc.TokenActivity(e.ctx, e.adm, unknown); err != nil || a.Owner != "" || a.Allowed+a.Denied != 0 || len(a.Hours) != service.ActivityHours {
		t.Errorf("ok/unknown, admin: %+v, %v", a, err)
	}
	if _, err := e.svc.TokenActivity(e.ctx, alice, unknown); gatehouse.ErrorCode(err) != gatehouse.EFORBIDDEN {
		t.Errorf("fail/unknown, alice: %v, want EFORBIDDEN", err)
	}
	for _, id := range []string{"", "nope", strings.Repeat("a", 1000), nt.ID + "x"} {
		if _, err := e.svc.TokenActivity(e.ctx, e.adm, id); gatehouse.ErrorCode(err) != gatehouse.EINVALID {
			t.Errorf("fail/id %q: %v, want EINVALID", id, err)
		}
	}
}

// TestTokenActivityRefusalNamesNoOwner: a refusal is recorded in the
// caller's own audit record, which the caller may read, so it names the
// same neutral object whoever owns the token, and whether the token
// exists, is revoked or was never known.
func TestTokenActivityRefusalNamesNoOwner(t *testing.T) {
	e := newActivityEnv(t, "")
	alice := e.user("alice")
	bob := e.user("bob")
	live, err := e.svc.CreateToken(e.ctx, alice, "alice", gatehouse.TokenRequest{Name: "live"})
	if err != nil {
		t.Fatal(err)
	}
	gone, err := e.svc.CreateToken(e.ctx, alice, "alice", gatehouse.TokenRequest{Name: "gone"})
	if err != nil {
		t.Fatal(err)
	}
	// A request, so that the trail knows whose it was; reading the
	// activity writes the queued request to the store.
	e.request(e.authenticate(gone.Token), e.clock(), "allow")
	if _, err := e.svc.TokenActivity(e.ctx, alice, gone.ID); err != nil {
		t.Fatal(err)
	}
	if err := e.svc.DeleteToken(e.ctx, alice, "alice", gone.ID); err != nil {
		t.Fatal(err)
	}
	if a, err := e.svc.TokenActivity(e.ctx, alice, gone.ID); err != nil || a.Owner != "alice" {
		t.Fatalf("the revoked token, to its owner: %+v, %v; want the trail to name alice", a, err)
	}
	want := service.Decision{Resource: "audit", Action: "get", Object: "*", Allowed: false, Via: gatehouse.ViaPolicy}
	for name, id := range map[string]string{
		"fail/alice's token":         live.ID,
		"fail/alice's revoked token": gone.ID,
		"fail/a token no one knows":  "6f1c2a7e-3b4d-4c5e-8f90-0a1b2c3d4e5f",
	} {
		_, err := e.svc.TokenActivity(e.ctx, bob, id)
		if gatehouse.ErrorCode(err) != gatehouse.EFORBIDDEN || strings.Contains(err.Error(), "alice") {
			t.Errorf("%s: %v, want EFORBIDDEN not naming the owner", name, err)
		}
		if got := bob.LastDecision(); got != want {
			t.Errorf("%s: bob's recorded decision %+v, want %+v", name, got, want)
		}
	}
}

func TestTokenActivityOfARoleToken(t *testing.T) {
	e := newActivityEnv(t, "p, carol, audit, get, proj:team-a:ci, allow")
	bob := e.user("bob")
	carol := e.user("carol")
	if _, err := e.svc.CreateProject(e.ctx, e.adm, gatehouse.Project{Name: "team-a", Roles: []gatehouse.ProjectRole{{Name: "ci"}}}); err != nil {
		t.Fatal(err)
	}
	nt, err := e.svc.CreateRoleToken(e.ctx, e.adm, "team-a", "ci", gatehouse.TokenRequest{Name: "deploys"})
	if err != nil {
		t.Fatal(err)
	}
	tok := e.authenticate(nt.Token)
	at := time.Date(2026, 11, 24, 8, 15, 0, 0, time.UTC)
	e.request(tok, at, "deny")
	e.request(tok, at.Add(time.Hour), "allow")
	e.set(time.Date(2026, 11, 26, 12, 30, 0, 0, time.UTC))
	for _, p := range []*service.Principal{e.adm, carol, tok} {
		a, err := e.svc.TokenActivity(e.ctx, p, nt.ID)
		want := []gatehouse.HourCount{{Hour: at.Truncate(time.Hour), Denied: 1}, {Hour: at.Truncate(time.Hour).Add(time.Hour), Allowed: 1}}
		if err != nil || a.Owner != "proj:team-a:ci" || a.Kind != gatehouse.KindProject || !equalHours(nonZero(a), want) {
			t.Errorf("ok/%s: owner %q kind %q hours %v, %v; want proj:team-a:ci, project, %v", p.Subject(), a.Owner, a.Kind, nonZero(a), err, want)
		}
	}
	if _, err := e.svc.TokenActivity(e.ctx, bob, nt.ID); gatehouse.ErrorCode(err) != gatehouse.EFORBIDDEN {
		t.Errorf("fail/bob: %v, want EFORBIDDEN", err)
	}
}

func equalHours(a, b []gatehouse.HourCount) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !a[i].Hour.Equal(b[i].Hour) || a[i].Allowed != b[i].Allowed || a[i].Denied != b[i].Denied {
			return false
		}
	}
	return true
}
