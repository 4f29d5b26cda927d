package server_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/server"
)

var fwdRoutes = []server.Route{
	{Match: "GET /grafana/", Resource: "applications", Action: "get", Object: "monitoring/grafana"},
	{Match: "POST /deploy/{project}/{app}", Resource: "applications", Action: "sync", Object: "{project}/{app}"},
	{Match: "/repos/{project}/{rest...}", Resource: "projects", Action: "get", Object: "{project}"},
	{Match: "GET /files/{project}/{path...}", Resource: "applications", Action: "get", Object: "{project}/{path}"},
	{Match: "GET /public/", Resource: "applications", Action: "get", Object: "public/site"},
	{Match: "GET /admin/", Resource: "settings", Action: "update", Object: "rbac"},
}

// fwdPolicy gives olga (group sre) grafana, the public site, team-a's
// applications and project; never the admin pages.
const fwdPolicy = "p, role:sre, applications, get, monitoring/*, allow\n" +
	"p, role:sre, applications, get, public/*, allow\n" +
	"p, role:sre, applications, sync, team-a/*, allow\n" +
	"p, role:sre, applications, get, team-a/*, allow\n" +
	"p, role:sre, projects, get, team-a, allow\n" +
	"g, sre, role:sre"

// refusal starts the message of a refused original request.
const refusal = "forward auth refuses the original request: "

// fwdEnv is a server with fwdRoutes, olga and her API token.
func fwdEnv(t *testing.T) (*env, gatehouse.NewToken) {
	t.Helper()
	e := newEnv(t, withRoutes(fwdRoutes...))
	e.createUser("olga", "sre")
	e.setPolicy(fwdPolicy, "")
	return e, e.mint(e.login("olga", "olga-password"), "olga", gatehouse.TokenRequest{Name: "proxy"})
}

// fwdServer is a second real server over e's service and store with its
// own forward-auth routes and header mode.
func fwdServer(t *testing.T, e *env, headers server.ForwardAuthHeaders, routes ...server.Route) *httptest.Server {
	t.Helper()
	log := slog.New(slog.NewJSONHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	srv := httptest.NewServer(server.New(server.Options{Service: e.svc, Logger: log, ForwardAuth: routes, ForwardAuthHeaders: headers}))
	t.Cleanup(srv.Close)
	return srv
}

func TestForwardAuth(t *testing.T) {
	e, olga := fwdEnv(t)
	cases := map[string]struct {
		method, uri, token string
		want               int
	}{
		"ok/get grafana":          {"GET", "/grafana/d/abc?orgId=1", olga.Token, 200},
		"ok/sync own project":     {"POST", "/deploy/team-a/web", olga.Token, 200},
		"ok/wildcard rest":        {"GET", "/repos/team-a/x/y/z.git", olga.Token, 200},
		"fail/sync other project": {"POST", "/deploy/team-b/web", olga.Token, 403},
		"fail/no route":           {"GET", "/elsewhere/", olga.Token, 403},
		"fail/not allowed":        {"GET", "/admin/", olga.Token, 403},
		"fail/method not routed":  {"DELETE", "/grafana/", olga.Token, 403},
		// The route without a method would take them, and an upstream
		// that upper-cases methods would serve them as GET.
		"fail/lower-case method": {"get", "/repos/team-a/x/y/z.git", olga.Token, 403},
		"fail/mixed-case method": {"Get", "/repos/team-a/x/y/z.git", olga.Token, 403},
		"fail/no credential":     {"GET", "/grafana/", "", 401},
		"fail/bad credential":    {"GET", "/grafana/", "gatehouse:nope", 401},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			req, _ := http.NewRequest("GET", e.srv.URL+"/api/v1/auth/verify", nil)
			req.Header.Set("X-Original-Method", c.method)
			req.Header.Set("X-Original-URI", c.uri)
			if c.token != "" {
				req.Header.Set("Authorization", "Bearer "+c.token)
			}
			resp, err := e.srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != c.want {
				t.Fatalf("status %d, want %d", resp.StatusCode, c.want)
			}
			if c.want == 200 {
				if resp.Header.Get("X-Auth-User") != "olga" || resp.Header.Get("X-Auth-Groups") != "sre" || resp.Header.Get("X-Auth-Token-Id") != olga.ID {
					t.Fatalf("identity headers = %v", resp.Header)
				}
			}
			if c.want == 401 && resp.Header.Get("WWW-Authenticate") == "" {
				t.Fatal("401 without a challenge")
			}
		})
	}
	// Missing original request headers is a clear 400.
	if s := e.status("GET", "/api/v1/auth/verify", olga.Token, nil); s != 400 {
		t.Fatalf("no X-Original-*: %d, want 400", s)
	}
	// Traefik's header names and Basic credentials (git, curl -u), with
	// headers: forwarded.
	srv := fwdServer(t, e, server.HeadersForwarded, fwdRoutes...)
	req, _ := http.NewRequest("POST", srv.URL+"/api/v1/auth/verify", nil)
	req.Header.Set("X-Forwarded-Method", "POST")
	req.Header.Set("X-Forwarded-Uri", "/deploy/team-a/api")
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	req.SetBasicAuth("git", olga.Token)
	if s, b := e.send(req); s != 200 {
		t.Fatalf("Traefik-style request: %d %s", s, b)
	}
}

