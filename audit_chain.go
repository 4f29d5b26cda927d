package gatehouse

import (
	"cmp"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"math"
	"strconv"
	"strings"
	"time"
)

// The audit trail is a hash chain: each stored event holds the hash of its
// predecessor (in id order) and its own hash,
//
//	hash = SHA-256(prev || canonical(event))
//
// so that changing, removing or inserting a stored event breaks the chain
// at the first event after the change. The rule and the encoding live here,
// once: the stores compute each hash inside the transaction that appends
// the event (they assign the ids), and the service recomputes them to
// verify. docs/design.md ("The audit chain") describes the encoding for a
// script of one's own.

// ChainEncodingVersion is the first byte of the canonical encoding of an
// event that stands for one request or none; ChainEncodingCounted that of
// an event with a Count above one, whose encoding ends in the count. A
// change of the encoding gets a new version; the test vectors in
// audit_chain_test.go keep these from changing silently.
const (
	ChainEncodingVersion = 1
	ChainEncodingCounted = 2
)

// ChainHash is a SHA-256 of the audit chain.
type ChainHash [32]byte

// String is the hash in lowercase hex, as the API and the CLI show it.
func (h ChainHash) String() string { return hex.EncodeToString(h[:]) }

// MarshalText makes a ChainHash lowercase hex in JSON.
func (h ChainHash) MarshalText() ([]byte, error) { return []byte(h.String()), nil }

// UnmarshalText reads ParseChainHash's form.
func (h *ChainHash) UnmarshalText(b []byte) error {
	v, err := ParseChainHash(string(b))
	if err != nil {
		return err
	}
	*h = v
	return nil
}

// ParseChainHash reads 64 hex digits (either case).
func ParseChainHash(s string) (ChainHash, error) {
	var h ChainHash
	if len(s) != 2*len(h) {
		return h, Errorf(EINVALID, "a chain hash is 64 hex digits")
	}
	if _, err := hex.Decode(h[:], []byte(s)); err != nil {
		return h, Errorf(EINVALID, "a chain hash is 64 hex digits")
	}
	return h, nil
}

// chainTime is Time as the stores keep it: Unix nanoseconds, the zero time
// as 0, times beyond what int64 nanoseconds hold clamped to its ends.
func chainTime(t time.Time) int64 {
	switch {
	case t.IsZero():
		return 0
	case t.Before(time.Unix(0, math.MinInt64)):
		return math.MinInt64
	case t.After(time.Unix(0, math.MaxInt64)):
		return math.MaxInt64
	}
	return t.UnixNano()
}

// AppendCanonicalEvent appends the canonical encoding of e to b:
//
//	byte    ChainEncodingVersion (1), or ChainEncodingCounted (2) when
//	        Count is above one
//	int64   ID, big-endian
//	int64   Time, Unix nanoseconds (UTC; the zero time is 0), big-endian
//	int64   Status, big-endian
//	16 strings, each a uint32 big-endian byte length and the bytes, in this
//	order: Type, Actor, TokenID, TokenKind, Method, Path, Resource, Action,
//	Object, Decision, Via, Route, Account, RemoteAddr, UserAgent, Detail
//	int64   Count, big-endian: only in version 2
//
// Every field has a fixed place and every string its length, so no two
// events share an encoding; an event of one request encodes as it did
// before counts existed.
func AppendCanonicalEvent(b []byte, e Event) []byte {
	version := byte(ChainEncodingVersion)
	if e.Count > 1 {
		version = ChainEncodingCounted
	}
	b = append(b, version)
	b = binary.BigEndian.AppendUint64(b, uint64(e.ID))
	b = binary.BigEndian.AppendUint64(b, uint64(chainTime(e.Time)))
	b = binary.BigEndian.AppendUint64(b, uint64(int64(e.Status)))
	for _, s := range [...]string{e.Type, e.Actor, e.TokenID, string(e.TokenKind), e.Method, e.Path, e.Resource, e.Action,
		e.Object, e.Decision, e.Via, e.Route, e.Account, e.RemoteAddr, e.UserAgent, e.Detail} {
		b = binary.BigEndian.AppendUint32(b, uint32(len(s)))
		b = append(b, s...)
	}
	if version == ChainEncodingCounted {
		b = binary.BigEndian.AppendUint64(b, uint64(int64(e.Count)))
	}
	return b
}

// ChainHasher computes chain hashes, reusing one buffer: the stores hash a
// whole batch with one. The zero value is ready; it is not safe for
// concurrent use.
type ChainHasher struct{ buf []byte }

// Next returns the hash of e following prev: SHA-256(prev ||
// canonical(e)).
func (c *ChainHasher) Next(prev ChainHash, e Event) ChainHash {
	c.buf = append(c.buf[:0], prev[:]...)
	c.buf = AppendCanonicalEvent(c.buf, e)
	return sha256.Sum256(c.buf)
}

