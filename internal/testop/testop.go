// Package testop runs a real OpenID provider inside a test: the OP of
// github.com/zitadel/oidc (discovery, JWKS, authorization code flow with
// PKCE, refresh tokens with rotation, userinfo, end session) over
// httptest, on a small in-memory user store. Tests use it to log in
// through SSO for real, and to change what the provider says: a user's
// groups, a deleted user, a provider that cannot be reached, and tokens
// that a misbehaving or hostile provider would issue (another issuer,
// audience or nonce, an expired token, an unadvertised algorithm).
//
// The login step at the provider is a small form (username, submit), or
// with AutoLogin answered at once as one user, so that an HTTP client
// following redirects completes the flow. The device authorization grant
// (RFC 8628) has its verification page at /device: a form with the user
// code, the username and Approve or Deny.
package testop

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/google/uuid"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
	"golang.org/x/text/language"
)

// User is a user of the provider.
type User struct {
	ID            string // the sub claim
	Email         string
	EmailVerified bool
	// EmailVerifiedClaim, when not nil, is sent as email_verified instead
	// of EmailVerified (a provider that sends a string, as Cognito does,
	// or a number); OmitEmailVerified leaves the claim out.
	EmailVerifiedClaim any
	OmitEmailVerified  bool
	Groups             []string
}

// Options configure a provider. The client is a confidential web client
// with the authorization code and refresh token grants.
type Options struct {
	ClientID     string
	ClientSecret string
	// RedirectURIs and PostLogoutRedirectURIs may also be set later
	// (the relying party's address is often known only after the
	// provider's).
	RedirectURIs           []string
	PostLogoutRedirectURIs []string
}

// Tamper makes the provider misbehave in the tokens it issues from now on.
type Tamper struct {
	Issuer string // the iss of tokens (discovery keeps the real one)
	// Audience: ID tokens are issued to this client instead of the
	// relying party's (aud and azp), after the code exchange itself
	// checked the relying party.
	Audience        string
	Nonce           string        // the nonce of ID tokens
	IDTokenLifetime time.Duration // e.g. negative: already expired
	// SignES256 signs with an EC key while discovery advertises RS256
	// only: an algorithm the relying party was not told to expect.
	SignES256 bool
	// EmailInUserinfoOnly leaves the email claims out of ID tokens: the
	// relying party finds them only at the userinfo endpoint.
	EmailInUserinfoOnly bool
	// UserinfoDown makes the userinfo endpoint fail.
	UserinfoDown bool
	// IDTokenEmail, when set, is the email of ID tokens, without an
	// email_verified claim, while the userinfo endpoint keeps saying the
	// user's own (verified) email: the two disagree.
	IDTokenEmail string
}

// Provider is a running OpenID provider.
type Provider struct {
	Issuer string
	srv    *httptest.Server
	op     *op.Provider
	st     *storage
	down   atomic.Bool
}

