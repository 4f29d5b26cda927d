package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/store/storetest"
)

// openTemp opens a new store in a temporary directory and closes it when
// the test ends.
func openTemp(t testing.TB) (*Store, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "gatehouse.db")
	s, err := Open(context.Background(), path)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s, path
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) gatehouse.Store {
		s, _ := openTemp(t)
		return s
	})
}

// embeddedVersions lists the versions of the embedded migrations.
func embeddedVersions(t *testing.T) []int {
	t.Helper()
	names, err := fs.Glob(migrations, "migrations/*.sql")
	if err != nil || len(names) == 0 {
		t.Fatalf("embedded migrations: %v %v", names, err)
	}
	var out []int
	for i := range names {
		out = append(out, i+1)
	}
	return out
}

func versions(t *testing.T, db *sql.DB) []int {
	t.Helper()
	rows, err := db.Query(`SELECT version FROM schema_migrations ORDER BY version`)
	if err != nil {
		t.Fatalf("schema_migrations: %v", err)
	}
	defer rows.Close()
	var out []int
	for rows.Next() {
		var v int
		if err := rows.Scan(&v); err != nil {
			t.Fatal(err)
		}
		out = append(out, v)
	}
	return out
}

func TestMigrationsRecorded(t *testing.T) {
	s, _ := openTemp(t)
	got, want := versions(t, s.db), embeddedVersions(t)
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("schema_migrations: got %v, want %v", got, want)
	}
}

func TestReopenKeepsData(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "gatehouse.db")
	s, err := Open(ctx, path)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	want := gatehouse.Account{Name: "admin", Enabled: true, Capabilities: []gatehouse.Capability{gatehouse.CapLogin},
		Groups: []string{}, CreatedAt: time.Date(2025, 1, 2, 3, 4, 5, 6, time.UTC), PasswordHash: []byte("hash")}
	if err := s.Tx(ctx, func(tx gatehouse.Tx) error { return tx.CreateAccount(ctx, want) }); err != nil {
		t.Fatalf("CreateAccount: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	for i := range 2 {
		s, err = Open(ctx, path)
		if err != nil {
			t.Fatalf("re-open %d: %v", i, err)
		}
		var got gatehouse.Account
		err = s.Tx(ctx, func(tx gatehouse.Tx) (err error) {
			got, err = tx.GetAccount(ctx, "admin")
			return err
		})
		if err != nil || !got.CreatedAt.Equal(want.CreatedAt) || string(got.PasswordHash) != "hash" {
			t.Errorf("re-open %d: got %+v, %v, want %+v", i, got, err, want)
		}
		if got, want := versions(t, s.db), embeddedVersions(t); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("re-open %d: schema_migrations %v, want %v (applied once)", i, got, want)
		}
		s.Close()
	}
}

func TestRefuseNewerSchema(t *testing.T) {
	ctx := t.Context()
	s, path := openTemp(t)
	newer := len(embeddedVersions(t)) + 1
	if _, err := s.db.Exec(`INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, 'from_the_future.sql', 0)`, newer); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s2, err := Open(ctx, path)
	if err == nil {
		s2.Close()
		t.Fatalf("Open of a version %d database: got nil error, want a refusal", newer)
	}
	if msg := err.Error(); !strings.Contains(msg, "newer") || !strings.Contains(msg, fmt.Sprint(newer)) {
		t.Errorf("Open: got %q, want a message naming the newer version %d", msg, newer)
	}
}

