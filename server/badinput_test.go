package server_test

import (
	"bytes"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	_ "modernc.org/sqlite"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/server"
	"github.com/gatehouse/gatehouse/service"
	gtoken "github.com/gatehouse/gatehouse/token"
)

// The bad-input matrix: every route of the route table (server.RoutePatterns,
// so a new route is covered by itself) gets wrong methods, broken, null and
// wrongly typed JSON, huge and invalid-UTF-8 strings, traversal in its path
// values and every bad form of credential. Every /api/ answer must be a 4xx
// JSON error body, no answer anywhere a 5xx, and the store must be exactly
// as it was (every table but the audit events, lastUsed columns aside).

// publicAPI are the API routes that take no credential.
var publicAPI = map[string]bool{"POST /api/v1/session": true, "POST /api/v1/session/device": true, "POST /api/v1/session/device/token": true, "POST /api/v1/token/exchange": true, "POST /api/v1/tokens/leaked": true, "GET /api/version": true, "GET /api/v1/openapi.json": true}

// credentialFreeAPI are the public API routes that never read a
// credential, so that any credential, good or bad, gets their answer.
var credentialFreeAPI = map[string]bool{"GET /api/version": true, "GET /api/v1/openapi.json": true, "POST /api/v1/tokens/leaked": true}

// formAPI are the API routes whose body is a form, not JSON (RFC 7662).
var formAPI = map[string]bool{"POST /api/v1/introspect": true, "POST /api/v1/token/exchange": true}

// oauthAPI are the API routes that answer in the OAuth error shape,
// {"error", "error_description"} (RFC 8693 token exchange).
var oauthAPI = map[string]bool{"POST /api/v1/token/exchange": true}

// badFixtures are the objects the matrix aims at: each exists, so that a
// request that got through would change something.
type badFixtures struct {
	account, project, role, app string
	tokenID, roleTokenID, opID  string
	admin                       string // a valid admin session
	creds                       []badCredential
}

type badCredential struct {
	name string
	set  func(*http.Request)
}

// dashboardOnly are credentials bad for the dashboard only: the API takes
// any valid token from the cookie, the dashboard sessions only.
var dashboardOnly = map[string]bool{"cookie with an API token": true}

func newBadFixtures(t *testing.T, e *env) *badFixtures {
	t.Helper()
	fx := &badFixtures{account: "alice", project: "team-a", role: "deployer", app: "web", admin: e.admin}
	e.createUser("alice")
	alice := e.mint(e.admin, "alice", gatehouse.TokenRequest{Name: "kept"})
	fx.tokenID = alice.ID
	e.call("POST", "/api/v1/projects", e.admin, gatehouse.Project{Name: "team-a", Description: "Team A", Roles: []gatehouse.ProjectRole{{
		Name: "deployer", Policies: []string{"p, proj:team-a:deployer, applications, sync, team-a/*, allow"}, Groups: []string{"deployers"},
	}}}, 200, nil)
	var rt gatehouse.NewToken
	e.call("POST", "/api/v1/projects/team-a/roles/deployer/token", e.admin, gatehouse.TokenRequest{Name: "ci"}, 200, &rt)
	e.remember(rt.Token)
	fx.roleTokenID = rt.ID
	e.call("POST", "/api/v1/applications", e.admin, app("web", "team-a"), 200, nil)
	var op gatehouse.Operation
	e.call("POST", "/api/v1/applications/web/sync", e.admin, gatehouse.SyncRequest{Revision: "main"}, 200, &op)
	fx.opID = op.ID

	revoked := e.mint(e.admin, "alice", gatehouse.TokenRequest{Name: "revoked"})
	e.call("DELETE", "/api/v1/account/alice/token/"+revoked.ID, e.admin, nil, 200, nil)
	expired := e.mint(e.admin, "alice", gatehouse.TokenRequest{Name: "expired", ExpiresIn: seconds(60)})
	e.clock.Advance(2 * time.Minute)

	parsed, err := gtoken.Parse(alice.Token)
	if err != nil {
		t.Fatal(err)
	}
	wrongSecret := parsed
	wrongSecret.Secret[0] ^= 1 // well formed, right checksum, known id
	e.remember(wrongSecret.Reveal())
	raw, err := base64.RawURLEncoding.DecodeString(parsed.Body())
	if err != nil {
		t.Fatal(err)
	}
	raw[len(raw)-1] ^= 1
	badSum := "gatehouse:" + base64.RawURLEncoding.EncodeToString(raw)
	e.remember(badSum)
	body := parsed.Body()
	bearer := func(v string) func(*http.Request) {
		return func(r *http.Request) { r.Header.Set("Authorization", v) }
	}
	basic := func(userpass string) func(*http.Request) {
		return bearer("Basic " + base64.StdEncoding.EncodeToString([]byte(userpass)))
	}
	cookie := func(v string) func(*http.Request) {
		return func(r *http.Request) { r.AddCookie(&http.Cookie{Name: server.CookieName, Value: v}) }
	}
	fx.creds = []badCredential{
		{"no credential", func(*http.Request) {}},
		{"garbage bearer", bearer("Bearer garbage")},
		{"empty bearer", bearer("Bearer ")},
		{"unknown scheme", bearer("Token " + alice.Token)},
		{"wrong instance prefix", bearer("Bearer other:" + body)},
		{"bad checksum", bearer("Bearer " + badSum)},
		{"wrong secret", bearer("Bearer " + wrongSecret.Reveal())},
		{"truncated", bearer("Bearer " + alice.Token[:len(alice.Token)-10])},
		{"revoked", bearer("Bearer " + revoked.Token)},
		{"expired", bearer("Bearer " + expired.Token)},
		{"basic with bad base64", bearer("Basic !!!not-base64!!!")},
		{"basic without a colon", basic("garbage")},
		{"basic with a garbage password", basic("admin:garbage")},
		{"basic with a revoked token", basic("x:" + revoked.Token)},
		{"cookie with garbage", cookie("garbage")},
		{"cookie with a revoked token", cookie(revoked.Token)},
		{"cookie with an expired token", cookie(expired.Token)},
		{"cookie with an API token", cookie(alice.Token)}, // the dashboard takes sessions only
	}
	return fx
}

