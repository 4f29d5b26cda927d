package gatehouse

import "time"

// The request and response bodies of the HTTP API that are not domain
// records. Server and client share them, so the wire format has one
// definition.

// UserInfo answers GET /api/v1/session/userinfo.
type UserInfo struct {
	LoggedIn  bool      `json:"loggedIn"`
	Username  string    `json:"username,omitempty"`
	Iss       string    `json:"iss,omitempty"`
	Groups    []string  `json:"groups,omitempty"`
	Roles     []string  `json:"roles,omitempty"`
	TokenID   string    `json:"tokenId,omitempty"`
	TokenKind TokenKind `json:"tokenKind,omitempty"`
	ExpiresAt time.Time `json:"expiresAt,omitzero"`
}

// LoginRequest is the body of POST /api/v1/session.
type LoginRequest struct {
	Username string `json:"username"`
	Password string `json:"password"`
}

// AccountCreate is the body of POST /api/v1/account.
type AccountCreate struct {
	Name         string       `json:"name"`
	Capabilities []Capability `json:"capabilities"`
	Password     string       `json:"password,omitempty"`
	Groups       []string     `json:"groups,omitempty"`
}

// AccountPatch is the body of PATCH /api/v1/account/{name}; nil fields are
// left as they are.
type AccountPatch struct {
	Enabled      *bool         `json:"enabled,omitempty"`
	Capabilities *[]Capability `json:"capabilities,omitempty"`
	Groups       *[]string     `json:"groups,omitempty"`
}

// PasswordChange is the body of PUT /api/v1/account/password.
type PasswordChange struct {
	Name            string `json:"name,omitempty"`
	CurrentPassword string `json:"currentPassword"`
	NewPassword     string `json:"newPassword"`
}

// TokenRequest is the body of a token mint (account or project role).
// ExpiresIn is in seconds; nil means the server default, 0 a token that
// never expires (refused unless the server allows it). ID is accepted for
// Argo CD compatibility and used as the name when Name is empty.
type TokenRequest struct {
	Name      string  `json:"name,omitempty"`
	ExpiresIn *int64  `json:"expiresIn,omitempty"`
	Scopes    []Scope `json:"scopes,omitempty"`
	ID        string  `json:"id,omitempty"`
	// IdleTimeout in seconds (see Token.IdleTimeout); nil: the server's
	// default, 0: none.
	IdleTimeout *int64 `json:"idleTimeout,omitempty"`
	// SelfRotate lets the token rotate itself (see Token.SelfRotate).
	SelfRotate bool `json:"selfRotate,omitempty"`
}

// LeakReport is the body of POST /api/v1/tokens/leaked: whole tokens
// found where they should not be, or the hex SHA-256 of whole tokens (so
// that a scanner need not hold them).
type LeakReport struct {
	Tokens []string `json:"tokens,omitempty"`
	SHA256 []string `json:"sha256,omitempty"`
}

// RotateRequest is the body of POST .../token/{id}/rotate.
type RotateRequest struct {
	ExpiresIn    *int64 `json:"expiresIn,omitempty"`
	GraceSeconds int64  `json:"graceSeconds,omitempty"`
}

// CanI answers GET /api/v1/account/can-i/...: "yes" or "no".
type CanI struct {
	Value string `json:"value"`
}

// Explanation answers GET /api/v1/settings/rbac/can.
type Explanation struct {
	Value   string   `json:"value"` // yes or no
	Rule    string   `json:"rule"`  // which rule decided
	Matched []string `json:"matched"`
	// Note says what the answer leaves out: the subject's groups, when
	// the caller may not get the subject's account.
	Note string `json:"note,omitempty"`
}

// SyncRequest is the body of POST /api/v1/applications/{name}/sync.
type SyncRequest struct {
	Revision string `json:"revision,omitempty"`
	Prune    bool   `json:"prune,omitempty"`
	DryRun   bool   `json:"dryRun,omitempty"`
}

// OperationReport is the body of PUT .../operations/{id}.
type OperationReport struct {
	State   string `json:"state"`
	Message string `json:"message,omitempty"`
}

// StatusReport is the body of PUT /api/v1/applications/{name}/status.
type StatusReport struct {
	Sync     string `json:"sync"`
	Health   string `json:"health"`
	Revision string `json:"revision,omitempty"`
	Message  string `json:"message,omitempty"`
}

// BulkRevoke is the body of POST /api/v1/admin/revoke (break-glass).
type BulkRevoke struct {
	Account      string    `json:"account,omitempty"`
	Project      string    `json:"project,omitempty"`
	Role         string    `json:"role,omitempty"`
	IssuedBefore time.Time `json:"issuedBefore,omitzero"`
	Kind         TokenKind `json:"kind,omitempty"`
	DryRun       bool      `json:"dryRun"`
}

// BulkRevokeResult answers a break-glass revocation.
type BulkRevokeResult struct {
	Count  int      `json:"count"`
	IDs    []string `json:"ids"`
	DryRun bool     `json:"dryRun"`
}

// Introspection answers POST /api/v1/introspect (RFC 7662).
type Introspection struct {
	Active    bool   `json:"active"`
	Sub       string `json:"sub,omitempty"`
	Exp       int64  `json:"exp,omitempty"`
	Iat       int64  `json:"iat,omitempty"`
	Jti       string `json:"jti,omitempty"`
	TokenType string `json:"token_type,omitempty"`
	Iss       string `json:"iss,omitempty"`
	Scope     string `json:"scope,omitempty"`
}

// VersionInfo answers GET /api/version: what the server binary is. It is
// public, like Argo CD's, so that `gatehouse version` works before login.
type VersionInfo struct {
	Version   string `json:"version"`   // release version, or "dev"
	GoVersion string `json:"goVersion"` // toolchain that built the binary
	Platform  string `json:"platform"`  // GOOS/GOARCH
	// Revision, RevisionTime and Modified are the VCS commit the binary
	// was built from, when the toolchain recorded one.
	Revision     string    `json:"revision,omitempty"`
	RevisionTime time.Time `json:"revisionTime,omitzero"`
	Modified     bool      `json:"modified,omitempty"` // built from a tree with uncommitted changes
}

// List is the envelope of every list answer.
type List[T any] struct {
	Items      []T    `json:"items"`
	NextCursor string `json:"nextCursor,omitempty"`
}

// DeviceLogin answers POST /api/v1/session/device: an SSO login with the
// device authorization grant (RFC 8628), started at the identity
// provider for a machine without a browser. The user opens
// VerificationURI (or VerificationURIComplete, which carries the code) on
// any device and enters UserCode; meanwhile the CLI polls POST
// /api/v1/session/device/token with Handle, which only this server's
// replicas can open.
type DeviceLogin struct {
	UserCode                string `json:"userCode"`
	VerificationURI         string `json:"verificationURI"`
	VerificationURIComplete string `json:"verificationURIComplete,omitempty"`
	ExpiresIn               int    `json:"expiresIn"` // seconds
	Interval                int    `json:"interval"`  // seconds between polls
	Handle                  string `json:"handle"`
}

// DevicePoll is the body of POST /api/v1/session/device/token.
type DevicePoll struct {
	Handle string `json:"handle"`
}

// DevicePending answers a device poll (202 Accepted) while the user has
// not finished at the identity provider: poll again after Interval
// seconds.
type DevicePending struct {
	Status   string `json:"status"` // authorization_pending
	Interval int    `json:"interval"`
}
