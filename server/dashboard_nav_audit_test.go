package server_test

import (
	"net/http"
	"testing"
)

// The navigation asks whether a user sees any project or application on
// every page; that question must not become the page's audit record. A
// refused page is recorded as what it refused.
func TestDashboardNavLeavesTheAuditRecord(t *testing.T) {
	e := newDashEnv(t)
	e.createUser("alice")
	e.setPolicy("p, alice, projects, get, team-a, allow", "")
	alice := newWeb(t, e)
	alice.login("alice", "alice-password")
	if r := alice.get("/break-glass"); r.status != http.StatusOK {
		t.Fatalf("break-glass form: %d", r.status)
	}
	if r := alice.get("/trust"); r.status != http.StatusForbidden {
		t.Fatalf("alice's /trust: %d, want 403", r.status)
	}
	var found bool
	for _, ev := range requestEvents(e, "&actor=alice") {
		if ev.Route != "GET /trust" {
			continue
		}
		found = true
		if ev.Resource != "settings" || ev.Object != "trust" || ev.Decision != "deny" {
			t.Errorf("alice's refused /trust is recorded as %s, %s, %s: %s; want settings, trust, deny", ev.Resource, ev.Action, ev.Object, ev.Decision)
		}
	}
	if !found {
		t.Fatal("no request event for alice's /trust")
	}
}
