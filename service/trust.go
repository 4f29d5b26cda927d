package service

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/internal/weburl"
)

// Trust policies: who may exchange an external ID token for a Gatehouse
// token (trust_exchange.go). Managing them needs settings, get|update,
// trust. A policy is read from the store on every exchange, so every
// replica applies the policy as committed, with no cache to keep current;
// changing or deleting one revokes the tokens issued through it in the
// same transaction, and replicas learn of those revocations through the
// change feed like any other.

// Limits of a trust policy.
const (
	trustDefaultTTL   = 900
	trustMinTTL       = 60
	trustMaxTTL       = 3600
	trustMaxAudiences = 10
	trustMaxClaims    = 32
	trustMaxPatterns  = 50
	trustMaxPattern   = 1024
	trustMaxURL       = 512
	trustMaxJWKS      = 64 << 10
)

// reservedClaims are checked by the exchange itself; a condition on them
// would only confuse (iss and aud have their own fields).
var reservedClaims = map[string]bool{"iss": true, "aud": true, "exp": true, "nbf": true, "iat": true, "jti": true}

// ListTrustPolicies returns every trust policy, by name; needs settings,
// get, trust.
func (s *Service) ListTrustPolicies(ctx context.Context, p *Principal) ([]gatehouse.TrustPolicy, error) {
	if err := s.authorize(p, "settings", "get", "trust"); err != nil {
		return nil, err
	}
	var out []gatehouse.TrustPolicy
	err := s.store.View(ctx, func(tx gatehouse.Tx) error {
		var err error
		out, err = tx.ListTrustPolicies(ctx)
		return err
	})
	return out, err
}

// GetTrustPolicy returns one trust policy; needs settings, get, trust.
func (s *Service) GetTrustPolicy(ctx context.Context, p *Principal, name string) (gatehouse.TrustPolicy, error) {
	if err := s.authorize(p, "settings", "get", "trust"); err != nil {
		return gatehouse.TrustPolicy{}, err
	}
	return s.trustPolicy(ctx, name)
}

func (s *Service) trustPolicy(ctx context.Context, name string) (gatehouse.TrustPolicy, error) {
	var tp gatehouse.TrustPolicy
	err := s.store.View(ctx, func(tx gatehouse.Tx) error {
		var err error
		tp, err = tx.GetTrustPolicy(ctx, name)
		return err
	})
	if gatehouse.IsCode(err, gatehouse.ENOTFOUND) {
		return tp, gatehouse.Errorf(gatehouse.ENOTFOUND, "trust policy %q not found", clipName(name))
	}
	return tp, err
}

// CreateTrustPolicy stores a new trust policy; needs settings, update,
// trust. Its scopes must lie within both the subject's permissions and
// the caller's.
func (s *Service) CreateTrustPolicy(ctx context.Context, p *Principal, tp gatehouse.TrustPolicy) (gatehouse.TrustPolicy, error) {
	if err := s.authorize(p, "settings", "update", "trust"); err != nil {
		return gatehouse.TrustPolicy{}, err
	}
	tp, err := s.checkTrustPolicy(ctx, p, tp)
	if err != nil {
		return gatehouse.TrustPolicy{}, err
	}
	now := s.now().UTC()
	tp.CreatedAt, tp.UpdatedAt = now, now
	err = s.write(ctx, p, func(tx gatehouse.Tx, c *change) error {
		if err := trustSubjectTx(ctx, tx, tp); err != nil {
			return err
		}
		if err := tx.CreateTrustPolicy(ctx, tp); err != nil {
			if gatehouse.IsCode(err, gatehouse.ECONFLICT) {
				return gatehouse.Errorf(gatehouse.ECONFLICT, "trust policy %q already exists", tp.Name)
			}
			return err
		}
		c.changeTrust(tp.Name)
		return tx.AppendEvents(ctx, []gatehouse.Event{s.event(p, gatehouse.EventTrustChanged, "settings", "update", "trust", "created "+strconv.Quote(tp.Name))})
	})
	if err != nil {
		return gatehouse.TrustPolicy{}, err
	}
	return tp, nil
}

