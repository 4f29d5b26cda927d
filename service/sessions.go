package service

import (
	"context"
	"crypto/subtle"
	"encoding/base64"
	"io"
	"strconv"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/gatehouse/gatehouse"
)

// errBadLogin is the one answer to every failed login, whatever failed.
var errBadLogin = gatehouse.Errorf(gatehouse.EUNAUTHORIZED, "invalid username or password")

// loginWait is how long a login waits for a password-check slot before
// it is told to come back.
const loginWait = 5 * time.Second

// Login checks a password and mints a session token. Unknown users,
// disabled accounts, accounts without the login capability and wrong
// passwords get the same answer after the same bcrypt work.
func (s *Service) Login(ctx context.Context, username, password, remoteAddr string) (gatehouse.NewToken, error) {
	now := s.now()
	id, err := s.attemptID()
	if err != nil {
		return gatehouse.NewToken{}, err
	}
	wait, err := s.logins.reserve(ctx, s.store, id, username, remoteAddr, now)
	if err != nil {
		// The budget cannot be read or taken: refuse rather than let a
		// guess through uncounted.
		return gatehouse.NewToken{}, err
	}
	if wait > 0 {
		s.metrics.login("throttled")
		s.recordLifecycle(ctx, gatehouse.Event{Type: gatehouse.EventLoginThrottled, Actor: username, Account: username, RemoteAddr: remoteAddr})
		return gatehouse.NewToken{}, &gatehouse.Error{
			Code: gatehouse.ETHROTTLED, RetryAfter: wait,
			Message: "too many failed logins; try again in " + seconds(wait),
		}
	}
	if !s.logins.acquire(ctx, loginWait) {
		s.settleLogin(ctx, id, username, loginNotRun)
		s.metrics.login("busy")
		return gatehouse.NewToken{}, &gatehouse.Error{Code: gatehouse.ETHROTTLED, RetryAfter: time.Second, Message: "too many logins in progress; try again in 1 second"}
	}
	a := s.accounts.get(username)
	hash := s.dummyHash()
	if a != nil && len(a.PasswordHash) > 0 {
		hash = a.PasswordHash
	}
	err = bcrypt.CompareHashAndPassword(hash, []byte(password))
	s.logins.release()
	// SSO accounts have no password: they log in through the provider.
	if err != nil || a == nil || !a.Enabled || !a.Has(gatehouse.CapLogin) || len(a.PasswordHash) == 0 || a.IsSSO() {
		s.settleLogin(ctx, id, username, loginFailed)
		s.metrics.login("failed")
		s.recordLifecycle(ctx, gatehouse.Event{Type: gatehouse.EventLoginFailed, Actor: username, Account: username, RemoteAddr: remoteAddr})
		return gatehouse.NewToken{}, errBadLogin
	}
	s.settleLogin(ctx, id, username, loginSucceeded)
	rec := gatehouse.Token{
		Name:      "session",
		Kind:      gatehouse.KindSession,
		Account:   a.Name,
		CreatedBy: a.Name,
		ExpiresAt: now.Add(s.defaultLifetime),
	}
	nt, err := s.mint(ctx, nil, rec, passwordStillValid(ctx, a.Name, a.PasswordHash), gatehouse.Event{Type: gatehouse.EventLoginSucceeded, Actor: a.Name, Account: a.Name, RemoteAddr: remoteAddr})
	if err != nil {
		return gatehouse.NewToken{}, err
	}
	s.metrics.login("succeeded")
	return nt, nil
}

// attemptID names a login attempt in the store's failure budget.
func (s *Service) attemptID() (string, error) {
	b := make([]byte, 16)
	if _, err := io.ReadFull(s.rand, b); err != nil {
		return "", gatehouse.Internal(err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// settleLogin settles a reserved attempt. A failure to write leaves the
// attempt pending, which counts against the budget until it leaves the
// window: the answer to the caller stays what the password check said.
func (s *Service) settleLogin(ctx context.Context, id, username string, outcome loginOutcome) {
	if err := s.logins.done(ctx, s.store, id, username, outcome); err != nil {
		s.log.ErrorContext(ctx, "settling a login attempt", "err", err)
	}
}

// passwordStillValid is a login's in-transaction check: the account may
// still log in, and its password is still the one just verified. bcrypt
// runs outside any transaction, so without this a login that began before
// a password change (or before the account was deleted and created anew
// under the same name) would mint a session after it.
func passwordStillValid(ctx context.Context, account string, verified []byte) func(gatehouse.Tx) error {
	return func(tx gatehouse.Tx) error {
		a, err := tx.GetAccount(ctx, account)
		if gatehouse.IsCode(err, gatehouse.ENOTFOUND) {
			return errBadLogin
		}
		if err != nil {
			return err
		}
		if !a.Enabled || !a.Has(gatehouse.CapLogin) || a.IsSSO() || subtle.ConstantTimeCompare(a.PasswordHash, verified) != 1 {
			return errBadLogin
		}
		return nil
	}
}

// Logout revokes the caller's session token.
func (s *Service) Logout(ctx context.Context, p *Principal) error {
	p.self("session", "delete", p.subject)
	if p.kind != gatehouse.KindSession {
		return gatehouse.Errorf(gatehouse.EINVALID, "logout needs a session token; revoke an API token with its delete call")
	}
	_, err := s.revoke(ctx, p, gatehouse.TokenFilter{ID: p.tokenID}, gatehouse.EventLogout, "logout")
	return err
}

// UserInfo describes the caller, with its effective roles now.
func (s *Service) UserInfo(p *Principal) gatehouse.UserInfo {
	if p == nil {
		return gatehouse.UserInfo{LoggedIn: false}
	}
	p.self("session", "get", p.subject)
	info := gatehouse.UserInfo{
		LoggedIn:  true,
		Username:  p.subject,
		Iss:       s.instance,
		Groups:    p.groups,
		TokenID:   p.tokenID,
		TokenKind: p.kind,
		ExpiresAt: p.expiresAt,
	}
	if e := s.engine.Load(); e != nil {
		info.Roles = e.Roles(p.subject, p.groups)
	}
	if info.Groups == nil {
		info.Groups = []string{}
	}
	if info.Roles == nil {
		info.Roles = []string{}
	}
	return info
}

// dummyHash is a bcrypt hash at the server's cost, compared against when
// the user is unknown so that the answer takes the same time.
func (s *Service) dummyHash() []byte {
	s.dummyOnce.Do(func() {
		s.dummy, _ = bcrypt.GenerateFromPassword([]byte("gatehouse-dummy-password"), s.bcryptCost)
	})
	return s.dummy
}

func randomPassword(r io.Reader) (string, error) {
	b := make([]byte, 18)
	if _, err := io.ReadFull(r, b); err != nil {
		return "", gatehouse.Internal(err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

func seconds(d time.Duration) string {
	n := int64((d + time.Second - 1) / time.Second)
	if n == 1 {
		return "1 second"
	}
	return strconv.FormatInt(n, 10) + " seconds"
}
