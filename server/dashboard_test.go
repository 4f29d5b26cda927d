package server_test

import (
	"bytes"
	"flag"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/server"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// web is a browser-like client of the dashboard: it keeps cookies, does
// not follow redirects (tests look at them) and sends the headers a
// browser sends with a same-origin form post.
type web struct {
	t    *testing.T
	e    *env
	c    *http.Client
	base string
}

// resp is a fetched page.
type resp struct {
	status   int
	header   http.Header
	body     string
	location string
}

func newWeb(t *testing.T, e *env) *web {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	c := &http.Client{
		Jar:           jar,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	t.Cleanup(c.CloseIdleConnections)
	return &web{t: t, e: e, c: c, base: e.srv.URL}
}

func (w *web) do(req *http.Request) resp {
	w.t.Helper()
	r, err := w.c.Do(req)
	if err != nil {
		w.t.Fatal(err)
	}
	defer r.Body.Close()
	b, err := io.ReadAll(r.Body)
	if err != nil {
		w.t.Fatal(err)
	}
	return resp{status: r.StatusCode, header: r.Header, body: string(b), location: r.Header.Get("Location")}
}

func (w *web) get(path string) resp {
	w.t.Helper()
	req, err := http.NewRequest("GET", w.base+path, nil)
	if err != nil {
		w.t.Fatal(err)
	}
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	return w.do(req)
}

// post sends a form the way a browser does from one of our pages.
func (w *web) post(path string, form url.Values, hdr ...string) resp {
	w.t.Helper()
	req, err := http.NewRequest("POST", w.base+path, strings.NewReader(form.Encode()))
	if err != nil {
		w.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", w.base)
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	return w.do(req)
}

// wantRedirect checks a 303 to want (a path, query included).
func (w *web) wantRedirect(r resp, want string) {
	w.t.Helper()
	if r.status != http.StatusSeeOther || r.location != want {
		w.t.Fatalf("got %d to %q, want 303 to %q; body:\n%s", r.status, r.location, want, r.body)
	}
}

// login logs in through the form and checks the redirect.
func (w *web) login(user, password string) {
	w.t.Helper()
	w.wantRedirect(w.post("/login", url.Values{"username": {user}, "password": {password}}), "/user-info")
}

// cookie returns the value of the named cookie the client holds for path.
func (w *web) cookie(name, path string) string {
	u, _ := url.Parse(w.base + path)
	for _, c := range w.c.Jar.Cookies(u) {
		if c.Name == name {
			return c.Value
		}
	}
	return ""
}

// generate mints a token through the form and returns the secret read
// from the copy-once page.
func (w *web) generate(formPath string, form url.Values) string {
	w.t.Helper()
	form.Set("op", "generate")
	w.wantRedirect(w.post(formPath, form), "/tokens/created")
	r := w.get("/tokens/created")
	tok := shownToken(r.body)
	if r.status != 200 || tok == "" {
		w.t.Fatalf("copy-once page: %d, token %q\n%s", r.status, tok, r.body)
	}
	return tok
}

var shownTokenRE = regexp.MustCompile(`<input id="new-token" type="text" value="([^"]*)" readonly`)

func shownToken(body string) string {
	m := shownTokenRE.FindStringSubmatch(body)
	if m == nil {
		return ""
	}
	return html.UnescapeString(m[1])
}

// newDashEnv is newEnv with the fake clock moved up to the real time: the
// session cookie expires with its token, and a browser (or cookie jar)
// drops a cookie whose expiry lies in its own past.
func newDashEnv(t *testing.T, opts ...envOption) *env {
	t.Helper()
	e := newEnv(t, opts...)
	if d := time.Until(e.clock.Now()); d < 0 {
		e.clock.Advance(-d.Truncate(time.Second))
		e.admin = e.login("admin", adminPassword)
	}
	return e
}

func withMaxLifetime(d time.Duration) envOption {
	return func(o *envSettings) { o.MaxLifetime = d }
}

// tokenIDs lists the ids of account's API tokens through the API.
func (e *env) tokenIDs(account string) []string {
	e.t.Helper()
	var list gatehouse.List[gatehouse.Token]
	e.call("GET", "/api/v1/account/"+account+"/token", e.admin, nil, 200, &list)
	var ids []string
	for _, t := range list.Items {
		ids = append(ids, t.ID)
	}
	return ids
}

func TestDashboardLoginPage(t *testing.T) {
	t.Parallel()
	e := newDashEnv(t)
	r := newWeb(t, e).get("/")
	if r.status != 200 {
		t.Fatalf("GET /: %d", r.status)
	}
	for _, want := range []string{
		`<label for="username">Username</label>`,
		`<label for="password">Password</label>`,
		`<form method="post" action="/login"`,
		`>Log in</button>`,
	} {
		if !strings.Contains(r.body, want) {
			t.Errorf("login page lacks %q", want)
		}
	}
	if got := r.header.Get("Content-Security-Policy"); !strings.Contains(got, "script-src 'self'") {
		t.Errorf("CSP = %q", got)
	}
	if got := r.header.Get("Cache-Control"); got != "no-store" {
		t.Errorf("Cache-Control = %q, want no-store", got)
	}
	golden(t, "login.html", r.body)
}

// golden compares got with testdata/dashboard/<name>; -update rewrites it.
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", "dashboard", name)
	// The assets' versions change with every edit of the CSS or JS; the
	// golden file is about the page.
	got = regexp.MustCompile(`\?v=[0-9a-f]+`).ReplaceAllString(got, "?v=VERSION")
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs from the golden file (go test -run %s -update rewrites it)\ngot:\n%s", path, t.Name(), got)
	}
}

func TestDashboardLoginFailures(t *testing.T) {
	t.Parallel()
	e := newDashEnv(t)
	w := newWeb(t, e)
	for _, tc := range []struct {
		name       string
		user, pass string
		status     int
		message    string
	}{
		{"wrong password", "admin", "not-the-password", 401, "Invalid username or password."},
		{"unknown user", "nobody", "whatever-password", 401, "Invalid username or password."},
		{"empty", "admin", "", 400, "Enter your username and password."},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := w.post("/login", url.Values{"username": {tc.user}, "password": {tc.pass}})
			if r.status != tc.status || !strings.Contains(r.body, tc.message) {
				t.Fatalf("got %d, want %d with %q:\n%s", r.status, tc.status, tc.message, r.body)
			}
			if !strings.Contains(r.body, `value="`+tc.user+`"`) {
				t.Errorf("the form does not keep the username %q", tc.user)
			}
			if got := w.cookie(server.CookieName, "/"); got != "" {
				t.Errorf("failed login set a session cookie")
			}
		})
	}
}

