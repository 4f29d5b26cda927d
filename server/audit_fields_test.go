package server_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/server"
)

// auditEvents reads the request events the admin may see, oldest first.
func requestEvents(e *env, query string) []gatehouse.Event {
	e.t.Helper()
	e.svc.Flush(e.t.Context())
	var out []gatehouse.Event
	cursor := ""
	for {
		var page gatehouse.List[gatehouse.Event]
		q := "/api/v1/audit?type=request&limit=1000" + query
		if cursor != "" {
			q += "&cursor=" + url.QueryEscape(cursor)
		}
		e.call("GET", q, e.admin, nil, 200, &page)
		out = append(out, page.Items...)
		if page.NextCursor == "" {
			break
		}
		cursor = page.NextCursor
	}
	slices.Reverse(out)
	return out
}

// TestEveryRequestEventNamesItsPermission drives every API route the route
// table has and checks that each request's audit event names the
// (resource, action, object) it was about and how it was decided:
// self-service included, so that an auditor filtering on resource sees
// every request about accounts. A route added without a case here fails
// the test.
func TestEveryRequestEventNamesItsPermission(t *testing.T) {
	e := newEnv(t, withRoutes(server.Route{Match: "GET /apps/{name}", Resource: "applications", Action: "get", Object: "team-a/{name}"}))
	e.createUser("ivy")
	e.setPolicy("g, ivy, role:readonly", "")
	ivySession := e.login("ivy", "ivy-password")
	ivy := e.mint(ivySession, "ivy", gatehouse.TokenRequest{Name: "laptop"})
	scoped := e.mint(ivySession, "ivy", gatehouse.TokenRequest{Name: "narrow", Scopes: []gatehouse.Scope{{Resource: "projects", Action: "get", Object: "*"}}})
	e.call("POST", "/api/v1/projects", e.admin, gatehouse.Project{Name: "team-a", Roles: []gatehouse.ProjectRole{{
		Name: "deployer", Policies: []string{"p, proj:team-a:deployer, applications, sync, team-a/*, allow"},
	}}}, 200, nil)
	e.call("POST", "/api/v1/applications", e.admin, app("web", "team-a"), 200, nil)
	var op gatehouse.Operation
	e.call("POST", "/api/v1/applications/web/sync", e.admin, gatehouse.SyncRequest{Revision: "main"}, 200, &op)
	var role gatehouse.NewToken
	e.call("POST", "/api/v1/projects/team-a/roles/deployer/token", e.admin, gatehouse.TokenRequest{Name: "ci"}, 200, &role)
	e.remember(role.Token)
	e.createUser("gone")
	spare := e.mint(e.admin, "ivy", gatehouse.TokenRequest{Name: "spare"})
	selfRotating := e.mint(e.admin, "ivy", gatehouse.TokenRequest{Name: "pipeline", SelfRotate: true})

	form := func(tok, body string) *http.Request {
		r, _ := http.NewRequest("POST", e.srv.URL+"/api/v1/introspect", strings.NewReader(body))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		r.Header.Set("Authorization", "Bearer "+tok)
		return r
	}
	verify := func(tok, uri string) *http.Request {
		r, _ := http.NewRequest("GET", e.srv.URL+"/api/v1/auth/verify", nil)
		r.Header.Set("Authorization", "Bearer "+tok)
		r.Header.Set("X-Original-Method", "GET")
		r.Header.Set("X-Original-URI", uri)
		return r
	}

	// Each case: who calls what, and the triple and via its event must
	// carry. Self-service (ivy on her own account) is via "self".
	type want struct{ resource, action, object, via string }
	cases := []struct {
		method, path, tok string
		body              any
		req               *http.Request
		want              want
	}{
		{method: "GET", path: "/metrics", tok: e.admin, want: want{"settings", "get", "metrics", "policy"}},
		{method: "GET", path: "/api/v1/session/userinfo", tok: ivy.Token, want: want{"session", "get", "ivy", "self"}},
		{method: "GET", path: "/api/v1/account", tok: ivy.Token, want: want{"accounts", "get", "*", "filter"}},
		{method: "POST", path: "/api/v1/account", tok: e.admin, body: gatehouse.AccountCreate{Name: "bot", Capabilities: []gatehouse.Capability{"apiKey"}},
			want: want{"accounts", "create", "bot", "policy"}},
		{method: "PUT", path: "/api/v1/account/password", tok: ivySession, body: gatehouse.PasswordChange{CurrentPassword: "ivy-password", NewPassword: "ivy-password-2"},
			want: want{"accounts", "update", "ivy", "self"}},
		{method: "GET", path: "/api/v1/account/can-i/applications/delete/team-a/web", tok: ivy.Token, want: want{"applications", "delete", "team-a/web", "self"}},
		{method: "GET", path: "/api/v1/account/ivy", tok: ivy.Token, want: want{"accounts", "get", "ivy", "self"}},
		{method: "GET", path: "/api/v1/account/admin", tok: ivy.Token, want: want{"accounts", "get", "admin", "policy"}},
		{method: "GET", path: "/api/v1/account/admin", tok: scoped.Token, want: want{"accounts", "get", "admin", "scope"}},
		{method: "PATCH", path: "/api/v1/account/bot", tok: e.admin, body: map[string]any{"enabled": true}, want: want{"accounts", "update", "bot", "policy"}},
		{method: "DELETE", path: "/api/v1/account/gone", tok: e.admin, want: want{"accounts", "delete", "gone", "policy"}},
		{method: "POST", path: "/api/v1/account/ivy/token", tok: ivy.Token, body: gatehouse.TokenRequest{Name: "more"}, want: want{"accounts", "update", "ivy", "self"}},
		{method: "GET", path: "/api/v1/account/ivy/token", tok: ivy.Token, want: want{"accounts", "get", "ivy", "self"}},
		{method: "POST", path: "/api/v1/account/ivy/token/" + spare.ID + "/rotate", tok: ivy.Token, body: map[string]any{}, want: want{"accounts", "update", "ivy", "self"}},
		{method: "DELETE", path: "/api/v1/account/ivy/token/" + scoped.ID, tok: ivy.Token, want: want{"accounts", "update", "ivy", "self"}},
		{method: "POST", path: "/api/v1/account/ivy/token/self/rotate", tok: selfRotating.Token, body: map[string]any{}, want: want{"accounts", "update", "ivy", "self"}},
		{method: "DELETE", path: "/api/v1/account/bot/token", tok: e.admin, want: want{"accounts", "update", "bot", "policy"}},
		{method: "GET", path: "/api/v1/projects", tok: ivy.Token, want: want{"projects", "get", "*", "filter"}},
		{method: "POST", path: "/api/v1/projects", tok: e.admin, body: gatehouse.Project{Name: "team-b"}, want: want{"projects", "create", "team-b", "policy"}},
		{method: "GET", path: "/api/v1/projects/team-a", tok: ivy.Token, want: want{"projects", "get", "team-a", "policy"}},
		{method: "PUT", path: "/api/v1/projects/team-b", tok: e.admin, body: gatehouse.Project{Name: "team-b", Description: "B"}, want: want{"projects", "update", "team-b", "policy"}},
		{method: "GET", path: "/api/v1/projects/team-a/roles/deployer/token", tok: e.admin, want: want{"projects", "get", "team-a", "policy"}},
		{method: "POST", path: "/api/v1/projects/team-a/roles/deployer/token", tok: ivy.Token, body: gatehouse.TokenRequest{}, want: want{"projects", "update", "team-a", "policy"}},
		{method: "DELETE", path: "/api/v1/projects/team-a/roles/deployer/token/" + role.ID, tok: e.admin, want: want{"projects", "update", "team-a", "policy"}},
		{method: "DELETE", path: "/api/v1/projects/team-b", tok: e.admin, want: want{"projects", "delete", "team-b", "policy"}},
		{method: "GET", path: "/api/v1/applications", tok: ivy.Token, want: want{"applications", "get", "*", "filter"}},
		{method: "POST", path: "/api/v1/applications", tok: e.admin, body: app("api", "team-a"), want: want{"applications", "create", "team-a/api", "policy"}},
		{method: "GET", path: "/api/v1/applications/web", tok: ivy.Token, want: want{"applications", "get", "team-a/web", "policy"}},
		{method: "PUT", path: "/api/v1/applications/api", tok: e.admin, body: app("api", "team-a"), want: want{"applications", "update", "team-a/api", "policy"}},
		{method: "POST", path: "/api/v1/applications/web/sync", tok: ivy.Token, body: gatehouse.SyncRequest{}, want: want{"applications", "sync", "*/web", "policy"}},
		{method: "GET", path: "/api/v1/applications/web/operations", tok: ivy.Token, want: want{"applications", "get", "team-a/web", "policy"}},
		{method: "PUT", path: "/api/v1/applications/web/operations/" + op.ID, tok: e.admin, body: gatehouse.OperationReport{State: "Succeeded"}, want: want{"applications", "update", "team-a/web", "policy"}},
		{method: "PUT", path: "/api/v1/applications/web/status", tok: e.admin, body: gatehouse.StatusReport{Sync: "Synced", Health: "Healthy"}, want: want{"applications", "update", "team-a/web", "policy"}},
		{method: "DELETE", path: "/api/v1/applications/api", tok: e.admin, want: want{"applications", "delete", "team-a/api", "policy"}},
		{method: "GET", path: "/api/v1/settings/rbac", tok: ivy.Token, want: want{"settings", "get", "rbac", "policy"}},
		{method: "PUT", path: "/api/v1/settings/rbac", tok: e.admin, body: gatehouse.RBAC{PolicyCSV: "g, ivy, role:readonly"}, want: want{"settings", "update", "rbac", "policy"}},
		{method: "GET", path: "/api/v1/settings/rbac/can?subject=ivy&resource=applications&action=get&object=team-a/web", tok: e.admin, want: want{"settings", "get", "rbac", "policy"}},
		{method: "GET", path: "/api/v1/audit", tok: ivy.Token, want: want{"audit", "get", "*", "policy"}}, // readonly reads it all
		{method: "GET", path: "/api/v1/audit?actor=ivy", tok: ivy.Token, want: want{"audit", "get", "ivy", "self"}},
		{method: "GET", path: "/api/v1/audit?account=admin", tok: ivy.Token, want: want{"audit", "get", "admin", "policy"}},
		{method: "GET", path: "/api/v1/audit/verify", tok: ivy.Token, want: want{"audit", "get", "*", "policy"}},
		{method: "POST", path: "/api/v1/admin/revoke", tok: e.admin, body: gatehouse.BulkRevoke{Account: "bot", DryRun: true}, want: want{"accounts", "update", "*", "policy"}},
		{method: "GET", path: "/api/v1/admin/backup", tok: ivy.Token, want: want{"settings", "update", "backup", "policy"}},
		{req: form(ivy.Token, "token="+url.QueryEscape(ivy.Token)), want: want{"accounts", "get", "ivy", "self"}},
		{req: form(ivy.Token, "token="+url.QueryEscape(e.admin)), want: want{"accounts", "get", "admin", "policy"}},
		{req: form(ivy.Token, "token=not-a-token"), want: want{"tokens", "introspect", "*", "self"}},
		{req: verify(ivy.Token, "/apps/web"), want: want{"applications", "get", "team-a/web", "policy"}},
		{method: "POST", path: "/api/v1/trust-policies", tok: e.admin, body: trustFixture(0), want: want{"settings", "update", "trust", "policy"}},
		{method: "GET", path: "/api/v1/trust-policies", tok: ivy.Token, want: want{"settings", "get", "trust", "policy"}},
		{method: "GET", path: "/api/v1/trust-policies/ci", tok: ivy.Token, want: want{"settings", "get", "trust", "policy"}},
		{method: "PUT", path: "/api/v1/trust-policies/ci", tok: e.admin, body: trustFixture(300), want: want{"settings", "update", "trust", "policy"}},
		{method: "POST", path: "/api/v1/trust-policies/ci/test", tok: ivy.Token, body: gatehouse.TrustTest{Token: "not-a-jwt"}, want: want{"settings", "get", "trust", "policy"}},
		{method: "DELETE", path: "/api/v1/trust-policies/ci", tok: e.admin, want: want{"settings", "update", "trust", "policy"}},
		{method: "POST", path: "/api/v1/webhooks", tok: e.admin, body: webhookFixture(t, "ops"), want: want{"settings", "update", "webhooks", "policy"}},
		{method: "GET", path: "/api/v1/webhooks", tok: ivy.Token, want: want{"settings", "get", "webhooks", "policy"}},
		{method: "GET", path: "/api/v1/webhooks/ops", tok: ivy.Token, want: want{"settings", "get", "webhooks", "policy"}},
		{method: "GET", path: "/api/v1/webhooks/ops/deliveries", tok: ivy.Token, want: want{"settings", "get", "webhooks", "policy"}},
		{method: "PUT", path: "/api/v1/webhooks/ops", tok: e.admin, body: webhookFixture(t, "ops"), want: want{"settings", "update", "webhooks", "policy"}},
		{method: "DELETE", path: "/api/v1/webhooks/ops", tok: e.admin, want: want{"settings", "update", "webhooks", "policy"}},
		{method: "DELETE", path: "/api/v1/session", tok: ivySession, want: want{"session", "delete", "ivy", "self"}},
	}
	// Each case's request carries its own User-Agent, so that its event
	// is found whatever order the events were queued in (a request's
	// event is queued after its answer is sent).
	for i, c := range cases {
		req := c.req
		if req == nil {
			var rd io.Reader
			if c.body != nil {
				b, err := json.Marshal(c.body)
				if err != nil {
					t.Fatal(err)
				}
				rd = bytes.NewReader(b)
			}
			req, _ = http.NewRequest(c.method, e.srv.URL+c.path, rd)
			if c.method != http.MethodGet {
				req.Header.Set("Content-Type", "application/json")
			}
			req.Header.Set("Authorization", "Bearer "+c.tok)
		}
		req.Header.Set("User-Agent", fmt.Sprintf("audit-case-%d", i))
		e.send(req)
	}
	byCase := make([][]gatehouse.Event, len(cases))
	for _, ev := range requestEvents(e, "") {
		var i int
		if _, err := fmt.Sscanf(ev.UserAgent, "audit-case-%d", &i); err == nil && i >= 0 && i < len(cases) {
			byCase[i] = append(byCase[i], ev)
		}
	}
	mine := make([]gatehouse.Event, len(cases))
	for i, evs := range byCase {
		if len(evs) != 1 {
			t.Fatalf("case %d (%s %s): %d request events, want 1: %+v", i, cases[i].method, cases[i].path, len(evs), evs)
		}
		mine[i] = evs[0]
	}
	routes := map[string]bool{}
	for i, ev := range mine {
		w := cases[i].want
		if ev.Resource != w.resource || ev.Action != w.action || ev.Object != w.object || ev.Via != w.via {
			t.Errorf("%s %s (route %s, status %d): event names %s, %s, %s via %q; want %s, %s, %s via %q",
				ev.Method, ev.Path, ev.Route, ev.Status, ev.Resource, ev.Action, ev.Object, ev.Via, w.resource, w.action, w.object, w.via)
		}
		if ev.Route == "" {
			t.Errorf("%s %s: no route in the event", ev.Method, ev.Path)
		}
		if wantAccount := map[string]string{"admin": "admin", "ivy": "ivy"}[ev.Actor]; ev.Account != wantAccount {
			t.Errorf("%s %s by %s: account %q, want %q", ev.Method, ev.Path, ev.Actor, ev.Account, wantAccount)
		}
		routes[ev.Route] = true
		if strings.HasPrefix(ev.Path, "/apps/") {
			routes["/api/v1/auth/verify"] = true // forward auth records the proxied route
		}
	}
	// Every authenticated route is covered: the login routes (password
	// and device) and the token exchange have no caller yet, the version
	// reads no credential, and "/api/" is the JSON 404.
	for _, p := range server.RoutePatterns() {
		api := strings.Contains(p, "/api/") || p == "GET /metrics"
		if !api || p == "POST /api/v1/session" || strings.HasPrefix(p, "POST /api/v1/session/device") || p == "POST /api/v1/token/exchange" || p == "POST /api/v1/tokens/leaked" || p == "GET /api/version" || p == "GET /api/v1/openapi.json" || p == "/api/" {
			continue
		}
		if !routes[p] {
			t.Errorf("route %q has no case: add one, and name its permission in its audit event", p)
		}
	}
}