// TestForwardAuthCanonical sends original URIs byte for byte (as nginx's
// $request_uri carries them) and checks which are refused, which are
// decided, and on which path.
func TestForwardAuthCanonical(t *testing.T) {
	e, olga := fwdEnv(t)
	c := newRawClient(t, e.srv.Listener.Addr().String())
	type want int
	const (
		allow   want = 200
		deny    want = 403 // decided: no route, or the policy says no
		refuse  want = -403
		badHTTP want = 400 // the HTTP server itself refuses the header
	)
	cases := []struct {
		method, uri string
		want        want
	}{
		// Canonical: decoded once, then matched.
		{"GET", "/grafana/", allow},
		{"GET", "/grafana/d/abc?orgId=1&x=%2F..%2f", allow},
		{"GET", "/%67rafana/d", allow},
		{"GET", "/grafana/%C3%BCber", allow},
		{"GET", "/grafana/a.b/x.y", allow},
		{"GET", "/grafana/a;b/x.y", refuse},
		{"GET", "/grafana./", refuse},
		{"HEAD", "/grafana/", allow},
		{"POST", "/deploy/team-a/web", allow},
		{"POST", "/deploy/te%61m-a/%77eb", allow},
		{"POST", "/deploy/Team_A.v2/web", deny},
		{"POST", "/deploy/team-b/web", deny},
		{"GET", "/repos/team-a/x/y/z.git", allow},
		{"GET", "/files/team-a/docs/a.txt", allow},
		{"GET", "/files/team-b/docs/a.txt", deny},
		{"GET", "/admin/", deny},
		{"GET", "/grafana", deny}, // ServeMux would redirect to /grafana/: no route
		{"GET", "/elsewhere", deny},
		// Encoded separators, dot segments, empty segments: refused.
		{"GET", "/public/%2e%2e/admin/", refuse},
		{"GET", "/public/%2E%2E/admin/", refuse},
		{"GET", "/public/.%2e/admin/", refuse},
		{"GET", "/public/%2e./admin/", refuse},
		{"GET", "/public/../admin/", refuse},
		{"GET", "/public/./admin/", refuse},
		{"GET", "/public/..%2fadmin/", refuse},
		{"GET", "/public/..%2Fadmin/", refuse},
		{"GET", "/public/%2Fadmin", refuse},
		{"GET", "/public/%2fadmin", refuse},
		{"GET", "/public/..%5cadmin/", refuse},
		{"GET", "/public/..%5Cadmin/", refuse},
		{"GET", `/public/..\admin/`, refuse},
		{"GET", "/public/..;/admin/", refuse},
		{"GET", "/public//admin/", refuse},
		{"GET", "//admin/", refuse},
		{"GET", "/public/%252e%252e/admin/", refuse},
		{"GET", "/public/%EF%BC%8E%EF%BC%8E/admin/", refuse},
		// Objects from wildcards: never across a project boundary.
		{"POST", "/deploy/team-a/..%2fteam-b", refuse},
		{"GET", "/files/team-a/../team-b/x", refuse},
		{"GET", "/files/team-a/%2e%2e/team-b/x", refuse},
		{"GET", "/files/team-a/..%2Fteam-b/x", refuse},
		{"GET", "/files/team-a/a..b/x", refuse},
		{"GET", "/files/team-a/%C3%BC", refuse},
		{"GET", "/files/team-a/a%20b", refuse},
		{"GET", "/files/team-a/", refuse}, // empty {path...}
		{"POST", "/deploy/team-a/a*", refuse},
		// Bytes: control (raw or encoded), NUL, invalid UTF-8.
		{"GET", "/grafana/%00", refuse},
		{"GET", "/grafana/%0a", refuse},
		{"GET", "/grafana/%7F", refuse},
		{"GET", "/grafana/%C2%85", refuse},
		{"GET", "/grafana/%ff", refuse},
		{"GET", "/grafana/%c0%ae%c0%ae/", refuse},
		{"GET", "/grafana/\xff", refuse},
		{"GET", "/grafana/\tx", refuse},
		{"GET", "/grafana/\x00", badHTTP},
		{"GET", "/grafana/\x01", badHTTP},
		// Not origin-form, malformed, odd methods.
		{"GET", "grafana/", refuse},
		{"GET", "http://gatehouse.example/grafana/", refuse},
		{"GET", "*", refuse},
		{"GET", "/grafana/%", refuse},
		{"GET", "/grafana/%zz", refuse},
		{"GET", "/grafana/a#b", refuse},
		{"G(T", "/grafana/", refuse},
		{"GET", "/grafana/" + strings.Repeat("a", 9000), refuse},
	}
	for _, tc := range cases {
		t.Run(fmt.Sprintf("%s %q", tc.method, tc.uri), func(t *testing.T) {
			status, h, body := c.do("GET", "/api/v1/auth/verify",
				"Authorization: Bearer "+olga.Token,
				"X-Original-Method: "+tc.method,
				"X-Original-URI: "+tc.uri)
			switch tc.want {
			case allow:
				if status != 200 || h.Get("X-Auth-User") != "olga" {
					t.Fatalf("status %d %s, want 200 for olga", status, body)
				}
			case deny, refuse:
				if status != 403 {
					t.Fatalf("status %d %s, want 403", status, body)
				}
				var eb struct{ Error, Message string }
				if err := json.Unmarshal([]byte(body), &eb); err != nil || eb.Error != "permission_denied" {
					t.Fatalf("body %s, want a permission_denied JSON error", body)
				}
				if got := strings.HasPrefix(eb.Message, refusal); got != (tc.want == refuse) {
					t.Fatalf("message %q: refused = %v, want %v", eb.Message, got, tc.want == refuse)
				}
			case badHTTP:
				if status != 400 {
					t.Fatalf("status %d %s, want 400 from the HTTP server", status, body)
				}
			}
		})
	}
}

