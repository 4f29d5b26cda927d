package service

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gatehouse/gatehouse"
)

// Replicas. Several servers on one database each keep the request path's
// state (tokens, accounts, applications, the policy engine) in memory, so each must hear
// of every committed change, including those made by the others. Every
// write records what it changed in the store's change feed, in its own
// transaction (see write); a replica follows the feed and applies each
// entry through the same apply function as its own writes, by reading the
// current state of what the entry names. A notification from the store
// (gatehouse.Notifier) wakes it at once; it also reads the feed's head
// every confirmInterval, whether or not notifications arrive.
//
// Bounded staleness: a replica that has not confirmed within the bound
// that it has applied everything up to the feed's head (the store is
// unreachable, frozen or too slow) cannot prove it is current, and a token
// it accepts may have been revoked elsewhere. It then refuses every token
// with 503 and /readyz says 503, until it has caught up again.
const (
	confirmInterval = 250 * time.Millisecond
	staleCheck      = 50 * time.Millisecond
	feedBatch       = 1000

	// Feed entries are kept feedRetention. A replica that has not
	// confirmed for resyncAfter (half of it, so that clocks and a late
	// reaper leave room) may have missed pruned entries, so it reloads
	// everything instead of reading the feed.
	feedRetention = 24 * time.Hour
	resyncAfter   = feedRetention / 2

	// catchUpTimeout bounds applying what a reading of the feed found and
	// a reload, which the staleness bound does not (see catchUp): long
	// enough for millions of tokens, short enough that a connection the
	// network dropped without a word (no statement timeout is set) is
	// given up and dialled again well before TCP would give up on it.
	catchUpTimeout = 5 * time.Minute
)

// follower is a replica's position in the change feed.
type follower struct {
	active  bool
	bound   time.Duration
	applied atomic.Int64 // greatest Seq applied
	// last is the change at applied as the feed gave it (after a load or
	// a reload, the one at the head it read), nil when the feed held none
	// there; followFeed's alone (and load's, before it starts).
	// A feed that gives another change at that seq is not the one this
	// replica followed (see catchUp).
	last      *gatehouse.Change
	confirmed atomic.Int64 // wall-clock unix nanos when the latest confirmation began
	// confirmedMono is the same on the monotonic clock, nanos since
	// epoch: the staleness watch counts the older of the two, so that a
	// wall clock set back does not make a replica current for as long
	// as it went back, and a process resumed after a pause that the
	// monotonic clock does not count is stale all the same.
	confirmedMono atomic.Int64
	epoch         time.Time
	stale         atomic.Bool // read on every request

	resyncAfter time.Duration // see the constant
	// heads are the feed's head as the reaper saw it, oldest first, so it
	// can prune what is older than feedRetention.
	heads []feedHead

	wake chan struct{} // asks followFeed for a confirmation now

	mu   sync.Mutex
	next chan struct{} // closed at the next confirmation
}

func newFollower(active bool, bound time.Duration) follower {
	return follower{active: active, bound: bound, resyncAfter: resyncAfter, epoch: time.Now(), wake: make(chan struct{}, 1), next: make(chan struct{})}
}

// setConfirmed records began as the start of the latest confirmation.
func (f *follower) setConfirmed(began time.Time) {
	f.confirmedMono.Store(int64(began.Sub(f.epoch)))
	f.confirmed.Store(began.UnixNano())
}

// age is how long ago, at now, the latest confirmation began: the older
// by the wall clock and by the monotonic clock.
func (f *follower) age(now time.Time) time.Duration {
	wall := time.Duration(now.UnixNano() - f.confirmed.Load())
	mono := now.Sub(f.epoch) - time.Duration(f.confirmedMono.Load())
	return max(wall, mono)
}

// poke asks for a confirmation now; it never blocks.
func (f *follower) poke() {
	select {
	case f.wake <- struct{}{}:
	default:
	}
}

// confirmedNow records a confirmation that began at began and wakes those
// waiting for one.
func (f *follower) confirmedNow(began time.Time) {
	f.setConfirmed(began)
	f.mu.Lock()
	close(f.next)
	f.next = make(chan struct{})
	f.mu.Unlock()
}

