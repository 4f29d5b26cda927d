package config

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/internal/weburl"
	"github.com/gatehouse/gatehouse/service"
)

// Notifications are the webhooks told of token lifecycle events and the
// lead times of expiry warnings (docs/operations.md, "Notifications").
type Notifications struct {
	// Webhooks set here are owned by the file: shown read-only through
	// the API, which refuses to change them.
	Webhooks []Webhook `yaml:"webhooks,omitempty"`
	// ExpiryWarnings are the lead times before a token's expiry at which
	// token.expiring is sent: default 168h and 24h; [] for none.
	ExpiryWarnings []Duration `yaml:"expiryWarnings"`
	// BaseURL is this server as receivers reach it
	// (https://gatehouse.example): the start of the links to rotate a
	// token in a notification. Empty: the links are paths.
	BaseURL string `yaml:"baseURL"`
}

// Webhook is one endpoint. The HMAC key is read from SecretFile (on every
// replica) each time a notification is sent, so replacing the file
// rotates the key; it is never stored or logged.
type Webhook struct {
	Name       string   `yaml:"name"`
	URL        string   `yaml:"url"`
	SecretFile string   `yaml:"secretFile"`
	Events     []string `yaml:"events"`
}

// defaultNotifications are Default's: no webhooks, the default lead times.
func defaultNotifications() Notifications {
	ds := make([]Duration, len(service.DefaultExpiryWarnings))
	for i, d := range service.DefaultExpiryWarnings {
		ds[i] = Duration(d)
	}
	return Notifications{ExpiryWarnings: ds}
}

// Options returns the service's notification options.
func (n Notifications) Options() service.NotifyOptions {
	o := service.NotifyOptions{BaseURL: n.BaseURL, ExpiryWarnings: []time.Duration{}}
	for _, d := range n.ExpiryWarnings {
		o.ExpiryWarnings = append(o.ExpiryWarnings, d.D())
	}
	for _, w := range n.Webhooks {
		o.Webhooks = append(o.Webhooks, gatehouse.Webhook{Name: w.Name, URL: w.URL, SecretFile: w.SecretFile, Events: w.Events})
	}
	return o
}

// validate reports the problems of the notification settings: the same
// rules as the API's, and each secret file holding a key (see
// service.CheckSecretFile).
func (n Notifications) validate(bad func(setting, format string, args ...any)) {
	seen := map[string]bool{}
	for i, w := range n.Webhooks {
		setting := fmt.Sprintf("notifications.webhooks[%d]", i)
		hook, err := service.CheckWebhook(gatehouse.WebhookRequest{Name: w.Name, URL: w.URL, SecretFile: w.SecretFile, Events: w.Events})
		if err == nil {
			err = service.CheckSecretFile(hook.SecretFile)
		}
		if err != nil {
			bad(setting, "%s", gatehouse.ErrorMessage(err))
			continue
		}
		if seen[w.Name] {
			bad(setting+".name", "%q is declared twice", w.Name)
		}
		seen[w.Name] = true
	}
	leads := make([]time.Duration, len(n.ExpiryWarnings))
	for i, d := range n.ExpiryWarnings {
		leads[i] = d.D()
	}
	if err := service.CheckExpiryWarnings(leads); err != nil {
		bad("notifications.expiryWarnings", "%s", gatehouse.ErrorMessage(err))
	}
	if n.BaseURL != "" {
		if u, why := weburl.Parse(n.BaseURL); why != "" || u.RawQuery != "" || u.ForceQuery {
			bad("notifications.baseURL", "%q: must be an http or https URL with a host and no credentials, query or fragment", n.BaseURL)
		}
	}
}

// logAttrs summarizes the settings for the startup line (the webhooks by
// count).
func (n Notifications) logAttrs() []slog.Attr {
	leads := make([]string, len(n.ExpiryWarnings))
	for i, d := range n.ExpiryWarnings {
		leads[i] = d.String()
	}
	return []slog.Attr{
		slog.Int("notifications.webhooks", len(n.Webhooks)),
		slog.Any("notifications.expiryWarnings", leads),
		slog.String("notifications.baseURL", n.BaseURL),
	}
}
