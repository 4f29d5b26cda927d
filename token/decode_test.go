package token

import (
	"bytes"
	"math/rand/v2"
	"testing"
)

// TestDecodeBodyMatchesStdlib compares the fixed-length decoder with the
// strict standard decoder on valid bodies, single-character corruptions
// and random strings.
func TestDecodeBodyMatchesStdlib(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_=+/ .\\x00\xff"
	check := func(body string) {
		t.Helper()
		var got [rawLen]byte
		ok := decodeBody(&got, body)
		want := make([]byte, rawLen+3)
		n, err := bodyEncoding.Decode(want, []byte(body))
		wantOK := err == nil && n == rawLen
		if ok != wantOK {
			t.Fatalf("decodeBody(%q) ok=%v, standard decoder ok=%v (%v)", body, ok, wantOK, err)
		}
		if ok && !bytes.Equal(got[:], want[:rawLen]) {
			t.Fatalf("decodeBody(%q) = %x, want %x", body, got, want[:rawLen])
		}
	}
	for range 2000 {
		var raw [rawLen]byte
		for i := range raw {
			raw[i] = byte(r.UintN(256))
		}
		body := bodyEncoding.EncodeToString(raw[:])
		check(body)
		b := []byte(body)
		b[r.IntN(len(b))] = alphabet[r.IntN(len(alphabet))]
		check(string(b))
		for i := range b {
			b[i] = alphabet[r.IntN(len(alphabet))]
		}
		check(string(b))
	}
	// Every value of the last character: only those with zero low bits
	// are canonical.
	var raw [rawLen]byte
	body := []byte(bodyEncoding.EncodeToString(raw[:]))
	for c := range 256 {
		body[len(body)-1] = byte(c)
		check(string(body))
	}
}

func BenchmarkDecodeBody(b *testing.B) {
	var raw [rawLen]byte
	body := bodyEncoding.EncodeToString(raw[:])
	for b.Loop() {
		decodeBody(&raw, body)
	}
}
