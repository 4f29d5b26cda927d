-- The audit trail's hash chain (audit_chain.go): each event's row holds
-- the hash of its predecessor (prev_hash) and its own (hash), both 32-byte
-- SHA-256, NULL for the events written before this migration. audit_chain
-- is one row: legacy_id, the greatest event id handed out before the
-- chain (those events stay outside it); start_id and start_hash, where the
-- kept chain starts (the last event pruned, or legacy_id and the zero
-- hash); head_id and head_hash, the newest chained event (the start while
-- there is none). The store updates the row in the transactions that
-- append and prune events.
ALTER TABLE events ADD COLUMN prev_hash BLOB;
ALTER TABLE events ADD COLUMN hash BLOB;
CREATE TABLE audit_chain (
	id         INTEGER PRIMARY KEY CHECK (id = 1),
	legacy_id  INTEGER NOT NULL,
	start_id   INTEGER NOT NULL,
	start_hash BLOB NOT NULL,
	head_id    INTEGER NOT NULL,
	head_hash  BLOB NOT NULL
);
INSERT INTO audit_chain (id, legacy_id, start_id, start_hash, head_id, head_hash)
SELECT 1, n, n, zeroblob(32), n, zeroblob(32) FROM (SELECT MAX(
	COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'events'), 0),
	COALESCE((SELECT MAX(id) FROM events), 0)) AS n);