func TestMigrate(t *testing.T) {
	tests := []struct {
		name    string
		steps   []fstest.MapFS // applied in turn to one database
		wantErr string         // of the last step; "" for success
		tables  []string       // present at the end
	}{
		{
			name: "ok/applies in order and only new ones",
			steps: []fstest.MapFS{
				{"migrations/0001_a.sql": {Data: []byte("CREATE TABLE a (x INTEGER);")}},
				{
					"migrations/0001_a.sql": {Data: []byte("CREATE TABLE a (x INTEGER);")},
					"migrations/0002_b.sql": {Data: []byte("CREATE TABLE b (y INTEGER); INSERT INTO a VALUES (1);")},
				},
			},
			tables: []string{"a", "b"},
		},
		{
			name: "fail/gap in sequence",
			steps: []fstest.MapFS{{
				"migrations/0001_a.sql": {Data: []byte("CREATE TABLE a (x INTEGER);")},
				"migrations/0003_c.sql": {Data: []byte("CREATE TABLE c (x INTEGER);")},
			}},
			wantErr: "out of sequence",
		},
		{
			name: "fail/bad name",
			steps: []fstest.MapFS{{
				"migrations/init.sql": {Data: []byte("CREATE TABLE a (x INTEGER);")},
			}},
			wantErr: "out of sequence",
		},
		{
			name: "fail/broken migration applies nothing",
			steps: []fstest.MapFS{{
				"migrations/0001_a.sql": {Data: []byte("CREATE TABLE a (x INTEGER);")},
				"migrations/0002_b.sql": {Data: []byte("CREATE TABLE b (y INTEGER); THIS IS NOT SQL;")},
			}},
			wantErr: "0002_b.sql",
			tables:  []string{},
		},
		{
			name: "fail/newer than the binary",
			steps: []fstest.MapFS{
				{
					"migrations/0001_a.sql": {Data: []byte("CREATE TABLE a (x INTEGER);")},
					"migrations/0002_b.sql": {Data: []byte("CREATE TABLE b (y INTEGER);")},
				},
				{"migrations/0001_a.sql": {Data: []byte("CREATE TABLE a (x INTEGER);")}},
			},
			wantErr: "newer than this binary supports",
			tables:  []string{"a", "b"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			db, err := sql.Open("sqlite", dsn(filepath.Join(t.TempDir(), "m.db"), false))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { db.Close() })
			for i, step := range tc.steps {
				err = migrate(t.Context(), db, step)
				if i < len(tc.steps)-1 && err != nil {
					t.Fatalf("step %d: %v", i, err)
				}
			}
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("migrate: got %v, want nil", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("migrate: got %v, want an error containing %q", err, tc.wantErr)
			}
			if tc.tables == nil {
				return
			}
			rows, err := db.Query(`SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT IN ('schema_migrations', 'sqlite_sequence') ORDER BY name`)
			if err != nil {
				t.Fatal(err)
			}
			defer rows.Close()
			got := []string{}
			for rows.Next() {
				var n string
				rows.Scan(&n)
				got = append(got, n)
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.tables) {
				t.Errorf("tables: got %v, want %v", got, tc.tables)
			}
		})
	}
}

func TestFileMode(t *testing.T) {
	s, path := openTemp(t)
	// Write something so the WAL file exists too.
	ctx := t.Context()
	if err := s.AppendEvents(ctx, []gatehouse.Event{{Time: time.Unix(1, 0), Type: gatehouse.EventRequest}}); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Errorf("stat: %v", err)
			continue
		}
		if got := fi.Mode().Perm(); got != 0o600 {
			t.Errorf("%s: mode %v, want 0600", filepath.Base(p), got)
		}
	}
}

