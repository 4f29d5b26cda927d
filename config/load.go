package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"strings"

	"github.com/spf13/pflag"
	"go.yaml.in/yaml/v3"
)

// Environment variable and flag naming the config file.
const (
	EnvConfig  = "GATEHOUSE_CONFIG"
	FlagConfig = "config"
)

// override is a setting that the environment and flags can set. One table
// drives AddFlags, the environment and the flag layer so the three cannot
// drift apart.
type override struct {
	setting string // YAML key path, as in SettingError
	env     string
	flag    string // "" for no flag
	usage   string
	str     func(*Config) *string
	dur     func(*Config) *Duration
}

var overrides = []override{
	{setting: "instanceName", env: "GATEHOUSE_INSTANCE_NAME", flag: "instance-name",
		usage: "instance name that prefixes every token",
		str:   func(c *Config) *string { return &c.InstanceName }},
	{setting: "listen", env: "GATEHOUSE_LISTEN", flag: "listen",
		usage: "API and dashboard address (host:port)",
		str:   func(c *Config) *string { return &c.Listen }},
	{setting: "metricsListen", env: "GATEHOUSE_METRICS_LISTEN", flag: "metrics-listen",
		usage: "separate address for /metrics (host:port); empty serves /metrics on --listen, authenticated",
		str:   func(c *Config) *string { return &c.MetricsListen }},
	{setting: "dataDir", env: "GATEHOUSE_DATA_DIR", flag: "data-dir",
		usage: "directory for the embedded database and the initial admin password",
		str:   func(c *Config) *string { return &c.DataDir }},
	{setting: "database.url", env: "GATEHOUSE_DATABASE_URL", flag: "database-url",
		usage: "PostgreSQL URL (postgres://user@host:port/db?sslmode=...) for replicas sharing one database; empty uses the embedded SQLite database in --data-dir",
		str:   func(c *Config) *string { return &c.Database.URL }},
	{setting: "cluster.stalenessBound", env: "GATEHOUSE_STALENESS_BOUND", flag: "staleness-bound",
		usage: "how long a replica may go without confirming it has every change before it refuses tokens (e.g. 1s)",
		dur:   func(c *Config) *Duration { return &c.Cluster.StalenessBound }},
	{setting: "reaperInterval", env: "GATEHOUSE_REAPER_INTERVAL", flag: "reaper-interval",
		usage: "how often expired tokens are removed (e.g. 30s, 1m)",
		dur:   func(c *Config) *Duration { return &c.ReaperInterval }},
	{setting: "shutdownDrain", env: "GATEHOUSE_SHUTDOWN_DRAIN", flag: "shutdown-drain",
		usage: "how long to keep serving after SIGTERM with /readyz answering 503, before in-flight requests finish and the server exits (e.g. 5s; 0 exits at once)",
		dur:   func(c *Config) *Duration { return &c.ShutdownDrain }},
	{setting: "tokens.maxLifetime", env: "GATEHOUSE_TOKEN_MAX_LIFETIME", flag: "token-max-lifetime",
		usage: "longest lifetime a token may be given (e.g. 12h, 30d)",
		dur:   func(c *Config) *Duration { return &c.Tokens.MaxLifetime }},
	{setting: "tls.cert", env: "GATEHOUSE_TLS_CERT", flag: "tls-cert",
		usage: "TLS certificate file (PEM); with --tls-key serves HTTPS",
		str:   func(c *Config) *string { return &c.TLS.Cert }},
	{setting: "tls.key", env: "GATEHOUSE_TLS_KEY", flag: "tls-key",
		usage: "TLS private key file (PEM); with --tls-cert serves HTTPS",
		str:   func(c *Config) *string { return &c.TLS.Key }},
	{setting: "sso.oidc.clientSecret", env: EnvOIDCClientSecret,
		usage: "OIDC client secret (no flag: it would show in the process list)",
		str:   func(c *Config) *string { return (*string)(&c.SSO.OIDC.ClientSecret) }},
}

func (o override) set(c *Config, v string) error {
	if o.dur != nil {
		return o.dur(c).Set(v)
	}
	*o.str(c) = v
	return nil
}

// AddFlags registers the server's flags on fs, with the defaults shown in
// --help.
func AddFlags(fs *pflag.FlagSet) {
	def := Default()
	fs.String(FlagConfig, "", "YAML config file (env "+EnvConfig+")")
	for _, o := range overrides {
		if o.flag == "" {
			continue
		}
		usage := o.usage + " (env " + o.env + ")"
		if o.dur != nil {
			v := *o.dur(&def)
			fs.Var(&v, o.flag, usage)
		} else {
			fs.String(o.flag, *o.str(&def), usage)
		}
	}
}

