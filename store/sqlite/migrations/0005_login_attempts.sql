-- The login throttle's failure budget, shared by every process on the
-- database: one row per admitted login attempt and key ("user:<name>",
-- "addr:<address>"). failed is 0 while the password check is pending and 1
-- once it failed; successes and checks that never ran are deleted. at is
-- when the attempt was admitted, Unix nanoseconds like every time here.
CREATE TABLE login_attempts (
	id     TEXT NOT NULL,
	key    TEXT NOT NULL,
	at     INTEGER NOT NULL,
	failed INTEGER NOT NULL,
	PRIMARY KEY (id, key)
);
-- The throttle's reads: a key's newest failures, its pending count.
CREATE INDEX login_attempts_key ON login_attempts (key, failed, at);
-- The reaper's prune.
CREATE INDEX login_attempts_at ON login_attempts (at);