// TestForwardAuthAuditRecordsTheOriginalRequest: behind a proxy, a
// request's event is of the request the proxy asked about: its method and
// canonical path (never the query string), the forward-auth route that
// matched, the decision, and the client the trusted proxy names.
func TestForwardAuthAuditRecordsTheOriginalRequest(t *testing.T) {
	routes := []server.Route{
		{Match: "GET /apps/{name}", Resource: "applications", Action: "get", Object: "team-a/{name}"},
		{Match: "POST /deploy/{name}", Resource: "applications", Action: "sync", Object: "team-a/{name}"},
	}
	e := newEnv(t, withRoutes(routes...))
	e.createUser("ivy")
	e.setPolicy("g, ivy, role:readonly", "")
	ivy := e.mint(e.admin, "ivy", gatehouse.TokenRequest{})
	asked := 0
	ask := func(method, uri string, headers ...string) int {
		r, _ := http.NewRequest("GET", e.srv.URL+"/api/v1/auth/verify", nil)
		r.Header.Set("User-Agent", fmt.Sprintf("fwd-case-%d", asked))
		asked++
		r.Header.Set("Authorization", "Bearer "+ivy.Token)
		r.Header.Set("X-Original-Method", method)
		r.Header.Set("X-Original-URI", uri)
		for i := 0; i+1 < len(headers); i += 2 {
			r.Header.Add(headers[i], headers[i+1])
		}
		s, _ := e.send(r)
		return s
	}
	if s := ask("GET", "/apps/web?token=not-for-the-audit-trail", "X-Forwarded-For", "198.51.100.7, 127.0.0.1"); s != 200 {
		t.Fatalf("allowed: %d", s)
	}
	if s := ask("POST", "/deploy/web", "X-Real-IP", "203.0.113.5"); s != 403 {
		t.Fatalf("denied: %d", s)
	}
	if s := ask("GET", "/apps/%2e%2e/admin?x=1"); s != 403 {
		t.Fatalf("non-canonical: %d", s)
	}
	if s := ask("GET", "/elsewhere"); s != 403 {
		t.Fatalf("no route: %d", s)
	}
	// A check with two original URIs is refused too (400), and recorded
	// as a refusal.
	if s := ask("GET", "/apps/web", "X-Original-URI", "/apps/other"); s != 400 {
		t.Fatalf("two original URIs: %d", s)
	}
	// In the order asked (events are queued after the answer, so the
	// trail's order may differ).
	evs := requestEvents(e, "&account=ivy")
	if len(evs) != 5 {
		t.Fatalf("%d events, want 5: %+v", len(evs), evs)
	}
	slices.SortFunc(evs, func(a, b gatehouse.Event) int { return strings.Compare(a.UserAgent, b.UserAgent) })
	if last := evs[4]; last.Status != 400 || last.Decision != "deny" {
		t.Errorf("a 400 forward-auth check is recorded as %q, status %d; want deny", last.Decision, last.Status)
	}
	evs = evs[:4]
	type rec struct{ method, path, route, decision, remote, triple string }
	want := []rec{
		{"GET", "/apps/web", "GET /apps/{name}", "allow", "198.51.100.7", "applications,get,team-a/web"},
		{"POST", "/deploy/web", "POST /deploy/{name}", "deny", "203.0.113.5", "applications,sync,team-a/web"},
		{"GET", "/apps/%2e%2e/admin", "", "deny", "127.0.0.1", ",,"},
		{"GET", "/elsewhere", "", "deny", "127.0.0.1", ",,"},
	}
	for i, ev := range evs {
		got := rec{ev.Method, ev.Path, ev.Route, ev.Decision, ev.RemoteAddr, ev.Resource + "," + ev.Action + "," + ev.Object}
		if got != want[i] {
			t.Errorf("event %d = %+v, want %+v", i, got, want[i])
		}
		if !strings.HasPrefix(ev.Detail, "forward auth") {
			t.Errorf("event %d detail %q does not say forward auth", i, ev.Detail)
		}
		if strings.Contains(ev.Path, "token=") || strings.Contains(ev.Detail, "not-for-the-audit-trail") {
			t.Errorf("event %d keeps the query string: %+v", i, ev)
		}
	}
	if !strings.Contains(evs[2].Detail, "dot segment") && !strings.Contains(evs[2].Detail, "refuses") {
		t.Errorf("a refused URI's event should say why: %q", evs[2].Detail)
	}
	// ?route= finds forward-auth requests by the route that matched.
	if got := requestEvents(e, "&route="+url.QueryEscape("POST /deploy/{name}")); len(got) != 1 || got[0].Path != "/deploy/web" {
		t.Errorf("?route= for the forward-auth route: %+v", got)
	}
}