func TestDashboardLoginThrottled(t *testing.T) {
	t.Parallel()
	e := newDashEnv(t)
	w := newWeb(t, e)
	e.createUser("alice")
	var r resp
	for i := 0; i < 6; i++ {
		r = w.post("/login", url.Values{"username": {"alice"}, "password": {"wrong-password"}})
	}
	if r.status != http.StatusTooManyRequests {
		t.Fatalf("sixth failed login: %d, want 429\n%s", r.status, r.body)
	}
	m := regexp.MustCompile(`Try again in (\d+) seconds?\.`).FindStringSubmatch(r.body)
	if m == nil {
		t.Fatalf("no “try again in N seconds” on the page:\n%s", r.body)
	}
	if got := r.header.Get("Retry-After"); got != m[1] {
		t.Errorf("Retry-After = %q, page says %s seconds", got, m[1])
	}
	if n, _ := strconv.Atoi(m[1]); n < 1 || n > 300 {
		t.Errorf("retry in %d seconds, want 1..300", n)
	}
	// Even the right password waits until the window passes.
	r = w.post("/login", url.Values{"username": {"alice"}, "password": {"alice-password"}})
	if r.status != http.StatusTooManyRequests {
		t.Errorf("right password while throttled: %d, want 429", r.status)
	}
}

func TestDashboardHeaderShowsUserAndMenu(t *testing.T) {
	t.Parallel()
	e := newDashEnv(t)
	e.createUser("alice", "team-a")
	w := newWeb(t, e)
	w.login("alice", "alice-password")

	// A logged-in visit to / goes to the User Info page.
	w.wantRedirect(w.get("/"), "/user-info")

	r := w.get("/user-info")
	if r.status != 200 {
		t.Fatalf("/user-info: %d\n%s", r.status, r.body)
	}
	header := between(r.body, `<header class="topbar">`, `</header>`)
	for _, want := range []string{
		`<details class="user-menu">`,
		`<span class="user-name">alice</span>`,
		`<a href="/user-info">User Info</a>`,
		`<form method="post" action="/logout"><button type="submit">Log out</button></form>`,
	} {
		if !strings.Contains(header, want) {
			t.Errorf("header lacks %q:\n%s", want, header)
		}
	}
	main := between(r.body, `<main`, `</main>`)
	for _, want := range []string{`id="info-username">alice<`, `<li class="chip">team-a</li>`, `>Tokens</h2>`, `>Generate New Token</a>`, "You have no API tokens yet."} {
		if !strings.Contains(main, want) {
			t.Errorf("User Info lacks %q", want)
		}
	}
}

func between(s, from, to string) string {
	_, rest, ok := strings.Cut(s, from)
	if !ok {
		return ""
	}
	in, _, _ := strings.Cut(rest, to)
	return in
}

func TestDashboardNavFollowsPermissions(t *testing.T) {
	t.Parallel()
	e := newDashEnv(t)
	e.createUser("alice")
	admin, alice := newWeb(t, e), newWeb(t, e)
	admin.login("admin", adminPassword)
	alice.login("alice", "alice-password")
	nav := func(w *web) string { return between(w.get("/user-info").body, `<nav class="mainnav"`, `</nav>`) }
	for _, tc := range []struct {
		who     string
		w       *web
		present []string
		absent  []string
	}{
		{"admin", admin, []string{"User Info", "Accounts", "Projects", "Applications", "Audit", "Break-glass"}, nil},
		{"alice", alice, []string{"User Info", "Audit"}, []string{"Accounts", "Projects", "Applications", "Break-glass"}},
	} {
		got := nav(tc.w)
		for _, s := range tc.present {
			if !strings.Contains(got, ">"+s+"</a>") {
				t.Errorf("%s: nav lacks %s: %s", tc.who, s, got)
			}
		}
		for _, s := range tc.absent {
			if strings.Contains(got, ">"+s+"</a>") {
				t.Errorf("%s: nav shows %s: %s", tc.who, s, got)
			}
		}
	}
	// The pages behind hidden entries refuse too (the service decides).
	if r := alice.get("/break-glass"); r.status != 200 {
		t.Fatalf("break-glass form: %d", r.status)
	}
	r := alice.post("/break-glass", url.Values{"account": {"admin"}, "op": {"dry-run"}})
	if r.status != http.StatusForbidden {
		t.Errorf("alice's dry run: %d, want 403", r.status)
	}
}

