package service_test

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/service"
	"github.com/gatehouse/gatehouse/store/sqlite"
)

// viewHook runs after (armed) a read transaction ends, once: another
// goroutine's write landing between ReportLeaked's View and its write.
type viewHook struct {
	gatehouse.Store
	armed atomic.Pointer[func()]
}

func (h *viewHook) View(ctx context.Context, fn func(gatehouse.Tx) error) error {
	err := h.Store.View(ctx, fn)
	if f := h.armed.Swap(nil); f != nil {
		(*f)()
	}
	return err
}

// A leak report names a live token A. While the report runs (after its
// read found A live, before its write), A is rotated into B, as a thief
// holding A would do. The report's write sees the rotation and revokes
// the family, B included, as it would had the rotation landed before the
// read (found by an outside attack: it used to revoke A by id only).
func TestLeakReportRacingARotationRevokesTheSuccessor(t *testing.T) {
	for _, grace := range []int64{0, 600} {
		ctx := t.Context()
		hook := &viewHook{}
		tw := service.NewTestWorld(t, func(st *sqlite.Store) service.Options {
			hook.Store = st
			return service.Options{Store: hook}
		})
		svc := tw.Svc
		if _, err := svc.CreateAccount(ctx, tw.Admin(), gatehouse.AccountCreate{Name: "ci", Capabilities: []gatehouse.Capability{gatehouse.CapAPIKey}}); err != nil {
			t.Fatal(err)
		}
		a, err := svc.CreateToken(ctx, tw.Admin(), "ci", gatehouse.TokenRequest{Name: "stolen"})
		if err != nil {
			t.Fatal(err)
		}
		thief, err := svc.Authenticate(ctx, a.Token)
		if err != nil {
			t.Fatal(err)
		}
		var b gatehouse.NewToken
		var rerr error
		rotate := func() {
			// The thief rotates the stolen token with its own secret.
			b, rerr = svc.RotateToken(context.Background(), thief, "ci", a.ID, gatehouse.RotateRequest{GraceSeconds: grace})
		}
		hook.armed.Store(&rotate)
		if _, err := svc.ReportLeaked(ctx, "198.51.100.3", gatehouse.LeakReport{Tokens: []string{a.Token}}); err != nil {
			t.Fatal(err)
		}
		if rerr != nil {
			t.Fatalf("grace %d: the racing rotation failed: %v", grace, rerr)
		}
		if _, err := svc.Authenticate(ctx, b.Token); err == nil {
			t.Errorf("grace %d: the successor %s of the reported token %s survived the leak report (rotated between the report's read and its write)", grace, b.ID, a.ID)
		}
		// (Checked after B: presenting A, rotated away, would itself
		// revoke the family as reuse.)
		if _, err := svc.Authenticate(ctx, a.Token); err == nil {
			t.Errorf("grace %d: the reported token itself still works", grace)
		}
	}
}
