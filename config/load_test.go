package config_test

import (
	"errors"
	"io/fs"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"

	"github.com/gatehouse/gatehouse/config"
)

// env is a fake environment for Load.
type env map[string]string

func (e env) get(k string) string { return e[k] }

// flags returns a flag set with AddFlags, parsed from args.
func flags(t *testing.T, args ...string) *pflag.FlagSet {
	t.Helper()
	fs := pflag.NewFlagSet("server", pflag.ContinueOnError)
	config.AddFlags(fs)
	if err := fs.Parse(args); err != nil {
		t.Fatalf("parsing flags %v: %v", args, err)
	}
	return fs
}

func TestLoadPrecedence(t *testing.T) {
	file := tempFile(t, "gatehouse.yaml", `
listen: 127.0.0.1:1001
instanceName: from-file
reaperInterval: 2m
tokens:
  maxLifetime: 10d
  defaultLifetime: 1h
`)
	tests := []struct {
		name string
		args []string
		env  env
		// want
		listen, instance string
		reaper, maxLife  time.Duration
	}{
		{
			name:   "defaults only",
			listen: "127.0.0.1:8080", instance: "gatehouse", reaper: time.Minute, maxLife: 720 * time.Hour,
		},
		{
			name:   "file over defaults",
			env:    env{"GATEHOUSE_CONFIG": file},
			listen: "127.0.0.1:1001", instance: "from-file", reaper: 2 * time.Minute, maxLife: 240 * time.Hour,
		},
		{
			name: "env over file",
			env: env{
				"GATEHOUSE_CONFIG":             file,
				"GATEHOUSE_LISTEN":             "127.0.0.1:2002",
				"GATEHOUSE_REAPER_INTERVAL":    "3m",
				"GATEHOUSE_TOKEN_MAX_LIFETIME": "20d",
			},
			listen: "127.0.0.1:2002", instance: "from-file", reaper: 3 * time.Minute, maxLife: 480 * time.Hour,
		},
		{
			name: "flags over env",
			args: []string{"--listen", "127.0.0.1:3003", "--reaper-interval=4m", "--token-max-lifetime", "1d12h"},
			env: env{
				"GATEHOUSE_CONFIG":             file,
				"GATEHOUSE_LISTEN":             "127.0.0.1:2002",
				"GATEHOUSE_INSTANCE_NAME":      "from-env",
				"GATEHOUSE_REAPER_INTERVAL":    "3m",
				"GATEHOUSE_TOKEN_MAX_LIFETIME": "20d",
			},
			listen: "127.0.0.1:3003", instance: "from-env", reaper: 4 * time.Minute, maxLife: 36 * time.Hour,
		},
		{
			name:   "flag set to the default value still wins",
			args:   []string{"--listen=127.0.0.1:8080", "--instance-name=gatehouse"},
			env:    env{"GATEHOUSE_CONFIG": file, "GATEHOUSE_LISTEN": "127.0.0.1:2002"},
			listen: "127.0.0.1:8080", instance: "gatehouse", reaper: 2 * time.Minute, maxLife: 240 * time.Hour,
		},
		{
			name:   "empty env var is unset",
			env:    env{"GATEHOUSE_CONFIG": file, "GATEHOUSE_LISTEN": "", "GATEHOUSE_INSTANCE_NAME": ""},
			listen: "127.0.0.1:1001", instance: "from-file", reaper: 2 * time.Minute, maxLife: 240 * time.Hour,
		},
		{
			name:   "--config flag",
			args:   []string{"--config", file},
			listen: "127.0.0.1:1001", instance: "from-file", reaper: 2 * time.Minute, maxLife: 240 * time.Hour,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := config.Load(flags(t, tt.args...), tt.env.get)
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if c.Listen != tt.listen {
				t.Errorf("listen = %q, want %q", c.Listen, tt.listen)
			}
			if c.InstanceName != tt.instance {
				t.Errorf("instanceName = %q, want %q", c.InstanceName, tt.instance)
			}
			if got := c.ReaperInterval.D(); got != tt.reaper {
				t.Errorf("reaperInterval = %v, want %v", got, tt.reaper)
			}
			if got := c.Tokens.MaxLifetime.D(); got != tt.maxLife {
				t.Errorf("tokens.maxLifetime = %v, want %v", got, tt.maxLife)
			}
		})
	}
}

