package service

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/gatehouse/gatehouse"
)

// notifyLock is the gatehouse.Locker job name of delivery and the expiry
// scan: one server at a time sends, so a notification goes out once.
const notifyLock = "notifications"

// Delivery bounds.
const (
	// deliverBatch is how many due notifications of one webhook a pass
	// takes; deliverParallel how many webhooks it sends to at once.
	deliverBatch    = 100
	deliverParallel = 8
	// minSecretLen and maxSecretLen bound a webhook's key: at least 32
	// bytes (a random key; a short file could be guessed from the
	// signatures), at most 4096.
	minSecretLen = 32
	maxSecretLen = 4096
	// maxDiscard is how much of a receiver's answer is read (and thrown
	// away) so that the connection can be reused; the rest is dropped.
	maxDiscard = 64 << 10
	// firstBackoff doubles after each failed attempt up to maxBackoff:
	// 30s, 1m, 2m, ... 1h, 1h: ten attempts span about four and a half
	// hours.
	firstBackoff = 30 * time.Second
	maxBackoff   = time.Hour
	// scanEvery is how often the background loop scans for expiring
	// tokens and prunes settled notifications.
	scanEvery = time.Minute
	// keepSettled is how long delivered and failed notifications are kept
	// (listed through the API) at least; see pruneNotifications.
	keepSettled = 30 * 24 * time.Hour
)

