package gatehouse

import "time"

// Capability is what an account may do with its credentials, as in Argo CD.
type Capability string

const (
	CapLogin  Capability = "login"  // password login, sessions
	CapAPIKey Capability = "apiKey" // may hold API tokens
)

// AdminAccount is the account created at first start, bound to role:admin.
const AdminAccount = "admin"

// Account is a local user or service account.
type Account struct {
	Name         string       `json:"name"`
	Enabled      bool         `json:"enabled"`
	Capabilities []Capability `json:"capabilities"`
	Groups       []string     `json:"groups"`
	CreatedAt    time.Time    `json:"createdAt"`
	Tokens       []Token      `json:"tokens"`

	// Source says where the account comes from: SourceLocal (created in
	// Gatehouse) or SourceSSO (created by its first login through the
	// identity provider, which owns its groups). Empty reads as local.
	Source string `json:"source"`
	// LastLoginAt is the account's latest SSO login.
	LastLoginAt time.Time `json:"lastLoginAt,omitzero"`
	// GroupsRefreshedAt is when the identity provider last confirmed an
	// SSO account's groups (at a login or a background refresh). Past
	// the server's groupsMaxAge its tokens are refused.
	GroupsRefreshedAt time.Time `json:"groupsRefreshedAt,omitzero"`
	// SSO links an SSO account to its user at the identity provider.
	SSO SSOLink `json:"-"`

	// PasswordHash is the bcrypt hash; nil for service accounts.
	PasswordHash []byte `json:"-"`
}

// Account sources (Account.Source).
const (
	SourceLocal = "local"
	SourceSSO   = "sso"
)

// IsSSO reports whether the account was created by an SSO login.
func (a Account) IsSSO() bool { return a.Source == SourceSSO }

// SSOLink is what Gatehouse keeps of an SSO account's user at the
// identity provider. It holds no plaintext secret: RefreshToken is sealed
// (AES-256-GCM under a key derived from the OIDC client secret, which the
// store never holds).
type SSOLink struct {
	Issuer  string `json:"iss,omitempty"`
	Subject string `json:"sub,omitempty"` // the provider's sub claim
	// RefreshToken is the provider's refresh token, sealed; nil when it
	// issued none.
	RefreshToken []byte `json:"rt,omitempty"`
	// Refused is set when the account was disabled because the provider
	// refused a refresh (invalid_grant); a later successful login
	// enables it again, which an administrator's disabling never allows.
	Refused bool `json:"refused,omitempty"`
}

// Has reports whether the account holds capability c.
func (a Account) Has(c Capability) bool {
	for _, x := range a.Capabilities {
		if x == c {
			return true
		}
	}
	return false
}

// TokenKind tells how a token was minted and whose permissions it carries.
type TokenKind string

const (
	KindSession TokenKind = "session" // password login; the account's permissions
	KindAPI     TokenKind = "api"     // personal API token; account ∩ scopes
	KindProject TokenKind = "project" // project role token; the role's policies only
)

// Scope narrows an API token to requests matching (resource, action, object)
// glob patterns. Scopes are allow-only and can never widen a token.
type Scope struct {
	Resource string `json:"resource"`
	Action   string `json:"action"`
	Object   string `json:"object"`
}

// Token is the stored record of a minted token. It never holds the secret,
// only its SHA-256.
type Token struct {
	ID           string    `json:"id"` // UUID string
	Name         string    `json:"name"`
	Kind         TokenKind `json:"kind"`
	Account      string    `json:"account,omitempty"` // owner of session and api tokens
	Project      string    `json:"project,omitempty"` // project tokens
	Role         string    `json:"role,omitempty"`    // project tokens
	Scopes       []Scope   `json:"scopes,omitempty"`
	IssuedAt     time.Time `json:"issuedAt"`
	ExpiresAt    time.Time `json:"expiresAt,omitzero"` // zero: never expires
	LastUsedAt   time.Time `json:"lastUsedAt,omitzero"`
	LastUsedFrom string    `json:"lastUsedFrom,omitempty"`
	CreatedBy    string    `json:"createdBy"`
	// IdleTimeout, in seconds, refuses and reaps the token once it has not
	// been used for that long (counted from its last use, or its issue
	// when never used); 0: no idle timeout.
	IdleTimeout int64 `json:"idleTimeout,omitempty"`
	// SelfRotate lets the token rotate itself (POST
	// /api/v1/account/{name}/token/self/rotate) without its owner's
	// permission to manage tokens; its successors inherit it.
	SelfRotate bool `json:"selfRotate,omitempty"`
	// Family is the id of the first token of the rotation chain the token
	// belongs to ("" for a token never rotated into: its own id is the
	// family). Presenting a token rotated away revokes its whole family.
	Family string `json:"family,omitempty"`

	Hash     []byte `json:"-"` // SHA-256 of the secret
	TextHash []byte `json:"-"` // SHA-256 of the whole token text, for leak reports; nil for tokens minted before it was kept
}

