package service

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/gatehouse/gatehouse"
)

// The issuers' signing keys. A trust policy's jwksURL is fetched on first
// use and kept in memory, per process: keys are public, every replica can
// fetch them itself, and the store need not hold a copy. A token signed
// with a key id the cached set lacks (the issuer rotated) fetches the set
// again, at most once per jwksRefresh per policy, so a stream of tokens
// with made-up key ids cannot turn Gatehouse into a load generator aimed at
// the issuer.
//
// A fetched set is used for at most jwksMaxAge, whatever the response's
// Cache-Control says, and is then fetched again before the next exchange
// uses it: a key the issuer withdraws (retired, or leaked) stops verifying
// at most that long after the last fetch that found it, also for tokens
// without a kid and for a kid the set still holds, which never ask for a
// fetch themselves. When that fetch
// fails the old set is not used any more: exchanges under the policy are
// refused until a fetch succeeds (tried again at most once per
// jwksRefresh), rather than trusting keys the issuer may have withdrawn
// for as long as it is unreachable.
//
// An entry belongs to one version of one policy (its name, URL, and
// creation and update times, as stored), so a policy deleted and
// re-created, or changed, never uses the set fetched for the one before,
// on any replica; the replica that commits the change also drops the old
// entries at once (forget).
//
// No lock is held while a fetch is under way but the fetching entry's own:
// a slow or unreachable issuer delays only the exchanges for that policy,
// each at most the fetch timeout.

const (
	jwksRefresh  = 10 * time.Second // at most one fetch per policy in this time
	jwksMaxAge   = 5 * time.Minute  // a fetched set is used at most this long
	jwksMaxBody  = 1 << 20          // a JWKS document is a few KiB
	jwksMaxKeys  = 100
	jwksCacheMax = 1024 // entries; a policy changed on another replica leaves one behind
)

type jwksCache struct {
	client  *http.Client
	timeout time.Duration
	now     func() time.Time

	mu      sync.Mutex
	entries map[jwksKey]*jwksEntry
}

// jwksKey names one version of a policy's key source.
type jwksKey struct {
	policy, url      string
	created, updated int64 // the policy's CreatedAt and UpdatedAt, Unix ns
}

// jwksEntry is one policy's key set. mu guards the fields and is held only
// to read or swap them; fetching is the channel of the fetch under way,
// closed when it ends.
type jwksEntry struct {
	mu        sync.Mutex
	keys      *jose.JSONWebKeySet
	keysAt    time.Time // when the fetch that brought keys ended
	fetchedAt time.Time // the last attempt, successful or not
	fetching  chan struct{}
	lastErr   error
}

// fresh reports whether e holds a set younger than jwksMaxAge at now.
// Called with e.mu held.
func (e *jwksEntry) fresh(now time.Time) bool {
	return e.keys != nil && now.Sub(e.keysAt) < jwksMaxAge
}

func newJWKSCache(timeout time.Duration, now func() time.Time) *jwksCache {
	return &jwksCache{
		client: &http.Client{
			Timeout: timeout,
			// A redirect must stay on a URL a policy could name.
			CheckRedirect: func(req *http.Request, via []*http.Request) error {
				if len(via) >= 3 {
					return errors.New("too many redirects")
				}
				if err := checkKeyURL(req.URL.String()); err != nil {
					return err
				}
				return nil
			},
		},
		timeout: timeout,
		now:     now,
		entries: map[jwksKey]*jwksEntry{},
	}
}

func (c *jwksCache) entry(tp gatehouse.TrustPolicy) *jwksEntry {
	key := jwksKey{policy: tp.Name, url: tp.JWKSURL, created: tp.CreatedAt.UnixNano(), updated: tp.UpdatedAt.UnixNano()}
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.entries[key]
	if e == nil {
		if len(c.entries) >= jwksCacheMax {
			clear(c.entries) // refetched on demand; keys are public
		}
		e = &jwksEntry{}
		c.entries[key] = e
	}
	return e
}

// forget drops every entry of the named policy, once a change to it (or
// its deletion) has committed. A fetch under way for a dropped entry ends
// in that entry alone, which nothing looks up again.
func (c *jwksCache) forget(policy string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k := range c.entries {
		if k.policy == policy {
			delete(c.entries, k)
		}
	}
}

