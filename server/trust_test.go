package server_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/server"
	"github.com/gatehouse/gatehouse/service"
	"github.com/gatehouse/gatehouse/store/sqlite"
)

// The tests of keyless CI: trust policies and RFC 8693 token exchange,
// through the real server, against issuers made up here: keys generated
// in the test, their JWKS served from httptest on 127.0.0.1.

const (
	testAudience = "https://gatehouse.example"
	refusedText  = "the subject token is not accepted by any trust policy"
)

// testIssuer is an OIDC issuer: signing keys and a JWKS endpoint.
type testIssuer struct {
	t   *testing.T
	srv *httptest.Server

	mu        sync.Mutex
	keys      map[string]issuerKey // by kid
	published []string             // kids in the JWKS
	current   string               // kid that signs
	hold      chan struct{}        // while set, the JWKS endpoint waits on it
	down      bool                 // while set, the JWKS endpoint answers 503
	fetches   atomic.Int32
}

type issuerKey struct {
	alg  jose.SignatureAlgorithm
	priv crypto.Signer
}

// newIssuer starts an issuer whose first key is an RSA key "k1" (RS256).
func newIssuer(t *testing.T) *testIssuer {
	t.Helper()
	is := &testIssuer{t: t, keys: map[string]issuerKey{}}
	is.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/.well-known/jwks" {
			http.NotFound(w, r)
			return
		}
		is.fetches.Add(1)
		is.mu.Lock()
		hold, down := is.hold, is.down
		is.mu.Unlock()
		if down {
			http.Error(w, "unavailable", http.StatusServiceUnavailable)
			return
		}
		if hold != nil {
			select {
			case <-hold:
			case <-r.Context().Done():
				return
			}
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(is.jwks())
	}))
	t.Cleanup(is.srv.Close)
	is.addKey("k1", jose.RS256)
	return is
}

func (is *testIssuer) url() string     { return is.srv.URL }
func (is *testIssuer) jwksURL() string { return is.srv.URL + "/.well-known/jwks" }

// addKey generates a key of alg's kind, publishes it and signs with it.
func (is *testIssuer) addKey(kid string, alg jose.SignatureAlgorithm) {
	is.t.Helper()
	var priv crypto.Signer
	var err error
	switch alg {
	case jose.RS256, jose.RS384, jose.RS512, jose.PS256:
		priv, err = rsa.GenerateKey(rand.Reader, 2048)
	case jose.ES256:
		priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case jose.ES384:
		priv, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	case jose.EdDSA:
		_, priv, err = ed25519.GenerateKey(rand.Reader)
	}
	if err != nil {
		is.t.Fatal(err)
	}
	is.mu.Lock()
	defer is.mu.Unlock()
	is.keys[kid] = issuerKey{alg: alg, priv: priv}
	is.published = append(is.published, kid)
	is.current = kid
}

// rotate replaces every published key by a new one.
func (is *testIssuer) rotate(kid string) {
	is.mu.Lock()
	is.published = nil
	is.mu.Unlock()
	is.addKey(kid, jose.RS256)
}

// publish makes kids (keys added before) the whole JWKS: the others are
// withdrawn, though they still sign.
func (is *testIssuer) publish(kids ...string) {
	is.mu.Lock()
	defer is.mu.Unlock()
	is.published = kids
}

// setDown makes the JWKS endpoint fail (503), or answer again.
func (is *testIssuer) setDown(down bool) {
	is.mu.Lock()
	defer is.mu.Unlock()
	is.down = down
}

func (is *testIssuer) jwks() jose.JSONWebKeySet {
	is.mu.Lock()
	defer is.mu.Unlock()
	var ks jose.JSONWebKeySet
	for _, kid := range is.published {
		k := is.keys[kid]
		ks.Keys = append(ks.Keys, jose.JSONWebKey{Key: k.priv.Public(), KeyID: kid, Algorithm: string(k.alg), Use: "sig"})
	}
	return ks
}

// sign signs claims with the current key (iss filled in when absent).
func (is *testIssuer) sign(claims map[string]any) string {
	is.mu.Lock()
	kid := is.current
	is.mu.Unlock()
	return is.signWith(kid, claims)
}

func (is *testIssuer) signWith(kid string, claims map[string]any) string {
	is.t.Helper()
	return is.signAs(kid, true, claims)
}

// signWithoutKid signs with kid's key and names no key in the header.
func (is *testIssuer) signWithoutKid(kid string, claims map[string]any) string {
	is.t.Helper()
	return is.signAs(kid, false, claims)
}

func (is *testIssuer) signAs(kid string, header bool, claims map[string]any) string {
	is.t.Helper()
	is.mu.Lock()
	k := is.keys[kid]
	is.mu.Unlock()
	if _, ok := claims["iss"]; !ok {
		claims["iss"] = is.url()
	}
	opts := (&jose.SignerOptions{}).WithType("JWT")
	if header {
		opts = opts.WithHeader("kid", kid)
	}
	sig, err := jose.NewSigner(jose.SigningKey{Algorithm: k.alg, Key: k.priv}, opts)
	if err != nil {
		is.t.Fatal(err)
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		is.t.Fatal(err)
	}
	obj, err := sig.Sign(payload)
	if err != nil {
		is.t.Fatal(err)
	}
	s, err := obj.CompactSerialize()
	if err != nil {
		is.t.Fatal(err)
	}
	return s
}

// holdJWKS makes the JWKS endpoint hang until the returned release is
// called (or the test ends).
func (is *testIssuer) holdJWKS() (release func()) {
	ch := make(chan struct{})
	is.mu.Lock()
	is.hold = ch
	is.mu.Unlock()
	var once sync.Once
	release = func() {
		once.Do(func() {
			is.mu.Lock()
			is.hold = nil
			is.mu.Unlock()
			close(ch)
		})
	}
	is.t.Cleanup(release)
	return release
}

var jtiSeq atomic.Int64

// githubClaims is the payload of a GitHub Actions ID token for a push to
// main of octo-org/shop, deploying to environment prod, issued at now.
func githubClaims(now time.Time) map[string]any {
	return map[string]any{
		"jti":                   fmt.Sprintf("gh-%d", jtiSeq.Add(1)),
		"sub":                   "repo:octo-org/shop:environment:prod",
		"aud":                   testAudience,
		"ref":                   "refs/heads/main",
		"sha":                   "e8b3b4c2d0a9f1e2c3b4a5968778695a4b3c2d1e",
		"repository":            "octo-org/shop",
		"repository_owner":      "octo-org",
		"repository_owner_id":   "9919",
		"repository_id":         "123456",
		"repository_visibility": "private",
		"run_id":                "6045339157",
		"run_number":            "12",
		"run_attempt":           "1",
		"actor":                 "octocat",
		"actor_id":              "583231",
		"workflow":              "deploy",
		"workflow_ref":          "octo-org/shop/.github/workflows/deploy.yml@refs/heads/main",
		"event_name":            "push",
		"ref_type":              "branch",
		"environment":           "prod",
		"runner_environment":    "github-hosted",
		"nbf":                   now.Add(-5 * time.Second).Unix(),
		"iat":                   now.Unix(),
		"exp":                   now.Add(5 * time.Minute).Unix(),
	}
}

// gitlabClaims is the payload of a GitLab CI id_tokens token of a
// pipeline on main of my-group/my-project, issued at now.
func gitlabClaims(now time.Time) map[string]any {
	return map[string]any{
		"jti":                   fmt.Sprintf("gl-%d", jtiSeq.Add(1)),
		"namespace_id":          "72",
		"namespace_path":        "my-group",
		"project_id":            "20",
		"project_path":          "my-group/my-project",
		"user_id":               "1",
		"user_login":            "sample-user",
		"pipeline_id":           "574",
		"pipeline_source":       "push",
		"job_id":                "302",
		"ref":                   "main",
		"ref_type":              "branch",
		"ref_protected":         "true",
		"environment":           "production",
		"environment_protected": "true",
		"sub":                   "project_path:my-group/my-project:ref_type:branch:ref:main",
		"aud":                   testAudience,
		"nbf":                   now.Add(-5 * time.Second).Unix(),
		"iat":                   now.Unix(),
		"exp":                   now.Add(5 * time.Minute).Unix(),
	}
}

// trustEnv is a server with two projects (shop with application web,
// other with api), a service account ci-deployer allowed everything on
// applications, and the policy shop-deploy trusting is for ci-deployer,
// scoped to getting and syncing shop's applications.
type trustEnv struct {
	*env
	is *testIssuer
}

// secondServer is another server on te's database, as another replica or
// the same one after a restart: same clock, its own caches. tweak, if
// given, changes its options (another configuration).
func (te *trustEnv) secondServer(tweak ...func(*service.Options)) *env {
	t := te.t
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, te.dbPath)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	o := service.Options{Store: st, Now: te.clock.Now, BcryptCost: 10}
	for _, f := range tweak {
		f(&o)
	}
	svc2, err := service.New(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	srv2 := httptest.NewServer(server.New(server.Options{Service: svc2}))
	t.Cleanup(srv2.Close)
	return &env{t: t, srv: srv2, svc: svc2, clock: te.clock, logs: &lockedBuffer{}}
}

