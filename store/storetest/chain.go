package storetest

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
)

// The audit chain (audit_chain.go): both AppendEvents chain what they
// write, in one line, and PruneEvents keeps the rest verifiable.

// VerifyChain reads the store's whole chain in one View, in pages of
// page events, and verifies it as the service does.
func VerifyChain(t testing.TB, s gatehouse.Store, page int, anchor *gatehouse.ChainAnchor) gatehouse.ChainVerification {
	t.Helper()
	var res gatehouse.ChainVerification
	err := s.View(t.Context(), func(tx gatehouse.Tx) error {
		c, err := tx.AuditChain(t.Context())
		if err != nil {
			return err
		}
		v := gatehouse.NewChainVerifier(c, anchor)
		var after int64
		for {
			evs, err := tx.ChainedEvents(t.Context(), after, page)
			if err != nil {
				return err
			}
			for _, e := range evs {
				if !v.Check(e) {
					res = v.Finish()
					return nil
				}
			}
			if len(evs) < page {
				res = v.Finish()
				return nil
			}
			after = evs[len(evs)-1].ID
		}
	})
	if err != nil {
		t.Fatalf("verifying the chain: %v", err)
	}
	return res
}

func chainOf(t *testing.T, s gatehouse.Store) gatehouse.AuditChain {
	t.Helper()
	return read(t, s, func(tx gatehouse.Tx) (gatehouse.AuditChain, error) { return tx.AuditChain(t.Context()) })
}

func chainedEvents(t *testing.T, s gatehouse.Store) []gatehouse.ChainedEvent {
	t.Helper()
	return read(t, s, func(tx gatehouse.Tx) ([]gatehouse.ChainedEvent, error) {
		return tx.ChainedEvents(t.Context(), 0, 1_000_000)
	})
}

// testChainAppends: events written through Store.AppendEvents and
// Tx.AppendEvents, in batches small and large (over a statement's rows),
// form one chain: each links to the one before in id order, each hash is
// the domain's over the event as read back, the head is the last, and a
// rolled-back append leaves no trace.
func testChainAppends(t *testing.T, open func(t *testing.T) gatehouse.Store) {
	s := open(t)
	ctx := t.Context()
	empty := chainOf(t, s)
	equal(t, "a new store's chain", empty, gatehouse.AuditChain{})
	if res := VerifyChain(t, s, 10, nil); !res.OK || res.Events != 0 || *res.Head != (gatehouse.ChainHash{}) {
		t.Errorf("an empty chain: got %+v, want ok with 0 events and the zero head", res)
	}
	var big []gatehouse.Event
	for i := range 250 {
		big = append(big, event(i, "bob", "t2", "allow"))
	}
	if err := s.AppendEvents(ctx, []gatehouse.Event{event(1, "alice", "t1", "allow")}); err != nil {
		t.Fatal(err)
	}
	inTx(t, s, func(tx gatehouse.Tx) error {
		if err := tx.CreateAccount(ctx, account("carol")); err != nil {
			return err
		}
		return tx.AppendEvents(ctx, []gatehouse.Event{event(2, "carol", "", "allow"), event(3, "carol", "", "deny")})
	})
	if err := s.AppendEvents(ctx, big); err != nil {
		t.Fatal(err)
	}
	inTx(t, s, func(tx gatehouse.Tx) error { return tx.AppendEvents(ctx, big[:70]) })
	// Rolled back: no ids, no links, no head.
	before := chainOf(t, s)
	err := s.Tx(ctx, func(tx gatehouse.Tx) error {
		if err := tx.AppendEvents(ctx, []gatehouse.Event{event(9, "mallory", "", "deny")}); err != nil {
			return err
		}
		return gatehouse.Errorf(gatehouse.ECONFLICT, "roll back")
	})
	wantCode(t, "a rolled-back append", err, gatehouse.ECONFLICT)
	equal(t, "the chain after a rolled-back append", chainOf(t, s), before)

	evs := chainedEvents(t, s)
	if len(evs) != 1+2+250+70 {
		t.Fatalf("got %d events, want %d", len(evs), 1+2+250+70)
	}
	prev := gatehouse.ChainHash{}
	for i, e := range evs {
		if !e.Linked || e.Prev != prev {
			t.Fatalf("event %d (id %d) does not link to the one before it: linked %v", i, e.ID, e.Linked)
		}
		if want := gatehouse.ChainNext(prev, e.Event); e.Hash != want {
			t.Fatalf("event %d (id %d): stored hash %s, the domain's over the event as read %s", i, e.ID, e.Hash, want)
		}
		prev = e.Hash
	}
	last := evs[len(evs)-1]
	c := chainOf(t, s)
	if c.HeadID != last.ID || c.HeadHash != last.Hash || c.StartID != 0 || c.StartHash != (gatehouse.ChainHash{}) {
		t.Errorf("chain state %+v, want head %d %s and the zero start", c, last.ID, last.Hash)
	}
	// ChainedEvents pages by id.
	page := read(t, s, func(tx gatehouse.Tx) ([]gatehouse.ChainedEvent, error) { return tx.ChainedEvents(ctx, evs[10].ID, 5) })
	if len(page) != 5 || page[0].ID != evs[11].ID || page[4].ID != evs[15].ID {
		t.Errorf("ChainedEvents(after %d, 5): got %d events from %v", evs[10].ID, len(page), eventIDsOf(page))
	}
	for _, size := range []int{1, 7, 1000} {
		res := VerifyChain(t, s, size, &gatehouse.ChainAnchor{ID: evs[100].ID, Hash: evs[100].Hash})
		if !res.OK || res.Events != int64(len(evs)) || *res.Head != last.Hash || res.HeadID != last.ID || !res.AnchorChecked {
			t.Errorf("verify in pages of %d: got %+v", size, res)
		}
	}
}

