package config

import "testing"

// Whatever YAML the decoder accepts, readFile describes it without
// failing, finds every RBAC key the decoder set, and places each on a line
// of the file.
func FuzzReadFile(f *testing.F) {
	f.Add([]byte("rbac:\n  policyCSV: |\n    g, alice, role:readonly\n  matchMode: glob\n"))
	f.Add([]byte("rbac: &r\n  policyDefault: role:readonly\n"))
	f.Add([]byte("rbac:\n  <<: [{policyDefault: role:readonly, matchMode: glob}]\n  matchMode: regex\n"))
	f.Add([]byte("rbac:\n  policyCSV: ~\n  policyDefault: \"\"\n"))
	f.Add([]byte("rbac:\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c := Default()
		if decode(&c, data) != nil {
			return
		}
		file, err := readFile("gatehouse.yaml", data)
		if err != nil {
			t.Fatalf("readFile of a file the decoder accepts: %v", err)
		}
		lines := 1
		for _, b := range data {
			if b == '\n' {
				lines++
			}
		}
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