// value fills one wildcard of a route pattern with an existing object.
// An unknown wildcard gets "x": the route is still covered.
func (fx *badFixtures) value(segs []string, i int) string {
	name := strings.Trim(segs[i], "{}")
	prev := segs[i-1]
	switch name {
	case "name":
		switch prev {
		case "account", "accounts":
			return fx.account
		case "projects":
			return fx.project
		case "applications":
			return fx.app
		}
	case "role":
		return fx.role
	case "id":
		switch {
		case slices.Contains(segs, "roles"):
			return fx.roleTokenID
		case prev == "token" || prev == "tokens":
			return fx.tokenID
		case prev == "operations":
			return fx.opID
		}
	case "resource":
		return "applications"
	case "action":
		return "get"
	case "object...":
		return "team-a/web"
	}
	return "x"
}

// badRoute is one route of the table, ready to be filled in.
type badRoute struct {
	pattern string
	method  string // "" for any
	segs    []string
	api     bool
}

func parseRoute(pattern string) badRoute {
	method, path, ok := strings.Cut(pattern, " ")
	if !ok {
		method, path = "", pattern
	}
	path = strings.ReplaceAll(path, "{$}", "")
	return badRoute{pattern: pattern, method: method, segs: strings.Split(path, "/"), api: strings.HasPrefix(path, "/api/")}
}

func (r badRoute) wildcards() []int {
	var out []int
	for i, s := range r.segs {
		if strings.HasPrefix(s, "{") {
			out = append(out, i)
		}
	}
	return out
}

// path fills the wildcards, replacing the one at index at (if any) by v.
func (r badRoute) path(fx *badFixtures, at int, v string) string {
	segs := slices.Clone(r.segs)
	for _, i := range r.wildcards() {
		if i == at {
			segs[i] = v
		} else {
			segs[i] = fx.value(r.segs, i)
		}
	}
	return strings.Join(segs, "/")
}

// takesJSON: the route reads a JSON body.
func (r badRoute) takesJSON() bool {
	switch r.method {
	case http.MethodPost, http.MethodPut, http.MethodPatch:
		return r.api && !formAPI[r.pattern]
	}
	return false
}

// badCase is one request of the matrix and what its answer must be.
type badCase struct {
	what        string
	route       badRoute
	method      string
	path        string
	body        []byte
	ctype       string
	set         func(*http.Request)
	want401     bool // a bad credential on an authenticated API route
	loggedOutOK bool // userinfo without a credential: 200 {"loggedIn": false}
	any2xx      bool // an odd value a question may answer
}

