package service

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/token"
)

// Idle timeouts. A use reaches the store at most once a minute per token
// and replica (Touch) and is written within a second, so a token counts
// as idle only idleSlack after its timeout: one in constant use is never
// refused for a use not yet recorded.
const (
	minIdleTimeout = 60 * 60            // an hour
	maxIdleTimeout = 366 * 24 * 60 * 60 // a year and a day
	idleSlack      = 2 * time.Minute
)

// idleTimeoutFor is a mint's idle timeout in seconds: the request's, or
// the server's default when it gives none; 0 is none.
func (s *Service) idleTimeoutFor(req *int64) (int64, error) {
	if req == nil {
		return int64(s.idleTimeout / time.Second), nil
	}
	if *req != 0 && (*req < minIdleTimeout || *req > maxIdleTimeout) {
		return 0, gatehouse.Errorf(gatehouse.EINVALID, "idleTimeout must be 0 (none) or between %d (an hour) and %d seconds (a year)", minIdleTimeout, maxIdleTimeout)
	}
	return *req, nil
}

// idle reports whether ct looks idle at now (unix nanos) by what this
// replica knows of its uses. Other replicas' uses reach it only through
// the store, so a token that looks idle is confirmed there (confirmIdle)
// before it is refused.
func (ct *cachedToken) idle(now int64) bool {
	return ct.idleNanos != 0 && now-max(ct.lastUse.Load(), ct.touched.Load()) >= ct.idleNanos+int64(idleSlack)
}

// idleRemoval is how a token unused for its idle timeout is removed:
// audited token.idle_expired, notified as expired.
func idleRemoval(detail, actor string) removal {
	return removal{event: gatehouse.EventTokenIdleExpired, detail: detail, actor: actor, notify: gatehouse.NotifyTokenExpired}
}

// errIdle answers a token unused for its idle timeout.
var errIdle = gatehouse.Errorf(gatehouse.EUNAUTHORIZED, "token expired: unused for longer than its idle timeout")

// confirmIdle asks the store whether ct, which looks idle to this
// replica, is idle; if it is, it removes it (audited token.idle_expired)
// and reports true. Otherwise it notes the last use the store knows, so
// that the next request does not ask again.
func (s *Service) confirmIdle(ctx context.Context, ct *cachedToken) (bool, error) {
	var rec gatehouse.Token
	err := s.store.View(ctx, func(tx gatehouse.Tx) error {
		var err error
		rec, err = tx.GetToken(ctx, ct.rec.ID)
		return err
	})
	if gatehouse.IsCode(err, gatehouse.ENOTFOUND) {
		return true, nil // gone meanwhile (reaped or revoked)
	}
	if err != nil {
		return false, err
	}
	last := max(rec.LastUsedAt.UnixNano(), rec.IssuedAt.UnixNano())
	ct.lastUse.Store(max(ct.lastUse.Load(), last))
	if !ct.idle(s.now().UnixNano()) {
		return false, nil
	}
	err = s.write(ctx, nil, func(tx gatehouse.Tx, c *change) error {
		_, events, err := s.removeTx(ctx, tx, c, nil, gatehouse.TokenFilter{ID: rec.ID, IdleAt: s.now().Add(-idleSlack)},
			idleRemoval("presented after its idle timeout", "system:gatehouse"))
		if err != nil {
			return err
		}
		return tx.AppendEvents(ctx, events)
	})
	return err == nil, err
}

// rotationCache holds the tokens rotated away, by id, for the request
// path: a token it holds is refused as reuse, not as unknown.
type rotationCache struct {
	mu sync.RWMutex
	m  map[token.ID]*rotated
}

type rotated struct {
	id         string
	hash       [32]byte
	family     string
	graceUntil int64 // unix nanos; 0: no grace
}

func newRotationCache() *rotationCache { return &rotationCache{m: map[token.ID]*rotated{}} }

func (c *rotationCache) get(id token.ID) *rotated {
	c.mu.RLock()
	r := c.m[id]
	c.mu.RUnlock()
	return r
}

func (c *rotationCache) put(r gatehouse.Rotation) {
	id, err := token.ParseID(r.ID)
	if err != nil {
		return // not a token's id: nothing could present it
	}
	e := &rotated{id: r.ID, family: r.Family}
	if !r.GraceUntil.IsZero() {
		e.graceUntil = r.GraceUntil.UnixNano()
	}
	copy(e.hash[:], r.Hash)
	c.mu.Lock()
	c.m[id] = e
	c.mu.Unlock()
}

func (c *rotationCache) delete(idStr string) {
	if id, err := token.ParseID(idStr); err == nil {
		c.mu.Lock()
		delete(c.m, id)
		c.mu.Unlock()
	}
}

// ids returns the ids of every rotation held.
func (c *rotationCache) ids() []string {
	c.mu.RLock()
	defer c.mu.RUnlock()
	out := make([]string, 0, len(c.m))
	for _, r := range c.m {
		out = append(out, r.id)
	}
	return out
}

