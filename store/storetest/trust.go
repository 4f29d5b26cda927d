package storetest

import (
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
)

// trustPolicy returns a policy for account ci issued by a GitHub-like
// issuer, created at t0.
func trustPolicy(name string) gatehouse.TrustPolicy {
	return gatehouse.TrustPolicy{
		Name:      name,
		Issuer:    "https://token.actions.example",
		JWKSURL:   "https://token.actions.example/.well-known/jwks",
		Audiences: []string{"https://gatehouse.example"},
		Claims: map[string]gatehouse.ClaimPatterns{
			"repository_id": {"123456"},
			"ref":           {"refs/heads/main", "refs/tags/v*"},
		},
		Account:   "ci",
		TTL:       900,
		Scopes:    []gatehouse.Scope{{Resource: "applications", Action: "sync", Object: "shop/*"}},
		CreatedAt: t0,
		UpdatedAt: t0,
	}
}

// testTrustPolicies: create, get, list (by name), update (created_at
// kept), delete, with the contract's error codes; every field round-trips,
// the inline JWKS byte for byte.
func testTrustPolicies(t *testing.T, open func(t *testing.T) gatehouse.Store) {
	s := open(t)
	ctx := t.Context()
	b := trustPolicy("b-deploy")
	a := trustPolicy("a-deploy")
	a.JWKSURL = ""
	a.JWKS = json.RawMessage(`{"keys":[{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo","kid":"k1"}]}`)
	a.Account, a.Project, a.Role = "", "shop", "deployer"
	a.Scopes = []gatehouse.Scope{}
	inTx(t, s, func(tx gatehouse.Tx) error {
		if err := tx.CreateTrustPolicy(ctx, b); err != nil {
			return err
		}
		return tx.CreateTrustPolicy(ctx, a)
	})
	inTx(t, s, func(tx gatehouse.Tx) error {
		wantCode(t, "create a taken name", tx.CreateTrustPolicy(ctx, trustPolicy("a-deploy")), gatehouse.ECONFLICT)
		_, err := tx.GetTrustPolicy(ctx, "nope")
		wantCode(t, "get unknown", err, gatehouse.ENOTFOUND)
		wantCode(t, "update unknown", tx.UpdateTrustPolicy(ctx, trustPolicy("nope")), gatehouse.ENOTFOUND)
		wantCode(t, "delete unknown", tx.DeleteTrustPolicy(ctx, "nope"), gatehouse.ENOTFOUND)
		return nil
	})
	got := read(t, s, func(tx gatehouse.Tx) (gatehouse.TrustPolicy, error) { return tx.GetTrustPolicy(ctx, "a-deploy") })
	equal(t, "policy with inline JWKS and a project role", got, a)
	list := read(t, s, func(tx gatehouse.Tx) ([]gatehouse.TrustPolicy, error) { return tx.ListTrustPolicies(ctx) })
	equal(t, "list, by name", list, []gatehouse.TrustPolicy{a, b})

	changed := b
	changed.CreatedAt = at(time.Hour) // ignored: the creation time stays
	changed.UpdatedAt = at(2 * time.Hour)
	changed.Claims = map[string]gatehouse.ClaimPatterns{"sub": {"repo:org/shop:environment:prod"}}
	changed.TTL = 300
	changed.Audiences = []string{"x", "y"}
	inTx(t, s, func(tx gatehouse.Tx) error { return tx.UpdateTrustPolicy(ctx, changed) })
	want := changed
	want.CreatedAt = t0
	got = read(t, s, func(tx gatehouse.Tx) (gatehouse.TrustPolicy, error) { return tx.GetTrustPolicy(ctx, "b-deploy") })
	equal(t, "after update", got, want)

	inTx(t, s, func(tx gatehouse.Tx) error { return tx.DeleteTrustPolicy(ctx, "b-deploy") })
	list = read(t, s, func(tx gatehouse.Tx) ([]gatehouse.TrustPolicy, error) { return tx.ListTrustPolicies(ctx) })
	equal(t, "list after delete", list, []gatehouse.TrustPolicy{a})
}

