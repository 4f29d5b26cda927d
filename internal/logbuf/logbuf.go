// Package logbuf is the server log's asynchronous writer: the request path
// appends a line to memory and never waits for the disk, and one goroutine
// writes what has gathered every interval (100 ms by default), sooner when
// a good amount has, and on Close.
//
// The memory is bounded. A line that would take the unwritten bytes past
// the bound is dropped and counted (Dropped) rather than making the caller
// wait: a log that falls behind must not slow the service it records.
// Lines are written whole and in the order Write received them. What a
// crash loses is what had not been written yet: at most about one
// interval of lines.
package logbuf

import (
	"io"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults for New.
const (
	DefaultInterval = 100 * time.Millisecond
	DefaultMaxBytes = 8 << 20 // unwritten bytes at most
	// flushAt is how much makes the writer go before its interval ends.
	flushAt = 64 << 10
)

// Writer is an io.Writer that writes to the underlying writer in the
// background. It is safe for concurrent use; each Write should be one
// whole line (log/slog's handlers write one record per call).
type Writer struct {
	w        io.Writer
	interval time.Duration
	max      int

	// wmu serializes writes to w: the background writer's, and those of
	// Write after Close, which must come after the final flush.
	wmu sync.Mutex

	mu       sync.Mutex
	buf      []byte // gathered, not yet taken by the writer
	inFlight int    // bytes the writer has taken and is writing
	closed   bool
	err      error // the last write error, reported by Close

	kick      chan struct{} // a flush is due before the interval ends
	flushed   *sync.Cond    // on mu: a write has finished
	stop      chan struct{}
	closeOnce sync.Once
	done      chan struct{}
	dropped   atomic.Uint64
	seq       uint64 // writes finished, on mu
}

// New starts a Writer on w. interval <= 0 and maxBytes <= 0 take the
// defaults.
func New(w io.Writer, interval time.Duration, maxBytes int) *Writer {
	if interval <= 0 {
		interval = DefaultInterval
	}
	if maxBytes <= 0 {
		maxBytes = DefaultMaxBytes
	}
	lw := &Writer{w: w, interval: interval, max: maxBytes, buf: make([]byte, 0, flushAt*2),
		kick: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	lw.flushed = sync.NewCond(&lw.mu)
	go lw.run()
	return lw
}

// Write queues p. It never blocks on the underlying writer: when the
// unwritten bytes would exceed the bound, p is dropped and counted. It
// reports len(p) either way, so that a logger does not retry. After Close
// it writes through, synchronously.
func (lw *Writer) Write(p []byte) (int, error) {
	lw.mu.Lock()
	if lw.closed {
		lw.mu.Unlock()
		lw.wmu.Lock()
		defer lw.wmu.Unlock()
		return lw.w.Write(p)
	}
	if len(lw.buf)+lw.inFlight+len(p) > lw.max {
		lw.mu.Unlock()
		lw.dropped.Add(1)
		return len(p), nil
	}
	lw.buf = append(lw.buf, p...)
	full := len(lw.buf) >= flushAt
	lw.mu.Unlock()
	if full {
		select {
		case lw.kick <- struct{}{}:
		default:
		}
	}
	return len(p), nil
}

// Dropped is how many lines were dropped because the bound was reached.
func (lw *Writer) Dropped() uint64 { return lw.dropped.Load() }

// Flush writes what has been queued before it was called, and returns once
// that is written.
func (lw *Writer) Flush() {
	lw.mu.Lock()
	if lw.closed {
		lw.mu.Unlock()
		return
	}
	target := lw.seq + 1
	if lw.inFlight > 0 {
		target++ // the write under way does not hold all of buf
	}
	lw.mu.Unlock()
	select {
	case lw.kick <- struct{}{}:
	default:
	}
	lw.mu.Lock()
	defer lw.mu.Unlock()
	for lw.seq < target {
		if lw.closed { // the final flush, under way, writes it all
			lw.mu.Unlock()
			<-lw.done
			lw.mu.Lock()
			return
		}
		lw.flushed.Wait()
	}
}

// Close writes everything queued, stops the background writer and returns
// the last write error, if any. Later writes go straight through.
func (lw *Writer) Close() error {
	lw.closeOnce.Do(func() { close(lw.stop) })
	<-lw.done
	lw.mu.Lock()
	defer lw.mu.Unlock()
	return lw.err
}

func (lw *Writer) run() {
	defer close(lw.done)
	t := time.NewTicker(lw.interval)
	defer t.Stop()
	spare := make([]byte, 0, flushAt*2)
	for {
		stopping := false
		select {
		case <-t.C:
		case <-lw.kick:
		case <-lw.stop:
			stopping = true
		}
		spare = lw.writeOnce(spare, stopping)
		if stopping {
			return
		}
	}
}

// writeOnce takes what is gathered, leaving spare in its place, writes it,
// and returns the taken buffer, emptied, as the next spare. When last is
// set it marks the writer closed under the same lock, so no line can slip
// in between the final take and the close.
func (lw *Writer) writeOnce(spare []byte, last bool) []byte {
	lw.mu.Lock()
	out := lw.buf
	lw.buf = spare[:0]
	lw.inFlight = len(out)
	if last {
		lw.closed = true
	}
	lw.wmu.Lock() // before mu is let go: see wmu
	lw.mu.Unlock()
	var err error
	if len(out) > 0 {
		_, err = lw.w.Write(out)
	}
	lw.wmu.Unlock()
	lw.mu.Lock()
	lw.inFlight = 0
	lw.seq++
	if err != nil {
		lw.err = err
	}
	lw.flushed.Broadcast()
	lw.mu.Unlock()
	if cap(out) > 4*flushAt*2 {
		out = make([]byte, 0, flushAt*2) // do not keep a burst's buffer
	}
	return out[:0]
}
