package service

import (
	"context"
	"encoding/base64"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gatehouse/gatehouse"
)

// event builds a lifecycle event caused by p.
func (s *Service) event(p *Principal, typ, resource, action, object, detail string) gatehouse.Event {
	ev := gatehouse.Event{Type: typ, Actor: subjectOf(p), Resource: resource, Action: action, Object: object, Detail: detail}
	if resource == "accounts" {
		ev.Account = object
	}
	if p != nil {
		ev.TokenID, ev.TokenKind = p.tokenID, p.kind
	}
	return s.stamp(ev)
}

// tokenEvent records something that happened to token t, caused by p.
// The event names t's id (never its secret); Object is t's owner.
func (s *Service) tokenEvent(p *Principal, typ string, t gatehouse.Token, detail string) gatehouse.Event {
	ev := gatehouse.Event{Type: typ, Actor: subjectOf(p), TokenID: t.ID, TokenKind: t.Kind, Detail: detail}
	if t.Kind == gatehouse.KindProject {
		ev.Resource, ev.Object = "projects", t.Project+"/"+t.Role
	} else {
		ev.Resource, ev.Object, ev.Account = "accounts", t.Account, t.Account
	}
	if typ == gatehouse.EventTokenCreated && t.Name != "" {
		if ev.Detail != "" {
			ev.Detail += "; "
		}
		ev.Detail += "name " + strconv.Quote(t.Name)
	}
	return s.stamp(ev)
}

func (s *Service) stamp(ev gatehouse.Event) gatehouse.Event {
	if ev.Time.IsZero() {
		ev.Time = s.now().UTC()
	}
	return ev
}

// recordLifecycle queues an event that records no stored change (failed
// or throttled logins).
func (s *Service) recordLifecycle(_ context.Context, ev gatehouse.Event) {
	s.audit.record(s.stamp(ev), true)
}

// RecordRequest queues the audit event of one authenticated request. It
// never waits, and never drops the event: a request is admitted only while
// the queue has room (AdmitRequest).
func (s *Service) RecordRequest(ev gatehouse.Event) {
	ev.Type = gatehouse.EventRequest
	s.audit.record(s.stamp(ev), false)
}

// ListEvents returns audit events, newest first. f.Actor selects what
// someone did; f.Account what concerns an account (requests made with its
// tokens, and changes to its tokens and record, whoever made them).
// Callers read the events they made and those about their own account;
// others need audit, get, <actor or account> (audit, get, * for all).
// Without either filter, a caller who may not read everything gets the
// events it made. What a caller reads by its own name starts when its
// account was created: an account of the same name deleted before it
// made the earlier events.
func (s *Service) ListEvents(ctx context.Context, p *Principal, f gatehouse.EventFilter, cursor string) (gatehouse.List[gatehouse.Event], error) {
	var zero gatehouse.List[gatehouse.Event]
	if f.Status < 0 || f.Status > 999 {
		return zero, gatehouse.Errorf(gatehouse.EINVALID, "status must be an HTTP status code")
	}
	if f.Actor == "" && f.Account == "" {
		if err := s.authorize(p, "audit", "get", "*"); err != nil {
			f.Actor = p.subject // not allowed everything: default to one's own
		}
	}
	if f.Actor != "" {
		if f.Actor == p.subject {
			p.self("audit", "get", f.Actor)
			s.sinceOwnerCreated(p, &f)
		} else if err := s.authorize(p, "audit", "get", f.Actor); err != nil {
			return zero, err
		}
	}
	if f.Account != "" {
		if f.Account == p.account {
			p.self("audit", "get", f.Account)
			s.sinceOwnerCreated(p, &f)
		} else if err := s.authorize(p, "audit", "get", f.Account); err != nil {
			return zero, err
		}
	}
	if f.Limit <= 0 || f.Limit > 1000 {
		f.Limit = 100
	}
	if cursor != "" {
		id, err := decodeCursor(cursor)
		if err != nil {
			return zero, err
		}
		f.BeforeID = id
	}
	// Read your writes: the events of requests already answered may
	// still sit in the queue.
	s.drainAudit(ctx)
	s.audit.wait()
	want := f.Limit
	f.Limit++ // one more tells whether a next page exists
	var evs []gatehouse.Event
	err := s.store.View(ctx, func(tx gatehouse.Tx) error {
		var err error
		evs, err = tx.ListEvents(ctx, f)
		return err
	})
	if err != nil {
		return zero, err
	}
	out := gatehouse.List[gatehouse.Event]{Items: evs}
	if len(evs) > want {
		out.Items = evs[:want]
		out.NextCursor = encodeCursor(evs[want-1].ID)
	}
	if out.Items == nil {
		out.Items = []gatehouse.Event{}
	}
	return out, nil
}

