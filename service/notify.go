package service

import (
	"context"
	"encoding/json"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/token"
)

// Webhook notifications (docs/operations.md, "Notifications").
//
// A lifecycle change that is reported (a token revoked, expired, leaked,
// reused after rotation, or nearing its expiry) enqueues one notification
// per subscribed webhook in the transaction that makes the change: the
// outbox. A change that rolls back notifies nothing, and one that commits
// is never lost. After commit, one server at a time (gatehouse.Locker;
// SQLite has one server) sends what is due, signed with the webhook's
// HMAC key, and retries failures with exponential backoff until
// maxAttempts. Delivery is at least once: a server that dies between the
// receiver's 2xx and marking the notification delivered sends it again,
// with the same delivery id (X-Gatehouse-Delivery) for the receiver to
// drop. No request waits on a delivery.

// NotifyOptions configures webhook notifications.
type NotifyOptions struct {
	// Webhooks are those of the configuration file: read-only through
	// the API. They must pass CheckWebhook.
	Webhooks []gatehouse.Webhook
	// ExpiryWarnings are the lead times before a token's expiry at which
	// token.expiring is sent; default 168h and 24h.
	ExpiryWarnings []time.Duration
	// BaseURL is how receivers reach this server (https://gatehouse.example),
	// the start of the links in a notification; empty: the links are paths.
	BaseURL string
	// Every is how often due notifications are looked for (and the
	// expiry scan runs, at most once a minute); default 1s. Negative: no
	// background delivery, for tests that call DeliverNotifications and
	// ScanExpiring themselves.
	Every time.Duration
	// MaxAttempts is how many times one notification is tried before it
	// is given up (audited as notification.failed); default 10.
	MaxAttempts int
	// Client sends the notifications; default: a client with timeouts
	// that follows no redirect (webhookClient).
	Client *http.Client
}

// DefaultExpiryWarnings are the default lead times of token.expiring.
var DefaultExpiryWarnings = []time.Duration{7 * 24 * time.Hour, 24 * time.Hour}

// notifier is the service's notification settings.
type notifier struct {
	file        []gatehouse.Webhook // the configuration file's, by name
	leads       []time.Duration     // descending
	baseURL     string
	every       time.Duration
	maxAttempts int
	client      *http.Client
	wake        chan struct{}
	lastScan    time.Time // of the background loop

	// scanned holds the token.expiring keys (webhook and key) this server
	// has seen committed, with their token's expiry, so that a scan does
	// not write them again every minute; entries go when the token
	// expires. The outbox's unique key, not this, keeps them once.
	scanMu  sync.Mutex
	scanned map[string]time.Time
}

func newNotifier(o NotifyOptions) (*notifier, error) {
	n := &notifier{
		baseURL:     strings.TrimRight(o.BaseURL, "/"),
		every:       orDur(o.Every, time.Second),
		maxAttempts: o.MaxAttempts,
		client:      o.Client,
		wake:        make(chan struct{}, 1),
		scanned:     map[string]time.Time{},
	}
	if n.maxAttempts <= 0 {
		n.maxAttempts = 10
	}
	if n.client == nil {
		n.client = webhookClient()
	}
	leads := o.ExpiryWarnings
	if leads == nil {
		leads = DefaultExpiryWarnings
	}
	if err := CheckExpiryWarnings(leads); err != nil {
		return nil, err
	}
	n.leads = slices.Clone(leads)
	slices.Sort(n.leads)
	slices.Reverse(n.leads)
	seen := map[string]bool{}
	for _, w := range o.Webhooks {
		w, err := CheckWebhook(gatehouse.WebhookRequest{Name: w.Name, URL: w.URL, SecretFile: w.SecretFile, Events: w.Events})
		if err != nil {
			return nil, err
		}
		if seen[w.Name] {
			return nil, gatehouse.Errorf(gatehouse.EINVALID, "webhook %q is declared twice", w.Name)
		}
		seen[w.Name] = true
		w.FromFile = true
		n.file = append(n.file, w)
	}
	slices.SortFunc(n.file, func(a, b gatehouse.Webhook) int { return strings.Compare(a.Name, b.Name) })
	return n, nil
}

// fileWebhook returns the configuration file's webhook of that name.
func (n *notifier) fileWebhook(name string) (gatehouse.Webhook, bool) {
	for _, w := range n.file {
		if w.Name == name {
			return w, true
		}
	}
	return gatehouse.Webhook{}, false
}

// ExpiryWarnings returns the lead times of token.expiring, longest first.
func (s *Service) ExpiryWarnings() []time.Duration { return slices.Clone(s.notify.leads) }

