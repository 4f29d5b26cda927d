package service

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
)

// TestCountReads: alike allowed reads of one minute become one counted
// event; anything else, or anything between, keeps them apart.
func TestCountReads(t *testing.T) {
	t0 := time.Date(2026, 12, 2, 10, 0, 30, 0, time.UTC)
	read := func(sec int) gatehouse.Event {
		return gatehouse.Event{Type: gatehouse.EventRequest, Time: t0.Add(time.Duration(sec) * time.Second), Actor: "alice",
			Account: "alice", TokenID: "t1", Method: "GET", Path: "/api/v1/applications/web", Route: "GET /api/v1/applications/{name}",
			Resource: "applications", Action: "get", Object: "team-a/web", Decision: "allow", Via: gatehouse.ViaPolicy, Status: 200,
			RemoteAddr: "192.0.2.1", UserAgent: "ci"}
	}
	with := func(sec int, edit func(*gatehouse.Event)) gatehouse.Event { e := read(sec); edit(&e); return e }
	counts := func(evs []gatehouse.Event) []int {
		var out []int
		for _, e := range evs {
			out = append(out, e.Requests())
		}
		return out
	}
	for name, tc := range map[string]struct {
		in   []gatehouse.Event
		want []int
	}{
		"ok/three alike reads are one":        {[]gatehouse.Event{read(0), read(1), read(2)}, []int{3}},
		"ok/HEAD counts too":                  {[]gatehouse.Event{with(0, func(e *gatehouse.Event) { e.Method = "HEAD" }), with(1, func(e *gatehouse.Event) { e.Method = "HEAD" })}, []int{2}},
		"ok/interleaved tokens count apart":   {[]gatehouse.Event{read(0), with(1, func(e *gatehouse.Event) { e.TokenID = "t2" }), read(2), with(3, func(e *gatehouse.Event) { e.TokenID = "t2" })}, []int{2, 2}},
		"keep/the next minute starts a count": {[]gatehouse.Event{read(0), read(29), read(30)}, []int{2, 1}},
		"keep/a denial between":               {[]gatehouse.Event{read(0), with(1, func(e *gatehouse.Event) { e.Decision = "deny"; e.Status = 403 }), read(2)}, []int{1, 1, 1}},
		"keep/a write between":                {[]gatehouse.Event{read(0), with(1, func(e *gatehouse.Event) { e.Method = "POST" }), read(2)}, []int{1, 1, 1}},
		"keep/a lifecycle event between":      {[]gatehouse.Event{read(0), {Type: gatehouse.EventTokenRevoked, Time: t0}, read(2)}, []int{1, 1, 1}},
		"keep/denials are never counted":      {[]gatehouse.Event{with(0, func(e *gatehouse.Event) { e.Decision = "deny" }), with(1, func(e *gatehouse.Event) { e.Decision = "deny" })}, []int{1, 1}},
		"keep/writes are never counted":       {[]gatehouse.Event{with(0, func(e *gatehouse.Event) { e.Method = "DELETE" }), with(0, func(e *gatehouse.Event) { e.Method = "DELETE" })}, []int{1, 1}},
		"keep/another status":                 {[]gatehouse.Event{read(0), with(1, func(e *gatehouse.Event) { e.Status = 404 })}, []int{1, 1}},
		"keep/another client address":         {[]gatehouse.Event{read(0), with(1, func(e *gatehouse.Event) { e.RemoteAddr = "192.0.2.2" })}, []int{1, 1}},
		"keep/another user agent":             {[]gatehouse.Event{read(0), with(1, func(e *gatehouse.Event) { e.UserAgent = "ci2" })}, []int{1, 1}},
		"keep/another path":                   {[]gatehouse.Event{read(0), with(1, func(e *gatehouse.Event) { e.Path += "x" })}, []int{1, 1}},
		"keep/forward auth of a POST":         {[]gatehouse.Event{with(0, func(e *gatehouse.Event) { e.Method = "POST"; e.Detail = "forward auth" }), with(1, func(e *gatehouse.Event) { e.Method = "POST"; e.Detail = "forward auth" })}, []int{1, 1}},
	} {
		t.Run(name, func(t *testing.T) {
			in := slices.Clone(tc.in)
			got := countReads(in)
			if !slices.Equal(counts(got), tc.want) {
				t.Fatalf("counts %v, want %v", counts(got), tc.want)
			}
			if !got[0].Time.Equal(tc.in[0].Time) {
				t.Errorf("the first event's time %v became %v", tc.in[0].Time, got[0].Time)
			}
		})
	}
}