// New starts a provider; it stops when the test ends.
func New(t testing.TB, o Options) *Provider {
	t.Helper()
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	st := &storage{
		users:    map[string]*User{},
		devices:  map[string]*device{},
		requests: map[string]*authRequest{},
		codes:    map[string]string{},
		access:   map[string]*accessToken{},
		refresh:  map[string]*refreshToken{},
		client: &client{id: o.ClientID, secret: o.ClientSecret,
			redirects: o.RedirectURIs, postLogout: o.PostLogoutRedirectURIs, device: true},
		rsa: signingKey{id: "rsa-" + uuid.NewString(), alg: jose.RS256, key: rsaKey, pub: &rsaKey.PublicKey},
		ec:  signingKey{id: "ec-" + uuid.NewString(), alg: jose.ES256, key: ecKey, pub: &ecKey.PublicKey},
	}
	p := &Provider{st: st}
	mux := http.NewServeMux()
	p.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if p.down.Load() {
			// Unreachable: the connection closes without an answer.
			if hj, ok := w.(http.Hijacker); ok {
				if c, _, err := hj.Hijack(); err == nil {
					c.Close()
					return
				}
			}
			panic(http.ErrAbortHandler)
		}
		mux.ServeHTTP(w, r)
	}))
	p.srv.Start()
	t.Cleanup(p.srv.Close)
	p.Issuer = p.srv.URL

	issuer := func(insecure bool) (op.IssuerFromRequest, error) {
		return func(r *http.Request) string {
			if iss := st.tamper().Issuer; iss != "" && r.URL.Path == "/oauth/token" {
				return iss
			}
			return p.Issuer
		}, nil
	}
	cfg := &op.Config{
		CryptoKey:                [32]byte{1, 2, 3},
		DefaultLogoutRedirectURI: "/logged-out",
		CodeMethodS256:           true,
		AuthMethodPost:           true,
		GrantTypeRefreshToken:    true,
		SupportedUILocales:       []language.Tag{language.English},
		SupportedScopes:          []string{oidc.ScopeOpenID, oidc.ScopeProfile, oidc.ScopeEmail, oidc.ScopeOfflineAccess, "groups"},
		DeviceAuthorization: op.DeviceAuthorizationConfig{
			Lifetime: 5 * time.Minute, PollInterval: time.Second,
			UserFormPath: "/device", UserCode: op.UserCodeBase20,
		},
	}
	p.op, err = op.NewProvider(cfg, st, issuer, op.WithAllowInsecure())
	if err != nil {
		t.Fatal(err)
	}
	callback := op.AuthCallbackURL(p.op)
	intercept := op.NewIssuerInterceptor(p.op.IssuerFromRequest)
	mux.Handle("/login", intercept.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.login(w, r, callback)
	}))
	mux.Handle("/device", intercept.HandlerFunc(p.devicePage))
	mux.HandleFunc("/logged-out", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "signed out") })
	mux.Handle("/", p.op)
	return p
}

// Client is an HTTP client for the provider's address, for the relying
// party under test.
func (p *Provider) Client() *http.Client {
	c := p.srv.Client()
	c.Timeout = 5 * time.Second
	return c
}

// SetRedirectURIs registers the client's redirect and post-logout URIs.
func (p *Provider) SetRedirectURIs(redirects, postLogout []string) {
	p.st.mu.Lock()
	defer p.st.mu.Unlock()
	p.st.client.redirects, p.st.client.postLogout = redirects, postLogout
}

// AddUser adds or replaces a user.
func (p *Provider) AddUser(u User) {
	p.st.mu.Lock()
	defer p.st.mu.Unlock()
	u.Groups = slices.Clone(u.Groups)
	p.st.users[u.ID] = &u
}

// SetGroups changes a user's groups.
func (p *Provider) SetGroups(id string, groups ...string) {
	p.st.mu.Lock()
	defer p.st.mu.Unlock()
	if u := p.st.users[id]; u != nil {
		u.Groups = slices.Clone(groups)
	}
}

// DeleteUser removes a user and every token the provider issued to it:
// its refresh tokens are refused from now on (invalid_grant).
func (p *Provider) DeleteUser(id string) {
	p.st.mu.Lock()
	defer p.st.mu.Unlock()
	delete(p.st.users, id)
	for k, rt := range p.st.refresh {
		if rt.subject == id {
			delete(p.st.refresh, k)
		}
	}
	for k, at := range p.st.access {
		if at.subject == id {
			delete(p.st.access, k)
		}
	}
}

// SetDown makes the provider unreachable (every connection is closed
// without an answer) or reachable again.
func (p *Provider) SetDown(down bool) {
	p.down.Store(down)
	if down {
		p.srv.CloseClientConnections()
	}
}

// SetDeviceGrant gives the client the device authorization grant (RFC
// 8628; it has it at the start) or takes it away: then the provider
// refuses device logins for it (unauthorized_client), as most providers
// do until an administrator enables the grant for a client.
func (p *Provider) SetDeviceGrant(on bool) {
	p.st.mu.Lock()
	defer p.st.mu.Unlock()
	p.st.client.device = on
}

// AutoLogin answers the login step at once as the user id ("" shows the
// form again).
func (p *Provider) AutoLogin(id string) {
	p.st.mu.Lock()
	defer p.st.mu.Unlock()
	p.st.auto = id
}