func newTrustEnv(t *testing.T, opts ...envOption) *trustEnv {
	t.Helper()
	return trustOn(newEnv(t, append([]envOption{trustRBAC}, opts...)...))
}

var trustRBAC = withPolicy("p, ci-deployer, applications, *, *, allow", "")

// trustOn sets up a trustEnv on e (made with trustRBAC).
func trustOn(e *env) *trustEnv {
	t := e.t
	te := &trustEnv{env: e, is: newIssuer(t)}
	e.call("POST", "/api/v1/account", e.admin, gatehouse.AccountCreate{Name: "ci-deployer", Capabilities: []gatehouse.Capability{gatehouse.CapAPIKey}}, 200, nil)
	for _, pr := range []string{"shop", "other"} {
		e.call("POST", "/api/v1/projects", e.admin, gatehouse.Project{Name: pr, Roles: []gatehouse.ProjectRole{{
			Name: "deployer", Policies: []string{"p, proj:" + pr + ":deployer, applications, sync, " + pr + "/*, allow"},
		}}}, 200, nil)
	}
	e.call("POST", "/api/v1/applications", e.admin, app("web", "shop"), 200, nil)
	e.call("POST", "/api/v1/applications", e.admin, app("api", "other"), 200, nil)
	te.createPolicy(te.githubPolicy("shop-deploy"))
	return te
}

// githubPolicy is the example policy, for te's issuer.
func (te *trustEnv) githubPolicy(name string) gatehouse.TrustPolicy {
	return gatehouse.TrustPolicy{
		Name:      name,
		Issuer:    te.is.url(),
		JWKSURL:   te.is.jwksURL(),
		Audiences: []string{testAudience},
		Claims: map[string]gatehouse.ClaimPatterns{
			"repository_id": {"123456"},
			"ref":           {"refs/heads/main"},
			"environment":   {"prod*"},
		},
		Account: "ci-deployer",
		TTL:     900,
		Scopes: []gatehouse.Scope{
			{Resource: "applications", Action: "sync", Object: "shop/*"},
			{Resource: "applications", Action: "get", Object: "shop/*"},
		},
	}
}

func (te *trustEnv) createPolicy(tp gatehouse.TrustPolicy) gatehouse.TrustPolicy {
	te.t.Helper()
	var out gatehouse.TrustPolicy
	te.call("POST", "/api/v1/trust-policies", te.admin, tp, 200, &out)
	return out
}

// exchange posts the form to the exchange endpoint and returns the status
// and the decoded body.
func (e *env) exchange(form url.Values) (int, map[string]any) {
	e.t.Helper()
	if tok := form.Get("subject_token"); tok != "" {
		e.remember(tok)
	}
	req, err := http.NewRequest("POST", e.srv.URL+"/api/v1/token/exchange", strings.NewReader(form.Encode()))
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	status, b := e.send(req)
	var out map[string]any
	if err := json.Unmarshal(b, &out); err != nil {
		e.t.Fatalf("exchange answered %d with a body that is not JSON: %s", status, b)
	}
	if tok, ok := out["access_token"].(string); ok {
		e.remember(tok)
	}
	return status, out
}

func exchangeForm(subject string) url.Values {
	return url.Values{
		"grant_type":         {gatehouse.GrantTokenExchange},
		"subject_token":      {subject},
		"subject_token_type": {gatehouse.TokenTypeIDToken},
	}
}

// exchangeOK exchanges subject and returns the Gatehouse token.
func (e *env) exchangeOK(form url.Values) string {
	e.t.Helper()
	status, out := e.exchange(form)
	if status != 200 {
		e.t.Fatalf("exchange: %d %v, want 200", status, out)
	}
	tok, _ := out["access_token"].(string)
	if tok == "" {
		e.t.Fatalf("exchange answered %v, no access_token", out)
	}
	return tok
}

// wantRefused checks an OAuth refusal: the status, the code, exactly the
// two members, and for invalid_grant the one fixed description.
func wantRefused(t *testing.T, what string, status int, out map[string]any, wantStatus int, wantCode string) {
	t.Helper()
	code, _ := out["error"].(string)
	desc, _ := out["error_description"].(string)
	if status != wantStatus || code != wantCode || len(out) != 2 || desc == "" {
		t.Errorf("%s: %d %v, want %d {error: %s, error_description}", what, status, out, wantStatus, wantCode)
	}
	if wantCode == gatehouse.OAuthInvalidGrant && desc != refusedText {
		t.Errorf("%s: description %q, want the fixed %q", what, desc, refusedText)
	}
}

func tokensOf(e *env, account string) []gatehouse.Token {
	e.t.Helper()
	var list gatehouse.List[gatehouse.Token]
	e.call("GET", "/api/v1/account/"+account+"/token", e.admin, nil, 200, &list)
	return list.Items
}

// eventsOf returns the audit events of a type, newest first.
func eventsOf(e *env, typ string) []gatehouse.Event {
	e.t.Helper()
	e.svc.Flush(context.Background())
	var list gatehouse.List[gatehouse.Event]
	e.call("GET", "/api/v1/audit?limit=1000&type="+url.QueryEscape(typ), e.admin, nil, 200, &list)
	return list.Items
}

func TestExchangeGitHubActionsToken(t *testing.T) {
	te := newTrustEnv(t)
	now := te.clock.Now()
	status, out := te.exchange(exchangeForm(te.is.sign(githubClaims(now))))
	if status != 200 {
		t.Fatalf("exchange: %d %v", status, out)
	}
	if out["issued_token_type"] != gatehouse.TokenTypeAccessToken || out["token_type"] != "Bearer" || out["expires_in"] != float64(900) || len(out) != 4 {
		t.Errorf("answer %v, want access_token, issued_token_type access_token, token_type Bearer, expires_in 900", out)
	}
	tok := out["access_token"].(string)

	// It syncs what the policy's scopes allow, and nothing else, though
	// ci-deployer itself may do anything with applications.
	if s := te.status("POST", "/api/v1/applications/web/sync", tok, gatehouse.SyncRequest{}); s != 200 {
		t.Errorf("sync shop/web: %d, want 200", s)
	}
	if s := te.status("POST", "/api/v1/applications/api/sync", tok, gatehouse.SyncRequest{}); s != 403 {
		t.Errorf("sync other/api: %d, want 403", s)
	}
	if s := te.status("DELETE", "/api/v1/applications/web", tok, nil); s != 403 {
		t.Errorf("delete shop/web: %d, want 403", s)
	}

	// An ordinary API token of the subject, minted by the policy.
	toks := tokensOf(te.env, "ci-deployer")
	if len(toks) != 1 {
		t.Fatalf("ci-deployer has %d tokens, want 1", len(toks))
	}
	got := toks[0]
	if got.Kind != gatehouse.KindAPI || got.CreatedBy != "trust-policy:shop-deploy" || !got.ExpiresAt.Equal(now.Add(900*time.Second)) || len(got.Scopes) != 2 {
		t.Errorf("issued token %+v, want kind api, createdBy trust-policy:shop-deploy, expiring in 900 s, 2 scopes", got)
	}

	// The exchange is audited with the external identity, and the
	// requests made with the token carry its id: one query shows what
	// the run did.
	ex := eventsOf(te.env, gatehouse.EventTokenExchanged)
	if len(ex) != 1 || ex[0].TokenID != got.ID || ex[0].Actor != "trust-policy:shop-deploy" {
		t.Fatalf("token.exchanged events %+v, want one for token %s", ex, got.ID)
	}
	for _, want := range []string{`policy "shop-deploy"`, `iss "` + te.is.url() + `"`, `sub "repo:octo-org/shop:environment:prod"`,
		`repository "octo-org/shop"`, `repository_id "123456"`, `ref "refs/heads/main"`, `environment "prod"`, `workflow "deploy"`, `run_id "6045339157"`, `jti "gh-`} {
		if !strings.Contains(ex[0].Detail, want) {
			t.Errorf("exchange event detail %q lacks %s", ex[0].Detail, want)
		}
	}
	te.svc.Flush(context.Background())
	var byToken gatehouse.List[gatehouse.Event]
	te.call("GET", "/api/v1/audit?tokenId="+got.ID, te.admin, nil, 200, &byToken)
	var syncs, denied int
	for _, ev := range byToken.Items {
		if ev.Type == gatehouse.EventRequest && ev.Action == "sync" {
			syncs++
			if ev.Decision == "deny" {
				denied++
			}
		}
	}
	if syncs != 2 || denied != 1 {
		t.Errorf("the token's audit trail has %d sync requests (%d denied), want 2 (1 denied): %+v", syncs, denied, byToken.Items)
	}
}