// TestCountReadsProperty checks countReads against a model written the
// other way round (cut the batch at every event kept on its own, then
// group each piece's reads by what they are and their minute), over
// random batches with a fixed seed, and checks what the audit trail
// promises: every request accounted for, every other event kept, in
// order, and no count spanning one.
func TestCountReadsProperty(t *testing.T) {
	rng := rand.New(rand.NewPCG(17, 2026))
	t0 := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
	pick := func(xs ...string) string { return xs[rng.IntN(len(xs))] }
	random := func() gatehouse.Event {
		if rng.IntN(10) == 0 {
			return gatehouse.Event{Type: pick(gatehouse.EventTokenRevoked, gatehouse.EventLoginFailed), Time: t0, Actor: pick("a", "b")}
		}
		return gatehouse.Event{Type: gatehouse.EventRequest, Time: t0.Add(time.Duration(rng.IntN(150)) * time.Second),
			TokenID: pick("t1", "t2", "t3"), Method: pick("GET", "GET", "GET", "HEAD", "POST", "get"), Path: pick("/a", "/b"),
			Decision: pick("allow", "allow", "allow", "deny"), Status: []int{200, 200, 404}[rng.IntN(3)],
			RemoteAddr: pick("192.0.2.1", "192.0.2.2"), UserAgent: pick("", "ci")}
	}
	cases := 4000
	if testing.Short() {
		cases = 500
	}
	for c := range cases {
		in := make([]gatehouse.Event, rng.IntN(60))
		for i := range in {
			in[i] = random()
		}
		got := countReads(slices.Clone(in))
		want := modelCountReads(in)
		if !slices.EqualFunc(got, want, func(a, b gatehouse.Event) bool { return a == b }) {
			t.Fatalf("case %d: countReads(%+v)\n = %+v\nwant %+v", c, in, got, want)
		}
		// Every request is accounted for; what is kept alone is kept as is.
		total, alone := 0, []gatehouse.Event{}
		for _, e := range got {
			total += e.Requests()
			if e.Count > 1 && !countable(e) {
				t.Fatalf("case %d: %+v counted", c, e)
			}
			if !countable(e) {
				alone = append(alone, e)
			}
		}
		var wantAlone []gatehouse.Event
		for _, e := range in {
			if !countable(e) {
				wantAlone = append(wantAlone, e)
			}
		}
		if total != len(in) || !slices.Equal(alone, append([]gatehouse.Event{}, wantAlone...)) {
			t.Fatalf("case %d: %d requests of %d; kept alone %v, want %v", c, total, len(in), alone, wantAlone)
		}
	}
}

// modelCountReads: the batch cut at each event kept on its own; in each
// piece, reads grouped by (everything but time, minute) in the order
// each group first appears.
func modelCountReads(in []gatehouse.Event) []gatehouse.Event {
	var out []gatehouse.Event
	piece := []gatehouse.Event{}
	flush := func() {
		type group struct {
			first gatehouse.Event
			n     int
		}
		var groups []group
		for _, e := range piece {
			found := false
			for i := range groups {
				a, b := groups[i].first, e
				a.Time, b.Time = a.Time.Truncate(time.Minute), b.Time.Truncate(time.Minute)
				if a == b {
					groups[i].n++
					found = true
					break
				}
			}
			if !found {
				groups = append(groups, group{first: e, n: 1})
			}
		}
		for _, g := range groups {
			e := g.first
			if g.n > 1 {
				e.Count = g.n
			}
			out = append(out, e)
		}
		piece = piece[:0]
	}
	for _, e := range in {
		if e.Type == gatehouse.EventRequest && e.Decision == "allow" && (e.Method == "GET" || e.Method == "HEAD") {
			piece = append(piece, e)
			continue
		}
		flush()
		out = append(out, e)
	}
	flush()
	return out
}
