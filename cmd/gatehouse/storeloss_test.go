package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/config"
	"github.com/gatehouse/gatehouse/internal/fulldisk"
)

// Store-loss tests: the server must fail closed when its database is
// gone or cannot commit, and never start over with an empty one.

const lossPassword = "store-loss-admin-password"

// runToExit runs a server on dataDir that is expected to refuse to start,
// and returns its output and exit code. It fails the test if the server is
// still running after a few seconds.
func runToExit(t *testing.T, dataDir string) (string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 15*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, "server", "--listen", "127.0.0.1:0", "--data-dir", dataDir)
	cmd.Env = append(os.Environ(), "GATEHOUSE_ADMIN_PASSWORD="+lossPassword)
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("the server did not exit by itself; output:\n%s", out)
	}
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatal(err)
	}
	return string(out), cmd.ProcessState.ExitCode()
}

// answer is one API response: its status and, for errors, the code.
type answer struct {
	status int
	code   string
	body   map[string]any
}

func (a answer) String() string { return fmt.Sprintf("%d %s %v", a.status, a.code, a.body) }

func call(t *testing.T, method, url, bearer, body string) answer {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	a := answer{status: resp.StatusCode, body: map[string]any{}}
	json.NewDecoder(resp.Body).Decode(&a.body)
	a.code, _ = a.body["error"].(string)
	return a
}

// writes are the writes the store-loss tests try: a mint, a revoke of
// the token victim, and a login. Each returns its answer.
type writes struct {
	t      *testing.T
	url    string
	bearer string
}

func (w writes) mint(name string) answer {
	return call(w.t, "POST", w.url+"/api/v1/account/admin/token", w.bearer, fmt.Sprintf(`{"name":%q,"expiresIn":3600}`, name))
}

func (w writes) revoke(id string) answer {
	return call(w.t, "DELETE", w.url+"/api/v1/account/admin/token/"+id, w.bearer, "")
}

func (w writes) login() answer {
	return call(w.t, "POST", w.url+"/api/v1/session", "", fmt.Sprintf(`{"username":"admin","password":%q}`, lossPassword))
}

// mintOK mints a token and returns its id and secret.
func (w writes) mintOK(name string) (id, secret string) {
	w.t.Helper()
	a := w.mint(name)
	id, _ = a.body["id"].(string)
	secret, _ = a.body["token"].(string)
	if a.status != 200 || id == "" || secret == "" {
		w.t.Fatalf("mint %s: %v", name, a)
	}
	return id, secret
}

// wantUnavailable fails the test unless every answer is 503 unavailable.
func wantUnavailable(t *testing.T, answers map[string]answer) {
	t.Helper()
	for what, a := range answers {
		if a.status != http.StatusServiceUnavailable || a.code != "unavailable" {
			t.Errorf("%s: got %v, want 503 unavailable", what, a)
		}
	}
}

// works reports whether a token is accepted.
func works(t *testing.T, url, secret string) bool {
	t.Helper()
	a := call(t, "GET", url+"/api/v1/session/userinfo", secret, "")
	switch a.status {
	case 200:
		return true
	case 401:
		return false
	}
	t.Fatalf("userinfo: %v", a)
	return false
}