func TestExchangeGitLabCIToken(t *testing.T) {
	te := newTrustEnv(t)
	gl := newIssuer(t)
	gl.addKey("gl-es", jose.ES256)
	// project_id given as a number: GitLab sends it as a string, and the
	// two compare by their text.
	var tp gatehouse.TrustPolicy
	body := fmt.Sprintf(`{"name": "gitlab-deploy", "issuer": %q, "jwksURL": %q, "audiences": [%q],
		"claims": {"project_id": 20, "ref_protected": true, "ref": ["main", "release/*"]},
		"project": "shop", "role": "deployer", "ttl": 600}`, gl.url(), gl.jwksURL(), testAudience)
	req, _ := http.NewRequest("POST", te.srv.URL+"/api/v1/trust-policies", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+te.admin)
	status, b := te.send(req)
	if status != 200 {
		t.Fatalf("create GitLab policy: %d %s", status, b)
	}
	if err := json.Unmarshal(b, &tp); err != nil {
		t.Fatal(err)
	}
	if got := tp.Claims["project_id"]; len(got) != 1 || got[0] != "20" {
		t.Errorf("project_id condition stored as %q, want [\"20\"]", got)
	}

	form := exchangeForm(gl.sign(gitlabClaims(te.clock.Now())))
	form.Set("subject_token_type", gatehouse.TokenTypeJWT)
	form.Set("trust_policy", "gitlab-deploy")
	form.Set("requested_token_type", gatehouse.TokenTypeAccessToken)
	tok := te.exchangeOK(form)
	if s := te.status("POST", "/api/v1/applications/web/sync", tok, gatehouse.SyncRequest{}); s != 200 {
		t.Errorf("sync shop/web as proj:shop:deployer: %d, want 200", s)
	}
	if s := te.status("POST", "/api/v1/applications/api/sync", tok, gatehouse.SyncRequest{}); s != 403 {
		t.Errorf("sync other/api as proj:shop:deployer: %d, want 403", s)
	}
	var list gatehouse.List[gatehouse.Token]
	te.call("GET", "/api/v1/projects/shop/roles/deployer/token", te.admin, nil, 200, &list)
	if len(list.Items) != 1 || list.Items[0].CreatedBy != "trust-policy:gitlab-deploy" || list.Items[0].Kind != gatehouse.KindProject {
		t.Errorf("role tokens %+v, want the exchanged one", list.Items)
	}
	ex := eventsOf(te.env, gatehouse.EventTokenExchanged)
	if len(ex) != 1 || !strings.Contains(ex[0].Detail, `project_path "my-group/my-project"`) || !strings.Contains(ex[0].Detail, `pipeline_id "574"`) {
		t.Errorf("exchange events %+v, want the GitLab identity", ex)
	}

	// A branch that is not protected is not main.
	c := gitlabClaims(te.clock.Now())
	c["ref"], c["ref_protected"] = "feature", "false"
	status, out := te.exchange(exchangeForm(gl.sign(c)))
	wantRefused(t, "unprotected feature branch", status, out, 400, gatehouse.OAuthInvalidGrant)
}

// TestExchangeRefusals is the refusal matrix: each subject token or form
// that must not be exchanged, with the OAuth answer it gets. None mints a
// token, and each refused subject token is audited.
func TestExchangeRefusals(t *testing.T) {
	te := newTrustEnv(t)
	now := te.clock.Now()
	is := te.is
	claims := func(change func(map[string]any)) map[string]any {
		c := githubClaims(now)
		change(c)
		return c
	}
	signed := func(change func(map[string]any)) string { return is.sign(claims(change)) }
	good := signed(func(map[string]any) {})

	// Tokens built by hand: a JOSE library would refuse to make them.
	b64 := func(v any) string {
		b, _ := json.Marshal(v)
		return base64.RawURLEncoding.EncodeToString(b)
	}
	payload := b64(githubClaims(now))
	algNone := b64(map[string]string{"alg": "none", "typ": "JWT"}) + "." + payload + "."
	pubDER, err := x509.MarshalPKIXPublicKey(is.keys["k1"].priv.Public())
	if err != nil {
		t.Fatal(err)
	}
	hsHeader := b64(map[string]string{"alg": "HS256", "typ": "JWT", "kid": "k1"})
	mac := hmac.New(sha256.New, pubDER)
	mac.Write([]byte(hsHeader + "." + payload))
	hs256 := hsHeader + "." + payload + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
	parts := strings.Split(good, ".")
	tampered := parts[0] + "." + b64(claims(func(c map[string]any) { c["iss"], c["repository_id"] = is.url(), "999" })) + "." + parts[2]

	other := newIssuer(t) // not trusted by any policy
	is.addKey("unpublished", jose.RS256)
	is.mu.Lock()
	is.published = []string{"k1"} // k1 only; "unpublished" signs
	is.mu.Unlock()
	unknownKid := is.signWith("unpublished", githubClaims(now))
	is.mu.Lock()
	is.current = "k1"
	is.mu.Unlock()

	replayed := signed(func(map[string]any) {})
	te.exchangeOK(exchangeForm(replayed)) // the one use it gets

	form := func(change func(url.Values)) url.Values {
		f := exchangeForm(signed(func(map[string]any) {}))
		change(f)
		return f
	}
	cases := []struct {
		name   string
		form   url.Values
		status int
		code   string
		why    string // in the audit record of a refused subject token
	}{
		{"wrong iss", exchangeForm(signed(func(c map[string]any) { c["iss"] = "https://token.actions.githubusercontent.com" })), 400, gatehouse.OAuthInvalidGrant, "no trust policy has issuer"},
		{"untrusted issuer signs for the trusted iss", exchangeForm(other.sign(claims(func(c map[string]any) { c["iss"] = is.url() }))), 400, gatehouse.OAuthInvalidGrant, "signature does not verify"},
		{"wrong aud", exchangeForm(signed(func(c map[string]any) { c["aud"] = "https://other.example" })), 400, gatehouse.OAuthInvalidGrant, "contains none of the policy"},
		{"aud list without ours", exchangeForm(signed(func(c map[string]any) { c["aud"] = []string{"a", "b"} })), 400, gatehouse.OAuthInvalidGrant, "contains none of the policy"},
		{"no aud", exchangeForm(signed(func(c map[string]any) { delete(c, "aud") })), 400, gatehouse.OAuthInvalidGrant, "contains none of the policy"},
		{"expired", exchangeForm(signed(func(c map[string]any) {
			c["iat"], c["nbf"], c["exp"] = now.Add(-9*time.Minute).Unix(), now.Add(-9*time.Minute).Unix(), now.Add(-61*time.Second).Unix()
		})), 400, gatehouse.OAuthInvalidGrant, "expired at"},
		{"not yet valid", exchangeForm(signed(func(c map[string]any) { c["nbf"] = now.Add(2 * time.Minute).Unix() })), 400, gatehouse.OAuthInvalidGrant, "not valid before"},
		{"issued in the future", exchangeForm(signed(func(c map[string]any) {
			c["iat"], c["exp"] = now.Add(2*time.Minute).Unix(), now.Add(7*time.Minute).Unix()
		})), 400, gatehouse.OAuthInvalidGrant, "issued in the future"},
		{"too old", exchangeForm(signed(func(c map[string]any) {
			c["iat"], c["nbf"], c["exp"] = now.Add(-11*time.Minute).Unix(), now.Add(-11*time.Minute).Unix(), now.Add(20*time.Minute).Unix()
		})), 400, gatehouse.OAuthInvalidGrant, "more than 10m0s ago"},
		{"too long-lived", exchangeForm(signed(func(c map[string]any) { c["exp"] = now.Add(61 * time.Minute).Unix() })), 400, gatehouse.OAuthInvalidGrant, "more than 1h0m0s"},
		{"no exp", exchangeForm(signed(func(c map[string]any) { delete(c, "exp") })), 400, gatehouse.OAuthInvalidGrant, "no exp claim"},
		{"no iat", exchangeForm(signed(func(c map[string]any) { delete(c, "iat") })), 400, gatehouse.OAuthInvalidGrant, "no iat claim"},
		{"exp not a number", exchangeForm(signed(func(c map[string]any) { c["exp"] = "tomorrow" })), 400, gatehouse.OAuthInvalidGrant, "exp is not a number"},
		{"alg none", exchangeForm(algNone), 400, gatehouse.OAuthInvalidGrant, "canonical base64url"}, // no signature part
		{"HS256 signed with the public key", exchangeForm(hs256), 400, gatehouse.OAuthInvalidGrant, "allowed algorithm"},
		{"unknown kid", exchangeForm(unknownKid), 400, gatehouse.OAuthInvalidGrant, "no key with kid"},
		{"tampered payload", exchangeForm(tampered), 400, gatehouse.OAuthInvalidGrant, "signature does not verify"},
		{"signature cut off", exchangeForm(parts[0] + "." + parts[1] + "."), 400, gatehouse.OAuthInvalidGrant, "canonical base64url"},
		{"claim mismatch: repository_id", exchangeForm(signed(func(c map[string]any) { c["repository_id"] = "1234567" })), 400, gatehouse.OAuthInvalidGrant, "claim \"repository_id\" is"},
		{"claim mismatch: ref", exchangeForm(signed(func(c map[string]any) { c["ref"] = "refs/heads/dev" })), 400, gatehouse.OAuthInvalidGrant, "claim \"ref\" is"},
		{"claim mismatch: environment glob", exchangeForm(signed(func(c map[string]any) { c["environment"] = "staging" })), 400, gatehouse.OAuthInvalidGrant, "claim \"environment\" is"},
		{"claim missing", exchangeForm(signed(func(c map[string]any) { delete(c, "environment") })), 400, gatehouse.OAuthInvalidGrant, "claim \"environment\" is missing"},
		{"claim is an object", exchangeForm(signed(func(c map[string]any) { c["repository_id"] = map[string]any{"id": "123456"} })), 400, gatehouse.OAuthInvalidGrant, "an object or a list of objects"},
		{"claim is a list of objects", exchangeForm(signed(func(c map[string]any) { c["repository_id"] = []any{map[string]any{"id": "123456"}} })), 400, gatehouse.OAuthInvalidGrant, "an object or a list of objects"},
		{"claim number differs", exchangeForm(signed(func(c map[string]any) { c["repository_id"] = 1234560 })), 400, gatehouse.OAuthInvalidGrant, "claim \"repository_id\" is \"1234560\""},
		{"replayed jti", exchangeForm(replayed), 400, gatehouse.OAuthInvalidGrant, "already exchanged"},
		{"not a JWT", exchangeForm("gatehouse:not-a-jwt"), 400, gatehouse.OAuthInvalidGrant, "canonical base64url"},
		{"unknown trust_policy", form(func(f url.Values) { f.Set("trust_policy", "nope") }), 400, gatehouse.OAuthInvalidGrant, "no trust policy \"nope\""},
		{"oversized token", exchangeForm(good + strings.Repeat("A", 16<<10)), 400, gatehouse.OAuthInvalidRequest, ""},
		{"no subject_token", form(func(f url.Values) { f.Del("subject_token") }), 400, gatehouse.OAuthInvalidRequest, ""},
		{"no grant_type", form(func(f url.Values) { f.Del("grant_type") }), 400, gatehouse.OAuthInvalidRequest, ""},
		{"wrong grant_type", form(func(f url.Values) { f.Set("grant_type", "client_credentials") }), 400, gatehouse.OAuthUnsupportedGrantType, ""},
		{"no subject_token_type", form(func(f url.Values) { f.Del("subject_token_type") }), 400, gatehouse.OAuthInvalidRequest, ""},
		{"subject_token_type saml", form(func(f url.Values) { f.Set("subject_token_type", "urn:ietf:params:oauth:token-type:saml2") }), 400, gatehouse.OAuthUnsupportedTokenType, ""},
		{"requested_token_type refresh", form(func(f url.Values) { f.Set("requested_token_type", "urn:ietf:params:oauth:token-type:refresh_token") }), 400, gatehouse.OAuthInvalidRequest, ""},
		{"actor_token", form(func(f url.Values) { f.Set("actor_token", good) }), 400, gatehouse.OAuthInvalidRequest, ""},
		{"trust_policy not a name", form(func(f url.Values) { f.Set("trust_policy", "../x") }), 400, gatehouse.OAuthInvalidTarget, ""},
		{"parameter twice", form(func(f url.Values) { f.Add("grant_type", gatehouse.GrantTokenExchange) }), 400, gatehouse.OAuthInvalidRequest, ""},
	}
	before := len(tokensOf(te.env, "ci-deployer"))
	failedBefore := len(eventsOf(te.env, gatehouse.EventExchangeFailed))
	grants := 0
	for _, c := range cases {
		status, out := te.exchange(c.form)
		wantRefused(t, c.name, status, out, c.status, c.code)
		if c.code != gatehouse.OAuthInvalidGrant {
			continue
		}
		grants++
		// The caller learns nothing more; the audit trail says why.
		if failed := eventsOf(te.env, gatehouse.EventExchangeFailed); len(failed) == 0 || !strings.Contains(failed[0].Detail, c.why) {
			t.Errorf("%s: the last refusal's audit record does not say %q: %+v", c.name, c.why, failed[:min(1, len(failed))])
		}
	}
	if n := len(tokensOf(te.env, "ci-deployer")); n != before {
		t.Errorf("the refusals minted %d tokens", n-before)
	}
	if n := len(eventsOf(te.env, gatehouse.EventExchangeFailed)) - failedBefore; n != grants {
		t.Errorf("%d token.exchange_failed events, want one per refused subject token (%d)", n, grants)
	}

	// Outside the form: a JSON body, a query string, a body over 1 MiB.
	send := func(what, ctype, query, body string, wantStatus int) {
		req, _ := http.NewRequest("POST", te.srv.URL+"/api/v1/token/exchange"+query, strings.NewReader(body))
		req.Header.Set("Content-Type", ctype)
		status, b := te.send(req)
		var out map[string]any
		_ = json.Unmarshal(b, &out)
		wantRefused(t, what, status, out, wantStatus, gatehouse.OAuthInvalidRequest)
	}
	enc := exchangeForm(good).Encode()
	send("JSON body", "application/json", "", `{"grant_type":"x"}`, 400)
	send("query string", "application/x-www-form-urlencoded", "?"+enc, "", 400)
	send("over 1 MiB", "application/x-www-form-urlencoded", "", enc+"&pad="+strings.Repeat("a", 1<<20), 413)
	t.Logf("refusal matrix: %d forms refused (%d invalid_grant), plus 3 requests refused before the form", len(cases), grants)
}

