package storetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
)

// viewBound is how long a View that should not wait for anything may take
// before the suite calls it stuck. It is a deadline, not a measurement:
// the View it guards either completes at once or waits for a transaction
// that is released only after the View returns, so it would never finish.
const viewBound = 10 * time.Second

// inView runs fn in one View and fails the test if it returns an error.
func inView(t *testing.T, s gatehouse.Store, fn func(tx gatehouse.Tx) error) {
	t.Helper()
	if err := s.View(t.Context(), fn); err != nil {
		t.Fatalf("View: %v", err)
	}
}

// testViewSeesCommitted: a View reads what Tx committed, exactly as a Tx
// reads it, and returns its function's error as is.
func testViewSeesCommitted(t *testing.T, open func(t *testing.T) gatehouse.Store) {
	s := open(t)
	ctx := t.Context()
	seed(t, s)
	want := read(t, s, func(tx gatehouse.Tx) (snapshot, error) { return readAll(ctx, tx) })
	var got snapshot
	inView(t, s, func(tx gatehouse.Tx) (err error) {
		got, err = readAll(ctx, tx)
		return err
	})
	equal(t, "everything read in a View", got, want)

	inView(t, s, func(tx gatehouse.Tx) error {
		k, err := tx.GetToken(ctx, "t1")
		if err != nil {
			return err
		}
		equal(t, "token read in a View", k, token("t1"))
		_, err = tx.GetAccount(ctx, "bob")
		wantCode(t, "GetAccount unknown in a View", err, gatehouse.ENOTFOUND)
		return nil
	})

	boom := errors.New("boom")
	if err := s.View(ctx, func(gatehouse.Tx) error { return boom }); !errors.Is(err, boom) {
		t.Errorf("View whose fn fails: got %v, want fn's error", err)
	}
	// A View is not left open by a failing one: the next sees a commit.
	inTx(t, s, func(tx gatehouse.Tx) error { return tx.CreateAccount(ctx, account("bob")) })
	inView(t, s, func(tx gatehouse.Tx) error {
		_, err := tx.GetAccount(ctx, "bob")
		return err
	})
}

// testViewSnapshot: every read of one View sees the same snapshot, even
// when a transaction commits between two of them, and that commit does not
// wait for the View; the next View sees it.
func testViewSnapshot(t *testing.T, open func(t *testing.T) gatehouse.Store) {
	s := open(t)
	ctx := t.Context()
	seed(t, s)
	var n atomic.Int64 // TxTwice runs fn again: a new account each run
	var added []string
	inView(t, s, func(tx gatehouse.Tx) error {
		before, err := readAll(ctx, tx)
		if err != nil {
			return err
		}
		name := fmt.Sprintf("bob%d", n.Add(1))
		added = append(added, name)
		commitCtx, cancel := context.WithTimeout(ctx, viewBound)
		defer cancel()
		err = s.Tx(commitCtx, func(w gatehouse.Tx) error {
			a := account("alice")
			a.Enabled = false
			return errors.Join(
				w.CreateAccount(ctx, account(name)),
				w.UpdateAccount(ctx, a),
				w.CreateToken(ctx, token("t-"+name)),
				w.AppendEvents(ctx, []gatehouse.Event{event(2, name, "", "allow")}),
			)
		})
		if err != nil {
			return fmt.Errorf("Tx committing while a View is open: %w", err)
		}
		after, err := readAll(ctx, tx)
		if err != nil {
			return err
		}
		equal(t, "a View's reads before and after another transaction commits", after, before)
		_, err = tx.GetAccount(ctx, name)
		wantCode(t, "GetAccount committed after the View's first read", err, gatehouse.ENOTFOUND)
		return nil
	})
	inView(t, s, func(tx gatehouse.Tx) error {
		for _, name := range added {
			if _, err := tx.GetAccount(ctx, name); err != nil {
				return fmt.Errorf("account %s committed before this View: %w", name, err)
			}
		}
		a, err := tx.GetAccount(ctx, "alice")
		if err == nil && a.Enabled {
			t.Errorf("alice in a later View: still enabled, want the committed update")
		}
		return err
	})
}

