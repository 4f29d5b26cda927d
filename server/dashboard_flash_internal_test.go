package server

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
)

// fakeNow is a settable clock.
type fakeNow struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeNow) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeNow) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func newTestSealer(t *testing.T, capacity int) (*flashSealer, *fakeNow) {
	t.Helper()
	clk := &fakeNow{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	return newFlashSealer(clk.now, rand.Reader, flashTTL, capacity), clk
}

const (
	aliceSecret  = "gatehouse:alice-session-secret-0123456789abcdefghijklmnop"
	aliceSession = "session-alice"
)

var flashFixture = flashToken{
	Token: gatehouse.NewToken{Token: "gatehouse:minted-secret-0123456789", ID: "id-1", Name: "ci"},
	Owner: "account alice", Back: "/user-info",
}

func TestFlashOpensOnceForItsSession(t *testing.T) {
	for name, tc := range map[string]struct {
		wait            time.Duration
		secret, session string
		tamper          func(string) string
		want            bool
	}{
		"ok/at once":                  {want: true},
		"ok/just in time":             {wait: flashTTL - time.Millisecond, want: true},
		"fail/expired":                {wait: flashTTL},
		"fail/another session":        {secret: "gatehouse:bob-session-secret", session: "session-bob"},
		"fail/another secret":         {secret: "gatehouse:bob-session-secret"},
		"fail/another session id":     {session: "session-bob"},
		"fail/flipped byte":           {tamper: func(v string) string { return flip(v, len(v)/2) }},
		"fail/flipped version":        {tamper: func(v string) string { return flip(v, 0) }},
		"fail/truncated":              {tamper: func(v string) string { return v[:len(v)-4] }},
		"fail/empty":                  {tamper: func(string) string { return "" }},
		"fail/the old opaque id kind": {tamper: func(string) string { return "0123456789abcdef0123456789abcdef" }},
	} {
		t.Run(name, func(t *testing.T) {
			s, clk := newTestSealer(t, 10)
			v, err := s.seal(aliceSecret, aliceSession, flashFixture)
			if err != nil {
				t.Fatal(err)
			}
			if tc.tamper != nil {
				v = tc.tamper(v)
			}
			secret, session := aliceSecret, aliceSession
			if tc.secret != "" {
				secret = tc.secret
			}
			if tc.session != "" {
				session = tc.session
			}
			clk.advance(tc.wait)
			got, ok := s.take(v, secret, session)
			if ok != tc.want || (ok && got != flashFixture) {
				t.Fatalf("take = %+v, %v; want %v", got, ok, tc.want)
			}
			if _, again := s.take(v, secret, session); again {
				t.Fatal("a second take on this replica opened the seal again")
			}
		})
	}
}

// flip changes the base64 character at i into another valid one.
func flip(v string, i int) string {
	b := []byte(v)
	if b[i] == 'A' {
		b[i] = 'B'
	} else {
		b[i] = 'A'
	}
	return string(b)
}

func TestFlashSealHidesTheTokenAndIsRandom(t *testing.T) {
	s, _ := newTestSealer(t, 10)
	seen := map[string]bool{}
	for range 20 {
		v, err := s.seal(aliceSecret, aliceSession, flashFixture)
		if err != nil {
			t.Fatal(err)
		}
		if seen[v] {
			t.Fatal("two seals of the same token are equal")
		}
		seen[v] = true
		raw, err := base64.RawURLEncoding.DecodeString(v)
		if err != nil {
			t.Fatal(err)
		}
		for _, plain := range []string{flashFixture.Token.Token, "minted-secret", aliceSession, "alice"} {
			if bytes.Contains(raw, []byte(plain)) || strings.Contains(v, plain) {
				t.Fatalf("the cookie shows %q", plain)
			}
		}
		if len(v) > 1024 {
			t.Errorf("cookie value is %d bytes", len(v))
		}
	}
}

func TestFlashCookieStaysSmall(t *testing.T) {
	s, _ := newTestSealer(t, 10)
	big := flashFixture
	big.Token.Name = strings.Repeat("<", 100) // escaped by JSON to six bytes each
	big.Owner = "project role " + strings.Repeat("p", 100) + " / " + strings.Repeat("r", 5000)
	big.Back = "/projects/" + strings.Repeat("p", 100)
	v, err := s.seal(aliceSecret, aliceSession, big)
	if err != nil {
		t.Fatal(err)
	}
	if len(v) > 3000 {
		t.Errorf("cookie value is %d bytes, want room below the 4 KiB browsers keep", len(v))
	}
	got, ok := s.take(v, aliceSecret, aliceSession)
	if !ok || got.Token != big.Token || !strings.HasPrefix(big.Owner, strings.TrimSuffix(got.Owner, "…")) {
		t.Fatalf("take = %+v, %v", got, ok)
	}
}

func TestFlashSpentCapacityForgetsTheOldest(t *testing.T) {
	s, clk := newTestSealer(t, 2)
	var seals []string
	for range 3 {
		v, _ := s.seal(aliceSecret, aliceSession, flashFixture)
		seals = append(seals, v)
		clk.advance(time.Second)
	}
	for _, v := range seals {
		if _, ok := s.take(v, aliceSecret, aliceSession); !ok {
			t.Fatal("a fresh seal did not open")
		}
	}
	if n := len(s.spent); n != 2 {
		t.Errorf("%d nonces kept, want the capacity 2", n)
	}
	clk.advance(flashTTL)
	v, _ := s.seal(aliceSecret, aliceSession, flashFixture)
	s.take(v, aliceSecret, aliceSession)
	if n := len(s.spent); n != 1 {
		t.Errorf("after the TTL %d nonces kept, want 1 (the new one)", n)
	}
}

func TestFlashRandFailure(t *testing.T) {
	s := newFlashSealer(time.Now, bytes.NewReader(nil), flashTTL, 10)
	if _, err := s.seal(aliceSecret, aliceSession, flashFixture); gatehouse.ErrorCode(err) != gatehouse.EINTERNAL {
		t.Fatalf("seal with a failing random source: %v, want internal", err)
	}
}

// FuzzOpenFlash feeds the opener arbitrary cookie values and sessions:
// it never panics, and nothing but the one genuine seal opens; and a seal
// made for any session opens for it alone.
func FuzzOpenFlash(f *testing.F) {
	clk := &fakeNow{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	s := newFlashSealer(clk.now, bytes.NewReader(bytes.Repeat([]byte{7}, 64)), flashTTL, 10)
	genuine, err := s.seal(aliceSecret, aliceSession, flashFixture)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(genuine, aliceSecret, aliceSession)
	f.Add(genuine, aliceSecret, "session-bob")
	f.Add(genuine[:40], aliceSecret, aliceSession)
	f.Add("AQ", "", "")
	f.Add(strings.Repeat("A", 5000), "x", "y")
	f.Fuzz(func(t *testing.T, value, secret, session string) {
		got, _, _, ok := openFlash(value, secret, session, clk.now())
		if ok && (value != genuine || secret != aliceSecret || session != aliceSession || got != flashFixture) {
			t.Fatalf("opened a value that is not the genuine seal: %q (secret %q, session %q) -> %+v", value, secret, session, got)
		}
		fresh := newFlashSealer(clk.now, rand.Reader, flashTTL, 10)
		v, err := fresh.seal(secret, session, flashFixture)
		if err != nil {
			if len(session) < 1000 { // session ids are short; a long one may not fit a cookie
				t.Fatal(err)
			}
			return
		}
		if got, _, _, ok := openFlash(v, secret, session, clk.now()); !ok || got != flashFixture {
			t.Fatalf("a seal for (%q, %q) does not open for it: %+v %v", secret, session, got, ok)
		}
		if _, _, _, ok := openFlash(v, secret+"x", session, clk.now()); ok {
			t.Fatal("a seal opened with another secret")
		}
		if _, _, _, ok := openFlash(v, secret, session+"x", clk.now()); ok {
			t.Fatal("a seal opened for another session id")
		}
	})
}
