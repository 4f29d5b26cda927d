package policy

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
)

// benchPolicy is 1,000 p lines over 100 roles, 10,000 accounts bound to
// them (some to two) and 20 groups.
func benchPolicy() string {
	var b strings.Builder
	for r := range 100 {
		role := fmt.Sprintf("role:r%d", r)
		for _, l := range []string{
			"applications, get, proj%d/*, allow",
			"applications, \"{sync,update}\", proj%d/app-*, allow",
			"applications, delete, proj%d/prod-*, deny",
			"applications, create, proj%d/*, allow",
			"projects, get, proj%d, allow",
			"projects, update, proj%d, allow",
			"accounts, get, user%d*, allow",
			"audit, get, *, allow",
			"applications, *, proj%d/tmp-??, allow",
			"settings, get, rbac-%d, deny",
		} {
			fmt.Fprintf(&b, "p, %s, %s\n", role, strings.ReplaceAll(l, "%d", fmt.Sprint(r)))
		}
	}
	for u := range 10000 {
		fmt.Fprintf(&b, "g, user%d, role:r%d\n", u, u%100)
		if u%7 == 0 {
			fmt.Fprintf(&b, "g, user%d, role:r%d\n", u, (u+1)%100)
		}
	}
	for g := range 20 {
		fmt.Fprintf(&b, "g, grp%d, role:r%d\n", g, g*5)
	}
	return b.String()
}

type benchRequest struct {
	subject, resource, action, object string
	groups                            []string
}

func benchRequests(n, ngroups int) []benchRequest {
	r := rand.New(rand.NewPCG(1, 2))
	actions := []string{"get", "sync", "update", "delete", "create"}
	out := make([]benchRequest, n)
	for i := range out {
		u := r.IntN(10000)
		p := u % 100
		if r.IntN(3) == 0 {
			p = r.IntN(100)
		}
		q := benchRequest{
			subject:  fmt.Sprintf("user%d", u),
			resource: "applications",
			action:   actions[r.IntN(len(actions))],
			object:   fmt.Sprintf("proj%d/%s-%d", p, []string{"app", "prod", "tmp"}[r.IntN(3)], r.IntN(50)),
		}
		for range ngroups {
			q.groups = append(q.groups, fmt.Sprintf("grp%d", r.IntN(30)))
		}
		out[i] = q
	}
	return out
}

func BenchmarkNew(b *testing.B) {
	csv := benchPolicy()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := New(Config{CSV: csv}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkNewRefusesRoleChain is the cost of refusing a policy over the
// reach limit (MaxReach): 8,000 roles, each joining the next, which would
// need 32 million steps resolved whole.
func BenchmarkNewRefusesRoleChain(b *testing.B) {
	csv := roleChain(8000, false)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := New(Config{CSV: csv, CacheSize: -1}); err == nil {
			b.Fatal("the chain loaded")
		}
	}
}

// BenchmarkEnforceCold decides every request from the compiled rules: the
// cache is off.
func BenchmarkEnforceCold(b *testing.B) {
	for _, ng := range []int{0, 1, 3} {
		b.Run(fmt.Sprintf("groups=%d", ng), func(b *testing.B) {
			e := newEngine(b, Config{CSV: benchPolicy(), CacheSize: -1})
			reqs := benchRequests(1024, ng)
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				q := &reqs[i&1023]
				e.Enforce(q.subject, q.groups, q.resource, q.action, q.object)
				i++
			}
		})
	}
}

// BenchmarkEnforceMiss asks questions the cache does not hold: the cost of
// a miss, a decision and storing it.
func BenchmarkEnforceMiss(b *testing.B) {
	e := newEngine(b, Config{CSV: benchPolicy(), CacheSize: 1 << 12})
	reqs := benchRequests(1<<17, 0)
	for i := range reqs {
		reqs[i].object = fmt.Sprintf("%s/%d", reqs[i].object, i) // every question distinct
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		q := &reqs[i&(1<<17-1)]
		e.Enforce(q.subject, q.groups, q.resource, q.action, q.object)
		i++
	}
}

// BenchmarkEnforceWarm asks questions the cache already holds.
func BenchmarkEnforceWarm(b *testing.B) {
	for _, ng := range []int{0, 1, 3} {
		b.Run(fmt.Sprintf("groups=%d", ng), func(b *testing.B) {
			e := newEngine(b, Config{CSV: benchPolicy()})
			reqs := benchRequests(1024, ng)
			for _, q := range reqs {
				e.Enforce(q.subject, q.groups, q.resource, q.action, q.object)
			}
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				q := &reqs[i&1023]
				e.Enforce(q.subject, q.groups, q.resource, q.action, q.object)
				i++
			}
		})
	}
}

func BenchmarkEnforceWarmParallel(b *testing.B) {
	e := newEngine(b, Config{CSV: benchPolicy()})
	reqs := benchRequests(1024, 0)
	for _, q := range reqs {
		e.Enforce(q.subject, q.groups, q.resource, q.action, q.object)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			q := &reqs[i&1023]
			e.Enforce(q.subject, q.groups, q.resource, q.action, q.object)
			i++
		}
	})
}

func BenchmarkGlobMatch(b *testing.B) {
	for _, tt := range []struct{ pattern, s string }{
		{"*", "shop/web"},
		{"shop/*", "shop/web"},
		{"*/web", "shop/web"},
		{"shop/{web,api}-*", "shop/api-7"},
		{"[a-z]*/*-??", "shop/web-01"},
	} {
		b.Run(tt.pattern, func(b *testing.B) {
			m, err := CompileGlob(tt.pattern)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if !m.Match(tt.s) {
					b.Fatalf("%q does not match %q", tt.pattern, tt.s)
				}
			}
		})
	}
}

// BenchmarkEnforceWideRole is the case the decision cache is for: one
// role of 500 lines (an "all teams" role written out team by team), in
// both match modes, asked about the last team, cold (cache off) and warm.
func BenchmarkEnforceWideRole(b *testing.B) {
	for _, mode := range []string{"glob", "regex"} {
		var csv strings.Builder
		for t := range 500 {
			obj := fmt.Sprintf("team-%d/*", t)
			if mode == "regex" {
				obj = fmt.Sprintf("team-%d/.*", t)
			}
			fmt.Fprintf(&csv, "p, role:all-teams, applications, get, %s, allow\n", obj)
		}
		csv.WriteString("g, alice, role:all-teams\n")
		for _, cold := range []bool{true, false} {
			name := mode + "-warm"
			size := 0
			if cold {
				name, size = mode+"-cold", -1
			}
			b.Run(name, func(b *testing.B) {
				e := newEngine(b, Config{CSV: csv.String(), MatchMode: mode, CacheSize: size})
				if !e.Enforce("alice", nil, "applications", "get", "team-499/web") {
					b.Fatal("refused")
				}
				b.ReportAllocs()
				for b.Loop() {
					e.Enforce("alice", nil, "applications", "get", "team-499/web")
				}
			})
		}
	}
}
