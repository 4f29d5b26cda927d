package policy

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"unicode/utf8"
)

// Matcher reports whether a string matches a compiled pattern.
type Matcher interface {
	Match(s string) bool
}

// CompileGlob compiles a glob pattern, with the semantics Argo CD gets from
// gobwas/glob without separators:
//
//	pattern  matches
//	a*       "a" then any run of characters, '/' included (a* matches a/b/c)
//	a?       "a" then one character
//	[abc]    one of a, b, c; [a-z] one in a range; [!a] anything but a
//	{a,b*}   one of the alternatives, which may hold patterns and nest
//	\x       a literal x
//
// Outside braces ',' and '}' are literal, as is ']' outside a class.
// Patterns are compiled once: the common shapes (literal, *, prefix*,
// *suffix, prefix*suffix, *infix*) match with one string comparison.
func CompileGlob(pattern string) (Matcher, error) {
	p, err := compileGlob(pattern)
	if err != nil {
		return nil, err
	}
	return p, nil
}

// MatchGlob reports whether s matches the glob pattern. An invalid pattern
// matches nothing. It compiles the pattern on every call (the package holds
// no shared cache); use CompileGlob for a pattern that is used repeatedly.
func MatchGlob(pattern, s string) bool {
	p, err := compileGlob(pattern)
	return err == nil && p.Match(s)
}

// Limits that keep a hostile pattern from costing much at compile time.
const (
	maxAlternatives = 256 // expanded {…} alternatives per pattern
	maxBraceDepth   = 16
)

type matchKind uint8

const (
	matchAny          matchKind = iota // *
	matchExact                         // lit
	matchPrefix                        // lit*
	matchSuffix                        // *lit
	matchPrefixSuffix                  // lit*lit2
	matchContains                      // *lit*
	matchLine                          // regex .*: any string without a newline
	matchTokens                        // anything else without alternatives
	matchAlternatives                  // {…}: any of alts
	matchRegexp                        // regex match mode
)

// pattern is a compiled glob or regular expression. It is immutable.
type pattern struct {
	kind matchKind
	lit  string
	lit2 string
	toks []token
	alts []*pattern
	re   *regexp.Regexp
}

// Match reports whether the whole of s matches.
// universal reports whether the pattern matches every object: glob *,
// regex .* ('.' matches no newline, and an object holds none that a
// question about every object would name) or (?s).*.
func (p *pattern) universal() bool {
	return p.kind == matchAny || p.kind == matchLine
}

func (p *pattern) Match(s string) bool {
	switch p.kind {
	case matchAny:
		return true
	case matchExact:
		return s == p.lit
	case matchPrefix:
		return strings.HasPrefix(s, p.lit)
	case matchSuffix:
		return strings.HasSuffix(s, p.lit)
	case matchPrefixSuffix:
		return len(s) >= len(p.lit)+len(p.lit2) && strings.HasPrefix(s, p.lit) && strings.HasSuffix(s, p.lit2)
	case matchContains:
		return strings.Contains(s, p.lit)
	case matchLine:
		return strings.IndexByte(s, '\n') < 0
	case matchTokens:
		return matchToks(p.toks, s)
	case matchAlternatives:
		for _, a := range p.alts {
			if a.Match(s) {
				return true
			}
		}
		return false
	case matchRegexp:
		return p.re.MatchString(s)
	}
	return false
}

type tokKind uint8

const (
	tokLit   tokKind = iota // a literal run of bytes
	tokOne                  // ?: one character
	tokClass                // [...]: one character of a class
	tokStar                 // *: any run
)

type token struct {
	kind  tokKind
	lit   string
	class *charClass
}

type charClass struct {
	negate bool
	ranges []runeRange // a single character is lo == hi
}

type runeRange struct{ lo, hi rune }

func (c *charClass) has(r rune) bool {
	in := false
	for _, rg := range c.ranges {
		if rg.lo <= r && r <= rg.hi {
			in = true
			break
		}
	}
	return in != c.negate
}

// matchToks matches a star-separated token list against s, backtracking to
// the last star only. Every token between stars matches in exactly one way
// at a given position, so this is exact and takes O(len(toks)·len(s)).
func matchToks(toks []token, s string) bool {
	ti, si := 0, 0
	starTi, starSi := -1, 0
	for ti < len(toks) || si < len(s) {
		if ti < len(toks) {
			t := &toks[ti]
			if t.kind == tokStar {
				starTi, starSi = ti, si
				ti++
				continue
			}
			if n, ok := t.matchAt(s, si); ok {
				ti++
				si += n
				continue
			}
		}
		if starTi < 0 || starSi >= len(s) {
			return false
		}
		// Let the last star take one more character and retry after it.
		_, w := utf8.DecodeRuneInString(s[starSi:])
		starSi += w
		ti, si = starTi+1, starSi
	}
	return true
}

