package config

import (
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse/internal/weburl"
)

// SSO configures login through an identity provider.
type SSO struct {
	OIDC OIDC `yaml:"oidc"`
}

// OIDC is an OpenID Connect provider. SSO is on when Issuer is set.
type OIDC struct {
	// Name labels the login page's button ("Log in with <name>").
	Name   string `yaml:"name"`
	Issuer string `yaml:"issuer"`
	// ClientID and the client secret registered at the provider. The
	// secret comes from ClientSecret, ClientSecretFile or
	// GATEHOUSE_OIDC_CLIENT_SECRET (which wins), and never reaches a log
	// line. Every replica needs the same secret: the state of a login in
	// progress and the stored refresh tokens are sealed with keys derived
	// from it.
	ClientID         string `yaml:"clientID"`
	ClientSecret     Secret `yaml:"clientSecret"`
	ClientSecretFile string `yaml:"clientSecretFile"`
	// RedirectURL is this server's /auth/callback as the browser reaches
	// it, registered at the provider.
	RedirectURL string   `yaml:"redirectURL"`
	Scopes      []string `yaml:"scopes,omitempty"`
	// UsernameClaim holds the username (default email; sub when a token
	// lacks it). An email username needs email_verified true (or "true"):
	// a provider that sends no email_verified needs another claim. GroupsClaim holds the groups (default groups).
	UsernameClaim string `yaml:"usernameClaim"`
	GroupsClaim   string `yaml:"groupsClaim"`
	// GroupsRefreshInterval: how often groups are refreshed in the
	// background (needs a refresh token: scope offline_access).
	// GroupsMaxAge: how long after the provider last confirmed an
	// account's groups its tokens are still accepted.
	GroupsRefreshInterval Duration `yaml:"groupsRefreshInterval"`
	GroupsMaxAge          Duration `yaml:"groupsMaxAge"`
	// Capabilities of an account created by its first login (default
	// login and apiKey).
	Capabilities []string `yaml:"capabilities,omitempty"`
	// DeviceLogin offers login with the device authorization grant
	// (RFC 8628; gatehouse login --sso-device) where the provider offers
	// it. Off by default: see docs/sso.md on remote phishing.
	DeviceLogin bool `yaml:"deviceLogin"`
}

// Enabled reports whether SSO is configured.
func (o OIDC) Enabled() bool { return o.Issuer != "" }

// Secret is a configuration value that never prints.
type Secret string

func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return "[redacted]"
}

// LogValue keeps the secret out of structured logs.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.String()) }

// EnvOIDCClientSecret sets sso.oidc.clientSecret.
const EnvOIDCClientSecret = "GATEHOUSE_OIDC_CLIENT_SECRET"

// WithDefaults fills in what the YAML left out: name "SSO", scopes
// openid, profile, email, groups and offline_access, claims email and
// groups, a 1h refresh interval and a 24h maximum age.
func (o OIDC) WithDefaults() OIDC {
	if o.Name == "" {
		o.Name = "SSO"
	}
	if len(o.Scopes) == 0 {
		o.Scopes = []string{"openid", "profile", "email", "groups", "offline_access"}
	}
	if o.UsernameClaim == "" {
		o.UsernameClaim = "email"
	}
	if o.GroupsClaim == "" {
		o.GroupsClaim = "groups"
	}
	if o.GroupsRefreshInterval == 0 {
		o.GroupsRefreshInterval = Duration(time.Hour)
	}
	if o.GroupsMaxAge == 0 {
		o.GroupsMaxAge = Duration(24 * time.Hour)
	}
	return o
}

// readSecretFile fills ClientSecret from ClientSecretFile when the
// secret is not given otherwise. It is the only file read for SSO, in
// Load, so that Validate stays free of I/O.
func (o *OIDC) readSecretFile() error {
	if o.ClientSecretFile == "" || o.ClientSecret != "" {
		return nil
	}
	b, err := os.ReadFile(o.ClientSecretFile)
	if err != nil {
		return &SettingError{Setting: "sso.oidc.clientSecretFile", Problem: fmt.Sprintf("cannot read %q: %v", o.ClientSecretFile, unwrapPath(err))}
	}
	o.ClientSecret = Secret(strings.TrimRight(string(b), "\r\n"))
	return nil
}

