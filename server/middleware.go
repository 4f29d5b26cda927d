package server

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"log/slog"
	"net/http"
	"path"
	"strings"
	"sync/atomic"
	"time"

	"github.com/gatehouse/gatehouse"
)

// middleware wraps every request: request id, panic recovery, limits,
// security headers, cross-origin protection, metrics and the access log.
func (s *Server) middleware(next http.Handler) http.Handler {
	cop := http.NewCrossOriginProtection()
	// Forward auth receives the protected service's own requests (their
	// Origin and Sec-Fetch headers describe that service, not us).
	cop.AddInsecureBypassPattern(verifyPath)
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeAnswer(w, http.StatusForbidden, errorBody{Error: "permission_denied", Message: "cross-origin request refused"})
	}))
	inner := cop.Handler(next)
	ids := newRequestIDs()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		q := &request{Context: r.Context(), statusRecorder: statusRecorder{ResponseWriter: w}, id: ids.next()}
		q.idHeader[0] = q.id
		ctx := context.Context(q)
		r = r.WithContext(ctx)
		// Canonical keys and shared values: no canonicalization and no
		// slice per header per request. Set and Add replace or copy a
		// value of length 1; nothing in the server, net/http or promhttp
		// writes a header value in place (h[k][0] = ...), which would
		// change it for every later answer, and nothing may.
		h := w.Header()
		h["X-Request-Id"] = q.idHeader[:]
		h["X-Content-Type-Options"] = hdrNosniff
		for _, d := range documentHeaders {
			h[d.key] = d.value
		}
		if s.tls {
			h["Strict-Transport-Security"] = hdrHSTS
		}
		if r.Body != nil {
			r.Body = http.MaxBytesReader(w, r.Body, maxBody)
		}
		rec := &q.statusRecorder
		// Every answer, refusals below included, is counted, logged and
		// covered by the panic recovery.
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				s.log.ErrorContext(ctx, "panic in handler", "panic", v, "path", r.URL.Path)
				if rec.code == 0 {
					writeAnswer(rec, http.StatusInternalServerError, errorBody{Error: "internal", Message: "internal error"})
				}
			}
			route := r.Pattern
			if route == "" {
				route = "unmatched"
			}
			status := rec.status()
			s.metrics.Request(route, status).Inc()
			end := time.Now()
			line := accessLine{time: end, level: slog.LevelInfo, id: q.id, method: r.Method,
				path:  r.URL.Path, // the path only: a query string may carry a secret
				route: route, status: status, duration: end.Sub(start), remote: clientIP(r)}
			if status >= 500 {
				line.level = slog.LevelError
			}
			s.access.write(ctx, &line)
		}()
		// A known path asked with a method it does not take is answered
		// 405 by the router, whatever its body.
		if err := refuseAPIRequest(r); err != nil && !(gatehouse.IsCode(err, gatehouse.EUNSUPPORTED) && s.allowedMethods(r) != "") {
			s.writeError(rec, r, err)
			return
		}
		inner.ServeHTTP(rec, r)
	})
}

// request is the middleware's state of one request, in one allocation:
// the request's context with its id added (see RequestID), the status
// recorder, and the id's header value.
type request struct {
	context.Context
	statusRecorder
	id       string
	idHeader [1]string
}

// Value answers the request id for requestIDKey and defers everything
// else to the request's own context.
func (q *request) Value(key any) any {
	if key == requestIDKey {
		return q.id
	}
	return q.Context.Value(key)
}

// documentHeaders are the security headers that tell a browser how to
// treat a document it shows: framing, referrers, what may load and run.
// Every answer carries them but forward auth's 200, which is for the
// proxy (see verify).
var documentHeaders = [...]struct {
	key   string
	value []string
}{
	{"X-Frame-Options", []string{"DENY"}},
	{"Referrer-Policy", []string{"no-referrer"}},
	{"Content-Security-Policy", []string{"default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"}},
}

// The security headers of every response, and those of every JSON
// answer.
var (
	hdrNosniff = []string{"nosniff"}
	hdrHSTS    = []string{"max-age=31536000"}
	hdrJSON    = []string{"application/json"}
	hdrNoStore = []string{"no-store"}
)

// requestIDs hands out request ids: 16 hex digits, unique within the
// process (a counter from a random start, through a bijective mix so that
// consecutive ids do not look consecutive) and unlikely to repeat across
// processes. They identify log lines; they are not secrets, so they need
// not cost a call to the system's random source each.
type requestIDs struct {
	base uint64
	n    atomic.Uint64
}

func newRequestIDs() *requestIDs {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return &requestIDs{base: binary.LittleEndian.Uint64(b[:])}
}

func (g *requestIDs) next() string {
	x := g.base + g.n.Add(1)
	// splitmix64's finalizer.
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	var b [16]byte
	const digits = "0123456789abcdef"
	for i := 15; i >= 0; i-- {
		b[i] = digits[x&15]
		x >>= 4
	}
	return string(b[:])
}

// refuseAPIRequest refuses, before routing, an API request that no
// handler should see: a non-GET without a JSON body (415), and a path
// with dot or empty segments, raw or percent-encoded (400). The mux would
// answer the latter with a redirect to the cleaned path, which a client
// that follows redirects would then send its DELETE to.
func refuseAPIRequest(r *http.Request) error {
	if !strings.HasPrefix(r.URL.Path, "/api/") {
		return nil
	}
	if !cleanPath(r.URL.Path) {
		return gatehouse.Errorf(gatehouse.EINVALID, "request path must not contain \".\", \"..\" or empty segments")
	}
	if needsJSON(r) {
		return requireJSON(r)
	}
	return nil
}

// cleanPath reports whether p (decoded) is what path.Clean makes of it,
// keeping a trailing slash: no ".", ".." or empty segment.
func cleanPath(p string) bool {
	c := path.Clean(p)
	if strings.HasSuffix(p, "/") && c != "/" {
		c += "/"
	}
	return c == p
}

// needsJSON: every non-GET request to the API must declare a JSON body
// (a CSRF guard, as in Argo CD); RFC 7662 introspection and RFC 8693
// token exchange take a form.
func needsJSON(r *http.Request) bool {
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return false
	}
	return strings.HasPrefix(r.URL.Path, "/api/") && r.URL.Path != introspectPath && r.URL.Path != verifyPath && r.URL.Path != exchangePath
}
