package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/server"
	"github.com/gatehouse/gatehouse/service"
	"github.com/gatehouse/gatehouse/store/sqlite"
)

const adminPassword = "admin-password-for-tests"

// clock is a settable clock for the service.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// env is a real Gatehouse server (httptest + SQLite store in a temp dir)
// with an admin session.
type env struct {
	logs    *lockedBuffer
	mu      sync.Mutex
	secrets []string // every password and token this test used
	t       *testing.T
	srv     *httptest.Server
	svc     *service.Service
	clock   *clock
	dbPath  string
	admin   string
}

// envSettings configure a test env: the service's options and the
// server's forward-auth routes.
type envSettings struct {
	service.Options
	Routes         []server.Route
	TrustedProxies []netip.Prefix
	LogTo          io.Writer
	Version        string
}

type envOption func(*envSettings)

func withRoutes(routes ...server.Route) envOption {
	return func(o *envSettings) { o.Routes = routes }
}

func withTrustedProxies(prefixes ...string) envOption {
	return func(o *envSettings) {
		o.TrustedProxies = []netip.Prefix{}
		for _, p := range prefixes {
			o.TrustedProxies = append(o.TrustedProxies, netip.MustParsePrefix(p))
		}
	}
}

// withLogger also sends the service's and the server's JSON logs to w.
func withLogger(w io.Writer) envOption {
	return func(o *envSettings) { o.LogTo = w }
}

func withVersion(v string) envOption {
	return func(o *envSettings) { o.Version = v }
}

func withPolicy(csv, def string) envOption {
	return func(o *envSettings) { o.RBAC = gatehouse.RBAC{PolicyCSV: csv, PolicyDefault: def} }
}

func newEnv(t *testing.T, opts ...envOption) *env {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	dbPath := filepath.Join(dir, "gatehouse.db")
	st, err := sqlite.Open(ctx, dbPath)
	if err != nil {
		t.Fatal(err)
	}
	clk := &clock{t: time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)}
	o := envSettings{Options: service.Options{Store: st, Now: clk.Now, BcryptCost: 10}}
	for _, opt := range opts {
		opt(&o)
	}
	// Every test's logs are kept, to be searched for secrets at the end.
	logs := &lockedBuffer{}
	var logTo io.Writer = logs
	// The access log is encoded onto logs directly, as the server's is
	// onto its log buffer; a writer of the test's own may not be safe for
	// concurrent writes, so with one the access log goes through the
	// logger (the other path).
	var accessTo io.Writer = logs
	if o.LogTo != nil {
		logTo, accessTo = io.MultiWriter(logs, o.LogTo), nil
	}
	o.Logger = slog.New(slog.NewJSONHandler(logTo, &slog.HandlerOptions{Level: slog.LevelDebug}))
	svc, err := service.New(ctx, o.Options)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Bootstrap(ctx, adminPassword); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(server.New(server.Options{Service: svc, Logger: o.Logger, LogWriter: accessTo, ForwardAuth: o.Routes, TrustedProxies: o.TrustedProxies, Version: o.Version}))
	bg, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); svc.Run(bg, time.Hour) }()
	e := &env{t: t, srv: srv, svc: svc, clock: clk, dbPath: dbPath, logs: logs}
	t.Cleanup(func() {
		srv.Close()
		stop()
		<-done // Run flushes the audit queue on its way out
		st.Close()
		e.checkNoSecretLeaked()
	})
	e.admin = e.login("admin", adminPassword)
	return e
}

// do sends a request with an optional bearer token and JSON body and
// returns the status and body.
func (e *env) do(method, path, tok string, body any) (int, []byte) {
	e.t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			e.t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, e.srv.URL+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	if method != http.MethodGet {
		req.Header.Set("Content-Type", "application/json")
	}
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	return e.send(req)
}

func (e *env) send(req *http.Request) (int, []byte) {
	e.t.Helper()
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return resp.StatusCode, b
}

// call does a request, checks the status and decodes the answer into out
// (when not nil).
func (e *env) call(method, path, tok string, body any, want int, out any) {
	e.t.Helper()
	got, b := e.do(method, path, tok, body)
	if got != want {
		e.t.Fatalf("%s %s: status %d, want %d; body %s", method, path, got, want, b)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			e.t.Fatalf("%s %s: decoding %s: %v", method, path, b, err)
		}
	}
}

