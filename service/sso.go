package service

import (
	"context"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/internal/loopback"
	"github.com/gatehouse/gatehouse/internal/seal"
)

// SSO: login through an OpenID Connect provider (authorization code flow
// with PKCE, state and nonce). Discovery, the provider's keys and every
// check of an ID token (signature and its algorithm, issuer, audience,
// expiry) are go-oidc's; the code exchange and refreshes are x/oauth2's.
// This file holds what Gatehouse decides: who the user is, which account
// that is, and what its groups are.

// SSOOptions configures OIDC login. The zero Capabilities means login and
// apiKey.
type SSOOptions struct {
	Name         string // the login button's label
	Issuer       string
	ClientID     string
	ClientSecret string
	RedirectURL  string // <this server>/auth/callback, registered at the provider
	Scopes       []string
	// UsernameClaim holds the username (default email; sub when a token
	// lacks it); GroupsClaim the groups (default groups).
	UsernameClaim string
	GroupsClaim   string
	// GroupsRefreshInterval is how often the groups of an account whose
	// login gave a refresh token are refreshed in the background (default
	// 1h); GroupsMaxAge how long after the provider last confirmed them an
	// account's tokens are still accepted (default 24h).
	GroupsRefreshInterval time.Duration
	GroupsMaxAge          time.Duration
	// Capabilities of an account created by its first login.
	Capabilities []gatehouse.Capability
	// DeviceLogin offers login with the device authorization grant
	// (RFC 8628; gatehouse login --sso-device) when the provider does.
	DeviceLogin bool
	// HTTPClient talks to the provider; default a client with a 10s
	// timeout.
	HTTPClient *http.Client
}

// Defaults of SSOOptions.
const (
	DefaultGroupsRefreshInterval = time.Hour
	DefaultGroupsMaxAge          = 24 * time.Hour
)

// ssoClient is the configured provider, discovered on first use (so that
// a provider that is down when the server starts delays SSO logins, not
// the server).
type ssoClient struct {
	o     SSOOptions
	seal  sealer
	http  *http.Client
	caps  []gatehouse.Capability
	every time.Duration // GroupsRefreshInterval

	mu         sync.Mutex
	provider   *oidc.Provider
	verifier   *oidc.IDTokenVerifier
	oauth      oauth2.Config
	endSession string

	devicePolls chan struct{} // questions about device logins in flight
	devices     *deviceTracker
	starts      addressLimiter
}

func newSSOClient(o SSOOptions, r io.Reader) (*ssoClient, error) {
	switch {
	case o.Issuer == "", o.ClientID == "", o.ClientSecret == "", o.RedirectURL == "":
		return nil, fmt.Errorf("service: SSO needs an issuer, a client ID, a client secret and a redirect URL")
	}
	if o.UsernameClaim == "" {
		o.UsernameClaim = "email"
	}
	if o.GroupsClaim == "" {
		o.GroupsClaim = "groups"
	}
	if len(o.Scopes) == 0 {
		o.Scopes = []string{oidc.ScopeOpenID, "profile", "email", "groups", oidc.ScopeOfflineAccess}
	}
	if !slices.Contains(o.Scopes, oidc.ScopeOpenID) {
		o.Scopes = append([]string{oidc.ScopeOpenID}, o.Scopes...)
	}
	if o.Name == "" {
		o.Name = "SSO"
	}
	caps := o.Capabilities
	if caps == nil {
		caps = []gatehouse.Capability{gatehouse.CapLogin, gatehouse.CapAPIKey}
	}
	caps, err := checkCapabilities(caps)
	if err != nil {
		return nil, err
	}
	if !slices.Contains(caps, gatehouse.CapLogin) {
		return nil, fmt.Errorf("service: SSO accounts need the login capability")
	}
	hc := o.HTTPClient
	if hc == nil {
		hc = &http.Client{Timeout: 10 * time.Second}
	}
	return &ssoClient{
		o: o, seal: sealer{seal.Sealer{Secret: []byte(o.ClientSecret), Rand: r}}, http: hc, caps: caps,
		every:       orDur(o.GroupsRefreshInterval, DefaultGroupsRefreshInterval),
		devicePolls: make(chan struct{}, maxDevicePolls),
		devices:     newDeviceTracker(),
		starts:      addressLimiter{limit: deviceStartsPerMinute},
	}, nil
}

// ctx carries the provider's HTTP client to go-oidc and x/oauth2.
func (c *ssoClient) ctx(ctx context.Context) context.Context {
	return oidc.ClientContext(ctx, c.http)
}