// awaitCurrent waits until a confirmation that began at or after since
// (unix nanos) has completed, at most the staleness bound. Read your
// writes across replicas: a token minted through another replica a moment
// ago may not be applied here yet, so a token this replica does not know
// is refused only on state confirmed after the request arrived.
// Concurrent waiters share confirmations, so a flood of unknown tokens
// costs at most one feed read in flight.
func (s *Service) awaitCurrent(ctx context.Context, since int64) bool {
	f := &s.follow
	timer := time.NewTimer(f.bound)
	defer timer.Stop()
	for f.confirmed.Load() < since {
		f.mu.Lock()
		next := f.next
		f.mu.Unlock()
		f.poke()
		select {
		case <-next:
		case <-ctx.Done():
			return false
		case <-timer.C:
			return false
		}
	}
	return true
}

// errStale answers every token while this replica cannot confirm it is
// current.
var errStale = gatehouse.Errorf(gatehouse.EUNAVAILABLE, "this server cannot confirm it has every change (revocations included) from the database; try again shortly")

// startFollowing follows the change feed until ctx ends; the returned
// function waits for it to stop.
func (s *Service) startFollowing(ctx context.Context) (wait func()) {
	var wg sync.WaitGroup
	if n, ok := s.store.(gatehouse.Notifier); ok {
		wg.Add(1)
		go func() { defer wg.Done(); s.listen(ctx, n, s.follow.poke) }()
	}
	// The first confirmation at once: the load is confirmed only as of
	// the head it read, and may already be older than the bound, as it
	// is judged at once (what ran between New and Run took time too).
	s.checkStaleness()
	s.follow.poke()
	wg.Add(2)
	go func() { defer wg.Done(); s.followFeed(ctx, s.follow.wake) }()
	go func() { defer wg.Done(); s.watchStaleness(ctx) }()
	return wg.Wait
}

// listen keeps a subscription to the store's notifications. Each
// (re)subscription pokes the follower, which then catches up from the
// feed: listen first, then read, so that nothing committed in between is
// missed.
func (s *Service) listen(ctx context.Context, n gatehouse.Notifier, poke func()) {
	backoff := 50 * time.Millisecond
	for ctx.Err() == nil {
		err := n.Listen(ctx, func() { backoff = 50 * time.Millisecond; poke() }, func(int64) { poke() })
		if ctx.Err() != nil {
			return
		}
		s.log.Warn("change feed: notifications lost, reading the feed every 250ms until they are back", "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 2*time.Second)
	}
}

// followFeed applies the feed when woken and at least every
// confirmInterval, and records each confirmation.
func (s *Service) followFeed(ctx context.Context, wake <-chan struct{}) {
	tick := time.NewTicker(confirmInterval)
	defer tick.Stop()
	failing := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-wake:
		case <-tick.C:
		}
		began := time.Now()
		err := s.catchUp(ctx)
		switch {
		case err != nil && !failing && ctx.Err() == nil:
			s.log.Error("change feed: cannot read it", "err", err)
			failing = true
		case err == nil:
			if failing {
				s.log.Info("change feed: reading it again")
				failing = false
			}
			s.follow.confirmedNow(began)
		}
	}
}

// watchStaleness turns the stale flag on once the latest confirmation is
// older than the bound, and off again after the next.
func (s *Service) watchStaleness(ctx context.Context) {
	tick := time.NewTicker(staleCheck)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		s.checkStaleness()
	}
}

// checkStaleness sets the stale flag by the age of the latest
// confirmation.
func (s *Service) checkStaleness() {
	age := s.follow.age(time.Now())
	stale := age > s.follow.bound
	if s.follow.stale.Swap(stale) != stale {
		if stale {
			s.log.Error("not current: refusing tokens until the change feed is read again", "last_confirmed_ago", age.Round(time.Millisecond), "bound", s.follow.bound)
		} else {
			s.log.Info("current again: accepting tokens")
		}
	}
}

