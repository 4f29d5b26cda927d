package policy

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestGlob(t *testing.T) {
	tests := []struct {
		pattern string
		yes     []string
		no      []string
	}{
		{"*", []string{"", "a", "a/b/c", "foo/https://x/y.git", "line\nbreak"}, nil},
		{"foo", []string{"foo"}, []string{"", "fo", "foo/", "xfoo", "FOO"}},
		{"foo/*", []string{"foo/", "foo/bar", "foo/https://x/y.git", "foo/a/b/c"}, []string{"foo", "fo/x", "xfoo/bar"}},
		{"*/*", []string{"/", "a/b", "foo/bar/baz", "foo/"}, []string{"", "foo", "foobar"}},
		{"*/obj", []string{"a/obj", "a/b/obj", "/obj"}, []string{"obj", "a/obj/x", "a/objx"}},
		{"*bar", []string{"bar", "foobar", "a/bar"}, []string{"bars", "ba"}},
		{"a*z", []string{"az", "abcz", "a/z"}, []string{"a", "z", "aza", "za"}},
		{"a*a", []string{"aa", "aba"}, []string{"a"}},
		{"*mid*", []string{"mid", "xmidy", "a/mid/b"}, []string{"mi", "m-id"}},
		{"a*b*c", []string{"abc", "aXbYc", "abbc", "a/b/c", "abcbc"}, []string{"ab", "acb", "abcx"}},
		{"*a*b", []string{"ab", "xaxb", "abab"}, []string{"aba", "ba"}},
		{"?", []string{"a", "/", "é"}, []string{"", "ab"}},
		{"a?c", []string{"abc", "a/c", "aéc"}, []string{"ac", "abbc"}},
		{"??", []string{"ab", "éé"}, []string{"a", "abc"}},
		{"[abc]", []string{"a", "b", "c"}, []string{"d", "", "ab"}},
		{"[a-c]x", []string{"ax", "bx", "cx"}, []string{"dx", "x"}},
		{"[!a]", []string{"b", "/", "é"}, []string{"a", "", "bb"}},
		{"[!a-c]*", []string{"d", "dxx", "/"}, []string{"a", "cx", ""}},
		{"[a-cx-z]", []string{"a", "y"}, []string{"d", "w"}},
		{`[\]]`, []string{"]"}, []string{"\\"}},
		{"[a-]", []string{"a", "-"}, []string{"b"}},
		{"[é-ë]", []string{"é", "ê"}, []string{"e"}},
		{"{a,b}", []string{"a", "b"}, []string{"", "ab", "c"}},
		{"{get,sync}", []string{"get", "sync"}, []string{"update"}},
		{"shop/{web,api}-*", []string{"shop/web-1", "shop/api-x/y"}, []string{"shop/db-1", "shop/web"}},
		{"{a,b/*}", []string{"a", "b/", "b/x/y"}, []string{"b", "a/x"}},
		{"{a,{b,c}d}", []string{"a", "bd", "cd"}, []string{"b", "d"}},
		{"x{,y}", []string{"x", "xy"}, []string{"y", "xyy"}},
		{"{*,a}", []string{"", "anything"}, nil},
		{`\*`, []string{"*"}, []string{"a", `\*`}},
		{`a\?b`, []string{"a?b"}, []string{"axb"}},
		{`\{a,b\}`, []string{"{a,b}"}, []string{"a"}},
		{"a,b", []string{"a,b"}, []string{"a", "b"}},
		{"a}b", []string{"a}b"}, nil},
		{"a]b", []string{"a]b"}, nil},
		{"**", []string{"", "a/b"}, nil},
		{"", []string{""}, []string{"a"}},
		{"ünï*", []string{"ünïcode"}, []string{"unicode"}},
	}
	for _, tt := range tests {
		m, err := CompileGlob(tt.pattern)
		if err != nil {
			t.Errorf("CompileGlob(%q): %v", tt.pattern, err)
			continue
		}
		for _, s := range tt.yes {
			if !m.Match(s) || !MatchGlob(tt.pattern, s) {
				t.Errorf("%q does not match %q, want a match", tt.pattern, s)
			}
		}
		for _, s := range tt.no {
			if m.Match(s) || MatchGlob(tt.pattern, s) {
				t.Errorf("%q matches %q, want no match", tt.pattern, s)
			}
		}
	}
}