// discover returns the provider, discovering it on first use.
func (c *ssoClient) discover(ctx context.Context) (*oidc.Provider, *oidc.IDTokenVerifier, oauth2.Config, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.provider != nil {
		return c.provider, c.verifier, c.oauth, nil
	}
	// The key set go-oidc keeps uses this context for later fetches:
	// it must outlive the request.
	p, err := oidc.NewProvider(c.ctx(context.WithoutCancel(ctx)), c.o.Issuer)
	if err != nil {
		return nil, nil, oauth2.Config{}, &gatehouse.Error{Code: gatehouse.EUNAVAILABLE,
			Message: "the identity provider cannot be reached; try again shortly", Err: fmt.Errorf("OIDC discovery: %w", err)}
	}
	var meta struct {
		EndSession  string   `json:"end_session_endpoint"`
		AuthMethods []string `json:"token_endpoint_auth_methods_supported"`
	}
	_ = p.Claims(&meta) // optional
	c.provider = p
	// go-oidc accepts only the asymmetric algorithms the provider
	// advertises (never none or HS256), checks issuer and audience, and
	// the expiry against the wall clock, as the provider's own.
	c.verifier = p.Verifier(&oidc.Config{ClientID: c.o.ClientID})
	c.oauth = oauth2.Config{
		ClientID:     c.o.ClientID,
		ClientSecret: c.o.ClientSecret,
		Endpoint:     p.Endpoint(),
		RedirectURL:  c.o.RedirectURL,
		Scopes:       c.o.Scopes,
	}
	// The client authenticates as the provider says it may (HTTP Basic,
	// the default of OpenID Connect Discovery, unless only
	// client_secret_post is offered), instead of x/oauth2 probing one way
	// and then the other with a second request.
	c.oauth.Endpoint.AuthStyle = oauth2.AuthStyleInHeader
	if len(meta.AuthMethods) > 0 && !slices.Contains(meta.AuthMethods, "client_secret_basic") && slices.Contains(meta.AuthMethods, "client_secret_post") {
		c.oauth.Endpoint.AuthStyle = oauth2.AuthStyleInParams
	}
	if u, err := url.Parse(meta.EndSession); err == nil && (u.Scheme == "https" || u.Scheme == "http") && u.Host != "" {
		c.endSession = meta.EndSession
	}
	return c.provider, c.verifier, c.oauth, nil
}

// SSOName is the label of the SSO login button, "" when SSO is off.
func (s *Service) SSOName() string {
	if s.sso == nil {
		return ""
	}
	return s.sso.o.Name
}

// SSOStartRequest asks for a login. A CLI login names the loopback port
// the CLI listens on and its public key (see internal/loopback).
type SSOStartRequest struct {
	CLIPort int
	CLIKey  string
}

// SSOStart is where the browser goes to log in, and the sealed state it
// carries in a cookie until the callback.
type SSOStart struct {
	URL   string
	State string
}

// errSSOOff answers SSO requests on a server without it.
var errSSOOff = gatehouse.Errorf(gatehouse.ENOTFOUND, "SSO login is not configured on this server")

// StartSSO begins a login: a fresh state, nonce and PKCE verifier, sealed
// for the browser, and the provider's authorization URL.
func (s *Service) StartSSO(ctx context.Context, req SSOStartRequest) (SSOStart, error) {
	if s.sso == nil {
		return SSOStart{}, errSSOOff
	}
	if req.CLIPort != 0 || req.CLIKey != "" {
		if req.CLIPort < 1024 || req.CLIPort > 65535 {
			return SSOStart{}, gatehouse.Errorf(gatehouse.EINVALID, "cli_port must be a port from 1024 to 65535")
		}
		if _, err := loopback.ParsePublic(req.CLIKey); err != nil {
			return SSOStart{}, gatehouse.Errorf(gatehouse.EINVALID, "cli_key must be the CLI's X25519 public key, base64url")
		}
	}
	_, _, cfg, err := s.sso.discover(ctx)
	if err != nil {
		return SSOStart{}, err
	}
	state, err := s.randomString(32)
	if err != nil {
		return SSOStart{}, err
	}
	nonce, err := s.randomString(32)
	if err != nil {
		return SSOStart{}, err
	}
	verifier := oauth2.GenerateVerifier()
	sealed, err := s.sso.seal.sealState(loginState{
		State: state, Nonce: nonce, Verifier: verifier,
		Expires: s.now().Add(stateTTL).UnixMilli(),
		CLIPort: req.CLIPort, CLIKey: req.CLIKey,
	})
	if err != nil {
		return SSOStart{}, gatehouse.Internal(err)
	}
	u := cfg.AuthCodeURL(state, oidc.Nonce(nonce), oauth2.S256ChallengeOption(verifier))
	return SSOStart{URL: u, State: sealed}, nil
}

// SSOStateTTL is how long a started login waits for its callback.
func SSOStateTTL() time.Duration { return stateTTL }

// SSOCallback is what the provider sent back to the redirect URL.
type SSOCallback struct {
	Code, State      string
	Error, ErrorDesc string
}

