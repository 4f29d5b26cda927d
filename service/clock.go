package service

import (
	"sync/atomic"
	"time"
)

// wallClock reads the wall clock cheaply for expiry checks on the hot
// path: a wall-clock base (with its monotonic reading) plus the monotonic
// time elapsed since, which costs one monotonic read instead of two
// clock reads. The base is renewed every second by Run, so clock
// adjustments reach it within a second.
type wallClock struct {
	base atomic.Pointer[time.Time]
}

func newWallClock() *wallClock {
	c := &wallClock{}
	c.rebase()
	return c
}

func (c *wallClock) rebase() {
	now := time.Now()
	c.base.Store(&now)
}

func (c *wallClock) unixNano() int64 {
	b := c.base.Load()
	return b.UnixNano() + int64(time.Since(*b))
}
