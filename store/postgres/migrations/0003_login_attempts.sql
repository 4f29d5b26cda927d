-- The login throttle's failure budget, shared by every replica: one row
-- per admitted login attempt and key ("user:<name>", "addr:<address>").
-- failed is false while the password check is pending and true once it
-- failed; successes and checks that never ran are deleted. at is when the
-- attempt was admitted, BIGINT Unix nanoseconds like every time here.
--
-- Admitting an attempt reads its keys' rows and inserts its own in one
-- SERIALIZABLE transaction: the index range read on (key, ...) is what
-- makes two concurrent admissions against one key conflict, so that one
-- of them is retried and sees the other's slot taken.
CREATE TABLE login_attempts (
	id     TEXT COLLATE "C" NOT NULL,
	key    TEXT COLLATE "C" NOT NULL,
	at     BIGINT NOT NULL,
	failed BOOLEAN NOT NULL,
	PRIMARY KEY (id, key)
);
CREATE INDEX login_attempts_key ON login_attempts (key, failed, at);
CREATE INDEX login_attempts_at ON login_attempts (at);
