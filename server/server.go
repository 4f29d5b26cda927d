package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/internal/buildinfo"
	"github.com/gatehouse/gatehouse/service"
)

// Options configures the HTTP server.
type Options struct {
	Service *service.Service
	Logger  *slog.Logger
	// LogWriter, when set, is the writer under Logger's JSON handler
	// (slog.NewJSONHandler with default options but for the level, and no
	// Logger.With attributes): the access log is encoded straight onto
	// it, in the same format, instead of through the logger. It must be
	// safe for concurrent use (logbuf.Writer is), and not a nil pointer in
	// an interface. Nil sends the access log through Logger.
	LogWriter io.Writer
	Metrics   *service.Metrics
	// MetricsHandler serves /metrics on the main listener to callers with
	// settings, get; nil when metrics are served elsewhere.
	MetricsHandler http.Handler
	// TLS tells the server that it is served over HTTPS (Secure cookies).
	TLS bool
	// ForwardAuth is the route table of /api/v1/auth/verify. A table that
	// does not compile (see service.CheckRoutes, which configuration
	// validation runs) makes the endpoint fail closed.
	ForwardAuth []Route
	// ForwardAuthHeaders says where the proxy in front describes the
	// original request; default HeadersOriginal.
	ForwardAuthHeaders ForwardAuthHeaders
	// TrustedProxies are the peers whose X-Forwarded-For and X-Real-IP
	// name the client of a forward-auth request in its audit record; nil
	// means loopback only (DefaultTrustedProxies).
	TrustedProxies []netip.Prefix
	// Version is the server's release version, answered at GET
	// /api/version; empty means the module version or "dev".
	Version string
}

// Server is Gatehouse's HTTP handler.
type Server struct {
	svc     *service.Service
	log     *slog.Logger
	access  *accessLog
	metrics *service.Metrics
	promh   http.Handler
	tls     bool
	fwd     forwardAuth
	methods *http.ServeMux // the route table without catch-alls; see routes
	handler http.Handler
	build   gatehouse.VersionInfo // GET /api/version
}

// New builds the server and its route table.
func New(o Options) *Server {
	s := &Server{svc: o.Service, log: o.Logger, metrics: o.Metrics, promh: o.MetricsHandler, tls: o.TLS,
		fwd: newForwardAuth(o.Service, o), build: buildinfo.Read(o.Version)}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.access = newAccessLog(s.log, o.LogWriter)
	if s.fwd.err != nil {
		s.log.Error("forward auth refuses every request", "err", s.fwd.err)
	}
	if s.metrics == nil {
		s.metrics = service.NewMetrics(nil)
	}
	mux := http.NewServeMux()
	s.routes(mux)
	s.handler = s.envoyPrefix(s.middleware(mux))
	return s
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.handler.ServeHTTP(w, r) }

// maxBody is the largest request body accepted: 1 MiB (413 beyond).
const maxBody = 1 << 20

// authed is a handler for an authenticated caller.
type authed func(w http.ResponseWriter, r *http.Request, p *service.Principal) error

// call is the per-request state of an authenticated API request, in one
// allocation: the status recorder and the caller.
type call struct {
	statusRecorder
	p service.Principal
}

// api wraps an authenticated JSON API handler: it requires a valid
// credential, records the request in the audit trail, and renders errors.
func (s *Server) api(h authed) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		c := &call{statusRecorder: statusRecorder{ResponseWriter: w}}
		present, err := s.authenticateInto(r, &c.p)
		if err == nil && !present {
			err = gatehouse.Errorf(gatehouse.EUNAUTHORIZED, "no credentials: send Authorization: Bearer <token>")
		}
		if err != nil {
			s.metrics.Decision("unauthenticated", "").Inc()
			s.writeError(w, r, err)
			return
		}
		// Fail closed: no request is served whose audit event could not be
		// kept.
		if err := s.svc.AdmitRequest(); err != nil {
			s.writeError(w, r, err)
			return
		}
		p := &c.p
		s.svc.Touch(p, clientIP(r))
		err = h(&c.statusRecorder, r, p)
		if err != nil {
			s.writeError(&c.statusRecorder, r, err)
		}
		s.audit(r, p, c.status(), err)
	}
}

// audit records one authenticated request: what it asked (the permission
// triple and how it was decided), the route, and the outcome. err is the
// handler's error, if any.
func (s *Server) audit(r *http.Request, p *service.Principal, status int, err error) {
	d := p.LastDecision()
	decision := "allow"
	if status == http.StatusForbidden || (d.Resource != "" && !d.Allowed) {
		decision = "deny"
	}
	if r.Pattern == verifyPath && status != http.StatusOK {
		// Anything but forward auth's one success refused the original
		// request (a 400 for missing headers included).
		decision = "deny"
	}
	s.metrics.Decision(decision, p.Kind()).Inc()
	ev := gatehouse.Event{
		Actor:      p.Subject(),
		Account:    p.Account(),
		TokenID:    p.TokenID(),
		TokenKind:  p.Kind(),
		Method:     r.Method,
		Path:       r.URL.Path, // never the query string
		Route:      r.Pattern,
		Resource:   d.Resource,
		Action:     d.Action,
		Object:     d.Object,
		Decision:   decision,
		Via:        d.Via,
		Status:     status,
		RemoteAddr: clientIP(r),
		UserAgent:  truncate(r.UserAgent(), 256),
	}
	if r.Pattern == verifyPath {
		// Forward auth: the record is of the original request, from the
		// client the trusted proxy in front names.
		ev.Method, ev.Path, ev.Route = d.Method, d.Path, d.Route
		ev.RemoteAddr = s.fwd.clientAddr(r)
		ev.Detail = "forward auth"
		if err != nil {
			ev.Detail += ": " + truncate(gatehouse.ErrorMessage(err), 256)
		}
	}
	s.svc.RecordRequest(ev)
}

