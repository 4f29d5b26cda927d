//go:build !race

package policy

import "testing"

// The race detector instruments allocations, so this runs without it.
func TestWarmEnforceAllocatesNothing(t *testing.T) {
	e := newEngine(t, Config{CSV: benchPolicy()})
	for _, groups := range [][]string{nil, {"grp1"}, {"grp1", "grp5", "other"}} {
		e.Enforce("user42", groups, "applications", "get", "proj42/app-1") // warm it
		allocs := testing.AllocsPerRun(1000, func() {
			if !e.Enforce("user42", groups, "applications", "get", "proj42/app-1") {
				t.Fatal("user42 refused")
			}
		})
		if allocs != 0 {
			t.Errorf("warm Enforce with groups %q allocates %v times, want 0", groups, allocs)
		}
	}
}
