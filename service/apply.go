package service

import (
	"context"
	"fmt"

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
	engine          *policy.Engine
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

// write runs fn in one store transaction and, once it has committed,
// applies the recorded change to memory.
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
func (s *Service) write(ctx context.Context, fn func(tx gatehouse.Tx, c *change) error) error {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	var c change
	err := s.store.Tx(ctx, func(tx gatehouse.Tx) error {
		c = change{}
		if err := fn(tx, &c); err != nil {
			return err
		}
		if c.policy {
			e, err := s.rebuildEngine(ctx, tx)
			if err != nil {
				return err
			}
			c.engine = e
		}
		// The change feed tells other replicas, in the same transaction.
		return tx.RecordChanges(ctx, c.feed())
	})
	if err != nil {
		return err
	}
	return s.apply(c)
}

// apply is the one path by which committed changes reach memory. It runs
// with writeMu held. Within one change, what can only take permissions
// away (a new engine may also take some away, revocations, deletions,
// account records that may disable) goes before what can only add them
// (tokens), so no request in between sees more than either state allows.
func (s *Service) apply(c change) error {
	if c.engine != nil {
		s.engine.Store(c.engine)
	}
	for _, id := range c.revoked {
		s.uncacheToken(id)
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
