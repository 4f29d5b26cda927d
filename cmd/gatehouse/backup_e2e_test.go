package main

import (
	"crypto/sha256"
	"database/sql"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/config"
	"github.com/gatehouse/gatehouse/service"
	"github.com/gatehouse/gatehouse/store/sqlite"
	"github.com/gatehouse/gatehouse/store/storetest/pgtest"
)

// stopServer stops a server as an operator does before a restore, and
// waits until it has let go of its data directory.
func stopServer(t *testing.T, s *proc) {
	t.Helper()
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	s.cmd.Wait()
}

// mintFor mints a token for account through the CLI; it returns the
// token and its id.
func mintFor(t *testing.T, u *cliUser, account, name string) (string, string) {
	t.Helper()
	tok, parsed := onlyToken(t, ok(t, u.run(t, "account", "generate-token", "-a", account, "--name", name)))
	return tok, parsed.ID.String()
}

// dirState is every file of a directory with its content's digest.
func dirState(t *testing.T, dir string) map[string][32]byte {
	t.Helper()
	out := map[string][32]byte{}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		b, _ := os.ReadFile(filepath.Join(dir, e.Name()))
		out[e.Name()] = sha256.Sum256(b)
	}
	return out
}

// TestCLIBackupRestoreRoundTrip: a backup taken with the CLI from the
// running server; afterwards a token is revoked and an account disabled;
// the restore is refused while the server runs, and once it is stopped it
// restores the data directory offline. On the server started again,
// every token that worked before the backup and was not revoked since
// works, every token revoked before or after it is refused, the account
// disabled after it stays disabled, and the audit trail records it all.
func TestCLIBackupRestoreRoundTrip(t *testing.T) {
	t.Parallel()
	s, admin := loggedIn(t)
	ok(t, admin.run(t, "account", "create", "ci", "--capabilities", "apiKey"))
	ok(t, admin.run(t, "account", "create", "bot", "--capabilities", "apiKey"))
	keep, _ := mintFor(t, admin, "ci", "keep")
	before, beforeID := mintFor(t, admin, "ci", "revoked before")
	after, afterID := mintFor(t, admin, "ci", "revoked after")
	bots, _ := mintFor(t, admin, "bot", "bot's")
	ok(t, admin.run(t, "account", "delete-token", beforeID, "-a", "ci"))

	backup := filepath.Join(t.TempDir(), "gatehouse-backup.db")
	out := ok(t, admin.run(t, "admin", "backup", backup))
	if !strings.HasPrefix(out, "backup written to "+backup+" (") {
		t.Errorf("backup printed %q", out)
	}
	if fi, err := os.Stat(backup); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("backup file: %v %v, want mode 0600", fi, err)
	}

	ok(t, admin.run(t, "account", "delete-token", afterID, "-a", "ci"))
	ok(t, admin.run(t, "account", "disable", "bot"))
	newer, _ := mintFor(t, admin, "ci", "made after the backup")
	session := sessionToken(t, admin)

	// Not while the server runs.
	running := dirState(t, s.dataDir)
	fails(t, admin.run(t, "admin", "restore", backup, "--data-dir", s.dataDir), "is in use by a running gatehouse server", "stop it first")
	if got := dirState(t, s.dataDir); len(got) != len(running) {
		t.Errorf("a refused restore changed the data directory: %v, then %v", keys(running), keys(got))
	}

	stopServer(t, s)
	b, err := os.ReadFile(backup)
	if err != nil {
		t.Fatal(err)
	}
	out = ok(t, admin.run(t, "admin", "restore", backup, "--data-dir", s.dataDir))
	for _, want := range []string{
		"restored " + filepath.Join(s.dataDir, "gatehouse.db") + " from " + backup + fmt.Sprintf(" (sha256 %x, ", sha256.Sum256(b)),
		"the backup is the one admin took at ",
		"the replaced database is kept as " + filepath.Join(s.dataDir, "gatehouse.db.replaced-"),
		"carried from the replaced database, so that no revocation is undone:",
		"      2 tokens revoked after the backup", // revoked after, and bot's (disabled)
		"      1 of those, disabled since",
		"      1 unexpired tokens, which no longer work",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("restore output lacks %q:\n%s", want, out)
		}
	}
	kept, _ := filepath.Glob(filepath.Join(s.dataDir, "gatehouse.db.replaced-*"))
	if len(kept) != 1 {
		t.Errorf("kept databases: %v, want one", kept)
	}

	s2 := startIn(t, s.dataDir, "GATEHOUSE_ADMIN_PASSWORD="+e2eAdminPassword)
	for _, c := range []struct {
		name, tok string
		want      int
	}{
		{"worked before the backup, not revoked since", keep, 200},
		{"the admin's session", session, 200},
		{"revoked before the backup", before, 401},
		{"revoked after the backup", after, 401},
		{"of the account disabled after the backup", bots, 401},
		{"made after the backup", newer, 401},
	} {
		if got := userinfoStatus(t, s2, c.tok); got != c.want {
			t.Errorf("%s: %d, want %d", c.name, got, c.want)
		}
	}
	again := withToken(t, s2, session)
	bot := decodeStrict[gatehouse.Account](t, again.run(t, "account", "get", "-a", "bot", "-o", "json"))
	if bot.Enabled {
		t.Error("bot, disabled after the backup, is enabled again")
	}
	events := decodeStrict[[]gatehouse.Event](t, again.run(t, "audit", "list", "--type", "store.restored", "-o", "json"))
	if len(events) != 1 || events[0].Actor != "restore" || !strings.Contains(events[0].Detail, "from gatehouse-backup.db") {
		t.Errorf("store.restored events: %+v", events)
	}
	backups := decodeStrict[[]gatehouse.Event](t, again.run(t, "audit", "list", "--type", "store.backup", "-o", "json"))
	if len(backups) != 1 || !strings.Contains(backups[0].Detail, fmt.Sprintf("sha256 %x", sha256.Sum256(b))) {
		// The backup's own event came after its snapshot: the restore
		// carries it from the replaced database, so that the file can
		// be restored again.
		t.Errorf("store.backup events in the restored store: %+v", backups)
	}
	noSecrets(t, out, []string{keep, before, after, bots, newer, session})
	if strings.Contains(out, e2eAdminPassword) {
		t.Error("the restore printed the admin password")
	}
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// TestCLIRestoreIntoAnEmptyDataDir: with no database to carry revocations
// from, the restore warns, prominently, that revocations after the backup
// cannot be known and says what to do; the backup's tokens work, a token
// revoked after the backup among them.
func TestCLIRestoreIntoAnEmptyDataDir(t *testing.T) {
	t.Parallel()
	s, admin := loggedIn(t)
	ok(t, admin.run(t, "account", "create", "ci", "--capabilities", "apiKey"))
	keep, _ := mintFor(t, admin, "ci", "keep")
	after, afterID := mintFor(t, admin, "ci", "revoked after")
	backup := filepath.Join(t.TempDir(), "backup.db")
	ok(t, admin.run(t, "admin", "backup", backup))
	ok(t, admin.run(t, "account", "delete-token", afterID, "-a", "ci"))

	fresh := filepath.Join(t.TempDir(), "new-data")
	res := admin.run(t, "admin", "restore", backup, "--data-dir", fresh)
	if res.code != 0 {
		t.Fatalf("restore into an empty directory: exit %d, stderr %s", res.code, res.stderr)
	}
	for _, want := range []string{"WARNING:", "cannot know what was revoked after the backup was taken",
		"a subject token exchanged after the backup can be exchanged again until it\nexpires",
		"gatehouse admin revoke --account NAME --yes", "gatehouse admin revoke --issued-before "} {
		if !strings.Contains(res.stderr, want) {
			t.Errorf("the warning lacks %q:\n%s", want, res.stderr)
		}
	}
	if strings.Contains(res.stdout, "carried") {
		t.Errorf("restore claims to have carried something:\n%s", res.stdout)
	}
	if fi, err := os.Stat(fresh); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("new data directory: %v %v, want mode 0700", fi, err)
	}
	s2 := startIn(t, fresh, "GATEHOUSE_ADMIN_PASSWORD="+e2eAdminPassword)
	if got := userinfoStatus(t, s2, keep); got != 200 {
		t.Errorf("a token of the backup: %d, want 200", got)
	}
	if got := userinfoStatus(t, s2, after); got != 200 {
		t.Errorf("a token revoked after the backup, which the empty directory could not know of: %d, want 200 (as the warning says)", got)
	}
	if got := userinfoStatus(t, s, after); got != 401 {
		t.Errorf("the old server: %d, want 401", got)
	}
}

