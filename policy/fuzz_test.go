package policy

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

func FuzzParseCSV(f *testing.F) {
	f.Add("p, role:dev, applications, get, shop/*, allow\ng, alice, role:dev\n")
	f.Add("# comment\n\n  p, \"a,b\", r, a, \"o\"\"q\"  \r\ng, x\n")
	f.Add("p, a, b, c\nq, a, b\np, a, b, c, d, maybe\np, , b, c, d\n")
	f.Add("p, a, [b, {c, \"d\ng, \"x\"y, z\n")
	f.Fuzz(func(t *testing.T, csv string) {
		src := strings.Split(csv, "\n")
		lines, err := ParseCSV(csv)
		if err != nil {
			var list ErrorList
			if !errors.As(err, &list) || len(list) == 0 {
				t.Fatalf("error %v (%T) is not an ErrorList", err, err)
			}
			msgs := strings.Split(err.Error(), "\n")
			if len(msgs) != len(list) {
				t.Fatalf("Error() has %d lines for %d bad lines", len(msgs), len(list))
			}
			prev := 0
			for i, le := range list {
				if le.Line <= prev || le.Line > len(src) {
					t.Fatalf("bad line number %d (previous %d, %d lines)", le.Line, prev, len(src))
				}
				prev = le.Line
				if want := fmt.Sprintf("line %d: ", le.Line); !strings.HasPrefix(msgs[i], want) || len(msgs[i]) == len(want) {
					t.Fatalf("error %q does not name its line as %q", msgs[i], want)
				}
				if le.Text != strings.TrimSpace(src[le.Line-1]) {
					t.Fatalf("error text %q is not line %d %q", le.Text, le.Line, src[le.Line-1])
				}
			}
			return
		}
		for _, l := range lines {
			if l.Num < 1 || l.Num > len(src) || l.Raw != strings.TrimSpace(src[l.Num-1]) {
				t.Fatalf("line %+v does not point at its source", l)
			}
			back, err := ParseLine(l.String())
			if err != nil || !sameFields(back, l) {
				t.Fatalf("ParseLine(%q) = %+v, %v; want the fields of %+v", l.String(), back, err, l)
			}
		}
		// Compiling may still refuse a pattern; it must name the line.
		if _, err := New(Config{CSV: csv}); err != nil {
			var list ErrorList
			if !errors.As(err, &list) {
				t.Fatalf("New error %v is not an ErrorList", err)
			}
			for _, le := range list {
				if le.Line < 1 || !strings.HasPrefix(le.Error(), fmt.Sprintf("line %d: ", le.Line)) {
					t.Fatalf("New error %q does not name its line", le.Error())
				}
			}
		}
	})
}

func FuzzGlob(f *testing.F) {
	f.Add("foo/*", "foo/https://x/y.git")
	f.Add("*/obj", "a/b/obj")
	f.Add("[!a-c]?{x,y*}", "dzyy")
	f.Add(`\*{a,{b,c}d}`, "*cd")
	f.Add("[", "[")
	f.Add("a,b}", "a,b}")
	f.Fuzz(func(t *testing.T, pattern, s string) {
		m, err := CompileGlob(pattern)
		// MatchGlob is CompileGlob and Match in one call; an invalid
		// pattern matches nothing.
		if got, want := MatchGlob(pattern, s), err == nil && m.Match(s); got != want {
			t.Fatalf("MatchGlob(%q, %q) = %v, CompileGlob says %v (error %v)", pattern, s, got, want, err)
		}
		if err == nil {
			got := m.Match(s)
			if re, rerr := globRegexp(pattern); rerr == nil {
				if want := re.MatchString(s); got != want {
					t.Fatalf("glob %q on %q = %v, regexp %s says %v", pattern, s, got, re, want)
				}
			}
		}
		if !strings.ContainsAny(pattern, `*?[{\`) {
			if err != nil {
				t.Fatalf("literal pattern %q does not compile: %v", pattern, err)
			}
			if !m.Match(pattern) {
				t.Fatalf("literal pattern %q does not match itself", pattern)
			}
		}
		esc := escapeGlob(s)
		if !MatchGlob(esc, s) {
			t.Fatalf("escaped %q does not match %q", esc, s)
		}
		if MatchGlob(esc, s+"x") {
			t.Fatalf("escaped %q matches %q", esc, s+"x")
		}
	})
}

// escapeGlob quotes every glob metacharacter of s.
func escapeGlob(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if strings.IndexByte(`*?[]{},\`, s[i]) >= 0 {
			b.WriteByte('\\')
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