func TestDashboardGenerateShowsTheTokenOnce(t *testing.T) {
	t.Parallel()
	var logs bytes.Buffer
	e := newDashEnv(t, withLogger(&logs), withMaxLifetime(24*time.Hour))
	e.createUser("alice")
	w := newWeb(t, e)
	w.login("alice", "alice-password")

	form := w.get("/accounts/alice/tokens/new")
	if form.status != 200 {
		t.Fatalf("form: %d\n%s", form.status, form.body)
	}
	for _, want := range []string{
		`<label for="name">Name</label>`,
		`<label for="expiration">Expiration</label>`,
		`<option value="1h0m0s">1 hour</option>`,
		`<option value="12h0m0s" selected>12 hours</option>`,
		`<option value="24h0m0s">1 day</option>`,
		`<option value="custom">Custom…</option>`,
		`max="24"`,
		`>Generate</button>`,
	} {
		if !strings.Contains(form.body, want) {
			t.Errorf("form lacks %q", want)
		}
	}
	for _, above := range []string{"7 days", "30 days"} {
		if strings.Contains(form.body, above) {
			t.Errorf("form offers %s above the 24h maximum", above)
		}
	}

	// Generate: a 303 to a page whose URL holds no secret, with a
	// short-lived single-use cookie.
	r := w.post("/accounts/alice/tokens/new", url.Values{"name": {"ci deploys"}, "expiration": {"12h0m0s"}, "op": {"generate"}})
	w.wantRedirect(r, "/tokens/created")
	var flash *http.Cookie
	for _, c := range (&http.Response{Header: r.header}).Cookies() {
		if c.Name == "gatehouse.flash" {
			flash = c
		}
	}
	if flash == nil || !flash.HttpOnly || flash.SameSite != http.SameSiteStrictMode || flash.MaxAge <= 0 || flash.MaxAge > 120 {
		t.Fatalf("flash cookie = %+v, want HttpOnly, SameSite=Strict, Max-Age ≤ 120", flash)
	}

	head, _ := http.NewRequest("HEAD", e.srv.URL+"/tokens/created", nil)
	if r := w.do(head); r.status != 200 {
		t.Fatalf("HEAD /tokens/created: %d", r.status)
	}
	shown := w.get("/tokens/created")
	tok := shownToken(shown.body)
	if shown.status != 200 || tok == "" {
		t.Fatalf("copy-once page: %d\n%s", shown.status, shown.body)
	}
	if got := shown.header.Get("Cache-Control"); got != "no-store" {
		t.Errorf("copy-once page Cache-Control = %q, want no-store", got)
	}
	for _, want := range []string{"won't be shown again", `data-copy="new-token">Copy</button>`, `<label for="new-token">Token</label>`} {
		if !strings.Contains(shown.body, want) {
			t.Errorf("copy-once page lacks %q", want)
		}
	}

	// The token works, as alice's API token, for 12 hours.
	var info gatehouse.UserInfo
	e.call("GET", "/api/v1/session/userinfo", tok, nil, 200, &info)
	if info.Username != "alice" || info.TokenKind != gatehouse.KindAPI {
		t.Fatalf("token acts as %+v", info)
	}
	if got := info.ExpiresAt.Sub(e.clock.Now()); got != 12*time.Hour {
		t.Errorf("token lives %v, want 12h", got)
	}

	// Never again: not on reload, not with the old cookie, not elsewhere.
	again := w.get("/tokens/created")
	if strings.Contains(again.body, tok) || !strings.Contains(again.body, "already shown") {
		t.Errorf("reload shows the token again or lacks the notice:\n%s", again.body)
	}
	req, _ := http.NewRequest("GET", e.srv.URL+"/tokens/created", nil)
	req.AddCookie(&http.Cookie{Name: server.CookieName, Value: w.cookie(server.CookieName, "/")})
	req.AddCookie(&http.Cookie{Name: "gatehouse.flash", Value: flash.Value})
	if replay := w.do(req); strings.Contains(replay.body, tok) {
		t.Error("replaying the flash cookie shows the token again")
	}
	list := w.get("/user-info")
	_, secret, _ := strings.Cut(tok, ":")
	if !strings.Contains(list.body, "ci deploys") || !strings.Contains(list.body, info.TokenID) {
		t.Errorf("User Info does not list the new token")
	}
	if strings.Contains(list.body, secret) {
		t.Error("User Info shows the secret")
	}
	e.svc.Flush(t.Context())
	if strings.Contains(logs.String(), secret) {
		t.Error("the secret reached the logs")
	}
}

func TestDashboardTokenFormValidation(t *testing.T) {
	t.Parallel()
	e := newDashEnv(t, withMaxLifetime(48*time.Hour))
	e.createUser("alice")
	w := newWeb(t, e)
	w.login("alice", "alice-password")
	for _, tc := range []struct {
		name    string
		form    url.Values
		message string
	}{
		{"no name", url.Values{"name": {"  "}}, "Name is required"},
		{"unknown expiration", url.Values{"name": {"x"}, "expiration": {"720h0m0s"}}, "Choose an expiration from the list."},
		{"custom above max", url.Values{"name": {"x"}, "expiration": {"custom"}, "custom_hours": {"49"}}, "from 1 to 48."},
		{"custom not a number", url.Values{"name": {"x"}, "expiration": {"custom"}, "custom_hours": {"soon"}}, "from 1 to 48."},
		{"half a scope", url.Values{"name": {"x"}, "scope_resource": {"applications"}, "scope_action": {""}, "scope_object": {"*"}}, "Scope 1: resource, action and object are all required"},
		{"scope beyond the owner", url.Values{"name": {"x"}, "scope_resource": {"accounts"}, "scope_action": {"update"}, "scope_object": {"*"}}, "exceeds the permissions of account"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.form.Set("op", "generate")
			r := w.post("/accounts/alice/tokens/new", tc.form)
			if r.status != http.StatusBadRequest || !strings.Contains(html.UnescapeString(r.body), tc.message) {
				t.Fatalf("got %d, want 400 with %q:\n%s", r.status, tc.message, r.body)
			}
			if ids := e.tokenIDs("alice"); len(ids) != 0 {
				t.Fatalf("a refused form minted tokens %v", ids)
			}
		})
	}
	// A custom expiry in hours.
	tok := w.generate("/accounts/alice/tokens/new", url.Values{"name": {"nightly"}, "expiration": {"custom"}, "custom_hours": {"36"}})
	var info gatehouse.UserInfo
	e.call("GET", "/api/v1/session/userinfo", tok, nil, 200, &info)
	if got := info.ExpiresAt.Sub(e.clock.Now()); got != 36*time.Hour {
		t.Errorf("custom expiry: token lives %v, want 36h", got)
	}
}

