// Package postgres is Gatehouse's storage backend for several replicas: one
// PostgreSQL database shared by every replica, reached through a pgx
// connection pool (github.com/jackc/pgx/v5/pgxpool). It passes the same
// conformance suite (store/storetest) as the embedded SQLite backend.
//
// It owns the schema: ordered migrations embedded from migrations/*.sql,
// recorded in schema_migrations and applied in one transaction under a
// transaction-scoped advisory lock, so replicas that start together apply
// each migration once and the others wait for it. A database written by a
// newer binary is refused rather than guessed at. A later migration adds
// tables the way 0001 does (the change feed, for one); nothing in the
// schema assumes it is the last.
//
// Every Tx runs at SERIALIZABLE (Store.Tx says why not REPEATABLE
// READ). Serialization failures and deadlocks (SQLSTATE 40001, 40P01) are
// retried in one place, withTx, a bounded number of times with jittered
// exponential backoff; that is why the Store contract lets fn run more than
// once. Writes outside Tx (AppendEvents, TouchTokens, Ping, PruneChanges)
// read nothing they depend on and run at READ COMMITTED through the same
// path, as do the change feed's reads (ChangesSince, ChangeHead). View runs
// at REPEATABLE READ READ ONLY through the same path too (viewOptions says
// why not SERIALIZABLE READ ONLY DEFERRABLE): one snapshot, no locks, no
// waiting for writers, and a write refused by PostgreSQL itself.
//
// Errors: a taken key is ECONFLICT and a missing row ENOTFOUND, without
// failing a statement, so the transaction stays usable as it does on
// SQLite. A refused or lost connection, a timeout, a read-only server and
// the server's resource, shutdown and I/O errors are EUNAVAILABLE ("store
// unavailable", the cause kept for the log); other SQL errors are internal.
// Ping commits a write to a table of its own (probe), so a server that
// answers but cannot commit fails it. Check reads the database's identity
// (a UUID made by the first migration) and compares it with the one read
// at Open, so a URL that now leads to another database is caught.
//
// The change feed (migration 0002) is a table of changes keyed by seq and a
// one-row counter, change_head. RecordChanges advances the counter with
// UPDATE ... RETURNING inside the caller's SERIALIZABLE transaction, so
// recorders queue on that row and a greater seq always commits later; a
// sequence would not do, since its values are taken before commit, in
// any order. The same statement queues NOTIFY gatehouse_changes with the
// greatest seq as payload, which PostgreSQL delivers at commit and drops
// on rollback. Listen (gatehouse.Notifier) receives them on a connection
// of its own, outside the pool, and returns when that connection fails;
// the caller listens again and catches up with ChangesSince.
//
// The login throttle's budget (migration 0003) is a table of login
// attempts, one row per attempt and key. The service admits an attempt by
// counting its keys' rows and inserting its own in one SERIALIZABLE
// transaction; two replicas admitting attempts for one user at once read
// and write the same index range, so one fails with a serialization
// failure, is retried, and sees the other's attempt. Reads are bounded:
// LoginAttempts reads at most limit rows per key.
//
// Times are BIGINT Unix nanoseconds in UTC, 0 being the zero time, exactly
// as in SQLite: PostgreSQL's timestamptz keeps only microseconds, and the
// two backends, the in-memory caches and the replicas must agree on every
// instant to the nanosecond (a token issued at t is "issued before t+1ns"
// on both). The range is the years 1677 to 2262; instants outside it are
// clamped. To read one in psql: to_timestamp(issued_at / 1e9).
//
// Text is PostgreSQL text, which holds only valid UTF-8 without NUL bytes;
// the store writes each NUL and each run of invalid bytes as U+FFFD rather
// than fail the statement (request paths and user agents in audit events
// are whatever a client sent). Keys that lists sort by are COLLATE "C", so
// the order is byte order, as in SQLite, whatever the database's locale.
// Lists (capabilities, groups, scopes, roles) and the application's spec
// and status are JSON text, as in SQLite.
package postgres
