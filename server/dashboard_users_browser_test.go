package server_test

import (
	"context"
	"encoding/csv"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	cdpbrowser "github.com/chromedp/cdproto/browser"
	"github.com/chromedp/chromedp"

	"github.com/gatehouse/gatehouse"
)

// TestDashboardUsersAndAuditInBrowser walks the admin's and the user's
// side in Chromium, by the labels a user sees: the admin creates a local
// user with a password; the user logs in, changes the password and logs
// in with the new one; the admin filters the audit page, opens a token's
// activity chart from it and downloads the filtered view as CSV. Every
// step is saved as a full-page screenshot.
func TestDashboardUsersAndAuditInBrowser(t *testing.T) {
	e := newDashEnv(t)
	b := newBrowser(t, e.srv.URL)
	shot := func(name string) {
		t.Helper()
		saveScreenshot(t, name, run(b, chromedp.FullScreenshot(100)))
	}
	const (
		first  = "carol-first-password"
		second = "carol-second-password"
	)
	e.remember(first, second)

	// A CI token's traffic at known hours of the service's clock: 30 hours
	// ago 3 allowed and 1 denied, 4 hours later 2 denied, now 1 allowed.
	e.call("POST", "/api/v1/account", e.admin, gatehouse.AccountCreate{Name: "ci-bot", Capabilities: []gatehouse.Capability{gatehouse.CapAPIKey}}, 200, nil)
	now := e.clock.Now()
	e.clock.Advance(-30 * time.Hour)
	nt := e.mint(e.admin, "ci-bot", gatehouse.TokenRequest{Name: "deploys", ExpiresIn: seconds(3 * 24 * 3600)})
	requests := func(allowed, denied int) {
		for range allowed {
			e.call("GET", "/api/v1/session/userinfo", nt.Token, nil, http.StatusOK, nil)
		}
		for range denied {
			e.call("GET", "/api/v1/account/admin", nt.Token, nil, http.StatusForbidden, nil)
		}
	}
	requests(3, 1)
	e.clock.Advance(4 * time.Hour)
	requests(0, 2)
	e.clock.Advance(now.Sub(e.clock.Now()))
	requests(1, 0)

	logIn := func(user, password string) {
		t.Helper()
		b.open("/")
		b.do(chromedp.SendKeys(chromedp.ID("username"), user), chromedp.SendKeys(chromedp.ID("password"), password))
		b.click(button("Log in"))
	}
	logOut := func() {
		t.Helper()
		b.do(chromedp.Click(chromedp.CSS(".user-menu summary"), chromedp.NodeVisible))
		b.click(button("Log out"))
	}

	// 1. The admin creates carol, a local user with a password.
	b.do(chromedp.EmulateViewport(1280, 900))
	logIn("admin", adminPassword)
	b.click(`//nav` + link("Accounts"))
	b.click(link("Create local user"))
	if got := b.path(); got != "/users/new" {
		t.Fatalf("Create local user opened %s", got)
	}
	b.do(chromedp.SendKeys(chromedp.ID("user-name"), "carol"),
		chromedp.SendKeys(chromedp.ID("user-password"), first),
		chromedp.SendKeys(chromedp.ID("user-password-again"), first))
	shot("1-create-user-form")
	b.click(button("Create user"))
	if got := b.path(); got != "/accounts/carol?notice=user-created" {
		t.Fatalf("after Create user at %s", got)
	}
	if got := b.text(".alert-success"); got != "Local user created." {
		t.Errorf("notice %q", got)
	}
	shot("2-user-created")
	logOut()

	// 2. carol logs in with it and changes it from the menu.
	logIn("carol", first)
	if got := b.path(); got != "/user-info" {
		t.Fatalf("carol's login ended at %s", got)
	}
	b.do(chromedp.Click(chromedp.CSS(".user-menu summary"), chromedp.NodeVisible))
	b.click(`//details[contains(@class,'user-menu')]` + link("Change password"))
	if got := b.text("#password-effect"); !strings.Contains(got, "logs out every other session of yours") {
		t.Errorf("the page says %q about other sessions", got)
	}
	b.do(chromedp.SendKeys(chromedp.ID("current-password"), first),
		chromedp.SendKeys(chromedp.ID("new-password"), second),
		chromedp.SendKeys(chromedp.ID("new-password-again"), second))
	shot("3-change-password-form")
	b.click(button("Change password"))
	if got := b.path(); got != "/user-info?notice=password-changed" {
		t.Fatalf("after Change password at %s", got)
	}
	if got := b.text(".alert-success"); !strings.Contains(got, "Password changed.") {
		t.Errorf("notice %q", got)
	}
	shot("4-password-changed")
	logOut()

	// 3. The old password no longer works; the new one does.
	logIn("carol", first)
	if got := b.text(".alert-error"); got != "Invalid username or password." {
		t.Errorf("the old password: alert %q", got)
	}
	b.do(chromedp.Clear(chromedp.ID("password")), chromedp.SendKeys(chromedp.ID("password"), second))
	b.click(button("Log in"))
	if got := b.path(); got != "/user-info" {
		t.Fatalf("login with the new password ended at %s", got)
	}
	shot("5-logged-in-with-new-password")
	logOut()

	// 4. The admin filters the audit page to ci-bot's requests.
	logIn("admin", adminPassword)
	b.click(`//nav` + link("Audit"))
	b.do(chromedp.SendKeys(chromedp.ID("f-account"), "ci-bot"),
		chromedp.SetValue(chromedp.ID("f-type"), gatehouse.EventRequest))
	b.click(button("Filter"))
	if got := b.path(); !strings.Contains(got, "account=ci-bot") || !strings.Contains(got, "type=request") {
		t.Errorf("filtered at %s", got)
	}
	// A row of alike reads counts them (×N).
	if n := run(b, chromedp.Evaluate[int](`[...document.querySelectorAll("td[data-label='Time']")].reduce((n, td) => {
		const c = td.closest("tr").querySelector(".badge-count");
		return n + (c ? Number(c.textContent.slice(1)) : 1);
	}, 0)`)); n != 7 {
		t.Errorf("rows of %d requests, want ci-bot's 7 requests", n)
	}
	shot("6-audit-filtered")

	// 5. From a row, the token's activity chart: the three hours, the
	// denials in another colour.
	b.click(`//td[@data-label='Token']//a`)
	if got := b.path(); got != "/audit/tokens/"+nt.ID {
		t.Fatalf("the token link opened %s", got)
	}
	b.do(chromedp.WaitVisible(chromedp.CSS("svg.activity-chart")))
	if got := b.text("#activity-totals"); got != "7 requests: 4 allowed, 3 denied" {
		t.Errorf("totals %q", got)
	}
	bars := run(b, chromedp.Evaluate[[]string](`(() => {
		const fill = sel => { const el = document.querySelector(sel); return el ? getComputedStyle(el).fill : ""; };
		return [String(document.querySelectorAll("rect.bar-allowed").length), String(document.querySelectorAll("rect.bar-denied").length),
			fill("rect.bar-allowed"), fill("rect.bar-denied")];
	})()`))
	if bars[0] != "2" || bars[1] != "2" || bars[2] == "" || bars[2] == bars[3] {
		t.Errorf("bars: %v; want 2 allowed and 2 denied in different colours", bars)
	}
	if n := run(b, chromedp.Evaluate[int](`document.querySelectorAll("#activity-table tbody tr").length`)); n != 3 {
		t.Errorf("the table lists %d hours, want 3", n)
	}
	shot("7-token-activity")

	// 6. The denials of the view, downloaded as CSV.
	b.open("/audit?account=ci-bot&decision=deny")
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(b.ctx, stepTimeout)
	defer cancel()
	progress := chromedp.Events(ctx, cdpbrowser.DownloadProgress)
	b.do(chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
		_, err := chromedp.Call(ctx, cdpbrowser.SetDownloadBehavior, cdpbrowser.SetDownloadBehaviorParams{
			Behavior: cdpbrowser.SetDownloadBehaviorBehaviorAllow, DownloadPath: dir, EventsEnabled: new(true),
		})
		return err
	}), chromedp.Click(chromedp.Search(link("Export CSV")), chromedp.NodeVisible))
	for ev, err := range progress {
		if err != nil {
			t.Fatalf("waiting for the download: %v", err)
		}
		if ev.State == cdpbrowser.DownloadProgressStateCompleted {
			break
		}
	}
	f, err := os.Open(filepath.Join(dir, "gatehouse-audit.csv"))
	if err != nil {
		t.Fatalf("the download: %v", err)
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil || len(rows) != 4 {
		t.Fatalf("the CSV: %d rows, %v; want a header and ci-bot's 3 denials", len(rows), err)
	}
	for _, row := range rows[1:] {
		if row[4] != "ci-bot" || row[13] != "deny" || row[5] != nt.ID {
			t.Errorf("CSV row %v: want a denial of ci-bot's token", row)
		}
	}
	shot("8-audit-export")

	// The new pages fit a narrow window.
	b.do(chromedp.EmulateViewport(420, 860))
	for _, path := range []string{"/users/new", "/user-info/password", "/accounts/carol/password", "/audit/tokens/" + nt.ID, "/audit"} {
		b.open(path)
		if ok, wide := b.fitsWidth(); !ok {
			t.Errorf("%s does not fit 420 px: %s", path, wide)
		}
	}
	b.open("/audit/tokens/" + nt.ID)
	shot("9-token-activity-narrow")
}
