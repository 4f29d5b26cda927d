package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/internal/testop"
	"github.com/gatehouse/gatehouse/server"
	"github.com/gatehouse/gatehouse/service"
	"github.com/gatehouse/gatehouse/store/sqlite"
)

const (
	ssoClientID     = "gatehouse"
	ssoClientSecret = "client-secret-of-the-test-provider-7c1f"
	// The test intervals, on the service's clock: refreshed every minute,
	// refused five minutes after the provider last confirmed the groups.
	ssoInterval = time.Minute
	ssoMaxAge   = 5 * time.Minute
)

// ssoEnv is a Gatehouse server with SSO through a real OpenID provider
// (internal/testop) running beside it.
type ssoEnv struct {
	*env
	op  *testop.Provider
	sso service.SSOOptions // the server's, for replicas of it
}

// newSSOEnv starts the provider, then Gatehouse configured to use it,
// with alice (groups devs) at the provider. Every ID, access and refresh
// token the provider hands Gatehouse is remembered, so that the env's
// cleanup fails the test if one of them, the client secret or a session
// token reached the log or the database.
func newSSOEnv(t *testing.T, policy string, adjust ...func(*service.SSOOptions)) *ssoEnv {
	t.Helper()
	ctx := context.Background()
	op := testop.New(t, testop.Options{ClientID: ssoClientID, ClientSecret: ssoClientSecret})
	op.AddUser(testop.User{ID: "u-alice", Email: "alice@example.com", EmailVerified: true, Groups: []string{"devs"}})

	ln := listen(t)
	base := "http://" + ln.Addr().String()
	op.SetRedirectURIs([]string{base + "/auth/callback"}, []string{base + "/"})

	dbPath := filepath.Join(t.TempDir(), "gatehouse.db")
	st, err := sqlite.Open(ctx, dbPath)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC().Truncate(time.Second)
	clk := &clock{t: now}
	logs := &lockedBuffer{}
	log := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	e := &env{t: t, clock: clk, dbPath: dbPath, logs: logs}
	hc := op.Client()
	hc.Transport = &recordSecrets{next: hc.Transport, e: e}
	sso := &service.SSOOptions{
		Name: "Acme SSO", Issuer: op.Issuer, ClientID: ssoClientID, ClientSecret: ssoClientSecret,
		RedirectURL:           base + "/auth/callback",
		GroupsRefreshInterval: ssoInterval, GroupsMaxAge: ssoMaxAge,
		HTTPClient: hc, DeviceLogin: true,
	}
	for _, f := range adjust {
		f(sso)
	}
	svc, err := service.New(ctx, service.Options{
		Store: st, Now: clk.Now, BcryptCost: 10, Logger: log,
		RBAC: gatehouse.RBAC{PolicyCSV: policy}, SSO: sso,
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Bootstrap(ctx, adminPassword); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(server.New(server.Options{Service: svc, Logger: log}))
	srv.Listener.Close()
	srv.Listener = ln
	srv.Start()
	bg, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); svc.Run(bg, time.Hour) }()
	e.srv, e.svc = srv, svc
	e.remember(ssoClientSecret)
	t.Cleanup(func() {
		srv.Close()
		stop()
		<-done
		st.Close()
		for _, rt := range op.RefreshTokens() {
			e.remember(rt)
		}
		e.checkNoSecretLeaked()
	})
	e.admin = e.login("admin", adminPassword)
	return &ssoEnv{env: e, op: op, sso: *sso}
}

// replicaOptions configure another replica of the env's server on st (a
// store on the same database): the same clock and SSO configuration, the
// provider's answers checked for leaks as the server's are.
func (s *ssoEnv) replicaOptions(st gatehouse.Store) service.Options {
	sso := s.sso
	return service.Options{Store: st, Now: s.clock.Now, BcryptCost: 10, SSO: &sso}
}

// recordSecrets remembers every token in the provider's token endpoint
// answers, and the device code of its device authorization answers.
type recordSecrets struct {
	next http.RoundTripper
	e    *env
}

func (r *recordSecrets) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := r.next.RoundTrip(req)
	if err != nil || !strings.HasSuffix(req.URL.Path, "/token") && !strings.HasSuffix(req.URL.Path, "/device_authorization") {
		return resp, err
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	resp.Body = io.NopCloser(bytes.NewReader(b))
	var tr struct {
		IDToken      string `json:"id_token"`
		AccessToken  string `json:"access_token"`
		RefreshToken string `json:"refresh_token"`
		DeviceCode   string `json:"device_code"`
	}
	if json.Unmarshal(b, &tr) == nil {
		for _, s := range []string{tr.IDToken, tr.AccessToken, tr.RefreshToken, tr.DeviceCode} {
			if s != "" {
				r.e.remember(s)
			}
		}
	}
	return resp, nil
}

