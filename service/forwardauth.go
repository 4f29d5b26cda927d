package service

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"

	"github.com/gatehouse/gatehouse"
)

// Forward auth: a reverse proxy (nginx auth_request, Traefik ForwardAuth,
// Caddy forward_auth, Envoy ext_authz) asks whether a request it is about to
// pass to a protected service may go through. The proxy sends the original
// method and request URI; Gatehouse maps them through a route table onto an
// RBAC question and answers it.
//
// The danger is a mismatch between the path Gatehouse decides on and the
// path the protected service serves: "/public/%2e%2e/admin/" is under
// "/public/" to a matcher that does not decode, and is "/admin/" to an
// upstream that decodes and resolves dot segments. Gatehouse therefore
// decides only on paths that every reasonable upstream reads the same way:
// it decodes the path once and refuses every original URI whose meaning
// depends on how (or how often) it is decoded or normalized — encoded '/' or
// '\', dot segments raw or encoded, empty segments, control bytes, invalid
// UTF-8, double encoding. A refusal is a 403, never a guess.

// Route maps original requests onto an RBAC question. Match is a
// net/http ServeMux pattern without a host ("GET /grafana/",
// "POST /deploy/{project}/{app}", "/repos/{project}/{rest...}"); Object may
// name the pattern's wildcards ("{project}/{app}").
type Route struct {
	Match    string
	Resource string
	Action   string
	Object   string
}

// RouteError is one problem with one route of a route table.
type RouteError struct {
	Index   int    // position in the table
	Field   string // "match", "resource", "action" or "object"
	Problem string
}

func (e *RouteError) Error() string {
	return fmt.Sprintf("routes[%d].%s: %s", e.Index, e.Field, e.Problem)
}

// ForwardAuth decides forward-auth requests with one route table. Build
// it with Service.NewForwardAuth; it is safe for concurrent use.
type ForwardAuth struct {
	svc    *Service
	tree   routeTree
	routes []*fwdRoute
}

// ForwardDecision is an allowed forward-auth request: who the caller is
// (for the identity headers the proxy passes on) and the question that
// was answered.
type ForwardDecision struct {
	User    string   // RBAC subject
	Groups  []string // must not be modified
	TokenID string

	Resource, Action, Object string
}

// fwdRoute is a compiled Route.
type fwdRoute struct {
	Route
	object   []objectPart
	segments int  // of the pattern's path
	multi    bool // the path ends in a multi wildcard or a trailing '/'
	named    bool // a named multi wildcard, whose value is kept
}

// objectPart is a literal piece of an object template or, when wildcard
// is set, the value of that pattern wildcard: the value-th of the values
// the route's match keeps (one per named wildcard, in the pattern's
// order).
type objectPart struct {
	literal  string
	wildcard string
	value    int
	multi    bool // a {name...} wildcard: valid names joined by '/'
}

// CheckRoutes reports every problem of a route table, nil when it
// compiles. NewForwardAuth and the configuration use this one check.
func CheckRoutes(routes []Route) []*RouteError {
	_, problems := compileRoutes(routes)
	return problems
}

// NewForwardAuth compiles a route table. Every problem (bad pattern,
// duplicate or conflicting patterns, an object naming an unknown wildcard,
// missing fields) is reported, joined, as *RouteError values.
func (s *Service) NewForwardAuth(routes []Route) (*ForwardAuth, error) {
	f, problems := compileRoutes(routes)
	if len(problems) > 0 {
		errs := make([]error, len(problems))
		for i, p := range problems {
			errs[i] = p
		}
		return nil, errors.Join(errs...)
	}
	f.svc = s
	return f, nil
}