// TestForwardAuthClientAddressNeedsATrustedProxy: the headers naming the
// client are read only from a configured trusted proxy; from any other
// peer they are the client's own words and the peer is recorded.
func TestForwardAuthClientAddressNeedsATrustedProxy(t *testing.T) {
	e := newEnv(t, withRoutes(server.Route{Match: "GET /apps/{name}", Resource: "applications", Action: "get", Object: "team-a/{name}"}),
		withTrustedProxies("10.0.0.0/8"))
	e.createUser("ivy")
	ivy := e.mint(e.admin, "ivy", gatehouse.TokenRequest{})
	for _, h := range [][2]string{{"X-Forwarded-For", "198.51.100.7"}, {"X-Real-IP", "198.51.100.8"}} {
		r, _ := http.NewRequest("GET", e.srv.URL+"/api/v1/auth/verify", nil)
		r.Header.Set("Authorization", "Bearer "+ivy.Token)
		r.Header.Set("X-Original-Method", "GET")
		r.Header.Set("X-Original-URI", "/apps/web")
		r.Header.Set(h[0], h[1])
		e.send(r)
	}
	for _, ev := range requestEvents(e, "&account=ivy") {
		if ev.RemoteAddr != "127.0.0.1" {
			t.Errorf("loopback is not a trusted proxy here, yet the event records %q", ev.RemoteAddr)
		}
	}
}

