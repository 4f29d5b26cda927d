package client

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse"
)

// maxResponseBody bounds how much of a response the client reads, so a
// misbehaving server or a proxy cannot make it buffer without limit.
const maxResponseBody = 32 << 20

// maxErrorBody bounds how much of an error body is decoded.
const maxErrorBody = 64 << 10

// DefaultUserAgent is sent when no WithUserAgent option is given.
const DefaultUserAgent = "gatehouse-client"

// Client calls one Gatehouse server. It is safe for concurrent use.
type Client struct {
	base      *url.URL // scheme, host and an optional path prefix, no trailing slash
	token     string
	http      *http.Client
	userAgent string
}

// Option configures a Client.
type Option func(*options)

type options struct {
	token      string
	httpClient *http.Client
	insecure   bool
	rootCAs    *x509.CertPool
	plaintext  bool
	userAgent  string
}

// WithToken sets the credential sent as "Authorization: Bearer <token>".
func WithToken(token string) Option { return func(o *options) { o.token = token } }

// WithHTTPClient sets the HTTP client. It cannot be combined with
// WithInsecure, which configures the client's own transport.
func WithHTTPClient(c *http.Client) Option { return func(o *options) { o.httpClient = c } }

// WithInsecure skips verification of the server's TLS certificate.
func WithInsecure(insecure bool) Option { return func(o *options) { o.insecure = insecure } }

// WithRootCAs verifies the server's TLS certificate against pool instead
// of the system's roots: a private CA, or the server's own self-signed
// certificate. It cannot be combined with WithInsecure or WithHTTPClient.
func WithRootCAs(pool *x509.CertPool) Option { return func(o *options) { o.rootCAs = pool } }

// WithPlaintext makes a bare host:port server address mean http:// rather
// than https://, like Argo CD's --plaintext. It conflicts with an explicit
// https:// URL.
func WithPlaintext(plaintext bool) Option { return func(o *options) { o.plaintext = plaintext } }

// WithUserAgent sets the User-Agent header.
func WithUserAgent(ua string) Option { return func(o *options) { o.userAgent = ua } }

// New returns a client of the server at server, which is a URL
// ("https://gatehouse.example.com", "http://127.0.0.1:8080", optionally with
// a path prefix) or a bare "host:port" that means HTTPS unless WithPlaintext
// is given.
func New(server string, opts ...Option) (*Client, error) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	base, err := ParseServer(server, o.plaintext)
	if err != nil {
		return nil, err
	}
	hc := o.httpClient
	switch {
	case hc != nil && o.insecure:
		return nil, errors.New("client: WithInsecure cannot be combined with WithHTTPClient")
	case hc != nil && o.rootCAs != nil:
		return nil, errors.New("client: WithRootCAs cannot be combined with WithHTTPClient")
	case o.insecure && o.rootCAs != nil:
		// Trusting a certificate and trusting any certificate at once is
		// a mistake in the caller's settings, not a choice to make here.
		return nil, gatehouse.Errorf(gatehouse.EINVALID, "a server certificate to trust conflicts with skipping TLS verification (insecure)")
	case o.rootCAs != nil && base.Scheme == "http":
		return nil, gatehouse.Errorf(gatehouse.EINVALID, "a server certificate to trust needs an https server, not plain HTTP")
	case hc == nil:
		tr := http.DefaultTransport.(*http.Transport).Clone()
		switch {
		case o.insecure:
			tr.TLSClientConfig = &tls.Config{InsecureSkipVerify: true}
		case o.rootCAs != nil:
			tr.TLSClientConfig = &tls.Config{RootCAs: o.rootCAs, MinVersion: tls.VersionTLS12}
		}
		hc = &http.Client{Transport: tr}
	}
	ua := o.userAgent
	if ua == "" {
		ua = DefaultUserAgent
	}
	return &Client{base: base, token: o.token, http: hc, userAgent: ua}, nil
}

// Server returns the base URL the client talks to.
func (c *Client) Server() string { return c.base.String() }

// errNotAServer never quotes the input: a server address that does not
// parse is often a token pasted into the wrong place.
func errNotAServer() error {
	return gatehouse.Errorf(gatehouse.EINVALID, "server address is neither a URL nor host:port")
}

