package service

import (
	"context"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/token"
)

// Principal is an authenticated caller: the token it presented and the
// subject that token acts as, with the subject's groups as they are now.
type Principal struct {
	TokenID   string
	Kind      gatehouse.TokenKind
	Account   string // session and api tokens
	Project   string // project tokens
	Role      string // project tokens
	Subject   string // RBAC subject
	Groups    []string
	IssuedAt  time.Time
	ExpiresAt time.Time
	Scopes    []gatehouse.Scope

	cached   *cachedToken
	decision Decision
}

// Decision is an authorization check made for a request, kept for its
// audit record.
type Decision struct {
	Resource, Action, Object string
	Allowed                  bool
}

// LastDecision returns the last authorization check made for p.
func (p *Principal) LastDecision() Decision { return p.decision }

// errBadToken is the one answer to every credential that does not verify,
// so that no answer tells whether a token id exists.
var errBadToken = gatehouse.Errorf(gatehouse.EUNAUTHORIZED, "invalid or unknown token")

// Authenticate verifies a presented token (the whole "<instance>:<body>" or
// the body alone) without touching the store: parse, cache lookup,
// constant-time compare of SHA-256(secret), expiry and owner checks.
func (s *Service) Authenticate(ctx context.Context, raw string) (*Principal, error) {
	start := time.Now()
	p, err := s.authenticate(raw)
	s.metrics.observeVerify(time.Since(start))
	return p, err
}

func (s *Service) authenticate(raw string) (*Principal, error) {
	t, err := token.Parse(raw)
	if err != nil {
		return nil, errBadToken
	}
	if t.Instance != "" && t.Instance != s.instance {
		return nil, errBadToken
	}
	ct := s.tokens.get(t.ID)
	if ct == nil || !token.Verify(t.Secret, ct.hash[:]) {
		return nil, errBadToken
	}
	// From here on the caller has proved it holds the secret, so a precise
	// answer leaks nothing.
	rec := &ct.rec
	if rec.Expired(s.now()) {
		return nil, gatehouse.Errorf(gatehouse.EUNAUTHORIZED, "token expired")
	}
	p := &Principal{
		TokenID:   rec.ID,
		Kind:      rec.Kind,
		Account:   rec.Account,
		Project:   rec.Project,
		Role:      rec.Role,
		IssuedAt:  rec.IssuedAt,
		ExpiresAt: rec.ExpiresAt,
		Scopes:    rec.Scopes,
		cached:    ct,
	}
	switch rec.Kind {
	case gatehouse.KindSession, gatehouse.KindAPI:
		a := s.accounts.get(rec.Account)
		if a == nil || !a.Enabled {
			return nil, gatehouse.Errorf(gatehouse.EUNAUTHORIZED, "account disabled or deleted")
		}
		need := gatehouse.CapLogin
		if rec.Kind == gatehouse.KindAPI {
			need = gatehouse.CapAPIKey
		}
		if !a.Has(need) {
			return nil, gatehouse.Errorf(gatehouse.EUNAUTHORIZED, "account lacks the %s capability", need)
		}
		p.Subject = a.Name
		p.Groups = a.Groups
	case gatehouse.KindProject:
		p.Subject = gatehouse.ProjectSubject(rec.Project, rec.Role)
	default:
		return nil, errBadToken
	}
	return p, nil
}

// Can reports whether p may do action on resource/object: the subject's
// current permissions, intersected with the token's scopes if it has any.
// It fails closed: no engine, no permission.
func (s *Service) Can(p *Principal, resource, action, object string) bool {
	if p == nil {
		return false
	}
	e := s.engine.Load()
	if e == nil || !e.Enforce(p.Subject, p.Groups, resource, action, object) {
		return false
	}
	if p.cached == nil || len(p.cached.scopes) == 0 {
		return true
	}
	for _, sc := range p.cached.scopes {
		if sc.match(resource, action, object) {
			return true
		}
	}
	return false
}

// Authorize returns EFORBIDDEN unless p may do action on resource/object.
func (s *Service) Authorize(p *Principal, resource, action, object string) error {
	return s.authorize(p, resource, action, object)
}

// authorize returns EFORBIDDEN unless p may do action on resource/object.
func (s *Service) authorize(p *Principal, resource, action, object string) error {
	ok := s.Can(p, resource, action, object)
	if p != nil {
		p.decision = Decision{resource, action, object, ok}
	}
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
	s.usage.add(gatehouse.TokenUse{ID: p.TokenID, At: now, From: from})
}
