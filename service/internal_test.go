package service

import (
	"context"
	"testing"
	"time"
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

func TestLoginGuard(t *testing.T) {
	g := newLoginGuard(3, time.Minute, 1)
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
	if w := g.retryAfter("other", "b", t0.Add(10*time.Second)); w != 0 {
		t.Fatalf("another user from another address is throttled: %v", w)
	}
	if w := g.retryAfter("u", "a", t0.Add(time.Minute)); w != 0 {
		t.Fatalf("after the window: %v", w)
	}
	// A success clears the user's failures.
	g.fail("v", "c", t0)
	g.fail("v", "c", t0)
	g.reserve("v", "c", t0)
	g.done("v", "c", t0, loginSucceeded)
	g.fail("v", "c", t0)
	if w := g.retryAfter("v", "c", t0); w != 0 {
		t.Fatalf("failures before a success still count: %v", w)
	}
}

// Attempts admitted but not yet decided hold the budget: with a limit of
// 3, three reservations in flight refuse a fourth, and each failure keeps
// its slot while an attempt that never ran gives its slot back.
func TestLoginGuardCountsPendingAttempts(t *testing.T) {
	g := newLoginGuard(3, time.Minute, 1)
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range 3 {
		if w := g.reserve("u", "a", t0); w != 0 {
			t.Fatalf("reservation %d refused: %v", i+1, w)
		}
	}
	if w := g.reserve("u", "a", t0); w == 0 {
		t.Fatal("a fourth attempt was admitted while three were in flight")
	}
	g.done("u", "a", t0, loginNotRun)
	if w := g.reserve("u", "a", t0); w != 0 {
		t.Fatalf("a slot given back by an attempt that never ran is still held: %v", w)
	}
	for range 3 {
		g.done("u", "a", t0, loginFailed)
	}
	if w := g.reserve("u", "a", t0.Add(time.Second)); w != 59*time.Second {
		t.Fatalf("after three failures: wait %v, want 59s", w)
	}
}

func TestLoginGuardPerAddress(t *testing.T) {
	g := newLoginGuard(2, time.Minute, 1)
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

func TestWallClockTracksTheWallClock(t *testing.T) {
	c := newWallClock()
	for range 3 {
		got, want := c.unixNano(), time.Now().UnixNano()
		if d := time.Duration(want - got); d < 0 || d > time.Second {
			t.Fatalf("wallClock is %v behind time.Now", d)
		}
		time.Sleep(10 * time.Millisecond)
		c.rebase()
	}
}