// browserClient is an HTTP client with its own cookie jar, as one
// browser. It follows redirects unless stop says to stop at a URL.
func (s *ssoEnv) browserClient(stop func(*url.URL) bool) *http.Client {
	jar, err := cookiejar.New(nil)
	if err != nil {
		s.t.Fatal(err)
	}
	return &http.Client{Jar: jar, Timeout: 10 * time.Second, CheckRedirect: func(req *http.Request, via []*http.Request) error {
		if stop != nil && stop(req.URL) {
			return http.ErrUseLastResponse
		}
		if len(via) > 20 {
			return http.ErrUseLastResponse
		}
		return nil
	}}
}

// atCallback stops a browser at Gatehouse's callback, so a test can look
// at (or change) what the provider sent back.
func (s *ssoEnv) atCallback(u *url.URL) bool {
	return strings.HasPrefix(u.String(), s.srv.URL+"/auth/callback")
}

// begin starts a login in browser c and lets the provider log user in;
// it returns the callback URL the provider sent the browser to.
func (s *ssoEnv) begin(c *http.Client, user string) *url.URL {
	s.t.Helper()
	s.op.AutoLogin(user)
	resp, err := c.Get(s.srv.URL + "/auth/login")
	if err != nil {
		s.t.Fatal(err)
	}
	resp.Body.Close()
	loc, err := resp.Location()
	if resp.StatusCode/100 != 3 || err != nil || !s.atCallback(loc) {
		s.t.Fatalf("login did not come back to the callback: status %d, location %v", resp.StatusCode, loc)
	}
	return loc
}

// finish follows the callback URL in c and returns the status and body.
func (s *ssoEnv) finish(c *http.Client, callback *url.URL) (int, string) {
	s.t.Helper()
	resp, err := c.Get(callback.String())
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// session is the session cookie browser c holds, "" for none.
func (s *ssoEnv) session(c *http.Client) string {
	u, _ := url.Parse(s.srv.URL)
	for _, ck := range c.Jar.Cookies(u) {
		if ck.Name == server.CookieName {
			s.remember(ck.Value)
			return ck.Value
		}
	}
	return ""
}

// ssoLogin logs user in through the provider and returns the session.
func (s *ssoEnv) ssoLogin(user string) string {
	s.t.Helper()
	c := s.browserClient(s.atCallback)
	status, body := s.finish(c, s.begin(c, user))
	tok := s.session(c)
	if status != http.StatusOK || tok == "" {
		s.t.Fatalf("SSO login of %s: status %d, session %t; body %s", user, status, tok != "", body)
	}
	return tok
}

// userinfo returns who the token is now, or the status when refused.
func (s *ssoEnv) userinfo(tok string) (gatehouse.UserInfo, int) {
	s.t.Helper()
	status, b := s.do("GET", "/api/v1/session/userinfo", tok, nil)
	var info gatehouse.UserInfo
	if status == http.StatusOK {
		if err := json.Unmarshal(b, &info); err != nil {
			s.t.Fatal(err)
		}
	}
	return info, status
}

// canI asks whether tok may do action on resource/object ("yes"/"no"),
// or returns the status of a refused request.
func (s *ssoEnv) canI(tok, resource, action, object string) string {
	s.t.Helper()
	status, b := s.do("GET", "/api/v1/account/can-i/"+resource+"/"+action+"/"+object, tok, nil)
	if status != http.StatusOK {
		return http.StatusText(status)
	}
	var out struct{ Value string }
	if err := json.Unmarshal(b, &out); err != nil {
		s.t.Fatalf("can-i: %s", b)
	}
	return out.Value
}

// refresh advances the service's clock by d and runs one background
// group refresh.
func (s *ssoEnv) refresh(d time.Duration) {
	s.t.Helper()
	s.clock.Advance(d)
	if _, err := s.svc.RefreshSSOGroups(context.Background()); err != nil {
		s.t.Fatal(err)
	}
}

type ssoOptions = service.SSOOptions

func newJar() (http.CookieJar, error) { return cookiejar.New(nil) }

func ioCopy(w io.Writer, resp *http.Response) (int64, error) {
	defer resp.Body.Close()
	return io.Copy(w, resp.Body)
}