// UpdateTrustPolicy replaces a trust policy; needs settings, update,
// trust. A policy that changes revokes, in the same transaction, every
// token issued through it: they were granted under conditions that no
// longer hold. Replacing a policy with itself changes nothing.
func (s *Service) UpdateTrustPolicy(ctx context.Context, p *Principal, name string, tp gatehouse.TrustPolicy) (gatehouse.TrustPolicy, error) {
	if err := s.authorize(p, "settings", "update", "trust"); err != nil {
		return gatehouse.TrustPolicy{}, err
	}
	if tp.Name == "" {
		tp.Name = name
	}
	if tp.Name != name {
		return gatehouse.TrustPolicy{}, gatehouse.Errorf(gatehouse.EINVALID, "trust policy name in the body (%q) differs from the path (%q)", clipName(tp.Name), clipName(name))
	}
	tp, err := s.checkTrustPolicy(ctx, p, tp)
	if err != nil {
		return gatehouse.TrustPolicy{}, err
	}
	err = s.write(ctx, p, func(tx gatehouse.Tx, c *change) error {
		var err error
		tp, err = s.replaceTrustTx(ctx, tx, c, p, tp, false)
		return err
	})
	if err != nil {
		return gatehouse.TrustPolicy{}, err
	}
	return tp, nil
}

// replaceTrustTx stores tp over the policy of its name (or creates it,
// with upsert) and, when it changed, revokes the tokens issued through
// it. It returns the policy as stored.
func (s *Service) replaceTrustTx(ctx context.Context, tx gatehouse.Tx, c *change, p *Principal, tp gatehouse.TrustPolicy, upsert bool) (gatehouse.TrustPolicy, error) {
	now := s.now().UTC()
	old, err := tx.GetTrustPolicy(ctx, tp.Name)
	switch {
	case gatehouse.IsCode(err, gatehouse.ENOTFOUND) && upsert:
		if err := trustSubjectTx(ctx, tx, tp); err != nil {
			return tp, err
		}
		tp.CreatedAt, tp.UpdatedAt = now, now
		if err := tx.CreateTrustPolicy(ctx, tp); err != nil {
			return tp, err
		}
		c.changeTrust(tp.Name)
		return tp, tx.AppendEvents(ctx, []gatehouse.Event{s.event(p, gatehouse.EventTrustChanged, "settings", "update", "trust", "created "+strconv.Quote(tp.Name))})
	case gatehouse.IsCode(err, gatehouse.ENOTFOUND):
		return tp, gatehouse.Errorf(gatehouse.ENOTFOUND, "trust policy %q not found", tp.Name)
	case err != nil:
		return tp, err
	}
	tp.CreatedAt, tp.UpdatedAt = old.CreatedAt, old.UpdatedAt
	if sameTrustPolicy(old, tp) {
		return old, nil
	}
	if err := trustSubjectTx(ctx, tx, tp); err != nil {
		return tp, err
	}
	tp.UpdatedAt = now
	if err := tx.UpdateTrustPolicy(ctx, tp); err != nil {
		return tp, err
	}
	c.changeTrust(tp.Name)
	events, err := s.revokeIssuedTx(ctx, tx, c, p, tp.Name, "trust policy changed")
	if err != nil {
		return tp, err
	}
	events = append(events, s.event(p, gatehouse.EventTrustChanged, "settings", "update", "trust",
		fmt.Sprintf("updated %q; %d issued token(s) revoked", tp.Name, len(events))))
	return tp, tx.AppendEvents(ctx, events)
}