func compileRoutes(routes []Route) (*ForwardAuth, []*RouteError) {
	var problems []*RouteError
	bad := func(i int, field, format string, args ...any) {
		problems = append(problems, &RouteError{Index: i, Field: field, Problem: fmt.Sprintf(format, args...)})
	}
	f := &ForwardAuth{tree: routeTree{}}
	var ok []int // indexes of routes whose pattern is valid on its own
	for i, r := range routes {
		for _, fld := range []struct{ name, v string }{{"resource", r.Resource}, {"action", r.Action}, {"object", r.Object}} {
			if strings.TrimSpace(fld.v) == "" {
				bad(i, fld.name, "must be set")
			} else if strings.TrimSpace(fld.v) != fld.v || strings.ContainsAny(fld.v, ",\r\n") {
				bad(i, fld.name, "%q must not hold spaces around it, commas or line breaks", fld.v)
			}
		}
		method, segs, err := parseMatch(r.Match)
		if err != nil {
			bad(i, "match", "%v", err)
			continue
		}
		ok = append(ok, i)
		last := segs[len(segs)-1]
		rt := &fwdRoute{Route: r, segments: len(segs), multi: last.multi, named: last.multi && last.s != ""}
		if r.Object != "" {
			if rt.object, err = parseObject(r.Object, segs); err != nil {
				bad(i, "object", "%v", err)
			}
		}
		f.routes = append(f.routes, rt)
		f.tree.add(method, segs, rt)
	}
	// Duplicates and conflicts: ServeMux panics on them, so find the pair
	// first and say which routes they are.
	for n, i := range ok {
		for _, j := range ok[:n] {
			if routes[i].Match == routes[j].Match {
				bad(i, "match", "%q is the same pattern as routes[%d]", routes[i].Match, j)
			} else if err := register(http.NewServeMux(), routes[j].Match, routes[i].Match); err != nil {
				bad(i, "match", "%q conflicts with routes[%d] %q: both match some requests and neither is more specific", routes[i].Match, j, routes[j].Match)
			}
		}
	}
	if len(problems) > 0 {
		return nil, problems
	}
	return f, nil
}

// register adds patterns to mux, turning its panic into an error.
func register(mux *http.ServeMux, patterns ...string) (err error) {
	defer func() {
		if v := recover(); v != nil {
			if e, ok := v.(error); ok {
				err = e
			} else {
				err = fmt.Errorf("%v", v)
			}
		}
	}()
	for _, p := range patterns {
		mux.Handle(p, http.NotFoundHandler())
	}
	return nil
}

// parseMatch checks a route pattern and returns its method ("" for
// any) and the segments of its path.
func parseMatch(pattern string) (method string, segs []patternSegment, err error) {
	if strings.TrimSpace(pattern) == "" {
		return "", nil, errors.New(`must be set, e.g. "GET /grafana/"`)
	}
	path := pattern
	if m, rest, ok := strings.Cut(pattern, " "); ok && !strings.HasPrefix(pattern, "/") {
		if !validMethod(m) {
			return "", nil, fmt.Errorf("%q: %q is not an HTTP method", pattern, m)
		}
		if hasLower(m) {
			return "", nil, fmt.Errorf("%q: methods are matched as sent, in upper case: write %q", pattern, strings.ToUpper(m))
		}
		method, path = m, strings.TrimLeft(rest, " \t")
	}
	if !strings.HasPrefix(path, "/") {
		// The original host would come from a header a client can set.
		return "", nil, fmt.Errorf("%q: a route matches a path that starts with '/' (with an optional method); host patterns are not supported", pattern)
	}
	if strings.Contains(path, "//") {
		// No canonical path has one, and ServeMux, which takes it without
		// a method, reads it as a wildcard.
		return "", nil, fmt.Errorf("%q: the path has an empty segment (//)", pattern)
	}
	if err := register(http.NewServeMux(), pattern); err != nil {
		msg := err.Error()
		msg = strings.TrimPrefix(msg, fmt.Sprintf("parsing %q: ", pattern))
		return "", nil, fmt.Errorf("%q is not a valid ServeMux pattern: %s", pattern, msg)
	}
	return method, pathSegments(path), nil
}

