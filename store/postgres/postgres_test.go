package postgres

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/fstest"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/store/internal/readonly"
	"github.com/gatehouse/gatehouse/store/storetest"
	"github.com/gatehouse/gatehouse/store/storetest/pgtest"
)

// pg is this package's throwaway PostgreSQL server.
var pg *pgtest.Server

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m, &pg)) }

// openStore opens a store on a new database and closes it when t ends. It
// returns the database's URL and name too.
func openStore(t *testing.T) (s *Store, url, name string) {
	t.Helper()
	url = pg.Database(t)
	s, err := Open(t.Context(), url)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s, url, dbName(t, url)
}

func dbName(t *testing.T, url string) string {
	t.Helper()
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		t.Fatal(err)
	}
	return cfg.Database
}

// connect opens a plain connection for a test's own statements.
func connect(t *testing.T, url string) *pgx.Conn {
	t.Helper()
	c, err := pgx.Connect(t.Context(), url)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	return c
}

func TestConformance(t *testing.T) {
	pg.SkipIfMissing(t)
	storetest.Run(t, func(t *testing.T) gatehouse.Store {
		s, _, _ := openStore(t)
		return s
	})
}

// rendezvous lets n transactions each do their reads before any of them
// writes, so that they really overlap. Only a first attempt waits: a retry
// runs after the others have committed or failed.
type rendezvous struct{ wg sync.WaitGroup }

func newRendezvous(n int) *rendezvous {
	r := &rendezvous{}
	r.wg.Add(n)
	return r
}

func (r *rendezvous) arrive(first *bool) {
	if *first {
		*first = false
		r.wg.Done()
		r.wg.Wait()
	}
}

