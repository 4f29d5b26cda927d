package service_test

import (
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/service"
)

// A leak report of a token that was rotated away revokes its family: the
// successor of a stolen token the thief rotated dies with it, in the old
// token's grace period or after it, and each is audited as token.leaked.
// A report of the newest token of a family revokes only that token.
func TestLeakReportOfARotatedTokenRevokesItsFamily(t *testing.T) {
	for _, grace := range []int64{0, 600} {
		ctx := t.Context()
		w := newAdvWorld(t, service.Options{})
		a, err := w.svc.CreateToken(ctx, w.admin(), "ci", gatehouse.TokenRequest{Name: "stolen"})
		if err != nil {
			t.Fatal(err)
		}
		b, err := w.svc.RotateToken(ctx, w.admin(), "ci", a.ID, gatehouse.RotateRequest{GraceSeconds: grace})
		if err != nil {
			t.Fatal(err)
		}
		c, err := w.svc.RotateToken(ctx, w.admin(), "ci", b.ID, gatehouse.RotateRequest{})
		if err != nil {
			t.Fatal(err)
		}
		other, err := w.svc.CreateToken(ctx, w.admin(), "ci", gatehouse.TokenRequest{Name: "bystander"})
		if err != nil {
			t.Fatal(err)
		}
		w.clock.Advance(time.Second)
		if _, err := w.svc.ReportLeaked(ctx, "198.51.100.3", gatehouse.LeakReport{Tokens: []string{a.Token}}); err != nil {
			t.Fatal(err)
		}
		for _, tk := range []gatehouse.NewToken{a, b, c} {
			if _, err := w.svc.Authenticate(ctx, tk.Token); err == nil {
				t.Errorf("grace %d s: token %s of the reported token's family still works", grace, tk.ID)
			}
		}
		if _, err := w.svc.Authenticate(ctx, other.Token); err != nil {
			t.Errorf("grace %d s: a token of another family was revoked: %v", grace, err)
		}
		var found bool
		for _, ev := range w.events(t, gatehouse.EventTokenLeaked) {
			if ev.TokenID == c.ID {
				found = strings.Contains(ev.Detail, "rotated token "+a.ID+" reported leaked") && ev.RemoteAddr == "198.51.100.3"
			}
		}
		if !found {
			t.Errorf("grace %d s: no token.leaked event for the successor %s naming the reported token", grace, c.ID)
		}
	}
	// The newest of a family reported: only it goes (what came before it
	// was rotated away by its owner, and is no successor of the leak).
	ctx := t.Context()
	w := newAdvWorld(t, service.Options{})
	a, _ := w.svc.CreateToken(ctx, w.admin(), "ci", gatehouse.TokenRequest{Name: "old"})
	b, err := w.svc.RotateToken(ctx, w.admin(), "ci", a.ID, gatehouse.RotateRequest{GraceSeconds: 600})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.svc.ReportLeaked(ctx, "198.51.100.3", gatehouse.LeakReport{Tokens: []string{b.Token}}); err != nil {
		t.Fatal(err)
	}
	if _, err := w.svc.Authenticate(ctx, b.Token); err == nil {
		t.Error("the reported token still works")
	}
	if _, err := w.svc.Authenticate(ctx, a.Token); err != nil {
		t.Errorf("its predecessor, in its grace period, was revoked: %v", err)
	}
}