// SetTamper makes the provider misbehave (the zero Tamper: behave).
func (p *Provider) SetTamper(t Tamper) {
	p.st.mu.Lock()
	defer p.st.mu.Unlock()
	p.st.tampering = t
}

// Refreshes counts the refresh grants the provider answered.
func (p *Provider) Refreshes() int { return int(p.st.refreshes.Load()) }

// RefreshAttempts counts the refresh grants asked for, refused ones
// (a spent or unknown refresh token) included.
func (p *Provider) RefreshAttempts() int { return int(p.st.attempts.Load()) }

// RefreshTokens returns every refresh token the provider has issued and
// not yet rotated away (for tests that look for them where they must not
// be).
func (p *Provider) RefreshTokens() []string {
	p.st.mu.Lock()
	defer p.st.mu.Unlock()
	var out []string
	for k := range p.st.refresh {
		out = append(out, k)
	}
	return out
}

var loginPage = template.Must(template.New("login").Parse(`<!doctype html>
<html><head><title>Test IdP login</title></head><body>
<h1>Test identity provider</h1>
<form method="post" action="/login">
<input type="hidden" name="id" value="{{.ID}}">
<label for="username">Username</label> <input id="username" name="username">
<button id="idp-login" type="submit">Sign in</button>
{{with .Error}}<p id="error">{{.}}</p>{{end}}
</form></body></html>`))

// login is the provider's login step: it authenticates the user (by
// name; this provider trusts whoever types it) and sends the browser
// back to the OP's callback, which redirects to the relying party.
func (p *Provider) login(w http.ResponseWriter, r *http.Request, callback func(context.Context, string) string) {
	if err := r.ParseForm(); err != nil {
		http.Error(w, "bad form", http.StatusBadRequest)
		return
	}
	id := r.Form.Get("authRequestID")
	if r.Method == http.MethodPost {
		id = r.PostForm.Get("id")
	}
	user := r.PostForm.Get("username")
	if r.Method == http.MethodGet {
		p.st.mu.Lock()
		user = p.st.auto
		p.st.mu.Unlock()
		if user == "" {
			_ = loginPage.Execute(w, map[string]string{"ID": id})
			return
		}
	}
	if err := p.st.done(id, user); err != nil {
		w.WriteHeader(http.StatusUnauthorized)
		_ = loginPage.Execute(w, map[string]string{"ID": id, "Error": err.Error()})
		return
	}
	http.Redirect(w, r, callback(r.Context(), id), http.StatusFound)
}

// ---- storage

type signingKey struct {
	id  string
	alg jose.SignatureAlgorithm
	key any
	pub any
}

func (k *signingKey) SignatureAlgorithm() jose.SignatureAlgorithm { return k.alg }
func (k *signingKey) Key() any                                    { return k.key }
func (k *signingKey) ID() string                                  { return k.id }

type publicKey struct{ k *signingKey }

func (k publicKey) ID() string                         { return k.k.id }
func (k publicKey) Algorithm() jose.SignatureAlgorithm { return k.k.alg }
func (k publicKey) Use() string                        { return "sig" }
func (k publicKey) Key() any                           { return k.k.pub }

type storage struct {
	mu        sync.Mutex
	users     map[string]*User
	devices   map[string]*device // by device code
	requests  map[string]*authRequest
	codes     map[string]string // code -> request id
	access    map[string]*accessToken
	refresh   map[string]*refreshToken
	client    *client
	auto      string
	tampering Tamper
	rsa, ec   signingKey
	refreshes atomic.Int64
	attempts  atomic.Int64
}

var _ op.Storage = (*storage)(nil)

func (s *storage) tamper() Tamper {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tampering
}

func (s *storage) done(id, user string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	req, ok := s.requests[id]
	if !ok {
		return errors.New("login request not found")
	}
	if _, ok := s.users[user]; !ok {
		return errors.New("no such user")
	}
	req.subject, req.isDone, req.authTime = user, true, time.Now()
	return nil
}