// ParseServer turns a server address into a base URL. A value with a scheme
// must be an http or https URL without credentials, query or fragment; any
// other value is a host[:port] that gets https://, or http:// when plaintext
// is set.
func ParseServer(server string, plaintext bool) (*url.URL, error) {
	s := strings.TrimSpace(server)
	if s == "" {
		return nil, gatehouse.Errorf(gatehouse.EINVALID, "server address is empty")
	}
	if !strings.Contains(s, "://") {
		scheme := "https"
		if plaintext {
			scheme = "http"
		}
		if strings.ContainsAny(s, "/?#@ ") {
			return nil, errNotAServer()
		}
		s = scheme + "://" + s
	}
	u, err := url.Parse(s)
	if err != nil {
		// url.Parse's reasons quote parts of the input, which may be a
		// token pasted into the wrong flag.
		return nil, errNotAServer()
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return nil, gatehouse.Errorf(gatehouse.EINVALID, "server URL scheme must be http or https")
	case u.Scheme == "https" && plaintext:
		return nil, gatehouse.Errorf(gatehouse.EINVALID, "plaintext conflicts with an https:// server URL")
	case u.Host == "" || u.Hostname() == "":
		return nil, gatehouse.Errorf(gatehouse.EINVALID, "server URL has no host")
	case u.User != nil:
		return nil, gatehouse.Errorf(gatehouse.EINVALID, "server URL must not contain credentials")
	case u.RawQuery != "" || u.ForceQuery || u.Fragment != "":
		return nil, gatehouse.Errorf(gatehouse.EINVALID, "server URL must not have a query or fragment")
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return nil, gatehouse.Errorf(gatehouse.EINVALID, "server port is out of range")
		}
	}
	u.Path = strings.TrimRight(u.Path, "/")
	u.RawPath = strings.TrimRight(u.RawPath, "/")
	return u, nil
}

// request is one API call.
type request struct {
	method string
	path   string     // escaped, starting with /api/
	query  url.Values // may be nil
	body   any        // JSON-encoded when not nil
	form   url.Values // form-encoded when not nil (introspection)
	noAuth bool       // send no credential (login)
}

// do sends req and decodes a 2xx JSON answer into out (when not nil).
func (c *Client) do(ctx context.Context, req request, out any) error {
	resp, err := c.send(ctx, req, "application/json")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if out == nil || resp.StatusCode == http.StatusNoContent {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxResponseBody))
		return nil
	}
	dec := json.NewDecoder(io.LimitReader(resp.Body, maxResponseBody))
	if err := dec.Decode(out); err != nil {
		return fmt.Errorf("client: decode answer to %s %s: %w", req.method, req.path, err)
	}
	return nil
}