// FamilyID is the id of the token's rotation family.
func (t Token) FamilyID() string {
	if t.Family != "" {
		return t.Family
	}
	return t.ID
}

// Rotation is what is kept of a token rotated away: enough to know it
// when it is presented again (its secret's SHA-256) and which family to
// revoke then. It is kept until KeepUntil (the old token's own expiry;
// zero: none) and no longer than its family has a token.
type Rotation struct {
	ID        string    // the old token's id
	Hash      []byte    // SHA-256 of the old token's secret
	Family    string    // the family's id
	Account   string    // the owner
	Successor string    // the token minted in its place
	RotatedAt time.Time // when it was rotated
	// GraceUntil is the end of its grace period (zero: none): until then
	// the old token is not reused, even when it is gone early.
	GraceUntil time.Time
	KeepUntil  time.Time
}

// Subject is the RBAC subject that the token acts as.
func (t Token) Subject() string {
	if t.Kind == KindProject {
		return ProjectSubject(t.Project, t.Role)
	}
	return t.Account
}

// Expired reports whether the token has expired at now.
func (t Token) Expired(now time.Time) bool {
	return !t.ExpiresAt.IsZero() && !now.Before(t.ExpiresAt)
}

// ProjectSubject is the RBAC subject of a project role.
func ProjectSubject(project, role string) string { return "proj:" + project + ":" + role }

// NewToken is the answer to a mint: the only time the secret is returned.
type NewToken struct {
	Token     string    `json:"token"`
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	IssuedAt  time.Time `json:"issuedAt"`
	ExpiresAt time.Time `json:"expiresAt,omitzero"`
}

// TokenUse records that a token was used, for lastUsedAt/lastUsedFrom.
type TokenUse struct {
	ID   string
	At   time.Time
	From string
}

// Project is a named scope with roles and role tokens.
type Project struct {
	Name        string        `json:"name"`
	Description string        `json:"description"`
	Roles       []ProjectRole `json:"roles"`
	CreatedAt   time.Time     `json:"createdAt"`
}

// Role returns the named role and whether it exists.
func (p Project) Role(name string) (ProjectRole, bool) {
	for _, r := range p.Roles {
		if r.Name == name {
			return r, true
		}
	}
	return ProjectRole{}, false
}

// ProjectRole is a role inside a project: its policy lines (CSV `p` lines
// whose subject is proj:<project>:<role>) and the groups bound to it.
type ProjectRole struct {
	Name        string   `json:"name"`
	Description string   `json:"description"`
	Policies    []string `json:"policies"`
	Groups      []string `json:"groups"`
}

// Application is a deployable unit that belongs to one project.
type Application struct {
	Name      string    `json:"name"`
	Project   string    `json:"project"`
	Spec      AppSpec   `json:"spec"`
	Status    AppStatus `json:"status"`
	CreatedAt time.Time `json:"createdAt"`
}

// RBACObject is the application's object in RBAC checks: <project>/<name>.
func (a Application) RBACObject() string { return a.Project + "/" + a.Name }

type AppSpec struct {
	RepoURL        string         `json:"repoURL"`
	Path           string         `json:"path"`
	TargetRevision string         `json:"targetRevision"`
	Destination    AppDestination `json:"destination"`
}

type AppDestination struct {
	Server    string `json:"server"`
	Namespace string `json:"namespace"`
}

// AppStatus is what a deploy agent last reported.
type AppStatus struct {
	Sync       string    `json:"sync"`   // Synced, OutOfSync, Unknown
	Health     string    `json:"health"` // Healthy, Progressing, Degraded, Missing, Unknown
	Revision   string    `json:"revision,omitempty"`
	Message    string    `json:"message,omitempty"`
	ReportedAt time.Time `json:"reportedAt,omitzero"`
}

// Operation states.
const (
	OpPending   = "Pending"
	OpRunning   = "Running"
	OpSucceeded = "Succeeded"
	OpFailed    = "Failed"
)

// Operation is a sync request on an application, completed by an agent.
type Operation struct {
	ID          string    `json:"id"`
	Application string    `json:"application"`
	State       string    `json:"state"`
	Revision    string    `json:"revision"`
	Prune       bool      `json:"prune"`
	DryRun      bool      `json:"dryRun"`
	RequestedBy string    `json:"requestedBy"`
	CreatedAt   time.Time `json:"createdAt"`
	UpdatedAt   time.Time `json:"updatedAt"`
	Message     string    `json:"message"`
}

