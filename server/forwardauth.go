package server

import (
	"fmt"
	"net/http"
	"net/netip"
	"strings"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/service"
)

const verifyPath = "/api/v1/auth/verify"

// Route maps requests of another service onto an RBAC question for the
// forward-auth endpoint; see service.Route.
type Route = service.Route

// ForwardAuthHeaders names where the proxy in front describes the
// original request. It is configured, never guessed: proxies such as
// Caddy and Traefik copy the client's own headers to the auth request, so
// a header of the other family can only be a forgery or a sign that
// another kind of proxy is in front than the one configured.
type ForwardAuthHeaders string

const (
	// HeadersOriginal: X-Original-Method and X-Original-URI (nginx
	// auth_request). The default.
	HeadersOriginal ForwardAuthHeaders = "original"
	// HeadersForwarded: X-Forwarded-Method and X-Forwarded-Uri (Traefik
	// ForwardAuth, Caddy forward_auth).
	HeadersForwarded ForwardAuthHeaders = "forwarded"
	// HeadersEnvoy: Envoy ext_authz in HTTP mode, which sends the original
	// method and appends the original path to its path_prefix
	// (path_prefix: /api/v1/auth/verify).
	HeadersEnvoy ForwardAuthHeaders = "envoy"
)

// header is a request header's name as the proxies' documentation spells
// it, for messages, and its canonical key, for lookups (a non-canonical
// name costs a canonicalization, and an allocation, per lookup).
type header struct{ name, key string }

func newHeader(name string) header { return header{name, http.CanonicalHeaderKey(name)} }

// header families of the original request: method, URI.
var (
	originalHeaders  = [2]header{newHeader("X-Original-Method"), newHeader("X-Original-URI")}
	forwardedHeaders = [2]header{newHeader("X-Forwarded-Method"), newHeader("X-Forwarded-Uri")}
	realIPHeader     = newHeader("X-Real-IP")
)

// forwardAuth is the server's forward-auth configuration: the decision
// belongs to the service, the header reading to the server.
type forwardAuth struct {
	decider *service.ForwardAuth
	headers ForwardAuthHeaders
	trusted []netip.Prefix
	err     error // a route table or header mode that did not compile
}

// DefaultTrustedProxies are the proxies trusted to name the client of a
// forward-auth request when none are configured: loopback only.
var DefaultTrustedProxies = []netip.Prefix{
	netip.MustParsePrefix("127.0.0.0/8"),
	netip.MustParsePrefix("::1/128"),
}

func newForwardAuth(svc *service.Service, o Options) forwardAuth {
	f := forwardAuth{headers: o.ForwardAuthHeaders, trusted: o.TrustedProxies}
	if f.trusted == nil {
		f.trusted = DefaultTrustedProxies
	}
	switch f.headers {
	case "":
		f.headers = HeadersOriginal
	case HeadersOriginal, HeadersForwarded, HeadersEnvoy:
	default:
		f.err = fmt.Errorf("forward auth: headers %q is not %q, %q or %q", f.headers, HeadersOriginal, HeadersForwarded, HeadersEnvoy)
		return f
	}
	if svc != nil {
		f.decider, f.err = svc.NewForwardAuth(o.ForwardAuth)
		if f.err != nil {
			f.err = fmt.Errorf("forward auth: %w", f.err)
		}
	}
	return f
}

// verify is the forward-auth endpoint for nginx auth_request, Traefik
// ForwardAuth, Caddy forward_auth and Envoy ext_authz: exactly 200 with
// identity headers, 401 with a challenge, or 403. It reads the original
// request from the configured headers and renders the service's decision.
func (s *Server) verify(w http.ResponseWriter, r *http.Request, p *service.Principal) error {
	if s.fwd.err != nil || s.fwd.decider == nil {
		// Fail closed; cmd validates the configuration before it gets here.
		return gatehouse.Internal(fmt.Errorf("forward auth is not configured: %v", s.fwd.err))
	}
	method, uri, err := s.fwd.original(r)
	if err != nil {
		return err
	}
	d, err := s.fwd.decider.Decide(p, method, uri)
	if err != nil {
		return err
	}
	h := w.Header()
	// An allowed answer is for the proxy, which passes on only the headers
	// it is told to copy, so it drops those for a browser's document; a
	// refusal, which the browser may be shown, keeps them (see
	// docs/operations.md). So its headers stay within the eight entries a
	// small Go map holds, and net/http's copy of it stays small too.
	for _, d := range documentHeaders {
		delete(h, d.key)
	}
	v := [...]string{d.User, strings.Join(d.Groups, ","), d.TokenID} // one allocation for the three
	h["X-Auth-User"], h["X-Auth-Groups"], h["X-Auth-Token-Id"] = v[0:1:1], v[1:2:2], v[2:3:3]
	writeAnswer(w, http.StatusOK, verifyBody{User: d.User})
	return nil
}

// verifyBody is forward auth's answer body; proxies read the headers.
type verifyBody struct {
	User string `json:"user"`
}

