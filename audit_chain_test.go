package gatehouse_test

import (
	"encoding/hex"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
)

// vectorEvent is the fixed event of the test vectors: every field set.
func vectorEvent() gatehouse.Event {
	return gatehouse.Event{
		ID:         42,
		Time:       time.Date(2025, 3, 14, 15, 9, 26, 535897932, time.UTC),
		Type:       gatehouse.EventRequest,
		Actor:      "alice",
		TokenID:    "5f0c6b2e-7d1a-4c1e-9a51-0e8f1b2c3d4e",
		TokenKind:  gatehouse.KindAPI,
		Method:     "GET",
		Path:       "/api/v1/applications/web",
		Resource:   "applications",
		Action:     "get",
		Object:     "team-a/web",
		Decision:   "allow",
		Via:        gatehouse.ViaPolicy,
		Route:      "GET /api/v1/applications/{name}",
		Account:    "alice",
		Status:     200,
		RemoteAddr: "192.0.2.10",
		UserAgent:  "gatehouse-cli/1.0",
		Detail:     "d",
	}
}

// TestChainVectors pins the canonical encoding and the hash rule: they
// are what an exported head and an outsider's own verifier depend on, so
// a change must be a new ChainEncodingVersion, never a silent one. The
// expected values were computed by a separate implementation (the Python
// of docs/design.md, "The audit chain"), not by this code.
func TestChainVectors(t *testing.T) {
	e := vectorEvent()
	wantEnc := "01" + // version
		"000000000000002a" + // id 42
		"182cb3e8618c234c" + // time, Unix nanoseconds
		"00000000000000c8" + // status 200
		"00000007" + hex.EncodeToString([]byte("request")) +
		"00000005" + hex.EncodeToString([]byte("alice")) +
		"00000024" + hex.EncodeToString([]byte("5f0c6b2e-7d1a-4c1e-9a51-0e8f1b2c3d4e")) +
		"00000003" + hex.EncodeToString([]byte("api")) +
		"00000003" + hex.EncodeToString([]byte("GET")) +
		"00000018" + hex.EncodeToString([]byte("/api/v1/applications/web")) +
		"0000000c" + hex.EncodeToString([]byte("applications")) +
		"00000003" + hex.EncodeToString([]byte("get")) +
		"0000000a" + hex.EncodeToString([]byte("team-a/web")) +
		"00000005" + hex.EncodeToString([]byte("allow")) +
		"00000006" + hex.EncodeToString([]byte("policy")) +
		"0000001f" + hex.EncodeToString([]byte("GET /api/v1/applications/{name}")) +
		"00000005" + hex.EncodeToString([]byte("alice")) +
		"0000000a" + hex.EncodeToString([]byte("192.0.2.10")) +
		"00000011" + hex.EncodeToString([]byte("gatehouse-cli/1.0")) +
		"00000001" + hex.EncodeToString([]byte("d"))
	if got := hex.EncodeToString(gatehouse.AppendCanonicalEvent(nil, e)); got != wantEnc {
		t.Errorf("canonical encoding:\n got %s\nwant %s", got, wantEnc)
	}
	counted, one := vectorEvent(), vectorEvent()
	counted.Count, one.Count = 3, 1
	if got := hex.EncodeToString(gatehouse.AppendCanonicalEvent(nil, counted)); got != "02"+wantEnc[2:]+"0000000000000003" {
		t.Errorf("canonical encoding of a count of 3:\n got %s\nwant 02... then the count", got)
	}
	tests := []struct {
		name string
		prev gatehouse.ChainHash
		e    gatehouse.Event
		want string
	}{
		{"ok/after the zero hash", gatehouse.ChainHash{}, e, "2f7324cb0fe3a3cc04dedf954d2454fb31a2a127fcd93281914cfe2dc35f4d2c"},
		{"ok/a counted event (version 2)", gatehouse.ChainHash{}, counted, "f6dd1ce01b56b0937199b106b03721dc119f2c3d39b8920f67a86b314b5471c8"},
		{"ok/a count of one is version 1", gatehouse.ChainHash{}, one, "2f7324cb0fe3a3cc04dedf954d2454fb31a2a127fcd93281914cfe2dc35f4d2c"},
		{"ok/empty event after 0x0100...", gatehouse.ChainHash{0: 1}, gatehouse.Event{}, "42b5e4d5edafc08e156ea7c39d3dab45af6b1374fb7b1a26cfe3efd02a0ae002"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := gatehouse.ChainNext(tc.prev, tc.e).String()
			if got != tc.want {
				t.Errorf("hash: got %s, want %s", got, tc.want)
			}
		})
	}
}

