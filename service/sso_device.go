package service

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"io"
	"math"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode"

	"golang.org/x/oauth2"

	"github.com/gatehouse/gatehouse"
)

// SSO login for a machine without a browser: the device authorization
// grant (RFC 8628), run by the server, because the provider's client is
// Gatehouse's, with its secret, not the CLI's. It is off unless the
// configuration turns it on (sso.oidc.deviceLogin).
//
//  1. StartDeviceLogin asks the provider for a device code and a user
//     code. The user code and the verification address go to the CLI,
//     which shows them; the device code goes to the CLI only sealed, in a
//     handle that only this server's replicas can open (with a key
//     derived from the client secret, like the other SSO seals).
//  2. The CLI calls PollDeviceLogin with the handle until the user has
//     logged in at the provider on any device. Each poll asks the
//     provider at most once, paced by the interval the provider set (see
//     deviceTracker), and answers at once: "wait this long" (202) or the
//     session.
//  3. When the provider answers with tokens, the ID token is checked as
//     in a browser login and the user logs in as in a browser login: the
//     same account rules, groups and audit, and a session for the CLI.
//
// The ID token of a device login carries no nonce: nothing went through
// a browser that could inject another login's token. It came straight
// from the provider's token endpoint, in exchange for a device code that
// only this server has seen in the clear, with the client's
// authentication.
//
// Whoever holds a handle receives the session when the user approves,
// and a user can be talked into entering someone else's code (RFC 8628,
// section 5.4). docs/sso.md says so; the provider's consent screen, which
// names the client, is the defence, and the grant is off by default.

const (
	deviceInfo = "gatehouse sso device login v1"
	deviceAD   = "gatehouse.sso device handle"
	// maxDeviceHandle bounds the handle opened.
	maxDeviceHandle = 4096
	// maxDeviceTTL caps how long a device login may stay open, whatever
	// the provider says.
	maxDeviceTTL = 30 * time.Minute
	// maxDeviceInterval caps the interval between questions.
	maxDeviceInterval = 60 * time.Second
	// maxDevicePolls bounds the questions to the provider in flight at
	// once (each takes about a second).
	maxDevicePolls = 64
	// deviceStartsPerMinute bounds the device logins one address may
	// start a minute: each start costs a request to the provider with the
	// client's secret, and a flood of them could get the client
	// rate-limited there, for every SSO user.
	deviceStartsPerMinute = 10
)

// deviceState is what a handle carries.
type deviceState struct {
	DeviceCode string `json:"d"`
	Interval   int64  `json:"i"` // seconds
	Expires    int64  `json:"e"` // Unix milliseconds
}

func (k sealer) sealDevice(d deviceState) (string, error) {
	plain, err := json.Marshal(d)
	if err != nil {
		return "", err
	}
	b, err := k.seal(plain, deviceInfo, []byte(deviceAD))
	if err != nil {
		return "", err
	}
	return sealEncoding.EncodeToString(b), nil
}

// openDevice opens a handle that has not expired at now.
func (k sealer) openDevice(v string, now time.Time) (deviceState, bool) {
	if v == "" || len(v) > maxDeviceHandle {
		return deviceState{}, false
	}
	b, err := sealEncoding.DecodeString(v)
	if err != nil {
		return deviceState{}, false
	}
	plain, err := k.open(b, deviceInfo, []byte(deviceAD))
	if err != nil {
		return deviceState{}, false
	}
	var d deviceState
	if json.Unmarshal(plain, &d) != nil || d.DeviceCode == "" || d.Interval < 1 {
		return deviceState{}, false
	}
	if !now.Before(time.UnixMilli(d.Expires)) {
		return deviceState{}, false
	}
	return d, true
}

// errDeviceOff answers device logins on a server that does not offer
// them.
var errDeviceOff = gatehouse.Errorf(gatehouse.ENOTFOUND, "device login is not enabled on this server (sso.oidc.deviceLogin); use gatehouse login --sso with a browser")