func encodeCursor(id int64) string {
	return base64.RawURLEncoding.EncodeToString([]byte("e" + strconv.FormatInt(id, 10)))
}

// decodeCursor parses an opaque pagination cursor.
func decodeCursor(c string) (int64, error) {
	bad := gatehouse.Errorf(gatehouse.EINVALID, "invalid cursor")
	if len(c) > 64 {
		return 0, bad
	}
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil || len(b) < 2 || b[0] != 'e' {
		return 0, bad
	}
	id, err := strconv.ParseInt(string(b[1:]), 10, 64)
	if err != nil || id <= 0 {
		return 0, bad
	}
	return id, nil
}

// auditQueue is the bounded asynchronous batcher of request events: the
// request path only appends to memory, under a short lock, and never
// waits; the writer (runAuditWriter) takes everything gathered in one go
// and writes it in a few transactions (group commit).
//
// The queue holds about max request events. While it is full (the store
// has fallen behind by that many: stalled or down), AdmitRequest refuses
// new requests with 503 rather than serve one whose audit event could not
// be kept, or make it wait: they are counted in
// gatehouse_audit_refused_requests_total and logged. Every event of a
// request that was admitted is queued (in-flight requests may take it a
// little past max), and so is every lifecycle event.
type auditQueue struct {
	disabled bool
	metrics  *Metrics
	max      int
	wake     chan struct{} // the queue went from empty to not empty

	mu      sync.Mutex
	idle    *sync.Cond // on mu: written advanced
	buf     []gatehouse.Event
	queued  uint64 // events ever queued
	written uint64 // events ever taken and written (or lost)
	dropped uint64 // requests refused because the queue was full, not yet logged
	depth   atomic.Int64
	taken   int // events taken and being written now
}

// defaultAuditQueue is the default bound: about a second of a busy
// server's requests (a few tens of MiB at most).
const defaultAuditQueue = 32768

func newAuditQueue(size int, disabled bool, m *Metrics) *auditQueue {
	if size <= 0 {
		size = defaultAuditQueue
	}
	q := &auditQueue{disabled: disabled, metrics: m, max: size, wake: make(chan struct{}, 1)}
	q.idle = sync.NewCond(&q.mu)
	m.auditDepth(func() float64 {
		q.mu.Lock()
		defer q.mu.Unlock()
		return float64(len(q.buf) + q.taken)
	})
	return q
}

// record queues ev. It never blocks on the store.
func (q *auditQueue) record(ev gatehouse.Event, lifecycle bool) {
	if q.disabled && !lifecycle {
		return
	}
	q.depth.Add(1)
	q.mu.Lock()
	first := len(q.buf) == 0
	q.buf = append(q.buf, ev)
	q.queued++
	q.mu.Unlock()
	if first {
		select {
		case q.wake <- struct{}{}:
		default: // a wake-up is pending already
		}
	}
}

// take hands over everything queued, putting spare (emptied) in its place.
func (q *auditQueue) take(spare []gatehouse.Event) []gatehouse.Event {
	q.mu.Lock()
	defer q.mu.Unlock()
	out := q.buf
	q.buf = spare[:0]
	q.taken += len(out)
	return out
}

// done marks n taken events written (or lost).
func (q *auditQueue) done(n int) {
	q.mu.Lock()
	q.written += uint64(n)
	q.taken -= n
	q.depth.Add(-int64(n))
	q.idle.Broadcast()
	q.mu.Unlock()
}

// wait returns once every event queued before the call has been written,
// by whichever goroutine took it.
func (q *auditQueue) wait() {
	q.mu.Lock()
	target := q.queued
	for q.written < target {
		q.idle.Wait()
	}
	q.mu.Unlock()
}

// admit reports whether a request may be served: its event will fit.
func (q *auditQueue) admit() bool {
	if q.disabled || q.depth.Load() < int64(q.max) {
		return true
	}
	q.mu.Lock()
	q.dropped++
	q.mu.Unlock()
	q.metrics.auditDropped()
	return false
}

// errAuditBehind refuses a request while the audit trail cannot keep up.
var errAuditBehind = gatehouse.Errorf(gatehouse.EUNAVAILABLE, "the audit trail is behind (the store is not keeping up); try again shortly")

// AdmitRequest returns EUNAVAILABLE while the audit queue is full, so that
// no request is served whose audit event could not be kept. The server
// asks it before handling each authenticated request.
func (s *Service) AdmitRequest() error {
	if !s.audit.admit() {
		return errAuditBehind
	}
	return nil
}

