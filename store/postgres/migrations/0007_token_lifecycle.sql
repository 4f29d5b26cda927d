-- Token lifecycle: a token's idle timeout (seconds, 0: none), whether it
-- may rotate itself, the rotation family it belongs to ('' : its own id
-- is the family) and the SHA-256 of its whole text, by which a secret
-- scanner reports it leaked without holding it (empty for tokens minted
-- before this migration).
ALTER TABLE tokens ADD COLUMN idle_timeout BIGINT NOT NULL DEFAULT 0;
ALTER TABLE tokens ADD COLUMN self_rotate BOOLEAN NOT NULL DEFAULT false;
ALTER TABLE tokens ADD COLUMN family TEXT COLLATE "C" NOT NULL DEFAULT '';
ALTER TABLE tokens ADD COLUMN text_hash BYTEA NOT NULL DEFAULT ''::bytea;
-- Whole indexes, not partial ones: a lookup by value (text_hash = ?,
-- family = ?) cannot use an index whose condition it does not repeat,
-- and an unauthenticated leak report must never scan the table.
CREATE INDEX tokens_text_hash ON tokens (text_hash);
CREATE INDEX tokens_family ON tokens (family);

-- Tokens rotated away: the SHA-256 of the old secret, the family it
-- belonged to and the end of its grace period (grace_until; 0: none), kept until the old token would have expired (keep_until,
-- 0: no expiry) and no longer than its family has a token, so that the
-- old token presented again is known for what it is: its chain is
-- compromised.
CREATE TABLE token_rotations (
	id         TEXT COLLATE "C" PRIMARY KEY,
	hash       BYTEA NOT NULL,
	family     TEXT COLLATE "C" NOT NULL,
	account    TEXT COLLATE "C" NOT NULL,
	successor  TEXT COLLATE "C" NOT NULL,
	rotated_at BIGINT NOT NULL,
	grace_until BIGINT NOT NULL,
	keep_until BIGINT NOT NULL
);
CREATE INDEX token_rotations_family ON token_rotations (family);
