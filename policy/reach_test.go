package policy

import (
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"testing"
)

// The reach limit (MaxReach): no policy text makes resolving its role
// graph grow with the square of its length, and real policies are far
// below the limit.

// roleChain is n roles, each with a line and each joining the next: role
// i reaches n-i roles, so resolving the whole chain costs about n²/2.
// This is the shape of a draft that a reader of the settings could have
// the server compile (8,000 roles took 1.45 s and 925 MB before the
// limit). loops makes every role join itself instead, which keeps the
// text's size and lines and leaves nothing to reach.
func roleChain(n int, loops bool) string {
	var b strings.Builder
	for i := range n {
		next := i + 1
		if loops {
			next = i
		}
		b.WriteString("p,r" + strconv.Itoa(i) + ",a,b,c\ng,r" + strconv.Itoa(i) + ",r" + strconv.Itoa(next) + "\n")
	}
	return b.String()
}

// allocated is how many bytes New allocates for cfg, and its error.
func allocated(cfg Config) (uint64, error) {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	_, err := New(cfg)
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc, err
}

func TestReachLimitRefusesARoleChain(t *testing.T) {
	chain := roleChain(8000, false) // 32 million steps of reach
	got, err := allocated(Config{CSV: chain, CacheSize: -1})
	var re *ReachError
	if !errors.As(err, &re) || re.Limit != MaxReach {
		t.Fatalf("New(chain of 8,000 roles) = %v, want a *ReachError with Limit %d", err, MaxReach)
	}
	if msg := err.Error(); !strings.Contains(msg, strconv.Itoa(MaxReach)) {
		t.Errorf("the refusal %q does not name the limit", msg)
	}
	// Bounded in memory: what the same lines cost without the chain
	// (parsing, compiling, the nodes), plus the reach paid for before the
	// refusal: at most MaxReach pointers (32 MB), doubled for what else
	// a deep graph takes. The chain resolved whole would need 32 million
	// of them (256 MB).
	base, err := allocated(Config{CSV: roleChain(8000, true), CacheSize: -1})
	if err != nil {
		t.Fatalf("New(8,000 roles joining themselves): %v", err)
	}
	if limit := base + 2*8*MaxReach; got > limit {
		t.Errorf("refusing the chain allocated %d MB, want at most %d MB (%d MB for the lines alone)", got>>20, limit>>20, base>>20)
	}
}

func TestReachLimitRefusesManyPathsToOneChain(t *testing.T) {
	// Each x joins 100 roles that all join one chain: x reaches the chain
	// once, but gathering it looks at it through each of the 100.
	var b strings.Builder
	for i := range 1000 {
		fmt.Fprintf(&b, "p, h%d, a, b, c\ng, h%d, h%d\n", i, i, i+1)
	}
	for j := range 100 {
		fmt.Fprintf(&b, "p, m%d, a, b, c\ng, m%d, h0\n", j, j)
	}
	for k := range 100 {
		for j := range 100 {
			fmt.Fprintf(&b, "g, x%d, m%d\n", k, j)
		}
	}
	var re *ReachError
	if _, err := New(Config{CSV: b.String(), CacheSize: -1}); !errors.As(err, &re) {
		t.Fatalf("New(100 subjects × 100 roles × a chain of 1,000) = %v, want a *ReachError", err)
	}
}

func TestReachLimitRefusesProjectCopies(t *testing.T) {
	// A project role that inherits a global role gets a copy of it and of
	// everything it inherits, confined to the project: 30,000 project
	// roles inheriting a chain of 1,000 roles would copy 30 million.
	var b strings.Builder
	for i := range 1000 {
		fmt.Fprintf(&b, "p, role:t%d, applications, get, *\ng, role:t%d, role:t%d\n", i, i, i+1)
	}
	for j := range 30000 {
		fmt.Fprintf(&b, "g, proj:p%d:r, role:t0\n", j)
	}
	got, err := allocated(Config{CSV: b.String(), CacheSize: -1})
	var re *ReachError
	if !errors.As(err, &re) {
		t.Fatalf("New(30,000 project roles inheriting 1,000 roles) = %v, want a *ReachError", err)
	}
	// The copies made before the refusal cost about 8 bytes a step; the
	// text itself is under 1 MB, and its lines cost far less than 64 MB.
	if limit := uint64(64<<20 + 8*MaxReach); got > limit {
		t.Errorf("refusing the copies allocated %d MB, want at most %d MB", got>>20, limit>>20)
	}
}

func TestReachLimitLeavesRoomForRealPolicies(t *testing.T) {
	for _, tt := range []struct {
		name string
		cfg  Config
		max  int // the most of MaxReach the policy may use
	}{
		// 1,000 p lines over 100 roles, 10,000 accounts bound to them.
		{"the benchmark policy", Config{CSV: benchPolicy()}, MaxReach / 100},
		// Roles nested 1,000 deep: far deeper than any real hierarchy.
		{"a chain of 1,000 roles", Config{CSV: roleChain(1000, false)}, MaxReach / 2},
		// 1,000 projects whose 5 roles each inherit a global role that
		// inherits 10 more (5 lines each), 20,000 accounts bound to
		// those.
		{"1,000 projects' roles inheriting 11 global roles", Config{CSV: func() string {
			var b strings.Builder
			for i := range 11 {
				for l := range 5 {
					fmt.Fprintf(&b, "p, role:base%d, applications, get%d, */*\n", i, l)
				}
				if i > 0 {
					fmt.Fprintf(&b, "g, role:base0, role:base%d\n", i)
				}
			}
			for j := range 1000 {
				for r := range 5 {
					fmt.Fprintf(&b, "p, proj:p%d:r%d, applications, sync, p%d/*\ng, proj:p%d:r%d, role:base0\n", j, r, j, j, r)
				}
			}
			for u := range 20000 {
				fmt.Fprintf(&b, "g, user%d, proj:p%d:r%d\n", u, u%1000, u%5)
			}
			return b.String()
		}()}, MaxReach / 2},
	} {
		e, err := New(tt.cfg)
		if err != nil {
			t.Errorf("%s: New: %v", tt.name, err)
			continue
		}
		t.Logf("%s uses %d of %d", tt.name, e.reachUsed, MaxReach)
		if e.reachUsed > tt.max {
			t.Errorf("%s uses %d of the reach limit, want at most %d", tt.name, e.reachUsed, tt.max)
		}
	}
}

func TestRoleFanOutLoads(t *testing.T) {
	// One subject joining 50,000 roles, and 50,000 roles joining one:
	// repeated g lines are found with a set, not by searching the
	// member's roles, so this is linear.
	var b strings.Builder
	for i := range 50000 {
		fmt.Fprintf(&b, "g, fan, r%d\ng, fan, r%d\ng, r%d, hub\n", i, i, i)
	}
	b.WriteString("p, hub, applications, get, *\np, r49999, applications, sync, *\n")
	e := newEngine(t, Config{CSV: b.String(), CacheSize: -1})
	for _, tt := range []struct {
		action string
		want   bool
	}{{"get", true}, {"sync", true}, {"delete", false}} {
		if got := e.Enforce("fan", nil, "applications", tt.action, "x"); got != tt.want {
			t.Errorf("fan %s: got %v, want %v", tt.action, got, tt.want)
		}
	}
}