// Load builds the server's configuration: defaults, then the YAML file named
// by --config or GATEHOUSE_CONFIG, then GATEHOUSE_* variables from getenv,
// then the flags in fs that the user set; then Validate.
//
// fs may be nil (no flags) and getenv may be nil (no environment); pass
// os.Getenv in production. A file that cannot be read or decoded is returned
// at once; otherwise bad variables and every validation problem are reported
// together, each as a *SettingError naming the variable or flag it came from.
func Load(fs *pflag.FlagSet, getenv func(string) string) (Config, error) {
	if getenv == nil {
		getenv = func(string) string { return "" }
	}
	c := Default()

	path := getenv(EnvConfig)
	if f := lookupChanged(fs, FlagConfig); f != nil {
		path = f.Value.String()
	}
	if path != "" {
		data, err := os.ReadFile(path)
		if err != nil {
			return Config{}, fmt.Errorf("config file: %w", err)
		}
		if err := decode(&c, data); err != nil {
			return Config{}, fmt.Errorf("config file %s: %w", path, err)
		}
		if c.File, err = readFile(path, data); err != nil {
			return Config{}, fmt.Errorf("config file %s: %w", path, err)
		}
	}

	// A flag overrides its variable entirely, so a bad variable that a flag
	// replaces is not a problem: envErrs is keyed by setting for that.
	source := map[string]string{} // setting -> variable or flag that set it
	envErrs := map[string]error{}
	for _, o := range overrides {
		v := getenv(o.env)
		if v == "" {
			continue
		}
		source[o.setting] = o.env
		if err := o.set(&c, v); err != nil {
			envErrs[o.setting] = &SettingError{Setting: o.setting, Source: o.env, Problem: err.Error()}
		}
	}
	var errs []error
	for _, o := range overrides {
		f := lookupChanged(fs, o.flag)
		if f == nil {
			continue
		}
		source[o.setting] = "--" + o.flag
		delete(envErrs, o.setting)
		if err := o.set(&c, f.Value.String()); err != nil {
			errs = append(errs, &SettingError{Setting: o.setting, Source: "--" + o.flag, Problem: err.Error()})
		}
	}
	for _, o := range overrides { // in table order, for a stable report
		if err, ok := envErrs[o.setting]; ok {
			errs = append(errs, err)
		}
	}

	if err := c.SSO.OIDC.readSecretFile(); err != nil {
		errs = append(errs, err)
	}
	for _, err := range unjoin(c.Validate()) {
		var se *SettingError
		if errors.As(err, &se) && se.Source == "" {
			se.Source = source[se.Setting]
		}
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return Config{}, errors.Join(errs...)
	}
	return c, nil
}

func lookupChanged(fs *pflag.FlagSet, name string) *pflag.Flag {
	if fs == nil || name == "" {
		return nil
	}
	if f := fs.Lookup(name); f != nil && f.Changed {
		return f
	}
	return nil
}

// unjoin returns the errors joined in err (nil for nil).
func unjoin(err error) []error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

// Parse decodes a YAML config over the defaults and validates it. Unknown
// keys are an error naming the key, so a misspelt setting cannot be silently
// ignored. Load uses the same decoding but validates only after the
// environment and flags are applied.
func Parse(data []byte) (Config, error) {
	c := Default()
	if err := decode(&c, data); err != nil {
		return Config{}, err
	}
	if err := c.Validate(); err != nil {
		return Config{}, err
	}
	return c, nil
}

// decode applies the YAML document in data onto c. Keys that are absent or
// null keep their current value. c is left unchanged on error.
func decode(c *Config, data []byte) error {
	// First pass: a node tree, to name every unknown key with its full path.
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return err
	}
	if doc.Kind == 0 {
		return nil // empty file or only comments
	}
	if err := checkNodes(&doc, reflect.TypeFor[Config]()); err != nil {
		return err
	}

	// Second pass: the strict decoder, which also catches anything the
	// first pass cannot see (keys reached through aliases and merges).
	next := *c
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&next); err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return errors.New("want one YAML document, found more")
	}
	*c = next
	return nil
}

var (
	unmarshalerType = reflect.TypeFor[yaml.Unmarshaler]()
	durationType    = reflect.TypeFor[Duration]()
)

// checkNodes reports, all at once and each with its line and dotted setting
// name, every mapping key in n that has no field in t and every malformed
// duration. The decoder alone would stop at the first bad duration and name
// Go types rather than settings. It follows only plain nested mappings;
// aliases and merge keys are left to the strict decoder.
func checkNodes(n *yaml.Node, t reflect.Type) error {
	var problems []string
	var walk func(n *yaml.Node, t reflect.Type, prefix string)
	walk = func(n *yaml.Node, t reflect.Type, prefix string) {
		if n.Kind == yaml.DocumentNode && len(n.Content) == 1 {
			n = n.Content[0]
		}
		if n.Kind != yaml.MappingNode || t.Kind() != reflect.Struct || reflect.PointerTo(t).Implements(unmarshalerType) {
			return
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if k.Kind != yaml.ScalarNode || k.ShortTag() == "!!merge" {
				continue
			}
			f, ok := fieldByKey(t, k.Value)
			if !ok {
				problems = append(problems, fmt.Sprintf("line %d: unknown setting %q", k.Line, prefix+k.Value))
				continue
			}
			if f.Type == durationType && v.Kind == yaml.ScalarNode && v.ShortTag() != "!!null" {
				if _, err := ParseDuration(v.Value); err != nil {
					problems = append(problems, fmt.Sprintf("line %d: %s: %v", v.Line, prefix+k.Value, err))
				}
				continue
			}
			walk(v, f.Type, prefix+k.Value+".")
		}
	}
	walk(n, t, "")
	if len(problems) > 0 {
		return &yaml.TypeError{Errors: problems}
	}
	return nil
}

// fieldByKey finds the field of struct t whose yaml tag names key.
func fieldByKey(t reflect.Type, key string) (reflect.StructField, bool) {
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == key && name != "-" && f.IsExported() {
			return f, true
		}
	}
	return reflect.StructField{}, false
}