// TestLostUpdateRetried: two transactions read the same account, both wait
// until the other has read it too, then both write it back with a group
// added. Without retries one of them would fail (or, at READ COMMITTED,
// silently undo the other); with them both succeed and both groups are
// there.
func TestLostUpdateRetried(t *testing.T) {
	s, _, _ := openStore(t)
	ctx := t.Context()
	alice := gatehouse.Account{Name: "alice", Enabled: true, Groups: []string{}, CreatedAt: time.Unix(1, 0).UTC()}
	if err := s.Tx(ctx, func(tx gatehouse.Tx) error { return tx.CreateAccount(ctx, alice) }); err != nil {
		t.Fatal(err)
	}
	var (
		attempts atomic.Int32
		meet     = newRendezvous(2)
		errs     = make(chan error, 2)
		wg       sync.WaitGroup
	)
	for _, group := range []string{"red", "blue"} {
		wg.Go(func() {
			first := true
			errs <- s.Tx(ctx, func(tx gatehouse.Tx) error {
				attempts.Add(1)
				a, err := tx.GetAccount(ctx, "alice")
				if err != nil {
					return err
				}
				meet.arrive(&first)
				a.Groups = append(a.Groups, group)
				return tx.UpdateAccount(ctx, a)
			})
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("Tx: got %v, want nil (retried)", err)
		}
	}
	var got gatehouse.Account
	if err := s.Tx(ctx, func(tx gatehouse.Tx) (err error) { got, err = tx.GetAccount(ctx, "alice"); return err }); err != nil {
		t.Fatal(err)
	}
	if g := strings.Join(got.Groups, ","); g != "red,blue" && g != "blue,red" {
		t.Errorf("groups: got %q, want red and blue", g)
	}
	if n := attempts.Load(); n < 3 {
		t.Errorf("attempts: got %d, want at least 3 (the loser retried)", n)
	}
	t.Logf("2 transactions, %d attempts", attempts.Load())
}

// TestWriteSkew is why Tx runs at SERIALIZABLE. One transaction mints a
// token after reading that its account exists; another deletes the
// account's tokens and then the account. They write different rows, so
// REPEATABLE READ lets both commit and the new token outlives its account;
// SERIALIZABLE fails one of them, whose retry then sees the other's commit.
func TestWriteSkew(t *testing.T) {
	tests := []struct {
		name       string
		iso        pgx.TxIsoLevel
		wantOrphan bool
	}{
		{"ok/serializable leaves no token without its account", pgx.Serializable, false},
		{"ok/repeatable read would (the reason not to use it)", pgx.RepeatableRead, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, _, _ := openStore(t)
			ctx := t.Context()
			alice := gatehouse.Account{Name: "alice", Enabled: true, CreatedAt: time.Unix(1, 0).UTC()}
			old := gatehouse.Token{ID: "t1", Kind: gatehouse.KindAPI, Account: "alice", IssuedAt: time.Unix(2, 0).UTC(), Hash: []byte{1}}
			if err := s.Tx(ctx, func(tx gatehouse.Tx) error {
				return errors.Join(tx.CreateAccount(ctx, alice), tx.CreateToken(ctx, old))
			}); err != nil {
				t.Fatal(err)
			}
			meet := newRendezvous(2)
			var mintErr, deleteErr error
			var wg sync.WaitGroup
			wg.Go(func() {
				first := true
				mintErr = s.withTx(ctx, tc.iso, func(tx *tx) error {
					if _, err := tx.GetAccount(ctx, "alice"); err != nil {
						return err
					}
					meet.arrive(&first)
					k := old
					k.ID = "t2"
					return tx.CreateToken(ctx, k)
				})
			})
			wg.Go(func() {
				first := true
				deleteErr = s.withTx(ctx, tc.iso, func(tx *tx) error {
					if _, err := tx.DeleteTokens(ctx, gatehouse.TokenFilter{Account: "alice"}); err != nil {
						return err
					}
					meet.arrive(&first)
					return tx.DeleteAccount(ctx, "alice")
				})
			})
			wg.Wait()
			if deleteErr != nil {
				t.Fatalf("delete account: %v", deleteErr)
			}
			if mintErr != nil && !gatehouse.IsCode(mintErr, gatehouse.ENOTFOUND) {
				t.Fatalf("mint: got %v, want nil or ENOTFOUND (the retry saw the account gone)", mintErr)
			}
			var left []gatehouse.Token
			if err := s.Tx(ctx, func(tx gatehouse.Tx) (err error) {
				left, err = tx.ListTokens(ctx, gatehouse.TokenFilter{Account: "alice"})
				return err
			}); err != nil {
				t.Fatal(err)
			}
			if orphan := len(left) > 0; orphan != tc.wantOrphan {
				t.Errorf("tokens of the deleted account: got %d, want orphan=%v", len(left), tc.wantOrphan)
			}
		})
	}
}