// ChainNext is ChainHasher.Next with a buffer of its own.
func ChainNext(prev ChainHash, e Event) ChainHash {
	var c ChainHasher
	return c.Next(prev, e)
}

// AuditChain is the state of the chain that a store keeps beside the
// events, updated in the transactions that append and prune them.
type AuditChain struct {
	// LegacyID: events with an id up to it were written before the store
	// kept the chain (by an older version) and are outside it.
	LegacyID int64
	// StartID and StartHash are where the kept chain starts: events with
	// an id up to StartID are outside it (legacy, or pruned), and the
	// first event after StartID follows StartHash. That is the zero hash
	// until a prune; then the hash of the last event pruned, so the chain
	// still verifies from the oldest event kept.
	StartID   int64
	StartHash ChainHash
	// HeadID and HeadHash are the newest event of the chain and its hash;
	// StartID and StartHash while the chain has no event.
	HeadID   int64
	HeadHash ChainHash
}

// ChainedEvent is a stored event with the links its row holds.
type ChainedEvent struct {
	Event
	// Linked is false for a row without links: written before the
	// chain, or by something that bypassed the store.
	Linked bool
	// Unreadable is true for a row whose stored values are not of their
	// columns' types (SQLite keeps whatever is written): changed outside
	// Gatehouse, it cannot be what was hashed.
	Unreadable bool
	Prev       ChainHash // the hash the row says its predecessor has
	Hash       ChainHash // the row's own hash
}

// ChainVerifier recomputes a chain event by event, in id order: the store
// pages the events and the verifier holds only what it needs, so a
// verification of any length runs in constant memory. Start it with
// NewChainVerifier, feed it every stored event (Check), then Finish.
type ChainVerifier struct {
	chain   AuditChain
	anchor  *ChainAnchor
	hasher  ChainHasher
	expect  ChainHash // the hash the next event must follow
	lastID  int64
	firstID int64 // the chain's first event kept, 0 before one
	res     ChainVerification
	stopped bool
}

// ChainAnchor is a head exported earlier: the event ID had hash Hash.
type ChainAnchor struct {
	ID   int64
	Hash ChainHash
}

// String is the anchor as the API takes it: "<id>:<hex hash>".
func (a ChainAnchor) String() string { return strconv.FormatInt(a.ID, 10) + ":" + a.Hash.String() }

// ParseChainAnchor reads "<id>:<hex hash>", the anchor field of a
// verification.
func ParseChainAnchor(s string) (ChainAnchor, error) {
	bad := Errorf(EINVALID, "an anchor is <event id>:<64 hex digits>, as verify prints it")
	idText, hashText, ok := strings.Cut(s, ":")
	if !ok || len(idText) == 0 || len(idText) > 19 {
		return ChainAnchor{}, bad
	}
	id, err := strconv.ParseInt(idText, 10, 64)
	if err != nil || id < 0 || strconv.FormatInt(id, 10) != idText {
		return ChainAnchor{}, bad
	}
	h, err := ParseChainHash(hashText)
	if err != nil {
		return ChainAnchor{}, bad
	}
	return ChainAnchor{ID: id, Hash: h}, nil
}

// ChainVerification is the answer of a verification of the audit chain.
type ChainVerification struct {
	// OK: every kept event fits the chain, the chain ends at the head the
	// store records, and the anchor, if one was given, is in it.
	OK bool `json:"ok"`
	// Events is how many events of the chain were checked (and fit),
	// up to the first that does not when OK is false.
	Events int64 `json:"events"`
	// Head and HeadID are the chain's newest event and its hash; Anchor
	// is the two as an anchor to export and check later. Only when OK.
	Head   *ChainHash `json:"head,omitempty"`
	HeadID int64      `json:"headId,omitempty"`
	Anchor string     `json:"anchor,omitempty"`
	// FirstBadID is the first event that does not fit, and Problem says
	// how. Only when not OK.
	FirstBadID int64  `json:"firstBadId,omitempty"`
	Problem    string `json:"problem,omitempty"`
	// StartID and StartHash are where the kept chain starts: the last
	// event pruned (0 and the zero hash before any prune).
	StartID   int64     `json:"startId"`
	StartHash ChainHash `json:"startHash"`
	// Unchained counts the events kept from before the chain began
	// (written by a version without it): they are not verified.
	Unchained int64 `json:"unchained"`
	// AnchorChecked says the anchor given was found in the chain with
	// its hash.
	AnchorChecked bool `json:"anchorChecked,omitempty"`
}

