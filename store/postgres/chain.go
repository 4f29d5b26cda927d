package postgres

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/jackc/pgx/v5"

	"github.com/gatehouse/gatehouse"
)

// The audit chain (audit_chain.go in the root package): each events row
// holds prev_hash and hash, and audit_chain's one row the chain's legacy
// boundary, start and head.
//
// Several replicas append at once, and the chain must stay one line: an
// appender first locks audit_chain's row (SELECT ... FOR UPDATE), and
// takes its ids from the events sequence only then, so the ids of one
// append are all greater than those of every append that held the lock
// before it, and the row stays locked until its commit: id order is
// chain order is commit order. At READ COMMITTED (Store.AppendEvents) a
// waiting appender then reads the head its predecessor committed; at
// SERIALIZABLE (Tx.AppendEvents, inside a write) it fails with a
// serialization failure instead, and the retry runs the transaction
// function again, hashes included, on a snapshot that has the new head.

// lockChainHead takes the chain's row for this transaction and returns
// its head's hash.
func (t *tx) lockChainHead(ctx context.Context) (gatehouse.ChainHash, error) {
	var (
		head gatehouse.ChainHash
		hash []byte
	)
	err := t.tx.QueryRow(ctx, `SELECT head_hash FROM audit_chain WHERE id = 1 FOR UPDATE`).Scan(&hash)
	if errors.Is(err, pgx.ErrNoRows) {
		return head, gatehouse.Internal(errors.New("audit_chain is empty"))
	}
	if err != nil {
		err = t.fail(err)
		t.chainConflict = t.chainConflict || t.retry != nil
		return head, err
	}
	if len(hash) != len(head) {
		return head, gatehouse.Internal(fmt.Errorf("audit_chain.head_hash has %d bytes", len(hash)))
	}
	copy(head[:], hash)
	return head, nil
}

// lockChainFirst is the first statement of a transaction that lost the race
// for the chain's head before. At SERIALIZABLE, a transaction that locks
// the head's row after another appender committed a new head since its
// snapshot fails, however long it waited; with appenders committing every
// few milliseconds (every replica's audit batches), an audited write
// could lose every time. LOCK TABLE takes no snapshot, so this one waits
// for the appenders of the moment, then keeps new ones out until it
// commits, and its snapshot, taken by the statement after it, has the
// head it will follow. EXCLUSIVE conflicts with the ROW SHARE of SELECT
// ... FOR UPDATE and the ROW EXCLUSIVE of UPDATE, and not with plain
// reads (View, verify).
func (t *tx) lockChainFirst(ctx context.Context) error {
	_, err := t.exec(ctx, `LOCK TABLE audit_chain IN EXCLUSIVE MODE`)
	return err
}

// eventIDs takes n ids from the events sequence, in increasing order. The
// caller holds the chain's lock.
func (t *tx) eventIDs(ctx context.Context, n int) ([]int64, error) {
	ids, err := list(ctx, t, func(sc scanner) (int64, error) {
		var id int64
		err := sc.Scan(&id)
		return id, err
	}, `SELECT nextval(pg_get_serial_sequence('events', 'id')) FROM generate_series(1, $1)`, n)
	if err != nil {
		return nil, err
	}
	if len(ids) != n {
		return nil, gatehouse.Internal(fmt.Errorf("asked the events sequence for %d ids, got %d", n, len(ids)))
	}
	slices.Sort(ids)
	return ids, nil
}

// stored is e as a row keeps it (its text made storable), which is what
// its hash must cover: verify recomputes it from the row.
func stored(e gatehouse.Event) gatehouse.Event {
	for _, s := range []*string{&e.Type, &e.Actor, &e.TokenID, &e.Method, &e.Path, &e.Resource, &e.Action, &e.Object,
		&e.Decision, &e.Via, &e.Route, &e.Account, &e.RemoteAddr, &e.UserAgent, &e.Detail} {
		*s = storable(*s)
	}
	e.TokenKind = gatehouse.TokenKind(storable(string(e.TokenKind)))
	return e
}

// AuditChain reads the chain's state.
func (t *tx) AuditChain(ctx context.Context) (gatehouse.AuditChain, error) {
	var (
		c         gatehouse.AuditChain
		start, hd []byte
	)
	err := t.tx.QueryRow(ctx, `SELECT legacy_id, start_id, start_hash, head_id, head_hash FROM audit_chain WHERE id = 1`).
		Scan(&c.LegacyID, &c.StartID, &start, &c.HeadID, &hd)
	if errors.Is(err, pgx.ErrNoRows) {
		return c, gatehouse.Internal(errors.New("audit_chain is empty"))
	}
	if err != nil {
		return c, t.fail(err)
	}
	copy(c.StartHash[:], start)
	copy(c.HeadHash[:], hd)
	return c, nil
}

// ChainedEvents reads a page of events in id order with their links.
func (t *tx) ChainedEvents(ctx context.Context, after int64, limit int) ([]gatehouse.ChainedEvent, error) {
	if limit <= 0 {
		return nil, gatehouse.Internal(fmt.Errorf("ChainedEvents: limit %d, want > 0", limit))
	}
	return list(ctx, t, scanChainedEvent,
		`SELECT id, `+eventCols+`, prev_hash, hash FROM events WHERE id > $1 ORDER BY id LIMIT $2`, after, limit)
}

func scanChainedEvent(sc scanner) (gatehouse.ChainedEvent, error) {
	var (
		c          gatehouse.ChainedEvent
		tm, count  int64
		kind       string
		prev, hash []byte
	)
	e := &c.Event
	err := sc.Scan(&e.ID, &tm, &e.Type, &e.Actor, &e.TokenID, &kind, &e.Method, &e.Path, &e.Resource,
		&e.Action, &e.Object, &e.Decision, &e.Status, &e.RemoteAddr, &e.UserAgent, &e.Detail, &e.Via, &e.Route, &e.Account,
		&count, &prev, &hash)
	e.Time, e.TokenKind = fromNanos(tm), gatehouse.TokenKind(kind)
	// A count below one has no encoding (the column's CHECK keeps it out).
	c.Unreadable = count < 1
	if count > 1 {
		e.Count = int(count)
	}
	// A link of the wrong length is no link: it cannot fit.
	c.Linked = len(prev) == len(c.Prev) && len(hash) == len(c.Hash)
	if c.Linked {
		copy(c.Prev[:], prev)
		copy(c.Hash[:], hash)
	}
	return c, err
}
