package service

import (
	"encoding/json"
	"regexp"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/go-jose/go-jose/v4"

	"github.com/gatehouse/gatehouse"
)

// FuzzParseSubjectToken: the subject-token parser never panics, refuses
// what is over the size limit, and what it accepts is a compact JWS of an
// allowed algorithm whose payload is a JSON object with an iss.
func FuzzParseSubjectToken(f *testing.F) {
	for _, seed := range []string{
		"",
		"a.b.c",
		"eyJhbGciOiJub25lIn0.eyJpc3MiOiJ4In0.",
		"eyJhbGciOiJIUzI1NiJ9.eyJpc3MiOiJ4In0.c2ln",
		"eyJhbGciOiJSUzI1NiIsImtpZCI6ImsxIn0.eyJpc3MiOiJodHRwczovL3giLCJhdWQiOlsiYSJdLCJleHAiOjF9.c2ln",
		"eyJhbGciOiJFZERTQSJ9.W10.c2ln",
		"eyJhbGciOiJFUzI1NiJ9.eyJpc3MiOjF9.c2ln",
		"eyJhbGciOiJQUzI1NiJ9.eyJpc3MiOiJ4In0.c2ln.extra",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		st, err := parseSubjectToken(raw)
		if err != nil {
			if st != nil {
				t.Fatal("a refused token came with a parse")
			}
			return
		}
		if len(raw) > MaxSubjectToken {
			t.Fatalf("accepted %d bytes, over the limit", len(raw))
		}
		if !slices.ContainsFunc(exchangeAlgs, func(a jose.SignatureAlgorithm) bool { return string(a) == st.alg }) {
			t.Fatalf("accepted algorithm %q", st.alg)
		}
		if st.iss == "" || st.claims == nil || st.claims["iss"] != st.iss {
			t.Fatalf("accepted without an iss: %+v", st.claims)
		}
		if strings.Count(raw, ".") != 2 {
			t.Fatalf("accepted a token that is not compact JWS: %q", raw)
		}
	})
}

// FuzzGlobMatch: the claim pattern matcher agrees with the regular
// expression the pattern means (* is .*, all else literal), on any text.
func FuzzGlobMatch(f *testing.F) {
	for _, seed := range [][2]string{
		{"refs/heads/main", "refs/heads/main"},
		{"prod*", "production"},
		{"repo:org/*:ref:refs/heads/main", "repo:org/shop:ref:refs/heads/main"},
		{"*a*a*", "aa"},
		{"**", ""},
		{"a*b*c", "abcabc"},
		{"x*", "\xff"},
	} {
		f.Add(seed[0], seed[1])
	}
	f.Fuzz(func(t *testing.T, pattern, s string) {
		if len(pattern) > 64 || len(s) > 256 {
			return // the regexp reference is slow on long inputs
		}
		// The regexp reference reads UTF-8; claims are JSON text, UTF-8.
		if !utf8.ValidString(pattern) || !utf8.ValidString(s) {
			return
		}
		parts := strings.Split(pattern, "*")
		for i, p := range parts {
			parts[i] = regexp.QuoteMeta(p)
		}
		re := regexp.MustCompile(`^(?s:` + strings.Join(parts, ".*") + `)$`)
		if got, want := globMatch(pattern, s), re.MatchString(s); got != want {
			t.Fatalf("globMatch(%q, %q) = %v, the regexp says %v", pattern, s, got, want)
		}
	})
}

// FuzzMatchClaims: the claim matcher never panics on any JSON claims;
// a condition is met only by a claim that is present, scalar or a list
// of scalars, and one of whose texts matches a pattern.
func FuzzMatchClaims(f *testing.F) {
	f.Add(`{"repository_id":"123456","ref":"refs/heads/main"}`, "repository_id", "123456")
	f.Add(`{"repository_id":123456}`, "repository_id", "123456")
	f.Add(`{"project_id":20.0}`, "project_id", "20")
	f.Add(`{"groups":["a","b"]}`, "groups", "b")
	f.Add(`{"groups":[{"a":1}]}`, "groups", "*a*")
	f.Add(`{"x":null}`, "x", "null")
	f.Add(`{"x":true}`, "x", "true")
	f.Add(`{"x":1e400}`, "x", "1e400")
	f.Fuzz(func(t *testing.T, payload, name, pattern string) {
		claims, err := decodeClaims([]byte(payload))
		if err != nil {
			return
		}
		err = matchClaims(map[string]gatehouse.ClaimPatterns{name: {pattern}}, claims)
		v, present := claims[name]
		texts, scalar := claimTexts(v)
		want := present && v != nil && scalar && slices.ContainsFunc(texts, func(s string) bool { return globMatch(pattern, s) })
		if (err == nil) != want {
			t.Fatalf("matchClaims(%s, %q: %q) = %v, want match %v", payload, name, pattern, err, want)
		}
		if err == nil {
			if _, isObj := v.(map[string]any); isObj {
				t.Fatal("an object matched")
			}
		}
	})
}

// TestIdentityRecordsListClaims: a claim that is a list matched when any
// element did, so the audit record keeps the whole list, not nothing.
func TestIdentityRecordsListClaims(t *testing.T) {
	got := identity("https://ci.example", map[string]any{
		"sub": []any{"repo:evil/x", "repo:acme/x"}, "repository_id": json.Number("123456"), "ref": map[string]any{"x": 1},
	})
	want := `iss "https://ci.example"; sub "repo:evil/x", "repo:acme/x"; repository_id "123456"`
	if got != want {
		t.Errorf("identity = %s\nwant       %s", got, want)
	}
}
