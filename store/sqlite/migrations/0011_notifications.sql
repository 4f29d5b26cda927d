-- Webhooks set through the API (those of the configuration file are not
-- stored). events is a JSON list; the HMAC key is never stored, only the
-- path of the file it is read from at delivery time.
CREATE TABLE webhooks (
	name        TEXT PRIMARY KEY,
	url         TEXT NOT NULL,
	secret_file TEXT NOT NULL,
	events      TEXT NOT NULL,
	created_at  INTEGER NOT NULL,
	updated_at  INTEGER NOT NULL
);

-- The notification outbox: a row is written in the transaction of the
-- change it reports and sent after commit. (webhook, event_key) is
-- unique, so one event (token.expiring: one token and one lead time) is
-- enqueued once however many servers notice it. body is the JSON sent;
-- it never holds a secret.
CREATE TABLE notifications (
	id              INTEGER PRIMARY KEY AUTOINCREMENT,
	webhook         TEXT NOT NULL,
	event           TEXT NOT NULL,
	event_key       TEXT NOT NULL,
	delivery_id     TEXT NOT NULL,
	body            BLOB NOT NULL,
	state           TEXT NOT NULL,
	attempts        INTEGER NOT NULL,
	next_attempt_at INTEGER NOT NULL,
	last_status     INTEGER NOT NULL,
	last_error      TEXT NOT NULL,
	created_at      INTEGER NOT NULL,
	updated_at      INTEGER NOT NULL
);
CREATE UNIQUE INDEX notifications_key ON notifications (webhook, event_key);
CREATE INDEX notifications_due ON notifications (state, next_attempt_at);
