package service

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/store/sqlite"
)

func openReplica(t *testing.T, path string) *Service {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(ctx, Options{Store: st, BcryptCost: 10, Follow: true, StalenessBound: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return s
}

// adminReplica opens replica a on a new database at path, with the admin
// bootstrapped, and logs the admin in through it.
func adminReplica(t *testing.T) (path string, a *Service, session gatehouse.NewToken) {
	t.Helper()
	ctx := context.Background()
	path = filepath.Join(t.TempDir(), "gatehouse.db")
	a = openReplica(t, path)
	if _, err := a.Bootstrap(ctx, "admin-password"); err != nil {
		t.Fatal(err)
	}
	session, err := a.Login(ctx, "admin", "admin-password", "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	return path, a, session
}

// openStore opens the database at path once more, for a replica whose
// store a test wraps.
func openStore(t *testing.T, path string) *sqlite.Store {
	t.Helper()
	st, err := sqlite.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// twoReplicasOneToken opens replica a (adminReplica), mints an API token
// of the admin through it, and then opens replica b, which has loaded
// that token.
func twoReplicasOneToken(t *testing.T) (a *Service, admin *Principal, tok gatehouse.NewToken, b *Service) {
	t.Helper()
	ctx := context.Background()
	path, a, nt := adminReplica(t)
	admin, err := a.Authenticate(ctx, nt.Token)
	if err != nil {
		t.Fatal(err)
	}
	if tok, err = a.CreateToken(ctx, admin, "admin", gatehouse.TokenRequest{Name: "t"}); err != nil {
		t.Fatal(err)
	}
	return a, admin, tok, openReplica(t, path)
}

// A replica away from the feed longer than entries are kept reloads
// everything instead: what was revoked, deleted or changed meanwhile is
// gone from its memory, what was created is there.
func TestResyncReloadsEverything(t *testing.T) {
	ctx := context.Background()
	path, a, nt := adminReplica(t)
	admin, _ := a.Authenticate(ctx, nt.Token)
	if _, err := a.CreateAccount(ctx, admin, gatehouse.AccountCreate{Name: "gone", Capabilities: []gatehouse.Capability{"apiKey"}}); err != nil {
		t.Fatal(err)
	}
	old, _ := a.CreateToken(ctx, admin, "admin", gatehouse.TokenRequest{Name: "old"})
	gone, _ := a.CreateToken(ctx, admin, "gone", gatehouse.TokenRequest{Name: "gone"})

	if _, err := a.CreateProject(ctx, admin, gatehouse.Project{Name: "team"}); err != nil {
		t.Fatal(err)
	}
	app := func(name string) gatehouse.Application {
		return gatehouse.Application{Name: name, Project: "team", Spec: gatehouse.AppSpec{RepoURL: "https://git.example/x", Destination: gatehouse.AppDestination{Namespace: "x"}}}
	}
	if _, err := a.CreateApplication(ctx, admin, app("old-app")); err != nil {
		t.Fatal(err)
	}

	b := openReplica(t, path) // loads the state so far
	if _, ok := b.apps.get("old-app"); !ok {
		t.Fatal("b did not load the application at start")
	}
	for _, tok := range []string{old.Token, gone.Token} {
		if _, err := b.Authenticate(ctx, tok); err != nil {
			t.Fatalf("b before: %v", err)
		}
	}
	// Meanwhile, with b away: a revocation, an account deletion, a new
	// token, a policy change; and the feed entries are pruned.
	if err := a.DeleteToken(ctx, admin, "admin", old.ID); err != nil {
		t.Fatal(err)
	}
	if err := a.DeleteAccount(ctx, admin, "gone"); err != nil {
		t.Fatal(err)
	}
	fresh, _ := a.CreateToken(ctx, admin, "admin", gatehouse.TokenRequest{Name: "fresh"})
	if _, err := a.PutRBAC(ctx, admin, gatehouse.RBAC{PolicyCSV: "p, role:x, applications, get, *, allow"}); err != nil {
		t.Fatal(err)
	}
	if err := a.DeleteApplication(ctx, admin, "old-app"); err != nil {
		t.Fatal(err)
	}
	if _, err := a.CreateApplication(ctx, admin, app("new-app")); err != nil {
		t.Fatal(err)
	}
	head, _ := a.store.ChangeHead(ctx)
	if _, err := a.store.PruneChanges(ctx, head); err != nil {
		t.Fatal(err)
	}
	b.follow.confirmed.Store(time.Now().Add(-resyncAfter - time.Minute).UnixNano())
	if err := b.catchUp(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Authenticate(ctx, old.Token); err == nil {
		t.Error("after the resync b accepts a token revoked while it was away")
	}
	if _, err := b.Authenticate(ctx, gone.Token); err == nil {
		t.Error("after the resync b accepts a token of an account deleted while it was away")
	}
	if _, err := b.Authenticate(ctx, fresh.Token); err != nil {
		t.Errorf("after the resync b refuses a token minted while it was away: %v", err)
	}
	if got := b.Engine().Config().CSV; got != "p, role:x, applications, get, *, allow" {
		t.Errorf("after the resync b's policy is %q", got)
	}
	if got := b.apps.names(); !slices.Equal(got, []string{"new-app"}) {
		t.Errorf("after the resync b serves the applications %v, want [new-app]", got)
	}
	if got := b.follow.applied.Load(); got != head {
		t.Errorf("after the resync b has applied up to %d, want the head %d", got, head)
	}
}

// The reaper prunes feed entries once they are feedRetention old, going by
// the heads it saw at its earlier runs.
func TestPruneFeedKeepsTheRetention(t *testing.T) {
	ctx := context.Background()
	s := openReplica(t, filepath.Join(t.TempDir(), "gatehouse.db"))
	if _, err := s.Bootstrap(ctx, "admin-password"); err != nil {
		t.Fatal(err)
	}
	first, _ := s.store.ChangeHead(ctx)
	s.follow.heads = []feedHead{{time.Now().Add(-feedRetention - time.Minute), first}}
	if _, err := s.Login(ctx, "admin", "admin-password", "127.0.0.1"); err != nil { // a newer entry
		t.Fatal(err)
	}
	if err := s.pruneFeed(ctx); err != nil {
		t.Fatal(err)
	}
	left, err := s.store.ChangesSince(ctx, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(left) == 0 {
		t.Fatal("the prune removed entries younger than the retention")
	}
	for _, c := range left {
		if c.Seq <= first {
			t.Errorf("entry %d, older than the retention, is still there", c.Seq)
		}
	}
	if len(s.follow.heads) != 1 {
		t.Errorf("heads after the prune: %v, want only the one just seen", s.follow.heads)
	}
}

// Feed entries get their seqs without gaps and are pruned oldest first, so
// a replica that finds the entry after the last it applied missing has
// missed it, and with it perhaps a revocation: it reloads everything. It
// does not count on its clock alone (confirmed, resyncAfter) to know that
// it has been away longer than entries are kept: a clock set back, or a
// process resumed from a snapshot, says it has not.
func TestCatchUpAcrossAGapReloads(t *testing.T) {
	ctx := context.Background()
	a, admin, tok, b := twoReplicasOneToken(t)
	if _, err := b.Authenticate(ctx, tok.Token); err != nil {
		t.Fatalf("b before: %v", err)
	}
	if err := a.DeleteToken(ctx, admin, "admin", tok.ID); err != nil {
		t.Fatal(err)
	}
	revoked, _ := a.store.ChangeHead(ctx)
	if _, err := a.CreateToken(ctx, admin, "admin", gatehouse.TokenRequest{Name: "later"}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.store.PruneChanges(ctx, revoked); err != nil {
		t.Fatal(err)
	}
	if err := b.catchUp(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Authenticate(ctx, tok.Token); err == nil {
		t.Error("b, having caught up across pruned entries, accepts a token revoked in them")
	}
	head, _ := a.store.ChangeHead(ctx)
	if got := b.follow.applied.Load(); got != head {
		t.Errorf("b has applied up to %d, want the head %d", got, head)
	}
}

// slowTokens is a store whose ForEachToken takes delay, as streaming
// millions of tokens does.
type slowTokens struct {
	gatehouse.Store
	delay time.Duration
}

func (s *slowTokens) ForEachToken(ctx context.Context, fn func(gatehouse.Token) error) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(s.delay):
	}
	return s.Store.ForEachToken(ctx, fn)
}

// A reload (resync) that takes longer than the staleness bound still
// finishes: the replica is stale while it runs and current once it is
// done. Bounded like a reading of the feed, it was cancelled at every
// attempt, and a replica back after a long absence, on a store with many
// tokens, refused every token for good.
func TestSlowResyncFinishes(t *testing.T) {
	ctx := context.Background()
	path, _, nt := adminReplica(t)
	st := openStore(t, path)
	const bound = 50 * time.Millisecond
	slow := &slowTokens{Store: st}
	b, err := New(ctx, Options{Store: slow, BcryptCost: 10, Follow: true, StalenessBound: bound})
	if err != nil {
		t.Fatal(err)
	}
	slow.delay = 10 * bound // from now on: b loaded before
	b.follow.confirmed.Store(time.Now().Add(-resyncAfter - time.Minute).UnixNano())
	run, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); b.Run(run, time.Hour) }()
	t.Cleanup(func() { stop(); <-done })
	// Stale first (its last confirmation is long past), then current.
	deadline := time.Now().Add(5 * time.Second)
	for stale := false; ; {
		_, err := b.Authenticate(ctx, nt.Token)
		if gatehouse.IsCode(err, gatehouse.EUNAVAILABLE) {
			stale = true
		} else if err == nil && stale {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("b has not reloaded within 5s, each reload taking %s: %v", slow.delay, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// A feed whose head is below what a replica has applied is not the feed
// it followed (a failover to a standby that had not received the last
// commits, a database restored under running replicas): the seqs it hands
// out next were applied here as other changes, and a replica that waits
// for its head to pass them skips the changes, a revocation among them, for
// good. It reloads everything instead.
func TestCatchUpAfterTheHeadWentBackReloads(t *testing.T) {
	ctx := context.Background()
	a, admin, tok, b := twoReplicasOneToken(t)
	// b applied three changes that the database it now reads lost.
	b.follow.applied.Add(3)
	if err := a.DeleteToken(ctx, admin, "admin", tok.ID); err != nil {
		t.Fatal(err)
	}
	if err := b.catchUp(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Authenticate(ctx, tok.Token); err == nil {
		t.Error("b accepts a token revoked after the feed's head went back below what it had applied")
	}
	head, _ := a.store.ChangeHead(ctx)
	if got := b.follow.applied.Load(); got != head {
		t.Errorf("b has applied up to %d, want the head %d", got, head)
	}
}

// The same when the database that lost commits has made as many new ones
// by the time the replica reads it, so that its head is past what the
// replica applied again: the change at the last seq the replica applied is
// not the one it applied there, and it reloads everything rather than
// skip the new changes under the seqs it had applied.
func TestCatchUpAfterTheFeedWasReplacedReloads(t *testing.T) {
	ctx := context.Background()
	a, admin, tok, b := twoReplicasOneToken(t)
	// b applied, from the feed, three changes that the database it now
	// reads lost.
	lost := gatehouse.Change{Seq: b.follow.applied.Add(3), Kind: gatehouse.ChangeToken, Key: "lost", At: time.Now().UTC()}
	b.follow.last = &lost
	if err := a.DeleteToken(ctx, admin, "admin", tok.ID); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if _, err := a.CreateToken(ctx, admin, "admin", gatehouse.TokenRequest{Name: "later"}); err != nil {
			t.Fatal(err)
		}
	}
	if head, _ := a.store.ChangeHead(ctx); head <= lost.Seq {
		t.Fatalf("head %d, not past the seq %d b applied: the test proves nothing", head, lost.Seq)
	}
	if err := b.catchUp(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Authenticate(ctx, tok.Token); err == nil {
		t.Error("b accepts a token revoked in a database that replaced the one whose changes it applied")
	}
}

// A token whose account's feed entry comes in a later batch (feedBatch
// cuts a transaction's entries anywhere, and an SSO first login writes an
// account and its session in one) works on the replica once both are
// applied: a token of an account the replica does not know brings its
// account along. Before, it was cached without its owner and refused on
// that replica until it restarted. Reported by an outside attack.
func TestFeedTokenBeforeItsAccountWorks(t *testing.T) {
	ctx := context.Background()
	a, admin, _, b := twoReplicasOneToken(t)
	from := b.follow.applied.Load()
	if _, err := a.CreateAccount(ctx, admin, gatehouse.AccountCreate{Name: "carol", Capabilities: []gatehouse.Capability{gatehouse.CapAPIKey}}); err != nil {
		t.Fatal(err)
	}
	nt, err := a.CreateToken(ctx, admin, "carol", gatehouse.TokenRequest{Name: "c"})
	if err != nil {
		t.Fatal(err)
	}
	changes, err := a.store.ChangesSince(ctx, from, 100)
	if err != nil {
		t.Fatal(err)
	}
	var first, then []gatehouse.Change
	for _, ch := range changes {
		if ch.Kind == gatehouse.ChangeToken && ch.Key == nt.ID {
			first = append(first, ch)
		} else {
			then = append(then, ch)
		}
	}
	if len(first) == 0 || len(then) == 0 {
		t.Fatalf("feed %v: no token entry, or nothing else", changes)
	}
	for _, batch := range [][]gatehouse.Change{first, then} {
		if err := b.applyFeed(ctx, batch); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := b.Authenticate(ctx, nt.Token); err != nil {
		t.Errorf("carol's token, its feed entry applied before her account's: %v", err)
	}
}

// failoverStore is a replica's store that a test points at another
// database, as a failover to a standby does under a running replica.
type failoverStore struct{ gatehouse.Store }

// The same for a replica that has applied nothing from the feed since it
// loaded (or reloaded): the change at the head it loaded as of is the one
// the feed must still hold. A failover to a standby that lost the last
// commits before the load, and that has made as many new ones by the time
// the replica reads it, hands out the same seqs again; reading on from
// the seq it loaded as of, the replica skipped the new changes under the
// lost seqs, a revocation among them, for good.
func TestCatchUpAfterALoadAndAFailoverReloads(t *testing.T) {
	ctx := context.Background()
	primary, a, nt := adminReplica(t)
	admin, err := a.Authenticate(ctx, nt.Token)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := a.CreateToken(ctx, admin, "admin", gatehouse.TokenRequest{Name: "t"})
	if err != nil {
		t.Fatal(err)
	}
	// The standby has everything so far, and not what follows.
	standby := filepath.Join(t.TempDir(), "standby.db")
	snap, err := a.store.(gatehouse.Snapshotter).Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	out, err := os.Create(standby)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, snap); err != nil {
		t.Fatal(err)
	}
	snap.Close()
	out.Close()
	for range 3 {
		if _, err := a.CreateToken(ctx, admin, "admin", gatehouse.TokenRequest{Name: "lost"}); err != nil {
			t.Fatal(err)
		}
	}
	fs := &failoverStore{Store: openStore(t, primary)}
	b, err := New(ctx, Options{Store: fs, BcryptCost: 10, Follow: true, StalenessBound: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	loaded := b.follow.applied.Load()
	// The failover: the standby, and a replica writing to it, which
	// revokes tok and makes as many changes again as were lost.
	sb := openStore(t, standby)
	fs.Store = sb
	c := openReplica(t, standby)
	admin2, err := c.Authenticate(ctx, nt.Token)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.DeleteToken(ctx, admin2, "admin", tok.ID); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if _, err := c.CreateToken(ctx, admin2, "admin", gatehouse.TokenRequest{Name: "later"}); err != nil {
			t.Fatal(err)
		}
	}
	if head, _ := sb.ChangeHead(ctx); head <= loaded {
		t.Fatalf("head %d, not past the seq %d b loaded as of: the test proves nothing", head, loaded)
	}
	if err := b.catchUp(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Authenticate(ctx, tok.Token); err == nil {
		t.Error("b accepts a token revoked in the standby it failed over to after its load")
	}
}

// unreachable is a store whose feed cannot be read once down is set.
type unreachable struct {
	gatehouse.Store
	down atomic.Bool
}

func (s *unreachable) ChangeHead(ctx context.Context) (int64, error) {
	if s.down.Load() {
		return 0, gatehouse.Errorf(gatehouse.EUNAVAILABLE, "unreachable")
	}
	return s.Store.ChangeHead(ctx)
}

// A wall clock set back after a confirmation does not make a replica that
// cannot read the feed any longer current for as long as the clock went
// back: it measured the age of its last confirmation by the wall clock
// alone, found it negative, and accepted every token, revoked elsewhere
// or not, until the clock passed the confirmation again.
func TestClockSetBackStillGoesStale(t *testing.T) {
	ctx := context.Background()
	path, _, nt := adminReplica(t)
	st := openStore(t, path)
	const bound = 50 * time.Millisecond
	u := &unreachable{Store: st}
	b, err := New(ctx, Options{Store: u, BcryptCost: 10, Follow: true, StalenessBound: bound})
	if err != nil {
		t.Fatal(err)
	}
	u.down.Store(true)
	// The clock went back an hour right after b's last confirmation.
	b.follow.confirmed.Store(time.Now().Add(time.Hour).UnixNano())
	run, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); b.Run(run, time.Hour) }()
	t.Cleanup(func() { stop(); <-done })
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, err := b.Authenticate(ctx, nt.Token)
		if gatehouse.IsCode(err, gatehouse.EUNAVAILABLE) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("b, which cannot read the feed, still answers %v 5s after its last confirmation (bound %s), its clock set back", err, bound)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// slowReads is a store whose reads of a token in a View take delay each,
// as a round trip to a database across a network does.
type slowReads struct {
	gatehouse.Store
	delay time.Duration
}

func (s *slowReads) View(ctx context.Context, fn func(gatehouse.Tx) error) error {
	return s.Store.View(ctx, func(tx gatehouse.Tx) error { return fn(slowTx{tx, s.delay}) })
}

type slowTx struct {
	gatehouse.Tx
	delay time.Duration
}

func (t slowTx) GetToken(ctx context.Context, id string) (gatehouse.Token, error) {
	select {
	case <-ctx.Done():
		return gatehouse.Token{}, ctx.Err()
	case <-time.After(t.delay):
	}
	return t.Tx.GetToken(ctx, id)
}

// A replica behind by a full batch of the feed, whose reads of what the
// batch names take longer together than the staleness bound (a thousand
// tokens, a round trip each), still catches up: applying a batch bounded
// like a reading of the feed was cancelled at every attempt, so the
// replica never advanced and refused every token for good, and anyone
// who could make a thousand changes (mint tokens) in a moment could put
// it there.
func TestSlowBatchIsApplied(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "gatehouse.db")
	a := openReplica(t, path)
	if _, err := a.Bootstrap(ctx, "admin-password"); err != nil {
		t.Fatal(err)
	}
	st := openStore(t, path)
	const bound = 50 * time.Millisecond
	slow := &slowReads{Store: st}
	b, err := New(ctx, Options{Store: slow, BcryptCost: 10, Follow: true, StalenessBound: bound})
	if err != nil {
		t.Fatal(err)
	}
	slow.delay = bound / 20 // a batch of them: 50 times the bound
	changes := make([]gatehouse.Change, feedBatch)
	for i := range changes {
		changes[i] = gatehouse.Change{Kind: gatehouse.ChangeToken, Key: fmt.Sprintf("gone-%d", i)}
	}
	if err := st.Tx(ctx, func(tx gatehouse.Tx) error { return tx.RecordChanges(ctx, changes) }); err != nil {
		t.Fatal(err)
	}
	head, _ := st.ChangeHead(ctx)
	for range 10 {
		if b.catchUp(ctx) == nil && b.follow.applied.Load() == head {
			return
		}
	}
	t.Errorf("b has applied up to %d after 10 catch-ups, want the head %d", b.follow.applied.Load(), head)
}

// The same when the database that lost commits has made exactly as many
// new ones, so that its head is the seq the replica applied last: with
// nothing to read, the replica did not look at the feed, confirmed itself
// current and accepted the token revoked under that seq until some later
// change anywhere made it read the feed again.
func TestCatchUpAtTheHeadAfterTheFeedWasReplacedReloads(t *testing.T) {
	ctx := context.Background()
	a, admin, tok, b := twoReplicasOneToken(t)
	// b applied, from the feed, a change that the database it now reads
	// lost.
	lost := gatehouse.Change{Seq: b.follow.applied.Add(1), Kind: gatehouse.ChangeToken, Key: "lost", At: time.Now().UTC()}
	b.follow.last = &lost
	if err := a.DeleteToken(ctx, admin, "admin", tok.ID); err != nil {
		t.Fatal(err)
	}
	if head, _ := a.store.ChangeHead(ctx); head != lost.Seq {
		t.Fatalf("head %d, not the seq %d b applied: the test proves nothing", head, lost.Seq)
	}
	if err := b.catchUp(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Authenticate(ctx, tok.Token); err == nil {
		t.Error("b accepts a token revoked, under the seq it applied last, in a database that replaced the one whose changes it applied")
	}
}

// A replica whose load was quick but whose following starts later than
// the staleness bound after it (first-start work between New and Run) is
// stale from the start of its following until its first confirmation:
// it judged the age of its load only at its first staleness check, and
// accepted tokens, revoked elsewhere meanwhile, until then.
func TestFollowingStartsStaleAfterALongStart(t *testing.T) {
	ctx := context.Background()
	a, admin, tok, b := twoReplicasOneToken(t)
	if b.follow.stale.Load() {
		t.Fatal("b starts stale after a quick load: the test proves nothing")
	}
	if err := a.DeleteToken(ctx, admin, "admin", tok.ID); err != nil {
		t.Fatal(err)
	}
	// b's load is older than the bound by the time it starts following,
	// and it cannot read the feed yet.
	b.follow.setConfirmed(time.Now().Add(-time.Minute))
	b.writeMu.Lock() // its first confirmation waits for this
	run, stop := context.WithCancel(ctx)
	wait := b.startFollowing(run)
	t.Cleanup(func() { stop(); b.writeMu.Unlock(); wait() })
	if _, err := b.Authenticate(ctx, tok.Token); !gatehouse.IsCode(err, gatehouse.EUNAVAILABLE) {
		t.Errorf("b, following from a load a minute old, answers %v for a token revoked since; want EUNAVAILABLE", err)
	}
}
