package token

import (
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
)

// Layout of the decoded body.
const (
	// Version is the format version this package mints and accepts.
	Version = 0x01

	// BodyLen is the length of the base64url body in characters:
	// 53 bytes encode to ceil(53*8/6) = 71 characters without padding.
	BodyLen = 71

	// MaxInstanceLen is the longest instance name, a DNS label's length.
	MaxInstanceLen = 63

	rawLen    = 1 + idLen + secretLen + crcLen // 53
	idLen     = 16
	secretLen = 32
	crcLen    = 4
	idOff     = 1
	secretOff = idOff + idLen         // 17
	crcOff    = secretOff + secretLen // 49
)

// Parse errors. Parse wraps them with a short reason; the reason never
// contains any part of the input, which may be a real secret.
var (
	// ErrMalformed: not a token at all (wrong length, alphabet, padding,
	// separator or instance name).
	ErrMalformed = errors.New("token: malformed")
	// ErrChecksum: the shape is right but the CRC does not match, which is
	// almost always a mistyped or truncated copy.
	ErrChecksum = errors.New("token: checksum mismatch")
	// ErrVersion: a well-formed token of a format version this build does not
	// know.
	ErrVersion = errors.New("token: unsupported version")
	// ErrInstance is returned by New for an instance name that does not
	// match [a-z0-9][a-z0-9-]{0,62}.
	ErrInstance = errors.New("token: invalid instance name")
)

// Reasons are built once so that rejecting garbage on the request path does
// not allocate, and so that no reason can ever interpolate the input.
var (
	errEmpty         = fmt.Errorf("%w: empty", ErrMalformed)
	errLength        = fmt.Errorf("%w: body must be %d characters", ErrMalformed, BodyLen)
	errEncoding      = fmt.Errorf("%w: body is not canonical unpadded base64url", ErrMalformed)
	errInstanceParse = fmt.Errorf("%w: instance name must match [a-z0-9][a-z0-9-]{0,62}", ErrMalformed)
	errSeparator     = fmt.Errorf("%w: more than one ':' separator", ErrMalformed)
)

// bodyEncoding is strict: it rejects padding, whitespace and non-zero trailing
// bits, so every token has exactly one textual form. (The decoder does skip
// '\r' and '\n'; Parse catches those because the body then decodes to fewer
// than 53 bytes.)
var bodyEncoding = base64.RawURLEncoding.Strict()

// Redacted is what every non-revealing rendering of a secret prints.
const Redacted = "[REDACTED]"

// Secret is the 32 random bytes that authenticate a token. The server never
// stores it, only its SHA-256 (see Hash and Verify).
//
// A Secret redacts itself wherever Go renders values: String, GoString,
// every fmt verb, log/slog and text/JSON/YAML encoding all give "[REDACTED]".
// One gap is Go's, not ours: fmt cannot call methods on unexported struct
// fields, so a struct holding a Secret in an unexported field prints its
// bytes. Keep Secrets in exported fields (as Token does) or do not print
// the struct.
type Secret [secretLen]byte

// String returns "[REDACTED]".
func (Secret) String() string { return Redacted }

// GoString returns "[REDACTED]", so %#v does not dump the bytes.
func (Secret) GoString() string { return Redacted }

// Format prints "[REDACTED]" for every verb, including %x and %q, which would
// otherwise bypass String. Width and flags are honoured for alignment.
func (Secret) Format(f fmt.State, _ rune) {
	fmt.Fprintf(f, fmt.FormatString(f, 's'), Redacted)
}

// LogValue keeps the secret out of log/slog output.
func (Secret) LogValue() slog.Value { return slog.StringValue(Redacted) }

// MarshalText keeps the secret out of encoding/json, YAML and anything else
// that uses encoding.TextMarshaler. There is deliberately no UnmarshalText:
// a secret is only ever read back through Parse.
func (Secret) MarshalText() ([]byte, error) { return []byte(Redacted), nil }

// Token is a parsed or freshly minted token. Instance is empty when the token
// was parsed from a bare body.
type Token struct {
	Instance string
	ID       ID
	Secret   Secret
}

