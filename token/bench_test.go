package token_test

import (
	"crypto/rand"
	"errors"
	"testing"

	"github.com/gatehouse/gatehouse/token"
)

func BenchmarkParse(b *testing.B) {
	tok, err := token.New("gatehouse", rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	s := tok.Reveal()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := token.Parse(s); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseRejectChecksum(b *testing.B) {
	tok, err := token.New("gatehouse", rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	s := tok.Reveal()
	c := byte('A')
	if s[20] == c {
		c = 'B'
	}
	s = s[:20] + string(c) + s[21:]
	b.ReportAllocs()
	for b.Loop() {
		if _, err := token.Parse(s); !errors.Is(err, token.ErrChecksum) {
			b.Fatalf("Parse(corrupted) error = %v, want ErrChecksum", err)
		}
	}
}

func BenchmarkVerify(b *testing.B) {
	tok, err := token.New("gatehouse", rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	h := tok.Secret.Hash()
	b.ReportAllocs()
	for b.Loop() {
		if !token.Verify(tok.Secret, h[:]) {
			b.Fatal("Verify = false")
		}
	}
}

func BenchmarkNew(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := token.New("gatehouse", rand.Reader); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkReveal(b *testing.B) {
	tok, err := token.New("gatehouse", rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		_ = tok.Reveal()
	}
}