// errDeviceUnoffered answers device logins when the provider does not
// offer the grant.
var errDeviceUnoffered = gatehouse.Errorf(gatehouse.ENOTFOUND, "this server's identity provider does not offer device login (RFC 8628); use gatehouse login --sso with a browser")

// errDeviceHandle answers a poll whose handle is missing, expired or not
// this server's.
var errDeviceHandle = gatehouse.Errorf(gatehouse.EUNAUTHORIZED, "this device login expired or is not this server's; run gatehouse login --sso-device again")

// StartDeviceLogin starts a device login at the provider for a caller
// at remoteAddr.
func (s *Service) StartDeviceLogin(ctx context.Context, remoteAddr string) (gatehouse.DeviceLogin, error) {
	if s.sso == nil || !s.sso.o.DeviceLogin {
		return gatehouse.DeviceLogin{}, errDeviceOff
	}
	if !s.sso.starts.allow(remoteAddr, time.Now()) {
		return gatehouse.DeviceLogin{}, &gatehouse.Error{Code: gatehouse.ETHROTTLED, Message: "too many device logins started from this address; try again in a minute", RetryAfter: time.Minute}
	}
	_, _, cfg, err := s.sso.discover(ctx)
	if err != nil {
		return gatehouse.DeviceLogin{}, err
	}
	if cfg.Endpoint.DeviceAuthURL == "" {
		return gatehouse.DeviceLogin{}, errDeviceUnoffered
	}
	// x/oauth2 sends only the client ID to the device endpoint; a
	// confidential client authenticates there too (client_secret_post,
	// which providers accept beside HTTP Basic).
	da, err := cfg.DeviceAuth(s.sso.ctx(ctx), oauth2.SetAuthURLParam("client_secret", s.sso.o.ClientSecret))
	if err != nil {
		return gatehouse.DeviceLogin{}, providerRefusal("starting a device login", err)
	}
	out := gatehouse.DeviceLogin{
		UserCode:        da.UserCode,
		VerificationURI: da.VerificationURI,
		Interval:        int(da.Interval),
	}
	if !printableCode(out.UserCode) || !webAddress(out.VerificationURI) || da.DeviceCode == "" || len(da.DeviceCode) > 1024 {
		return gatehouse.DeviceLogin{}, &gatehouse.Error{Code: gatehouse.EUNAVAILABLE,
			Message: "the identity provider's answer to a device login is not usable", Err: errors.New("device authorization: bad user code, verification URI or device code")}
	}
	if webAddress(da.VerificationURIComplete) {
		out.VerificationURIComplete = da.VerificationURIComplete
	}
	// "If no value is provided, clients MUST use 5 as the default."
	switch {
	case out.Interval < 1:
		out.Interval = 5
	case out.Interval > int(maxDeviceInterval/time.Second):
		out.Interval = int(maxDeviceInterval / time.Second)
	}
	ttl := maxDeviceTTL
	if !da.Expiry.IsZero() {
		ttl = min(max(time.Until(da.Expiry), 0), maxDeviceTTL)
	}
	out.ExpiresIn = int(ttl / time.Second)
	if out.ExpiresIn < 1 {
		return gatehouse.DeviceLogin{}, &gatehouse.Error{Code: gatehouse.EUNAVAILABLE,
			Message: "the identity provider's device login expired at once", Err: errors.New("device authorization: no time left")}
	}
	out.Handle, err = s.sso.seal.sealDevice(deviceState{
		DeviceCode: da.DeviceCode, Interval: int64(out.Interval),
		Expires: s.now().Add(ttl).UnixMilli(),
	})
	if err != nil {
		return gatehouse.DeviceLogin{}, gatehouse.Internal(err)
	}
	return out, nil
}

// DeviceAnswer is a poll's answer: the session when the user has logged
// in, or else how many seconds to wait before polling again.
type DeviceAnswer struct {
	Session  gatehouse.NewToken
	Pending  bool
	Interval int
}

