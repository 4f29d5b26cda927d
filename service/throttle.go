package service

import (
	"context"
	"runtime"
	"sync"
	"time"
)

// loginGuard throttles password logins: per username (after maxFailures
// failures within window, every attempt is refused until the oldest of
// them leaves the window), per remote address (a wider limit against
// spraying many usernames), and by capping concurrent bcrypt checks so a
// login flood cannot starve token traffic of CPU.
type loginGuard struct {
	maxFailures int
	maxPerAddr  int
	window      time.Duration
	sem         chan struct{}

	mu     sync.Mutex
	byUser map[string][]time.Time
	byAddr map[string][]time.Time
	// Attempts admitted but not yet decided (their bcrypt check is queued
	// or running) count against the budget like failures, so concurrent
	// guesses cannot all pass the check before any is recorded.
	pendingUser map[string]int
	pendingAddr map[string]int
}

// addrFactor is how many more failures an address may make than one
// username before it is throttled.
const addrFactor = 4

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
		byUser:      map[string][]time.Time{},
		byAddr:      map[string][]time.Time{},
		pendingUser: map[string]int{},
		pendingAddr: map[string]int{},
	}
}

// reserve admits a login attempt or says how long to wait. An admitted
// attempt holds a slot in the failure budget of its user and address
// until done reports how it went: the budget is counted before the check
// runs, not after.
func (g *loginGuard) reserve(user, addr string, now time.Time) time.Duration {
	g.mu.Lock()
	defer g.mu.Unlock()
	wait := g.blocked(g.byUser, user, g.pendingUser[user], g.maxFailures, now)
	if w := g.blocked(g.byAddr, addr, g.pendingAddr[addr], g.maxPerAddr, now); w > wait {
		wait = w
	}
	if wait > 0 {
		return wait
	}
	g.pendingUser[user]++
	g.pendingAddr[addr]++
	return 0
}

// done settles a reserved attempt: a failure stays in the budget, a
// success clears the user's failures, and an attempt that never ran
// (no password-check slot) counts for nothing.
func (g *loginGuard) done(user, addr string, now time.Time, outcome loginOutcome) {
	g.mu.Lock()
	defer g.mu.Unlock()
	decr(g.pendingUser, user)
	decr(g.pendingAddr, addr)
	switch outcome {
	case loginFailed:
		g.failLocked(user, addr, now)
	case loginSucceeded:
		delete(g.byUser, user)
	}
}

type loginOutcome int

const (
	loginFailed loginOutcome = iota
	loginSucceeded
	loginNotRun
)

func decr(m map[string]int, key string) {
	if m[key] <= 1 {
		delete(m, key)
		return
	}
	m[key]--
}

// retryAfter returns how long the caller must wait, or 0 if it may try now.
func (g *loginGuard) retryAfter(user, addr string, now time.Time) time.Duration {
	g.mu.Lock()
	defer g.mu.Unlock()
	wait := g.blocked(g.byUser, user, g.pendingUser[user], g.maxFailures, now)
	if w := g.blocked(g.byAddr, addr, g.pendingAddr[addr], g.maxPerAddr, now); w > wait {
		wait = w
	}
	return wait
}

// blocked says how long key must wait given its recorded failures and
// its attempts still pending, against a budget of max.
func (g *loginGuard) blocked(m map[string][]time.Time, key string, pending, max int, now time.Time) time.Duration {
	fails := prune(m[key], now.Add(-g.window))
	if len(fails) == 0 {
		delete(m, key)
	} else {
		m[key] = fails
	}
	if len(fails)+pending < max {
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

func (g *loginGuard) fail(user, addr string, now time.Time) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.failLocked(user, addr, now)
}

func (g *loginGuard) failLocked(user, addr string, now time.Time) {
	cut := now.Add(-g.window)
	g.byUser[user] = append(prune(g.byUser[user], cut), now)
	g.byAddr[addr] = append(prune(g.byAddr[addr], cut), now)
	// Bound memory against floods of distinct keys: drop whole maps
	// rather than grow without limit (the failures are then forgotten,
	// which only loosens throttling after an extreme flood).
	const maxKeys = 100_000
	if len(g.byUser) > maxKeys {
		g.byUser = map[string][]time.Time{}
	}
	if len(g.byAddr) > maxKeys {
		g.byAddr = map[string][]time.Time{}
	}
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

func prune(ts []time.Time, cut time.Time) []time.Time {
	i := 0
	for i < len(ts) && !ts[i].After(cut) {
		i++
	}
	return ts[i:]
}