// TestConnectionSettings checks the pragmas on several pooled connections:
// one-off PRAGMA statements would only set them on one.
func TestConnectionSettings(t *testing.T) {
	s, _ := openTemp(t)
	ctx := t.Context()
	var conns []*sql.Conn
	for range 3 {
		c, err := s.db.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	for i, c := range conns {
		for _, tc := range []struct{ pragma, want string }{
			{"journal_mode", "wal"},
			{"busy_timeout", "10000"},
			{"foreign_keys", "1"},
			{"synchronous", "1"}, // NORMAL
		} {
			var got string
			if err := c.QueryRowContext(ctx, "PRAGMA "+tc.pragma).Scan(&got); err != nil {
				t.Fatalf("conn %d: PRAGMA %s: %v", i, tc.pragma, err)
			}
			if got != tc.want {
				t.Errorf("conn %d: PRAGMA %s = %q, want %q", i, tc.pragma, got, tc.want)
			}
		}
	}
	for _, c := range conns {
		c.Close()
	}
}

// TestPathNeedsEscaping opens a file whose directory name holds characters
// that mean something in a URI.
func TestPathNeedsEscaping(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data ?x=1#frag%41")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "gatehouse.db")
	s, err := Open(t.Context(), path)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer s.Close()
	if err := s.AppendEvents(t.Context(), []gatehouse.Event{{Time: time.Unix(1, 0), Type: gatehouse.EventRequest}}); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if fmt.Sprint(names) != "[gatehouse.db gatehouse.db-shm gatehouse.db-wal]" {
		t.Errorf("files in %q: got %v, want the database and its WAL files", dir, names)
	}
}

func TestOpenMissingDirectory(t *testing.T) {
	_, err := Open(t.Context(), filepath.Join(t.TempDir(), "missing", "gatehouse.db"))
	if err == nil {
		t.Fatal("Open in a missing directory: got nil error")
	}
}

// TestTimeClamp: instants an int64 of nanoseconds cannot hold are clamped,
// not wrapped around into another century.
func TestTimeClamp(t *testing.T) {
	tests := []struct {
		in   time.Time
		want time.Time
	}{
		{time.Time{}, time.Time{}},
		{time.Date(2025, 1, 1, 0, 0, 0, 1, time.UTC), time.Date(2025, 1, 1, 0, 0, 0, 1, time.UTC)},
		{time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC), maxTime.UTC()},
		{time.Date(1000, 1, 1, 0, 0, 0, 0, time.UTC), minTime.UTC()},
	}
	for _, tc := range tests {
		if got := fromNanos(nanos(tc.in)); !got.Equal(tc.want) {
			t.Errorf("fromNanos(nanos(%v)): got %v, want %v", tc.in, got, tc.want)
		}
	}
}

