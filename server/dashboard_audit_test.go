package server_test

import (
	"encoding/csv"
	"encoding/json"
	"html"
	"net/http"
	"net/url"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/server"
)

// activityRowRE reads a row of the table under the activity chart.
var activityRowRE = regexp.MustCompile(`<tr><th scope="row"><time datetime="([^"]+)">[^<]*</time></th><td class="num">(\d+)</td><td class="num(?: denied)?">(\d+)</td><td class="num">(\d+)</td></tr>`)

type hourRow struct {
	hour                   time.Time
	allowed, denied, total int
}

func activityRows(t *testing.T, body string) []hourRow {
	t.Helper()
	var out []hourRow
	for _, m := range activityRowRE.FindAllStringSubmatch(body, -1) {
		h, err := time.Parse(time.RFC3339, m[1])
		if err != nil {
			t.Fatal(err)
		}
		a, _ := strconv.Atoi(m[2])
		d, _ := strconv.Atoi(m[3])
		n, _ := strconv.Atoi(m[4])
		out = append(out, hourRow{h, a, d, n})
	}
	return out
}

// TestDashboardAuditTokenActivity generates a token's traffic at known
// hours on the service's clock and checks the chart's numbers exactly.
func TestDashboardAuditTokenActivity(t *testing.T) {
	t.Parallel()
	e := newDashEnv(t)
	e.createUser("alice")
	e.createUser("bob")
	now := e.clock.Now()
	e.clock.Advance(-9 * 24 * time.Hour)
	nt := e.mint(e.admin, "alice", gatehouse.TokenRequest{Name: "ci deploys", ExpiresIn: seconds(20 * 24 * 3600)})
	traffic := func(at time.Time, allowed, denied int) {
		t.Helper()
		e.clock.Advance(at.Sub(e.clock.Now()))
		for range allowed {
			e.call("GET", "/api/v1/session/userinfo", nt.Token, nil, http.StatusOK, nil)
		}
		for range denied {
			e.call("GET", "/api/v1/account/admin", nt.Token, nil, http.StatusForbidden, nil)
		}
	}
	t1 := now.Add(-50 * time.Hour)
	t2 := t1.Add(2 * time.Hour)
	traffic(now.Add(-8*24*time.Hour), 2, 1) // older than the 7 days
	traffic(t1, 3, 1)
	traffic(t2, 0, 2)
	traffic(now, 1, 0)
	want := []hourRow{ // newest first
		{now.UTC().Truncate(time.Hour), 1, 0, 1},
		{t2.UTC().Truncate(time.Hour), 0, 2, 2},
		{t1.UTC().Truncate(time.Hour), 3, 1, 4},
	}

	w := newWeb(t, e)
	w.login("admin", adminPassword)
	a := webAs(t, e, "alice")
	page := "/audit/tokens/" + nt.ID
	for _, tc := range []struct {
		name string
		web  *web
	}{{"ok/admin", w}, {"ok/own token", a}} {
		r := tc.web.get(page)
		if r.status != 200 {
			t.Fatalf("%s: %d\n%s", tc.name, r.status, r.body)
		}
		if got := activityRows(t, r.body); !reflect.DeepEqual(got, want) {
			t.Errorf("%s: table %+v, want %+v", tc.name, got, want)
		}
		for _, s := range []string{
			`<svg class="activity-chart" viewBox="0 0 892 224" role="img" aria-labelledby="chart-title chart-desc"`,
			`<title id="chart-title">Requests per hour of token ` + nt.ID + `, last 7 days</title>`,
			`<desc id="chart-desc">7 requests from `,
			`: 4 allowed, 3 denied.`,
			`<dd id="activity-totals">7 requests: 4 allowed, 3 denied</dd>`,
			`<h2 id="token-title" class="card-title">ci deploys</h2>`,
		} {
			if !strings.Contains(r.body, s) {
				t.Errorf("%s: the page lacks %q", tc.name, s)
			}
		}
		// Two hours had allowed requests, two had denials: each is its
		// own bar, the denials in their own class (colour).
		if n := strings.Count(r.body, `class="bar-allowed"`); n != 2 {
			t.Errorf("%s: %d allowed bars, want 2", tc.name, n)
		}
		if n := strings.Count(r.body, `class="bar-denied"`); n != 2 {
			t.Errorf("%s: %d denied bars, want 2", tc.name, n)
		}
		if !strings.Contains(r.body, "<title>"+t2.UTC().Truncate(time.Hour).Format("Jan 2 15:04 UTC")+": 0 allowed, 2 denied</title>") {
			t.Errorf("%s: the bar of %v has no title with its numbers", tc.name, t2)
		}
	}

	// The link to these requests in the audit list lists exactly them.
	r := w.get(page)
	m := regexp.MustCompile(`<a class="btn btn-secondary" href="([^"]+)">These requests in the audit list</a>`).FindStringSubmatch(r.body)
	if m == nil {
		t.Fatal("no link to the audit list")
	}
	list := w.get(html.UnescapeString(m[1]))
	if n := listedRequests(list.body); list.status != 200 || n != 7 {
		t.Errorf("the audit list of these requests: %d, %d requests, want 7", list.status, n)
	}
	// ... and from there, and from the token tables, back to the chart.
	for _, from := range []string{"/audit?tokenId=" + nt.ID, "/accounts/alice"} {
		if r := w.get(from); !strings.Contains(r.body, `href="`+page+`"`) {
			t.Errorf("%s has no link to the token's activity", from)
		}
	}
	if r := a.get("/user-info"); !strings.Contains(r.body, `href="`+page+`"`) {
		t.Error("User Info has no link to a token's activity")
	}

	for _, tc := range []struct {
		name, path string
		web        *web
		status     int
	}{
		{"fail/someone else's token", page, webAs(t, e, "bob"), 403},
		{"fail/not a token id", "/audit/tokens/not-a-token", w, 400},
		{"ok/an unknown token", "/audit/tokens/6f1c2a7e-3b4d-4c5e-8f90-0a1b2c3d4e5f", w, 200},
	} {
		if r := tc.web.get(tc.path); r.status != tc.status {
			t.Errorf("%s: %d, want %d", tc.name, r.status, tc.status)
		}
	}
}

