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
)

// The issuers' signing keys. A trust policy's jwksURL is fetched on first
// use and kept in memory, per process: keys are public, every replica can
// fetch them itself, and the store need not hold a copy. A token signed
// with a key id the cached set lacks (the issuer rotated) fetches the set
// again, at most once per jwksRefresh per policy, so a stream of tokens
// with made-up key ids cannot turn Gatehouse into a load generator aimed at
// the issuer.
//
// No lock is held while a fetch is under way but the fetching entry's own:
// a slow or unreachable issuer delays only the exchanges for that policy,
// each at most the fetch timeout.

const (
	jwksRefresh  = 10 * time.Second // at most one fetch per policy in this time
	jwksMaxBody  = 1 << 20          // a JWKS document is a few KiB
	jwksMaxKeys  = 100
	jwksCacheMax = 1024 // entries; a policy changing its URL leaves one behind
)

type jwksCache struct {
	client  *http.Client
	timeout time.Duration
	now     func() time.Time

	mu      sync.Mutex
	entries map[string]*jwksEntry
}

// jwksEntry is one policy's key set. mu guards the fields and is held only
// to read or swap them; fetching is the channel of the fetch under way,
// closed when it ends.
type jwksEntry struct {
	mu        sync.Mutex
	keys      *jose.JSONWebKeySet
	fetchedAt time.Time // the last attempt, successful or not
	fetching  chan struct{}
	lastErr   error
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
		entries: map[string]*jwksEntry{},
	}
}

func (c *jwksCache) entry(policy, url string) *jwksEntry {
	key := policy + "\x00" + url
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

// keys returns the key set of policy at url that holds kid: the cached
// one, or one fetched now when the cached set lacks kid (or there is none)
// and the last fetch is older than jwksRefresh. A set without kid is
// returned too (the caller refuses the token); an error means no set could
// be had at all.
func (c *jwksCache) keys(ctx context.Context, policy, url, kid string) (*jose.JSONWebKeySet, error) {
	e := c.entry(policy, url)
	for {
		e.mu.Lock()
		ks, fetching := e.keys, e.fetching
		if ks != nil && (kid == "" || len(ks.Key(kid)) > 0) {
			e.mu.Unlock()
			return ks, nil
		}
		if fetching == nil {
			if !e.fetchedAt.IsZero() && c.now().Sub(e.fetchedAt) < jwksRefresh {
				err := e.lastErr
				e.mu.Unlock()
				if ks != nil {
					return ks, nil
				}
				return nil, fmt.Errorf("JWKS unavailable (not fetched again within %s): %w", jwksRefresh, err)
			}
			// This caller fetches; others wait for it.
			done := make(chan struct{})
			e.fetching = done
			e.fetchedAt = c.now()
			e.mu.Unlock()
			got, err := c.fetch(ctx, url)
			e.mu.Lock()
			if err == nil {
				e.keys = got
			}
			e.lastErr = err
			e.fetching = nil
			close(done)
			ks = e.keys
			e.mu.Unlock()
			if ks == nil {
				return nil, err
			}
			return ks, nil
		}
		e.mu.Unlock()
		select {
		case <-fetching:
			// Look again: the fetch may have brought kid.
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
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
