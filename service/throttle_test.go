package service_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/service"
)

// Two replicas on one database spend one failure budget: 64 concurrent
// wrong guesses for one user, split across both, get at most 5 answers of
// 401 in all (the rest are throttled), and afterwards the right password
// is refused on either replica too.
func TestLoginThrottleHoldsAcrossReplicas(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "gatehouse.db")
	a, _ := replica(t, path, time.Second)
	if _, err := a.Bootstrap(ctx, "admin-password"); err != nil {
		t.Fatal(err)
	}
	b, _ := replica(t, path, time.Second)
	replicas := []*service.Service{a, b}

	const n = 64
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		counts = map[string]int{}
	)
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			_, err := replicas[i%2].Login(ctx, "admin", fmt.Sprint("wrong-guess-", i), "192.0.2.1")
			mu.Lock()
			counts[gatehouse.ErrorCode(err)]++
			mu.Unlock()
		})
	}
	began := time.Now()
	close(start)
	wg.Wait()
	t.Logf("guesses took %v", time.Since(began))
	if got := counts[gatehouse.EUNAUTHORIZED]; got == 0 || got > 5 {
		t.Errorf("64 wrong guesses across two replicas: %d answers of 401, want 1 to 5 (all: %v)", got, counts)
	}
	if got := counts[gatehouse.EUNAUTHORIZED] + counts[gatehouse.ETHROTTLED]; got != n {
		t.Errorf("answers other than unauthorized and throttled: %v", counts)
	}
	t.Logf("64 concurrent wrong guesses across two replicas: %v", counts)

	if counts[gatehouse.EUNAUTHORIZED] == 5 {
		for i, r := range replicas {
			_, err := r.Login(ctx, "admin", "admin-password", "198.51.100.7")
			if code := gatehouse.ErrorCode(err); code != gatehouse.ETHROTTLED {
				t.Errorf("replica %d: the right password after 5 failures: %v, want throttled", i, err)
			}
		}
	}
}

// TestUpdatePasswordIsThrottledLikeLogin: the current password a password
// change asks for is checked under the login throttle. Whoever holds a
// session or API token is not thereby its owner's password: five wrong
// guesses in the window and the sixth is refused as throttled, even with
// the right password, from any address; the budget is the one logins
// spend; and it frees up as the failures leave the window.
func TestUpdatePasswordIsThrottledLikeLogin(t *testing.T) {
	e := newActivityEnv(t, "")
	alice := e.user("alice")
	change := func(p *service.Principal, current, addr string) error {
		return e.svc.UpdatePassword(e.ctx, p, gatehouse.PasswordChange{CurrentPassword: current, NewPassword: "alice-new-password"}, addr)
	}
	start := e.clock()
	for i := range 5 {
		if err := change(alice, fmt.Sprint("wrong-guess-", i), "192.0.2.1"); gatehouse.ErrorCode(err) != gatehouse.EUNAUTHORIZED {
			t.Fatalf("wrong current password %d: %v, want unauthenticated", i+1, err)
		}
	}
	for _, addr := range []string{"192.0.2.1", "198.51.100.7"} {
		err := change(alice, "alice-password", addr)
		var ge *gatehouse.Error
		if !errors.As(err, &ge) || ge.Code != gatehouse.ETHROTTLED || ge.RetryAfter <= 0 || ge.RetryAfter > 5*time.Minute {
			t.Fatalf("the right password after 5 wrong ones, from %s: %v, want throttled for up to 5 minutes", addr, err)
		}
	}
	if _, err := e.svc.Login(e.ctx, "alice", "alice-password", "198.51.100.7"); gatehouse.ErrorCode(err) != gatehouse.ETHROTTLED {
		t.Errorf("login after 5 wrong current passwords: %v, want throttled (one budget)", err)
	}

	e.set(start.Add(5*time.Minute + time.Second))
	if err := change(alice, "alice-password", "192.0.2.1"); err != nil {
		t.Fatalf("the right password once the failures left the window: %v", err)
	}
	if _, err := e.svc.Login(e.ctx, "alice", "alice-new-password", "192.0.2.1"); err != nil {
		t.Errorf("login with the new password: %v", err)
	}
}

// TestUpdatePasswordIsThrottledPerAddress: wrong current passwords from
// one address count against the address, as failed logins do: after 20
// of them, spread over accounts, a sixth account's right password is
// refused from that address and accepted from another.
func TestUpdatePasswordIsThrottledPerAddress(t *testing.T) {
	e := newActivityEnv(t, "")
	for i := range 5 {
		name := fmt.Sprint("user", i)
		p := e.user(name)
		for j := range 4 {
			err := e.svc.UpdatePassword(e.ctx, p, gatehouse.PasswordChange{CurrentPassword: fmt.Sprint("wrong-", j), NewPassword: "a-new-password"}, "192.0.2.1")
			if gatehouse.ErrorCode(err) != gatehouse.EUNAUTHORIZED {
				t.Fatalf("%s, wrong current password %d: %v, want unauthenticated", name, j+1, err)
			}
		}
	}
	carol := e.user("carol")
	right := gatehouse.PasswordChange{CurrentPassword: "carol-password", NewPassword: "carol-new-password"}
	if err := e.svc.UpdatePassword(e.ctx, carol, right, "192.0.2.1"); gatehouse.ErrorCode(err) != gatehouse.ETHROTTLED {
		t.Errorf("carol from the address with 20 failures: %v, want throttled", err)
	}
	if err := e.svc.UpdatePassword(e.ctx, carol, right, "198.51.100.7"); err != nil {
		t.Errorf("carol from another address: %v", err)
	}
}
