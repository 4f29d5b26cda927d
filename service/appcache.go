package service

import (
	"slices"
	"strings"
	"sync"

	"github.com/gatehouse/gatehouse"
)

// appCache is every application as last committed, for reads: getting an
// application (or listing them) is a map lookup, not a store
// transaction. Like the token and account caches it changes only through
// apply, after a commit of this replica's own or, through the change
// feed, another replica's. So a replica serves applications exactly as
// current as the tokens it accepts, and when it cannot prove it is
// current it refuses every token, and with them every read of an
// application. Writes still read the application inside their own
// transaction.
type appCache struct {
	mu sync.RWMutex
	m  map[string]gatehouse.Application
}

func newAppCache() *appCache { return &appCache{m: map[string]gatehouse.Application{}} }

func (c *appCache) get(name string) (gatehouse.Application, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	a, ok := c.m[name]
	return a, ok
}

func (c *appCache) put(a gatehouse.Application) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.m[a.Name] = a
}

func (c *appCache) delete(name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.m, name)
}

// list returns the applications of a project ("": all), sorted by name,
// as the store lists them.
func (c *appCache) list(project string) []gatehouse.Application {
	c.mu.RLock()
	out := make([]gatehouse.Application, 0, len(c.m))
	for _, a := range c.m {
		if project == "" || a.Project == project {
			out = append(out, a)
		}
	}
	c.mu.RUnlock()
	slices.SortFunc(out, func(a, b gatehouse.Application) int { return strings.Compare(a.Name, b.Name) })
	return out
}

func (c *appCache) names() []string {
	c.mu.RLock()
	defer c.mu.RUnlock()
	out := make([]string, 0, len(c.m))
	for name := range c.m {
		out = append(out, name)
	}
	return out
}