// takeDropped returns and resets the count of refusals not yet logged.
func (q *auditQueue) takeDropped() uint64 {
	q.mu.Lock()
	defer q.mu.Unlock()
	n := q.dropped
	q.dropped = 0
	return n
}

// A batch gathers for auditLinger before it is written: on SQLite an event
// in a batch of 1,000 costs about half what it does in a batch of 100
// (bench: BenchmarkAppendEvents), and these events are acknowledged to no
// one, so a crash loses at most the last auditLinger and a write's worth.
const (
	auditBatch  = 4096                  // events per transaction at most
	auditLinger = 50 * time.Millisecond // how long a batch waits to fill
)

// drainAudit writes what is queued now, in this goroutine; it returns when
// the queue is empty.
//
// What it writes is every request's, not only its caller's: a caller that
// hangs up (ctx cancelled) must not make them fail, so the writes run
// without ctx's cancellation.
func (s *Service) drainAudit(ctx context.Context) {
	ctx = context.WithoutCancel(ctx)
	for {
		batch := s.audit.take(nil)
		if len(batch) == 0 {
			return
		}
		s.writeEvents(ctx, batch)
	}
}

// runAuditWriter is the background audit writer, until ctx ends. Woken by
// the first event after a quiet spell, it lets a batch gather for a few
// milliseconds, then takes the lot: a busy server writes hundreds of
// events per commit, and the request path never hands an event to another
// goroutine one by one.
func (s *Service) runAuditWriter(ctx, bg context.Context) {
	linger := time.NewTimer(auditLinger)
	linger.Stop()
	defer linger.Stop()
	var spare []gatehouse.Event
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.audit.wake:
		}
		linger.Reset(auditLinger)
		select {
		case <-linger.C:
		case <-ctx.Done():
			return // Run's final Flush writes the rest
		}
		batch := s.audit.take(spare)
		s.writeEvents(bg, batch)
		clear(batch) // let the requests' strings go
		spare = batch[:0]
		if n := s.audit.takeDropped(); n > 0 {
			s.log.Error("audit queue full: requests refused with 503 (the store is not keeping up)", "count", n)
		}
	}
}

// writeEvents writes a batch, its alike reads counted (countReads), in
// transactions of at most auditBatch, retrying briefly: these events are
// already acknowledged to their callers.
func (s *Service) writeEvents(ctx context.Context, batch []gatehouse.Event) {
	defer s.audit.done(len(batch))
	rows := countReads(batch)
	for len(rows) > 0 {
		n := min(len(rows), auditBatch)
		s.writeChunk(ctx, rows[:n])
		rows = rows[n:]
	}
}

func (s *Service) writeChunk(ctx context.Context, chunk []gatehouse.Event) {
	var err error
	for attempt := 0; attempt < 5; attempt++ {
		if err = s.store.AppendEvents(ctx, chunk); err == nil {
			return
		}
		time.Sleep(time.Duration(attempt+1) * 50 * time.Millisecond)
	}
	lost := 0
	for _, e := range chunk {
		lost += e.Requests()
	}
	s.metrics.auditLost(lost)
	s.log.Error("audit events lost", "count", lost, "err", err)
}

// countReads folds a batch's alike allowed reads into counted events, in
// place, and returns the events to store. Requests that were allowed, read
// (GET or HEAD) and alike in every field but the time, within one UTC
// minute, become one event with their Count, at the first one's time and
// place in the batch. Every other event (a denial, a write, a lifecycle
// event) is kept as it is, and no count spans one: the events after it
// start new counts. So the trail still holds every request, in order, and
// the requests of each minute, token and route are exact sums of counts.
func countReads(batch []gatehouse.Event) []gatehouse.Event {
	var open map[gatehouse.Event]int // a counted read's key: its position in out
	out := batch[:0]
	for _, e := range batch {
		if !countable(e) {
			clear(open)
			out = append(out, e)
			continue
		}
		k := e
		k.ID, k.Time, k.Count = 0, e.Time.Truncate(time.Minute), 0
		if i, ok := open[k]; ok {
			out[i].Count = out[i].Requests() + e.Requests()
			continue
		}
		if open == nil {
			open = make(map[gatehouse.Event]int)
		}
		open[k] = len(out)
		out = append(out, e)
	}
	return out
}

// countable: an allowed read.
func countable(e gatehouse.Event) bool {
	return e.Type == gatehouse.EventRequest && e.Decision == "allow" && (e.Method == "GET" || e.Method == "HEAD")
}

