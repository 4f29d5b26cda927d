package service

import (
	"net/url"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"

	"github.com/gatehouse/gatehouse"
)

// TestASCIIIsNFKC: CanonicalPath skips the normalization check for an
// ASCII path, which holds only if every ASCII text is its own NFKC form:
// every byte, and every pair (ASCII has no combining marks, so nothing
// longer composes).
func TestASCIIIsNFKC(t *testing.T) {
	for a := range 0x80 {
		for b := range 0x80 {
			if s := string([]byte{byte(a), byte(b)}); !norm.NFKC.IsNormalString(s) || !norm.NFKC.IsNormalString(s[:1]) {
				t.Fatalf("%q is not NFKC-normal", s)
			}
		}
	}
}

func TestCanonicalPath(t *testing.T) {
	ok := map[string]string{
		"/":                             "/",
		"/grafana/":                     "/grafana/",
		"/grafana/d/abc?orgId=1":        "/grafana/d/abc",
		"/a%20b/c":                      "/a b/c",
		"/%61dmin/":                     "/admin/",
		"/%C3%BCber/%e2%82%ac":          "/über/€",
		"/über":                         "/über",
		"/a/.hidden/b..c/x.y":           "/a/.hidden/b..c/x.y",
		"/q?x=%2F..%2f//&y=%00":         "/q",
		"/a/b?":                         "/a/b",
		"/repos/team-a/x/y/z.git":       "/repos/team-a/x/y/z.git",
		"/deploy/team-a/web":            "/deploy/team-a/web",
		"/a:b@c/!$&'()*+,=/~-_":         "/a:b@c/!$&'()*+,=/~-_",
		"/%5B%5d%7B%7d%7C%5E%60%22":     "/[]{}|^`\"",
		"/" + strings.Repeat("a", 8000): "/" + strings.Repeat("a", 8000),
	}
	for raw, want := range ok {
		got, err := CanonicalPath(raw)
		if err != nil || got != want {
			t.Errorf("CanonicalPath(%q) = %q, %v; want %q", raw, got, err, want)
		}
	}
	refused := []string{
		// not origin-form
		"", "*", "grafana/", "http://example.com/admin/", "?x", "%2Fadmin",
		// encoded '/' or '\', any case
		"/public/%2fadmin", "/public/%2Fadmin", "/public/..%2fadmin/", "/a%5cb", "/a%5Cb",
		// dot segments raw or encoded, any case, mixed
		"/public/../admin/", "/public/./admin", "/..", "/.", "/a/..", "/a/.",
		"/public/%2e%2e/admin/", "/public/%2E%2E/admin/", "/public/.%2e/admin/", "/public/%2e./admin/",
		"/public/%2E/admin", "/a/%2e", "/a/...", "/a/%2e%2e%2e/b",
		"/public/..;/admin/", "/public/%2e%2e;x/admin/", "/a/;/b", "/a/.%20/b", "/a/%20/b",
		// empty segments
		"//", "//admin", "/public//admin", "/a/b//",
		// control bytes raw or encoded, NUL
		"/a\x00b", "/a%00b", "/a%0a", "/a%0D%0A", "/a%1f", "/a%7f", "/a\tb", "/a\x7f", "/a/b?x=\x00", "/a%C2%85b",
		// backslash, raw space, fragment
		`/public\..\admin`, `/a\b`, "/a b", "/a#b",
		// malformed escapes and double encoding
		"/a%", "/a%2", "/a%zz", "/a%g0", "/public/%252e%252e/admin/", "/a%25",
		// invalid UTF-8 after decoding, raw or encoded
		"/a%ff", "/a%C3", "/a%c0%af", "/a%ed%a0%80", "/a\xff",
		// path parameters, trailing dots and spaces (servlet containers and
		// Windows drop them), and what Unicode normalization changes
		"/public/f.txt%3Fx", "/public/f.txt%23x", "/admin;x/", "/a;b/c;jsessionid=1", "/admin./", "/admin%20/", "/a/x.", "/a/x%20",
		"/%EF%BD%81%EF%BD%84%EF%BD%8D%EF%BD%89%EF%BD%8E/", "/a%E2%91%A0", "/a%EF%AC%81",
		// invisible and separator-like characters
		"/ad%E2%80%8Bmin", "/a%EF%BB%BF", "/a%E2%80%AEb", "/a%E2%80%A8b",
		"/public/%EF%BC%8F..%EF%BC%8Fadmin", "/a%EF%BC%8Eb", "/public/%E2%80%A5/admin", "/a%EF%BC%BCb", "/a%E2%88%95b",
		// too long
		"/" + strings.Repeat("a", 9000),
	}
	for _, raw := range refused {
		got, err := CanonicalPath(raw)
		if err == nil {
			t.Errorf("CanonicalPath(%q) = %q, want a refusal", raw, got)
			continue
		}
		if gatehouse.ErrorCode(err) != gatehouse.EFORBIDDEN || !strings.HasPrefix(gatehouse.ErrorMessage(err), refusalPrefix) {
			t.Errorf("CanonicalPath(%q): error %v, want EFORBIDDEN starting %q", raw, err, refusalPrefix)
		}
	}
}

