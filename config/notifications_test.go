package config

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestNotificationsFromYAML(t *testing.T) {
	secret := filepath.Join(t.TempDir(), "hook-secret")
	if err := os.WriteFile(secret, []byte("config-test-webhook-key-0123456789\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Parse([]byte(`
notifications:
  baseURL: https://gatehouse.example
  expiryWarnings: [14d, 48h, 1h]
  webhooks:
    - name: ci
      url: https://hooks.example/gatehouse
      secretFile: ` + secret + `
      events: [token.expiring, token.expired]
    - name: ops
      url: http://10.0.0.5:9000/alerts
      secretFile: ` + secret + `
      events: ["*"]
`))
	if err != nil {
		t.Fatal(err)
	}
	o := c.Notifications.Options()
	if want := []time.Duration{14 * 24 * time.Hour, 48 * time.Hour, time.Hour}; !slices.Equal(o.ExpiryWarnings, want) {
		t.Errorf("expiry warnings %v, want %v", o.ExpiryWarnings, want)
	}
	if o.BaseURL != "https://gatehouse.example" || len(o.Webhooks) != 2 || o.Webhooks[0].Name != "ci" ||
		!slices.Equal(o.Webhooks[0].Events, []string{"token.expiring", "token.expired"}) || o.Webhooks[1].SecretFile != secret {
		t.Errorf("options %+v", o)
	}
}

func TestNotificationsDefaults(t *testing.T) {
	c, err := Parse([]byte("listen: 127.0.0.1:9000\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Notifications.Options().ExpiryWarnings; !slices.Equal(got, []time.Duration{168 * time.Hour, 24 * time.Hour}) {
		t.Errorf("default expiry warnings %v, want [168h 24h]", got)
	}
	c, err = Parse([]byte("notifications:\n  expiryWarnings: []\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Notifications.Options().ExpiryWarnings; got == nil || len(got) != 0 {
		t.Errorf("expiryWarnings: [] gave %v, want none", got)
	}
}

func TestNotificationsInvalid(t *testing.T) {
	dir := t.TempDir()
	secret := filepath.Join(dir, "secret")
	empty := filepath.Join(dir, "empty")
	os.WriteFile(secret, []byte("config-test-webhook-key-0123456789"), 0o600)
	os.WriteFile(empty, nil, 0o600)
	for name, tc := range map[string]struct{ yaml, setting, problem string }{
		"fail/scheme": {`webhooks: [{name: a, url: "ftp://h/", secretFile: ` + secret + `, events: ["*"]}]`,
			"notifications.webhooks[0]", "http or https"},
		"fail/credentials": {`webhooks: [{name: a, url: "https://u:p@h/", secretFile: ` + secret + `, events: ["*"]}]`,
			"notifications.webhooks[0]", "credentials"},
		"fail/event": {`webhooks: [{name: a, url: "https://h/", secretFile: ` + secret + `, events: [token.created]}]`,
			"notifications.webhooks[0]", "token.created"},
		"fail/empty secret": {`webhooks: [{name: a, url: "https://h/", secretFile: ` + empty + `, events: ["*"]}]`,
			"notifications.webhooks[0]", "a readable regular file holding a key of 32 to 4096 bytes"},
		"fail/missing secret": {`webhooks: [{name: a, url: "https://h/", secretFile: ` + filepath.Join(dir, "nope") + `, events: ["*"]}]`,
			"notifications.webhooks[0]", "a readable regular file holding a key of 32 to 4096 bytes"},
		"fail/twice": {`webhooks: [{name: a, url: "https://h/", secretFile: ` + secret + `, events: ["*"]}, {name: a, url: "https://h/", secretFile: ` + secret + `, events: ["*"]}]`,
			"notifications.webhooks[1].name", "twice"},
		"fail/lead too short":    {`expiryWarnings: [30s]`, "notifications.expiryWarnings", "between 1m"},
		"fail/lead twice":        {`expiryWarnings: [24h, 1d]`, "notifications.expiryWarnings", "twice"},
		"fail/base URL":          {`baseURL: "gatehouse.example"`, "notifications.baseURL", "http or https"},
		"fail/upper-case scheme": {`baseURL: "Https://gatehouse.example"`, "notifications.baseURL", "http or https"},
	} {
		t.Run(name, func(t *testing.T) {
			// Parse validates what it read.
			_, err := Parse([]byte("notifications:\n  " + tc.yaml + "\n"))
			if err == nil || !strings.Contains(err.Error(), tc.setting+": ") || !strings.Contains(err.Error(), tc.problem) {
				t.Errorf("Parse: %v, want %s: ...%s...", err, tc.setting, tc.problem)
			}
			if err != nil && strings.Contains(err.Error(), "\nk") {
				t.Errorf("the problem shows the secret: %v", err)
			}
		})
	}
}