// parseObject compiles an object template: literal text and {name} (or
// {name...} for a multi wildcard) references to the wildcards of the
// pattern whose path is segs.
func parseObject(tmpl string, segs []patternSegment) ([]objectPart, error) {
	type wildcard struct {
		value int
		multi bool
	}
	wildcards := map[string]wildcard{}
	for _, seg := range segs {
		if seg.wild && seg.s != "" {
			wildcards[seg.s] = wildcard{len(wildcards), seg.multi}
		}
	}
	var parts []objectPart
	rest := tmpl
	for rest != "" {
		i := strings.IndexAny(rest, "{}")
		if i < 0 {
			parts = append(parts, objectPart{literal: rest})
			break
		}
		if rest[i] == '}' {
			return nil, fmt.Errorf("%q: '}' without '{'", tmpl)
		}
		if i > 0 {
			parts = append(parts, objectPart{literal: rest[:i]})
		}
		end := strings.IndexByte(rest[i:], '}')
		if end < 0 {
			return nil, fmt.Errorf("%q: '{' without '}'", tmpl)
		}
		ref := rest[i+1 : i+end]
		name, dots := strings.CutSuffix(ref, "...")
		w, known := wildcards[name]
		switch {
		case !known:
			return nil, fmt.Errorf("%q names {%s}, which is not a wildcard of the route's match", tmpl, ref)
		case dots && !w.multi:
			return nil, fmt.Errorf("%q: {%s} is a single-segment wildcard; write {%s}", tmpl, ref, name)
		}
		parts = append(parts, objectPart{wildcard: name, value: w.value, multi: w.multi})
		rest = rest[i+end+1:]
	}
	return parts, nil
}

// Decide answers a forward-auth request: p is the authenticated caller,
// method and rawURI describe the original request (rawURI as the client
// sent it, percent-encoding intact: nginx's $request_uri). It refuses a
// method that is not an upper-case token and a URI that is not canonical
// (EFORBIDDEN, see CanonicalPath), refuses a request that no route
// matches or whose wildcard values are not valid names (EFORBIDDEN), and
// otherwise authorizes p for the route's question.
func (f *ForwardAuth) Decide(p *Principal, method, rawURI string) (ForwardDecision, error) {
	if !validMethod(method) {
		p.noteOriginal(auditText(method, 16), auditPath(rawURI), "")
		return ForwardDecision{}, refused("the original method is not an HTTP method")
	}
	if hasLower(method) {
		p.noteOriginal(method, auditPath(rawURI), "")
		return ForwardDecision{}, refused("the original method has lower-case letters")
	}
	path, err := CanonicalPath(rawURI)
	if err != nil {
		p.noteOriginal(method, auditPath(rawURI), "")
		return ForwardDecision{}, err
	}
	rt, object, err := f.match(method, path)
	if err != nil {
		p.noteOriginal(method, path, "")
		return ForwardDecision{}, err
	}
	err = f.svc.Authorize(p, rt.Resource, rt.Action, object)
	p.noteOriginal(method, path, rt.Match)
	if err != nil {
		return ForwardDecision{}, err
	}
	return ForwardDecision{
		User: p.Subject(), Groups: p.Groups(), TokenID: p.TokenID(),
		Resource: rt.Resource, Action: rt.Action, Object: object,
	}, nil
}

// noteOriginal adds the original request to p's decision, for the audit
// record of a forward-auth request.
func (p *Principal) noteOriginal(method, path, route string) {
	if p != nil {
		p.decision.Method, p.decision.Path, p.decision.Route = method, path, route
	}
}

// auditPath is what the audit record keeps of a refused original URI:
// its path, never the query string (it may carry a secret), at most 512
// bytes, quoted when it is not printable UTF-8.
func auditPath(rawURI string) string {
	path, _, _ := strings.Cut(rawURI, "?")
	return auditText(path, 512)
}

// auditText bounds s to n bytes and quotes it when it is not printable
// UTF-8, so that the record shows what was sent without storing bytes a
// reader's terminal would interpret.
func auditText(s string, n int) string {
	if len(s) > n {
		s = s[:n]
	}
	if !utf8.ValidString(s) || strings.IndexFunc(s, func(r rune) bool { return !unicode.IsPrint(r) }) >= 0 {
		return strconv.QuoteToASCII(s)
	}
	return s
}

// match finds the route of a canonical path and builds its object.
func (f *ForwardAuth) match(method, path string) (*fwdRoute, string, error) {
	var buf [8]string
	rt, vals := f.tree.lookup(method, path, buf[:0])
	if rt == nil {
		return nil, "", gatehouse.Errorf(gatehouse.EFORBIDDEN, "no forward-auth route matches %s %s", method, path)
	}
	var b strings.Builder
	for _, part := range rt.object {
		if part.wildcard == "" {
			b.WriteString(part.literal)
			continue
		}
		v := vals[part.value]
		if !validWildcard(v, part.multi) {
			return nil, "", refused(fmt.Sprintf("the path's value for {%s} is not a valid name (letters, digits, '.', '_', '-'; no \"..\")", part.wildcard))
		}
		b.WriteString(v)
	}
	return rt, b.String(), nil
}

