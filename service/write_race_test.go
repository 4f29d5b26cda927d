package service_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/service"
	"github.com/gatehouse/gatehouse/store/sqlite"
)

// A write authorized before a concurrent write that takes its caller's
// rights away has committed must not commit after it (see write).

// gateStore holds the next store transaction, once armed, until gate is
// closed: a slow commit, so that another request can arrive meanwhile.
type gateStore struct {
	gatehouse.Store
	armed   atomic.Bool
	entered chan struct{}
	gate    chan struct{}
}

func (g *gateStore) Tx(ctx context.Context, fn func(gatehouse.Tx) error) error {
	if g.armed.CompareAndSwap(true, false) {
		g.entered <- struct{}{}
		<-g.gate
	}
	return g.Store.Tx(ctx, fn)
}

func newGateWorld(t *testing.T) (*service.TestWorld, *gateStore) {
	var gs *gateStore
	w := service.NewTestWorld(t, func(st *sqlite.Store) service.Options {
		gs = &gateStore{Store: st, entered: make(chan struct{}, 1), gate: make(chan struct{})}
		return service.Options{Store: gs}
	})
	return w, gs
}

func mustAuth(t *testing.T, svc *service.Service, tok string) *service.Principal {
	t.Helper()
	p, err := svc.Authenticate(context.Background(), tok)
	if err != nil {
		t.Fatalf("authenticate: %v", err)
	}
	return p
}

// A mint authorized with a token while a revoke-all (or break-glass) of
// the owner's API tokens is committing waits for the write lock, and then
// finds its caller's token gone (callerCurrent) and mints nothing. Before,
// it minted with the token the revoke-all had just killed: no serial order
// gives that (mint first, and revoke-all kills the new token too;
// revoke-all first, and the caller no longer authenticates), and the
// holder of a stolen token kept a live token through the admin's
// revoke-all. Found by an outside attack.
func TestMintRacingRevokeAllMintsNothing(t *testing.T) {
	for _, how := range []string{"revoke-all", "break-glass"} {
		t.Run(how, func(t *testing.T) {
			ctx := context.Background()
			w, gs := newGateWorld(t)
			svc := w.Svc
			if _, err := svc.CreateAccount(ctx, w.Admin(), gatehouse.AccountCreate{Name: "alice",
				Capabilities: []gatehouse.Capability{gatehouse.CapLogin, gatehouse.CapAPIKey}, Password: "alice-password"}); err != nil {
				t.Fatal(err)
			}
			sess, err := svc.Login(ctx, "alice", "alice-password", "127.0.0.1")
			if err != nil {
				t.Fatal(err)
			}
			stolen, err := svc.CreateToken(ctx, mustAuth(t, svc, sess.Token), "alice", gatehouse.TokenRequest{Name: "ci"})
			if err != nil {
				t.Fatal(err)
			}

			// The admin revokes every API token of alice; the commit is slow.
			admin := w.Admin()
			gs.armed.Store(true)
			revoked := make(chan error, 1)
			go func() {
				if how == "revoke-all" {
					_, err := svc.RevokeAll(ctx, admin, "alice", time.Time{})
					revoked <- err
				} else {
					_, err := svc.BulkRevoke(ctx, admin, gatehouse.BulkRevoke{Account: "alice"})
					revoked <- err
				}
			}()
			<-gs.entered

			// Meanwhile the thief's mint request arrives, authenticated
			// before the revoke is acknowledged (as it must be).
			thief := mustAuth(t, svc, stolen.Token)
			minted := make(chan gatehouse.NewToken, 1)
			mintErr := make(chan error, 1)
			go func() {
				nt, err := svc.CreateToken(ctx, thief, "alice", gatehouse.TokenRequest{Name: "persistence"})
				minted <- nt
				mintErr <- err
			}()
			time.Sleep(200 * time.Millisecond) // the mint now waits for the write lock
			close(gs.gate)
			if err := <-revoked; err != nil {
				t.Fatalf("revoke: %v", err)
			}
			if _, err := svc.Authenticate(ctx, stolen.Token); err == nil {
				t.Fatal("the revoked token still authenticates")
			}
			nt, err := <-minted, <-mintErr
			if gatehouse.ErrorCode(err) != gatehouse.EUNAUTHORIZED {
				t.Errorf("the in-flight mint after the %s: %v, want unauthenticated", how, err)
			}
			if err == nil {
				if _, err := svc.Authenticate(ctx, nt.Token); err == nil {
					t.Errorf("%s acknowledged, yet the revoked token's in-flight mint committed after it: token %s is live", how, nt.ID)
				}
			}
		})
	}
}