// keys returns the key set of tp's jwksURL that holds kid: the cached
// one if it is younger than jwksMaxAge and holds kid (any set does when
// kid is empty); otherwise one fetched now, unless the last fetch began
// less than jwksRefresh ago. A fresh set without kid is returned too (the
// caller refuses the token); an error means no set younger than
// jwksMaxAge could be had.
func (c *jwksCache) keys(ctx context.Context, tp gatehouse.TrustPolicy, kid string) (*jose.JSONWebKeySet, error) {
	e := c.entry(tp)
	for {
		e.mu.Lock()
		ks, fetching := e.keys, e.fetching
		fresh := e.fresh(c.now())
		if fresh && (kid == "" || len(ks.Key(kid)) > 0) {
			e.mu.Unlock()
			return ks, nil
		}
		if fetching == nil {
			if !e.fetchedAt.IsZero() && c.now().Sub(e.fetchedAt) < jwksRefresh {
				var err error
				switch {
				case fresh:
				case ks != nil:
					err = e.expired(c.now(), e.lastErr)
				default:
					err = fmt.Errorf("JWKS unavailable (not fetched again within %s): %w", jwksRefresh, e.lastErr)
				}
				e.mu.Unlock()
				if err != nil {
					return nil, err
				}
				return ks, nil
			}
			// This caller fetches; others wait for it.
			done := make(chan struct{})
			e.fetching = done
			e.fetchedAt = c.now()
			e.mu.Unlock()
			got, err := c.fetch(ctx, tp.JWKSURL)
			e.mu.Lock()
			if err == nil {
				e.keys, e.keysAt = got, c.now()
			}
			e.lastErr = err
			e.fetching = nil
			close(done)
			switch {
			case err == nil:
			case e.fresh(c.now()):
				got, err = e.keys, nil // it lacks kid; the caller refuses the token
			case e.keys != nil:
				got, err = nil, e.expired(c.now(), err)
			}
			e.mu.Unlock()
			return got, err
		}
		e.mu.Unlock()
		select {
		case <-fetching:
			// Look again: the fetch may have brought kid, or a fresh set.
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// expired says why the set e holds, older than jwksMaxAge at now, is not
// used: err, why the fetch meant to replace it failed. Called with e.mu
// held.
func (e *jwksEntry) expired(now time.Time, err error) error {
	return fmt.Errorf("JWKS fetched %s ago, longer than the %s a set is used, and fetching it again failed (tried at most once per %s): %w",
		now.Sub(e.keysAt).Round(time.Second), jwksMaxAge, jwksRefresh, err)
}

// fetch reads and checks a JWKS document, within the timeout.
func (c *jwksCache) fetch(ctx context.Context, url string) (*jose.JSONWebKeySet, error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json, application/jwk-set+json")
	resp, err := c.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetching JWKS: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("fetching JWKS: status %d", resp.StatusCode)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, jwksMaxBody+1))
	if err != nil {
		return nil, fmt.Errorf("reading JWKS: %w", err)
	}
	if len(b) > jwksMaxBody {
		return nil, fmt.Errorf("JWKS document exceeds %d bytes", jwksMaxBody)
	}
	return parseJWKS(b)
}

// parseJWKS reads a JWKS document and keeps its public signing keys of the
// accepted kinds; one with none of those is refused.
func parseJWKS(b []byte) (*jose.JSONWebKeySet, error) {
	var raw struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return nil, fmt.Errorf("JWKS is not a JSON object with keys: %w", err)
	}
	if len(raw.Keys) > jwksMaxKeys {
		return nil, fmt.Errorf("JWKS has %d keys, at most %d", len(raw.Keys), jwksMaxKeys)
	}
	out := &jose.JSONWebKeySet{}
	for _, kb := range raw.Keys {
		var k jose.JSONWebKey
		// A key of a kind go-jose does not know (or a malformed one) is
		// skipped, as issuers publish keys for other uses too.
		if err := k.UnmarshalJSON(kb); err != nil {
			continue
		}
		if !k.Valid() || !k.IsPublic() || (k.Use != "" && k.Use != "sig") || !signingKey(k) {
			continue
		}
		out.Keys = append(out.Keys, k)
	}
	if len(out.Keys) == 0 {
		return nil, errors.New("JWKS holds no public RSA, EC or Ed25519 signing key")
	}
	return out, nil
}