func TestDashboardRevokeStopsTheToken(t *testing.T) {
	t.Parallel()
	e := newDashEnv(t)
	e.createUser("alice")
	w := newWeb(t, e)
	w.login("alice", "alice-password")
	tok := w.generate("/accounts/alice/tokens/new", url.Values{"name": {"laptop"}})
	ids := e.tokenIDs("alice")
	if len(ids) != 1 {
		t.Fatalf("tokens %v, want one", ids)
	}
	page := w.get("/user-info").body
	action := `action="/accounts/alice/tokens/` + ids[0] + `/revoke"`
	if !strings.Contains(page, action) || !strings.Contains(page, `data-confirm="Revoke the token “laptop”?`) {
		t.Fatalf("User Info lacks a confirmed revoke form %s:\n%s", action, page)
	}
	w.wantRedirect(w.post("/accounts/alice/tokens/"+ids[0]+"/revoke", nil), "/user-info?notice=revoked")
	if s := e.status("GET", "/api/v1/session/userinfo", tok, nil); s != 401 {
		t.Errorf("revoked token: %d, want 401", s)
	}
	after := w.get("/user-info?notice=revoked")
	if strings.Contains(after.body, ids[0]) || !strings.Contains(after.body, "Token revoked.") {
		t.Errorf("after revoke the page still lists the token or lacks the notice")
	}
	// Revoking another account's token needs permission.
	e.createUser("bob")
	bobTok := e.mint(e.login("bob", "bob-password"), "bob", gatehouse.TokenRequest{Name: "bob's"})
	r := w.post("/accounts/bob/tokens/"+bobTok.ID+"/revoke", nil)
	if r.status != http.StatusForbidden {
		t.Errorf("alice revoking bob's token: %d, want 403", r.status)
	}
	if s := e.status("GET", "/api/v1/session/userinfo", bobTok.Token, nil); s != 200 {
		t.Errorf("bob's token after alice's attempt: %d, want 200", s)
	}
}

func TestDashboardGetNeverChangesState(t *testing.T) {
	t.Parallel()
	e := newDashEnv(t)
	e.createUser("alice")
	w := newWeb(t, e)
	w.login("alice", "alice-password")
	nt := e.mint(e.admin, "alice", gatehouse.TokenRequest{Name: "keep me"})
	session := w.cookie(server.CookieName, "/")

	for _, path := range []string{
		"/accounts/alice/tokens/new?op=generate&name=x&expiration=1h0m0s",
		"/accounts/alice/tokens/" + nt.ID + "/revoke",
		"/logout",
		"/login?username=alice&password=alice-password",
		"/accounts/alice/enabled?enabled=false",
		"/break-glass?account=alice&op=revoke",
		"/tokens/created",
		"/user-info",
	} {
		r := w.get(path)
		if r.status >= 500 {
			t.Errorf("GET %s: %d", path, r.status)
		}
	}
	if ids := e.tokenIDs("alice"); len(ids) != 1 || ids[0] != nt.ID {
		t.Errorf("after GETs alice has tokens %v, want only %s", ids, nt.ID)
	}
	if s := e.status("GET", "/api/v1/session/userinfo", nt.Token, nil); s != 200 {
		t.Errorf("token after GETs: %d", s)
	}
	if s := e.status("GET", "/api/v1/session/userinfo", session, nil); s != 200 {
		t.Errorf("session after GET /logout: %d, want 200", s)
	}
	var a gatehouse.Account
	e.call("GET", "/api/v1/account/alice", e.admin, nil, 200, &a)
	if !a.Enabled {
		t.Error("a GET disabled alice")
	}
}

func TestDashboardEscapesUserText(t *testing.T) {
	t.Parallel()
	e := newDashEnv(t)
	e.createUser("alice")
	const xss = `<script>alert(1)</script>`
	e.mint(e.admin, "alice", gatehouse.TokenRequest{Name: xss})
	w := newWeb(t, e)
	w.login("alice", "alice-password")
	body := w.get("/user-info").body
	if strings.Contains(body, xss) {
		t.Fatal("the token name is rendered as markup")
	}
	if !strings.Contains(body, "&lt;script&gt;alert(1)&lt;/script&gt;") {
		t.Fatalf("the token name is not shown as text:\n%s", body)
	}
	// The login form echoes the username as text too.
	r := newWeb(t, e).post("/login", url.Values{"username": {`"><script>x()</script>`}, "password": {"nope-nope"}})
	if strings.Contains(r.body, "<script>x()") {
		t.Error("the login form echoes the username as markup")
	}
}

