package server_test

import (
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/internal/loopback"
)

// TestSSOLoginInBrowser walks the SSO flow in Chromium by what a user
// sees: "Log in with Acme SSO" on the login page, the provider's own login
// form, back at User Info as the provider's user; a token generated from
// the dashboard that works against the API and follows the user's groups
// at the provider; logout, with the offer to log out of the provider too.
func TestSSOLoginInBrowser(t *testing.T) {
	s := newSSOEnv(t, ssoPolicy)
	b := newBrowser(t, s.srv.URL)
	s.op.AutoLogin("") // the provider shows its form

	b.do(chromedp.EmulateViewport(1280, 800))
	b.open("/")
	b.screenshot("sso-login")
	b.click(link("Log in with Acme SSO"))
	if got := run(b, chromedp.Location()); !strings.HasPrefix(got, s.op.Issuer+"/login") {
		t.Fatalf("the button led to %s, want the provider's login", got)
	}
	b.do(chromedp.SendKeys(chromedp.ID("username"), "u-alice"))
	b.do(chromedp.Click(chromedp.ID("idp-login"), chromedp.NodeVisible),
		chromedp.WaitVisible(chromedp.ID("info-username")))
	if got := b.path(); got != "/user-info" {
		t.Fatalf("after the provider's login at %s, want /user-info", got)
	}
	if got := b.text("#info-username"); got != "alice@example.com" {
		t.Errorf("username = %q", got)
	}
	for _, want := range []string{"devs", "role:dev"} {
		n := run(b, chromedp.Evaluate[int](`[...document.querySelectorAll(".chip")].filter(c => c.textContent === "`+want+`").length`))
		if n != 1 {
			t.Errorf("chip %q shown %d times, want once", want, n)
		}
	}
	b.screenshot("sso-user-info")

	// A personal token from the dashboard, as for a password user.
	b.click(link("Generate New Token"))
	b.do(chromedp.SendKeys(chromedp.ID("name"), "laptop"))
	b.click(button("Generate"))
	tok := run(b, chromedp.Value(chromedp.ID("new-token")))
	s.remember(tok)
	var info gatehouse.UserInfo
	s.call("GET", "/api/v1/session/userinfo", tok, nil, 200, &info)
	if info.Username != "alice@example.com" || info.TokenKind != gatehouse.KindAPI {
		t.Fatalf("the dashboard's token acts as %+v", info)
	}
	if got := s.canI(tok, "applications", "get", "web/shop"); got != "yes" {
		t.Errorf("can-i get = %s, want yes", got)
	}
	// The group removed at the provider: gone from the token after one
	// refresh interval.
	s.op.SetGroups("u-alice")
	s.refresh(ssoInterval)
	if got := s.canI(tok, "applications", "get", "web/shop"); got != "no" {
		t.Errorf("after the group's removal: can-i get = %s, want no", got)
	}

	// Logout ends the session here and offers the provider's logout.
	b.open("/user-info")
	b.do(chromedp.Click(chromedp.CSS(".user-menu summary"), chromedp.NodeVisible))
	b.click(button("Log out"))
	if got := b.text(".alert-success"); !strings.Contains(got, "logged out") {
		t.Errorf("after logout: notice %q", got)
	}
	b.screenshot("sso-logged-out")
	b.click(link("Also log out of Acme SSO"))
	if got := b.path(); got != "/" {
		t.Errorf("after the provider's logout at %s, want the login page", got)
	}
	if _, status := s.userinfo(tok); status != http.StatusOK {
		t.Errorf("the API token after logout: %d (logout ends the session, not the tokens)", status)
	}
}

// TestSSOCLILoginInBrowser: a CLI login in Chromium asks the user to
// confirm, and Continue hands the sealed session to the loopback
// listener (a page that moves on by itself: the CSP's form-action would
// stop a redirect from the form).
func TestSSOCLILoginInBrowser(t *testing.T) {
	s := newSSOEnv(t, ssoPolicy)
	b := newBrowser(t, s.srv.URL)
	s.op.AutoLogin("u-alice")
	key, err := loopback.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan string, 1)
	cli := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/callback" {
			select {
			case got <- r.URL.Query().Get("result"):
			default:
			}
		}
		_, _ = w.Write([]byte("<!doctype html><p id=cli-done>CLI got it</p>"))
	}))
	defer cli.Close()
	port := cli.Listener.Addr().(*net.TCPAddr).Port

	b.open("/auth/login?" + url.Values{"cli_port": {strconv.Itoa(port)}, "cli_key": {key.Public()}}.Encode())
	if q := b.text("#cli-question"); q != "Log in the Gatehouse CLI on this computer as alice@example.com?" {
		t.Fatalf("question %q", q)
	}
	b.screenshot("sso-cli-confirm")
	select {
	case <-got:
		t.Fatal("the CLI got a session before the user confirmed")
	default:
	}
	b.do(chromedp.Click(chromedp.ID("cli-continue"), chromedp.NodeVisible), chromedp.WaitVisible(chromedp.ID("cli-done")))
	select {
	case sealed := <-got:
		plain, err := key.Open(sealed)
		if err != nil {
			t.Fatal(err)
		}
		var nt gatehouse.NewToken
		if err := json.Unmarshal(plain, &nt); err != nil {
			t.Fatal(err)
		}
		s.remember(nt.Token)
		if info, status := s.userinfo(nt.Token); status != 200 || info.Username != "alice@example.com" {
			t.Errorf("the CLI's session: %+v %d", info, status)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the loopback listener got nothing after Continue")
	}
}