type authRequest struct {
	id, clientID, redirect, state, nonce string
	scopes                               []string
	responseType                         oidc.ResponseType
	responseMode                         oidc.ResponseMode
	challenge                            *oidc.CodeChallenge
	subject                              string
	isDone                               bool
	authTime                             time.Time
	tamper                               Tamper
	// byCode counts GetClientID calls since the request was found by its
	// code: the first is the exchange's own check of the client.
	byCode int
}

func (a *authRequest) GetID() string          { return a.id }
func (a *authRequest) GetACR() string         { return "" }
func (a *authRequest) GetAMR() []string       { return []string{"pwd"} }
func (a *authRequest) GetAuthTime() time.Time { return a.authTime }
func (a *authRequest) GetClientID() string {
	if a.tamper.Audience != "" && a.byCode > 0 {
		if a.byCode++; a.byCode > 2 {
			return a.tamper.Audience
		}
	}
	return a.clientID
}
func (a *authRequest) GetCodeChallenge() *oidc.CodeChallenge {
	return a.challenge
}
func (a *authRequest) GetRedirectURI() string             { return a.redirect }
func (a *authRequest) GetResponseType() oidc.ResponseType { return a.responseType }
func (a *authRequest) GetResponseMode() oidc.ResponseMode { return a.responseMode }
func (a *authRequest) GetScopes() []string                { return a.scopes }
func (a *authRequest) GetState() string                   { return a.state }
func (a *authRequest) GetSubject() string                 { return a.subject }
func (a *authRequest) Done() bool                         { return a.isDone }
func (a *authRequest) GetAudience() []string {
	if a.tamper.Audience != "" {
		return []string{a.tamper.Audience}
	}
	return []string{a.clientID}
}
func (a *authRequest) GetNonce() string {
	if a.tamper.Nonce != "" {
		return a.tamper.Nonce
	}
	return a.nonce
}

type accessToken struct {
	id, subject, clientID string
	scopes                []string
	expires               time.Time
}

type refreshToken struct {
	token, subject, clientID string
	scopes, amr              []string
	authTime                 time.Time
	tamper                   Tamper
}

func (r *refreshToken) GetAMR() []string       { return r.amr }
func (r *refreshToken) GetAuthTime() time.Time { return r.authTime }
func (r *refreshToken) GetClientID() string    { return r.clientID }
func (r *refreshToken) GetScopes() []string    { return r.scopes }
func (r *refreshToken) GetSubject() string     { return r.subject }
func (r *refreshToken) SetCurrentScopes(s []string) {
	r.scopes = s
}
func (r *refreshToken) GetAudience() []string {
	if r.tamper.Audience != "" {
		return []string{r.tamper.Audience}
	}
	return []string{r.clientID}
}

func (s *storage) CreateAuthRequest(_ context.Context, req *oidc.AuthRequest, userID string) (op.AuthRequest, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := &authRequest{
		id: uuid.NewString(), clientID: req.ClientID, redirect: req.RedirectURI, state: req.State,
		nonce: req.Nonce, scopes: req.Scopes, responseType: req.ResponseType, responseMode: req.ResponseMode,
		subject: userID, tamper: s.tampering,
	}
	if req.CodeChallenge != "" {
		a.challenge = &oidc.CodeChallenge{Challenge: req.CodeChallenge, Method: req.CodeChallengeMethod}
	}
	s.requests[a.id] = a
	return a, nil
}

func (s *storage) AuthRequestByID(_ context.Context, id string) (op.AuthRequest, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.requests[id]
	if !ok {
		return nil, errors.New("request not found")
	}
	a.tamper = s.tampering
	return a, nil
}

func (s *storage) AuthRequestByCode(ctx context.Context, code string) (op.AuthRequest, error) {
	s.mu.Lock()
	id, ok := s.codes[code]
	s.mu.Unlock()
	if !ok {
		return nil, errors.New("code invalid or expired")
	}
	req, err := s.AuthRequestByID(ctx, id)
	if a, ok := req.(*authRequest); ok {
		a.byCode = 1
	}
	return req, err
}

func (s *storage) SaveAuthCode(_ context.Context, id, code string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.codes[code] = id
	return nil
}

