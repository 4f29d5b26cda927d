package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"hash/fnv"
	"io/fs"
	"math/rand/v2"
	"path"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/store/internal/readonly"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Retries of serialization failures and deadlocks: at most maxAttempts runs
// of a transaction, sleeping a random time below min(backoffCap,
// backoffBase<<attempt) between them ("full jitter", so that transactions
// that collided do not collide again in step). The worst case is about half
// a second of sleeping, well inside a request's budget; a transaction that
// loses ten times in a row is starved and gets EUNAVAILABLE.
const (
	maxAttempts = 10
	backoffBase = 2 * time.Millisecond
	backoffCap  = 100 * time.Millisecond
)

// migrateLockKey is the advisory lock that migrations run under, so that
// replicas starting together apply each migration once. Advisory locks are
// per database, so other databases of the same server do not contend.
var migrateLockKey = func() int64 {
	h := fnv.New64a()
	h.Write([]byte("gatehouse schema migrations"))
	return int64(h.Sum64())
}()

// Store is the PostgreSQL implementation of gatehouse.Store. It is safe for
// concurrent use, by any number of processes on one database.
type Store struct {
	pool *pgxpool.Pool
	// identity is store_identity.id as read at Open; Check compares.
	identity string
}

var _ gatehouse.Store = (*Store)(nil)

// Open connects to the database at url (postgres://user@host:port/db?...,
// or any connection string pgx accepts, including pool_max_conns) and brings
// its schema up to date. A database at a schema version this binary does not
// know is refused.
func Open(ctx context.Context, url string) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		// Not pgx's message: it quotes the URL, and hiding the password
		// in a malformed one is guesswork.
		return nil, errors.New("postgres: the database URL does not parse; the form is postgres://user@host:port/db?sslmode=verify-full")
	}
	if _, ok := cfg.ConnConfig.RuntimeParams["application_name"]; !ok {
		cfg.ConnConfig.RuntimeParams["application_name"] = "gatehouse"
	}
	where := fmt.Sprintf("%s:%d/%s", cfg.ConnConfig.Host, cfg.ConnConfig.Port, cfg.ConnConfig.Database)
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: %s: %w", where, err)
	}
	s := &Store{pool: pool}
	if err := migrate(ctx, pool, migrations); err != nil {
		pool.Close()
		return nil, fmt.Errorf("postgres: %s: %w", where, err)
	}
	if s.identity, err = s.readIdentity(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("postgres: %s: %w", where, err)
	}
	return s, nil
}