// TestExchangeReplayOfRespelledTokens: a subject token without a string
// jti is recorded by the hash of its header and payload, so every other
// spelling of the same signed token must be refused rather than counted as
// new: base64url with a line break or with non-zero unused bits decodes to
// the same bytes and still verifies. A numeric jti counts as a jti.
func TestExchangeReplayOfRespelledTokens(t *testing.T) {
	te := newTrustEnv(t)
	now := te.clock.Now()
	noJTI := githubClaims(now)
	delete(noJTI, "jti")
	tok := te.is.sign(noJTI)
	te.exchangeOK(exchangeForm(tok))

	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	h, rest, _ := strings.Cut(tok, ".")
	sig := tok[strings.LastIndexByte(tok, '.')+1:]
	last := strings.IndexByte(alphabet, sig[len(sig)-1])
	// A 256-byte RSA signature ends in a character with 4 unused bits.
	var spellings []string
	for i := 1; i < 4; i++ {
		spellings = append(spellings, h[:5]+strings.Repeat("\n", i)+h[5:]+"."+rest)
	}
	for i := 1; i < 16; i++ {
		if alt := alphabet[(last&^0xf)|((last+i)&0xf)]; alt != sig[len(sig)-1] {
			spellings = append(spellings, tok[:len(tok)-1]+string(alt))
		}
	}
	spellings = append(spellings, tok) // and the token itself, again
	for i, v := range spellings {
		status, out := te.exchange(exchangeForm(v))
		wantRefused(t, fmt.Sprintf("spelling %d of a used token", i), status, out, 400, gatehouse.OAuthInvalidGrant)
	}

	numeric := githubClaims(now)
	numeric["jti"] = 42
	first := te.is.sign(numeric)
	te.exchangeOK(exchangeForm(first))
	numeric["iat"] = now.Add(time.Second).Unix() // another token, the same jti
	again := te.is.sign(numeric)
	status, out := te.exchange(exchangeForm(again))
	wantRefused(t, "a numeric jti used twice", status, out, 400, gatehouse.OAuthInvalidGrant)
	t.Logf("%d spellings of a used token refused", len(spellings))
}

// TestExchangeReplayOfMalleatedECDSASignature: an ECDSA signature (r, s)
// has a twin (r, n-s) that verifies as well, which anyone holding the
// token can compute: a second canonical spelling with a new signature. The
// twin of a used token is refused as a replay, with a jti or without, and
// the trust test says so too.
func TestExchangeReplayOfMalleatedECDSASignature(t *testing.T) {
	te := newTrustEnv(t)
	for _, tc := range []struct {
		alg   jose.SignatureAlgorithm
		curve elliptic.Curve
	}{{jose.ES256, elliptic.P256()}, {jose.ES384, elliptic.P384()}} {
		kid := "e-" + string(tc.alg)
		te.is.addKey(kid, tc.alg)
		te.clock.Advance(10 * time.Second) // past the 10 s between fetches: the new kid fetches the keys
		for _, withJTI := range []bool{false, true} {
			what := fmt.Sprintf("%s, jti %v", tc.alg, withJTI)
			c := githubClaims(te.clock.Now())
			if !withJTI {
				delete(c, "jti")
			}
			tok := te.is.signWith(kid, c)
			te.exchangeOK(exchangeForm(tok))

			twin := malleate(t, tok, tc.curve)
			status, out := te.exchange(exchangeForm(twin))
			wantRefused(t, what+": the twin of a used token", status, out, 400, gatehouse.OAuthInvalidGrant)
			if failed := eventsOf(te.env, gatehouse.EventExchangeFailed); len(failed) == 0 || !strings.Contains(failed[0].Detail, "already exchanged (replay)") {
				t.Errorf("%s: failure events %+v, want the newest to say replay (the twin verifies)", what, failed)
			}
			var res gatehouse.TrustTestResult
			te.call("POST", "/api/v1/trust-policies/shop-deploy/test", te.admin, gatehouse.TrustTest{Token: twin}, 200, &res)
			if res.Accepted || !strings.Contains(res.Failed, "already exchanged") {
				t.Errorf("%s: testing the twin of a used token: %+v, want refused as a replay", what, res)
			}
		}
	}
}