func (s *storage) DeleteAuthRequest(_ context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.requests, id)
	for code, rid := range s.codes {
		if rid == id {
			delete(s.codes, code) // a code works once
		}
	}
	return nil
}

func (s *storage) newAccess(subject, clientID string, scopes []string) *accessToken {
	at := &accessToken{id: uuid.NewString(), subject: subject, clientID: clientID, scopes: scopes, expires: time.Now().Add(5 * time.Minute)}
	s.access[at.id] = at
	return at
}

func (s *storage) CreateAccessToken(_ context.Context, req op.TokenRequest) (string, time.Time, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	clientID := ""
	switch r := req.(type) {
	case *authRequest:
		clientID = r.clientID
	case *op.DeviceAuthorizationState:
		clientID = r.ClientID
	}
	at := s.newAccess(req.GetSubject(), clientID, req.GetScopes())
	return at.id, at.expires, nil
}

func (s *storage) CreateAccessAndRefreshTokens(_ context.Context, req op.TokenRequest, current string) (string, string, time.Time, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var rt *refreshToken
	switch r := req.(type) {
	case *authRequest:
		rt = &refreshToken{subject: r.subject, clientID: r.clientID, scopes: r.scopes, amr: r.GetAMR(), authTime: r.authTime}
	case *op.DeviceAuthorizationState:
		rt = &refreshToken{subject: r.Subject, clientID: r.ClientID, scopes: r.Scopes, amr: r.AMR, authTime: r.AuthTime}
	case *refreshToken:
		old, ok := s.refresh[current]
		if !ok {
			return "", "", time.Time{}, errors.New("invalid refresh token")
		}
		delete(s.refresh, current) // rotation: the old one is spent
		rt = old
		s.refreshes.Add(1)
	default:
		return "", "", time.Time{}, errors.New("unsupported token request")
	}
	if _, ok := s.users[rt.subject]; !ok {
		return "", "", time.Time{}, errors.New("user not found")
	}
	rt.token = "rt-" + uuid.NewString()
	s.refresh[rt.token] = rt
	at := s.newAccess(rt.subject, rt.clientID, rt.scopes)
	return at.id, rt.token, at.expires, nil
}

func (s *storage) TokenRequestByRefreshToken(_ context.Context, token string) (op.RefreshTokenRequest, error) {
	s.attempts.Add(1)
	s.mu.Lock()
	defer s.mu.Unlock()
	rt, ok := s.refresh[token]
	if !ok {
		return nil, errors.New("invalid refresh token")
	}
	cp := *rt
	cp.tamper = s.tampering
	return &cp, nil
}

func (s *storage) TerminateSession(context.Context, string, string) error { return nil }

func (s *storage) RevokeToken(_ context.Context, token, _, _ string) *oidc.Error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.access, token)
	delete(s.refresh, token)
	return nil
}

func (s *storage) GetRefreshTokenInfo(_ context.Context, _ string, token string) (string, string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rt, ok := s.refresh[token]
	if !ok {
		return "", "", op.ErrInvalidRefreshToken
	}
	return rt.subject, rt.token, nil
}

func (s *storage) SigningKey(context.Context) (op.SigningKey, error) {
	if s.tamper().SignES256 {
		return &s.ec, nil
	}
	return &s.rsa, nil
}

// SignatureAlgorithms is what discovery advertises: RS256 only.
func (s *storage) SignatureAlgorithms(context.Context) ([]jose.SignatureAlgorithm, error) {
	return []jose.SignatureAlgorithm{jose.RS256}, nil
}

func (s *storage) KeySet(context.Context) ([]op.Key, error) {
	return []op.Key{publicKey{&s.rsa}, publicKey{&s.ec}}, nil
}

func (s *storage) GetClientByClientID(_ context.Context, id string) (op.Client, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if id != s.client.id {
		return nil, errors.New("client not found")
	}
	c := *s.client
	c.lifetime = s.tampering.IDTokenLifetime
	return &c, nil
}

func (s *storage) AuthorizeClientIDSecret(_ context.Context, id, secret string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if id != s.client.id || secret != s.client.secret {
		return errors.New("invalid client")
	}
	return nil
}