// send sends req, asking for accept, and returns a 2xx answer for the
// caller to read and close; any other answer is its *gatehouse.Error.
func (c *Client) send(ctx context.Context, req request, accept string) (*http.Response, error) {
	// req.path is already escaped; parsing base path + req.path as one
	// reference keeps escapes such as %2F inside a segment intact.
	ref, err := url.Parse(c.base.EscapedPath() + req.path)
	if err != nil {
		return nil, gatehouse.Errorf(gatehouse.EINVALID, "invalid request path: %v", err)
	}
	u := *c.base
	u.Path, u.RawPath = ref.Path, ref.RawPath
	if len(req.query) > 0 {
		u.RawQuery = req.query.Encode()
	}

	var body io.Reader
	var contentType string
	switch {
	case req.form != nil:
		body = strings.NewReader(req.form.Encode())
		contentType = "application/x-www-form-urlencoded"
	case req.body != nil:
		b, err := json.Marshal(req.body)
		if err != nil {
			return nil, fmt.Errorf("client: encode %s %s: %w", req.method, req.path, err)
		}
		body = bytes.NewReader(b)
		contentType = "application/json"
	case req.method != http.MethodGet:
		// The server refuses non-GET API requests without this header
		// (its CSRF guard), even when there is no body.
		contentType = "application/json"
	}

	hr, err := http.NewRequestWithContext(ctx, req.method, u.String(), body)
	if err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	hr.Header.Set("Accept", accept)
	hr.Header.Set("User-Agent", c.userAgent)
	if contentType != "" {
		hr.Header.Set("Content-Type", contentType)
	}
	if c.token != "" && !req.noAuth {
		hr.Header.Set("Authorization", "Bearer "+c.token)
	}

	resp, err := c.http.Do(hr)
	if err != nil {
		return nil, c.transportError(err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		defer resp.Body.Close()
		return nil, decodeError(resp.StatusCode, resp.Header, io.LimitReader(resp.Body, maxErrorBody))
	}
	return resp, nil
}

// ErrPlaintextServer is in the chain of the error returned when an HTTPS
// request reached a server that speaks plain HTTP.
var ErrPlaintextServer = errors.New("server gave HTTP response to HTTPS client")

func (c *Client) transportError(err error) error {
	// net/http reports a TLS handshake that received "HTTP/" with this
	// text only (no typed error), so the text is what we can match.
	if c.base.Scheme == "https" && strings.Contains(err.Error(), "server gave HTTP response to HTTPS client") {
		return fmt.Errorf("%w: %s serves plain HTTP; use --plaintext or http://%s", ErrPlaintextServer, c.base.Host, c.base.Host)
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return fmt.Errorf("%s: request timed out: %w", c.base.Host, err)
	}
	return err
}

// errorBody is the wire form of an API error.
type errorBody struct {
	Error   string `json:"error"`
	Message string `json:"message"`
}

// statusCode maps an HTTP status to an error code, for answers without a
// JSON error body (a proxy's HTML page, an empty 502).
func statusCode(status int) string {
	switch status {
	case http.StatusBadRequest:
		return gatehouse.EINVALID
	case http.StatusUnauthorized:
		return gatehouse.EUNAUTHORIZED
	case http.StatusForbidden:
		return gatehouse.EFORBIDDEN
	case http.StatusNotFound:
		return gatehouse.ENOTFOUND
	case http.StatusConflict:
		return gatehouse.ECONFLICT
	case http.StatusPreconditionFailed:
		return gatehouse.EPRECONDITION
	case http.StatusRequestEntityTooLarge:
		return gatehouse.ETOOLARGE
	case http.StatusUnsupportedMediaType:
		return gatehouse.EUNSUPPORTED
	case http.StatusTooManyRequests:
		return gatehouse.ETHROTTLED
	case http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return gatehouse.EUNAVAILABLE
	}
	return gatehouse.EINTERNAL
}

// decodeError turns a non-2xx answer into *gatehouse.Error. It never echoes
// a body that is not the API's error JSON.
func decodeError(status int, h http.Header, body io.Reader) *gatehouse.Error {
	var eb errorBody
	raw, _ := io.ReadAll(body)
	_ = json.Unmarshal(raw, &eb)
	e := &gatehouse.Error{Code: eb.Error, Message: eb.Message}
	if e.Code == "" {
		e.Code = statusCode(status)
	}
	if e.Message == "" {
		e.Message = fmt.Sprintf("server answered %d %s", status, http.StatusText(status))
	}
	if status == http.StatusTooManyRequests {
		e.RetryAfter = parseRetryAfter(h.Get("Retry-After"))
	}
	return e
}

// parseRetryAfter reads the delta-seconds form of Retry-After, which is the
// form Gatehouse sends. Anything else yields zero (retry at will).
func parseRetryAfter(v string) time.Duration {
	n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
	if err != nil || n < 0 || n > int64((100*365*24*time.Hour)/time.Second) {
		return 0
	}
	return time.Duration(n) * time.Second
}

// segment escapes one path segment. Empty, "." and ".." segments are
// refused: they would address a different endpoint once the path is
// cleaned.
func segment(what, s string) (string, error) {
	if s == "" || s == "." || s == ".." {
		return "", gatehouse.Errorf(gatehouse.EINVALID, "invalid %s %q", what, s)
	}
	return url.PathEscape(s), nil
}

// pathf builds a path from a format whose %s verbs take the escaped
// segments given as name/value pairs.
func pathf(format string, pairs ...string) (string, error) {
	args := make([]any, 0, len(pairs)/2)
	for i := 0; i+1 < len(pairs); i += 2 {
		s, err := segment(pairs[i], pairs[i+1])
		if err != nil {
			return "", err
		}
		args = append(args, s)
	}
	return fmt.Sprintf(format, args...), nil
}

// checkSeconds refuses a negative lifetime before it reaches the server.
func checkSeconds(what string, n *int64) error {
	if n != nil && *n < 0 {
		return gatehouse.Errorf(gatehouse.EINVALID, "%s must not be negative", what)
	}
	return nil
}
