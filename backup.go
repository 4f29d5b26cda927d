package gatehouse

import (
	"context"
	"io"
	"time"
)

// Audit event types of backups and restores.
const (
	// EventStoreBackup: a consistent copy of the whole store was handed
	// out (GET /api/v1/admin/backup). Detail gives its size and SHA-256.
	EventStoreBackup = "store.backup"
	// EventStoreRestored: the store was restored from a backup, offline;
	// recorded in the restored store, with what the restore carried over
	// from the store it replaced.
	EventStoreRestored = "store.restored"
)

// Snapshotter is a Store that can copy all of its data, as of one commit,
// into a single file that a store of the same kind opens as it is (the
// embedded SQLite store). A store that cannot (PostgreSQL, which has
// pg_dump) does not implement it.
type Snapshotter interface {
	// Snapshot writes the copy and returns it open for reading from its
	// start. It takes no write lock: writes go on while it runs and do
	// not reach the copy. Closing the snapshot removes the copy.
	Snapshot(ctx context.Context) (Snapshot, error)
}

// Snapshot is a consistent copy of a whole store in one file.
type Snapshot interface {
	io.ReadSeekCloser
	// Size is the copy's length in bytes.
	Size() int64
}

// Backup is a snapshot handed out to a caller: the copy, and what the
// audit trail recorded of it.
type Backup struct {
	Snapshot
	SHA256  [32]byte
	TakenAt time.Time
}

// ExchangeReplay is the record of a subject token already exchanged, or
// of a CLI login confirmation already answered (Tx.AddExchangeReplay):
// its key, kept until ExpiresAt.
type ExchangeReplay struct {
	Key       string
	ExpiresAt time.Time
}

// RestoreTx is the Tx of a store that backups are restored into (the
// embedded SQLite store), with what only a restore reads or writes of it:
// the login throttle's records, whole, and the audit trail's id sequence.
// In a View the writes fail.
type RestoreTx interface {
	Tx
	// ListLoginAttemptEntries returns every entry of the login throttle
	// (one per attempt and key), sorted by id and key.
	ListLoginAttemptEntries(ctx context.Context) ([]LoginAttemptEntry, error)
	// PutLoginAttemptEntries writes entries, each over the entry of the
	// same id and key if there is one.
	PutLoginAttemptEntries(ctx context.Context, entries []LoginAttemptEntry) error
	// EventSeq is the greatest audit event id handed out, which pruning
	// events does not lower.
	EventSeq(ctx context.Context) (int64, error)
	// RaiseEventSeq makes every event id handed out from now on greater
	// than seq (an id already greater stays as it is).
	RaiseEventSeq(ctx context.Context, seq int64) error
}

// LoginAttemptEntry is one key's record of a login attempt (LoginAttempt):
// pending until the attempt failed.
type LoginAttemptEntry struct {
	ID     string
	Key    string
	At     time.Time
	Failed bool
}

// RestoreReport is what a restore from a backup did to the restored store.
//
// A restore over the store it replaces (Carried) takes that store's word
// for everything both hold and everything that decides permissions, so
// that the restore can only take away: what was revoked, deleted, disabled
// or cut off after the backup was taken stays so, and the backup's own
// records of tokens, accounts, trust policies, the RBAC settings, projects
// and applications give way to the replaced store's. Without a store to
// replace, or with an empty one, Carried is false: what happened after the
// backup cannot be known, and the backup's content is taken as it is.
type RestoreReport struct {
	Carried bool `json:"carried"`

	// SHA256 is the backup file's, as restored. BackupTakenAt and
	// BackupTakenBy are what the replaced store's store.backup event of
	// that file says; Unrecorded says the replaced store records no such
	// backup and the restore was told to go on anyway.
	SHA256        [32]byte  `json:"-"`
	BackupTakenAt time.Time `json:"backupTakenAt,omitzero"`
	BackupTakenBy string    `json:"backupTakenBy,omitempty"`
	Unrecorded    bool      `json:"unrecorded,omitempty"`

	// Tokens of the backup the replaced store no longer holds, deleted:
	// revoked since, or cut off with their account or trust policy
	// (TokensRevoked), or expired and removed (TokensExpired).
	TokensRevoked int `json:"tokensRevoked"`
	TokensExpired int `json:"tokensExpired"`
	// TokensShortened kept the replaced store's earlier expiry (a
	// rotation with a grace period).
	TokensShortened int `json:"tokensShortened"`
	// TokensUpdated: tokens whose record in the backup is not the
	// replaced store's (owner, kind, scopes, ...; not counting expiry and
	// last use): the replaced store's record is kept.
	TokensUpdated int `json:"tokensUpdated"`

	// AccountsDeleted: accounts of the backup that the replaced store no
	// longer holds (deleted since, perhaps made again), deleted with
	// their tokens. AccountsUpdated took the replaced store's state
	// (enabled, capabilities, groups, password, SSO link);
	// AccountsDisabled of them are disabled.
	AccountsDeleted  int `json:"accountsDeleted"`
	AccountsUpdated  int `json:"accountsUpdated"`
	AccountsDisabled int `json:"accountsDisabled"`

	// Trust policies of the backup deleted since (deleted again), or
	// changed since (the replaced store's definition kept).
	TrustPoliciesDeleted int `json:"trustPoliciesDeleted"`
	TrustPoliciesUpdated int `json:"trustPoliciesUpdated"`
	// ExchangeReplays is how many records of subject tokens already
	// exchanged (and of CLI login confirmations already answered) were
	// carried over, so that none is used twice.
	ExchangeReplays int `json:"exchangeReplays"`
	// LoginAttempts is how many entries of the login throttle were
	// carried over, so that failures after the backup still count.
	LoginAttempts int `json:"loginAttempts"`

	// What decides permissions is the replaced store's: RBACUpdated says
	// its RBAC settings replaced the backup's; the projects (roles,
	// policy lines, group bindings) and applications (which name the
	// RBAC objects <project>/<name>) are made, updated or deleted to be
	// the replaced store's, with the applications' operations.
	RBACUpdated         bool `json:"rbacUpdated"`
	ProjectsCreated     int  `json:"projectsCreated"`
	ProjectsUpdated     int  `json:"projectsUpdated"`
	ProjectsDeleted     int  `json:"projectsDeleted"`
	ApplicationsCreated int  `json:"applicationsCreated"`
	ApplicationsUpdated int  `json:"applicationsUpdated"`
	ApplicationsDeleted int  `json:"applicationsDeleted"`

	// What the replaced store holds that the backup does not (made after
	// it): gone with the restore. Tokens counts those still unexpired,
	// which no longer work.
	NewerAccounts      int `json:"newerAccounts"`
	NewerTokens        int `json:"newerTokens"`
	NewerTrustPolicies int `json:"newerTrustPolicies"`
}
