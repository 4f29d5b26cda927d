package gatehouse

import "time"

// Notification events: what a webhook may subscribe to. Four are also
// audit event types (token.revoked, token.expired, token.leaked,
// token.reuse_detected); token.expiring is only ever a notification.
const (
	NotifyTokenExpiring      = "token.expiring"
	NotifyTokenExpired       = "token.expired"
	NotifyTokenRevoked       = "token.revoked"
	NotifyTokenLeaked        = "token.leaked"
	NotifyTokenReuseDetected = "token.reuse_detected"
)

// NotifyEvents lists every event a webhook may subscribe to; "*" in a
// webhook's Events stands for all of them.
var NotifyEvents = []string{NotifyTokenExpiring, NotifyTokenExpired, NotifyTokenRevoked, NotifyTokenLeaked, NotifyTokenReuseDetected}

// EventNotificationFailed is the audit event of a notification given up
// after its last attempt (Detail: the webhook, the event and the last
// status; never the body or the secret).
const EventNotificationFailed = "notification.failed"

// EventWebhookChanged is the audit event of a webhook created, changed or
// deleted through the API (Detail: what, and the webhook's name).
const EventWebhookChanged = "webhook.changed"

// Webhook is an endpoint that is sent notifications. The HMAC key is read
// from SecretFile, a file on every server, each time a notification is
// sent: it is never stored, shown or logged.
type Webhook struct {
	Name       string    `json:"name"`
	URL        string    `json:"url"`
	SecretFile string    `json:"secretFile"`
	Events     []string  `json:"events"`
	FromFile   bool      `json:"fromFile,omitempty"` // set in the configuration file: read-only
	CreatedAt  time.Time `json:"createdAt,omitzero"`
	UpdatedAt  time.Time `json:"updatedAt,omitzero"`
}

// Wants says whether the webhook subscribes to event.
func (w Webhook) Wants(event string) bool {
	for _, e := range w.Events {
		if e == "*" || e == event {
			return true
		}
	}
	return false
}

// WebhookRequest is the body of POST /api/v1/webhooks and PUT
// /api/v1/webhooks/{name} (where Name may be left out).
type WebhookRequest struct {
	Name       string   `json:"name"`
	URL        string   `json:"url"`
	SecretFile string   `json:"secretFile"`
	Events     []string `json:"events"`
}

// Notification states.
const (
	NotificationPending   = "pending"
	NotificationDelivered = "delivered"
	NotificationFailed    = "failed"
)

// Notification is one message of the outbox: a webhook's copy of one
// event, enqueued in the transaction that made the change it reports and
// sent after it committed. Key is unique per webhook (for token.expiring,
// one per token and lead time), so an event is enqueued once however
// many servers notice it. DeliveryID is random and sent with every
// attempt, so a receiver can drop a redelivery.
type Notification struct {
	ID            int64     `json:"id"`
	Webhook       string    `json:"webhook"`
	Event         string    `json:"event"`
	Key           string    `json:"key"`
	DeliveryID    string    `json:"deliveryId"`
	Body          []byte    `json:"-"` // the JSON sent, never a secret
	State         string    `json:"state"`
	Attempts      int       `json:"attempts"`
	NextAttemptAt time.Time `json:"nextAttemptAt,omitzero"`
	LastStatus    int       `json:"lastStatus,omitempty"` // HTTP status of the last attempt; 0: none or no answer
	LastError     string    `json:"lastError,omitempty"`  // why the last attempt failed, safe to show
	CreatedAt     time.Time `json:"createdAt"`
	UpdatedAt     time.Time `json:"updatedAt"`
}

// NotificationFilter selects notifications; zero fields do not filter.
// ListNotifications answers oldest first (by NextAttemptAt when DueAt is
// set, else by id), at most Limit (0: no limit).
type NotificationFilter struct {
	Webhook string
	State   string
	DueAt   time.Time // pending with NextAttemptAt <= DueAt
	Limit   int
}