func TestDashboardRefusesCrossOriginPosts(t *testing.T) {
	t.Parallel()
	e := newDashEnv(t)
	e.createUser("alice")
	w := newWeb(t, e)
	w.login("alice", "alice-password")
	nt := e.mint(e.admin, "alice", gatehouse.TokenRequest{Name: "victim"})
	evil := []string{"Origin", "https://evil.example", "Sec-Fetch-Site", "cross-site"}
	for _, tc := range []struct {
		path string
		form url.Values
	}{
		{"/accounts/alice/tokens/" + nt.ID + "/revoke", nil},
		{"/accounts/alice/tokens/new", url.Values{"name": {"stolen"}, "op": {"generate"}}},
		{"/logout", nil},
		{"/login", url.Values{"username": {"alice"}, "password": {"alice-password"}}},
	} {
		if r := w.post(tc.path, tc.form, evil...); r.status != http.StatusForbidden {
			t.Errorf("cross-site POST %s: %d, want 403", tc.path, r.status)
		}
	}
	if ids := e.tokenIDs("alice"); len(ids) != 1 || ids[0] != nt.ID {
		t.Errorf("after cross-site posts alice has tokens %v, want only %s", ids, nt.ID)
	}
	if s := e.status("GET", "/api/v1/session/userinfo", w.cookie(server.CookieName, "/"), nil); s != 200 {
		t.Errorf("session after a cross-site logout: %d, want 200", s)
	}
}

func TestDashboardNeedsTheSessionCookie(t *testing.T) {
	t.Parallel()
	e := newDashEnv(t)
	e.createUser("alice")
	apiTok := e.mint(e.login("alice", "alice-password"), "alice", gatehouse.TokenRequest{Name: "api"})

	// No cookie, or an Authorization header instead: the login page.
	anon := newWeb(t, e)
	for _, path := range []string{"/user-info", "/accounts", "/audit", "/tokens/created", "/accounts/alice/tokens/new"} {
		anon.wantRedirect(anon.get(path), "/")
	}
	req, _ := http.NewRequest("GET", e.srv.URL+"/user-info", nil)
	req.Header.Set("Authorization", "Bearer "+e.admin)
	anon.wantRedirect(anon.do(req), "/")
	anon.wantRedirect(anon.post("/accounts/alice/tokens/"+apiTok.ID+"/revoke", nil), "/")
	if s := e.status("GET", "/api/v1/session/userinfo", apiTok.Token, nil); s != 200 {
		t.Errorf("token after an anonymous revoke: %d", s)
	}

	// An API token in the cookie is not a dashboard session.
	req, _ = http.NewRequest("GET", e.srv.URL+"/user-info", nil)
	req.AddCookie(&http.Cookie{Name: server.CookieName, Value: apiTok.Token})
	anon.wantRedirect(anon.do(req), "/")

	// A session revoked elsewhere ends the dashboard session at once.
	w := newWeb(t, e)
	w.login("alice", "alice-password")
	e.call("DELETE", "/api/v1/session", w.cookie(server.CookieName, "/"), nil, 200, nil)
	r := w.get("/user-info")
	w.wantRedirect(r, "/")
	if !strings.Contains(strings.Join(r.header.Values("Set-Cookie"), "\n"), "gatehouse.token=;") {
		t.Errorf("a dead session cookie is not cleared: %q", r.header.Values("Set-Cookie"))
	}
}

func TestDashboardLogoutRevokesTheSession(t *testing.T) {
	t.Parallel()
	e := newDashEnv(t)
	w := newWeb(t, e)
	w.login("admin", adminPassword)
	session := w.cookie(server.CookieName, "/")
	w.wantRedirect(w.post("/logout", nil), "/?notice=logged-out")
	if s := e.status("GET", "/api/v1/session/userinfo", session, nil); s != 401 {
		t.Errorf("session after logout: %d, want 401", s)
	}
	if got := w.cookie(server.CookieName, "/"); got != "" {
		t.Errorf("cookie after logout = %q", got)
	}
	r := w.get("/?notice=logged-out")
	if r.status != 200 || !strings.Contains(r.body, "You have been logged out.") || !strings.Contains(r.body, ">Log in</button>") {
		t.Errorf("after logout: %d\n%s", r.status, r.body)
	}
}

// previewCell returns the text of one cell of the permission preview.
func previewCell(t *testing.T, body, resource, action string) string {
	t.Helper()
	row := between(body, `<th scope="row">`+resource+`</th>`, `</tr>`)
	cell := between(row, `<td data-action="`+action+`">`, `</td>`)
	text := regexp.MustCompile(`<[^>]*>`).ReplaceAllString(cell, " ")
	return strings.Join(strings.Fields(html.UnescapeString(text)), " ")
}

