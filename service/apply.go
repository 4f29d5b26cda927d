package service

import (
	"context"
	"fmt"
	"slices"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/policy"
)

// change is what one committed transaction did to the state the hot path
// reads: tokens, accounts, applications and the policy engine. A transaction function
// records its effects here; nothing in memory changes until the store has
// committed, and then only through apply.
type change struct {
	tokens          []gatehouse.Token // created, or changed (expiry)
	revoked         []string          // token ids deleted
	accounts        []gatehouse.Account
	deletedAccounts []string
	apps            []gatehouse.Application // created or changed
	deletedApps     []string
	rotations       []gatehouse.Rotation // tokens rotated away
	droppedRots     []string             // rotations pruned (old token ids)
	policy          bool                 // RBAC settings or projects changed: rebuild the engine
	trust           []string             // trust policies created, changed or deleted: drop their JWKS
	engine          *policy.Engine
	source          policySource // engine's
}

// feed is the change as change-feed entries: what it names, not how it
// changed (a replica reads the current state of each).
func (c *change) feed() []gatehouse.Change {
	var out []gatehouse.Change
	for _, t := range c.tokens {
		out = append(out, gatehouse.Change{Kind: gatehouse.ChangeToken, Key: t.ID})
	}
	for _, id := range c.revoked {
		out = append(out, gatehouse.Change{Kind: gatehouse.ChangeToken, Key: id})
	}
	for _, a := range c.accounts {
		out = append(out, gatehouse.Change{Kind: gatehouse.ChangeAccount, Key: a.Name})
	}
	for _, name := range c.deletedAccounts {
		out = append(out, gatehouse.Change{Kind: gatehouse.ChangeAccount, Key: name})
	}
	for _, a := range c.apps {
		out = append(out, gatehouse.Change{Kind: gatehouse.ChangeApplication, Key: a.Name})
	}
	for _, name := range c.deletedApps {
		out = append(out, gatehouse.Change{Kind: gatehouse.ChangeApplication, Key: name})
	}
	for _, r := range c.rotations {
		out = append(out, gatehouse.Change{Kind: gatehouse.ChangeRotation, Key: r.ID})
	}
	for _, id := range c.droppedRots {
		out = append(out, gatehouse.Change{Kind: gatehouse.ChangeRotation, Key: id})
	}
	if c.policy {
		out = append(out, gatehouse.Change{Kind: gatehouse.ChangePolicy})
	}
	return out
}

func (c *change) putToken(t gatehouse.Token)       { c.tokens = append(c.tokens, t) }
func (c *change) revoke(ids ...string)             { c.revoked = append(c.revoked, ids...) }
func (c *change) putAccount(a gatehouse.Account)   { c.accounts = append(c.accounts, a) }
func (c *change) deleteAccount(name string)        { c.deletedAccounts = append(c.deletedAccounts, name) }
func (c *change) putApp(a gatehouse.Application)   { c.apps = append(c.apps, a) }
func (c *change) deleteApp(name string)            { c.deletedApps = append(c.deletedApps, name) }
func (c *change) putRotation(r gatehouse.Rotation) { c.rotations = append(c.rotations, r) }
func (c *change) dropRotation(id string)           { c.droppedRots = append(c.droppedRots, id) }
func (c *change) changeTrust(name string)          { c.trust = append(c.trust, name) }

