package storetest

import (
	"slices"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
)

// testRequestsByHour: one token's request events counted by the UTC hour
// they fall in, denials apart: only that token's, only requests, only in
// [since, until); hours on the boundaries land in the right bucket, an
// hour before 1970 too, and hours without requests are left out.
func testRequestsByHour(t *testing.T, open func(t *testing.T) gatehouse.Store) {
	s := open(t)
	ctx := t.Context()
	h0 := t0.Truncate(time.Hour)
	req := func(tokenID string, tm time.Time, decision string) gatehouse.Event {
		e := event(0, "alice", tokenID, decision)
		e.Time = tm
		return e
	}
	revoked := req("t1", h0.Add(10*time.Minute), "")
	revoked.Type = gatehouse.EventTokenRevoked
	events := []gatehouse.Event{
		req("t1", h0.Add(-time.Nanosecond), "allow"), // before since
		req("t1", h0, "allow"),
		req("t1", h0.Add(5*time.Minute), "allow"),
		req("t1", h0.Add(50*time.Minute), "deny"),
		req("t1", h0.Add(time.Hour-time.Nanosecond), "deny"),
		revoked, // not a request
		req("t2", h0.Add(20*time.Minute), "deny"), // another token
		req("t1", h0.Add(time.Hour), "deny"),
		req("t1", h0.Add(3*time.Hour+30*time.Minute), "allow"),
		req("t1", h0.Add(3*time.Hour+31*time.Minute), ""), // not denied: allowed
		req("t1", h0.Add(5*time.Hour), "allow"),           // at until
		req("t3", time.Unix(-1, 0), "deny"),               // 1969-12-31 23:59:59
		req("t3", time.Unix(-3600, 0), "allow"),           // 1969-12-31 23:00:00
		req("t3", time.Unix(0, 0), "allow"),
	}
	if err := s.AppendEvents(ctx, events); err != nil {
		t.Fatalf("AppendEvents: %v", err)
	}
	count := func(tokenID string, since, until time.Time) []gatehouse.HourCount {
		t.Helper()
		var got []gatehouse.HourCount
		inView(t, s, func(tx gatehouse.Tx) (err error) {
			got, err = tx.RequestsByHour(ctx, tokenID, since, until)
			return err
		})
		return got
	}
	for _, tc := range []struct {
		name         string
		token        string
		since, until time.Time
		want         []gatehouse.HourCount
	}{
		{"window", "t1", h0, h0.Add(5 * time.Hour), []gatehouse.HourCount{
			{Hour: h0, Allowed: 2, Denied: 2},
			{Hour: h0.Add(time.Hour), Denied: 1},
			{Hour: h0.Add(3 * time.Hour), Allowed: 2},
		}},
		{"unbounded", "t1", time.Time{}, time.Time{}, []gatehouse.HourCount{
			{Hour: h0.Add(-time.Hour), Allowed: 1},
			{Hour: h0, Allowed: 2, Denied: 2},
			{Hour: h0.Add(time.Hour), Denied: 1},
			{Hour: h0.Add(3 * time.Hour), Allowed: 2},
			{Hour: h0.Add(5 * time.Hour), Allowed: 1},
		}},
		{"one hour", "t1", h0.Add(time.Hour), h0.Add(2 * time.Hour), []gatehouse.HourCount{
			{Hour: h0.Add(time.Hour), Denied: 1},
		}},
		{"before 1970", "t3", time.Time{}, time.Time{}, []gatehouse.HourCount{
			{Hour: time.Unix(-3600, 0).UTC(), Allowed: 1, Denied: 1},
			{Hour: time.Unix(0, 0).UTC(), Allowed: 1},
		}},
		{"no requests in the window", "t2", h0.Add(time.Hour), h0.Add(2 * time.Hour), []gatehouse.HourCount{}},
		{"unknown token", "nope", time.Time{}, time.Time{}, []gatehouse.HourCount{}},
	} {
		got := count(tc.token, tc.since, tc.until)
		if got == nil || !slices.Equal(got, tc.want) {
			t.Errorf("%s: RequestsByHour(%s, %v, %v) = %#v, want %#v", tc.name, tc.token, tc.since, tc.until, got, tc.want)
		}
		for _, c := range got {
			if c.Hour.Location() != time.UTC {
				t.Errorf("%s: hour %v is not in UTC", tc.name, c.Hour)
			}
		}
	}
}

// testCountedEvents: an event's Count is stored and read back (a count of
// one reads back as none), hashed into the chain, and added up by
// RequestsByHour.
func testCountedEvents(t *testing.T, open func(t *testing.T) gatehouse.Store) {
	s := open(t)
	ctx := t.Context()
	h0 := t0.Truncate(time.Hour)
	var events []gatehouse.Event
	for i, n := range []int{0, 1, 2, 250, 1} {
		e := event(0, "alice", "t1", "allow")
		e.Time, e.Count = h0.Add(time.Duration(i)*time.Minute), n
		events = append(events, e)
	}
	denied := event(0, "alice", "t1", "deny")
	denied.Time, denied.Count = h0, 3
	events = append(events, denied)
	if err := s.AppendEvents(ctx, events); err != nil {
		t.Fatalf("AppendEvents: %v", err)
	}
	var counts []int
	for _, e := range slices.Backward(allEvents(t, s)) {
		counts = append(counts, e.Count)
	}
	if want := []int{0, 0, 2, 250, 0, 3}; !slices.Equal(counts, want) {
		t.Errorf("counts read back %v, want %v", counts, want)
	}
	for _, e := range chainedEvents(t, s) {
		if e.Unreadable {
			t.Errorf("event %d unreadable", e.ID)
		}
	}
	if res := VerifyChain(t, s, 2, nil); !res.OK {
		t.Errorf("a chain with counted events does not verify: %+v", res)
	}
	var got []gatehouse.HourCount
	inView(t, s, func(tx gatehouse.Tx) (err error) {
		got, err = tx.RequestsByHour(ctx, "t1", time.Time{}, time.Time{})
		return err
	})
	if want := []gatehouse.HourCount{{Hour: h0, Allowed: 1 + 1 + 2 + 250 + 1, Denied: 3}}; !slices.Equal(got, want) {
		t.Errorf("RequestsByHour = %+v, want %+v", got, want)
	}
}