func TestDashboardPreviewShowsOwnerPermissionsIntersectedWithScopes(t *testing.T) {
	t.Parallel()
	e := newDashEnv(t, withPolicy(strings.Join([]string{
		"p, role:team-a, applications, *, team-a/*, allow",
		"p, role:team-a, applications, delete, team-a/prod, deny",
		"p, role:team-a, projects, get, team-a, allow",
		"g, team-a, role:team-a",
	}, "\n"), ""))
	e.createUser("alice", "team-a")
	w := newWeb(t, e)
	w.login("alice", "alice-password")

	form := url.Values{"name": {"x"}, "op": {"preview"}}
	for _, tc := range []struct {
		name   string
		scopes [][3]string
		want   map[[2]string]string
	}{
		{"owner", nil, map[[2]string]string{
			{"applications", "get"}:    "team-a/*",
			{"applications", "sync"}:   "team-a/*",
			{"applications", "delete"}: "team-a/* except team-a/prod",
			{"projects", "get"}:        "team-a",
			{"projects", "update"}:     "no",
			{"accounts", "get"}:        "no",
			{"audit", "sync"}:          "·",
		}},
		{"scoped to one app", [][3]string{{"applications", "get", "team-a/web"}}, map[[2]string]string{
			{"applications", "get"}:  "team-a/web",
			{"applications", "sync"}: "no",
			{"projects", "get"}:      "no",
		}},
		{"scope wider than the owner", [][3]string{{"applications", "*", "*"}}, map[[2]string]string{
			{"applications", "get"}: "team-a/*",
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := url.Values{}
			for k, v := range form {
				f[k] = v
			}
			for _, s := range tc.scopes {
				f.Add("scope_resource", s[0])
				f.Add("scope_action", s[1])
				f.Add("scope_object", s[2])
			}
			r := w.post("/accounts/alice/tokens/new", f)
			if r.status != 200 {
				t.Fatalf("preview: %d\n%s", r.status, r.body)
			}
			for k, want := range tc.want {
				if got := previewCell(t, r.body, k[0], k[1]); got != want {
					t.Errorf("%s %s: got %q, want %q", k[0], k[1], got, want)
				}
			}
			if ids := e.tokenIDs("alice"); len(ids) != 0 {
				t.Fatalf("preview minted %v", ids)
			}
		})
	}
	// The warning for a scope the owner lacks comes before generating.
	r := w.post("/accounts/alice/tokens/new", url.Values{"name": {"x"}, "op": {"preview"},
		"scope_resource": {"accounts"}, "scope_action": {"update"}, "scope_object": {"*"}})
	if !strings.Contains(r.body, "Scope 1 (accounts, update, *) exceeds the permissions of account &#34;alice&#34;; generating would be refused.") {
		t.Errorf("no warning for a scope beyond the owner:\n%s", r.body)
	}
	// A scoped token minted through the form does exactly what the preview said.
	tok := w.generate("/accounts/alice/tokens/new", url.Values{"name": {"web only"},
		"scope_resource": {"applications"}, "scope_action": {"get"}, "scope_object": {"team-a/web"}})
	var can gatehouse.CanI
	e.call("GET", "/api/v1/account/can-i/applications/get/team-a/web", tok, nil, 200, &can)
	if can.Value != "yes" {
		t.Errorf("scoped token: get team-a/web = %s, want yes", can.Value)
	}
	e.call("GET", "/api/v1/account/can-i/applications/sync/team-a/web", tok, nil, 200, &can)
	if can.Value != "no" {
		t.Errorf("scoped token: sync team-a/web = %s, want no", can.Value)
	}
}

func TestDashboardAccountsAndServiceAccountTokens(t *testing.T) {
	t.Parallel()
	e := newDashEnv(t)
	w := newWeb(t, e)
	w.login("admin", adminPassword)

	r := w.post("/accounts", url.Values{"name": {"Bad Name"}})
	if r.status != http.StatusBadRequest || !strings.Contains(r.body, "account name must be") {
		t.Fatalf("bad name: %d\n%s", r.status, r.body)
	}
	w.wantRedirect(w.post("/accounts", url.Values{"name": {"ci-bot"}, "groups": {"deployers, team-a"}}), "/accounts/ci-bot?notice=created")
	page := w.get("/accounts/ci-bot?notice=created")
	for _, want := range []string{"Service account created.", "Service account", `<li class="chip">deployers</li>`, `href="/accounts/ci-bot/tokens/new"`} {
		if !strings.Contains(page.body, want) {
			t.Errorf("account page lacks %q", want)
		}
	}
	tok := w.generate("/accounts/ci-bot/tokens/new", url.Values{"name": {"pipeline"}})
	var info gatehouse.UserInfo
	e.call("GET", "/api/v1/session/userinfo", tok, nil, 200, &info)
	if info.Username != "ci-bot" {
		t.Fatalf("token acts as %q, want ci-bot", info.Username)
	}
	if list := w.get("/accounts"); !strings.Contains(list.body, `action="/accounts/ci-bot/enabled"`) {
		t.Errorf("accounts list lacks the disable form for ci-bot")
	}
	w.wantRedirect(w.post("/accounts/ci-bot/enabled", url.Values{"enabled": {"false"}, "from": {"list"}}), "/accounts?notice=disabled")
	if s := e.status("GET", "/api/v1/session/userinfo", tok, nil); s != 401 {
		t.Errorf("token of a disabled account: %d, want 401", s)
	}

	// Users cannot mint for others.
	e.createUser("alice")
	a := newWeb(t, e)
	a.login("alice", "alice-password")
	if r := a.get("/accounts/ci-bot/tokens/new"); r.status != http.StatusForbidden {
		t.Errorf("alice opening ci-bot's token form: %d, want 403", r.status)
	}
	if r := a.post("/accounts/ci-bot/tokens/new", url.Values{"name": {"x"}, "op": {"generate"}}); r.status != http.StatusForbidden {
		t.Errorf("alice minting for ci-bot: %d, want 403", r.status)
	}
}

func TestDashboardProjectRoleTokens(t *testing.T) {
	t.Parallel()
	e := newDashEnv(t)
	e.call("POST", "/api/v1/projects", e.admin, gatehouse.Project{
		Name: "team-a", Description: "Team A",
		Roles: []gatehouse.ProjectRole{{Name: "deployer", Policies: []string{"p, proj:team-a:deployer, applications, sync, team-a/*, allow"}}},
	}, 200, nil)
	w := newWeb(t, e)
	w.login("admin", adminPassword)
	page := w.get("/projects/team-a")
	if !strings.Contains(page.body, `href="/projects/team-a/roles/deployer/tokens/new"`) {
		t.Fatalf("project page lacks the role's Generate link:\n%s", page.body)
	}
	form := w.get("/projects/team-a/roles/deployer/tokens/new")
	if got := previewCell(t, form.body, "applications", "sync"); got != "team-a/*" {
		t.Errorf("role preview applications sync = %q, want team-a/*", got)
	}
	if got := previewCell(t, form.body, "applications", "delete"); got != "no" {
		t.Errorf("role preview applications delete = %q, want no", got)
	}
	if strings.Contains(form.body, "scope_resource") {
		t.Error("the role token form offers scopes")
	}
	tok := w.generate("/projects/team-a/roles/deployer/tokens/new", url.Values{"name": {"ci"}, "expiration": {"1h0m0s"}})
	var can gatehouse.CanI
	e.call("GET", "/api/v1/account/can-i/applications/sync/team-a/web", tok, nil, 200, &can)
	if can.Value != "yes" {
		t.Fatalf("role token: sync = %s", can.Value)
	}
	var list gatehouse.List[gatehouse.Token]
	e.call("GET", "/api/v1/projects/team-a/roles/deployer/token", e.admin, nil, 200, &list)
	if len(list.Items) != 1 {
		t.Fatalf("role tokens = %+v", list.Items)
	}
	w.wantRedirect(w.post("/projects/team-a/roles/deployer/tokens/"+list.Items[0].ID+"/revoke", nil), "/projects/team-a?notice=revoked")
	if s := e.status("GET", "/api/v1/account/can-i/applications/sync/team-a/web", tok, nil); s != 401 {
		t.Errorf("revoked role token: %d, want 401", s)
	}
}

