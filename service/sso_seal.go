package service

import (
	"encoding/base64"
	"encoding/json"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse/internal/seal"
)

// Four things of an SSO login are sealed with keys derived from the OIDC
// client secret, which every replica is configured with and the store
// never holds:
//
//   - the login's state (state, nonce, PKCE verifier, where a CLI waits),
//     carried by the browser in a short-lived cookie from GET /auth/login
//     to GET /auth/callback. No replica keeps it, so the callback may land
//     on another replica or after a restart;
//   - a CLI login waiting for the browser's user to confirm it (the
//     account, its provider's user, where the CLI waits, and a random id
//     its answer records as used), carried in a cookie from the
//     callback's confirmation page to its answer;
//   - a device login's device code, carried by the CLI in the handle it
//     polls with (see sso_device.go);
//   - the provider's refresh token, at rest in the store. A copy of the
//     database alone cannot use it.
//
// Each seal is AES-256-GCM under HKDF-SHA256(client secret, random salt,
// purpose), with what it belongs to (the cookie, or the account and
// issuer) as additional data, so a sealed value opens only for its own
// purpose and owner.

const (
	stateInfo   = "gatehouse sso state v1"
	refreshInfo = "gatehouse sso refresh token v1"
	pendingInfo = "gatehouse sso cli confirmation v1"

	// stateTTL is how long a login may take at the identity provider.
	stateTTL = 10 * time.Minute
	// maxStateCookie bounds the cookie value opened.
	maxStateCookie = 1500
	// pendingTTL is how long a CLI login waits for the browser's user to
	// confirm it.
	pendingTTL = 5 * time.Minute
)

var sealEncoding = base64.RawURLEncoding.Strict()

// sealer seals with keys derived from the client secret.
type sealer struct{ seal.Sealer }

var errSeal = seal.ErrOpen

func (k sealer) seal(plain []byte, info string, ad []byte) ([]byte, error) {
	return k.Seal(plain, info, ad)
}

func (k sealer) open(b []byte, info string, ad []byte) ([]byte, error) {
	return k.Open(b, info, ad)
}

// loginState is what the browser carries between /auth/login and
// /auth/callback.
type loginState struct {
	State    string `json:"s"`
	Nonce    string `json:"n"`
	Verifier string `json:"v"`
	Expires  int64  `json:"e"` // Unix milliseconds
	// A CLI login: the loopback port it listens on and its public key.
	CLIPort int    `json:"p,omitempty"`
	CLIKey  string `json:"k,omitempty"`
}

const stateAD = "gatehouse.sso state cookie"

func (k sealer) sealState(st loginState) (string, error) {
	plain, err := json.Marshal(st)
	if err != nil {
		return "", err
	}
	b, err := k.seal(plain, stateInfo, []byte(stateAD))
	if err != nil {
		return "", err
	}
	return sealEncoding.EncodeToString(b), nil
}

// openState opens a state cookie and checks that it has not expired at
// now. It reports only whether it did: whatever is wrong with a cookie,
// the login starts again.
func (k sealer) openState(v string, now time.Time) (loginState, bool) {
	if v == "" || len(v) > maxStateCookie || strings.ContainsAny(v, "\r\n") {
		return loginState{}, false
	}
	b, err := sealEncoding.DecodeString(v)
	if err != nil {
		return loginState{}, false
	}
	plain, err := k.open(b, stateInfo, []byte(stateAD))
	if err != nil {
		return loginState{}, false
	}
	var st loginState
	if json.Unmarshal(plain, &st) != nil || st.State == "" || st.Nonce == "" || st.Verifier == "" {
		return loginState{}, false
	}
	if !now.Before(time.UnixMilli(st.Expires)) {
		return loginState{}, false
	}
	return st, true
}

func refreshAD(account, issuer string) []byte {
	return []byte("gatehouse.sso refresh token\x00" + account + "\x00" + issuer)
}

// sealRefresh seals a refresh token for an account; "" seals to nil.
func (k sealer) sealRefresh(account, issuer, rt string) ([]byte, error) {
	if rt == "" {
		return nil, nil
	}
	return k.seal([]byte(rt), refreshInfo, refreshAD(account, issuer))
}

func (k sealer) openRefresh(account, issuer string, sealed []byte) (string, error) {
	plain, err := k.open(sealed, refreshInfo, refreshAD(account, issuer))
	if err != nil {
		return "", err
	}
	return string(plain), nil
}

// cliPending is a CLI login the provider vouched for, waiting for the
// browser's user to confirm it. ID names this confirmation in the store's
// record of its answer (see answerCLI): the cookie is cleared by the
// answer only in the browser, and a copy of it stays sealed and good
// until Expires.
type cliPending struct {
	ID      string `json:"u"`
	Account string `json:"a"`
	Issuer  string `json:"i"`
	Subject string `json:"s"`
	CLIPort int    `json:"p"`
	CLIKey  string `json:"k"`
	Expires int64  `json:"e"` // Unix milliseconds
}

const pendingAD = "gatehouse.sso cli confirmation cookie"

func (k sealer) sealPending(p cliPending) (string, error) {
	plain, err := json.Marshal(p)
	if err != nil {
		return "", err
	}
	b, err := k.seal(plain, pendingInfo, []byte(pendingAD))
	if err != nil {
		return "", err
	}
	return sealEncoding.EncodeToString(b), nil
}

// openPending opens a confirmation cookie that has not expired at now.
func (k sealer) openPending(v string, now time.Time) (cliPending, bool) {
	if v == "" || len(v) > maxStateCookie*2 || strings.ContainsAny(v, "\r\n") {
		return cliPending{}, false
	}
	b, err := sealEncoding.DecodeString(v)
	if err != nil {
		return cliPending{}, false
	}
	plain, err := k.open(b, pendingInfo, []byte(pendingAD))
	if err != nil {
		return cliPending{}, false
	}
	var p cliPending
	if json.Unmarshal(plain, &p) != nil || p.ID == "" || p.Account == "" || p.Subject == "" || p.CLIPort == 0 || p.CLIKey == "" {
		return cliPending{}, false
	}
	if !now.Before(time.UnixMilli(p.Expires)) {
		return cliPending{}, false
	}
	return p, true
}
