package service

import (
	"context"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/policy"
	"github.com/gatehouse/gatehouse/token"
)

// Principal is an authenticated caller: the token it presented and the
// subject that token acts as, with the subject's groups as they are now.
// Only this package builds one (every field is unexported), and Can refuses
// a Principal that this Service did not authenticate, so the HTTP layer can
// carry a caller around but never invent one.
type Principal struct {
	tokenID   string
	kind      gatehouse.TokenKind
	account   string // session and api tokens
	project   string // project tokens
	role      string // project tokens
	subject   string // RBAC subject
	groups    []string
	issuedAt  time.Time
	expiresAt time.Time
	scopes    []gatehouse.Scope

	svc      *Service           // the Service that authenticated it
	cached   *cachedToken       // the token as authenticated
	owner    *gatehouse.Account // the owner's record as authenticated
	engine   *policy.Engine     // the engine in force when authenticated (see callerCurrent)
	inTx     *policy.Engine     // while a write for p runs: the engine it decides on (see write)
	decision Decision

	// relied holds the allowed checks made for p since it was
	// authenticated or last wrote, the first len(relied) of nrelied: what
	// a write for p relies on, checked again by callerCurrent when the
	// policy or p's groups changed since.
	relied  [4]check
	nrelied int
}

// TokenID is the id of the presented token.
func (p *Principal) TokenID() string { return p.tokenID }

// Kind is the presented token's kind.
func (p *Principal) Kind() gatehouse.TokenKind { return p.kind }

// Account is the owning account of a session or API token ("" for a
// project token).
func (p *Principal) Account() string { return p.account }

// Project and Role name a project token's role ("" otherwise).
func (p *Principal) Project() string { return p.project }

// Role is a project token's role.
func (p *Principal) Role() string { return p.role }

// Subject is the RBAC subject the token acts as: the account name, or
// proj:<project>:<role>.
func (p *Principal) Subject() string { return p.subject }

// Groups are the owner's groups as they were when the request was
// authenticated. The caller must not modify the slice.
func (p *Principal) Groups() []string { return p.groups }

// IssuedAt is when the token was minted.
func (p *Principal) IssuedAt() time.Time { return p.issuedAt }

// ExpiresAt is when the token expires (zero: never).
func (p *Principal) ExpiresAt() time.Time { return p.expiresAt }

// Scopes are the token's scopes (none: not narrowed). The caller must not
// modify the slice.
func (p *Principal) Scopes() []gatehouse.Scope { return p.scopes }

// Decision is an authorization check made for a request, kept for its
// audit record.
type Decision struct {
	Resource, Action, Object string
	Allowed                  bool
	// Via says how it was decided: gatehouse.ViaPolicy, ViaScope,
	// ViaSelf or ViaFilter.
	Via string
	// Forward auth: the original request as decided on (its canonical
	// path, or for a refused one the path as sent) and the route that
	// matched, if one did.
	Method, Path, Route string
}

// noteDecision records d as p's last check, for the audit record.
func (p *Principal) noteDecision(d Decision) {
	if p != nil {
		p.decision = d
	}
}

// self notes that p was allowed resource/action/object as self-service,
// without asking the policy.
func (p *Principal) self(resource, action, object string) {
	p.noteDecision(Decision{Resource: resource, Action: action, Object: object, Allowed: true, Via: gatehouse.ViaSelf})
}

// filtered notes a list of resource whose items were each shown only if
// the policy allows getting them.
func (p *Principal) filtered(resource string) {
	p.noteDecision(Decision{Resource: resource, Action: "get", Object: "*", Allowed: true, Via: gatehouse.ViaFilter})
}

// exchanged reports whether p's token was issued by a token exchange
// (through a trust policy).
func (p *Principal) exchanged() bool {
	return p != nil && p.cached != nil && p.cached.rec.Exchanged()
}

// errExchangedMint refuses token management to a token from a token
// exchange: a successor it minted or rotated, or a trust policy it saved,
// would outlive the trust policy, which revokes only what it issued, and
// its minutes-long life; and it revokes no token (removeTx,
// revokeIssuedTx), by any change.
var errExchangedMint = gatehouse.Errorf(gatehouse.EFORBIDDEN, "a token issued by token exchange cannot mint, rotate or revoke tokens, or save a trust policy; exchange again for a fresh one")

// LastDecision returns the last authorization check made for p.
func (p *Principal) LastDecision() Decision { return p.decision }

// errBadToken is the one answer to every credential that does not verify,
// so that no answer tells whether a token id exists.
// errStoreLost answers every token while the store is lost.
var errStoreLost = gatehouse.Errorf(gatehouse.EUNAVAILABLE, "store unavailable: tokens cannot be checked against it; try again shortly")