// testViewBesideOpenTx: a View completes while a write transaction is
// open, so it neither queues behind writers nor waits for their locks, and
// it does not see that transaction's uncommitted writes; once it commits,
// a View sees them. The writer holds until the View has returned, so a
// View that waited for it would wait for ever (viewBound ends that).
func testViewBesideOpenTx(t *testing.T, open func(t *testing.T) gatehouse.Store) {
	s := open(t)
	ctx := t.Context()
	seed(t, s)
	holding, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	done := make(chan error, 1)
	go func() {
		done <- s.Tx(ctx, func(tx gatehouse.Tx) error {
			a := account("alice")
			a.Enabled = false
			err := errors.Join(
				tx.CreateAccount(ctx, account("bob")),
				tx.UpdateAccount(ctx, a),
				tx.SetTokenExpiry(ctx, "t1", at(time.Hour)),
				tx.DeleteProject(ctx, "web"),
			)
			if err != nil {
				return err
			}
			once.Do(func() { close(holding) })
			<-release // closed once: a run of fn after the first does not wait
			return nil
		})
	}()
	select {
	case <-holding:
	case err := <-done:
		t.Fatalf("writer: %v", err)
	}
	viewCtx, cancel := context.WithTimeout(ctx, viewBound)
	defer cancel()
	err := s.View(viewCtx, func(tx gatehouse.Tx) error {
		if _, err := tx.GetAccount(viewCtx, "bob"); !gatehouse.IsCode(err, gatehouse.ENOTFOUND) {
			t.Errorf("View beside an open Tx: GetAccount of its new account: got %v, want ENOTFOUND", err)
		}
		a, err := tx.GetAccount(viewCtx, "alice")
		if err != nil {
			return err
		}
		if !a.Enabled {
			t.Errorf("View beside an open Tx: sees its uncommitted update of alice")
		}
		k, err := tx.GetToken(viewCtx, "t1")
		if err != nil {
			return err
		}
		equal(t, "token beside an uncommitted expiry change", k.ExpiresAt, token("t1").ExpiresAt)
		_, err = tx.GetProject(viewCtx, "web")
		return err
	})
	close(release)
	if err != nil {
		t.Fatalf("View while a Tx is open: %v (a View that waits for the writer ends at the %s deadline)", err, viewBound)
	}
	if err := <-done; err != nil {
		t.Fatalf("writer: %v", err)
	}
	inView(t, s, func(tx gatehouse.Tx) error {
		if _, err := tx.GetAccount(ctx, "bob"); err != nil {
			return fmt.Errorf("account committed before this View: %w", err)
		}
		_, err := tx.GetProject(ctx, "web")
		wantCode(t, "project deleted before this View", err, gatehouse.ENOTFOUND)
		return nil
	})
}

