package server_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"log/slog"
	"mime"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/server"
	"github.com/gatehouse/gatehouse/service"
	"github.com/gatehouse/gatehouse/store/sqlite"
)

// download takes a backup through the API as tok and returns the
// response and its body.
func download(e *env, tok string) (*http.Response, []byte) {
	e.t.Helper()
	req, _ := http.NewRequest("GET", e.srv.URL+"/api/v1/admin/backup", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	if _, err := b.ReadFrom(resp.Body); err != nil {
		e.t.Fatal(err)
	}
	return resp, b.Bytes()
}

// TestBackupDownload: the admin gets the store as one SQLite file, with
// its length, its SHA-256 and a file name, recorded in the audit trail
// with who took it and from where; a caller without settings, update,
// backup gets 403 and no copy, an anonymous one 401.
func TestBackupDownload(t *testing.T) {
	e := newEnv(t)
	e.createUser("ivy")
	e.setPolicy("g, ivy, role:readonly", "")
	ivy := e.login("ivy", "ivy-password")
	e.mint(e.admin, "ivy", gatehouse.TokenRequest{Name: "laptop"})

	resp, body := download(e, e.admin)
	if resp.StatusCode != 200 {
		t.Fatalf("backup: %d %s", resp.StatusCode, body)
	}
	h := resp.Header
	if ct := h.Get("Content-Type"); ct != "application/octet-stream" {
		t.Errorf("Content-Type %q", ct)
	}
	if _, params, err := mime.ParseMediaType(h.Get("Content-Disposition")); err != nil || !strings.HasPrefix(params["filename"], "gatehouse-backup-20261126T") {
		t.Errorf("Content-Disposition %q", h.Get("Content-Disposition"))
	}
	if n, _ := strconv.Atoi(h.Get("Content-Length")); n != len(body) {
		t.Errorf("Content-Length %q, body %d bytes", h.Get("Content-Length"), len(body))
	}
	sum := sha256.Sum256(body)
	if got, want := h.Get("Repr-Digest"), "sha-256=:"+base64.StdEncoding.EncodeToString(sum[:])+":"; got != want {
		t.Errorf("Repr-Digest %q, want %q", got, want)
	}
	if h.Get("Cache-Control") != "no-store" {
		t.Errorf("Cache-Control %q", h.Get("Cache-Control"))
	}
	e.mu.Lock()
	for _, secret := range e.secrets {
		if bytes.Contains(body, []byte(secret)) {
			t.Errorf("the backup holds a secret the test used (%d bytes long)", len(secret))
		}
	}
	e.mu.Unlock()
	path := filepath.Join(t.TempDir(), "backup.db")
	if err := os.WriteFile(path, body, 0o600); err != nil {
		t.Fatal(err)
	}
	info, err := sqlite.Verify(t.Context(), path)
	if err != nil {
		t.Fatalf("the download is not a backup: %v", err)
	}
	if info.Accounts != 2 || info.Tokens != 3 {
		t.Errorf("backup: %+v, want 2 accounts and 3 tokens", info)
	}

	for _, c := range []struct {
		name, tok string
		status    int
		code      string
	}{
		{"fail/readonly", ivy, 403, gatehouse.EFORBIDDEN},
		{"fail/no credential", "", 401, gatehouse.EUNAUTHORIZED},
	} {
		resp, body := download(e, c.tok)
		if code, _ := errorOf(t, body); resp.StatusCode != c.status || code != c.code || resp.Header.Get("Content-Type") != "application/json" {
			t.Errorf("%s: %d %s %s, want %d %s as JSON", c.name, resp.StatusCode, resp.Header.Get("Content-Type"), body, c.status, c.code)
		}
	}

	var evs gatehouse.List[gatehouse.Event]
	e.call("GET", "/api/v1/audit?type="+gatehouse.EventStoreBackup, e.admin, nil, 200, &evs)
	if len(evs.Items) != 1 {
		t.Fatalf("store.backup events: %+v", evs.Items)
	}
	ev := evs.Items[0]
	if ev.Actor != "admin" || ev.RemoteAddr != "127.0.0.1" || !strings.Contains(ev.Detail, fmt.Sprintf("sha256 %x", sum)) || !strings.Contains(ev.Detail, strconv.Itoa(len(body))+" bytes") {
		t.Errorf("store.backup event: %+v", ev)
	}
	requests := requestEvents(e, "&route="+"GET%20/api/v1/admin/backup")
	if len(requests) != 2 || requests[0].Status != 200 || requests[1].Status != 403 || requests[1].Decision != "deny" {
		t.Errorf("request events of the route: %+v", requests)
	}
}

// TestBackupOneAtATimeAnswers429: while a backup is handed out, the API
// answers another with 429, a Retry-After and the JSON error, and records
// no second backup; once the first is closed the next one is served.
func TestBackupOneAtATimeAnswers429(t *testing.T) {
	e := newEnv(t)
	p, err := e.svc.Authenticate(t.Context(), e.admin)
	if err != nil {
		t.Fatal(err)
	}
	first, err := e.svc.Backup(t.Context(), p, "192.0.2.10")
	if err != nil {
		t.Fatal(err)
	}
	resp, body := download(e, e.admin)
	if code, _ := errorOf(t, body); resp.StatusCode != http.StatusTooManyRequests || code != gatehouse.ETHROTTLED || resp.Header.Get("Retry-After") == "" {
		t.Errorf("a backup while another is handed out: %d %s Retry-After %q, want 429 with Retry-After", resp.StatusCode, body, resp.Header.Get("Retry-After"))
	}
	first.Close()
	if resp, body := download(e, e.admin); resp.StatusCode != 200 {
		t.Errorf("a backup once the first is closed: %d %s", resp.StatusCode, body)
	}
	var evs gatehouse.List[gatehouse.Event]
	e.call("GET", "/api/v1/audit?type="+gatehouse.EventStoreBackup, e.admin, nil, 200, &evs)
	if len(evs.Items) != 2 {
		t.Errorf("%d store.backup events, want 2", len(evs.Items))
	}
}

// liveServer is a real server on the SQLite database at path, as a
// process starting on its data directory builds it.
type liveServer struct {
	srv  *httptest.Server
	stop func()
}

func startOn(t *testing.T, path string, now func() time.Time) *liveServer {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	svc, err := service.New(ctx, service.Options{Store: st, Now: now, BcryptCost: 10, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Bootstrap(ctx, adminPassword); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(server.New(server.Options{Service: svc}))
	bg, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); svc.Run(bg, time.Hour) }()
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		srv.Close()
		cancel()
		<-done
		st.Close()
	}
	t.Cleanup(stop)
	return &liveServer{srv: srv, stop: stop}
}

