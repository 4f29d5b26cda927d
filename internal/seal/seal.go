// Package seal seals small values with keys derived from a secret: the
// dashboard's copy-once token cookie and the SSO login's state, pending
// CLI confirmation and stored refresh tokens.
//
// A sealed value is a version byte, a random salt and a GCM nonce, then
// AES-256-GCM of the plaintext under HKDF-SHA256(secret, salt, info), with
// additional data naming what it belongs to. A value sealed for one
// purpose (info) and owner (additional data) opens for nothing else.
package seal

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/sha256"
	"errors"
	"io"
)

const (
	version = 1
	saltLen = 16
	// Head is the length of what precedes the ciphertext: the version,
	// the salt and the nonce. Together they are unique to one seal.
	Head = 1 + saltLen + 12
	// Overhead is how much longer a sealed value is than its plaintext.
	Overhead = Head + 16
)

// ErrOpen is the one answer to a value that does not open.
var ErrOpen = errors.New("sealed value does not open")

// Sealer seals with keys derived from Secret, drawing salts and nonces
// from Rand.
type Sealer struct {
	Secret []byte
	Rand   io.Reader
}

func (k Sealer) aead(salt []byte, info string) (cipher.AEAD, error) {
	key, err := hkdf.Key(sha256.New, k.Secret, salt, info, 32)
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// Seal seals plain for the purpose info, bound to ad.
func (k Sealer) Seal(plain []byte, info string, ad []byte) ([]byte, error) {
	buf := make([]byte, Head, Head+len(plain)+16)
	buf[0] = version
	if _, err := io.ReadFull(k.Rand, buf[1:]); err != nil {
		return nil, err
	}
	aead, err := k.aead(buf[1:1+saltLen], info)
	if err != nil {
		return nil, err
	}
	return aead.Seal(buf, buf[1+saltLen:Head], plain, ad), nil
}

// Open opens a value sealed for info and ad, or returns ErrOpen.
func (k Sealer) Open(b []byte, info string, ad []byte) ([]byte, error) {
	if len(b) < Overhead || b[0] != version {
		return nil, ErrOpen
	}
	aead, err := k.aead(b[1:1+saltLen], info)
	if err != nil {
		return nil, ErrOpen
	}
	plain, err := aead.Open(nil, b[1+saltLen:Head], b[Head:], ad)
	if err != nil {
		return nil, ErrOpen
	}
	return plain, nil
}
