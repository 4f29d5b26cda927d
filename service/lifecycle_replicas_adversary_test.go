package service_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/service"
	"github.com/gatehouse/gatehouse/store/sqlite"
)

// advReplica opens a following service on the database at path, on clk.
func advReplica(t *testing.T, path string, clk *advClock) *service.Service {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	svc, err := service.New(ctx, service.Options{Store: st, Now: clk.Now, BcryptCost: 10, Follow: true, StalenessBound: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	run, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); svc.Run(run, time.Hour) }()
	t.Cleanup(func() { stop(); <-done; st.Close() })
	return svc
}

// Two replicas on one store: a rotation on one is known on the other
// (the old token presented there revokes the family, everywhere); a
// token used only through one is not refused as idle by the other, nor
// reaped by it.
func TestAdversaryReplicasRotationAndIdle(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "gatehouse.db")
	clk := &advClock{t: time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)}
	a := advReplica(t, path, clk)
	if _, err := a.Bootstrap(ctx, "admin-password"); err != nil {
		t.Fatal(err)
	}
	b := advReplica(t, path, clk)
	nt, err := a.Login(ctx, "admin", "admin-password", "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	admin := func() *service.Principal {
		p, err := a.Authenticate(ctx, nt.Token)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	works := func(s *service.Service, tok string) bool {
		_, err := s.Authenticate(ctx, tok)
		return err == nil
	}

	// Rotation on a, reuse on b.
	first, err := a.CreateToken(ctx, admin(), "admin", gatehouse.TokenRequest{Name: "chain", SelfRotate: true})
	if err != nil {
		t.Fatal(err)
	}
	p, err := a.Authenticate(ctx, first.Token)
	if err != nil {
		t.Fatal(err)
	}
	second, err := a.SelfRotate(ctx, p, "admin", gatehouse.RotateRequest{})
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, 3*time.Second, "b knows the successor", func() bool { return works(b, second.Token) })
	if works(b, first.Token) {
		t.Fatal("b accepts the rotated-away token")
	}
	eventually(t, 3*time.Second, "a refuses the successor after reuse on b", func() bool { return !works(a, second.Token) })

	// Idle: used only through a, every 50 minutes, for five hours.
	idle := int64(3600)
	used, err := a.CreateToken(ctx, admin(), "admin", gatehouse.TokenRequest{Name: "used", IdleTimeout: &idle})
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, 3*time.Second, "b knows the token", func() bool { return works(b, used.Token) })
	for range 6 {
		clk.Advance(50 * time.Minute)
		q, err := a.Authenticate(ctx, used.Token)
		if err != nil {
			t.Fatalf("a refuses a token in use: %v", err)
		}
		a.Touch(q, "127.0.0.1")
		a.Flush(ctx)
	}
	if _, err := b.Reap(ctx); err != nil {
		t.Fatal(err)
	}
	if !works(a, used.Token) {
		t.Error("b's reaper removed a token in constant use through a")
	}
	if _, err := b.Authenticate(ctx, used.Token); err != nil {
		t.Errorf("b refuses a token in constant use through a: %v", err)
	}
}