// SSOResult is a finished login: the session of a browser login, or a
// CLI login waiting for the browser's user to confirm it.
type SSOResult struct {
	Session gatehouse.NewToken
	CLI     *SSOCLIConsent
}

// errSSOState answers a callback whose state is missing, expired, made
// for another browser or does not match.
var errSSOState = gatehouse.Errorf(gatehouse.EUNAUTHORIZED, "this login expired or was started in another browser; start the login again")

var providerError = regexp.MustCompile(`^[a-z_]{1,64}$`)

// FinishSSO completes a login at the callback. The state must be the one
// sealed into the browser's cookie; the code is exchanged with the PKCE
// verifier; the ID token must verify and carry the login's nonce. Then
// the user's account is created or updated and a session minted.
func (s *Service) FinishSSO(ctx context.Context, sealedState string, cb SSOCallback, remoteAddr string) (SSOResult, error) {
	if s.sso == nil {
		return SSOResult{}, errSSOOff
	}
	st, ok := s.sso.seal.openState(sealedState, s.now())
	if !ok || subtle.ConstantTimeCompare([]byte(cb.State), []byte(st.State)) != 1 {
		s.metrics.login("sso_refused")
		return SSOResult{}, errSSOState
	}
	if cb.Error != "" {
		s.metrics.login("sso_refused")
		return SSOResult{}, gatehouse.Errorf(gatehouse.EUNAUTHORIZED, "the identity provider did not log you in (%s)", oauthCode(cb.Error))
	}
	if cb.Code == "" {
		return SSOResult{}, gatehouse.Errorf(gatehouse.EINVALID, "the callback carries no code")
	}
	p, verifier, cfg, err := s.sso.discover(ctx)
	if err != nil {
		return SSOResult{}, err
	}
	pctx := s.sso.ctx(ctx)
	tok, err := cfg.Exchange(pctx, cb.Code, oauth2.VerifierOption(st.Verifier))
	if err != nil {
		s.metrics.login("sso_refused")
		return SSOResult{}, providerRefusal("exchanging the code", err)
	}
	rawID, _ := tok.Extra("id_token").(string)
	if rawID == "" {
		return SSOResult{}, gatehouse.Errorf(gatehouse.EUNAUTHORIZED, "the identity provider sent no ID token (is the openid scope configured?)")
	}
	idt, err := verifier.Verify(pctx, rawID)
	if err != nil {
		s.metrics.login("sso_refused")
		return SSOResult{}, &gatehouse.Error{Code: gatehouse.EUNAUTHORIZED, Message: "the identity provider's ID token was refused: " + idTokenProblem(err), Err: err}
	}
	if subtle.ConstantTimeCompare([]byte(idt.Nonce), []byte(st.Nonce)) != 1 {
		s.metrics.login("sso_refused")
		return SSOResult{}, gatehouse.Errorf(gatehouse.EUNAUTHORIZED, "the identity provider's ID token was refused: it was not issued for this login (nonce)")
	}
	claims, err := s.sso.claims(pctx, p, idt, tok, true)
	if err != nil {
		return SSOResult{}, err
	}
	id, err := identityFromClaims(claims, s.sso.o.UsernameClaim, s.sso.o.GroupsClaim)
	if err != nil {
		s.metrics.login("sso_refused")
		s.recordLifecycle(ctx, gatehouse.Event{Type: gatehouse.EventSSOLoginRefused, Actor: "sso:" + clip(id.Subject, 100), RemoteAddr: remoteAddr, Detail: gatehouse.ErrorMessage(err)})
		return SSOResult{}, err
	}
	cli := st.CLIPort != 0
	login := "sso"
	if cli {
		login = "" // the session is minted when the user confirms
	}
	name, nt, err := s.ssoLogin(ctx, idt.Issuer, id, tok.RefreshToken, remoteAddr, login)
	if err != nil {
		return SSOResult{}, err
	}
	if !cli {
		s.metrics.login("sso_succeeded")
		return SSOResult{Session: nt}, nil
	}
	// A CLI login waits for the browser's user to confirm it (see
	// ConfirmCLILogin): whoever made the link chose the key the session
	// would be sealed to.
	pendingID, err := s.randomString(16)
	if err != nil {
		return SSOResult{}, err
	}
	pending, err := s.sso.seal.sealPending(cliPending{
		ID:      pendingID,
		Account: name, Issuer: idt.Issuer, Subject: id.Subject,
		CLIPort: st.CLIPort, CLIKey: st.CLIKey,
		Expires: s.now().Add(pendingTTL).UnixMilli(),
	})
	if err != nil {
		return SSOResult{}, gatehouse.Internal(err)
	}
	return SSOResult{CLI: &SSOCLIConsent{Account: name, Port: st.CLIPort, Pending: pending}}, nil
}

