package storetest

import (
	"fmt"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
)

// event returns a request event at t0 plus i minutes.
func event(i int, actor, tokenID, decision string) gatehouse.Event {
	return gatehouse.Event{
		Time:       at(time.Duration(i) * time.Minute),
		Type:       gatehouse.EventRequest,
		Actor:      actor,
		TokenID:    tokenID,
		TokenKind:  gatehouse.KindAPI,
		Method:     "GET",
		Path:       fmt.Sprintf("/api/v1/applications/app-%d", i),
		Resource:   "applications",
		Action:     "get",
		Object:     fmt.Sprintf("web/app-%d", i),
		Decision:   decision,
		Via:        gatehouse.ViaPolicy,
		Route:      "GET /api/v1/applications/{name}",
		Account:    actor,
		Status:     200,
		RemoteAddr: "192.0.2.10:5555",
		UserAgent:  "gatehouse-cli/1.0",
		Detail:     "",
	}
}

// allEvents lists every event, newest first.
func allEvents(t *testing.T, s gatehouse.Store) []gatehouse.Event {
	t.Helper()
	return read(t, s, func(tx gatehouse.Tx) ([]gatehouse.Event, error) {
		return tx.ListEvents(t.Context(), gatehouse.EventFilter{})
	})
}

func eventIDs(es []gatehouse.Event) []int64 {
	out := []int64{}
	for _, e := range es {
		out = append(out, e.ID)
	}
	return out
}

func testEventIDs(t *testing.T, open func(t *testing.T) gatehouse.Store) {
	s := open(t)
	ctx := t.Context()
	if got := allEvents(t, s); got == nil || len(got) != 0 {
		t.Errorf("ListEvents on an empty store: got %#v, want []", got)
	}

	first := []gatehouse.Event{event(1, "alice", "t1", "allow"), event(2, "bob", "t2", "deny")}
	second := []gatehouse.Event{event(3, "carol", "", "allow")}
	third := []gatehouse.Event{
		{Time: at(4 * time.Minute), Type: gatehouse.EventTokenRevoked, Actor: "admin", TokenID: "t1", TokenKind: gatehouse.KindAPI, Detail: "break-glass"},
		{Time: at(5 * time.Minute), Type: gatehouse.EventLoginFailed, Actor: "mallory", RemoteAddr: "198.51.100.1:4444", Status: 401},
	}
	// Both ways in: the request-path batcher and a service transaction.
	if err := s.AppendEvents(ctx, first); err != nil {
		t.Fatalf("AppendEvents: %v", err)
	}
	inTx(t, s, func(tx gatehouse.Tx) error { return tx.AppendEvents(ctx, second) })
	if err := s.AppendEvents(ctx, nil); err != nil {
		t.Fatalf("AppendEvents(nil): %v", err)
	}
	if err := s.AppendEvents(ctx, third); err != nil {
		t.Fatalf("AppendEvents: %v", err)
	}

	got := allEvents(t, s)
	in := append(append(append([]gatehouse.Event{}, first...), second...), third...)
	if len(got) != len(in) {
		t.Fatalf("ListEvents: got %d events, want %d", len(got), len(in))
	}
	// Newest first, ids strictly increasing in the order of appending.
	for i := range got {
		want := in[len(in)-1-i]
		want.ID = got[i].ID
		equal(t, fmt.Sprintf("event %d", i), got[i], want)
		if i > 0 && got[i].ID >= got[i-1].ID {
			t.Errorf("event ids not strictly decreasing in the list: %v", eventIDs(got))
		}
	}
	if got[len(got)-1].ID <= 0 {
		t.Errorf("first event id: got %d, want > 0 (0 is BeforeID's 'no cursor')", got[len(got)-1].ID)
	}
}