// DeleteTrustPolicy deletes a trust policy and revokes the tokens issued
// through it, at once; needs settings, update, trust.
func (s *Service) DeleteTrustPolicy(ctx context.Context, p *Principal, name string) error {
	if err := s.authorize(p, "settings", "update", "trust"); err != nil {
		return err
	}
	return s.write(ctx, p, func(tx gatehouse.Tx, c *change) error {
		if err := tx.DeleteTrustPolicy(ctx, name); err != nil {
			if gatehouse.IsCode(err, gatehouse.ENOTFOUND) {
				return gatehouse.Errorf(gatehouse.ENOTFOUND, "trust policy %q not found", clipName(name))
			}
			return err
		}
		c.changeTrust(name)
		events, err := s.revokeIssuedTx(ctx, tx, c, p, name, "trust policy deleted")
		if err != nil {
			return err
		}
		events = append(events, s.event(p, gatehouse.EventTrustChanged, "settings", "update", "trust",
			fmt.Sprintf("deleted %q; %d issued token(s) revoked", name, len(events))))
		return tx.AppendEvents(ctx, events)
	})
}

// ApplyTrustPolicies makes the configuration file's trust policies the
// stored ones, at start: each is created, or replaced when it differs
// (revoking the tokens issued through it). Policies not in the file are
// left alone. The file is the operator's, so no caller's permissions
// bound the scopes, only the subject's.
//
// A new policy whose subject does not exist yet (accounts and projects
// are made through the API, after the first start) is skipped with a
// warning, to be applied at a later start; any other problem, and one
// with a policy already stored, which would otherwise stay in force as it
// was, is an error.
func (s *Service) ApplyTrustPolicies(ctx context.Context, tps []gatehouse.TrustPolicy) error {
	if len(tps) == 0 {
		return nil
	}
	stored := map[string]bool{}
	err := s.store.View(ctx, func(tx gatehouse.Tx) error {
		all, err := tx.ListTrustPolicies(ctx)
		for _, tp := range all {
			stored[tp.Name] = true
		}
		return err
	})
	if err != nil {
		return err
	}
	missing := func(err error) bool {
		return gatehouse.IsCode(err, gatehouse.ENOTFOUND) || gatehouse.IsCode(err, gatehouse.EPRECONDITION)
	}
	checked := make([]gatehouse.TrustPolicy, 0, len(tps))
	for i, tp := range tps {
		tp, err := s.checkTrustPolicy(ctx, nil, tp)
		if err != nil && missing(err) && !stored[tp.Name] {
			s.log.Warn("trust policy from the configuration not applied: its subject cannot hold tokens yet; create it, then restart",
				"trust_policy", tp.Name, "problem", gatehouse.ErrorMessage(err))
			continue
		}
		if err != nil {
			return fmt.Errorf("trustPolicies[%d] (%s): %s", i, clipName(tp.Name), gatehouse.ErrorMessage(err))
		}
		checked = append(checked, tp)
	}
	if len(checked) == 0 {
		return nil
	}
	return s.write(ctx, nil, func(tx gatehouse.Tx, c *change) error {
		for _, tp := range checked {
			if _, err := s.replaceTrustTx(ctx, tx, c, nil, tp, true); err != nil {
				return fmt.Errorf("trust policy %s: %s", tp.Name, gatehouse.ErrorMessage(err))
			}
		}
		return nil
	})
}

// revokeIssuedTx revokes the tokens issued through the named policy.
func (s *Service) revokeIssuedTx(ctx context.Context, tx gatehouse.Tx, c *change, p *Principal, name, detail string) ([]gatehouse.Event, error) {
	gone, err := tx.DeleteTokensCreatedBy(ctx, gatehouse.TokenCreator(name))
	if err != nil {
		return nil, err
	}
	if len(gone) > 0 && p.exchanged() {
		// As removeTx: a token from a token exchange revokes none, not
		// by deleting or changing the policy that issued them either.
		return nil, errExchangedMint
	}
	events := make([]gatehouse.Event, 0, len(gone))
	for _, t := range gone {
		c.revoke(t.ID)
		events = append(events, s.tokenEvent(p, gatehouse.EventTokenRevoked, t, detail))
	}
	if err := s.notifyTokens(ctx, tx, gatehouse.NotifyTokenRevoked, gone, detail); err != nil {
		return nil, err
	}
	return events, nil
}