// clientAddr is the address of the client behind a forward-auth request,
// for its audit record. The immediate peer is the client unless it is a
// trusted proxy; then X-Forwarded-For is read from the right (the hop the
// trusted proxy added) past every trusted hop, to the first address that
// is not a trusted proxy; without X-Forwarded-For, X-Real-IP. A malformed
// hop ends the walk at the last address known good. A header an untrusted
// client sent is never read.
func (f *forwardAuth) clientAddr(r *http.Request) string {
	peer := clientIP(r)
	addr, err := netip.ParseAddr(peer)
	if err != nil || !f.isTrusted(addr) {
		return peer
	}
	// The peer itself is named as every other record names it.
	name := func(a netip.Addr) string {
		if a == addr {
			return peer
		}
		return a.String()
	}
	if hops := r.Header["X-Forwarded-For"]; len(hops) > 0 {
		return name(walkForwardedFor(hops, addr, f.isTrusted))
	}
	if real, ok := single(r, realIPHeader); ok {
		if a, ok := parseHop(real); ok {
			return name(a)
		}
	}
	return peer
}

// walkForwardedFor returns the client named by the X-Forwarded-For values
// hops, received from the trusted proxy peer: the rightmost hop that
// trusted does not cover, or the leftmost valid one when every hop is a
// trusted proxy. It stops at a malformed hop and returns the address
// before it.
func walkForwardedFor(hops []string, peer netip.Addr, trusted func(netip.Addr) bool) netip.Addr {
	addr := peer
	for i := len(hops) - 1; i >= 0; i-- {
		list := hops[i]
		for list != "" {
			var hop string
			if j := strings.LastIndexByte(list, ','); j >= 0 {
				list, hop = list[:j], list[j+1:]
			} else {
				list, hop = "", list
			}
			a, ok := parseHop(hop)
			if !ok {
				return addr
			}
			addr = a
			if !trusted(a) {
				return a
			}
		}
	}
	return addr
}

// parseHop parses one X-Forwarded-For or X-Real-IP entry: an address,
// optionally with a port ("203.0.113.7:5123", "[2001:db8::1]:443").
// IPv4-mapped IPv6 addresses are read as IPv4; zones are refused.
func parseHop(s string) (netip.Addr, bool) {
	s = strings.TrimSpace(s)
	a, err := netip.ParseAddr(s)
	if err != nil {
		ap, perr := netip.ParseAddrPort(s)
		if perr != nil {
			return netip.Addr{}, false
		}
		a = ap.Addr()
	}
	if a.Zone() != "" {
		return netip.Addr{}, false
	}
	return a.Unmap(), true
}

func (f *forwardAuth) isTrusted(a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range f.trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// original returns the method and raw URI of the original request as the
// configured proxy describes it.
func (f *forwardAuth) original(r *http.Request) (method, uri string, err error) {
	var want [2]header
	var others []header
	switch f.headers {
	case HeadersForwarded:
		want, others = forwardedHeaders, originalHeaders[:]
	case HeadersEnvoy:
		others = append(originalHeaders[:], forwardedHeaders[:]...)
	default:
		want, others = originalHeaders, forwardedHeaders[:]
	}
	for _, h := range others {
		if len(r.Header[h.key]) > 0 {
			return "", "", gatehouse.Errorf(gatehouse.EFORBIDDEN,
				"forward auth is configured for %s headers but the request also carries %s: another kind of proxy is in front than the one configured, or a client forged it",
				f.headers, h.name)
		}
	}
	if f.headers == HeadersEnvoy {
		// Envoy appends the original :path (with its query) to the prefix;
		// RequestURI is that target as received, before any decoding.
		rest, ok := strings.CutPrefix(r.RequestURI, verifyPath)
		if !ok || rest == "" {
			return "", "", gatehouse.Errorf(gatehouse.EINVALID, "forward auth for Envoy needs the original path after %s (ext_authz path_prefix)", verifyPath)
		}
		return r.Method, rest, nil
	}
	method, mok := single(r, want[0])
	uri, uok := single(r, want[1])
	if !mok || !uok {
		return "", "", gatehouse.Errorf(gatehouse.EINVALID, "forward auth needs exactly one %s and one %s header (forwardAuth.headers: %s)", want[0].name, want[1].name, f.headers)
	}
	return method, uri, nil
}

// single returns the one value of header h; false for none, an empty
// one or several (a proxy that appends instead of replacing).
func single(r *http.Request, h header) (string, bool) {
	vs := r.Header[h.key]
	if len(vs) != 1 || vs[0] == "" {
		return "", false
	}
	return vs[0], true
}

// envoyPrefix sends Envoy's ext_authz requests, verifyPath followed by
// the original path, to the verify route unchanged: ServeMux would clean
// (redirect) a path with dot segments or "//" and the middleware would ask
// a POST for a JSON body. The handler reads the original path from the
// untouched RequestURI. Only with forwardAuth.headers: envoy.
func (s *Server) envoyPrefix(next http.Handler) http.Handler {
	if s.fwd.headers != HeadersEnvoy {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.RequestURI, verifyPath+"/") {
			u := *r.URL
			u.Path, u.RawPath, u.RawQuery = verifyPath, "", ""
			r2 := new(http.Request)
			*r2 = *r
			r2.URL = &u
			r = r2
		}
		next.ServeHTTP(w, r)
	})
}