// refusalPrefix starts the message of every refused original request.
const refusalPrefix = "forward auth refuses the original request: "

func refused(why string) error {
	return gatehouse.Errorf(gatehouse.EFORBIDDEN, "%s%s", refusalPrefix, why)
}

// maxOriginalURI bounds the original request URI.
const maxOriginalURI = 8 << 10

// CanonicalPath returns the decoded path of an original request URI
// (origin-form: path and optional query, percent-encoding as sent), or an
// EFORBIDDEN error when the URI is not canonical, that is when a proxy or
// upstream could reasonably read it as another path:
//
//   - not origin-form (does not start with '/'), longer than 8 KiB, or
//     holding a fragment, a raw space, control byte or '\';
//   - a malformed escape, or an escape that decodes to '/', '\', '%' (double
//     encoding) or a control byte;
//   - invalid UTF-8 after decoding, a Unicode control, format (invisible)
//     or line-separator character, or a character that compatibility
//     normalization or Windows best-fit mapping turns into '/', '\' or '.';
//   - a path that Unicode NFKC normalization changes (fullwidth letters);
//   - an empty segment ("//"; a trailing '/' is fine), a segment made only
//     of dots and spaces ("." and ".." raw or encoded, "...", ".%2e"), a
//     segment with a ';' (a path parameter, which servlet containers drop:
//     "/admin;x/" and "..;" are "/admin/" and ".." to them), or one that
//     ends in '.' or a space (which Windows drops).
//
// Letter case is not normalized: routes are matched case-sensitively, so
// an upstream that is not (IIS, a case-insensitive file system) needs
// routes that do not rely on case, or a catch-all that is not weaker than
// the specific routes.
//
// The path is decoded exactly once; the query is not looked at beyond the
// raw-byte checks. An accepted path therefore has no dot segments and no
// empty segments, and every upstream that decodes once and normalizes
// serves exactly it.
func CanonicalPath(rawURI string) (string, error) {
	if len(rawURI) > maxOriginalURI {
		return "", refused("the original URI is longer than 8 KiB")
	}
	if !strings.HasPrefix(rawURI, "/") {
		return "", refused("the original URI is not a path starting with '/'")
	}
	for i := 0; i < len(rawURI); i++ {
		switch c := rawURI[i]; {
		case c < 0x20 || c == 0x7f:
			return "", refused("the original URI holds a control byte")
		case c == ' ':
			return "", refused("the original URI holds a raw space")
		case c == '#':
			return "", refused("the original URI holds a fragment")
		}
	}
	path := rawURI
	if i := strings.IndexByte(path, '?'); i >= 0 {
		path = path[:i]
	}
	if strings.IndexByte(path, '\\') >= 0 {
		return "", refused(`the path holds a backslash`)
	}
	decoded, err := decodeOnce(path)
	if err != nil {
		return "", err
	}
	if !utf8.ValidString(decoded) {
		return "", refused("the decoded path is not valid UTF-8")
	}
	ascii := true
	for _, r := range decoded {
		if r < utf8.RuneSelf {
			continue
		}
		ascii = false
		switch {
		case unicode.IsControl(r) || unicode.In(r, unicode.Cf, unicode.Zl, unicode.Zp):
			return "", refused("the decoded path holds an invisible or control character")
		case looksLikeSeparator(r):
			return "", refused("the decoded path holds a character that normalizes to '/', '\\' or '.'")
		}
	}
	// An upstream that normalizes Unicode (NFKC: fullwidth "ａｄｍｉｎ" is
	// "admin") would serve another path than the one decided on. ASCII is
	// its own NFKC form.
	if !ascii && !norm.NFKC.IsNormalString(decoded) {
		return "", refused("the decoded path changes under Unicode normalization (NFKC)")
	}
	for rest, more := decoded[1:], true; more; {
		var seg string
		seg, rest, more = strings.Cut(rest, "/")
		if seg == "" {
			if !more {
				break // trailing slash (or the root)
			}
			return "", refused("the path has an empty segment (//)")
		}
		if strings.Trim(seg, ". ") == "" {
			return "", refused("the path has a dot segment (. or .., raw or encoded)")
		}
		if strings.IndexByte(seg, ';') >= 0 {
			// Servlet containers drop ";params" from a segment, so that
			// "/admin;x/" is "/admin/" to them.
			return "", refused("the path has a ';' in a segment (a path parameter)")
		}
		if last := seg[len(seg)-1]; last == '.' || last == ' ' {
			// Windows drops trailing dots and spaces: "admin." is "admin".
			return "", refused("a path segment ends in '.' or a space")
		}
	}
	return decoded, nil
}