// testWriteInViewFails: every write through a View's Tx fails with an
// internal error (a write in a View is a bug, not an outage), View returns
// an error, and nothing changes, whatever the write would have done.
func testWriteInViewFails(t *testing.T, open func(t *testing.T) gatehouse.Store) {
	s := open(t)
	seed(t, s)
	before := snap(t, s)
	disabled := account("alice")
	disabled.Enabled = false
	writes := []struct {
		name string
		fn   func(ctx context.Context, tx gatehouse.Tx) error
	}{
		{"CreateAccount", func(ctx context.Context, tx gatehouse.Tx) error { return tx.CreateAccount(ctx, account("bob")) }},
		{"UpdateAccount", func(ctx context.Context, tx gatehouse.Tx) error { return tx.UpdateAccount(ctx, disabled) }},
		{"DeleteAccount", func(ctx context.Context, tx gatehouse.Tx) error { return tx.DeleteAccount(ctx, "alice") }},
		{"CreateToken", func(ctx context.Context, tx gatehouse.Tx) error { return tx.CreateToken(ctx, token("t2")) }},
		{"DeleteTokens", func(ctx context.Context, tx gatehouse.Tx) error {
			_, err := tx.DeleteTokens(ctx, gatehouse.TokenFilter{})
			return err
		}},
		{"SetTokenExpiry", func(ctx context.Context, tx gatehouse.Tx) error { return tx.SetTokenExpiry(ctx, "t1", time.Time{}) }},
		{"CreateProject", func(ctx context.Context, tx gatehouse.Tx) error { return tx.CreateProject(ctx, project("api")) }},
		{"UpdateProject", func(ctx context.Context, tx gatehouse.Tx) error {
			p := project("web")
			p.Description = "changed"
			return tx.UpdateProject(ctx, p)
		}},
		{"DeleteProject", func(ctx context.Context, tx gatehouse.Tx) error { return tx.DeleteProject(ctx, "web") }},
		{"CreateApplication", func(ctx context.Context, tx gatehouse.Tx) error {
			return tx.CreateApplication(ctx, application("cart", "web"))
		}},
		{"UpdateApplication", func(ctx context.Context, tx gatehouse.Tx) error {
			a := application("shop", "web")
			a.Spec.Path = "changed"
			return tx.UpdateApplication(ctx, a)
		}},
		{"DeleteApplication", func(ctx context.Context, tx gatehouse.Tx) error { return tx.DeleteApplication(ctx, "shop") }},
		{"CreateOperation", func(ctx context.Context, tx gatehouse.Tx) error {
			return tx.CreateOperation(ctx, operation("op-2", "shop", at(time.Hour), gatehouse.OpPending))
		}},
		{"UpdateOperation", func(ctx context.Context, tx gatehouse.Tx) error {
			return tx.UpdateOperation(ctx, operation("op-1", "shop", at(time.Minute), gatehouse.OpFailed))
		}},
		{"PutRBAC", func(ctx context.Context, tx gatehouse.Tx) error {
			return tx.PutRBAC(ctx, gatehouse.RBAC{PolicyDefault: "role:admin"})
		}},
		{"AppendEvents", func(ctx context.Context, tx gatehouse.Tx) error {
			return tx.AppendEvents(ctx, []gatehouse.Event{event(2, "bob", "", "allow")})
		}},
		{"PruneEvents", func(ctx context.Context, tx gatehouse.Tx) error {
			_, err := tx.PruneEvents(ctx, at(time.Hour))
			return err
		}},
		{"RecordChanges", func(ctx context.Context, tx gatehouse.Tx) error {
			return tx.RecordChanges(ctx, []gatehouse.Change{{Kind: gatehouse.ChangeAccount, Key: "bob"}})
		}},
		{"AddLoginAttempt", func(ctx context.Context, tx gatehouse.Tx) error {
			return tx.AddLoginAttempt(ctx, attempt("a1", "alice", "10.0.0.1", t0))
		}},
		{"FailLoginAttempt", func(ctx context.Context, tx gatehouse.Tx) error { return tx.FailLoginAttempt(ctx, "a0") }},
		{"DeleteLoginAttempt", func(ctx context.Context, tx gatehouse.Tx) error { return tx.DeleteLoginAttempt(ctx, "a0") }},
		{"ClearLoginFailures", func(ctx context.Context, tx gatehouse.Tx) error {
			return tx.ClearLoginFailures(ctx, "user:alice")
		}},
		{"PruneLoginAttempts", func(ctx context.Context, tx gatehouse.Tx) error {
			_, err := tx.PruneLoginAttempts(ctx, at(time.Hour))
			return err
		}},
	}
	// A pending attempt and a failed one, for the login writes to touch.
	inTx(t, s, func(tx gatehouse.Tx) error {
		return errors.Join(
			tx.AddLoginAttempt(t.Context(), attempt("a0", "alice", "10.0.0.1", t0)),
			tx.AddLoginAttempt(t.Context(), attempt("f0", "alice", "10.0.0.1", t0)),
			tx.FailLoginAttempt(t.Context(), "f0"),
		)
	})
	tallyBefore := tally(t, s, "user:alice", time.Time{}, 10)
	for _, w := range writes {
		t.Run(w.name, func(t *testing.T) {
			var inside error
			err := s.View(t.Context(), func(tx gatehouse.Tx) error {
				inside = w.fn(t.Context(), tx)
				return inside
			})
			wantCode(t, w.name+" in a View", inside, gatehouse.EINTERNAL)
			if err == nil {
				t.Errorf("View whose fn wrote: got nil error")
			}
		})
	}
	equal(t, "store after writes in Views", snap(t, s), before)
	equal(t, "login attempts after writes in Views", tally(t, s, "user:alice", time.Time{}, 10), tallyBefore)
}