// SSOCLIConsent is a CLI login the provider has vouched for, waiting for
// the browser's user to confirm it: the account it logs in as, the
// loopback port the CLI waits on, and the sealed confirmation the browser
// carries (in a cookie) to ConfirmCLILogin.
type SSOCLIConsent struct {
	Account string
	Port    int
	Pending string
}

// SSOCLIPendingTTL is how long a CLI login waits for its confirmation.
func SSOCLIPendingTTL() time.Duration { return pendingTTL }

// errCLIPending answers a confirmation that is missing, expired or not
// this server's.
var errCLIPending = gatehouse.Errorf(gatehouse.EUNAUTHORIZED, "this CLI login expired or was already answered; run gatehouse login --sso again")

// errCLIAnswered answers a confirmation that was answered before.
var errCLIAnswered = gatehouse.Errorf(gatehouse.EUNAUTHORIZED, "this CLI login was already answered (Continue or Cancel), and counts only once; run gatehouse login --sso again")

// cliAnsweredKey names a CLI login's confirmation in the store's
// one-time-use records (Tx.AddExchangeReplay), beside the subject tokens
// of token exchanges, whose keys begin "jti:" or "tok:". The id is
// random and opens nothing.
func cliAnsweredKey(id string) string { return "sso-cli:" + id }

// answerCLI records, in the caller's transaction, that a CLI login's
// confirmation has been answered, or returns errCLIAnswered when it was
// before. Clearing the cookie spends it only in that browser; the record
// in the store refuses a copy of it on every replica, and is kept until
// replayKeep after the confirmation expires.
func answerCLI(ctx context.Context, tx gatehouse.Tx, pd cliPending) error {
	err := tx.AddExchangeReplay(ctx, cliAnsweredKey(pd.ID), time.UnixMilli(pd.Expires).Add(replayKeep))
	if gatehouse.IsCode(err, gatehouse.ECONFLICT) {
		return errCLIAnswered
	}
	return err
}

// ConfirmCLILogin finishes a CLI login the browser's user confirmed: it
// mints the session of the account the provider vouched for, seals it to
// the CLI's key and returns the loopback URL that hands it over. The
// account must still be the provider's user's, enabled and able to log
// in. A confirmation is answered once: a second Continue, or one after
// Cancel, is refused.
func (s *Service) ConfirmCLILogin(ctx context.Context, pending, remoteAddr string) (string, error) {
	if s.sso == nil {
		return "", errSSOOff
	}
	pd, ok := s.sso.seal.openPending(pending, s.now())
	if !ok {
		return "", errCLIPending
	}
	now := s.now().UTC()
	rec, nt, err := s.newToken(gatehouse.Token{
		Name: "session", Kind: gatehouse.KindSession, Account: pd.Account,
		CreatedBy: pd.Account, ExpiresAt: now.Add(s.defaultLifetime),
	}, now)
	if err != nil {
		return "", err
	}
	var refusal error
	err = s.write(ctx, nil, func(tx gatehouse.Tx, c *change) error {
		refusal = nil
		if err := answerCLI(ctx, tx, pd); err != nil {
			if errors.Is(err, errCLIAnswered) {
				refusal = err
			}
			return err
		}
		// A refusal of the account commits the answer alone (nil, no
		// session): the user pressed Continue, and a copy of the
		// confirmation must not log in later, when the account may.
		a, err := tx.GetAccountBySSO(ctx, pd.Issuer, pd.Subject)
		switch {
		case gatehouse.IsCode(err, gatehouse.ENOTFOUND) || err == nil && a.Name != pd.Account:
			refusal = errCLIPending
			return nil
		case err != nil:
			return err
		case !a.Enabled:
			refusal = gatehouse.Errorf(gatehouse.EUNAUTHORIZED, "the account %q is disabled", a.Name)
			return nil
		case !a.Has(gatehouse.CapLogin):
			refusal = gatehouse.Errorf(gatehouse.EUNAUTHORIZED, "the account %q lacks the login capability", a.Name)
			return nil
		}
		s.issuedNow(&rec, &nt)
		if err := tx.CreateToken(ctx, rec); err != nil {
			return err
		}
		c.putToken(rec)
		return tx.AppendEvents(ctx, []gatehouse.Event{
			s.tokenEvent(nil, gatehouse.EventTokenCreated, rec, "SSO login (CLI)"),
			s.stamp(gatehouse.Event{Type: gatehouse.EventLoginSucceeded, Actor: a.Name, TokenID: rec.ID, TokenKind: rec.Kind, RemoteAddr: remoteAddr, Detail: "sso (cli)"}),
		})
	})
	if err != nil && (refusal == nil || !errors.Is(err, refusal)) {
		return "", err
	}
	if refusal != nil {
		s.metrics.login("sso_refused")
		return "", refusal
	}
	s.metrics.login("sso_succeeded")
	return s.cliRedirect(pd.CLIPort, pd.CLIKey, nt)
}

