package server_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/service"
)

// Device login (RFC 8628) through the real provider: the server starts
// it, the user approves the code on the provider's page, and the CLI's
// poll brings back a session.

// startDevice starts a device login and checks the answer's shape.
func (s *ssoEnv) startDevice() gatehouse.DeviceLogin {
	s.t.Helper()
	var dl gatehouse.DeviceLogin
	s.call("POST", "/api/v1/session/device", "", struct{}{}, http.StatusOK, &dl)
	if dl.UserCode == "" || dl.Handle == "" || dl.Interval != 1 || dl.ExpiresIn < 290 || dl.ExpiresIn > 300 {
		s.t.Fatalf("device login = %+v; want a user code, a handle, interval 1 and about 300 s", dl)
	}
	if !strings.HasPrefix(dl.VerificationURI, s.op.Issuer+"/device") || !strings.Contains(dl.VerificationURIComplete, "user_code="+url.QueryEscape(dl.UserCode)) {
		s.t.Fatalf("verification URIs %q, %q; want the provider's /device page", dl.VerificationURI, dl.VerificationURIComplete)
	}
	return dl
}

// answerDevice approves (as user) or denies a user code on the
// provider's verification page, as the user's browser would.
func (s *ssoEnv) answerDevice(dl gatehouse.DeviceLogin, user, action string) {
	s.t.Helper()
	resp, err := s.browserClient(nil).PostForm(dl.VerificationURI, url.Values{"user_code": {dl.UserCode}, "username": {user}, "action": {action}})
	if err != nil {
		s.t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		s.t.Fatalf("provider's device page: %d %s", resp.StatusCode, b)
	}
}

type pollResult struct {
	status int
	body   []byte
	err    error
}

