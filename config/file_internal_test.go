package config

import (
	"bytes"
	"testing"
	"unicode/utf16"
)

// Whatever YAML the decoder accepts, readFile describes it without
// failing, finds every RBAC key the decoder set, and places each on a line
// of the file.
func FuzzReadFile(f *testing.F) {
	f.Add([]byte("rbac:\n  policyCSV: |\n    g, alice, role:readonly\n  matchMode: glob\n"))
	f.Add([]byte("rbac: &r\n  policyDefault: role:readonly\n"))
	f.Add([]byte("rbac:\n  <<: [{policyDefault: role:readonly, matchMode: glob}]\n  matchMode: regex\n"))
	f.Add([]byte("rbac:\n  policyCSV: ~\n  policyDefault: \"\"\n"))
	f.Add([]byte("rbac:\n"))
	f.Add([]byte("rbac:\r  matchMode: glob\r"))
	f.Add([]byte("rbac:\u2028  matchMode: glob\u0085"))
	f.Add(append([]byte{0xff, 0xfe}, utf16LE("rbac:\r\n  matchMode: glob\n")...))
	f.Fuzz(func(t *testing.T, data []byte) {
		c := Default()
		if decode(&c, data) != nil {
			return
		}
		file, err := readFile("gatehouse.yaml", data)
		if err != nil {
			t.Fatalf("readFile of a file the decoder accepts: %v", err)
		}
		lines := yamlLines(data)
		def := Default()
		for _, key := range storedRBAC {
			if _, ok := file.RBAC[key]; !ok && c.RBAC.value(key) != def.RBAC.value(key) {
				t.Fatalf("the decoder set rbac.%s to %q, but readFile says the file does not set it", key, c.RBAC.value(key))
			}
		}
		for key, p := range file.RBAC {
			if p.Line < 1 || p.Line > lines || p.FirstLine > lines+1 {
				t.Fatalf("%s placed at %+v in a file of %d lines", key, p, lines)
			}
		}
	})
}

// yamlLines counts the lines of data as the YAML decoder numbers them:
// YAML 1.2 breaks a line at CR LF, CR, LF, NEL, LS and PS, and a file
// that starts with a UTF-16 byte order mark is read as UTF-16.
func yamlLines(data []byte) int {
	text := string(data)
	if bom := []byte{0xff, 0xfe}; bytes.HasPrefix(data, bom) || bytes.HasPrefix(data, []byte{0xfe, 0xff}) {
		units := make([]uint16, 0, len(data)/2)
		for i := 2; i+1 < len(data); i += 2 {
			if data[0] == 0xff {
				units = append(units, uint16(data[i])|uint16(data[i+1])<<8)
			} else {
				units = append(units, uint16(data[i])<<8|uint16(data[i+1]))
			}
		}
		text = string(utf16.Decode(units))
	}
	lines := 1
	runes := []rune(text)
	for i, r := range runes {
		switch r {
		case '\r':
			if i+1 < len(runes) && runes[i+1] == '\n' {
				continue
			}
			lines++
		case '\n', '\u0085', '\u2028', '\u2029':
			lines++
		}
	}
	return lines
}

func utf16LE(s string) []byte {
	var b []byte
	for _, u := range utf16.Encode([]rune(s)) {
		b = append(b, byte(u), byte(u>>8))
	}
	return b
}
