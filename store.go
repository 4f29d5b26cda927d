package gatehouse

import (
	"context"
	"time"
)

// Store is Gatehouse's persistence. Backends (SQLite, PostgreSQL) implement
// it and must pass the conformance suite in store/storetest.
//
// Storage is dumb: no permission checks, no business rules beyond integrity
// (unique names, not-found). Errors are *Error with ENOTFOUND or ECONFLICT
// where the contract says so, and EUNAVAILABLE when the store cannot
// commit or has lost its data (disk full, I/O error, read-only device,
// database file deleted or replaced); anything else is an internal error.
// A write that fails with EUNAVAILABLE must be treated as not done: the
// store never acknowledges a write it cannot read back.
type Store interface {
	// Tx runs fn in one read-write transaction and commits if fn returns
	// nil. A backend may run fn more than once (PostgreSQL serialization
	// retries), so fn must have no side effects outside tx.
	Tx(ctx context.Context, fn func(tx Tx) error) error

	// View runs fn in one read-only transaction: every read in fn sees the
	// same consistent snapshot of committed data, and nothing a concurrent
	// transaction has not committed. It is for reads, and does not take
	// the write path: on SQLite it does not wait for the writer, nor does
	// a writer wait for it. Every write through the Tx fails with an
	// internal error and writes nothing; View then returns fn's error. Like
	// Tx, a backend may run fn more than once, so fn must have no side
	// effects outside tx. View returns EUNAVAILABLE when the store has lost
	// its data (see Check), rather than answer from a database no write
	// reaches any more.
	View(ctx context.Context, fn func(tx Tx) error) error

	// ForEachToken streams every stored token, for loading the in-memory
	// cache at start-up without holding them all twice.
	ForEachToken(ctx context.Context, fn func(Token) error) error

	// AppendEvents writes a batch of audit events (the request-path batcher).
	AppendEvents(ctx context.Context, events []Event) error

	// TouchTokens records token uses (lastUsedAt, lastUsedFrom). Unknown
	// ids are ignored: the token may have been revoked meanwhile.
	TouchTokens(ctx context.Context, uses []TokenUse) error

	// ChangesSince returns committed changes with Seq > after, in Seq
	// order, at most limit of them (limit > 0). Because Seq follows commit
	// order (see Tx.RecordChanges), no change with a smaller Seq than one
	// returned can commit later.
	ChangesSince(ctx context.Context, after int64, limit int) ([]Change, error)

	// ChangeHead returns the greatest committed Seq, 0 before the first.
	ChangeHead(ctx context.Context) (int64, error)

	// PruneChanges deletes changes with Seq <= upTo and returns how many.
	PruneChanges(ctx context.Context, upTo int64) (int, error)

	// Ping reports whether the store can commit: it commits a small write
	// of its own (no domain data), because a full disk, a read-only or
	// failing device and a deleted database file all still answer reads.
	// It writes, so it is for a background monitor, not for every request.
	Ping(ctx context.Context) error

	// Check reports, without writing, what the store can tell cheaply
	// about having lost its data: SQLite checks that its database files
	// are still the ones it opened. Cheap enough for every readiness
	// request.
	Check(ctx context.Context) error

	Close() error
}