// TestForwardAuthHeaderFamilies: the configured family only; the other
// family's headers (a client forging them, Caddy and Traefik copy client
// headers) and repeated headers are refused.
func TestForwardAuthHeaderFamilies(t *testing.T) {
	e, olga := fwdEnv(t)
	original := e.srv
	forwarded := fwdServer(t, e, server.HeadersForwarded, fwdRoutes...)
	cases := map[string]struct {
		srv     *httptest.Server
		headers []string
		want    int
		say     string
	}{
		"ok/original":  {original, []string{"X-Original-Method: GET", "X-Original-URI: /public/"}, 200, ""},
		"ok/forwarded": {forwarded, []string{"X-Forwarded-Method: GET", "X-Forwarded-Uri: /public/"}, 200, ""},
		// Traefik copies the client's X-Original-URI and sets X-Forwarded-Uri.
		"fail/traefik with client X-Original-URI": {forwarded, []string{
			"X-Original-URI: /public/", "X-Original-Method: GET", "X-Forwarded-Method: GET", "X-Forwarded-Uri: /admin/"}, 403, "X-Original-"},
		"fail/forwarded with client X-Original-URI only": {forwarded, []string{
			"X-Original-URI: /public/", "X-Forwarded-Method: GET", "X-Forwarded-Uri: /public/"}, 403, "X-Original-URI"},
		"fail/forwarded with empty X-Original-URI": {forwarded, []string{
			"X-Original-URI:", "X-Forwarded-Method: GET", "X-Forwarded-Uri: /public/"}, 403, "X-Original-URI"},
		"fail/nginx with client X-Forwarded-Uri": {original, []string{
			"X-Original-Method: GET", "X-Original-URI: /admin/", "X-Forwarded-Uri: /public/"}, 403, "X-Forwarded-Uri"},
		"fail/nginx with client X-Forwarded-Method": {original, []string{
			"X-Original-Method: GET", "X-Original-URI: /public/", "X-Forwarded-Method: POST"}, 403, "X-Forwarded-Method"},
		"fail/original sees only forwarded": {original, []string{"X-Forwarded-Method: GET", "X-Forwarded-Uri: /public/"}, 403, "another kind of proxy"},
		"fail/forwarded sees only original": {forwarded, []string{"X-Original-Method: GET", "X-Original-URI: /public/"}, 403, "another kind of proxy"},
		"fail/two URIs": {original, []string{
			"X-Original-Method: GET", "X-Original-URI: /public/", "X-Original-URI: /admin/"}, 400, "exactly one"},
		"fail/two methods": {forwarded, []string{
			"X-Forwarded-Method: GET", "X-Forwarded-Method: POST", "X-Forwarded-Uri: /public/"}, 400, "exactly one"},
		"fail/no method": {original, []string{"X-Original-URI: /public/"}, 400, "X-Original-Method"},
		"fail/empty URI": {forwarded, []string{"X-Forwarded-Method: GET", "X-Forwarded-Uri:"}, 400, "X-Forwarded-Uri"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			c := newRawClient(t, tc.srv.Listener.Addr().String())
			status, _, body := c.do("GET", "/api/v1/auth/verify", append([]string{"Authorization: Bearer " + olga.Token}, tc.headers...)...)
			if status != tc.want {
				t.Fatalf("status %d %s, want %d", status, body, tc.want)
			}
			if !strings.Contains(body, tc.say) {
				t.Fatalf("body %s does not say %q", body, tc.say)
			}
		})
	}
}