// status returns only the status of a request.
func (e *env) status(method, path, tok string, body any) int {
	e.t.Helper()
	s, _ := e.do(method, path, tok, body)
	return s
}

func (e *env) login(user, password string) string {
	e.t.Helper()
	var out struct{ Token string }
	e.call("POST", "/api/v1/session", "", gatehouse.LoginRequest{Username: user, Password: password}, 200, &out)
	if out.Token == "" {
		e.t.Fatal("login returned no token")
	}
	e.remember(password, out.Token)
	return out.Token
}

// remember notes secrets the test used; at cleanup neither the logs nor
// the database may contain any of them, nor any token's body.
func (e *env) remember(secrets ...string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, s := range secrets {
		e.secrets = append(e.secrets, s)
		if _, body, ok := strings.Cut(s, ":"); ok && len(body) > 40 {
			e.secrets = append(e.secrets, body)
		}
	}
}

// checkNoSecretLeaked greps this test's logs and database files for every
// secret it used: every server test is also a leak test.
func (e *env) checkNoSecretLeaked() {
	e.checkNoSecretIn("the log", e.logs.Bytes())
	files, _ := filepath.Glob(e.dbPath + "*")
	for _, f := range files {
		if b, err := os.ReadFile(f); err == nil {
			e.checkNoSecretIn(filepath.Base(f), b)
		}
	}
}

// checkNoSecretIn fails the test if b (named what) contains a secret the
// test used, as it is or form-encoded (as a request quoted back would
// spell it).
func (e *env) checkNoSecretIn(what string, b []byte) {
	e.t.Helper()
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, s := range e.secrets {
		if bytes.Contains(b, []byte(s)) || bytes.Contains(b, []byte(url.QueryEscape(s))) {
			e.t.Errorf("%s contains a secret the test used (%d bytes long)", what, len(s))
		}
	}
}

// lockedBuffer is a bytes.Buffer safe for concurrent writers.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) Bytes() []byte {
	l.mu.Lock()
	defer l.mu.Unlock()
	return bytes.Clone(l.b.Bytes())
}

// createUser creates an account with both capabilities and a password.
func (e *env) createUser(name string, groups ...string) {
	e.t.Helper()
	e.remember(name + "-password")
	e.call("POST", "/api/v1/account", e.admin, gatehouse.AccountCreate{
		Name: name, Capabilities: []gatehouse.Capability{"login", "apiKey"},
		Password: name + "-password", Groups: groups,
	}, 200, nil)
}

// mint mints an API token for account with the caller's token.
func (e *env) mint(tok, account string, req gatehouse.TokenRequest) gatehouse.NewToken {
	e.t.Helper()
	if req.Name == "" {
		req.Name = "test token"
	}
	var nt gatehouse.NewToken
	e.call("POST", "/api/v1/account/"+account+"/token", tok, req, 200, &nt)
	if nt.Token == "" || nt.ID == "" {
		e.t.Fatalf("mint returned %+v", nt)
	}
	e.remember(nt.Token)
	return nt
}

// setPolicy replaces the RBAC policy as admin.
func (e *env) setPolicy(csv, def string) {
	e.t.Helper()
	e.call("PUT", "/api/v1/settings/rbac", e.admin, gatehouse.RBAC{PolicyCSV: csv, PolicyDefault: def}, 200, nil)
}

// errorOf decodes an API error body.
func errorOf(t *testing.T, b []byte) (code, message string) {
	t.Helper()
	var eb struct{ Error, Message string }
	if err := json.Unmarshal(b, &eb); err != nil {
		t.Fatalf("not a JSON error body: %s", b)
	}
	return eb.Error, eb.Message
}

func contains(b []byte, s string) bool { return strings.Contains(string(b), s) }

func seconds(n int64) *int64 { return &n }

type serviceOptions = envSettings

func decodeJSON(t *testing.T, resp *http.Response, v any) {
	t.Helper()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("decoding response: %v", err)
	}
}

func listen(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

func freePort(t *testing.T) int {
	t.Helper()
	ln := listen(t)
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}