func TestBadInputMatrix(t *testing.T) {
	e := newEnv(t)
	fx := newBadFixtures(t, e)
	var routes []badRoute
	for _, p := range server.RoutePatterns() {
		if p == "/" || p == "/api/" {
			continue // the catch-alls: what the wrong methods reach
		}
		routes = append(routes, parseRoute(p))
	}
	if len(routes) < 40 {
		t.Fatalf("the route table has %d routes; is RoutePatterns walking it?", len(routes))
	}
	// Which pattern a request reaches, to tell a wrong method from a route.
	mux := http.NewServeMux()
	for _, p := range server.RoutePatterns() {
		mux.HandleFunc(p, func(http.ResponseWriter, *http.Request) {})
	}
	fields := requestFields(t)

	var cases []badCase
	admin := func(api bool) func(*http.Request) {
		if api {
			return func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+fx.admin) }
		}
		return func(r *http.Request) { r.AddCookie(&http.Cookie{Name: server.CookieName, Value: fx.admin}) }
	}
	emptyBody := func(r badRoute) ([]byte, string) {
		if r.method == "" || r.method == http.MethodGet {
			return nil, ""
		}
		if !r.api {
			return nil, "application/x-www-form-urlencoded"
		}
		if formAPI[r.pattern] {
			return []byte("token=x"), "application/x-www-form-urlencoded"
		}
		return []byte(`{}`), "application/json"
	}
	for _, r := range routes {
		method := r.method
		if method == "" {
			method = http.MethodGet
		}
		path := r.path(fx, -1, "")
		body, ctype := emptyBody(r)

		// Every bad credential, on a request that is otherwise good.
		for _, c := range fx.creds {
			if dashboardOnly[c.name] && r.api {
				continue
			}
			// userinfo without any credential answers 200 {"loggedIn": false}.
			loggedOut := c.name == "no credential" && r.pattern == "GET /api/v1/session/userinfo"
			cases = append(cases, badCase{
				what: "credential: " + c.name, route: r, method: method, path: path, body: body, ctype: ctype, set: c.set,
				want401: r.api && !publicAPI[r.pattern] && !loggedOut, loggedOutOK: loggedOut,
				any2xx: credentialFreeAPI[r.pattern],
			})
		}

		// Wrong methods, by a caller who may do anything.
		if r.method != "" {
			for _, m := range []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete} {
				req, _ := http.NewRequest(m, "http://x"+path, nil)
				if _, p := mux.Handler(req); p != "/" && p != "/api/" {
					continue // another route of the same path
				}
				cases = append(cases, badCase{what: "wrong method", route: r, method: m, path: path,
					body: []byte(`{}`), ctype: "application/json", set: admin(r.api)})
			}
		}

		// Traversal in each path value: refused. Odd values need not be
		// (can-i answers any question), but must not break or change
		// anything.
		for _, i := range r.wildcards() {
			for _, v := range []string{"..", ".", "%2e%2e", "%2E%2E", "%2e", "%2f", "..%2f..%2fsettings", "%2e%2e%2f%2e%2e%2fsettings",
				"a%2f..%2fb", "a%2f%2fb", "%2f%2e%2e", "x%2f.."} {
				cases = append(cases, badCase{what: "path value " + v, route: r, method: method,
					path: r.path(fx, i, v), body: body, ctype: ctype, set: admin(r.api)})
			}
			for _, v := range []string{"..%5c..%5c", "%00", "%ff", "%c3%28", strings.Repeat("a", 8000)} {
				cases = append(cases, badCase{what: "odd path value " + truncateMiddle(v), route: r, method: method,
					path: r.path(fx, i, v), body: body, ctype: ctype, set: admin(r.api), any2xx: true})
			}
		}

		// Bad JSON bodies, by a caller who may do anything.
		if !r.takesJSON() {
			continue
		}
		bodies := map[string][]byte{
			"null":             []byte(`null`),
			"null in space":    []byte(" \n null \t"),
			"empty":            nil,
			"only space":       []byte("  "),
			"broken":           []byte(`{`),
			"cut":              []byte(`{"name":`),
			"closing brace":    []byte(`}`),
			"two values":       []byte(`{}{}`),
			"trailing garbage": []byte(`{} x`),
			"array":            []byte(`[]`),
			"array of null":    []byte(`[null]`),
			"string":           []byte(`"x"`),
			"number":           []byte(`5`),
			"bool":             []byte(`true`),
			"unknown field":    []byte(`{"bogus":1}`),
			"raw invalid utf8": []byte("{\"name\":\"a\xffb\"}"),
			"bad utf8 key":     []byte("{\"\xff\":1}"),
			"over 1 MiB":       append(append([]byte(`{"name":"`), bytes.Repeat([]byte("a"), 1<<20)...), `"}`...),
		}
		for f, kinds := range fields {
			if v := wrongJSON(kinds); v != "" {
				bodies["wrong type "+f] = []byte(`{"` + f + `":` + v + `}`)
			}
			if !kinds["string"] {
				continue
			}
			bodies["invalid utf8 in "+f] = []byte("{\"" + f + "\":\"ok\xc3\x28\"}")
			bodies["lone low surrogate in "+f] = []byte(`{"` + f + `":"\udc00"}`)
			bodies["lone high surrogate in "+f] = []byte(`{"` + f + `":"x\ud800y"}`)
			bodies["huge "+f] = []byte(`{"` + f + `":"` + strings.Repeat("x", 256<<10) + `"}`)
		}
		for what, b := range bodies {
			cases = append(cases, badCase{what: "body " + what, route: r, method: r.method, path: path, body: b,
				ctype: "application/json", set: admin(true)})
		}
		// Not JSON at all.
		cases = append(cases, badCase{what: "form body", route: r, method: r.method, path: path,
			body: []byte("name=x"), ctype: "application/x-www-form-urlencoded", set: admin(true)})
	}

	before := dumpStore(t, e.dbPath)
	client := *e.srv.Client()
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	for _, c := range cases {
		req, err := http.NewRequest(c.method, e.srv.URL+c.path, bytes.NewReader(c.body))
		if err != nil {
			t.Fatalf("%s %s: %v", c.method, c.path, err)
		}
		if c.ctype != "" {
			req.Header.Set("Content-Type", c.ctype)
		}
		c.set(req)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("%s %s (%s): %v", c.method, truncateMiddle(c.path), c.what, err)
		}
		got, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if msg := c.check(resp, got); msg != "" {
			t.Errorf("%s %s (route %q, %s): %d %s: %s", c.method, truncateMiddle(c.path), c.route.pattern, c.what, resp.StatusCode, truncateMiddle(string(got)), msg)
		}
	}
	after := dumpStore(t, e.dbPath)
	if d := diffDumps(before, after); d != "" {
		t.Errorf("the store changed under bad input:\n%s", d)
	}
	t.Logf("%d routes, %d bad requests", len(routes), len(cases))
}

