package logbuf

import (
	"bytes"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

// sink is an underlying writer that records what reaches it and can be
// held shut, as a stalled disk is.
type sink struct {
	mu     sync.Mutex
	buf    bytes.Buffer
	writes int
	gate   chan struct{} // when not nil, each Write waits for it to close
}

func (s *sink) Write(p []byte) (int, error) {
	if s.gate != nil {
		<-s.gate
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.writes++
	return s.buf.Write(p)
}

func (s *sink) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.String()
}

func TestEveryLineArrivesInOrderOnClose(t *testing.T) {
	s := &sink{}
	w := New(s, time.Hour, 0) // only size and Close flush
	const writers, each = 8, 5000
	var wg sync.WaitGroup
	for g := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				fmt.Fprintf(w, "g%d %d\n", g, i)
			}
		}()
	}
	wg.Wait()
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(s.String(), "\n"), "\n")
	if got, want := len(lines), writers*each; got != want {
		t.Fatalf("got %d lines, want %d", got, want)
	}
	next := make([]int, writers)
	for _, l := range lines {
		var g, i int
		if _, err := fmt.Sscanf(l, "g%d %d", &g, &i); err != nil {
			t.Fatalf("line %q is not whole: %v", l, err)
		}
		if i != next[g] {
			t.Fatalf("writer %d: got line %d, want %d (out of order or lost)", g, i, next[g])
		}
		next[g]++
	}
	if w.Dropped() != 0 {
		t.Errorf("dropped %d lines, want 0", w.Dropped())
	}
}

func TestSlogRecordsArriveWithinTheInterval(t *testing.T) {
	s := &sink{}
	w := New(s, 20*time.Millisecond, 0)
	t.Cleanup(func() { w.Close() })
	log := slog.New(slog.NewJSONHandler(w, nil))
	log.Info("request", "status", 200)
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(s.String(), `"msg":"request","status":200`) {
		if time.Now().After(deadline) {
			t.Fatalf("the line was not written by the interval's timer; sink has %q", s.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestFlushWritesWhatWasQueued(t *testing.T) {
	s := &sink{}
	w := New(s, time.Hour, 0)
	t.Cleanup(func() { w.Close() })
	for i := range 100 {
		fmt.Fprintf(w, "line %d\n", i)
	}
	w.Flush()
	if got := strings.Count(s.String(), "\n"); got != 100 {
		t.Fatalf("after Flush the sink has %d lines, want 100", got)
	}
}

func TestAFullQueueDropsAndCountsInsteadOfBlocking(t *testing.T) {
	s := &sink{gate: make(chan struct{})} // the disk is stuck
	const max = 1000
	w := New(s, time.Millisecond, max)
	line := []byte(strings.Repeat("x", 99) + "\n") // 100 bytes
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range 50 {
			if n, err := w.Write(line); n != len(line) || err != nil {
				t.Errorf("Write = %d, %v; want %d, nil", n, err, len(line))
			}
		}
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Write blocked on a stuck underlying writer")
	}
	// At most max bytes are held: ten lines; the other forty are counted.
	if got, want := w.Dropped(), uint64(40); got != want {
		t.Errorf("Dropped() = %d, want %d", got, want)
	}
	close(s.gate) // the disk recovers
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if got := strings.Count(s.String(), "\n"); got != 10 {
		t.Errorf("%d lines written after the disk recovered, want the 10 that were held", got)
	}
}

func TestWritesAfterCloseGoStraightThrough(t *testing.T) {
	s := &sink{}
	w := New(s, time.Hour, 0)
	fmt.Fprint(w, "before\n")
	w.Close()
	w.Close() // twice is fine
	fmt.Fprint(w, "after\n")
	w.Flush()
	if got, want := s.String(), "before\nafter\n"; got != want {
		t.Errorf("sink = %q, want %q", got, want)
	}
}
