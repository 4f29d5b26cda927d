package service

import (
	"context"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/store/sqlite"
)

// stalledStore holds every AppendEvents until gate closes, as a stalled
// disk or an unreachable database does.
type stalledStore struct {
	gatehouse.Store
	gate    chan struct{}
	entered chan struct{}
	calls   atomic.Int64
}

func (s *stalledStore) AppendEvents(ctx context.Context, evs []gatehouse.Event) error {
	s.calls.Add(1)
	select {
	case s.entered <- struct{}{}:
	default:
	}
	<-s.gate
	return s.Store.AppendEvents(ctx, evs)
}

func counterValue(t *testing.T, c interface{ Write(*dto.Metric) error }) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

// requestEvents is how many requests the stored request events stand for
// (alike reads are counted, not repeated).
func requestEvents(t *testing.T, st gatehouse.Store) int {
	t.Helper()
	var evs []gatehouse.Event
	err := st.View(t.Context(), func(tx gatehouse.Tx) error {
		var err error
		evs, err = tx.ListEvents(t.Context(), gatehouse.EventFilter{Type: gatehouse.EventRequest, Limit: 100_000})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range evs {
		n += e.Requests()
	}
	return n
}

// While the store is stalled, RecordRequest still returns at once and
// keeps every event; once the queue is full, AdmitRequest refuses new
// requests (503) and counts them, so that none is served unaudited. When
// the store recovers, everything queued is written and requests are
// admitted again.
func TestRecordRequestNeverWaitsForAStalledStore(t *testing.T) {
	st, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "audit.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	stalled := &stalledStore{Store: st, gate: make(chan struct{}), entered: make(chan struct{}, 1)}
	const size = 100
	m := NewMetrics(nil)
	svc, err := New(t.Context(), Options{Store: stalled, AuditQueue: size, Metrics: m})
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); svc.Run(ctx, time.Hour) }()

	ev := gatehouse.Event{Actor: "alice", Method: "GET", Path: "/api/v1/session/userinfo", Decision: "allow", Status: 200}
	svc.RecordRequest(ev)
	select {
	case <-stalled.entered: // the writer has taken it and is stuck in the store
	case <-time.After(10 * time.Second):
		t.Fatal("the audit writer never started a write")
	}

	recorded := make(chan struct{})
	go func() {
		defer close(recorded)
		for range size + 150 {
			svc.RecordRequest(ev)
		}
	}()
	select {
	case <-recorded:
	case <-time.After(10 * time.Second):
		t.Fatal("RecordRequest blocked on a stalled store")
	}
	// Events of requests already admitted are all kept, past the bound.
	refused := 0
	for range 20 {
		if err := svc.AdmitRequest(); gatehouse.IsCode(err, gatehouse.EUNAVAILABLE) {
			refused++
		}
	}
	if refused != 20 {
		t.Errorf("AdmitRequest with a full queue admitted %d of 20", 20-refused)
	}
	if got, want := counterValue(t, m.auditDrops), 20.0; got != want {
		t.Errorf("gatehouse_audit_refused_requests_total = %v, want %v", got, want)
	}

	close(stalled.gate) // the store recovers
	stop()
	<-done
	if got, want := requestEvents(t, st), 1+size+150; got != want {
		t.Errorf("%d request events stored, want %d: every one recorded, none dropped", got, want)
	}
	if err := svc.AdmitRequest(); err != nil {
		t.Errorf("after the store recovered and the queue drained: %v", err)
	}
}

// Every event queued before a clean shutdown is written by it, however
// many are still queued or being written when it starts.
func TestRunWritesEveryQueuedEventOnShutdown(t *testing.T) {
	st, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "audit.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	svc, err := New(t.Context(), Options{Store: st})
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); svc.Run(ctx, time.Hour) }()
	const writers, each = 8, 2000
	finished := make(chan struct{}, writers)
	for w := range writers {
		go func() {
			for i := range each {
				svc.RecordRequest(gatehouse.Event{Actor: "alice", Status: 200 + w, Detail: string(rune('a' + i%26))})
			}
			finished <- struct{}{}
		}()
	}
	for range writers {
		<-finished
	}
	stop()
	<-done
	if got, want := requestEvents(t, st), writers*each; got != want {
		t.Errorf("%d request events stored after shutdown, want %d", got, want)
	}
}
