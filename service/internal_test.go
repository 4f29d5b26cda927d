package service

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/store/sqlite"
	"github.com/gatehouse/gatehouse/store/storetest"
)

func TestCursorRoundTrip(t *testing.T) {
	for _, id := range []int64{1, 42, 1 << 40} {
		got, err := decodeCursor(encodeCursor(id))
		if err != nil || got != id {
			t.Errorf("decodeCursor(encodeCursor(%d)) = %d, %v", id, got, err)
		}
	}
	for _, bad := range []string{"", "!!", "ZTA", "eA", "ZS0x", "YTEy", string(make([]byte, 100))} {
		if _, err := decodeCursor(bad); err == nil {
			t.Errorf("decodeCursor(%q) accepted", bad)
		}
	}
}

func FuzzDecodeCursor(f *testing.F) {
	f.Add(encodeCursor(7))
	f.Add("")
	f.Add("ZS05")
	f.Fuzz(func(t *testing.T, c string) {
		id, err := decodeCursor(c)
		if err != nil {
			return
		}
		if id <= 0 {
			t.Fatalf("accepted cursor %q with id %d", c, id)
		}
		if back, err := decodeCursor(encodeCursor(id)); err != nil || back != id {
			t.Fatalf("id %d does not round-trip", id)
		}
	})
}

// guardTest drives a loginGuard over a real store (SQLite, every
// transaction run twice, as a retrying backend may), one attempt at a time.
type guardTest struct {
	t  *testing.T
	g  *loginGuard
	st gatehouse.Store
	n  int
}

func newGuardTest(t *testing.T, maxFailures int) *guardTest {
	t.Helper()
	st, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "guard.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return &guardTest{t: t, g: newLoginGuard(maxFailures, time.Minute, 1), st: storetest.TxTwice(st)}
}

// reserve asks to admit an attempt; it returns the attempt's id and the
// wait (0: admitted).
func (h *guardTest) reserve(user, addr string, now time.Time) (string, time.Duration) {
	h.t.Helper()
	h.n++
	id := fmt.Sprint("attempt-", h.n)
	w, err := h.g.reserve(h.t.Context(), h.st, id, user, addr, now)
	if err != nil {
		h.t.Fatalf("reserve: %v", err)
	}
	return id, w
}

func (h *guardTest) done(id, user string, outcome loginOutcome) {
	h.t.Helper()
	if err := h.g.done(h.t.Context(), h.st, id, user, outcome); err != nil {
		h.t.Fatalf("done: %v", err)
	}
}

// fail records a failed attempt at now, which must be admitted.
func (h *guardTest) fail(user, addr string, now time.Time) {
	h.t.Helper()
	id, w := h.reserve(user, addr, now)
	if w != 0 {
		h.t.Fatalf("attempt of %s from %s at %v throttled for %v", user, addr, now, w)
	}
	h.done(id, user, loginFailed)
}

// retryAfter is how long an attempt at now would wait; it admits none.
func (h *guardTest) retryAfter(user, addr string, now time.Time) time.Duration {
	h.t.Helper()
	var w time.Duration
	err := h.st.Tx(h.t.Context(), func(tx gatehouse.Tx) (err error) {
		w, err = h.g.wait(h.t.Context(), tx, user, addr, now)
		return err
	})
	if err != nil {
		h.t.Fatalf("wait: %v", err)
	}
	return w
}

func TestLoginGuard(t *testing.T) {
	g := newGuardTest(t, 3)
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range 3 {
		if w := g.retryAfter("u", "a", t0); w != 0 {
			t.Fatalf("attempt %d throttled for %v", i+1, w)
		}
		g.fail("u", "a", t0.Add(time.Duration(i)*time.Second))
	}
	// Three failures at t0, t0+1s, t0+2s: blocked until the first leaves
	// the window.
	if w := g.retryAfter("u", "a", t0.Add(10*time.Second)); w != 50*time.Second {
		t.Fatalf("retryAfter = %v, want 50s", w)
	}
	if _, w := g.reserve("u", "a", t0.Add(10*time.Second)); w != 50*time.Second {
		t.Fatalf("reserve: wait %v, want 50s", w)
	}
	if w := g.retryAfter("other", "b", t0.Add(10*time.Second)); w != 0 {
		t.Fatalf("another user from another address is throttled: %v", w)
	}
	if w := g.retryAfter("u", "a", t0.Add(time.Minute)); w != 0 {
		t.Fatalf("after the window: %v", w)
	}
	// A success clears the user's failures, and only the user's: the
	// address keeps them.
	g.fail("v", "c", t0)
	g.fail("v", "c", t0)
	id, _ := g.reserve("v", "c", t0)
	g.done(id, "v", loginSucceeded)
	g.fail("v", "c", t0)
	if w := g.retryAfter("v", "c", t0); w != 0 {
		t.Fatalf("failures before a success still count: %v", w)
	}
	addr := tallyOf(t, g.st, loginKey("addr", "c"), t0.Add(-time.Minute))
	if got, want := len(addr.Failed), 3; got != want {
		t.Fatalf("the address's failures after the user's success: got %d, want %d", got, want)
	}
}