// catchUp applies every change up to the feed's head. Reading the feed
// takes at most the staleness bound (a confirmation that takes longer is
// none); applying what it read and a reload take up to catchUpTimeout,
// the replica stale meanwhile: bounded by the staleness bound, a reload on
// a store of millions of tokens, or a full batch on a database a round
// trip away, would be cancelled every time and the replica never current
// again.
func (s *Service) catchUp(ctx context.Context) error {
	full, cancelFull := context.WithTimeout(ctx, catchUpTimeout)
	defer cancelFull()
	if away := s.follow.age(time.Now()); away > s.follow.resyncAfter {
		s.log.Info("change feed: away longer than its entries are kept for sure; reloading everything", "away", away)
		return s.resync(full)
	}
	ctx, cancel := context.WithTimeout(ctx, s.follow.bound)
	defer cancel()
	head, err := s.store.ChangeHead(ctx)
	if err != nil {
		return err
	}
	if applied := s.follow.applied.Load(); head < applied {
		// Not the feed this replica followed (a failover to a standby
		// that lost the last commits, a database restored under it): the
		// seqs it hands out next were applied here as other changes,
		// and what this replica holds of the lost ones is not stored.
		s.log.Error("change feed: its head is below what this replica has applied; reloading everything", "head", head, "applied", applied)
		return s.resync(full)
	}
	// The feed must still hold the change applied last (or the one at
	// the head a load or a reload read), when it held one there: another
	// one at that seq is a database that lost commits this replica applied
	// (a failover to a standby that was behind) and has made as many new
	// ones since, under the same seqs, whatever the head says.
	if last := s.follow.last; last != nil {
		at, err := s.changeAt(ctx, last.Seq)
		if err != nil {
			return err
		}
		if at != nil && !sameChange(*at, *last) {
			s.log.Error("change feed: it holds another change than the one this replica applied at the same seq; reloading everything", "seq", last.Seq)
			return s.resync(full)
		}
	}
	for s.follow.applied.Load() < head {
		after := s.follow.applied.Load()
		batch, err := s.store.ChangesSince(ctx, after, feedBatch)
		if err != nil {
			return err
		}
		if len(batch) == 0 || batch[0].Seq != after+1 {
			// Seqs are handed out without gaps and pruned oldest first:
			// the next one is missing because it was pruned before this
			// replica applied it (its clock, by which it decides to
			// resync, said it had not been away that long). What it
			// named, a revocation perhaps, is known only by reloading.
			s.log.Error("change feed: entries this replica has not applied were pruned; reloading everything", "applied", after, "next", nextSeq(batch))
			return s.resync(full)
		}
		// Applied under full, like a reload: its reads, one per entry,
		// may take longer together than the bound (a thousand round
		// trips to a database across a network), and a batch cancelled
		// at every attempt was never applied.
		if err := s.applyFeed(full, batch); err != nil {
			return err
		}
		end := batch[len(batch)-1]
		s.follow.applied.Store(end.Seq)
		s.follow.last = &end
	}
	return nil
}

// changeAt is the feed's entry at seq, nil when it holds none there (seq
// 0, or pruned). catchUp reads the one at the seq it applied last, and a
// load or a reload the one at the head it is current as of, so that the
// feed read next can be told to be the one followed so far.
func (s *Service) changeAt(ctx context.Context, seq int64) (*gatehouse.Change, error) {
	if seq <= 0 {
		return nil, nil
	}
	batch, err := s.store.ChangesSince(ctx, seq-1, 1)
	if err != nil || len(batch) == 0 || batch[0].Seq != seq {
		return nil, err
	}
	return &batch[0], nil
}

// sameChange reports whether a and b are one entry of the feed.
func sameChange(a, b gatehouse.Change) bool {
	return a.Seq == b.Seq && a.Kind == b.Kind && a.Key == b.Key && a.At.Equal(b.At)
}

// nextSeq is the first seq of batch, 0 for none.
func nextSeq(batch []gatehouse.Change) int64 {
	if len(batch) == 0 {
		return 0
	}
	return batch[0].Seq
}

// applyFeed reads the current state of everything a batch of feed entries
// names and applies it, under writeMu like a write of this replica's own.
func (s *Service) applyFeed(ctx context.Context, batch []gatehouse.Change) error {
	tokens, accounts, apps, policy := map[string]bool{}, map[string]bool{}, map[string]bool{}, false
	rotations := map[string]bool{}
	for _, ch := range batch {
		switch ch.Kind {
		case gatehouse.ChangeRotation:
			rotations[ch.Key] = true
		case gatehouse.ChangeToken:
			tokens[ch.Key] = true
		case gatehouse.ChangeAccount:
			accounts[ch.Key] = true
		case gatehouse.ChangeApplication:
			apps[ch.Key] = true
		case gatehouse.ChangePolicy:
			policy = true
		}
	}
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	var c change
	err := s.store.View(ctx, func(tx gatehouse.Tx) error {
		c = change{}
		for name := range accounts {
			a, err := tx.GetAccount(ctx, name)
			switch {
			case gatehouse.IsCode(err, gatehouse.ENOTFOUND):
				c.deleteAccount(name)
			case err != nil:
				return err
			default:
				c.putAccount(a)
			}
		}
		for name := range apps {
			a, err := tx.GetApplication(ctx, name)
			switch {
			case gatehouse.IsCode(err, gatehouse.ENOTFOUND):
				c.deleteApp(name)
			case err != nil:
				return err
			default:
				c.putApp(a)
			}
		}
		for id := range rotations {
			r, err := tx.GetRotation(ctx, id)
			switch {
			case gatehouse.IsCode(err, gatehouse.ENOTFOUND):
				c.dropRotation(id)
			case err != nil:
				return err
			default:
				c.putRotation(r)
			}
		}
		for id := range tokens {
			t, err := tx.GetToken(ctx, id)
			switch {
			case gatehouse.IsCode(err, gatehouse.ENOTFOUND):
				c.revoke(id)
			case err != nil:
				return err
			default:
				// A token of an account this replica does not know yet:
				// the account's entry, of the same transaction, may be in
				// the next batch (feedBatch cuts anywhere). Read it now, as
				// it is, or the token is cached without its owner and
				// refused here for good.
				if t.Kind != gatehouse.KindProject && !accounts[t.Account] && s.accounts.get(t.Account) == nil {
					accounts[t.Account] = true
					switch a, err := tx.GetAccount(ctx, t.Account); {
					case err == nil:
						c.putAccount(a)
					case !gatehouse.IsCode(err, gatehouse.ENOTFOUND):
						return err
					}
				}
				c.putToken(t)
			}
		}
		if policy {
			e, src, err := s.rebuildEngine(ctx, tx)
			if err != nil {
				return err
			}
			c.engine, c.source = e, src
		}
		return nil
	})
	if err != nil {
		return err
	}
	return s.apply(c)
}

