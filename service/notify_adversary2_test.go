package service

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/store/sqlite"
)

func adv2Service(t *testing.T, hooks []gatehouse.Webhook) *Service {
	t.Helper()
	st, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "notify.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	s, err := New(t.Context(), Options{Store: st, BcryptCost: 10, Notifications: NotifyOptions{Webhooks: hooks, Every: -1}})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func adv2Key(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "key")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func adv2Notify(t *testing.T, s *Service, n int) {
	adv2NotifyEvent(t, s, gatehouse.NotifyTokenRevoked, 0, n)
}

func adv2NotifyEvent(t *testing.T, s *Service, event string, from, n int) {
	t.Helper()
	var toks []gatehouse.Token
	for i := range n {
		toks = append(toks, gatehouse.Token{ID: fmt.Sprintf("00000000-0000-4000-8000-%012d", from+i), Name: "deploy", Kind: gatehouse.KindAPI, Account: "ci"})
	}
	if err := s.store.Tx(t.Context(), func(tx gatehouse.Tx) error {
		return s.notifyTokens(t.Context(), tx, event, toks, "test")
	}); err != nil {
		t.Fatal(err)
	}
}

// TestAdversary2SlowReceiverStallsOtherWebhooks: delivery is one request
// at a time for every webhook. A receiver that takes its time but answers
// 2xx (so it is never marked down) holds every other webhook's
// notification behind each of its own: with 100 due for it and 9 s each,
// another webhook waits a quarter of an hour. Here receiver "a" waits (up
// to 5 s, under the client's 10 s timeout) for receiver "b" to be called;
// "b" is never called while "a" is in progress.
func TestAdversary2SlowReceiverStallsOtherWebhooks(t *testing.T) {
	bGot := make(chan struct{})
	var once sync.Once
	b := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		once.Do(func() { close(bGot) })
	}))
	defer b.Close()
	sawB := make(chan bool, 10)
	a := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-bGot:
			sawB <- true
		case <-time.After(5 * time.Second):
			sawB <- false
		}
	}))
	defer a.Close()
	key := adv2Key(t, "adversary2-test-webhook-key-0123456789")
	s := adv2Service(t, []gatehouse.Webhook{
		{Name: "a", URL: a.URL, SecretFile: key, Events: []string{"*"}},
		{Name: "b", URL: b.URL, SecretFile: key, Events: []string{"*"}},
	})
	adv2Notify(t, s, 1)
	if _, err := s.DeliverNotifications(t.Context()); err != nil {
		t.Fatal(err)
	}
	if !<-sawB {
		t.Errorf("webhook b's notification waited for slow receiver a to answer: one slow (but successful) receiver stalls every other webhook's deliveries")
	}
}

// TestAdversary2SecretFileFIFOHangs: secretFile may name anything that
// opens, a FIFO (or, say, /proc/self/fd/1 when stdout is a pipe, as under
// Docker) among them. Opening it blocks forever, whatever the request's
// context: CreateWebhook never answers (each call pins a goroutine), and a
// file webhook with such a path stalls every delivery and the shutdown
// that waits for the delivery loop.
func TestAdversary2SecretFileFIFOHangs(t *testing.T) {
	dir, err := os.MkdirTemp("", "fifo")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	fifo := filepath.Join(dir, "key")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	unblock := func() {
		// Open for writing and close: a reader blocked in open gets EOF.
		for range 50 {
			f, err := os.OpenFile(fifo, os.O_WRONLY|syscall.O_NONBLOCK, 0)
			if err != nil {
				time.Sleep(10 * time.Millisecond)
				continue
			}
			f.Close()
		}
	}
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	defer srv.Close()

	t.Run("create", func(t *testing.T) {
		done := make(chan error, 1)
		go func() {
			// What CreateWebhook and UpdateWebhook run, after the
			// permission check and before the store.
			done <- CheckSecretFile(fifo)
		}()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Errorf("CheckSecretFile (what CreateWebhook and UpdateWebhook run on the request path) on a FIFO has not returned after 5 s, and takes no context: the API request hangs for good")
			unblock()
			<-done
		}
	})
	t.Run("deliver", func(t *testing.T) {
		s := adv2Service(t, []gatehouse.Webhook{{Name: "x", URL: srv.URL, SecretFile: fifo, Events: []string{"*"}}})
		adv2Notify(t, s, 1)
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		done := make(chan error, 1)
		go func() { _, err := s.DeliverNotifications(ctx); done <- err }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Errorf("DeliverNotifications is still blocked reading a FIFO secretFile 4 s after its context ended: delivery and shutdown stall")
			unblock()
			<-done
		}
	})
}

