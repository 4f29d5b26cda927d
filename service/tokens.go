package service

import (
	"context"
	"crypto/sha256"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/policy"
	"github.com/gatehouse/gatehouse/token"
)

// CreateToken mints an API token for account. Accounts mint their own
// tokens freely (they need the apiKey capability); minting for another
// account needs accounts, update, <account>. Scopes may only narrow: each
// must be held by the owner (and by the minter) now.
func (s *Service) CreateToken(ctx context.Context, p *Principal, account string, req gatehouse.TokenRequest) (gatehouse.NewToken, error) {
	sub, err := s.authorizeMint(ctx, p, MintOwner{Account: account})
	if err != nil {
		return gatehouse.NewToken{}, err
	}
	owner := sub.owner
	name, err := tokenName(req)
	if err != nil {
		return gatehouse.NewToken{}, err
	}
	now := s.now()
	exp, err := s.expiry(now, req.ExpiresIn)
	if err != nil {
		return gatehouse.NewToken{}, err
	}
	scopes, err := s.checkScopes(p, owner, req.Scopes)
	if err != nil {
		return gatehouse.NewToken{}, err
	}
	idle, err := s.idleTimeoutFor(req.IdleTimeout)
	if err != nil {
		return gatehouse.NewToken{}, err
	}
	return s.mint(ctx, p, gatehouse.Token{
		Name:        name,
		Kind:        gatehouse.KindAPI,
		Account:     account,
		Scopes:      scopes,
		ExpiresAt:   exp,
		IdleTimeout: idle,
		SelfRotate:  req.SelfRotate,
	}, ownerMayHold(ctx, account, gatehouse.CapAPIKey))
}

// ListTokens lists an account's API tokens, newest first. Never secrets.
func (s *Service) ListTokens(ctx context.Context, p *Principal, account string) ([]gatehouse.Token, error) {
	if err := s.authorizeTokens(p, account, "get"); err != nil {
		return nil, err
	}
	var out []gatehouse.Token
	err := s.store.View(ctx, func(tx gatehouse.Tx) error {
		if _, err := tx.GetAccount(ctx, account); err != nil {
			return err
		}
		var err error
		out, err = tx.ListTokens(ctx, gatehouse.TokenFilter{Account: account, Kind: gatehouse.KindAPI})
		return err
	})
	return publicTokens(out), err
}

// DeleteToken revokes one of an account's tokens (API or session).
func (s *Service) DeleteToken(ctx context.Context, p *Principal, account, id string) error {
	if err := s.authorizeTokens(p, account, "update"); err != nil {
		return err
	}
	if _, err := token.ParseID(id); err != nil {
		return gatehouse.Errorf(gatehouse.ENOTFOUND, "token not found")
	}
	gone, err := s.revoke(ctx, p, gatehouse.TokenFilter{ID: id, Account: account}, gatehouse.EventTokenRevoked, "")
	if err != nil {
		return err
	}
	if len(gone) == 0 {
		return gatehouse.Errorf(gatehouse.ENOTFOUND, "token not found")
	}
	return nil
}

// RevokeAll revokes every API token of an account, or those issued before
// a time when issuedBefore is set.
func (s *Service) RevokeAll(ctx context.Context, p *Principal, account string, issuedBefore time.Time) (int, error) {
	if err := s.authorizeTokens(p, account, "update"); err != nil {
		return 0, err
	}
	if s.accounts.get(account) == nil {
		return 0, gatehouse.Errorf(gatehouse.ENOTFOUND, "account %q not found", account)
	}
	gone, err := s.revoke(ctx, p, gatehouse.TokenFilter{Account: account, Kind: gatehouse.KindAPI, IssuedBefore: issuedBefore}, gatehouse.EventTokenRevoked, "revoke-all")
	return len(gone), err
}

