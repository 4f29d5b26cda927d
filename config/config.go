package config

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/netip"
	"net/url"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse/service"
	"github.com/gatehouse/gatehouse/token"
)

// Config is the configuration of `gatehouse server`. The YAML keys are the
// setting names used in every error message.
type Config struct {
	// InstanceName prefixes every token ("<instance>:<body>") so people,
	// CLIs and secret scanners can tell which server issued it.
	InstanceName string `yaml:"instanceName"`
	// Listen is the API and dashboard address, host:port.
	Listen string `yaml:"listen"`
	// MetricsListen, when set, serves /metrics on a separate address (for a
	// scraper on a private network). Empty keeps /metrics on the main
	// listener, behind authentication.
	MetricsListen string `yaml:"metricsListen"`
	// DataDir holds the embedded database and the initial admin password.
	DataDir        string   `yaml:"dataDir"`
	Database       Database `yaml:"database"`
	Cluster        Cluster  `yaml:"cluster"`
	TLS            TLS      `yaml:"tls"`
	ReaperInterval Duration `yaml:"reaperInterval"`
	// ShutdownDrain is how long the server keeps serving after SIGTERM or
	// SIGINT with /readyz already answering 503, so that a load balancer
	// stops sending to it before it closes; then in-flight requests
	// finish and it exits. 0 shuts down at once.
	ShutdownDrain Duration `yaml:"shutdownDrain"`
	Tokens        Tokens   `yaml:"tokens"`
	RBAC          RBAC     `yaml:"rbac"`
	Audit         Audit    `yaml:"audit"`
	Login         Login    `yaml:"login"`
	// ForwardAuth maps requests of other services, seen through
	// /api/v1/auth/verify (nginx auth_request, Traefik ForwardAuth, Caddy
	// forward_auth, Envoy ext_authz), onto RBAC questions.
	ForwardAuth ForwardAuth `yaml:"forwardAuth"`
	// TrustPolicies let CI jobs exchange their OIDC ID tokens for
	// short-lived tokens (trust.go).
	TrustPolicies []TrustPolicy `yaml:"trustPolicies,omitempty"`
	// SSO is login through an OpenID Connect provider (sso.go).
	SSO SSO `yaml:"sso"`
	// Notifications: webhooks and expiry warnings (notifications.go).
	Notifications Notifications `yaml:"notifications"`

	// File is the YAML file Load read, and which settings it sets where
	// that matters (file.go); nil when there was none. It is never read
	// from YAML, and Parse leaves it nil.
	File *File `yaml:"-"`
}

// ForwardAuth is the route table of the forward-auth endpoint and the
// headers it reads the original request from. A request that matches no
// route is refused.
type ForwardAuth struct {
	// Headers names the proxy family in front: HeadersOriginal (nginx),
	// HeadersForwarded (Traefik, Caddy) or HeadersEnvoy (Envoy ext_authz,
	// original path after the endpoint's path). A request carrying the
	// other family's headers is refused.
	Headers string  `yaml:"headers"`
	Routes  []Route `yaml:"routes,omitempty"`
	// TrustedProxies are the addresses (CIDR prefixes, or single
	// addresses) of the proxies in front. Only when the immediate peer of
	// a forward-auth request is one of them does its audit record take
	// the client's address from X-Forwarded-For or X-Real-IP; otherwise
	// it is the peer's. Empty means loopback only.
	TrustedProxies []string `yaml:"trustedProxies,omitempty"`
}