// TestAdversary2KeyFinalLineBreak: docs/operations.md: "a final line
// break is not part of the key". The server strips every trailing CR and
// LF, so a receiver that follows the recipe (drop one final line break)
// computes another key for a file that ends in two line breaks or in a
// CR, e.g. a random binary key whose last byte is 0x0d or 0x0a.
func TestAdversary2KeyFinalLineBreak(t *testing.T) {
	const key32 = "0123456789abcdef0123456789abcdef"
	for _, tc := range []struct{ content, key string }{
		{key32 + "\n\n", key32 + "\n"},
		{key32 + "\r", key32 + "\r"},
		{key32 + "\x8a\x13\x0d", key32 + "\x8a\x13\x0d"},
		{key32 + "\r\n", key32},
	} {
		got := make(chan [2]string, 1)
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			body, _ := io.ReadAll(r.Body)
			got <- [2]string{r.Header.Get("X-Gatehouse-Signature"), r.Header.Get("X-Gatehouse-Timestamp") + "\x00" + string(body)}
		}))
		s := adv2Service(t, []gatehouse.Webhook{{Name: "x", URL: srv.URL, SecretFile: adv2Key(t, tc.content), Events: []string{"*"}}})
		adv2Notify(t, s, 1)
		if _, err := s.DeliverNotifications(t.Context()); err != nil {
			t.Fatal(err)
		}
		r := <-got
		srv.Close()
		var ts int64
		tsText, body, _ := cutNUL(r[1])
		for _, c := range tsText {
			ts = ts*10 + int64(c-'0')
		}
		if want := Sign([]byte(tc.key), ts, []byte(body)); r[0] != want {
			t.Errorf("key file %q: the documented recipe (key %q) does not verify the signature", tc.content, tc.key)
		}
	}
}

func cutNUL(s string) (string, string, bool) {
	for i := range len(s) {
		if s[i] == 0 {
			return s[:i], s[i+1:], true
		}
	}
	return s, "", false
}

// TestAdversary2DownReceiverStarvesOthers: DeliverNotifications takes the
// first 100 due notifications (oldest next attempt first) and skips the
// rest of a webhook's once its receiver fails: those are not claimed, so
// they keep their place at the head of the queue. A receiver that is down
// with 100 or more notifications due (a mass revocation, a batch of
// expiring tokens) fills every pass's batch: each pass makes one attempt
// at it and never reaches another webhook, for as many passes as it has
// notifications (with a hanging receiver, 10 s each). The code's own
// promise: "one receiver that is down does not hold up the others".
func TestAdversary2DownReceiverStarvesOthers(t *testing.T) {
	var mu sync.Mutex
	calls := map[string]int{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		calls[r.URL.Path]++
		mu.Unlock()
		if r.URL.Path == "/down" {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	defer srv.Close()
	key := adv2Key(t, "adversary2-test-webhook-key-0123456789")
	s := adv2Service(t, []gatehouse.Webhook{
		{Name: "down", URL: srv.URL + "/down", SecretFile: key, Events: []string{"*"}},
		{Name: "up", URL: srv.URL + "/up", SecretFile: key, Events: []string{gatehouse.NotifyTokenLeaked}},
	})
	adv2NotifyEvent(t, s, gatehouse.NotifyTokenRevoked, 0, 150) // "down" only
	adv2NotifyEvent(t, s, gatehouse.NotifyTokenLeaked, 1000, 1) // "down" and "up"
	for range 5 {
		if _, err := s.DeliverNotifications(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if calls["/up"] == 0 {
		t.Errorf("after 5 delivery passes the healthy webhook got nothing (the down one was tried %d times): one receiver that is down, with 100+ notifications due, starves every other webhook", calls["/down"])
	}
}

// TestAdversary2SecretFileIsAContentOracle: whoever may update webhooks
// names any file the server can read as secretFile and a URL of their
// own; each delivery would hand them HMAC-SHA256(file content, known
// text), an offline test of guesses at a short file's content. A file
// shorter than a random key is refused, with the one message every
// refusal gets: the answer tells a missing file neither from an
// unreadable nor from a short one.
func TestAdversary2SecretFileIsAContentOracle(t *testing.T) {
	short := adv2Key(t, "hunter2\n") // e.g. /run/secrets/db-password
	dir := t.TempDir()
	unreadable := filepath.Join(dir, "unreadable")
	if err := os.WriteFile(unreadable, []byte("0123456789abcdef0123456789abcdef"), 0o000); err != nil {
		t.Fatal(err)
	}
	var msgs []string
	for _, p := range []string{short, filepath.Join(dir, "missing"), dir, unreadable} {
		err := CheckSecretFile(p)
		if err == nil {
			if p == unreadable && os.Geteuid() == 0 {
				continue // root reads it anyway
			}
			t.Fatalf("CheckSecretFile(%s) accepted it", filepath.Base(p))
		}
		msgs = append(msgs, strings.ReplaceAll(gatehouse.ErrorMessage(err), strconv.Quote(p), "PATH"))
	}
	for _, m := range msgs[1:] {
		if m != msgs[0] {
			t.Errorf("refusals differ: %q and %q", msgs[0], m)
		}
	}
}