// check returns what is wrong with an answer, or "".
func (c badCase) check(resp *http.Response, body []byte) string {
	status := resp.StatusCode
	if status >= 500 {
		return "a 5xx"
	}
	if !c.route.api || !strings.HasPrefix(c.path, "/api/") {
		return ""
	}
	if c.loggedOutOK {
		if status != 200 || !bytes.Contains(body, []byte(`"loggedIn":false`)) {
			return `want 200 {"loggedIn": false}`
		}
		return ""
	}
	if c.any2xx && status < 300 {
		return ""
	}
	if status < 400 || status > 499 {
		return "want a 4xx"
	}
	if ct, _, _ := strings.Cut(resp.Header.Get("Content-Type"), ";"); ct != "application/json" {
		return "Content-Type " + resp.Header.Get("Content-Type") + ", want application/json"
	}
	var eb map[string]any
	if err := json.Unmarshal(body, &eb); err != nil {
		return "not a JSON body"
	}
	code, _ := eb["error"].(string)
	msg, _ := eb["message"].(string)
	if oauthAPI[c.route.pattern] && c.route.method == c.method {
		msg, _ = eb["error_description"].(string)
		if len(eb) != 2 || code == "" || msg == "" {
			return `want exactly {"error", "error_description"}`
		}
		return ""
	}
	if len(eb) != 2 || code == "" || msg == "" {
		return `want exactly {"error", "message"}`
	}
	if c.want401 && (status != 401 || code != "unauthenticated") {
		return "want 401 unauthenticated"
	}
	return ""
}

func truncateMiddle(s string) string {
	if len(s) <= 120 {
		return s
	}
	return s[:60] + "…(" + strconv.Itoa(len(s)) + " bytes)…" + s[len(s)-40:]
}