// CancelCLILogin answers a CLI login's confirmation with Cancel: nothing
// is minted, and the confirmation is recorded as answered, so that a
// copy of it cannot Continue afterwards. A confirmation answered before
// is refused (errCLIAnswered), as is one that does not open.
func (s *Service) CancelCLILogin(ctx context.Context, pending string) error {
	if s.sso == nil {
		return errSSOOff
	}
	pd, ok := s.sso.seal.openPending(pending, s.now())
	if !ok {
		return errCLIPending
	}
	err := s.write(ctx, nil, func(tx gatehouse.Tx, _ *change) error {
		return answerCLI(ctx, tx, pd)
	})
	if errors.Is(err, errCLIAnswered) {
		return errCLIAnswered
	}
	return err
}

// SSOSecureCookies reports whether the SSO redirect URL is https: then
// the login's cookies are __Host- cookies (Secure, Path=/), which no
// sibling subdomain can set. Only a plain-http loopback address (local
// development; the configuration allows no other http URL) goes without.
func (s *Service) SSOSecureCookies() bool {
	if s.sso == nil {
		return false
	}
	u, err := url.Parse(s.sso.o.RedirectURL)
	return err == nil && u.Scheme == "https"
}

// claims are the ID token's claims. When it lacks the username (or, for
// an email username, email_verified) or the groups claim, the provider's
// userinfo answer for the same subject supplies them (some providers put
// groups, or the email, only there). When the username has to come from
// userinfo and userinfo fails, the login is refused (needName) rather
// than made under the subject: the same user would get a second account,
// or the subject's name could be someone else's. (Without a userinfo
// endpoint, or with usernameClaim sub, the subject is the username as
// documented.) A refresh only needs the groups (needName false): then
// what is missing stays missing, and nothing is granted by it.
func (c *ssoClient) claims(ctx context.Context, p *oidc.Provider, idt *oidc.IDToken, tok *oauth2.Token, needName bool) (map[string]any, error) {
	claims := map[string]any{}
	if err := idt.Claims(&claims); err != nil {
		return nil, gatehouse.Errorf(gatehouse.EUNAUTHORIZED, "the identity provider's ID token has unreadable claims")
	}
	_, hasName := claims[c.o.UsernameClaim]
	_, hasGroups := claims[c.o.GroupsClaim]
	_, hasVerified := claims["email_verified"]
	hasVerified = hasVerified || c.o.UsernameClaim != "email" || !hasName
	if (hasName && hasGroups && hasVerified) || p.UserInfoEndpoint() == "" || tok.AccessToken == "" {
		return claims, nil
	}
	var more map[string]any
	ui, err := p.UserInfo(ctx, oauth2.StaticTokenSource(tok))
	switch {
	case err != nil:
		err = providerFailure("OIDC userinfo", err)
	case ui.Subject != idt.Subject:
		err = errors.New("OIDC userinfo: the answer names another subject")
	default:
		if err = ui.Claims(&more); err != nil {
			err = fmt.Errorf("OIDC userinfo: %w", err)
		}
	}
	if err != nil {
		if needName && !hasName && c.o.UsernameClaim != "sub" {
			return nil, &gatehouse.Error{Code: gatehouse.EUNAVAILABLE,
				Message: fmt.Sprintf("the identity provider's ID token has no %s claim and its userinfo endpoint did not answer; try again shortly", c.o.UsernameClaim),
				Err:     err}
		}
		return claims, nil
	}
	for _, k := range []string{c.o.UsernameClaim, c.o.GroupsClaim, "email_verified"} {
		if _, ok := claims[k]; ok {
			continue
		}
		v, ok := more[k]
		if !ok {
			continue
		}
		// email_verified is about the address beside it: userinfo's
		// vouches for the ID token's email only when it names the same.
		if idEmail, _ := claims["email"].(string); k == "email_verified" && (idEmail == "" || more["email"] != idEmail) {
			continue
		}
		claims[k] = v
	}
	return claims, nil
}

// providerRefusal turns an error of a call to the provider's token
// endpoint into the answer: a refusal (401) when the provider answered
// with an OAuth error, unavailable when it could not be reached. The
// decision is taken on err as x/oauth2 returned it; the error kept for
// the log is providerFailure's.
func providerRefusal(what string, err error) error {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) && re.ErrorCode != "" {
		return &gatehouse.Error{Code: gatehouse.EUNAUTHORIZED, Message: "the identity provider refused the login (" + oauthCode(re.ErrorCode) + ")", Err: providerFailure(what, err)}
	}
	return &gatehouse.Error{Code: gatehouse.EUNAVAILABLE, Message: "the identity provider cannot be reached; try again shortly", Err: providerFailure(what, err)}
}

