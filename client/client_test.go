package client

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
)

const testToken = "gatehouse:AQEjRWeJq83vASNFZ4mrze8BI0VniavN7wEjRWeJq83vASNFZ4mrze8BI0VniavN7w"

// recorded is what the test server saw of one request.
type recorded struct {
	method, escapedPath, rawQuery string
	contentType, auth, userAgent  string
	body                          string
	calls                         int
}

// answer is what the test server replies.
type answer struct {
	status int
	header map[string]string
	body   string
}

// newTestServer starts a plain HTTP server that records the last request
// and answers with a; the client talks to it with the test token.
func newTestServer(t *testing.T, a answer, opts ...Option) (*Client, *recorded) {
	t.Helper()
	rec := &recorded{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		*rec = recorded{
			method:      r.Method,
			escapedPath: r.URL.EscapedPath(),
			rawQuery:    r.URL.RawQuery,
			contentType: r.Header.Get("Content-Type"),
			auth:        r.Header.Get("Authorization"),
			userAgent:   r.Header.Get("User-Agent"),
			body:        string(b),
			calls:       rec.calls + 1,
		}
		for k, v := range a.header {
			w.Header().Set(k, v)
		}
		if a.body != "" {
			w.Header().Set("Content-Type", "application/json")
		}
		status := a.status
		if status == 0 {
			status = http.StatusOK
		}
		w.WriteHeader(status)
		_, _ = io.WriteString(w, a.body)
	}))
	t.Cleanup(srv.Close)
	c, err := New(srv.URL, append([]Option{WithToken(testToken)}, opts...)...)
	if err != nil {
		t.Fatalf("New(%q): %v", srv.URL, err)
	}
	return c, rec
}

