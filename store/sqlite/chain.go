package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/gatehouse/gatehouse"
)

// The audit chain (audit_chain.go in the root package): each events row
// holds prev_hash and hash, and audit_chain's one row the chain's legacy
// boundary, start and head. SQLite runs one writer at a time, so the
// transaction that appends already holds the head alone.

// chainHead is what an append needs of the chain: the head's hash, and
// the greatest id handed out, which the new ids follow (AUTOINCREMENT's
// sequence, raised by a restore, so that no id is handed out twice).
func chainHead(ctx context.Context, t *sql.Tx) (lastID int64, head gatehouse.ChainHash, err error) {
	var hash []byte
	err = t.QueryRowContext(ctx, `SELECT MAX(head_id,
			COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'events'), 0),
			COALESCE((SELECT MAX(id) FROM events), 0)), head_hash
		FROM audit_chain WHERE id = 1`).Scan(&lastID, &hash)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, head, gatehouse.Internal(errors.New("audit_chain is empty"))
	}
	if err != nil {
		return 0, head, wrap(err)
	}
	if len(hash) != len(head) {
		return 0, head, gatehouse.Internal(fmt.Errorf("audit_chain.head_hash has %d bytes", len(hash)))
	}
	copy(head[:], hash)
	return lastID, head, nil
}

// setChainHead moves the head to the last event appended.
func setChainHead(ctx context.Context, t *sql.Tx, id int64, hash gatehouse.ChainHash) error {
	_, err := t.ExecContext(ctx, `UPDATE audit_chain SET head_id = $1, head_hash = $2 WHERE id = 1`, id, hash[:])
	return wrap(err)
}

// pruneChainStart makes the last event that a prune deleting every event
// with an id below cutoff will delete the chain's start, if the chain
// holds it (an id past the start). It runs before the DELETE, in its
// transaction.
func pruneChainStart(ctx context.Context, t *sql.Tx, cutoff int64) error {
	var (
		id   int64
		hash []byte
	)
	err := t.QueryRowContext(ctx, `SELECT e.id, e.hash FROM events AS e, audit_chain AS c
		WHERE c.id = 1 AND e.id < $1 AND e.id > c.start_id ORDER BY e.id DESC LIMIT 1`, cutoff).Scan(&id, &hash)
	if errors.Is(err, sql.ErrNoRows) {
		return nil // nothing of the chain goes
	}
	if err != nil {
		return wrap(err)
	}
	// A row without a hash past the start is itself a break of the chain;
	// its start then follows the zero hash, and verify reports the next
	// event as not fitting, as it reported this one.
	var start gatehouse.ChainHash
	copy(start[:], hash)
	_, err = t.ExecContext(ctx, `UPDATE audit_chain SET start_id = $1, start_hash = $2 WHERE id = 1`, id, start[:])
	return wrap(err)
}

// AuditChain reads the chain's state.
func (t *tx) AuditChain(ctx context.Context) (gatehouse.AuditChain, error) {
	var (
		c         gatehouse.AuditChain
		start, hd []byte
	)
	err := t.tx.QueryRowContext(ctx, `SELECT legacy_id, start_id, start_hash, head_id, head_hash FROM audit_chain WHERE id = 1`).
		Scan(&c.LegacyID, &c.StartID, &start, &c.HeadID, &hd)
	if errors.Is(err, sql.ErrNoRows) {
		return c, gatehouse.Internal(errors.New("audit_chain is empty"))
	}
	if err != nil {
		return c, wrap(err)
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
		c                 gatehouse.ChainedEvent
		tm, status, count any // SQLite keeps any value in any column: read what is there
		kind              string
		prev, hash        []byte
	)
	e := &c.Event
	err := sc.Scan(&e.ID, &tm, &e.Type, &e.Actor, &e.TokenID, &kind, &e.Method, &e.Path, &e.Resource,
		&e.Action, &e.Object, &e.Decision, &status, &e.RemoteAddr, &e.UserAgent, &e.Detail, &e.Via, &e.Route, &e.Account,
		&count, &prev, &hash)
	t, okT := tm.(int64)
	st, okS := status.(int64)
	n, okN := count.(int64)
	// A count below one has no encoding: the chain cannot vouch for it.
	c.Unreadable = !okT || !okS || !okN || n < 1
	e.Time, e.Status, e.TokenKind = fromNanos(t), int(st), gatehouse.TokenKind(kind)
	if n > 1 {
		e.Count = int(n)
	}
	// A link of the wrong length is no link: it cannot fit.
	c.Linked = len(prev) == len(c.Prev) && len(hash) == len(c.Hash)
	if c.Linked {
		copy(c.Prev[:], prev)
		copy(c.Hash[:], hash)
	}
	return c, err
}