// pollDevice polls once in the background (it waits at the provider).
func (s *ssoEnv) pollDevice(handle string) <-chan pollResult {
	out := make(chan pollResult, 1)
	b, _ := json.Marshal(gatehouse.DevicePoll{Handle: handle})
	go func() {
		resp, err := http.Post(s.srv.URL+"/api/v1/session/device/token", "application/json", bytes.NewReader(b))
		if err != nil {
			out <- pollResult{err: err}
			return
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		out <- pollResult{status: resp.StatusCode, body: body, err: err}
	}()
	return out
}

func (s *ssoEnv) waitPoll(ch <-chan pollResult) (int, []byte) {
	s.t.Helper()
	select {
	case r := <-ch:
		if r.err != nil {
			s.t.Fatal(r.err)
		}
		return r.status, r.body
	case <-time.After(30 * time.Second):
		s.t.Fatal("the device poll did not answer within 30 s")
	}
	return 0, nil
}

func TestSSODeviceLogin(t *testing.T) {
	s := newSSOEnv(t, ssoPolicy)
	dl := s.startDevice()
	s.remember(dl.Handle)

	poll := s.pollDevice(dl.Handle)
	s.answerDevice(dl, "u-alice", "approve")
	status, body := s.waitPoll(poll)
	var out struct {
		Token string `json:"token"`
	}
	if status != http.StatusOK || json.Unmarshal(body, &out) != nil || out.Token == "" {
		t.Fatalf("poll after approval: %d %s; want 200 and a token", status, body)
	}
	s.remember(out.Token)

	// The session is alice's, with her groups and their roles, as after
	// a browser login.
	info, st := s.userinfo(out.Token)
	if st != http.StatusOK || info.Username != "alice@example.com" || info.TokenKind != gatehouse.KindSession ||
		!slices.Equal(info.Groups, []string{"devs"}) || !slices.Contains(info.Roles, "role:dev") {
		t.Fatalf("userinfo = %+v, %d; want alice's session with devs and role:dev", info, st)
	}
	var a gatehouse.Account
	s.call("GET", "/api/v1/account/alice@example.com", s.admin, nil, 200, &a)
	if a.Source != gatehouse.SourceSSO || !a.Enabled {
		t.Errorf("account = %+v; want an enabled SSO account", a)
	}
	// The provider's refresh token was kept (sealed): the groups follow
	// the provider in the background as after a browser login.
	s.op.SetGroups("u-alice", "ops")
	s.refresh(ssoInterval)
	if info, _ := s.userinfo(out.Token); !slices.Equal(info.Groups, []string{"ops"}) {
		t.Errorf("groups after the provider changed them = %v, want [ops]", info.Groups)
	}

	logins := eventsOf(s.env, string(gatehouse.EventLoginSucceeded))
	if len(logins) == 0 || logins[0].Actor != "alice@example.com" || logins[0].Detail != "sso (device)" || logins[0].TokenKind != gatehouse.KindSession {
		t.Errorf("login event = %+v; want alice's, detail sso (device)", logins)
	}

	// A device code is good for one login: the handle polled again is
	// refused, and no second session appears.
	status, body = s.waitPoll(s.pollDevice(dl.Handle))
	if code, _ := errorOf(t, body); status != http.StatusUnauthorized || code != gatehouse.EUNAUTHORIZED {
		t.Errorf("second poll with the same handle: %d %s; want 401", status, body)
	}
	if n := len(eventsOf(s.env, string(gatehouse.EventLoginSucceeded))); n != len(logins) {
		t.Errorf("%d logins after the replay, want %d: the replay made a session", n, len(logins))
	}
}

// While the user has not finished, a poll waits (DevicePollWait) and
// answers 202 pending; then the user denies, and the poll says so.
func TestSSODevicePendingThenDenied(t *testing.T) {
	s := newSSOEnv(t, ssoPolicy, func(o *service.SSOOptions) { o.DevicePollWait = 1500 * time.Millisecond })
	dl := s.startDevice()
	status, body := s.waitPoll(s.pollDevice(dl.Handle))
	var pending gatehouse.DevicePending
	if status != http.StatusAccepted || json.Unmarshal(body, &pending) != nil || pending != (gatehouse.DevicePending{Status: "authorization_pending", Interval: 1}) {
		t.Fatalf("poll before the user answered: %d %s; want 202 authorization_pending, interval 1", status, body)
	}
	s.answerDevice(dl, "u-alice", "deny")
	status, body = s.waitPoll(s.pollDevice(dl.Handle))
	if code, msg := errorOf(t, body); status != http.StatusUnauthorized || code != gatehouse.EUNAUTHORIZED || !strings.Contains(msg, "declined") {
		t.Fatalf("poll after the user denied: %d %s; want 401 declined", status, body)
	}
	if _, st := s.userinfo(""); st != http.StatusOK {
		t.Fatal("userinfo without a token should answer")
	}
	var list gatehouse.List[gatehouse.Account]
	s.call("GET", "/api/v1/account", s.admin, nil, 200, &list)
	for _, a := range list.Items {
		if a.Name == "alice@example.com" {
			t.Error("a denied device login created the account")
		}
	}
}

// A handle is opened only when it is this server's, for a device login,
// and not expired; anything else is refused the same way before the
// provider is asked.
func TestSSODeviceHandleRefused(t *testing.T) {
	s := newSSOEnv(t, ssoPolicy)
	dl := s.startDevice()

	// A state cookie of a browser login is sealed by the same server,
	// for another purpose.
	c := s.browserClient(func(*url.URL) bool { return true })
	resp, err := c.Get(s.srv.URL + "/auth/login")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	var stateCookie string
	for _, ck := range resp.Cookies() {
		stateCookie = ck.Value
	}
	if stateCookie == "" {
		t.Fatal("no state cookie")
	}
	flipped := []byte(dl.Handle)
	flipped[len(flipped)/2] ^= 1
	for name, h := range map[string]string{
		"garbage":         "not-a-handle",
		"tampered":        string(flipped),
		"state cookie":    stateCookie,
		"too long":        strings.Repeat("A", 5000),
		"another handle+": dl.Handle + "A",
	} {
		status, body := s.waitPoll(s.pollDevice(h))
		if code, msg := errorOf(t, body); status != http.StatusUnauthorized || code != gatehouse.EUNAUTHORIZED || !strings.Contains(msg, "--sso-device again") {
			t.Errorf("%s: %d %s; want 401 asking to start again", name, status, body)
		}
	}
	s.call("POST", "/api/v1/session/device/token", "", gatehouse.DevicePoll{}, http.StatusBadRequest, nil)

	// Expired on the service's clock: refused without asking the
	// provider, even after the user approved.
	s.answerDevice(dl, "u-alice", "approve")
	s.clock.Advance(time.Duration(dl.ExpiresIn+1) * time.Second)
	status, body := s.waitPoll(s.pollDevice(dl.Handle))
	if status != http.StatusUnauthorized {
		t.Errorf("expired handle: %d %s; want 401", status, body)
	}
}

// A provider that does not let the client use the device grant: the
// start says so, and nothing changes.
func TestSSODeviceGrantNotAllowed(t *testing.T) {
	s := newSSOEnv(t, ssoPolicy)
	s.op.SetDeviceGrant(false)
	status, body := s.do("POST", "/api/v1/session/device", "", struct{}{})
	if code, msg := errorOf(t, body); status != http.StatusUnauthorized || code != gatehouse.EUNAUTHORIZED || !strings.Contains(msg, "unauthorized_client") {
		t.Fatalf("start with the grant not allowed: %d %s; want 401 naming unauthorized_client", status, body)
	}
}

// Without SSO the device endpoints answer 404, like /auth/login.
func TestSSODeviceWithoutSSO(t *testing.T) {
	e := newEnv(t)
	e.call("POST", "/api/v1/session/device", "", struct{}{}, http.StatusNotFound, nil)
	e.call("POST", "/api/v1/session/device/token", "", gatehouse.DevicePoll{Handle: "x"}, http.StatusNotFound, nil)
}