// malleate returns tok, an ECDSA-signed compact JWS, with its signature
// (r, s) replaced by (r, n-s) for the curve's order n.
func malleate(t *testing.T, tok string, curve elliptic.Curve) string {
	t.Helper()
	i := strings.LastIndexByte(tok, '.')
	sig, err := base64.RawURLEncoding.DecodeString(tok[i+1:])
	if err != nil || len(sig)%2 != 0 {
		t.Fatalf("signature: %v, %d bytes", err, len(sig))
	}
	half := len(sig) / 2
	s := new(big.Int).SetBytes(sig[half:])
	s.Sub(curve.Params().N, s)
	twin := append([]byte(nil), sig...)
	s.FillBytes(twin[half:])
	out := tok[:i+1] + base64.RawURLEncoding.EncodeToString(twin)
	if out == tok {
		t.Fatal("the twin is the token")
	}
	return out
}

// TestExchangeFollowsKeyRotation: a token signed with a key the cached
// JWKS lacks fetches it again, at most once per 10 s per policy.
func TestExchangeFollowsKeyRotation(t *testing.T) {
	te := newTrustEnv(t)
	te.exchangeOK(exchangeForm(te.is.sign(githubClaims(te.clock.Now()))))
	if n := te.is.fetches.Load(); n != 1 {
		t.Fatalf("%d JWKS fetches after the first exchange, want 1", n)
	}
	te.exchangeOK(exchangeForm(te.is.sign(githubClaims(te.clock.Now()))))
	if n := te.is.fetches.Load(); n != 1 {
		t.Errorf("%d JWKS fetches after the second exchange, want 1 (cached)", n)
	}

	te.is.rotate("k2")
	// Within 10 s of the last fetch: refused, without another fetch, however
	// many tokens with new key ids arrive.
	for range 5 {
		status, out := te.exchange(exchangeForm(te.is.sign(githubClaims(te.clock.Now()))))
		wantRefused(t, "new kid within 10 s", status, out, 400, gatehouse.OAuthInvalidGrant)
	}
	if n := te.is.fetches.Load(); n != 1 {
		t.Errorf("%d JWKS fetches after tokens with an unknown kid within 10 s, want 1", n)
	}
	te.clock.Advance(11 * time.Second)
	te.exchangeOK(exchangeForm(te.is.sign(githubClaims(te.clock.Now()))))
	if n := te.is.fetches.Load(); n != 2 {
		t.Errorf("%d JWKS fetches after the rotation, want 2", n)
	}
	// The retired key is gone from the refreshed set.
	status, out := te.exchange(exchangeForm(te.is.signWith("k1", githubClaims(te.clock.Now()))))
	wantRefused(t, "retired key", status, out, 400, gatehouse.OAuthInvalidGrant)
}

// TestExchangeRefusesWithdrawnKeyAfterMaxAge: a key the issuer withdraws
// from its JWKS stops verifying once the cached set is 5 minutes old, also
// when every token names a key id the cached set still holds or none at
// all (neither asks for a fetch of its own). Until then the set is used as
// fetched, not fetched for every exchange.
func TestExchangeRefusesWithdrawnKeyAfterMaxAge(t *testing.T) {
	te := newTrustEnv(t)
	te.is.addKey("k2", jose.RS256) // the issuer publishes k1 and k2
	te.exchangeOK(exchangeForm(te.is.signWith("k1", githubClaims(te.clock.Now()))))
	te.is.publish("k2") // and withdraws k1 (its private key leaked)

	te.clock.Advance(4*time.Minute + 59*time.Second)
	te.exchangeOK(exchangeForm(te.is.signWith("k2", githubClaims(te.clock.Now()))))
	if n := te.is.fetches.Load(); n != 1 {
		t.Errorf("%d JWKS fetches within 5 minutes of the first, want 1 (cached)", n)
	}

	te.clock.Advance(time.Second)
	status, out := te.exchange(exchangeForm(te.is.signWith("k1", githubClaims(te.clock.Now()))))
	wantRefused(t, "the withdrawn key after 5 minutes", status, out, 400, gatehouse.OAuthInvalidGrant)
	if n := te.is.fetches.Load(); n != 2 {
		t.Errorf("%d JWKS fetches once the set was 5 minutes old, want 2", n)
	}
	if failed := eventsOf(te.env, gatehouse.EventExchangeFailed); len(failed) != 1 || !strings.Contains(failed[0].Detail, `no key with kid "k1"`) {
		t.Errorf("failure events %+v, want one saying k1 is not among the issuer's keys", failed)
	}
	status, out = te.exchange(exchangeForm(te.is.signWithoutKid("k1", githubClaims(te.clock.Now()))))
	wantRefused(t, "the withdrawn key, no kid, after 5 minutes", status, out, 400, gatehouse.OAuthInvalidGrant)
	te.exchangeOK(exchangeForm(te.is.signWith("k2", githubClaims(te.clock.Now()))))
	if n := te.is.fetches.Load(); n != 2 {
		t.Errorf("%d JWKS fetches after an exchange with the refetched set, want 2", n)
	}
}

// TestExpiredJWKSFailsClosed: a cached set 5 minutes old that cannot be
// fetched again is not used any more: the exchange is refused, saying so
// in the audit trail, and the issuer is asked again at most once per 10 s
// until it answers.
func TestExpiredJWKSFailsClosed(t *testing.T) {
	te := newTrustEnv(t)
	te.exchangeOK(exchangeForm(te.is.sign(githubClaims(te.clock.Now()))))
	te.is.setDown(true)

	te.clock.Advance(5 * time.Minute)
	for range 3 {
		status, out := te.exchange(exchangeForm(te.is.sign(githubClaims(te.clock.Now()))))
		wantRefused(t, "the set expired, its issuer down", status, out, 400, gatehouse.OAuthInvalidGrant)
	}
	if n := te.is.fetches.Load(); n != 2 {
		t.Errorf("%d JWKS fetches, want 2 (one when the set expired, none more within 10 s)", n)
	}
	failed := eventsOf(te.env, gatehouse.EventExchangeFailed)
	if len(failed) != 3 || !strings.Contains(failed[0].Detail, "longer than the 5m0s a set is used") || !strings.Contains(failed[0].Detail, "status 503") {
		t.Errorf("failure events %+v, want three saying the set is too old and the fetch failed", failed)
	}

	te.is.setDown(false)
	te.clock.Advance(10 * time.Second)
	te.exchangeOK(exchangeForm(te.is.sign(githubClaims(te.clock.Now()))))
	if n := te.is.fetches.Load(); n != 3 {
		t.Errorf("%d JWKS fetches once the issuer answered again, want 3", n)
	}
}

// TestChangedOrRecreatedTrustPolicyFetchesKeysAgain: a policy deleted and
// created again under the same name and jwksURL, or changed, never uses
// the key set cached for the policy before: not on the server that made
// the change, nor on another server on the same database.
func TestChangedOrRecreatedTrustPolicyFetchesKeysAgain(t *testing.T) {
	te := newTrustEnv(t)
	te.is.addKey("k2", jose.RS256)
	te.exchangeOK(exchangeForm(te.is.signWith("k1", githubClaims(te.clock.Now()))))
	te.is.publish("k2")
	// Well within the set's 5 minutes, and past the 10 s between fetches.
	te.clock.Advance(time.Minute)

	te.call("DELETE", "/api/v1/trust-policies/shop-deploy", te.admin, nil, 200, nil)
	te.createPolicy(te.githubPolicy("shop-deploy"))
	status, out := te.exchange(exchangeForm(te.is.signWith("k1", githubClaims(te.clock.Now()))))
	wantRefused(t, "the withdrawn key, policy re-created", status, out, 400, gatehouse.OAuthInvalidGrant)
	if n := te.is.fetches.Load(); n != 2 {
		t.Errorf("%d JWKS fetches after the policy was re-created, want 2", n)
	}
	te.exchangeOK(exchangeForm(te.is.signWith("k2", githubClaims(te.clock.Now()))))

	tp := te.githubPolicy("shop-deploy")
	tp.TTL = 300
	te.call("PUT", "/api/v1/trust-policies/shop-deploy", te.admin, tp, 200, nil)
	te.exchangeOK(exchangeForm(te.is.signWith("k2", githubClaims(te.clock.Now()))))
	if n := te.is.fetches.Load(); n != 3 {
		t.Errorf("%d JWKS fetches after the policy changed, want 3", n)
	}

	// A second server caches the set holding k2 and k3; the issuer
	// withdraws k3, and the first server re-creates the policy.
	second := te.secondServer()
	te.is.addKey("k3", jose.RS256)
	second.exchangeOK(exchangeForm(te.is.signWith("k3", githubClaims(te.clock.Now()))))
	te.is.publish("k2")
	te.clock.Advance(time.Second)
	te.call("DELETE", "/api/v1/trust-policies/shop-deploy", te.admin, nil, 200, nil)
	te.createPolicy(te.githubPolicy("shop-deploy"))
	status, out = second.exchange(exchangeForm(te.is.signWith("k3", githubClaims(te.clock.Now()))))
	wantRefused(t, "the withdrawn key on a second server, policy re-created", status, out, 400, gatehouse.OAuthInvalidGrant)
}