// TestCLIRestoreRefusesABadFile: a file that is not a Gatehouse store, or
// a damaged one, is refused with a clear message and nothing changes: not
// the data directory's database, and no directory is made.
func TestCLIRestoreRefusesABadFile(t *testing.T) {
	t.Parallel()
	s, admin := loggedIn(t)
	backup := filepath.Join(t.TempDir(), "backup.db")
	ok(t, admin.run(t, "admin", "backup", backup))
	stopServer(t, s)
	b, err := os.ReadFile(backup)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	bad := map[string][]byte{
		"notes.txt":     []byte(strings.Repeat("these are not the droids\n", 10)),
		"truncated.db":  b[:len(b)/2],
		"empty-file.db": {},
	}
	for name, body := range bad {
		if err := os.WriteFile(filepath.Join(dir, name), body, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	before := dirState(t, s.dataDir)
	for _, name := range []string{"notes.txt", "truncated.db", "empty-file.db", "missing.db"} {
		file := filepath.Join(dir, name)
		want := "is not a Gatehouse backup that this binary can restore"
		if name == "missing.db" {
			want = "no such file"
		}
		fails(t, admin.run(t, "admin", "restore", file, "--data-dir", s.dataDir), want)
		nowhere := filepath.Join(t.TempDir(), "nowhere")
		fails(t, admin.run(t, "admin", "restore", file, "--data-dir", nowhere), want)
		if _, err := os.Stat(nowhere); err == nil {
			t.Errorf("%s: a refused restore made the data directory", name)
		}
	}
	if after := dirState(t, s.dataDir); !mapsEqual(before, after) {
		t.Errorf("a refused restore changed the data directory: %v, then %v", keys(before), keys(after))
	}
	// The configuration of a PostgreSQL server is refused too.
	fails(t, admin.with("GATEHOUSE_DATABASE_URL=postgres://gatehouse@db.invalid/gatehouse").run(t, "admin", "restore", backup),
		"pg_restore")
}

func mapsEqual[V comparable](a, b map[string]V) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// TestCLIResetAdminPassword: refused while the server runs; offline it
// takes the new password from standard input, under the API's rules; the
// server started again logs the admin in with it and not with the old one,
// and refuses the admin's old session. The password is never printed.
func TestCLIResetAdminPassword(t *testing.T) {
	t.Parallel()
	s, admin := loggedIn(t)
	session := sessionToken(t, admin)
	const fresh = "a-brand-new-admin-password"
	reset := []string{"admin", "reset-admin-password", "--data-dir", s.dataDir, "--password-stdin"}

	fails(t, admin.runWithInput(t, fresh+"\n", reset...), "is in use by a running gatehouse server", "stop it first")
	stopServer(t, s)
	fails(t, admin.runWithInput(t, "short\n", reset...), "8 to 72 bytes")
	fails(t, admin.runWithInput(t, "", reset...), "no password on standard input")
	fails(t, admin.runWithInput(t, fresh+"\n", "admin", "reset-admin-password", "--data-dir", s.dataDir), "not a terminal", "--password-stdin")
	fails(t, admin.runWithInput(t, fresh+"\n", "admin", "reset-admin-password", "--data-dir", filepath.Join(t.TempDir(), "none"), "--password-stdin"),
		"holds no Gatehouse database")
	res := admin.runWithInput(t, fresh+"\n", reset...)
	out := ok(t, res)
	if !strings.Contains(out, "admin password reset in "+filepath.Join(s.dataDir, "gatehouse.db")+"; 1 session(s) revoked") {
		t.Errorf("reset printed %q", out)
	}
	if strings.Contains(res.stdout+res.stderr, fresh) {
		t.Error("the reset printed the password")
	}

	s2 := startIn(t, s.dataDir, "GATEHOUSE_ADMIN_PASSWORD=ignored-once-the-account-exists")
	if got := userinfoStatus(t, s2, session); got != http.StatusUnauthorized {
		t.Errorf("the admin's session from before the reset: %d, want 401", got)
	}
	tok := login(t, s2.url, "admin", fresh)
	if got := userinfoStatus(t, s2, tok); got != 200 {
		t.Errorf("a session with the new password: %d", got)
	}
	r := call(t, "POST", s2.url+"/api/v1/session", "", `{"username":"admin","password":"`+e2eAdminPassword+`"}`)
	if r.status != http.StatusUnauthorized {
		t.Errorf("the old password: %d, want 401", r.status)
	}
	if strings.Contains(s2.logs.String(), fresh) {
		t.Error("the server's log holds the new password")
	}
	events := decodeStrict[[]gatehouse.Event](t, withToken(t, s2, tok).run(t, "audit", "list", "--actor", "reset-admin-password", "-o", "json"))
	if !slices.ContainsFunc(events, func(e gatehouse.Event) bool {
		return e.Type == gatehouse.EventAccountChanged && e.Account == "admin" && strings.Contains(e.Detail, "password reset offline")
	}) {
		t.Errorf("no audit event of the reset: %+v", events)
	}
}

// TestCLIBackupOnPostgreSQL: the API backs up only the embedded store; a
// server on PostgreSQL answers with the documented error, naming pg_dump,
// and no file is written. The documented pg_dump and pg_restore commands
// then copy the database to a new one on which a server accepts the
// tokens.
func TestCLIBackupOnPostgreSQL(t *testing.T) {
	t.Parallel()
	pg, url := replicaPostgres(t)
	s := startWith(t, filepath.Join(t.TempDir(), "data"), []string{"--database-url", url}, "GATEHOUSE_ADMIN_PASSWORD="+e2eAdminPassword)
	admin := newCLIUser(t)
	ok(t, admin.runWithInput(t, e2eAdminPassword+"\n", "login", s.url, "--username", "admin"))
	ok(t, admin.run(t, "account", "create", "ci", "--capabilities", "apiKey"))
	keep, _ := mintFor(t, admin, "ci", "keep")

	dir := t.TempDir()
	fails(t, admin.run(t, "admin", "backup", filepath.Join(dir, "b.db")), "PostgreSQL", "pg_dump")
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("a refused backup left %v", entries)
	}

	// docs/operations.md, "Backup and restore": the same commands.
	bin := os.Getenv("GATEHOUSE_TEST_POSTGRES_BIN")
	if bin == "" {
		bin = pgtest.DefaultBin
	}
	dump := filepath.Join(dir, "gatehouse.dump")
	if out, err := exec.Command(filepath.Join(bin, "pg_dump"), "--format=custom", "--file="+dump, url).CombinedOutput(); err != nil {
		t.Fatalf("pg_dump: %v\n%s", err, out)
	}
	target := pg.Database(t)
	if out, err := exec.Command(filepath.Join(bin, "pg_restore"), "--no-owner", "--exit-on-error", "--dbname="+target, dump).CombinedOutput(); err != nil {
		t.Fatalf("pg_restore: %v\n%s", err, out)
	}
	stopServer(t, s)
	s2 := startWith(t, filepath.Join(t.TempDir(), "data"), []string{"--database-url", target}, "GATEHOUSE_ADMIN_PASSWORD="+e2eAdminPassword)
	if got := userinfoStatus(t, s2, keep); got != 200 {
		t.Errorf("a token on the restored database: %d, want 200", got)
	}

	// A lost admin password on PostgreSQL: reset with the replica running;
	// it applies the change from the database's change feed.
	session := sessionToken(t, admin)
	const fresh = "a-new-postgres-admin-password"
	out := ok(t, admin.runWithInput(t, fresh+"\n", "admin", "reset-admin-password", "--database-url", target, "--password-stdin"))
	if !strings.Contains(out, "admin password reset in the PostgreSQL database; 1 session(s) revoked") {
		t.Errorf("reset printed %q", out)
	}
	deadline := time.Now().Add(10 * time.Second)
	for call(t, "POST", s2.url+"/api/v1/session", "", `{"username":"admin","password":"`+fresh+`"}`).status != 200 {
		if time.Now().After(deadline) {
			t.Fatal("the replica does not take the new admin password")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if got := userinfoStatus(t, s2, session); got != http.StatusUnauthorized {
		t.Errorf("the admin's session from before the reset: %d, want 401", got)
	}
}

// dataDir is a data directory as a stopped server leaves it, built in
// this process: admin with a session and an API token, mallory with an
// API token, and a backup the server recorded handing out.
type dataDir struct {
	dir, backup                   string
	adminSession, adminKey, malls string
}

func newDataDir(t *testing.T) dataDir {
	t.Helper()
	ctx := t.Context()
	d := dataDir{dir: t.TempDir()}
	unlock, _, _, err := lockDataDir(d.dir)
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	st, err := sqlite.Open(ctx, filepath.Join(d.dir, dbFile))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	svc, err := service.New(ctx, service.Options{Store: st, BcryptCost: 10})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Bootstrap(ctx, e2eAdminPassword); err != nil {
		t.Fatal(err)
	}
	nt, err := svc.Login(ctx, "admin", e2eAdminPassword, "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	d.adminSession = nt.Token
	admin, err := svc.Authenticate(ctx, nt.Token)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.CreateAccount(ctx, admin, gatehouse.AccountCreate{Name: "mallory", Capabilities: []gatehouse.Capability{gatehouse.CapAPIKey}}); err != nil {
		t.Fatal(err)
	}
	for owner, tok := range map[string]*string{"admin": &d.adminKey, "mallory": &d.malls} {
		nt, err := svc.CreateToken(ctx, admin, owner, gatehouse.TokenRequest{Name: "laptop"})
		if err != nil {
			t.Fatal(err)
		}
		*tok = nt.Token
	}
	b, err := svc.Backup(ctx, admin, "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	d.backup = filepath.Join(t.TempDir(), "backup.db")
	f, err := os.OpenFile(d.backup, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(f, b); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return d
}

// serviceOn is a service on the data directory's database, as a server
// starting on it builds one; the store closes with the test.
func serviceOn(t *testing.T, dir string) *service.Service {
	t.Helper()
	st, err := sqlite.Open(t.Context(), filepath.Join(dir, dbFile))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	svc, err := service.New(t.Context(), service.Options{Store: st, BcryptCost: 10})
	if err != nil {
		t.Fatal(err)
	}
	return svc
}

func quietLog() *slog.Logger { return slog.New(slog.DiscardHandler) }

// TestCLIRestoreRefusesAnEditedBackup: a backup edited after it was
// taken (its policy makes mallory admin) is not one the data directory's
// database recorded: the restore refuses it, naming its SHA-256 and
// --unrecorded, and changes nothing. With --unrecorded it warns, loudly,
// and mallory is still not admin: the replaced database's policy is.
func TestCLIRestoreRefusesAnEditedBackup(t *testing.T) {
	d := newDataDir(t)
	db, err := sql.Open("sqlite", "file:"+d.backup)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{`UPDATE rbac SET policy_csv = policy_csv || char(10) || 'g, mallory, role:admin'`, `PRAGMA journal_mode=DELETE`} {
		if _, err := db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()
	b, err := os.ReadFile(d.backup)
	if err != nil {
		t.Fatal(err)
	}
	sum := fmt.Sprintf("%x", sha256.Sum256(b))
	cfg := config.Default()
	cfg.DataDir = d.dir

	before, _ := os.ReadFile(filepath.Join(d.dir, dbFile))
	_, err = restoreDataDir(t.Context(), cfg, d.backup, false, time.Now(), quietLog())
	if err == nil || !strings.Contains(err.Error(), sum) || !strings.Contains(err.Error(), "--unrecorded") {
		t.Fatalf("restore of an edited backup: %v, want a refusal naming its SHA-256 and --unrecorded", err)
	}
	if after, _ := os.ReadFile(filepath.Join(d.dir, dbFile)); string(after) != string(before) {
		t.Error("the refused restore changed the database")
	}
	if names := dirNames(t, d.dir); !slices.Equal(names, []string{dbFile, lockFile}) {
		t.Errorf("the refused restore left %v", names)
	}

	res, err := restoreDataDir(t.Context(), cfg, d.backup, true, time.Now(), quietLog())
	if err != nil {
		t.Fatal(err)
	}
	var stdout, stderr strings.Builder
	res.print(&stdout, &stderr, d.backup)
	if !strings.Contains(stdout.String(), "(sha256 "+sum+", ") {
		t.Errorf("the restore does not print the file's SHA-256:\n%s", stdout.String())
	}
	if !strings.Contains(stderr.String(), "WARNING: the replaced database has no record of handing out") {
		t.Errorf("no warning of an unrecorded file:\n%s", stderr.String())
	}
	svc := serviceOn(t, d.dir)
	p, err := svc.Authenticate(t.Context(), d.malls)
	if err != nil {
		t.Fatal(err)
	}
	if svc.Authorize(p, "settings", "update", "*") == nil {
		t.Error("mallory is admin after restoring a backup whose policy was edited")
	}
}

func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		out = append(out, e.Name())
	}
	return out
}

// TestCLIRestoreRefusesAnUnreadableDatabase: a data directory whose
// database is a symbolic link to nothing (a volume not mounted) or an
// empty file is refused, with what to do, never taken for a directory
// without one: nothing is made at the link's target and nothing changes.
func TestCLIRestoreRefusesAnUnreadableDatabase(t *testing.T) {
	for _, tc := range []struct {
		name    string
		breakIt func(t *testing.T, db string) (target string)
		want    string
	}{
		{"fail/a symbolic link to nothing", func(t *testing.T, db string) string {
			if err := os.Rename(db, filepath.Join(t.TempDir(), "elsewhere.db")); err != nil {
				t.Fatal(err)
			}
			target := filepath.Join(t.TempDir(), dbFile)
			if err := os.Symlink(target, db); err != nil {
				t.Fatal(err)
			}
			return target
		}, "which does not exist"},
		{"fail/an empty file", func(t *testing.T, db string) string {
			if err := os.Truncate(db, 0); err != nil {
				t.Fatal(err)
			}
			return ""
		}, "is empty (0 bytes)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := newDataDir(t)
			db := filepath.Join(d.dir, dbFile)
			target := tc.breakIt(t, db)
			before := dirNames(t, d.dir)
			cfg := config.Default()
			cfg.DataDir = d.dir
			_, err := restoreDataDir(t.Context(), cfg, d.backup, false, time.Now(), quietLog())
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "nothing was changed") {
				t.Fatalf("restore: %v, want a refusal containing %q", err, tc.want)
			}
			if target != "" {
				if _, err := os.Lstat(target); err == nil {
					t.Error("the restore made a database at the link's target")
				}
			}
			if after := dirNames(t, d.dir); !slices.Equal(before, after) {
				t.Errorf("the data directory held %v, then %v", before, after)
			}
			if fi, err := os.Lstat(db); err != nil || (tc.name == "fail/an empty file" && fi.Size() != 0) {
				t.Errorf("the database: %v %v, want it as it was", fi, err)
			}
		})
	}
}

// TestBackupStaleFilesRemovedAtServerStart: what a backup or a restore
// that died left in the data directory is removed when a server starts
// there, and nothing else is.
func TestBackupStaleFilesRemovedAtServerStart(t *testing.T) {
	d := newDataDir(t)
	for _, name := range []string{".gatehouse.db.snapshot-1.tmp", ".gatehouse.db.restore-2.tmp", ".gatehouse.db.restore-2.new.tmp", "gatehouse.db.snapshot-mine"} {
		if err := os.WriteFile(filepath.Join(d.dir, name), []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	_, closeStore, err := openStore(t.Context(), config.Config{DataDir: d.dir})
	if err != nil {
		t.Fatal(err)
	}
	closeStore()
	if got, want := dirNames(t, d.dir), []string{dbFile, "gatehouse.db.snapshot-mine", lockFile}; !slices.Equal(got, want) {
		t.Errorf("the data directory holds %v, want %v", got, want)
	}
}

// TestCLIResetAdminPasswordRevokingAPITokens: the reset says how many of
// the admin account's API tokens still work; with --revoke-api-tokens it
// revokes them, and the next start refuses them.
func TestCLIResetAdminPasswordRevokingAPITokens(t *testing.T) {
	d := newDataDir(t)
	reset := func(extra ...string) string {
		t.Helper()
		cmd := newResetAdminPasswordCommand()
		var out strings.Builder
		cmd.SetArgs(append([]string{"--data-dir", d.dir, "--password-stdin"}, extra...))
		cmd.SetIn(strings.NewReader("a-brand-new-admin-password\n"))
		cmd.SetOut(&out)
		cmd.SetErr(&out)
		if err := cmd.ExecuteContext(t.Context()); err != nil {
			t.Fatalf("reset-admin-password %v: %v", extra, err)
		}
		return out.String()
	}
	out := reset()
	if !strings.Contains(out, "the admin account still has 1 API token(s) that work") || !strings.Contains(out, "--revoke-api-tokens") {
		t.Errorf("reset printed %q", out)
	}
	if _, err := serviceOn(t, d.dir).Authenticate(t.Context(), d.adminKey); err != nil {
		t.Fatalf("the admin's API token after a plain reset: %v", err)
	}
	out = reset("--revoke-api-tokens")
	if !strings.Contains(out, "0 session(s) revoked, 1 API token(s) revoked") || strings.Contains(out, "still has") {
		t.Errorf("reset --revoke-api-tokens printed %q", out)
	}
	svc := serviceOn(t, d.dir)
	if _, err := svc.Authenticate(t.Context(), d.adminKey); err == nil {
		t.Error("the admin's API token works after reset --revoke-api-tokens")
	}
	if _, err := svc.Authenticate(t.Context(), d.malls); err != nil {
		t.Errorf("another account's token after the reset: %v", err)
	}
}
