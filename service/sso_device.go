package service

import (
	"context"
	"encoding/json"
	"errors"
	"net/url"
	"strings"
	"time"
	"unicode"

	"golang.org/x/oauth2"

	"github.com/gatehouse/gatehouse"
)

// SSO login for a machine without a browser: the device authorization
// grant (RFC 8628), run by the server, because the provider's client is
// Gatehouse's, with its secret, not the CLI's.
//
//  1. StartDeviceLogin asks the provider for a device code and a user
//     code. The user code and the verification address go to the CLI,
//     which shows them; the device code goes to the CLI only sealed, in a
//     handle that only this server's replicas can open (with a key
//     derived from the client secret, like the other SSO seals). No
//     replica keeps state, so each poll may land on another one.
//  2. The CLI calls PollDeviceLogin with the handle until the user has
//     logged in at the provider on any device. Each call waits at the
//     provider for up to DevicePollWait (polling it at the interval it asked
//     for, slowing down when it says so), so the CLI's own loop needs no
//     pacing.
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
// names the client, is the defence, and an operator who does not want
// device logins does not enable the grant for Gatehouse's client at the
// provider.

const (
	deviceInfo = "gatehouse sso device login v1"
	deviceAD   = "gatehouse.sso device handle"
	// maxDeviceHandle bounds the handle opened.
	maxDeviceHandle = 4096
	// defaultDeviceWait is how long one poll waits for the user at the
	// provider before answering "pending" (at least one interval and a
	// bit more, whatever is configured); well inside the server's write
	// timeout.
	defaultDeviceWait = 12 * time.Second
	// maxDeviceTTL caps how long a device login may stay open, whatever
	// the provider says.
	maxDeviceTTL = 30 * time.Minute
	// maxDevicePolls bounds the polls waiting at the provider at once,
	// so that waiting requests cannot pile up without end.
	maxDevicePolls = 64
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

// errDeviceOff answers device logins when the provider does not offer
// the grant.
var errDeviceOff = gatehouse.Errorf(gatehouse.ENOTFOUND, "this server's identity provider does not offer device login (RFC 8628); use gatehouse login --sso with a browser")

// errDeviceHandle answers a poll whose handle is missing, expired or not
// this server's.
var errDeviceHandle = gatehouse.Errorf(gatehouse.EUNAUTHORIZED, "this device login expired or is not this server's; run gatehouse login --sso-device again")

// StartDeviceLogin starts a device login at the provider.
func (s *Service) StartDeviceLogin(ctx context.Context) (gatehouse.DeviceLogin, error) {
	if s.sso == nil {
		return gatehouse.DeviceLogin{}, errSSOOff
	}
	_, _, cfg, err := s.sso.discover(ctx)
	if err != nil {
		return gatehouse.DeviceLogin{}, err
	}
	if cfg.Endpoint.DeviceAuthURL == "" {
		return gatehouse.DeviceLogin{}, errDeviceOff
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
	if out.Interval < 1 || out.Interval > 60 {
		out.Interval = 5
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
// in, or else the interval to keep polling at.
type DeviceAnswer struct {
	Session  gatehouse.NewToken
	Pending  bool
	Interval int
}

// PollDeviceLogin waits (up to DevicePollWait) for the user of a device login
// to finish at the provider, and then logs them in.
func (s *Service) PollDeviceLogin(ctx context.Context, handle, remoteAddr string) (DeviceAnswer, error) {
	if s.sso == nil {
		return DeviceAnswer{}, errSSOOff
	}
	d, ok := s.sso.seal.openDevice(handle, s.now())
	if !ok {
		return DeviceAnswer{}, errDeviceHandle
	}
	p, verifier, cfg, err := s.sso.discover(ctx)
	if err != nil {
		return DeviceAnswer{}, err
	}
	select {
	case s.sso.devicePolls <- struct{}{}:
		defer func() { <-s.sso.devicePolls }()
	default:
		return DeviceAnswer{}, gatehouse.Errorf(gatehouse.ETHROTTLED, "too many device logins are waiting; poll again in a few seconds")
	}
	// x/oauth2 asks the provider every interval until the context ends.
	// The wait ends half an interval after a question, so that an
	// answer is not cut off on its way (a provider that issued tokens
	// to a cut-off question has spent the device code).
	interval := time.Duration(d.Interval) * time.Second
	wait := time.Duration(max(1, int64(s.sso.deviceWait/interval)))*interval + interval/2
	if left := time.UnixMilli(d.Expires).Sub(s.now()); left < wait {
		wait = left
	}
	pctx, cancel := context.WithTimeout(s.sso.ctx(ctx), wait)
	defer cancel()
	tok, err := cfg.DeviceAccessToken(pctx, &oauth2.DeviceAuthResponse{DeviceCode: d.DeviceCode, Interval: d.Interval})
	switch {
	case err == nil:
	case ctx.Err() != nil:
		return DeviceAnswer{}, ctx.Err()
	case errors.Is(err, context.DeadlineExceeded):
		if !s.now().Before(time.UnixMilli(d.Expires)) {
			return DeviceAnswer{}, errDeviceExpired
		}
		return DeviceAnswer{Pending: true, Interval: int(d.Interval)}, nil
	default:
		var re *oauth2.RetrieveError
		if errors.As(err, &re) {
			switch re.ErrorCode {
			case "access_denied":
				s.metrics.login("sso_refused")
				return DeviceAnswer{}, gatehouse.Errorf(gatehouse.EUNAUTHORIZED, "the login was declined at the identity provider")
			case "expired_token":
				return DeviceAnswer{}, errDeviceExpired
			}
		}
		s.metrics.login("sso_refused")
		return DeviceAnswer{}, providerRefusal("polling a device login", err)
	}
	rawID, _ := tok.Extra("id_token").(string)
	if rawID == "" {
		return DeviceAnswer{}, gatehouse.Errorf(gatehouse.EUNAUTHORIZED, "the identity provider sent no ID token (is the openid scope configured?)")
	}
	vctx := s.sso.ctx(ctx)
	idt, err := verifier.Verify(vctx, rawID)
	if err != nil {
		s.metrics.login("sso_refused")
		return DeviceAnswer{}, &gatehouse.Error{Code: gatehouse.EUNAUTHORIZED, Message: "the identity provider's ID token was refused: " + idTokenProblem(err), Err: err}
	}
	claims, err := s.sso.claims(vctx, p, idt, tok, true)
	if err != nil {
		return DeviceAnswer{}, err
	}
	id, err := identityFromClaims(claims, s.sso.o.UsernameClaim, s.sso.o.GroupsClaim)
	if err != nil {
		s.metrics.login("sso_refused")
		s.recordLifecycle(ctx, gatehouse.Event{Type: gatehouse.EventSSOLoginRefused, Actor: "sso:" + clip(id.Subject, 100), RemoteAddr: remoteAddr, Detail: gatehouse.ErrorMessage(err)})
		return DeviceAnswer{}, err
	}
	_, nt, err := s.ssoLogin(ctx, idt.Issuer, id, tok.RefreshToken, remoteAddr, "sso (device)")
	if err != nil {
		return DeviceAnswer{}, err
	}
	s.metrics.login("sso_succeeded")
	return DeviceAnswer{Session: nt}, nil
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