// TestSlowJWKSDoesNotStall: while one issuer's JWKS endpoint hangs, the
// exchange waiting for it waits alone: other requests, exchanges for other
// policies included, are answered. A JWKS endpoint that is down refuses
// its exchanges without delaying anything.
func TestSlowJWKSDoesNotStall(t *testing.T) {
	te := newTrustEnv(t, func(o *envSettings) { o.JWKSTimeout = time.Minute })
	slow := newIssuer(t)
	tp := te.githubPolicy("slow-issuer")
	tp.Issuer, tp.JWKSURL = slow.url(), slow.jwksURL()
	te.createPolicy(tp)
	release := slow.holdJWKS()

	done := make(chan int, 1)
	go func() {
		status, _ := te.exchange(exchangeForm(slow.sign(githubClaims(te.clock.Now()))))
		done <- status
	}()
	for slow.fetches.Load() == 0 {
		time.Sleep(time.Millisecond) // until the exchange waits on the endpoint
	}
	// Answered while the slow fetch hangs.
	te.exchangeOK(exchangeForm(te.is.sign(githubClaims(te.clock.Now()))))
	te.call("GET", "/api/v1/trust-policies", te.admin, nil, 200, nil)
	te.call("GET", "/api/v1/projects", te.admin, nil, 200, nil)
	select {
	case s := <-done:
		t.Fatalf("the exchange for the slow issuer finished (%d) before its JWKS was served", s)
	default:
	}
	release()
	if s := <-done; s != 200 {
		t.Errorf("the exchange for the slow issuer, once its JWKS came: %d, want 200", s)
	}

	down := newIssuer(t)
	tp = te.githubPolicy("down-issuer")
	tp.Issuer, tp.JWKSURL = down.url(), down.jwksURL()
	te.createPolicy(tp)
	down.srv.Close()
	status, out := te.exchange(exchangeForm(down.sign(githubClaims(te.clock.Now()))))
	wantRefused(t, "JWKS endpoint down", status, out, 400, gatehouse.OAuthInvalidGrant)
	te.exchangeOK(exchangeForm(te.is.sign(githubClaims(te.clock.Now()))))
}

// TestJWKSFetchTimesOut: a JWKS endpoint that never answers costs an
// exchange at most the fetch timeout, then it is refused.
func TestJWKSFetchTimesOut(t *testing.T) {
	te := newTrustEnv(t, func(o *envSettings) { o.JWKSTimeout = 100 * time.Millisecond })
	te.is.holdJWKS()
	status, out := te.exchange(exchangeForm(te.is.sign(githubClaims(te.clock.Now()))))
	wantRefused(t, "JWKS endpoint hangs", status, out, 400, gatehouse.OAuthInvalidGrant)
	failed := eventsOf(te.env, gatehouse.EventExchangeFailed)
	if len(failed) != 1 || !strings.Contains(failed[0].Detail, "keys are unavailable") {
		t.Errorf("failure events %+v, want one saying the keys are unavailable", failed)
	}
}

// TestChangingOrDeletingTrustPolicyKillsItsTokens: a changed policy
// revokes what it issued at once; replacing it with itself does not; a
// deleted one too.
func TestChangingOrDeletingTrustPolicyKillsItsTokens(t *testing.T) {
	te := newTrustEnv(t)
	// A token of ci-deployer minted otherwise survives everything here.
	other := te.mint(te.admin, "ci-deployer", gatehouse.TokenRequest{Name: "manual"})
	tok := te.exchangeOK(exchangeForm(te.is.sign(githubClaims(te.clock.Now()))))
	works := func(tok string) bool {
		return te.status("GET", "/api/v1/applications/web", tok, nil) == 200
	}
	if !works(tok) {
		t.Fatal("the exchanged token does not work")
	}
	tp := te.githubPolicy("shop-deploy")
	te.call("PUT", "/api/v1/trust-policies/shop-deploy", te.admin, tp, 200, nil)
	if !works(tok) {
		t.Error("replacing the policy with itself revoked its token")
	}
	tp.TTL = 300
	te.call("PUT", "/api/v1/trust-policies/shop-deploy", te.admin, tp, 200, nil)
	if works(tok) {
		t.Error("the policy changed and its token still works")
	}
	tok = te.exchangeOK(exchangeForm(te.is.sign(githubClaims(te.clock.Now()))))
	if !works(tok) {
		t.Fatal("the token of the changed policy does not work")
	}
	te.call("DELETE", "/api/v1/trust-policies/shop-deploy", te.admin, nil, 200, nil)
	if works(tok) {
		t.Error("the policy was deleted and its token still works")
	}
	if !works(other.Token) {
		t.Error("a token the policy did not issue was revoked")
	}
	status, out := te.exchange(exchangeForm(te.is.sign(githubClaims(te.clock.Now()))))
	wantRefused(t, "after the delete", status, out, 400, gatehouse.OAuthInvalidGrant)
	revoked := eventsOf(te.env, gatehouse.EventTokenRevoked)
	if len(revoked) != 2 || revoked[0].Detail != "trust policy deleted" || revoked[1].Detail != "trust policy changed" {
		t.Errorf("token.revoked events %+v, want one for the change and one for the delete", revoked)
	}
	te.call("GET", "/api/v1/trust-policies/shop-deploy", te.admin, nil, 404, nil)
}

// TestExchangeReplayHeldByTheStore: a subject token used through one
// server is refused by another server on the same database, as after a
// restart or through another replica.
func TestExchangeReplayHeldByTheStore(t *testing.T) {
	te := newTrustEnv(t)
	subject := te.is.sign(githubClaims(te.clock.Now()))
	te.exchangeOK(exchangeForm(subject))

	second := te.secondServer()
	status, out := second.exchange(exchangeForm(subject))
	wantRefused(t, "replay through a second server", status, out, 400, gatehouse.OAuthInvalidGrant)
	second.exchangeOK(exchangeForm(te.is.sign(githubClaims(te.clock.Now()))))

	// Once the token has expired its record may go; it is refused for
	// its expiry then.
	te.clock.Advance(7 * time.Minute)
	if _, err := te.svc.Reap(context.Background()); err != nil {
		t.Fatal(err)
	}
	status, out = te.exchange(exchangeForm(subject))
	wantRefused(t, "replay after expiry", status, out, 400, gatehouse.OAuthInvalidGrant)
}

// TestExchangedTokenWithinTheServersMaximumLifetime: a policy saved with a
// ttl of an hour, and the server restarted with tokens.maxLifetime lowered
// to ten minutes, mints no token that lives longer than the server's
// maximum: the exchanged token is an API token like any other.
func TestExchangedTokenWithinTheServersMaximumLifetime(t *testing.T) {
	te := newTrustEnv(t)
	tp := te.githubPolicy("shop-deploy")
	tp.TTL = 3600
	te.call("PUT", "/api/v1/trust-policies/shop-deploy", te.admin, tp, 200, nil)

	restarted := te.secondServer(func(o *service.Options) { o.MaxLifetime = 10 * time.Minute })
	status, out := restarted.exchange(exchangeForm(te.is.sign(githubClaims(te.clock.Now()))))
	if status != 200 {
		t.Fatalf("exchange: %d %v", status, out)
	}
	if out["expires_in"] != float64(600) {
		t.Errorf("expires_in %v, want 600 (the server's maximum lifetime)", out["expires_in"])
	}
	for _, tk := range tokensOf(te.env, "ci-deployer") {
		if life := tk.ExpiresAt.Sub(tk.IssuedAt); life > 10*time.Minute {
			t.Errorf("exchanged token %s lives %s, more than the server's maximum of 10m", tk.ID, life)
		}
	}
}