// TestForwardAuthEnvoy models Envoy's ext_authz HTTP service exactly:
// the original method, path_prefix + the original :path (query
// included), the original Host and the allowed headers, no body
// (Content-Length: 0), and allow only on exactly 200.
func TestForwardAuthEnvoy(t *testing.T) {
	e, olga := fwdEnv(t)
	srv := fwdServer(t, e, server.HeadersEnvoy, fwdRoutes...)
	c := newRawClient(t, srv.Listener.Addr().String())
	envoy := func(method, path string, extra ...string) (int, http.Header, string) {
		return c.do(method, "/api/v1/auth/verify"+path, append([]string{
			"Host: grafana.example.com",
			"Authorization: Bearer " + olga.Token,
			"Content-Length: 0",
			"X-Forwarded-Proto: https",
			"X-Request-Id: 6a1c3e0b-6f1e-4a43-9d58-6d1a2c3b4d5e",
			"X-Envoy-Expected-Rq-Timeout-Ms: 200",
			"Sec-Fetch-Site: cross-site",
			"Origin: https://evil.example",
		}, extra...)...)
	}
	cases := []struct {
		method, path string
		extra        []string
		want         int
		refused      bool
	}{
		{"GET", "/grafana/d/abc?orgId=1", nil, 200, false},
		{"HEAD", "/grafana/", nil, 200, false},
		{"POST", "/deploy/team-a/web", nil, 200, false}, // no Content-Type: not the API's JSON rule
		{"POST", "/deploy/team-b/web", nil, 403, false},
		{"GET", "/admin/", nil, 403, false},
		{"GET", "/", nil, 403, false},
		{"GET", "/public/../admin/", nil, 403, true}, // not a 301 to a cleaned path
		{"GET", "/public/%2e%2e/admin/", nil, 403, true},
		{"GET", "/public/..%2Fadmin/", nil, 403, true},
		{"GET", "/public/%2Fadmin", nil, 403, true},
		{"GET", "//admin/", nil, 403, true},
		{"GET", "/public//admin/", nil, 403, true},
		{"POST", "/deploy/team-a/..%2fteam-b", nil, 403, true},
		{"GET", "/public/", []string{"X-Original-URI: /public/"}, 403, false},
		{"GET", "/admin/", []string{"X-Forwarded-Uri: /public/"}, 403, false},
	}
	for _, tc := range cases {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			status, h, body := envoy(tc.method, tc.path, tc.extra...)
			if status != tc.want {
				t.Fatalf("status %d %s, want %d", status, body, tc.want)
			}
			if status == 200 && (h.Get("X-Auth-User") != "olga" || h.Get("X-Auth-Token-Id") != olga.ID) {
				t.Fatalf("identity headers %v", h)
			}
			if tc.method != "HEAD" && tc.want == 403 && strings.Contains(body, refusal) != tc.refused {
				t.Fatalf("body %s: refused = %v, want %v", body, !tc.refused, tc.refused)
			}
		})
	}
	if status, _, body := envoy("GET", ""); status != 400 {
		t.Fatalf("no original path: %d %s, want 400", status, body)
	}
	// Without headers: envoy, the prefix is not a route (a JSON 404).
	if s := e.status("GET", "/api/v1/auth/verify/grafana/", olga.Token, nil); s != 404 {
		t.Fatalf("prefix without envoy mode: %d, want 404", s)
	}
}