// TrustedProxyPrefixes returns TrustedProxies parsed; nil when none are
// set (the server then trusts loopback only). Validate reports entries
// that do not parse.
func (f ForwardAuth) TrustedProxyPrefixes() ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, s := range f.TrustedProxies {
		p, err := parseTrustedProxy(s)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

// parseTrustedProxy parses a CIDR prefix in canonical form (no host bits
// set: "10.0.0.0/8", not "10.1.2.3/8", which might mean either) or a
// single address.
func parseTrustedProxy(s string) (netip.Prefix, error) {
	if !strings.Contains(s, "/") {
		a, err := netip.ParseAddr(s)
		if err != nil || a.Zone() != "" {
			return netip.Prefix{}, fmt.Errorf("%q is not an IP address or CIDR prefix", s)
		}
		a = a.Unmap()
		return netip.PrefixFrom(a, a.BitLen()), nil
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%q is not a CIDR prefix", s)
	}
	if p.Masked() != p {
		return netip.Prefix{}, fmt.Errorf("%q has host bits set; write %s", s, p.Masked())
	}
	if p.Addr().Is4In6() {
		return netip.Prefix{}, fmt.Errorf("%q is an IPv4-mapped prefix; write the IPv4 prefix", s)
	}
	return p, nil
}

// Forward-auth header families of ForwardAuth.Headers.
const (
	HeadersOriginal  = "original"  // X-Original-Method, X-Original-URI
	HeadersForwarded = "forwarded" // X-Forwarded-Method, X-Forwarded-Uri
	HeadersEnvoy     = "envoy"     // ext_authz HTTP: method and path_prefix + original path
)

// Route maps requests matching Match onto (Resource, Action, Object).
// Match is a net/http ServeMux pattern ("GET /grafana/",
// "POST /deploy/{project}/{app}"); Object may name its wildcards
// ("{project}/{app}").
type Route struct {
	Match    string `yaml:"match"`
	Resource string `yaml:"resource"`
	Action   string `yaml:"action"`
	Object   string `yaml:"object"`
}

// Database selects the store: empty URL for the embedded SQLite database
// in DataDir, or a PostgreSQL URL (postgres://user@host:port/db?sslmode=...)
// for several replicas sharing one database.
type Database struct {
	URL string `yaml:"url"`
}

// Cluster configures replicas on one database.
type Cluster struct {
	// StalenessBound is how long a replica may go without confirming that
	// it has every committed change before it refuses tokens (503).
	StalenessBound Duration `yaml:"stalenessBound"`
}

// TLS names the server's certificate and key files. Set both to serve
// HTTPS; leave both empty for plain HTTP.
type TLS struct {
	Cert string `yaml:"cert"`
	Key  string `yaml:"key"`
}

// Enabled reports whether HTTPS is configured.
func (t TLS) Enabled() bool { return t.Cert != "" && t.Key != "" }

// Tokens are the token lifetime rules: default and maximum life, and
// whether tokens that never expire may be minted.
type Tokens struct {
	// DefaultLifetime applies when a mint request gives no expiresIn.
	DefaultLifetime Duration `yaml:"defaultLifetime"`
	// MaxLifetime caps any requested lifetime.
	MaxLifetime Duration `yaml:"maxLifetime"`
	// AllowNonExpiring permits tokens with no expiry at all.
	AllowNonExpiring bool `yaml:"allowNonExpiring"`
	// IdleTimeout is the idle timeout of API and project tokens minted
	// without one: unused for that long, a token is refused and removed.
	// 0 (the default): none.
	IdleTimeout Duration `yaml:"idleTimeout"`
}

// RBAC is the policy settings, in Argo CD's argocd-rbac-cm shape. Each
// of PolicyCSV, PolicyDefault and MatchMode that the file sets is applied
// at every start and cannot be changed through the API while the file
// sets it (File.RBAC, Config.FileRBAC); one the file does not set is
// stored at the first start and is then the API's to change.
type RBAC struct {
	// PolicyCSV is the policy's lines.
	PolicyCSV string `yaml:"policyCSV"`
	// PolicyDefault is a role every authenticated subject also has.
	PolicyDefault string `yaml:"policyDefault"`
	// MatchMode is "glob" (the default; "" means the same) or "regex".
	MatchMode string `yaml:"matchMode"`
	// DisableBuiltin drops the built-in role:readonly and role:admin.
	DisableBuiltin bool `yaml:"disableBuiltin"`
}

// Audit holds the audit trail settings.
type Audit struct {
	// Retention is how long audit events are kept.
	Retention Duration `yaml:"retention"`
}

// Login holds the password login limits.
type Login struct {
	// MaxFailures failed logins for one username within Window lock that
	// username out until the window passes.
	MaxFailures int      `yaml:"maxFailures"`
	Window      Duration `yaml:"window"`
	// MaxConcurrent bounds concurrent bcrypt checks (default: half the
	// CPUs, at least one), so a login flood cannot
	// starve token verification of CPU.
	MaxConcurrent int `yaml:"maxConcurrent"`
}

// Match modes of RBAC.MatchMode.
const (
	MatchGlob  = "glob"
	MatchRegex = "regex"
)

// Default returns the built-in defaults: a loopback listener, no TLS, the
// embedded store under ./gatehouse-data, 12-hour tokens and a 720-hour
// maximum.
func Default() Config {
	return Config{
		InstanceName:   "gatehouse",
		Listen:         "127.0.0.1:8080",
		DataDir:        "./gatehouse-data",
		ReaperInterval: Duration(time.Minute),
		ShutdownDrain:  Duration(5 * time.Second),
		Cluster:        Cluster{StalenessBound: Duration(time.Second)},
		Tokens: Tokens{
			DefaultLifetime: Duration(12 * time.Hour),
			MaxLifetime:     Duration(30 * Day),
		},
		RBAC:        RBAC{MatchMode: MatchGlob},
		ForwardAuth: ForwardAuth{Headers: HeadersOriginal},
		Audit:       Audit{Retention: Duration(90 * Day)},
		Login: Login{
			MaxFailures:   5,
			Window:        Duration(5 * time.Minute),
			MaxConcurrent: max(1, runtime.GOMAXPROCS(0)/2),
		},
		Notifications: defaultNotifications(),
	}
}

// SettingError is one configuration problem.
type SettingError struct {
	// Setting is the YAML key path, e.g. "tokens.maxLifetime".
	Setting string
	// Source is the environment variable or flag the value came from; empty
	// when it came from the file or the defaults.
	Source string
	// Problem says what is wrong. It never contains a secret value.
	Problem string
}

func (e *SettingError) Error() string {
	if e.Source != "" {
		return e.Setting + " (from " + e.Source + "): " + e.Problem
	}
	return e.Setting + ": " + e.Problem
}

// Validate checks every setting and reports all problems at once, joined with
// errors.Join; each is a *SettingError. It checks that the TLS files exist,
// and otherwise does no I/O.
func (c Config) Validate() error {
	var errs []error
	bad := func(setting, format string, args ...any) {
		errs = append(errs, &SettingError{Setting: setting, Problem: fmt.Sprintf(format, args...)})
	}

	if !token.ValidInstance(c.InstanceName) {
		bad("instanceName", "%q is not a valid instance name: use 1 to %d lowercase letters, digits and hyphens, starting with a letter or digit",
			c.InstanceName, token.MaxInstanceLen)
	}
	if c.Listen == "" {
		bad("listen", "must be set (host:port)")
	} else if err := checkHostPort(c.Listen); err != nil {
		bad("listen", "%q: %v", c.Listen, err)
	}
	if c.MetricsListen != "" {
		if err := checkHostPort(c.MetricsListen); err != nil {
			bad("metricsListen", "%q: %v", c.MetricsListen, err)
		} else if c.MetricsListen == c.Listen && !strings.HasSuffix(c.Listen, ":0") {
			bad("metricsListen", "%q is also the main listen address; leave metricsListen empty to serve metrics there", c.MetricsListen)
		}
	}
	if strings.TrimSpace(c.DataDir) == "" {
		bad("dataDir", "must be set")
	}
	if u := c.Database.URL; u != "" {
		if pu, err := url.Parse(u); err != nil || (pu.Scheme != "postgres" && pu.Scheme != "postgresql") {
			// Never echo the URL: it may hold a password.
			bad("database.url", "must be a postgres:// or postgresql:// URL")
		}
	}
	if b := time.Duration(c.Cluster.StalenessBound); b < 100*time.Millisecond || b > time.Minute {
		bad("cluster.stalenessBound", "%s: must be between 100ms and 1m", c.Cluster.StalenessBound)
	}

	switch {
	case c.TLS.Cert != "" && c.TLS.Key == "":
		bad("tls.key", "must be set when tls.cert is set (both or neither)")
	case c.TLS.Key != "" && c.TLS.Cert == "":
		bad("tls.cert", "must be set when tls.key is set (both or neither)")
	}
	if c.TLS.Cert != "" {
		if problem := checkFile(c.TLS.Cert); problem != "" {
			bad("tls.cert", "%s", problem)
		}
	}
	if c.TLS.Key != "" {
		if problem := checkFile(c.TLS.Key); problem != "" {
			bad("tls.key", "%s", problem)
		}
	}

	positive := func(setting string, d Duration) {
		if d <= 0 {
			bad(setting, "must be greater than 0, got %s", d)
		}
	}
	positive("reaperInterval", c.ReaperInterval)
	if d := c.ShutdownDrain; d < 0 || d.D() > 10*time.Minute {
		bad("shutdownDrain", "%s: must be between 0 and 10m", d)
	}
	positive("tokens.maxLifetime", c.Tokens.MaxLifetime)
	positive("tokens.defaultLifetime", c.Tokens.DefaultLifetime)
	if d := time.Duration(c.Tokens.IdleTimeout); d != 0 && (d < time.Hour || d > 366*Day || d%time.Second != 0) {
		bad("tokens.idleTimeout", "%s: must be 0 (none) or whole seconds between 1h and 366d", c.Tokens.IdleTimeout)
	}
	if c.Tokens.DefaultLifetime > c.Tokens.MaxLifetime && c.Tokens.MaxLifetime > 0 {
		bad("tokens.defaultLifetime", "%s exceeds tokens.maxLifetime %s", c.Tokens.DefaultLifetime, c.Tokens.MaxLifetime)
	}
	positive("audit.retention", c.Audit.Retention)
	positive("login.window", c.Login.Window)

	switch c.RBAC.MatchMode {
	case "", MatchGlob, MatchRegex:
	default:
		bad("rbac.matchMode", "%q is not %q or %q", c.RBAC.MatchMode, MatchGlob, MatchRegex)
	}
	// policyDefault becomes one field of a policy line; a comma or line
	// break would smuggle extra fields or lines into the policy.
	if strings.ContainsAny(c.RBAC.PolicyDefault, ",\r\n") || strings.TrimSpace(c.RBAC.PolicyDefault) != c.RBAC.PolicyDefault {
		bad("rbac.policyDefault", "%q must be a single role name, such as role:readonly", c.RBAC.PolicyDefault)
	}

	if c.Login.MaxFailures < 1 {
		bad("login.maxFailures", "must be at least 1, got %d", c.Login.MaxFailures)
	}
	switch c.ForwardAuth.Headers {
	case "", HeadersOriginal, HeadersForwarded, HeadersEnvoy: // "": original
	default:
		bad("forwardAuth.headers", "%q is not %q (nginx: X-Original-Method, X-Original-URI), %q (Traefik, Caddy: X-Forwarded-Method, X-Forwarded-Uri) or %q (Envoy ext_authz)",
			c.ForwardAuth.Headers, HeadersOriginal, HeadersForwarded, HeadersEnvoy)
	}
	for i, s := range c.ForwardAuth.TrustedProxies {
		if _, err := parseTrustedProxy(s); err != nil {
			bad(fmt.Sprintf("forwardAuth.trustedProxies[%d]", i), "%v", err)
		}
	}
	// The very check the server compiles the table with.
	routes := make([]service.Route, len(c.ForwardAuth.Routes))
	for i, r := range c.ForwardAuth.Routes {
		routes[i] = service.Route(r)
	}
	for _, p := range service.CheckRoutes(routes) {
		bad(fmt.Sprintf("forwardAuth.routes[%d].%s", p.Index, p.Field), "%s", p.Problem)
	}
	if c.Login.MaxConcurrent < 1 {
		bad("login.maxConcurrent", "must be at least 1, got %d", c.Login.MaxConcurrent)
	}
	errs = append(errs, c.trustProblems()...)
	c.SSO.OIDC.validate(bad)
	c.Notifications.validate(bad)
	return errors.Join(errs...)
}

// checkHostPort accepts what net.Listen accepts for TCP with a numeric port:
// "host:port", ":port", "[::1]:port". Port 0 (any free port) is allowed, for
// tests.
func checkHostPort(s string) error {
	_, port, err := net.SplitHostPort(s)
	if err != nil {
		return errors.New("want host:port, such as 127.0.0.1:8080 or :8080")
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		return fmt.Errorf("port %q is not a number from 0 to 65535", port)
	}
	return nil
}

// checkFile returns a problem with the file at path, or "".
func checkFile(path string) string {
	fi, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Sprintf("file %q does not exist", path)
	case err != nil:
		return fmt.Sprintf("file %q: %v", path, errors.Unwrap(err))
	case fi.IsDir():
		return fmt.Sprintf("%q is a directory, want a PEM file", path)
	}
	return ""
}

