package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/server"
	"github.com/gatehouse/gatehouse/service"
)

// propPolicy: what olga (group sre) may do in the property test. team-a
// is hers, team-b is not, settings never.
const propPolicy = "p, role:sre, applications, get, weak, allow\n" +
	"p, role:sre, applications, get, public/*, allow\n" +
	"p, role:sre, applications, get, team-a/*, allow\n" +
	"p, role:sre, applications, sync, team-a/*, allow\n" +
	"p, role:sre, projects, get, team-a, allow\n" +
	"p, role:sre, projects, get, x, allow\n" +
	"g, sre, role:sre"

// TestForwardAuthProperty: random route tables, random paths in random
// encodings, sent through the real server as nginx sends them. Every
// answer is a refusal or exactly the decision for the path an nginx-style
// upstream serves (decode, resolve dot segments, merge slashes), computed
// here by a reference matcher and the policy engine. The seed is fixed;
// GATEHOUSE_PROPERTY_CASES and GATEHOUSE_PROPERTY_SEED change the run.
func TestForwardAuthProperty(t *testing.T) {
	cases := envInt(t, "GATEHOUSE_PROPERTY_CASES", 10_000)
	seed := uint64(envInt(t, "GATEHOUSE_PROPERTY_SEED", 20261126))
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))

	e := newEnv(t)
	e.createUser("olga", "sre")
	e.setPolicy(propPolicy, "")
	olga := e.mint(e.login("olga", "olga-password"), "olga", gatehouse.TokenRequest{Name: "proxy"})
	p, err := e.svc.Authenticate(context.Background(), olga.Token)
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewJSONHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelWarn}))

	var n struct{ allowed, denied, noRoute, refused, refusedHTTP, dirty, tables, envoy int }
	const perTable = 250
	for done := 0; done < cases; {
		table := randomTable(rng)
		n.tables++
		if probs := service.CheckRoutes(table.routes()); len(probs) > 0 {
			t.Fatalf("generated table does not compile: %v", probs)
		}
		// Every third table is asked the way Envoy's ext_authz asks:
		// the original method, the original path after the prefix.
		envoy := n.tables%3 == 0
		headers := server.HeadersOriginal
		if envoy {
			headers = server.HeadersEnvoy
		}
		srv := httptest.NewServer(server.New(server.Options{Service: e.svc, Logger: log, ForwardAuth: table.routes(), ForwardAuthHeaders: headers}))
		c := newRawClient(t, srv.Listener.Addr().String())
		for i := 0; i < perTable && done < cases; i, done = i+1, done+1 {
			method, raw := randomRequest(rng, table)
			var status int
			var h http.Header
			var body, sent string
			if envoy {
				if !strings.HasPrefix(raw, "/") || strings.ContainsAny(raw, " \t") {
					raw = "/" + strings.NewReplacer(" ", "%20", "\t", "%09").Replace(raw) // Envoy's :path is one token
				}
				status, h, body = c.do(method, "/api/v1/auth/verify"+raw, "Authorization: Bearer "+olga.Token, "Content-Length: 0")
				sent = raw
				if status == 400 {
					// Go's HTTP server refuses a request line with control
					// bytes or a malformed escape; Envoy would not send one.
					n.refusedHTTP++
					continue
				}
				n.envoy++
			} else {
				status, h, body = c.do("GET", "/api/v1/auth/verify",
					"Authorization: Bearer "+olga.Token, "X-Original-Method: "+method, "X-Original-URI: "+raw)
				// What the server received: header values lose surrounding
				// blanks on the way.
				sent = strings.Trim(raw, " \t")
			}
			path, valid := nginxNormalize(sent)
			if valid && path != strings.SplitN(sent, "?", 2)[0] {
				n.dirty++
			}
			fail := func(format string, args ...any) {
				t.Helper()
				t.Fatalf("case %d (seed %d), routes %v\n%s %q → %d %s\nreference path %q (valid %v): %s",
					done, seed, table.routes(), method, raw, status, body, path, valid, fmt.Sprintf(format, args...))
			}
			var eb struct{ Error, Message string }
			switch status {
			case 400:
				// Go's HTTP server refuses a header with control bytes
				// before Gatehouse sees it; nginx never sends such a URI.
				// An empty value is a missing header.
				if sent != "" && !strings.ContainsFunc(sent, func(r rune) bool { return r < 0x20 && r != '\t' || r == 0x7f }) {
					fail("400 for a sendable header")
				}
				n.refusedHTTP++
				continue
			case 200, 403:
			default:
				fail("unexpected status")
			}
			if status == 403 {
				if method == "HEAD" && envoy {
					// No body to tell a refusal from a decision: a 403 is
					// at least never an allow.
					n.refused++
					continue
				}
				if err := jsonUnmarshal(body, &eb); err != nil || eb.Error != "permission_denied" {
					fail("403 without a permission_denied body")
				}
				if strings.HasPrefix(eb.Message, refusal) {
					n.refused++
					continue
				}
			}
			// Decided: the reference must agree.
			if !valid {
				fail("decided a URI an nginx upstream would not serve")
			}
			rt, values := table.lookup(method, path)
			switch {
			case status == 200:
				if rt == nil {
					fail("allowed, but no route matches the served path")
				}
				obj, ok := rt.object(values)
				if !ok {
					fail("allowed with an invalid wildcard value %v", values)
				}
				if !e.svc.Can(p, rt.resource, rt.action, obj) {
					fail("allowed, but the served path asks %s, %s, %s, which the policy denies", rt.resource, rt.action, obj)
				}
				if h.Get("X-Auth-User") != "olga" || h.Get("X-Auth-Token-Id") != olga.ID {
					fail("identity headers %v", h)
				}
				n.allowed++
			case strings.HasPrefix(eb.Message, "no forward-auth route"):
				if rt != nil {
					fail("no route, but the served path matches %v", rt.pattern())
				}
				n.noRoute++
			default:
				if rt == nil {
					fail("denied by policy, but no route matches the served path")
				}
				obj, ok := rt.object(values)
				if !ok {
					fail("denied by policy, but wildcard values %v are not names: that is a refusal", values)
				}
				if e.svc.Can(p, rt.resource, rt.action, obj) {
					fail("denied, but the served path asks %s, %s, %s, which the policy allows", rt.resource, rt.action, obj)
				}
				n.denied++
			}
		}
		srv.Close()
	}
	decided := n.allowed + n.denied + n.noRoute
	t.Logf("TestForwardAuthProperty: %d cases (%d of them as Envoy asks) over %d route tables (seed %d): %d allowed, %d denied by policy, %d without a route, %d refused by forward auth, %d refused by HTTP; %d were sent in another form than the path served",
		cases, n.envoy, n.tables, seed, n.allowed, n.denied, n.noRoute, n.refused, n.refusedHTTP, n.dirty)
	// Not vacuous: plenty of each kind of answer.
	if cases >= 1000 && (n.allowed < cases/20 || n.denied+n.noRoute < cases/20 || n.refused < cases/10 || decided < cases/5) {
		t.Errorf("generator too lopsided: %+v", n)
	}
}