func (s *storage) SetUserinfoFromScopes(context.Context, *oidc.UserInfo, string, string, []string) error {
	return nil
}

func (s *storage) SetUserinfoFromRequest(_ context.Context, info *oidc.UserInfo, req op.IDTokenRequest, scopes []string) error {
	if s.tamper().EmailInUserinfoOnly {
		scopes = slices.DeleteFunc(slices.Clone(scopes), func(sc string) bool { return sc == oidc.ScopeEmail })
	}
	if err := s.userinfo(info, req.GetSubject(), scopes); err != nil {
		return err
	}
	if e := s.tamper().IDTokenEmail; e != "" {
		info.Email = e
		delete(info.Claims, "email_verified")
	}
	return nil
}

func (s *storage) userinfo(info *oidc.UserInfo, subject string, scopes []string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, ok := s.users[subject]
	if !ok {
		return errors.New("user not found")
	}
	info.Subject = u.ID
	for _, sc := range scopes {
		switch sc {
		case oidc.ScopeEmail:
			if u.Email != "" {
				info.Email = u.Email
				// Said either way (the struct field leaves out false).
				switch {
				case u.OmitEmailVerified:
				case u.EmailVerifiedClaim != nil:
					info.AppendClaims("email_verified", u.EmailVerifiedClaim)
				default:
					info.AppendClaims("email_verified", u.EmailVerified)
				}
			}
		case oidc.ScopeProfile:
			info.PreferredUsername = u.ID
		case "groups":
			info.AppendClaims("groups", slices.Clone(u.Groups))
		}
	}
	return nil
}

func (s *storage) SetUserinfoFromToken(_ context.Context, info *oidc.UserInfo, tokenID, _, _ string) error {
	if s.tamper().UserinfoDown {
		return errors.New("userinfo is down")
	}
	s.mu.Lock()
	at, ok := s.access[tokenID]
	s.mu.Unlock()
	if !ok || time.Now().After(at.expires) {
		return errors.New("token is invalid or has expired")
	}
	return s.userinfo(info, at.subject, at.scopes)
}

func (s *storage) SetIntrospectionFromToken(context.Context, *oidc.IntrospectionResponse, string, string, string) error {
	return errors.New("introspection is not supported")
}

func (s *storage) GetPrivateClaimsFromScopes(context.Context, string, string, []string) (map[string]any, error) {
	return nil, nil
}

func (s *storage) GetKeyByIDAndClientID(context.Context, string, string) (*jose.JSONWebKey, error) {
	return nil, errors.New("no keys")
}

func (s *storage) ValidateJWTProfileScopes(_ context.Context, _ string, scopes []string) ([]string, error) {
	return scopes, nil
}

func (s *storage) Health(context.Context) error { return nil }

// ---- client

type client struct {
	id, secret            string
	redirects, postLogout []string
	lifetime              time.Duration
	device                bool // has the device authorization grant
}

func (c *client) GetID() string                       { return c.id }
func (c *client) RedirectURIs() []string              { return c.redirects }
func (c *client) PostLogoutRedirectURIs() []string    { return c.postLogout }
func (c *client) ApplicationType() op.ApplicationType { return op.ApplicationTypeWeb }
func (c *client) AuthMethod() oidc.AuthMethod         { return oidc.AuthMethodBasic }
func (c *client) ResponseTypes() []oidc.ResponseType {
	return []oidc.ResponseType{oidc.ResponseTypeCode}
}
func (c *client) LoginURL(id string) string            { return "/login?authRequestID=" + id }
func (c *client) AccessTokenType() op.AccessTokenType  { return op.AccessTokenTypeBearer }
func (c *client) DevMode() bool                        { return true }
func (c *client) IsScopeAllowed(scope string) bool     { return scope == "groups" }
func (c *client) IDTokenUserinfoClaimsAssertion() bool { return true }
func (c *client) ClockSkew() time.Duration             { return 0 }
func (c *client) GrantTypes() []oidc.GrantType {
	if c.device {
		return []oidc.GrantType{oidc.GrantTypeCode, oidc.GrantTypeRefreshToken, oidc.GrantTypeDeviceCode}
	}
	return []oidc.GrantType{oidc.GrantTypeCode, oidc.GrantTypeRefreshToken}
}
func (c *client) IDTokenLifetime() time.Duration {
	if c.lifetime != 0 {
		return c.lifetime
	}
	return time.Hour
}
func (c *client) RestrictAdditionalIdTokenScopes() func([]string) []string {
	return func(s []string) []string { return s }
}
func (c *client) RestrictAdditionalAccessTokenScopes() func([]string) []string {
	return func(s []string) []string { return s }
}