// write runs fn in one store transaction and, once it has committed,
// applies the recorded change to memory. caller is the principal the
// write was authorized for, nil for the server's own writes.
//
// A caller's write was authorized before it took writeMu, so a
// revocation, a demotion or a policy change may have committed in
// between. Inside the transaction, before fn, callerCurrent proves that
// nothing the authorization relied on has changed since the caller was
// authenticated; otherwise the write fails and changes nothing. Every
// write then has a serial order with the others: either it committed
// first, and a revoke-all or a demotion that follows undoes it, or it
// sees their effects and is refused.
//
// Writers are serialized (writeMu) from the start of the transaction to
// the end of apply, so changes reach memory in the order they committed:
// a mint that committed before a revoke-all cannot be cached after the
// revoke-all removed it, and a policy rebuilt inside one transaction is
// never swapped in over a later one.
//
// fn may run more than once (the Store contract allows retries), so it
// starts from an empty change each time and must record, not perform,
// its effects on memory. If fn changed the policy inputs it sets
// c.policy; the engine is rebuilt from the transaction's own view before
// commit, so a policy that does not compile rolls the change back.
func (s *Service) write(ctx context.Context, caller *Principal, fn func(tx gatehouse.Tx, c *change) error) error {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	var c change
	var groups []string // caller's, as the transaction read them
	err := s.store.Tx(ctx, func(tx gatehouse.Tx) error {
		c = change{}
		var err error
		var e *policy.Engine
		if groups, e, err = s.callerCurrent(ctx, tx, caller); err != nil {
			return err
		}
		if caller != nil {
			// What fn checks for the caller is decided on what the
			// transaction read: its stored groups and that engine.
			caller.groups, caller.inTx = groups, e
			defer func() { caller.inTx = nil }()
		}
		if err := fn(tx, &c); err != nil {
			return err
		}
		if c.policy {
			e, src, err := s.rebuildEngine(ctx, tx)
			if err != nil {
				return err
			}
			c.engine, c.source = e, src
		}
		// The change feed tells other replicas, in the same transaction.
		return tx.RecordChanges(ctx, c.feed())
	})
	if err != nil {
		return err
	}
	err = s.apply(c)
	if caller != nil {
		// What authorized this write has been checked; the caller's next
		// write starts from here, with the engine now in force.
		caller.engine, caller.groups, caller.nrelied = s.engine.Load(), groups, 0
	}
	return err
}

// apply is the one path by which committed changes reach memory. It runs
// with writeMu held. Within one change, what can only take permissions
// away (a new engine may also take some away, revocations, deletions,
// account records that may disable) goes before what can only add them
// (tokens), so no request in between sees more than either state allows.
func (s *Service) apply(c change) error {
	if c.engine != nil {
		s.engine.Store(c.engine)
		s.source = c.source
	}
	for _, id := range c.revoked {
		s.uncacheToken(id)
	}
	// Not in the change feed: another replica's cache entries are of the
	// policy's old version, which it never looks up again (jwks.go).
	for _, name := range c.trust {
		s.jwks.forget(name)
	}
	// A rotation only takes away (its old token, presented again, revokes
	// its family), so it goes before the tokens too.
	for _, r := range c.rotations {
		s.rotations.put(r)
	}
	for _, id := range c.droppedRots {
		s.rotations.delete(id)
	}
	for _, name := range c.deletedAccounts {
		s.accounts.delete(name)
	}
	for _, a := range c.accounts {
		s.accounts.put(a)
	}
	for _, name := range c.deletedApps {
		s.apps.delete(name)
	}
	for _, a := range c.apps {
		s.apps.put(a)
	}
	var bad error
	for _, t := range c.tokens {
		if err := s.cacheToken(t); err != nil {
			// The store holds a token we cannot serve; refuse it rather
			// than keep a stale entry.
			s.uncacheToken(t.ID)
			bad = gatehouse.Internal(fmt.Errorf("cache token %s: %w", t.ID, err))
		}
	}
	return bad
}

// errCallerChanged refuses a write whose caller's permissions changed
// after it was authorized, when they are too many to check again; sent
// again, it is decided on the new ones.
var errCallerChanged = gatehouse.Errorf(gatehouse.EUNAVAILABLE, "the policy or the caller's account changed while this request was served; nothing was changed, send it again")