func envInt(t *testing.T, name string, def int) int {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		t.Fatalf("%s=%q is not a positive number", name, v)
	}
	return n
}

// propRoute is a generated route: pattern segments ("" last: the
// anonymous multi of a trailing slash; "{$}"; "{a}"; "{rest...}";
// literals) and an object template.
type propRoute struct {
	method           string
	segs             []string
	resource, action string
	tmpl             []string // literal pieces and {name} references
}

type propTable []*propRoute

func (rt *propRoute) pattern() string {
	p := "/" + strings.Join(rt.segs, "/")
	if rt.method != "" {
		p = rt.method + " " + p
	}
	return p
}

func (rt *propRoute) multi() bool {
	last := rt.segs[len(rt.segs)-1]
	return last == "" || strings.HasSuffix(last, "...}")
}

func (t propTable) routes() []server.Route {
	var out []server.Route
	for _, rt := range t {
		out = append(out, server.Route{Match: rt.pattern(), Resource: rt.resource, Action: rt.action, Object: strings.Join(rt.tmpl, "")})
	}
	return out
}

// match is ServeMux's matching of one pattern, for the shapes generated.
func (rt *propRoute) match(path string) (map[string]string, bool) {
	segs := strings.Split(path[1:], "/")
	values := map[string]string{}
	for i, ps := range rt.segs {
		switch {
		case ps == "": // trailing slash: anything, including nothing, after it
			return values, len(segs) > i
		case ps == "{$}":
			return values, i == len(segs)-1 && segs[i] == ""
		case strings.HasSuffix(ps, "...}"):
			if len(segs) <= i {
				return nil, false
			}
			values[ps[1:len(ps)-4]] = strings.Join(segs[i:], "/")
			return values, true
		case ps[0] == '{':
			if i >= len(segs) || segs[i] == "" {
				return nil, false
			}
			values[ps[1:len(ps)-1]] = segs[i]
		default:
			if i >= len(segs) || segs[i] != ps {
				return nil, false
			}
		}
	}
	return values, len(segs) == len(rt.segs)
}