// webhookClient is the default client: bounded in time, and it follows
// no redirect (a receiver that answers 3xx has not taken the message, and
// a redirect must not carry a signed body to another host).
func webhookClient() *http.Client {
	return &http.Client{
		Timeout: 10 * time.Second,
		Transport: &http.Transport{
			Proxy:                 http.ProxyFromEnvironment,
			DialContext:           (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
			TLSHandshakeTimeout:   5 * time.Second,
			ResponseHeaderTimeout: 10 * time.Second,
			MaxIdleConnsPerHost:   2,
			IdleConnTimeout:       90 * time.Second,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// backoff is the wait after the attempts-th failed attempt.
func backoff(attempts int) time.Duration {
	d := firstBackoff
	for i := 1; i < attempts && d < maxBackoff; i++ {
		d *= 2
	}
	return min(d, maxBackoff)
}

// readSecret reads a webhook's HMAC key from its file, without one final
// line break (LF or CR LF). The file must be a regular file holding 32 to
// 4096 bytes: a FIFO or a device (which could block the read for ever) is
// refused before it is read, and so is a short file, whose content an
// administrator who names it could guess offline from the signatures. One
// message for every refusal, and never the content: the answer does not
// tell a missing file from an unreadable or a short one.
func readSecret(path string) ([]byte, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, errSecretFile
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
		return nil, errSecretFile
	}
	b, err := io.ReadAll(io.LimitReader(f, maxSecretLen+3))
	if err != nil {
		return nil, errSecretFile
	}
	if t, ok := bytes.CutSuffix(b, []byte("\n")); ok {
		b = bytes.TrimSuffix(t, []byte("\r"))
	}
	if len(b) < minSecretLen || len(b) > maxSecretLen {
		return nil, errSecretFile
	}
	return b, nil
}

// errSecretFile is every refusal of a secret file.
var errSecretFile = fmt.Errorf("it must be a readable regular file holding a key of %d to %d bytes (a final line break aside)", minSecretLen, maxSecretLen)

// Sign returns the X-Gatehouse-Signature value of body sent at timestamp
// (Unix seconds): "sha256=" and the hex HMAC-SHA256, keyed with the
// webhook's secret, of the timestamp, a dot and the body.
func Sign(secret []byte, timestamp int64, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(strconv.FormatInt(timestamp, 10)))
	m.Write([]byte{'.'})
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// webhooksTx returns every webhook in force as tx sees it: the file's and
// the stored ones, a stored one hidden by a file one of the same name.
func (s *Service) webhooksTx(ctx context.Context, tx gatehouse.Tx) ([]gatehouse.Webhook, error) {
	stored, err := tx.ListWebhooks(ctx)
	if err != nil {
		return nil, err
	}
	out := append([]gatehouse.Webhook{}, s.notify.file...)
	for _, w := range stored {
		if _, ok := s.notify.fileWebhook(w.Name); !ok {
			out = append(out, w)
		}
	}
	return out, nil
}

func (s *Service) webhookTx(ctx context.Context, tx gatehouse.Tx, name string) (gatehouse.Webhook, error) {
	if w, ok := s.notify.fileWebhook(name); ok {
		return w, nil
	}
	return tx.GetWebhook(ctx, name)
}

// runNotifications is the background delivery loop of Run: it sends what
// is due every NotifyOptions.Every (at once when this server enqueued
// something) and scans for expiring tokens every minute. It stops with
// ctx; what is left is sent by the next server to run.
func (s *Service) runNotifications(ctx, bg context.Context) {
	if s.notify.every < 0 {
		return
	}
	tick := time.NewTicker(s.notify.every)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		case <-s.notify.wake:
		}
		if now := s.now(); now.Sub(s.notify.lastScan) >= scanEvery || now.Before(s.notify.lastScan) {
			s.notify.lastScan = now
			if _, err := s.scanAndPrune(bg); err != nil {
				s.log.Error("notifications: expiry scan", "err", err)
			}
		}
		// Sends end with ctx, so shutdown does not wait on a slow
		// receiver; what was sent is still recorded (deliver).
		if _, err := s.DeliverNotifications(ctx); err != nil && ctx.Err() == nil {
			s.log.Error("notifications: delivery", "err", err)
		}
	}
}

// scanAndPrune runs the expiry scan and prunes settled notifications, on
// one server at a time.
func (s *Service) scanAndPrune(ctx context.Context) (int, error) {
	release, held, err := s.lockNotifications(ctx)
	if err != nil || !held {
		return 0, err
	}
	defer release()
	n, err := s.ScanExpiring(ctx)
	if err != nil {
		return n, err
	}
	return n, s.pruneNotifications(ctx)
}

// pruneNotifications deletes notifications settled long enough ago: at
// least keepSettled, and longer than the longest lead time, so that a
// token.expiring is kept until its token has expired and is never sent
// twice.
func (s *Service) pruneNotifications(ctx context.Context) error {
	keep := keepSettled
	if len(s.notify.leads) > 0 {
		keep = max(keep, s.notify.leads[0]+24*time.Hour)
	}
	before := s.now().Add(-keep)
	return s.store.Tx(ctx, func(tx gatehouse.Tx) error {
		_, err := tx.PruneNotifications(ctx, before)
		return err
	})
}

func (s *Service) lockNotifications(ctx context.Context) (func(), bool, error) {
	l, ok := s.store.(gatehouse.Locker)
	if !ok {
		return func() {}, true, nil
	}
	return l.TryLock(ctx, notifyLock)
}

// DeliverNotifications sends, once, every notification that is due, and
// returns how many were delivered. With several servers on one store
// (gatehouse.Locker) one at a time delivers; the others return 0.
func (s *Service) DeliverNotifications(ctx context.Context) (int, error) {
	release, held, err := s.lockNotifications(ctx)
	if err != nil || !held {
		return 0, err
	}
	defer release()
	// Each webhook has a queue of its own, worked by a goroutine of its own
	// (at most deliverParallel at once), so that a receiver that is down,
	// hangs until the timeout or is merely slow holds up only itself.
	due := map[string][]gatehouse.Notification{}
	err = s.store.View(ctx, func(tx gatehouse.Tx) error {
		clear(due)
		hooks, err := s.webhooksTx(ctx, tx)
		if err != nil {
			return err
		}
		now := s.now()
		for _, w := range hooks {
			ns, err := tx.ListNotifications(ctx, gatehouse.NotificationFilter{Webhook: w.Name, DueAt: now, Limit: deliverBatch})
			if err != nil {
				return err
			}
			if len(ns) > 0 {
				due[w.Name] = ns
			}
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	var (
		mu        sync.Mutex
		delivered int
		firstErr  error
		wg        sync.WaitGroup
		slots     = make(chan struct{}, deliverParallel)
	)
	for _, queue := range due {
		wg.Go(func() {
			slots <- struct{}{}
			defer func() { <-slots }()
			for _, n := range queue {
				if ctx.Err() != nil {
					return
				}
				ok, err := s.deliver(ctx, n.ID)
				mu.Lock()
				if ok {
					delivered++
				}
				if err != nil && firstErr == nil {
					firstErr = err
				}
				mu.Unlock()
				if !ok || err != nil {
					// Its receiver failed: the rest of its queue waits for
					// the next pass (not claimed, so no attempt is spent).
					return
				}
			}
		})
	}
	wg.Wait()
	if firstErr == nil {
		firstErr = ctx.Err()
	}
	return delivered, firstErr
}

// deliver makes one attempt at notification id: it claims the attempt
// (counts it and sets the next one, so that a server dying now leaves it
// to be retried with the same delivery id), sends, and records the
// answer. It reports whether the notification was delivered; an error is
// the store's.
func (s *Service) deliver(ctx context.Context, id int64) (bool, error) {
	var (
		n    gatehouse.Notification
		hook gatehouse.Webhook
		gone bool
	)
	now := s.now().UTC()
	err := s.store.Tx(ctx, func(tx gatehouse.Tx) error {
		var err error
		gone = false
		n, err = tx.GetNotification(ctx, id)
		if gatehouse.IsCode(err, gatehouse.ENOTFOUND) {
			gone = true
			return nil
		}
		if err != nil {
			return err
		}
		if n.State != gatehouse.NotificationPending || n.NextAttemptAt.After(now) {
			gone = true // settled or claimed meanwhile
			return nil
		}
		hook, err = s.webhookTx(ctx, tx, n.Webhook)
		if gatehouse.IsCode(err, gatehouse.ENOTFOUND) {
			n.State, n.LastError, n.UpdatedAt = gatehouse.NotificationFailed, "the webhook was deleted", now
			gone = true
			return tx.UpdateNotification(ctx, n)
		}
		if err != nil {
			return err
		}
		n.Attempts++
		n.NextAttemptAt, n.UpdatedAt = now.Add(backoff(n.Attempts)), now
		return tx.UpdateNotification(ctx, n)
	})
	if err != nil || gone {
		return false, err
	}

	status, problem := s.send(ctx, hook, n)
	n.LastStatus, n.LastError, n.UpdatedAt = status, problem, s.now().UTC()
	var events []gatehouse.Event
	switch {
	case problem == "":
		n.State, n.NextAttemptAt = gatehouse.NotificationDelivered, time.Time{}
	case n.Attempts >= s.notify.maxAttempts:
		n.State, n.NextAttemptAt = gatehouse.NotificationFailed, time.Time{}
		ev := s.event(nil, gatehouse.EventNotificationFailed, "settings", "update", "webhooks",
			fmt.Sprintf("webhook %q: %s %s given up after %d attempts: %s", n.Webhook, n.Event, n.DeliveryID, n.Attempts, problem))
		events = append(events, ev)
		s.log.Warn("notification given up", "webhook", n.Webhook, "event", n.Event, "delivery", n.DeliveryID, "attempts", n.Attempts, "problem", problem)
	default:
		s.log.Info("notification attempt failed; will retry", "webhook", n.Webhook, "event", n.Event, "delivery", n.DeliveryID,
			"attempt", n.Attempts, "next", n.NextAttemptAt, "problem", problem)
	}
	// Recorded even when ctx has ended meanwhile (a shutdown): a sent
	// notification left unrecorded would be sent again.
	rec := context.WithoutCancel(ctx)
	err = s.store.Tx(rec, func(tx gatehouse.Tx) error {
		if err := tx.UpdateNotification(rec, n); err != nil {
			return err
		}
		if len(events) > 0 {
			return tx.AppendEvents(rec, events)
		}
		return nil
	})
	return err == nil && problem == "", err
}

// send posts n to the webhook, signed, and returns the receiver's status
// and, unless it answered 2xx, a problem safe to show (never the secret,
// nor the receiver's answer).
func (s *Service) send(ctx context.Context, w gatehouse.Webhook, n gatehouse.Notification) (int, string) {
	secret, err := readSecret(w.SecretFile)
	if err != nil {
		return 0, err.Error()
	}
	ts := s.now().Unix()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.URL, bytes.NewReader(n.Body))
	if err != nil {
		return 0, "the webhook's URL cannot be used"
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "gatehouse-webhook")
	req.Header.Set("X-Gatehouse-Event", n.Event)
	req.Header.Set("X-Gatehouse-Delivery", n.DeliveryID)
	req.Header.Set("X-Gatehouse-Timestamp", strconv.FormatInt(ts, 10))
	req.Header.Set("X-Gatehouse-Signature", Sign(secret, ts, n.Body))
	resp, err := s.notify.client.Do(req)
	if err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return 0, "the receiver did not answer in time"
		}
		return 0, "the receiver could not be reached"
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxDiscard))
	resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return resp.StatusCode, fmt.Sprintf("the receiver answered %d", resp.StatusCode)
	}
	return resp.StatusCode, ""
}