func TestValidWildcard(t *testing.T) {
	for _, tt := range []struct {
		v     string
		multi bool
		want  bool
	}{
		{"team-a", false, true},
		{"Team_A.v2", false, true},
		{".git", false, true},
		{"", false, false},
		{"..", false, false},
		{"a..b", false, false},
		{"a/b", false, false},
		{"a b", false, false},
		{"ü", false, false},
		{"a*", false, false},
		{"a|b", false, false},
		{"a:b", false, false},
		{strings.Repeat("a", 254), false, false},
		{"x/y/z.git", true, true},
		{"x", true, true},
		{"", true, false},
		{"x/", true, false},
		{"x//y", true, false},
		{"team-a/../team-b", true, false},
		{"x/ü", true, false},
	} {
		if got := validWildcard(tt.v, tt.multi); got != tt.want {
			t.Errorf("validWildcard(%q, multi=%v) = %v, want %v", tt.v, tt.multi, got, tt.want)
		}
	}
}

func TestCompileRoutes(t *testing.T) {
	route := func(match, object string) Route {
		return Route{Match: match, Resource: "applications", Action: "get", Object: object}
	}
	tests := map[string]struct {
		routes []Route
		want   []string // "index.field" of each problem
	}{
		"ok/empty table":      {},
		"ok/typical":          {routes: []Route{route("GET /grafana/", "monitoring/grafana"), route("POST /deploy/{project}/{app}", "{project}/{app}"), route("/repos/{project}/{rest...}", "{project}/{rest}")}},
		"ok/method and not":   {routes: []Route{route("GET /a/", "x"), route("/a/", "y")}},
		"ok/exact and tree":   {routes: []Route{route("/a/{$}", "x"), route("/a/", "y")}},
		"ok/literal objects":  {routes: []Route{route("GET /x/{app}", "team-{app}/web")}},
		"fail/duplicate":      {routes: []Route{route("GET /a/", "x"), route("GET /a/", "y")}, want: []string{"1.match"}},
		"fail/equivalent":     {routes: []Route{route("GET /a/{x}", "{x}"), route("GET /a/{y}", "{y}")}, want: []string{"1.match"}},
		"fail/conflict":       {routes: []Route{route("/a/{x}/b", "{x}"), route("/a/c/{y}", "{y}")}, want: []string{"1.match"}},
		"fail/bad wildcard":   {routes: []Route{route("/a/{x", "y")}, want: []string{"0.match"}},
		"fail/bad method":     {routes: []Route{route("G(T /a", "y")}, want: []string{"0.match"}},
		"fail/lower case":     {routes: []Route{route("get /a", "y"), route("Post /b", "y")}, want: []string{"0.match", "1.match"}},
		"fail/host":           {routes: []Route{route("example.com/a", "y")}, want: []string{"0.match"}},
		"fail/empty segment":  {routes: []Route{route("/a//b", "y"), route("CONNECT /c//{x}", "{x}"), route("//", "y")}, want: []string{"0.match", "1.match", "2.match"}},
		"fail/no match":       {routes: []Route{route("", "y")}, want: []string{"0.match"}},
		"fail/unknown ref":    {routes: []Route{route("/a/{x}", "{y}")}, want: []string{"0.object"}},
		"fail/dots on single": {routes: []Route{route("/a/{x}", "{x...}")}, want: []string{"0.object"}},
		"fail/unbalanced":     {routes: []Route{route("/a/{x}", "{x"), route("/b/{x}", "x}")}, want: []string{"0.object", "1.object"}},
		"fail/comma":          {routes: []Route{route("/a/", "x, allow")}, want: []string{"0.object"}},
		"fail/missing":        {routes: []Route{{Match: "/a/"}}, want: []string{"0.resource", "0.action", "0.object"}},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			var got []string
			for _, p := range CheckRoutes(tt.routes) {
				got = append(got, strings.TrimPrefix(p.Error()[:strings.Index(p.Error(), ":")], "routes["))
				if p.Problem == "" {
					t.Errorf("problem %v without a message", p)
				}
			}
			for i := range got {
				got[i] = strings.Replace(got[i], "].", ".", 1)
			}
			if strings.Join(got, " ") != strings.Join(tt.want, " ") {
				t.Fatalf("problems %v, want %v (%v)", got, tt.want, CheckRoutes(tt.routes))
			}
			f, err := (&Service{}).NewForwardAuth(tt.routes)
			if (err == nil) != (len(tt.want) == 0) || (err == nil) != (f != nil) {
				t.Fatalf("NewForwardAuth = %v, %v", f, err)
			}
		})
	}
}