// PollDeviceLogin asks the provider, at most once, whether the user of a
// device login has finished, and then logs them in. It asks only when
// the interval the provider set has passed since this replica last
// asked about the same device code, and only one poll of a device code
// asks at a time; any other poll is told to wait (202).
func (s *Service) PollDeviceLogin(ctx context.Context, handle, remoteAddr string) (DeviceAnswer, error) {
	if s.sso == nil || !s.sso.o.DeviceLogin {
		return DeviceAnswer{}, errDeviceOff
	}
	d, ok := s.sso.seal.openDevice(handle, s.now())
	if !ok {
		return DeviceAnswer{}, errDeviceHandle
	}
	p, verifier, cfg, err := s.sso.discover(ctx)
	if err != nil {
		return DeviceAnswer{}, err
	}
	slot, wait, err := s.sso.devices.claim(d, time.Now())
	switch {
	case err != nil:
		return DeviceAnswer{}, err
	case slot == nil:
		return DeviceAnswer{Pending: true, Interval: wait}, nil
	}
	select {
	case s.sso.devicePolls <- struct{}{}:
		defer func() { <-s.sso.devicePolls }()
	default:
		s.sso.devices.release(slot, deviceRetry, time.Now())
		return DeviceAnswer{}, &gatehouse.Error{Code: gatehouse.ETHROTTLED, Message: "too many device logins are being checked at once; poll again in a few seconds", RetryAfter: 5 * time.Second}
	}
	tok, answer, err := s.sso.askOnce(ctx, cfg, d.DeviceCode)
	now := time.Now()
	switch {
	case err == nil:
		s.sso.devices.release(slot, deviceSpent, now)
	case answer == "":
		// No answer from the provider (or the caller went away before
		// the question): the device code is not spent; ask again later.
		s.sso.devices.release(slot, deviceRetry, now)
		if ctx.Err() != nil {
			return DeviceAnswer{}, ctx.Err()
		}
		return DeviceAnswer{}, providerRefusal("polling a device login", err)
	case answer == "authorization_pending":
		return DeviceAnswer{Pending: true, Interval: s.sso.devices.release(slot, devicePending, now)}, nil
	case answer == "slow_down":
		return DeviceAnswer{Pending: true, Interval: s.sso.devices.release(slot, deviceSlowDown, now)}, nil
	default:
		s.sso.devices.release(slot, deviceSpent, now)
		s.metrics.login("sso_refused")
		switch answer {
		case "access_denied":
			return DeviceAnswer{}, gatehouse.Errorf(gatehouse.EUNAUTHORIZED, "the identity provider refused this device login: the user declined it, or it was already finished; run gatehouse login --sso-device again")
		case "expired_token":
			return DeviceAnswer{}, errDeviceExpired
		}
		return DeviceAnswer{}, deviceFinal(providerRefusal("polling a device login", err))
	}
	// The provider has spent the device code: from here on, whatever
	// goes wrong is final, and says so (a retry could not succeed).
	if ctx.Err() != nil {
		return DeviceAnswer{}, ctx.Err() // the caller left; no session for no one
	}
	rawID, _ := tok.Extra("id_token").(string)
	if rawID == "" {
		return DeviceAnswer{}, deviceFinal(gatehouse.Errorf(gatehouse.EUNAUTHORIZED, "the identity provider sent no ID token (is the openid scope configured?)"))
	}
	vctx := s.sso.ctx(ctx)
	idt, err := verifier.Verify(vctx, rawID)
	if err != nil {
		s.metrics.login("sso_refused")
		return DeviceAnswer{}, deviceFinal(&gatehouse.Error{Code: gatehouse.EUNAUTHORIZED, Message: "the identity provider's ID token was refused: " + idTokenProblem(err), Err: err})
	}
	claims, err := s.sso.claims(vctx, p, idt, tok, true)
	if err != nil {
		return DeviceAnswer{}, deviceFinal(err)
	}
	id, err := identityFromClaims(claims, s.sso.o.UsernameClaim, s.sso.o.GroupsClaim)
	if err != nil {
		s.metrics.login("sso_refused")
		s.recordLifecycle(ctx, gatehouse.Event{Type: gatehouse.EventSSOLoginRefused, Actor: "sso:" + clip(id.Subject, 100), RemoteAddr: remoteAddr, Detail: gatehouse.ErrorMessage(err)})
		return DeviceAnswer{}, deviceFinal(err)
	}
	_, nt, err := s.ssoLogin(ctx, idt.Issuer, id, tok.RefreshToken, remoteAddr, "sso (device)")
	if err != nil {
		return DeviceAnswer{}, deviceFinal(err)
	}
	s.metrics.login("sso_succeeded")
	return DeviceAnswer{Session: nt}, nil
}

