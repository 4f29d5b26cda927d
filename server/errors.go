package server

import (
	"errors"
	"net/http"
	"strconv"

	"github.com/gatehouse/gatehouse"
)

// statusOf is the one map from error code to HTTP status.
var statusOf = map[string]int{
	gatehouse.EINVALID:      http.StatusBadRequest,
	gatehouse.EUNAUTHORIZED: http.StatusUnauthorized,
	gatehouse.EFORBIDDEN:    http.StatusForbidden,
	gatehouse.ENOTFOUND:     http.StatusNotFound,
	gatehouse.EMETHOD:       http.StatusMethodNotAllowed,
	gatehouse.ECONFLICT:     http.StatusConflict,
	gatehouse.EPRECONDITION: http.StatusPreconditionFailed,
	gatehouse.ETOOLARGE:     http.StatusRequestEntityTooLarge,
	gatehouse.EUNSUPPORTED:  http.StatusUnsupportedMediaType,
	gatehouse.ETHROTTLED:    http.StatusTooManyRequests,
	gatehouse.EINTERNAL:     http.StatusInternalServerError,
	gatehouse.EUNAVAILABLE:  http.StatusServiceUnavailable,
}

// StatusOf returns the HTTP status for err.
func StatusOf(err error) int {
	if s, ok := statusOf[gatehouse.ErrorCode(err)]; ok {
		return s
	}
	return http.StatusInternalServerError
}

type errorBody struct {
	Error   string `json:"error"`
	Message string `json:"message"`
}

// writeError answers with the JSON error body {"error": code, "message":
// text}, the status from the one code map above. Internal causes
// are logged once, with the request id; the client sees "internal error".
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	if ctxErr := r.Context().Err(); ctxErr != nil && errors.Is(err, ctxErr) {
		// The client went away (or its deadline passed) before the
		// answer: nobody reads it, and it is no server error. The
		// access log records 499, nginx's "client closed request".
		w.WriteHeader(statusClientClosed)
		return
	}
	code := gatehouse.ErrorCode(err)
	status := StatusOf(err)
	if code == gatehouse.EINTERNAL {
		s.log.ErrorContext(r.Context(), "internal error", "request_id", RequestID(r.Context()), "err", err, "method", r.Method, "path", r.URL.Path)
	}
	h := w.Header()
	switch code {
	case gatehouse.EUNAUTHORIZED:
		// Basic first: nginx auth_request passes only the first challenge
		// of the auth response to the client, and git (libcurl) sends the
		// token from its URL or credential helper only after a challenge it
		// understands, which Bearer is not. Clients that read every
		// challenge pick their scheme regardless of order (RFC 9110 §11.6.1).
		h.Add("WWW-Authenticate", `Basic realm="gatehouse"`)
		h.Add("WWW-Authenticate", `Bearer realm="gatehouse"`)
	case gatehouse.EMETHOD:
		var e *gatehouse.Error
		if errors.As(err, &e) && e.Allow != "" {
			h.Set("Allow", e.Allow)
		}
	case gatehouse.ETHROTTLED:
		var e *gatehouse.Error
		if errors.As(err, &e) && e.RetryAfter > 0 {
			secs := int64((e.RetryAfter + 999_999_999) / 1_000_000_000)
			h.Set("Retry-After", strconv.FormatInt(secs, 10))
		}
	}
	writeAnswer(w, status, errorBody{Error: code, Message: gatehouse.ErrorMessage(err)})
}

// statusClientClosed is the status logged for a request whose client
// went away before the answer.
const statusClientClosed = 499
