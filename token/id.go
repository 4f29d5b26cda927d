package token

import (
	"encoding/hex"
	"errors"
	"fmt"
	"io"
)

// ID is a token's public identifier: listed, audited and revoked by. It is a
// UUID (version 4 when minted by NewID) and is rendered in the canonical
// 36-character form.
type ID [idLen]byte

// uuidLen is the length of the canonical text form.
const uuidLen = 36

// ErrID is wrapped by ParseID for text that is not a canonical UUID.
var ErrID = errors.New("token: invalid id")

var errIDShape = fmt.Errorf("%w: want a UUID like xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx", ErrID)

// NewID reads 16 bytes from r and sets the RFC 9562 version (4) and variant
// bits, so the id is a valid random UUID for any tool that checks.
func NewID(r io.Reader) (ID, error) {
	var id ID
	if _, err := io.ReadFull(r, id[:]); err != nil {
		return ID{}, fmt.Errorf("token: reading random id: %w", err)
	}
	id[6] = id[6]&0x0f | 0x40 // version 4
	id[8] = id[8]&0x3f | 0x80 // variant 10xx
	return id, nil
}

// ParseID parses the canonical hyphenated UUID form, in either case. Other
// spellings (braces, "urn:uuid:", no hyphens) are refused so that every id has
// one text form in URLs, logs and the store. The version is not checked: the
// id is whatever the token carries.
func ParseID(s string) (ID, error) {
	var id ID
	if len(s) != uuidLen || s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-' {
		return ID{}, errIDShape
	}
	j := 0
	for i := 0; i < uuidLen; {
		if i == 8 || i == 13 || i == 18 || i == 23 {
			i++
			continue
		}
		hi, ok1 := unhex(s[i])
		lo, ok2 := unhex(s[i+1])
		if !ok1 || !ok2 {
			return ID{}, errIDShape
		}
		id[j] = hi<<4 | lo
		i += 2
		j++
	}
	return id, nil
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// String returns the canonical lowercase form,
// "xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx".
func (id ID) String() string {
	var b [uuidLen]byte
	id.encode(&b)
	return string(b[:])
}

func (id ID) encode(b *[uuidLen]byte) {
	hex.Encode(b[0:8], id[0:4])
	b[8] = '-'
	hex.Encode(b[9:13], id[4:6])
	b[13] = '-'
	hex.Encode(b[14:18], id[6:8])
	b[18] = '-'
	hex.Encode(b[19:23], id[8:10])
	b[23] = '-'
	hex.Encode(b[24:], id[10:])
}

// IsZero reports whether id is the all-zero (nil) UUID.
func (id ID) IsZero() bool { return id == ID{} }

// MarshalText gives the canonical form, for JSON and YAML.
func (id ID) MarshalText() ([]byte, error) {
	var b [uuidLen]byte
	id.encode(&b)
	return b[:], nil
}

// UnmarshalText accepts what ParseID accepts.
func (id *ID) UnmarshalText(b []byte) error {
	v, err := ParseID(string(b))
	if err != nil {
		return err
	}
	*id = v
	return nil
}