// CheckExpiryWarnings checks lead times: each from 1 minute to 366 days,
// at most 10, none twice.
func CheckExpiryWarnings(leads []time.Duration) error {
	if len(leads) > 10 {
		return gatehouse.Errorf(gatehouse.EINVALID, "at most 10 expiry warnings")
	}
	for i, d := range leads {
		if d < time.Minute || d > 366*24*time.Hour {
			return gatehouse.Errorf(gatehouse.EINVALID, "expiry warning %s: must be between 1m and 366 days", d)
		}
		if slices.Contains(leads[:i], d) {
			return gatehouse.Errorf(gatehouse.EINVALID, "expiry warning %s is given twice", d)
		}
	}
	return nil
}

// notifiable says whether event is one a webhook may subscribe to.
func notifiable(event string) bool { return slices.Contains(gatehouse.NotifyEvents, event) }

// notifyTokens enqueues, inside tx (the transaction that makes the change
// it reports, so that it commits or rolls back with it), one notification
// of event for each token in toks and each webhook subscribed to event.
// event is one of gatehouse.NotifyEvents other than token.expiring (the
// expiry scan enqueues those); detail is a short reason shown to the
// receiver (never a secret). A token already notified of event to a
// webhook is not enqueued again. Session tokens are notified only when
// leaked or reused: their revocation (a logout) and expiry are routine.
// It wakes the delivery loop, which sends after the commit.
func (s *Service) notifyTokens(ctx context.Context, tx gatehouse.Tx, event string, toks []gatehouse.Token, detail string) error {
	if len(toks) == 0 || !notifiable(event) {
		return nil
	}
	hooks, err := s.webhooksTx(ctx, tx)
	if err != nil {
		return err
	}
	now := s.now().UTC()
	for _, w := range hooks {
		if !w.Wants(event) {
			continue
		}
		for _, t := range toks {
			if t.Kind == gatehouse.KindSession && (event == gatehouse.NotifyTokenRevoked || event == gatehouse.NotifyTokenExpired) {
				continue // a logout, or a login's end: not news
			}
			if _, err := s.enqueue(ctx, tx, w.Name, event, event+":"+t.ID, t, detail, now, 0); err != nil {
				return err
			}
		}
	}
	s.wakeNotifier()
	return nil
}

func (s *Service) wakeNotifier() {
	select {
	case s.notify.wake <- struct{}{}:
	default:
	}
}

// notificationBody is the JSON a receiver gets. It names the token (id,
// name, owner, expiry) and never holds a secret.
type notificationBody struct {
	Event      string            `json:"event"`
	DeliveryID string            `json:"deliveryId"`
	OccurredAt time.Time         `json:"occurredAt"`
	Detail     string            `json:"detail,omitempty"`
	Token      notificationToken `json:"token"`
	// token.expiring: the seconds left and the lead time reached.
	ExpiresIn   *int64 `json:"expiresIn,omitempty"`
	Lead        string `json:"lead,omitempty"`
	LeadSeconds int64  `json:"leadSeconds,omitempty"`
	// RotateURL is where to get a successor: the API's rotate endpoint
	// for an API token (POST), the role's page for a project token.
	RotateURL    string `json:"rotateURL"`
	DashboardURL string `json:"dashboardURL"`
}

type notificationToken struct {
	ID        string              `json:"id"`
	Name      string              `json:"name"`
	Kind      gatehouse.TokenKind `json:"kind"`
	Owner     string              `json:"owner"` // the account, or project/role
	Account   string              `json:"account,omitempty"`
	Project   string              `json:"project,omitempty"`
	Role      string              `json:"role,omitempty"`
	IssuedAt  time.Time           `json:"issuedAt,omitzero"`
	ExpiresAt time.Time           `json:"expiresAt,omitzero"`
}

// enqueue writes one notification of t for webhook, unless the webhook
// has one with that key already (then it reports false); lead is
// token.expiring's.
func (s *Service) enqueue(ctx context.Context, tx gatehouse.Tx, webhook, event, key string, t gatehouse.Token, detail string, now time.Time, lead time.Duration) (bool, error) {
	id, err := token.NewID(s.rand)
	if err != nil {
		return false, gatehouse.Internal(err)
	}
	b := notificationBody{
		Event: event, DeliveryID: id.String(), OccurredAt: now, Detail: detail,
		Token: notificationToken{
			ID: t.ID, Name: t.Name, Kind: t.Kind, Account: t.Account, Project: t.Project, Role: t.Role,
			IssuedAt: t.IssuedAt.UTC(), ExpiresAt: t.ExpiresAt.UTC(),
		},
	}
	if t.Kind == gatehouse.KindProject {
		b.Token.Owner = t.Project + "/" + t.Role
		b.DashboardURL = s.notify.baseURL + "/projects/" + url.PathEscape(t.Project)
		b.RotateURL = b.DashboardURL + "/roles/" + url.PathEscape(t.Role) + "/tokens/new"
	} else {
		b.Token.Owner = t.Account
		b.DashboardURL = s.notify.baseURL + "/accounts/" + url.PathEscape(t.Account)
		b.RotateURL = s.notify.baseURL + "/api/v1/account/" + url.PathEscape(t.Account) + "/token/" + url.PathEscape(t.ID) + "/rotate"
	}
	if lead > 0 {
		left := int64(t.ExpiresAt.Sub(now) / time.Second)
		b.ExpiresIn = &left
		b.Lead = lead.String()
		b.LeadSeconds = int64(lead / time.Second)
	}
	body, err := json.Marshal(b)
	if err != nil {
		return false, gatehouse.Internal(err)
	}
	return tx.EnqueueNotification(ctx, gatehouse.Notification{
		Webhook: webhook, Event: event, Key: key, DeliveryID: b.DeliveryID, Body: body,
		State: gatehouse.NotificationPending, NextAttemptAt: now, CreatedAt: now, UpdatedAt: now,
	})
}