// TestRetry: serialization failures and deadlocks, raised by the server,
// are retried, also when fn swallows them; a transaction that never gets
// through gives up after maxAttempts with EUNAVAILABLE and the cause kept;
// other errors are not retried.
func TestRetry(t *testing.T) {
	s, _, _ := openStore(t)
	ctx := t.Context()
	raise := func(tx *tx, code string) error {
		_, err := tx.exec(ctx, `DO $$ BEGIN RAISE EXCEPTION 'test' USING ERRCODE = '`+code+`'; END $$`)
		return err
	}
	tests := []struct {
		name     string
		fn       func(tx *tx, attempt int) error
		attempts int
		code     string
		cause    string // SQLSTATE kept in the chain
	}{
		{"ok/serialization failure once", func(tx *tx, n int) error {
			if n == 1 {
				return raise(tx, serializationFailure)
			}
			return tx.CreateAccount(ctx, gatehouse.Account{Name: "a"})
		}, 2, "", ""},
		{"ok/deadlock twice", func(tx *tx, n int) error {
			if n <= 2 {
				return raise(tx, deadlockDetected)
			}
			return nil
		}, 3, "", ""},
		{"ok/failure swallowed by fn is still retried", func(tx *tx, n int) error {
			if n == 1 {
				raise(tx, serializationFailure)
			}
			return nil
		}, 2, "", ""},
		{"fail/always a serialization failure", func(tx *tx, n int) error {
			return raise(tx, serializationFailure)
		}, maxAttempts, gatehouse.EUNAVAILABLE, serializationFailure},
		{"fail/other SQL errors are not retried", func(tx *tx, n int) error {
			return raise(tx, "22012") // division_by_zero
		}, 1, gatehouse.EINTERNAL, "22012"},
		{"fail/fn's own error is not retried", func(tx *tx, n int) error {
			return gatehouse.Errorf(gatehouse.EINVALID, "no")
		}, 1, gatehouse.EINVALID, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n := 0
			err := s.withTx(ctx, pgx.Serializable, func(tx *tx) error { n++; return tc.fn(tx, n) })
			if got := gatehouse.ErrorCode(err); got != tc.code {
				t.Errorf("error: got %v (code %q), want code %q", err, got, tc.code)
			}
			if n != tc.attempts {
				t.Errorf("attempts: got %d, want %d", n, tc.attempts)
			}
			var pe *pgconn.PgError
			if tc.cause != "" && (!errors.As(err, &pe) || pe.Code != tc.cause) {
				t.Errorf("cause: got %v, want SQLSTATE %s in the chain", err, tc.cause)
			}
			if err != nil && strings.Contains(gatehouse.ErrorMessage(err), "SQLSTATE") {
				t.Errorf("client message %q leaks the cause", gatehouse.ErrorMessage(err))
			}
		})
	}
}

// unavailableOK fails the test unless err is EUNAVAILABLE with the safe
// message and a cause for the log.
func wantUnavailable(t *testing.T, what string, err error) {
	t.Helper()
	if !gatehouse.IsCode(err, gatehouse.EUNAVAILABLE) {
		t.Errorf("%s: got %v (code %q), want %q", what, err, gatehouse.ErrorCode(err), gatehouse.EUNAVAILABLE)
		return
	}
	if msg := gatehouse.ErrorMessage(err); msg != "store unavailable" {
		t.Errorf("%s: client message %q, want %q", what, msg, "store unavailable")
	}
	if errors.Unwrap(err) == nil {
		t.Errorf("%s: %v has no cause for the log", what, err)
	}
}