// An RBAC editor whose right is being taken away (the admin's policy
// change is committing) sends a policy that makes her admin. Her write
// waits for the lock, finds the engine changed, checks settings, update,
// rbac again under the new one (callerCurrent) and is refused. Before, it
// committed after the demotion and undid it: neither serial order ends
// that way. Found by an outside attack.
func TestRBACEditRacingDemotionIsRefused(t *testing.T) {
	ctx := context.Background()
	w, gs := newGateWorld(t)
	svc := w.Svc
	if _, err := svc.CreateAccount(ctx, w.Admin(), gatehouse.AccountCreate{Name: "carol",
		Capabilities: []gatehouse.Capability{gatehouse.CapLogin, gatehouse.CapAPIKey}, Password: "carol-password"}); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.PutRBAC(ctx, w.Admin(), gatehouse.RBAC{PolicyCSV: "p, carol, settings, *, rbac, allow"}); err != nil {
		t.Fatal(err)
	}
	sess, err := svc.Login(ctx, "carol", "carol-password", "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	carol := mustAuth(t, svc, sess.Token)

	admin := w.Admin()
	gs.armed.Store(true)
	demoted := make(chan error, 1)
	go func() { _, err := svc.PutRBAC(ctx, admin, gatehouse.RBAC{PolicyCSV: ""}); demoted <- err }()
	<-gs.entered
	grabbed := make(chan error, 1)
	go func() {
		_, err := svc.PutRBAC(ctx, carol, gatehouse.RBAC{PolicyCSV: "g, carol, role:admin"})
		grabbed <- err
	}()
	time.Sleep(200 * time.Millisecond)
	close(gs.gate)
	if err := <-demoted; err != nil {
		t.Fatal(err)
	}
	if err := <-grabbed; gatehouse.ErrorCode(err) != gatehouse.EFORBIDDEN {
		t.Errorf("carol's in-flight PutRBAC after her demotion: %v, want permission_denied", err)
	}
	if now := mustAuth(t, svc, sess.Token); svc.Can(now, "accounts", "delete", "anyone") {
		t.Errorf("carol's demotion was acknowledged, then her in-flight PutRBAC committed: she is role:admin")
	}
	// Authorized anew, with the demotion in force, she is refused too.
	if _, err := svc.PutRBAC(ctx, mustAuth(t, svc, sess.Token), gatehouse.RBAC{PolicyCSV: "g, carol, role:admin"}); gatehouse.ErrorCode(err) != gatehouse.EFORBIDDEN {
		t.Errorf("carol's PutRBAC after the demotion: %v", err)
	}
}

// The audit trail's names for the server's own actors are no account's:
// an account reads the events its name made, and these name every
// account's expired tokens and refused exchanges. And an account reads
// by its name only what happened since it was created, not the trail of
// a deleted account of the same name. Found by an outside attack.
func TestOwnAuditTrailIsOnlyOnesOwn(t *testing.T) {
	ctx := context.Background()
	w := service.NewTestWorld(t, nil)
	svc := w.Svc
	for _, name := range []string{"reaper", "anonymous", "restore", "reset-admin-password", "sso"} {
		if _, err := svc.CreateAccount(ctx, w.Admin(), gatehouse.AccountCreate{Name: name, Capabilities: []gatehouse.Capability{gatehouse.CapAPIKey}}); gatehouse.ErrorCode(err) != gatehouse.EINVALID {
			t.Errorf("account %q: %v, want invalid_argument (reserved)", name, err)
		}
	}
	bob := gatehouse.AccountCreate{Name: "bob", Capabilities: []gatehouse.Capability{gatehouse.CapLogin}, Password: "bob-password"}
	if _, err := svc.CreateAccount(ctx, w.Admin(), bob); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Login(ctx, "bob", "bob-password", "127.0.0.1"); err != nil {
		t.Fatal(err)
	}
	if err := svc.DeleteAccount(ctx, w.Admin(), "bob"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Millisecond)
	if _, err := svc.CreateAccount(ctx, w.Admin(), bob); err != nil {
		t.Fatal(err)
	}
	sess, err := svc.Login(ctx, "bob", "bob-password", "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []gatehouse.EventFilter{{Account: "bob"}, {Actor: "bob"}, {}} {
		list, err := svc.ListEvents(ctx, mustAuth(t, svc, sess.Token), f, "")
		if err != nil {
			t.Fatalf("%+v: %v", f, err)
		}
		logins := 0
		for _, ev := range list.Items {
			if ev.Type == gatehouse.EventLoginSucceeded {
				logins++
			}
		}
		if logins != 1 {
			t.Errorf("filter %+v: the new bob reads %d logins, want only its own one", f, logins)
		}
	}
}

// A login (or mint) that read the clock before it waited for the write
// lock, while a break-glass revocation of every session issued before T
// committed, is stamped issued when it takes the lock (issuedNow), after
// T: no live token claims to be issued before a revocation of everything
// issued before T that it survived. Before, it kept the time read before
// the wait. Found by an outside attack.
func TestLoginRacingBreakGlassIsNotIssuedBeforeIt(t *testing.T) {
	ctx := context.Background()
	clk := &advClock{t: time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)}
	var gs *gateStore
	w := service.NewTestWorld(t, func(st *sqlite.Store) service.Options {
		gs = &gateStore{Store: st, entered: make(chan struct{}, 1), gate: make(chan struct{})}
		return service.Options{Store: gs, Now: clk.Now}
	})
	svc := w.Svc
	if _, err := svc.CreateAccount(ctx, w.Admin(), gatehouse.AccountCreate{Name: "alice",
		Capabilities: []gatehouse.Capability{gatehouse.CapLogin}, Password: "alice-password"}); err != nil {
		t.Fatal(err)
	}
	// Break-glass: every session issued before T, a minute from now; the
	// commit is slow.
	cutoff := clk.Now().Add(time.Minute)
	admin := w.Admin()
	gs.armed.Store(true)
	revoked := make(chan error, 1)
	go func() {
		_, err := svc.BulkRevoke(ctx, admin, gatehouse.BulkRevoke{Kind: gatehouse.KindSession, IssuedBefore: cutoff})
		revoked <- err
	}()
	<-gs.entered
	// alice logs in meanwhile: her session is made before T and waits
	// for the lock; the revocation commits two minutes later.
	type login struct {
		nt  gatehouse.NewToken
		err error
	}
	logged := make(chan login, 1)
	go func() {
		nt, err := svc.Login(ctx, "alice", "alice-password", "127.0.0.1")
		logged <- login{nt, err}
	}()
	time.Sleep(200 * time.Millisecond) // the login now waits for the write lock
	clk.Advance(2 * time.Minute)
	close(gs.gate)
	if err := <-revoked; err != nil {
		t.Fatalf("break-glass: %v", err)
	}
	l := <-logged
	if l.err != nil {
		t.Fatalf("login: %v", l.err)
	}
	// Stored as the store would list it for a second break-glass.
	var stored []gatehouse.Token
	err := w.Store.Tx(ctx, func(tx gatehouse.Tx) error {
		var err error
		stored, err = tx.ListTokens(ctx, gatehouse.TokenFilter{Account: "alice", Kind: gatehouse.KindSession, IssuedBefore: cutoff})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(stored) > 0 {
		t.Errorf("%d sessions issued before %s survived the break-glass of every session issued before it", len(stored), cutoff.Format(time.TimeOnly))
	}
	if l.nt.IssuedAt.Before(cutoff) {
		t.Errorf("the login answered issuedAt %s, before the break-glass cutoff %s it survived", l.nt.IssuedAt.Format(time.TimeOnly), cutoff.Format(time.TimeOnly))
	}
}
