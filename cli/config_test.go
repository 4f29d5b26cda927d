package cli

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestParseConfig(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    config
		wantErr string
	}{
		{name: "empty", in: "", want: config{}},
		{
			name: "full",
			in: `current-context: local
contexts:
  - name: local
    server: http://127.0.0.1:8080
    user: admin
    token: gatehouse:abc
  - name: prod
    server: gatehouse.example.com:443
    insecure: true
    plaintext: false
`,
			want: config{CurrentContext: "local", Contexts: []configContext{
				{Name: "local", Server: "http://127.0.0.1:8080", User: "admin", Token: "gatehouse:abc"},
				{Name: "prod", Server: "gatehouse.example.com:443", transport: transport{Insecure: true}},
			}},
		},
		{name: "not yaml", in: "contexts: [", wantErr: "yaml"},
		{name: "nameless context", in: "contexts:\n- server: x\n", wantErr: "context 1 has no name"},
		{name: "duplicate", in: "contexts:\n- {name: a, server: x}\n- {name: a, server: y}\n", wantErr: `context "a" appears twice`},
		{name: "serverless", in: "contexts:\n- {name: a}\n", wantErr: `context "a" has no server`},
		{name: "dangling current", in: "current-context: b\ncontexts:\n- {name: a, server: x}\n", wantErr: `current-context "b" is not among`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseConfig([]byte(tt.in))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("parseConfig error %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, tt.want) {
				t.Errorf("parseConfig = %+v, %v; want %+v", got, err, tt.want)
			}
		})
	}
}

func FuzzParseConfig(f *testing.F) {
	f.Add("current-context: a\ncontexts:\n- {name: a, server: x, token: t}\n")
	f.Add("contexts: [")
	f.Add("current-context: b\n")
	f.Fuzz(func(t *testing.T, in string) {
		c, err := parseConfig([]byte(in))
		if err != nil {
			return
		}
		// A valid config survives a write and a read unchanged.
		dir := t.TempDir()
		path := filepath.Join(dir, "config")
		if err := saveConfig(path, c); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		again, err := parseConfig(b)
		if err != nil {
			t.Fatalf("saved config does not parse: %v\n%s", err, b)
		}
		if len(c.Contexts) == 0 {
			c.Contexts = nil
		}
		if len(again.Contexts) == 0 {
			again.Contexts = nil
		}
		if !reflect.DeepEqual(c, again) {
			t.Fatalf("round trip changed the config:\n%+v\n%+v", c, again)
		}
	})
}

func TestConfigPath(t *testing.T) {
	tests := []struct {
		name string
		flag string
		env  map[string]string
		want string
	}{
		{name: "flag wins", flag: "/etc/gh.yaml", env: map[string]string{"GATEHOUSE_CONFIG_DIR": "/c", "HOME": "/h"}, want: "/etc/gh.yaml"},
		{name: "config dir", env: map[string]string{"GATEHOUSE_CONFIG_DIR": "/c", "XDG_CONFIG_HOME": "/x", "HOME": "/h"}, want: "/c/config"},
		{name: "xdg", env: map[string]string{"XDG_CONFIG_HOME": "/x", "HOME": "/h"}, want: "/x/gatehouse/config"},
		{name: "home", env: map[string]string{"HOME": "/h"}, want: "/h/.config/gatehouse/config"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := newApp(Env{Getenv: func(k string) string { return tt.env[k] }})
			a.flags.config = tt.flag
			got, err := a.configPath()
			if err != nil || got != tt.want {
				t.Errorf("configPath = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
	a := newApp(Env{Getenv: func(string) string { return "" }})
	if _, err := a.configPath(); err == nil {
		t.Error("configPath without any hint succeeded")
	}
}

func TestSaveConfigReplacesAtomicallyWithMode0600(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a", "b", "config")
	for i, c := range []config{
		{CurrentContext: "x", Contexts: []configContext{{Name: "x", Server: "s", Token: "t1"}}},
		{},
	} {
		if err := saveConfig(path, c); err != nil {
			t.Fatal(err)
		}
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("write %d: mode %04o, want 0600", i, fi.Mode().Perm())
		}
	}
	entries, err := os.ReadDir(filepath.Dir(path))
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 {
		t.Errorf("config dir holds %d entries, want only the config (no temp files left)", len(entries))
	}
}
