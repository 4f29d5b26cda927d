package seal

import (
	"bytes"
	"crypto/rand"
	"testing"
)

func TestSealOpensOnlyForItsPurposeOwnerAndSecret(t *testing.T) {
	k := Sealer{Secret: []byte("secret-one"), Rand: rand.Reader}
	b, err := k.Seal([]byte("plain"), "purpose", []byte("owner"))
	if err != nil {
		t.Fatal(err)
	}
	if len(b) != len("plain")+Overhead {
		t.Errorf("sealed length %d, want %d", len(b), len("plain")+Overhead)
	}
	if got, err := k.Open(b, "purpose", []byte("owner")); err != nil || !bytes.Equal(got, []byte("plain")) {
		t.Fatalf("Open = %q, %v", got, err)
	}
	again, _ := k.Seal([]byte("plain"), "purpose", []byte("owner"))
	if bytes.Equal(again[:Head], b[:Head]) {
		t.Error("two seals share a salt and nonce")
	}
	tampered := append([]byte{}, b...)
	tampered[len(tampered)-1] ^= 1
	for name, c := range map[string]struct {
		k    Sealer
		b    []byte
		info string
		ad   string
	}{
		"other purpose": {k, b, "other", "owner"},
		"other owner":   {k, b, "purpose", "someone"},
		"other secret":  {Sealer{Secret: []byte("secret-two")}, b, "purpose", "owner"},
		"tampered":      {k, tampered, "purpose", "owner"},
		"truncated":     {k, b[:Overhead-1], "purpose", "owner"},
		"other version": {k, append([]byte{2}, b[1:]...), "purpose", "owner"},
	} {
		if _, err := c.k.Open(c.b, c.info, []byte(c.ad)); err != ErrOpen {
			t.Errorf("%s: Open = %v, want ErrOpen", name, err)
		}
	}
}