// matchAt reports whether a non-star token matches s at i, and how many
// bytes it takes.
func (t *token) matchAt(s string, i int) (int, bool) {
	switch t.kind {
	case tokLit:
		return len(t.lit), strings.HasPrefix(s[i:], t.lit)
	case tokOne:
		if i >= len(s) {
			return 0, false
		}
		_, w := utf8.DecodeRuneInString(s[i:])
		return w, true
	case tokClass:
		if i >= len(s) {
			return 0, false
		}
		r, w := utf8.DecodeRuneInString(s[i:])
		return w, t.class.has(r)
	}
	return 0, false
}

// compileGlob parses a glob, expands its alternatives and picks the
// cheapest matcher for each expansion.
func compileGlob(src string) (*pattern, error) {
	gp := globParser{src: src}
	seq, err := gp.parseSeq(0)
	if err != nil {
		return nil, fmt.Errorf("invalid glob %q: %w", clip(src), err)
	}
	exps, err := expand(seq)
	if err != nil {
		return nil, fmt.Errorf("invalid glob %q: %w", clip(src), err)
	}
	if len(exps) == 1 {
		return fromToks(exps[0]), nil
	}
	p := &pattern{kind: matchAlternatives}
	seen := map[string]bool{}
	for _, toks := range exps {
		k := toksKey(toks)
		if seen[k] {
			continue
		}
		seen[k] = true
		a := fromToks(toks)
		if a.kind == matchAny {
			return a, nil
		}
		p.alts = append(p.alts, a)
	}
	if len(p.alts) == 1 {
		return p.alts[0], nil
	}
	return p, nil
}

// elem is a parsed piece of a glob: a token or a set of alternatives.
type elem struct {
	tok  token
	alts [][]elem // non-nil for {…}
}

type globParser struct {
	src string
	pos int
}

// parseSeq parses up to the end of the pattern or, inside braces (depth >
// 0), up to an unescaped ',' or '}' which it leaves for the caller.
func (p *globParser) parseSeq(depth int) ([]elem, error) {
	var seq []elem
	var lit strings.Builder
	flush := func() {
		if lit.Len() > 0 {
			seq = append(seq, elem{tok: token{kind: tokLit, lit: lit.String()}})
			lit.Reset()
		}
	}
	for p.pos < len(p.src) {
		c := p.src[p.pos]
		switch {
		case c == '*':
			flush()
			seq = append(seq, elem{tok: token{kind: tokStar}})
			p.pos++
		case c == '?':
			flush()
			seq = append(seq, elem{tok: token{kind: tokOne}})
			p.pos++
		case c == '[':
			flush()
			cl, err := p.parseClass()
			if err != nil {
				return nil, err
			}
			seq = append(seq, elem{tok: token{kind: tokClass, class: cl}})
		case c == '{':
			flush()
			alts, err := p.parseAlts(depth + 1)
			if err != nil {
				return nil, err
			}
			seq = append(seq, elem{alts: alts})
		case c == '\\':
			_, raw, err := p.escaped()
			if err != nil {
				return nil, err
			}
			lit.WriteString(raw)
		case depth > 0 && (c == ',' || c == '}'):
			flush()
			return seq, nil
		default:
			lit.WriteByte(c)
			p.pos++
		}
	}
	flush()
	return seq, nil
}

// escaped consumes "\x" and returns x, as a rune and as written.
func (p *globParser) escaped() (rune, string, error) {
	p.pos++ // the backslash
	if p.pos >= len(p.src) {
		return 0, "", errors.New("trailing backslash")
	}
	r, w := utf8.DecodeRuneInString(p.src[p.pos:])
	p.pos += w
	return r, p.src[p.pos-w : p.pos], nil
}

func (p *globParser) parseAlts(depth int) ([][]elem, error) {
	if depth > maxBraceDepth {
		return nil, errors.New("braces nest too deep")
	}
	p.pos++ // {
	var alts [][]elem
	for {
		seq, err := p.parseSeq(depth)
		if err != nil {
			return nil, err
		}
		if alts == nil {
			alts = [][]elem{}
		}
		alts = append(alts, seq)
		if p.pos >= len(p.src) {
			return nil, errors.New("unclosed {")
		}
		c := p.src[p.pos]
		p.pos++
		if c == '}' {
			return alts, nil
		}
	}
}

func (p *globParser) parseClass() (*charClass, error) {
	p.pos++ // [
	cl := &charClass{}
	if p.pos < len(p.src) && p.src[p.pos] == '!' {
		cl.negate = true
		p.pos++
	}
	next := func() (rune, error) {
		if p.src[p.pos] == '\\' {
			r, _, err := p.escaped()
			return r, err
		}
		r, w := utf8.DecodeRuneInString(p.src[p.pos:])
		p.pos += w
		return r, nil
	}
	for {
		if p.pos >= len(p.src) {
			return nil, errors.New("unclosed [")
		}
		if p.src[p.pos] == ']' {
			p.pos++
			if len(cl.ranges) == 0 {
				return nil, errors.New("empty character class")
			}
			return cl, nil
		}
		lo, err := next()
		if err != nil {
			return nil, err
		}
		hi := lo
		if p.pos+1 < len(p.src) && p.src[p.pos] == '-' && p.src[p.pos+1] != ']' {
			p.pos++
			if hi, err = next(); err != nil {
				return nil, err
			}
			if hi < lo {
				return nil, fmt.Errorf("bad range %q-%q in character class", lo, hi)
			}
		}
		cl.ranges = append(cl.ranges, runeRange{lo, hi})
	}
}