// exact is ServeMux's exactMatch: no redirect to path+"/" is considered.
func (rt *propRoute) exact(path string) bool {
	if !rt.multi() {
		return true
	}
	return strings.HasSuffix(path, "/") && len(rt.segs) == strings.Count(path, "/")
}

// find is ServeMux's lookup for these tables: routes for the method, then
// GET's for HEAD, then method-less ones; the most specific path wins,
// and the catch-all "/" (one segment, "") is the least specific.
func (t propTable) find(method, path string) (*propRoute, map[string]string) {
	phases := []string{method}
	if method == "HEAD" {
		phases = append(phases, "GET")
	}
	for _, m := range append(phases, "") {
		var catchAll *propRoute
		var caValues map[string]string
		for _, rt := range t {
			if rt.method != m {
				continue
			}
			if v, ok := rt.match(path); ok {
				if len(rt.segs) == 1 && rt.segs[0] == "" {
					catchAll, caValues = rt, v
					continue
				}
				return rt, v
			}
		}
		if catchAll != nil {
			return catchAll, caValues
		}
	}
	return nil, nil
}

// lookup is the route of a served path, with ServeMux's redirect of
// "/tree" to "/tree/" counted as no route.
func (t propTable) lookup(method, path string) (*propRoute, map[string]string) {
	rt, v := t.find(method, path)
	if (rt == nil || !rt.exact(path)) && !strings.HasSuffix(path, "/") {
		if rt2, _ := t.find(method, path+"/"); rt2 != nil && rt2.exact(path+"/") {
			return nil, nil
		}
	}
	return rt, v
}

// validValue is the rule for wildcard values in objects: names of ASCII
// letters, digits, '.', '_', '-' without "..", joined by '/' for a
// {rest...} wildcard.
var validValue = regexp.MustCompile(`^[A-Za-z0-9._-]{1,253}(/[A-Za-z0-9._-]{1,253})*$`)

func (rt *propRoute) object(values map[string]string) (string, bool) {
	var b strings.Builder
	for _, piece := range rt.tmpl {
		if !strings.HasPrefix(piece, "{") {
			b.WriteString(piece)
			continue
		}
		name := strings.TrimSuffix(piece[1:len(piece)-1], "...")
		v := values[name]
		multi := slices.Contains(rt.segs, "{"+name+"...}")
		if !validValue.MatchString(v) || strings.Contains(v, "..") || (!multi && strings.Contains(v, "/")) {
			return "", false
		}
		b.WriteString(v)
	}
	return b.String(), true
}

// nginxNormalize is the path an nginx-style upstream serves: decode
// every escape once, merge slashes, resolve dot segments; false for a
// URI it refuses (not a path, a bad escape, NUL, above the root).
func nginxNormalize(raw string) (string, bool) {
	if !strings.HasPrefix(raw, "/") {
		return "", false
	}
	if i := strings.IndexAny(raw, "?#"); i >= 0 {
		raw = raw[:i]
	}
	var dec []byte
	for i := 0; i < len(raw); i++ {
		if raw[i] != '%' {
			dec = append(dec, raw[i])
			continue
		}
		if i+2 >= len(raw) {
			return "", false
		}
		v, err := strconv.ParseUint(raw[i+1:i+3], 16, 8)
		if err != nil {
			return "", false
		}
		dec = append(dec, byte(v))
		i += 2
	}
	if strings.IndexByte(string(dec), 0) >= 0 {
		return "", false
	}
	segs := strings.Split(string(dec), "/")[1:]
	var out []string
	for _, s := range segs {
		switch s {
		case "", ".":
		case "..":
			if len(out) == 0 {
				return "", false
			}
			out = out[:len(out)-1]
		default:
			out = append(out, s)
		}
	}
	last := segs[len(segs)-1]
	p := "/" + strings.Join(out, "/")
	if len(out) > 0 && (last == "" || last == "." || last == "..") {
		p += "/"
	}
	return p, true
}

var (
	propLiterals = []string{"public", "admin", "deploy", "repos", "grafana", "files", "api", "team-a"}
	propObjects  = []string{"weak", "strong", "public/site", "rbac", "team-a/web", "team-b/web"}
	propActions  = [][2]string{{"applications", "get"}, {"applications", "sync"}, {"projects", "get"}, {"settings", "update"}}
	propSegments = []string{
		"team-a", "team-b", "web", "x", "y.git", "admin", "public", "Team_A", "a..b", "site",
		".", "..", "...", "", "..;", ".;x",
		"ü", "é", "a b", "%", "a/b", "a\\b", "\x00", "\x7f", "\x01", "\t", "\uFF0F", "\uFF0E\uFF0E", "\u2025", "\u200B", "a?b", "a#b", "*", "a;b",
	}
)

