package loopback

import (
	"crypto/rand"
	"testing"
)

func TestSealOpen(t *testing.T) {
	k, err := NewKey()
	if err != nil {
		t.Fatal(err)
	}
	pub, err := ParsePublic(k.Public())
	if err != nil {
		t.Fatal(err)
	}
	sealed, err := Seal(rand.Reader, pub, []byte("gatehouse:secret"))
	if err != nil {
		t.Fatal(err)
	}
	got, err := k.Open(sealed)
	if err != nil || string(got) != "gatehouse:secret" {
		t.Fatalf("Open = %q, %v; want the sealed text", got, err)
	}
	other, _ := NewKey()
	if _, err := other.Open(sealed); err == nil {
		t.Error("another key opened the sealed value")
	}
	b := []byte(sealed)
	b[len(b)-3] ^= 1
	if _, err := k.Open(string(b)); err == nil {
		t.Error("a changed sealed value opened")
	}
}

func FuzzOpen(f *testing.F) {
	k, err := NewKey()
	if err != nil {
		f.Fatal(err)
	}
	pub, _ := ParsePublic(k.Public())
	s, _ := Seal(rand.Reader, pub, []byte("x"))
	f.Add(s)
	f.Add("")
	f.Add(k.Public())
	f.Fuzz(func(t *testing.T, v string) {
		_, _ = k.Open(v)
		_, _ = ParsePublic(v)
	})
}