// dropTrustPoliciesTx deletes, in a write that removes their subject (an
// account, a project, a project's role), the trust policies that mint for
// it, with what they issued: a policy left behind would mint for a new
// account or project of the same name, which never inherits the old one's
// grants.
func (s *Service) dropTrustPoliciesTx(ctx context.Context, tx gatehouse.Tx, c *change, p *Principal, gone func(gatehouse.TrustPolicy) bool, why string) ([]gatehouse.Event, error) {
	tps, err := tx.ListTrustPolicies(ctx)
	if err != nil {
		return nil, err
	}
	var events []gatehouse.Event
	for _, tp := range tps {
		if !gone(tp) {
			continue
		}
		if err := tx.DeleteTrustPolicy(ctx, tp.Name); err != nil {
			return nil, err
		}
		c.changeTrust(tp.Name)
		revoked, err := s.revokeIssuedTx(ctx, tx, c, p, tp.Name, "trust policy deleted")
		if err != nil {
			return nil, err
		}
		events = append(events, revoked...)
		events = append(events, s.event(p, gatehouse.EventTrustChanged, "settings", "update", "trust",
			fmt.Sprintf("deleted %q: %s; %d issued token(s) revoked", tp.Name, why, len(revoked))))
	}
	return events, nil
}

// sameTrustPolicy: a and b grant the same, times aside.
func sameTrustPolicy(a, b gatehouse.TrustPolicy) bool {
	a.CreatedAt, a.UpdatedAt, b.CreatedAt, b.UpdatedAt = time.Time{}, time.Time{}, time.Time{}, time.Time{}
	return reflect.DeepEqual(a, b)
}

// trustSubjectTx checks, in the writing transaction, that the policy's
// subject exists and may hold tokens.
func trustSubjectTx(ctx context.Context, tx gatehouse.Tx, tp gatehouse.TrustPolicy) error {
	if tp.Project != "" {
		return roleExistsTx(ctx, tx, tp.Project, tp.Role)
	}
	return ownerMayHold(ctx, tp.Account, gatehouse.CapAPIKey)(tx)
}

// checkTrustPolicy validates a policy and returns it in its normal form
// (NormalTrustPolicy), its ttl within the server's maximum lifetime and its
// scopes within its subject's permissions and the caller's. p is the
// caller (nil for the configuration file).
//
// A policy mints tokens for its subject, so saving one through the API
// also needs what minting for that subject directly needs (accounts,
// update, <account>; projects, update, <project>): settings, update,
// trust alone is no way to act as another account.
func (s *Service) checkTrustPolicy(ctx context.Context, p *Principal, tp gatehouse.TrustPolicy) (gatehouse.TrustPolicy, error) {
	tp, err := NormalTrustPolicy(tp)
	if err != nil {
		return tp, err
	}
	if p != nil {
		// The request's audit record names settings, update, trust, unless
		// this check is what refuses it.
		saved := p.decision
		if _, err := s.authorizeMint(ctx, p, MintOwner{Account: tp.Account, Project: tp.Project, Role: tp.Role}); err != nil {
			return tp, err
		}
		p.decision = saved
	}
	if time.Duration(tp.TTL)*time.Second > s.maxLifetime {
		return tp, gatehouse.Errorf(gatehouse.EINVALID, "ttl %d exceeds the server's maximum token lifetime of %d seconds", tp.TTL, int64(s.maxLifetime/time.Second))
	}
	scopes, err := s.checkTrustScopes(p, tp)
	if err != nil {
		return tp, err
	}
	tp.Scopes = scopes
	return tp, nil
}