type feedHead struct {
	at   time.Time
	head int64
}

// pruneFeed deletes feed entries older than feedRetention. The feed keeps
// no times the prune could use, so the reaper remembers the head it saw at
// each run and prunes up to the newest head seen feedRetention ago.
func (s *Service) pruneFeed(ctx context.Context) error {
	head, err := s.store.ChangeHead(ctx)
	if err != nil {
		return err
	}
	now := time.Now()
	f := &s.follow
	f.heads = append(f.heads, feedHead{now, head})
	cut := -1
	for i, h := range f.heads {
		if now.Sub(h.at) >= feedRetention {
			cut = i
		}
	}
	if cut < 0 {
		return nil
	}
	upTo := f.heads[cut].head
	f.heads = f.heads[cut+1:]
	_, err = s.store.PruneChanges(ctx, upTo)
	return err
}

// resync reloads everything the request path reads, for a replica that
// has been away from the feed so long that entries it needs may be pruned.
// It stays stale (refusing tokens) until this is done.
func (s *Service) resync(ctx context.Context) error {
	head, err := s.store.ChangeHead(ctx)
	if err != nil {
		return err
	}
	last, err := s.changeAt(ctx, head)
	if err != nil {
		return err
	}
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	var c change
	inStore, appsInStore, rotsInStore := map[string]bool{}, map[string]bool{}, map[string]bool{}
	err = s.store.View(ctx, func(tx gatehouse.Tx) error {
		c = change{}
		clear(inStore)
		clear(appsInStore)
		clear(rotsInStore)
		rots, err := tx.ListRotations(ctx)
		if err != nil {
			return err
		}
		for _, r := range rots {
			c.putRotation(r)
			rotsInStore[r.ID] = true
		}
		accounts, err := tx.ListAccounts(ctx)
		if err != nil {
			return err
		}
		for _, a := range accounts {
			c.putAccount(a)
			inStore[a.Name] = true
		}
		apps, err := tx.ListApplications(ctx, "")
		if err != nil {
			return err
		}
		for _, a := range apps {
			c.putApp(a)
			appsInStore[a.Name] = true
		}
		c.engine, c.source, err = s.rebuildEngine(ctx, tx)
		return err
	})
	if err != nil {
		return err
	}
	for _, name := range s.accounts.names() {
		if !inStore[name] {
			c.deleteAccount(name)
		}
	}
	for _, name := range s.apps.names() {
		if !appsInStore[name] {
			c.deleteApp(name)
		}
	}
	for _, id := range s.rotations.ids() {
		if !rotsInStore[id] {
			c.dropRotation(id)
		}
	}
	seen := map[string]bool{}
	err = s.store.ForEachToken(ctx, func(t gatehouse.Token) error {
		seen[t.ID] = true
		c.putToken(t)
		return nil
	})
	if err != nil {
		return err
	}
	for _, id := range s.tokens.ids() {
		if !seen[id] {
			c.revoke(id)
		}
	}
	if err := s.apply(c); err != nil {
		return err
	}
	s.follow.applied.Store(head)
	s.follow.last = last
	s.log.Info("change feed: reloaded everything", "tokens", len(seen))
	return nil
}