// deviceFinal marks a failure after the provider spent the device code:
// a 503 (the provider's userinfo endpoint, the store) becomes a 401 that
// says to start again, since asking again cannot succeed; other refusals
// are final already and say so too.
func deviceFinal(err error) error {
	var e *gatehouse.Error
	if !errors.As(err, &e) || e.Code == gatehouse.EINTERNAL {
		return err
	}
	code := e.Code
	if code == gatehouse.EUNAVAILABLE || code == gatehouse.ETHROTTLED {
		code = gatehouse.EUNAUTHORIZED
	}
	return &gatehouse.Error{Code: code, Message: e.Message + "; this device login cannot be finished, run gatehouse login --sso-device again", Err: err}
}

// askOnce asks the provider's token endpoint once about a device code,
// through x/oauth2 (which builds the request, authenticates the client
// and reads the tokens). Its polling loop is given a transport that lets
// one question through and then ends the loop, and the question itself
// runs to its end even when the poll's caller goes away: an answer cut
// off on its way would spend the device code for nothing. answer is the
// provider's error code ("authorization_pending", "slow_down", ...), or
// "ok" with the tokens, or "" when the provider gave no answer.
func (c *ssoClient) askOnce(ctx context.Context, cfg oauth2.Config, deviceCode string) (*oauth2.Token, string, error) {
	loop, stop := context.WithCancel(ctx)
	defer stop()
	base := c.http.Transport
	if base == nil {
		base = http.DefaultTransport
	}
	q := &oneQuestion{next: base, timeout: c.http.Timeout, stop: stop}
	loop = context.WithValue(loop, oauth2.HTTPClient, &http.Client{Transport: q})
	// Interval 1: the loop's first question comes a second after the
	// poll (this replica paces its questions itself, see deviceTracker).
	tok, err := cfg.DeviceAccessToken(loop, &oauth2.DeviceAuthResponse{DeviceCode: deviceCode, Interval: 1})
	switch {
	case err == nil:
		return tok, "ok", nil
	case !q.answered.Load():
		return nil, "", err
	}
	if q.code == "" {
		q.code = "invalid_response"
	}
	return nil, q.code, err
}

// oneQuestion is the transport of askOnce.
type oneQuestion struct {
	next     http.RoundTripper
	timeout  time.Duration // 0: none
	stop     context.CancelFunc
	asked    atomic.Bool
	answered atomic.Bool
	code     string // the provider's error code; written before answered
}

var errAskedOnce = errors.New("device login: asked once already")

func (q *oneQuestion) RoundTrip(req *http.Request) (*http.Response, error) {
	if !q.asked.CompareAndSwap(false, true) {
		return nil, errAskedOnce
	}
	defer q.stop()
	ctx := context.WithoutCancel(req.Context())
	if q.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, q.timeout)
		defer cancel()
	}
	resp, err := q.next.RoundTrip(req.WithContext(ctx))
	if err != nil {
		return nil, err
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	if resp.StatusCode/100 != 2 {
		var e struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(body, &e) == nil && providerError.MatchString(e.Error) {
			q.code = e.Error
		}
	}
	q.answered.Store(true)
	resp.Body = io.NopCloser(bytes.NewReader(body))
	return resp, nil
}

