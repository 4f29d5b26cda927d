// Package token owns the wire format of Gatehouse tokens:
// minting, parsing, the CRC-32 checksum that catches typos without a lookup,
// hashing the secret and comparing it in constant time.
//
// A token is one printable string, "<instance>:<body>", where <body> is
// unpadded base64url (RFC 4648 §5) of 53 bytes:
//
//	version (1, 0x01) | token id (16) | secret (32) | CRC-32 IEEE of the 49 preceding bytes (4, big-endian)
//
// The package is pure: it does no I/O and holds no state. The random source is
// passed in (crypto/rand.Reader in production) so tests can mint golden
// vectors.
//
// Secret material can leave this package as text only through Token.Reveal
// and Token.Body. Every other rendering of a Secret or a Token — fmt verbs,
// log/slog, encoding.TextMarshaler, error messages — omits the secret, so a
// stray log line or %v cannot leak it.
package token