// TestExchangeReplayRecordOutlivesReplicaClockSkew: the replay record of a
// subject token is pruned by one replica's clock and checked by another's.
// A replica whose clock is 30s behind the pruning one still accepts the
// token (its exp plus the leeway lies ahead by its clock) after the record
// has gone: the record must be kept longer than the token is acceptable,
// as a CLI login's answered record is (replayKeep covers both).
func TestExchangeReplayRecordOutlivesReplicaClockSkew(t *testing.T) {
	te := newTrustEnv(t)
	subject := te.is.sign(githubClaims(te.clock.Now())) // exp in 5m
	te.exchangeOK(exchangeForm(subject))

	// The reaping replica's clock passes exp + 60s leeway: by its clock
	// the token can no longer be exchanged, and it prunes what has expired.
	te.clock.Advance(5*time.Minute + time.Minute)
	st, err := sqlite.Open(context.Background(), te.dbPath)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.Tx(context.Background(), func(tx gatehouse.Tx) error {
		_, err := tx.PruneExchangeReplays(context.Background(), te.clock.Now())
		return err
	}); err != nil {
		t.Fatal(err)
	}

	// Another replica, its clock 30s behind.
	behind := te.secondServer(func(o *service.Options) {
		o.Now = func() time.Time { return te.clock.Now().Add(-30 * time.Second) }
	})
	status, out := behind.exchange(exchangeForm(subject))
	wantRefused(t, "replay through a replica whose clock is 30s behind, after the record was pruned", status, out, 400, gatehouse.OAuthInvalidGrant)
}

// TestExchangeAmbiguousPolicies: a token two policies accept must name
// one.
func TestExchangeAmbiguousPolicies(t *testing.T) {
	te := newTrustEnv(t)
	tp := te.githubPolicy("shop-deploy-2")
	tp.Claims = map[string]gatehouse.ClaimPatterns{"repository": {"octo-org/*"}}
	te.createPolicy(tp)
	subject := te.is.sign(githubClaims(te.clock.Now()))
	status, out := te.exchange(exchangeForm(subject))
	wantRefused(t, "two policies match", status, out, 400, gatehouse.OAuthInvalidTarget)
	form := exchangeForm(subject)
	form.Set("trust_policy", "shop-deploy-2")
	te.exchangeOK(form)
	toks := tokensOf(te.env, "ci-deployer")
	if len(toks) != 1 || toks[0].CreatedBy != "trust-policy:shop-deploy-2" {
		t.Errorf("tokens %+v, want one from shop-deploy-2", toks)
	}
}

func TestTrustPolicyValidation(t *testing.T) {
	te := newTrustEnv(t)
	te.call("POST", "/api/v1/account", te.admin, gatehouse.AccountCreate{Name: "human", Capabilities: []gatehouse.Capability{gatehouse.CapLogin}, Password: "human-password-1"}, 200, nil)
	te.remember("human-password-1")
	change := func(f func(*gatehouse.TrustPolicy)) gatehouse.TrustPolicy {
		tp := te.githubPolicy("p1")
		f(&tp)
		return tp
	}
	inline := te.is.jwks()
	inlineJSON, _ := json.Marshal(inline)
	cases := map[string]struct {
		tp     gatehouse.TrustPolicy
		status int
		msg    string
	}{
		"fail/no claims":           {change(func(p *gatehouse.TrustPolicy) { p.Claims = nil }), 400, "at least one claim"},
		"fail/claim matches all":   {change(func(p *gatehouse.TrustPolicy) { p.Claims = map[string]gatehouse.ClaimPatterns{"sub": {"*"}} }), 400, "matches anything"},
		"fail/reserved claim":      {change(func(p *gatehouse.TrustPolicy) { p.Claims["aud"] = gatehouse.ClaimPatterns{"x"} }), 400, "checked by the exchange"},
		"fail/no keys":             {change(func(p *gatehouse.TrustPolicy) { p.JWKSURL = "" }), 400, "jwksURL"},
		"fail/both keys":           {change(func(p *gatehouse.TrustPolicy) { p.JWKS = inlineJSON }), 400, "not both"},
		"fail/plain http issuer":   {change(func(p *gatehouse.TrustPolicy) { p.Issuer = "http://ci.example" }), 400, "https://"},
		"fail/bad inline jwks":     {change(func(p *gatehouse.TrustPolicy) { p.JWKSURL, p.JWKS = "", json.RawMessage(`{"keys":[]}`) }), 400, "jwks"},
		"fail/no audience":         {change(func(p *gatehouse.TrustPolicy) { p.Audiences = nil }), 400, "audiences"},
		"fail/ttl too long":        {change(func(p *gatehouse.TrustPolicy) { p.TTL = 3601 }), 400, "ttl"},
		"fail/no subject":          {change(func(p *gatehouse.TrustPolicy) { p.Account = "" }), 400, "subject"},
		"fail/two subjects":        {change(func(p *gatehouse.TrustPolicy) { p.Project, p.Role = "shop", "deployer" }), 400, "not both"},
		"fail/unknown account":     {change(func(p *gatehouse.TrustPolicy) { p.Account = "ghost" }), 404, "not found"},
		"fail/account without key": {change(func(p *gatehouse.TrustPolicy) { p.Account, p.Scopes = "human", nil }), 412, "apiKey capability"},
		"fail/unknown role":        {change(func(p *gatehouse.TrustPolicy) { p.Account, p.Project, p.Role, p.Scopes = "", "shop", "ghost", nil }), 404, "no role"},
		"fail/scope beyond subject": {change(func(p *gatehouse.TrustPolicy) {
			p.Scopes = []gatehouse.Scope{{Resource: "accounts", Action: "update", Object: "*"}}
		}), 400, "exceeds"},
		"fail/bad name":   {change(func(p *gatehouse.TrustPolicy) { p.Name = "Shop Deploy" }), 400, "DNS label"},
		"fail/taken name": {change(func(p *gatehouse.TrustPolicy) { p.Name = "shop-deploy" }), 409, "already exists"},
		"ok/inline jwks":  {change(func(p *gatehouse.TrustPolicy) { p.Name, p.JWKSURL, p.JWKS = "inline", "", inlineJSON }), 200, ""},
		"ok/ttl defaults": {change(func(p *gatehouse.TrustPolicy) { p.Name, p.TTL = "default-ttl", 0 }), 200, ""},
		"ok/project subject": {change(func(p *gatehouse.TrustPolicy) {
			p.Name, p.Account, p.Project, p.Role, p.Scopes = "role", "", "shop", "deployer", nil
		}), 200, ""},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			status, b := te.do("POST", "/api/v1/trust-policies", te.admin, c.tp)
			if status != c.status {
				t.Fatalf("%d %s, want %d", status, b, c.status)
			}
			if c.msg != "" {
				if _, msg := errorOf(t, b); !strings.Contains(msg, c.msg) {
					t.Errorf("message %q does not contain %q", msg, c.msg)
				}
			}
		})
	}
	var got gatehouse.TrustPolicy
	te.call("GET", "/api/v1/trust-policies/default-ttl", te.admin, nil, 200, &got)
	if got.TTL != 900 {
		t.Errorf("ttl defaulted to %d, want 900", got.TTL)
	}
	// The inline policy verifies tokens with its own keys, no fetch.
	fetches := te.is.fetches.Load()
	form := exchangeForm(te.is.sign(githubClaims(te.clock.Now())))
	form.Set("trust_policy", "inline")
	te.exchangeOK(form)
	if te.is.fetches.Load() != fetches {
		t.Error("a policy with an inline JWKS fetched the issuer's")
	}
}

func TestTrustPolicyPermissions(t *testing.T) {
	te := newTrustEnv(t)
	te.createUser("alice")
	te.createUser("rita", "readers")
	te.setPolicy("p, ci-deployer, applications, *, *, allow\ng, readers, role:readonly", "")
	alice := te.login("alice", "alice-password")
	rita := te.login("rita", "rita-password")
	tp := te.githubPolicy("by-alice")
	for _, c := range []struct {
		who, tok, method, path string
		body                   any
		want                   int
	}{
		{"alice", alice, "GET", "/api/v1/trust-policies", nil, 403},
		{"alice", alice, "GET", "/api/v1/trust-policies/shop-deploy", nil, 403},
		{"alice", alice, "POST", "/api/v1/trust-policies", tp, 403},
		{"alice", alice, "PUT", "/api/v1/trust-policies/shop-deploy", te.githubPolicy("shop-deploy"), 403},
		{"alice", alice, "DELETE", "/api/v1/trust-policies/shop-deploy", nil, 403},
		{"readonly", rita, "GET", "/api/v1/trust-policies", nil, 200},
		{"readonly", rita, "GET", "/api/v1/trust-policies/shop-deploy", nil, 200},
		{"readonly", rita, "DELETE", "/api/v1/trust-policies/shop-deploy", nil, 403},
		{"nobody", "", "GET", "/api/v1/trust-policies", nil, 401},
	} {
		if got := te.status(c.method, c.path, c.tok, c.body); got != c.want {
			t.Errorf("%s: %s %s: %d, want %d", c.who, c.method, c.path, got, c.want)
		}
	}
	te.call("GET", "/api/v1/trust-policies/shop-deploy", te.admin, nil, 200, nil)
}