// deviceTracker is what this replica knows of the device logins it is
// asked about, keyed by a hash of the device code: when it may next ask
// the provider (the provider's interval, longer after a slow_down),
// whether a poll is asking right now, and whether the code is spent. It
// holds at most maxTracked logins; each is forgotten when its handle
// expires. (Replicas pace separately; a provider that finds several
// replicas too fast says slow_down, and each slows down.)
type deviceTracker struct {
	mu sync.Mutex
	m  map[[32]byte]*deviceSlot
}

type deviceSlot struct {
	key      [32]byte
	interval time.Duration
	next     time.Time // no question before
	busy     bool
	spent    bool
	forget   time.Time
}

const maxTracked = 10000

func newDeviceTracker() *deviceTracker { return &deviceTracker{m: map[[32]byte]*deviceSlot{}} }

var errDeviceSpent = gatehouse.Errorf(gatehouse.EUNAUTHORIZED, "this device login is already finished or can no longer be finished; run gatehouse login --sso-device again")

// claim lets a poll ask about d now (a slot, which release hands back),
// or says how many seconds it must wait (nil slot).
func (t *deviceTracker) claim(d deviceState, now time.Time) (*deviceSlot, int, error) {
	key := sha256.Sum256([]byte(d.DeviceCode))
	t.mu.Lock()
	defer t.mu.Unlock()
	sl := t.m[key]
	if sl == nil {
		if len(t.m) >= maxTracked {
			for k, o := range t.m {
				if now.After(o.forget) {
					delete(t.m, k)
				}
			}
			if len(t.m) >= maxTracked {
				return nil, 0, &gatehouse.Error{Code: gatehouse.ETHROTTLED, Message: "too many device logins are open; try again in a minute", RetryAfter: time.Minute}
			}
		}
		sl = &deviceSlot{key: key, interval: time.Duration(d.Interval) * time.Second, forget: now.Add(maxDeviceTTL)}
		t.m[key] = sl
	}
	switch {
	case sl.spent:
		return nil, 0, errDeviceSpent
	case sl.busy || now.Before(sl.next):
		return nil, max(1, int(math.Ceil(max(sl.next.Sub(now), time.Second).Seconds()))), nil
	}
	sl.busy = true
	return sl, 0, nil
}

type deviceOutcome int

const (
	devicePending  deviceOutcome = iota // ask again after the interval
	deviceSlowDown                      // ask again after a longer interval
	deviceRetry                         // no answer: ask again after the interval
	deviceSpent                         // the code is used up, or refused for good
)

// release records what the provider answered and returns the seconds
// until the next question.
func (t *deviceTracker) release(sl *deviceSlot, o deviceOutcome, now time.Time) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	sl.busy = false
	switch o {
	case deviceSpent:
		sl.spent = true
	case deviceSlowDown:
		// "the interval MUST be increased by 5 seconds for this and all
		// subsequent requests" (RFC 8628, section 3.5).
		sl.interval = min(sl.interval+5*time.Second, maxDeviceInterval)
	}
	sl.next = now.Add(sl.interval)
	return int(sl.interval / time.Second)
}

var errDeviceExpired = gatehouse.Errorf(gatehouse.EUNAUTHORIZED, "the device login expired before it was finished; run gatehouse login --sso-device again")

// printableCode reports whether a user code can be shown as it is: short,
// printable, no spaces or control characters (a terminal shows it).
func printableCode(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, r := range s {
		if r > unicode.MaxASCII || !unicode.IsPrint(r) || r == ' ' {
			return false
		}
	}
	return true
}

// webAddress reports whether s is an absolute http(s) URL that a terminal
// can show as it is.
func webAddress(s string) bool {
	if s == "" || len(s) > 2048 || strings.ContainsFunc(s, func(r rune) bool { return r > unicode.MaxASCII || !unicode.IsPrint(r) || r == ' ' }) {
		return false
	}
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "https" || u.Scheme == "http") && u.Host != "" && u.User == nil
}