// RotateToken mints a successor of an API token with the same name and
// scopes, and revokes the old one now or, with a grace period, lets it
// expire then. The new secret is returned once.
func (s *Service) RotateToken(ctx context.Context, p *Principal, account, id string, req gatehouse.RotateRequest) (gatehouse.NewToken, error) {
	if err := s.authorizeTokens(p, account, "update"); err != nil {
		return gatehouse.NewToken{}, err
	}
	return s.rotate(ctx, p, account, id, req)
}

// SelfRotate rotates the presented token itself, for a token minted with
// selfRotate: an unattended pipeline keeps its credential fresh without
// its owner's permission to manage tokens (nor scopes that include it).
// The successor has the same name, scopes, idle timeout and selfRotate.
func (s *Service) SelfRotate(ctx context.Context, p *Principal, account string, req gatehouse.RotateRequest) (gatehouse.NewToken, error) {
	if p == nil || p.cached == nil || p.kind != gatehouse.KindAPI || p.account != account || !p.cached.rec.SelfRotate {
		return gatehouse.NewToken{}, gatehouse.Errorf(gatehouse.EFORBIDDEN, "permission denied: only an API token of account %q minted with selfRotate may rotate itself", account)
	}
	if p.exchanged() {
		return gatehouse.NewToken{}, errExchangedMint
	}
	// A successor lives no longer than the token was minted to: selfRotate
	// keeps a credential fresh, it does not lengthen it.
	if rec := p.cached.rec; req.ExpiresIn != nil && !rec.ExpiresAt.IsZero() {
		if life := int64(rec.ExpiresAt.Sub(rec.IssuedAt) / time.Second); *req.ExpiresIn == 0 || *req.ExpiresIn > life {
			return gatehouse.NewToken{}, gatehouse.Errorf(gatehouse.EINVALID, "expiresIn may not exceed the token's own lifetime of %d seconds when it rotates itself", life)
		}
	}
	p.self("accounts", "update", account)
	return s.rotate(ctx, p, account, p.tokenID, req)
}