func TestDashboardApplicationsSync(t *testing.T) {
	t.Parallel()
	e := newDashEnv(t)
	e.call("POST", "/api/v1/projects", e.admin, gatehouse.Project{Name: "team-a"}, 200, nil)
	e.call("POST", "/api/v1/applications", e.admin, gatehouse.Application{
		Name: "web", Project: "team-a",
		Spec: gatehouse.AppSpec{RepoURL: "https://git.example/web.git", Path: "deploy", Destination: gatehouse.AppDestination{Namespace: "web"}},
	}, 200, nil)
	w := newWeb(t, e)
	w.login("admin", adminPassword)
	page := w.get("/applications")
	for _, want := range []string{">web</td>", "https://git.example/web.git", `action="/applications/web/sync"`, ">Unknown</span>"} {
		if !strings.Contains(page.body, want) {
			t.Errorf("applications page lacks %q", want)
		}
	}
	w.wantRedirect(w.post("/applications/web/sync", url.Values{"project": {"team-a"}}), "/applications?notice=synced&project=team-a")
	var ops gatehouse.List[gatehouse.Operation]
	e.call("GET", "/api/v1/applications/web/operations", e.admin, nil, 200, &ops)
	if len(ops.Items) != 1 || ops.Items[0].State != gatehouse.OpPending || ops.Items[0].RequestedBy != "admin" {
		t.Errorf("operations after a dashboard sync: %+v", ops.Items)
	}

	// A user who may only read sees no Sync button and cannot sync.
	e.createUser("reader")
	e.setPolicy("g, reader, role:readonly", "")
	r := newWeb(t, e)
	r.login("reader", "reader-password")
	if p := r.get("/applications"); !strings.Contains(p.body, ">web</td>") || strings.Contains(p.body, "/applications/web/sync") {
		t.Errorf("reader's applications page: lists web %v, offers sync %v",
			strings.Contains(p.body, ">web</td>"), strings.Contains(p.body, "/applications/web/sync"))
	}
	if got := r.post("/applications/web/sync", nil); got.status != http.StatusForbidden {
		t.Errorf("reader sync: %d, want 403", got.status)
	}
}

func TestDashboardAuditPage(t *testing.T) {
	t.Parallel()
	e := newDashEnv(t)
	e.createUser("alice")
	alice := e.login("alice", "alice-password")
	e.status("GET", "/api/v1/account", alice, nil) // allowed: own account only
	e.status("DELETE", "/api/v1/account/admin", alice, nil)
	e.svc.Flush(t.Context())

	w := newWeb(t, e)
	w.login("admin", adminPassword)
	all := w.get("/audit")
	if all.status != 200 || !strings.Contains(all.body, "/api/v1/account/admin") {
		t.Fatalf("audit page: %d\n%s", all.status, all.body)
	}
	deny := w.get("/audit?actor=alice&decision=deny")
	if !strings.Contains(deny.body, "DELETE /api/v1/account/admin") || strings.Contains(deny.body, `badge-ok">allow`) {
		t.Errorf("deny filter:\n%s", deny.body)
	}
	if bad := w.get("/audit?decision=maybe"); bad.status != 400 || !strings.Contains(bad.body, "decision must be allow or deny") {
		t.Errorf("bad filter: %d", bad.status)
	}
	// Alice sees her own events only.
	a := newWeb(t, e)
	a.login("alice", "alice-password")
	if r := a.get("/audit?actor=admin"); r.status != http.StatusForbidden {
		t.Errorf("alice reading admin's events: %d, want 403", r.status)
	}
	if r := a.get("/audit?account=admin"); r.status != http.StatusForbidden {
		t.Errorf("alice reading events about admin: %d, want 403", r.status)
	}
	// What concerns alice, whoever did it: the admin creating her account.
	about := w.get("/audit?account=alice&type=account.changed")
	if about.status != 200 || !strings.Contains(about.body, "accounts, create, alice") {
		t.Errorf("events about alice:\n%s", about.body)
	}
}