// TestForwardAuthBadRoutes: a table that does not compile never panics
// the server and never allows anything.
func TestForwardAuthBadRoutes(t *testing.T) {
	e, olga := fwdEnv(t)
	for name, routes := range map[string][]server.Route{
		"duplicate": {fwdRoutes[0], fwdRoutes[0]},
		"bad":       {{Match: "GET /a/{", Resource: "r", Action: "a", Object: "o"}},
		"conflict":  {{Match: "/a/{x}/b", Resource: "r", Action: "a", Object: "{x}"}, {Match: "/a/c/{y}", Resource: "r", Action: "a", Object: "{y}"}},
	} {
		t.Run(name, func(t *testing.T) {
			srv := fwdServer(t, e, server.HeadersOriginal, routes...)
			req, _ := http.NewRequest("GET", srv.URL+"/api/v1/auth/verify", nil)
			req.Header.Set("Authorization", "Bearer "+olga.Token)
			req.Header.Set("X-Original-Method", "GET")
			req.Header.Set("X-Original-URI", "/grafana/")
			if s, b := e.send(req); s != 500 {
				t.Fatalf("status %d %s, want 500 (fail closed)", s, b)
			}
		})
	}
	srv := fwdServer(t, e, "traefik", fwdRoutes...)
	req, _ := http.NewRequest("GET", srv.URL+"/api/v1/auth/verify", nil)
	req.Header.Set("Authorization", "Bearer "+olga.Token)
	req.Header.Set("X-Forwarded-Method", "GET")
	req.Header.Set("X-Forwarded-Uri", "/grafana/")
	if s, b := e.send(req); s != 500 {
		t.Fatalf("unknown header mode: status %d %s, want 500", s, b)
	}
}

// rawClient speaks HTTP/1.1 over a kept-alive connection and sends the
// request line and header lines byte for byte (net/http's client refuses
// or rewrites some of the ones these tests need).
type rawClient struct {
	t    *testing.T
	addr string
	conn net.Conn
	br   *bufio.Reader
}

