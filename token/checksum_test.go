package token

import (
	"hash/crc32"
	"testing"
)

func TestChecksum(t *testing.T) {
	var p [300]byte
	for i := range p {
		p[i] = byte(i*31 + 7)
	}
	for n := range len(p) {
		for off := range 8 { // every alignment of the 8-byte loop
			if off > n {
				break
			}
			in := p[off:n]
			if got, want := checksum(in), crc32.ChecksumIEEE(in); got != want {
				t.Fatalf("checksum(p[%d:%d]) = %08x, want %08x", off, n, got, want)
			}
		}
	}
	if got, want := checksum([]byte("123456789")), uint32(0xcbf43926); got != want {
		t.Errorf("checksum(check string) = %08x, want %08x", got, want)
	}
}
