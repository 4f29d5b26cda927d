package server_test

import (
	"context"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/server"
)

const chromiumPath = "/usr/bin/chromium"

// browser drives one headless Chromium tab against a test env.
type browser struct {
	t    *testing.T
	ctx  context.Context
	base string
	// dialogs receives the message of every JavaScript dialog, which the
	// browser accepts (the dashboard's confirm() before revoking).
	dialogs chan string
}

// newBrowser starts Chromium, or skips when it is not installed (fails
// instead when GATEHOUSE_TEST_REQUIRE_BROWSER=1). The browser process ends
// with the test.
func newBrowser(t *testing.T, base string) *browser {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err != nil {
		if os.Getenv("GATEHOUSE_TEST_REQUIRE_BROWSER") == "1" {
			t.Fatalf("%s is required (GATEHOUSE_TEST_REQUIRE_BROWSER=1): %v", chromiumPath, err)
		}
		t.Skipf("%s not installed; apt-get install chromium to run the browser tests", chromiumPath)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromiumPath),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.UserDataDir(t.TempDir()),
	)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	actx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	bctx, cancelTab := chromedp.NewContext(actx)
	t.Cleanup(func() {
		cancelTab()
		cancelAlloc() // stops the browser process it started
		cancel()
	})
	if err := chromedp.Do(bctx); err != nil {
		t.Fatalf("starting Chromium: %v", err)
	}
	b := &browser{t: t, ctx: bctx, base: base, dialogs: make(chan string, 16)}
	dialogs := chromedp.Events(bctx, page.JavascriptDialogOpening)
	go func() {
		for ev, err := range dialogs {
			if err != nil {
				return
			}
			b.dialogs <- ev.Message
			_, _ = chromedp.Call(bctx, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{Accept: true})
		}
	}()
	return b
}

// stepTimeout bounds one step, so that a missing element fails the test
// with its step rather than at the end of the whole budget.
const stepTimeout = 15 * time.Second

func (b *browser) do(steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, stepTimeout)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		b.t.Fatal(err)
	}
}

// run runs one action that returns a value.
func run[T any](b *browser, a chromedp.Action[T]) T {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, stepTimeout)
	defer cancel()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		b.t.Fatal(err)
	}
	return v
}

func (b *browser) open(path string) { b.t.Helper(); b.do(chromedp.Navigate(b.base + path)) }

// click clicks what the XPath finds and waits for the page it loads.
func (b *browser) click(xpath string) {
	b.t.Helper()
	run(b, chromedp.WaitEvent(page.LoadEventFired, nil, chromedp.Click(chromedp.Search(xpath), chromedp.NodeVisible)))
}

// button and link find elements by their visible label, as a user does.
func button(label string) string { return `//button[normalize-space()='` + label + `']` }
func link(label string) string   { return `//a[normalize-space()='` + label + `']` }

func (b *browser) text(sel string) string {
	b.t.Helper()
	return run(b, chromedp.Text(chromedp.CSS(sel), chromedp.NodeVisible))
}

func (b *browser) path() string {
	b.t.Helper()
	u, err := url.Parse(run(b, chromedp.Location()))
	if err != nil {
		b.t.Fatal(err)
	}
	return u.RequestURI()
}

// screenshot saves the page as a test artifact, and also under
// $GATEHOUSE_SCREENSHOTS when that is set.
func (b *browser) screenshot(name string) {
	b.t.Helper()
	png := run(b, chromedp.FullScreenshot(100))
	dirs := []string{b.t.ArtifactDir()}
	if d := os.Getenv("GATEHOUSE_SCREENSHOTS"); d != "" {
		dirs = append(dirs, d)
	}
	for _, dir := range dirs {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			b.t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644); err != nil {
			b.t.Fatal(err)
		}
	}
}

// fitsWidth reports whether the page needs no horizontal scrolling; if
// it does, it names the widest elements.
func (b *browser) fitsWidth() (bool, string) {
	b.t.Helper()
	wide := run(b, chromedp.Evaluate[string](`(() => {
		if (document.documentElement.scrollWidth <= window.innerWidth) return "";
		return [...document.querySelectorAll("body *")]
			.filter(el => el.getBoundingClientRect().right > window.innerWidth && !el.closest(".table-wrap, .mainnav"))
			.slice(0, 5).map(el => el.tagName.toLowerCase() + "." + el.className + " " + Math.round(el.getBoundingClientRect().right)).join(", ");
	})()`))
	return wide == "", wide
}