// NewChainVerifier starts a verification of the chain whose state the
// store records as chain, checking anchor too when it is not nil.
func NewChainVerifier(chain AuditChain, anchor *ChainAnchor) *ChainVerifier {
	v := &ChainVerifier{chain: chain, anchor: anchor, expect: chain.StartHash}
	v.res.StartID, v.res.StartHash = chain.StartID, chain.StartHash
	// The boundaries are rows like any other, as open to tampering: only
	// states the store can reach are believed. Until a prune reaches the
	// chain it starts right after the legacy boundary, at the zero hash;
	// after one, at a chained event past that boundary, and nothing at or
	// before it is kept (a prune deletes every older event, the legacy
	// ones first).
	switch {
	case chain.StartID < chain.LegacyID,
		chain.StartID == chain.LegacyID && chain.StartHash != (ChainHash{}):
		v.fail(chain.StartID, "the chain's start and the legacy boundary disagree: a boundary was changed")
		return v
	}
	if anchor != nil && anchor.ID > chain.LegacyID && anchor.ID == chain.StartID && anchor.Hash == chain.StartHash {
		// The anchor is the chain's start: the last event pruned, or the
		// empty chain.
		v.res.AnchorChecked = true
	}
	return v
}

func (v *ChainVerifier) fail(id int64, problem string) bool {
	v.res.FirstBadID, v.res.Problem, v.stopped = id, problem, true
	return false
}

// Check takes the next stored event, in id order, and reports whether the
// verification goes on: false once an event does not fit (Finish then
// says which).
func (v *ChainVerifier) Check(e ChainedEvent) bool {
	if v.stopped {
		return false
	}
	if e.ID <= v.lastID {
		return v.fail(e.ID, "events are not in id order")
	}
	v.lastID = e.ID
	switch {
	case e.Unreadable:
		return v.fail(e.ID, "the event's stored values are not of their types: it was changed outside Gatehouse")
	case e.ID <= v.chain.LegacyID && e.Linked:
		return v.fail(e.ID, "a chained event among those from before the chain: its boundary was moved")
	case e.ID <= v.chain.LegacyID && v.chain.StartID > v.chain.LegacyID:
		return v.fail(e.ID, "an event from before the chain, kept past a prune that deletes every older event")
	case e.ID <= v.chain.LegacyID:
		v.res.Unchained++
		return true
	case e.ID <= v.chain.StartID:
		return v.fail(e.ID, "an event before the chain's start, where pruning left none")
	case e.ID > v.chain.HeadID:
		return v.fail(e.ID, "an event after the head the store records")
	case !e.Linked:
		return v.fail(e.ID, "an event without a link, inside the chain")
	case e.Prev != v.expect:
		return v.fail(e.ID, "the event does not follow the one before it (an event before it was removed, inserted or changed)")
	}
	if v.hasher.Next(v.expect, e.Event) != e.Hash {
		return v.fail(e.ID, "the event is not what was recorded (a field, its id or its hash was changed)")
	}
	if v.anchor != nil && e.ID == v.anchor.ID {
		if e.Hash != v.anchor.Hash {
			return v.fail(e.ID, "the anchor's event has another hash now: the chain was rewritten up to it")
		}
		v.res.AnchorChecked = true
	}
	if v.firstID == 0 {
		v.firstID = e.ID
	}
	v.expect = e.Hash
	v.res.Events++
	return true
}

// lastChained is the id of the last event of the chain checked, the start
// before one.
func (v *ChainVerifier) lastChained() int64 {
	if v.res.Events == 0 {
		return v.chain.StartID
	}
	return v.lastID
}

// Finish ends the verification after the last event and returns its
// answer.
func (v *ChainVerifier) Finish() ChainVerification {
	res := v.res
	if v.stopped {
		return res
	}
	switch {
	case v.lastChained() != v.chain.HeadID || v.expect != v.chain.HeadHash:
		res.FirstBadID, res.Problem = v.chain.HeadID, "the newest events are gone: the chain ends before the head the store records"
		return res
	case v.anchor != nil && !res.AnchorChecked:
		res.FirstBadID = v.anchor.ID
		switch {
		case v.anchor.ID <= v.chain.LegacyID:
			res.Problem = "the anchor is among the events from before the chain, which it does not cover: no exported head can be there"
		case v.anchor.ID > v.chain.HeadID:
			res.Problem = "the anchor's event is gone: the chain ends before it (the newest events were removed)"
		case v.anchor.ID == v.chain.StartID:
			res.Problem = "the anchor's event was pruned with another hash than the anchor's: the chain was rewritten up to it"
		case v.anchor.ID < v.chain.StartID:
			// Nothing kept can be shown to follow the anchor: the first
			// event kept is the first that does not fit.
			res.FirstBadID = cmp.Or(v.firstID, v.chain.HeadID)
			res.Problem = "the anchor is older than the oldest event kept (pruned): it cannot be checked any more; check against a newer exported head"
		default:
			res.Problem = "the anchor's event is gone"
		}
		return res
	}
	head := v.expect
	res.OK, res.Head, res.HeadID = true, &head, v.chain.HeadID
	res.Anchor = ChainAnchor{ID: v.chain.HeadID, Hash: head}.String()
	return res
}