// TestUnavailable: when the database refuses connections every call is
// EUNAVAILABLE, and the store recovers by itself once it accepts them again.
func TestUnavailable(t *testing.T) {
	s, _, name := openStore(t)
	ctx := t.Context()
	pg.Exec(t, `ALTER DATABASE `+name+` WITH ALLOW_CONNECTIONS false`)
	pg.Exec(t, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1`, name)
	calls := []struct {
		name string
		fn   func() error
	}{
		{"Tx", func() error {
			return s.Tx(ctx, func(tx gatehouse.Tx) error { _, err := tx.ListAccounts(ctx); return err })
		}},
		{"Ping", func() error { return s.Ping(ctx) }},
		{"Check", func() error { return s.Check(ctx) }},
		{"AppendEvents", func() error { return s.AppendEvents(ctx, []gatehouse.Event{{Type: gatehouse.EventRequest}}) }},
		{"TouchTokens", func() error { return s.TouchTokens(ctx, []gatehouse.TokenUse{{ID: "x", At: time.Now()}}) }},
		{"ForEachToken", func() error { return s.ForEachToken(ctx, func(gatehouse.Token) error { return nil }) }},
		{"ChangesSince", func() error { _, err := s.ChangesSince(ctx, 0, 10); return err }},
		{"ChangeHead", func() error { _, err := s.ChangeHead(ctx); return err }},
		{"PruneChanges", func() error { _, err := s.PruneChanges(ctx, 10); return err }},
		{"RecordChanges", func() error {
			return s.Tx(ctx, func(tx gatehouse.Tx) error {
				return tx.RecordChanges(ctx, []gatehouse.Change{{Kind: gatehouse.ChangePolicy}})
			})
		}},
	}
	for _, c := range calls {
		// Twice: the first call may find a pooled connection the server
		// has just terminated, the second must open a new one.
		for i := range 2 {
			wantUnavailable(t, fmt.Sprintf("%s (call %d)", c.name, i+1), c.fn())
		}
	}
	listening := false
	wantUnavailable(t, "Listen", s.Listen(ctx, func() { listening = true }, func(int64) {}))
	if listening {
		t.Error("Listen called listening without a connection")
	}
	pg.Exec(t, `ALTER DATABASE `+name+` WITH ALLOW_CONNECTIONS true`)
	for _, c := range calls {
		if err := c.fn(); err != nil {
			t.Errorf("%s after the database is back: %v", c.name, err)
		}
	}
}

// TestPingNeedsCommit: a server that answers but cannot commit (read-only,
// as a standby after a failover would be) passes Check and fails Ping.
func TestPingNeedsCommit(t *testing.T) {
	s, _, name := openStore(t)
	ctx := t.Context()
	pg.Exec(t, `ALTER DATABASE `+name+` SET default_transaction_read_only = on`)
	pg.Exec(t, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1`, name)
	for i := range 2 { // the first may meet a terminated pooled connection
		err := s.Check(ctx)
		if i == 1 && err != nil {
			t.Errorf("Check on a read-only database: %v, want nil", err)
		}
	}
	wantUnavailable(t, "Ping on a read-only database", s.Ping(ctx))
	wantUnavailable(t, "a write on a read-only database", s.Tx(ctx, func(tx gatehouse.Tx) error {
		return tx.PutRBAC(ctx, gatehouse.RBAC{})
	}))
}

// TestViewTransaction: View runs at REPEATABLE READ READ ONLY; behind
// readonly.Tx, PostgreSQL itself refuses a write there, reported as the
// internal error it is (not as a read-only server), and nothing changes. A
// View works on a database that takes no writes (a standby) too.
func TestViewTransaction(t *testing.T) {
	s, _, name := openStore(t)
	ctx := t.Context()
	raw := func(gt gatehouse.Tx) *tx { return gt.(readonly.Tx).Tx.(*tx) }
	err := s.View(ctx, func(gt gatehouse.Tx) error {
		t := raw(gt)
		var iso, ro string
		if err := t.tx.QueryRow(ctx, `SELECT current_setting('transaction_isolation'), current_setting('transaction_read_only')`).Scan(&iso, &ro); err != nil {
			return err
		}
		if iso != "repeatable read" || ro != "on" {
			return fmt.Errorf("View runs at %s, read only %s; want repeatable read, on", iso, ro)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var inside error
	err = s.View(ctx, func(gt gatehouse.Tx) error {
		_, inside = raw(gt).exec(ctx, `INSERT INTO probe (id, n) VALUES (1, 1) ON CONFLICT (id) DO UPDATE SET n = probe.n + 1`)
		return inside
	})
	if gatehouse.ErrorCode(inside) != gatehouse.EINTERNAL || err == nil {
		t.Errorf("INSERT in a View: got %v, View %v; want an internal error", inside, err)
	}
	var n int
	if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM probe`).Scan(&n); err != nil || n != 0 {
		t.Errorf("probe rows after a write in a View: %d, %v; want 0", n, err)
	}

	pg.Exec(t, `ALTER DATABASE `+name+` SET default_transaction_read_only = on`)
	pg.Exec(t, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1`, name)
	for i := range 2 { // the first may meet a terminated pooled connection
		err := s.View(ctx, func(tx gatehouse.Tx) error { _, err := tx.ListAccounts(ctx); return err })
		if i == 1 && err != nil {
			t.Errorf("View on a read-only database: %v, want nil", err)
		}
	}
}

// TestCheckNoticesAnotherDatabase: a URL that leads to another database
// than the one opened (simulated by giving this one a new identity) fails
// Check.
func TestCheckNoticesAnotherDatabase(t *testing.T) {
	s, url, _ := openStore(t)
	ctx := t.Context()
	if err := s.Check(ctx); err != nil {
		t.Fatalf("Check: %v", err)
	}
	if _, err := connect(t, url).Exec(ctx, `UPDATE store_identity SET id = gen_random_uuid()`); err != nil {
		t.Fatal(err)
	}
	wantUnavailable(t, "Check after the identity changed", s.Check(ctx))
}

func versions(t *testing.T, url string) []int {
	t.Helper()
	rows, err := connect(t, url).Query(t.Context(), `SELECT version FROM schema_migrations ORDER BY version`)
	if err != nil {
		t.Fatalf("schema_migrations: %v", err)
	}
	vs, err := pgx.CollectRows(rows, pgx.RowTo[int])
	if err != nil {
		t.Fatal(err)
	}
	return vs
}

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

// TestConcurrentOpen: replicas that start together on a new database all
// open it, and each migration is applied once.
func TestConcurrentOpen(t *testing.T) {
	url := pg.Database(t)
	const n = 4
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			s, err := Open(t.Context(), url)
			if err == nil {
				s.Close()
			}
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("concurrent Open: %v", err)
		}
	}
	if got, want := versions(t, url), embeddedVersions(t); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("schema_migrations: got %v, want %v (each once)", got, want)
	}
}