// Tx is the set of operations available inside a transaction.
type Tx interface {
	// Accounts. CreateAccount returns ECONFLICT for a taken name;
	// Get/Update/Delete return ENOTFOUND for an unknown one.
	CreateAccount(ctx context.Context, a Account) error
	GetAccount(ctx context.Context, name string) (Account, error)
	ListAccounts(ctx context.Context) ([]Account, error)
	UpdateAccount(ctx context.Context, a Account) error
	DeleteAccount(ctx context.Context, name string) error
	// GetAccountBySSO returns the account whose SSO link names this user
	// (Subject not empty) of this identity provider, ENOTFOUND for none.
	// At most one account links to one user: CreateAccount returns
	// ECONFLICT for a second.
	GetAccountBySSO(ctx context.Context, issuer, subject string) (Account, error)

	// Tokens. CreateToken returns ECONFLICT for a taken id.
	CreateToken(ctx context.Context, t Token) error
	GetToken(ctx context.Context, id string) (Token, error)
	// ListTokens returns matching tokens, newest (IssuedAt) first.
	ListTokens(ctx context.Context, f TokenFilter) ([]Token, error)
	// DeleteTokens deletes the matching tokens and returns them.
	DeleteTokens(ctx context.Context, f TokenFilter) ([]Token, error)
	// SetTokenExpiry changes a token's expiry (rotation grace).
	SetTokenExpiry(ctx context.Context, id string, expiresAt time.Time) error

	// Projects, with their roles. CreateProject: ECONFLICT; others ENOTFOUND.
	CreateProject(ctx context.Context, p Project) error
	GetProject(ctx context.Context, name string) (Project, error)
	ListProjects(ctx context.Context) ([]Project, error)
	UpdateProject(ctx context.Context, p Project) error
	DeleteProject(ctx context.Context, name string) error

	// Applications. Names are unique across projects.
	CreateApplication(ctx context.Context, a Application) error
	GetApplication(ctx context.Context, name string) (Application, error)
	// ListApplications lists all applications, or one project's when
	// project is not empty, sorted by name.
	ListApplications(ctx context.Context, project string) ([]Application, error)
	UpdateApplication(ctx context.Context, a Application) error
	// DeleteApplication deletes the application and its operations.
	DeleteApplication(ctx context.Context, name string) error

	// Operations of an application. ListOperations is newest first and
	// filters by state when state is not empty.
	CreateOperation(ctx context.Context, op Operation) error
	GetOperation(ctx context.Context, app, id string) (Operation, error)
	ListOperations(ctx context.Context, app, state string) ([]Operation, error)
	UpdateOperation(ctx context.Context, op Operation) error

	// RBAC settings: one record. GetRBAC returns ENOTFOUND before the first
	// PutRBAC.
	GetRBAC(ctx context.Context) (RBAC, error)
	PutRBAC(ctx context.Context, r RBAC) error

	// Audit. AppendEvents assigns ids (increasing). ListEvents is newest
	// first (by id). PruneEvents deletes the events that come before (in
	// id order) the first event at or after before: it never deletes an
	// event at or after the cutoff, and may keep an older one that was
	// written late.
	//
	// Both AppendEvents (this one and Store's) chain the events
	// (audit_chain.go): inside the transaction, after taking the chain's
	// head (appenders queue for it, so id order is chain order is commit
	// order), each event's row gets its predecessor's hash and its own
	// (ChainHasher over the event as stored), and the head moves to the
	// last. PruneEvents makes the last event it deletes, if the chain
	// holds it, the chain's start (AuditChain.StartID, StartHash).
	AppendEvents(ctx context.Context, events []Event) error
	ListEvents(ctx context.Context, f EventFilter) ([]Event, error)
	// AuditChain returns the chain's state. ChainedEvents returns at most
	// limit (> 0) events with ID > after, in id order, with the links
	// their rows hold: every row, linked or not, so a verifier sees all.
	AuditChain(ctx context.Context) (AuditChain, error)
	ChainedEvents(ctx context.Context, after int64, limit int) ([]ChainedEvent, error)
	// RequestsByHour counts one token's request events (type request,
	// token id tokenID) with Time in [since, until) by the UTC hour their
	// Time falls in: one entry per hour that has any, oldest first. A zero
	// since or until does not bound.
	RequestsByHour(ctx context.Context, tokenID string, since, until time.Time) ([]HourCount, error)

	// RecordChanges appends changes to the change feed as part of this
	// transaction, ignoring their Seq and At: the store assigns At (now)
	// and each a Seq greater than that of every change committed before
	// this transaction commits — Seq follows commit order, so a reader
	// that has seen Seq n has seen every change committed before it. Seqs
	// are consecutive, the first one more than the greatest committed
	// before (a transaction that does not commit takes none), so a missing
	// Seq is one pruned (PruneChanges): a follower that finds the Seq after
	// the last it applied missing knows it has missed changes. On a
	// backend that notifies (Notifier), committing wakes the listeners.
	RecordChanges(ctx context.Context, changes []Change) error
	PruneEvents(ctx context.Context, before time.Time) (int, error)

	// Login attempts: the login throttle's failure budget, kept here so
	// that every process on the store shares it. An attempt is recorded
	// under each of its keys (the service uses one for the username and
	// one for the remote address, under 256 bytes each), pending until it
	// is failed or deleted. The rule that uses them lives in the service.
	//
	// LoginAttempts tallies key's attempts made after the instant after:
	// the times of its newest failures, at most limit of them, oldest
	// first; and how many are pending, counting at most limit.
	LoginAttempts(ctx context.Context, key string, after time.Time, limit int) (LoginTally, error)
	// AddLoginAttempt records a pending attempt under each of its keys.
	// ECONFLICT for a taken id.
	AddLoginAttempt(ctx context.Context, a LoginAttempt) error
	// FailLoginAttempt turns an attempt, under every key it still has,
	// from pending into failed; DeleteLoginAttempt deletes it. Both ignore
	// an unknown id: the attempt may have been pruned.
	FailLoginAttempt(ctx context.Context, id string) error
	DeleteLoginAttempt(ctx context.Context, id string) error
	// ClearLoginFailures deletes key's failed attempts. Its pending ones
	// stay, and so do the failed attempts' entries under other keys.
	ClearLoginFailures(ctx context.Context, key string) error
	// PruneLoginAttempts deletes every attempt made at or before before,
	// pending or failed, and returns how many entries (one per key) went.
	PruneLoginAttempts(ctx context.Context, before time.Time) (int, error)

	// Trust policies, by name. CreateTrustPolicy returns ECONFLICT for a
	// taken name; Get/Update/Delete return ENOTFOUND for an unknown one.
	// ListTrustPolicies is sorted by name.
	CreateTrustPolicy(ctx context.Context, p TrustPolicy) error
	GetTrustPolicy(ctx context.Context, name string) (TrustPolicy, error)
	ListTrustPolicies(ctx context.Context) ([]TrustPolicy, error)
	UpdateTrustPolicy(ctx context.Context, p TrustPolicy) error
	DeleteTrustPolicy(ctx context.Context, name string) error
	// DeleteTokensCreatedBy deletes the tokens whose CreatedBy is exactly
	// createdBy and returns them, newest first.
	DeleteTokensCreatedBy(ctx context.Context, createdBy string) ([]Token, error)

	// Exchange replays: the keys (under 256 bytes) of subject tokens
	// already exchanged, and of CLI login confirmations already answered
	// (the service's one-time uses, kept apart by the keys' prefixes),
	// each kept until its expiry. AddExchangeReplay returns ECONFLICT for
	// a key already recorded, expired or not, until it is pruned;
	// ExchangeReplayed says whether it is. PruneExchangeReplays deletes
	// the keys that expired at or before before, and says how many.
	AddExchangeReplay(ctx context.Context, key string, expiresAt time.Time) error
	ExchangeReplayed(ctx context.Context, key string) (bool, error)
	PruneExchangeReplays(ctx context.Context, before time.Time) (int, error)
	// ListExchangeReplays returns every recorded key, expired or not,
	// sorted by key (a restore carries them into the restored store).
	ListExchangeReplays(ctx context.Context) ([]ExchangeReplay, error)

	// Webhooks set through the API (those of the configuration file are
	// not stored), by name. CreateWebhook returns ECONFLICT for a taken
	// name; Get/Update/Delete return ENOTFOUND for an unknown one.
	// ListWebhooks is sorted by name.
	CreateWebhook(ctx context.Context, w Webhook) error
	GetWebhook(ctx context.Context, name string) (Webhook, error)
	ListWebhooks(ctx context.Context) ([]Webhook, error)
	UpdateWebhook(ctx context.Context, w Webhook) error
	DeleteWebhook(ctx context.Context, name string) error

	// Notifications: the webhook outbox (see Notification).
	// EnqueueNotification assigns the ID and returns true, or returns
	// false and writes nothing when the webhook already has a
	// notification with that Key. GetNotification returns ENOTFOUND for
	// an unknown id. UpdateNotification writes State, Attempts,
	// NextAttemptAt, LastStatus, LastError and UpdatedAt (ENOTFOUND for
	// an unknown id). PruneNotifications deletes those delivered or
	// failed with UpdatedAt at or before before, and says how many.
	EnqueueNotification(ctx context.Context, n Notification) (bool, error)
	GetNotification(ctx context.Context, id int64) (Notification, error)
	ListNotifications(ctx context.Context, f NotificationFilter) ([]Notification, error)
	UpdateNotification(ctx context.Context, n Notification) error
	PruneNotifications(ctx context.Context, before time.Time) (int, error)

	// Rotations: tokens rotated away (see Rotation). AddRotation returns
	// ECONFLICT for a taken id; GetRotation ENOTFOUND for an unknown one.
	// ListRotations is sorted by id. PruneRotations deletes those kept
	// until at or before before, and those whose family has no token
	// left, and returns their ids.
	AddRotation(ctx context.Context, r Rotation) error
	GetRotation(ctx context.Context, id string) (Rotation, error)
	ListRotations(ctx context.Context) ([]Rotation, error)
	PruneRotations(ctx context.Context, before time.Time) ([]string, error)
}

