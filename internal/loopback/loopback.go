// Package loopback carries the session of a CLI SSO login from the server,
// through the browser, to the CLI's loopback listener without exposing it
// on the way.
//
// The CLI makes an X25519 key pair for one login and puts the public key
// in the login URL. After the identity provider's callback, the server
// seals the new session token to that key (ephemeral-static ECDH, HKDF-
// SHA256, AES-256-GCM) and redirects the browser to the loopback address
// with the sealed value. Browser history, proxies and the address bar see
// only ciphertext and a public key; only the CLI process, which never let
// its private key out, can open it. No replica has to remember anything
// between the two requests.
package loopback

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdh"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"io"
)

const (
	info     = "gatehouse sso loopback v1"
	keyLen   = 32
	nonceLen = 12
	// MaxSealed bounds a sealed value: a session token and its expiry
	// are far smaller.
	MaxSealed = 2048
)

var enc = base64.RawURLEncoding.Strict()

// Key is the CLI's private key for one login.
type Key struct{ k *ecdh.PrivateKey }

// NewKey makes a fresh key pair.
func NewKey() (Key, error) {
	k, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		return Key{}, err
	}
	return Key{k}, nil
}

// Public is the key's public half, as it goes into the login URL.
func (k Key) Public() string { return enc.EncodeToString(k.k.PublicKey().Bytes()) }

// ParsePublic checks a public key from a login URL.
func ParsePublic(s string) (*ecdh.PublicKey, error) {
	if len(s) != 43 {
		return nil, errors.New("loopback: a public key is 43 base64url characters")
	}
	b, err := enc.DecodeString(s)
	if err != nil {
		return nil, errors.New("loopback: public key is not base64url")
	}
	return ecdh.X25519().NewPublicKey(b)
}

// Seal seals plain to the public key pub, with randomness from r.
func Seal(r io.Reader, pub *ecdh.PublicKey, plain []byte) (string, error) {
	eph, err := ecdh.X25519().GenerateKey(r)
	if err != nil {
		return "", err
	}
	shared, err := eph.ECDH(pub)
	if err != nil {
		return "", err
	}
	aead, err := newAEAD(shared, eph.PublicKey().Bytes(), pub.Bytes())
	if err != nil {
		return "", err
	}
	out := make([]byte, keyLen+nonceLen, keyLen+nonceLen+len(plain)+aead.Overhead())
	copy(out, eph.PublicKey().Bytes())
	if _, err := io.ReadFull(r, out[keyLen:]); err != nil {
		return "", err
	}
	return enc.EncodeToString(aead.Seal(out, out[keyLen:], plain, nil)), nil
}

// Open opens what Seal sealed to k's public key.
func (k Key) Open(sealed string) ([]byte, error) {
	if len(sealed) > MaxSealed {
		return nil, errors.New("loopback: sealed value too long")
	}
	b, err := enc.DecodeString(sealed)
	if err != nil || len(b) < keyLen+nonceLen+16 {
		return nil, errors.New("loopback: malformed sealed value")
	}
	eph, err := ecdh.X25519().NewPublicKey(b[:keyLen])
	if err != nil {
		return nil, errors.New("loopback: malformed sealed value")
	}
	shared, err := k.k.ECDH(eph)
	if err != nil {
		return nil, errors.New("loopback: malformed sealed value")
	}
	aead, err := newAEAD(shared, b[:keyLen], k.k.PublicKey().Bytes())
	if err != nil {
		return nil, err
	}
	plain, err := aead.Open(nil, b[keyLen:keyLen+nonceLen], b[keyLen+nonceLen:], nil)
	if err != nil {
		return nil, errors.New("loopback: sealed value does not open with this key")
	}
	return plain, nil
}

// newAEAD derives the AES-256-GCM key from the shared secret, bound to
// both public keys.
func newAEAD(shared, ephPub, pub []byte) (cipher.AEAD, error) {
	salt := append(append([]byte{}, ephPub...), pub...)
	key, err := hkdf.Key(sha256.New, shared, salt, info, 32)
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}
