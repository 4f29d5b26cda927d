package token

import (
	"crypto/sha256"
	"crypto/subtle"
)

// HashLen is the length of a stored secret hash (SHA-256).
const HashLen = sha256.Size

// Hash returns SHA-256(secret), the only form of the secret the server keeps.
// A plain hash is enough: the secret is 256 random bits, so there is nothing
// for a slow password hash to protect against, and verification stays on the
// order of one SHA-256.
func (s Secret) Hash() [HashLen]byte { return sha256.Sum256(s[:]) }

// Verify reports whether hash is SHA-256(secret). The comparison is constant
// time so a caller cannot learn a stored hash byte by byte from timings.
// A hash of the wrong length never matches.
func Verify(secret Secret, hash []byte) bool {
	if len(hash) != HashLen {
		return false
	}
	h := secret.Hash()
	return subtle.ConstantTimeCompare(h[:], hash) == 1
}