// TestTrustTest: the test says whether a token would be accepted, and to
// a caller who may read trust policies why not; it uses nothing up.
func TestTrustTest(t *testing.T) {
	te := newTrustEnv(t)
	te.createUser("alice")
	alice := te.login("alice", "alice-password")
	good := te.is.sign(githubClaims(te.clock.Now()))
	c := githubClaims(te.clock.Now())
	c["ref"] = "refs/heads/dev"
	dev := te.is.sign(c)
	te.remember(good, dev)

	var res gatehouse.TrustTestResult
	test := func(tok, policy, subject string, want int) {
		t.Helper()
		res = gatehouse.TrustTestResult{} // a fresh answer each time
		te.call("POST", "/api/v1/trust-policies/"+policy+"/test", tok, gatehouse.TrustTest{Token: subject}, want, &res)
	}
	test(te.admin, "shop-deploy", dev, 200)
	if res.Accepted || !strings.Contains(res.Failed, `claim "ref" is "refs/heads/dev"`) || res.Claims["repository"] != "octo-org/shop" {
		t.Errorf("admin testing a dev token: %+v, want refused naming the ref claim, with the claims", res)
	}
	test(alice, "shop-deploy", dev, 200)
	if res.Accepted || res.Failed != "" || res.Claims != nil || res.Subject != "" {
		t.Errorf("alice testing a dev token: %+v, want only accepted: false", res)
	}
	test(alice, "nope", dev, 200)
	if res.Accepted {
		t.Errorf("alice testing against a policy that does not exist: %+v", res)
	}
	te.call("POST", "/api/v1/trust-policies/nope/test", te.admin, gatehouse.TrustTest{Token: dev}, 404, nil)
	test(te.admin, "shop-deploy", good, 200)
	if !res.Accepted || res.Failed != "" || res.Subject != "ci-deployer" {
		t.Errorf("admin testing a good token: %+v, want accepted for ci-deployer", res)
	}
	// Testing did not use the token up.
	te.exchangeOK(exchangeForm(good))
	test(te.admin, "shop-deploy", good, 200)
	if res.Accepted || !strings.Contains(res.Failed, "already exchanged") {
		t.Errorf("testing a used token: %+v, want refused as a replay", res)
	}
}

// TestTrustPolicyIsNoSideDoor: a trust policy mints tokens for its
// subject, so saving one needs what minting for the subject directly
// needs. settings, update, trust alone is no way to act as admin or as a
// project role.
func TestTrustPolicyIsNoSideDoor(t *testing.T) {
	te := newTrustEnv(t, withPolicy("p, ci-deployer, applications, *, *, allow\np, trustop, settings, *, trust, allow", ""))
	te.createUser("trustop")
	op := te.mint(te.admin, "trustop", gatehouse.TokenRequest{})
	forAdmin := te.githubPolicy("pwn")
	forAdmin.Account, forAdmin.Scopes = "admin", nil
	if s, b := te.do("POST", "/api/v1/trust-policies", op.Token, forAdmin); s != 403 {
		t.Fatalf("trustop saving a policy for admin: %d %s, want 403", s, b)
	}
	forRole := te.githubPolicy("pwn-role")
	forRole.Account, forRole.Project, forRole.Role, forRole.Scopes = "", "shop", "deployer", nil
	if s, b := te.do("POST", "/api/v1/trust-policies", op.Token, forRole); s != 403 {
		t.Fatalf("trustop saving a policy for a project role: %d %s, want 403", s, b)
	}
	// Nor by changing the subject of a policy that exists.
	if s, b := te.do("PUT", "/api/v1/trust-policies/shop-deploy", op.Token, forAdmin); s != 403 && s != 400 {
		t.Fatalf("trustop repointing a policy at admin: %d %s, want 403", s, b)
	}
	// Its own account it may: minting for oneself needs nothing more.
	own := te.githubPolicy("own")
	own.Account, own.Scopes = "trustop", nil
	te.call("POST", "/api/v1/trust-policies", op.Token, own, 200, nil)
	// The audit record of the save names the permission it took.
	te.svc.Flush(t.Context())
	var page gatehouse.List[gatehouse.Event]
	te.call("GET", "/api/v1/audit?type=request&tokenId="+op.ID+"&status=200", te.admin, nil, 200, &page)
	if len(page.Items) != 1 || page.Items[0].Resource != "settings" || page.Items[0].Object != "trust" {
		t.Errorf("the save's audit record: %+v, want settings, update, trust", page.Items)
	}
}

// TestExchangedTokenCannotMintOrRotate: a token from an exchange lives
// minutes and dies with its policy; a token it minted or rotated into
// would do neither, so it may not.
func TestExchangedTokenCannotMintOrRotate(t *testing.T) {
	te := newTrustEnv(t)
	unscoped := te.githubPolicy("unscoped")
	unscoped.Scopes = nil
	unscoped.Claims["ref"] = gatehouse.ClaimPatterns{"refs/heads/release"}
	te.createPolicy(unscoped)
	role := te.githubPolicy("role")
	role.Account, role.Project, role.Role, role.Scopes = "", "shop", "deployer", nil
	role.Claims["ref"] = gatehouse.ClaimPatterns{"refs/heads/role"}
	te.createPolicy(role)
	now := te.clock.Now()
	exchange := func(ref, policy string) string {
		c := githubClaims(now)
		c["ref"], c["jti"] = ref, ref
		f := exchangeForm(te.is.sign(c))
		f.Set("trust_policy", policy)
		return te.exchangeOK(f)
	}
	tok := exchange("refs/heads/release", "unscoped")
	var ui gatehouse.UserInfo
	te.call("GET", "/api/v1/session/userinfo", tok, nil, 200, &ui)
	long := int64(30 * 24 * 3600)
	for _, c := range []struct {
		method, path string
		body         any
	}{
		{"POST", "/api/v1/account/ci-deployer/token", gatehouse.TokenRequest{Name: "persist", ExpiresIn: &long}},
		{"POST", "/api/v1/account/ci-deployer/token/" + ui.TokenID + "/rotate", gatehouse.RotateRequest{}},
		{"DELETE", "/api/v1/account/ci-deployer/token", nil},
	} {
		if s, b := te.do(c.method, c.path, tok, c.body); s != 403 {
			t.Errorf("exchanged token: %s %s = %d %s, want 403", c.method, c.path, s, b)
		}
	}
	roleTok := exchange("refs/heads/role", "role")
	if s, b := te.do("POST", "/api/v1/projects/shop/roles/deployer/token", roleTok, gatehouse.TokenRequest{}); s != 403 {
		t.Errorf("exchanged role token minting a role token: %d %s, want 403", s, b)
	}
	// It still does what it was issued for.
	te.call("GET", "/api/v1/applications/web", tok, nil, 200, nil)
}

// A trust policy goes with its subject: deleting the account, the project
// or the project's role deletes the policies that mint for it (with an
// audit event), so a new account or project of the same name inherits
// none of them.
func TestTrustPoliciesGoWithTheirSubject(t *testing.T) {
	te := newTrustEnv(t)
	role := func(name, project, ref string) gatehouse.TrustPolicy {
		tp := te.githubPolicy(name)
		tp.Account, tp.Project, tp.Role, tp.Scopes = "", project, "deployer", nil
		tp.Claims["ref"] = gatehouse.ClaimPatterns{ref}
		return te.createPolicy(tp)
	}
	role("shop-role", "shop", "refs/heads/shop")
	role("other-role", "other", "refs/heads/other")
	names := func() []string {
		var tps gatehouse.List[gatehouse.TrustPolicy]
		te.call("GET", "/api/v1/trust-policies", te.admin, nil, 200, &tps)
		var out []string
		for _, tp := range tps.Items {
			out = append(out, tp.Name)
		}
		return out
	}
	if got := names(); !slices.Equal(got, []string{"other-role", "shop-deploy", "shop-role"}) {
		t.Fatalf("policies %v", got)
	}

	// The account.
	te.call("DELETE", "/api/v1/account/ci-deployer", te.admin, nil, 200, nil)
	te.call("POST", "/api/v1/account", te.admin, gatehouse.AccountCreate{Name: "ci-deployer", Capabilities: []gatehouse.Capability{gatehouse.CapAPIKey}}, 200, nil)
	if s, out := te.exchange(exchangeForm(te.is.sign(githubClaims(te.clock.Now())))); s == 200 {
		t.Errorf("the deleted account's policy minted for a new account of its name: %v", out)
	}
	// The role.
	te.call("PUT", "/api/v1/projects/shop", te.admin, gatehouse.Project{Name: "shop", Roles: []gatehouse.ProjectRole{}}, 200, nil)
	// The project.
	te.call("DELETE", "/api/v1/applications/api", te.admin, nil, 200, nil)
	te.call("DELETE", "/api/v1/projects/other", te.admin, nil, 200, nil)
	if got := names(); len(got) != 0 {
		t.Errorf("policies left after their subjects were deleted: %v", got)
	}
	var evs gatehouse.List[gatehouse.Event]
	te.call("GET", "/api/v1/audit?type="+string(gatehouse.EventTrustChanged), te.admin, nil, 200, &evs)
	deleted := 0
	for _, ev := range evs.Items {
		if strings.HasPrefix(ev.Detail, "deleted ") && strings.Contains(ev.Detail, " was deleted;") {
			deleted++
		}
	}
	if deleted != 3 {
		t.Errorf("%d audit events of a policy deleted with its subject, want 3: %+v", deleted, evs.Items)
	}
}
