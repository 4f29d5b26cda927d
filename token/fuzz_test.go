package token_test

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/token"
)

func FuzzParse(f *testing.F) {
	f.Add(goldenToken)
	f.Add(strings.TrimPrefix(goldenToken, "gatehouse:"))
	f.Add("prod-eu-1:" + validBody(token.Version))
	f.Add(validBody(2))
	f.Add(goldenToken + "=")
	f.Add(goldenToken[:len(goldenToken)-1] + "l")
	f.Add("gatehouse:" + strings.Repeat("A", token.BodyLen))
	f.Add("a:b:c")
	f.Add(":")
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		tok, err := token.Parse(s)
		if err != nil {
			if tok != (token.Token{}) {
				t.Fatalf("Parse(%q) returned %v with error %v", s, tok, err)
			}
			if !errors.Is(err, token.ErrMalformed) && !errors.Is(err, token.ErrChecksum) && !errors.Is(err, token.ErrVersion) {
				t.Fatalf("Parse(%q) error %v is none of ErrMalformed, ErrChecksum, ErrVersion", s, err)
			}
			if errors.Is(err, token.ErrChecksum) && strings.Contains(err.Error(), "malformed") {
				t.Fatalf("Parse(%q) error %v is both checksum and malformed", s, err)
			}
			if len(s) >= 12 && strings.Contains(err.Error(), s) {
				t.Fatalf("Parse error %q contains the input", err)
			}
			return
		}

		// The text form is canonical: there is exactly one spelling of a token.
		if got := tok.Reveal(); got != s {
			t.Fatalf("Parse(%q).Reveal() = %q, want the input back", s, got)
		}
		again, err := token.Parse(tok.Reveal())
		if err != nil || again != tok {
			t.Fatalf("Parse(Reveal()) = %v, %v; want %v", again, err, tok)
		}
		if tok.Instance != "" && !token.ValidInstance(tok.Instance) {
			t.Fatalf("Parse(%q) accepted instance %q", s, tok.Instance)
		}

		// Cross-check the body against the standard library: a success must
		// be a strict 53-byte base64url body with version 1 and a good CRC.
		raw, err := base64.RawURLEncoding.Strict().DecodeString(tok.Body())
		if err != nil || len(raw) != 53 {
			t.Fatalf("stdlib decode of accepted body: %d bytes, %v", len(raw), err)
		}
		if raw[0] != token.Version {
			t.Fatalf("accepted version %d", raw[0])
		}
		if got, want := binary.BigEndian.Uint32(raw[49:]), crc32.ChecksumIEEE(raw[:49]); got != want {
			t.Fatalf("accepted a token whose checksum %08x does not match %08x", got, want)
		}
		if !bytes.Equal(raw[1:17], tok.ID[:]) || !bytes.Equal(raw[17:49], tok.Secret[:]) {
			t.Fatal("id or secret not taken from their byte positions")
		}
	})
}

// FuzzRoundTrip builds tokens from arbitrary fields, which FuzzParse rarely
// reaches through random text, and checks that Reveal and Parse are inverses.
func FuzzRoundTrip(f *testing.F) {
	f.Add("gatehouse", bytes.Repeat([]byte{0xab}, 48))
	f.Add("", make([]byte, 48))
	f.Add("x", []byte("0123456789abcdef0123456789abcdef0123456789abcdef"))
	f.Fuzz(func(t *testing.T, instance string, b []byte) {
		if len(b) < 48 || (instance != "" && !token.ValidInstance(instance)) {
			t.Skip()
		}
		var tok token.Token
		tok.Instance = instance
		copy(tok.ID[:], b[:16])
		copy(tok.Secret[:], b[16:48])
		s := tok.Reveal()
		if got, want := len(tok.Body()), token.BodyLen; got != want {
			t.Fatalf("len(Body()) = %d, want %d", got, want)
		}
		got, err := token.Parse(s)
		if err != nil {
			t.Fatalf("Parse(Reveal()) error: %v", err)
		}
		if got != tok {
			t.Fatalf("Parse(Reveal()) = %v, want %v", got, tok)
		}
	})
}
