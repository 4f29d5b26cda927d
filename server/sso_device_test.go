package server_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/service"
)

// Device login (RFC 8628) through the real provider: the server starts
// it, the user approves the code on the provider's page, and the CLI's
// polls bring back a session.

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
	s.remember(dl.Handle)
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

// poll polls once.
func (s *ssoEnv) poll(handle string) (int, []byte) {
	s.t.Helper()
	return s.do("POST", "/api/v1/session/device/token", "", gatehouse.DevicePoll{Handle: handle})
}

// pollUntilAnswered polls as the CLI does, at the interval each 202
// gives, until the answer is not 202.
func (s *ssoEnv) pollUntilAnswered(handle string) (int, []byte) {
	s.t.Helper()
	for range 20 {
		status, body := s.poll(handle)
		if status != http.StatusAccepted {
			return status, body
		}
		var p gatehouse.DevicePending
		if err := json.Unmarshal(body, &p); err != nil || p.Status != "authorization_pending" || p.Interval < 1 {
			s.t.Fatalf("202 answer %s", body)
		}
		time.Sleep(time.Duration(p.Interval) * time.Second)
	}
	s.t.Fatal("still pending after 20 polls")
	return 0, nil
}

// tokenCalls counts the requests that reach the provider's token
// endpoint, and can make its answers slow.
type tokenCalls struct {
	next  http.RoundTripper
	n     atomic.Int64
	delay atomic.Int64 // nanoseconds
}

func (c *tokenCalls) RoundTrip(req *http.Request) (*http.Response, error) {
	if strings.HasSuffix(req.URL.Path, "/token") {
		c.n.Add(1)
		if d := time.Duration(c.delay.Load()); d > 0 {
			time.Sleep(d)
		}
	}
	return c.next.RoundTrip(req)
}

// countTokenCalls puts a tokenCalls between Gatehouse and the provider.
func countTokenCalls(c *tokenCalls) func(*service.SSOOptions) {
	return func(o *service.SSOOptions) {
		hc := *o.HTTPClient
		c.next = hc.Transport
		hc.Transport = c
		o.HTTPClient = &hc
	}
}

func TestSSODeviceLogin(t *testing.T) {
	s := newSSOEnv(t, ssoPolicy)
	dl := s.startDevice()

	// Before the user answers: 202, wait the provider's interval.
	status, body := s.poll(dl.Handle)
	if status != http.StatusAccepted || !strings.Contains(string(body), `"status":"authorization_pending","interval":1`) {
		t.Fatalf("poll before the user answered: %d %s; want 202 authorization_pending, interval 1", status, body)
	}
	s.answerDevice(dl, "u-alice", "approve")
	status, body = s.pollUntilAnswered(dl.Handle)
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
	status, body = s.poll(dl.Handle)
	if code, msg := errorOf(t, body); status != http.StatusUnauthorized || code != gatehouse.EUNAUTHORIZED || !strings.Contains(msg, "--sso-device again") {
		t.Errorf("second poll with the same handle: %d %s; want 401 asking to start again", status, body)
	}
	if n := len(eventsOf(s.env, string(gatehouse.EventLoginSucceeded))); n != len(logins) {
		t.Errorf("%d logins after the replay, want %d: the replay made a session", n, len(logins))
	}
}

// The server asks the provider at most once per interval about a device
// code, and only one poll at a time, however many polls arrive; a
// denial at the provider is final.
func TestSSODevicePacedThenDenied(t *testing.T) {
	calls := &tokenCalls{}
	s := newSSOEnv(t, ssoPolicy, countTokenCalls(calls))
	dl := s.startDevice()
	var wg sync.WaitGroup
	var accepted atomic.Int64
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := http.Post(s.srv.URL+"/api/v1/session/device/token", "application/json", strings.NewReader(`{"handle":"`+dl.Handle+`"}`))
			if err != nil {
				t.Error(err)
				return
			}
			resp.Body.Close()
			if resp.StatusCode == http.StatusAccepted {
				accepted.Add(1)
			}
		}()
	}
	wg.Wait()
	if accepted.Load() != 20 || calls.n.Load() != 1 {
		t.Fatalf("20 concurrent polls: %d answered 202, %d questions to the provider; want 20 and 1", accepted.Load(), calls.n.Load())
	}
	// At once again: still paced.
	if status, _ := s.poll(dl.Handle); status != http.StatusAccepted || calls.n.Load() != 1 {
		t.Fatalf("a poll within the interval: %d, %d questions; want 202 and still 1", status, calls.n.Load())
	}
	s.answerDevice(dl, "u-alice", "deny")
	status, body := s.pollUntilAnswered(dl.Handle)
	if code, msg := errorOf(t, body); status != http.StatusUnauthorized || code != gatehouse.EUNAUTHORIZED || !strings.Contains(msg, "declined") {
		t.Fatalf("poll after the user denied: %d %s; want 401 declined", status, body)
	}
	var list gatehouse.List[gatehouse.Account]
	s.call("GET", "/api/v1/account", s.admin, nil, 200, &list)
	for _, a := range list.Items {
		if a.Name == "alice@example.com" {
			t.Error("a denied device login created the account")
		}
	}
}