// Attempts admitted but not yet decided hold the budget: with a limit of
// 3, three reservations in flight refuse a fourth, and each failure keeps
// its slot while an attempt that never ran gives its slot back. A
// reservation never settled (its replica died) holds its slot until it
// leaves the window.
func TestLoginGuardCountsPendingAttempts(t *testing.T) {
	g := newGuardTest(t, 3)
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var ids []string
	for i := range 3 {
		id, w := g.reserve("u", "a", t0)
		if w != 0 {
			t.Fatalf("reservation %d refused: %v", i+1, w)
		}
		ids = append(ids, id)
	}
	if _, w := g.reserve("u", "a", t0); w != time.Second {
		t.Fatalf("a fourth attempt while three were in flight: wait %v, want 1s", w)
	}
	g.done(ids[0], "u", loginNotRun)
	id, w := g.reserve("u", "a", t0)
	if w != 0 {
		t.Fatalf("a slot given back by an attempt that never ran is still held: %v", w)
	}
	ids[0] = id
	for _, id := range ids {
		g.done(id, "u", loginFailed)
	}
	if _, w := g.reserve("u", "a", t0.Add(time.Second)); w != 59*time.Second {
		t.Fatalf("after three failures: wait %v, want 59s", w)
	}

	// Three reservations that are never settled.
	for range 3 {
		if _, w := g.reserve("w", "d", t0); w != 0 {
			t.Fatalf("reservation refused: %v", w)
		}
	}
	if w := g.retryAfter("w", "d", t0.Add(59*time.Second)); w != time.Second {
		t.Fatalf("abandoned reservations within the window: wait %v, want 1s", w)
	}
	if w := g.retryAfter("w", "d", t0.Add(time.Minute)); w != 0 {
		t.Fatalf("abandoned reservations that left the window: wait %v, want 0", w)
	}
}

func TestLoginGuardPerAddress(t *testing.T) {
	g := newGuardTest(t, 2)
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	// Spraying distinct usernames from one address trips the address limit.
	for i := range 2 * addrFactor {
		g.fail(string(rune('a'+i)), "spray", t0)
	}
	if w := g.retryAfter("fresh-user", "spray", t0); w == 0 {
		t.Fatal("address spraying many usernames is not throttled")
	}
	if w := g.retryAfter("fresh-user", "elsewhere", t0); w != 0 {
		t.Fatalf("another address is throttled: %v", w)
	}
}

// The reaper's prune deletes what has left the window, and nothing that
// still counts.
func TestLoginGuardPrune(t *testing.T) {
	g := newGuardTest(t, 3)
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	now := t0
	s := &Service{store: g.st, logins: g.g, now: func() time.Time { return now }}
	g.fail("u", "a", t0)
	g.reserve("u", "a", t0.Add(30*time.Second))
	now = t0.Add(time.Minute)
	if n, err := s.pruneLoginAttempts(t.Context()); err != nil || n != 2 {
		t.Fatalf("prune at the window's end: %d, %v; want 2 (one attempt, two keys)", n, err)
	}
	if got := tallyOf(t, g.st, loginKey("user", "u"), t0.Add(-time.Hour)); len(got.Failed) != 0 || got.Pending != 1 {
		t.Fatalf("after the prune: %+v, want only the pending attempt", got)
	}
}

// Names too long to index are keyed by their hash.
func TestLoginKey(t *testing.T) {
	long := strings.Repeat("x", 10_000)
	if got := loginKey("user", "alice"); got != "user:alice" {
		t.Errorf("loginKey(alice) = %q", got)
	}
	if k := loginKey("user", long); len(k) > 100 || k == loginKey("user", long+"y") || k != loginKey("user", long) {
		t.Errorf("loginKey of a long name: %q", k)
	}
}

func tallyOf(t *testing.T, st gatehouse.Store, key string, after time.Time) gatehouse.LoginTally {
	t.Helper()
	var got gatehouse.LoginTally
	err := st.Tx(t.Context(), func(tx gatehouse.Tx) (err error) {
		got, err = tx.LoginAttempts(t.Context(), key, after, 100)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func TestLoginGuardCapsConcurrentChecks(t *testing.T) {
	g := newLoginGuard(5, time.Minute, 1)
	if !g.acquire(context.Background(), time.Second) {
		t.Fatal("first slot refused")
	}
	if g.acquire(context.Background(), 10*time.Millisecond) {
		t.Fatal("second concurrent check admitted with a cap of 1")
	}
	g.release()
	if !g.acquire(context.Background(), time.Second) {
		t.Fatal("slot not freed")
	}
}
