-- Times are INTEGER unix nanoseconds in UTC; 0 is the zero time.
CREATE TABLE accounts (
	name          TEXT PRIMARY KEY,
	enabled       INTEGER NOT NULL,
	capabilities  TEXT NOT NULL,
	groups_json   TEXT NOT NULL,
	created_at    INTEGER NOT NULL,
	password_hash BLOB
);

CREATE TABLE tokens (
	id             TEXT PRIMARY KEY,
	name           TEXT NOT NULL,
	kind           TEXT NOT NULL,
	account        TEXT NOT NULL DEFAULT '',
	project        TEXT NOT NULL DEFAULT '',
	role           TEXT NOT NULL DEFAULT '',
	scopes         TEXT NOT NULL,
	issued_at      INTEGER NOT NULL,
	expires_at     INTEGER NOT NULL,
	last_used_at   INTEGER NOT NULL DEFAULT 0,
	last_used_from TEXT NOT NULL DEFAULT '',
	created_by     TEXT NOT NULL,
	hash           BLOB NOT NULL
);
CREATE INDEX tokens_account ON tokens (account, issued_at);
CREATE INDEX tokens_project ON tokens (project, role);
CREATE INDEX tokens_expires ON tokens (expires_at) WHERE expires_at > 0;

CREATE TABLE projects (
	name        TEXT PRIMARY KEY,
	description TEXT NOT NULL,
	roles       TEXT NOT NULL,
	created_at  INTEGER NOT NULL
);

CREATE TABLE applications (
	name       TEXT PRIMARY KEY,
	project    TEXT NOT NULL,
	spec       TEXT NOT NULL,
	status     TEXT NOT NULL,
	created_at INTEGER NOT NULL
);
CREATE INDEX applications_project ON applications (project, name);

CREATE TABLE operations (
	id           TEXT PRIMARY KEY,
	application  TEXT NOT NULL REFERENCES applications (name) ON DELETE CASCADE,
	state        TEXT NOT NULL,
	revision     TEXT NOT NULL,
	prune        INTEGER NOT NULL,
	dry_run      INTEGER NOT NULL,
	requested_by TEXT NOT NULL,
	created_at   INTEGER NOT NULL,
	updated_at   INTEGER NOT NULL,
	message      TEXT NOT NULL
);
CREATE INDEX operations_application ON operations (application, created_at);

CREATE TABLE rbac (
	id             INTEGER PRIMARY KEY CHECK (id = 1),
	policy_csv     TEXT NOT NULL,
	policy_default TEXT NOT NULL,
	scopes         TEXT NOT NULL,
	match_mode     TEXT NOT NULL
);

CREATE TABLE events (
	id          INTEGER PRIMARY KEY AUTOINCREMENT,
	time        INTEGER NOT NULL,
	type        TEXT NOT NULL,
	actor       TEXT NOT NULL,
	token_id    TEXT NOT NULL,
	token_kind  TEXT NOT NULL,
	method      TEXT NOT NULL,
	path        TEXT NOT NULL,
	resource    TEXT NOT NULL,
	action      TEXT NOT NULL,
	object      TEXT NOT NULL,
	decision    TEXT NOT NULL,
	status      INTEGER NOT NULL,
	remote_addr TEXT NOT NULL,
	user_agent  TEXT NOT NULL,
	detail      TEXT NOT NULL
);
CREATE INDEX events_actor ON events (actor, id);
CREATE INDEX events_token ON events (token_id, id);
CREATE INDEX events_time ON events (time);