func eventIDsOf(evs []gatehouse.ChainedEvent) []int64 {
	out := []int64{}
	for _, e := range evs {
		out = append(out, e.ID)
	}
	return out
}

// testChainPrune: a prune makes the last event it deletes the chain's
// start, so the kept events still verify, and an anchor at that event
// still checks; one that deletes nothing leaves the start alone.
func testChainPrune(t *testing.T, open func(t *testing.T) gatehouse.Store) {
	s := open(t)
	ctx := t.Context()
	var batch []gatehouse.Event
	for i := range 20 {
		batch = append(batch, event(i, "alice", "t1", "allow"))
	}
	if err := s.AppendEvents(ctx, batch); err != nil {
		t.Fatal(err)
	}
	evs := chainedEvents(t, s)
	n := read(t, s, func(tx gatehouse.Tx) (int, error) { return tx.PruneEvents(ctx, at(5*time.Minute)) })
	if n != 5 {
		t.Fatalf("pruned %d, want 5", n)
	}
	c := chainOf(t, s)
	if c.StartID != evs[4].ID || c.StartHash != evs[4].Hash {
		t.Errorf("start after the prune: %d %s, want the last pruned event's, %d %s", c.StartID, c.StartHash, evs[4].ID, evs[4].Hash)
	}
	res := VerifyChain(t, s, 3, &gatehouse.ChainAnchor{ID: evs[4].ID, Hash: evs[4].Hash})
	if !res.OK || res.Events != 15 || res.StartID != evs[4].ID || !res.AnchorChecked {
		t.Errorf("verify after the prune: %+v", res)
	}
	if res := VerifyChain(t, s, 3, &gatehouse.ChainAnchor{ID: evs[2].ID, Hash: evs[2].Hash}); res.OK || res.FirstBadID != evs[5].ID {
		t.Errorf("an anchor older than the start: got %+v, want not ok at %d", res, evs[5].ID)
	}
	read(t, s, func(tx gatehouse.Tx) (int, error) { return tx.PruneEvents(ctx, at(-time.Hour)) })
	equal(t, "the chain after a prune of nothing", chainOf(t, s), c)

	// Appends go on from the head; a prune of everything leaves an empty
	// chain that starts, and ends, at the last event.
	inTx(t, s, func(tx gatehouse.Tx) error {
		return tx.AppendEvents(ctx, []gatehouse.Event{event(30, "bob", "", "allow")})
	})
	read(t, s, func(tx gatehouse.Tx) (int, error) { return tx.PruneEvents(ctx, at(time.Hour)) })
	c = chainOf(t, s)
	if c.StartID != c.HeadID || c.StartHash != c.HeadHash || c.HeadID == 0 {
		t.Errorf("the chain after pruning everything: %+v, want start = head", c)
	}
	if res := VerifyChain(t, s, 3, nil); !res.OK || res.Events != 0 || res.HeadID != c.HeadID {
		t.Errorf("verify of an empty pruned chain: %+v", res)
	}
	if err := s.AppendEvents(ctx, []gatehouse.Event{event(31, "bob", "", "allow")}); err != nil {
		t.Fatal(err)
	}
	if res := VerifyChain(t, s, 3, nil); !res.OK || res.Events != 1 {
		t.Errorf("verify after appending to a pruned chain: %+v", res)
	}
}

// testChainConcurrentAppends: writers appending at once through both
// paths, with prunes among them, still make one chain.
func testChainConcurrentAppends(t *testing.T, open func(t *testing.T) gatehouse.Store) {
	s := open(t)
	ctx := t.Context()
	const workers, rounds = 4, 8
	var wg sync.WaitGroup
	errs := make(chan error, 2*workers*rounds+3)
	for w := range workers {
		wg.Go(func() {
			for r := range rounds {
				evs := []gatehouse.Event{event(r, fmt.Sprintf("w%d", w), "", "allow"), event(r, fmt.Sprintf("w%d", w), "", "deny")}
				errs <- s.AppendEvents(ctx, evs)
				errs <- s.Tx(ctx, func(tx gatehouse.Tx) error { return tx.AppendEvents(ctx, evs[:1]) })
			}
		})
	}
	wg.Go(func() {
		for range 3 {
			errs <- s.Tx(ctx, func(tx gatehouse.Tx) error { _, err := tx.PruneEvents(ctx, at(2*time.Minute)); return err })
		}
	})
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("concurrent append: %v", err)
		}
	}
	if res := VerifyChain(t, s, 16, nil); !res.OK {
		t.Errorf("the chain after concurrent appends does not verify: %+v", res)
	}
}
