-- Trust policies: who may exchange an external OIDC ID token for a
-- Gatehouse token (RFC 8693). audiences, claims and scopes are JSON text;
-- jwks is the inline JWKS document, '' when the keys are fetched from
-- jwks_url. Times are BIGINT Unix nanoseconds like every time here.
CREATE TABLE trust_policies (
	name       TEXT COLLATE "C" PRIMARY KEY,
	issuer     TEXT NOT NULL,
	jwks_url   TEXT NOT NULL,
	jwks       TEXT NOT NULL,
	audiences  TEXT NOT NULL,
	claims     TEXT NOT NULL,
	account    TEXT NOT NULL,
	project    TEXT NOT NULL,
	role       TEXT NOT NULL,
	ttl        BIGINT NOT NULL,
	scopes     TEXT NOT NULL,
	created_at BIGINT NOT NULL,
	updated_at BIGINT NOT NULL
);

-- Subject tokens already exchanged (by jti, or by the token's hash), each
-- kept until it expires so that it is accepted once, by every replica;
-- pruned by the reaper. The primary key makes two replicas racing to
-- accept one token conflict: one of them is refused.
CREATE TABLE exchange_replays (
	key        TEXT COLLATE "C" PRIMARY KEY,
	expires_at BIGINT NOT NULL
);
CREATE INDEX exchange_replays_expires ON exchange_replays (expires_at);

-- Changing or deleting a trust policy revokes the tokens issued through
-- it, found by their created_by.
CREATE INDEX tokens_created_by ON tokens (created_by);