// NormalTrustPolicy checks what can be checked of a trust policy without
// the store (configuration validation runs it too) and returns it in its
// normal form: trimmed, ttl defaulted, the inline JWKS compacted.
func NormalTrustPolicy(tp gatehouse.TrustPolicy) (gatehouse.TrustPolicy, error) {
	bad := func(format string, args ...any) (gatehouse.TrustPolicy, error) {
		return tp, gatehouse.Errorf(gatehouse.EINVALID, format, args...)
	}
	tp.Name = strings.TrimSpace(tp.Name)
	if !dnsLabel.MatchString(tp.Name) {
		return bad("trust policy name must be a DNS label: 1-63 lowercase letters, digits and '-'")
	}
	tp.Issuer = strings.TrimSpace(tp.Issuer)
	if err := checkKeyURL(tp.Issuer); err != nil {
		return bad("issuer: %v", err)
	}
	tp.JWKSURL = strings.TrimSpace(tp.JWKSURL)
	jwks := bytes.TrimSpace(tp.JWKS)
	if bytes.Equal(jwks, []byte("null")) {
		jwks = nil
	}
	switch {
	case tp.JWKSURL == "" && len(jwks) == 0:
		return bad("give the issuer's keys: jwksURL, or an inline JWKS document in jwks")
	case tp.JWKSURL != "" && len(jwks) > 0:
		return bad("give jwksURL or jwks, not both")
	case tp.JWKSURL != "":
		if err := checkKeyURL(tp.JWKSURL); err != nil {
			return bad("jwksURL: %v", err)
		}
		tp.JWKS = nil
	default:
		if len(jwks) > trustMaxJWKS {
			return bad("jwks is at most %d bytes", trustMaxJWKS)
		}
		if _, err := parseJWKS(jwks); err != nil {
			return bad("jwks: %v", err)
		}
		var buf bytes.Buffer
		if err := json.Compact(&buf, jwks); err != nil {
			return bad("jwks is not JSON")
		}
		tp.JWKS = buf.Bytes()
	}

	if len(tp.Audiences) == 0 || len(tp.Audiences) > trustMaxAudiences {
		return bad("audiences: give 1 to %d; each Gatehouse should have an audience of its own", trustMaxAudiences)
	}
	auds := make([]string, 0, len(tp.Audiences))
	for _, a := range tp.Audiences {
		a = strings.TrimSpace(a)
		if a == "" || len(a) > trustMaxURL || !utf8.ValidString(a) {
			return bad("audiences: each is 1 to %d bytes of text", trustMaxURL)
		}
		if !slices.Contains(auds, a) {
			auds = append(auds, a)
		}
	}
	tp.Audiences = auds

	if len(tp.Claims) == 0 {
		return bad("claims: at least one claim condition is required (pin numeric ids such as repository_id or project_id, not only sub)")
	}
	if len(tp.Claims) > trustMaxClaims {
		return bad("claims: at most %d conditions", trustMaxClaims)
	}
	claims := make(map[string]gatehouse.ClaimPatterns, len(tp.Claims))
	for k, pats := range tp.Claims {
		if k == "" || len(k) > 128 || !utf8.ValidString(k) || strings.TrimSpace(k) != k {
			return bad("claims: a claim name is 1 to 128 bytes of text without surrounding spaces")
		}
		if reservedClaims[k] {
			return bad("claims: %q is checked by the exchange itself; use issuer and audiences", k)
		}
		if len(pats) == 0 || len(pats) > trustMaxPatterns {
			return bad("claims: %q needs 1 to %d values", k, trustMaxPatterns)
		}
		out := make(gatehouse.ClaimPatterns, 0, len(pats))
		for _, pat := range pats {
			if pat == "" || len(pat) > trustMaxPattern || !utf8.ValidString(pat) {
				return bad("claims: each value of %q is 1 to %d bytes of text", k, trustMaxPattern)
			}
			if strings.Trim(pat, "*") == "" {
				return bad("claims: %q matches anything with %q; give a real condition", k, pat)
			}
			out = append(out, pat)
		}
		claims[k] = out
	}
	tp.Claims = claims

	switch {
	case tp.Account != "" && (tp.Project != "" || tp.Role != ""):
		return bad("the subject is an account or a project role (project and role), not both")
	case tp.Account != "":
		if !accountName.MatchString(tp.Account) {
			return bad("account is not a valid account name")
		}
	case tp.Project != "" && tp.Role != "":
		if !dnsLabel.MatchString(tp.Project) || !roleName.MatchString(tp.Role) {
			return bad("project and role must be valid project and role names")
		}
	default:
		return bad("give the subject of the issued tokens: account, or project and role")
	}

	if tp.TTL == 0 {
		tp.TTL = trustDefaultTTL
	}
	if tp.TTL < trustMinTTL || tp.TTL > trustMaxTTL {
		return bad("ttl must be between %d and %d seconds", trustMinTTL, trustMaxTTL)
	}
	return tp, nil
}

