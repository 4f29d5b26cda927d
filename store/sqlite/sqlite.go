package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/store/internal/readonly"
)

//go:embed migrations/*.sql
var migrations embed.FS

// busyTimeout is how long a writer waits for the write lock before giving
// up. Write transactions are short, so reaching it means something is stuck.
const busyTimeout = 10000 // milliseconds

// Store is the SQLite implementation of gatehouse.Store. It is safe for
// concurrent use.
type Store struct {
	db *sql.DB

	// ro is a second handle on the same file, opened read-only (mode=ro),
	// for View: its transactions are DEFERRED, so they take no write lock
	// and never queue on writer, and in WAL mode a reader and the writer do
	// not wait for each other. SQLite refuses every write on it, and it
	// cannot create the file: a connection it opens after the database was
	// deleted fails rather than start an empty one.
	ro *sql.DB

	// writer admits one write transaction of this process at a time.
	// SQLite allows one writer anyway; queueing here hands the lock over as
	// soon as it is free, where a writer waiting in SQLite's busy handler
	// polls with sleeps of up to 100ms (measured: p99 10-20ms, max 150ms
	// for a 100µs transaction). busy_timeout still covers other processes.
	writer chan struct{}

	// pin holds one connection open for the store's life. SQLite deletes
	// the -wal file when the last connection closes and makes a new one
	// on the next open; with the pool free to close connections, the WAL
	// check in files would then see a replacement that is not one.
	pin *sql.Conn

	// files are the database file and its WAL as opened. SQLite keeps
	// writing to the open files when their names are deleted or replaced,
	// so a commit there succeeds and is lost: writes are acknowledged only
	// while the paths still name these files.
	files []openedFile

	// freeSpace reports the free space of a directory, for Snapshot's
	// check (tests fill the disk through it).
	freeSpace func(dir string) (uint64, error)
}

// openedFile is a path and the file (device and inode) it named at Open.
type openedFile struct {
	path string
	info os.FileInfo
}

var _ gatehouse.Store = (*Store)(nil)

// Open opens the database file at path, creating it with mode 0600 if it
// does not exist, and brings its schema up to date. The directory must exist.
// A missing database file whose -wal or -shm file is still there is refused:
// the database was deleted or moved, and SQLite would replay that WAL into a
// new, empty file.
func Open(ctx context.Context, path string) (*Store, error) {
	if err := checkOrphans(path); err != nil {
		return nil, err
	}
	// Create the file ourselves: SQLite would create it with 0644 under the
	// usual umask, and the file holds password and token hashes. SQLite
	// gives the -wal and -shm files the database file's mode.
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}

	db, err := sql.Open("sqlite", dsn(path, false))
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	// A few connections let readers (ForEachToken, list pages) run beside
	// the one writer that WAL allows.
	db.SetMaxOpenConns(8)
	db.SetMaxIdleConns(8)
	if err := migrate(ctx, db, migrations); err != nil {
		db.Close()
		return nil, fmt.Errorf("sqlite: %s: %w", path, err)
	}
	pin, err := db.Conn(ctx)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("sqlite: %s: %w", path, err)
	}
	// The read-only handle opens once the WAL exists (pin holds it):
	// mode=ro cannot put a database into WAL mode.
	ro, err := sql.Open("sqlite", dsn(path, true))
	if err != nil {
		pin.Close()
		db.Close()
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	ro.SetMaxOpenConns(8)
	ro.SetMaxIdleConns(8)
	s := &Store{db: db, ro: ro, writer: make(chan struct{}, 1), pin: pin, freeSpace: freeSpace}
	if s.files, err = identify(path); err != nil {
		s.Close()
		return nil, fmt.Errorf("sqlite: %w", err)
	}
	if err := ro.PingContext(ctx); err != nil {
		s.Close()
		return nil, fmt.Errorf("sqlite: %s: read-only connection: %w", path, err)
	}
	return s, nil
}

// checkOrphans refuses a missing database file that left its -wal or -shm
// file behind.
func checkOrphans(path string) error {
	if _, err := os.Lstat(path); !errors.Is(err, fs.ErrNotExist) {
		return nil // there, or an error that opening will report
	}
	for _, suffix := range []string{"-wal", "-shm", "-journal"} {
		if _, err := os.Lstat(path + suffix); err == nil {
			return fmt.Errorf("sqlite: %s is missing but %s is there: the database was deleted or moved; restore it, or remove both to start with an empty one", path, path+suffix)
		}
	}
	return nil
}

