package policy

import (
	"hash/maphash"
	"math/bits"
	"slices"
	"strings"
	"sync"
)

// DefaultCacheSize is how many decisions an engine keeps when
// Config.CacheSize is 0.
const DefaultCacheSize = 1 << 16

// cacheShards spreads the decision cache over this many independently
// locked maps, so concurrent requests rarely touch the same lock. It must
// match the 6 bits that decisionCache.shard takes from the hash.
const cacheShards = 64

// cacheKey is one question. A lookup builds it on the stack from the
// caller's strings and slice, so a warm decision allocates nothing.
type cacheKey struct {
	subject, resource, action, object string
	groups                            []string
}

func (k *cacheKey) equal(o *cacheKey) bool {
	return k.subject == o.subject && k.resource == o.resource && k.action == o.action &&
		k.object == o.object && slices.Equal(k.groups, o.groups)
}

// decisionCache is a bounded, concurrency-safe map from question to answer.
//
// A question is hashed once and the hash picks both the shard and the
// entry; the entry keeps the full question, so a hash collision is a miss,
// never a wrong answer. This is about twice as fast as a map keyed by the
// question itself, which hashes each string with a separate call.
//
// When a shard is full it is dropped whole and refills from the compiled
// rules: no bookkeeping on hits (an LRU would write on every read), memory
// stays bounded, and a cold decision costs only a few hundred nanoseconds.
// The cache belongs to one immutable Engine, so it never needs
// invalidation: a new policy is a new engine with an empty cache.
type decisionCache struct {
	seed   uint64 // random per engine, so collisions cannot be planned
	limit  int    // entries per shard
	shards [cacheShards]cacheShard
}

type cacheShard struct {
	mu sync.RWMutex
	m  map[uint64]cacheEntry
	_  [32]byte // keeps each shard's lock on its own cache line
}

type cacheEntry struct {
	key     cacheKey
	allowed bool
}

func newDecisionCache(size int) *decisionCache {
	c := &decisionCache{
		seed:  maphash.String(maphash.MakeSeed(), "gatehouse policy cache"),
		limit: max(1, (size+cacheShards-1)/cacheShards),
	}
	for i := range c.shards {
		c.shards[i].m = make(map[uint64]cacheEntry)
	}
	return c
}

// hash hashes the whole question, each string with its length so that
// ("ab", "c") and ("a", "bc") differ. It follows wyhash (seeded 128-bit
// multiply-and-fold, short strings read as a few overlapping words): for
// the short strings of a question it is several times cheaper than
// maphash.
func (c *decisionCache) hash(k *cacheKey) uint64 {
	h := c.seed
	h = hashString(h, k.subject)
	h = hashString(h, k.resource)
	h = hashString(h, k.action)
	h = hashString(h, k.object)
	h ^= uint64(len(k.groups))
	for _, g := range k.groups {
		h = hashString(h, g)
	}
	return mum(h^wyp0, wyp1)
}

const (
	wyp0 = 0xa0761d6478bd642f
	wyp1 = 0xe7037ed1a0b428db
)

// mum multiplies to 128 bits and folds the halves.
func mum(a, b uint64) uint64 {
	hi, lo := bits.Mul64(a, b)
	return hi ^ lo
}

func hashString(seed uint64, s string) uint64 {
	n := len(s)
	var a, b uint64
	switch {
	case n == 0:
	case n < 4:
		a = uint64(s[0])<<16 | uint64(s[n>>1])<<8 | uint64(s[n-1])
	case n <= 8:
		a, b = read4(s), read4(s[n-4:])
	case n <= 16:
		a, b = read8(s), read8(s[n-8:])
	default:
		for rest := s; len(rest) > 16; rest = rest[16:] {
			seed = mum(read8(rest)^wyp1, read8(rest[8:])^seed)
		}
		a, b = read8(s[n-16:]), read8(s[n-8:])
	}
	return mum(wyp1^uint64(n), mum(a^wyp1, b^seed^wyp0))
}

func read4(s string) uint64 {
	_ = s[3]
	return uint64(s[0]) | uint64(s[1])<<8 | uint64(s[2])<<16 | uint64(s[3])<<24
}

func read8(s string) uint64 {
	_ = s[7]
	return uint64(s[0]) | uint64(s[1])<<8 | uint64(s[2])<<16 | uint64(s[3])<<24 |
		uint64(s[4])<<32 | uint64(s[5])<<40 | uint64(s[6])<<48 | uint64(s[7])<<56
}

func (c *decisionCache) shard(h uint64) *cacheShard {
	return &c.shards[h>>58] // the top 6 bits: 64 shards
}

func (s *cacheShard) get(h uint64, k *cacheKey) (allowed, ok bool) {
	s.mu.RLock()
	e, ok := s.m[h]
	s.mu.RUnlock()
	if !ok || !e.key.equal(k) {
		return false, false
	}
	return e.allowed, true
}

// put stores a decision. The key is copied, strings included, so that the
// cache neither shares the caller's slice nor pins its (possibly much
// larger) buffers.
func (s *cacheShard) put(h uint64, k cacheKey, allowed bool, limit int) {
	k.subject = strings.Clone(k.subject)
	k.resource = strings.Clone(k.resource)
	k.action = strings.Clone(k.action)
	k.object = strings.Clone(k.object)
	if k.groups != nil {
		gs := make([]string, len(k.groups))
		for i, g := range k.groups {
			gs[i] = strings.Clone(g)
		}
		k.groups = gs
	}
	s.mu.Lock()
	if len(s.m) >= limit {
		s.m = make(map[uint64]cacheEntry)
	}
	s.m[h] = cacheEntry{key: k, allowed: allowed}
	s.mu.Unlock()
}
