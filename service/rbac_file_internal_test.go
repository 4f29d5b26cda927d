package service

import (
	"maps"
	"testing"
)

// The detail of a change the configuration file made reads back as what
// was recorded, whatever the file's path and the replica's name hold.
func FuzzParseFileDetail(f *testing.F) {
	f.Add("/etc/gatehouse/config.yaml", "web-1, listen 0.0.0.0:8080, data dir /var/lib/gatehouse", "g, alice, role:readonly\n", "glob")
	f.Add(`/tmp/a"; replica "x`, "; sets rbac.policyCSV=sha256:00", "", "")
	f.Add("", "", "p, a, b, c, d\n", "regex")
	f.Fuzz(func(t *testing.T, file, replica, csv, mode string) {
		fr := FileRBAC{File: file, Settings: []FileSetting{{Field: "policyCSV", Value: csv}, {Field: "matchMode", Value: mode}}}
		got, ok := parseFileDetail(fileDetail(fr, replica, []string{"policyCSV"}))
		want := map[string]string{"policyCSV": digest(csv), "matchMode": digest(mode)}
		if !ok || got.replica != replica || !maps.Equal(got.sets, want) {
			t.Fatalf("parseFileDetail(fileDetail(%q, %q)) = %+v, %v; want replica %q and %v", file, replica, got, ok, replica, want)
		}
		// Any other text parses or not, without panicking.
		parseFileDetail(file)
		parseFileDetail("file " + file)
	})
}

func TestParseFileDetailRefusesOtherDetails(t *testing.T) {
	for _, d := range []string{
		"",
		"name \"laptop\"",
		`file "/x"`,
		`file "/x"; replica "a"`,
		`file "/x"; replica "a"; changed rbac.policyCSV; sets policyCSV=sha256:00`,
		`file /x; replica "a"; changed; sets`,
	} {
		if rec, ok := parseFileDetail(d); ok {
			t.Errorf("parseFileDetail(%q) = %+v, want it refused", d, rec)
		}
	}
}
