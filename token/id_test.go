package token_test

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"errors"
	"regexp"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/gatehouse/gatehouse/token"
)

var uuidV4 = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

func TestNewIDIsUUIDv4(t *testing.T) {
	// All-ones and all-zeros readers check that the bits are forced both ways.
	readers := map[string]func() *bytes.Reader{
		"zeros": func() *bytes.Reader { return bytes.NewReader(make([]byte, 16)) },
		"ones":  func() *bytes.Reader { return bytes.NewReader(bytes.Repeat([]byte{0xff}, 16)) },
	}
	for name, r := range readers {
		id, err := token.NewID(r())
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if s := id.String(); !uuidV4.MatchString(s) {
			t.Errorf("%s: NewID() = %s, want a version-4 RFC 9562 UUID", name, s)
		}
	}
	for range 100 {
		id, err := token.NewID(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		s := id.String()
		if !uuidV4.MatchString(s) {
			t.Fatalf("NewID() = %s, want a version-4 UUID", s)
		}
		u, err := uuid.Parse(s)
		if err != nil {
			t.Fatalf("uuid.Parse(%s): %v", s, err)
		}
		if got, want := u.Version(), uuid.Version(4); got != want {
			t.Errorf("version = %v, want %v", got, want)
		}
		if got, want := u.Variant(), uuid.RFC4122; got != want {
			t.Errorf("variant = %v, want %v", got, want)
		}
		if !bytes.Equal(u[:], id[:]) {
			t.Errorf("uuid bytes = %x, want %x", u[:], id[:])
		}
	}
	if _, err := token.NewID(bytes.NewReader(make([]byte, 15))); err == nil {
		t.Error("NewID(short reader) succeeded")
	}
}

func TestParseID(t *testing.T) {
	const canonical = "0123abcd-4567-4def-89ab-0123456789ab"
	want := token.ID{0x01, 0x23, 0xab, 0xcd, 0x45, 0x67, 0x4d, 0xef, 0x89, 0xab, 0x01, 0x23, 0x45, 0x67, 0x89, 0xab}
	ok := []string{canonical, strings.ToUpper(canonical), "0123ABCD-4567-4def-89AB-0123456789ab"}
	for _, s := range ok {
		got, err := token.ParseID(s)
		if err != nil {
			t.Fatalf("ParseID(%q): %v", s, err)
		}
		if got != want {
			t.Errorf("ParseID(%q) = %x, want %x", s, got[:], want[:])
		}
		if got.String() != canonical {
			t.Errorf("ParseID(%q).String() = %s, want %s", s, got, canonical)
		}
	}
	bad := []string{
		"",
		"0123abcd45674def89ab0123456789ab",
		"{0123abcd-4567-4def-89ab-0123456789ab}",
		"urn:uuid:0123abcd-4567-4def-89ab-0123456789ab",
		"0123abcd-4567-4def-89ab-0123456789a",
		"0123abcd-4567-4def-89ab-0123456789abc",
		"0123abcd_4567-4def-89ab-0123456789ab",
		"0123abcd-4567-4def-89ab+0123456789ab",
		"0123abcg-4567-4def-89ab-0123456789ab",
		"0123abcd-4567-4def-89ab-0123456789a ",
		"0123abcd-456-74def-89ab-0123456789ab",
	}
	for _, s := range bad {
		if got, err := token.ParseID(s); !errors.Is(err, token.ErrID) {
			t.Errorf("ParseID(%q) = %v, %v; want ErrID", s, got, err)
		}
	}
}

func TestIDText(t *testing.T) {
	id, err := token.NewID(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	js, err := json.Marshal(map[string]token.ID{"id": id})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(js), `{"id":"`+id.String()+`"}`; got != want {
		t.Errorf("json = %s, want %s", got, want)
	}
	var back map[string]token.ID
	if err := json.Unmarshal(js, &back); err != nil {
		t.Fatal(err)
	}
	if back["id"] != id {
		t.Errorf("json round trip = %v, want %v", back["id"], id)
	}
	if err := json.Unmarshal([]byte(`{"id":"nope"}`), &back); !errors.Is(err, token.ErrID) {
		t.Errorf("unmarshal bad id error = %v, want ErrID", err)
	}
	if !(token.ID{}).IsZero() || id.IsZero() {
		t.Error("IsZero wrong")
	}
}