// waitReadyz polls /readyz until it answers want, and fails the test if
// that takes longer than within.
func waitReadyz(t *testing.T, url string, want int, within time.Duration) {
	t.Helper()
	start := time.Now()
	var last answer
	for time.Since(start) < within {
		last = call(t, "GET", url+"/readyz", "", "")
		if last.status == want {
			if want == http.StatusServiceUnavailable && last.code != "unavailable" {
				t.Fatalf("/readyz: got %v, want the error unavailable", last)
			}
			t.Logf("/readyz answered %d after %s", want, time.Since(start).Round(time.Millisecond))
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("/readyz still %v after %s, want %d", last, within, want)
}

func removeDatabase(t *testing.T, dataDir string) {
	t.Helper()
	for _, name := range []string{"gatehouse.db", "gatehouse.db-wal", "gatehouse.db-shm"} {
		if err := os.Remove(filepath.Join(dataDir, name)); err != nil && !errors.Is(err, os.ErrNotExist) {
			t.Fatal(err)
		}
	}
}

// TestDeletedDatabaseFailsClosed: with its database files deleted, a
// server must not acknowledge anything it can no longer keep.
func TestDeletedDatabaseFailsClosed(t *testing.T) {
	s := start(t, "GATEHOUSE_ADMIN_PASSWORD="+lossPassword)
	w := writes{t: t, url: s.url, bearer: login(t, s.url, "admin", lossPassword)}
	victim, victimSecret := w.mintOK("victim")
	waitReadyz(t, s.url, http.StatusOK, 5*time.Second)

	removeDatabase(t, s.dataDir)
	// At once, before the monitor has noticed: the write is checked at
	// commit, so it is not acknowledged into the deleted file.
	wantUnavailable(t, map[string]answer{"mint right after deletion": w.mint("too-soon")})
	waitReadyz(t, s.url, http.StatusServiceUnavailable, 5*time.Second)
	wantUnavailable(t, map[string]answer{
		"mint":   w.mint("lost"),
		"revoke": w.revoke(victim),
		"login":  w.login(),
	})
	// A server that cannot record a revocation does not go on accepting
	// tokens from memory: every token is answered 503, not 200 and not 401.
	wantUnavailable(t, map[string]answer{
		"the victim's token":  call(t, "GET", s.url+"/api/v1/session/userinfo", victimSecret, ""),
		"the admin's session": call(t, "GET", s.url+"/api/v1/session/userinfo", w.bearer, ""),
	})
	if _, err := os.Stat(filepath.Join(s.dataDir, "gatehouse.db")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a database file appeared again: %v", err)
	}
	// The monitor's next probe says why, once.
	for start := time.Now(); !strings.Contains(s.logs.String(), "store cannot commit"); time.Sleep(50 * time.Millisecond) {
		if time.Since(start) > 5*time.Second {
			t.Fatalf("the log does not say why the server is not ready:\n%s", s.logs.String())
		}
	}
}

// TestStuckStoreIsNotReady: a store that takes the write and never
// commits (here another process holds SQLite's write lock) is as unready
// as a failing one; /readyz says so while the monitor's probe still
// waits, and recovers when the lock is released.
func TestStuckStoreIsNotReady(t *testing.T) {
	s := start(t, "GATEHOUSE_ADMIN_PASSWORD="+lossPassword)
	waitReadyz(t, s.url, http.StatusOK, 5*time.Second)

	db, err := sql.Open("sqlite", filepath.Join(s.dataDir, "gatehouse.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	conn, err := db.Conn(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(t.Context(), "BEGIN IMMEDIATE"); err != nil {
		t.Fatal(err)
	}
	waitReadyz(t, s.url, http.StatusServiceUnavailable, 5*time.Second)
	if _, err := conn.ExecContext(t.Context(), "ROLLBACK"); err != nil {
		t.Fatal(err)
	}
	waitReadyz(t, s.url, http.StatusOK, 15*time.Second)
}

// TestFullDiskFailsClosedAndRecovers: on a full disk every write answers
// 503 (it used to be 500 with /readyz 200), and once there is room again
// the server is ready and writes work, without a restart.
func TestFullDiskFailsClosedAndRecovers(t *testing.T) {
	dir := fulldisk.Mount(t, "2m")
	s := startIn(t, dir, "GATEHOUSE_ADMIN_PASSWORD="+lossPassword)
	w := writes{t: t, url: s.url, bearer: login(t, s.url, "admin", lossPassword)}
	victim, victimSecret := w.mintOK("victim")
	waitReadyz(t, s.url, http.StatusOK, 5*time.Second)

	filler := fulldisk.Fill(t, dir)
	waitReadyz(t, s.url, http.StatusServiceUnavailable, 5*time.Second)
	wantUnavailable(t, map[string]answer{
		"mint":   w.mint("no-room"),
		"revoke": w.revoke(victim),
		"login":  w.login(),
	})
	// A server that cannot record a revocation accepts no token meanwhile.
	wantUnavailable(t, map[string]answer{"the victim's token": call(t, "GET", s.url+"/api/v1/session/userinfo", victimSecret, "")})

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	waitReadyz(t, s.url, http.StatusOK, 5*time.Second)
	// The refused revoke changed nothing: the token works again, exactly
	// as the store says.
	if !works(t, s.url, victimSecret) {
		t.Error("a revoke answered 503 took effect in memory")
	}
	w.mintOK("room-again")
	if a := w.revoke(victim); a.status != http.StatusNoContent && a.status != http.StatusOK {
		t.Fatalf("revoke after freeing space: %v", a)
	}
	if works(t, s.url, victimSecret) {
		t.Error("the revoked token still works")
	}
	if a := w.login(); a.status != 200 {
		t.Errorf("login after freeing space: %v", a)
	}
}

// TestSecondServerOnTheDataDirExits: two servers on one database would
// each trust their own caches; the second one must exit at once and say
// which process holds the directory.
func TestSecondServerOnTheDataDirExits(t *testing.T) {
	s := start(t, "GATEHOUSE_ADMIN_PASSWORD="+lossPassword)
	began := time.Now()
	out, code := runToExit(t, s.dataDir)
	if code == 0 {
		t.Fatalf("the second server exited 0:\n%s", out)
	}
	if took := time.Since(began); took > 5*time.Second {
		t.Errorf("the second server took %s to give up", took)
	}
	pid := strconv.Itoa(s.cmd.Process.Pid)
	if !strings.Contains(out, "in use by another gatehouse server") || !strings.Contains(out, "PID "+pid) {
		t.Errorf("the refusal does not name the first server (PID %s):\n%s", pid, out)
	}
	// The first server is untouched.
	waitReadyz(t, s.url, http.StatusOK, 5*time.Second)
	login(t, s.url, "admin", lossPassword)
}

// TestRemovedLockFileFailsClosed: the lock is on a file, so removing the
// file lets a second server lock a new one. The first then cannot prove it
// is alone with its data: it stops answering tokens and writes (503) and
// /readyz says so, rather than serve tokens the second one revokes.
func TestRemovedLockFileFailsClosed(t *testing.T) {
	a := start(t, "GATEHOUSE_ADMIN_PASSWORD="+lossPassword)
	w := writes{t: t, url: a.url, bearer: login(t, a.url, "admin", lossPassword)}
	victim, victimSecret := w.mintOK("victim")
	if err := os.Remove(filepath.Join(a.dataDir, "gatehouse.lock")); err != nil {
		t.Fatal(err)
	}
	b := startIn(t, a.dataDir)
	waitReadyz(t, a.url, http.StatusServiceUnavailable, 5*time.Second)
	wantUnavailable(t, map[string]answer{
		"a token at the first server": call(t, "GET", a.url+"/api/v1/session/userinfo", victimSecret, ""),
		"a mint at the first server":  w.mint("after"),
	})
	// The second server revokes; the first never accepts the token again.
	wb := writes{t: t, url: b.url, bearer: login(t, b.url, "admin", lossPassword)}
	if got := wb.revoke(victim); got.status != http.StatusOK {
		t.Fatalf("revoke at the second server: %v", got)
	}
	if got := call(t, "GET", a.url+"/api/v1/session/userinfo", victimSecret, ""); got.status == http.StatusOK {
		t.Error("the first server accepts a token the second one revoked")
	}
}

// TestRestartAfterDeletionIsRefused: a data directory a server has used
// but whose database is gone is refused with what happened and how to
// start fresh; it used to get a new, empty database silently.
func TestRestartAfterDeletionIsRefused(t *testing.T) {
	for _, tc := range []struct {
		name         string
		whileRunning bool
	}{
		{"deleted under the running server", true},
		{"deleted after a clean stop", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// The admin password comes from the environment, so no
			// password file is left: the lock file alone shows the past.
			s := start(t, "GATEHOUSE_ADMIN_PASSWORD="+lossPassword)
			if tc.whileRunning {
				removeDatabase(t, s.dataDir)
			}
			if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
				t.Fatal(err)
			}
			s.cmd.Wait()
			removeDatabase(t, s.dataDir)

			out, code := runToExit(t, s.dataDir)
			if code == 0 {
				t.Fatalf("the server started again:\n%s", out)
			}
			for _, want := range []string{s.dataDir, "has no database", "deleted or moved", "move the directory away"} {
				if !strings.Contains(out, want) {
					t.Errorf("the refusal does not say %q:\n%s", want, out)
				}
			}
			if _, err := os.Stat(filepath.Join(s.dataDir, "gatehouse.db")); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("a new database was created: %v", err)
			}
		})
	}
}

