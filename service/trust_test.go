package service_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/service"
	"github.com/gatehouse/gatehouse/store/sqlite"
	"github.com/gatehouse/gatehouse/store/storetest"
)

// rsaIssuer signs RS256 tokens and serves its JWKS on 127.0.0.1.
type rsaIssuer struct {
	url     string
	signer  jose.Signer
	fetches atomic.Int32
	jti     atomic.Int64
}

func newRSAIssuer(tb testing.TB) *rsaIssuer {
	tb.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		tb.Fatal(err)
	}
	is := &rsaIssuer{}
	is.signer, err = jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: key}, (&jose.SignerOptions{}).WithHeader("kid", "k1"))
	if err != nil {
		tb.Fatal(err)
	}
	jwks := jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: key.Public(), KeyID: "k1", Algorithm: "RS256", Use: "sig"}}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		is.fetches.Add(1)
		_ = json.NewEncoder(w).Encode(jwks)
	}))
	tb.Cleanup(srv.Close)
	is.url = srv.URL
	return is
}

// token signs a GitHub-shaped token issued at now with a fresh jti.
func (is *rsaIssuer) token(tb testing.TB, now time.Time) string {
	tb.Helper()
	return is.sign(tb, is.claims(now))
}

// claims are the claims of token.
func (is *rsaIssuer) claims(now time.Time) map[string]any {
	return map[string]any{
		"iss": is.url, "aud": "https://gatehouse.example", "jti": fmt.Sprintf("j%d", is.jti.Add(1)),
		"sub": "repo:octo-org/shop:ref:refs/heads/main", "repository_id": "123456", "ref": "refs/heads/main",
		"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(5 * time.Minute).Unix(),
	}
}

func (is *rsaIssuer) sign(tb testing.TB, claims map[string]any) string {
	tb.Helper()
	b, err := json.Marshal(claims)
	if err != nil {
		tb.Fatal(err)
	}
	obj, err := is.signer.Sign(b)
	if err != nil {
		tb.Fatal(err)
	}
	s, err := obj.CompactSerialize()
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

func (is *rsaIssuer) policy(name string) gatehouse.TrustPolicy {
	return gatehouse.TrustPolicy{
		Name: name, Issuer: is.url, JWKSURL: is.url + "/jwks", Audiences: []string{"https://gatehouse.example"},
		Claims:  map[string]gatehouse.ClaimPatterns{"repository_id": {"123456"}, "ref": {"refs/heads/main"}},
		Account: "ci", Scopes: []gatehouse.Scope{{Resource: "applications", Action: "sync", Object: "shop/*"}},
	}
}

// trustService is a service on a fresh SQLite store with an account ci
// that may sync anything, and the configured policy deploy for is.
func trustService(tb testing.TB, wrap func(gatehouse.Store) gatehouse.Store, is *rsaIssuer, o service.Options) *service.Service {
	tb.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(tb.TempDir(), "g.db"))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { st.Close() })
	o.Store = wrap(st)
	o.BcryptCost = 10
	o.RBAC = gatehouse.RBAC{PolicyCSV: "p, ci, applications, sync, *, allow"}
	svc, err := service.New(ctx, o)
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := svc.Bootstrap(ctx, "admin-password-for-tests"); err != nil {
		tb.Fatal(err)
	}
	admin, err := svc.Login(ctx, "admin", "admin-password-for-tests", "127.0.0.1")
	if err != nil {
		tb.Fatal(err)
	}
	p, err := svc.Authenticate(ctx, admin.Token)
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := svc.CreateAccount(ctx, p, gatehouse.AccountCreate{Name: "ci", Capabilities: []gatehouse.Capability{gatehouse.CapAPIKey}}); err != nil {
		tb.Fatal(err)
	}
	if err := svc.ApplyTrustPolicies(ctx, []gatehouse.TrustPolicy{is.policy("deploy")}); err != nil {
		tb.Fatal(err)
	}
	return svc
}

func exchangeRequest(subject string) gatehouse.ExchangeRequest {
	return gatehouse.ExchangeRequest{GrantType: gatehouse.GrantTokenExchange, SubjectToken: subject, SubjectTokenType: gatehouse.TokenTypeJWT}
}

// TestExchangeWithRetriedTransactions: with every transaction run twice
// (a rehearsal rolled back, as a PostgreSQL retry does), an exchange still
// mints one token and records its subject token's one use; a replay is
// still refused.
func TestExchangeWithRetriedTransactions(t *testing.T) {
	is := newRSAIssuer(t)
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	svc := trustService(t, storetest.TxTwice, is, service.Options{Now: func() time.Time { return now }})
	ctx := context.Background()
	subject := is.token(t, now)
	res, err := svc.Exchange(ctx, exchangeRequest(subject), "127.0.0.1", "test")
	if err != nil {
		t.Fatalf("exchange: %v", err)
	}
	p, err := svc.Authenticate(ctx, res.AccessToken)
	if err != nil {
		t.Fatalf("the exchanged token: %v", err)
	}
	if p.Account() != "ci" || !svc.Can(p, "applications", "sync", "shop/web") || svc.Can(p, "applications", "sync", "other/api") {
		t.Errorf("the exchanged token: account %q, sync shop/web %v, other/api %v; want ci, true, false",
			p.Account(), svc.Can(p, "applications", "sync", "shop/web"), svc.Can(p, "applications", "sync", "other/api"))
	}
	_, err = svc.Exchange(ctx, exchangeRequest(subject), "127.0.0.1", "test")
	var oe *gatehouse.OAuthError
	if !errors.As(err, &oe) || oe.Code != gatehouse.OAuthInvalidGrant {
		t.Errorf("replay: %v, want invalid_grant", err)
	}
}

