package config_test

import (
	"bytes"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/gatehouse/gatehouse/config"
)

// settingsOf returns the settings named by the *SettingErrors joined in err.
func settingsOf(t *testing.T, err error) []string {
	t.Helper()
	if err == nil {
		return nil
	}
	j, ok := err.(interface{ Unwrap() []error })
	if !ok {
		t.Fatalf("error %q is not a joined error", err)
	}
	var out []string
	for _, e := range j.Unwrap() {
		var se *config.SettingError
		if !errors.As(e, &se) {
			t.Fatalf("problem %q is not a *SettingError", e)
		}
		out = append(out, se.Setting)
	}
	slices.Sort(out)
	return out
}

// tempFile writes content to a new file in a test directory.
func tempFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestDefault(t *testing.T) {
	c := config.Default()
	if err := c.Validate(); err != nil {
		t.Fatalf("Default().Validate() = %v", err)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"instanceName", c.InstanceName, "gatehouse"},
		{"listen", c.Listen, "127.0.0.1:8080"},
		{"metricsListen", c.MetricsListen, ""},
		{"dataDir", c.DataDir, "./gatehouse-data"},
		{"tls", c.TLS, config.TLS{}},
		{"reaperInterval", c.ReaperInterval.D(), time.Minute},
		{"shutdownDrain", c.ShutdownDrain.D(), 5 * time.Second},
		{"tokens.defaultLifetime", c.Tokens.DefaultLifetime.D(), 12 * time.Hour},
		{"tokens.maxLifetime", c.Tokens.MaxLifetime.D(), 720 * time.Hour},
		{"tokens.allowNonExpiring", c.Tokens.AllowNonExpiring, false},
		{"rbac.matchMode", c.RBAC.MatchMode, "glob"},
		{"rbac.policyDefault", c.RBAC.PolicyDefault, ""},
		{"audit.retention", c.Audit.Retention.D(), 2160 * time.Hour},
		{"login.maxFailures", c.Login.MaxFailures, 5},
		{"login.window", c.Login.Window.D(), 5 * time.Minute},
		{"login.maxConcurrent", c.Login.MaxConcurrent, max(1, runtime.GOMAXPROCS(0)/2)},
		{"forwardAuth.headers", c.ForwardAuth.Headers, config.HeadersOriginal},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("default %s = %v, want %v", c.name, c.got, c.want)
		}
	}
}

func TestParseFull(t *testing.T) {
	cert := tempFile(t, "cert.pem", "cert")
	key := tempFile(t, "key.pem", "key")
	in := `
instanceName: prod-eu
listen: 0.0.0.0:443
metricsListen: 127.0.0.1:9090
dataDir: /var/lib/gatehouse
database:
  url: postgres://gatehouse@db.internal:5432/gatehouse?sslmode=verify-full
cluster:
  stalenessBound: 500ms
tls:
  cert: ` + cert + `
  key: ` + key + `
reaperInterval: 30s
shutdownDrain: 0s
tokens:
  defaultLifetime: 1d
  maxLifetime: 7d
  allowNonExpiring: true
rbac:
  policyCSV: |
    p, role:dev, applications, get, */*, allow
    g, alice, role:dev
  policyDefault: role:readonly
  matchMode: regex
  disableBuiltin: true
audit:
  retention: 365d
login:
  maxFailures: 3
  window: 10m
  maxConcurrent: 8
forwardAuth:
  headers: forwarded
  routes:
    - match: "GET /grafana/"
      resource: applications
      action: get
      object: monitoring/grafana
`
	got, err := config.Parse([]byte(in))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	want := config.Config{
		InstanceName:   "prod-eu",
		Listen:         "0.0.0.0:443",
		MetricsListen:  "127.0.0.1:9090",
		DataDir:        "/var/lib/gatehouse",
		Database:       config.Database{URL: "postgres://gatehouse@db.internal:5432/gatehouse?sslmode=verify-full"},
		Cluster:        config.Cluster{StalenessBound: config.Duration(500 * time.Millisecond)},
		TLS:            config.TLS{Cert: cert, Key: key},
		ReaperInterval: config.Duration(30 * time.Second),
		ShutdownDrain:  0,
		Tokens: config.Tokens{
			DefaultLifetime:  config.Duration(24 * time.Hour),
			MaxLifetime:      config.Duration(7 * 24 * time.Hour),
			AllowNonExpiring: true,
		},
		RBAC: config.RBAC{
			PolicyCSV:      "p, role:dev, applications, get, */*, allow\ng, alice, role:dev\n",
			PolicyDefault:  "role:readonly",
			MatchMode:      "regex",
			DisableBuiltin: true,
		},
		Audit: config.Audit{Retention: config.Duration(365 * 24 * time.Hour)},
		Login: config.Login{MaxFailures: 3, Window: config.Duration(10 * time.Minute), MaxConcurrent: 8},
		ForwardAuth: config.ForwardAuth{Headers: config.HeadersForwarded, Routes: []config.Route{
			{Match: "GET /grafana/", Resource: "applications", Action: "get", Object: "monitoring/grafana"},
		}},
		Notifications: config.Default().Notifications,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Parse =\n%+v\nwant\n%+v", got, want)
	}
	if !got.TLS.Enabled() {
		t.Error("TLS.Enabled() = false with cert and key")
	}
}

