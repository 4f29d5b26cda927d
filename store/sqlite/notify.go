package sqlite

import (
	"context"
	"strconv"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse"
)

// ---- webhooks

const webhookCols = `name, url, secret_file, events, created_at, updated_at`

func scanWebhook(sc scanner) (gatehouse.Webhook, error) {
	var (
		w                gatehouse.Webhook
		events           string
		created, updated int64
	)
	if err := sc.Scan(&w.Name, &w.URL, &w.SecretFile, &events, &created, &updated); err != nil {
		return w, err
	}
	w.CreatedAt, w.UpdatedAt = fromNanos(created), fromNanos(updated)
	w.Events = []string{}
	return w, fromJSON(events, &w.Events)
}

func (t *tx) CreateWebhook(ctx context.Context, w gatehouse.Webhook) error {
	var e encoder
	events := e.list(w.Events)
	if err := e.check(); err != nil {
		return err
	}
	return insert(ctx, t.tx, "a webhook with this name exists",
		`INSERT INTO webhooks (`+webhookCols+`) VALUES ($1, $2, $3, $4, $5, $6)`,
		w.Name, w.URL, w.SecretFile, events, nanos(w.CreatedAt), nanos(w.UpdatedAt))
}

func (t *tx) GetWebhook(ctx context.Context, name string) (gatehouse.Webhook, error) {
	w, err := scanWebhook(t.tx.QueryRowContext(ctx, `SELECT `+webhookCols+` FROM webhooks WHERE name = $1`, name))
	return w, one(err, "webhook")
}

func (t *tx) ListWebhooks(ctx context.Context) ([]gatehouse.Webhook, error) {
	return list(ctx, t, scanWebhook, `SELECT `+webhookCols+` FROM webhooks ORDER BY name`)
}

func (t *tx) UpdateWebhook(ctx context.Context, w gatehouse.Webhook) error {
	var e encoder
	events := e.list(w.Events)
	if err := e.check(); err != nil {
		return err
	}
	return t.execOne(ctx, "webhook", `UPDATE webhooks SET url = $1, secret_file = $2, events = $3, updated_at = $4 WHERE name = $5`,
		w.URL, w.SecretFile, events, nanos(w.UpdatedAt), w.Name)
}

func (t *tx) DeleteWebhook(ctx context.Context, name string) error {
	return t.execOne(ctx, "webhook", `DELETE FROM webhooks WHERE name = $1`, name)
}

// ---- notifications (the outbox)

const notificationCols = `id, webhook, event, event_key, delivery_id, body, state, attempts, next_attempt_at, last_status, last_error, created_at, updated_at`

func scanNotification(sc scanner) (gatehouse.Notification, error) {
	var (
		n                      gatehouse.Notification
		next, created, updated int64
	)
	err := sc.Scan(&n.ID, &n.Webhook, &n.Event, &n.Key, &n.DeliveryID, &n.Body, &n.State, &n.Attempts,
		&next, &n.LastStatus, &n.LastError, &created, &updated)
	n.NextAttemptAt, n.CreatedAt, n.UpdatedAt = fromNanos(next), fromNanos(created), fromNanos(updated)
	return n, err
}

// EnqueueNotification skips a taken (webhook, event_key) without an
// error: the event is already in the outbox.
func (t *tx) EnqueueNotification(ctx context.Context, n gatehouse.Notification) (bool, error) {
	r, err := t.tx.ExecContext(ctx, `INSERT INTO notifications (webhook, event, event_key, delivery_id, body, state,
		attempts, next_attempt_at, last_status, last_error, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) ON CONFLICT (webhook, event_key) DO NOTHING`,
		n.Webhook, n.Event, n.Key, n.DeliveryID, nonNilBody(n.Body), n.State, n.Attempts, nanos(n.NextAttemptAt),
		n.LastStatus, n.LastError, nanos(n.CreatedAt), nanos(n.UpdatedAt))
	if err != nil {
		return false, wrap(err)
	}
	k, err := r.RowsAffected()
	return k > 0, wrap(err)
}

func (t *tx) GetNotification(ctx context.Context, id int64) (gatehouse.Notification, error) {
	n, err := scanNotification(t.tx.QueryRowContext(ctx, `SELECT `+notificationCols+` FROM notifications WHERE id = $1`, id))
	return n, one(err, "notification")
}

func (t *tx) ListNotifications(ctx context.Context, f gatehouse.NotificationFilter) ([]gatehouse.Notification, error) {
	w := &where{}
	if f.Webhook != "" {
		w.add("webhook = ?", f.Webhook)
	}
	if f.State != "" {
		w.add("state = ?", f.State)
	}
	order := " ORDER BY id"
	if !f.DueAt.IsZero() {
		w.add("state = ?", gatehouse.NotificationPending)
		w.add("next_attempt_at <= ?", nanos(f.DueAt))
		order = " ORDER BY next_attempt_at, id"
	}
	var q strings.Builder
	q.WriteString(`SELECT ` + notificationCols + ` FROM notifications` + w.String() + order)
	if f.Limit > 0 {
		w.args = append(w.args, f.Limit)
		q.WriteString(" LIMIT $" + strconv.Itoa(len(w.args)))
	}
	return list(ctx, t, scanNotification, q.String(), w.args...)
}

func (t *tx) UpdateNotification(ctx context.Context, n gatehouse.Notification) error {
	return t.execOne(ctx, "notification", `UPDATE notifications SET state = $1, attempts = $2, next_attempt_at = $3,
		last_status = $4, last_error = $5, updated_at = $6 WHERE id = $7`,
		n.State, n.Attempts, nanos(n.NextAttemptAt), n.LastStatus, n.LastError, nanos(n.UpdatedAt), n.ID)
}

func (t *tx) PruneNotifications(ctx context.Context, before time.Time) (int, error) {
	r, err := t.tx.ExecContext(ctx, `DELETE FROM notifications WHERE state <> $1 AND updated_at <= $2`,
		gatehouse.NotificationPending, nanos(before))
	if err != nil {
		return 0, wrap(err)
	}
	k, err := r.RowsAffected()
	return int(k), wrap(err)
}

// nonNilBody stores a nil body as an empty one (the column is NOT NULL).
func nonNilBody(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}