// TestEmptyDataDirGetsADatabase: the refusal above is only for used
// directories; an existing empty one, or a volume with only lost+found,
// starts fresh.
func TestEmptyDataDirGetsADatabase(t *testing.T) {
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "lost+found"), 0o700); err != nil {
		t.Fatal(err)
	}
	s := startIn(t, dir, "GATEHOUSE_ADMIN_PASSWORD="+lossPassword)
	login(t, s.url, "admin", lossPassword)
}

// TestLockedStoreRefusesOnceTheLockIsLost: the SQLite store of a data
// directory whose lock file was removed answers nothing, reads included,
// without running the transaction's function: another server may have
// locked a new file and be the one whose data counts.
func TestLockedStoreRefusesOnceTheLockIsLost(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	st, closeStore, err := openStore(ctx, config.Config{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer closeStore()
	read := func(tx gatehouse.Tx) error { _, err := tx.ListAccounts(ctx); return err }
	if err := st.View(ctx, read); err != nil {
		t.Fatalf("View with the lock held: %v", err)
	}
	if err := os.Remove(filepath.Join(dir, lockFile)); err != nil {
		t.Fatal(err)
	}
	ran := false
	for name, call := range map[string]func() error{
		"Check": func() error { return st.Check(ctx) },
		"Tx":    func() error { return st.Tx(ctx, func(tx gatehouse.Tx) error { ran = true; return read(tx) }) },
		"View":  func() error { return st.View(ctx, func(tx gatehouse.Tx) error { ran = true; return read(tx) }) },
	} {
		if err := call(); !gatehouse.IsCode(err, gatehouse.EUNAVAILABLE) {
			t.Errorf("%s once the lock file is gone: %v, want unavailable", name, err)
		}
	}
	if ran {
		t.Error("a transaction function ran once the lock file was gone")
	}
}
