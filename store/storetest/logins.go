package storetest

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
)

// tally reads key's login attempts after the instant after.
func tally(t *testing.T, s gatehouse.Store, key string, after time.Time, limit int) gatehouse.LoginTally {
	t.Helper()
	return read(t, s, func(tx gatehouse.Tx) (gatehouse.LoginTally, error) {
		return tx.LoginAttempts(t.Context(), key, after, limit)
	})
}

// attempt is a pending login attempt under a user and an address key.
func attempt(id, user, addr string, when time.Time) gatehouse.LoginAttempt {
	return gatehouse.LoginAttempt{ID: id, Keys: []string{"user:" + user, "addr:" + addr}, At: when}
}

// testLoginAttempts: an attempt counts as pending under each of its keys
// until it is failed (then its time is among the key's failures, to the
// nanosecond) or deleted (then it counts nowhere); failures come oldest
// first, only those after the cutoff, at most limit of them (the newest).
func testLoginAttempts(t *testing.T, open func(t *testing.T) gatehouse.Store) {
	s := open(t)
	ctx := t.Context()
	// Five attempts of alice from one address, a second apart, and one of
	// bob from the same address.
	inTx(t, s, func(tx gatehouse.Tx) error {
		for i := range 5 {
			if err := tx.AddLoginAttempt(ctx, attempt(fmt.Sprint("a", i), "alice", "10.0.0.1", at(time.Duration(i)*time.Second))); err != nil {
				return err
			}
		}
		return tx.AddLoginAttempt(ctx, attempt("b0", "bob", "10.0.0.1", at(10*time.Second)))
	})
	before := at(-time.Hour)
	equal(t, "alice, all pending", tally(t, s, "user:alice", before, 10), gatehouse.LoginTally{Failed: []time.Time{}, Pending: 5})
	equal(t, "the address, all pending", tally(t, s, "addr:10.0.0.1", before, 10).Pending, 6)
	equal(t, "pending counted up to the limit", tally(t, s, "user:alice", before, 3).Pending, 3)
	equal(t, "an unknown key", tally(t, s, "user:carol", before, 10), gatehouse.LoginTally{Failed: []time.Time{}})

	inTx(t, s, func(tx gatehouse.Tx) error {
		for _, id := range []string{"a0", "a1", "a3", "a4"} {
			if err := tx.FailLoginAttempt(ctx, id); err != nil {
				return err
			}
		}
		return tx.DeleteLoginAttempt(ctx, "a2") // never ran
	})
	equal(t, "alice after settling", tally(t, s, "user:alice", before, 10),
		gatehouse.LoginTally{Failed: []time.Time{at(0), at(time.Second), at(3 * time.Second), at(4 * time.Second)}})
	equal(t, "alice, the newest two failures", tally(t, s, "user:alice", before, 2).Failed,
		[]time.Time{at(3 * time.Second), at(4 * time.Second)})
	// The cutoff is exclusive: an attempt made at it has left the window.
	equal(t, "alice, failures after t0+1s", tally(t, s, "user:alice", at(time.Second), 10).Failed,
		[]time.Time{at(3 * time.Second), at(4 * time.Second)})
	equal(t, "the address after settling", tally(t, s, "addr:10.0.0.1", before, 10),
		gatehouse.LoginTally{Failed: []time.Time{at(0), at(time.Second), at(3 * time.Second), at(4 * time.Second)}, Pending: 1})

	// Unknown ids are ignored (the attempt may have been pruned), and so
	// is failing an attempt twice.
	inTx(t, s, func(tx gatehouse.Tx) error {
		for _, err := range []error{tx.FailLoginAttempt(ctx, "nope"), tx.DeleteLoginAttempt(ctx, "nope"), tx.FailLoginAttempt(ctx, "a0")} {
			if err != nil {
				return err
			}
		}
		return nil
	})
	equal(t, "alice after settling again", len(tally(t, s, "user:alice", before, 10).Failed), 4)
}

