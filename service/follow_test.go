package service_test

import (
	"context"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/service"
	"github.com/gatehouse/gatehouse/store/sqlite"
)

// freezable is a store whose feed reads can be made to hang, as a frozen
// database's would.
type freezable struct {
	gatehouse.Store
	frozen atomic.Bool
}

func (f *freezable) ChangeHead(ctx context.Context) (int64, error) {
	if f.frozen.Load() {
		<-ctx.Done()
		return 0, ctx.Err()
	}
	return f.Store.ChangeHead(ctx)
}

// replica opens a service on the database file at path that follows the
// change feed, and runs it until the test ends.
func replica(t *testing.T, path string, bound time.Duration) (*service.Service, *freezable) {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	fz := &freezable{Store: st}
	svc, err := service.New(ctx, service.Options{Store: fz, BcryptCost: 10, Follow: true, StalenessBound: bound})
	if err != nil {
		t.Fatal(err)
	}
	run, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); svc.Run(run, time.Hour) }()
	t.Cleanup(func() { stop(); <-done; st.Close() })
	return svc, fz
}

// carolOnTwoReplicas starts replicas a and b on one SQLite database,
// bootstraps it through a and creates carol there (login capability,
// password "carol-password"). It returns b's store, which a test can
// freeze, and an admin session token.
func carolOnTwoReplicas(t *testing.T) (a, b *service.Service, frozen *freezable, adminToken string) {
	t.Helper()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "gatehouse.db")
	a, _ = replica(t, path, time.Minute)
	if _, err := a.Bootstrap(ctx, "admin-password"); err != nil {
		t.Fatal(err)
	}
	b, frozen = replica(t, path, time.Minute)
	nt, err := a.Login(ctx, "admin", "admin-password", "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.CreateAccount(ctx, mustAuth(t, a, nt.Token), gatehouse.AccountCreate{Name: "carol",
		Capabilities: []gatehouse.Capability{gatehouse.CapLogin}, Password: "carol-password"}); err != nil {
		t.Fatal(err)
	}
	return a, b, frozen, nt.Token
}

// carolSessionOnB logs carol in through a and waits until b knows her
// session and allows her what known checks.
func carolSessionOnB(t *testing.T, a, b *service.Service, known func(*service.Principal) bool) gatehouse.NewToken {
	t.Helper()
	ctx := context.Background()
	sess, err := a.Login(ctx, "carol", "carol-password", "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "b knows carol's session and right", func() bool {
		p, err := b.Authenticate(ctx, sess.Token)
		return err == nil && known(p)
	})
	return sess
}

func eventually(t *testing.T, within time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > within {
			t.Fatalf("not within %s: %s", within, what)
		}
		time.Sleep(2 * time.Millisecond)
	}
	return time.Since(start)
}

