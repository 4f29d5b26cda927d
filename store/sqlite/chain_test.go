package sqlite

import (
	"database/sql"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"path/filepath"
	"testing"
	"testing/fstest"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/store/storetest"
)

// TestChainProperty runs a random sequence, with a fixed seed, of appends
// (both paths, any batch size), prunes and tampers (a field changed, a
// row deleted, two rows' contents swapped, a hash or a link rewritten):
// a few thousand cases in all. After each tamper verify must name exactly
// the event the model predicts; after the tamper is undone, and after
// every append and prune, the chain must verify.
func TestChainProperty(t *testing.T) {
	s, _ := openTemp(t)
	ctx := t.Context()
	rng := rand.New(rand.NewPCG(17, 2026))
	exec := func(q string, args ...any) {
		t.Helper()
		if _, err := s.db.ExecContext(ctx, q, args...); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	exec(`CREATE TABLE saved AS SELECT * FROM events WHERE 0`)
	kept := func() []int64 {
		t.Helper()
		rows, err := s.db.QueryContext(ctx, `SELECT id FROM events ORDER BY id`)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var ids []int64
		for rows.Next() {
			var id int64
			if err := rows.Scan(&id); err != nil {
				t.Fatal(err)
			}
			ids = append(ids, id)
		}
		return ids
	}
	mustVerify := func(step string) {
		t.Helper()
		if res := storetest.VerifyChain(t, s, 1+rng.IntN(64), nil); !res.OK {
			t.Fatalf("%s: the chain does not verify: %+v", step, res)
		}
	}
	clock := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	cases := map[string]int{}
	tampers := 1200
	if testing.Short() {
		tampers = 150 // the race detector's run; the full one is CI's plain run
	}
	for step := 0; cases["tamper"] < tampers; step++ {
		switch op := rng.IntN(10); {
		case op < 4: // append
			n := 1 + rng.IntN(40)
			if rng.IntN(10) == 0 {
				n += 100 // over a statement's rows
			}
			evs := make([]gatehouse.Event, n)
			for i := range evs {
				clock = clock.Add(time.Duration(rng.IntN(1000)) * time.Millisecond)
				evs[i] = gatehouse.Event{Time: clock, Type: gatehouse.EventRequest, Actor: fmt.Sprintf("u%d", rng.IntN(5)),
					Path: fmt.Sprintf("/api/v1/x/%d", rng.IntN(1000)), Status: 200 + rng.IntN(300), Detail: fmt.Sprint(step, i)}
			}
			var err error
			if rng.IntN(2) == 0 {
				err = s.AppendEvents(ctx, evs)
			} else {
				err = s.Tx(ctx, func(tx gatehouse.Tx) error { return tx.AppendEvents(ctx, evs) })
			}
			if err != nil {
				t.Fatal(err)
			}
			cases["append"]++
			mustVerify("append")
		case op < 5: // prune
			cut := clock.Add(-time.Duration(rng.IntN(60)) * time.Second)
			if err := s.Tx(ctx, func(tx gatehouse.Tx) error { _, err := tx.PruneEvents(ctx, cut); return err }); err != nil {
				t.Fatal(err)
			}
			cases["prune"]++
			mustVerify("prune")
		default: // tamper, check, undo
			ids := kept()
			if len(ids) < 2 {
				continue
			}
			i := rng.IntN(len(ids) - 1)
			id := ids[i]
			// Every tamper saves the rows it touches first; undoing puts
			// them back as they were.
			save := func(ids ...int64) {
				for _, id := range ids {
					exec(`INSERT INTO saved SELECT * FROM events WHERE id = ?`, id)
				}
			}
			want := id
			kind := rng.IntN(5)
			switch kind {
			case 0: // a field changed
				save(id)
				exec(`UPDATE events SET actor = actor || 'x' WHERE id = ?`, id)
			case 1: // a row deleted: the next one does not fit, or for the newest the recorded head
				if rng.IntN(3) == 0 {
					i, id = len(ids)-1, ids[len(ids)-1]
				}
				save(id)
				exec(`DELETE FROM events WHERE id = ?`, id)
				want = id
				if i+1 < len(ids) {
					want = ids[i+1]
				}
			case 2: // two rows' contents swapped: the older one no longer fits
				other := ids[i+1+rng.IntN(len(ids)-i-1)]
				save(id, other)
				exec(`UPDATE events SET detail = (SELECT detail FROM saved WHERE saved.id = ?), actor = (SELECT actor FROM saved WHERE saved.id = ?) WHERE id = ?`, other, other, id)
				exec(`UPDATE events SET detail = (SELECT detail FROM saved WHERE saved.id = ?), actor = (SELECT actor FROM saved WHERE saved.id = ?) WHERE id = ?`, id, id, other)
			case 3: // a hash rewritten
				save(id)
				exec(`UPDATE events SET hash = randomblob(32) WHERE id = ?`, id)
			case 4: // a link rewritten
				save(id)
				exec(`UPDATE events SET prev_hash = randomblob(32) WHERE id = ?`, id)
			}
			res := storetest.VerifyChain(t, s, 1+rng.IntN(64), nil)
			if res.OK || res.FirstBadID != want {
				t.Fatalf("step %d, tamper %d of event %d: got ok %v, firstBadId %d (%s); want not ok at %d",
					step, kind, id, res.OK, res.FirstBadID, res.Problem, want)
			}
			cases["tamper"]++
			exec(`DELETE FROM events WHERE id IN (SELECT id FROM saved)`)
			exec(`INSERT INTO events SELECT * FROM saved`)
			exec(`DELETE FROM saved`)
			mustVerify("undo")
		}
	}
	t.Logf("cases: %v", cases)
}

// TestChainAfterRaisedSeq: a restore raises the event ids past the
// replaced store's; the chain goes on from the restored store's head, over
// the gap.
func TestChainAfterRaisedSeq(t *testing.T) {
	s, _ := openTemp(t)
	ctx := t.Context()
	ev := gatehouse.Event{Time: time.Unix(1700000000, 1), Type: gatehouse.EventRequest, Actor: "alice"}
	if err := s.AppendEvents(ctx, []gatehouse.Event{ev, ev}); err != nil {
		t.Fatal(err)
	}
	if err := s.Tx(ctx, func(tx gatehouse.Tx) error {
		if err := tx.(gatehouse.RestoreTx).RaiseEventSeq(ctx, 1000); err != nil {
			return err
		}
		return tx.AppendEvents(ctx, []gatehouse.Event{ev})
	}); err != nil {
		t.Fatal(err)
	}
	res := storetest.VerifyChain(t, s, 10, nil)
	if !res.OK || res.Events != 3 || res.HeadID != 1001 {
		t.Errorf("after a raised sequence: %+v, want ok, 3 events, head 1001", res)
	}
}

// TestChainLegacyEvents: a database with events from before the chain
// migrates with them outside it: verify counts them as unchained, and the
// chain starts with the first event after the migration.
func TestChainLegacyEvents(t *testing.T) {
	path := filepath.Join(t.TempDir(), "gatehouse.db")
	db, err := sql.Open("sqlite", dsn(path, false))
	if err != nil {
		t.Fatal(err)
	}
	before := fstest.MapFS{}
	names, err := migrationNames(migrations)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range names {
		if filepath.Base(name) >= "0009" {
			break
		}
		b, err := fs.ReadFile(migrations, name)
		if err != nil {
			t.Fatal(err)
		}
		before[name] = &fstest.MapFile{Data: b}
	}
	if err := migrate(t.Context(), db, before); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if _, err := db.Exec(`INSERT INTO events (time, type, actor, token_id, token_kind, method, path, resource, action, object, decision, status, remote_addr, user_agent, detail, via, route, account)
			VALUES (?, 'request', 'old', '', '', '', '', '', '', '', '', 200, '', '', '', '', '', '')`, 1700000000+i); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()
	s, err := Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	ctx := t.Context()
	if res := storetest.VerifyChain(t, s, 2, nil); !res.OK || res.Unchained != 3 || res.Events != 0 || res.HeadID != 3 {
		t.Errorf("after the migration: %+v, want ok, 3 unchained, no event, head 3", res)
	}
	ev := gatehouse.Event{Time: time.Unix(1700000100, 0), Type: gatehouse.EventRequest, Actor: "new"}
	if err := s.AppendEvents(ctx, []gatehouse.Event{ev, ev}); err != nil {
		t.Fatal(err)
	}
	if res := storetest.VerifyChain(t, s, 2, nil); !res.OK || res.Unchained != 3 || res.Events != 2 || res.HeadID != 5 {
		t.Errorf("after appending: %+v, want ok, 3 unchained, 2 events, head 5", res)
	}
	// The legacy events go with a prune, and leave the start where it was.
	if err := s.Tx(ctx, func(tx gatehouse.Tx) error { _, err := tx.PruneEvents(ctx, time.Unix(1700000050, 0)); return err }); err != nil {
		t.Fatal(err)
	}
	if res := storetest.VerifyChain(t, s, 2, nil); !res.OK || res.Unchained != 0 || res.Events != 2 || res.StartID != 3 {
		t.Errorf("after pruning the legacy events: %+v, want ok, 0 unchained, 2 events, start 3", res)
	}
}

// A changed count is found by verify: the chain covers it, and a count
// set to one (the encoding of a single request) is a change too.
func TestChainCoversCount(t *testing.T) {
	for _, edit := range []string{
		`UPDATE events SET count = count + 1 WHERE id = 2`,
		`UPDATE events SET count = 1 WHERE id = 2`,
		`UPDATE events SET count = 5 WHERE id = 3`,
	} {
		s, _ := openTemp(t)
		ctx := t.Context()
		var evs []gatehouse.Event
		for i := range 4 {
			evs = append(evs, gatehouse.Event{Time: time.Unix(1700000000+int64(i), 0), Type: "request", Actor: "alice", Status: 200, Count: 40 * (i % 2)})
		}
		if err := s.AppendEvents(ctx, evs); err != nil {
			t.Fatal(err)
		}
		if res := storetest.VerifyChain(t, s, 10, nil); !res.OK {
			t.Fatalf("before %s: %+v", edit, res)
		}
		if _, err := s.db.ExecContext(ctx, edit); err != nil {
			t.Fatal(err)
		}
		if res := storetest.VerifyChain(t, s, 10, nil); res.OK {
			t.Errorf("%s: verify still ok: %+v", edit, res)
		}
	}
	s, _ := openTemp(t)
	if err := s.AppendEvents(t.Context(), []gatehouse.Event{{Time: time.Unix(1700000000, 0), Type: "request"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.db.ExecContext(t.Context(), `UPDATE events SET count = 0`); err == nil {
		t.Error("a count of 0 was stored: the column's CHECK should refuse it")
	}
}
