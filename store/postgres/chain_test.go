package postgres

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/store/storetest"
)

// TestChainReplicas: two stores on one database (two replicas) appending
// at once, through the request-path batch and inside write transactions,
// make one chain: every event follows the one before it in id order.
func TestChainReplicas(t *testing.T) {
	pg.SkipIfMissing(t)
	a, url, _ := openStore(t)
	b, err := Open(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	ctx := t.Context()
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)
	const workers, rounds = 4, 15
	var wg sync.WaitGroup
	errs := make(chan error, 2*2*workers*rounds)
	for i, s := range []*Store{a, b} {
		for w := range workers {
			wg.Go(func() {
				for r := range rounds {
					ev := gatehouse.Event{Time: t0.Add(time.Duration(r) * time.Millisecond), Type: gatehouse.EventRequest,
						Actor: fmt.Sprintf("replica%d-w%d", i, w), Path: fmt.Sprintf("/r/%d", r), Status: 200}
					errs <- s.AppendEvents(ctx, []gatehouse.Event{ev, ev, ev})
					errs <- s.Tx(ctx, func(tx gatehouse.Tx) error {
						if err := tx.CreateAccount(ctx, gatehouse.Account{Name: fmt.Sprintf("a%d-%d-%d", i, w, r), CreatedAt: t0}); err != nil {
							return err
						}
						return tx.AppendEvents(ctx, []gatehouse.Event{ev})
					})
				}
			})
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("append: %v", err)
		}
	}
	for _, s := range []*Store{a, b} {
		res := storetest.VerifyChain(t, s, 50, nil)
		if want := int64(2 * workers * rounds * 4); !res.OK || res.Events != want {
			t.Errorf("verify: %+v, want ok with %d events", res, want)
		}
	}
}

// TestChainTamperedRow: a row changed, or removed, with SQL is found.
func TestChainTamperedRow(t *testing.T) {
	pg.SkipIfMissing(t)
	s, url, _ := openStore(t)
	ctx := t.Context()
	var evs []gatehouse.Event
	for i := range 8 {
		evs = append(evs, gatehouse.Event{Time: time.Unix(1700000000, int64(i)), Type: gatehouse.EventRequest, Actor: "alice", Detail: fmt.Sprint(i)})
	}
	if err := s.AppendEvents(ctx, evs); err != nil {
		t.Fatal(err)
	}
	c := connect(t, url)
	var ids []int64
	rows, err := c.Query(ctx, `SELECT id FROM events ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	rows.Close()
	if _, err := c.Exec(ctx, `UPDATE events SET detail = 'x' WHERE id = $1`, ids[3]); err != nil {
		t.Fatal(err)
	}
	if res := storetest.VerifyChain(t, s, 3, nil); res.OK || res.FirstBadID != ids[3] {
		t.Errorf("a changed row: %+v, want not ok at %d", res, ids[3])
	}
	if _, err := c.Exec(ctx, `DELETE FROM events WHERE id <= $1`, ids[3]); err != nil {
		t.Fatal(err)
	}
	if res := storetest.VerifyChain(t, s, 3, nil); res.OK || res.FirstBadID != ids[4] {
		t.Errorf("rows removed: %+v, want not ok at %d", res, ids[4])
	}
}