// TestDashboardInBrowser walks the flow of issue 6 by the labels a user
// sees: log in, open User Info from the menu under the name at the top
// right, generate a token, copy it from the page, use it against the API,
// revoke it and see the API refuse it.
func TestDashboardInBrowser(t *testing.T) {
	e := newDashEnv(t, withPolicy(strings.Join([]string{
		"p, role:team-a, applications, *, team-a/*, allow",
		"p, role:team-a, projects, get, team-a, allow",
		"g, team-a, role:team-a",
	}, "\n"), ""))
	b := newBrowser(t, e.srv.URL)
	e.createUser("alice", "team-a")
	const xss = `<img src=x onerror="window.__xss=1"><script>window.__xss=2</script>`
	e.mint(e.admin, "alice", gatehouse.TokenRequest{Name: xss})

	// 1. The login form; a wrong password shows an error on the page.
	b.do(chromedp.EmulateViewport(1280, 800))
	b.open("/")
	b.do(chromedp.WaitVisible(chromedp.Search(`//label[normalize-space()='Username']`)),
		chromedp.WaitVisible(chromedp.Search(`//label[normalize-space()='Password']`)))
	b.screenshot("login")
	b.do(chromedp.SendKeys(chromedp.ID("username"), "alice"), chromedp.SendKeys(chromedp.ID("password"), "wrong password"))
	b.click(button("Log in"))
	if got := b.text(".alert-error"); got != "Invalid username or password." {
		t.Fatalf("wrong password: alert %q", got)
	}
	b.do(chromedp.SendKeys(chromedp.ID("password"), "alice-password"))
	b.click(button("Log in"))

	// 2. The user's name at the top right opens a menu with User Info.
	if got := b.path(); got != "/user-info" {
		t.Fatalf("after login at %s, want /user-info", got)
	}
	if got := b.text(".user-menu summary .user-name"); got != "alice" {
		t.Fatalf("name in the header = %q", got)
	}
	box := run(b, chromedp.Evaluate[[]float64](`(() => { const r = document.querySelector(".user-menu summary").getBoundingClientRect(); return [r.left, r.right, r.top]; })()`))
	if box[0] < 1280/2 || box[1] > 1280 || box[2] > 60 {
		t.Errorf("user menu at left %.0f right %.0f top %.0f, want the top right of 1280×800", box[0], box[1], box[2])
	}
	b.open("/audit")
	b.do(chromedp.Click(chromedp.Search(`//summary[.//span[normalize-space()='alice']]`), chromedp.NodeVisible),
		chromedp.WaitVisible(chromedp.Search(`//details[contains(@class,'user-menu')]`+link("User Info"))))
	b.click(`//details[contains(@class,'user-menu')]` + link("User Info"))

	// 3. User Info: username, groups, roles and the Tokens section. The
	// token named like markup is text, and none of it ran.
	if got := b.text("#info-username"); got != "alice" {
		t.Errorf("username = %q", got)
	}
	for _, want := range []string{"team-a", "role:team-a"} {
		n := run(b, chromedp.Evaluate[int](`[...document.querySelectorAll(".chip")].filter(c => c.textContent === "`+want+`").length`))
		if n != 1 {
			t.Errorf("chip %q shown %d times, want once", want, n)
		}
	}
	if got := b.text("td.token-name"); got != xss {
		t.Errorf("token name shown as %q, want the literal text", got)
	}
	if ran := run(b, chromedp.Evaluate[bool](`window.__xss !== undefined`)); ran {
		t.Error("markup in a token name ran")
	}

	// 4. Generate New Token: Name, Expiration (12 hours preselected),
	// preview, Generate; the token is shown once with a Copy button.
	b.click(link("Generate New Token"))
	if got := run(b, chromedp.Value(chromedp.ID("expiration"))); got != "12h0m0s" {
		t.Errorf("preselected expiration %q, want 12 hours", got)
	}
	if got := run(b, chromedp.Evaluate[string](`document.getElementById("expiration").selectedOptions[0].textContent`)); got != "12 hours" {
		t.Errorf("preselected expiration label %q", got)
	}
	b.do(chromedp.SendKeys(chromedp.ID("name"), "CI deploys"),
		chromedp.SendKeys(chromedp.ID("scope-1-resource"), "applications"),
		chromedp.SendKeys(chromedp.ID("scope-1-action"), "*"),
		chromedp.SendKeys(chromedp.ID("scope-1-object"), "team-a/*"))
	b.click(button("Preview"))
	if got := b.text(`#preview td[data-action="sync"]`); got != "team-a/*" {
		t.Errorf("preview: applications sync = %q, want team-a/*", got)
	}
	if got := run(b, chromedp.Value(chromedp.ID("name"))); got != "CI deploys" {
		t.Errorf("preview lost the name: %q", got)
	}
	b.screenshot("token-form")
	b.click(button("Generate"))
	if got := b.path(); got != "/tokens/created" {
		t.Fatalf("after Generate at %s", got)
	}
	tok := run(b, chromedp.Value(chromedp.ID("new-token")))
	if ro := run(b, chromedp.AttributeValue(chromedp.ID("new-token"), "readonly")); !ro.Exists {
		t.Error("the token field is not read-only")
	}
	if body := b.text("main"); !strings.Contains(body, "won't be shown again") {
		t.Errorf("no warning on the copy-once page:\n%s", body)
	}
	b.do(chromedp.Click(chromedp.Search(button("Copy")), chromedp.NodeVisible),
		chromedp.WaitVisible(chromedp.Search(`//p[@id='copy-status' and normalize-space()!='']`)))
	b.screenshot("token-created")

	// The copied token works against the API, as alice, scoped.
	var info gatehouse.UserInfo
	e.call("GET", "/api/v1/session/userinfo", tok, nil, 200, &info)
	if info.Username != "alice" || info.TokenKind != gatehouse.KindAPI {
		t.Fatalf("token acts as %+v", info)
	}
	var can gatehouse.CanI
	e.call("GET", "/api/v1/account/can-i/applications/sync/team-a/web", tok, nil, 200, &can)
	if can.Value != "yes" {
		t.Errorf("token may not sync team-a/web")
	}

	// Reloading never shows it again.
	b.do(chromedp.Reload())
	if shown := run(b, chromedp.Evaluate[bool](`document.getElementById("new-token") !== null`)); shown {
		t.Fatal("the token is shown again after a reload")
	}
	if body := b.text("main"); strings.Contains(body, tok) || !strings.Contains(body, "already shown") {
		t.Errorf("after reload:\n%s", body)
	}

	// A cross-origin POST with alice's own cookie is refused and changes
	// nothing.
	cookies, err := chromedp.Call(b.ctx, network.GetCookies, network.GetCookiesParams{URLs: []string{e.srv.URL}})
	if err != nil {
		t.Fatal(err)
	}
	var session string
	for _, c := range cookies.Cookies {
		if c.Name == server.CookieName {
			session = c.Value
		}
	}
	if session == "" {
		t.Fatal("the browser holds no session cookie")
	}
	req, _ := http.NewRequest("POST", e.srv.URL+"/accounts/alice/tokens/"+info.TokenID+"/revoke", nil)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", "https://evil.example")
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	req.AddCookie(&http.Cookie{Name: server.CookieName, Value: session})
	if status, _ := e.send(req); status != http.StatusForbidden {
		t.Errorf("cross-origin revoke: %d, want 403", status)
	}
	if s := e.status("GET", "/api/v1/session/userinfo", tok, nil); s != 200 {
		t.Fatalf("token after a cross-origin revoke: %d, want 200", s)
	}

	// 5. Revoke asks first, then the token stops working at once.
	b.click(link("Back to your tokens"))
	b.screenshot("user-info")
	b.click(`//tr[td[contains(@class,'token-name') and contains(., 'CI deploys')]]` + button("Revoke"))
	select {
	case msg := <-b.dialogs:
		if !strings.Contains(msg, "Revoke the token “CI deploys”?") {
			t.Errorf("confirmation says %q", msg)
		}
	default:
		t.Error("Revoke did not ask for confirmation")
	}
	if got := b.text(".alert-success"); !strings.Contains(got, "Token revoked.") {
		t.Errorf("after revoke: notice %q", got)
	}
	if s := e.status("GET", "/api/v1/session/userinfo", tok, nil); s != http.StatusUnauthorized {
		t.Errorf("revoked token: %d, want 401", s)
	}
	if n := run(b, chromedp.Evaluate[int](`[...document.querySelectorAll("td.token-name")].filter(c => c.textContent.includes("CI deploys")).length`)); n != 0 {
		t.Error("the revoked token is still listed")
	}

	// A narrow window: nothing scrolls sideways, the name stays at the top.
	b.do(chromedp.EmulateViewport(420, 860))
	for _, path := range []string{"/user-info", "/accounts/alice/tokens/new", "/audit"} {
		b.open(path)
		if ok, wide := b.fitsWidth(); !ok {
			t.Errorf("%s does not fit 420 px: %s", path, wide)
		}
	}
	b.open("/user-info")
	b.screenshot("user-info-narrow")
	b.open("/accounts/alice/tokens/new")
	b.screenshot("token-form-narrow")

	// Log out from the menu: back at the login form, the session revoked.
	b.do(chromedp.EmulateViewport(1280, 800))
	b.open("/user-info")
	b.do(chromedp.Click(chromedp.CSS(".user-menu summary"), chromedp.NodeVisible))
	b.click(button("Log out"))
	if got := b.path(); got != "/?notice=logged-out" {
		t.Errorf("after logout at %s", got)
	}
	if s := e.status("GET", "/api/v1/session/userinfo", session, nil); s != http.StatusUnauthorized {
		t.Errorf("session after logout: %d, want 401", s)
	}
	b.open("/")
	if ok, wide := b.fitsWidth(); !ok {
		t.Errorf("login page does not fit 1280 px: %s", wide)
	}
	b.do(chromedp.EmulateViewport(420, 860))
	b.open("/")
	b.screenshot("login-narrow")
}

