package config_test

import (
	"path/filepath"
	"reflect"
	"testing"

	"github.com/gatehouse/gatehouse/config"
	"github.com/gatehouse/gatehouse/service"
)

// Load records which of the stored RBAC settings the file sets, and
// where, so that the service can apply them and name their lines; a null
// value sets nothing, an empty string does.
func TestLoadRecordsTheRBACSettingsTheFileSets(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want []service.FileSetting
	}{
		{"ok/none", "listen: 127.0.0.1:1\n", nil},
		{"ok/null section", "rbac:\n", nil},
		{"ok/disableBuiltin only", "rbac:\n  disableBuiltin: true\n", nil},
		{"ok/null values", "rbac:\n  policyCSV: ~\n  matchMode: null\n  policyDefault:\n", nil},
		{"ok/literal block", "listen: 127.0.0.1:1\nrbac:\n  policyCSV: |\n    g, alice, role:readonly\n    g, bob, role:readonly\n  matchMode: glob\n",
			[]service.FileSetting{
				{Field: "policyCSV", Value: "g, alice, role:readonly\ng, bob, role:readonly\n", Line: 3, FirstLine: 4},
				{Field: "matchMode", Value: "glob", Line: 6},
			}},
		{"ok/empty string sets", "rbac:\n  policyDefault: \"\"\n",
			[]service.FileSetting{{Field: "policyDefault", Value: "", Line: 2}}},
		{"ok/quoted policy has no file lines", "rbac:\n  policyCSV: \"g, alice, role:readonly\\n\"\n",
			[]service.FileSetting{{Field: "policyCSV", Value: "g, alice, role:readonly\n", Line: 2}}},
		{"ok/through an alias", "rbac: &r\n  policyDefault: role:readonly\n",
			[]service.FileSetting{{Field: "policyDefault", Value: "role:readonly", Line: 2}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := tempFile(t, "gatehouse.yaml", tt.yaml)
			c, err := config.Load(nil, env{"GATEHOUSE_CONFIG": path}.get)
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			got := c.FileRBAC()
			abs, _ := filepath.Abs(path)
			if got.File != abs {
				t.Errorf("File = %q, want %q", got.File, abs)
			}
			if !reflect.DeepEqual(got.Settings, tt.want) {
				t.Errorf("Settings =\n%+v\nwant\n%+v", got.Settings, tt.want)
			}
		})
	}
}

// A merge key inside rbac brings settings in from another mapping; their
// line is where they are written, and a key written in rbac itself wins
// over a merged one, as in the decoder.
func TestLoadFindsRBACSettingsThroughMerges(t *testing.T) {
	path := tempFile(t, "gatehouse.yaml", "rbac:\n  <<: [{policyDefault: role:readonly, matchMode: glob}]\n  matchMode: regex\n")
	c, err := config.Load(nil, env{"GATEHOUSE_CONFIG": path}.get)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	want := []service.FileSetting{
		{Field: "policyDefault", Value: "role:readonly", Line: 2},
		{Field: "matchMode", Value: "regex", Line: 3},
	}
	if got := c.FileRBAC().Settings; !reflect.DeepEqual(got, want) {
		t.Errorf("Settings =\n%+v\nwant\n%+v", got, want)
	}
}

// Without a file, or through Parse, nothing is set by a file.
func TestNoFileSetsNoRBAC(t *testing.T) {
	c, err := config.Load(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.File != nil || len(c.FileRBAC().Settings) != 0 {
		t.Errorf("Load without a file: File %+v, FileRBAC %+v", c.File, c.FileRBAC())
	}
	c, err = config.Parse([]byte("rbac:\n  matchMode: regex\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c.File != nil {
		t.Errorf("Parse set File %+v", c.File)
	}
}
