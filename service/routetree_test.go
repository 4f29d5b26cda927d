package service

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// serveMuxMatch is the route table's lookup as net/http's ServeMux does
// it: the reference the route tree is held to.
func serveMuxMatch(f *ForwardAuth, method, path string) (*fwdRoute, string, error) {
	mux := http.NewServeMux()
	var got *fwdRoute
	var req *http.Request
	for _, rt := range f.routes {
		mux.HandleFunc(rt.Match, func(_ http.ResponseWriter, r *http.Request) { got, req = rt, r })
	}
	mux.ServeHTTP(discard{}, &http.Request{Method: method, URL: &url.URL{Path: path}})
	if got == nil {
		return nil, "", fmt.Errorf("no forward-auth route matches %s %s", method, path)
	}
	var b strings.Builder
	for _, part := range got.object {
		if part.wildcard == "" {
			b.WriteString(part.literal)
			continue
		}
		v := req.PathValue(part.wildcard)
		if !validWildcard(v, part.multi) {
			return nil, "", refused(fmt.Sprintf("the path's value for {%s} is not a valid name (letters, digits, '.', '_', '-'; no \"..\")", part.wildcard))
		}
		b.WriteString(v)
	}
	return got, b.String(), nil
}

type discard struct{}

func (discard) Header() http.Header         { return http.Header{} }
func (discard) Write(b []byte) (int, error) { return len(b), nil }
func (discard) WriteHeader(int)             {}

// sameMatch reports how the tree's answer differs from ServeMux's, "" if
// it does not.
func sameMatch(f *ForwardAuth, method, path string) string {
	rt, obj, err := f.match(method, path)
	want, wantObj, wantErr := serveMuxMatch(f, method, path)
	name := func(rt *fwdRoute) string {
		if rt == nil {
			return "no route"
		}
		return fmt.Sprintf("%q", rt.Match)
	}
	switch {
	case rt != want:
		return fmt.Sprintf("%s %s: tree %s, ServeMux %s", method, path, name(rt), name(want))
	case obj != wantObj:
		return fmt.Sprintf("%s %s (%s): object %q, ServeMux %q", method, path, name(rt), obj, wantObj)
	case (err == nil) != (wantErr == nil) || rt != nil && err != nil && err.Error() != wantErr.Error():
		return fmt.Sprintf("%s %s (%s): error %v, ServeMux %v", method, path, name(rt), err, wantErr)
	}
	return ""
}

// TestRouteTreeMatchesServeMux: on random route tables (methods or none,
// literals, escaped literals, wildcards, {$}, trailing slashes, multi
// wildcards) and random canonical paths, the route tree finds the route
// ServeMux finds, with the same object, and refuses what ServeMux would
// redirect.
func TestRouteTreeMatchesServeMux(t *testing.T) {
	tables := 4000
	if testing.Short() {
		tables = 400
	}
	rnd := rand.New(rand.NewPCG(15, 2026))
	pick := func(xs ...string) string { return xs[rnd.IntN(len(xs))] }
	var compiled, matched, refusedValue, redirected, viaGet, viaAny, multi int
	for range tables {
		var routes []Route
		for range 1 + rnd.IntN(8) {
			var p strings.Builder
			p.WriteString(pick("", "", "GET ", "HEAD ", "POST ", "DELETE ", "CONNECT ", "PUT "))
			var wild []string
			for i := range rnd.IntN(4) {
				switch seg := pick("a", "b", "c", "%61", "ü", "{w}", "{w}", ""); seg {
				case "{w}":
					name := fmt.Sprintf("w%d", i)
					wild = append(wild, "{"+name+"}")
					p.WriteString("/{" + name + "}")
				default:
					p.WriteString("/" + seg)
				}
			}
			switch pick("", "", "/", "/", "/{$}", "/{rest...}") {
			case "/":
				p.WriteString("/")
			case "/{$}":
				p.WriteString("/{$}")
			case "/{rest...}":
				p.WriteString("/{rest...}")
				wild = append(wild, "{rest...}")
			}
			if p.Len() == 0 || strings.HasSuffix(p.String(), " ") {
				p.WriteString("/")
			}
			object := "o"
			if len(wild) > 0 {
				rnd.Shuffle(len(wild), func(i, j int) { wild[i], wild[j] = wild[j], wild[i] })
				object = strings.Join(wild[:1+rnd.IntN(len(wild))], "/")
			}
			routes = append(routes, Route{Match: p.String(), Resource: "r", Action: "a", Object: object})
		}
		f, problems := compileRoutes(routes)
		if len(problems) > 0 {
			continue // conflicting or duplicate patterns: ServeMux refuses the table too
		}
		compiled++
		for range 40 {
			var p strings.Builder
			for range rnd.IntN(5) {
				p.WriteString("/" + pick("a", "b", "c", "a", "b", "ü", "x.y", "a..b"))
			}
			if p.Len() == 0 || rnd.IntN(3) == 0 {
				p.WriteString("/")
			}
			path := p.String()
			method := pick("GET", "HEAD", "POST", "DELETE", "PUT", "CONNECT", "get")
			if diff := sameMatch(f, method, path); diff != "" {
				t.Fatalf("routes %q: %s", routes, diff)
			}
			rt, _, err := f.match(method, path)
			switch {
			case rt != nil && err == nil:
				matched++
				if m, _, _ := parseMatch(rt.Match); m == "GET" && method == "HEAD" {
					viaGet++
				} else if m == "" {
					viaAny++
				}
				if rt.multi && !rt.exact(path) {
					multi++
				}
			case err != nil && strings.Contains(err.Error(), "is not a valid name"):
				refusedValue++
			case !strings.HasSuffix(path, "/"):
				if r2, _ := f.tree.find(method, path+"/", nil); r2.exact(path + "/") {
					redirected++
				}
			}
		}
	}
	t.Logf("%d tables compiled; %d matches (%d HEAD by GET, %d without a method, %d by a multi wildcard taking something), %d values refused, %d redirects refused",
		compiled, matched, viaGet, viaAny, multi, refusedValue, redirected)
	// The generator reaches every rule, so that a tree that broke one
	// would be caught.
	for what, n := range map[string]int{"table": compiled, "match": matched, "HEAD by GET": viaGet, "match without a method": viaAny,
		"multi match": multi, "refused value": refusedValue, "redirect": redirected} {
		if n < tables/40 {
			t.Errorf("only %d cases of %s", n, what)
		}
	}
}