// filterEvents appends the fixture of the EventFilter tests: event i
// happens at t0+i minutes. It returns the ids in appending order.
func filterEvents(t *testing.T, s gatehouse.Store) []int64 {
	t.Helper()
	es := []gatehouse.Event{
		event(0, "alice", "t1", "allow"),
		event(1, "alice", "t1", "deny"),
		event(2, "bob", "t2", "allow"),
		event(3, "alice", "t3", "allow"),
		event(4, "bob", "t2", "deny"),
		event(5, "carol", "", "allow"),
	}
	es[2].Action, es[4].Action = "sync", "sync"
	es[2].Route = "POST /api/v1/applications/{name}/sync"
	es[4].Route = es[2].Route
	es[1].Status, es[4].Status = 403, 403
	// Bob acted on something of alice's; carol's login concerns carol.
	es[4].Account = "alice"
	es[3].Resource, es[3].Object = "accounts", "alice"
	es[5].Type, es[5].TokenKind, es[5].Decision = gatehouse.EventLoginSucceeded, "", ""
	es[3].Type = gatehouse.EventTokenCreated
	if err := s.AppendEvents(t.Context(), es); err != nil {
		t.Fatalf("AppendEvents: %v", err)
	}
	got := allEvents(t, s)
	out := make([]int64, len(got))
	for i, e := range got {
		out[len(got)-1-i] = e.ID
	}
	return out
}

func testEventFilter(t *testing.T, open func(t *testing.T) gatehouse.Store) {
	s := open(t)
	id := filterEvents(t, s)
	// pick returns the ids of events i..., which the tests list newest first.
	pick := func(is ...int) []int64 {
		out := []int64{}
		for _, i := range is {
			out = append(out, id[i])
		}
		return out
	}
	tests := []struct {
		name string
		f    gatehouse.EventFilter
		want []int64
	}{
		{"ok/empty filter", gatehouse.EventFilter{}, pick(5, 4, 3, 2, 1, 0)},
		{"ok/actor", gatehouse.EventFilter{Actor: "alice"}, pick(3, 1, 0)},
		{"ok/token id", gatehouse.EventFilter{TokenID: "t2"}, pick(4, 2)},
		{"ok/type", gatehouse.EventFilter{Type: gatehouse.EventRequest}, pick(4, 2, 1, 0)},
		{"ok/action", gatehouse.EventFilter{Action: "sync"}, pick(4, 2)},
		{"ok/decision", gatehouse.EventFilter{Decision: "deny"}, pick(4, 1)},
		{"ok/since is inclusive", gatehouse.EventFilter{Since: at(3 * time.Minute)}, pick(5, 4, 3)},
		{"ok/until is exclusive", gatehouse.EventFilter{Until: at(2 * time.Minute)}, pick(1, 0)},
		{"ok/since and until", gatehouse.EventFilter{Since: at(1 * time.Minute), Until: at(4 * time.Minute)}, pick(3, 2, 1)},
		{"ok/since a nanosecond after", gatehouse.EventFilter{Since: at(3*time.Minute + time.Nanosecond)}, pick(5, 4)},
		{"ok/until a nanosecond after", gatehouse.EventFilter{Until: at(2*time.Minute + time.Nanosecond)}, pick(2, 1, 0)},
		{"ok/before id", gatehouse.EventFilter{BeforeID: id[3]}, pick(2, 1, 0)},
		{"ok/limit", gatehouse.EventFilter{Limit: 2}, pick(5, 4)},
		{"ok/limit above count", gatehouse.EventFilter{Limit: 100}, pick(5, 4, 3, 2, 1, 0)},
		{"ok/actor decision", gatehouse.EventFilter{Actor: "alice", Decision: "allow"}, pick(3, 0)},
		{"ok/actor before id limit", gatehouse.EventFilter{Actor: "alice", BeforeID: id[3], Limit: 1}, pick(1)},
		{"ok/token id action since", gatehouse.EventFilter{TokenID: "t2", Action: "sync", Since: at(3 * time.Minute)}, pick(4)},
		{"ok/every field", gatehouse.EventFilter{
			Actor: "bob", TokenID: "t2", Type: gatehouse.EventRequest, Action: "sync", Decision: "allow",
			Since: at(time.Minute), Until: at(5 * time.Minute), BeforeID: id[5], Limit: 10,
		}, pick(2)},
		{"ok/account", gatehouse.EventFilter{Account: "alice"}, pick(4, 3, 1, 0)},
		{"ok/account is not actor", gatehouse.EventFilter{Account: "bob"}, pick(2)},
		{"ok/actor and account", gatehouse.EventFilter{Actor: "bob", Account: "alice"}, pick(4)},
		{"ok/route", gatehouse.EventFilter{Route: "POST /api/v1/applications/{name}/sync"}, pick(4, 2)},
		{"ok/route is exact", gatehouse.EventFilter{Route: "POST /api/v1/applications/{name}"}, pick()},
		{"ok/status", gatehouse.EventFilter{Status: 403}, pick(4, 1)},
		{"ok/resource", gatehouse.EventFilter{Resource: "accounts"}, pick(3)},
		{"ok/route status", gatehouse.EventFilter{Route: "GET /api/v1/applications/{name}", Status: 403}, pick(1)},
		{"ok/no match", gatehouse.EventFilter{Actor: "mallory"}, pick()},
		{"ok/before the first id", gatehouse.EventFilter{BeforeID: id[0]}, pick()},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := read(t, s, func(tx gatehouse.Tx) ([]gatehouse.Event, error) { return tx.ListEvents(t.Context(), tc.f) })
			if got == nil {
				t.Fatalf("ListEvents(%+v): got nil, want a non-nil slice", tc.f)
			}
			equal(t, fmt.Sprintf("ListEvents(%+v) ids", tc.f), eventIDs(got), tc.want)
		})
	}
}

