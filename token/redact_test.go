package token_test

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/token"
)

// secretForms returns every text form in which the secret could leak.
func secretForms(tok token.Token) []string {
	s := tok.Secret[:]
	return []string{
		tok.Body(),
		tok.Reveal(),
		hex.EncodeToString(s),
		strings.ToUpper(hex.EncodeToString(s)),
		base64.StdEncoding.EncodeToString(s),
		base64.RawURLEncoding.EncodeToString(s),
		fmt.Sprint([32]byte(tok.Secret)),            // [1 2 3 ...]
		fmt.Sprintf("%#v", [32]byte(tok.Secret)),    // [32]uint8{0x1, ...}
		strings.Trim(fmt.Sprint(s[:4]), "[]") + " ", // a run of the decimal dump
	}
}

func assertNoSecret(t *testing.T, what, out string, tok token.Token) {
	t.Helper()
	for _, f := range secretForms(tok) {
		if strings.Contains(out, f) {
			t.Errorf("%s leaks the secret: %q contains %q", what, out, f)
		}
	}
	// Also no 12-character run of the body, which would be a partial leak.
	assertNoLeak(t, what, out, tok.Body())
}

func TestSecretRedaction(t *testing.T) {
	tok, err := token.New("gatehouse", &countingReader{n: 200})
	if err != nil {
		t.Fatal(err)
	}
	s := tok.Secret
	tests := []struct {
		format string
		want   string
	}{
		{"%v", "[REDACTED]"},
		{"%+v", "[REDACTED]"},
		{"%#v", "[REDACTED]"},
		{"%s", "[REDACTED]"},
		{"%q", "[REDACTED]"},
		{"%x", "[REDACTED]"},
		{"%X", "[REDACTED]"},
		{"% x", "[REDACTED]"},
		{"%d", "[REDACTED]"},
		{"%12v|", "  [REDACTED]|"},
		{"%-12s|", "[REDACTED]  |"},
	}
	for _, tt := range tests {
		if got := fmt.Sprintf(tt.format, s); got != tt.want {
			t.Errorf("Sprintf(%q, secret) = %q, want %q", tt.format, got, tt.want)
		}
		if got := fmt.Sprintf(tt.format, &s); got != tt.want {
			t.Errorf("Sprintf(%q, &secret) = %q, want %q", tt.format, got, tt.want)
		}
	}
	if got, want := s.String(), "[REDACTED]"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	if got, want := s.GoString(), "[REDACTED]"; got != want {
		t.Errorf("GoString() = %q, want %q", got, want)
	}
	if got, want := fmt.Sprint(s), "[REDACTED]"; got != want {
		t.Errorf("Sprint = %q, want %q", got, want)
	}
	js, err := json.Marshal(struct{ S token.Secret }{s})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(js), `{"S":"[REDACTED]"}`; got != want {
		t.Errorf("json = %s, want %s", got, want)
	}
}

func TestTokenRedaction(t *testing.T) {
	tok, err := token.New("gatehouse", &countingReader{n: 100})
	if err != nil {
		t.Fatal(err)
	}
	id := tok.ID.String()
	want := "gatehouse:" + id
	if got := tok.String(); got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	for _, format := range []string{"%v", "%+v", "%#v", "%s", "%x", "%X", "%d", "%q", "%20v"} {
		for _, arg := range []any{tok, &tok, []token.Token{tok}, map[string]token.Token{"k": tok}, struct{ T token.Token }{tok}} {
			got := fmt.Sprintf(format, arg)
			assertNoSecret(t, fmt.Sprintf("Sprintf(%q, %T)", format, arg), got, tok)
			if !strings.Contains(got, id) {
				t.Errorf("Sprintf(%q, %T) = %q, want it to name the id %s", format, arg, got, id)
			}
		}
	}
	if got, want := fmt.Sprintf("%q", tok), `"`+want+`"`; got != want {
		t.Errorf("%%q = %s, want %s", got, want)
	}
	bare := tok
	bare.Instance = ""
	if got := bare.String(); got != id {
		t.Errorf("bare String() = %q, want the id %q", got, id)
	}

	err = fmt.Errorf("authenticating %v: %w", tok, token.ErrChecksum)
	assertNoSecret(t, "error", err.Error(), tok)

	js, err := json.Marshal(map[string]any{"token": tok, "secret": tok.Secret, "id": tok.ID})
	if err != nil {
		t.Fatal(err)
	}
	assertNoSecret(t, "json", string(js), tok)
	if got, want := string(js), `{"id":"`+id+`","secret":"[REDACTED]","token":"`+want+`"}`; got != want {
		t.Errorf("json = %s, want %s", got, want)
	}
}

func TestSlogRedaction(t *testing.T) {
	tok, err := token.New("gatehouse", &countingReader{n: 7})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&buf, nil))
	log.Info("minted", "token", tok, "secret", tok.Secret, "ptr", &tok, slog.Any("any", tok))
	out := buf.String()
	assertNoSecret(t, "slog JSON", out, tok)

	var rec map[string]any
	if err := json.Unmarshal(buf.Bytes(), &rec); err != nil {
		t.Fatalf("slog output %q is not JSON: %v", out, err)
	}
	if got, want := rec["secret"], "[REDACTED]"; got != want {
		t.Errorf("secret attr = %v, want %v", got, want)
	}
	group, ok := rec["token"].(map[string]any)
	if !ok {
		t.Fatalf("token attr = %v, want a group", rec["token"])
	}
	if got, want := group["id"], tok.ID.String(); got != want {
		t.Errorf("token.id = %v, want %v", got, want)
	}
	if got, want := group["instance"], "gatehouse"; got != want {
		t.Errorf("token.instance = %v, want %v", got, want)
	}

	buf.Reset()
	text := slog.New(slog.NewTextHandler(&buf, nil))
	text.Info("minted", "token", tok, "secret", tok.Secret)
	assertNoSecret(t, "slog text", buf.String(), tok)
}