// FuzzForwardAuthURI: the canonicalizer never panics; what it accepts has
// no dot, empty or control-bearing segment; its output is a fixed point.
func FuzzForwardAuthURI(f *testing.F) {
	for _, s := range []string{
		"/", "/grafana/d/abc?orgId=1", "/public/%2e%2e/admin/", "/public/..%2fadmin/", "/public/%2Fadmin",
		"/public/.%2E/admin", "//x", "/a%00", "/%C3%BCber", "/a%ff", "/a;b/..;/c", "/%252e", "/a\\b",
		"/x/%E2%80%A5/y", "/x/y/",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		path, err := CanonicalPath(raw)
		if err != nil {
			if gatehouse.ErrorCode(err) != gatehouse.EFORBIDDEN {
				t.Fatalf("CanonicalPath(%q): %v is not EFORBIDDEN", raw, err)
			}
			return
		}
		if !strings.HasPrefix(path, "/") || !utf8.ValidString(path) {
			t.Fatalf("CanonicalPath(%q) = %q: not a valid UTF-8 path", raw, path)
		}
		segs := strings.Split(path[1:], "/")
		for i, seg := range segs {
			if seg == "" && i != len(segs)-1 {
				t.Fatalf("CanonicalPath(%q) = %q has an empty segment", raw, path)
			}
			if seg == "." || seg == ".." {
				t.Fatalf("CanonicalPath(%q) = %q has a dot segment", raw, path)
			}
		}
		for _, r := range path {
			if unicode.IsControl(r) || r == '\\' || r == '%' {
				t.Fatalf("CanonicalPath(%q) = %q holds %q", raw, path, r)
			}
		}
		// The escaped canonical path canonicalizes to itself, and so does
		// the canonical path when it holds nothing a raw URI reads
		// differently.
		// (Escaping can lengthen a path past the URI limit, which then
		// refuses it; that is the limit, not a change of meaning.)
		esc := (&url.URL{Path: path}).EscapedPath()
		if again, err := CanonicalPath(esc); len(esc) <= maxOriginalURI && (err != nil || again != path) {
			t.Fatalf("CanonicalPath(%q) = %q, but its escaped form %q gives %q, %v", raw, path, esc, again, err)
		}
		if !strings.ContainsAny(path, "?# ") {
			if again, err := CanonicalPath(path); err != nil || again != path {
				t.Fatalf("CanonicalPath(%q) = %q, which canonicalizes to %q, %v", raw, path, again, err)
			}
		}
	})
}