func (l *liveServer) status(t *testing.T, tok string) int {
	t.Helper()
	req, _ := http.NewRequest("GET", l.srv.URL+"/api/v1/session/userinfo", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := l.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestBackupRestoreRoundTrip: a backup downloaded from the real server,
// restored over its database once the server has stopped, as gatehouse
// admin restore does (the backup's rows in a new database, the
// revocations of the database it replaces carried into it, one rename): on the server started again
// every token that worked before the backup and was not revoked since
// works, every token revoked before or after it is refused, and the
// account disabled after it stays disabled.
func TestBackupRestoreRoundTrip(t *testing.T) {
	now := func() time.Time { return time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC) }
	dir := t.TempDir()
	db := filepath.Join(dir, "gatehouse.db")
	live := startOn(t, db, now)
	e := &env{t: t, srv: live.srv, logs: &lockedBuffer{}}
	e.admin = e.login("admin", adminPassword)
	e.createUser("ivy")
	e.createUser("max")
	keep := e.mint(e.admin, "ivy", gatehouse.TokenRequest{Name: "keep"})
	revokedBefore := e.mint(e.admin, "ivy", gatehouse.TokenRequest{Name: "revoked before"})
	revokedAfter := e.mint(e.admin, "ivy", gatehouse.TokenRequest{Name: "revoked after"})
	maxs := e.mint(e.admin, "max", gatehouse.TokenRequest{Name: "max's"})
	e.call("DELETE", "/api/v1/account/ivy/token/"+revokedBefore.ID, e.admin, nil, 200, nil)

	resp, body := download(e, e.admin)
	if resp.StatusCode != 200 {
		t.Fatalf("backup: %d %s", resp.StatusCode, body)
	}
	backup := filepath.Join(t.TempDir(), "backup.db")
	if err := os.WriteFile(backup, body, 0o600); err != nil {
		t.Fatal(err)
	}
	e.call("DELETE", "/api/v1/account/ivy/token/"+revokedAfter.ID, e.admin, nil, 200, nil)
	e.call("PATCH", "/api/v1/account/max", e.admin, map[string]any{"enabled": false}, 200, nil)
	live.stop()

	// gatehouse admin restore, step by step.
	ctx := t.Context()
	if _, err := sqlite.Verify(ctx, backup); err != nil {
		t.Fatal(err)
	}
	cand := filepath.Join(dir, ".gatehouse.db.restore")
	if _, err := sqlite.Rebuild(ctx, backup, cand); err != nil {
		t.Fatal(err)
	}
	current, err := sqlite.OpenExisting(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	restored, err := sqlite.Open(ctx, cand)
	if err != nil {
		t.Fatal(err)
	}
	svc, err := service.New(ctx, service.Options{Store: restored, Now: now, BcryptCost: 10})
	if err != nil {
		t.Fatal(err)
	}
	report, err := svc.Restore(ctx, current, service.RestoreFrom{Name: "backup.db", SHA256: sha256.Sum256(body)}, "gatehouse.db.replaced")
	if err != nil {
		t.Fatal(err)
	}
	current.Close()
	restored.Close()
	if report.TokensRevoked != 2 || report.AccountsDisabled != 1 {
		t.Errorf("report %+v, want 2 tokens revoked (revoked after, and max's) and 1 account disabled", report)
	}
	if err := sqlite.Replace(cand, db, db+".replaced"); err != nil {
		t.Fatal(err)
	}

	again := startOn(t, db, now)
	for _, c := range []struct {
		name, tok string
		want      int
	}{
		{"worked before the backup, not revoked since", keep.Token, 200},
		{"the admin session the backup was taken with", e.admin, 200},
		{"revoked before the backup", revokedBefore.Token, 401},
		{"revoked after the backup", revokedAfter.Token, 401},
		{"of an account disabled after the backup", maxs.Token, 401},
	} {
		if got := again.status(t, c.tok); got != c.want {
			t.Errorf("%s: %d, want %d", c.name, got, c.want)
		}
	}
	e2 := &env{t: t, srv: again.srv, logs: &lockedBuffer{}}
	var max gatehouse.Account
	e2.call("GET", "/api/v1/account/max", e.admin, nil, 200, &max)
	if max.Enabled {
		t.Error("max, disabled after the backup, is enabled again")
	}
	if got := e2.status("POST", "/api/v1/session", "", gatehouse.LoginRequest{Username: "max", Password: "max-password"}); got != 401 {
		t.Errorf("max logs in: %d, want 401", got)
	}
}