// A provider slow to answer does not lose the user's approval: the
// question runs to its end.
func TestSSODeviceSlowProvider(t *testing.T) {
	calls := &tokenCalls{}
	s := newSSOEnv(t, ssoPolicy, countTokenCalls(calls))
	dl := s.startDevice()
	s.answerDevice(dl, "u-alice", "approve")
	calls.delay.Store(int64(2 * time.Second))
	status, body := s.pollUntilAnswered(dl.Handle)
	if status != http.StatusOK || !strings.Contains(string(body), `"token"`) {
		t.Fatalf("poll with a slow provider: %d %s; want 200 and the session", status, body)
	}
	var out struct{ Token string }
	_ = json.Unmarshal(body, &out)
	s.remember(out.Token)
}

// A client that hangs up while its poll waits is no server error: no
// 500, no error in the log, and the device code is not spent.
func TestSSODeviceClientGone(t *testing.T) {
	s := newSSOEnv(t, ssoPolicy)
	dl := s.startDevice()
	for range 3 {
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		req, _ := http.NewRequestWithContext(ctx, "POST", s.srv.URL+"/api/v1/session/device/token", strings.NewReader(`{"handle":"`+dl.Handle+`"}`))
		req.Header.Set("Content-Type", "application/json")
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
		}
		cancel()
		time.Sleep(1200 * time.Millisecond) // past the interval
	}
	if strings.Contains(string(s.logs.Bytes()), `"level":"ERROR"`) {
		t.Errorf("a client that hung up was logged as an error:\n%s", s.logs.Bytes())
	}
	s.answerDevice(dl, "u-alice", "approve")
	if status, body := s.pollUntilAnswered(dl.Handle); status != http.StatusOK {
		t.Fatalf("after the hang-ups: %d %s; want the login to finish", status, body)
	} else {
		var out struct{ Token string }
		_ = json.Unmarshal(body, &out)
		s.remember(out.Token)
	}
}

// A handle is opened only when it is this server's, for a device login,
// and not expired; anything else is refused the same way before the
// provider is asked.
func TestSSODeviceHandleRefused(t *testing.T) {
	calls := &tokenCalls{}
	s := newSSOEnv(t, ssoPolicy, countTokenCalls(calls))
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
		"garbage":      "not-a-handle",
		"tampered":     string(flipped),
		"state cookie": stateCookie,
		"too long":     strings.Repeat("A", 5000),
		"extended":     dl.Handle + "A",
	} {
		status, body := s.poll(h)
		if code, msg := errorOf(t, body); status != http.StatusUnauthorized || code != gatehouse.EUNAUTHORIZED || !strings.Contains(msg, "--sso-device again") {
			t.Errorf("%s: %d %s; want 401 asking to start again", name, status, body)
		}
	}
	s.call("POST", "/api/v1/session/device/token", "", gatehouse.DevicePoll{}, http.StatusBadRequest, nil)
	if n := calls.n.Load(); n != 0 {
		t.Errorf("refused handles made %d questions to the provider", n)
	}

	// Expired on the service's clock: refused without asking the
	// provider, even after the user approved.
	s.answerDevice(dl, "u-alice", "approve")
	s.clock.Advance(time.Duration(dl.ExpiresIn+1) * time.Second)
	if status, body := s.poll(dl.Handle); status != http.StatusUnauthorized || calls.n.Load() != 0 {
		t.Errorf("expired handle: %d %s, %d questions; want 401 and none", status, body, calls.n.Load())
	}
}

// One address may start only so many device logins a minute (each asks
// the provider with the client's secret).
func TestSSODeviceStartsThrottled(t *testing.T) {
	s := newSSOEnv(t, ssoPolicy)
	for range 10 {
		s.startDevice()
	}
	req, _ := http.NewRequest("POST", s.srv.URL+"/api/v1/session/device", strings.NewReader("{}"))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("the 11th start in a minute: %d, Retry-After %q; want 429 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"))
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

// Device login is off unless configured, and off without SSO: 404.
func TestSSODeviceOff(t *testing.T) {
	e := newEnv(t)
	e.call("POST", "/api/v1/session/device", "", struct{}{}, http.StatusNotFound, nil)
	e.call("POST", "/api/v1/session/device/token", "", gatehouse.DevicePoll{Handle: "x"}, http.StatusNotFound, nil)

	s := newSSOEnv(t, ssoPolicy, func(o *service.SSOOptions) { o.DeviceLogin = false })
	status, body := s.do("POST", "/api/v1/session/device", "", struct{}{})
	if _, msg := errorOf(t, body); status != http.StatusNotFound || !strings.Contains(msg, "sso.oidc.deviceLogin") {
		t.Fatalf("start with device login off: %d %s; want 404 naming sso.oidc.deviceLogin", status, body)
	}
}
