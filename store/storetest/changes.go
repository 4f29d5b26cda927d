package storetest

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
)

// changePage is the page size allChanges reads the feed in: small, so the
// cases exercise paging.
const changePage = 5

// allChanges reads the whole feed, page by page, as a follower does.
func allChanges(t *testing.T, s gatehouse.Store) []gatehouse.Change {
	t.Helper()
	out := []gatehouse.Change{}
	var after int64
	for {
		page, err := s.ChangesSince(t.Context(), after, changePage)
		if err != nil {
			t.Fatalf("ChangesSince(%d, %d): %v", after, changePage, err)
		}
		if len(page) > changePage {
			t.Fatalf("ChangesSince(%d, %d): %d changes, more than the limit", after, changePage, len(page))
		}
		if len(page) == 0 {
			return out
		}
		out = append(out, page...)
		after = page[len(page)-1].Seq
	}
}

func changeHead(t *testing.T, s gatehouse.Store) int64 {
	t.Helper()
	h, err := s.ChangeHead(t.Context())
	if err != nil {
		t.Fatalf("ChangeHead: %v", err)
	}
	return h
}

func record(t *testing.T, s gatehouse.Store, changes ...gatehouse.Change) {
	t.Helper()
	inTx(t, s, func(tx gatehouse.Tx) error { return tx.RecordChanges(t.Context(), changes) })
}

// named is the kind and key of a change, what a caller records.
type named struct {
	Kind gatehouse.ChangeKind
	Key  string
}

func names(cs []gatehouse.Change) []named {
	out := []named{}
	for _, c := range cs {
		out = append(out, named{c.Kind, c.Key})
	}
	return out
}

func seqs(cs []gatehouse.Change) []int64 {
	out := []int64{}
	for _, c := range cs {
		out = append(out, c.Seq)
	}
	return out
}

// checkConsecutive fails the test unless the seqs are positive and each
// is one more than the one before: no seq is skipped, so a follower that
// finds the one after the last it applied missing knows it was pruned.
func checkConsecutive(t *testing.T, what string, cs []gatehouse.Change) {
	t.Helper()
	for i, c := range cs {
		if c.Seq <= 0 || i > 0 && c.Seq != cs[i-1].Seq+1 {
			t.Errorf("%s: change %d has seq %d, want positive and one more than the one before (seqs %v)", what, i, c.Seq, seqs(cs))
			return
		}
	}
}

// testChangeSeqsFollowCommits: an empty feed has head 0 and no changes;
// each committed change gets the seq after the greatest committed before
// it, in the order recorded within a transaction; the store sets At
// (now, in UTC) and ignores the Seq and At it is given; ChangeHead is the
// greatest seq.
func testChangeSeqsFollowCommits(t *testing.T, open func(t *testing.T) gatehouse.Store) {
	s := open(t)
	ctx := t.Context()
	if h := changeHead(t, s); h != 0 {
		t.Errorf("ChangeHead of an empty store: got %d, want 0", h)
	}
	if got, err := s.ChangesSince(ctx, 0, 10); err != nil || got == nil || len(got) != 0 {
		t.Errorf("ChangesSince on an empty store: got %#v, %v; want [], nil", got, err)
	}

	before := time.Now()
	record(t, s,
		gatehouse.Change{Kind: gatehouse.ChangeToken, Key: "t1", Seq: 1000, At: t0},
		gatehouse.Change{Kind: gatehouse.ChangeAccount, Key: "alice"})
	h1 := changeHead(t, s)
	// Two calls in one transaction, then a transaction of other writes.
	inTx(t, s, func(tx gatehouse.Tx) error {
		return errors.Join(
			tx.RecordChanges(ctx, []gatehouse.Change{{Kind: gatehouse.ChangePolicy}}),
			tx.CreateAccount(ctx, account("bob")),
			tx.RecordChanges(ctx, []gatehouse.Change{{Kind: gatehouse.ChangeAccount, Key: "bob"}}),
		)
	})
	h2 := changeHead(t, s)
	record(t, s, gatehouse.Change{Kind: gatehouse.ChangeToken, Key: "t2"})
	after := time.Now()

	got := allChanges(t, s)
	equal(t, "changes (kind, key) in commit order", names(got), []named{
		{gatehouse.ChangeToken, "t1"}, {gatehouse.ChangeAccount, "alice"},
		{gatehouse.ChangePolicy, ""}, {gatehouse.ChangeAccount, "bob"},
		{gatehouse.ChangeToken, "t2"},
	})
	checkConsecutive(t, "seqs", got)
	if len(got) != 5 {
		t.FailNow()
	}
	if h1 != got[1].Seq || h2 != got[3].Seq {
		t.Errorf("ChangeHead after each commit: got %d, %d; want the commit's greatest seq %d, %d", h1, h2, got[1].Seq, got[3].Seq)
	}
	if h := changeHead(t, s); h != got[4].Seq {
		t.Errorf("ChangeHead: got %d, want the greatest seq %d", h, got[4].Seq)
	}
	if got[0].Seq == 1000 {
		t.Errorf("the store kept the Seq it was given (%d)", got[0].Seq)
	}
	for _, c := range got {
		if c.At.Before(before) || c.At.After(after) || c.At.Location() != time.UTC {
			t.Errorf("change %d: At %v, want the commit's time (between %v and %v) in UTC", c.Seq, c.At, before, after)
		}
	}
}