// rotate mints the successor of the API token id of account, once the
// caller has been authorized.
func (s *Service) rotate(ctx context.Context, p *Principal, account, id string, req gatehouse.RotateRequest) (gatehouse.NewToken, error) {
	// Compared in seconds, before any conversion that could overflow.
	if req.GraceSeconds < 0 || req.GraceSeconds > maxGraceSeconds {
		return gatehouse.NewToken{}, gatehouse.Errorf(gatehouse.EINVALID, "graceSeconds must be between 0 and %d (7 days)", maxGraceSeconds)
	}
	if _, err := token.ParseID(id); err != nil {
		return gatehouse.NewToken{}, gatehouse.Errorf(gatehouse.ENOTFOUND, "token not found")
	}
	now := s.now()
	var exp time.Time
	if req.ExpiresIn != nil {
		var err error
		if exp, err = s.expiry(now, req.ExpiresIn); err != nil {
			return gatehouse.NewToken{}, err
		}
	}
	owner := s.accounts.get(account)
	if owner == nil || !owner.Enabled || !owner.Has(gatehouse.CapAPIKey) {
		return gatehouse.NewToken{}, gatehouse.Errorf(gatehouse.EPRECONDITION, "account %q cannot hold API tokens", account)
	}
	grace := time.Duration(req.GraceSeconds) * time.Second
	var (
		nt    gatehouse.NewToken
		fresh gatehouse.Token
		old   gatehouse.Token
	)
	err := s.write(ctx, p, func(tx gatehouse.Tx, c *change) error {
		if err := ownerMayHold(ctx, account, gatehouse.CapAPIKey)(tx); err != nil {
			return err
		}
		var err error
		old, err = tx.GetToken(ctx, id)
		if gatehouse.IsCode(err, gatehouse.ENOTFOUND) || (err == nil && (old.Account != account || old.Kind != gatehouse.KindAPI)) {
			return gatehouse.Errorf(gatehouse.ENOTFOUND, "token not found")
		}
		if err != nil {
			return err
		}
		if old.Exchanged() {
			// Its successor would be the rotator's, outliving the trust
			// policy that issued the original and its minutes-long life.
			return gatehouse.Errorf(gatehouse.EPRECONDITION, "token %s was issued by token exchange and is not rotated; exchange again for a fresh one", old.ID)
		}
		if _, err := tx.GetRotation(ctx, old.ID); err == nil {
			return gatehouse.Errorf(gatehouse.ECONFLICT, "token %s was already rotated; rotate its successor", old.ID)
		} else if !gatehouse.IsCode(err, gatehouse.ENOTFOUND) {
			return err
		}
		if !old.ExpiresAt.IsZero() && grace > old.ExpiresAt.Sub(now) {
			return gatehouse.Errorf(gatehouse.EINVALID, "graceSeconds %d exceeds the old token's remaining life of %d seconds", req.GraceSeconds, max(0, int64(old.ExpiresAt.Sub(now)/time.Second)))
		}
		if req.ExpiresIn == nil {
			exp = s.successorExpiry(old, now)
		}
		fresh, nt, err = s.newToken(gatehouse.Token{
			Name: old.Name, Kind: gatehouse.KindAPI, Account: account,
			Scopes: old.Scopes, ExpiresAt: exp, CreatedBy: subjectOf(p),
			IdleTimeout: old.IdleTimeout, SelfRotate: old.SelfRotate, Family: old.FamilyID(),
		}, now)
		if err != nil {
			return err
		}
		s.issuedNow(&fresh, &nt)
		if err := tx.CreateToken(ctx, fresh); err != nil {
			return err
		}
		// What is kept of the old token, to know it if it comes back: until
		// it would have expired anyway, or while its family lives.
		rot := gatehouse.Rotation{ID: old.ID, Hash: old.Hash, Family: old.FamilyID(), Account: account,
			Successor: fresh.ID, RotatedAt: now.UTC(), KeepUntil: old.ExpiresAt}
		if grace > 0 {
			rot.GraceUntil = now.Add(grace).UTC()
		}
		if err := tx.AddRotation(ctx, rot); err != nil {
			return err
		}
		c.putRotation(rot)
		events := []gatehouse.Event{
			s.tokenEvent(p, gatehouse.EventTokenCreated, fresh, "rotated from "+old.ID),
			s.tokenEvent(p, gatehouse.EventTokenRotated, old, "successor "+fresh.ID),
		}
		c.putToken(fresh)
		if grace > 0 {
			end := now.Add(grace)
			old.ExpiresAt = end
			if err := tx.SetTokenExpiry(ctx, old.ID, end); err != nil {
				return err
			}
			c.putToken(old)
		} else {
			_, gone, err := s.removeTx(ctx, tx, c, p, gatehouse.TokenFilter{ID: old.ID},
				removal{event: gatehouse.EventTokenRevoked, detail: "rotated", notify: gatehouse.NotifyTokenRevoked})
			if err != nil {
				return err
			}
			events = append(events, gone...)
		}
		return tx.AppendEvents(ctx, events)
	})
	if err != nil {
		return gatehouse.NewToken{}, err
	}
	return nt, nil
}

// maxGraceSeconds bounds a rotation's grace period: a week is time enough
// to roll a new token out, and the old one may live no longer than that.
const maxGraceSeconds = 7 * 24 * 60 * 60

// ownerMayHold is a mint's in-transaction check that the owning account
// still exists, is enabled and has the capability.
func ownerMayHold(ctx context.Context, account string, c gatehouse.Capability) func(gatehouse.Tx) error {
	return func(tx gatehouse.Tx) error {
		a, err := tx.GetAccount(ctx, account)
		if gatehouse.IsCode(err, gatehouse.ENOTFOUND) {
			return gatehouse.Errorf(gatehouse.ENOTFOUND, "account %q not found", account)
		}
		if err != nil {
			return err
		}
		if !a.Enabled || !a.Has(c) {
			return gatehouse.Errorf(gatehouse.EPRECONDITION, "account %q cannot hold %s tokens", account, kindFor(c))
		}
		return nil
	}
}