// TestChainEncodingCoversEveryField: a field added to Event must be added
// to the encoding (and the version raised), or changing it would go
// unnoticed by verify. Each field, changed alone, changes the hash.
func TestChainEncodingCoversEveryField(t *testing.T) {
	covered := map[string]bool{"ID": true, "Time": true, "Type": true, "Actor": true, "TokenID": true, "TokenKind": true,
		"Method": true, "Path": true, "Resource": true, "Action": true, "Object": true, "Decision": true, "Via": true,
		"Route": true, "Account": true, "Status": true, "RemoteAddr": true, "UserAgent": true, "Detail": true, "Count": true}
	typ := reflect.TypeFor[gatehouse.Event]()
	base := gatehouse.ChainNext(gatehouse.ChainHash{}, vectorEvent())
	for i := range typ.NumField() {
		f := typ.Field(i)
		if !covered[f.Name] {
			t.Errorf("Event.%s is not in the chain's canonical encoding: add it (AppendCanonicalEvent) with a new ChainEncodingVersion", f.Name)
			continue
		}
		e := vectorEvent()
		v := reflect.ValueOf(&e).Elem().Field(i)
		switch v.Kind() {
		case reflect.String:
			v.SetString(v.String() + "x")
		case reflect.Int, reflect.Int64:
			v.SetInt(v.Int() + 2) // a Count of 2: one is the same as none
		case reflect.Struct: // time.Time
			e.Time = e.Time.Add(time.Nanosecond)
		default:
			t.Fatalf("Event.%s: kind %v not handled by this test", f.Name, v.Kind())
		}
		if gatehouse.ChainNext(gatehouse.ChainHash{}, e) == base {
			t.Errorf("changing Event.%s leaves the hash as it was", f.Name)
		}
	}
	// Lengths make the encoding unambiguous: moving a byte from one field
	// to the next changes it.
	a, b := vectorEvent(), vectorEvent()
	a.Actor, a.TokenID = "ab", "c"
	b.Actor, b.TokenID = "a", "bc"
	if gatehouse.ChainNext(gatehouse.ChainHash{}, a) == gatehouse.ChainNext(gatehouse.ChainHash{}, b) {
		t.Error("two events that differ only in where a field boundary falls hash alike")
	}
	// The time is taken in UTC nanoseconds, whatever its location.
	c := vectorEvent()
	c.Time = c.Time.In(time.FixedZone("x", 3600))
	if gatehouse.ChainNext(gatehouse.ChainHash{}, c) != base {
		t.Error("the same instant in another location hashes differently")
	}
}

// chain builds n linked events after start (ids start.ID+1 ...).
func chain(start gatehouse.ChainAnchor, n int) ([]gatehouse.ChainedEvent, gatehouse.AuditChain) {
	c := gatehouse.AuditChain{StartID: start.ID, StartHash: start.Hash, HeadID: start.ID, HeadHash: start.Hash, LegacyID: start.ID}
	var out []gatehouse.ChainedEvent
	prev := start.Hash
	for i := range n {
		e := vectorEvent()
		e.ID = start.ID + int64(i) + 1
		e.Detail = strings.Repeat("d", i)
		h := gatehouse.ChainNext(prev, e)
		out = append(out, gatehouse.ChainedEvent{Event: e, Linked: true, Prev: prev, Hash: h})
		prev, c.HeadID, c.HeadHash = h, e.ID, h
	}
	return out, c
}

func verify(c gatehouse.AuditChain, events []gatehouse.ChainedEvent, anchor *gatehouse.ChainAnchor) gatehouse.ChainVerification {
	v := gatehouse.NewChainVerifier(c, anchor)
	for _, e := range events {
		if !v.Check(e) {
			break
		}
	}
	return v.Finish()
}

