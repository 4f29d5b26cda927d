package service

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gatehouse/gatehouse"
)

// Readiness says whether this server can commit, which a read cannot
// tell: a full disk, a read-only remount and a deleted database file all
// still answer reads. Only a committed write shows it, and /readyz is
// unauthenticated, so a write per request would let anyone make the
// server write as fast as they can ask. A monitor (started by Run) probes
// in the background instead, and Ready answers from its latest verdict.
const (
	probeInterval = time.Second
	// probeTimeout bounds one probe, so that a store that hangs does not
	// stop the monitor for good.
	probeTimeout = 10 * time.Second
	// verdictTTL is how long a verdict is trusted. The monitor renews it
	// every probeInterval; an older one means the probe under way hangs
	// (or no monitor runs) and the store cannot be called ready.
	verdictTTL = 2 * time.Second
)

// readiness holds the latest verdict on the store. Its zero value is ready
// to use: no verdict yet. Freshness is measured on the wall clock, not on
// Options.Now, because what it bounds is how long the real store has not
// answered.
type readiness struct {
	// lost is set while the latest verdict is a failure. The hot path reads
	// it: a server that cannot commit cannot revoke, so it must not go on
	// accepting tokens (see AuthenticateInto).
	lost atomic.Bool
	// draining is set by Drain and never cleared.
	draining atomic.Bool

	mu      sync.Mutex
	err     error     // the latest probe's error; nil is ready
	at      time.Time // when the latest probe finished; zero before the first
	running *probeRun // the probe under way, if any
}

// probeRun is one probe; done is closed when it has finished and its
// verdict is recorded.
type probeRun struct {
	started time.Time
	done    chan struct{}
}

// Ready reports whether the store can take writes, as EUNAVAILABLE when
// not. It never writes itself while the monitor runs: it answers from the
// latest probe, and at once when the store reports its files lost. Without
// a fresh verdict (before the monitor's first probe, or when Run is not
// running) it starts one probe and waits for it; concurrent callers share
// it, so readiness requests never cause more than one probe at a time.
func (s *Service) Ready(ctx context.Context) error {
	if s.ready.draining.Load() {
		return errDraining
	}
	if s.follow.stale.Load() {
		return errStale // first: a stale replica's store may not answer at all
	}
	if err := s.store.Check(ctx); err != nil {
		s.ready.lost.Store(true)
		return notReady(err)
	}
	r := &s.ready
	r.mu.Lock()
	now := time.Now()
	if !r.at.IsZero() && now.Sub(r.at) < verdictTTL {
		err := r.err
		r.mu.Unlock()
		return notReady(err)
	}
	run := r.running
	if run != nil && !r.at.IsZero() {
		// The monitor's probe has not renewed the verdict in time: a
		// commit takes longer than it may.
		r.mu.Unlock()
		return notReady(gatehouse.Errorf(gatehouse.EUNAVAILABLE, "store probe running for %s", now.Sub(run.started).Round(time.Millisecond)))
	}
	if run == nil {
		run = s.startProbe()
	}
	r.mu.Unlock()
	select {
	case <-run.done:
	case <-ctx.Done():
		return notReady(ctx.Err())
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return notReady(r.err)
}

// Drain makes Ready answer EUNAVAILABLE from now on: the server is about
// to stop, and a load balancer that checks readiness should send its
// requests elsewhere. Everything else keeps working, so that the requests
// it still sends meanwhile succeed.
func (s *Service) Drain() { s.ready.draining.Store(true) }

var errDraining = gatehouse.Errorf(gatehouse.EUNAVAILABLE, "this server is shutting down")

// notReady turns a probe's error into Ready's answer: EUNAVAILABLE with a
// safe message whatever the cause, which stays in the chain for the log.
func notReady(cause error) error {
	if cause == nil {
		return nil
	}
	return &gatehouse.Error{Code: gatehouse.EUNAVAILABLE, Message: "store unavailable", Err: cause}
}

// startProbe starts a probe of the store in the background and returns it.
// The caller holds s.ready.mu and has checked that none is under way. The
// probe does not run on a caller's context: a readiness request that gives
// up must not leave a verdict that the store failed.
func (s *Service) startProbe() *probeRun {
	run := &probeRun{started: time.Now(), done: make(chan struct{})}
	s.ready.running = run
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), probeTimeout)
		err := s.store.Check(ctx)
		if err == nil {
			err = s.store.Ping(ctx)
		}
		cancel()
		s.recordProbe(err)
		close(run.done)
	}()
	return run
}

// recordProbe stores a probe's verdict and logs a change of it, once: the
// cause of a failure, and the recovery.
func (s *Service) recordProbe(err error) {
	r := &s.ready
	r.mu.Lock()
	first, was := r.at.IsZero(), r.err
	r.err, r.at, r.running = err, time.Now(), nil
	r.lost.Store(err != nil)
	r.mu.Unlock()
	switch {
	case err != nil && (first || was == nil):
		s.log.Error("store cannot commit: not ready, writes fail", "err", err)
	case err == nil && was != nil:
		s.log.Info("store commits again: ready")
	}
}

// monitorStore probes the store every probeInterval until ctx ends, and
// returns a function that waits for it to stop: the probe writes, so it
// must be done before the store closes.
func (s *Service) monitorStore(ctx context.Context) (wait func()) {
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		tick := time.NewTicker(probeInterval)
		defer tick.Stop()
		for {
			r := &s.ready
			r.mu.Lock()
			run := r.running
			if run == nil {
				run = s.startProbe()
			}
			r.mu.Unlock()
			// Wait for the probe even when ctx ends, for the reason above;
			// probeTimeout bounds the wait.
			<-run.done
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	return func() { <-stopped }
}
