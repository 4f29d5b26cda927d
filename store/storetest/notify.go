package storetest

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
)

// testWebhooks: create, get, list (by name), update (created_at kept),
// delete, with the contract's error codes.
func testWebhooks(t *testing.T, open func(t *testing.T) gatehouse.Store) {
	s := open(t)
	ctx := t.Context()
	b := gatehouse.Webhook{Name: "b-ops", URL: "https://hooks.example/b", SecretFile: "/run/secrets/b", Events: []string{"*"}, CreatedAt: t0, UpdatedAt: t0}
	a := gatehouse.Webhook{Name: "a-ci", URL: "http://10.0.0.1:8080/hook?x=1", SecretFile: "/run/secrets/a",
		Events: []string{gatehouse.NotifyTokenExpiring, gatehouse.NotifyTokenRevoked}, CreatedAt: at(time.Second), UpdatedAt: at(time.Second)}
	inTx(t, s, func(tx gatehouse.Tx) error {
		if err := tx.CreateWebhook(ctx, b); err != nil {
			return err
		}
		return tx.CreateWebhook(ctx, a)
	})
	inTx(t, s, func(tx gatehouse.Tx) error {
		wantCode(t, "create a taken name", tx.CreateWebhook(ctx, b), gatehouse.ECONFLICT)
		_, err := tx.GetWebhook(ctx, "nope")
		wantCode(t, "get unknown", err, gatehouse.ENOTFOUND)
		wantCode(t, "update unknown", tx.UpdateWebhook(ctx, gatehouse.Webhook{Name: "nope", Events: []string{}}), gatehouse.ENOTFOUND)
		wantCode(t, "delete unknown", tx.DeleteWebhook(ctx, "nope"), gatehouse.ENOTFOUND)
		return nil
	})
	got := read(t, s, func(tx gatehouse.Tx) (gatehouse.Webhook, error) { return tx.GetWebhook(ctx, "a-ci") })
	equal(t, "webhook", got, a)
	list := read(t, s, func(tx gatehouse.Tx) ([]gatehouse.Webhook, error) { return tx.ListWebhooks(ctx) })
	equal(t, "list sorted by name", list, []gatehouse.Webhook{a, b})

	changed := a
	changed.URL, changed.SecretFile, changed.Events, changed.UpdatedAt = "https://hooks.example/a2", "/run/secrets/a2", []string{"*"}, at(time.Hour)
	changed.CreatedAt = at(99 * time.Hour) // not written
	inTx(t, s, func(tx gatehouse.Tx) error { return tx.UpdateWebhook(ctx, changed) })
	changed.CreatedAt = a.CreatedAt
	got = read(t, s, func(tx gatehouse.Tx) (gatehouse.Webhook, error) { return tx.GetWebhook(ctx, "a-ci") })
	equal(t, "updated webhook keeps its creation time", got, changed)

	inTx(t, s, func(tx gatehouse.Tx) error { return tx.DeleteWebhook(ctx, "a-ci") })
	list = read(t, s, func(tx gatehouse.Tx) ([]gatehouse.Webhook, error) { return tx.ListWebhooks(ctx) })
	equal(t, "after delete", list, []gatehouse.Webhook{b})
}

func notification(webhook, key string, next time.Time) gatehouse.Notification {
	return gatehouse.Notification{
		Webhook: webhook, Event: gatehouse.NotifyTokenRevoked, Key: key, DeliveryID: "d-" + webhook + "-" + key,
		Body: []byte(`{"event":"token.revoked"}`), State: gatehouse.NotificationPending,
		NextAttemptAt: next, CreatedAt: t0, UpdatedAt: t0,
	}
}