func kindFor(c gatehouse.Capability) string {
	if c == gatehouse.CapLogin {
		return "session"
	}
	return "API"
}

// successorExpiry gives a rotated token the life its predecessor was
// minted with (capped at the server maximum), so rotating a 30-day CI
// token does not hand back a 12-hour one.
func (s *Service) successorExpiry(old gatehouse.Token, now time.Time) time.Time {
	if old.ExpiresAt.IsZero() {
		if s.allowNonExpiring {
			return time.Time{}
		}
		return now.Add(s.maxLifetime)
	}
	return now.Add(min(old.ExpiresAt.Sub(old.IssuedAt), s.maxLifetime))
}

// BulkRevoke is break-glass: revoke every token matching the filter, or
// with DryRun only report them. Server-wide filters need
// accounts, update, *; a project-only filter needs projects, update, <p>.
func (s *Service) BulkRevoke(ctx context.Context, p *Principal, req gatehouse.BulkRevoke) (gatehouse.BulkRevokeResult, error) {
	if req.Account == "" && req.Project == "" && req.IssuedBefore.IsZero() && req.Kind == "" {
		return gatehouse.BulkRevokeResult{}, gatehouse.Errorf(gatehouse.EINVALID, "give at least one filter: account, project, issuedBefore or kind")
	}
	if req.Role != "" && req.Project == "" {
		return gatehouse.BulkRevokeResult{}, gatehouse.Errorf(gatehouse.EINVALID, "role needs project")
	}
	switch {
	case req.Account != "" && !validAccountName(req.Account):
		return gatehouse.BulkRevokeResult{}, gatehouse.Errorf(gatehouse.EINVALID, "account is not a valid account name")
	case req.Project != "" && !dnsLabel.MatchString(req.Project):
		return gatehouse.BulkRevokeResult{}, gatehouse.Errorf(gatehouse.EINVALID, "project is not a valid project name")
	case req.Role != "" && !roleName.MatchString(req.Role):
		return gatehouse.BulkRevokeResult{}, gatehouse.Errorf(gatehouse.EINVALID, "role is not a valid role name")
	}
	switch req.Kind {
	case "", gatehouse.KindAPI, gatehouse.KindSession, gatehouse.KindProject:
	default:
		return gatehouse.BulkRevokeResult{}, gatehouse.Errorf(gatehouse.EINVALID, "unknown token kind %q", req.Kind)
	}
	projectOnly := req.Project != "" && req.Account == "" && req.IssuedBefore.IsZero()
	if s.authorize(p, "accounts", "update", "*") != nil && (!projectOnly || s.authorize(p, "projects", "update", req.Project) != nil) {
		return gatehouse.BulkRevokeResult{}, gatehouse.Errorf(gatehouse.EFORBIDDEN, "permission denied: break-glass revocation needs accounts, update, *")
	}
	f := gatehouse.TokenFilter{Account: req.Account, Project: req.Project, Role: req.Role, Kind: req.Kind, IssuedBefore: req.IssuedBefore}
	var toks []gatehouse.Token
	var err error
	if req.DryRun {
		err = s.store.View(ctx, func(tx gatehouse.Tx) error {
			toks, err = tx.ListTokens(ctx, f)
			return err
		})
	} else {
		toks, err = s.revoke(ctx, p, f, gatehouse.EventTokenRevoked, "break-glass")
	}
	if err != nil {
		return gatehouse.BulkRevokeResult{}, err
	}
	res := gatehouse.BulkRevokeResult{Count: len(toks), IDs: make([]string, 0, len(toks)), DryRun: req.DryRun}
	for _, t := range toks {
		res.IDs = append(res.IDs, t.ID)
	}
	return res, nil
}