// TestTwoHandlesConcurrentWriters: two *Store on one file (two processes,
// or a CLI beside the server) write at once. IMMEDIATE transactions and the
// busy timeout make them queue; none may fail with SQLITE_BUSY.
func TestTwoHandlesConcurrentWriters(t *testing.T) {
	ctx := t.Context()
	a, path := openTemp(t)
	b, err := Open(ctx, path)
	if err != nil {
		t.Fatalf("second Open: %v", err)
	}
	t.Cleanup(func() { b.Close() })

	const workers, rounds = 4, 25
	var wg sync.WaitGroup
	errs := make(chan error, 2*2*workers*rounds)
	for i, s := range []*Store{a, b, a, b, a, b, a, b} {
		wg.Go(func() {
			for r := range rounds {
				id := fmt.Sprintf("h%d-%02d", i, r)
				errs <- s.Tx(ctx, func(tx gatehouse.Tx) error {
					// Read first: a deferred transaction would have to upgrade
					// its lock here and could fail at once with SQLITE_BUSY.
					if _, err := tx.ListTokens(ctx, gatehouse.TokenFilter{Account: id}); err != nil {
						return err
					}
					return tx.CreateToken(ctx, gatehouse.Token{ID: id, Kind: gatehouse.KindAPI, Account: "ci",
						IssuedAt: time.Unix(int64(r+1), 0), Hash: []byte{byte(i), byte(r)}})
				})
				errs <- s.TouchTokens(ctx, []gatehouse.TokenUse{{ID: id, At: time.Unix(int64(1000+r), 0), From: "192.0.2.1"}})
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("concurrent write through two handles: %v", err)
		}
	}
	for _, s := range []*Store{a, b} {
		n := 0
		if err := s.ForEachToken(ctx, func(k gatehouse.Token) error {
			if k.LastUsedAt.IsZero() {
				t.Errorf("token %s: TouchTokens lost", k.ID)
			}
			n++
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if n != 2*workers*rounds {
			t.Errorf("tokens seen through a handle: got %d, want %d", n, 2*workers*rounds)
		}
	}
}

// TestWriterQueue: a writer waiting for this process's write lock gives up
// when its context ends, and a panicking transaction rolls back and
// releases the lock.
func TestWriterQueue(t *testing.T) {
	ctx := t.Context()
	s, _ := openTemp(t)

	holding, release, done := make(chan struct{}), make(chan struct{}), make(chan error, 1)
	go func() {
		done <- s.Tx(ctx, func(tx gatehouse.Tx) error {
			close(holding)
			<-release
			return tx.CreateToken(ctx, benchToken(1))
		})
	}()
	<-holding
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	ran := false
	err := s.Tx(cancelled, func(gatehouse.Tx) error { ran = true; return nil })
	if !errors.Is(err, context.Canceled) || ran {
		t.Errorf("Tx behind a held lock with a cancelled context: got %v (fn ran: %v), want context.Canceled without running fn", err, ran)
	}
	if err := s.AppendEvents(cancelled, []gatehouse.Event{{Type: gatehouse.EventRequest}}); !errors.Is(err, context.Canceled) {
		t.Errorf("AppendEvents behind a held lock with a cancelled context: got %v, want context.Canceled", err)
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatalf("holding Tx: %v", err)
	}

	func() {
		defer func() {
			if r := recover(); r != "boom" {
				t.Errorf("recovered %v, want the transaction's panic", r)
			}
		}()
		s.Tx(ctx, func(tx gatehouse.Tx) error {
			if err := tx.CreateToken(ctx, benchToken(2)); err != nil {
				return err
			}
			panic("boom")
		})
	}()
	var got []string
	err = s.Tx(ctx, func(tx gatehouse.Tx) error {
		ts, err := tx.ListTokens(ctx, gatehouse.TokenFilter{})
		for _, k := range ts {
			got = append(got, k.ID)
		}
		return err
	})
	if err != nil || fmt.Sprint(got) != fmt.Sprint([]string{benchToken(1).ID}) {
		t.Errorf("after a panicking Tx: got %v, %v; want only %s (the panic rolled back, the lock is free)", got, err, benchToken(1).ID)
	}
}

// TestViewHandleIsReadOnly: behind readonly.Tx, SQLite itself refuses a
// write on View's handle, takes no write lock for its transactions, and
// does not create a database file that is missing.
func TestViewHandleIsReadOnly(t *testing.T) {
	s, path := openTemp(t)
	ctx := t.Context()
	if _, err := s.ro.ExecContext(ctx, `INSERT INTO probe (id, n) VALUES (1, 1)`); gatehouse.ErrorCode(wrap(err)) != gatehouse.EUNAVAILABLE || !storageFailure(err) {
		t.Errorf("INSERT on the read-only handle: got %v, want SQLITE_READONLY", err)
	}
	// A raw transaction of View's handle, inside a Tx that holds the write
	// lock: it begins and reads at once, and it cannot write.
	err := s.Tx(ctx, func(gatehouse.Tx) error {
		rt, err := s.ro.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
		if err != nil {
			return err
		}
		defer rt.Rollback()
		var n int
		if err := rt.QueryRowContext(ctx, `SELECT count(*) FROM accounts`).Scan(&n); err != nil {
			return fmt.Errorf("read beside the writer: %w", err)
		}
		if _, err := rt.ExecContext(ctx, `DELETE FROM accounts`); err == nil {
			return errors.New("DELETE in a read-only transaction succeeded")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// A new connection of View's handle to a missing file fails, and
	// leaves no empty database behind.
	ro, err := sql.Open("sqlite", dsn(path+".missing", true))
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	if err := ro.PingContext(ctx); err == nil {
		t.Errorf("read-only handle on a missing file: opened")
	}
	if _, err := os.Stat(path + ".missing"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("read-only handle on a missing file: %s is there (%v)", path+".missing", err)
	}
}