func newRawClient(t *testing.T, addr string) *rawClient {
	c := &rawClient{t: t, addr: addr}
	t.Cleanup(c.close)
	return c
}

func (c *rawClient) close() {
	if c.conn != nil {
		c.conn.Close()
		c.conn = nil
	}
}

// do sends one request; headers are "Name: value" lines. A Host line is
// added unless one is given.
func (c *rawClient) do(method, target string, headers ...string) (int, http.Header, string) {
	c.t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\n", method, target)
	host := false
	for _, h := range headers {
		host = host || strings.HasPrefix(strings.ToLower(h), "host:")
		b.WriteString(h + "\r\n")
	}
	if !host {
		b.WriteString("Host: " + c.addr + "\r\n")
	}
	b.WriteString("\r\n")
	for attempt := 0; ; attempt++ {
		status, h, body, err := c.roundTrip(method, b.String())
		if err == nil {
			return status, h, body
		}
		c.close()
		if attempt == 1 {
			c.t.Fatalf("%s %q: %v", method, target, err)
		}
	}
}

func (c *rawClient) roundTrip(method, req string) (int, http.Header, string, error) {
	if c.conn == nil {
		conn, err := net.DialTimeout("tcp", c.addr, 5*time.Second)
		if err != nil {
			return 0, nil, "", err
		}
		c.conn, c.br = conn, bufio.NewReader(conn)
	}
	c.conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c.conn, req); err != nil {
		return 0, nil, "", err
	}
	resp, err := http.ReadResponse(c.br, &http.Request{Method: method})
	if err != nil {
		return 0, nil, "", err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return 0, nil, "", err
	}
	if resp.Close {
		c.close()
	}
	return resp.StatusCode, resp.Header, string(body), nil
}

// TestNginxAuthRequest puts a real nginx with auth_request, configured as
// the README says, in front of a protected upstream and checks that
// Gatehouse tokens and policies guard it.
func TestNginxAuthRequest(t *testing.T) {
	nginx := needBinary(t, "nginx", "GATEHOUSE_TEST_REQUIRE_NGINX", "/usr/sbin/nginx")
	e, olga := fwdEnv(t)
	upstream := newUpstream(t)
	base := startNginx(t, nginx, upstream, e.srv.URL)

	get := func(path string, auth func(*http.Request)) (int, string) {
		req, _ := http.NewRequest("GET", base+path, nil)
		if auth != nil {
			auth(req)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
		return resp.StatusCode, string(b)
	}
	bearer := func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+olga.Token) }
	basic := func(r *http.Request) { r.SetBasicAuth("x", olga.Token) }

	if s, body := get("/grafana/dashboards", bearer); s != 200 || body != "hello olga" {
		t.Fatalf("bearer through nginx: %d %q, want 200 \"hello olga\"", s, body)
	}
	if s, _ := get("/grafana/dashboards", basic); s != 200 {
		t.Fatalf("basic through nginx: %d", s)
	}
	if s, _ := get("/grafana/", nil); s != 401 {
		t.Fatalf("no credential through nginx: %d, want 401", s)
	}
	if s, _ := get("/elsewhere", bearer); s != 403 {
		t.Fatalf("unrouted path through nginx: %d, want 403", s)
	}
	e.call("DELETE", "/api/v1/account/olga/token/"+olga.ID, e.admin, nil, 200, nil)
	if s, _ := get("/grafana/dashboards", bearer); s != 401 {
		t.Fatalf("revoked token through nginx: %d, want 401", s)
	}
}

func newUpstream(t *testing.T) string {
	t.Helper()
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello %s", r.Header.Get("X-User"))
	})}
	ln := listen(t)
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return "http://" + ln.Addr().String()
}

