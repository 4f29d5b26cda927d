-- Times are BIGINT Unix nanoseconds in UTC; 0 is the zero time (see doc.go).
-- Keys and names that lists sort by are COLLATE "C": byte order, as in
-- SQLite, whatever the database's default collation.
-- Lists (capabilities, groups, scopes, roles) and the application's spec and
-- status are JSON text, encoded and decoded by the store.

CREATE TABLE accounts (
	name          TEXT COLLATE "C" PRIMARY KEY,
	enabled       BOOLEAN NOT NULL,
	capabilities  TEXT NOT NULL,
	groups_json   TEXT NOT NULL,
	created_at    BIGINT NOT NULL,
	password_hash BYTEA NOT NULL
);

CREATE TABLE tokens (
	id             TEXT COLLATE "C" PRIMARY KEY,
	name           TEXT NOT NULL,
	kind           TEXT NOT NULL,
	account        TEXT NOT NULL DEFAULT '',
	project        TEXT NOT NULL DEFAULT '',
	role           TEXT NOT NULL DEFAULT '',
	scopes         TEXT NOT NULL,
	issued_at      BIGINT NOT NULL,
	expires_at     BIGINT NOT NULL,
	last_used_at   BIGINT NOT NULL DEFAULT 0,
	last_used_from TEXT NOT NULL DEFAULT '',
	created_by     TEXT NOT NULL,
	hash           BYTEA NOT NULL
);
CREATE INDEX tokens_account ON tokens (account, issued_at);
CREATE INDEX tokens_project ON tokens (project, role);
CREATE INDEX tokens_expires ON tokens (expires_at) WHERE expires_at <> 0;

CREATE TABLE projects (
	name        TEXT COLLATE "C" PRIMARY KEY,
	description TEXT NOT NULL,
	roles       TEXT NOT NULL,
	created_at  BIGINT NOT NULL
);

CREATE TABLE applications (
	name       TEXT COLLATE "C" PRIMARY KEY,
	project    TEXT NOT NULL,
	spec       TEXT NOT NULL,
	status     TEXT NOT NULL,
	created_at BIGINT NOT NULL
);
CREATE INDEX applications_project ON applications (project, name);

CREATE TABLE operations (
	id           TEXT COLLATE "C" PRIMARY KEY,
	application  TEXT COLLATE "C" NOT NULL REFERENCES applications (name) ON DELETE CASCADE,
	state        TEXT NOT NULL,
	revision     TEXT NOT NULL,
	prune        BOOLEAN NOT NULL,
	dry_run      BOOLEAN NOT NULL,
	requested_by TEXT NOT NULL,
	created_at   BIGINT NOT NULL,
	updated_at   BIGINT NOT NULL,
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

-- Ids come from an identity sequence: increasing, never reused (a rolled-back
-- or pruned id stays used). They are taken at insert, not at commit, so two
-- concurrent transactions may commit their ids out of order; the audit trail
-- only needs them unique and increasing. Events are pruned by id, so there is
-- no index on time to tax every insert.
CREATE TABLE events (
	id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	time        BIGINT NOT NULL,
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

-- One row that Ping rewrites: a write probe needs something of its own to
-- write, away from the domain tables.
CREATE TABLE probe (
	id INTEGER PRIMARY KEY,
	n  BIGINT NOT NULL
);

-- The database's identity, made once here. Check compares it with the one
-- read at Open, so a URL that now leads to another database (a fresh one
-- after a failover or DNS change, another installation's restore) is seen
-- as lost data rather than served from.
CREATE TABLE store_identity (
	only_row BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (only_row),
	id       UUID NOT NULL DEFAULT gen_random_uuid()
);
INSERT INTO store_identity DEFAULT VALUES;