// identify records the files that path and its WAL name now. Open calls it
// once the schema is migrated and pin is held, so the WAL exists (a
// connection in WAL mode opens it) and stays the same file until Close. A
// database not in WAL mode has no WAL to watch.
func identify(path string) ([]openedFile, error) {
	var files []openedFile
	for _, p := range []string{path, path + "-wal"} {
		fi, err := os.Stat(p)
		if errors.Is(err, fs.ErrNotExist) && p != path {
			continue
		}
		if err != nil {
			return nil, err
		}
		files = append(files, openedFile{path: p, info: fi})
	}
	return files, nil
}

// errUnavailable is the error of a store that cannot take writes; the
// client sees only the message, the cause goes to the log.
func errUnavailable(cause error) error {
	return &gatehouse.Error{Code: gatehouse.EUNAVAILABLE, Message: "store unavailable", Err: cause}
}

// checkFiles reports EUNAVAILABLE unless every path still names the file
// that it named at Open.
func (s *Store) checkFiles() error {
	for _, f := range s.files {
		fi, err := os.Stat(f.path)
		if err != nil {
			return errUnavailable(fmt.Errorf("database file lost: %w", err))
		}
		if !os.SameFile(fi, f.info) {
			return errUnavailable(fmt.Errorf("database file lost: %s was replaced by another file", f.path))
		}
	}
	return nil
}

// dsn builds the driver's connection string. Pragmas go in the DSN, not in
// one-off statements, because database/sql pools connections and every new
// connection must get them.
//
// A readOnly connection (View's) is opened with mode=ro and begins DEFERRED
// transactions; it leaves the journal mode, which is persistent and needs
// a write, to the read-write handle. busy_timeout still matters to it: a
// reader can meet SQLITE_BUSY briefly while another connection recovers
// or restarts the WAL.
func dsn(path string, readOnly bool) string {
	q := url.Values{}
	pragmas := []string{fmt.Sprintf("busy_timeout(%d)", busyTimeout)}
	if !readOnly {
		pragmas = append(pragmas,
			"journal_mode(WAL)",
			"synchronous(NORMAL)", // durable across crashes in WAL mode; may lose the last commit on power loss
			"foreign_keys(1)")
	}
	for _, p := range pragmas {
		q.Add("_pragma", p)
	}
	if readOnly {
		q.Set("mode", "ro")
		q.Set("_txlock", "deferred")
	} else {
		q.Set("_txlock", "immediate")
	}
	// The driver opens "file:" names as URIs, so the path is escaped: a '?'
	// or '#' in a directory name must not start the query.
	return "file:" + (&url.URL{Path: path}).EscapedPath() + "?" + q.Encode()
}

// migrate applies, in one transaction, the migrations of fsys (files
// migrations/NNNN_name.sql numbered 1, 2, 3, ...) that schema_migrations
// does not record yet. A database at a version this binary does not know
// was written by a newer binary and is refused: its schema may mean things
// this code would get wrong.
func migrate(ctx context.Context, db *sql.DB, fsys fs.FS) error {
	names, err := migrationNames(fsys)
	if err != nil {
		return err
	}
	return runTx(ctx, db, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
			version    INTEGER PRIMARY KEY,
			name       TEXT NOT NULL,
			applied_at INTEGER NOT NULL)`); err != nil {
			return err
		}
		var current int
		if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&current); err != nil {
			return err
		}
		if current > len(names) {
			return fmt.Errorf("database schema version %d is newer than this binary supports (%d): run a newer gatehouse", current, len(names))
		}
		for i, name := range names[current:] {
			version := current + i + 1
			body, err := fs.ReadFile(fsys, name)
			if err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, string(body)); err != nil {
				return fmt.Errorf("migration %s: %w", name, err)
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, CAST(strftime('%s', 'now') AS INTEGER))`,
				version, path.Base(name)); err != nil {
				return err
			}
		}
		return nil
	})
}