// checkTrustScopes applies minting's scope check with the policy's subject
// as the owner: an account as it is now, a project role as its subject.
func (s *Service) checkTrustScopes(p *Principal, tp gatehouse.TrustPolicy) ([]gatehouse.Scope, error) {
	var owner gatehouse.Account
	if tp.Project != "" {
		owner = gatehouse.Account{Name: tp.Subject()}
	} else {
		a := s.accounts.get(tp.Account)
		if a == nil {
			return nil, gatehouse.Errorf(gatehouse.ENOTFOUND, "account %q not found", tp.Account)
		}
		if !a.Enabled || !a.Has(gatehouse.CapAPIKey) {
			return nil, gatehouse.Errorf(gatehouse.EPRECONDITION, "account %q cannot hold API tokens (disabled, or no apiKey capability)", tp.Account)
		}
		owner = *a
	}
	if p != nil {
		return s.checkScopes(p, &owner, tp.Scopes)
	}
	// The configuration file: the subject's permissions alone bound them.
	if len(tp.Scopes) > 100 {
		return nil, gatehouse.Errorf(gatehouse.EINVALID, "at most 100 scopes")
	}
	out := make([]gatehouse.Scope, 0, len(tp.Scopes))
	e := s.engine.Load()
	for i, sc := range tp.Scopes {
		sc = trimScope(sc)
		if sc.Resource == "" || sc.Action == "" || sc.Object == "" {
			return nil, gatehouse.Errorf(gatehouse.EINVALID, "scope %d: resource, action and object are required", i+1)
		}
		if _, err := compileScopes([]gatehouse.Scope{sc}); err != nil {
			return nil, gatehouse.Errorf(gatehouse.EINVALID, "scope %d: %v", i+1, err)
		}
		if e == nil || !e.Enforce(owner.Name, owner.Groups, sc.Resource, sc.Action, sc.Object) {
			return nil, gatehouse.Errorf(gatehouse.EINVALID, "scope %d (%s, %s, %s) exceeds the permissions of %q", i+1, sc.Resource, sc.Action, sc.Object, owner.Name)
		}
		out = append(out, sc)
	}
	return out, nil
}

// checkKeyURL: an issuer or JWKS URL is https://, or http:// on a
// loopback address (a test issuer, a local sidecar), with a host and no
// credentials or fragment (weburl.ParseSecure).
func checkKeyURL(s string) error {
	if s == "" || len(s) > trustMaxURL {
		return fmt.Errorf("give a URL of at most %d bytes", trustMaxURL)
	}
	if _, why := weburl.ParseSecure(s); why != "" {
		return errors.New(why)
	}
	return nil
}

// pruneExchangeReplays deletes the replay records of subject tokens, and
// of CLI login confirmations, that have expired: they are refused for
// their expiry now.
func (s *Service) pruneExchangeReplays(ctx context.Context) (int, error) {
	var n int
	err := s.store.Tx(ctx, func(tx gatehouse.Tx) (err error) {
		n, err = tx.PruneExchangeReplays(ctx, s.now())
		return err
	})
	return n, err
}
