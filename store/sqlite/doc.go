// Package sqlite is Gatehouse's embedded storage backend: one SQLite file
// under the data directory, opened with the pure-Go driver modernc.org/sqlite
// (no cgo), in WAL mode so readers never wait for the writer.
//
// It owns the schema: ordered migrations embedded from migrations/*.sql and
// recorded in schema_migrations. A database written by a newer binary is
// refused rather than guessed at.
//
// Every write transaction is BEGIN IMMEDIATE: it takes the write lock up
// front, so concurrent writers queue on busy_timeout instead of failing with
// SQLITE_BUSY when a deferred transaction tries to upgrade its lock. Inside
// one process writers also queue on a channel first, which hands the lock
// over without the busy handler's sleeps; busy_timeout is then only for
// other processes on the same file.
//
// View runs on a second handle on the same file, opened read-only
// (mode=ro), whose transactions are plain BEGIN (DEFERRED): it takes no
// write lock and skips the writer queue, and in WAL mode its snapshot and
// the writer never wait for each other. SQLite refuses a write there, and
// a new connection of that handle cannot create a deleted database file.
// View checks the files before and after it reads, as a commit does, so a
// database deleted or replaced under the store is EUNAVAILABLE to reads in
// a View too.
//
// SQLite goes on committing into its open files when their names are
// deleted or replaced, and those commits are lost. So the store records
// which files (device and inode) the database and its WAL were at Open,
// holds one connection for its whole life so that SQLite keeps that WAL,
// and checks them just before every commit and again after it: a write
// that could not be read back is rolled back or reported failed, never
// acknowledged. That, a full disk and other I/O failures are EUNAVAILABLE
// ("store unavailable", the cause kept for the log). Ping commits a write to a table of its own
// (probe) rather than pinging: only a commit shows a full disk.
//
// The change feed is a table of changes and a one-row counter,
// change_head, that RecordChanges advances in the caller's transaction;
// with one writer at a time, seqs follow commit order. SQLite has no way to
// wake other processes, so the store is not a gatehouse.Notifier: a
// follower polls ChangeHead.
//
// Times are stored as INTEGER Unix nanoseconds in UTC, 0 being the zero
// time. That covers the years 1678 to 2262; later or earlier instants are
// clamped to the nearest representable one. Lists (scopes, capabilities,
// groups, roles) are stored as JSON text. The SQL uses $N placeholders and
// no SQLite-only syntax where a portable form costs nothing, so the
// PostgreSQL backend can share the queries.
package sqlite
