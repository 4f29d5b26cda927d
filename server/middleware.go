package server

import (
	"context"
	"log/slog"
	"net/http"
	"path"
	"strconv"
	"strings"
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
		writeJSON(w, http.StatusForbidden, errorBody{Error: "permission_denied", Message: "cross-origin request refused"})
	}))
	inner := cop.Handler(next)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		id := newRequestID()
		ctx := context.WithValue(r.Context(), requestIDKey, id)
		r = r.WithContext(ctx)
		h := w.Header()
		h.Set("X-Request-Id", id)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Content-Security-Policy", "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'")
		if s.tls {
			h.Set("Strict-Transport-Security", "max-age=31536000")
		}
		if r.Body != nil {
			r.Body = http.MaxBytesReader(w, r.Body, maxBody)
		}
		rec := &statusRecorder{ResponseWriter: w}
		// Every answer, refusals below included, is counted, logged and
		// covered by the panic recovery.
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				s.log.ErrorContext(ctx, "panic in handler", "panic", v, "path", r.URL.Path)
				if rec.code == 0 {
					writeJSON(rec, http.StatusInternalServerError, errorBody{Error: "internal", Message: "internal error"})
				}
			}
			route := r.Pattern
			if route == "" {
				route = "unmatched"
			}
			status := rec.status()
			s.metrics.Requests.WithLabelValues(route, strconv.Itoa(status)).Inc()
			level := slog.LevelInfo
			if status >= 500 {
				level = slog.LevelError
			}
			// The path only: a query string may carry a secret.
			s.log.LogAttrs(ctx, level, "request",
				slog.String("request_id", id),
				slog.String("method", r.Method),
				slog.String("path", r.URL.Path),
				slog.String("route", route),
				slog.Int("status", status),
				slog.Duration("duration", time.Since(start)),
				slog.String("remote", clientIP(r)),
			)
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
