// Package storetest is the conformance suite for gatehouse.Store. Every
// backend runs it from its own tests:
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) gatehouse.Store {
//			s := openFresh(t)
//			t.Cleanup(func() { s.Close() })
//			return s
//		})
//	}
//
// Each storage behaviour is tested here once, so the backends cannot drift
// apart. Beyond the doc comments of gatehouse.Store the suite fixes what the
// layers above rely on: lists of accounts and projects are sorted by name;
// list-valued fields (capabilities, groups, scopes, roles, policies) and
// empty results come back as non-nil empty slices, so JSON shows [];
// times come back as the same instant, to the nanosecond, in UTC;
// TouchTokens only moves lastUsedAt forward; event ids are never reused,
// even after a prune; creating an operation for an unknown application is
// ENOTFOUND; DeleteAccount does not delete the account's tokens (the
// service does that in the same transaction, auditing each one); and
// Ping's probe write changes no domain data and queues with other writers.
//
// Time precision is the same on every backend: nanoseconds, stored as int64
// Unix nanoseconds in UTC (PostgreSQL's timestamptz would keep only
// microseconds, so the PostgreSQL backend does not use it), with instants
// outside 1677-2262 clamped. Also fixed here: ENOTFOUND and ECONFLICT leave
// the transaction usable; concurrent read-modify-write transactions lose no
// update; and audit text that is not valid UTF-8 or holds NUL bytes is
// stored, never failing the write.
//
// The change feed: seqs are positive and strictly increasing in commit
// order (a follower that keeps asking for what comes after the last seq it
// saw, while transactions commit concurrently, misses nothing); a
// rolled-back transaction leaves no change and does not move ChangeHead;
// recording nothing changes nothing; the store sets At; pruning never
// moves ChangeHead back.
//
// View: it reads what Tx committed, one snapshot for all of its reads
// (a commit between two of them is not seen, and does not wait for the
// View), none of a concurrent transaction's uncommitted writes; it
// completes while a write transaction is held open (so on SQLite it does
// not queue behind the writer); and every write through its Tx fails with
// EINTERNAL and changes nothing.
//
// Run runs every case twice, the second time through TxTwice, which runs
// each transaction function (of Tx and of View) in a rolled-back
// transaction before the real one: the Store contract lets a backend run fn more than once (PostgreSQL
// retries serialization failures), and the suite proves that is harmless.
// Package pgtest starts the throwaway PostgreSQL server that the
// PostgreSQL backend's tests run the suite on.
package storetest