// withTx runs fn in one write transaction once this process's earlier
// writers are done, or fails when ctx ends first. It commits only while
// the database files are the ones opened, and reports a commit that raced
// with their loss as failed: it went to a file no one will open again.
func (s *Store) withTx(ctx context.Context, fn func(*sql.Tx) error) error {
	select {
	case s.writer <- struct{}{}:
	case <-ctx.Done():
		return gatehouse.Internal(ctx.Err())
	}
	defer func() { <-s.writer }()
	err := runTx(ctx, s.db, func(t *sql.Tx) error {
		if err := fn(t); err != nil {
			return err
		}
		return s.checkFiles()
	})
	if err != nil {
		return err
	}
	return s.checkFiles()
}

// runTx runs fn in one transaction (IMMEDIATE, from the DSN) and commits
// if fn returns nil. It rolls back on an error or a panic; the error of fn
// is returned as is.
func runTx(ctx context.Context, db *sql.DB, fn func(*sql.Tx) error) error {
	t, err := db.BeginTx(ctx, nil)
	if err != nil {
		return wrap(err)
	}
	done := false
	defer func() {
		if !done {
			t.Rollback()
		}
	}()
	if err := fn(t); err != nil {
		return err
	}
	done = true
	return wrap(t.Commit())
}

// Tx runs fn in one write transaction. SQLite serializes writers, so fn
// never needs to be retried and runs exactly once. fn must not start
// another write (Tx, AppendEvents, TouchTokens) on s: it would wait for
// the transaction it runs in.
func (s *Store) Tx(ctx context.Context, fn func(gatehouse.Tx) error) error {
	return s.withTx(ctx, func(t *sql.Tx) error { return fn(&tx{tx: t}) })
}

// View runs fn in one read transaction on the read-only handle. It does
// not queue for the writer: a View completes while a Tx is open, and sees
// the last commit before its first read. SQLite's read transaction in WAL
// mode keeps that snapshot until it ends, so every read in fn agrees. It
// checks the database files before and after fn, like Check: a path that
// no longer names the file opened means the data this View would return
// is in a file no write reaches (and a connection opened since may have
// read the replacement), so it reports EUNAVAILABLE instead.
func (s *Store) View(ctx context.Context, fn func(gatehouse.Tx) error) error {
	if err := s.checkFiles(); err != nil {
		return err
	}
	t, err := s.ro.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return wrap(err)
	}
	// Nothing to commit: rolling back ends the read transaction the same
	// way, also on a panic in fn.
	defer t.Rollback()
	r := &tx{tx: t}
	if err := fn(viewTx{Tx: readonly.Tx{Tx: r}, r: r}); err != nil {
		return err
	}
	return s.checkFiles()
}

// Ping commits a write to the probe table. It queues with the other
// writers, so it also shows a writer that is stuck.
func (s *Store) Ping(ctx context.Context) error {
	return s.withTx(ctx, func(t *sql.Tx) error {
		_, err := t.ExecContext(ctx, `INSERT INTO probe (id, n) VALUES (1, 1) ON CONFLICT (id) DO UPDATE SET n = probe.n + 1`)
		return wrap(err)
	})
}

// Check reports whether the database files are still the ones opened.
func (s *Store) Check(ctx context.Context) error { return s.checkFiles() }

// Close closes the database.
func (s *Store) Close() error {
	return errors.Join(s.ro.Close(), s.pin.Close(), s.db.Close())
}

// ForEachToken streams every token in one read; in WAL mode that read sees
// one snapshot and does not block writers. fn may use the store.
func (s *Store) ForEachToken(ctx context.Context, fn func(gatehouse.Token) error) error {
	rows, err := s.db.QueryContext(ctx, `SELECT `+tokenCols+` FROM tokens`)
	if err != nil {
		return wrap(err)
	}
	defer rows.Close()
	for rows.Next() {
		t, err := scanToken(rows)
		if err != nil {
			return wrap(err)
		}
		if err := fn(t); err != nil {
			return err
		}
	}
	return wrap(rows.Err())
}

// AppendEvents writes a batch of events in one transaction.
func (s *Store) AppendEvents(ctx context.Context, events []gatehouse.Event) error {
	if len(events) == 0 {
		return nil
	}
	return s.withTx(ctx, func(t *sql.Tx) error { return appendEvents(ctx, t, events) })
}