func unwrapPath(err error) error {
	if pe, ok := err.(*os.PathError); ok {
		return pe.Err
	}
	return err
}

// validate adds the problems of the sso block.
func (o OIDC) validate(bad func(setting, format string, args ...any)) {
	if !o.Enabled() {
		if o.ClientID != "" || o.RedirectURL != "" {
			bad("sso.oidc.issuer", "must be set when sso.oidc is configured")
		}
		return
	}
	o = o.WithDefaults()
	if problem := checkURL(o.Issuer); problem != "" {
		bad("sso.oidc.issuer", "%q: %s", o.Issuer, problem)
	}
	if o.ClientID == "" {
		bad("sso.oidc.clientID", "must be set")
	}
	switch {
	case o.ClientSecret == "" && o.ClientSecretFile == "":
		bad("sso.oidc.clientSecret", "must be set (or sso.oidc.clientSecretFile, or %s)", EnvOIDCClientSecret)
	case len(o.ClientSecret) > 0 && len(o.ClientSecret) < 16:
		// Keys are derived from it: a short secret is a weak key.
		bad("sso.oidc.clientSecret", "is shorter than 16 bytes; ask the identity provider for a longer one")
	}
	if o.RedirectURL == "" {
		bad("sso.oidc.redirectURL", "must be set (this server's /auth/callback)")
	} else if problem := checkURL(o.RedirectURL); problem != "" {
		bad("sso.oidc.redirectURL", "%q: %s", o.RedirectURL, problem)
	} else if u, _ := url.Parse(o.RedirectURL); u.Path != "/auth/callback" {
		bad("sso.oidc.redirectURL", "%q: the path must be /auth/callback", o.RedirectURL)
	}
	if !contains(o.Scopes, "openid") {
		bad("sso.oidc.scopes", "must include openid")
	}
	if o.GroupsRefreshInterval.D() < time.Second {
		bad("sso.oidc.groupsRefreshInterval", "%s: must be at least 1s", o.GroupsRefreshInterval)
	}
	if o.GroupsMaxAge.D() < o.GroupsRefreshInterval.D() {
		bad("sso.oidc.groupsMaxAge", "%s: must be at least sso.oidc.groupsRefreshInterval (%s)", o.GroupsMaxAge, o.GroupsRefreshInterval)
	}
	hasLogin := false
	for _, c := range o.Capabilities {
		switch c {
		case "login":
			hasLogin = true
		case "apiKey":
		default:
			bad("sso.oidc.capabilities", "unknown capability %q (want login or apiKey)", c)
		}
	}
	if len(o.Capabilities) > 0 && !hasLogin {
		bad("sso.oidc.capabilities", "must include login: SSO accounts log in")
	}
}

// checkURL accepts https URLs, and http ones on a loopback host (tests,
// a provider on the same machine), without a query (weburl.ParseSecure).
func checkURL(s string) string {
	u, why := weburl.ParseSecure(s)
	if why == "" && (u.RawQuery != "" || u.ForceQuery) {
		why = "must not have a query"
	}
	return why
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func (o OIDC) logAttrs() []slog.Attr {
	if !o.Enabled() {
		return []slog.Attr{slog.Bool("sso.oidc", false)}
	}
	o = o.WithDefaults()
	return []slog.Attr{
		slog.String("sso.oidc.issuer", o.Issuer),
		slog.String("sso.oidc.clientID", o.ClientID),
		slog.Bool("sso.oidc.clientSecret", o.ClientSecret != ""),
		slog.String("sso.oidc.redirectURL", o.RedirectURL),
		slog.String("sso.oidc.groupsRefreshInterval", o.GroupsRefreshInterval.String()),
		slog.String("sso.oidc.groupsMaxAge", o.GroupsMaxAge.String()),
		slog.Bool("sso.oidc.deviceLogin", o.DeviceLogin),
	}
}