// testNotifications: the outbox. A (webhook, key) is enqueued once (a
// second enqueue reports false and writes nothing); ids increase; the due
// list is pending notifications due by the instant, soonest first; an
// update writes the delivery fields; pruning deletes settled ones only;
// a rolled-back enqueue leaves nothing.
func testNotifications(t *testing.T, open func(t *testing.T) gatehouse.Store) {
	s := open(t)
	ctx := t.Context()
	var ids []int64
	inTx(t, s, func(tx gatehouse.Tx) error {
		ids = ids[:0]
		for _, n := range []gatehouse.Notification{
			notification("ci", "token.revoked:1", at(2*time.Second)),
			notification("ci", "token.revoked:2", at(time.Second)),
			notification("ops", "token.revoked:1", at(3*time.Second)),
		} {
			ok, err := tx.EnqueueNotification(ctx, n)
			if err != nil {
				return err
			}
			if !ok {
				t.Errorf("enqueue %s/%s: got false, want true", n.Webhook, n.Key)
			}
		}
		dup := notification("ci", "token.revoked:1", at(0))
		dup.DeliveryID = "other"
		ok, err := tx.EnqueueNotification(ctx, dup)
		if err != nil {
			return err
		}
		if ok {
			t.Errorf("enqueue a taken key: got true, want false")
		}
		all, err := tx.ListNotifications(ctx, gatehouse.NotificationFilter{})
		for _, n := range all {
			ids = append(ids, n.ID)
		}
		return err
	})
	if len(ids) != 3 || !(ids[0] < ids[1] && ids[1] < ids[2]) {
		t.Fatalf("ids: got %v, want three, increasing", ids)
	}
	first := read(t, s, func(tx gatehouse.Tx) (gatehouse.Notification, error) { return tx.GetNotification(ctx, ids[0]) })
	want := notification("ci", "token.revoked:1", at(2*time.Second))
	want.ID = ids[0]
	equal(t, "first notification (the duplicate changed nothing)", first, want)
	_, err := readErr(ctx, s, func(tx gatehouse.Tx) (gatehouse.Notification, error) { return tx.GetNotification(ctx, ids[2]+100) })
	wantCode(t, "get unknown", err, gatehouse.ENOTFOUND)

	due := read(t, s, func(tx gatehouse.Tx) ([]gatehouse.Notification, error) {
		return tx.ListNotifications(ctx, gatehouse.NotificationFilter{DueAt: at(2 * time.Second)})
	})
	if len(due) != 2 || due[0].ID != ids[1] || due[1].ID != ids[0] {
		t.Errorf("due at +2s: got %v, want ids %d, %d (soonest first)", keys(due), ids[1], ids[0])
	}
	limited := read(t, s, func(tx gatehouse.Tx) ([]gatehouse.Notification, error) {
		return tx.ListNotifications(ctx, gatehouse.NotificationFilter{Webhook: "ci", Limit: 1})
	})
	if len(limited) != 1 || limited[0].ID != ids[0] {
		t.Errorf("webhook ci, limit 1: got %v, want id %d", keys(limited), ids[0])
	}

	done := first
	done.State, done.Attempts, done.LastStatus, done.LastError, done.UpdatedAt = gatehouse.NotificationDelivered, 2, 204, "", at(time.Minute)
	done.NextAttemptAt = time.Time{}
	failed := read(t, s, func(tx gatehouse.Tx) (gatehouse.Notification, error) { return tx.GetNotification(ctx, ids[1]) })
	failed.State, failed.Attempts, failed.LastStatus, failed.LastError, failed.UpdatedAt = gatehouse.NotificationFailed, 10, 500, "answered 500", at(2*time.Minute)
	inTx(t, s, func(tx gatehouse.Tx) error {
		if err := tx.UpdateNotification(ctx, done); err != nil {
			return err
		}
		wantCode(t, "update unknown", tx.UpdateNotification(ctx, gatehouse.Notification{ID: ids[2] + 100}), gatehouse.ENOTFOUND)
		return tx.UpdateNotification(ctx, failed)
	})
	got := read(t, s, func(tx gatehouse.Tx) (gatehouse.Notification, error) { return tx.GetNotification(ctx, ids[0]) })
	equal(t, "delivered", got, done)
	due = read(t, s, func(tx gatehouse.Tx) ([]gatehouse.Notification, error) {
		return tx.ListNotifications(ctx, gatehouse.NotificationFilter{DueAt: at(time.Hour)})
	})
	if len(due) != 1 || due[0].ID != ids[2] {
		t.Errorf("due after settling two: got %v, want id %d", keys(due), ids[2])
	}
	byState := read(t, s, func(tx gatehouse.Tx) ([]gatehouse.Notification, error) {
		return tx.ListNotifications(ctx, gatehouse.NotificationFilter{State: gatehouse.NotificationFailed})
	})
	if len(byState) != 1 || byState[0].ID != ids[1] {
		t.Errorf("failed: got %v, want id %d", keys(byState), ids[1])
	}

	n := read(t, s, func(tx gatehouse.Tx) (int, error) { return tx.PruneNotifications(ctx, at(time.Minute)) })
	equal(t, "pruned at +1m (the delivered one)", n, 1)
	n = read(t, s, func(tx gatehouse.Tx) (int, error) { return tx.PruneNotifications(ctx, at(time.Hour)) })
	equal(t, "pruned at +1h (the failed one; never a pending one)", n, 1)
	left := read(t, s, func(tx gatehouse.Tx) ([]gatehouse.Notification, error) {
		return tx.ListNotifications(ctx, gatehouse.NotificationFilter{})
	})
	if len(left) != 1 || left[0].ID != ids[2] {
		t.Errorf("left: got %v, want id %d", keys(left), ids[2])
	}
	// A pruned key may be enqueued again.
	again := read(t, s, func(tx gatehouse.Tx) (bool, error) {
		return tx.EnqueueNotification(ctx, notification("ci", "token.revoked:1", at(0)))
	})
	equal(t, "enqueue a pruned key", again, true)

	errRollback := errors.New("roll back")
	err = s.Tx(ctx, func(tx gatehouse.Tx) error {
		if _, err := tx.EnqueueNotification(ctx, notification("ci", "token.revoked:rolled-back", at(0))); err != nil {
			return err
		}
		return errRollback
	})
	if !errors.Is(err, errRollback) {
		t.Fatalf("rolled-back Tx: got %v", err)
	}
	left = read(t, s, func(tx gatehouse.Tx) ([]gatehouse.Notification, error) {
		return tx.ListNotifications(ctx, gatehouse.NotificationFilter{Webhook: "ci"})
	})
	for _, n := range left {
		if n.Key == "token.revoked:rolled-back" {
			t.Errorf("a rolled-back enqueue was kept")
		}
	}
}