// TestReopenKeepsData: a second Open of the same database sees the data and
// applies nothing again.
func TestReopenKeepsData(t *testing.T) {
	s, url, _ := openStore(t)
	ctx := t.Context()
	want := gatehouse.Account{Name: "admin", Enabled: true, Capabilities: []gatehouse.Capability{gatehouse.CapLogin},
		Groups: []string{}, CreatedAt: time.Date(2025, 1, 2, 3, 4, 5, 6, time.UTC), PasswordHash: []byte("hash")}
	if err := s.Tx(ctx, func(tx gatehouse.Tx) error { return tx.CreateAccount(ctx, want) }); err != nil {
		t.Fatal(err)
	}
	s2, err := Open(ctx, url)
	if err != nil {
		t.Fatalf("re-open: %v", err)
	}
	defer s2.Close()
	var got gatehouse.Account
	if err := s2.Tx(ctx, func(tx gatehouse.Tx) (err error) { got, err = tx.GetAccount(ctx, "admin"); return err }); err != nil {
		t.Fatal(err)
	}
	if !got.CreatedAt.Equal(want.CreatedAt) || string(got.PasswordHash) != "hash" {
		t.Errorf("re-open: got %+v, want %+v", got, want)
	}
	if got, want := versions(t, url), embeddedVersions(t); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("schema_migrations: got %v, want %v", got, want)
	}
}

func TestRefuseNewerSchema(t *testing.T) {
	s, url, _ := openStore(t)
	s.Close()
	newer := len(embeddedVersions(t)) + 1
	if _, err := connect(t, url).Exec(t.Context(), `INSERT INTO schema_migrations (version, name) VALUES ($1, 'from_the_future.sql')`, newer); err != nil {
		t.Fatal(err)
	}
	s2, err := Open(t.Context(), url)
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
		tables  []string       // present at the end, besides schema_migrations
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
			name:    "fail/bad name",
			steps:   []fstest.MapFS{{"migrations/init.sql": {Data: []byte("CREATE TABLE a (x INTEGER);")}}},
			wantErr: "out of sequence",
		},
		{
			name: "fail/broken migration applies nothing",
			steps: []fstest.MapFS{{
				"migrations/0001_a.sql": {Data: []byte("CREATE TABLE a (x INTEGER);")},
				"migrations/0002_b.sql": {Data: []byte("CREATE TABLE b (y INTEGER); THIS IS NOT SQL;")},
			}},
			wantErr: "0002_b.sql",
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
			url := pg.Database(t)
			pool, err := pgxpool.New(t.Context(), url)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(pool.Close)
			for i, step := range tc.steps {
				err = migrate(t.Context(), pool, step)
				if i < len(tc.steps)-1 && err != nil {
					t.Fatalf("step %d: %v", i, err)
				}
			}
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("migrate: %v", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("migrate: got %v, want an error containing %q", err, tc.wantErr)
			}
			rows, err := pool.Query(t.Context(), `SELECT tablename FROM pg_tables
				WHERE schemaname = current_schema() AND tablename <> 'schema_migrations' ORDER BY tablename`)
			if err != nil {
				t.Fatal(err)
			}
			tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(tables) != fmt.Sprint(append([]string{}, tc.tables...)) {
				t.Errorf("tables: got %v, want %v", tables, tc.tables)
			}
		})
	}
}