func TestParseServer(t *testing.T) {
	tests := []struct {
		in        string
		plaintext bool
		want      string
		wantErr   bool
	}{
		{in: "127.0.0.1:8080", want: "https://127.0.0.1:8080"},
		{in: "127.0.0.1:8080", plaintext: true, want: "http://127.0.0.1:8080"},
		{in: "gatehouse.example.com", want: "https://gatehouse.example.com"},
		{in: "[::1]:8443", want: "https://[::1]:8443"},
		{in: "http://127.0.0.1:8080", want: "http://127.0.0.1:8080"},
		{in: "http://127.0.0.1:8080", plaintext: true, want: "http://127.0.0.1:8080"},
		{in: "https://gh.example.com/gatehouse/", want: "https://gh.example.com/gatehouse"},
		{in: "  https://gh.example.com  ", want: "https://gh.example.com"},
		{in: "", wantErr: true},
		{in: "https://127.0.0.1:8080", plaintext: true, wantErr: true},
		{in: "ftp://127.0.0.1", wantErr: true},
		{in: "https://user:secret@127.0.0.1", wantErr: true},
		{in: "https://127.0.0.1/?token=x", wantErr: true},
		{in: "https://127.0.0.1/#x", wantErr: true},
		{in: "127.0.0.1:99999", wantErr: true},
		{in: "127.0.0.1:8080/api", wantErr: true},
		{in: "https://", wantErr: true},
		{in: "https://:8080", wantErr: true},
	}
	for _, tt := range tests {
		got, err := ParseServer(tt.in, tt.plaintext)
		if tt.wantErr {
			if err == nil {
				t.Errorf("ParseServer(%q, %v) = %s, want an error", tt.in, tt.plaintext, got)
			} else if !gatehouse.IsCode(err, gatehouse.EINVALID) {
				t.Errorf("ParseServer(%q, %v) error %v, want code %s", tt.in, tt.plaintext, err, gatehouse.EINVALID)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParseServer(%q, %v): %v", tt.in, tt.plaintext, err)
			continue
		}
		if got.String() != tt.want {
			t.Errorf("ParseServer(%q, %v) = %s, want %s", tt.in, tt.plaintext, got, tt.want)
		}
	}
}

func TestParseServerErrorDoesNotEchoInput(t *testing.T) {
	// A token pasted into --server by mistake must not end up on screen.
	body := testToken[strings.IndexByte(testToken, ':')+1:]
	for _, in := range []string{
		testToken,
		"https://" + testToken,
		"https://x:" + testToken + "@host",
		"https://host/?token=" + testToken,
		"ftp" + body + "://host",
		"host:" + body + "/x",
		"%" + body,
	} {
		_, err := ParseServer(in, false)
		if err == nil {
			t.Errorf("ParseServer(%q) succeeded", in)
			continue
		}
		if strings.Contains(err.Error(), body[:20]) {
			t.Errorf("ParseServer error %q contains the secret", err)
		}
	}
}

func TestNewRejectsInsecureWithHTTPClient(t *testing.T) {
	_, err := New("127.0.0.1:1", WithHTTPClient(http.DefaultClient), WithInsecure(true))
	if err == nil {
		t.Fatal("New accepted WithInsecure together with WithHTTPClient")
	}
}

func TestRequestHeaders(t *testing.T) {
	tests := []struct {
		name            string
		call            func(context.Context, *Client) error
		wantMethod      string
		wantContentType string
		wantAuth        string
	}{
		{
			name:       "GET sends the bearer token and no content type",
			call:       func(ctx context.Context, c *Client) error { _, err := c.ListAccounts(ctx); return err },
			wantMethod: "GET", wantAuth: "Bearer " + testToken,
		},
		{
			name:       "DELETE without body still declares JSON",
			call:       func(ctx context.Context, c *Client) error { return c.DeleteAccount(ctx, "ci") },
			wantMethod: "DELETE", wantContentType: "application/json", wantAuth: "Bearer " + testToken,
		},
		{
			name: "POST declares JSON",
			call: func(ctx context.Context, c *Client) error {
				_, err := c.Sync(ctx, "web", gatehouse.SyncRequest{})
				return err
			},
			wantMethod: "POST", wantContentType: "application/json", wantAuth: "Bearer " + testToken,
		},
		{
			name:       "login sends no credential",
			call:       func(ctx context.Context, c *Client) error { _, err := c.Login(ctx, "admin", "pw"); return err },
			wantMethod: "POST", wantContentType: "application/json", wantAuth: "",
		},
		{
			name:       "introspection is a form post",
			call:       func(ctx context.Context, c *Client) error { _, err := c.Introspect(ctx, "x"); return err },
			wantMethod: "POST", wantContentType: "application/x-www-form-urlencoded", wantAuth: "Bearer " + testToken,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, rec := newTestServer(t, answer{body: `{"token":"t","items":[]}`}, WithUserAgent("gatehouse-test/1"))
			if err := tt.call(t.Context(), c); err != nil {
				t.Fatal(err)
			}
			if rec.method != tt.wantMethod {
				t.Errorf("method = %q, want %q", rec.method, tt.wantMethod)
			}
			if rec.contentType != tt.wantContentType {
				t.Errorf("Content-Type = %q, want %q", rec.contentType, tt.wantContentType)
			}
			if rec.auth != tt.wantAuth {
				t.Errorf("Authorization = %q, want %q", rec.auth, tt.wantAuth)
			}
			if rec.userAgent != "gatehouse-test/1" {
				t.Errorf("User-Agent = %q, want %q", rec.userAgent, "gatehouse-test/1")
			}
		})
	}
}