// Reap removes expired tokens from the store (they are refused from the
// instant they expire) and prunes audit events past retention. Each
// removal is an audit event.
func (s *Service) Reap(ctx context.Context) (int, error) {
	now := s.now()
	var gone []gatehouse.Token
	err := s.write(ctx, nil, func(tx gatehouse.Tx, c *change) error {
		expired, events, err := s.removeTx(ctx, tx, c, nil, gatehouse.TokenFilter{ExpiredBefore: now},
			removal{event: gatehouse.EventTokenExpired, detail: "removed by reaper", actor: "reaper", notify: gatehouse.NotifyTokenExpired})
		if err != nil {
			return err
		}
		idle, idleEvents, err := s.removeTx(ctx, tx, c, nil, gatehouse.TokenFilter{IdleAt: now.Add(-idleSlack)}, idleRemoval("removed by reaper: unused for its idle timeout", "reaper"))
		if err != nil {
			return err
		}
		gone = append(expired, idle...)
		if err := tx.AppendEvents(ctx, append(events, idleEvents...)); err != nil {
			return err
		}
		if err := pruneRotationsTx(ctx, tx, c, now); err != nil {
			return err
		}
		_, err = tx.PruneEvents(ctx, now.Add(-s.auditRetention))
		return err
	})
	s.metrics.reaped(len(gone), err)
	if err != nil {
		return 0, err
	}
	return len(gone), nil
}

// mint creates a token record with a fresh id and secret, stores it with a
// token.created event (and any extra events) in one transaction, caches
// it, and returns the secret — the only time it leaves the server.
//
// check runs first inside the transaction: it re-reads what the token
// depends on (its owner, its role) so that a token is never minted for an
// owner that a concurrent write just deleted or disabled.
func (s *Service) mint(ctx context.Context, p *Principal, rec gatehouse.Token, check func(gatehouse.Tx) error, extra ...gatehouse.Event) (gatehouse.NewToken, error) {
	now := s.now()
	if rec.CreatedBy == "" {
		rec.CreatedBy = subjectOf(p)
	}
	rec, nt, err := s.newToken(rec, now)
	if err != nil {
		return gatehouse.NewToken{}, err
	}
	err = s.write(ctx, p, func(tx gatehouse.Tx, c *change) error {
		if err := check(tx); err != nil {
			return err
		}
		s.issuedNow(&rec, &nt)
		if err := tx.CreateToken(ctx, rec); err != nil {
			return err
		}
		c.putToken(rec)
		events := []gatehouse.Event{s.tokenEvent(p, gatehouse.EventTokenCreated, rec, "")}
		for _, ev := range extra {
			ev.TokenID, ev.TokenKind = rec.ID, rec.Kind
			events = append(events, s.stamp(ev))
		}
		return tx.AppendEvents(ctx, events)
	})
	if err != nil {
		return gatehouse.NewToken{}, err
	}
	return nt, nil
}

// issuedNow stamps rec, about to be created in a write's transaction
// (under writeMu), as issued now, if that is later than the time newToken
// gave it, before the wait for the lock: a revocation of everything issued
// before T that committed meanwhile does not see the token, which must
// then not claim to be issued before it either.
func (s *Service) issuedNow(rec *gatehouse.Token, nt *gatehouse.NewToken) {
	if now := s.now().UTC(); now.After(rec.IssuedAt) {
		rec.IssuedAt, nt.IssuedAt = now, now
	}
}

// newToken fills in a fresh id, secret hash and issue time.
func (s *Service) newToken(rec gatehouse.Token, now time.Time) (gatehouse.Token, gatehouse.NewToken, error) {
	t, err := token.New(s.instance, s.rand)
	if err != nil {
		return rec, gatehouse.NewToken{}, gatehouse.Internal(err)
	}
	h := t.Secret.Hash()
	text := t.Reveal()
	th := sha256.Sum256([]byte(text))
	rec.ID = t.ID.String()
	rec.Hash = h[:]
	rec.TextHash = th[:]
	rec.IssuedAt = now.UTC()
	if !rec.ExpiresAt.IsZero() {
		rec.ExpiresAt = rec.ExpiresAt.UTC()
	}
	if rec.Scopes == nil {
		rec.Scopes = []gatehouse.Scope{}
	}
	return rec, gatehouse.NewToken{
		Token:     text,
		ID:        rec.ID,
		Name:      rec.Name,
		IssuedAt:  rec.IssuedAt,
		ExpiresAt: rec.ExpiresAt,
	}, nil
}