// TestOpenErrorsHidePasswords: neither a URL that does not parse nor a
// server that refuses puts the password into the error.
func TestOpenErrorsHidePasswords(t *testing.T) {
	pg.SkipIfMissing(t)
	const secret = "s3cr3t-pw"
	for _, url := range []string{
		"postgres://gatehouse:" + secret + "@127.0.0.1:notaport/db",
		"postgres://gatehouse:" + secret + "@127.0.0.1:" + fmt.Sprint(pg.Port()) + "/no_such_db?sslmode=disable&connect_timeout=5",
		"host=127.0.0.1 password=" + secret + " port=" + fmt.Sprint(pg.Port()) + " dbname='unterminated",
	} {
		s, err := Open(t.Context(), url)
		if err == nil {
			s.Close()
			t.Errorf("Open(%q): got nil error", url)
			continue
		}
		if strings.Contains(err.Error(), secret) {
			t.Errorf("Open error leaks the password: %v", err)
		}
	}
}

// listener runs s.Listen in the background until t ends, collecting the
// seqs it is notified of.
type listener struct {
	seqs   chan int64
	done   chan error // Listen's result
	cancel context.CancelFunc
}

func listen(t *testing.T, s *Store) *listener {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	l := &listener{seqs: make(chan int64, 100), done: make(chan error, 1), cancel: cancel}
	ready := make(chan struct{})
	go func() {
		l.done <- s.Listen(ctx, func() { close(ready) }, func(seq int64) { l.seqs <- seq })
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-l.done:
		case <-time.After(5 * time.Second):
			t.Error("Listen did not return within 5s of its context ending")
		}
	})
	select {
	case <-ready:
	case err := <-l.done:
		t.Fatalf("Listen before listening: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("Listen did not call listening within 10s")
	}
	return l
}

// next returns the next notified seq, failing the test after a while.
func (l *listener) next(t *testing.T) int64 {
	t.Helper()
	select {
	case seq := <-l.seqs:
		return seq
	case err := <-l.done:
		t.Fatalf("Listen returned %v, want a notification", err)
	case <-time.After(5 * time.Second):
		t.Fatal("no notification within 5s")
	}
	return 0
}

// none fails the test if a notification comes within d.
func (l *listener) none(t *testing.T, what string, d time.Duration) {
	t.Helper()
	select {
	case seq := <-l.seqs:
		t.Errorf("%s: notified of seq %d, want no notification", what, seq)
	case <-time.After(d):
	}
}