// TestRouteTreeExamples: the rules, one by one, on a table an operator
// might write.
func TestRouteTreeExamples(t *testing.T) {
	routes := []Route{
		{Match: "GET /grafana/", Resource: "monitoring", Action: "get", Object: "grafana"},
		{Match: "GET /grafana/admin/{$}", Resource: "monitoring", Action: "admin", Object: "grafana"},
		{Match: "POST /deploy/{project}/{app}", Resource: "applications", Action: "sync", Object: "{project}/{app}"},
		{Match: "/repos/{project}/{rest...}", Resource: "repositories", Action: "get", Object: "{project}/{rest}"},
		{Match: "/docs/", Resource: "docs", Action: "get", Object: "all"},
		{Match: "/%C3%BCber/{x}", Resource: "u", Action: "get", Object: "{x}"},
	}
	f, problems := compileRoutes(routes)
	if len(problems) > 0 {
		t.Fatal(problems)
	}
	for _, tt := range []struct {
		method, path string
		route        int // -1: none
		object       string
	}{
		{"GET", "/grafana/d/abc", 0, "grafana"},
		{"HEAD", "/grafana/d/abc", 0, "grafana"},  // GET takes HEAD
		{"POST", "/grafana/d/abc", -1, ""},        // no route for the method
		{"GET", "/grafana", -1, ""},               // ServeMux would redirect to /grafana/
		{"GET", "/grafana/admin/", 1, "grafana"},  // {$}, and no method beats the prefix route for what it matches exactly
		{"GET", "/grafana/admin/x", 0, "grafana"}, // {$} is the trailing slash only
		{"GET", "/grafana/admin", -1, ""},         // redirect to /grafana/admin/
		{"POST", "/deploy/team-a/web", 2, "team-a/web"},
		{"POST", "/deploy/team-a/web/", -1, ""},
		{"POST", "/deploy/team-a/", -1, ""}, // a {name} does not take the empty last segment
		{"GET", "/repos/team-a/x/y.git", 3, "team-a/x/y.git"},
		{"GET", "/repos/team-a/", -1, ""}, // {rest...} takes nothing: not a valid name, refused
		{"GET", "/docs", -1, ""},          // redirect
		{"GET", "/docs/a/b", 4, "all"},
		{"GET", "/über/x", 5, "x"}, // an escaped literal matches its decoded form
	} {
		if diff := sameMatch(f, tt.method, tt.path); diff != "" {
			t.Errorf("%s", diff)
		}
		rt, obj, err := f.match(tt.method, tt.path)
		switch {
		case tt.route < 0 && err == nil:
			t.Errorf("%s %s: matched %q, want no route", tt.method, tt.path, rt.Match)
		case tt.route >= 0 && (err != nil || rt != f.routes[tt.route] || obj != tt.object):
			t.Errorf("%s %s: %v %q %v, want %q %q", tt.method, tt.path, rt, obj, err, routes[tt.route].Match, tt.object)
		}
	}
}

// FuzzRouteTree: for any route table that compiles and any canonical
// path, the route tree answers as ServeMux does.
func FuzzRouteTree(f *testing.F) {
	f.Add("GET /grafana/\n/repos/{p}/{rest...}\n/a/{$}", "GET", "/repos/x/y")
	f.Add("/a/{x}/b\n/a/c/", "HEAD", "/a/c")
	f.Add("HEAD /%61/{x}\n/a/", "HEAD", "/a/b")
	f.Add("/\n//", "GET", "/x")
	f.Add("/t/{p}/{q}/{r...}\n/t/", "GET", "/t/a/b/c/d")
	f.Fuzz(func(t *testing.T, table, method, rawURI string) {
		var routes []Route
		for i, m := range strings.Split(table, "\n") {
			if i == 8 {
				break
			}
			// The object takes every named wildcard, last first, so that
			// their values are checked too.
			object := "o"
			if _, segs, err := parseMatch(m); err == nil {
				var names []string
				for _, seg := range segs {
					if seg.wild && seg.s != "" {
						names = append([]string{"{" + seg.s + "}"}, names...)
					}
				}
				if len(names) > 0 {
					object = strings.Join(names, "/")
				}
			}
			routes = append(routes, Route{Match: m, Resource: "r", Action: "a", Object: object})
		}
		fa, problems := compileRoutes(routes)
		if len(problems) > 0 || !validMethod(method) {
			return
		}
		path, err := CanonicalPath(rawURI)
		if err != nil {
			return
		}
		if diff := sameMatch(fa, method, path); diff != "" {
			t.Fatalf("routes %q: %s", routes, diff)
		}
	})
}