// LoginAttempt is a password check that has been admitted: it holds a slot
// in the failure budget of each of its keys from before the check runs.
type LoginAttempt struct {
	ID   string
	Keys []string
	At   time.Time
}

// LoginTally is what the throttle needs to know of one key's attempts.
type LoginTally struct {
	Failed  []time.Time // the newest failures, oldest first
	Pending int         // attempts admitted and not yet settled
}

// Change is one entry of the change feed: a committed change to something
// the request path reads from memory. It names what changed, not how; a
// replica applies it by reading the current state of what it names.
type Change struct {
	Seq  int64      `json:"seq"`
	Kind ChangeKind `json:"kind"`
	Key  string     `json:"key"` // token id or account name; "" for policy
	At   time.Time  `json:"at"`
}

// ChangeKind says what a Change names.
type ChangeKind string

const (
	ChangeToken   ChangeKind = "token"   // created, revoked, expiry changed (Key: id)
	ChangeAccount ChangeKind = "account" // created, changed, deleted (Key: name)
	ChangePolicy  ChangeKind = "policy"  // RBAC settings or projects' roles changed
	// An application was created, changed (spec, project, status) or
	// deleted (Key: name).
	ChangeApplication ChangeKind = "application"
	// A token was rotated away, or what was kept of it pruned (Key: the
	// old token's id).
	ChangeRotation ChangeKind = "rotation"
)

