package service

import (
	"context"
	"encoding/base64"
	"strconv"
	"sync"
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
// blocks (back-pressure) when the queue is full rather than drop.
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
// events it made.
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
		} else if err := s.authorize(p, "audit", "get", f.Actor); err != nil {
			return zero, err
		}
	}
	if f.Account != "" {
		if f.Account == p.account {
			p.self("audit", "get", f.Account)
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
// request path only enqueues; Run writes batches (group commit). When the
// queue is full, record waits (back-pressure) and counts the wait.
type auditQueue struct {
	ch       chan gatehouse.Event
	disabled bool
	metrics  *Metrics

	// pending counts events queued but not yet written, so that Flush
	// can wait for a batch the writer has already taken.
	mu      sync.Mutex
	idle    *sync.Cond
	pending int
}

func (q *auditQueue) done(n int) {
	q.mu.Lock()
	q.pending -= n
	if q.pending == 0 {
		q.idle.Broadcast()
	}
	q.mu.Unlock()
}

func (q *auditQueue) wait() {
	q.mu.Lock()
	for q.pending > 0 {
		q.idle.Wait()
	}
	q.mu.Unlock()
}

func newAuditQueue(size int, disabled bool, m *Metrics) *auditQueue {
	if size <= 0 {
		size = 4096
	}
	q := &auditQueue{ch: make(chan gatehouse.Event, size), disabled: disabled, metrics: m}
	q.idle = sync.NewCond(&q.mu)
	m.auditDepth(func() float64 { return float64(len(q.ch)) })
	return q
}

func (q *auditQueue) record(ev gatehouse.Event, lifecycle bool) {
	if q.disabled && !lifecycle {
		return
	}
	q.mu.Lock()
	q.pending++
	q.mu.Unlock()
	select {
	case q.ch <- ev:
	default:
		q.metrics.auditWait()
		q.ch <- ev
	}
}

const (
	auditBatch  = 512                  // events per transaction at most
	auditLinger = 5 * time.Millisecond // how long a batch waits to fill
)

// drain writes what is queued now, in batches; it returns when the queue
// is empty.
func (s *Service) drainAudit(ctx context.Context) {
	for {
		batch := make([]gatehouse.Event, 0, 64)
	fill:
		for len(batch) < auditBatch {
			select {
			case ev := <-s.audit.ch:
				batch = append(batch, ev)
			default:
				break fill
			}
		}
		if len(batch) == 0 {
			return
		}
		s.writeEvents(ctx, batch)
	}
}

// writeEvents writes a batch, retrying briefly: these events are already
// acknowledged to their callers.
func (s *Service) writeEvents(ctx context.Context, batch []gatehouse.Event) {
	defer s.audit.done(len(batch))
	var err error
	for attempt := 0; attempt < 5; attempt++ {
		if err = s.store.AppendEvents(ctx, batch); err == nil {
			return
		}
		time.Sleep(time.Duration(attempt+1) * 50 * time.Millisecond)
	}
	s.metrics.auditLost(len(batch))
	s.log.Error("audit events lost", "count", len(batch), "err", err)
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

// Run runs the background work until ctx ends: the audit writer, the
// lastUsedAt writer, the reaper and the store monitor behind Ready. On the
// way out it flushes what is queued, so nothing acknowledged is lost on a
// clean shutdown.
func (s *Service) Run(ctx context.Context, reaperInterval time.Duration) {
	if reaperInterval <= 0 {
		reaperInterval = time.Minute
	}
	defer s.monitorStore(ctx)() // waits for the monitor's last probe
	if s.follow.active {
		defer s.startFollowing(ctx)()
	}
	reap := time.NewTicker(reaperInterval)
	usage := time.NewTicker(time.Second)
	defer reap.Stop()
	defer usage.Stop()
	// Background writes must outlive ctx for the final flush.
	bg := context.WithoutCancel(ctx)
	for {
		select {
		case <-ctx.Done():
			s.Flush(bg)
			return
		case ev := <-s.audit.ch:
			// Group commit: gather what arrives within a few milliseconds
			// into one transaction, so that a busy server writes a few
			// hundred events per commit rather than one.
			batch := append(make([]gatehouse.Event, 0, 64), ev)
			linger := time.NewTimer(auditLinger)
		more:
			for len(batch) < auditBatch {
				select {
				case ev := <-s.audit.ch:
					batch = append(batch, ev)
				case <-linger.C:
					break more
				case <-ctx.Done():
					break more
				}
			}
			linger.Stop()
			s.writeEvents(bg, batch)
		case <-usage.C:
			s.flushUsage(bg)
			if s.clock != nil {
				s.clock.rebase()
			}
		case <-reap.C:
			s.reapOnce(bg)
		}
	}
}