func TestGlobInvalid(t *testing.T) {
	tests := []struct{ pattern, want string }{
		{"[abc", "unclosed ["},
		{"[]", "empty character class"},
		{"[!]", "empty character class"},
		{"[z-a]", "bad range"},
		{"{a,b", "unclosed {"},
		{"a{b{c}", "unclosed {"},
		{`abc\`, "trailing backslash"},
		{strings.Repeat("{", maxBraceDepth+1) + "a" + strings.Repeat("}", maxBraceDepth+1), "braces nest too deep"},
		{strings.Repeat("{a,b,c}", 6), "more than 256 alternatives"},
	}
	for _, tt := range tests {
		m, err := CompileGlob(tt.pattern)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("CompileGlob(%q) error = %v, want one containing %q", tt.pattern, err, tt.want)
		}
		if m != nil {
			t.Errorf("CompileGlob(%q) returned a matcher %v with its error", tt.pattern, m)
		}
		if MatchGlob(tt.pattern, tt.pattern) || MatchGlob(tt.pattern, "") {
			t.Errorf("MatchGlob(%q, ...) = true, want an invalid pattern to match nothing", tt.pattern)
		}
	}
}

func TestRegexPatterns(t *testing.T) {
	tests := []struct {
		pattern string
		yes, no []string
	}{
		{".*", []string{"", "a/b"}, []string{"a\nb"}},
		{"(?s).*", []string{"a\nb"}, nil},
		{"app", []string{"app"}, []string{"myapp", "apps", "application"}},
		{"shop/.*", []string{"shop/", "shop/web"}, []string{"shop", "myshop/web"}},
		{"shop/*", []string{"shop", "shop//"}, []string{"shop/web"}},
		{"(get|sync)", []string{"get", "sync"}, []string{"getx", "update"}},
		{"a|b", []string{"a", "b"}, []string{"ab"}},
		{`a\.b`, []string{"a.b"}, []string{"axb"}},
	}
	for _, tt := range tests {
		p, err := compileRegex(tt.pattern)
		if err != nil {
			t.Fatalf("compileRegex(%q): %v", tt.pattern, err)
		}
		for _, s := range tt.yes {
			if !p.Match(s) {
				t.Errorf("regex %q does not match %q, want a match", tt.pattern, s)
			}
		}
		for _, s := range tt.no {
			if p.Match(s) {
				t.Errorf("regex %q matches %q, want no match (anchored)", tt.pattern, s)
			}
		}
	}
	if _, err := compileRegex("a("); err == nil {
		t.Error(`compileRegex("a(") succeeded, want an error`)
	}
	// A pattern that closes the anchoring group would match past it once
	// wrapped: "^(?:shop/web)|(x)$" matches every string that starts with
	// shop/web, and "^(?:x)|(?s:shop/.*)$" every one that ends in shop/....
	for _, src := range []string{`shop/web)|(x`, `x)|(?s:shop/.*`, `a)(?m)(b`} {
		if p, err := compileRegex(src); err == nil {
			t.Errorf("compileRegex(%q) succeeded (matches shop/web-admin: %v), want an error: it is no regex on its own", src, p.Match("shop/web-admin"))
		}
	}
}

// TestGlobAgainstRegexp compares the glob matcher with an independent
// translation of each pattern into a regular expression, over many random
// patterns and strings from a small alphabet.
func TestGlobAgainstRegexp(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 11))
	cases := 0
	for range 3000 {
		pat := randomGlob(r)
		m, err := CompileGlob(pat)
		if err != nil {
			t.Fatalf("CompileGlob(%q): %v", pat, err)
		}
		re, err := globRegexp(pat)
		if err != nil {
			t.Fatalf("globRegexp(%q): %v", pat, err)
		}
		for range 20 {
			s := randomValue(r, 6)
			cases++
			if got, want := m.Match(s), re.MatchString(s); got != want {
				t.Errorf("glob %q on %q = %v, regexp %s says %v", pat, s, got, re, want)
			}
		}
	}
	t.Logf("%d cases", cases)
}

// randomGlob builds a valid glob from pieces chosen so that matches are
// frequent.
func randomGlob(r *rand.Rand) string {
	pieces := []string{"a", "b", "/", "*", "*", "?", "[ab]", "[!a]", "[a-b]", "{a,b/*}", "{,a}", "ab", `\*`}
	n := 1 + r.IntN(4)
	var b strings.Builder
	for range n {
		b.WriteString(pieces[r.IntN(len(pieces))])
	}
	return b.String()
}

// randomValue is a string of up to max characters from a small alphabet.
func randomValue(r *rand.Rand, max int) string {
	const alphabet = "ab/*"
	n := r.IntN(max + 1)
	b := make([]byte, n)
	for i := range b {
		b[i] = alphabet[r.IntN(len(alphabet))]
	}
	return string(b)
}

// globRegexp translates a glob into an anchored regular expression. It is
// the reference the matcher is checked against, so it shares no code with
// it.
func globRegexp(p string) (*regexp.Regexp, error) {
	var b strings.Builder
	b.WriteString(`^(?s:`)
	depth := 0
	for i := 0; i < len(p); {
		c := p[i]
		switch {
		case c == '*':
			b.WriteString(".*")
			i++
		case c == '?':
			b.WriteString(".")
			i++
		case c == '\\':
			if i+1 >= len(p) {
				return nil, errors.New("trailing backslash")
			}
			_, w := utf8.DecodeRuneInString(p[i+1:])
			b.WriteString(regexp.QuoteMeta(p[i+1 : i+1+w]))
			i += 1 + w
		case c == '[':
			i++
			b.WriteString("[")
			if i < len(p) && p[i] == '!' {
				b.WriteString("^")
				i++
			}
			n := 0
			for {
				if i >= len(p) {
					return nil, errors.New("unclosed [")
				}
				if p[i] == ']' {
					i++
					break
				}
				if p[i] == '\\' {
					i++
					if i >= len(p) {
						return nil, errors.New("trailing backslash")
					}
				}
				rn, w := utf8.DecodeRuneInString(p[i:])
				i += w
				fmt.Fprintf(&b, `\x{%x}`, rn)
				if i+1 < len(p) && p[i] == '-' && p[i+1] != ']' {
					i++
					if p[i] == '\\' {
						i++
						if i >= len(p) {
							return nil, errors.New("trailing backslash")
						}
					}
					hi, w := utf8.DecodeRuneInString(p[i:])
					i += w
					fmt.Fprintf(&b, `-\x{%x}`, hi)
				}
				n++
			}
			if n == 0 {
				return nil, errors.New("empty class")
			}
			b.WriteString("]")
		case c == '{':
			depth++
			b.WriteString("(?:")
			i++
		case c == ',' && depth > 0:
			b.WriteString("|")
			i++
		case c == '}' && depth > 0:
			depth--
			b.WriteString(")")
			i++
		default:
			b.WriteString(regexp.QuoteMeta(p[i : i+1]))
			i++
		}
	}
	if depth > 0 {
		return nil, errors.New("unclosed {")
	}
	b.WriteString(")$")
	return regexp.Compile(b.String())
}
