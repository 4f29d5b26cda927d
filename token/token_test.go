package token_test

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"hash/crc32"
	"io"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/token"
)

// countingReader yields 0, 1, 2, ... so that minted tokens are predictable.
type countingReader struct{ n byte }

func (r *countingReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = r.n
		r.n++
	}
	return len(p), nil
}

// goldenToken is New("gatehouse", &countingReader{}) computed once, by hand
// (see TestGoldenVector for the byte layout it encodes). If it changes, every
// token ever issued stops parsing.
const goldenToken = "gatehouse:AQABAgMEBUYHiAkKCwwNDg8QERITFBUWFxgZGhscHR4fICEiIyQlJicoKSorLC0uL6xAHk4"

func mustNew(t *testing.T, instance string) token.Token {
	t.Helper()
	tok, err := token.New(instance, rand.Reader)
	if err != nil {
		t.Fatalf("New(%q): %v", instance, err)
	}
	return tok
}

func TestGoldenVector(t *testing.T) {
	tok, err := token.New("gatehouse", &countingReader{})
	if err != nil {
		t.Fatal(err)
	}
	if got := tok.Reveal(); got != goldenToken {
		t.Errorf("Reveal() = %q, want %q", got, goldenToken)
	}
	if got, want := tok.ID.String(), "00010203-0405-4607-8809-0a0b0c0d0e0f"; got != want {
		t.Errorf("ID = %s, want %s", got, want)
	}

	// Build the 53 bytes by hand from the format in doc.go and compare field by field.
	var want [53]byte
	want[0] = 0x01
	for i := range 48 { // id then secret, as read from the reader
		want[1+i] = byte(i)
	}
	want[1+6] = 0x40 | 0x06 // UUID version 4 nibble over byte 6 (0x06)
	want[1+8] = 0x80 | 0x08 // UUID variant bits over byte 8 (0x08)
	binary.BigEndian.PutUint32(want[49:], crc32.ChecksumIEEE(want[:49]))

	body := tok.Body()
	if got, want := len(body), token.BodyLen; got != want {
		t.Fatalf("len(Body()) = %d, want %d", got, want)
	}
	if strings.ContainsAny(body, "=+/") {
		t.Errorf("Body() = %q uses padding or the non-URL alphabet", body)
	}
	got, err := base64.RawURLEncoding.DecodeString(body)
	if err != nil {
		t.Fatalf("decoding body: %v", err)
	}
	fields := []struct {
		name     string
		from, to int
	}{
		{"version", 0, 1},
		{"id", 1, 17},
		{"secret", 17, 49},
		{"crc32 big-endian", 49, 53},
	}
	for _, f := range fields {
		if !bytes.Equal(got[f.from:f.to], want[f.from:f.to]) {
			t.Errorf("%s (bytes %d..%d) = %x, want %x", f.name, f.from, f.to, got[f.from:f.to], want[f.from:f.to])
		}
	}
	if !bytes.Equal(got[1:17], tok.ID[:]) {
		t.Errorf("id bytes = %x, want Token.ID %x", got[1:17], tok.ID[:])
	}
	if !bytes.Equal(got[17:49], tok.Secret[:]) {
		t.Error("secret bytes differ from Token.Secret")
	}
	if got, want := hex.EncodeToString(got[49:]), "ac401e4e"; got != want {
		t.Errorf("crc = %s, want %s", got, want)
	}

	parsed, err := token.Parse(goldenToken)
	if err != nil {
		t.Fatalf("Parse(golden): %v", err)
	}
	if parsed != tok {
		t.Errorf("Parse(golden) = %v, want %v", parsed, tok)
	}
}

func TestRoundTrip(t *testing.T) {
	for _, instance := range []string{"gatehouse", "a", "prod-eu-1", strings.Repeat("x", 63)} {
		for range 20 {
			tok := mustNew(t, instance)
			s := tok.Reveal()
			if got, want := s, instance+":"+tok.Body(); got != want {
				t.Fatalf("Reveal() = %q, want instance:body %q", got, want)
			}
			got, err := token.Parse(s)
			if err != nil {
				t.Fatalf("Parse(Reveal()): %v", err)
			}
			if got != tok {
				t.Fatalf("Parse(Reveal()) = %v, want %v (secret differs or id differs)", got, tok)
			}

			bare, err := token.Parse(tok.Body())
			if err != nil {
				t.Fatalf("Parse(Body()): %v", err)
			}
			if bare.Instance != "" || bare.ID != tok.ID || bare.Secret != tok.Secret {
				t.Fatalf("Parse(Body()) = %v, want instance \"\" and the same id and secret", bare)
			}
			if got, want := bare.Reveal(), tok.Body(); got != want {
				t.Fatalf("bare Reveal() = %q, want the body %q", got, want)
			}
		}
	}
}