// authenticateInto fills p with the caller. present is false when the
// request carries no credential; err is set for one that does not verify.
func (s *Server) authenticateInto(r *http.Request, p *service.Principal) (present bool, err error) {
	tok, present, err := credential(r)
	if !present || err != nil {
		return present, err
	}
	return true, s.svc.AuthenticateInto(r.Context(), tok, p)
}

// decode reads a JSON body strictly: application/json only, at most
// 1 MiB, valid UTF-8, one JSON object (not null), no unknown fields.
// encoding/json would replace invalid UTF-8 (raw, or a lone surrogate
// escape) with U+FFFD and take null as "change nothing", so the raw body
// is checked first.
func decode(r *http.Request, v any) error {
	if err := requireJSON(r); err != nil {
		return err
	}
	b, err := io.ReadAll(r.Body)
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return gatehouse.Errorf(gatehouse.ETOOLARGE, "request body exceeds 1 MiB")
		}
		return gatehouse.Errorf(gatehouse.EINVALID, "reading the request body failed")
	}
	body := bytes.TrimLeft(b, " \t\r\n")
	switch {
	case len(body) == 0:
		return gatehouse.Errorf(gatehouse.EINVALID, "request body is empty; send a JSON object")
	case !utf8.Valid(b) || !validEscapes(b):
		return gatehouse.Errorf(gatehouse.EINVALID, "invalid JSON body: not valid UTF-8")
	case body[0] != '{':
		return gatehouse.Errorf(gatehouse.EINVALID, "invalid JSON body: send a JSON object")
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return gatehouse.Errorf(gatehouse.EINVALID, "invalid JSON body: %s", jsonProblem(err))
	}
	if dec.More() {
		return gatehouse.Errorf(gatehouse.EINVALID, "invalid JSON body: more than one value")
	}
	return nil
}

// validEscapes reports whether every \u escape of a JSON text stands for a
// character: a surrogate must come as a high-low pair. Backslashes appear
// only inside strings, so the text need not be parsed; a malformed text is
// left to the decoder.
func validEscapes(b []byte) bool {
	for i := 0; i < len(b); i++ {
		if b[i] != '\\' {
			continue
		}
		if i+1 >= len(b) || b[i+1] != 'u' {
			i++ // a one-letter escape, \\ included
			continue
		}
		r, ok := hex4(b, i+2)
		if !ok {
			return true // the decoder reports the syntax error
		}
		i += 5
		switch {
		case r >= 0xDC00 && r <= 0xDFFF:
			return false // a low surrogate alone
		case r >= 0xD800 && r <= 0xDBFF:
			if i+2 >= len(b) || b[i+1] != '\\' || b[i+2] != 'u' {
				return false
			}
			lo, ok := hex4(b, i+3)
			if !ok || lo < 0xDC00 || lo > 0xDFFF {
				return false
			}
			i += 6
		}
	}
	return true
}

// hex4 reads four hex digits at b[i:].
func hex4(b []byte, i int) (rune, bool) {
	if i+4 > len(b) {
		return 0, false
	}
	var r rune
	for _, c := range b[i : i+4] {
		switch {
		case '0' <= c && c <= '9':
			r = r<<4 | rune(c-'0')
		case 'a' <= c && c <= 'f':
			r = r<<4 | rune(c-'a'+10)
		case 'A' <= c && c <= 'F':
			r = r<<4 | rune(c-'A'+10)
		default:
			return 0, false
		}
	}
	return r, true
}

// jsonProblem describes a decoding error without echoing the body (which
// may hold a password).
func jsonProblem(err error) string {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return "syntax error at byte " + strconv.FormatInt(syn.Offset, 10)
	case errors.As(err, &typ):
		return "field " + typ.Field + " must be " + typ.Type.String()
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return "unknown field " + strings.TrimPrefix(err.Error(), "json: unknown field ")
	}
	return "malformed"
}

// requireJSON enforces Content-Type: application/json on requests with a
// body — a CSRF guard, as in Argo CD.
func requireJSON(r *http.Request) error {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/json" {
		return gatehouse.Errorf(gatehouse.EUNSUPPORTED, "Content-Type must be application/json")
	}
	return nil
}

func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

type ctxKey int

const requestIDKey ctxKey = 0

// RequestID returns the request id middleware assigned to ctx.
func RequestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey).(string)
	return id
}

// statusRecorder remembers the status a handler wrote.
type statusRecorder struct {
	http.ResponseWriter
	code int
}

func (w *statusRecorder) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusRecorder) Write(b []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusRecorder) status() int {
	if w.code == 0 {
		return http.StatusOK
	}
	return w.code
}

func (w *statusRecorder) Unwrap() http.ResponseWriter { return w.ResponseWriter }