// TestDashboardAdminInBrowser renders the admin pages as an admin sees
// them, for the screenshots and to check that they fit narrow windows.
func TestDashboardAdminInBrowser(t *testing.T) {
	e := newDashEnv(t)
	b := newBrowser(t, e.srv.URL)
	e.call("POST", "/api/v1/projects", e.admin, gatehouse.Project{Name: "team-a", Description: "Team A's services",
		Roles: []gatehouse.ProjectRole{{Name: "deployer", Description: "CI deploys", Policies: []string{"p, proj:team-a:deployer, applications, sync, team-a/*, allow"}}}}, 200, nil)
	for _, name := range []string{"web", "api"} {
		e.call("POST", "/api/v1/applications", e.admin, gatehouse.Application{Name: name, Project: "team-a",
			Spec: gatehouse.AppSpec{RepoURL: "https://git.example/team-a/" + name + ".git", Path: "deploy", Destination: gatehouse.AppDestination{Server: "https://kubernetes.default.svc", Namespace: name}}}, 200, nil)
	}
	e.call("PUT", "/api/v1/applications/web/status", e.admin, gatehouse.StatusReport{Sync: "Synced", Health: "Healthy", Revision: "4f2a9c1"}, 200, nil)
	e.createUser("alice", "team-a")
	e.mint(e.admin, "alice", gatehouse.TokenRequest{Name: "laptop"})
	e.login("alice", "alice-password") // a session: break-glass finds two tokens

	b.do(chromedp.EmulateViewport(1280, 800))
	b.open("/")
	b.do(chromedp.SendKeys(chromedp.ID("username"), "admin"), chromedp.SendKeys(chromedp.ID("password"), adminPassword))
	b.click(button("Log in"))
	for _, tc := range []struct{ nav, shot string }{
		{"Accounts", "accounts"}, {"Projects", "projects"}, {"Applications", "applications"}, {"Audit", "audit"}, {"Break-glass", "break-glass"},
	} {
		b.click(`//nav` + link(tc.nav))
		b.screenshot(tc.shot)
	}
	b.do(chromedp.SendKeys(chromedp.ID("bg-account"), "alice"))
	b.click(button("Dry run"))
	if got := b.text("#result-title"); got != "Dry run: 2 tokens match" {
		t.Errorf("dry run: %q", got)
	}
	b.screenshot("break-glass-dry-run")
	b.open("/projects/team-a")
	b.screenshot("project")

	b.do(chromedp.EmulateViewport(420, 860))
	for _, path := range []string{"/accounts", "/projects/team-a", "/applications", "/audit", "/break-glass"} {
		b.open(path)
		if ok, wide := b.fitsWidth(); !ok {
			t.Errorf("%s does not fit 420 px: %s", path, wide)
		}
	}
	b.open("/applications")
	b.screenshot("applications-narrow")
}
