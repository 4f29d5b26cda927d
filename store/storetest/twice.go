package storetest

import (
	"context"
	"errors"

	"github.com/gatehouse/gatehouse"
)

// TxTwice wraps s so that Tx and View run every transaction function
// twice: first in a transaction that is rolled back, then in a new one for
// real, whose result Tx or View returns. That is what a backend does when it retries after a
// serialization failure, made to happen every time. A store that leaves a
// trace of the rolled-back run (a row, an id reused, a cache filled), or a
// caller whose fn has effects outside its transaction (appending to a
// captured slice, sending on a channel, counting), shows up as a difference
// from running once. The other methods pass through.
//
// The service's tests can wrap their store with it too.
func TxTwice(s gatehouse.Store) gatehouse.Store { return twice{s} }

type twice struct{ gatehouse.Store }

// errRehearsal rolls back the first run.
var errRehearsal = errors.New("storetest: rehearsal run, rolled back")

func (w twice) Tx(ctx context.Context, fn func(gatehouse.Tx) error) error {
	err := w.Store.Tx(ctx, func(tx gatehouse.Tx) error {
		if err := fn(tx); err != nil {
			return err
		}
		return errRehearsal
	})
	// The rehearsal's own outcome does not matter (fn may fail on purpose),
	// unless the caller has given up.
	if ctx.Err() != nil && !errors.Is(err, errRehearsal) {
		return err
	}
	return w.Store.Tx(ctx, fn)
}

// View runs fn in a View that is rolled back, then in another whose result
// it returns: PostgreSQL runs a View through the same retry helper as Tx,
// so a View's function must be as safe to run again.
func (w twice) View(ctx context.Context, fn func(gatehouse.Tx) error) error {
	err := w.Store.View(ctx, func(tx gatehouse.Tx) error {
		if err := fn(tx); err != nil {
			return err
		}
		return errRehearsal
	})
	if ctx.Err() != nil && !errors.Is(err, errRehearsal) {
		return err
	}
	return w.Store.View(ctx, fn)
}