// reused is authenticate's answer to a token rotated away: its secret
// verified against what was kept of it.
type reused struct{ id string }

func (*reused) Error() string { return "rotated token presented again" }

// errReused answers a token rotated away and presented again.
var errReused = gatehouse.Errorf(gatehouse.EUNAUTHORIZED, "this token was rotated away and presented again: its successors have been revoked, as a stolen token's would be; mint a new token")

// reuseDetected treats the family of a rotated-away token presented again
// as compromised (GitLab's rule): every live token of the family is
// revoked, and the reuse is audited as token.reuse_detected.
func (s *Service) reuseDetected(ctx context.Context, id string) error {
	return s.write(ctx, nil, func(tx gatehouse.Tx, c *change) error {
		r, err := tx.GetRotation(ctx, id)
		if gatehouse.IsCode(err, gatehouse.ENOTFOUND) {
			return nil // pruned meanwhile: its family is gone or it expired
		}
		if err != nil {
			return err
		}
		// Each token of the family is revoked and notified as reused.
		why := "rotated token " + id + " presented again"
		gone, events, err := s.removeFamilyTx(ctx, tx, c, r.Family,
			removal{event: gatehouse.EventTokenRevoked, detail: why, actor: "system:gatehouse", notify: gatehouse.NotifyTokenRevoked})
		if err != nil {
			return err
		}
		if err := s.notifyTokens(ctx, tx, gatehouse.NotifyTokenReuseDetected, gone, why); err != nil {
			return err
		}
		ev := s.stamp(gatehouse.Event{
			Type: gatehouse.EventTokenReuseDetected, Actor: "system:gatehouse", TokenID: id, TokenKind: gatehouse.KindAPI,
			Account: r.Account, Resource: "accounts", Object: r.Account,
			Detail: "rotated away " + r.RotatedAt.UTC().Format(time.RFC3339) + "; family " + r.Family + ": " + strconv.Itoa(len(events)) + " live token(s) revoked",
		})
		return tx.AppendEvents(ctx, append([]gatehouse.Event{ev}, events...))
	})
}

// removeFamilyTx removes every token of a rotation family, as r says
// (a reuse, a leak report). The family is gone, so what was kept of its
// rotations has nothing left to protect: it is forgotten too, and a stale
// copy presented again costs no further write.
func (s *Service) removeFamilyTx(ctx context.Context, tx gatehouse.Tx, c *change, family string, r removal) ([]gatehouse.Token, []gatehouse.Event, error) {
	gone, events, err := s.removeTx(ctx, tx, c, nil, gatehouse.TokenFilter{Family: family}, r)
	if err != nil {
		return nil, nil, err
	}
	return gone, events, pruneRotationsTx(ctx, tx, c, s.now())
}

// pruneRotationsTx forgets, inside tx, the rotations kept long enough
// or whose family has no token left (Tx.PruneRotations), memory too.
func pruneRotationsTx(ctx context.Context, tx gatehouse.Tx, c *change, now time.Time) error {
	pruned, err := tx.PruneRotations(ctx, now)
	for _, id := range pruned {
		c.dropRotation(id)
	}
	return err
}

// Leak reports.
const (
	// maxLeakBatch bounds the entries of one report.
	maxLeakBatch = 100
	// leakReportsPerMinute bounds the reports one address may send.
	leakReportsPerMinute = 30
)