// providerFailure is what may be logged of an error of a call to the
// provider's token, device authorization or userinfo endpoint: the HTTP
// status and the OAuth error code of an answer, or the failure of a
// request that got no answer. Never the answer's body: the text of
// x/oauth2's RetrieveError and of go-oidc's userinfo error quotes it,
// and a provider, or a gateway in front of it, may quote the request in
// it (the code and PKCE verifier, a refresh or device code, the client
// secret, an access token). Nor the error_description, which is the
// provider's free text and may do the same. Whatever else an error may
// be, its text is left out. Decisions on the provider's answer
// (invalid_grant, authorization_pending, ...) are taken on the error
// itself before it comes here: the error returned keeps no chain to it,
// only to a context's cancellation or deadline.
func providerFailure(what string, err error) error {
	var re *oauth2.RetrieveError
	var ue *url.Error
	switch {
	case errors.As(err, &re):
		status := "without a response"
		if re.Response != nil {
			status = "HTTP " + strconv.Itoa(re.Response.StatusCode)
		}
		if re.ErrorCode == "" {
			return fmt.Errorf("%s: the identity provider answered %s", what, status)
		}
		return fmt.Errorf("%s: the identity provider answered %s (%s)", what, status, oauthCode(re.ErrorCode))
	case errors.Is(err, context.Canceled):
		return fmt.Errorf("%s: %w", what, context.Canceled)
	case errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("%s: %w", what, context.DeadlineExceeded)
	case errors.As(err, &ue):
		// The request got no answer (refused, timed out, TLS): the text
		// is net/http's, naming the endpoint (whose URL carries no
		// secret) and the failure, read before any body is.
		return fmt.Errorf("%s: %w", what, ue)
	}
	return fmt.Errorf("%s: the identity provider's answer was not usable (its text is not logged: it may quote the request)", what)
}

// oauthCode is an OAuth error code as it may be shown: the provider's,
// when it looks like one.
func oauthCode(code string) string {
	if !providerError.MatchString(code) {
		return "an unknown error"
	}
	return code
}

// idTokenProblem names what was wrong with an ID token, for the message.
func idTokenProblem(err error) string {
	var exp *oidc.TokenExpiredError
	var iss *oidc.IssuerMismatchError
	switch msg := err.Error(); {
	case errors.As(err, &exp):
		return "it has expired"
	case errors.As(err, &iss), strings.Contains(msg, "issued by a different provider"):
		return "it was issued by another provider (issuer)"
	case strings.Contains(msg, "audience"):
		return "it was issued for another client (audience)"
	case strings.Contains(msg, "signing algorithm"), strings.Contains(msg, "signature"):
		return "its signature or signing algorithm is not accepted"
	}
	return "it did not verify"
}

// cliRedirect seals the session to the CLI's key and names the loopback
// address the browser hands it to. The host is fixed, so the redirect can
// go nowhere but this machine's loopback interface.
func (s *Service) cliRedirect(port int, key string, nt gatehouse.NewToken) (string, error) {
	pub, err := loopback.ParsePublic(key)
	if err != nil {
		return "", gatehouse.Internal(err)
	}
	plain, err := json.Marshal(nt)
	if err != nil {
		return "", gatehouse.Internal(err)
	}
	sealed, err := loopback.Seal(s.rand, pub, plain)
	if err != nil {
		return "", gatehouse.Internal(err)
	}
	return "http://127.0.0.1:" + strconv.Itoa(port) + "/callback?result=" + url.QueryEscape(sealed), nil
}

