package gatehouse

import (
	"errors"
	"fmt"
	"time"
)

// Error codes. They are the wire codes of the HTTP API; package server holds
// the one map from code to HTTP status.
const (
	EINVALID      = "invalid_argument"       // 400
	EUNAUTHORIZED = "unauthenticated"        // 401: who are you?
	EFORBIDDEN    = "permission_denied"      // 403: you may not
	ENOTFOUND     = "not_found"              // 404
	EMETHOD       = "method_not_allowed"     // 405, with Error.Allow
	ECONFLICT     = "already_exists"         // 409
	EPRECONDITION = "failed_precondition"    // 412
	ETOOLARGE     = "payload_too_large"      // 413
	EUNSUPPORTED  = "unsupported_media_type" // 415
	ETHROTTLED    = "too_many_requests"      // 429
	EINTERNAL     = "internal"               // 500
	EUNAVAILABLE  = "unavailable"            // 503
)

// Error is Gatehouse's one error type. Message is safe to show to a client;
// Err is an internal cause that is logged, never shown.
type Error struct {
	Code       string
	Message    string
	RetryAfter time.Duration // with ETHROTTLED
	Allow      string        // with EMETHOD: the methods the path takes
	Err        error
}

func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: %s: %v", e.Code, e.Message, e.Err)
	}
	return fmt.Sprintf("%s: %s", e.Code, e.Message)
}

func (e *Error) Unwrap() error { return e.Err }

// Errorf returns an *Error with the given code and a client-safe message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Internal wraps an unexpected cause. The client sees only "internal error".
func Internal(err error) *Error {
	return &Error{Code: EINTERNAL, Message: "internal error", Err: err}
}

// ErrorCode returns the code of the first *Error in err's chain, EINTERNAL
// for any other non-nil error and "" for nil.
func ErrorCode(err error) string {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return EINTERNAL
}

// ErrorMessage returns the client-safe message of err. Errors that are not
// *Error never leak: they read "internal error".
func ErrorMessage(err error) string {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) && e.Code != EINTERNAL {
		return e.Message
	}
	return "internal error"
}

// IsCode reports whether err carries the given code.
func IsCode(err error, code string) bool { return ErrorCode(err) == code }