// ScanExpiring enqueues token.expiring for every live API and project
// token whose expiry is within a lead time, once per token and lead time.
// Session tokens are left out: they are a login's, renewed by logging in.
// Of the lead times a token is within, only the shortest is sent (a
// server that was down sends the most urgent warning, not every one it
// missed), and only lead times shorter than the token's whole life: a
// token minted for 12 hours is not warned 24 hours ahead. It returns how
// many notifications it enqueued.
func (s *Service) ScanExpiring(ctx context.Context) (int, error) {
	if len(s.notify.leads) == 0 {
		return 0, nil
	}
	now := s.now().UTC()
	n := 0
	var seen map[string]time.Time // this run's keys, added to scanned after commit
	s.notify.scanMu.Lock()
	defer s.notify.scanMu.Unlock()
	for k, exp := range s.notify.scanned {
		if !exp.After(now) {
			delete(s.notify.scanned, k)
		}
	}
	err := s.store.Tx(ctx, func(tx gatehouse.Tx) error {
		n = 0
		seen = map[string]time.Time{}
		hooks, err := s.webhooksTx(ctx, tx)
		if err != nil || !slices.ContainsFunc(hooks, func(w gatehouse.Webhook) bool { return w.Wants(gatehouse.NotifyTokenExpiring) }) {
			return err
		}
		toks, err := tx.ListTokens(ctx, gatehouse.TokenFilter{ExpiredBefore: now.Add(s.notify.leads[0])})
		if err != nil {
			return err
		}
		for _, t := range toks {
			if t.Kind == gatehouse.KindSession || !t.ExpiresAt.After(now) {
				continue
			}
			lead := s.leadFor(t, now)
			if lead == 0 {
				continue
			}
			key := gatehouse.NotifyTokenExpiring + ":" + t.ID + ":" + lead.String()
			for _, w := range hooks {
				if !w.Wants(gatehouse.NotifyTokenExpiring) {
					continue
				}
				if _, done := s.notify.scanned[w.Name+" "+key]; done {
					continue
				}
				added, err := s.enqueue(ctx, tx, w.Name, gatehouse.NotifyTokenExpiring, key, t, "", now, lead)
				if err != nil {
					return err
				}
				seen[w.Name+" "+key] = t.ExpiresAt
				if added {
					n++
				}
			}
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	maps.Copy(s.notify.scanned, seen)
	if n > 0 {
		s.wakeNotifier()
	}
	return n, nil
}

// leadFor is the shortest lead time that t's expiry is within and that
// is shorter than t's life; 0 for none.
func (s *Service) leadFor(t gatehouse.Token, now time.Time) time.Duration {
	left, life := t.ExpiresAt.Sub(now), t.ExpiresAt.Sub(t.IssuedAt)
	var lead time.Duration
	for _, l := range s.notify.leads { // longest first
		if left <= l && life > l {
			lead = l
		}
	}
	return lead
}

// ExpiringToken is a token shown with an "expires in N days" warning.
type ExpiringToken struct {
	gatehouse.Token
	Days int // whole days left, rounded up (1: within a day)
}

// ExpiringSoon picks, of toks, those not yet expired whose expiry is
// within the longest expiry warning (7 days by default), soonest first:
// what the dashboard warns about. Without expiry warnings, none.
func (s *Service) ExpiringSoon(toks []gatehouse.Token) []ExpiringToken {
	if len(s.notify.leads) == 0 {
		return nil
	}
	now := s.now()
	var out []ExpiringToken
	for _, t := range toks {
		if t.ExpiresAt.IsZero() || !t.ExpiresAt.After(now) || t.ExpiresAt.Sub(now) > s.notify.leads[0] {
			continue
		}
		left := t.ExpiresAt.Sub(now)
		days := int((left + 24*time.Hour - 1) / (24 * time.Hour))
		out = append(out, ExpiringToken{Token: t, Days: max(days, 1)})
	}
	slices.SortStableFunc(out, func(a, b ExpiringToken) int { return a.ExpiresAt.Compare(b.ExpiresAt) })
	return out
}