func TestChainVerifier(t *testing.T) {
	type tc struct {
		name    string
		mutate  func(c *gatehouse.AuditChain, evs []gatehouse.ChainedEvent) []gatehouse.ChainedEvent
		anchor  func(evs []gatehouse.ChainedEvent) *gatehouse.ChainAnchor
		wantOK  bool
		wantBad int64
	}
	anchorAt := func(i int) func([]gatehouse.ChainedEvent) *gatehouse.ChainAnchor {
		return func(evs []gatehouse.ChainedEvent) *gatehouse.ChainAnchor {
			return &gatehouse.ChainAnchor{ID: evs[i].ID, Hash: evs[i].Hash}
		}
	}
	same := func(_ *gatehouse.AuditChain, evs []gatehouse.ChainedEvent) []gatehouse.ChainedEvent { return evs }
	tests := []tc{
		{"ok/intact", same, nil, true, 0},
		{"ok/anchor in the chain", same, anchorAt(3), true, 0},
		{"ok/anchor at the head", same, anchorAt(9), true, 0},
		{"fail/field changed", func(_ *gatehouse.AuditChain, evs []gatehouse.ChainedEvent) []gatehouse.ChainedEvent {
			evs[4].Actor = "mallory"
			return evs
		}, nil, false, 15},
		{"fail/middle removed", func(_ *gatehouse.AuditChain, evs []gatehouse.ChainedEvent) []gatehouse.ChainedEvent {
			return append(evs[:4:4], evs[5:]...)
		}, nil, false, 16},
		{"fail/newest removed, head kept", func(_ *gatehouse.AuditChain, evs []gatehouse.ChainedEvent) []gatehouse.ChainedEvent {
			return evs[:9]
		}, nil, false, 20},
		{"fail/newest removed with the head: only the anchor tells", func(c *gatehouse.AuditChain, evs []gatehouse.ChainedEvent) []gatehouse.ChainedEvent {
			c.HeadID, c.HeadHash = evs[7].ID, evs[7].Hash
			return evs[:8]
		}, anchorAt(9), false, 20},
		{"ok/newest removed with the head, no anchor", func(c *gatehouse.AuditChain, evs []gatehouse.ChainedEvent) []gatehouse.ChainedEvent {
			c.HeadID, c.HeadHash = evs[7].ID, evs[7].Hash
			return evs[:8]
		}, nil, true, 0},
		{"fail/rewritten from the middle: only the anchor tells", func(c *gatehouse.AuditChain, evs []gatehouse.ChainedEvent) []gatehouse.ChainedEvent {
			prev := evs[1].Hash
			for i := 2; i < len(evs); i++ {
				evs[i].Actor = "mallory"
				evs[i].Prev, evs[i].Hash = prev, gatehouse.ChainNext(prev, evs[i].Event)
				prev = evs[i].Hash
			}
			c.HeadHash = prev
			return evs
		}, anchorAt(5), false, 16},
		{"fail/unlinked row inside", func(_ *gatehouse.AuditChain, evs []gatehouse.ChainedEvent) []gatehouse.ChainedEvent {
			evs[2].Linked = false
			return evs
		}, nil, false, 13},
		{"fail/row after the head", func(_ *gatehouse.AuditChain, evs []gatehouse.ChainedEvent) []gatehouse.ChainedEvent {
			extra := evs[9]
			extra.ID++
			return append(evs, extra)
		}, nil, false, 21},
		{"fail/swapped", func(_ *gatehouse.AuditChain, evs []gatehouse.ChainedEvent) []gatehouse.ChainedEvent {
			evs[3].Event, evs[6].Event = evs[6].Event, evs[3].Event
			evs[3].ID, evs[6].ID = evs[6].ID, evs[3].ID
			return evs
		}, nil, false, 14},
		{"fail/row below the start", func(c *gatehouse.AuditChain, evs []gatehouse.ChainedEvent) []gatehouse.ChainedEvent {
			c.LegacyID = 5
			planted := evs[0]
			planted.ID = 7
			return append([]gatehouse.ChainedEvent{planted}, evs...)
		}, nil, false, 7},
		{"ok/legacy rows are counted, not verified", func(c *gatehouse.AuditChain, evs []gatehouse.ChainedEvent) []gatehouse.ChainedEvent {
			old := gatehouse.ChainedEvent{Event: vectorEvent()}
			old.ID = 3
			return append([]gatehouse.ChainedEvent{old}, evs...)
		}, nil, true, 0},
		{"fail/pruned anchor", func(c *gatehouse.AuditChain, evs []gatehouse.ChainedEvent) []gatehouse.ChainedEvent {
			c.StartID, c.StartHash, c.LegacyID = evs[4].ID, evs[4].Hash, 10
			return evs[5:]
		}, anchorAt(2), false, 16},
		{"ok/anchor at the prune boundary", func(c *gatehouse.AuditChain, evs []gatehouse.ChainedEvent) []gatehouse.ChainedEvent {
			c.StartID, c.StartHash, c.LegacyID = evs[4].ID, evs[4].Hash, 10
			return evs[5:]
		}, anchorAt(4), true, 0},
		{"fail/anchor hash differs", same, func(evs []gatehouse.ChainedEvent) *gatehouse.ChainAnchor {
			return &gatehouse.ChainAnchor{ID: evs[3].ID, Hash: evs[2].Hash}
		}, false, 14},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			evs, c := chain(gatehouse.ChainAnchor{ID: 10}, 10)
			var anchor *gatehouse.ChainAnchor
			if tc.anchor != nil {
				anchor = tc.anchor(evs) // before any change
			}
			evs = tc.mutate(&c, evs)
			got := verify(c, evs, anchor)
			if got.OK != tc.wantOK || got.FirstBadID != tc.wantBad {
				t.Errorf("got ok %v, firstBadId %d (%s); want ok %v, firstBadId %d", got.OK, got.FirstBadID, got.Problem, tc.wantOK, tc.wantBad)
			}
			if got.OK && (got.Head == nil || *got.Head != c.HeadHash || got.HeadID != c.HeadID) {
				t.Errorf("head: got %v at %d, want %v at %d", got.Head, got.HeadID, c.HeadHash, c.HeadID)
			}
			if got.OK && got.Anchor != (gatehouse.ChainAnchor{ID: c.HeadID, Hash: c.HeadHash}).String() {
				t.Errorf("anchor %q is not the head", got.Anchor)
			}
		})
	}
}