func TestLoadEverySetting(t *testing.T) {
	cert := tempFile(t, "cert.pem", "c")
	key := tempFile(t, "key.pem", "k")
	e := env{
		"GATEHOUSE_LISTEN":             "127.0.0.1:1",
		"GATEHOUSE_METRICS_LISTEN":     "127.0.0.1:2",
		"GATEHOUSE_DATA_DIR":           "/env/data",
		"GATEHOUSE_INSTANCE_NAME":      "env",
		"GATEHOUSE_REAPER_INTERVAL":    "5s",
		"GATEHOUSE_SHUTDOWN_DRAIN":     "0",
		"GATEHOUSE_TOKEN_MAX_LIFETIME": "2d",
		"GATEHOUSE_TLS_CERT":           cert,
		"GATEHOUSE_TLS_KEY":            key,
	}
	c, err := config.Load(nil, e.get)
	if err != nil {
		t.Fatalf("Load(env): %v", err)
	}
	want := config.Default()
	want.Listen, want.MetricsListen, want.DataDir = "127.0.0.1:1", "127.0.0.1:2", "/env/data"
	want.InstanceName = "env"
	want.ReaperInterval = config.Duration(5 * time.Second)
	want.ShutdownDrain = 0
	want.Tokens.MaxLifetime = config.Duration(48 * time.Hour)
	want.TLS = config.TLS{Cert: cert, Key: key}
	if !reflect.DeepEqual(c, want) {
		t.Errorf("Load(env) =\n%+v\nwant\n%+v", c, want)
	}

	fs := flags(t,
		"--listen=127.0.0.1:3", "--metrics-listen=127.0.0.1:4", "--data-dir=/flag/data",
		"--instance-name=flag", "--reaper-interval=6s", "--token-max-lifetime=3d", "--shutdown-drain=1m",
		"--tls-cert="+key, "--tls-key="+cert,
	)
	c, err = config.Load(fs, e.get)
	if err != nil {
		t.Fatalf("Load(env, flags): %v", err)
	}
	want.Listen, want.MetricsListen, want.DataDir = "127.0.0.1:3", "127.0.0.1:4", "/flag/data"
	want.InstanceName = "flag"
	want.ReaperInterval = config.Duration(6 * time.Second)
	want.ShutdownDrain = config.Duration(time.Minute)
	want.Tokens.MaxLifetime = config.Duration(72 * time.Hour)
	want.TLS = config.TLS{Cert: key, Key: cert}
	if !reflect.DeepEqual(c, want) {
		t.Errorf("Load(env, flags) =\n%+v\nwant\n%+v", c, want)
	}
}

func TestLoadReportsEveryProblem(t *testing.T) {
	file := tempFile(t, "gatehouse.yaml", "login:\n  maxFailures: 0\n")
	e := env{
		"GATEHOUSE_CONFIG":          file,
		"GATEHOUSE_REAPER_INTERVAL": "soon",
		"GATEHOUSE_INSTANCE_NAME":   "Not_Valid",
	}
	fs := flags(t, "--listen", "nohostport", "--tls-cert", file)
	_, err := config.Load(fs, e.get)
	if err == nil {
		t.Fatal("Load succeeded, want errors")
	}
	msg := err.Error()
	wantParts := []string{
		`reaperInterval (from GATEHOUSE_REAPER_INTERVAL): invalid duration "soon"`,
		`instanceName (from GATEHOUSE_INSTANCE_NAME): "Not_Valid"`,
		`listen (from --listen): "nohostport"`,
		`tls.key: must be set when tls.cert is set`,
		`login.maxFailures: must be at least 1`,
	}
	for _, w := range wantParts {
		if !strings.Contains(msg, w) {
			t.Errorf("error does not contain %q:\n%s", w, msg)
		}
	}
	if got, want := len(settingsOf(t, err)), len(wantParts); got != want {
		t.Errorf("%d problems, want %d:\n%s", got, want, msg)
	}
}

