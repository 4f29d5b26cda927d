package policy

import (
	"fmt"
	"regexp"
	"strings"
)

// Matcher reports whether a string matches a compiled pattern.
type Matcher interface {
	Match(s string) bool
}

type anything struct{}

func (anything) Match(string) bool { return true }

type literal string

func (l literal) Match(s string) bool { return string(l) == s }

type prefix string

func (p prefix) Match(s string) bool { return strings.HasPrefix(s, string(p)) }

type suffix string

func (p suffix) Match(s string) bool { return strings.HasSuffix(s, string(p)) }

type re struct{ *regexp.Regexp }

func (r re) Match(s string) bool { return r.MatchString(s) }

// CompileGlob compiles a glob: `*` matches any run of characters including
// `/`, `?` one character, `[abc]`, `[a-z]` and `[!a]` a character class,
// `{a,b}` alternatives (which may nest and hold globs), and `\x` a literal
// x. The common shapes (literal, `*`, `prefix*`, `*suffix`) match without a
// regular expression.
func CompileGlob(pattern string) (Matcher, error) {
	if pattern == "*" {
		return anything{}, nil
	}
	if !strings.ContainsAny(pattern, `*?[]{}\`) {
		return literal(pattern), nil
	}
	if rest, ok := strings.CutSuffix(pattern, "*"); ok && !strings.ContainsAny(rest, `*?[]{}\`) {
		return prefix(rest), nil
	}
	if rest, ok := strings.CutPrefix(pattern, "*"); ok && !strings.ContainsAny(rest, `*?[]{}\`) {
		return suffix(rest), nil
	}
	expr, err := globToRegexp(pattern)
	if err != nil {
		return nil, err
	}
	r, err := regexp.Compile(`^(?s:` + expr + `)$`)
	if err != nil {
		return nil, fmt.Errorf("invalid glob %q", pattern)
	}
	return re{r}, nil
}

// MatchGlob reports whether s matches the glob pattern; an invalid pattern
// matches nothing.
func MatchGlob(pattern, s string) bool {
	m, err := CompileGlob(pattern)
	return err == nil && m.Match(s)
}

// compileRegex compiles an anchored regular expression: the whole string
// must match, unlike Argo CD's unanchored regex mode.
func compileRegex(pattern string) (Matcher, error) {
	if pattern == ".*" {
		return anything{}, nil
	}
	r, err := regexp.Compile(`^(?:` + pattern + `)$`)
	if err != nil {
		return nil, fmt.Errorf("invalid regex %q: %v", pattern, err)
	}
	return re{r}, nil
}

// globToRegexp translates a glob into a regular expression body.
func globToRegexp(p string) (string, error) {
	var b strings.Builder
	depth := 0
	for i := 0; i < len(p); i++ {
		c := p[i]
		switch c {
		case '*':
			b.WriteString(".*")
		case '?':
			b.WriteString(".")
		case '\\':
			if i+1 >= len(p) {
				return "", fmt.Errorf("invalid glob %q: trailing backslash", p)
			}
			i++
			b.WriteString(regexp.QuoteMeta(p[i : i+1]))
		case '[':
			end := strings.IndexByte(p[i+1:], ']')
			if end < 0 {
				return "", fmt.Errorf("invalid glob %q: unclosed [", p)
			}
			class := p[i+1 : i+1+end]
			if end == 0 || class == "!" {
				return "", fmt.Errorf("invalid glob %q: empty character class", p)
			}
			b.WriteByte('[')
			if class[0] == '!' || class[0] == '^' {
				b.WriteByte('^')
				class = class[1:]
			}
			for j := 0; j < len(class); j++ {
				switch class[j] {
				case '\\', '[', ']', '^':
					b.WriteByte('\\')
				}
				b.WriteByte(class[j])
			}
			b.WriteByte(']')
			i += end + 1
		case ']':
			return "", fmt.Errorf("invalid glob %q: unopened ]", p)
		case '{':
			depth++
			b.WriteString("(?:")
		case '}':
			if depth == 0 {
				return "", fmt.Errorf("invalid glob %q: unopened }", p)
			}
			depth--
			b.WriteString(")")
		case ',':
			if depth > 0 {
				b.WriteString("|")
			} else {
				b.WriteString(",")
			}
		default:
			b.WriteString(regexp.QuoteMeta(p[i : i+1]))
		}
	}
	if depth != 0 {
		return "", fmt.Errorf("invalid glob %q: unclosed {", p)
	}
	return b.String(), nil
}
