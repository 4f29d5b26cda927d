package server

import (
	"encoding/base64"
	"net/http"
	"strings"

	"github.com/gatehouse/gatehouse"
)

// CookieName is the dashboard's session cookie.
const CookieName = "gatehouse.token"

var errMalformed = gatehouse.Errorf(gatehouse.EUNAUTHORIZED, "invalid or unknown token")

// credential returns the token a request presents, if any: the
// Authorization header (Bearer or Basic) first, then the session cookie.
// A malformed header is answered exactly like an unknown token, and so is
// more than one Authorization header: a proxy that copies the client's
// headers next to its own must not let either of them choose which counts.
func credential(r *http.Request) (tok string, present bool, err error) {
	if hs := r.Header.Values("Authorization"); len(hs) > 1 {
		return "", true, errMalformed
	}
	if h := r.Header.Get("Authorization"); h != "" {
		tok, err := parseAuthorization(h)
		return tok, true, err
	}
	if c, err := r.Cookie(CookieName); err == nil && c.Value != "" {
		return c.Value, true, nil
	}
	return "", false, nil
}

// parseAuthorization extracts the token from an Authorization header:
//
//	Bearer <instance>:<body>   or   Bearer <body>
//	Basic base64(<instance>:<body>)            (curl -u "$TOKEN": the body is the password)
//	Basic base64(<any user>:<instance>:<body>) (the token is the password)
//	Basic base64(<any user>:<body>)
func parseAuthorization(h string) (string, error) {
	scheme, rest, ok := strings.Cut(h, " ")
	if !ok {
		return "", errMalformed
	}
	rest = strings.TrimSpace(rest)
	switch {
	case strings.EqualFold(scheme, "Bearer"):
		if rest == "" || len(rest) > 512 {
			return "", errMalformed
		}
		return rest, nil
	case strings.EqualFold(scheme, "Basic"):
		if len(rest) > 1024 {
			return "", errMalformed
		}
		raw, err := base64.StdEncoding.DecodeString(rest)
		if err != nil {
			return "", errMalformed
		}
		// user:password, where the password is the token (whole or body);
		// "<instance>:<body>" itself splits into exactly that shape.
		if _, pass, ok := strings.Cut(string(raw), ":"); ok && pass != "" {
			return pass, nil
		}
		return "", errMalformed
	}
	return "", errMalformed
}
