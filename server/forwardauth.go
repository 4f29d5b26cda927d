package server

import (
	"net/http"
	"net/url"
	"regexp"
	"strings"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/service"
)

const verifyPath = "/api/v1/auth/verify"

// Route maps requests of another service onto an RBAC question for the
// forward-auth endpoint. Match is a ServeMux pattern ("GET /grafana/",
// "POST /deploy/{project}/{app}"); Object may name the pattern's
// wildcards ("{project}/{app}").
type Route struct {
	Match    string
	Resource string
	Action   string
	Object   string
}

// routeTable matches original requests against the configured routes.
type routeTable struct {
	mux *http.ServeMux
}

type routeMatch struct {
	resource, action, object string
	ok                       bool
}

type matchKey struct{}

var wildcard = regexp.MustCompile(`\{([^{}]+)\}`)

func newRouteTable(routes []Route) *routeTable {
	mux := http.NewServeMux()
	for _, r := range routes {
		mux.HandleFunc(r.Match, func(_ http.ResponseWriter, req *http.Request) {
			m := req.Context().Value(matchKey{}).(*routeMatch)
			*m = routeMatch{resource: r.Resource, action: r.Action, ok: true,
				object: wildcard.ReplaceAllStringFunc(r.Object, func(w string) string {
					return req.PathValue(strings.TrimSuffix(w[1:len(w)-1], "..."))
				})}
		})
	}
	return &routeTable{mux: mux}
}

// match finds the route of an original request; ok is false when none
// matches (the request is then refused).
func (t *routeTable) match(r *http.Request, method string, u *url.URL) routeMatch {
	var m routeMatch
	req, err := http.NewRequestWithContext(contextWith(r, &m), method, u.String(), nil)
	if err != nil {
		return m
	}
	req.Host = r.Header.Get("X-Forwarded-Host")
	if _, pattern := t.mux.Handler(req); pattern == "" {
		return m
	}
	t.mux.ServeHTTP(discard{}, req)
	return m
}

// verify is the forward-auth endpoint for nginx auth_request, Traefik
// ForwardAuth and Envoy ext_authz: 200 with identity headers, 401 with a
// challenge, or 403. Requests that match no route are refused.
func (s *Server) verify(w http.ResponseWriter, r *http.Request, p *service.Principal) error {
	method := firstHeader(r, "X-Original-Method", "X-Forwarded-Method")
	uri := firstHeader(r, "X-Original-URI", "X-Forwarded-Uri")
	if method == "" || uri == "" {
		return gatehouse.Errorf(gatehouse.EINVALID, "forward auth needs X-Original-Method and X-Original-URI (or X-Forwarded-Method and X-Forwarded-Uri)")
	}
	u, err := url.ParseRequestURI(uri)
	if err != nil {
		return gatehouse.Errorf(gatehouse.EINVALID, "X-Original-URI is not a request URI")
	}
	m := s.fwd.match(r, method, u)
	if !m.ok {
		return gatehouse.Errorf(gatehouse.EFORBIDDEN, "no forward-auth route matches %s %s", method, u.Path)
	}
	if err := s.svc.Authorize(p, m.resource, m.action, m.object); err != nil {
		return err
	}
	h := w.Header()
	h.Set("X-Auth-User", p.Subject())
	h.Set("X-Auth-Groups", strings.Join(p.Groups(), ","))
	h.Set("X-Auth-Token-Id", p.TokenID())
	writeJSON(w, http.StatusOK, map[string]string{"user": p.Subject()})
	return nil
}

func firstHeader(r *http.Request, names ...string) string {
	for _, n := range names {
		if v := r.Header.Get(n); v != "" {
			return v
		}
	}
	return ""
}

type discard struct{}

func (discard) Header() http.Header         { return http.Header{} }
func (discard) Write(b []byte) (int, error) { return len(b), nil }
func (discard) WriteHeader(int)             {}