func TestDefaultUserAgentAndNoToken(t *testing.T) {
	srvRec := &recorded{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		srvRec.auth = r.Header.Get("Authorization")
		srvRec.userAgent = r.Header.Get("User-Agent")
		_, _ = io.WriteString(w, `{"loggedIn":false}`)
	}))
	t.Cleanup(srv.Close)
	c, err := New(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	info, err := c.UserInfo(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if info.LoggedIn {
		t.Errorf("LoggedIn = true, want false")
	}
	if srvRec.auth != "" {
		t.Errorf("Authorization = %q, want none", srvRec.auth)
	}
	if srvRec.userAgent != DefaultUserAgent {
		t.Errorf("User-Agent = %q, want %q", srvRec.userAgent, DefaultUserAgent)
	}
}

func TestPathPrefix(t *testing.T) {
	var gotPath string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotPath = r.URL.EscapedPath()
		_, _ = io.WriteString(w, `{"name":"a/b"}`)
	}))
	t.Cleanup(srv.Close)
	c, err := New(srv.URL + "/gh/")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.GetAccount(t.Context(), "a/b"); err != nil {
		t.Fatal(err)
	}
	if want := "/gh/api/v1/account/a%2Fb"; gotPath != want {
		t.Errorf("path = %q, want %q", gotPath, want)
	}
}

func TestErrors(t *testing.T) {
	tests := []struct {
		name string
		a    answer
		want gatehouse.Error
	}{
		{
			name: "API error body",
			a:    answer{status: 401, body: `{"error":"unauthenticated","message":"token expired"}`},
			want: gatehouse.Error{Code: gatehouse.EUNAUTHORIZED, Message: "token expired"},
		},
		{
			name: "forbidden",
			a:    answer{status: 403, body: `{"error":"permission_denied","message":"permission denied: accounts, get, ci"}`},
			want: gatehouse.Error{Code: gatehouse.EFORBIDDEN, Message: "permission denied: accounts, get, ci"},
		},
		{
			name: "throttled with Retry-After",
			a:    answer{status: 429, header: map[string]string{"Retry-After": "42"}, body: `{"error":"too_many_requests","message":"too many failed logins"}`},
			want: gatehouse.Error{Code: gatehouse.ETHROTTLED, Message: "too many failed logins", RetryAfter: 42 * time.Second},
		},
		{
			name: "throttled with an unreadable Retry-After",
			a:    answer{status: 429, header: map[string]string{"Retry-After": "soon"}, body: `{"error":"too_many_requests","message":"slow down"}`},
			want: gatehouse.Error{Code: gatehouse.ETHROTTLED, Message: "slow down"},
		},
		{
			name: "proxy HTML page is not echoed",
			a:    answer{status: 502, body: `<html><body>Bad Gateway secret-ish</body></html>`},
			want: gatehouse.Error{Code: gatehouse.EUNAVAILABLE, Message: "server answered 502 Bad Gateway"},
		},
		{
			name: "unknown status without body",
			a:    answer{status: 418},
			want: gatehouse.Error{Code: gatehouse.EINTERNAL, Message: "server answered 418 I'm a teapot"},
		},
		{
			name: "error code without message",
			a:    answer{status: 404, body: `{"error":"not_found"}`},
			want: gatehouse.Error{Code: gatehouse.ENOTFOUND, Message: "server answered 404 Not Found"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, _ := newTestServer(t, tt.a)
			_, err := c.GetAccount(t.Context(), "ci")
			var got *gatehouse.Error
			if !errors.As(err, &got) {
				t.Fatalf("error %v (%T), want *gatehouse.Error", err, err)
			}
			if got.Code != tt.want.Code || got.Message != tt.want.Message || got.RetryAfter != tt.want.RetryAfter {
				t.Errorf("error = {%q, %q, %v}, want {%q, %q, %v}", got.Code, got.Message, got.RetryAfter, tt.want.Code, tt.want.Message, tt.want.RetryAfter)
			}
			if strings.Contains(err.Error(), testToken) {
				t.Errorf("error %q contains the token", err)
			}
		})
	}
}