// TestAuditFiltersActorAndAccount: --actor is who acted, --account what
// concerned an account: an admin revoking alice's token is under
// account=alice and actor=admin, not actor=alice.
func TestAuditFiltersActorAndAccount(t *testing.T) {
	e := newEnv(t)
	e.createUser("alice")
	e.createUser("bob")
	alice := e.mint(e.admin, "alice", gatehouse.TokenRequest{Name: "ci"})
	bob := e.mint(e.admin, "bob", gatehouse.TokenRequest{})
	e.call("GET", "/api/v1/account/alice", alice.Token, nil, 200, nil)
	e.call("DELETE", "/api/v1/account/alice/token/"+alice.ID, e.admin, nil, 200, nil)
	e.svc.Flush(t.Context())

	list := func(tok, q string, want int) []gatehouse.Event {
		t.Helper()
		var page gatehouse.List[gatehouse.Event]
		e.call("GET", "/api/v1/audit?limit=1000"+q, tok, nil, want, &page)
		return page.Items
	}
	has := func(evs []gatehouse.Event, typ, actor string) bool {
		for _, ev := range evs {
			if ev.Type == typ && ev.Actor == actor && ev.TokenID == alice.ID {
				return true
			}
		}
		return false
	}
	if evs := list(e.admin, "&account=alice", 200); !has(evs, gatehouse.EventTokenRevoked, "admin") || !has(evs, gatehouse.EventRequest, "alice") ||
		!has(evs, gatehouse.EventTokenCreated, "admin") {
		t.Errorf("account=alice misses the admin's revocation, creation or alice's own request: %+v", evs)
	}
	for _, ev := range list(e.admin, "&account=alice", 200) {
		if ev.Account != "alice" {
			t.Errorf("account=alice lists %+v", ev)
		}
	}
	if evs := list(e.admin, "&actor=alice", 200); has(evs, gatehouse.EventTokenRevoked, "admin") || !has(evs, gatehouse.EventRequest, "alice") {
		t.Errorf("actor=alice: %+v", evs)
	}
	if evs := list(e.admin, "&actor=admin&type=token.revoked", 200); len(evs) != 1 || evs[0].Account != "alice" {
		t.Errorf("actor=admin type=token.revoked: %+v", evs)
	}
	// route and status select the access pattern.
	if evs := list(e.admin, "&route="+url.QueryEscape("GET /api/v1/account/{name}"), 200); len(evs) != 1 || evs[0].Actor != "alice" {
		t.Errorf("route filter: %+v", evs)
	}
	if evs := list(e.admin, "&resource=accounts&type=request&account=alice", 200); len(evs) != 1 || evs[0].Via != "self" {
		t.Errorf("resource=accounts must show alice's self-service read: %+v", evs)
	}
	e.status("GET", "/api/v1/account/alice", bob.Token, nil) // 403
	if evs := list(e.admin, "&status=403", 200); len(evs) != 1 || evs[0].Actor != "bob" || evs[0].Object != "alice" {
		t.Errorf("status=403: %+v", evs)
	}
	// Bob may read what concerns him, not what concerns alice.
	list(bob.Token, "&account=bob", 200)
	list(bob.Token, "&account=alice", 403)
	list(bob.Token, "&actor=alice", 403)
	// Filters that don't exist, or come twice, are refused, not ignored.
	for _, q := range []string{"&user=alice", "&account=alice&account=bob", "&status=abc", "&status=0200", "&status=99", "&status=600"} {
		var b []byte
		s, b := e.do("GET", "/api/v1/audit?limit=10"+q, e.admin, nil)
		if code, _ := errorOf(t, b); s != 400 || code != "invalid_argument" {
			t.Errorf("GET /api/v1/audit?%s = %d %s, want 400 invalid_argument", q, s, b)
		}
	}
}

// trustFixture is a trust policy for admin; it is never used to exchange.
func trustFixture(ttl int64) gatehouse.TrustPolicy {
	return gatehouse.TrustPolicy{Name: "ci", Issuer: "https://ci.example", JWKSURL: "https://ci.example/jwks",
		Audiences: []string{"https://gatehouse.example"}, Claims: map[string]gatehouse.ClaimPatterns{"repository_id": {"1"}},
		Account: "admin", TTL: ttl}
}
