package config_test

import (
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/config"
)

const ssoYAML = `
sso:
  oidc:
    name: Acme SSO
    issuer: https://idp.example
    clientID: gatehouse
    redirectURL: https://gatehouse.example/auth/callback
    scopes: [openid, profile, email, groups, offline_access]
    usernameClaim: email
    groupsClaim: groups
    groupsRefreshInterval: 1h
    groupsMaxAge: 24h
`

const ssoSecret = "a-client-secret-from-the-idp-0123"

func TestSSOConfig(t *testing.T) {
	secretFile := tempFile(t, "secret", ssoSecret+"\n")
	cases := map[string]struct {
		yaml string
		env  env
		want string // a problem, "" for none
	}{
		"ok/secret in the file":      {yaml: ssoYAML + "    clientSecret: " + ssoSecret + "\n"},
		"ok/secret from a file":      {yaml: ssoYAML + "    clientSecretFile: " + secretFile + "\n"},
		"ok/secret from the env":     {yaml: ssoYAML, env: env{config.EnvOIDCClientSecret: ssoSecret}},
		"ok/env wins over the file":  {yaml: ssoYAML + "    clientSecret: short\n", env: env{config.EnvOIDCClientSecret: ssoSecret}},
		"fail/no secret":             {yaml: ssoYAML, want: "sso.oidc.clientSecret: must be set"},
		"fail/short secret":          {yaml: ssoYAML + "    clientSecret: short\n", want: "shorter than 16 bytes"},
		"fail/missing secret file":   {yaml: ssoYAML + "    clientSecretFile: /nonexistent/secret\n", want: "sso.oidc.clientSecretFile"},
		"fail/http issuer":           {yaml: strings.Replace(ssoYAML, "https://idp.example", "http://idp.example", 1), env: env{config.EnvOIDCClientSecret: ssoSecret}, want: "sso.oidc.issuer"},
		"fail/upper-case scheme":     {yaml: strings.Replace(ssoYAML, "https://idp.example", "HTTPS://idp.example", 1), env: env{config.EnvOIDCClientSecret: ssoSecret}, want: "sso.oidc.issuer"},
		"fail/redirect elsewhere":    {yaml: strings.Replace(ssoYAML, "/auth/callback", "/callback", 1), env: env{config.EnvOIDCClientSecret: ssoSecret}, want: "must be /auth/callback"},
		"fail/max age below refresh": {yaml: strings.Replace(ssoYAML, "groupsMaxAge: 24h", "groupsMaxAge: 30m", 1), env: env{config.EnvOIDCClientSecret: ssoSecret}, want: "sso.oidc.groupsMaxAge"},
		"ok/device login":            {yaml: ssoYAML + "    deviceLogin: true\n", env: env{config.EnvOIDCClientSecret: ssoSecret}},
		"fail/no openid scope":       {yaml: strings.Replace(ssoYAML, "[openid, ", "[", 1), env: env{config.EnvOIDCClientSecret: ssoSecret}, want: "must include openid"},
		"fail/no issuer":             {yaml: "sso:\n  oidc:\n    clientID: x\n", want: "sso.oidc.issuer: must be set"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			path := tempFile(t, "gatehouse.yaml", tc.yaml)
			e := tc.env
			if e == nil {
				e = env{}
			}
			e[config.EnvConfig] = path
			c, err := config.Load(nil, e.get)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("Load: %v", err)
				}
				o := c.SSO.OIDC
				if string(o.ClientSecret) != ssoSecret || o.Name != "Acme SSO" || o.GroupsMaxAge.D() != 24*time.Hour {
					t.Errorf("sso.oidc = %+v", o)
				}
				// The secret never prints: not with %v, not in the startup log.
				var logs strings.Builder
				slog.New(slog.NewJSONHandler(&logs, nil)).Info("config", "config", c)
				for _, s := range []string{fmt.Sprintf("%v %+v", c, o), logs.String()} {
					if strings.Contains(s, ssoSecret) {
						t.Errorf("the client secret printed: %s", s)
					}
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Load error %v, want %q", err, tc.want)
			}
			if strings.Contains(err.Error(), ssoSecret) || strings.Contains(err.Error(), "short\n") {
				t.Errorf("the error shows the secret: %v", err)
			}
		})
	}
}
