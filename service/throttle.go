package service

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"runtime"
	"time"

	"github.com/gatehouse/gatehouse"
)

// loginGuard throttles password logins: per username (after maxFailures
// failures within window, every attempt is refused until the oldest of
// them leaves the window), per remote address (a wider limit against
// spraying many usernames), and by capping concurrent bcrypt checks so a
// login flood cannot starve token traffic of CPU.
//
// The failure budget lives in the store (the one passed to reserve and
// done), so that every replica on one database spends the same budget: N
// replicas must not allow N times the guesses. An attempt reserves its slot there, in the transaction that
// checks the budget, before its password check runs; attempts admitted
// but not yet decided count like failures, so concurrent guesses on any
// replicas cannot all pass the check before any is recorded. A
// reservation whose process died is never settled and counts until it
// leaves the window: the throttle fails closed.
//
// The cap on concurrent checks stays in memory: it protects this
// process's CPU, not the budget.
type loginGuard struct {
	maxFailures int
	maxPerAddr  int
	window      time.Duration
	sem         chan struct{}
}

// addrFactor is how many more failures an address may make than one
// username before it is throttled.
const addrFactor = 4

// settleTimeout bounds the write that settles an attempt. It runs even
// when the caller has gone away, or the slot would stay held for the
// whole window.
const settleTimeout = 10 * time.Second

// DefaultLoginConcurrency is how many password checks run at once by
// default: half the CPUs, at least one. bcrypt holds a CPU for its whole
// run, so this leaves the other half to token traffic during a login flood.
func DefaultLoginConcurrency() int { return max(1, runtime.GOMAXPROCS(0)/2) }

func newLoginGuard(maxFailures int, window time.Duration, maxConcurrent int) *loginGuard {
	if maxFailures <= 0 {
		maxFailures = 5
	}
	if window <= 0 {
		window = 5 * time.Minute
	}
	if maxConcurrent <= 0 {
		maxConcurrent = DefaultLoginConcurrency()
	}
	return &loginGuard{
		maxFailures: maxFailures,
		maxPerAddr:  maxFailures * addrFactor,
		window:      window,
		sem:         make(chan struct{}, maxConcurrent),
	}
}

// loginKey is the store's key of one budget: kind ("user", "addr") and
// the name. A long name is keyed by its hash, so keys stay short enough
// to index (a username may be as long as a request body).
func loginKey(kind, name string) string {
	const maxName = 200
	if len(name) > maxName {
		sum := sha256.Sum256([]byte(name))
		return kind + "#" + hex.EncodeToString(sum[:])
	}
	return kind + ":" + name
}

// reserve admits login attempt id or says how long to wait. An admitted
// attempt holds a slot in the failure budget of its user and address
// until done reports how it went: the budget is counted before the check
// runs, not after. Counting both budgets and taking the slots is one
// transaction, so that on PostgreSQL two replicas admitting attempts for
// one user at once conflict and one of them runs again, seeing the other's
// slot. A store that cannot answer refuses the login (the error).
func (g *loginGuard) reserve(ctx context.Context, st gatehouse.Store, id, user, addr string, now time.Time) (time.Duration, error) {
	var wait time.Duration
	err := st.Tx(ctx, func(tx gatehouse.Tx) error {
		var err error
		if wait, err = g.wait(ctx, tx, user, addr, now); err != nil || wait > 0 {
			return err
		}
		return tx.AddLoginAttempt(ctx, gatehouse.LoginAttempt{
			ID: id, Keys: []string{loginKey("user", user), loginKey("addr", addr)}, At: now,
		})
	})
	if err != nil {
		return 0, err
	}
	return wait, nil
}

// done settles reserved attempt id: a failure stays in the budget, a
// success clears the user's failures, and an attempt that never ran (no
// password-check slot) counts for nothing. It writes even when ctx has
// ended. An attempt it cannot settle stays pending, and counts until it
// leaves the window.
func (g *loginGuard) done(ctx context.Context, st gatehouse.Store, id, user string, outcome loginOutcome) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), settleTimeout)
	defer cancel()
	return st.Tx(ctx, func(tx gatehouse.Tx) error {
		switch outcome {
		case loginFailed:
			return tx.FailLoginAttempt(ctx, id)
		case loginSucceeded:
			if err := tx.DeleteLoginAttempt(ctx, id); err != nil {
				return err
			}
			return tx.ClearLoginFailures(ctx, loginKey("user", user))
		default:
			return tx.DeleteLoginAttempt(ctx, id)
		}
	})
}

type loginOutcome int

const (
	loginFailed loginOutcome = iota
	loginSucceeded
	loginNotRun
)

// wait returns how long the caller must wait, or 0 if it may try now, as
// tx sees the budgets of user and addr.
func (g *loginGuard) wait(ctx context.Context, tx gatehouse.Tx, user, addr string, now time.Time) (time.Duration, error) {
	var wait time.Duration
	for _, b := range []struct {
		key string
		max int
	}{{loginKey("user", user), g.maxFailures}, {loginKey("addr", addr), g.maxPerAddr}} {
		tally, err := tx.LoginAttempts(ctx, b.key, now.Add(-g.window), b.max)
		if err != nil {
			return 0, err
		}
		wait = max(wait, g.blocked(tally, b.max, now))
	}
	return wait, nil
}

// blocked says how long a key must wait given its recorded failures and
// its attempts still pending, against a budget of max. The tally holds at
// most max of each, which is all the rule needs.
func (g *loginGuard) blocked(tally gatehouse.LoginTally, max int, now time.Time) time.Duration {
	fails := tally.Failed
	if len(fails)+tally.Pending < max {
		return 0
	}
	if len(fails) >= max {
		// Throttled until enough failures leave the window.
		return fails[len(fails)-max].Add(g.window).Sub(now)
	}
	// The budget is held by attempts still being checked; they settle
	// within a password check or two.
	return time.Second
}

// acquire takes a password-check slot, waiting at most maxWait.
func (g *loginGuard) acquire(ctx context.Context, maxWait time.Duration) bool {
	t := time.NewTimer(maxWait)
	defer t.Stop()
	select {
	case g.sem <- struct{}{}:
		return true
	case <-ctx.Done():
		return false
	case <-t.C:
		return false
	}
}

func (g *loginGuard) release() { <-g.sem }

// pruneLoginAttempts deletes the attempts that have left the window,
// settled or not: they no longer count.
func (s *Service) pruneLoginAttempts(ctx context.Context) (int, error) {
	var n int
	before := s.now().Add(-s.logins.window)
	err := s.store.Tx(ctx, func(tx gatehouse.Tx) (err error) {
		n, err = tx.PruneLoginAttempts(ctx, before)
		return err
	})
	return n, err
}