func TestNew(t *testing.T) {
	tests := []struct {
		name     string
		instance string
		r        io.Reader
		want     error
	}{
		{"ok", "gatehouse", rand.Reader, nil},
		{"empty instance", "", rand.Reader, token.ErrInstance},
		{"uppercase instance", "Gatehouse", rand.Reader, token.ErrInstance},
		{"short random for id", "gatehouse", bytes.NewReader(make([]byte, 10)), io.ErrUnexpectedEOF},
		{"short random for secret", "gatehouse", bytes.NewReader(make([]byte, 40)), io.ErrUnexpectedEOF},
		{"no random", "gatehouse", bytes.NewReader(nil), io.EOF},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok, err := token.New(tt.instance, tt.r)
			if !errors.Is(err, tt.want) {
				t.Fatalf("New() error = %v, want %v", err, tt.want)
			}
			if err != nil && tok != (token.Token{}) {
				t.Errorf("New() = %v with error, want zero Token", tok)
			}
		})
	}
	a, b := mustNew(t, "gatehouse"), mustNew(t, "gatehouse")
	if a.ID == b.ID || a.Secret == b.Secret {
		t.Error("two tokens from crypto/rand share an id or secret")
	}
}

// validBody returns a body for instance "" built from raw with a correct CRC.
func validBody(version byte) string {
	var raw [53]byte
	raw[0] = version
	for i := 1; i < 49; i++ {
		raw[i] = byte(i * 7)
	}
	binary.BigEndian.PutUint32(raw[49:], crc32.ChecksumIEEE(raw[:49]))
	return base64.RawURLEncoding.EncodeToString(raw[:])
}

func TestParseErrors(t *testing.T) {
	good := goldenToken
	body := strings.TrimPrefix(good, "gatehouse:")
	lastBits := body[:70] + "l" // 'k' = 100100; 'l' = 100101 sets a trailing bit
	tests := []struct {
		name string
		in   string
		want error
	}{
		{"empty", "", token.ErrMalformed},
		{"only separator", ":", token.ErrMalformed},
		{"instance only", "gatehouse:", token.ErrMalformed},
		{"empty instance", ":" + body, token.ErrMalformed},
		{"uppercase instance", "Gatehouse:" + body, token.ErrMalformed},
		{"instance leading hyphen", "-gatehouse:" + body, token.ErrMalformed},
		{"instance too long", strings.Repeat("a", 64) + ":" + body, token.ErrMalformed},
		{"instance with space", "gate house:" + body, token.ErrMalformed},
		{"two separators", "gatehouse:x:" + body, token.ErrMalformed},
		{"separator in body", "gatehouse:" + body[:30] + ":" + body[31:], token.ErrMalformed},
		{"truncated by one", good[:len(good)-1], token.ErrMalformed},
		{"extra character", good + "A", token.ErrMalformed},
		{"padding appended", good + "=", token.ErrMalformed},
		{"padding replaces last", good[:len(good)-1] + "=", token.ErrMalformed},
		{"trailing newline", good + "\n", token.ErrMalformed},
		{"newline inside", "gatehouse:" + body[:35] + "\n" + body[36:], token.ErrMalformed},
		{"space inside", "gatehouse:" + body[:35] + " " + body[36:], token.ErrMalformed},
		{"standard alphabet +", "gatehouse:" + body[:10] + "+" + body[11:], token.ErrMalformed},
		{"standard alphabet /", "gatehouse:" + body[:10] + "/" + body[11:], token.ErrMalformed},
		{"non-canonical trailing bits", lastBits, token.ErrMalformed},
		{"non-ascii", "gatehouse:" + body[:69] + "é", token.ErrMalformed},
		{"checksum", "gatehouse:" + body[:20] + "A" + body[21:], token.ErrChecksum},
		{"version 0", validBody(0), token.ErrVersion},
		{"version 2", validBody(2), token.ErrVersion},
		{"version 0xff with instance", "gatehouse:" + validBody(0xff), token.ErrVersion},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok, err := token.Parse(tt.in)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Parse() error = %v, want %v", err, tt.want)
			}
			if tok != (token.Token{}) {
				t.Errorf("Parse() = %v with error, want zero Token", tok)
			}
			assertNoLeak(t, "error", err.Error(), tt.in)
		})
	}
	if _, err := token.Parse(validBody(token.Version)); err != nil {
		t.Fatalf("Parse(valid version-1 body): %v", err)
	}
}

