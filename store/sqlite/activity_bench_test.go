package sqlite

import (
	"fmt"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
)

// activityStore fills a store with a busy token's requests (one every 30
// seconds for the 90 days audit events are kept by default, 259,200) and
// as many from four other tokens, and returns it with the end of that
// time.
func activityStore(b *testing.B) (*Store, time.Time) {
	b.Helper()
	s, _ := openTemp(b)
	const span, every = 90 * 24 * time.Hour, 30 * time.Second
	batch := make([]gatehouse.Event, 0, 2000)
	flush := func() {
		if err := s.AppendEvents(b.Context(), batch); err != nil {
			b.Fatal(err)
		}
		batch = batch[:0]
	}
	n := int(span / every)
	for i := range 2 * n {
		tok := "busy"
		if i%2 == 1 {
			tok = fmt.Sprintf("other-%d", i%8)
		}
		decision := "allow"
		if i%17 == 0 {
			decision = "deny"
		}
		batch = append(batch, gatehouse.Event{
			Time: benchT0.Add(time.Duration(i/2) * every), Type: gatehouse.EventRequest,
			Actor: "ci", Account: "ci", TokenID: tok, TokenKind: gatehouse.KindAPI,
			Method: "GET", Path: "/api/v1/applications/web", Route: "GET /api/v1/applications/{name}",
			Resource: "applications", Action: "get", Object: "team-a/web", Decision: decision, Via: gatehouse.ViaPolicy,
			Status: 200, RemoteAddr: "192.0.2.10", UserAgent: "ci/1.0",
		})
		if len(batch) == cap(batch) {
			flush()
		}
	}
	flush()
	return s, benchT0.Add(span)
}

// BenchmarkRequestsByHour: the dashboard's activity chart of the busy
// token, its last 7 days (20,160 of its 259,200 requests).
func BenchmarkRequestsByHour(b *testing.B) {
	s, end := activityStore(b)
	ctx := b.Context()
	until := end.Truncate(time.Hour)
	since := until.Add(-7 * 24 * time.Hour)
	for b.Loop() {
		err := s.View(ctx, func(tx gatehouse.Tx) error {
			hours, err := tx.RequestsByHour(ctx, "busy", since, until)
			if err == nil && len(hours) != 7*24 {
				err = fmt.Errorf("%d hours, want %d", len(hours), 7*24)
			}
			return err
		})
		if err != nil {
			b.Fatal(err)
		}
	}
}