// revoke deletes the matching tokens with one event per token and, once
// that has committed, drops them from the cache, all before it returns. A
// revoke the store refuses changes nothing: the token still works, as the
// store says, and the caller is told (503).
func (s *Service) revoke(ctx context.Context, p *Principal, f gatehouse.TokenFilter, evType, detail string) ([]gatehouse.Token, error) {
	var gone []gatehouse.Token
	err := s.write(ctx, p, func(tx gatehouse.Tx, c *change) error {
		var events []gatehouse.Event
		var err error
		gone, events, err = s.removeTx(ctx, tx, c, p, f, removal{event: evType, detail: detail, notify: evType})
		if err != nil {
			return err
		}
		return tx.AppendEvents(ctx, events)
	})
	if err != nil {
		return nil, err
	}
	return gone, nil
}

// revokeTx revokes the tokens f matches inside tx, as token.revoked
// events (returned for the caller to append) and notifications.
func (s *Service) revokeTx(ctx context.Context, tx gatehouse.Tx, c *change, p *Principal, f gatehouse.TokenFilter, evType, detail string) ([]gatehouse.Event, error) {
	_, events, err := s.removeTx(ctx, tx, c, p, f, removal{event: evType, detail: detail, notify: evType})
	return events, err
}

// removal says how tokens removed together are recorded: the type and
// detail of their audit events, the actor when it is not the caller
// (the reaper, the server itself, a leak report, with the reporter's
// address), and the notification they send ("" or an event that is not
// notifiable: none).
type removal struct {
	event, detail string
	actor, from   string
	notify        string
}

// removeTx is how tokens leave the store, whatever the reason: it deletes
// those f matches inside tx, records them in c for apply, enqueues their
// notifications, and returns them with one audit event each for the
// caller to append.
func (s *Service) removeTx(ctx context.Context, tx gatehouse.Tx, c *change, p *Principal, f gatehouse.TokenFilter, r removal) ([]gatehouse.Token, []gatehouse.Event, error) {
	gone, err := tx.DeleteTokens(ctx, f)
	if err != nil {
		return nil, nil, err
	}
	if len(gone) > 0 && p.exchanged() {
		// Whatever the change (a revocation, an account or project edit
		// that cuts tokens off), a token from a token exchange revokes
		// none: the transaction fails, and nothing changes.
		return nil, nil, errExchangedMint
	}
	events := make([]gatehouse.Event, 0, len(gone))
	for _, t := range gone {
		c.revoke(t.ID)
		ev := s.tokenEvent(p, r.event, t, r.detail)
		if r.actor != "" {
			ev.Actor = r.actor
		}
		if r.from != "" {
			ev.RemoteAddr = r.from
		}
		events = append(events, ev)
	}
	if err := s.notifyTokens(ctx, tx, r.notify, gone, r.detail); err != nil {
		return nil, nil, err
	}
	return gone, events, nil
}

// authorizeTokens: an account manages its own tokens; another's needs
// accounts, <action>, <account>. A scoped token is not trusted with
// self-service (it could mint itself an unscoped successor): it needs the
// permission explicitly, within its scopes.
func (s *Service) authorizeTokens(p *Principal, account, action string) error {
	if action != "get" && p.exchanged() {
		return errExchangedMint
	}
	if p.account != "" && p.account == account && p.kind != gatehouse.KindProject && len(p.scopes) == 0 {
		p.self("accounts", action, account)
		return nil
	}
	return s.authorize(p, "accounts", action, account)
}