// testConcurrentEnqueue: servers racing to enqueue one key (two scanners
// noticing one expiring token) leave exactly one notification, and every
// transaction commits.
func testConcurrentEnqueue(t *testing.T, open func(t *testing.T) gatehouse.Store) {
	s := open(t)
	ctx := t.Context()
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		inserted int
	)
	for i := range 8 {
		wg.Go(func() {
			var ok bool
			err := s.Tx(ctx, func(tx gatehouse.Tx) error {
				n := notification("ci", "token.expiring:1:24h", at(0))
				n.DeliveryID = "racer-" + string(rune('a'+i))
				var err error
				ok, err = tx.EnqueueNotification(ctx, n)
				return err
			})
			if err != nil {
				t.Errorf("enqueue %d: %v", i, err)
				return
			}
			if ok {
				mu.Lock()
				inserted++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	all := read(t, s, func(tx gatehouse.Tx) ([]gatehouse.Notification, error) {
		return tx.ListNotifications(ctx, gatehouse.NotificationFilter{})
	})
	if len(all) != 1 || inserted != 1 {
		t.Errorf("got %d notifications (%d enqueues reported inserting), want 1", len(all), inserted)
	}
}

func keys(ns []gatehouse.Notification) []int64 {
	out := make([]int64, len(ns))
	for i, n := range ns {
		out[i] = n.ID
	}
	return out
}

// readErr is read for a call expected to fail: it returns fn's error.
func readErr[T any](ctx context.Context, s gatehouse.Store, fn func(tx gatehouse.Tx) (T, error)) (T, error) {
	var v T
	err := s.View(ctx, func(tx gatehouse.Tx) (err error) {
		v, err = fn(tx)
		return err
	})
	return v, err
}