// requestFields reads the domain package's source (the one definition of
// the wire format) for every JSON field name and the JSON kinds it takes,
// so that a new request type is covered by itself.
func requestFields(t *testing.T) map[string]map[string]bool {
	t.Helper()
	files, err := filepath.Glob("../*.go")
	if err != nil || len(files) == 0 {
		t.Fatalf("no domain sources: %v", err)
	}
	fset := token.NewFileSet()
	decls := map[string]ast.Expr{}
	var structs []*ast.StructType
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		af, err := parser.ParseFile(fset, f, nil, parser.SkipObjectResolution)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(af, func(n ast.Node) bool {
			if ts, ok := n.(*ast.TypeSpec); ok {
				decls[ts.Name.Name] = ts.Type
				if st, ok := ts.Type.(*ast.StructType); ok {
					structs = append(structs, st)
				}
			}
			return true
		})
	}
	var kindOf func(ast.Expr, int) string
	kindOf = func(x ast.Expr, depth int) string {
		if depth > 5 {
			return "any"
		}
		switch x := x.(type) {
		case *ast.Ident:
			switch x.Name {
			case "string":
				return "string"
			case "bool":
				return "bool"
			case "int", "int8", "int16", "int32", "int64", "uint", "uint8", "uint16", "uint32", "uint64", "float32", "float64":
				return "number"
			}
			if d, ok := decls[x.Name]; ok {
				return kindOf(d, depth+1)
			}
		case *ast.StarExpr:
			return kindOf(x.X, depth+1)
		case *ast.ArrayType:
			if id, ok := x.Elt.(*ast.Ident); ok && id.Name == "byte" && x.Len == nil {
				return "string"
			}
			return "array"
		case *ast.MapType, *ast.StructType:
			return "object"
		case *ast.SelectorExpr:
			switch fmt.Sprint(x.X) + "." + x.Sel.Name {
			case "time.Time":
				return "string"
			case "time.Duration":
				return "number"
			}
		}
		return "any"
	}
	out := map[string]map[string]bool{}
	for _, st := range structs {
		for _, f := range st.Fields.List {
			if f.Tag == nil {
				continue
			}
			tag, _ := strconv.Unquote(f.Tag.Value)
			name, _, _ := strings.Cut(reflect.StructTag(tag).Get("json"), ",")
			if name == "" || name == "-" {
				continue
			}
			if out[name] == nil {
				out[name] = map[string]bool{}
			}
			out[name][kindOf(f.Type, 0)] = true
		}
	}
	if len(out) < 20 {
		t.Fatalf("found only %d JSON fields in the domain package", len(out))
	}
	return out
}

// wrongJSON is a value of a JSON kind the field takes nowhere, or "".
func wrongJSON(kinds map[string]bool) string {
	if kinds["any"] {
		return ""
	}
	for _, k := range []struct{ kind, v string }{{"number", `7`}, {"bool", `true`}, {"array", `[1]`}, {"object", `{"x":1}`}, {"string", `"x"`}} {
		if !kinds[k.kind] {
			return k.v
		}
	}
	return ""
}

