package server_test

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/server"
	"github.com/gatehouse/gatehouse/service"
	"github.com/gatehouse/gatehouse/store/sqlite"
)

// replicaEnvs starts n servers, each over its own service, on one SQLite
// file; each follows the change feed, as replicas on one database do. The
// first one bootstraps the admin.
func replicaEnvs(t *testing.T, n int) []*env {
	t.Helper()
	ctx := context.Background()
	dbPath := filepath.Join(t.TempDir(), "gatehouse.db")
	logs := &lockedBuffer{}
	log := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	var out []*env
	for i := range n {
		st, err := sqlite.Open(ctx, dbPath)
		if err != nil {
			t.Fatal(err)
		}
		svc, err := service.New(ctx, service.Options{Store: st, Logger: log, BcryptCost: 10, Follow: true, StalenessBound: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			if _, err := svc.Bootstrap(ctx, adminPassword); err != nil {
				t.Fatal(err)
			}
		}
		srv := httptest.NewServer(server.New(server.Options{Service: svc, Logger: log}))
		bg, stop := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() { defer close(done); svc.Run(bg, time.Hour) }()
		e := &env{t: t, srv: srv, svc: svc, clock: &clock{t: time.Now()}, dbPath: dbPath, logs: logs}
		t.Cleanup(func() {
			srv.Close()
			stop()
			<-done
			st.Close()
			if i == 0 {
				e.checkNoSecretLeaked()
			}
		})
		out = append(out, e)
	}
	out[0].admin = out[0].login("admin", adminPassword)
	return out
}

// on is w aimed at another server; it shares w's cookies, as a browser
// behind a load balancer does.
func (w *web) on(e *env) *web {
	return &web{t: w.t, e: e, c: w.c, base: e.srv.URL}
}

// waitLoggedIn waits until the server at w knows w's session (it learns
// of it from the change feed). It asks the API, not a page: a page that
// does not know the session yet would clear the cookie.
func (w *web) waitLoggedIn() {
	w.t.Helper()
	session := w.cookie(server.CookieName, "/")
	for start := time.Now(); w.e.status("GET", "/api/v1/session/userinfo", session, nil) != http.StatusOK; time.Sleep(10 * time.Millisecond) {
		if time.Since(start) > 5*time.Second {
			w.t.Fatalf("%s does not know the session after 5s", w.base)
		}
	}
}

// The mint POST goes to one replica and the redirected GET to another:
// the page shows the token once, and the token works there.
func TestDashboardCopyOnceAcrossReplicas(t *testing.T) {
	t.Parallel()
	rs := replicaEnvs(t, 2)
	a, b := rs[0], rs[1]
	a.createUser("alice")
	wa := newWeb(t, a)
	wa.login("alice", "alice-password")
	wb := wa.on(b)
	wb.waitLoggedIn()

	r := wa.post("/accounts/alice/tokens/new", url.Values{"name": {"ci"}, "expiration": {"12h0m0s"}, "op": {"generate"}})
	wa.wantRedirect(r, "/tokens/created")
	sealed := wa.cookie("gatehouse.flash", "/tokens/created")

	shown := wb.get("/tokens/created")
	tok := shownToken(shown.body)
	if shown.status != 200 || tok == "" {
		t.Fatalf("copy-once page on the other replica: %d\n%s", shown.status, shown.body)
	}
	a.remember(tok)
	if !strings.Contains(shown.body, "won't be shown again") || !strings.Contains(shown.body, "account alice") {
		t.Errorf("copy-once page lacks the warning or the owner:\n%s", shown.body)
	}
	for _, w := range []*web{wb, wa} {
		if again := w.get("/tokens/created"); strings.Contains(again.body, tok) || !strings.Contains(again.body, "already shown") {
			t.Errorf("reload on %s shows the token again or lacks the notice:\n%s", w.base, again.body)
		}
	}
	// The replica that opened the seal refuses a replayed copy of it.
	req, _ := http.NewRequest("GET", b.srv.URL+"/tokens/created", nil)
	req.AddCookie(&http.Cookie{Name: server.CookieName, Value: wa.cookie(server.CookieName, "/")})
	req.AddCookie(&http.Cookie{Name: "gatehouse.flash", Value: sealed})
	if replay := wb.do(req); strings.Contains(replay.body, tok) {
		t.Error("replaying the flash cookie on the replica that showed it shows the token again")
	}

	var info gatehouse.UserInfo
	for start := time.Now(); b.status("GET", "/api/v1/session/userinfo", tok, nil) != 200; time.Sleep(10 * time.Millisecond) {
		if time.Since(start) > 5*time.Second {
			t.Fatal("the token does not work on the replica that showed it")
		}
	}
	b.call("GET", "/api/v1/session/userinfo", tok, nil, 200, &info)
	if info.Username != "alice" || info.TokenKind != gatehouse.KindAPI {
		t.Errorf("the token acts as %+v", info)
	}
}

// A sealed cookie opens only with the session that minted it: not with
// another user's session, not with another session of the same user. A
// failed attempt does not spend it.
func TestDashboardFlashCookieOpensOnlyForItsSession(t *testing.T) {
	t.Parallel()
	e := newDashEnv(t)
	e.createUser("alice")
	e.createUser("bob")
	alice := newWeb(t, e)
	alice.login("alice", "alice-password")
	alice2 := newWeb(t, e)
	alice2.login("alice", "alice-password")
	bob := newWeb(t, e)
	bob.login("bob", "bob-password")

	alice.wantRedirect(alice.post("/accounts/alice/tokens/new", url.Values{"name": {"ci"}, "expiration": {"1h0m0s"}, "op": {"generate"}}), "/tokens/created")
	sealed := alice.cookie("gatehouse.flash", "/tokens/created")
	if sealed == "" {
		t.Fatal("no flash cookie")
	}
	for name, w := range map[string]*web{"bob": bob, "alice's other session": alice2} {
		req, _ := http.NewRequest("GET", e.srv.URL+"/tokens/created", nil)
		req.AddCookie(&http.Cookie{Name: server.CookieName, Value: w.cookie(server.CookieName, "/")})
		req.AddCookie(&http.Cookie{Name: "gatehouse.flash", Value: sealed})
		got := w.do(req)
		if got.status != 200 || shownToken(got.body) != "" || !strings.Contains(got.body, "already shown") {
			t.Errorf("%s with alice's flash cookie: %d, token %q", name, got.status, shownToken(got.body))
		}
	}
	shown := alice.get("/tokens/created")
	if tok := shownToken(shown.body); tok == "" {
		t.Fatalf("alice's own session no longer opens her cookie:\n%s", shown.body)
	} else {
		e.remember(tok)
	}
}