func randomTable(rng *rand.Rand) propTable {
	lits := append([]string(nil), propLiterals...)
	rng.Shuffle(len(lits), func(i, j int) { lits[i], lits[j] = lits[j], lits[i] })
	var t propTable
	for _, l := range lits[:2+rng.IntN(5)] {
		ra := propActions[rng.IntN(len(propActions))]
		rt := &propRoute{method: []string{"", "GET", "POST"}[rng.IntN(3)], resource: ra[0], action: ra[1]}
		lit := []string{propObjects[rng.IntN(len(propObjects))]}
		switch rng.IntN(7) {
		case 0:
			rt.segs, rt.tmpl = []string{l, ""}, lit
		case 1:
			rt.segs = []string{l, "{a}"}
			rt.tmpl = [][]string{{"{a}"}, {"team-a/", "{a}"}, {"{a}", "/web"}}[rng.IntN(3)]
		case 2:
			rt.segs = []string{l, "{a}", "{b}"}
			rt.tmpl = [][]string{{"{a}", "/", "{b}"}, {"{b}"}}[rng.IntN(2)]
		case 3:
			rt.segs = []string{l, "{a}", "{rest...}"}
			rt.tmpl = [][]string{{"{a}", "/", "{rest...}"}, {"{a}"}, {"team-a/", "{rest}"}}[rng.IntN(3)]
		case 4:
			rt.segs, rt.tmpl = []string{l, propSegments[rng.IntN(10)]}, lit
		case 5:
			rt.segs, rt.tmpl = []string{l, "{$}"}, lit
		case 6:
			rt.segs = []string{l, "{a}", "web"}
			rt.tmpl = []string{"{a}", "/web"}
		}
		t = append(t, rt)
	}
	if rng.IntN(2) == 0 {
		t = append(t, &propRoute{segs: []string{""}, resource: "applications", action: "get", tmpl: []string{"weak"}})
	}
	return t
}

// randomRequest is a method and a raw request URI: mostly paths under the
// table's routes, made of names, dot segments, empty segments and odd
// bytes, each byte percent-encoded (in random case) or not at random.
func randomRequest(rng *rand.Rand, t propTable) (string, string) {
	method := []string{"GET", "POST", "HEAD", "DELETE"}[rng.IntN(4)]
	var segs []string
	if rng.IntN(10) < 8 {
		segs = append(segs, t[rng.IntN(len(t))].segs[0])
	}
	for range rng.IntN(5) {
		switch {
		case rng.IntN(3) > 0:
			segs = append(segs, propSegments[rng.IntN(10)])
		case rng.IntN(8) == 0:
			b := make([]byte, 1+rng.IntN(3))
			for i := range b {
				b[i] = byte(rng.IntN(256))
			}
			segs = append(segs, string(b))
		default:
			segs = append(segs, propSegments[rng.IntN(len(propSegments))])
		}
	}
	if rng.IntN(8) == 0 {
		segs = append(segs, "")
	}
	var b strings.Builder
	if rng.IntN(50) != 0 {
		b.WriteByte('/')
	}
	for i, s := range segs {
		if i > 0 {
			switch rng.IntN(40) {
			case 0:
				b.WriteString(pctCase(rng, '/'))
			case 1:
				b.WriteString("//")
			default:
				b.WriteByte('/')
			}
		}
		for j := 0; j < len(s); j++ {
			c := s[j]
			must := c <= ' ' || c == 0x7f || c == '%' || c == '?' || c == '#' || c >= 0x80
			switch {
			case c == '\r' || c == '\n':
				must = true // a raw one would end the header line
			case c == ' ' && rng.IntN(5) == 0, c < ' ' && rng.IntN(10) == 0, c >= 0x80 && rng.IntN(2) == 0:
				must = false // sent raw: refused, by the HTTP server or by Gatehouse
			}
			if must || rng.IntN(7) == 0 {
				b.WriteString(pctCase(rng, c))
			} else {
				b.WriteByte(c)
			}
		}
	}
	if rng.IntN(10) == 0 {
		b.WriteString("?q=" + []string{"1", "%2F..%2f", "/../admin/", "a%00"}[rng.IntN(4)])
	}
	return method, b.String()
}

// pctCase percent-encodes c with hex digits in random case.
func pctCase(rng *rand.Rand, c byte) string {
	const lower, upper = "0123456789abcdef", "0123456789ABCDEF"
	digit := func(v byte) byte {
		if rng.IntN(2) == 0 {
			return lower[v]
		}
		return upper[v]
	}
	return string([]byte{'%', digit(c >> 4), digit(c & 15)})
}

func jsonUnmarshal(body string, v any) error { return json.Unmarshal([]byte(body), v) }
