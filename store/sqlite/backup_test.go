package sqlite

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
)

// snapshotTo takes a snapshot of s into a file at path.
func snapshotTo(t *testing.T, s *Store, path string) {
	t.Helper()
	snap, err := s.Snapshot(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer snap.Close()
	b, err := io.ReadAll(snap)
	if err != nil {
		t.Fatal(err)
	}
	if int64(len(b)) != snap.Size() {
		t.Fatalf("snapshot: read %d bytes, Size says %d", len(b), snap.Size())
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
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

// TestSnapshotIsConsistentAndOnline: a snapshot is taken while a write
// transaction is open, without waiting for it, and holds what was
// committed before and nothing of the open transaction; its file leaves
// no name behind and is a store Verify and Open take.
func TestSnapshotIsConsistentAndOnline(t *testing.T) {
	s, path := openTemp(t)
	createAccount(t, s, "before")
	inTx, release := make(chan struct{}), make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- s.Tx(context.Background(), func(tx gatehouse.Tx) error {
			if err := tx.CreateAccount(context.Background(), gatehouse.Account{Name: "during", Enabled: true}); err != nil {
				return err
			}
			close(inTx)
			<-release
			return nil
		})
	}()
	<-inTx
	dir := filepath.Dir(path)
	before := dirNames(t, dir)
	out := filepath.Join(t.TempDir(), "snap.db")
	snapshotTo(t, s, out) // would hang here if it waited for the writer
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if after := dirNames(t, dir); !slices.Equal(before, after) {
		t.Errorf("the data directory held %v before the snapshot and %v after", before, after)
	}
	info, err := Verify(t.Context(), out)
	if err != nil {
		t.Fatalf("Verify of a snapshot: %v", err)
	}
	if info.Accounts != 1 || info.Version != info.Latest {
		t.Errorf("snapshot: %+v, want 1 account at the latest version", info)
	}
	snap, err := Open(t.Context(), out)
	if err != nil {
		t.Fatal(err)
	}
	defer snap.Close()
	var got []gatehouse.Account
	if err := snap.View(t.Context(), func(tx gatehouse.Tx) error {
		var err error
		got, err = tx.ListAccounts(t.Context())
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Name != "before" {
		t.Errorf("snapshot holds %v, want only the account committed before it", got)
	}
}

// TestSnapshotFailsClosedOnALostDatabase: a store whose file was replaced
// takes no snapshot of the file no write reaches any more.
func TestSnapshotFailsClosedOnALostDatabase(t *testing.T) {
	s, path := openTemp(t)
	if err := os.Rename(path, path+".moved"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Snapshot(t.Context()); !gatehouse.IsCode(err, gatehouse.EUNAVAILABLE) {
		t.Errorf("snapshot of a moved database: %v, want EUNAVAILABLE", err)
	}
}

// edited is a snapshot of a fresh store, changed by edit through a plain
// connection, then closed so that it stands alone.
func edited(t *testing.T, edit string) string {
	t.Helper()
	s, _ := openTemp(t)
	createAccount(t, s, "alice")
	path := filepath.Join(t.TempDir(), "edited.db")
	snapshotTo(t, s, path)
	if edit == "" {
		return path
	}
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(edit); err != nil {
		t.Fatalf("edit %q: %v", edit, err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestVerify(t *testing.T) {
	write := func(b []byte) func(t *testing.T) string {
		return func(t *testing.T) string {
			p := filepath.Join(t.TempDir(), "file.db")
			if err := os.WriteFile(p, b, 0o600); err != nil {
				t.Fatal(err)
			}
			return p
		}
	}
	latest := len(mustNames(t))
	tests := []struct {
		name    string
		file    func(t *testing.T) string
		version int    // for ok cases
		wantErr string // for fail cases
	}{
		{name: "ok/a snapshot", file: func(t *testing.T) string { return edited(t, "") }, version: latest},
		{name: "ok/a stopped server's database", file: func(t *testing.T) string {
			s, path := openTemp(t)
			createAccount(t, s, "alice")
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			return path
		}, version: latest},
		{name: "ok/an older schema version", file: func(t *testing.T) string {
			path := filepath.Join(t.TempDir(), "old.db")
			db, err := sql.Open("sqlite", dsn(path, false))
			if err != nil {
				t.Fatal(err)
			}
			if err := migrate(t.Context(), db, firstMigrations{FS: migrations, n: 5}); err != nil {
				t.Fatal(err)
			}
			db.Close()
			return path
		}, version: 5},
		{name: "fail/no such file", file: func(t *testing.T) string { return filepath.Join(t.TempDir(), "none.db") }, wantErr: "no such file"},
		{name: "fail/a directory", file: func(t *testing.T) string { return t.TempDir() }, wantErr: "not a regular file"},
		{name: "fail/an empty file", file: write(nil), wantErr: "not a SQLite database"},
		{name: "fail/not SQLite", file: write([]byte(strings.Repeat("this is a text file, not a database\n", 20))), wantErr: "not a SQLite database"},
		{name: "fail/a live database", file: func(t *testing.T) string {
			s, path := openTemp(t)
			createAccount(t, s, "alice") // the commit is in the -wal file
			return path
		}, wantErr: "gatehouse.db-wal is beside it"},
		{name: "fail/truncated", file: func(t *testing.T) string {
			path := edited(t, "")
			b, _ := os.ReadFile(path)
			return write(b[:len(b)/2])(t)
		}, wantErr: "malformed"},
		{name: "fail/another application's database", file: func(t *testing.T) string {
			path := filepath.Join(t.TempDir(), "other.db")
			db, _ := sql.Open("sqlite", "file:"+path)
			if _, err := db.Exec(`CREATE TABLE notes (body TEXT)`); err != nil {
				t.Fatal(err)
			}
			db.Close()
			return path
		}, wantErr: "no readable schema_migrations table"},
		{name: "fail/a newer schema version", file: func(t *testing.T) string {
			return edited(t, `INSERT INTO schema_migrations (version, name, applied_at) VALUES (99, '0099_future.sql', 0)`)
		}, wantErr: "out of sequence"},
		{name: "fail/the next schema version", file: func(t *testing.T) string {
			return edited(t, `INSERT INTO schema_migrations (version, name, applied_at) VALUES (`+strconv.Itoa(latest+1)+`, '9999_future.sql', 0)`)
		}, wantErr: "written by a newer gatehouse"},
		{name: "fail/a migration of another name", file: func(t *testing.T) string {
			return edited(t, `UPDATE schema_migrations SET name = '0003_other.sql' WHERE version = 3`)
		}, wantErr: `migration 3 is "0003_other.sql"`},
		{name: "fail/a trigger", file: func(t *testing.T) string {
			return edited(t, `CREATE TRIGGER copy AFTER INSERT ON tokens BEGIN INSERT INTO probe (id, n) VALUES (2, 2); END`)
		}, wantErr: "trigger copy on tokens, which Gatehouse does not make"},
		{name: "fail/a view", file: func(t *testing.T) string {
			return edited(t, `CREATE VIEW hashes AS SELECT hash FROM tokens`)
		}, wantErr: "view hashes"},
		{name: "fail/a dropped column", file: func(t *testing.T) string {
			return edited(t, `ALTER TABLE tokens DROP COLUMN last_used_from`)
		}, wantErr: "table tokens has other columns"},
		{name: "fail/a dropped index", file: func(t *testing.T) string {
			return edited(t, `DROP INDEX tokens_created_by`)
		}, wantErr: "lacks index tokens_created_by"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			file := tc.file(t)
			dir := filepath.Dir(file)
			before := dirNames(t, dir)
			info, err := Verify(t.Context(), file)
			if after := dirNames(t, dir); !slices.Equal(before, after) {
				t.Errorf("Verify changed the file's directory: %v, then %v", before, after)
			}
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("Verify: %v, want nil", err)
				}
				if info.Version != tc.version || info.Latest != latest {
					t.Errorf("Verify: %+v, want version %d of %d", info, tc.version, latest)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("Verify: %v, want an error containing %q", err, tc.wantErr)
			}
			var nb *NotABackupError
			if strings.HasPrefix(tc.name, "fail/") && tc.wantErr != "no such file" && !errors.As(err, &nb) {
				t.Errorf("Verify: %T, want *NotABackupError", err)
			}
		})
	}
}

func mustNames(t *testing.T) []string {
	t.Helper()
	n, err := migrationNames(migrations)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestReplace: the new database takes the name in one rename, the old one
// is kept as it was, logs left beside a lost database are moved beside
// the kept name, and a source that is still open, or a kept name in use,
// is refused with nothing changed.
func TestReplace(t *testing.T) {
	setup := func(t *testing.T, files map[string]string) string {
		dir := t.TempDir()
		for name, body := range files {
			if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		return dir
	}
	read := func(t *testing.T, dir string) map[string]string {
		out := map[string]string{}
		for _, n := range dirNames(t, dir) {
			b, _ := os.ReadFile(filepath.Join(dir, n))
			out[n] = string(b)
		}
		return out
	}
	tests := []struct {
		name    string
		files   map[string]string
		keep    string
		want    map[string]string
		wantErr string
	}{
		{name: "ok/over a database", files: map[string]string{"new": "B", "db": "A"}, keep: "db.old",
			want: map[string]string{"db": "B", "db.old": "A"}},
		{name: "ok/into an empty place", files: map[string]string{"new": "B"},
			want: map[string]string{"db": "B"}},
		{name: "ok/beside a lost database's log", files: map[string]string{"new": "B", "db-wal": "W", "db-shm": "S"}, keep: "db.old",
			want: map[string]string{"db": "B", "db.old-wal": "W", "db.old-shm": "S"}},
		{name: "fail/a source still open", files: map[string]string{"new": "B", "new-wal": "W", "db": "A"}, keep: "db.old",
			wantErr: "close its store first"},
		{name: "fail/no place to keep the database", files: map[string]string{"new": "B", "db": "A"},
			wantErr: "no place to keep it"},
		{name: "fail/the kept name taken", files: map[string]string{"new": "B", "db": "A", "db.old": "X"}, keep: "db.old",
			wantErr: "already exists"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := setup(t, tc.files)
			keep := ""
			if tc.keep != "" {
				keep = filepath.Join(dir, tc.keep)
			}
			err := Replace(filepath.Join(dir, "new"), filepath.Join(dir, "db"), keep)
			got := read(t, dir)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Replace: %v, want an error containing %q", err, tc.wantErr)
				}
				if !maps.Equal(got, tc.files) {
					t.Errorf("a refused Replace changed the files: %v, want %v", got, tc.files)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !maps.Equal(got, tc.want) {
				t.Errorf("files %v, want %v", got, tc.want)
			}
		})
	}
	// The kept database is the old file itself, not a copy.
	dir := setup(t, map[string]string{"new": "B", "db": "A"})
	old, _ := os.Stat(filepath.Join(dir, "db"))
	if err := Replace(filepath.Join(dir, "new"), filepath.Join(dir, "db"), filepath.Join(dir, "db.old")); err != nil {
		t.Fatal(err)
	}
	kept, _ := os.Stat(filepath.Join(dir, "db.old"))
	if !os.SameFile(old, kept) {
		t.Error("the kept database is not the replaced file")
	}
}

// masterSQL is every object of the database at path with its CREATE
// statement: the schema as SQLite enforces it, constraints included.
func masterSQL(t *testing.T, path string) map[string]string {
	t.Helper()
	db, err := sql.Open("sqlite", immutableDSN(path))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query(`SELECT type || ' ' || name, COALESCE(sql, '') FROM sqlite_master`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var name, text string
		if err := rows.Scan(&name, &text); err != nil {
			t.Fatal(err)
		}
		out[name] = text
	}
	return out
}

// fresh is the schema this binary makes: a new store's.
func fresh(t *testing.T) map[string]string {
	t.Helper()
	s, path := openTemp(t)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return masterSQL(t, path)
}

// TestRestoreRebuildsInThisBinarysSchema: the rebuilt database holds the backup's rows in exactly
// the schema this binary makes, whatever the backup's tables were made
// with (a primary key that replaces on conflict, a missing CHECK); rows
// that break this binary's constraints are refused and nothing is left;
// the audit trail's id sequence is the backup's even where its events were
// pruned; an older schema version is migrated; the backup is not written.
func TestRestoreRebuildsInThisBinarysSchema(t *testing.T) {
	want := fresh(t)
	tests := []struct {
		name    string
		backup  func(t *testing.T) string
		wantErr string
	}{
		{name: "ok/a snapshot", backup: func(t *testing.T) string { return edited(t, "") }},
		{name: "ok/a table made again with another conflict clause", backup: func(t *testing.T) string {
			return edited(t, `CREATE TABLE er AS SELECT * FROM exchange_replays;
				DROP TABLE exchange_replays;
				CREATE TABLE exchange_replays (key TEXT PRIMARY KEY ON CONFLICT REPLACE, expires_at INTEGER NOT NULL);
				INSERT INTO exchange_replays SELECT * FROM er;
				DROP TABLE er;
				CREATE INDEX exchange_replays_expires ON exchange_replays (expires_at)`)
		}},
		{name: "ok/an older schema version", backup: func(t *testing.T) string {
			path := filepath.Join(t.TempDir(), "old.db")
			db, err := sql.Open("sqlite", dsn(path, false))
			if err != nil {
				t.Fatal(err)
			}
			if err := migrate(t.Context(), db, firstMigrations{FS: migrations, n: 5}); err != nil {
				t.Fatal(err)
			}
			if _, err := db.Exec(`PRAGMA journal_mode=DELETE`); err != nil {
				t.Fatal(err)
			}
			db.Close()
			return path
		}},
		{name: "fail/rows a constraint of this binary refuses", backup: func(t *testing.T) string {
			return edited(t, `CREATE TABLE r AS SELECT * FROM rbac;
				DROP TABLE rbac;
				CREATE TABLE rbac (id INTEGER PRIMARY KEY, policy_csv TEXT NOT NULL, policy_default TEXT NOT NULL, scopes TEXT NOT NULL, match_mode TEXT NOT NULL);
				INSERT INTO rbac SELECT * FROM r;
				DROP TABLE r;
				INSERT INTO rbac VALUES (2, 'g, mallory, role:admin', '', '', '')`)
		}, wantErr: "its table rbac does not hold to Gatehouse's schema (constraint failed: CHECK constraint failed"},
		{name: "fail/not a backup", backup: func(t *testing.T) string {
			return edited(t, `CREATE TRIGGER copy AFTER INSERT ON tokens BEGIN SELECT 1; END`)
		}, wantErr: "trigger copy on tokens"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			backup := tc.backup(t)
			before, err := os.ReadFile(backup)
			if err != nil {
				t.Fatal(err)
			}
			dst := filepath.Join(t.TempDir(), "rebuilt.db")
			info, err := Rebuild(t.Context(), backup, dst)
			if after, _ := os.ReadFile(backup); string(after) != string(before) {
				t.Error("Rebuild changed the backup file")
			}
			if tc.wantErr != "" {
				var nb *NotABackupError
				if !errors.As(err, &nb) || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Rebuild: %v, want a NotABackupError containing %q", err, tc.wantErr)
				}
				if names := dirNames(t, filepath.Dir(dst)); len(names) != 0 {
					t.Errorf("a refused Rebuild left %v", names)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if names := dirNames(t, filepath.Dir(dst)); !slices.Equal(names, []string{"rebuilt.db"}) {
				t.Errorf("Rebuild left %v, want the database on its own", names)
			}
			if fi, _ := os.Stat(dst); fi.Mode().Perm() != 0o600 {
				t.Errorf("mode %v, want 0600", fi.Mode().Perm())
			}
			if got := masterSQL(t, dst); !maps.Equal(got, want) {
				for name, text := range got {
					if want[name] != text {
						t.Errorf("%s is\n  %s\nwhere this binary makes\n  %s", name, text, want[name])
					}
				}
			}
			if info.Latest != len(mustNames(t)) {
				t.Errorf("info %+v", info)
			}
			if _, err := Verify(t.Context(), dst); err != nil {
				t.Errorf("the rebuilt database: %v", err)
			}
		})
	}
}

// TestRestoreRebuildKeepsRowsAndTheEventSequence: every row comes over, and ids
// handed out before the backup (its events since pruned) are not handed
// out again.
func TestRestoreRebuildKeepsRowsAndTheEventSequence(t *testing.T) {
	s, _ := openTemp(t)
	createAccount(t, s, "alice")
	createAccount(t, s, "bob")
	evs := make([]gatehouse.Event, 30)
	for i := range evs {
		evs[i] = gatehouse.Event{Type: "test", Time: time.Unix(int64(i), 0)}
	}
	if err := s.AppendEvents(t.Context(), evs); err != nil {
		t.Fatal(err)
	}
	if err := s.Tx(t.Context(), func(tx gatehouse.Tx) error {
		_, err := tx.PruneEvents(t.Context(), time.Unix(1000, 0))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	backup := filepath.Join(t.TempDir(), "backup.db")
	snapshotTo(t, s, backup)
	dst := filepath.Join(t.TempDir(), "rebuilt.db")
	if _, err := Rebuild(t.Context(), backup, dst); err != nil {
		t.Fatal(err)
	}
	r, err := Open(t.Context(), dst)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var seq int64
	var accounts []gatehouse.Account
	if err := r.Tx(t.Context(), func(tx gatehouse.Tx) error {
		if err := tx.AppendEvents(t.Context(), []gatehouse.Event{{Type: "after"}}); err != nil {
			return err
		}
		var err error
		if accounts, err = tx.ListAccounts(t.Context()); err != nil {
			return err
		}
		seq, err = tx.(gatehouse.RestoreTx).EventSeq(t.Context())
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if seq != 31 {
		t.Errorf("the first event after the rebuild has id %d, want 31", seq)
	}
	if len(accounts) != 2 {
		t.Errorf("accounts %v, want alice and bob", accounts)
	}
}

// TestRestoreOpensTheReplacedDatabaseAsItIs: the database a restore replaces is opened without
// being created, migrated or written: a stopped server's database
// (nothing written beside it) and a live one's write-ahead log (its
// commits read) are opened read-only; what is not there, a dangling
// symbolic link, an empty file, another file and an older schema version
// are refused, and nothing is made at the link's target.
func TestRestoreOpensTheReplacedDatabaseAsItIs(t *testing.T) {
	tests := []struct {
		name     string
		path     func(t *testing.T) string
		accounts int
		wantErr  string
	}{
		{name: "ok/a stopped server's database", path: func(t *testing.T) string {
			s, path := openTemp(t)
			createAccount(t, s, "alice")
			s.Close()
			return path
		}, accounts: 1},
		{name: "ok/a database with commits in its log", path: func(t *testing.T) string {
			s, path := openTemp(t)
			createAccount(t, s, "alice")
			createAccount(t, s, "bob")
			return path // s stays open: the commits are in the -wal
		}, accounts: 2},
		{name: "fail/nothing there", path: func(t *testing.T) string { return filepath.Join(t.TempDir(), "gatehouse.db") },
			wantErr: "no such file"},
		{name: "fail/a symbolic link to nothing", path: func(t *testing.T) string {
			path := filepath.Join(t.TempDir(), "gatehouse.db")
			if err := os.Symlink(filepath.Join(t.TempDir(), "gatehouse.db"), path); err != nil {
				t.Fatal(err)
			}
			return path
		}, wantErr: "which does not exist"},
		{name: "fail/an empty file", path: func(t *testing.T) string {
			path := filepath.Join(t.TempDir(), "gatehouse.db")
			if err := os.WriteFile(path, nil, 0o600); err != nil {
				t.Fatal(err)
			}
			return path
		}, wantErr: "is empty (0 bytes)"},
		{name: "fail/not SQLite", path: func(t *testing.T) string {
			path := filepath.Join(t.TempDir(), "gatehouse.db")
			if err := os.WriteFile(path, []byte(strings.Repeat("not a database\n", 20)), 0o600); err != nil {
				t.Fatal(err)
			}
			return path
		}, wantErr: "is not a SQLite database"},
		{name: "fail/an older schema version", path: func(t *testing.T) string {
			path := filepath.Join(t.TempDir(), "gatehouse.db")
			db, err := sql.Open("sqlite", dsn(path, false))
			if err != nil {
				t.Fatal(err)
			}
			if err := migrate(t.Context(), db, firstMigrations{FS: migrations, n: 5}); err != nil {
				t.Fatal(err)
			}
			db.Close()
			return path
		}, wantErr: "is at schema version 5"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := tc.path(t)
			dir := filepath.Dir(path)
			before := dirState(t, dir)
			s, err := OpenExisting(t.Context(), path)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("OpenExisting: %v, want an error containing %q", err, tc.wantErr)
				}
				if target, err := os.Readlink(path); err == nil {
					if _, err := os.Lstat(target); err == nil {
						t.Error("OpenExisting made the link's target")
					}
				}
			} else {
				if err != nil {
					t.Fatal(err)
				}
				var n int
				if err := s.View(t.Context(), func(tx gatehouse.Tx) error {
					a, err := tx.ListAccounts(t.Context())
					n = len(a)
					return err
				}); err != nil {
					t.Fatal(err)
				}
				if n != tc.accounts {
					t.Errorf("%d accounts, want %d", n, tc.accounts)
				}
				if err := s.Tx(t.Context(), func(tx gatehouse.Tx) error {
					return tx.CreateAccount(t.Context(), gatehouse.Account{Name: "mallory", Enabled: true})
				}); err == nil {
					t.Error("a write through the store opened read-only succeeded")
				}
				if err := s.Close(); err != nil {
					t.Fatal(err)
				}
			}
			if tc.name == "ok/a database with commits in its log" {
				return // its own store writes beside it
			}
			if after := dirState(t, dir); !maps.Equal(before, after) {
				t.Errorf("the directory held %v, then %v", before, after)
			}
		})
	}
}

// dirState is every name in dir with its content's digest ("" for a
// link or a directory).
func dirState(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, name := range dirNames(t, dir) {
		b, _ := os.ReadFile(filepath.Join(dir, name))
		out[name] = fmt.Sprintf("%x", sha256.Sum256(b))
	}
	return out
}

// TestBackupSnapshotNeedsFreeSpace: with less free space beside the database
// than a copy and its margin need, a snapshot is refused, EUNAVAILABLE
// with a message that says so, before anything is written.
func TestBackupSnapshotNeedsFreeSpace(t *testing.T) {
	s, path := openTemp(t)
	createAccount(t, s, "alice")
	before := dirNames(t, filepath.Dir(path))
	s.freeSpace = func(string) (uint64, error) { return 10 << 20, nil }
	_, err := s.Snapshot(t.Context())
	if !gatehouse.IsCode(err, gatehouse.EUNAVAILABLE) || !strings.Contains(gatehouse.ErrorMessage(err), "not enough free space in the server's data directory for a backup") {
		t.Fatalf("snapshot on a full disk: %v, want EUNAVAILABLE saying so", err)
	}
	if after := dirNames(t, filepath.Dir(path)); !slices.Equal(before, after) {
		t.Errorf("the refused snapshot left %v (was %v)", after, before)
	}
	s.freeSpace = func(string) (uint64, error) { return 1 << 40, nil }
	snap, err := s.Snapshot(t.Context())
	if err != nil {
		t.Fatalf("snapshot with room: %v", err)
	}
	snap.Close()
}

// TestBackupStaleSnapshotsRemoved: the files a snapshot that died left beside
// the database go, and nothing else does, not even a file of a similar
// name an operator made.
func TestBackupStaleSnapshotsRemoved(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "gatehouse.db")
	for _, name := range []string{"gatehouse.db", ".gatehouse.db.snapshot-123.tmp", ".gatehouse.db.snapshot-456.tmp", "gatehouse.db.snapshot-mine", ".other.db.snapshot-1.tmp"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	removed, err := RemoveStaleSnapshots(db)
	if err != nil {
		t.Fatal(err)
	}
	if len(removed) != 2 {
		t.Errorf("removed %v, want the two stale snapshots", removed)
	}
	if got, want := dirNames(t, dir), []string{".other.db.snapshot-1.tmp", "gatehouse.db", "gatehouse.db.snapshot-mine"}; !slices.Equal(got, want) {
		t.Errorf("left %v, want %v", got, want)
	}
	// A snapshot taken now names its file so.
	s, _ := openTemp(t)
	snap, err := s.Snapshot(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer snap.Close()
	if base := filepath.Base(snap.(snapshotFile).Name()); !strings.HasPrefix(base, ".gatehouse.db.snapshot-") || !strings.HasSuffix(base, ".tmp") {
		t.Errorf("a snapshot's file is named %s", base)
	}
}