func TestDashboardAuditFilters(t *testing.T) {
	t.Parallel()
	e := newDashEnv(t)
	e.createUser("alice")
	nt := e.mint(e.admin, "alice", gatehouse.TokenRequest{Name: "ci"})
	e.call("GET", "/api/v1/session/userinfo", nt.Token, nil, 200, nil)
	e.call("GET", "/api/v1/account/admin", nt.Token, nil, 403, nil)
	e.call("GET", "/api/v1/account/alice", nt.Token, nil, 200, nil)
	w := newWeb(t, e)
	w.login("admin", adminPassword)

	form := w.get("/audit")
	for _, id := range []string{"f-actor", "f-account", "f-token", "f-type", "f-resource", "f-action", "f-route", "f-status", "f-decision", "f-since", "f-until"} {
		if !strings.Contains(form.body, `<label for="`+id+`"`) {
			t.Errorf("the filter has no %s", id)
		}
	}
	for _, tc := range []struct {
		name, query string
		status      int
		rows        int
		want        string
	}{
		{"ok/route", "route=" + url.QueryEscape("GET /api/v1/account/{name}") + "&tokenId=" + nt.ID, 200, 2, "GET /api/v1/account/admin"},
		{"ok/status", "status=403&tokenId=" + nt.ID, 200, 1, "GET /api/v1/account/admin"},
		{"ok/resource", "resource=session&tokenId=" + nt.ID, 200, 1, "GET /api/v1/session/userinfo"},
		{"ok/type and account", "type=token.created&account=alice", 200, 1, "token.created"},
		{"fail/status not a code", "status=abc", 400, 0, "status must be an HTTP status code"},
		{"fail/status out of range", "status=99", 400, 0, "status must be an HTTP status code"},
	} {
		r := w.get("/audit?" + tc.query)
		if r.status != tc.status || !strings.Contains(r.body, tc.want) {
			t.Errorf("%s: %d, want %d with %q", tc.name, r.status, tc.status, tc.want)
		}
		if n := strings.Count(r.body, `data-label="Time"`); n != tc.rows {
			t.Errorf("%s: %d rows, want %d", tc.name, n, tc.rows)
		}
	}
}