func TestParseKeepsDefaults(t *testing.T) {
	tests := []struct {
		name string
		in   string
	}{
		{"empty", ""},
		{"comments only", "# nothing here\n"},
		{"null document", "~\n"},
		{"empty mapping", "{}\n"},
		{"null sections", "tokens:\nrbac:\nlogin:\naudit:\ntls:\n"},
		{"null scalars", "listen:\nreaperInterval: ~\ninstanceName: null\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := config.Parse([]byte(tt.in))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if want := config.Default(); !reflect.DeepEqual(got, want) {
				t.Errorf("Parse = %+v, want the defaults %+v", got, want)
			}
		})
	}
	got, err := config.Parse([]byte("tokens:\n  maxLifetime: 60d\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got.Tokens.DefaultLifetime != config.Default().Tokens.DefaultLifetime {
		t.Errorf("setting tokens.maxLifetime changed tokens.defaultLifetime to %v", got.Tokens.DefaultLifetime)
	}
}

func TestParseUnknownKeys(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []string
	}{
		{"top level", "listne: :80\n", []string{`line 1: unknown setting "listne"`}},
		{"nested", "tokens:\n  maxLifetme: 1d\n", []string{`line 2: unknown setting "tokens.maxLifetme"`}},
		{"go field name", "Listen: :80\n", []string{`unknown setting "Listen"`}},
		{"every one at once", "foo: 1\nlogin:\n  bar: 2\ntls:\n  cert: x\n  baz: 3\n",
			[]string{`"foo"`, `"login.bar"`, `"tls.baz"`}},
		{"anchored unknown key", "base: &b {listen: ':1'}\n", []string{`"base"`}},
		{"through a merge key", "tokens:\n  <<: {bogus: 1d}\n", []string{"bogus"}},
		{"through an alias", "tls: &t {cert: a, nope: b}\n", []string{`"tls.nope"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := config.Parse([]byte(tt.in))
			if err == nil {
				t.Fatalf("Parse(%q) succeeded, want unknown-key error", tt.in)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name, in string
		want     []string
	}{
		{"duration without unit", "reaperInterval: 60\n", []string{`line 1: reaperInterval: invalid duration "60": missing unit`}},
		{"bad duration", "tokens:\n  maxLifetime: forever\n", []string{`line 2: tokens.maxLifetime: invalid duration "forever"`}},
		{"every problem at once", "reaperInterval: 1x\naudit:\n  retention: 2y\nnope: 1\n",
			[]string{`line 1: reaperInterval: invalid duration "1x"`, `line 3: audit.retention: invalid duration "2y"`, `line 4: unknown setting "nope"`}},
		{"duration as a sequence", "login:\n  window: [5m]\n", []string{"line 2"}},
		{"sequence for string", "listen: [a, b]\n", []string{"line 1"}},
		{"string for int", "login:\n  maxFailures: many\n", []string{"line 2"}},
		{"not a mapping", "just a string\n", []string{"cannot unmarshal"}},
		{"two documents", "listen: ':1'\n---\nlisten: ':2'\n", []string{"one YAML document"}},
		{"syntax", "listen: [\n", []string{"yaml"}},
		{"duplicate key", "listen: ':1'\nlisten: ':2'\n", []string{"already defined"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := config.Parse([]byte(tt.in))
			if err == nil {
				t.Fatalf("Parse(%q) succeeded", tt.in)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error = %q, want it to contain %q", err, w)
				}
			}
		})
	}
}

func TestValidateEachSetting(t *testing.T) {
	dir := t.TempDir()
	cert := tempFile(t, "cert.pem", "x")
	tests := []struct {
		name    string
		mutate  func(*config.Config)
		setting string // "" means valid
	}{
		{"defaults", func(*config.Config) {}, ""},
		{"instance uppercase", func(c *config.Config) { c.InstanceName = "Gatehouse" }, "instanceName"},
		{"instance empty", func(c *config.Config) { c.InstanceName = "" }, "instanceName"},
		{"instance 64 chars", func(c *config.Config) { c.InstanceName = strings.Repeat("a", 64) }, "instanceName"},
		{"listen empty", func(c *config.Config) { c.Listen = "" }, "listen"},
		{"listen no port", func(c *config.Config) { c.Listen = "localhost" }, "listen"},
		{"listen port range", func(c *config.Config) { c.Listen = ":65536" }, "listen"},
		{"listen named port", func(c *config.Config) { c.Listen = ":http" }, "listen"},
		{"listen any port", func(c *config.Config) { c.Listen = "127.0.0.1:0" }, ""},
		{"listen ipv6", func(c *config.Config) { c.Listen = "[::1]:8080" }, ""},
		{"listen all interfaces", func(c *config.Config) { c.Listen = ":8080" }, ""},
		{"metrics bad", func(c *config.Config) { c.MetricsListen = "9090" }, "metricsListen"},
		{"metrics same as listen", func(c *config.Config) { c.MetricsListen = c.Listen }, "metricsListen"},
		{"metrics both port 0", func(c *config.Config) { c.Listen, c.MetricsListen = "127.0.0.1:0", "127.0.0.1:0" }, ""},
		{"metrics ok", func(c *config.Config) { c.MetricsListen = "127.0.0.1:9090" }, ""},
		{"data dir empty", func(c *config.Config) { c.DataDir = " " }, "dataDir"},
		{"tls cert only", func(c *config.Config) { c.TLS.Cert = cert }, "tls.key"},
		{"tls key only", func(c *config.Config) { c.TLS.Key = cert }, "tls.cert"},
		{"tls both", func(c *config.Config) { c.TLS = config.TLS{Cert: cert, Key: cert} }, ""},
		{"reaper zero", func(c *config.Config) { c.ReaperInterval = 0 }, "reaperInterval"},
		{"reaper negative", func(c *config.Config) { c.ReaperInterval = -1 }, "reaperInterval"},
		{"max lifetime zero", func(c *config.Config) { c.Tokens.MaxLifetime = 0 }, "tokens.maxLifetime"},
		{"default lifetime zero", func(c *config.Config) { c.Tokens.DefaultLifetime = 0 }, "tokens.defaultLifetime"},
		{"default over max", func(c *config.Config) { c.Tokens.DefaultLifetime = c.Tokens.MaxLifetime + 1 }, "tokens.defaultLifetime"},
		{"default equals max", func(c *config.Config) { c.Tokens.DefaultLifetime = c.Tokens.MaxLifetime }, ""},
		{"match mode", func(c *config.Config) { c.RBAC.MatchMode = "Glob" }, "rbac.matchMode"},
		{"match mode empty means glob", func(c *config.Config) { c.RBAC.MatchMode = "" }, ""},
		{"match mode regex", func(c *config.Config) { c.RBAC.MatchMode = "regex" }, ""},
		{"policy default comma", func(c *config.Config) { c.RBAC.PolicyDefault = "role:a, role:b" }, "rbac.policyDefault"},
		{"policy default newline", func(c *config.Config) { c.RBAC.PolicyDefault = "role:a\np, x" }, "rbac.policyDefault"},
		{"policy default ok", func(c *config.Config) { c.RBAC.PolicyDefault = "role:readonly" }, ""},
		{"retention zero", func(c *config.Config) { c.Audit.Retention = 0 }, "audit.retention"},
		{"max failures zero", func(c *config.Config) { c.Login.MaxFailures = 0 }, "login.maxFailures"},
		{"window zero", func(c *config.Config) { c.Login.Window = 0 }, "login.window"},
		{"max concurrent zero", func(c *config.Config) { c.Login.MaxConcurrent = 0 }, "login.maxConcurrent"},
		{"data dir need not exist", func(c *config.Config) { c.DataDir = filepath.Join(dir, "new") }, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := config.Default()
			tt.mutate(&c)
			err := c.Validate()
			got := settingsOf(t, err)
			var want []string
			if tt.setting != "" {
				want = []string{tt.setting}
			}
			if !slices.Equal(got, want) {
				t.Fatalf("Validate() problems in %v (%v), want %v", got, err, want)
			}
			if err != nil && !strings.HasPrefix(err.Error(), tt.setting+": ") {
				t.Errorf("error %q does not start with the setting name", err)
			}
		})
	}
}

func TestValidateReportsEveryProblem(t *testing.T) {
	dir := t.TempDir()
	c := config.Config{
		InstanceName:   "Bad_Name",
		Listen:         "nope",
		MetricsListen:  "also nope",
		DataDir:        "",
		TLS:            config.TLS{Cert: filepath.Join(dir, "missing.pem")},
		ReaperInterval: 0,
		Tokens:         config.Tokens{DefaultLifetime: config.Duration(48 * time.Hour), MaxLifetime: config.Duration(24 * time.Hour)},
		RBAC:           config.RBAC{MatchMode: "fuzzy", PolicyDefault: "a,b"},
		Audit:          config.Audit{Retention: -1},
		Login:          config.Login{MaxFailures: 0, Window: 0, MaxConcurrent: -1},
		Database:       config.Database{URL: "mysql://u:secret-pw@h/db"},
		Cluster:        config.Cluster{StalenessBound: config.Duration(10 * time.Millisecond)},
		ShutdownDrain:  -1,
	}
	err := c.Validate()
	got := settingsOf(t, err)
	want := []string{
		"audit.retention", "cluster.stalenessBound", "dataDir", "database.url", "instanceName", "listen",
		"login.maxConcurrent", "login.maxFailures", "login.window", "metricsListen",
		"rbac.matchMode", "rbac.policyDefault", "reaperInterval", "shutdownDrain",
		"tls.cert", "tls.key", "tokens.defaultLifetime",
	}
	if !slices.Equal(got, want) {
		t.Errorf("problems in\n%v\nwant\n%v\nerror:\n%v", got, want, err)
	}
	if strings.Contains(err.Error(), "secret-pw") {
		t.Errorf("error %q repeats the database URL's password", err)
	}
	if !strings.Contains(err.Error(), "missing.pem") || !strings.Contains(err.Error(), "does not exist") {
		t.Errorf("error %q does not say which TLS file is missing", err)
	}
}

func TestValidateTLSFiles(t *testing.T) {
	dir := t.TempDir()
	file := tempFile(t, "tls.pem", "x")
	tests := []struct {
		name      string
		cert, key string
		want      []string
	}{
		{"neither", "", "", nil},
		{"both exist", file, file, nil},
		{"cert only", file, "", []string{"tls.key"}},
		{"key only", "", file, []string{"tls.cert"}},
		{"cert missing", filepath.Join(dir, "nope"), file, []string{"tls.cert"}},
		{"key missing", file, filepath.Join(dir, "nope"), []string{"tls.key"}},
		{"both missing", filepath.Join(dir, "a"), filepath.Join(dir, "b"), []string{"tls.cert", "tls.key"}},
		{"directory", dir, file, []string{"tls.cert"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := config.Default()
			c.TLS = config.TLS{Cert: tt.cert, Key: tt.key}
			err := c.Validate()
			if got := settingsOf(t, err); !slices.Equal(got, tt.want) {
				t.Errorf("problems in %v (%v), want %v", got, err, tt.want)
			}
		})
	}
}

func TestYAMLRoundTrip(t *testing.T) {
	c := config.Default()
	c.Tokens.MaxLifetime = config.Duration(36 * time.Hour)
	c.RBAC.PolicyCSV = "p, role:x, applications, get, */*, allow\n"
	out, err := yaml.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	got, err := config.Parse(out)
	if err != nil {
		t.Fatalf("Parse(Marshal(c)): %v\n%s", err, out)
	}
	if !reflect.DeepEqual(got, c) {
		t.Errorf("round trip = %+v, want %+v", got, c)
	}
	if !bytes.Contains(out, []byte("retention: 90d")) {
		t.Errorf("marshalled config does not use day durations:\n%s", out)
	}
}

func TestLogValueSummarizesThePolicy(t *testing.T) {
	c := config.Default()
	c.RBAC.PolicyCSV = "p, role:x, applications, get, */*, allow\n\ng, alice, role:x\n"
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("starting", "config", c)
	out := buf.String()
	if !strings.Contains(out, `"rbac.policyLines":2`) || strings.Contains(out, "alice") {
		t.Errorf("log line %s, want the policy summarized as 2 lines", out)
	}
}