// errSSOStale answers the tokens of an SSO account whose groups the
// identity provider has not confirmed within groupsMaxAge.
var errSSOStale = gatehouse.Errorf(gatehouse.EUNAUTHORIZED, "the identity provider has not confirmed this account's groups recently enough; log in again through SSO")

var errBadToken = gatehouse.Errorf(gatehouse.EUNAUTHORIZED, "invalid or unknown token")

// Authenticate verifies a presented token (the whole "<instance>:<body>" or
// the body alone) without touching the store: parse, cache lookup,
// constant-time compare of SHA-256(secret), expiry and owner checks.
func (s *Service) Authenticate(ctx context.Context, raw string) (*Principal, error) {
	p := new(Principal)
	if err := s.AuthenticateInto(ctx, raw, p); err != nil {
		return nil, err
	}
	return p, nil
}

// verifySample: one verification in verifySample is timed for the latency
// histogram. Reading the clock twice costs more than the rest of a
// verification on some virtual machines, and a sample describes the
// distribution as well.
const verifySample = 32

// AuthenticateInto is Authenticate filling a Principal the caller owns, so
// the hot path allocates nothing (the HTTP layer keeps it with its other
// per-request state). On error p is left zero.
func (s *Service) AuthenticateInto(ctx context.Context, raw string, p *Principal) error {
	if s.follow.stale.Load() {
		*p = Principal{}
		return errStale
	}
	if s.ready.lost.Load() {
		// The store cannot commit (or is not the one opened): revocations
		// cannot be recorded, and another server may be writing what this
		// one cannot see. Refuse rather than answer from memory.
		*p = Principal{}
		return errStoreLost
	}
	var err error
	if s.verifyCount.Add(1)%verifySample != 0 {
		err = s.authenticate(raw, p)
	} else {
		start := time.Now()
		err = s.authenticate(raw, p)
		s.metrics.observeVerify(time.Since(start))
	}
	if err == errBadToken && s.follow.active && s.awaitCurrent(ctx, time.Now().UnixNano()) {
		// Perhaps minted through another replica a moment ago: ask again
		// of state confirmed since the request arrived.
		err = s.authenticate(raw, p)
	}
	switch e := err.(type) {
	case nil, *gatehouse.Error:
		return err
	case *reused:
		*p = Principal{}
		// Not cut off by a client that hangs up: the family is revoked
		// whatever the presenter does next.
		if werr := s.reuseDetected(context.WithoutCancel(ctx), e.id); werr != nil {
			s.log.ErrorContext(ctx, "a rotated token was presented again, and revoking its family failed", "token_id", e.id, "err", werr)
			return werr
		}
		return errReused
	case *idleToken:
		*p = Principal{}
		idle, werr := s.confirmIdle(context.WithoutCancel(ctx), e.ct)
		if werr != nil {
			return werr
		}
		if idle {
			return errIdle
		}
		// Used through another replica meanwhile: not idle.
		return s.authenticate(raw, p)
	}
	return err
}

// idleToken is authenticate's answer to a token that looks idle to this
// replica; AuthenticateInto confirms it with the store.
type idleToken struct{ ct *cachedToken }

func (*idleToken) Error() string { return "token looks idle" }