func TestDashboardAuditExport(t *testing.T) {
	t.Parallel()
	e := newDashEnv(t)
	e.createUser("alice")
	nt := e.mint(e.admin, "alice", gatehouse.TokenRequest{Name: "ci"})
	agents := []string{`=HYPERLINK("http://evil.example","click")`, "+1+1", "-2+3", "@SUM(A1:A2)", "curl/8.5"}
	for _, ua := range agents {
		req, _ := http.NewRequest("GET", e.srv.URL+"/api/v1/session/userinfo", nil)
		req.Header.Set("Authorization", "Bearer "+nt.Token)
		req.Header.Set("User-Agent", ua)
		if status, _ := e.send(req); status != 200 {
			t.Fatalf("request as %q: %d", ua, status)
		}
	}
	e.call("GET", "/api/v1/account/admin", nt.Token, nil, 403, nil)
	var api gatehouse.List[gatehouse.Event]
	e.call("GET", "/api/v1/audit?account=alice&limit=1000", e.admin, nil, 200, &api)
	if len(api.Items) < len(agents)+1 {
		t.Fatalf("the API lists %d events about alice", len(api.Items))
	}
	w := newWeb(t, e)
	w.login("admin", adminPassword)

	// The audit page's export links keep its filters.
	page := w.get("/audit?account=alice&decision=deny")
	for _, link := range []string{`href="/audit/export.csv?account=alice&amp;decision=deny"`, `href="/audit/export.json?account=alice&amp;decision=deny"`} {
		if !strings.Contains(page.body, link) {
			t.Errorf("the audit page lacks %s", link)
		}
	}
	if r := w.get("/audit/export.csv?account=alice&decision=deny"); r.status != 200 || strings.Count(r.body, "\n") != 2 || !strings.Contains(r.body, "/api/v1/account/admin") {
		t.Errorf("the filtered CSV: %d\n%s", r.status, r.body)
	}

	// CSV: every event of the view, as the API lists them, each cell that
	// a spreadsheet would evaluate neutralised.
	r := w.get("/audit/export.csv?account=alice")
	if r.status != 200 || r.header.Get("Content-Type") != "text/csv; charset=utf-8" ||
		r.header.Get("Content-Disposition") != `attachment; filename="gatehouse-audit.csv"` || r.header.Get("Cache-Control") != "no-store" {
		t.Fatalf("CSV export: %d %v", r.status, r.header)
	}
	rows, err := csv.NewReader(strings.NewReader(r.body)).ReadAll()
	if err != nil {
		t.Fatalf("the CSV does not parse: %v", err)
	}
	if len(rows) != 1+len(api.Items) || rows[0][0] != "id" || rows[0][17] != "userAgent" {
		t.Fatalf("CSV: %d rows, header %v; want %d events", len(rows), rows[0], len(api.Items))
	}
	neutralised := 0
	for i, ev := range api.Items {
		row := rows[i+1]
		if row[0] != strconv.FormatInt(ev.ID, 10) || row[3] != ev.Actor || row[8] != ev.Path {
			t.Errorf("CSV row %d = %v, want event %+v", i, row, ev)
		}
		want := ev.UserAgent
		if want != "" && strings.ContainsAny(want[:1], "=+-@") {
			want = "'" + want
			neutralised++
		}
		if row[17] != want {
			t.Errorf("CSV row %d: user agent %q, want %q", i, row[17], want)
		}
		for _, cell := range row {
			if cell != "" && strings.ContainsAny(cell[:1], "=+-@\t\r") {
				t.Errorf("CSV row %d: cell %q would be a formula", i, cell)
			}
		}
	}
	if neutralised != 4 {
		t.Errorf("%d cells neutralised, want the 4 formula-like user agents", neutralised)
	}

	// JSON: the API's list, exactly.
	r = w.get("/audit/export.json?account=alice")
	if r.status != 200 || r.header.Get("Content-Type") != "application/json" || r.header.Get("Content-Disposition") != `attachment; filename="gatehouse-audit.json"` {
		t.Fatalf("JSON export: %d %v", r.status, r.header)
	}
	var got gatehouse.List[gatehouse.Event]
	dec := json.NewDecoder(strings.NewReader(r.body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&got); err != nil {
		t.Fatalf("the JSON does not decode: %v\n%s", err, r.body)
	}
	if !reflect.DeepEqual(got, api) {
		t.Errorf("JSON export %+v, want the API's %+v", got, api)
	}
	// Refused before anything is sent: an error page, not a file.
	alice := webAs(t, e, "alice")
	for _, tc := range []struct {
		name, path string
		web        *web
		status     int
	}{
		{"fail/someone else's events", "/audit/export.csv?actor=admin", alice, 403},
		{"fail/someone else's events, JSON", "/audit/export.json?account=admin", alice, 403},
		{"fail/bad status", "/audit/export.csv?status=99", w, 400},
		{"fail/bad decision", "/audit/export.json?decision=maybe", w, 400},
		{"fail/bad cursor", "/audit/export.json?cursor=nope", w, 400},
	} {
		r := tc.web.get(tc.path)
		if r.status != tc.status || r.header.Get("Content-Disposition") != "" || !strings.HasPrefix(r.header.Get("Content-Type"), "text/html") {
			t.Errorf("%s: %d %q %q, want %d and an HTML page", tc.name, r.status, r.header.Get("Content-Type"), r.header.Get("Content-Disposition"), tc.status)
		}
	}
	// Alice exports her own events.
	if r := alice.get("/audit/export.csv"); r.status != 200 || !strings.Contains(r.body, "GET /api/v1/session/userinfo") {
		t.Errorf("alice's own export: %d", r.status)
	}

	// An export is a request like any other: it is in the audit trail.
	var exports gatehouse.List[gatehouse.Event]
	e.call("GET", "/api/v1/audit?route="+url.QueryEscape("GET /audit/export.csv")+"&actor=admin&status=200", e.admin, nil, 200, &exports)
	if len(exports.Items) != 2 || exports.Items[0].Resource != "audit" || exports.Items[0].Object != "alice" || exports.Items[0].Decision != "allow" {
		t.Errorf("the exports' audit events: %+v", exports.Items)
	}

	// No export of the whole trail holds any secret this test used (the
	// env's cleanup greps the log and the database for them too).
	e.remember(w.cookie(server.CookieName, "/"))
	for _, path := range []string{"/audit/export.csv", "/audit/export.json"} {
		body := w.get(path).body
		e.mu.Lock()
		for _, secret := range e.secrets {
			if strings.Contains(body, secret) {
				t.Errorf("%s holds a secret the test used (%d bytes long)", path, len(secret))
			}
		}
		e.mu.Unlock()
	}
}

// startsFormula reports whether a spreadsheet could read s as a formula:
// after any spaces (Unicode ones too), format characters and quotes, it
// begins with = + - @, their full-width forms, a tab or a carriage return.
func startsFormula(s string) bool {
	s = strings.TrimLeftFunc(s, func(r rune) bool {
		return (unicode.IsSpace(r) && r != '\t' && r != '\r') || unicode.Is(unicode.Cf, r) || r == '"'
	})
	r, _ := utf8.DecodeRuneInString(s)
	return s != "" && strings.ContainsRune("=+-@＝＋－＠\t\r", r)
}

// TestDashboardAuditCSVExportNeutralisesHiddenFormulas: clients choose
// what the trail records (a failed login's username, a user agent, a
// path), so the CSV export holds no cell that starts a formula, however a
// spreadsheet reads it: as CSV, or split at ';' or tabs (which
// encoding/csv does not quote), after Unicode spaces, or in full-width
// characters.
func TestDashboardAuditCSVExportNeutralisesHiddenFormulas(t *testing.T) {
	t.Parallel()
	e := newDashEnv(t)
	// username as sent -> the cell the export holds
	usernames := map[string]string{
		"x;=cmd|' /C calc'!A0": "x;'=cmd|' /C calc'!A0",
		"y\t=2+2":              "y\t'=2+2",
		"z; \t @SUM(A1)":       "z;' \t' @SUM(A1)",
		"\u00a0=1+1":           "'\u00a0=1+1",
		"\u3000@SUM(A1)":       "'\u3000@SUM(A1)",
		"\u200b=1+1":           "'\u200b=1+1",
		"＝1+1":                 "'＝1+1",
		"＋1":                   "'＋1",
		"－1":                   "'－1",
		"＠A1":                  "'＠A1",
		"a\n=1+1":              "a\n'=1+1",
		"fine; ok":             "fine; ok",
		"a,=1":                 "a,=1", // one quoted cell to a CSV reader; no ';' or tab to split it
	}
	for u := range usernames {
		if status, _ := e.do("POST", "/api/v1/session", "", gatehouse.LoginRequest{Username: u, Password: "whatever-123"}); status != http.StatusUnauthorized {
			t.Fatalf("login as %q: %d, want 401", u, status)
		}
	}
	// A user agent and a path of an authenticated request.
	const agent, path = "curl/8.0; =HYPERLINK(\"http://evil.example\")", "/api/v1/account/x;=1+1"
	req, err := http.NewRequest("GET", e.srv.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+e.admin)
	req.Header.Set("User-Agent", agent)
	e.send(req)

	w := newWeb(t, e)
	w.login("admin", adminPassword)
	body := w.get("/audit/export.csv?since=2000-01-01T00:00").body

	// Every field is quoted.
	for _, line := range strings.Split(strings.TrimSuffix(body, "\n"), "\n") {
		if !strings.HasPrefix(line, `"`) && !strings.HasPrefix(line, `'`) { // ' begins the line after a line feed in a cell
			t.Errorf("a line that does not begin with a quoted field: %q", line)
		}
	}
	// Read as CSV: the cells hold what was recorded, each place that
	// starts a formula neutralised.
	rows, err := csv.NewReader(strings.NewReader(body)).ReadAll()
	if err != nil {
		t.Fatalf("the export does not parse as CSV: %v", err)
	}
	cells := map[string]bool{}
	for _, row := range rows {
		for _, c := range row {
			cells[c] = true
			if startsFormula(c) {
				t.Errorf("CSV cell %q starts a formula", c)
			}
		}
	}
	for u, want := range usernames {
		if !cells[want] {
			t.Errorf("no cell %q for the username %q", want, u)
		}
	}
	// The apostrophe goes right after the separator, before the spaces.
	for _, want := range []string{"curl/8.0;' =HYPERLINK(\"http://evil.example\")", "/api/v1/account/x;'=1+1", "x;'=1+1"} {
		if !cells[want] {
			t.Errorf("no cell %q", want)
		}
	}
	// Read split at ';' or at tabs, as a spreadsheet that guesses the
	// separator does: no part starts a formula either.
	for _, sep := range []string{";", "\t"} {
		for _, line := range strings.Split(body, "\n") {
			for _, part := range strings.Split(line, sep) {
				if startsFormula(part) {
					t.Errorf("split at %q, the part %q starts a formula", sep, part)
				}
			}
		}
	}
}

// TestDashboardTokenActivityRefusalNamesNoOwner: a user refused a token's
// activity reads the refusal in their own audit trail; it must not tell
// them whose the token is, or whether it exists.
func TestDashboardTokenActivityRefusalNamesNoOwner(t *testing.T) {
	t.Parallel()
	e := newDashEnv(t)
	e.createUser("alice")
	e.createUser("bob")
	nt := e.mint(e.admin, "alice", gatehouse.TokenRequest{Name: "x"})
	bob := webAs(t, e, "bob")
	const unknown = "6f1c2a7e-3b4d-4c5e-8f90-0a1b2c3d4e5f"
	for _, id := range []string{nt.ID, unknown} {
		if r := bob.get("/audit/tokens/" + id); r.status != http.StatusForbidden || strings.Contains(r.body, "alice") {
			t.Fatalf("bob's request for the activity of %s: %d, want 403 naming no owner\n%s", id, r.status, r.body)
		}
	}
	var list gatehouse.List[gatehouse.Event]
	e.call("GET", "/api/v1/audit?actor=bob&route="+url.QueryEscape("GET /audit/tokens/{id}"), e.admin, nil, 200, &list)
	if len(list.Items) != 2 {
		t.Fatalf("%d records of bob's requests, want 2", len(list.Items))
	}
	for _, ev := range list.Items {
		if ev.Resource != "audit" || ev.Action != "get" || ev.Object != "*" || ev.Decision != "deny" || ev.Status != http.StatusForbidden {
			t.Errorf("the record of %s: [%s, %s, %s] %s %d, want [audit, get, *] deny 403", ev.Path, ev.Resource, ev.Action, ev.Object, ev.Decision, ev.Status)
		}
	}
	if r := bob.get("/audit?route=" + url.QueryEscape("GET /audit/tokens/{id}")); r.status != 200 || strings.Contains(r.body, "alice") {
		t.Errorf("bob's own audit list: %d, naming alice:\n%s", r.status, r.body)
	}
}

// listedRequests is how many requests the audit page's rows stand for: a
// row of counted reads shows its count in a ×N badge.
func listedRequests(body string) int {
	n := strings.Count(body, `data-label="Time"`)
	for _, m := range regexp.MustCompile(`<span class="badge badge-count"[^>]*>×(\d+)</span>`).FindAllStringSubmatch(body, -1) {
		c, _ := strconv.Atoi(m[1])
		n += c - 1
	}
	return n
}