// ssoLogin finds or creates the account of an identity the provider has
// vouched for, records its groups and (sealed) refresh token and, unless
// login is "", mints a session (the login's kind in the audit trail: sso,
// sso (device)), all in one transaction. It returns the account's name.
//
// The account is the one bound to the provider's user (issuer, sub),
// found in the store (not this replica's memory) before anything else:
// the username the provider hands out may change (a new email), but the
// user stays the same account under the name it was created with, and
// an administrator's disabling of it stands. A new username is only
// noted in the audit trail. Only a user with no account yet gets one, by
// the username, and never a second one.
//
// An account of that name that is local is never taken over: a password
// account and a provider's user are different people until an
// administrator says otherwise (by deleting or renaming the local one).
// Nor is an SSO account of that name bound to another user of the
// provider, nor a name the policy already binds (the user would inherit
// what the policy grants that name, as CreateAccount requires settings,
// update, rbac for).
func (s *Service) ssoLogin(ctx context.Context, issuer string, id ssoIdentity, refreshToken, remoteAddr, login string) (string, gatehouse.NewToken, error) {
	now := s.now().UTC()
	rec, nt, err := s.newToken(gatehouse.Token{
		Name: "session", Kind: gatehouse.KindSession, Account: id.Username,
		CreatedBy: id.Username, ExpiresAt: now.Add(s.defaultLifetime),
	}, now)
	if err != nil {
		return "", gatehouse.NewToken{}, err
	}
	var (
		refusal error
		name    string
	)
	err = s.write(ctx, nil, func(tx gatehouse.Tx, c *change) error {
		refusal, name = nil, id.Username
		created := false
		var events []gatehouse.Event
		a, err := tx.GetAccountBySSO(ctx, issuer, id.Subject)
		switch {
		case err == nil:
			name = a.Name
			if a.Name != id.Username {
				ev := s.event(nil, gatehouse.EventAccountChanged, "accounts", "update", a.Name,
					fmt.Sprintf("SSO login: the identity provider now names this user %q; the account keeps its name", clip(id.Username, 254)))
				ev.Actor = "sso"
				events = append(events, ev)
			}
		case !gatehouse.IsCode(err, gatehouse.ENOTFOUND):
			return err
		default:
			a, err = tx.GetAccount(ctx, id.Username)
			switch {
			case gatehouse.IsCode(err, gatehouse.ENOTFOUND):
				// The policy as this transaction reads it: on a replica,
				// another's change may not have reached the engine yet.
				e, err := s.txEngine(ctx, tx)
				if err != nil {
					return err
				}
				if e.Binds(id.Username) {
					refusal = gatehouse.Errorf(gatehouse.ECONFLICT, "the RBAC policy already names %q (as a group or in its lines), so an SSO login does not create an account of that name: it would get what the policy grants that name; ask an administrator", id.Username)
					return refusal
				}
				a = gatehouse.Account{
					Name: id.Username, Enabled: true, Capabilities: slices.Clone(s.sso.caps),
					Groups: []string{}, CreatedAt: now, Source: gatehouse.SourceSSO,
				}
				// The provider's groups named like the new account
				// stop standing for it (before it exists, in apply).
				stripped, err := s.stripGroup(ctx, tx, c, a.Name)
				if err != nil {
					return err
				}
				events = append(events, stripped...)
				events = append(events, s.event(nil, gatehouse.EventAccountChanged, "accounts", "create", a.Name, "first SSO login"))
				if err := tx.CreateAccount(ctx, a); err != nil {
					return err
				}
				created = true
			case err != nil:
				return err
			case !a.IsSSO():
				refusal = gatehouse.Errorf(gatehouse.ECONFLICT, "a local account named %q already exists, and an SSO login never takes over a local account; ask an administrator to delete or rename it", a.Name)
				return refusal
			default:
				refusal = gatehouse.Errorf(gatehouse.ECONFLICT, "the account %q belongs to another user of the identity provider; ask an administrator", a.Name)
				return refusal
			}
		}
		switch {
		case !a.Enabled && !a.SSO.Refused:
			refusal = gatehouse.Errorf(gatehouse.EUNAUTHORIZED, "the account %q is disabled", a.Name)
			return refusal
		case !a.Has(gatehouse.CapLogin):
			refusal = gatehouse.Errorf(gatehouse.EUNAUTHORIZED, "the account %q lacks the login capability", a.Name)
			return refusal
		}
		groups, err := s.usableGroups(ctx, tx, a.Name, id.Groups)
		if err != nil {
			return err
		}
		sealed, err := s.sso.seal.sealRefresh(a.Name, issuer, refreshToken)
		if err != nil {
			return gatehouse.Internal(err)
		}
		if !a.Enabled {
			// Disabled only because the provider once refused a refresh:
			// this login shows it vouches for the user again.
			a.Enabled = true
			events = append(events, s.event(nil, gatehouse.EventAccountChanged, "accounts", "update", a.Name, "enabled again by an SSO login"))
		}
		if !created && !slices.Equal(a.Groups, groups) {
			events = append(events, s.groupsEvent(a.Name, a.Groups, groups, "login"))
		}
		a.Groups = groups
		a.LastLoginAt, a.GroupsRefreshedAt = now, now
		a.SSO.Issuer, a.SSO.Subject, a.SSO.Refused = issuer, id.Subject, false
		if sealed != nil {
			a.SSO.RefreshToken = sealed
		}
		if err := tx.UpdateAccount(ctx, a); err != nil {
			return err
		}
		c.putAccount(a)
		if login != "" {
			rec.Account, rec.CreatedBy = a.Name, a.Name
			s.issuedNow(&rec, &nt)
			if err := tx.CreateToken(ctx, rec); err != nil {
				return err
			}
			c.putToken(rec)
			events = append(events,
				s.tokenEvent(nil, gatehouse.EventTokenCreated, rec, "SSO login"),
				s.stamp(gatehouse.Event{Type: gatehouse.EventLoginSucceeded, Actor: a.Name, TokenID: rec.ID, TokenKind: rec.Kind, RemoteAddr: remoteAddr, Detail: login}))
		}
		return tx.AppendEvents(ctx, events)
	})
	if refusal != nil && errors.Is(err, refusal) {
		s.metrics.login("sso_refused")
		s.recordLifecycle(ctx, gatehouse.Event{Type: gatehouse.EventSSOLoginRefused, Actor: name, RemoteAddr: remoteAddr, Resource: "accounts", Object: name, Detail: gatehouse.ErrorMessage(refusal)})
		return "", gatehouse.NewToken{}, refusal
	}
	if err != nil {
		return "", gatehouse.NewToken{}, err
	}
	if id.Dropped > 0 {
		s.log.InfoContext(ctx, "SSO: left out groups that cannot be used (invalid, or naming a role)", "account", name, "dropped", id.Dropped)
	}
	if login == "" {
		nt = gatehouse.NewToken{}
	}
	return name, nt, nil
}