// ReportLeaked revokes every live token that a leak report names, by its
// whole text or by the SHA-256 of its whole text; a whole token that was
// rotated away revokes its family (its successors), as its reuse would. It needs no
// credential: whoever found a token may report it, as with GitHub's
// credential revocation API. Its answer never says whether anything
// matched (a token it names is revoked, so knowing would not help anyone
// holding one); each revocation is audited as token.leaked with the
// reporter's address. It is limited per address.
func (s *Service) ReportLeaked(ctx context.Context, from string, r gatehouse.LeakReport) (int, error) {
	n := len(r.Tokens) + len(r.SHA256)
	whole, hashes, err := parseLeakReport(r)
	if err != nil {
		return 0, err
	}
	if !s.leakLimit.allow(from, s.now()) {
		return 0, gatehouse.Errorf(gatehouse.ETHROTTLED, "too many leak reports from this address; try again in a minute")
	}
	// Found in a read, off the write path: a report that names nothing
	// (most of them) never waits for the writer nor holds it up.
	ids := map[string]bool{}
	families := map[string]string{} // family: the rotated token reported
	err = s.store.View(ctx, func(tx gatehouse.Tx) error {
		clear(ids)
		clear(families)
		for _, t := range whole {
			if t.Instance != "" && t.Instance != s.instance {
				continue
			}
			// A token rotated away (in its grace period or after) hands
			// its family down: whoever holds it may have rotated it, so
			// every token of the family goes, as on reuse.
			if r, err := tx.GetRotation(ctx, t.ID.String()); err == nil {
				if token.Verify(t.Secret, r.Hash) {
					families[r.Family] = r.ID
				}
				continue
			} else if !gatehouse.IsCode(err, gatehouse.ENOTFOUND) {
				return err
			}
			rec, err := tx.GetToken(ctx, t.ID.String())
			if gatehouse.IsCode(err, gatehouse.ENOTFOUND) {
				continue
			}
			if err != nil {
				return err
			}
			if token.Verify(t.Secret, rec.Hash) {
				ids[rec.ID] = true
			}
		}
		for _, h := range hashes {
			toks, err := tx.ListTokens(ctx, gatehouse.TokenFilter{TextHash: h})
			if err != nil {
				return err
			}
			for _, t := range toks {
				ids[t.ID] = true
			}
		}
		return nil
	})
	if err == nil && len(ids)+len(families) > 0 {
		err = s.write(ctx, nil, func(tx gatehouse.Tx, c *change) error {
			var events []gatehouse.Event
			leaked := func(detail string) removal {
				return removal{event: gatehouse.EventTokenLeaked, detail: detail, actor: "system:leak-report", from: from, notify: gatehouse.NotifyTokenLeaked}
			}
			for id := range ids {
				// Rotated since the read: its family goes, as it would
				// have had the report come a moment later.
				if r, err := tx.GetRotation(ctx, id); err == nil {
					families[r.Family] = id
					continue
				} else if !gatehouse.IsCode(err, gatehouse.ENOTFOUND) {
					return err
				}
				// By id: the token found above, if it is still there.
				_, evs, err := s.removeTx(ctx, tx, c, nil, gatehouse.TokenFilter{ID: id}, leaked("reported leaked; revoked"))
				if err != nil {
					return err
				}
				events = append(events, evs...)
			}
			for family, id := range families {
				_, evs, err := s.removeFamilyTx(ctx, tx, c, family, leaked("rotated token "+id+" reported leaked; its family revoked"))
				if err != nil {
					return err
				}
				events = append(events, evs...)
			}
			return tx.AppendEvents(ctx, events)
		})
	}
	if err != nil {
		return 0, err
	}
	return n, nil
}

// parseLeakReport checks a leak report: 1 to maxLeakBatch entries, each
// whole token well-formed (format and checksum), each hash 64 lowercase
// hexadecimal digits. Its errors name the entry by index, never by what
// it holds: that may be a live secret.
func parseLeakReport(r gatehouse.LeakReport) ([]token.Token, [][]byte, error) {
	n := len(r.Tokens) + len(r.SHA256)
	if n == 0 {
		return nil, nil, gatehouse.Errorf(gatehouse.EINVALID, "give tokens (whole tokens) or sha256 (hex SHA-256 of whole tokens)")
	}
	if n > maxLeakBatch {
		return nil, nil, gatehouse.Errorf(gatehouse.EINVALID, "at most %d entries per report", maxLeakBatch)
	}
	whole := make([]token.Token, 0, len(r.Tokens))
	for i, raw := range r.Tokens {
		t, err := token.Parse(raw)
		if err != nil {
			return nil, nil, gatehouse.Errorf(gatehouse.EINVALID, "tokens[%d] is not a Gatehouse token (its format or checksum is wrong)", i)
		}
		whole = append(whole, t)
	}
	hashes := make([][]byte, 0, len(r.SHA256))
	for i, h := range r.SHA256 {
		b, err := hex.DecodeString(h)
		if err != nil || len(b) != sha256.Size || hex.EncodeToString(b) != h {
			return nil, nil, gatehouse.Errorf(gatehouse.EINVALID, "sha256[%d] must be 64 lowercase hexadecimal digits", i)
		}
		hashes = append(hashes, b)
	}
	return whole, hashes, nil
}

// addressLimiter counts what each client did in the current minute (a
// fixed window). An IPv6 client is counted by its /64, the smallest block
// a site is given, so that one host cannot pose as millions of clients.
// It tracks at most max clients a minute (maxTracked when 0): beyond
// that a new one is refused until the next window, which bounds memory;
// a sender with that many /64s can delay others by up to a minute.
type addressLimiter struct {
	limit  int
	max    int
	mu     sync.Mutex
	window time.Time
	counts map[string]int
}

func (l *addressLimiter) allow(addr string, now time.Time) bool {
	key := clientKey(addr)
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Sub(l.window) >= time.Minute || now.Before(l.window) || l.counts == nil {
		l.window, l.counts = now, map[string]int{}
	}
	limit := l.max
	if limit == 0 {
		limit = maxTracked
	}
	if l.counts[key] >= l.limit || len(l.counts) >= limit && l.counts[key] == 0 {
		return false
	}
	l.counts[key]++
	return true
}

// clientKey is what addressLimiter counts addr under: the address, or
// for IPv6 its /64.
func clientKey(addr string) string {
	a, err := netip.ParseAddr(addr)
	if err != nil || a.Is4() || a.Is4In6() {
		return addr
	}
	p, err := a.Prefix(64)
	if err != nil {
		return addr
	}
	return p.String()
}