// ---- device authorization grant (RFC 8628)

var _ op.DeviceAuthorizationStorage = (*storage)(nil)

// device is a device login: waiting for the user, approved or denied,
// and consumed once its tokens were issued (a device code is good for
// one set of tokens, as at any provider).
type device struct {
	userCode string
	state    op.DeviceAuthorizationState
	consumed bool
}

func (s *storage) StoreDeviceAuthorization(_ context.Context, clientID, deviceCode, userCode string, expires time.Time, scopes []string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, d := range s.devices {
		if d.userCode == userCode {
			return op.ErrDuplicateUserCode
		}
	}
	s.devices[deviceCode] = &device{userCode: userCode, state: op.DeviceAuthorizationState{
		ClientID: clientID, Scopes: slices.Clone(scopes), Expires: expires,
	}}
	return nil
}

func (s *storage) GetDeviceAuthorizatonState(_ context.Context, clientID, deviceCode string) (*op.DeviceAuthorizationState, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d, ok := s.devices[deviceCode]
	if !ok || d.state.ClientID != clientID || d.consumed {
		return nil, errors.New("no such device login")
	}
	st := d.state
	if st.Done {
		d.consumed = true
	}
	return &st, nil
}

// finishDevice approves (as user) or denies the device login of a user
// code.
func (s *storage) finishDevice(userCode, user string, approve bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, d := range s.devices {
		if d.userCode != userCode || d.consumed || d.state.Done || d.state.Denied || time.Now().After(d.state.Expires) {
			continue
		}
		if !approve {
			d.state.Denied = true
			return nil
		}
		if _, ok := s.users[user]; !ok {
			return errors.New("no such user")
		}
		d.state.Done, d.state.Subject, d.state.AuthTime, d.state.AMR = true, user, time.Now(), []string{"pwd"}
		return nil
	}
	return errors.New("no device login waits for this code")
}

var devicePage = template.Must(template.New("device").Parse(`<!doctype html>
<html><head><title>Test IdP device login</title></head><body>
<h1>Test identity provider: log in a device</h1>
<form method="post" action="/device">
<label for="user_code">Code</label> <input id="user_code" name="user_code" value="{{.Code}}">
<label for="username">Username</label> <input id="username" name="username">
<button id="device-approve" name="action" value="approve" type="submit">Approve</button>
<button id="device-deny" name="action" value="deny" type="submit">Deny</button>
{{with .Error}}<p id="error">{{.}}</p>{{end}}
{{with .Done}}<p id="done">{{.}}</p>{{end}}
</form></body></html>`))

// devicePage is the provider's verification page: the user enters the
// code the device shows, logs in (by name; this provider trusts whoever
// types it) and approves or denies the device.
func (p *Provider) devicePage(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		http.Error(w, "bad form", http.StatusBadRequest)
		return
	}
	if r.Method != http.MethodPost {
		_ = devicePage.Execute(w, map[string]string{"Code": r.Form.Get("user_code")})
		return
	}
	code, approve := r.PostForm.Get("user_code"), r.PostForm.Get("action") == "approve"
	if err := p.st.finishDevice(code, r.PostForm.Get("username"), approve); err != nil {
		w.WriteHeader(http.StatusBadRequest)
		_ = devicePage.Execute(w, map[string]string{"Code": code, "Error": err.Error()})
		return
	}
	done := "The device is logged in; you can close this page."
	if !approve {
		done = "The device login was denied."
	}
	_ = devicePage.Execute(w, map[string]string{"Done": done})
}
