package server

import (
	"bytes"
	"encoding/base64"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/token"
)

func testToken(t testing.TB) string {
	t.Helper()
	tok, err := token.New("gatehouse", bytes.NewReader(bytes.Repeat([]byte{7}, 64)))
	if err != nil {
		t.Fatal(err)
	}
	return tok.Reveal()
}

func TestParseAuthorization(t *testing.T) {
	tok := testToken(t)
	_, body, _ := strings.Cut(tok, ":")
	b64 := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	cases := map[string]struct {
		header string
		want   string // "" means an error
	}{
		"ok/bearer":            {"Bearer " + tok, tok},
		"ok/bearer lowercase":  {"bearer " + tok, tok},
		"ok/bearer body":       {"Bearer " + body, body},
		"ok/basic whole":       {"Basic " + b64(tok), body},
		"ok/basic user+token":  {"Basic " + b64("x:"+tok), tok},
		"ok/basic user+body":   {"Basic " + b64("x:"+body), body},
		"fail/empty":           {"", ""},
		"fail/scheme only":     {"Bearer", ""},
		"fail/bearer blank":    {"Bearer    ", ""},
		"fail/unknown scheme":  {"Digest " + tok, ""},
		"fail/basic not b64":   {"Basic %%%", ""},
		"fail/basic no colon":  {"Basic " + b64("justuser"), ""},
		"fail/basic empty pw":  {"Basic " + b64("user:"), ""},
		"fail/bearer too long": {"Bearer " + strings.Repeat("a", 600), ""},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			got, err := parseAuthorization(c.header)
			if c.want == "" {
				if err == nil {
					t.Fatalf("got %q, want an error", got)
				}
				if err != errMalformed {
					t.Fatalf("error %v, want the unknown-token error", err)
				}
				return
			}
			if err != nil || got != c.want {
				t.Fatalf("got %q, %v; want %q", got, err, c.want)
			}
		})
	}
}

func FuzzParseAuthorization(f *testing.F) {
	tok := testToken(f)
	for _, s := range []string{
		"Bearer " + tok, "Basic " + base64.StdEncoding.EncodeToString([]byte(tok)),
		"Basic " + base64.StdEncoding.EncodeToString([]byte("u:"+tok)), "Bearer", "Basic ===", "",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, h string) {
		got, err := parseAuthorization(h)
		if err != nil {
			if err != errMalformed {
				t.Fatalf("error %v is not the uniform unknown-token error", err)
			}
			if got != "" {
				t.Fatalf("error with a result %q", got)
			}
			return
		}
		if got == "" {
			t.Fatal("success with an empty credential")
		}
		// The credential always comes from the header, never invented.
		if !strings.Contains(h, got) {
			if raw, derr := base64.StdEncoding.DecodeString(strings.TrimSpace(h[strings.IndexByte(h, ' ')+1:])); derr != nil || !strings.Contains(string(raw), got) {
				t.Fatalf("credential %q not found in header %q", got, h)
			}
		}
	})
}