// TestExchangeRefusesTokenRecordedBeforeUpgrade: a subject token without
// a jti that an earlier version exchanged, recorded then by the hash of
// the whole token, is still refused as a replay, by the exchange and by
// the trust test.
func TestExchangeRefusesTokenRecordedBeforeUpgrade(t *testing.T) {
	is := newRSAIssuer(t)
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	var st gatehouse.Store
	keep := func(s gatehouse.Store) gatehouse.Store { st = s; return s }
	svc := trustService(t, keep, is, service.Options{Now: func() time.Time { return now }})
	ctx := context.Background()
	c := is.claims(now)
	delete(c, "jti")
	subject := is.sign(t, c)
	h := sha256.Sum256([]byte(subject))
	err := st.Tx(ctx, func(tx gatehouse.Tx) error {
		return tx.AddExchangeReplay(ctx, "tok:"+hex.EncodeToString(h[:]), now.Add(6*time.Minute))
	})
	if err != nil {
		t.Fatal(err)
	}
	_, err = svc.Exchange(ctx, exchangeRequest(subject), "127.0.0.1", "test")
	var oe *gatehouse.OAuthError
	if !errors.As(err, &oe) || oe.Code != gatehouse.OAuthInvalidGrant {
		t.Errorf("a token recorded before the upgrade: %v, want invalid_grant", err)
	}
	admin, err := svc.Login(ctx, "admin", "admin-password-for-tests", "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	p, err := svc.Authenticate(ctx, admin.Token)
	if err != nil {
		t.Fatal(err)
	}
	res, err := svc.TestTrustPolicy(ctx, p, "deploy", subject)
	if err != nil || res.Accepted || res.Failed != "the subject token was already exchanged (replay)" {
		t.Errorf("testing a token recorded before the upgrade: %+v, %v; want refused as a replay", res, err)
	}
	// Another token without a jti is not caught by that record.
	c = is.claims(now.Add(-time.Second))
	delete(c, "jti")
	if _, err := svc.Exchange(ctx, exchangeRequest(is.sign(t, c)), "127.0.0.1", "test"); err != nil {
		t.Errorf("a new token without a jti: %v", err)
	}
}

// TestApplyTrustPoliciesIsIdempotent: applying the file's policies again
// at the next start changes nothing (the issued tokens live on); a policy
// changed in the file is replaced and its tokens revoked.
func TestApplyTrustPoliciesIsIdempotent(t *testing.T) {
	is := newRSAIssuer(t)
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	svc := trustService(t, func(s gatehouse.Store) gatehouse.Store { return s }, is, service.Options{Now: func() time.Time { return now }})
	ctx := context.Background()
	res, err := svc.Exchange(ctx, exchangeRequest(is.token(t, now)), "", "")
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.ApplyTrustPolicies(ctx, []gatehouse.TrustPolicy{is.policy("deploy")}); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Authenticate(ctx, res.AccessToken); err != nil {
		t.Errorf("after applying the same policy: %v, want the token alive", err)
	}
	changed := is.policy("deploy")
	changed.TTL = 120
	if err := svc.ApplyTrustPolicies(ctx, []gatehouse.TrustPolicy{changed}); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Authenticate(ctx, res.AccessToken); err == nil {
		t.Error("after applying a changed policy the token still works")
	}
	bad := is.policy("bad")
	bad.Claims = nil
	if err := svc.ApplyTrustPolicies(ctx, []gatehouse.TrustPolicy{bad}); err == nil {
		t.Error("a policy without claims was applied")
	}
	// A new policy for an account not made yet waits for a later start;
	// a stored one that can no longer be applied stops the start.
	later := is.policy("later")
	later.Account = "not-yet"
	if err := svc.ApplyTrustPolicies(ctx, []gatehouse.TrustPolicy{later}); err != nil {
		t.Errorf("a new policy for a missing account: %v, want it skipped", err)
	}
	if _, err := svc.Exchange(ctx, gatehouse.ExchangeRequest{GrantType: gatehouse.GrantTokenExchange, SubjectToken: is.token(t, now),
		SubjectTokenType: gatehouse.TokenTypeJWT, TrustPolicy: "later"}, "", ""); err == nil {
		t.Error("the skipped policy exchanged a token")
	}
	gone := is.policy("deploy")
	gone.Account = "not-yet"
	if err := svc.ApplyTrustPolicies(ctx, []gatehouse.TrustPolicy{gone}); err == nil {
		t.Error("a stored policy whose new subject is missing was left as it was without an error")
	}
}

// BenchmarkExchange: one RFC 8693 exchange in process, JWKS cached: parse,
// RS256 verification, the claim checks, and the minting transaction with
// its replay record (SQLite).
func BenchmarkExchange(b *testing.B) {
	is := newRSAIssuer(b)
	now := time.Now()
	svc := trustService(b, func(s gatehouse.Store) gatehouse.Store { return s }, is, service.Options{AuditDisabled: true})
	ctx := context.Background()
	// Warm the JWKS cache.
	if _, err := svc.Exchange(ctx, exchangeRequest(is.token(b, now)), "", ""); err != nil {
		b.Fatal(err)
	}
	subjects := make([]string, b.N)
	for i := range subjects {
		subjects[i] = is.token(b, now)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := svc.Exchange(ctx, exchangeRequest(subjects[i]), "", ""); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	if n := is.fetches.Load(); n != 1 {
		b.Fatalf("%d JWKS fetches, want 1", n)
	}
}