// migrate applies, in one transaction, the migrations of fsys (files
// migrations/NNNN_name.sql numbered 1, 2, 3, ...) that schema_migrations
// does not record yet. The transaction first takes an advisory lock, so
// concurrent Opens (replicas starting together) queue and the later ones
// find the work done; the lock goes with the transaction, so a migrator
// that dies cannot leave it held. It runs at READ COMMITTED, where each
// statement sees what committed before it started: after the lock, that
// includes the previous holder's migrations.
func migrate(ctx context.Context, pool *pgxpool.Pool, fsys fs.FS) error {
	names, err := fs.Glob(fsys, "migrations/*.sql")
	if err != nil {
		return err
	}
	sort.Strings(names)
	for i, name := range names {
		prefix, _, _ := strings.Cut(path.Base(name), "_")
		if n, err := strconv.Atoi(prefix); err != nil || n != i+1 {
			return fmt.Errorf("migration %s is out of sequence: want number %d", name, i+1)
		}
	}
	t, err := pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.ReadCommitted})
	if err != nil {
		return wrap(err)
	}
	defer t.Rollback(context.WithoutCancel(ctx))
	if _, err := t.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, migrateLockKey); err != nil {
		return wrap(err)
	}
	if _, err := t.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    INTEGER PRIMARY KEY,
		name       TEXT NOT NULL,
		applied_at TIMESTAMPTZ NOT NULL DEFAULT now())`); err != nil {
		return wrap(err)
	}
	var current int
	if err := t.QueryRow(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&current); err != nil {
		return wrap(err)
	}
	if current > len(names) {
		return fmt.Errorf("database schema version %d is newer than this binary supports (%d): run a newer gatehouse", current, len(names))
	}
	for i, name := range names[current:] {
		body, err := fs.ReadFile(fsys, name)
		if err != nil {
			return err
		}
		// Exec without arguments uses the simple protocol, which runs a
		// file of several statements.
		if _, err := t.Exec(ctx, string(body)); err != nil {
			return fmt.Errorf("migration %s: %w", name, err)
		}
		if _, err := t.Exec(ctx, `INSERT INTO schema_migrations (version, name) VALUES ($1, $2)`,
			current+i+1, path.Base(name)); err != nil {
			return wrap(err)
		}
	}
	return wrap(t.Commit(ctx))
}

func (s *Store) readIdentity(ctx context.Context) (string, error) {
	var id string
	err := s.pool.QueryRow(ctx, `SELECT id::text FROM store_identity`).Scan(&id)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", errUnavailable(errors.New("store_identity is empty"))
	}
	return id, wrap(err)
}

// Tx runs fn in one SERIALIZABLE transaction and commits if fn returns nil.
//
// Why SERIALIZABLE and not REPEATABLE READ: the service was written against
// SQLite, where write transactions run one at a time, and it checks
// preconditions by reading (the account exists and is enabled before a
// token is minted for it; the project exists before an application joins
// it). REPEATABLE READ allows write skew there: one transaction reads the
// account and inserts a token while another deletes the account and its
// tokens; neither writes a row the other wrote, both commit, and a token
// outlives its account. SERIALIZABLE makes one of them fail with 40001 and
// run again, after which it sees the other's commit. The price is retries,
// which the Store contract allows: fn may run more than once.
func (s *Store) Tx(ctx context.Context, fn func(gatehouse.Tx) error) error {
	return s.withTx(ctx, pgx.Serializable, func(t *tx) error { return fn(t) })
}

// viewOptions are View's: REPEATABLE READ READ ONLY.
//
// REPEATABLE READ takes one snapshot at the first statement and keeps it, so
// every read of fn agrees with the others, and it never waits: a read-only
// transaction takes no row locks and no predicate locks, so it neither
// waits for writers nor makes them fail. What it gives up against
// SERIALIZABLE READ ONLY DEFERRABLE is the read-only anomaly: a snapshot
// that no serial order of the concurrent read-write transactions produces
// (it can see B's commit without the effects of an A that B was ordered
// after). The service's reads show what is stored, decide nothing that is
// written back (writes read again inside their own Tx), and the change
// feed's applier only reads the current state of keys whose changes have
// committed; the price of DEFERRABLE, waiting at the first statement until
// no concurrent serializable writer could make the snapshot unsafe, would
// put every list page behind the slowest writer, which is what View is
// there to avoid. READ ONLY makes PostgreSQL refuse any write (25006), the
// second guard behind readonly.Tx.
var viewOptions = pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}

// View runs fn in one read-only transaction (viewOptions) through the retry
// helper, so its errors are mapped as Tx's are. A write through the Tx fails
// with an internal error and reaches no statement.
func (s *Store) View(ctx context.Context, fn func(gatehouse.Tx) error) error {
	return s.retry(ctx, viewOptions, func(t *tx) error {
		t.readOnly = true
		return fn(readonly.Tx{Tx: t})
	})
}

// withTx runs fn in a read-write transaction at iso and retries it when it
// fails with a serialization failure or a deadlock. Every write of the
// store comes through here.
func (s *Store) withTx(ctx context.Context, iso pgx.TxIsoLevel, fn func(*tx) error) error {
	return s.retry(ctx, pgx.TxOptions{IsoLevel: iso}, fn)
}

// retry runs fn in a transaction with opts and runs it again when it fails
// with a serialization failure or a deadlock; this is the one place that
// retries. withTx and View come through here.
func (s *Store) retry(ctx context.Context, opts pgx.TxOptions, fn func(*tx) error) error {
	// lockChain: an attempt lost the race for the audit chain's head
	// (chain.go), so the next ones take it before their snapshot.
	lockChain := false
	for attempt := 1; ; attempt++ {
		err := s.attempt(ctx, opts, &lockChain, fn)
		if err == nil || !retryable(err) {
			return err
		}
		if attempt == maxAttempts {
			return &gatehouse.Error{Code: gatehouse.EUNAVAILABLE, Message: "store busy; try again",
				Err: fmt.Errorf("transaction gave up after %d attempts: %w", attempt, err)}
		}
		sleep := rand.N(min(backoffCap, backoffBase<<attempt))
		timer := time.NewTimer(sleep)
		select {
		case <-timer.C:
		case <-ctx.Done():
			timer.Stop()
			return errUnavailable(fmt.Errorf("waiting to retry a transaction: %w (after %v)", ctx.Err(), err))
		}
	}
}

// attempt runs fn once in a new transaction. A retryable failure of any
// statement dooms the transaction (PostgreSQL aborts it), so it is
// returned even when fn went on and returned something else or nil.
func (s *Store) attempt(ctx context.Context, opts pgx.TxOptions, lockChain *bool, fn func(*tx) error) error {
	pt, err := s.pool.BeginTx(ctx, opts)
	if err != nil {
		return wrap(err)
	}
	done := false
	defer func() {
		if !done {
			// Also on a panic in fn. A rollback that fails closes the
			// connection, which rolls back too.
			pt.Rollback(context.WithoutCancel(ctx))
		}
	}()
	t := &tx{tx: pt}
	if *lockChain {
		if err := t.lockChainFirst(ctx); err != nil {
			return err
		}
	}
	defer func() { *lockChain = *lockChain || t.chainConflict }()
	err = fn(t)
	switch {
	case t.retry != nil:
		return t.retry
	case err != nil:
		return err
	}
	done = true
	err = pt.Commit(ctx)
	if errors.Is(err, pgx.ErrTxCommitRollback) {
		// A statement failed and fn went on as if it had not.
		return gatehouse.Internal(err)
	}
	return wrap(err)
}

// Ping commits a write to the probe table: a read-only server (a standby
// after failover, default_transaction_read_only) or one that cannot write
// WAL fails it where a SELECT 1 would succeed.
func (s *Store) Ping(ctx context.Context) error {
	return s.withTx(ctx, pgx.ReadCommitted, func(t *tx) error {
		_, err := t.exec(ctx, `INSERT INTO probe (id, n) VALUES (1, 1) ON CONFLICT (id) DO UPDATE SET n = probe.n + 1`)
		return err
	})
}

// Check reads the database's identity, one round trip without writing: it
// fails when the server does not answer, or answers for another database
// than the one opened.
func (s *Store) Check(ctx context.Context) error {
	id, err := s.readIdentity(ctx)
	if err != nil {
		return err
	}
	if id != s.identity {
		return errUnavailable(fmt.Errorf("database lost: opened database %s, now connected to %s", s.identity, id))
	}
	return nil
}

// Close closes the pool, waiting for connections in use to be returned.
func (s *Store) Close() error {
	s.pool.Close()
	return nil
}

// ForEachToken streams every token from one query, which sees one snapshot;
// pgx reads the rows off the connection as fn consumes them, so they are
// never all in memory. fn may use the store (it gets another connection).
func (s *Store) ForEachToken(ctx context.Context, fn func(gatehouse.Token) error) error {
	rows, err := s.pool.Query(ctx, `SELECT `+tokenCols+` FROM tokens`)
	if err != nil {
		return wrap(err)
	}
	defer rows.Close()
	for rows.Next() {
		k, err := scanToken(rows)
		if err != nil {
			return scanFailed(err)
		}
		if err := fn(k); err != nil {
			return err
		}
	}
	return wrap(rows.Err())
}

// AppendEvents writes a batch of events in one transaction. Inserts that
// read nothing gain nothing from SERIALIZABLE, so it runs at READ COMMITTED.
func (s *Store) AppendEvents(ctx context.Context, events []gatehouse.Event) error {
	if len(events) == 0 {
		return nil
	}
	return s.withTx(ctx, pgx.ReadCommitted, func(t *tx) error { return t.appendEvents(ctx, events) })
}

// TouchTokens records a batch of token uses in one transaction. lastUsedAt
// only moves forward: at READ COMMITTED the guard is evaluated again on the
// newest row version after waiting for a concurrent writer, so batches
// flushed by different goroutines or replicas cannot move it back. Rows are
// updated in id order, so two batches lock them in the same order and cannot
// deadlock each other.
func (s *Store) TouchTokens(ctx context.Context, uses []gatehouse.TokenUse) error {
	if len(uses) == 0 {
		return nil
	}
	uses = slices.Clone(uses)
	slices.SortFunc(uses, func(a, b gatehouse.TokenUse) int {
		if c := strings.Compare(a.ID, b.ID); c != 0 {
			return c
		}
		return b.At.Compare(a.At) // newest first: the later ones are no-ops
	})
	return s.withTx(ctx, pgx.ReadCommitted, func(t *tx) error {
		b := &pgx.Batch{}
		for _, u := range uses {
			b.Queue(`UPDATE tokens SET last_used_at = $1, last_used_from = $2 WHERE id = $3 AND last_used_at < $1`,
				t.args(nanos(u.At), u.From, u.ID)...)
		}
		return t.batch(ctx, b)
	})
}

// ---- change feed

// ChangesSince returns up to limit changes with seq > after, in seq order,
// from one statement (one snapshot), so no change between two returned is
// missing.
func (s *Store) ChangesSince(ctx context.Context, after int64, limit int) ([]gatehouse.Change, error) {
	if limit <= 0 {
		return nil, gatehouse.Internal(fmt.Errorf("ChangesSince: limit %d, want > 0", limit))
	}
	var out []gatehouse.Change
	err := s.withTx(ctx, pgx.ReadCommitted, func(t *tx) (err error) {
		out, err = list(ctx, t, scanChange,
			`SELECT `+changeCols+` FROM changes WHERE seq > $1 ORDER BY seq LIMIT $2`, after, limit)
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// ChangeHead returns the greatest seq committed, which pruning keeps.
func (s *Store) ChangeHead(ctx context.Context) (int64, error) {
	var head int64
	err := s.withTx(ctx, pgx.ReadCommitted, func(t *tx) error {
		err := t.tx.QueryRow(ctx, `SELECT seq FROM change_head`).Scan(&head)
		if errors.Is(err, pgx.ErrNoRows) {
			return gatehouse.Internal(errors.New("change_head is empty"))
		}
		return t.fail(err)
	})
	return head, err
}

// PruneChanges deletes the changes with seq <= upTo and returns how many.
func (s *Store) PruneChanges(ctx context.Context, upTo int64) (int, error) {
	var n int64
	err := s.withTx(ctx, pgx.ReadCommitted, func(t *tx) error {
		tag, err := t.exec(ctx, `DELETE FROM changes WHERE seq <= $1`, upTo)
		n = tag.RowsAffected()
		return err
	})
	if err != nil {
		return 0, err
	}
	return int(n), nil
}

var _ gatehouse.Notifier = (*Store)(nil)

// Listen subscribes to the change feed's notifications on a connection of
// its own, opened with the pool's settings but outside the pool, so it
// never holds a connection the request path needs. It calls listening once
// LISTEN has taken effect (a commit after that is notified), then
// notify(seq) for each notification, in the order received, from this
// goroutine; a payload that is not a seq is ignored. It returns ctx.Err()
// when ctx ends and an EUNAVAILABLE error when the connection cannot be
// opened or fails; it never reconnects by itself, and closes its
// connection before returning.
//
// A server that stops answering without closing the connection leaves
// Listen waiting (until TCP keepalive gives up): a caller must not take
// silence for being current, and polls ChangeHead besides.
func (s *Store) Listen(ctx context.Context, listening func(), notify func(seq int64)) error {
	conn, err := pgx.ConnectConfig(ctx, s.pool.Config().ConnConfig)
	if err != nil {
		return s.listenErr(ctx, err)
	}
	defer func() {
		closeCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
		defer cancel()
		conn.Close(closeCtx)
	}()
	if _, err := conn.Exec(ctx, `LISTEN `+changesChannel); err != nil {
		return s.listenErr(ctx, err)
	}
	listening()
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return s.listenErr(ctx, err)
		}
		if n.Channel != changesChannel {
			continue
		}
		seq, err := strconv.ParseInt(n.Payload, 10, 64)
		if err != nil {
			continue
		}
		notify(seq)
	}
}

// listenErr is ctx.Err() once ctx has ended, else err as EUNAVAILABLE: any
// failure of the listening connection means notifications may be lost.
func (s *Store) listenErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if e := wrap(err); gatehouse.IsCode(e, gatehouse.EUNAVAILABLE) {
		return e
	}
	return errUnavailable(err)
}

// ---- errors

// SQLSTATEs the store tells apart.
const (
	serializationFailure = "40001"
	deadlockDetected     = "40P01"
	uniqueViolation      = "23505"
	foreignKeyViolation  = "23503"
	readOnlyTransaction  = "25006"
	queryCanceled        = "57014" // statement_timeout, or a cancel request
	lockNotAvailable     = "55P03" // lock_timeout
)

// retryable reports whether err is a serialization failure or a deadlock:
// the transaction was rolled back and running it again may succeed.
func retryable(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && (pe.Code == serializationFailure || pe.Code == deadlockDetected)
}

// errUnavailable is the error of a store that cannot be reached or cannot
// commit; the client sees only the message, the cause goes to the log.
func errUnavailable(cause error) error {
	return &gatehouse.Error{Code: gatehouse.EUNAVAILABLE, Message: "store unavailable", Err: cause}
}

// wrap turns a driver error into a *gatehouse.Error, keeping the cause for
// the log, and passes a *gatehouse.Error through.
//
// An error that is not PostgreSQL's answer to a statement (refused or lost
// connection, a timeout, a closed pool, the context ending) and the server's
// connection, resource and shutdown errors are EUNAVAILABLE: the request was
// fine and the store could not take it. A unique violation is ECONFLICT
// (inserts turn the expected ones into messages of their own). Any other
// SQL error is a bug: internal.
func wrap(err error) error {
	if err == nil {
		return nil
	}
	var ge *gatehouse.Error
	if errors.As(err, &ge) {
		return err
	}
	var (
		pe *pgconn.PgError
		ce *pgconn.ConnectError
	)
	if errors.As(err, &ce) || !errors.As(err, &pe) {
		// A connection refused for any reason (the server's answer is a
		// PgError then too: too many clients, database not accepting
		// connections, authentication) or no SQL answer at all.
		return errUnavailable(err)
	}
	switch {
	case pe.Code == serializationFailure || pe.Code == deadlockDetected:
		// withTx retries these; this is what escapes when it gives up.
		return &gatehouse.Error{Code: gatehouse.EUNAVAILABLE, Message: "store busy; try again", Err: err}
	case pe.Code == uniqueViolation:
		return &gatehouse.Error{Code: gatehouse.ECONFLICT, Message: "already exists", Err: err}
	case pe.Code == readOnlyTransaction, pe.Code == queryCanceled, pe.Code == lockNotAvailable,
		strings.HasPrefix(pe.Code, "08"), // connection exception
		strings.HasPrefix(pe.Code, "53"), // insufficient resources: disk full, out of memory, too many connections
		strings.HasPrefix(pe.Code, "57"), // operator intervention: shutdown, terminated, cannot connect now
		strings.HasPrefix(pe.Code, "58"): // system error: I/O
		return errUnavailable(err)
	}
	return gatehouse.Internal(err)
}

// scanFailed is the error of a row that does not decode: the schema and
// this code disagree, which is a bug (internal), not an outage.
func scanFailed(err error) error {
	var ge *gatehouse.Error
	if errors.As(err, &ge) {
		return err
	}
	return gatehouse.Internal(err)
}
