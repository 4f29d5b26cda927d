// Package weburl checks the http and https URLs that the configuration
// file and the API accept (webhooks, an identity provider's issuer, a
// trust policy's key set, the server's public address). A URL is taken as
// it is spelled, never repaired: Go's url.Parse lowers the scheme, so a
// check on the parsed URL alone would store something other than what was
// sent.
package weburl

import (
	"net"
	"net/url"
	"strconv"
	"strings"
)

// Parse returns s as an absolute http or https URL, or why it is not one
// (a short phrase, "must name a host", that never quotes s): the scheme
// spelled in lower case and followed by "//", a host, a port from 1 to
// 65535 if any, no user information and no fragment.
func Parse(s string) (*url.URL, string) {
	u, err := url.Parse(s)
	switch {
	case err != nil:
		return nil, "is not a URL"
	case u.Scheme != "http" && u.Scheme != "https" || !strings.HasPrefix(s, u.Scheme+"://"):
		return nil, "must be an http or https URL (lower-case scheme, then ://)"
	case u.Opaque != "" || u.Host == "" || u.Hostname() == "":
		return nil, "must name a host"
	case u.User != nil:
		return nil, "must not hold credentials"
	case u.Fragment != "" || strings.Contains(s, "#"):
		return nil, "must not have a fragment"
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return nil, "has a bad port"
		}
	}
	return u, ""
}

// ParseSecure is Parse for a URL that credentials are fetched from or
// trusted through (an issuer, a key set): https, or http only to a
// loopback address (a test issuer, a local sidecar).
func ParseSecure(s string) (*url.URL, string) {
	u, why := Parse(s)
	if why == "" && u.Scheme == "http" && !Loopback(u.Hostname()) {
		return nil, "must be https:// (or http:// on a loopback address)"
	}
	return u, why
}

// Loopback reports whether host (a URL's Hostname) is localhost or a
// loopback address, where plain http stays on the machine.
func Loopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