// dumpStore reads every table of the SQLite database through database/sql,
// but the audit events (expected to grow) and the lastUsed columns (a
// token's use is recorded, off the request path): table → sorted rows.
func dumpStore(t *testing.T, dbPath string) map[string][]string {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+dbPath+"?mode=ro&_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var tables []string
	rows, err := db.Query(`SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			t.Fatal(err)
		}
		tables = append(tables, n)
	}
	if err := rows.Close(); err != nil {
		t.Fatal(err)
	}
	out := map[string][]string{}
	schema, err := db.Query(`SELECT type, name, coalesce(sql, '') FROM sqlite_master ORDER BY type, name`)
	if err != nil {
		t.Fatal(err)
	}
	out["(schema)"] = scanRows(t, schema, "", nil)
	for _, table := range tables {
		if table == "events" || table == "audit_chain" || table == "probe" { // the audit trail and its chain's head grow; readiness rewrites its probe
			continue
		}
		rows, err := db.Query(`SELECT * FROM "` + table + `"`)
		if err != nil {
			t.Fatal(err)
		}
		out[table] = scanRows(t, rows, table, func(col string, v any) bool {
			return strings.HasPrefix(col, "last_used") || (table == "sqlite_sequence" && col == "seq")
		})
	}
	if len(out["tokens"]) == 0 || len(out["accounts"]) == 0 {
		t.Fatalf("the dump holds no tokens or accounts: %v", out)
	}
	return out
}

func scanRows(t *testing.T, rows *sql.Rows, table string, skip func(col string, v any) bool) []string {
	t.Helper()
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		var b strings.Builder
		for i, c := range cols {
			if skip != nil && skip(c, vals[i]) {
				continue
			}
			switch v := vals[i].(type) {
			case []byte:
				fmt.Fprintf(&b, "%s=%x ", c, v)
			default:
				fmt.Fprintf(&b, "%s=%v ", c, v)
			}
		}
		out = append(out, b.String())
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	sort.Strings(out)
	return out
}

func diffDumps(before, after map[string][]string) string {
	var b strings.Builder
	var tables []string
	for k := range before {
		tables = append(tables, k)
	}
	for k := range after {
		if _, ok := before[k]; !ok {
			tables = append(tables, k)
		}
	}
	sort.Strings(tables)
	for _, table := range tables {
		x, y := before[table], after[table]
		for _, r := range x {
			if !slices.Contains(y, r) {
				fmt.Fprintf(&b, "%s: - %s\n", table, truncateMiddle(r))
			}
		}
		for _, r := range y {
			if !slices.Contains(x, r) {
				fmt.Fprintf(&b, "%s: + %s\n", table, truncateMiddle(r))
			}
		}
	}
	return b.String()
}

// Refusals made before routing (415, a path with dot segments, a null
// body) go through the access log and the metrics like every answer.
func TestBadInputRefusalsAreLoggedAndCounted(t *testing.T) {
	e := newEnv(t)
	logs := &lockedBuffer{}
	reg := prometheus.NewRegistry()
	m := service.NewMetrics(reg)
	count := func(route string, status int) float64 {
		t.Helper()
		fams, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range fams {
			if f.GetName() != "gatehouse_http_requests_total" {
				continue
			}
			for _, m := range f.GetMetric() {
				labels := map[string]string{}
				for _, l := range m.GetLabel() {
					labels[l.GetName()] = l.GetValue()
				}
				if labels["route"] == route && labels["code"] == strconv.Itoa(status) {
					return m.GetCounter().GetValue()
				}
			}
		}
		return 0
	}
	h := server.New(server.Options{Service: e.svc, Logger: slog.New(slog.NewJSONHandler(logs, nil)), Metrics: m})
	for name, tc := range map[string]struct {
		method, path, ctype, body string
		status                    int
		route                     string
	}{
		"fail/no content type": {"POST", "/api/v1/account", "", `{}`, 415, "unmatched"},
		"fail/form":            {"PUT", "/api/v1/settings/rbac", "application/x-www-form-urlencoded", `a=b`, 415, "unmatched"},
		"fail/dot segment":     {"DELETE", "/api/v1/account/alice/token/..", "application/json", `{}`, 400, "unmatched"},
		"fail/encoded dots":    {"GET", "/api/v1/account/%2e%2e", "", ``, 400, "unmatched"},
		"fail/null":            {"PUT", "/api/v1/settings/rbac", "application/json", `null`, 400, "PUT /api/v1/settings/rbac"},
	} {
		t.Run(name, func(t *testing.T) {
			req := httptest.NewRequest(tc.method, tc.path, strings.NewReader(tc.body))
			if tc.ctype != "" {
				req.Header.Set("Content-Type", tc.ctype)
			}
			req.Header.Set("Authorization", "Bearer "+e.admin)
			before := count(tc.route, tc.status)
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != tc.status {
				t.Fatalf("status %d, want %d: %s", rec.Code, tc.status, rec.Body)
			}
			id := rec.Header().Get("X-Request-Id")
			if id == "" {
				t.Fatal("no X-Request-Id")
			}
			var logged bool
			for _, line := range bytes.Split(logs.Bytes(), []byte("\n")) {
				var l struct {
					Msg       string `json:"msg"`
					RequestID string `json:"request_id"`
					Status    int    `json:"status"`
					Route     string `json:"route"`
				}
				if json.Unmarshal(line, &l) == nil && l.Msg == "request" && l.RequestID == id {
					logged = l.Status == tc.status && l.Route == tc.route
				}
			}
			if !logged {
				t.Errorf("no access log line for request %s with status %d, route %q:\n%s", id, tc.status, tc.route, logs.Bytes())
			}
			if got := count(tc.route, tc.status) - before; got != 1 {
				t.Errorf("gatehouse_http_requests_total{route=%q,code=\"%d\"} grew by %v, want 1", tc.route, tc.status, got)
			}
		})
	}
}