// expiry turns expiresIn (seconds) into an expiry time.
func (s *Service) expiry(now time.Time, expiresIn *int64) (time.Time, error) {
	if expiresIn == nil {
		return now.Add(s.defaultLifetime), nil
	}
	n := *expiresIn
	switch {
	case n < 0:
		return time.Time{}, gatehouse.Errorf(gatehouse.EINVALID, "expiresIn must not be negative")
	case n == 0:
		if !s.allowNonExpiring {
			return time.Time{}, gatehouse.Errorf(gatehouse.EINVALID, "non-expiring tokens are not allowed on this server (maximum lifetime %d seconds)", int64(s.maxLifetime/time.Second))
		}
		return time.Time{}, nil
	case n > int64(s.maxLifetime/time.Second):
		return time.Time{}, gatehouse.Errorf(gatehouse.EINVALID, "expiresIn %d exceeds the server maximum of %d seconds", n, int64(s.maxLifetime/time.Second))
	}
	return now.Add(time.Duration(n) * time.Second), nil
}

// checkScopes validates scopes and refuses any that the owner (or the
// minter) does not hold now, so a token never claims more than its owner.
func (s *Service) checkScopes(p *Principal, owner *gatehouse.Account, scopes []gatehouse.Scope) ([]gatehouse.Scope, error) {
	if len(scopes) > 100 {
		return nil, gatehouse.Errorf(gatehouse.EINVALID, "at most 100 scopes")
	}
	e := s.engine.Load()
	out := make([]gatehouse.Scope, 0, len(scopes))
	for i, sc := range scopes {
		sc.Resource, sc.Action, sc.Object = strings.TrimSpace(sc.Resource), strings.TrimSpace(sc.Action), strings.TrimSpace(sc.Object)
		if sc.Resource == "" || sc.Action == "" || sc.Object == "" {
			return nil, gatehouse.Errorf(gatehouse.EINVALID, "scope %d: resource, action and object are required", i+1)
		}
		for _, pat := range []string{sc.Resource, sc.Action, sc.Object} {
			if _, err := policy.CompileGlob(pat); err != nil {
				return nil, gatehouse.Errorf(gatehouse.EINVALID, "scope %d: %v", i+1, err)
			}
		}
		// The pattern is checked as an object: the owner's own patterns
		// must cover it (team-a/* is covered by team-a/* or *, not by
		// team-a/web).
		if e == nil || !e.Enforce(owner.Name, owner.Groups, sc.Resource, sc.Action, sc.Object) {
			return nil, gatehouse.Errorf(gatehouse.EINVALID, "scope %d (%s, %s, %s) exceeds the permissions of account %q", i+1, sc.Resource, sc.Action, sc.Object, owner.Name)
		}
		if !s.Can(p, sc.Resource, sc.Action, sc.Object) {
			return nil, gatehouse.Errorf(gatehouse.EINVALID, "scope %d (%s, %s, %s) exceeds your own permissions", i+1, sc.Resource, sc.Action, sc.Object)
		}
		out = append(out, sc)
	}
	return out, nil
}

func tokenName(req gatehouse.TokenRequest) (string, error) {
	name := strings.TrimSpace(req.Name)
	if name == "" {
		name = strings.TrimSpace(req.ID)
	}
	if n := utf8.RuneCountInString(name); n < 1 || n > 100 {
		return "", gatehouse.Errorf(gatehouse.EINVALID, "name is required: 1 to 100 characters that say what the token is for")
	}
	return name, nil
}

// publicTokens clears what must not leave the server.
func publicTokens(ts []gatehouse.Token) []gatehouse.Token {
	out := make([]gatehouse.Token, len(ts))
	for i, t := range ts {
		t.Hash = nil
		out[i] = t
	}
	return out
}

func subjectOf(p *Principal) string {
	if p == nil {
		return "system:gatehouse" // no account can have the name
	}
	return p.subject
}