// testEventPaging walks the trail page by page with the BeforeID cursor,
// as the API does, and must see every event exactly once, newest first.
func testEventPaging(t *testing.T, open func(t *testing.T) gatehouse.Store) {
	s := open(t)
	ctx := t.Context()
	var batch []gatehouse.Event
	for i := range 23 {
		actor := "alice"
		if i%3 == 0 {
			actor = "bob"
		}
		batch = append(batch, event(i, actor, "t1", "allow"))
	}
	if err := s.AppendEvents(ctx, batch); err != nil {
		t.Fatalf("AppendEvents: %v", err)
	}
	tests := []struct {
		name  string
		f     gatehouse.EventFilter
		pages int
	}{
		{"ok/all", gatehouse.EventFilter{Limit: 5}, 5},
		{"ok/exact pages", gatehouse.EventFilter{Limit: 23}, 1},
		{"ok/filtered", gatehouse.EventFilter{Actor: "alice", Limit: 4}, 4},
		{"ok/one by one", gatehouse.EventFilter{Actor: "bob", Limit: 1}, 8},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			unpaged := tc.f
			unpaged.Limit = 0
			want := eventIDs(read(t, s, func(tx gatehouse.Tx) ([]gatehouse.Event, error) { return tx.ListEvents(ctx, unpaged) }))

			walked, pages := []int64{}, 0
			f := tc.f
			for {
				page := read(t, s, func(tx gatehouse.Tx) ([]gatehouse.Event, error) { return tx.ListEvents(ctx, f) })
				if len(page) > f.Limit {
					t.Fatalf("page of %d events, want at most %d", len(page), f.Limit)
				}
				if len(page) == 0 {
					break
				}
				pages++
				walked = append(walked, eventIDs(page)...)
				if pages > len(batch) {
					t.Fatalf("paging does not end: %v", walked)
				}
				f.BeforeID = page[len(page)-1].ID
			}
			equal(t, "walked ids", walked, want)
			if pages != tc.pages {
				t.Errorf("got %d non-empty pages, want %d", pages, tc.pages)
			}
		})
	}
}

func testPruneEvents(t *testing.T, open func(t *testing.T) gatehouse.Store) {
	s := open(t)
	ctx := t.Context()
	id := filterEvents(t, s) // events at t0+0..5 minutes
	steps := []struct {
		name   string
		before time.Time
		want   int
		left   []int64
	}{
		{"ok/nothing older", at(-time.Hour), 0, []int64{id[5], id[4], id[3], id[2], id[1], id[0]}},
		{"ok/strictly older", at(2 * time.Minute), 2, []int64{id[5], id[4], id[3], id[2]}},
		{"ok/again is a no-op", at(2 * time.Minute), 0, []int64{id[5], id[4], id[3], id[2]}},
		{"ok/all", at(time.Hour), 4, []int64{}},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			n := read(t, s, func(tx gatehouse.Tx) (int, error) { return tx.PruneEvents(ctx, st.before) })
			if n != st.want {
				t.Errorf("PruneEvents(%v): got %d, want %d", st.before, n, st.want)
			}
			equal(t, "events left", eventIDs(allEvents(t, s)), st.left)
		})
	}
	// Ids are not reused after a prune: an old cursor must not see new events
	// as old ones.
	if err := s.AppendEvents(ctx, []gatehouse.Event{event(9, "dave", "", "allow")}); err != nil {
		t.Fatalf("AppendEvents: %v", err)
	}
	got := allEvents(t, s)
	if len(got) != 1 || got[0].ID <= id[5] {
		t.Errorf("event appended after pruning all: got ids %v, want one id above %d", eventIDs(got), id[5])
	}
}