func TestParseChainAnchor(t *testing.T) {
	h := strings.Repeat("ab", 32)
	tests := []struct {
		in     string
		wantOK bool
	}{
		{"12:" + h, true},
		{"0:" + h, true},
		{"12:" + strings.ToUpper(h), true},
		{"12" + h, false},
		{"-1:" + h, false},
		{"012:" + h, false},
		{"+12:" + h, false},
		{"12:" + h[:62], false},
		{"12:" + h + "00", false},
		{"12:" + h[:62] + "zz", false},
		{"99999999999999999999:" + h, false},
		{"", false},
	}
	for _, tc := range tests {
		a, err := gatehouse.ParseChainAnchor(tc.in)
		if (err == nil) != tc.wantOK {
			t.Errorf("ParseChainAnchor(%q): got %v, want ok %v", tc.in, err, tc.wantOK)
			continue
		}
		if err != nil {
			if gatehouse.ErrorCode(err) != gatehouse.EINVALID {
				t.Errorf("ParseChainAnchor(%q): code %s, want %s", tc.in, gatehouse.ErrorCode(err), gatehouse.EINVALID)
			}
			continue
		}
		if again, err := gatehouse.ParseChainAnchor(a.String()); err != nil || again != a {
			t.Errorf("ParseChainAnchor(%q).String() does not parse back: %v", tc.in, err)
		}
	}
}

func FuzzParseChainAnchor(f *testing.F) {
	f.Add("12:" + strings.Repeat("ab", 32))
	f.Add("0:" + strings.Repeat("00", 32))
	f.Add(":")
	f.Fuzz(func(t *testing.T, s string) {
		a, err := gatehouse.ParseChainAnchor(s)
		if err != nil {
			if gatehouse.ErrorCode(err) != gatehouse.EINVALID {
				t.Fatalf("error code %s", gatehouse.ErrorCode(err))
			}
			return
		}
		if b, err := gatehouse.ParseChainAnchor(a.String()); err != nil || b != a {
			t.Fatalf("%q parses to %v, whose String does not parse back", s, a)
		}
	})
}
