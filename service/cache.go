package service

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/policy"
	"github.com/gatehouse/gatehouse/token"
)

// cachedToken is the in-memory form of a stored token: what the hot path
// needs, immutable once built.
type cachedToken struct {
	rec     gatehouse.Token // Hash cleared; hash holds it
	subject string          // for project tokens: proj:<project>:<role>
	owner   *accountSlot    // for session and api tokens
	expires int64           // rec.ExpiresAt in unix nanoseconds; 0: never
	hash    [32]byte
	scopes  []compiledScope

	// touched is the unix nanos of the last use queued for a lastUsedAt
	// write; it keeps the hot path from queueing more than one a minute.
	touched atomic.Int64
	// idleNanos is the idle timeout (0: none); lastUse the latest use
	// (or the issue) the store has told this replica of, in unix nanos.
	idleNanos int64
	lastUse   atomic.Int64
}

// inScope reports whether a request lies within the token's scopes; a
// token without scopes is not narrowed.
func (t *cachedToken) inScope(resource, action, object string) bool {
	if len(t.scopes) == 0 {
		return true
	}
	for _, sc := range t.scopes {
		if sc.match(resource, action, object) {
			return true
		}
	}
	return false
}

type compiledScope struct {
	resource, action, object policy.Matcher
}

func (s compiledScope) match(resource, action, object string) bool {
	return s.resource.Match(resource) && s.action.Match(action) && s.object.Match(object)
}

func compileScopes(scopes []gatehouse.Scope) ([]compiledScope, error) {
	if len(scopes) == 0 {
		return nil, nil
	}
	out := make([]compiledScope, 0, len(scopes))
	for _, sc := range scopes {
		r, err := policy.CompileGlob(sc.Resource)
		if err != nil {
			return nil, err
		}
		a, err := policy.CompileGlob(sc.Action)
		if err != nil {
			return nil, err
		}
		o, err := policy.CompileGlob(sc.Object)
		if err != nil {
			return nil, err
		}
		out = append(out, compiledScope{r, a, o})
	}
	return out, nil
}

func newCachedToken(t gatehouse.Token, owner *accountSlot) (*cachedToken, error) {
	ct := &cachedToken{rec: t, owner: owner}
	if !t.ExpiresAt.IsZero() {
		ct.expires = t.ExpiresAt.UnixNano()
	}
	if t.Kind == gatehouse.KindProject {
		ct.subject = t.Subject()
	}
	if t.IdleTimeout > 0 {
		ct.idleNanos = t.IdleTimeout * int64(time.Second)
		ct.lastUse.Store(max(t.LastUsedAt.UnixNano(), t.IssuedAt.UnixNano()))
	}
	copy(ct.hash[:], t.Hash)
	ct.rec.Hash = nil
	sc, err := compileScopes(t.Scopes)
	if err != nil {
		return nil, err
	}
	ct.scopes = sc
	return ct, nil
}

const tokenShards = 64

// tokenCache maps token ids to cached tokens. It is sharded so that readers
// on many cores do not contend on one lock, and sized for millions of
// tokens.
type tokenCache struct {
	shards [tokenShards]struct {
		mu sync.RWMutex
		m  map[token.ID]*cachedToken
	}
}

func newTokenCache() *tokenCache {
	c := &tokenCache{}
	for i := range c.shards {
		c.shards[i].m = make(map[token.ID]*cachedToken)
	}
	return c
}

func (c *tokenCache) shard(id token.ID) int { return int(id[15]) % tokenShards }

func (c *tokenCache) get(id token.ID) *cachedToken {
	sh := &c.shards[c.shard(id)]
	sh.mu.RLock()
	t := sh.m[id]
	sh.mu.RUnlock()
	return t
}

func (c *tokenCache) put(id token.ID, t *cachedToken) {
	sh := &c.shards[c.shard(id)]
	sh.mu.Lock()
	sh.m[id] = t
	sh.mu.Unlock()
}

func (c *tokenCache) delete(id token.ID) {
	sh := &c.shards[c.shard(id)]
	sh.mu.Lock()
	delete(sh.m, id)
	sh.mu.Unlock()
}

// ids returns the ids of every cached token.
func (c *tokenCache) ids() []string {
	var out []string
	for i := range c.shards {
		sh := &c.shards[i]
		sh.mu.RLock()
		for _, t := range sh.m {
			out = append(out, t.rec.ID)
		}
		sh.mu.RUnlock()
	}
	return out
}

// count returns the number of cached tokens by kind.
func (c *tokenCache) count() map[gatehouse.TokenKind]int {
	out := map[gatehouse.TokenKind]int{}
	for i := range c.shards {
		sh := &c.shards[i]
		sh.mu.RLock()
		for _, t := range sh.m {
			out[t.rec.Kind]++
		}
		sh.mu.RUnlock()
	}
	return out
}

// accountCache holds the current state of every account: the hot path
// reads enabled and groups from here, so a change applies at once. Each
// account lives in a slot that its cached tokens point at, so a request
// reaches its owner without a map lookup.
type accountCache struct {
	mu sync.RWMutex
	m  map[string]*accountSlot
}

// accountSlot holds an account's current record; nil once it is deleted.
type accountSlot struct {
	p atomic.Pointer[gatehouse.Account]
}

func (c *accountCache) get(name string) *gatehouse.Account {
	c.mu.RLock()
	s := c.m[name]
	c.mu.RUnlock()
	if s == nil {
		return nil
	}
	return s.p.Load()
}

// slot returns the live slot of an account. For an unknown account it
// returns a detached empty slot: a token must never come alive because an
// account of the same name is created later.
func (c *accountCache) slot(name string) *accountSlot {
	c.mu.RLock()
	s := c.m[name]
	c.mu.RUnlock()
	if s == nil {
		return &accountSlot{}
	}
	return s
}

// names returns the name of every cached account.
func (c *accountCache) names() []string {
	c.mu.RLock()
	defer c.mu.RUnlock()
	out := make([]string, 0, len(c.m))
	for name := range c.m {
		out = append(out, name)
	}
	return out
}

func (c *accountCache) put(a gatehouse.Account) {
	a.Tokens = nil
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.m[a.Name]
	if s == nil {
		s = &accountSlot{}
		c.m[a.Name] = s
	}
	s.p.Store(&a)
}

func (c *accountCache) delete(name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if s := c.m[name]; s != nil {
		s.p.Store(nil)
		delete(c.m, name)
	}
}