// usableGroups leaves out of the provider's groups any that names an
// account: the policy's lines about that account (the built-in
// "g, admin, role:admin" among them) would apply to the group's members.
// It asks the store, in the caller's transaction, about every group this
// replica does not already know to be an account, so that an account
// another replica created a moment ago counts too.
func (s *Service) usableGroups(ctx context.Context, tx gatehouse.Tx, account string, groups []string) ([]string, error) {
	out := make([]string, 0, len(groups))
	for _, g := range groups {
		if g == gatehouse.AdminAccount {
			continue
		}
		if g == account {
			out = append(out, g)
			continue
		}
		if s.accounts.get(g) != nil {
			continue
		}
		_, err := tx.GetAccount(ctx, g)
		switch {
		case err == nil:
			continue
		case !gatehouse.IsCode(err, gatehouse.ENOTFOUND):
			return nil, err
		}
		out = append(out, g)
	}
	return out, nil
}

// stripGroup takes the group name from every SSO account that has it,
// in the transaction that creates an account of that name (any source):
// from then on the policy's lines about the account would apply to the
// group's members. The provider's groups are left out the same way at
// every later login and refresh (usableGroups). It returns the events.
func (s *Service) stripGroup(ctx context.Context, tx gatehouse.Tx, c *change, name string) ([]gatehouse.Event, error) {
	all, err := tx.ListAccounts(ctx)
	if err != nil {
		return nil, err
	}
	var events []gatehouse.Event
	for _, a := range all {
		if !a.IsSSO() || a.Name == name || !slices.Contains(a.Groups, name) {
			continue
		}
		before := a.Groups
		a.Groups = slices.DeleteFunc(slices.Clone(a.Groups), func(g string) bool { return g == name })
		if err := tx.UpdateAccount(ctx, a); err != nil {
			return nil, err
		}
		c.putAccount(a)
		events = append(events, s.groupsEvent(a.Name, before, a.Groups, "an account named "+strconv.Quote(name)+" was created"))
	}
	return events, nil
}

func (s *Service) groupsEvent(account string, before, after []string, why string) gatehouse.Event {
	b, _ := json.Marshal(before)
	a, _ := json.Marshal(after)
	ev := s.event(nil, gatehouse.EventSSOGroupsChanged, "accounts", "update", account, fmt.Sprintf("groups from the identity provider (%s): %s -> %s", why, b, a))
	ev.Actor = "sso"
	return ev
}

// SSOLogoutURL is where a logged-out SSO user may go to end the session
// at the provider too (RP-initiated logout), or "" when the provider
// advertises no end_session_endpoint or p is not an SSO account's. The
// provider sends the browser back to this server's login page (the
// redirect URL's origin), which must be registered with it as a
// post-logout redirect URI.
func (s *Service) SSOLogoutURL(p *Principal) string {
	if s.sso == nil || p == nil || p.owner == nil || !p.owner.IsSSO() {
		return ""
	}
	s.sso.mu.Lock()
	end := s.sso.endSession
	s.sso.mu.Unlock()
	u, err := url.Parse(end)
	if end == "" || err != nil {
		return ""
	}
	q := u.Query()
	q.Set("client_id", s.sso.o.ClientID)
	if back, err := url.Parse(s.sso.o.RedirectURL); err == nil {
		q.Set("post_logout_redirect_uri", (&url.URL{Scheme: back.Scheme, Host: back.Host, Path: "/"}).String())
	}
	u.RawQuery = q.Encode()
	return u.String()
}

// randomString is n random bytes, base64url.
func (s *Service) randomString(n int) (string, error) {
	b := make([]byte, n)
	if _, err := io.ReadFull(s.rand, b); err != nil {
		return "", gatehouse.Internal(err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}