// callerCurrent reports whether what authorized caller is still in force,
// read in the write's own transaction with writeMu held: its token is
// stored and unexpired; the owner of a session or API token exists, is
// enabled and keeps the capability; and when the policy engine or the
// owner's groups are not those caller was authenticated with, every
// allowed check made for caller (Principal.relied) still holds under the
// engine in force and the stored groups. It returns those groups and that
// engine, on which write has fn's own checks decided. Engines are only ever replaced
// whole, so with the same engine every check made since authentication
// used this one. A nil caller is the server itself.
//
// The token and the account are read from the transaction, not the
// caches, and on a server that follows the change feed so is the policy
// (readPolicySource; compiled again only when it is not the engine's):
// a change another replica committed that this one has not applied yet
// is seen, and on PostgreSQL a concurrent one conflicts with this write
// (SERIALIZABLE).
func (s *Service) callerCurrent(ctx context.Context, tx gatehouse.Tx, caller *Principal) (groups []string, e *policy.Engine, err error) {
	if caller == nil {
		return nil, nil, nil
	}
	t, err := tx.GetToken(ctx, caller.tokenID)
	if gatehouse.IsCode(err, gatehouse.ENOTFOUND) {
		return nil, nil, gatehouse.Errorf(gatehouse.EUNAUTHORIZED, "token revoked")
	}
	if err != nil {
		return nil, nil, err
	}
	if !t.ExpiresAt.IsZero() && !s.now().Before(t.ExpiresAt) {
		return nil, nil, gatehouse.Errorf(gatehouse.EUNAUTHORIZED, "token expired")
	}
	if t.Kind != caller.kind || t.Account != caller.account || t.Project != caller.project || t.Role != caller.role {
		return nil, nil, errCallerChanged
	}
	groups = caller.groups
	if caller.kind == gatehouse.KindSession || caller.kind == gatehouse.KindAPI {
		a, err := tx.GetAccount(ctx, caller.account)
		if gatehouse.IsCode(err, gatehouse.ENOTFOUND) {
			return nil, nil, gatehouse.Errorf(gatehouse.EUNAUTHORIZED, "account disabled or deleted")
		}
		if err != nil {
			return nil, nil, err
		}
		need := gatehouse.CapLogin
		if caller.kind == gatehouse.KindAPI {
			need = gatehouse.CapAPIKey
		}
		if !a.Enabled || !a.Has(need) {
			return nil, nil, gatehouse.Errorf(gatehouse.EUNAUTHORIZED, "account disabled or deleted")
		}
		groups = a.Groups
	}
	if e, err = s.txEngine(ctx, tx); err != nil {
		return nil, nil, err
	}
	if e == caller.engine && slices.Equal(groups, caller.groups) {
		return groups, e, nil
	}
	if caller.nrelied > len(caller.relied) {
		return nil, nil, errCallerChanged
	}
	for _, c := range caller.relied[:caller.nrelied] {
		if !e.Enforce(caller.subject, groups, c.resource, c.action, c.object) {
			return nil, nil, gatehouse.Errorf(gatehouse.EFORBIDDEN, "permission denied: %s, %s, %s (the policy or the caller's groups changed while this request was served)", c.resource, c.action, c.object)
		}
	}
	return groups, e, nil
}

// txEngine is the policy engine that decides inside a write's
// transaction tx, with writeMu held: the one in force, except on a server
// that follows the change feed, where another replica's policy change may
// not have reached this one's engine yet; there it is the policy the
// transaction reads (which, on PostgreSQL, a concurrent policy change then
// conflicts with), compiled again only when it is not the engine's.
func (s *Service) txEngine(ctx context.Context, tx gatehouse.Tx) (*policy.Engine, error) {
	e := s.engine.Load()
	if !s.follow.active {
		return e, nil
	}
	src, r, projects, err := readPolicySource(ctx, tx)
	if err != nil {
		return nil, err
	}
	if src.equal(s.source) {
		return e, nil
	}
	return s.buildEngine(r, projects)
}
