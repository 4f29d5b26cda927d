package token

// decodeBody decodes a 71-character body into its 53 bytes exactly as
// bodyEncoding (strict, unpadded base64url) would, but without the general
// decoder's bookkeeping: the body has one fixed length, so it is 17 whole
// groups of four characters and a final group of three. It is on every
// request's path; TestDecodeBodyMatchesStdlib and FuzzParse pin it to the
// standard decoder.
func decodeBody(dst *[rawLen]byte, body string) bool {
	if len(body) != BodyLen {
		return false
	}
	var bad byte
	si, di := 0, 0
	for ; si+4 <= len(body); si, di = si+4, di+3 {
		a, b, c, d := decodeMap[body[si]], decodeMap[body[si+1]], decodeMap[body[si+2]], decodeMap[body[si+3]]
		bad |= a | b | c | d
		dst[di] = a<<2 | b>>4
		dst[di+1] = b<<4 | c>>2
		dst[di+2] = c<<6 | d
	}
	// The last three characters carry 18 bits: two bytes and two bits that
	// a canonical encoding leaves zero.
	a, b, c := decodeMap[body[si]], decodeMap[body[si+1]], decodeMap[body[si+2]]
	bad |= a | b | c
	dst[di] = a<<2 | b>>4
	dst[di+1] = b<<4 | c>>2
	return bad&invalid == 0 && c&0x03 == 0
}

// invalid marks a byte that is not in the base64url alphabet.
const invalid = 0x80

var decodeMap = func() (m [256]byte) {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	for i := range m {
		m[i] = invalid
	}
	for i := range len(alphabet) {
		m[alphabet[i]] = byte(i)
	}
	return m
}()