// RBAC is the server's policy settings, in Argo CD's argocd-rbac-cm shape.
type RBAC struct {
	PolicyCSV     string `json:"policyCSV"`
	PolicyDefault string `json:"policyDefault"`
	Scopes        string `json:"scopes"`
	MatchMode     string `json:"matchMode"` // glob (default) or regex
	// ManagedByConfig names the fields above ("policyCSV",
	// "policyDefault", "matchMode") that the server's configuration file
	// sets: the server applies them at every start and refuses to change
	// them through the API. The server fills it in its answers; it is
	// ignored in requests and never stored.
	ManagedByConfig []string `json:"managedByConfig,omitempty"`
}

// Audit event types.
const (
	EventRequest      = "request"
	EventTokenCreated = "token.created"
	EventTokenRevoked = "token.revoked"
	EventTokenRotated = "token.rotated"
	EventTokenExpired = "token.expired"
	// A token reported leaked (POST /api/v1/tokens/leaked) and revoked.
	EventTokenLeaked = "token.leaked"
	// A token rotated away was presented again: its family is revoked.
	EventTokenReuseDetected = "token.reuse_detected"
	// A token unused for its idle timeout was refused and removed.
	EventTokenIdleExpired = "token.idle_expired"
	EventLoginSucceeded   = "login.succeeded"
	EventLoginFailed      = "login.failed"
	EventLoginThrottled   = "login.throttled"
	EventLogout           = "logout"
	EventAccountChanged   = "account.changed"
	EventPolicyChanged    = "policy.changed"
	EventProjectChanged   = "project.changed"
	// SSO: a login through the identity provider was refused after the
	// provider answered (no account could be created or used); the groups
	// of an SSO account were refreshed and changed; the provider refused
	// a refresh and the account was disabled.
	EventSSOLoginRefused   = "sso.login.refused"
	EventSSOGroupsChanged  = "sso.groups.changed"
	EventSSORefreshRefused = "sso.refresh.refused"
)

// Event is one audit record. It never holds a secret: the only token
// material is the token id.
type Event struct {
	ID        int64     `json:"id"`
	Time      time.Time `json:"time"`
	Type      string    `json:"type"`
	Actor     string    `json:"actor"`
	TokenID   string    `json:"tokenId,omitempty"`
	TokenKind TokenKind `json:"tokenKind,omitempty"`
	Method    string    `json:"method,omitempty"`
	Path      string    `json:"path,omitempty"`
	Resource  string    `json:"resource,omitempty"`
	Action    string    `json:"action,omitempty"`
	Object    string    `json:"object,omitempty"`
	Decision  string    `json:"decision,omitempty"` // allow or deny
	// Via says how a request was allowed or refused: ViaPolicy, ViaSelf,
	// ViaScope or ViaFilter.
	Via string `json:"via,omitempty"`
	// Route is the route that matched: the API route's pattern, or for
	// a request seen through forward auth the forward-auth route's
	// match pattern (Method and Path are then the original request's).
	Route string `json:"route,omitempty"`
	// Account is the account the event concerns, whoever acted: the
	// owner of the token that made a request, or the account whose
	// token or record a lifecycle event changed.
	Account    string `json:"account,omitempty"`
	Status     int    `json:"status,omitempty"`
	RemoteAddr string `json:"remoteAddr,omitempty"`
	UserAgent  string `json:"userAgent,omitempty"`
	Detail     string `json:"detail,omitempty"`
	// Count is how many requests the event stands for when more than one:
	// allowed reads (GET and HEAD) that are alike in every field but the
	// time, made within the same minute and with no event recorded
	// individually between them, are kept as one event with their count,
	// timed at the first (docs/audit.md, "Counted reads"). Absent means
	// one.
	Count int `json:"count,omitempty"`
}

// Requests is how many requests e stands for: Count, or 1.
func (e Event) Requests() int { return max(e.Count, 1) }

// How a request was decided (Event.Via).
const (
	// ViaPolicy: the RBAC policy answered (and the token's scopes, if
	// any, allowed it).
	ViaPolicy = "policy"
	// ViaScope: the policy allows it, but the token's scopes do not.
	ViaScope = "scope"
	// ViaSelf: self-service, allowed without a policy line: an account's
	// own record, tokens, password, session and audit trail.
	ViaSelf = "self"
	// ViaFilter: a list, each item shown only if the policy allows
	// getting it; the triple names the list's resource and "*".
	ViaFilter = "filter"
)
