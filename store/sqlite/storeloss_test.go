package sqlite

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"modernc.org/sqlite"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/internal/fulldisk"
)

// wantUnavailable fails the test unless err is EUNAVAILABLE with the safe
// message and a cause kept for the log.
func wantUnavailable(t *testing.T, what string, err error) {
	t.Helper()
	if got := gatehouse.ErrorCode(err); got != gatehouse.EUNAVAILABLE {
		t.Errorf("%s: got %v (code %q), want code %q", what, err, got, gatehouse.EUNAVAILABLE)
		return
	}
	if got, want := gatehouse.ErrorMessage(err), "store unavailable"; got != want {
		t.Errorf("%s: message %q, want %q", what, got, want)
	}
	if errors.Unwrap(err) == nil {
		t.Errorf("%s: %v has no cause for the log", what, err)
	}
}

// writes returns every kind of write the store offers, each as one call.
func writes(s *Store) map[string]func(ctx context.Context) error {
	return map[string]func(ctx context.Context) error{
		"Ping": s.Ping,
		"Tx": func(ctx context.Context) error {
			return s.Tx(ctx, func(tx gatehouse.Tx) error {
				return tx.CreateAccount(ctx, gatehouse.Account{Name: "after", Enabled: true, CreatedAt: time.Now()})
			})
		},
		"AppendEvents": func(ctx context.Context) error {
			return s.AppendEvents(ctx, []gatehouse.Event{{Type: gatehouse.EventRequest, Time: time.Now()}})
		},
		"TouchTokens": func(ctx context.Context) error {
			return s.TouchTokens(ctx, []gatehouse.TokenUse{{ID: "x", At: time.Now()}})
		},
	}
}

func accountNames(t *testing.T, s *Store) []string {
	t.Helper()
	var names []string
	err := s.Tx(t.Context(), func(tx gatehouse.Tx) error {
		as, err := tx.ListAccounts(t.Context())
		for _, a := range as {
			names = append(names, a.Name)
		}
		return err
	})
	if err != nil {
		t.Fatalf("ListAccounts: %v", err)
	}
	return names
}

func createAccount(t *testing.T, s *Store, name string) {
	t.Helper()
	err := s.Tx(t.Context(), func(tx gatehouse.Tx) error {
		return tx.CreateAccount(t.Context(), gatehouse.Account{Name: name, Enabled: true, CreatedAt: time.Now()})
	})
	if err != nil {
		t.Fatalf("CreateAccount %s: %v", name, err)
	}
}

// replace puts a copy of the file at path in its place: same content,
// another inode, as a restore from backup under a running server does.
func replace(t *testing.T, path string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path+".new", b, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(path+".new", path); err != nil {
		t.Fatal(err)
	}
}

func remove(t *testing.T, paths ...string) {
	t.Helper()
	for _, p := range paths {
		if err := os.Remove(p); err != nil {
			t.Fatal(err)
		}
	}
}

// TestLostFilesFailEveryWrite: once the database file or its WAL is
// deleted or replaced under the store, SQLite would go on committing into
// the old, unreachable files; the store refuses instead.
func TestLostFilesFailEveryWrite(t *testing.T) {
	for _, tc := range []struct {
		name string
		lose func(t *testing.T, path string)
	}{
		{"database deleted", func(t *testing.T, p string) { remove(t, p) }},
		{"WAL deleted", func(t *testing.T, p string) { remove(t, p+"-wal") }},
		{"all files deleted", func(t *testing.T, p string) { remove(t, p, p+"-wal", p+"-shm") }},
		{"database replaced", func(t *testing.T, p string) { replace(t, p) }},
		{"WAL replaced", func(t *testing.T, p string) { replace(t, p+"-wal") }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, path := openTemp(t)
			createAccount(t, s, "before")
			if err := s.Check(t.Context()); err != nil {
				t.Fatalf("Check before: %v", err)
			}
			tc.lose(t, path)
			wantUnavailable(t, "Check", s.Check(t.Context()))
			for name, write := range writes(s) {
				wantUnavailable(t, name, write(t.Context()))
			}
			// A read in a transaction is refused too: what it would read
			// is no longer what the server's state is.
			err := s.Tx(t.Context(), func(tx gatehouse.Tx) error {
				_, err := tx.ListAccounts(t.Context())
				return err
			})
			wantUnavailable(t, "read Tx", err)
			ran := false
			err = s.View(t.Context(), func(tx gatehouse.Tx) error {
				ran = true
				_, err := tx.ListAccounts(t.Context())
				return err
			})
			wantUnavailable(t, "View", err)
			if ran {
				t.Errorf("View ran its function on lost files")
			}
		})
	}
}

// TestFilesLostDuringViewAreReported: a View whose files are lost while it
// reads reports EUNAVAILABLE, not what it read.
func TestFilesLostDuringViewAreReported(t *testing.T) {
	s, path := openTemp(t)
	createAccount(t, s, "before")
	err := s.View(t.Context(), func(tx gatehouse.Tx) error {
		if _, err := tx.ListAccounts(t.Context()); err != nil {
			return err
		}
		replace(t, path)
		return nil
	})
	wantUnavailable(t, "View", err)
}

