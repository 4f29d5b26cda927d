-- The audit trail's hash chain (audit_chain.go): each event's row holds
-- the hash of its predecessor (prev_hash) and its own (hash), both 32-byte
-- SHA-256, NULL for the events written before this migration. audit_chain
-- is one row: legacy_id, the greatest event id before the chain (those
-- events stay outside it); start_id and start_hash, where the kept chain
-- starts (the last event pruned, or legacy_id and the zero hash); head_id
-- and head_hash, the newest chained event (the start while there is none).
-- Appenders lock the row (SELECT ... FOR UPDATE) before they take ids, so
-- replicas append one after another: id order is chain order is commit
-- order.
ALTER TABLE events ADD COLUMN prev_hash BYTEA;
ALTER TABLE events ADD COLUMN hash BYTEA;
CREATE TABLE audit_chain (
	id         INTEGER PRIMARY KEY CHECK (id = 1),
	legacy_id  BIGINT NOT NULL,
	start_id   BIGINT NOT NULL,
	start_hash BYTEA NOT NULL,
	head_id    BIGINT NOT NULL,
	head_hash  BYTEA NOT NULL
);
INSERT INTO audit_chain (id, legacy_id, start_id, start_hash, head_id, head_hash)
SELECT 1, n, n, decode(repeat('00', 32), 'hex'), n, decode(repeat('00', 32), 'hex')
FROM (SELECT COALESCE(MAX(id), 0) AS n FROM events) AS e;
