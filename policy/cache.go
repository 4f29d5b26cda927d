package policy

import (
	"encoding/binary"
	"hash/maphash"
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
// never a wrong answer. (The question holds a slice, so it cannot be a map
// key itself.)
//
// When a shard is full it is dropped whole and refills from the compiled
// rules: no bookkeeping on hits (an LRU would write on every read), memory
// stays bounded, and a cold decision costs a few hundred nanoseconds on
// most policies. The cache is for the others: a role of hundreds of lines
// costs tens of microseconds cold (BenchmarkEnforceWideRole), as much as
// the rest of a request over HTTP.
// The cache belongs to one immutable Engine, so it never needs
// invalidation: a new policy is a new engine with an empty cache.
type decisionCache struct {
	seed   maphash.Seed // random per engine, so collisions cannot be planned
	limit  int          // entries per shard
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
		seed:  maphash.MakeSeed(),
		limit: max(1, (size+cacheShards-1)/cacheShards),
	}
	for i := range c.shards {
		c.shards[i].m = make(map[uint64]cacheEntry)
	}
	return c
}

// hash hashes the whole question with maphash, each string after its
// length and the groups after their count, so that no two questions feed
// it the same bytes.
func (c *decisionCache) hash(k *cacheKey) uint64 {
	var h maphash.Hash
	h.SetSeed(c.seed)
	writeString(&h, k.subject)
	writeString(&h, k.resource)
	writeString(&h, k.action)
	writeString(&h, k.object)
	writeLen(&h, len(k.groups))
	for _, g := range k.groups {
		writeString(&h, g)
	}
	return h.Sum64()
}

func writeString(h *maphash.Hash, s string) {
	writeLen(h, len(s))
	h.WriteString(s)
}

func writeLen(h *maphash.Hash, n int) {
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], uint64(n))
	h.Write(b[:])
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