// LogValue logs the effective settings for the startup line; the policy
// is summarized by size.
func (c Config) LogValue() slog.Value {
	attrs := []slog.Attr{
		slog.String("instanceName", c.InstanceName),
		slog.String("listen", c.Listen),
		slog.String("metricsListen", c.MetricsListen),
		slog.String("dataDir", c.DataDir),
		slog.String("database", databaseKind(c.Database.URL)),
		slog.String("cluster.stalenessBound", c.Cluster.StalenessBound.String()),
		slog.Bool("tls", c.TLS.Enabled()),
		slog.String("reaperInterval", c.ReaperInterval.String()),
		slog.String("shutdownDrain", c.ShutdownDrain.String()),
		slog.String("tokens.defaultLifetime", c.Tokens.DefaultLifetime.String()),
		slog.String("tokens.maxLifetime", c.Tokens.MaxLifetime.String()),
		slog.Bool("tokens.allowNonExpiring", c.Tokens.AllowNonExpiring),
		slog.Int("rbac.policyLines", countLines(c.RBAC.PolicyCSV)),
		slog.String("rbac.policyDefault", c.RBAC.PolicyDefault),
		slog.String("rbac.matchMode", c.RBAC.MatchMode),
		slog.Bool("rbac.disableBuiltin", c.RBAC.DisableBuiltin),
		slog.Any("rbac.setInFile", c.FileRBAC().Fields()),
		slog.String("audit.retention", c.Audit.Retention.String()),
		slog.Int("login.maxFailures", c.Login.MaxFailures),
		slog.String("login.window", c.Login.Window.String()),
		slog.Int("login.maxConcurrent", c.Login.MaxConcurrent),
		slog.String("forwardAuth.headers", c.ForwardAuth.Headers),
		slog.Int("forwardAuth.routes", len(c.ForwardAuth.Routes)),
		slog.Int("trustPolicies", len(c.TrustPolicies)),
		slog.Any("forwardAuth.trustedProxies", c.ForwardAuth.TrustedProxies),
	}
	attrs = append(attrs, c.Notifications.logAttrs()...)
	return slog.GroupValue(append(attrs, c.SSO.OIDC.logAttrs()...)...)
}

// databaseKind names the store for logs without the URL (which may hold a
// password).
func databaseKind(u string) string {
	if u == "" {
		return "sqlite"
	}
	return "postgres"
}

func countLines(s string) int {
	n := 0
	for line := range strings.Lines(s) {
		if strings.TrimSpace(line) != "" {
			n++
		}
	}
	return n
}