// testDeleteTokensCreatedBy: exactly the tokens created by the one
// creator go, newest first, and are returned; the others stay.
func testDeleteTokensCreatedBy(t *testing.T, open func(t *testing.T) gatehouse.Store) {
	s := open(t)
	ctx := t.Context()
	by := func(who string, d time.Duration) func(*gatehouse.Token) {
		return func(k *gatehouse.Token) { k.CreatedBy, k.IssuedAt = who, at(d) }
	}
	toks := []gatehouse.Token{
		token("t1", by("trust-policy:deploy", 0)),
		token("t2", by("trust-policy:deploy", time.Minute)),
		token("t3", by("trust-policy:deploy-2", 0)), // a name that extends it
		token("t4", by("alice", 0)),
	}
	inTx(t, s, func(tx gatehouse.Tx) error {
		for _, k := range toks {
			if err := tx.CreateToken(ctx, k); err != nil {
				return err
			}
		}
		return nil
	})
	gone := read(t, s, func(tx gatehouse.Tx) ([]gatehouse.Token, error) {
		return tx.DeleteTokensCreatedBy(ctx, "trust-policy:deploy")
	})
	equal(t, "deleted, newest first", ids(gone), []string{"t2", "t1"})
	equal(t, "deleted records", gone, []gatehouse.Token{toks[1], toks[0]})
	left := read(t, s, func(tx gatehouse.Tx) ([]gatehouse.Token, error) { return tx.ListTokens(ctx, gatehouse.TokenFilter{}) })
	equal(t, "left", ids(left), []string{"t3", "t4"})
	none := read(t, s, func(tx gatehouse.Tx) ([]gatehouse.Token, error) {
		return tx.DeleteTokensCreatedBy(ctx, "trust-policy:deploy")
	})
	equal(t, "again", ids(none), []string{})
}

// testExchangeReplays: a key is taken once (ECONFLICT after, also once
// expired, until pruned), the transaction stays usable after the
// conflict, and the prune removes exactly the keys expired by its cutoff.
func testExchangeReplays(t *testing.T, open func(t *testing.T) gatehouse.Store) {
	s := open(t)
	ctx := t.Context()
	inTx(t, s, func(tx gatehouse.Tx) error {
		if err := tx.AddExchangeReplay(ctx, "jti:a", at(time.Minute)); err != nil {
			return err
		}
		return tx.AddExchangeReplay(ctx, "jti:b", at(time.Hour))
	})
	inTx(t, s, func(tx gatehouse.Tx) error {
		wantCode(t, "replay of a", tx.AddExchangeReplay(ctx, "jti:a", at(time.Hour)), gatehouse.ECONFLICT)
		// The conflict leaves the transaction usable (PostgreSQL would
		// abort it on a failed INSERT).
		return tx.AddExchangeReplay(ctx, "jti:c", at(time.Hour))
	})
	replayed := func(key string) bool {
		return read(t, s, func(tx gatehouse.Tx) (bool, error) { return tx.ExchangeReplayed(ctx, key) })
	}
	for key, want := range map[string]bool{"jti:a": true, "jti:b": true, "jti:c": true, "jti:d": false} {
		if got := replayed(key); got != want {
			t.Errorf("ExchangeReplayed(%q) = %v, want %v", key, got, want)
		}
	}
	listed := read(t, s, func(tx gatehouse.Tx) ([]gatehouse.ExchangeReplay, error) { return tx.ListExchangeReplays(ctx) })
	equal(t, "listed, by key", listed, []gatehouse.ExchangeReplay{
		{Key: "jti:a", ExpiresAt: at(time.Minute)}, {Key: "jti:b", ExpiresAt: at(time.Hour)}, {Key: "jti:c", ExpiresAt: at(time.Hour)},
	})
	n := read(t, s, func(tx gatehouse.Tx) (int, error) { return tx.PruneExchangeReplays(ctx, at(time.Minute)) })
	equal(t, "pruned at a's expiry", n, 1)
	if replayed("jti:a") || !replayed("jti:b") {
		t.Errorf("after the prune: a %v (want false), b %v (want true)", replayed("jti:a"), replayed("jti:b"))
	}
	inTx(t, s, func(tx gatehouse.Tx) error { return tx.AddExchangeReplay(ctx, "jti:a", at(time.Hour)) })
}

