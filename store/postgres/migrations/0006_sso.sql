-- SSO accounts (OIDC login). source is 'local' or 'sso'; the times are
-- BIGINT Unix nanoseconds like every time here (0: never). sso is the
-- account's link to its identity provider user as JSON text ('' for
-- none): issuer, subject and the provider's refresh token sealed with
-- AES-256-GCM under a key derived from the OIDC client secret, which is
-- not in this database; never a plaintext secret.
ALTER TABLE accounts ADD COLUMN source TEXT NOT NULL DEFAULT 'local';
ALTER TABLE accounts ADD COLUMN last_login_at BIGINT NOT NULL DEFAULT 0;
ALTER TABLE accounts ADD COLUMN groups_refreshed_at BIGINT NOT NULL DEFAULT 0;
ALTER TABLE accounts ADD COLUMN sso TEXT NOT NULL DEFAULT '';
-- sso_issuer and sso_subject repeat the link's issuer and subject (''
-- for a local account) so that a login finds the account of a provider's
-- user by who the user is, not by the username the provider hands out;
-- at most one account is linked to one user of one provider.
ALTER TABLE accounts ADD COLUMN sso_issuer TEXT NOT NULL DEFAULT '';
ALTER TABLE accounts ADD COLUMN sso_subject TEXT NOT NULL DEFAULT '';
CREATE UNIQUE INDEX accounts_sso_user ON accounts (sso_issuer, sso_subject) WHERE sso_subject <> '';