func TestDashboardBreakGlass(t *testing.T) {
	t.Parallel()
	e := newDashEnv(t)
	e.createUser("alice")
	t1 := e.mint(e.admin, "alice", gatehouse.TokenRequest{Name: "one"})
	t2 := e.mint(e.admin, "alice", gatehouse.TokenRequest{Name: "two"})
	w := newWeb(t, e)
	w.login("admin", adminPassword)

	dry := w.post("/break-glass", url.Values{"account": {"alice"}, "kind": {"api"}, "op": {"dry-run"}})
	if dry.status != 200 || !strings.Contains(dry.body, "Dry run: 2 tokens match") {
		t.Fatalf("dry run: %d\n%s", dry.status, dry.body)
	}
	for _, id := range []string{t1.ID, t2.ID} {
		if !strings.Contains(dry.body, id) {
			t.Errorf("dry run does not list %s", id)
		}
	}
	if !strings.Contains(dry.body, `data-confirm="Revoke 2 tokens now?`) || !strings.Contains(dry.body, `value="revoke">Revoke 2 tokens</button>`) {
		t.Errorf("dry run offers no confirmed revoke")
	}
	if s := e.status("GET", "/api/v1/session/userinfo", t1.Token, nil); s != 200 {
		t.Fatalf("a dry run revoked: %d", s)
	}
	done := w.post("/break-glass", url.Values{"account": {"alice"}, "kind": {"api"}, "op": {"revoke"}})
	if !strings.Contains(done.body, "Revoked 2 tokens") {
		t.Fatalf("revoke:\n%s", done.body)
	}
	for _, tok := range []string{t1.Token, t2.Token} {
		if s := e.status("GET", "/api/v1/session/userinfo", tok, nil); s != 401 {
			t.Errorf("after break-glass: %d, want 401", s)
		}
	}
	if r := w.post("/break-glass", url.Values{"op": {"dry-run"}}); r.status != 400 || !strings.Contains(r.body, "at least one filter") {
		t.Errorf("no filter: %d", r.status)
	}
	if r := w.post("/break-glass", url.Values{"issued_before": {"yesterday"}, "op": {"dry-run"}}); r.status != 400 {
		t.Errorf("bad time: %d", r.status)
	}
}

// TestDashboardPagesAreAccessible checks every page: each form control
// has a <label for>, no inline script or style sneaks in, and no page
// fails.
func TestDashboardPagesAreAccessible(t *testing.T) {
	t.Parallel()
	e := newDashEnv(t)
	e.call("POST", "/api/v1/projects", e.admin, gatehouse.Project{Name: "team-a",
		Roles: []gatehouse.ProjectRole{{Name: "ci"}}}, 200, nil)
	e.call("POST", "/api/v1/applications", e.admin, gatehouse.Application{Name: "web", Project: "team-a",
		Spec: gatehouse.AppSpec{RepoURL: "https://git.example/web.git", Destination: gatehouse.AppDestination{Namespace: "web"}}}, 200, nil)
	e.mint(e.admin, "admin", gatehouse.TokenRequest{Name: "t"})
	w := newWeb(t, e)
	pages := map[string]resp{"/": w.get("/")}
	w.login("admin", adminPassword)
	for _, path := range []string{
		"/user-info", "/accounts", "/accounts/admin", "/accounts/admin/tokens/new", "/projects", "/projects/team-a",
		"/projects/team-a/roles/ci/tokens/new", "/applications", "/audit", "/break-glass", "/no-such-page", "/tokens/created",
	} {
		pages[path] = w.get(path)
	}
	pages["POST /break-glass"] = w.post("/break-glass", url.Values{"account": {"admin"}, "op": {"dry-run"}})
	pages["copy-once"] = func() resp {
		w.wantRedirect(w.post("/accounts/admin/tokens/new", url.Values{"name": {"a11y"}, "op": {"generate"}}), "/tokens/created")
		return w.get("/tokens/created")
	}()

	controlRE := regexp.MustCompile(`<(input|select|textarea)\b[^>]*>`)
	idRE := regexp.MustCompile(`\bid="([^"]+)"`)
	for path, r := range pages {
		if want := 200; path == "/no-such-page" {
			if r.status != 404 {
				t.Errorf("%s: %d, want 404", path, r.status)
			}
		} else if r.status != want {
			t.Errorf("%s: %d, want 200", path, r.status)
		}
		for _, c := range controlRE.FindAllString(r.body, -1) {
			if strings.Contains(c, `type="hidden"`) {
				continue
			}
			m := idRE.FindStringSubmatch(c)
			if m == nil {
				t.Errorf("%s: control without id: %s", path, c)
				continue
			}
			if !strings.Contains(r.body, `<label for="`+m[1]+`"`) {
				t.Errorf("%s: no <label for=%q>", path, m[1])
			}
		}
		for _, bad := range []string{"<script>", " style=", "<style", "onclick=", "onsubmit=", "javascript:"} {
			if strings.Contains(r.body, bad) {
				t.Errorf("%s: contains %q (the CSP forbids inline code and styles)", path, bad)
			}
		}
	}
}

func TestDashboardStaticAssets(t *testing.T) {
	t.Parallel()
	e := newDashEnv(t)
	w := newWeb(t, e)
	login := w.get("/").body
	m := regexp.MustCompile(`href="(/static/app\.css\?v=[0-9a-f]+)"`).FindStringSubmatch(login)
	if m == nil {
		t.Fatalf("login page links no versioned stylesheet")
	}
	for _, tc := range []struct {
		path, ctype, cache string
		status             int
	}{
		{m[1], "text/css", "public, max-age=31536000, immutable", 200},
		{"/static/app.css", "text/css", "no-cache", 200},
		{"/static/app.js", "text/javascript", "no-cache", 200},
		{"/static/", "", "", 404},
		{"/static/nope.js", "", "", 404},
	} {
		r := w.get(tc.path)
		if r.status != tc.status {
			t.Errorf("%s: %d, want %d", tc.path, r.status, tc.status)
			continue
		}
		if tc.status != 200 {
			continue
		}
		if got := r.header.Get("Content-Type"); !strings.HasPrefix(got, tc.ctype) {
			t.Errorf("%s: Content-Type %q, want %s", tc.path, got, tc.ctype)
		}
		if got := r.header.Get("Cache-Control"); got != tc.cache {
			t.Errorf("%s: Cache-Control %q, want %q", tc.path, got, tc.cache)
		}
	}
}