// usageTracker coalesces token uses into periodic lastUsedAt writes.
type usageTracker struct {
	mu      sync.Mutex
	pending map[string]gatehouse.TokenUse
	// flushing is held while a batch is taken and written, so that Flush
	// waits for a write already under way.
	flushing sync.Mutex
}

func newUsageTracker() *usageTracker {
	return &usageTracker{pending: map[string]gatehouse.TokenUse{}}
}

func (u *usageTracker) add(use gatehouse.TokenUse) {
	u.mu.Lock()
	u.pending[use.ID] = use
	u.mu.Unlock()
}

func (u *usageTracker) take() []gatehouse.TokenUse {
	u.mu.Lock()
	defer u.mu.Unlock()
	if len(u.pending) == 0 {
		return nil
	}
	out := make([]gatehouse.TokenUse, 0, len(u.pending))
	for _, use := range u.pending {
		out = append(out, use)
	}
	clear(u.pending)
	return out
}

func (s *Service) flushUsage(ctx context.Context) {
	s.usage.flushing.Lock()
	defer s.usage.flushing.Unlock()
	if uses := s.usage.take(); len(uses) > 0 {
		if err := s.store.TouchTokens(ctx, uses); err != nil {
			s.log.Error("recording token use", "err", err)
		}
	}
}

// Flush writes every queued audit event and token use now, including
// those the background writer has already taken.
func (s *Service) Flush(ctx context.Context) {
	s.drainAudit(ctx)
	s.audit.wait()
	s.flushUsage(ctx)
}

// reapOnce does the reaper's work once: expired tokens, old login attempts
// and old change-feed entries. With several replicas on one store
// (gatehouse.Locker) one of them at a time does it; the others skip.
func (s *Service) reapOnce(ctx context.Context) {
	if l, ok := s.store.(gatehouse.Locker); ok {
		release, held, err := l.TryLock(ctx, "reaper")
		if err != nil {
			s.log.Error("reaper: cannot take its lock", "err", err)
			return
		}
		if !held {
			return // another replica reaps
		}
		defer release()
	}
	// This replica's own uses first, so that the idle timeouts reaped see
	// them.
	s.flushUsage(ctx)
	if n, err := s.Reap(ctx); err != nil {
		s.log.Error("reaper", "err", err)
	} else if n > 0 {
		s.log.Info("reaper removed expired tokens", "count", n)
	}
	if _, err := s.pruneLoginAttempts(ctx); err != nil {
		s.log.Error("pruning login attempts", "err", err)
	}
	if _, err := s.pruneExchangeReplays(ctx); err != nil {
		s.log.Error("pruning exchange replays", "err", err)
	}
	if err := s.pruneFeed(ctx); err != nil {
		s.log.Error("pruning the change feed", "err", err)
	}
}

// Run runs the background work until ctx ends: the audit writer and the
// reaper (each in a goroutine of its own, so that a long reap never holds
// up the audit trail), the lastUsedAt writer, and the store monitor behind
// Ready. On the way out it flushes what is queued, so nothing acknowledged
// is lost on a clean shutdown.
func (s *Service) Run(ctx context.Context, reaperInterval time.Duration) {
	if reaperInterval <= 0 {
		reaperInterval = time.Minute
	}
	defer s.monitorStore(ctx)() // waits for the monitor's last probe
	if s.follow.active {
		defer s.startFollowing(ctx)()
	}
	// Background writes must outlive ctx for the final flush.
	bg := context.WithoutCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { s.runAuditWriter(ctx, bg) })
	wg.Go(func() { s.runNotifications(ctx, bg) })
	wg.Go(func() {
		reap := time.NewTicker(reaperInterval)
		defer reap.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-reap.C:
				s.reapOnce(bg)
			}
		}
	})
	usage := time.NewTicker(time.Second)
	defer usage.Stop()
	for {
		select {
		case <-ctx.Done():
			wg.Wait()
			s.Flush(bg)
			if n := s.audit.takeDropped(); n > 0 {
				s.log.Error("audit queue full: requests refused with 503 (the store is not keeping up)", "count", n)
			}
			return
		case <-usage.C:
			s.flushUsage(bg)
		}
	}
}

// sinceOwnerCreated narrows a read of p's own events (by its name) to those
// since its account was created.
func (s *Service) sinceOwnerCreated(p *Principal, f *gatehouse.EventFilter) {
	if p.owner != nil && f.Since.Before(p.owner.CreatedAt) {
		f.Since = p.owner.CreatedAt
	}
}
