package service

import (
	"context"
	"net"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/internal/weburl"
)

var webhookName = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)

// CheckWebhook validates a webhook and returns it normalized (events
// without repeats, in the order given). It checks what can be checked
// without the file system: the name (1 to 63 lowercase letters, digits
// and hyphens), the URL (absolute http or https with a host, no
// credentials, no fragment, at most 2048 bytes), the secret file's path
// (absolute) and the events (known names or "*"). The URL's host is not
// resolved: webhooks are set by administrators, and may point inside the
// network (docs/operations.md discusses SSRF).
func CheckWebhook(r gatehouse.WebhookRequest) (gatehouse.Webhook, error) {
	w := gatehouse.Webhook{Name: r.Name, URL: strings.TrimSpace(r.URL), SecretFile: strings.TrimSpace(r.SecretFile)}
	if !webhookName.MatchString(w.Name) {
		return w, gatehouse.Errorf(gatehouse.EINVALID, "name must be 1 to 63 lowercase letters, digits and hyphens, starting with a letter or digit")
	}
	if problem := checkWebhookURL(w.URL); problem != "" {
		return w, gatehouse.Errorf(gatehouse.EINVALID, "url: %s", problem)
	}
	switch {
	case w.SecretFile == "":
		return w, gatehouse.Errorf(gatehouse.EINVALID, "secretFile is required: the path of a file that holds the HMAC key")
	case !strings.HasPrefix(w.SecretFile, "/") || len(w.SecretFile) > 4096 || !utf8.ValidString(w.SecretFile) || strings.ContainsRune(w.SecretFile, 0):
		return w, gatehouse.Errorf(gatehouse.EINVALID, "secretFile must be an absolute path")
	}
	events, err := CheckWebhookEvents(r.Events)
	if err != nil {
		return w, err
	}
	w.Events = events
	return w, nil
}

// CheckWebhookEvents checks a webhook's event list: at least one, each
// one of gatehouse.NotifyEvents or "*"; repeats are dropped.
func CheckWebhookEvents(events []string) ([]string, error) {
	if len(events) == 0 {
		return nil, gatehouse.Errorf(gatehouse.EINVALID, "events is required: one or more of %s, or *", strings.Join(gatehouse.NotifyEvents, ", "))
	}
	if len(events) > 2*len(gatehouse.NotifyEvents)+2 {
		return nil, gatehouse.Errorf(gatehouse.EINVALID, "too many events")
	}
	out := make([]string, 0, len(events))
	for _, e := range events {
		if e != "*" && !notifiable(e) {
			return nil, gatehouse.Errorf(gatehouse.EINVALID, "events: %s is not one of %s, or *", strconv.Quote(clipName(e)), strings.Join(gatehouse.NotifyEvents, ", "))
		}
		if !slices.Contains(out, e) {
			out = append(out, e)
		}
	}
	return out, nil
}

// checkWebhookURL returns what is wrong with a webhook URL, or "".
func checkWebhookURL(s string) string {
	if s == "" {
		return "is required"
	}
	if len(s) > 2048 {
		return "longer than 2048 bytes"
	}
	u, why := weburl.Parse(s)
	if why != "" {
		return why
	}
	if h := u.Hostname(); strings.ContainsAny(h, " %") && net.ParseIP(h) == nil {
		return "has a bad host"
	}
	return ""
}

// CheckSecretFile checks that the file can be read and holds a key; the
// problem never shows the file's content.
func CheckSecretFile(path string) error {
	if _, err := readSecret(path); err != nil {
		return gatehouse.Errorf(gatehouse.EINVALID, "secretFile %s: %v", strconv.Quote(path), err)
	}
	return nil
}

// ListWebhooks returns every webhook, the configuration file's (FromFile)
// and the API's, by name; needs settings, get, webhooks.
func (s *Service) ListWebhooks(ctx context.Context, p *Principal) ([]gatehouse.Webhook, error) {
	if err := s.authorize(p, "settings", "get", "webhooks"); err != nil {
		return nil, err
	}
	var out []gatehouse.Webhook
	err := s.store.View(ctx, func(tx gatehouse.Tx) error {
		var err error
		out, err = s.webhooksTx(ctx, tx)
		return err
	})
	slices.SortFunc(out, func(a, b gatehouse.Webhook) int { return strings.Compare(a.Name, b.Name) })
	return out, err
}

// GetWebhook returns one webhook; needs settings, get, webhooks.
func (s *Service) GetWebhook(ctx context.Context, p *Principal, name string) (gatehouse.Webhook, error) {
	if err := s.authorize(p, "settings", "get", "webhooks"); err != nil {
		return gatehouse.Webhook{}, err
	}
	var w gatehouse.Webhook
	err := s.store.View(ctx, func(tx gatehouse.Tx) error {
		var err error
		w, err = s.webhookTx(ctx, tx, name)
		return err
	})
	if gatehouse.IsCode(err, gatehouse.ENOTFOUND) {
		return w, gatehouse.Errorf(gatehouse.ENOTFOUND, "webhook %s not found", strconv.Quote(clipName(name)))
	}
	return w, err
}

// fileOwned is the refusal of an API change to a file's webhook.
func fileOwned(name string) error {
	return gatehouse.Errorf(gatehouse.ECONFLICT, "webhook %q is set in the configuration file (notifications.webhooks): change it there", name)
}