// Two replicas on one database: what one commits, the other applies from
// the change feed; a replica whose feed reads hang refuses every token once
// the staleness bound has passed, and accepts them again once it reads.
func TestReplicaFollowsTheFeed(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "gatehouse.db")
	const bound = 300 * time.Millisecond
	a, _ := replica(t, path, bound)
	if _, err := a.Bootstrap(ctx, "admin-password"); err != nil {
		t.Fatal(err)
	}
	b, frozen := replica(t, path, bound)

	nt, err := a.Login(ctx, "admin", "admin-password", "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	admin, _ := a.Authenticate(ctx, nt.Token)
	works := func(s *service.Service, tok string) bool {
		_, err := s.Authenticate(ctx, tok)
		return err == nil
	}
	// Read your writes across replicas: b does not refuse a token minted
	// through a a moment ago; it confirms it is current first.
	if !works(b, nt.Token) {
		t.Fatal("b refuses a session minted on a just before")
	}

	tok, err := a.CreateToken(ctx, admin, "admin", gatehouse.TokenRequest{Name: "t"})
	if err != nil {
		t.Fatal(err)
	}
	if !works(b, tok.Token) {
		t.Fatal("b refuses a token minted on a just before")
	}
	if err := a.DeleteToken(ctx, admin, "admin", tok.ID); err != nil {
		t.Fatal(err)
	}
	if works(a, tok.Token) {
		t.Fatal("the revoking replica accepts the token")
	}
	eventually(t, bound, "b refuses a token revoked on a", func() bool { return !works(b, tok.Token) })

	// A policy change made on a reaches b's engine.
	if _, err := a.CreateAccount(ctx, admin, gatehouse.AccountCreate{Name: "ci", Capabilities: []gatehouse.Capability{"apiKey"}}); err != nil {
		t.Fatal(err)
	}
	ci, err := a.CreateToken(ctx, admin, "ci", gatehouse.TokenRequest{Name: "ci"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.PutRBAC(ctx, admin, gatehouse.RBAC{PolicyCSV: "p, ci, applications, get, */*, allow"}); err != nil {
		t.Fatal(err)
	}
	eventually(t, bound, "b applies the policy", func() bool {
		p, err := b.Authenticate(ctx, ci.Token)
		return err == nil && b.Can(p, "applications", "get", "x/y")
	})

	// Frozen: refused with 503 once the bound has passed, not before.
	frozen.frozen.Store(true)
	took := eventually(t, bound+time.Second, "b refuses tokens while it cannot read the feed", func() bool {
		_, err := b.Authenticate(ctx, nt.Token)
		return gatehouse.IsCode(err, gatehouse.EUNAVAILABLE)
	})
	if took < bound/2 {
		t.Errorf("b refused tokens %s after the freeze, well before the bound of %s", took, bound)
	}
	if err := b.Ready(ctx); !gatehouse.IsCode(err, gatehouse.EUNAVAILABLE) {
		t.Errorf("Ready of a stale replica: %v", err)
	}
	if !works(a, nt.Token) {
		t.Error("the replica that can read the feed refuses tokens too")
	}
	frozen.frozen.Store(false)
	eventually(t, 2*time.Second, "b accepts tokens again", func() bool { return works(b, nt.Token) })
}

// A write through a replica whose engine has not yet applied another
// replica's policy change is decided on the policy its transaction reads:
// an RBAC editor demoted through a is refused on b, whose feed is frozen,
// although b's engine still allows her. Otherwise her edit, made within the
// staleness bound, would undo the demotion for good.
func TestReplicaWriteIsDecidedOnThePolicyItReads(t *testing.T) {
	ctx := context.Background()
	a, b, frozen, adminToken := carolOnTwoReplicas(t)
	admin := mustAuth(t, a, adminToken)
	if _, err := a.PutRBAC(ctx, admin, gatehouse.RBAC{PolicyCSV: "p, carol, settings, *, rbac, allow"}); err != nil {
		t.Fatal(err)
	}
	sess := carolSessionOnB(t, a, b, func(p *service.Principal) bool { return b.Can(p, "settings", "update", "rbac") })

	frozen.frozen.Store(true)
	admin = mustAuth(t, a, adminToken)
	if _, err := a.PutRBAC(ctx, admin, gatehouse.RBAC{PolicyCSV: ""}); err != nil {
		t.Fatal(err)
	}
	carol, err := b.Authenticate(ctx, sess.Token)
	if err != nil || !b.Can(carol, "settings", "update", "rbac") {
		t.Fatalf("b applied the demotion through a frozen feed (%v): the test proves nothing", err)
	}
	if _, err := b.PutRBAC(ctx, carol, gatehouse.RBAC{PolicyCSV: "g, carol, role:admin"}); gatehouse.ErrorCode(err) != gatehouse.EFORBIDDEN {
		t.Errorf("carol's edit through b after her demotion through a: %v, want permission_denied", err)
	}
	frozen.frozen.Store(false)
	if p, err := a.Authenticate(ctx, sess.Token); err != nil || a.Can(p, "accounts", "delete", "anyone") {
		t.Errorf("carol after the race: %v, admin %v", err, err == nil)
	}
}

// loadHook is a store whose ForEachToken, the last read of a server's
// load, calls after once it has streamed every token: what a load of
// millions of tokens leaves time for.
type loadHook struct {
	gatehouse.Store
	after func()
}

func (l *loadHook) ForEachToken(ctx context.Context, fn func(gatehouse.Token) error) error {
	err := l.Store.ForEachToken(ctx, fn)
	if l.after != nil {
		l.after()
	}
	return err
}

// A replica's load reads the feed's head first and the tokens last, so a
// revocation committed through another replica while it loads is applied
// only from the feed. Until then its state is that of the moment it read
// the head: a load that took longer than the staleness bound must leave it
// stale, not current as of the end of the load. Otherwise it accepts, at
// start, a token revoked elsewhere longer ago than the bound.
func TestReplicaLoadIsCurrentAsOfItsHeadNotItsEnd(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "gatehouse.db")
	const bound = 50 * time.Millisecond
	a, _ := replica(t, path, time.Minute)
	if _, err := a.Bootstrap(ctx, "admin-password"); err != nil {
		t.Fatal(err)
	}
	nt, err := a.Login(ctx, "admin", "admin-password", "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	admin := mustAuth(t, a, nt.Token)
	tok, err := a.CreateToken(ctx, admin, "admin", gatehouse.TokenRequest{Name: "t"})
	if err != nil {
		t.Fatal(err)
	}

	st, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	var revokedAt time.Time
	hook := &loadHook{Store: st}
	hook.after = func() {
		hook.after = nil
		if err := a.DeleteToken(ctx, admin, "admin", tok.ID); err != nil {
			t.Error(err)
		}
		revokedAt = time.Now()
		// The rest of a long load (not synchronization: the time a load of
		// many tokens takes, longer than the bound).
		time.Sleep(3 * bound)
	}
	b, err := service.New(ctx, service.Options{Store: hook, BcryptCost: 10, Follow: true, StalenessBound: bound})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Authenticate(ctx, tok.Token); err == nil {
		t.Errorf("b accepts, as it starts, a token revoked through a %s before, beyond its staleness bound of %s", time.Since(revokedAt).Round(time.Millisecond), bound)
	} else if !gatehouse.IsCode(err, gatehouse.EUNAVAILABLE) {
		t.Errorf("b as it starts, after a load longer than the bound: %v, want unavailable", err)
	}
	run, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); b.Run(run, time.Hour) }()
	t.Cleanup(func() { stop(); <-done })
	eventually(t, 5*time.Second, "b, caught up, refuses the revoked token as unknown", func() bool {
		_, err := b.Authenticate(ctx, tok.Token)
		return gatehouse.IsCode(err, gatehouse.EUNAUTHORIZED)
	})
	eventually(t, 5*time.Second, "b, caught up, accepts the admin's session", func() bool {
		_, err := b.Authenticate(ctx, nt.Token)
		return err == nil
	})
}