// New mints a token for instance, reading 48 bytes (id and secret) from r.
// r is crypto/rand.Reader in production; tests pass a fixed reader.
func New(instance string, r io.Reader) (Token, error) {
	if !ValidInstance(instance) {
		return Token{}, fmt.Errorf("%w %q", ErrInstance, instance)
	}
	id, err := NewID(r)
	if err != nil {
		return Token{}, err
	}
	t := Token{Instance: instance, ID: id}
	if _, err := io.ReadFull(r, t.Secret[:]); err != nil {
		return Token{}, fmt.Errorf("token: reading random secret: %w", err)
	}
	return t, nil
}

// Reveal returns the full token text, "<instance>:<body>", or the bare body
// when Instance is empty. It is the only way to get the secret as text; the
// name is meant to stand out in review. Show the result to its owner once,
// in the response that mints it, and nowhere else.
func (t Token) Reveal() string {
	var body [BodyLen]byte
	t.encode(&body)
	if t.Instance == "" {
		return string(body[:])
	}
	var b strings.Builder
	b.Grow(len(t.Instance) + 1 + BodyLen)
	b.WriteString(t.Instance)
	b.WriteByte(':')
	b.Write(body[:])
	return b.String()
}

// Body returns the base64url body alone. It carries the secret, so it needs
// the same care as Reveal.
func (t Token) Body() string {
	var body [BodyLen]byte
	t.encode(&body)
	return string(body[:])
}

// encode writes the base64url body of t into dst.
func (t Token) encode(dst *[BodyLen]byte) {
	var raw [rawLen]byte
	raw[0] = Version
	copy(raw[idOff:secretOff], t.ID[:])
	copy(raw[secretOff:crcOff], t.Secret[:])
	binary.BigEndian.PutUint32(raw[crcOff:], checksum(raw[:crcOff]))
	bodyEncoding.Encode(dst[:], raw[:])
}

// String returns "<instance>:<id>" (or just the id for a bare token): enough
// to tell tokens apart in logs, never the secret.
func (t Token) String() string {
	if t.Instance == "" {
		return t.ID.String()
	}
	return t.Instance + ":" + t.ID.String()
}

// GoString returns the same as String so %#v does not dump the secret.
func (t Token) GoString() string { return t.String() }

// Format prints String for every verb (quoted for %q), so no verb can reach
// the Secret field's bytes.
func (t Token) Format(f fmt.State, verb rune) {
	s := t.String()
	if verb == 'q' {
		s = strconv.Quote(s)
	}
	fmt.Fprintf(f, fmt.FormatString(f, 's'), s)
}

// LogValue logs the instance and id as a group, never the secret.
func (t Token) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("instance", t.Instance),
		slog.String("id", t.ID.String()),
	)
}

// MarshalText gives String, so a Token that ends up in JSON or YAML shows
// its id and not its secret.
func (t Token) MarshalText() ([]byte, error) { return []byte(t.String()), nil }

// Parse parses "<instance>:<body>" or a bare "<body>" (Instance == "").
//
// Errors wrap ErrMalformed, ErrChecksum or ErrVersion; none of them includes
// any part of s. Surrounding whitespace is not trimmed: callers that read a
// token from a file, a prompt or a header trim it first. The checksum is checked before the version so that a typo
// in the first characters reads as a typo, not as a foreign version.
//
// Parse does not allocate; it is on every authenticated request.
func Parse(s string) (Token, error) {
	if s == "" {
		return Token{}, errEmpty
	}
	var instance, body string
	if i := strings.IndexByte(s, ':'); i >= 0 {
		instance, body = s[:i], s[i+1:]
		if !ValidInstance(instance) {
			return Token{}, errInstanceParse
		}
		if strings.IndexByte(body, ':') >= 0 {
			return Token{}, errSeparator
		}
	} else {
		body = s
	}
	if len(body) != BodyLen {
		return Token{}, errLength
	}

	var raw [rawLen]byte
	if !decodeBody(&raw, body) {
		return Token{}, errEncoding
	}
	if binary.BigEndian.Uint32(raw[crcOff:]) != checksum(raw[:crcOff]) {
		return Token{}, ErrChecksum
	}
	if raw[0] != Version {
		return Token{}, ErrVersion
	}
	t := Token{Instance: instance}
	copy(t.ID[:], raw[idOff:secretOff])
	copy(t.Secret[:], raw[secretOff:crcOff])
	return t, nil
}

// ValidInstance reports whether s is a valid instance name:
// [a-z0-9][a-z0-9-]{0,62}.
func ValidInstance(s string) bool {
	if len(s) == 0 || len(s) > MaxInstanceLen || s[0] == '-' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}