// TouchTokens records a batch of token uses in one transaction. lastUsedAt
// only moves forward, so batches flushed out of order by different
// goroutines cannot move it back.
func (s *Store) TouchTokens(ctx context.Context, uses []gatehouse.TokenUse) error {
	if len(uses) == 0 {
		return nil
	}
	return s.withTx(ctx, func(t *sql.Tx) error {
		stmt, err := t.PrepareContext(ctx, `UPDATE tokens SET last_used_at = $1, last_used_from = $2 WHERE id = $3 AND last_used_at < $1`)
		if err != nil {
			return wrap(err)
		}
		defer stmt.Close()
		for _, u := range uses {
			if _, err := stmt.ExecContext(ctx, nanos(u.At), u.From, u.ID); err != nil {
				return wrap(err)
			}
		}
		return nil
	})
}

// ChangesSince returns up to limit changes with seq > after, in seq
// order. It reads without queueing for the write lock: in WAL mode a read
// sees the last commit and blocks no writer.
func (s *Store) ChangesSince(ctx context.Context, after int64, limit int) ([]gatehouse.Change, error) {
	if limit <= 0 {
		return nil, gatehouse.Internal(fmt.Errorf("ChangesSince: limit %d, want > 0", limit))
	}
	rows, err := s.db.QueryContext(ctx, `SELECT `+changeCols+` FROM changes WHERE seq > $1 ORDER BY seq LIMIT $2`, after, limit)
	if err != nil {
		return nil, wrap(err)
	}
	defer rows.Close()
	out := []gatehouse.Change{}
	for rows.Next() {
		c, err := scanChange(rows)
		if err != nil {
			return nil, wrap(err)
		}
		out = append(out, c)
	}
	return out, wrap(rows.Err())
}

// ChangeHead returns the greatest seq committed, which pruning keeps.
func (s *Store) ChangeHead(ctx context.Context) (int64, error) {
	var head int64
	err := s.db.QueryRowContext(ctx, `SELECT seq FROM change_head WHERE id = 1`).Scan(&head)
	return head, wrap(err)
}

// PruneChanges deletes the changes with seq <= upTo and returns how many.
func (s *Store) PruneChanges(ctx context.Context, upTo int64) (int, error) {
	var n int64
	err := s.withTx(ctx, func(t *sql.Tx) error {
		r, err := t.ExecContext(ctx, `DELETE FROM changes WHERE seq <= $1`, upTo)
		if err != nil {
			return wrap(err)
		}
		n, err = r.RowsAffected()
		return wrap(err)
	})
	if err != nil {
		return 0, err
	}
	return int(n), nil
}

// wrap turns a driver error into a *gatehouse.Error (the cause is kept for
// the log, never shown) and passes *gatehouse.Error through. A failure of
// the disk or the file is EUNAVAILABLE: the request was fine and the store
// could not take it, which a client should retry later, not report as a
// bug.
func wrap(err error) error {
	if err == nil {
		return nil
	}
	var ge *gatehouse.Error
	if errors.As(err, &ge) {
		return err
	}
	if storageFailure(err) {
		return errUnavailable(err)
	}
	return gatehouse.Internal(err)
}

// storageFailure reports whether err is a SQLite failure of the storage
// rather than of the statement: the disk is full, an I/O call failed, the
// file became read-only or cannot be opened, or another process held the
// write lock for all of busyTimeout.
func storageFailure(err error) bool {
	var se *sqlite.Error
	if !errors.As(err, &se) {
		return false
	}
	switch se.Code() & 0xff { // the primary code of an extended one
	case sqlite3.SQLITE_FULL, sqlite3.SQLITE_IOERR, sqlite3.SQLITE_READONLY,
		sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_BUSY:
		return true
	}
	return false
}

// isConstraint reports whether err is a SQLite constraint violation of one
// of the given extended codes.
func isConstraint(err error, codes ...int) bool {
	var se *sqlite.Error
	if !errors.As(err, &se) {
		return false
	}
	for _, c := range codes {
		if se.Code() == c {
			return true
		}
	}
	return false
}

// insert runs an INSERT and reports a unique or primary-key violation as
// ECONFLICT with msg, which must be safe to show to a client.
func insert(ctx context.Context, t *sql.Tx, msg, q string, args ...any) error {
	_, err := t.ExecContext(ctx, q, args...)
	if isConstraint(err, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY, sqlite3.SQLITE_CONSTRAINT_UNIQUE) {
		return &gatehouse.Error{Code: gatehouse.ECONFLICT, Message: msg, Err: err}
	}
	return wrap(err)
}
