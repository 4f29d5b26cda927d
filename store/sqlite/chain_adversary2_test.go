package sqlite

import (
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/store/storetest"
)

// TestAdversary2ChainOddTextSQLite: fields with NUL bytes, invalid UTF-8
// and length-ambiguous contents verify on SQLite.
func TestAdversary2ChainOddTextSQLite(t *testing.T) {
	s, _ := openTemp(t)
	ctx := t.Context()
	evs := []gatehouse.Event{
		{Time: time.Unix(1700000000, 5), Type: "request", Actor: "a\x00b", Detail: "\xff\xfe", UserAgent: "x\x00"},
		{Time: time.Unix(1700000001, 5), Type: "request", Actor: "\xc3", Path: "/\x00/\x00", Detail: string([]byte{0, 0, 0, 1})},
		{Time: time.Unix(1700000002, 5), Type: "request\x00", Actor: "é\u0301", Detail: "\U0010FFFF\ufffd"},
	}
	if err := s.AppendEvents(ctx, evs); err != nil {
		t.Fatal(err)
	}
	if res := storetest.VerifyChain(t, s, 10, nil); !res.OK {
		t.Fatalf("events with NUL / invalid UTF-8 do not verify on SQLite: %+v", res)
	}
}

// TestAdversary2AnchorBypassByLegacyBoundary: someone who can write the
// database changes an event at or before an exported anchor, and keeps it
// stored (not pruned), by moving audit_chain's legacy boundary and start
// up to the anchor. The design promises that verify with the anchor is
// "not ok unless the chain still passes through that event with that
// hash"; here the anchor's event itself was changed, yet verify says ok.
func TestAdversary2AnchorBypassByLegacyBoundary(t *testing.T) {
	s, _ := openTemp(t)
	ctx := t.Context()
	var evs []gatehouse.Event
	for i := range 5 {
		evs = append(evs, gatehouse.Event{Time: time.Unix(1700000000+int64(i), 0), Type: "token.revoked", Actor: "admin",
			Detail: "revoked the deploy token"})
	}
	if err := s.AppendEvents(ctx, evs); err != nil {
		t.Fatal(err)
	}
	res := storetest.VerifyChain(t, s, 10, nil)
	if !res.OK {
		t.Fatalf("fresh chain: %+v", res)
	}
	anchor, err := gatehouse.ParseChainAnchor(res.Anchor) // exported: 5:<hash>
	if err != nil {
		t.Fatal(err)
	}
	// Later: two more events; then the attacker rewrites events 1..5
	// (the anchor's own event among them) and keeps them.
	if err := s.AppendEvents(ctx, evs[:2]); err != nil {
		t.Fatal(err)
	}
	if _, err := s.db.ExecContext(ctx, `UPDATE events SET actor = 'nobody', detail = 'nothing happened' WHERE id <= 5`); err != nil {
		t.Fatal(err)
	}
	// Sanity: the plain tamper is caught.
	if res := storetest.VerifyChain(t, s, 10, &anchor); res.OK {
		t.Fatalf("plain tamper not caught: %+v", res)
	}
	if _, err := s.db.ExecContext(ctx, `UPDATE audit_chain SET legacy_id = $1, start_id = $1, start_hash = $2 WHERE id = 1`,
		anchor.ID, anchor.Hash[:]); err != nil {
		t.Fatal(err)
	}
	res = storetest.VerifyChain(t, s, 10, &anchor)
	if res.OK {
		t.Errorf("events 1..%d (the anchor's event included) were rewritten and are still stored, yet verify against the anchor %s says ok: %+v",
			anchor.ID, anchor, res)
	}
}

// TestAdversary2MiddleEditHiddenByLegacyBoundary: without an anchor, a
// change to an event in the middle of the chain goes unreported after two
// plain SQL edits of audit_chain that compute no hash: legacy_id and
// start_id raised past the changed event, start_hash copied from the row
// after which the kept chain should start. Verify says ok and counts the
// changed events as "unchained" (which docs/design.md describes as events
// from before the migration), although every one of them holds a link:
// no event written by this version can be legacy.
func TestAdversary2MiddleEditHiddenByLegacyBoundary(t *testing.T) {
	s, _ := openTemp(t)
	ctx := t.Context()
	var evs []gatehouse.Event
	for i := range 8 {
		evs = append(evs, gatehouse.Event{Time: time.Unix(1700000000+int64(i), 0), Type: "request", Actor: "alice", Decision: "deny"})
	}
	if err := s.AppendEvents(ctx, evs); err != nil {
		t.Fatal(err)
	}
	// Event 4 is changed: a denial becomes an allow.
	if _, err := s.db.ExecContext(ctx, `UPDATE events SET decision = 'allow', actor = 'mallory' WHERE id = 4`); err != nil {
		t.Fatal(err)
	}
	if res := storetest.VerifyChain(t, s, 10, nil); res.OK || res.FirstBadID != 4 {
		t.Fatalf("plain tamper: %+v, want not ok at 4", res)
	}
	if _, err := s.db.ExecContext(ctx, `UPDATE audit_chain SET legacy_id = 5, start_id = 5,
		start_hash = (SELECT hash FROM events WHERE id = 5) WHERE id = 1`); err != nil {
		t.Fatal(err)
	}
	if res := storetest.VerifyChain(t, s, 10, nil); res.OK {
		t.Errorf("event 4 was changed in the middle of the chain (and is still stored), yet verify says ok: %+v", res)
	}
}

// TestAdversary2OddColumnValueBreaksVerifyItself: a row edited to hold a
// value of another type (SQLite does not enforce the column's
// type) makes the read fail: verify answers an internal error instead of
// "not ok" with the row as firstBadId, so a check that watches for
// "ok": false (or the CLI's exit 2) sees a broken verifier, not tampering,
// and nothing names the row.
func TestAdversary2OddColumnValueBreaksVerifyItself(t *testing.T) {
	for _, edit := range []string{
		`UPDATE events SET status = 'two hundred' WHERE id = 3`,
		`UPDATE events SET time = 'yesterday' WHERE id = 3`,
		`UPDATE events SET count = 'many' WHERE id = 3`,
	} {
		s, _ := openTemp(t)
		ctx := t.Context()
		var evs []gatehouse.Event
		for i := range 5 {
			evs = append(evs, gatehouse.Event{Time: time.Unix(1700000000+int64(i), 0), Type: "request", Actor: "alice", Status: 200})
		}
		if err := s.AppendEvents(ctx, evs); err != nil {
			t.Fatal(err)
		}
		if _, err := s.db.ExecContext(ctx, edit); err != nil {
			t.Fatal(err)
		}
		err := s.View(ctx, func(tx gatehouse.Tx) error {
			_, err := tx.ChainedEvents(ctx, 0, 100)
			return err
		})
		if err != nil {
			t.Errorf("%s: reading the chain fails (%v): verify cannot say which event does not fit", edit, err)
		}
	}
}