// assertNoLeak fails if out contains secret or any 12-character piece of it.
func assertNoLeak(t *testing.T, what, out, secret string) {
	t.Helper()
	const piece = 12 // shorter inputs are too short to be secret and match by chance
	for i := 0; i+piece <= len(secret); i++ {
		if strings.Contains(out, secret[i:i+piece]) {
			t.Errorf("%s %q contains part of the input %q", what, out, secret[i:i+piece])
			return
		}
	}
}

// TestEveryCharacterChange swaps each body character for every other
// character of the alphabet: CRC-32 detects every burst of up to 32 bits, and
// the strict decoder catches the last character's unused bits.
func TestEveryCharacterChange(t *testing.T) {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	tok := mustNew(t, "gatehouse")
	s := []byte(tok.Reveal())
	start := len("gatehouse:")
	for i := start; i < len(s); i++ {
		orig := s[i]
		for _, c := range []byte(alphabet) {
			if c == orig {
				continue
			}
			s[i] = c
			if got, err := token.Parse(string(s)); err == nil {
				t.Fatalf("Parse with body[%d] %q -> %q succeeded: %v", i-start, orig, c, got)
			}
		}
		s[i] = orig
	}
}

func TestTruncated(t *testing.T) {
	tok := mustNew(t, "gatehouse")
	s, body := tok.Reveal(), tok.Body()
	for n := range len(s) {
		if _, err := token.Parse(s[:n]); !errors.Is(err, token.ErrMalformed) {
			t.Errorf("Parse(first %d of %d chars) error = %v, want ErrMalformed", n, len(s), err)
		}
	}
	for n := 1; n < len(body); n++ {
		for _, in := range []string{body[n:], "gatehouse:" + body[n:]} {
			if _, err := token.Parse(in); !errors.Is(err, token.ErrMalformed) {
				t.Errorf("Parse(body without its first %d chars) error = %v, want ErrMalformed", n, err)
			}
		}
	}
}

func TestValidInstance(t *testing.T) {
	tests := []struct {
		in   string
		want bool
	}{
		{"gatehouse", true},
		{"a", true},
		{"0", true},
		{"prod-eu-1", true},
		{"a-", true},
		{"9-9", true},
		{strings.Repeat("a", 63), true},
		{"", false},
		{strings.Repeat("a", 64), false},
		{"-a", false},
		{"Gatehouse", false},
		{"gate_house", false},
		{"gate.house", false},
		{"gate house", false},
		{"gate:house", false},
		{"gatehousé", false},
	}
	for _, tt := range tests {
		if got := token.ValidInstance(tt.in); got != tt.want {
			t.Errorf("ValidInstance(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

func TestVerify(t *testing.T) {
	tok := mustNew(t, "gatehouse")
	h := tok.Secret.Hash()
	other := mustNew(t, "gatehouse").Secret.Hash()
	flipped := h
	flipped[31] ^= 1
	tests := []struct {
		name string
		hash []byte
		want bool
	}{
		{"match", h[:], true},
		{"other secret", other[:], false},
		{"one bit off", flipped[:], false},
		{"nil", nil, false},
		{"empty", []byte{}, false},
		{"short prefix", h[:31], false},
		{"long", append(h[:], 0), false},
	}
	for _, tt := range tests {
		if got := token.Verify(tok.Secret, tt.hash); got != tt.want {
			t.Errorf("Verify(%s) = %v, want %v", tt.name, got, tt.want)
		}
	}
	// Hash is plain SHA-256 of the 32 secret bytes: other implementations
	// (a migration, a scanner's revocation hook) must be able to compute it.
	gold, err := token.Parse(goldenToken)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := hex.EncodeToString(sliceOf(gold.Secret.Hash())), "89c7460452eddff119fea0419e785c74de2ffb139dbe74323aca4a01e198a5dc"; got != want {
		t.Errorf("golden Hash() = %s, want %s", got, want)
	}
}

func sliceOf(h [32]byte) []byte { return h[:] }

func TestParseDoesNotAllocate(t *testing.T) {
	s := mustNew(t, "gatehouse").Reveal()
	bad := s[:len(s)-1] + "A"
	for _, in := range []string{s, bad, "garbage"} {
		if n := testing.AllocsPerRun(100, func() { _, _ = token.Parse(in) }); n != 0 {
			t.Errorf("Parse allocates %v times per call, want 0", n)
		}
	}
}