// testChangesRolledBack: changes recorded in a transaction that does not
// commit (fn's error, a contract error after the record) never appear, do
// not move the head, and a later commit still gets greater seqs.
func testChangesRolledBack(t *testing.T, open func(t *testing.T) gatehouse.Store) {
	s := open(t)
	ctx := t.Context()
	seed(t, s)
	record(t, s, gatehouse.Change{Kind: gatehouse.ChangeAccount, Key: "alice"})
	head := changeHead(t, s)
	boom := errors.New("boom")
	err := s.Tx(ctx, func(tx gatehouse.Tx) error {
		if err := tx.RecordChanges(ctx, []gatehouse.Change{{Kind: gatehouse.ChangeToken, Key: "lost1"}}); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Errorf("Tx: got %v, want fn's error", err)
	}
	err = s.Tx(ctx, func(tx gatehouse.Tx) error {
		if err := tx.RecordChanges(ctx, []gatehouse.Change{{Kind: gatehouse.ChangeToken, Key: "lost2"}}); err != nil {
			return err
		}
		return tx.CreateToken(ctx, token("t1")) // taken
	})
	wantCode(t, "Tx recording then conflicting", err, gatehouse.ECONFLICT)
	if h := changeHead(t, s); h != head {
		t.Errorf("ChangeHead after rolled-back records: got %d, want %d", h, head)
	}
	record(t, s, gatehouse.Change{Kind: gatehouse.ChangeToken, Key: "kept"})
	got := allChanges(t, s)
	equal(t, "changes", names(got), []named{{gatehouse.ChangeAccount, "alice"}, {gatehouse.ChangeToken, "kept"}})
	checkConsecutive(t, "seqs", got)
}

// testChangesSincePaging: ChangesSince returns the changes after a seq, at
// most limit of them, in seq order; pages read one after another give the
// feed once; after the head there is nothing.
func testChangesSincePaging(t *testing.T, open func(t *testing.T) gatehouse.Store) {
	s := open(t)
	ctx := t.Context()
	var want []named
	for i := range 4 {
		var batch []gatehouse.Change
		for j := range i + 1 { // 1+2+3+4 = 10 changes
			key := fmt.Sprintf("t%d-%d", i, j)
			batch = append(batch, gatehouse.Change{Kind: gatehouse.ChangeToken, Key: key})
			want = append(want, named{gatehouse.ChangeToken, key})
		}
		record(t, s, batch...)
	}
	all, err := s.ChangesSince(ctx, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	equal(t, "ChangesSince(0, 100)", names(all), want)
	checkConsecutive(t, "seqs", all)
	if len(all) != 10 {
		t.FailNow()
	}
	for _, limit := range []int{1, 3, 10, 11} {
		var paged []gatehouse.Change
		after := int64(0)
		for range 20 {
			page, err := s.ChangesSince(ctx, after, limit)
			if err != nil {
				t.Fatalf("ChangesSince(%d, %d): %v", after, limit, err)
			}
			if len(page) > limit {
				t.Fatalf("ChangesSince(%d, %d): got %d changes", after, limit, len(page))
			}
			if len(page) == 0 {
				break
			}
			paged = append(paged, page...)
			after = page[len(page)-1].Seq
		}
		equal(t, fmt.Sprintf("pages of %d", limit), paged, all)
	}
	mid, err := s.ChangesSince(ctx, all[3].Seq, 2)
	if err != nil {
		t.Fatal(err)
	}
	equal(t, "ChangesSince(seq of the 4th, 2)", mid, all[4:6])
	// A seq that falls between two (seqs need not be gap-free) works too.
	mid, err = s.ChangesSince(ctx, all[3].Seq-1, 1)
	if err != nil {
		t.Fatal(err)
	}
	equal(t, "ChangesSince(just before the 4th, 1)", mid, all[3:4])
	last, err := s.ChangesSince(ctx, all[9].Seq, 5)
	if err != nil || last == nil || len(last) != 0 {
		t.Errorf("ChangesSince(head): got %#v, %v; want [], nil", last, err)
	}
}

// testChangeHead: the head is the greatest committed seq, and pruning the
// feed, even all of it, does not move it back: later seqs stay greater.
func testChangeHead(t *testing.T, open func(t *testing.T) gatehouse.Store) {
	s := open(t)
	ctx := t.Context()
	record(t, s, gatehouse.Change{Kind: gatehouse.ChangeToken, Key: "a"}, gatehouse.Change{Kind: gatehouse.ChangeToken, Key: "b"})
	all := allChanges(t, s)
	head := changeHead(t, s)
	if len(all) != 2 || head != all[1].Seq {
		t.Fatalf("ChangeHead: got %d, want the greatest seq of %v", head, seqs(all))
	}
	if n, err := s.PruneChanges(ctx, head); err != nil || n != 2 {
		t.Errorf("PruneChanges(head): got %d, %v; want 2, nil", n, err)
	}
	if h := changeHead(t, s); h != head {
		t.Errorf("ChangeHead after pruning everything: got %d, want %d still", h, head)
	}
	record(t, s, gatehouse.Change{Kind: gatehouse.ChangeAccount, Key: "c"})
	got := allChanges(t, s)
	if len(got) != 1 || got[0].Seq <= head || got[0].Key != "c" {
		t.Errorf("after pruning everything: got %v, want one change c with a seq above %d", show(got), head)
	}
	if h := changeHead(t, s); len(got) == 1 && h != got[0].Seq {
		t.Errorf("ChangeHead: got %d, want %d", h, got[0].Seq)
	}
}

// testPruneChanges: PruneChanges deletes the changes up to a seq, counts
// them, and keeps the rest as they were.
func testPruneChanges(t *testing.T, open func(t *testing.T) gatehouse.Store) {
	s := open(t)
	ctx := t.Context()
	if n, err := s.PruneChanges(ctx, 100); err != nil || n != 0 {
		t.Errorf("PruneChanges on an empty feed: got %d, %v; want 0, nil", n, err)
	}
	for i := range 6 {
		record(t, s, gatehouse.Change{Kind: gatehouse.ChangeToken, Key: fmt.Sprint("t", i)})
	}
	all := allChanges(t, s)
	if len(all) != 6 {
		t.Fatalf("changes: got %d, want 6", len(all))
	}
	if n, err := s.PruneChanges(ctx, 0); err != nil || n != 0 {
		t.Errorf("PruneChanges(0): got %d, %v; want 0, nil", n, err)
	}
	if n, err := s.PruneChanges(ctx, all[2].Seq); err != nil || n != 3 {
		t.Errorf("PruneChanges(3rd seq): got %d, %v; want 3, nil", n, err)
	}
	equal(t, "changes after pruning 3", allChanges(t, s), all[3:])
	if n, err := s.PruneChanges(ctx, all[2].Seq); err != nil || n != 0 {
		t.Errorf("PruneChanges again: got %d, %v; want 0, nil", n, err)
	}
	if got, err := s.ChangesSince(ctx, 0, 1); err != nil || len(got) != 1 || got[0] != all[3] {
		t.Errorf("ChangesSince(0, 1) after pruning: got %v, %v; want the 4th change", show(got), err)
	}
	if n, err := s.PruneChanges(ctx, all[5].Seq+1000); err != nil || n != 3 {
		t.Errorf("PruneChanges(past the head): got %d, %v; want 3, nil", n, err)
	}
	if got := allChanges(t, s); len(got) != 0 {
		t.Errorf("changes after pruning all: got %v, want none", show(got))
	}
}

// testRecordChangesEmpty: recording no changes (nil or empty) records
// nothing and does not move the head, in a transaction that commits other
// writes or in one of its own.
func testRecordChangesEmpty(t *testing.T, open func(t *testing.T) gatehouse.Store) {
	s := open(t)
	ctx := t.Context()
	record(t, s, gatehouse.Change{Kind: gatehouse.ChangePolicy})
	before := allChanges(t, s)
	head := changeHead(t, s)
	inTx(t, s, func(tx gatehouse.Tx) error {
		return errors.Join(
			tx.RecordChanges(ctx, nil),
			tx.CreateAccount(ctx, account("alice")),
			tx.RecordChanges(ctx, []gatehouse.Change{}),
		)
	})
	record(t, s)
	if h := changeHead(t, s); h != head {
		t.Errorf("ChangeHead after empty records: got %d, want %d", h, head)
	}
	equal(t, "changes after empty records", allChanges(t, s), before)
	record(t, s, gatehouse.Change{Kind: gatehouse.ChangeAccount, Key: "alice"})
	if got := allChanges(t, s); len(got) != 2 || got[1].Seq <= head {
		t.Errorf("a record after empty ones: got %v, want a second change above %d", show(got), head)
	}
}

// testConcurrentChangeRecorders: transactions on several goroutines record
// changes at once, beside other writes; every one commits (a backend that
// makes them conflict retries), and the feed holds every committed change
// exactly once in strictly increasing seq. A follower that reads the feed
// all along, asking each time for what comes after the last seq it saw,
// ends with the same feed: it would miss changes if a smaller seq could
// commit after a greater one was readable. And a transaction that starts
// after another commits gets greater seqs.
func testConcurrentChangeRecorders(t *testing.T, open func(t *testing.T) gatehouse.Store) {
	s := open(t)
	ctx := t.Context()
	const workers, rounds = 6, 4
	var (
		wg, fwg  sync.WaitGroup
		mu       sync.Mutex
		want     = map[named]bool{}
		done     = make(chan struct{})
		followed []gatehouse.Change
		ferr     error
	)
	errs := make(chan error, 2*workers*rounds)
	fwg.Go(func() {
		var after int64
		for {
			// Once done, every writer has returned: one last read.
			finished := false
			select {
			case <-done:
				finished = true
			default:
			}
			for {
				page, err := s.ChangesSince(ctx, after, 3)
				if err != nil {
					ferr = err
					return
				}
				if len(page) == 0 {
					break
				}
				followed = append(followed, page...)
				after = page[len(page)-1].Seq
			}
			if finished {
				return
			}
			time.Sleep(time.Millisecond)
		}
	})
	// floors[w][r] is the head worker w saw after its round r committed;
	// its next round's changes must come after it.
	floors := make([][]int64, workers)
	for w := range workers {
		floors[w] = make([]int64, rounds)
		wg.Go(func() {
			for r := range rounds {
				batch := []gatehouse.Change{{Kind: gatehouse.ChangeToken, Key: fmt.Sprintf("w%d-r%d-a", w, r)}}
				if r%2 == 1 {
					batch = append(batch, gatehouse.Change{Kind: gatehouse.ChangeAccount, Key: fmt.Sprintf("w%d-r%d-b", w, r)})
				}
				// Writes after the record keep the transaction open
				// between taking seqs and committing.
				err := s.Tx(ctx, func(tx gatehouse.Tx) error {
					if err := tx.RecordChanges(ctx, batch); err != nil {
						return err
					}
					return tx.AppendEvents(ctx, []gatehouse.Event{event(r, fmt.Sprint("w", w), "", "allow")})
				})
				errs <- err
				if err != nil {
					continue
				}
				mu.Lock()
				for _, c := range batch {
					want[named{c.Kind, c.Key}] = true
				}
				mu.Unlock()
				h, err := s.ChangeHead(ctx)
				if err != nil {
					errs <- err
				}
				floors[w][r] = h
			}
		})
	}
	wg.Wait()
	close(done)
	fwg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("concurrent recorder: %v", err)
		}
	}
	if ferr != nil {
		t.Fatalf("follower: %v", ferr)
	}
	got := allChanges(t, s)
	checkConsecutive(t, "feed", got)
	seen := map[named]int{}
	for _, c := range got {
		seen[named{c.Kind, c.Key}]++
	}
	for n, c := range seen {
		if c != 1 || !want[n] {
			t.Errorf("change %v: in the feed %d times, committed %v; want once, committed", n, c, want[n])
		}
	}
	if len(seen) != len(want) {
		t.Errorf("feed: %d distinct changes, want %d committed", len(seen), len(want))
	}
	equal(t, "seqs a concurrent follower read", seqs(followed), seqs(got))
	if h := changeHead(t, s); len(got) > 0 && h != got[len(got)-1].Seq {
		t.Errorf("ChangeHead: got %d, want %d", h, got[len(got)-1].Seq)
	}
	bySeq := map[string]int64{}
	for _, c := range got {
		bySeq[c.Key] = c.Seq
	}
	for w := range workers {
		for r := 1; r < rounds; r++ {
			key := fmt.Sprintf("w%d-r%d-a", w, r)
			if s, ok := bySeq[key]; ok && s <= floors[w][r-1] {
				t.Errorf("%s: seq %d, not above the head %d seen after the worker's previous commit", key, s, floors[w][r-1])
			}
		}
	}
}