// TestListen: a commit that records changes, made through another store
// (another replica's connections), is notified with its greatest seq, once
// it has committed; a rolled-back one, one that records nothing and a
// payload that is not a seq are not; and Listen holds no connection of the
// pool and returns the context's error when it ends.
func TestListen(t *testing.T) {
	s, url, _ := openStore(t)
	ctx := t.Context()
	other, err := Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { other.Close() })
	l := listen(t, s)
	if n := s.pool.Stat().AcquiredConns(); n != 0 {
		t.Errorf("pool connections in use while listening: %d, want 0 (a dedicated connection)", n)
	}

	release := make(chan struct{})
	committed := make(chan error, 1)
	go func() {
		committed <- other.Tx(ctx, func(tx gatehouse.Tx) error {
			err := tx.RecordChanges(ctx, []gatehouse.Change{
				{Kind: gatehouse.ChangeToken, Key: "t1"}, {Kind: gatehouse.ChangeAccount, Key: "alice"}})
			<-release
			return err
		})
	}()
	l.none(t, "changes recorded, not committed yet", 200*time.Millisecond)
	close(release)
	if err := <-committed; err != nil {
		t.Fatal(err)
	}
	head, err := other.ChangeHead(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if seq := l.next(t); seq != head {
		t.Errorf("notified seq: got %d, want the commit's greatest seq %d", seq, head)
	}

	boom := errors.New("boom")
	if err := other.Tx(ctx, func(tx gatehouse.Tx) error {
		if err := tx.RecordChanges(ctx, []gatehouse.Change{{Kind: gatehouse.ChangePolicy}}); err != nil {
			return err
		}
		return boom
	}); !errors.Is(err, boom) {
		t.Fatalf("rolled-back Tx: %v", err)
	}
	if err := other.Tx(ctx, func(tx gatehouse.Tx) error {
		return errors.Join(tx.RecordChanges(ctx, nil), tx.CreateAccount(ctx, gatehouse.Account{Name: "bob"}))
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := connect(t, url).Exec(ctx, `SELECT pg_notify('gatehouse_changes', 'not a seq')`); err != nil {
		t.Fatal(err)
	}
	l.none(t, "after a rollback, an empty record and a bad payload", 300*time.Millisecond)

	if err := other.Tx(ctx, func(tx gatehouse.Tx) error {
		return tx.RecordChanges(ctx, []gatehouse.Change{{Kind: gatehouse.ChangePolicy}})
	}); err != nil {
		t.Fatal(err)
	}
	if seq := l.next(t); seq != head+1 {
		t.Errorf("notified seq after the rollback: got %d, want %d", seq, head+1)
	}

	l.cancel()
	select {
	case err := <-l.done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Listen after cancel: got %v, want context.Canceled", err)
		}
		l.done <- err // for the cleanup
	case <-time.After(5 * time.Second):
		t.Fatal("Listen did not return within 5s of cancel")
	}
}

// TestListenConnectionKilled: when the server terminates the listening
// connection, Listen returns an EUNAVAILABLE error (not the context's), and
// listening again works.
func TestListenConnectionKilled(t *testing.T) {
	s, url, name := openStore(t)
	ctx := t.Context()
	l := listen(t, s)
	var killed int
	if err := connect(t, url).QueryRow(ctx, `SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity
		WHERE query ILIKE 'LISTEN%' AND datname = $1) AS k`, name).Scan(&killed); err != nil {
		t.Fatal(err)
	}
	if killed != 1 {
		t.Fatalf("listening connections terminated: %d, want 1", killed)
	}
	select {
	case err := <-l.done:
		if err == nil || errors.Is(err, context.Canceled) {
			t.Fatalf("Listen after its connection was killed: got %v, want the connection's error", err)
		}
		wantUnavailable(t, "Listen after its connection was killed", err)
		l.done <- err // for the cleanup
	case <-time.After(10 * time.Second):
		t.Fatal("Listen did not return within 10s of its connection being killed")
	}

	again := listen(t, s)
	if err := s.Tx(ctx, func(tx gatehouse.Tx) error {
		return tx.RecordChanges(ctx, []gatehouse.Change{{Kind: gatehouse.ChangeToken, Key: "t1"}})
	}); err != nil {
		t.Fatal(err)
	}
	if seq := again.next(t); seq != 1 {
		t.Errorf("notified seq after listening again: got %d, want 1", seq)
	}
}