func TestLoadFlagReplacesBadVariable(t *testing.T) {
	e := env{"GATEHOUSE_REAPER_INTERVAL": "soon", "GATEHOUSE_LISTEN": "bad"}
	c, err := config.Load(flags(t, "--reaper-interval=2m", "--listen=127.0.0.1:1"), e.get)
	if err != nil {
		t.Fatalf("Load: %v, want the flags to replace the bad variables", err)
	}
	if got, want := c.ReaperInterval.D(), 2*time.Minute; got != want {
		t.Errorf("reaperInterval = %v, want %v", got, want)
	}
	_, err = config.Load(flags(t), e.get)
	if got, want := settingsOf(t, err), []string{"listen", "reaperInterval"}; !slices.Equal(got, want) {
		t.Errorf("without flags, problems in %v (%v), want %v", got, err, want)
	}
}

func TestLoadFileErrors(t *testing.T) {
	missing := t.TempDir() + "/missing.yaml"
	bad := tempFile(t, "bad.yaml", "listen: ':1'\nlisen: ':2'\n")
	good := tempFile(t, "good.yaml", "listen: 127.0.0.1:1\n")

	_, err := config.Load(nil, env{"GATEHOUSE_CONFIG": missing}.get)
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Load(missing file) error = %v, want ErrNotExist", err)
	}
	_, err = config.Load(nil, env{"GATEHOUSE_CONFIG": bad}.get)
	if err == nil || !strings.Contains(err.Error(), `unknown setting "lisen"`) || !strings.Contains(err.Error(), bad) {
		t.Errorf("Load(bad file) error = %v, want the file and the unknown key named", err)
	}
	// --config beats GATEHOUSE_CONFIG: the broken file named by the
	// environment is never read.
	c, err := config.Load(flags(t, "--config", good), env{"GATEHOUSE_CONFIG": bad}.get)
	if err != nil {
		t.Fatalf("Load(--config good, env bad): %v", err)
	}
	if got, want := c.Listen, "127.0.0.1:1"; got != want {
		t.Errorf("listen = %q, want %q from the --config file", got, want)
	}
}

func TestLoadNilArguments(t *testing.T) {
	c, err := config.Load(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(c, config.Default()) {
		t.Errorf("Load(nil, nil) = %+v, want the defaults", c)
	}
	// Unrelated flag sets (no AddFlags) are fine too.
	other := pflag.NewFlagSet("x", pflag.ContinueOnError)
	other.String("listen", "", "")
	if _, err := config.Load(other, nil); err != nil {
		t.Errorf("Load(unchanged foreign flags): %v", err)
	}
}

func TestAddFlags(t *testing.T) {
	fs := pflag.NewFlagSet("server", pflag.ContinueOnError)
	config.AddFlags(fs)
	want := map[string]string{
		"config":             "",
		"listen":             "127.0.0.1:8080",
		"metrics-listen":     "",
		"data-dir":           "./gatehouse-data",
		"database-url":       "",
		"staleness-bound":    "1s",
		"instance-name":      "gatehouse",
		"reaper-interval":    "1m0s",
		"shutdown-drain":     "5s",
		"token-max-lifetime": "30d",
		"tls-cert":           "",
		"tls-key":            "",
	}
	var got []string
	fs.VisitAll(func(f *pflag.Flag) { got = append(got, f.Name) })
	slices.Sort(got)
	var names []string
	for n := range want {
		names = append(names, n)
	}
	slices.Sort(names)
	if !slices.Equal(got, names) {
		t.Errorf("flags = %v, want %v", got, names)
	}
	for name, def := range want {
		f := fs.Lookup(name)
		if f == nil {
			continue
		}
		if f.DefValue != def {
			t.Errorf("--%s default = %q, want %q", name, f.DefValue, def)
		}
	}
	usage := fs.FlagUsages()
	for _, w := range []string{
		`(default "127.0.0.1:8080")`, "(default 30d)", "(default 1m0s)",
		"GATEHOUSE_LISTEN", "GATEHOUSE_TOKEN_MAX_LIFETIME", "GATEHOUSE_CONFIG",
		"--token-max-lifetime duration",
	} {
		if !strings.Contains(usage, w) {
			t.Errorf("--help does not show %q:\n%s", w, usage)
		}
	}

	bad := pflag.NewFlagSet("server", pflag.ContinueOnError)
	bad.SetOutput(new(strings.Builder))
	config.AddFlags(bad)
	if err := bad.Parse([]string{"--reaper-interval", "often"}); err == nil || !strings.Contains(err.Error(), "invalid duration") {
		t.Errorf("parsing a bad duration flag: error = %v, want invalid duration", err)
	}
}