// testClearLoginFailures: clearing a key deletes its failures only: its
// pending attempts stay, and so do the failures' entries under their other
// keys (a login that succeeds clears the user's budget, not the address's).
func testClearLoginFailures(t *testing.T, open func(t *testing.T) gatehouse.Store) {
	s := open(t)
	ctx := t.Context()
	inTx(t, s, func(tx gatehouse.Tx) error {
		for i, id := range []string{"f1", "f2", "p1"} {
			if err := tx.AddLoginAttempt(ctx, attempt(id, "alice", "10.0.0.1", at(time.Duration(i)*time.Second))); err != nil {
				return err
			}
		}
		if err := tx.AddLoginAttempt(ctx, attempt("g1", "bob", "10.0.0.2", t0)); err != nil {
			return err
		}
		for _, id := range []string{"f1", "f2", "g1"} {
			if err := tx.FailLoginAttempt(ctx, id); err != nil {
				return err
			}
		}
		return tx.ClearLoginFailures(ctx, "user:alice")
	})
	before := at(-time.Hour)
	equal(t, "alice after the clear", tally(t, s, "user:alice", before, 10), gatehouse.LoginTally{Failed: []time.Time{}, Pending: 1})
	equal(t, "alice's address after the clear", tally(t, s, "addr:10.0.0.1", before, 10),
		gatehouse.LoginTally{Failed: []time.Time{t0, at(time.Second)}, Pending: 1})
	equal(t, "bob after alice's clear", tally(t, s, "user:bob", before, 10), gatehouse.LoginTally{Failed: []time.Time{t0}})
	// The pending attempt is settled later; its address entry goes too.
	inTx(t, s, func(tx gatehouse.Tx) error { return tx.DeleteLoginAttempt(ctx, "p1") })
	equal(t, "alice's address after the delete", tally(t, s, "addr:10.0.0.1", before, 10),
		gatehouse.LoginTally{Failed: []time.Time{t0, at(time.Second)}})
}

// testPruneLoginAttempts: pruning deletes the attempts made at or before
// the cutoff, pending or failed, under every key, and says how many
// entries went; a taken id is ECONFLICT and leaves the transaction usable.
func testPruneLoginAttempts(t *testing.T, open func(t *testing.T) gatehouse.Store) {
	s := open(t)
	ctx := t.Context()
	inTx(t, s, func(tx gatehouse.Tx) error {
		for i := range 4 {
			if err := tx.AddLoginAttempt(ctx, attempt(fmt.Sprint("x", i), "alice", "10.0.0.1", at(time.Duration(i)*time.Minute))); err != nil {
				return err
			}
		}
		if err := tx.FailLoginAttempt(ctx, "x0"); err != nil {
			return err
		}
		wantCode(t, "AddLoginAttempt with a taken id", tx.AddLoginAttempt(ctx, attempt("x1", "bob", "10.0.0.2", t0)), gatehouse.ECONFLICT)
		return tx.AddLoginAttempt(ctx, attempt("y0", "bob", "10.0.0.2", at(time.Hour)))
	})
	n := read(t, s, func(tx gatehouse.Tx) (int, error) { return tx.PruneLoginAttempts(ctx, at(time.Minute)) })
	equal(t, "entries pruned (two attempts, two keys each)", n, 4)
	before := at(-time.Hour)
	equal(t, "alice after the prune", tally(t, s, "user:alice", before, 10), gatehouse.LoginTally{Failed: []time.Time{}, Pending: 2})
	equal(t, "the address after the prune", tally(t, s, "addr:10.0.0.1", before, 10).Pending, 2)
	equal(t, "bob after the prune", tally(t, s, "user:bob", before, 10).Pending, 1)
	n = read(t, s, func(tx gatehouse.Tx) (int, error) { return tx.PruneLoginAttempts(ctx, at(time.Minute)) })
	equal(t, "entries pruned again", n, 0)
}

// testConcurrentLoginReservations: transactions that each count a key's
// attempts and add one only while fewer than a budget are there, all at
// once, never exceed the budget. This is the login throttle's reservation:
// SQLite runs them one at a time; on PostgreSQL they overlap, and
// SERIALIZABLE must fail all but one of those that read the same count
// (retried, they see the winner's attempt).
func testConcurrentLoginReservations(t *testing.T, open func(t *testing.T) gatehouse.Store) {
	s := open(t)
	ctx := t.Context()
	const workers, budget = 24, 5
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		admitted int
	)
	errs := make(chan error, workers)
	for w := range workers {
		wg.Go(func() {
			var ok bool
			err := s.Tx(ctx, func(tx gatehouse.Tx) error {
				ok = false
				for _, key := range []string{"user:alice", fmt.Sprint("addr:10.0.0.", w)} {
					n, err := tx.LoginAttempts(ctx, key, at(-time.Minute), budget)
					if err != nil {
						return err
					}
					if len(n.Failed)+n.Pending >= budget {
						return nil
					}
				}
				ok = true
				return tx.AddLoginAttempt(ctx, attempt(fmt.Sprint("w", w), "alice", fmt.Sprint("10.0.0.", w), t0))
			})
			errs <- err
			if err == nil && ok {
				mu.Lock()
				admitted++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("reservation: %v", err)
		}
	}
	equal(t, "reservations admitted", admitted, budget)
	equal(t, "alice's pending attempts", tally(t, s, "user:alice", at(-time.Minute), workers).Pending, budget)
}