// CreateWebhook stores a new webhook; needs settings, update, webhooks.
// Its secret file must hold a key now (see readSecret).
func (s *Service) CreateWebhook(ctx context.Context, p *Principal, r gatehouse.WebhookRequest) (gatehouse.Webhook, error) {
	if err := s.authorize(p, "settings", "update", "webhooks"); err != nil {
		return gatehouse.Webhook{}, err
	}
	w, err := CheckWebhook(r)
	if err != nil {
		return w, err
	}
	if _, ok := s.notify.fileWebhook(w.Name); ok {
		return gatehouse.Webhook{}, fileOwned(w.Name)
	}
	if err := CheckSecretFile(w.SecretFile); err != nil {
		return gatehouse.Webhook{}, err
	}
	now := s.now().UTC()
	w.CreatedAt, w.UpdatedAt = now, now
	err = s.write(ctx, p, func(tx gatehouse.Tx, _ *change) error {
		if err := tx.CreateWebhook(ctx, w); err != nil {
			if gatehouse.IsCode(err, gatehouse.ECONFLICT) {
				return gatehouse.Errorf(gatehouse.ECONFLICT, "webhook %q already exists", w.Name)
			}
			return err
		}
		return tx.AppendEvents(ctx, []gatehouse.Event{s.event(p, gatehouse.EventWebhookChanged, "settings", "update", "webhooks", "created "+strconv.Quote(w.Name))})
	})
	if err != nil {
		return gatehouse.Webhook{}, err
	}
	return w, nil
}

// UpdateWebhook replaces a webhook's URL, secret file and events; needs
// settings, update, webhooks. Notifications already enqueued go to the
// new URL, signed with the new key.
func (s *Service) UpdateWebhook(ctx context.Context, p *Principal, name string, r gatehouse.WebhookRequest) (gatehouse.Webhook, error) {
	if err := s.authorize(p, "settings", "update", "webhooks"); err != nil {
		return gatehouse.Webhook{}, err
	}
	if _, ok := s.notify.fileWebhook(name); ok {
		return gatehouse.Webhook{}, fileOwned(name)
	}
	if r.Name == "" {
		r.Name = name
	}
	if r.Name != name {
		return gatehouse.Webhook{}, gatehouse.Errorf(gatehouse.EINVALID, "name %s does not match the path; a webhook cannot be renamed", strconv.Quote(clipName(r.Name)))
	}
	w, err := CheckWebhook(r)
	if err != nil {
		return w, err
	}
	if err := CheckSecretFile(w.SecretFile); err != nil {
		return gatehouse.Webhook{}, err
	}
	now := s.now().UTC()
	err = s.write(ctx, p, func(tx gatehouse.Tx, _ *change) error {
		old, err := tx.GetWebhook(ctx, name)
		if err != nil {
			return err
		}
		w.CreatedAt, w.UpdatedAt = old.CreatedAt, now
		if err := tx.UpdateWebhook(ctx, w); err != nil {
			return err
		}
		return tx.AppendEvents(ctx, []gatehouse.Event{s.event(p, gatehouse.EventWebhookChanged, "settings", "update", "webhooks", "updated "+strconv.Quote(w.Name))})
	})
	if gatehouse.IsCode(err, gatehouse.ENOTFOUND) {
		return gatehouse.Webhook{}, gatehouse.Errorf(gatehouse.ENOTFOUND, "webhook %q not found", name)
	}
	if err != nil {
		return gatehouse.Webhook{}, err
	}
	return w, nil
}

// DeleteWebhook deletes a webhook; needs settings, update, webhooks. Its
// notifications not yet delivered are given up.
func (s *Service) DeleteWebhook(ctx context.Context, p *Principal, name string) error {
	if err := s.authorize(p, "settings", "update", "webhooks"); err != nil {
		return err
	}
	if _, ok := s.notify.fileWebhook(name); ok {
		return fileOwned(name)
	}
	now := s.now().UTC()
	err := s.write(ctx, p, func(tx gatehouse.Tx, _ *change) error {
		if err := tx.DeleteWebhook(ctx, name); err != nil {
			return err
		}
		// Not sent to a webhook made later under the same name.
		pending, err := tx.ListNotifications(ctx, gatehouse.NotificationFilter{Webhook: name, State: gatehouse.NotificationPending})
		if err != nil {
			return err
		}
		for _, n := range pending {
			n.State, n.NextAttemptAt, n.LastError, n.UpdatedAt = gatehouse.NotificationFailed, time.Time{}, "the webhook was deleted", now
			if err := tx.UpdateNotification(ctx, n); err != nil {
				return err
			}
		}
		return tx.AppendEvents(ctx, []gatehouse.Event{s.event(p, gatehouse.EventWebhookChanged, "settings", "update", "webhooks", "deleted "+strconv.Quote(name))})
	})
	if gatehouse.IsCode(err, gatehouse.ENOTFOUND) {
		return gatehouse.Errorf(gatehouse.ENOTFOUND, "webhook %s not found", strconv.Quote(clipName(name)))
	}
	return err
}

// maxListedDeliveries bounds ListDeliveries.
const maxListedDeliveries = 200

// ListDeliveries returns a webhook's notifications, newest first (at most
// 200): pending, delivered and given up, with their attempts and last
// status; never their bodies. Needs settings, get, webhooks.
func (s *Service) ListDeliveries(ctx context.Context, p *Principal, name string) ([]gatehouse.Notification, error) {
	if _, err := s.GetWebhook(ctx, p, name); err != nil {
		return nil, err
	}
	var out []gatehouse.Notification
	err := s.store.View(ctx, func(tx gatehouse.Tx) error {
		var err error
		out, err = tx.ListNotifications(ctx, gatehouse.NotificationFilter{Webhook: name})
		return err
	})
	if err != nil {
		return nil, err
	}
	slices.Reverse(out)
	if len(out) > maxListedDeliveries {
		out = out[:maxListedDeliveries]
	}
	for i := range out {
		out[i].Body = nil
	}
	return out, nil
}