// needBinary finds a program a test needs, or skips, or fails when the
// environment variable require is "1" (CI).
func needBinary(t *testing.T, name, require string, fallbacks ...string) string {
	t.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	for _, p := range fallbacks {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	if os.Getenv(require) == "1" {
		t.Fatalf("%s is required (%s=1) but not installed", name, require)
	}
	t.Skipf("%s not installed; set %s=1 to require it", name, require)
	return ""
}

// waitFor waits until something answers HTTP at url.
func waitFor(t *testing.T, url string, what string, logs *lockedBuffer) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(url + "/")
		if err == nil {
			resp.Body.Close()
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s did not start:\n%s", what, logs.Bytes())
}

// TestForwardAuthAnswerHeaders: the answer to an allowed request, which
// only the proxy reads, carries the identity and the API's own headers and
// none of a browser document's; every refusal, which Caddy, Traefik and
// Envoy show the browser, and every other answer carries them all. In
// every header mode.
func TestForwardAuthAnswerHeaders(t *testing.T) {
	e, olga := fwdEnv(t)
	document := map[string]string{
		"X-Frame-Options":         "DENY",
		"Referrer-Policy":         "no-referrer",
		"Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'",
		"X-Content-Type-Options":  "nosniff",
	}
	servers := map[server.ForwardAuthHeaders]*httptest.Server{
		server.HeadersOriginal:  e.srv,
		server.HeadersForwarded: fwdServer(t, e, server.HeadersForwarded, fwdRoutes...),
		server.HeadersEnvoy:     fwdServer(t, e, server.HeadersEnvoy, fwdRoutes...),
	}
	for mode, srv := range servers {
		t.Run(string(mode), func(t *testing.T) {
			// ask sends path, or with uri set a forward-auth check of GET uri
			// as mode's proxy describes it, on one connection.
			c := newRawClient(t, srv.Listener.Addr().String())
			type answer struct {
				status int
				header http.Header
			}
			ask := func(path, uri, token string) answer {
				t.Helper()
				var headers []string
				switch {
				case uri == "":
				case mode == server.HeadersEnvoy:
					path += uri
				case mode == server.HeadersOriginal:
					headers = append(headers, "X-Original-Method: GET", "X-Original-URI: "+uri)
				default:
					headers = append(headers, "X-Forwarded-Method: GET", "X-Forwarded-Uri: "+uri)
				}
				if token != "" {
					headers = append(headers, "Authorization: Bearer "+token)
				}
				status, h, _ := c.do("GET", path, headers...)
				return answer{status, h}
			}
			for range 2 { // the same connection, after refusals too
				resp := ask("/api/v1/auth/verify", "/grafana/", olga.Token)
				if resp.status != 200 {
					t.Fatalf("allowed: %d", resp.status)
				}
				var keys []string
				for k := range resp.header {
					keys = append(keys, k)
				}
				slices.Sort(keys)
				want := []string{"Cache-Control", "Content-Length", "Content-Type", "Date", "X-Auth-Groups", "X-Auth-Token-Id", "X-Auth-User", "X-Content-Type-Options", "X-Request-Id"}
				if !slices.Equal(keys, want) {
					t.Fatalf("allowed answer's headers %q, want %q", keys, want)
				}
				if resp.header.Get("Cache-Control") != "no-store" || resp.header.Get("X-Content-Type-Options") != "nosniff" {
					t.Fatalf("allowed answer: %v", resp.header)
				}
				answers := map[string]answer{
					"not allowed":   ask("/api/v1/auth/verify", "/admin/", olga.Token),
					"not canonical": ask("/api/v1/auth/verify", "/public/%2e%2e/admin/", olga.Token),
					"no credential": ask("/api/v1/auth/verify", "/grafana/", ""),
					"healthz":       ask("/healthz", "", ""),
					"userinfo":      ask("/api/v1/session/userinfo", "", olga.Token),
				}
				if mode != server.HeadersEnvoy {
					answers["no original URI"] = ask("/api/v1/auth/verify", "", olga.Token)
				}
				for name, r := range answers {
					if ok := r.status == 200; ok != (name == "healthz" || name == "userinfo") {
						t.Errorf("%s: %d", name, r.status)
					}
					for k, v := range document {
						if got := r.header.Values(k); len(got) != 1 || got[0] != v {
							t.Errorf("%s (%d): %s = %q, want %q", name, r.status, k, got, v)
						}
					}
				}
			}
		})
	}
}
