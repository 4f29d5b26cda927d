// Package sqlite is Gatehouse's embedded storage backend: one SQLite file
// (pure Go driver, no cgo) in WAL mode, with embedded ordered migrations.
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
	"sort"
	"strconv"
	"strings"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/gatehouse/gatehouse"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Store is the SQLite implementation of gatehouse.Store.
type Store struct {
	db *sql.DB
}

var _ gatehouse.Store = (*Store)(nil)

// Open opens (creating if needed) the database file at path and brings its
// schema up to date. Write transactions are IMMEDIATE, so concurrent
// writers queue on the busy timeout instead of failing on lock upgrade.
func Open(ctx context.Context, path string) (*Store, error) {
	if f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600); err != nil {
		return nil, fmt.Errorf("sqlite: %w", err)
	} else {
		f.Close()
	}
	q := url.Values{}
	for _, p := range []string{"busy_timeout(10000)", "journal_mode(WAL)", "synchronous(NORMAL)", "foreign_keys(1)"} {
		q.Add("_pragma", p)
	}
	q.Set("_txlock", "immediate")
	dsn := "file:" + (&url.URL{Path: path}).EscapedPath() + "?" + q.Encode()
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("sqlite: %w", err)
	}
	db.SetMaxOpenConns(8)
	db.SetMaxIdleConns(8)
	s := &Store{db: db}
	if err := s.migrate(ctx); err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}

// migrate applies the embedded migrations not yet recorded, in order.
func (s *Store) migrate(ctx context.Context) error {
	names, err := fs.Glob(migrations, "migrations/*.sql")
	if err != nil {
		return err
	}
	sort.Strings(names)
	return s.Tx(ctx, func(gtx gatehouse.Tx) error {
		tx := gtx.(*tx).tx
		if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)`); err != nil {
			return err
		}
		var current int
		if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&current); err != nil {
			return err
		}
		if current > len(names) {
			return fmt.Errorf("sqlite: database schema version %d is newer than this binary knows (%d); upgrade gatehouse", current, len(names))
		}
		for i, name := range names {
			version := i + 1
			if n, err := strconv.Atoi(strings.SplitN(strings.TrimPrefix(name, "migrations/"), "_", 2)[0]); err != nil || n != version {
				return fmt.Errorf("sqlite: migration %s is out of sequence", name)
			}
			if version <= current {
				continue
			}
			body, err := migrations.ReadFile(name)
			if err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, string(body)); err != nil {
				return fmt.Errorf("sqlite: migration %s: %w", name, err)
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, applied_at) VALUES ($1, strftime('%s','now'))`, version); err != nil {
				return err
			}
		}
		return nil
	})
}

// Tx runs fn in one IMMEDIATE transaction.
func (s *Store) Tx(ctx context.Context, fn func(gatehouse.Tx) error) error {
	t, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return wrap(err)
	}
	if err := fn(&tx{tx: t}); err != nil {
		t.Rollback()
		return err
	}
	return wrap(t.Commit())
}

// Ping reports whether the database answers.
func (s *Store) Ping(ctx context.Context) error { return s.db.PingContext(ctx) }

// Close closes the database.
func (s *Store) Close() error { return s.db.Close() }

// ForEachToken streams every token without holding them all.
func (s *Store) ForEachToken(ctx context.Context, fn func(gatehouse.Token) error) error {
	rows, err := s.db.QueryContext(ctx, `SELECT `+tokenCols+` FROM tokens`)
	if err != nil {
		return wrap(err)
	}
	defer rows.Close()
	for rows.Next() {
		t, err := scanToken(rows)
		if err != nil {
			return err
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
	return s.Tx(ctx, func(t gatehouse.Tx) error { return t.AppendEvents(ctx, events) })
}

// TouchTokens moves lastUsedAt forward for a batch of uses.
func (s *Store) TouchTokens(ctx context.Context, uses []gatehouse.TokenUse) error {
	if len(uses) == 0 {
		return nil
	}
	return s.Tx(ctx, func(gt gatehouse.Tx) error {
		stmt, err := gt.(*tx).tx.PrepareContext(ctx, `UPDATE tokens SET last_used_at = $1, last_used_from = $2 WHERE id = $3 AND last_used_at < $1`)
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

// wrap turns driver errors into gatehouse errors: unique violations are
// ECONFLICT, anything else internal.
func wrap(err error) error {
	if err == nil {
		return nil
	}
	var ge *gatehouse.Error
	if errors.As(err, &ge) {
		return err
	}
	var se *sqlite.Error
	if errors.As(err, &se) {
		switch se.Code() {
		case sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY, sqlite3.SQLITE_CONSTRAINT_UNIQUE:
			return &gatehouse.Error{Code: gatehouse.ECONFLICT, Message: "already exists", Err: err}
		}
	}
	return gatehouse.Internal(err)
}