// decodeOnce percent-decodes a raw path once, refusing escapes whose
// meaning depends on the decoder.
func decodeOnce(path string) (string, error) {
	if strings.IndexByte(path, '%') < 0 {
		return path, nil
	}
	b := make([]byte, 0, len(path))
	for i := 0; i < len(path); i++ {
		c := path[i]
		if c != '%' {
			b = append(b, c)
			continue
		}
		if i+2 >= len(path) || !isHex(path[i+1]) || !isHex(path[i+2]) {
			return "", refused("the path has a malformed percent-escape")
		}
		d := unhex(path[i+1])<<4 | unhex(path[i+2])
		switch {
		case d == '/':
			return "", refused("the path has an encoded '/' (%2F)")
		case d == '\\':
			return "", refused(`the path has an encoded '\' (%5C)`)
		case d == '%':
			return "", refused("the path is encoded twice (%25)")
		case d == '?' || d == '#':
			// An upstream that decodes before it splits off the query or
			// fragment would serve a shorter path.
			return "", refused("the path has an encoded '?' or '#' (%3F, %23)")
		case d < 0x20 || d == 0x7f:
			return "", refused("the path has an encoded control byte")
		}
		b = append(b, d)
		i += 2
	}
	return string(b), nil
}

// looksLikeSeparator: characters that NFKC normalization or Windows
// "best fit" code-page mapping turn into (or make contain) '/', '\' or
// '.': an upstream that applies either would see another path.
func looksLikeSeparator(r rune) bool {
	switch r {
	case '\u2024', '\u2025', '\u2026', '\uFE19', '\uFE30', '\uFE52', '\uFF0E', // dot leaders, ellipses, small and fullwidth full stop
		'\u2044', '\u2215', '\u29F8', '\uFF0F', // fraction, division, big and fullwidth solidus
		'\u2216', '\u29F5', '\u29F9', '\uFE68', '\uFF3C', // set minus, reverse solidus operator, big, small and fullwidth reverse solidus
		'\u2100', '\u2101', '\u2105', '\u2106': // a/c, a/s, c/o, c/u
		return true
	}
	return false
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c <= 'F':
		return c - 'A' + 10
	}
	return c - 'a' + 10
}

// validMethod: an HTTP method is a token (RFC 9110 §5.6.2) of at most 32
// bytes.
func validMethod(m string) bool {
	if m == "" || len(m) > 32 {
		return false
	}
	for i := 0; i < len(m); i++ {
		c := m[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0) {
			return false
		}
	}
	return true
}

// hasLower reports whether a method has lower-case letters. Forward auth
// refuses such an original method, and a route with one: methods are
// case-sensitive and every proxy sends them as the client did, but an
// upstream that upper-cases them (Werkzeug does) would serve "get" as
// GET, where the route table, which matches methods as sent, found
// another route, perhaps a weaker catch-all.
func hasLower(m string) bool {
	return strings.IndexFunc(m, func(r rune) bool { return 'a' <= r && r <= 'z' }) >= 0
}

// maxNameLen bounds one wildcard segment (a DNS name's length).
const maxNameLen = 253

// validWildcard reports whether a wildcard value may enter an object. A
// single wildcard is one name; a {name...} wildcard is one or more names
// joined by '/'. A name is 1 to 253 bytes of ASCII letters, digits, '.',
// '_' and '-', without "..": nothing that reads as traversal, as a glob or
// regex separator, or as another project's prefix once in an object.
func validWildcard(v string, multi bool) bool {
	if !multi {
		return validName(v)
	}
	for seg := range strings.SplitSeq(v, "/") {
		if !validName(seg) {
			return false
		}
	}
	return true
}

func validName(s string) bool {
	if s == "" || len(s) > maxNameLen || strings.Contains(s, "..") {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}