// Notifier is a Store that can tell other processes, at once, that changes
// were committed. Listen calls listening once it is subscribed, then
// notify(seq) for each commit that recorded changes (seq is that commit's
// greatest Seq; notifications may be coalesced or lost, so a listener
// reads the feed, not the notifications). It blocks until ctx ends or the
// subscription fails, and returns the error; the caller listens again and
// then catches up from the feed.
type Notifier interface {
	Listen(ctx context.Context, listening func(), notify func(seq int64)) error
}

// Locker is a Store shared by several servers that can give one of them at
// a time a named job, such as the reaper. TryLock takes the lock if no other
// server holds it (ok false otherwise, without waiting); release gives it
// back. A holder that dies loses the lock with its connection.
type Locker interface {
	TryLock(ctx context.Context, name string) (release func(), ok bool, err error)
}

// TokenFilter selects tokens. Zero fields do not filter; all set fields must
// match. An empty filter matches every token.
type TokenFilter struct {
	ID            string
	Account       string
	Project       string
	Role          string
	Kind          TokenKind
	IssuedBefore  time.Time // IssuedAt < IssuedBefore
	ExpiredBefore time.Time // ExpiresAt set and ExpiresAt <= ExpiredBefore
	ExceptID      string    // leave this one out
	// Family: the tokens of this rotation family (the family's first
	// token, whose id it is, and every token rotated into it).
	Family string
	// TextHash: the token whose whole text has this SHA-256.
	TextHash []byte
	// IdleAt: tokens with an idle timeout that are idle at this instant
	// (last used, or issued when never used, at least IdleTimeout
	// before it).
	IdleAt time.Time
}

// HourCount is one hour of a token's requests (Tx.RequestsByHour).
type HourCount struct {
	Hour    time.Time // the hour's start, UTC
	Allowed int       // requests not denied
	Denied  int       // requests with decision deny
}

// EventFilter selects audit events; zero fields do not filter.
type EventFilter struct {
	Actor    string // who acted
	Account  string // the account the event concerns (Event.Account)
	TokenID  string
	Type     string
	Resource string
	Action   string
	Decision string
	Route    string    // the matched route (Event.Route), exactly
	Status   int       // the HTTP status; 0 means any
	Since    time.Time // Time >= Since
	Until    time.Time // Time < Until
	BeforeID int64     // ID < BeforeID (cursor); 0 means from the newest
	Limit    int       // 0 means no limit
}