// expand turns a parsed glob into its alternative-free token lists.
func expand(seq []elem) ([][]token, error) {
	out := [][]token{nil}
	for _, e := range seq {
		if e.alts == nil {
			for i := range out {
				out[i] = append(out[i], e.tok)
			}
			continue
		}
		var opts [][]token
		for _, a := range e.alts {
			x, err := expand(a)
			if err != nil {
				return nil, err
			}
			opts = append(opts, x...)
			if len(opts) > maxAlternatives {
				return nil, fmt.Errorf("more than %d alternatives", maxAlternatives)
			}
		}
		if len(out)*len(opts) > maxAlternatives {
			return nil, fmt.Errorf("more than %d alternatives", maxAlternatives)
		}
		next := make([][]token, 0, len(out)*len(opts))
		for _, pre := range out {
			for _, o := range opts {
				t := make([]token, 0, len(pre)+len(o))
				next = append(next, append(append(t, pre...), o...))
			}
		}
		out = next
	}
	return out, nil
}

// fromToks normalizes a token list (adjacent literals joined, runs of stars
// folded) and picks the cheapest matcher for its shape.
func fromToks(in []token) *pattern {
	var toks []token
	for _, t := range in {
		n := len(toks)
		switch {
		case t.kind == tokLit && t.lit == "":
			continue
		case t.kind == tokStar && n > 0 && toks[n-1].kind == tokStar:
			continue
		case t.kind == tokLit && n > 0 && toks[n-1].kind == tokLit:
			toks[n-1].lit += t.lit
			continue
		}
		toks = append(toks, t)
	}
	kinds := make([]tokKind, len(toks))
	for i, t := range toks {
		kinds[i] = t.kind
	}
	const L, S = tokLit, tokStar
	switch {
	case len(toks) == 0:
		return &pattern{kind: matchExact}
	case eqKinds(kinds, S):
		return &pattern{kind: matchAny}
	case eqKinds(kinds, L):
		return &pattern{kind: matchExact, lit: toks[0].lit}
	case eqKinds(kinds, L, S):
		return &pattern{kind: matchPrefix, lit: toks[0].lit}
	case eqKinds(kinds, S, L):
		return &pattern{kind: matchSuffix, lit: toks[1].lit}
	case eqKinds(kinds, L, S, L):
		return &pattern{kind: matchPrefixSuffix, lit: toks[0].lit, lit2: toks[2].lit}
	case eqKinds(kinds, S, L, S):
		return &pattern{kind: matchContains, lit: toks[1].lit}
	}
	return &pattern{kind: matchTokens, toks: toks}
}

func eqKinds(got []tokKind, want ...tokKind) bool {
	if len(got) != len(want) {
		return false
	}
	for i := range got {
		if got[i] != want[i] {
			return false
		}
	}
	return true
}

// toksKey identifies a token list, to drop duplicate alternatives.
func toksKey(toks []token) string {
	var b strings.Builder
	for _, t := range toks {
		switch t.kind {
		case tokLit:
			fmt.Fprintf(&b, "L%d:%s", len(t.lit), t.lit)
		case tokOne:
			b.WriteString("?")
		case tokStar:
			b.WriteString("*")
		case tokClass:
			fmt.Fprintf(&b, "[%p]", t.class)
		}
	}
	return b.String()
}

// compileRegex compiles a regex-mode pattern. It is anchored: the whole
// string must match (Argo CD's regex mode is not, so "app" would match
// "myapplication" there).
func compileRegex(src string) (*pattern, error) {
	// The pattern must be a regex on its own before it is anchored: one
	// that closes the group around it ("shop/web)|(x") compiles once
	// wrapped, into "^(?:shop/web)|(x)$", which matches everything that
	// starts with shop/web.
	unanchored, err := regexp.Compile(src)
	if err != nil {
		return nil, fmt.Errorf("invalid regex %q: %w", clip(src), err)
	}
	re, err := regexp.Compile(`^(?:` + src + `)$`)
	if err != nil {
		return nil, fmt.Errorf("invalid regex %q: %w", clip(src), err)
	}
	// The common shapes need no regexp at match time: ".*" ('.' does not
	// match a newline without the s flag) and a plain literal.
	switch src {
	case ".*":
		return &pattern{kind: matchLine}, nil
	case "(?s).*":
		return &pattern{kind: matchAny}, nil
	}
	if lit, complete := unanchored.LiteralPrefix(); complete {
		return &pattern{kind: matchExact, lit: lit}, nil
	}
	return &pattern{kind: matchRegexp, re: re}, nil
}