// TestWriteWhileMovedAwayIsNotCommitted: a write refused because the files
// are gone changes nothing, seen once they are back.
func TestWriteWhileMovedAwayIsNotCommitted(t *testing.T) {
	s, path := openTemp(t)
	createAccount(t, s, "before")
	move := func(from, to string) {
		t.Helper()
		for _, suffix := range []string{"", "-wal", "-shm"} {
			if err := os.Rename(from+suffix, to+suffix); err != nil {
				t.Fatal(err)
			}
		}
	}
	move(path, path+".away")
	for name, write := range writes(s) {
		wantUnavailable(t, name, write(t.Context()))
	}
	move(path+".away", path)
	if err := s.Check(t.Context()); err != nil {
		t.Fatalf("Check with the files back: %v", err)
	}
	if got, want := strings.Join(accountNames(t, s), ","), "before"; got != want {
		t.Errorf("accounts: got %s, want %s", got, want)
	}
}

// TestFilesLostDuringTxAreNotAcknowledged: the check runs at commit, not
// only when the transaction starts.
func TestFilesLostDuringTxAreNotAcknowledged(t *testing.T) {
	s, path := openTemp(t)
	err := s.Tx(t.Context(), func(tx gatehouse.Tx) error {
		if err := tx.CreateAccount(t.Context(), gatehouse.Account{Name: "during", Enabled: true}); err != nil {
			return err
		}
		return os.Rename(path, path+".away")
	})
	wantUnavailable(t, "Tx", err)
	if err := os.Rename(path+".away", path); err != nil {
		t.Fatal(err)
	}
	if got := accountNames(t, s); len(got) != 0 {
		t.Errorf("accounts: got %v, want none", got)
	}
}

// TestWALOutlivesPooledConnections: SQLite deletes the WAL when the last
// connection closes and makes a new file on the next open; the pool may
// close all of its connections, so without the pinned one the WAL check
// would report a replacement after every idle spell.
func TestWALOutlivesPooledConnections(t *testing.T) {
	s, path := openTemp(t)
	if len(s.files) != 2 || s.files[1].path != path+"-wal" {
		t.Fatalf("watched files: %+v, want the database and its WAL", s.files)
	}
	s.db.SetMaxIdleConns(0) // every pooled connection closes after use
	for range 3 {
		if err := s.Ping(t.Context()); err != nil {
			t.Fatalf("Ping: %v", err)
		}
		if err := s.Check(t.Context()); err != nil {
			t.Fatalf("Check: %v", err)
		}
	}
}

// TestOpenRefusesOrphanedWAL: a WAL without its database means the
// database was deleted or moved; SQLite would replay the WAL into a new
// file, so Open refuses and creates nothing.
func TestOpenRefusesOrphanedWAL(t *testing.T) {
	for _, suffix := range []string{"-wal", "-shm"} {
		t.Run(suffix, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "gatehouse.db")
			if err := os.WriteFile(path+suffix, []byte("left behind"), 0o600); err != nil {
				t.Fatal(err)
			}
			s, err := Open(t.Context(), path)
			if err == nil {
				s.Close()
				t.Fatal("Open succeeded")
			}
			if !strings.Contains(err.Error(), "deleted or moved") {
				t.Errorf("error %q does not say what happened", err)
			}
			if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("Open created %s: %v", path, err)
			}
		})
	}
}

// TestStorageFailuresAreUnavailable: SQLite's own refusals to write map to
// EUNAVAILABLE with the driver's error kept as the cause. The pragmas are
// per connection, so the pool is cut down to the pinned connection and one
// more, which every call then uses.
func TestStorageFailuresAreUnavailable(t *testing.T) {
	for _, tc := range []struct {
		name   string
		pragma func(t *testing.T, s *Store) string
	}{
		{"disk full (max_page_count)", func(t *testing.T, s *Store) string {
			var pages int
			if err := s.db.QueryRow(`PRAGMA page_count`).Scan(&pages); err != nil {
				t.Fatal(err)
			}
			return "PRAGMA max_page_count = " + strconv.Itoa(pages)
		}},
		{"read-only (query_only)", func(*testing.T, *Store) string { return "PRAGMA query_only = 1" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, _ := openTemp(t)
			s.db.SetMaxOpenConns(2)
			if _, err := s.db.Exec(tc.pragma(t, s)); err != nil {
				t.Fatal(err)
			}
			err := s.Tx(t.Context(), func(tx gatehouse.Tx) error {
				return tx.CreateAccount(t.Context(), gatehouse.Account{
					Name: "big", Enabled: true, PasswordHash: make([]byte, 1<<20),
				})
			})
			wantUnavailable(t, "CreateAccount", err)
			var se *sqlite.Error
			if !errors.As(err, &se) {
				t.Errorf("cause %v is not the driver's error", errors.Unwrap(err))
			}
		})
	}
}

// TestPingFailsOnAFullDisk: on a full disk the database still answers
// reads, which is what a ping used to check; Ping commits, so it fails,
// and succeeds again once there is room.
func TestPingFailsOnAFullDisk(t *testing.T) {
	dir := fulldisk.Mount(t, "1m")
	path := filepath.Join(dir, "gatehouse.db")
	s, err := Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if err := s.Ping(t.Context()); err != nil {
		t.Fatalf("Ping with room: %v", err)
	}
	filler := fulldisk.Fill(t, dir)
	if err := s.db.PingContext(t.Context()); err != nil {
		t.Fatalf("a read-only ping fails too (%v): the test does not show the difference", err)
	}
	wantUnavailable(t, "Ping on a full disk", s.Ping(t.Context()))
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	if err := s.Ping(t.Context()); err != nil {
		t.Errorf("Ping after freeing space: %v", err)
	}
}
