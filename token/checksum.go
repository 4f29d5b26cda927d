package token

import (
	"encoding/binary"
	"hash/crc32"
)

// crcTables are the slicing-by-8 tables for CRC-32 IEEE, derived once from
// hash/crc32's own table and never written again.
//
// hash/crc32 computes the same checksum, but it dispatches through a function
// variable, so escape analysis moves any buffer handed to it onto the heap.
// That single allocation was the only one left in Parse; computing the 49-byte
// checksum here keeps Parse allocation-free and is as fast as the standard
// library at this length (TestChecksum pins it to hash/crc32).
var crcTables = func() (t [8][256]uint32) {
	t[0] = *crc32.IEEETable
	for i := range 256 {
		crc := t[0][i]
		for j := 1; j < 8; j++ {
			crc = t[0][crc&0xff] ^ crc>>8
			t[j][i] = crc
		}
	}
	return t
}()

// checksum returns the CRC-32 (IEEE polynomial) of p, as crc32.ChecksumIEEE.
func checksum(p []byte) uint32 {
	crc := ^uint32(0)
	for len(p) >= 8 {
		crc ^= binary.LittleEndian.Uint32(p)
		crc = crcTables[0][p[7]] ^ crcTables[1][p[6]] ^ crcTables[2][p[5]] ^ crcTables[3][p[4]] ^
			crcTables[4][crc>>24] ^ crcTables[5][crc>>16&0xff] ^
			crcTables[6][crc>>8&0xff] ^ crcTables[7][crc&0xff]
		p = p[8:]
	}
	for _, b := range p {
		crc = crcTables[0][byte(crc)^b] ^ crc>>8
	}
	return ^crc
}