func TestInvalidSegmentsSendNothing(t *testing.T) {
	tests := []struct {
		name string
		call func(context.Context, *Client) error
	}{
		{"empty account", func(ctx context.Context, c *Client) error { _, err := c.GetAccount(ctx, ""); return err }},
		{"dot-dot account", func(ctx context.Context, c *Client) error { _, err := c.ListTokens(ctx, ".."); return err }},
		{"dot token id", func(ctx context.Context, c *Client) error { return c.DeleteToken(ctx, "ci", ".") }},
		{"empty object part", func(ctx context.Context, c *Client) error {
			_, err := c.CanI(ctx, "applications", "get", "p//a")
			return err
		}},
		{"dot-dot object part", func(ctx context.Context, c *Client) error {
			_, err := c.CanI(ctx, "applications", "get", "p/../../session")
			return err
		}},
		{"negative lifetime", func(ctx context.Context, c *Client) error {
			n := int64(-1)
			_, err := c.CreateToken(ctx, "ci", gatehouse.TokenRequest{ExpiresIn: &n})
			return err
		}},
		{"negative role token lifetime", func(ctx context.Context, c *Client) error {
			n := int64(-60)
			_, err := c.CreateRoleToken(ctx, "p", "r", gatehouse.TokenRequest{ExpiresIn: &n})
			return err
		}},
		{"negative grace", func(ctx context.Context, c *Client) error {
			_, err := c.RotateToken(ctx, "ci", "id", gatehouse.RotateRequest{GraceSeconds: -1})
			return err
		}},
		{"bulk revoke without filter", func(ctx context.Context, c *Client) error {
			_, err := c.BulkRevoke(ctx, gatehouse.BulkRevoke{DryRun: true})
			return err
		}},
		{"negative audit limit", func(ctx context.Context, c *Client) error {
			_, err := c.ListAudit(ctx, AuditFilter{Limit: -1})
			return err
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, rec := newTestServer(t, answer{body: `{}`})
			err := tt.call(t.Context(), c)
			if !gatehouse.IsCode(err, gatehouse.EINVALID) {
				t.Errorf("error %v, want code %s", err, gatehouse.EINVALID)
			}
			if rec.calls != 0 {
				t.Errorf("server saw %d requests, want 0", rec.calls)
			}
		})
	}
}

func TestPlaintextServerHint(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, `{"loggedIn":false}`)
	}))
	t.Cleanup(srv.Close)
	hostport := strings.TrimPrefix(srv.URL, "http://")

	c, err := New(hostport, WithToken(testToken))
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.UserInfo(t.Context())
	if !errors.Is(err, ErrPlaintextServer) {
		t.Fatalf("error %v, want ErrPlaintextServer", err)
	}
	for _, want := range []string{"--plaintext", "http://" + hostport} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
	if strings.Contains(err.Error(), testToken) {
		t.Errorf("error %q contains the token", err)
	}

	c, err = New(hostport, WithPlaintext(true))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.UserInfo(t.Context()); err != nil {
		t.Errorf("with plaintext: %v", err)
	}
}

func TestTLS(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, `{"loggedIn":true,"username":"admin"}`)
	}))
	t.Cleanup(srv.Close)
	hostport := strings.TrimPrefix(srv.URL, "https://")

	strict, err := New(hostport)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := strict.UserInfo(t.Context()); err == nil {
		t.Error("an unverifiable certificate was accepted without WithInsecure")
	}

	insecure, err := New(hostport, WithInsecure(true))
	if err != nil {
		t.Fatal(err)
	}
	info, err := insecure.UserInfo(t.Context())
	if err != nil {
		t.Fatalf("WithInsecure: %v", err)
	}
	if info.Username != "admin" {
		t.Errorf("username = %q, want admin", info.Username)
	}

	custom, err := New(srv.URL, WithHTTPClient(srv.Client()))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := custom.UserInfo(t.Context()); err != nil {
		t.Errorf("WithHTTPClient: %v", err)
	}
}

func TestUndecodableAnswer(t *testing.T) {
	c, _ := newTestServer(t, answer{body: `<html>`})
	_, err := c.ListProjects(t.Context())
	if err == nil {
		t.Fatal("an HTML answer decoded as a project list")
	}
}