// testConcurrentExchangeReplays: many transactions racing to take one key
// (replicas accepting one token): exactly one wins, the rest ECONFLICT.
func testConcurrentExchangeReplays(t *testing.T, open func(t *testing.T) gatehouse.Store) {
	s := open(t)
	const n = 8
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			errs[i] = s.Tx(t.Context(), func(tx gatehouse.Tx) error {
				// Each also writes something of its own, as a mint does.
				if err := tx.CreateToken(t.Context(), token(fmt.Sprintf("t%d", i))); err != nil {
					return err
				}
				return tx.AddExchangeReplay(t.Context(), "jti:once", at(time.Hour))
			})
		})
	}
	wg.Wait()
	won := 0
	for _, err := range errs {
		switch gatehouse.ErrorCode(err) {
		case "":
			won++
		case gatehouse.ECONFLICT:
		default:
			t.Errorf("racing for one key: %v", err)
		}
	}
	if won != 1 {
		t.Errorf("%d transactions took the key, want exactly 1", won)
	}
	left := read(t, s, func(tx gatehouse.Tx) ([]gatehouse.Token, error) {
		return tx.ListTokens(t.Context(), gatehouse.TokenFilter{})
	})
	equal(t, "tokens of the losers rolled back", len(left), 1)
}

// testTrustWritesInViewFail: the trust writes are refused in a View and
// change nothing.
func testTrustWritesInViewFail(t *testing.T, open func(t *testing.T) gatehouse.Store) {
	s := open(t)
	ctx := t.Context()
	inTx(t, s, func(tx gatehouse.Tx) error {
		return tx.CreateTrustPolicy(ctx, trustPolicy("deploy"))
	})
	writes := map[string]func(tx gatehouse.Tx) error{
		"CreateTrustPolicy": func(tx gatehouse.Tx) error { return tx.CreateTrustPolicy(ctx, trustPolicy("other")) },
		"UpdateTrustPolicy": func(tx gatehouse.Tx) error {
			p := trustPolicy("deploy")
			p.TTL = 60
			return tx.UpdateTrustPolicy(ctx, p)
		},
		"DeleteTrustPolicy": func(tx gatehouse.Tx) error { return tx.DeleteTrustPolicy(ctx, "deploy") },
		"DeleteTokensCreatedBy": func(tx gatehouse.Tx) error {
			_, err := tx.DeleteTokensCreatedBy(ctx, "x")
			return err
		},
		"AddExchangeReplay": func(tx gatehouse.Tx) error { return tx.AddExchangeReplay(ctx, "k", at(time.Hour)) },
		"PruneExchangeReplays": func(tx gatehouse.Tx) error {
			_, err := tx.PruneExchangeReplays(ctx, at(time.Hour))
			return err
		},
	}
	for name, w := range writes {
		t.Run(name, func(t *testing.T) {
			var inside error
			err := s.View(ctx, func(tx gatehouse.Tx) error {
				inside = w(tx)
				return inside
			})
			wantCode(t, name+" in a View", inside, gatehouse.EINTERNAL)
			if err == nil {
				t.Errorf("View returned nil after a refused %s", name)
			}
		})
	}
	list := read(t, s, func(tx gatehouse.Tx) ([]gatehouse.TrustPolicy, error) { return tx.ListTrustPolicies(ctx) })
	equal(t, "policies after the refused writes", list, []gatehouse.TrustPolicy{trustPolicy("deploy")})
	if read(t, s, func(tx gatehouse.Tx) (bool, error) { return tx.ExchangeReplayed(ctx, "k") }) {
		t.Error("a replay key was written in a View")
	}
}