func (s *Service) authenticate(raw string, p *Principal) error {
	t, err := token.Parse(raw)
	if err != nil {
		return errBadToken
	}
	if t.Instance != "" && t.Instance != s.instance {
		return errBadToken
	}
	ct := s.tokens.get(t.ID)
	if ct == nil || !token.Verify(t.Secret, ct.hash[:]) {
		if ct == nil {
			// Rotated away, and gone (revoked, reaped) after its grace
			// period or with none: reused. Gone early, within its grace,
			// it is merely revoked.
			if r := s.rotations.get(t.ID); r != nil && token.Verify(t.Secret, r.hash[:]) && s.now().UnixNano() >= r.graceUntil {
				return &reused{id: r.id}
			}
		}
		return errBadToken
	}
	// From here on the caller has proved it holds the secret, so a precise
	// answer leaks nothing.
	rec := &ct.rec
	if ct.expires != 0 || ct.idleNanos != 0 {
		// The clock only for a token that can expire or go idle.
		now := s.now().UnixNano()
		if ct.expires != 0 && now >= ct.expires {
			if r := s.rotations.get(t.ID); r != nil {
				// Rotated with a grace period that has ended.
				return &reused{id: r.id}
			}
			return gatehouse.Errorf(gatehouse.EUNAUTHORIZED, "token expired")
		}
		if ct.idle(now) {
			return &idleToken{ct}
		}
	}
	*p = Principal{
		tokenID:   rec.ID,
		kind:      rec.Kind,
		account:   rec.Account,
		project:   rec.Project,
		role:      rec.Role,
		issuedAt:  rec.IssuedAt,
		expiresAt: rec.ExpiresAt,
		scopes:    rec.Scopes,
		svc:       s,
		cached:    ct,
		engine:    s.engine.Load(),
	}
	switch rec.Kind {
	case gatehouse.KindSession, gatehouse.KindAPI:
		a := ct.owner.p.Load()
		if a == nil || !a.Enabled {
			*p = Principal{}
			return gatehouse.Errorf(gatehouse.EUNAUTHORIZED, "account disabled or deleted")
		}
		need := gatehouse.CapLogin
		if rec.Kind == gatehouse.KindAPI {
			need = gatehouse.CapAPIKey
		}
		if !a.Has(need) {
			*p = Principal{}
			return gatehouse.Errorf(gatehouse.EUNAUTHORIZED, "account lacks the %s capability", need)
		}
		if a.Source == gatehouse.SourceSSO && (a.GroupsRefreshedAt.IsZero() || s.now().UnixNano()-a.GroupsRefreshedAt.UnixNano() > s.ssoMaxAge) {
			// Fail closed: the identity provider has not confirmed this
			// account's groups for longer than groupsMaxAge.
			*p = Principal{}
			return errSSOStale
		}
		p.subject = a.Name
		p.groups = a.Groups
		p.owner = a
	case gatehouse.KindProject:
		p.subject = ct.subject
	default:
		*p = Principal{}
		return errBadToken
	}
	return nil
}

// Can reports whether p may do action on resource/object: the subject's
// current permissions, intersected with the token's scopes if it has any.
// It fails closed: no engine, no permission.
func (s *Service) Can(p *Principal, resource, action, object string) bool {
	if p == nil || p.svc != s || p.cached == nil {
		return false // not a caller this Service authenticated
	}
	e := s.engineFor(p)
	if e == nil {
		return false
	}
	ok := e.Enforce(p.subject, p.groups, resource, action, object) && p.cached.inScope(resource, action, object)
	if ok {
		p.rely(resource, action, object)
	}
	return ok
}

// engineFor is the engine that decides for p: while a write for p runs,
// the one its transaction decided on (see write); otherwise the one in
// force.
func (s *Service) engineFor(p *Principal) *policy.Engine {
	if p != nil && p.inTx != nil {
		return p.inTx
	}
	return s.engine.Load()
}

// check is one policy question: resource, action, object.
type check struct{ resource, action, object string }

// rely notes an allowed check made for p (see Principal.relied).
func (p *Principal) rely(resource, action, object string) {
	if p.nrelied < len(p.relied) {
		p.relied[p.nrelied] = check{resource, action, object}
	}
	p.nrelied++
}

// canIgnoringScopes reports whether the policy alone allows p the triple:
// on a refusal, it tells a token's scopes from its owner's permissions.
func (s *Service) canIgnoringScopes(p *Principal, resource, action, object string) bool {
	e := s.engineFor(p)
	return e != nil && p.svc == s && p.cached != nil && e.Enforce(p.subject, p.groups, resource, action, object)
}

// Authorize returns EFORBIDDEN unless p may do action on resource/object.
func (s *Service) Authorize(p *Principal, resource, action, object string) error {
	return s.authorize(p, resource, action, object)
}

// authorize returns EFORBIDDEN unless p may do action on resource/object.
func (s *Service) authorize(p *Principal, resource, action, object string) error {
	ok := s.Can(p, resource, action, object)
	via := gatehouse.ViaPolicy
	if !ok && len(p.scopes) > 0 && s.canIgnoringScopes(p, resource, action, object) {
		via = gatehouse.ViaScope
	}
	p.noteDecision(Decision{Resource: resource, Action: action, Object: object, Allowed: ok, Via: via})
	if !ok {
		return gatehouse.Errorf(gatehouse.EFORBIDDEN, "permission denied: %s, %s, %s", resource, action, object)
	}
	return nil
}

// Touch notes that p's token was used from addr. At most one write per
// token per minute reaches the store, off the request path.
func (s *Service) Touch(p *Principal, from string) {
	if p == nil || p.cached == nil {
		return
	}
	now := s.now()
	last := p.cached.touched.Load()
	if last != 0 && now.UnixNano()-last < int64(time.Minute) {
		return
	}
	if !p.cached.touched.CompareAndSwap(last, now.UnixNano()) {
		return // another request queued it
	}
	s.usage.add(gatehouse.TokenUse{ID: p.tokenID, At: now, From: from})
}
