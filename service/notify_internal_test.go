package service

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/store/sqlite"
	"github.com/gatehouse/gatehouse/store/storetest"
)

// notifyService is a service on SQLite (every transaction run twice, as a
// retrying backend may) with one webhook, "ci", for every event.
func notifyService(t *testing.T, now func() time.Time) *Service {
	t.Helper()
	st, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "notify.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	secret := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(secret, []byte("internal-test-webhook-key-0123456789"), 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := New(t.Context(), Options{Store: storetest.TxTwice(st), Now: now, BcryptCost: 10, Notifications: NotifyOptions{
		Webhooks: []gatehouse.Webhook{{Name: "ci", URL: "https://hooks.example/", SecretFile: secret, Events: []string{"*"}}},
		Every:    -1,
	}})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func outbox(t *testing.T, s *Service) []gatehouse.Notification {
	t.Helper()
	var out []gatehouse.Notification
	if err := s.store.View(t.Context(), func(tx gatehouse.Tx) (err error) {
		out, err = tx.ListNotifications(t.Context(), gatehouse.NotificationFilter{})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

// A notification is enqueued in the transaction of the change: one that
// rolls back leaves nothing; one that commits leaves one per token, once
// however often it is enqueued.
func TestNotifyTokensInTheChangesTransaction(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	s := notifyService(t, func() time.Time { return now })
	ctx := context.Background()
	toks := []gatehouse.Token{
		{ID: "1fe01f20-6a27-460a-940d-8a8ec696d695", Name: "a", Kind: gatehouse.KindAPI, Account: "ci", ExpiresAt: now.Add(time.Hour)},
		{ID: "7c9e6679-7425-40de-944b-e07fc1f90ae7", Name: "b", Kind: gatehouse.KindProject, Project: "shop", Role: "deploy"},
		{ID: "16fd2706-8baf-433b-82eb-8c7fada847da", Name: "login", Kind: gatehouse.KindSession, Account: "ci"},
	}
	boom := errors.New("the change failed")
	err := s.store.Tx(ctx, func(tx gatehouse.Tx) error {
		if err := s.notifyTokens(ctx, tx, gatehouse.NotifyTokenRevoked, toks, "test"); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("Tx: %v", err)
	}
	if got := outbox(t, s); len(got) != 0 {
		t.Fatalf("a rolled-back change left %d notifications", len(got))
	}
	for range 2 {
		if err := s.store.Tx(ctx, func(tx gatehouse.Tx) error {
			return s.notifyTokens(ctx, tx, gatehouse.NotifyTokenRevoked, toks, "test")
		}); err != nil {
			t.Fatal(err)
		}
	}
	got := outbox(t, s)
	if len(got) != 2 {
		t.Fatalf("got %d notifications, want 2 (the session's revocation is not news)", len(got))
	}
	for _, n := range got {
		if n.Webhook != "ci" || n.Event != gatehouse.NotifyTokenRevoked || n.State != gatehouse.NotificationPending || n.DeliveryID == "" {
			t.Errorf("notification %+v", n)
		}
	}
	if !strings.Contains(string(got[1].Body), `"rotateURL":"/projects/shop/roles/deploy/tokens/new"`) ||
		!strings.Contains(string(got[1].Body), `"owner":"shop/deploy"`) {
		t.Errorf("project token body %s", got[1].Body)
	}
	// A leak is news even for a session.
	if err := s.store.Tx(ctx, func(tx gatehouse.Tx) error {
		return s.notifyTokens(ctx, tx, gatehouse.NotifyTokenLeaked, toks[2:], "reported")
	}); err != nil {
		t.Fatal(err)
	}
	if got := outbox(t, s); len(got) != 3 {
		t.Errorf("got %d notifications after a leaked session, want 3", len(got))
	}
}

func TestLeadFor(t *testing.T) {
	now := time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC)
	s := &Service{notify: &notifier{leads: []time.Duration{7 * 24 * time.Hour, 24 * time.Hour}}}
	day := 24 * time.Hour
	for _, tc := range []struct {
		name           string
		issued, expiry time.Duration // from now
		want           time.Duration
	}{
		{"ok/beyond every lead", -day, 10 * day, 0},
		{"ok/at the long lead", -20 * day, 7 * day, 7 * day},
		{"ok/between", -20 * day, 3 * day, 7 * day},
		{"ok/at the short lead", -20 * day, day, day},
		{"ok/both reached: the shorter", -20 * day, time.Hour, day},
		{"ok/life shorter than the long lead", -time.Hour, 2 * day, 0},
		{"ok/life shorter than the long lead, at the short", -2 * day, day, day},
		{"ok/life shorter than every lead", -time.Hour, 11 * time.Hour, 0},
	} {
		tok := gatehouse.Token{IssuedAt: now.Add(tc.issued), ExpiresAt: now.Add(tc.expiry)}
		if got := s.leadFor(tok, now); got != tc.want {
			t.Errorf("%s: got %s, want %s", tc.name, got, tc.want)
		}
	}
}

func TestBackoff(t *testing.T) {
	want := []time.Duration{30 * time.Second, time.Minute, 2 * time.Minute, 4 * time.Minute, 8 * time.Minute,
		16 * time.Minute, 32 * time.Minute, time.Hour, time.Hour, time.Hour}
	for i, w := range want {
		if got := backoff(i + 1); got != w {
			t.Errorf("backoff(%d) = %s, want %s", i+1, got, w)
		}
	}
}

func TestCheckWebhook(t *testing.T) {
	ok := gatehouse.WebhookRequest{Name: "ci", URL: "https://hooks.example/x?y=1", SecretFile: "/run/secrets/hook", Events: []string{"*"}}
	if w, err := CheckWebhook(ok); err != nil || w.URL != ok.URL {
		t.Fatalf("CheckWebhook(%+v) = %+v, %v", ok, w, err)
	}
	for name, edit := range map[string]func(*gatehouse.WebhookRequest){
		"fail/empty name":        func(r *gatehouse.WebhookRequest) { r.Name = "" },
		"fail/upper-case name":   func(r *gatehouse.WebhookRequest) { r.Name = "CI" },
		"fail/no URL":            func(r *gatehouse.WebhookRequest) { r.URL = "" },
		"fail/file URL":          func(r *gatehouse.WebhookRequest) { r.URL = "file:///etc/passwd" },
		"fail/javascript URL":    func(r *gatehouse.WebhookRequest) { r.URL = "javascript:alert(1)" },
		"fail/relative URL":      func(r *gatehouse.WebhookRequest) { r.URL = "/hook" },
		"fail/upper-case scheme": func(r *gatehouse.WebhookRequest) { r.URL = "htTp://hooks.example/" },
		"fail/scheme without //": func(r *gatehouse.WebhookRequest) { r.URL = "https:hooks.example/" },
		"fail/credentials":       func(r *gatehouse.WebhookRequest) { r.URL = "https://a:b@hooks.example/" },
		"fail/user only":         func(r *gatehouse.WebhookRequest) { r.URL = "https://a@hooks.example/" },
		"fail/fragment":          func(r *gatehouse.WebhookRequest) { r.URL = "https://hooks.example/#x" },
		"fail/port 0":            func(r *gatehouse.WebhookRequest) { r.URL = "https://hooks.example:0/" },
		"fail/port too big":      func(r *gatehouse.WebhookRequest) { r.URL = "https://hooks.example:70000/" },
		"fail/no secret file":    func(r *gatehouse.WebhookRequest) { r.SecretFile = "" },
		"fail/relative secret":   func(r *gatehouse.WebhookRequest) { r.SecretFile = "secret" },
		"fail/no events":         func(r *gatehouse.WebhookRequest) { r.Events = nil },
		"fail/unknown event":     func(r *gatehouse.WebhookRequest) { r.Events = []string{"token.created"} },
		"fail/event with space":  func(r *gatehouse.WebhookRequest) { r.Events = []string{" token.revoked"} },
	} {
		r := ok
		edit(&r)
		if _, err := CheckWebhook(r); gatehouse.ErrorCode(err) != gatehouse.EINVALID {
			t.Errorf("%s: got %v, want %s", name, err, gatehouse.EINVALID)
		}
	}
}

// FuzzCheckWebhook: whatever CheckWebhook accepts is an http or https URL
// with a host and no credentials, events from the known list without
// repeats, and it accepts its own answer unchanged.
func FuzzCheckWebhook(f *testing.F) {
	f.Add("ci", "https://hooks.example/x?y=1", "/run/secrets/hook", "token.revoked,token.expiring")
	f.Add("a", "http://10.0.0.1:8080/", "/s", "*")
	f.Add("b", "https://u:p@h/", "/s", "*,*")
	f.Add("c", "https://[::1]:443/#f", "/s", "token.leaked")
	f.Fuzz(func(t *testing.T, name, rawURL, secret, events string) {
		req := gatehouse.WebhookRequest{Name: name, URL: rawURL, SecretFile: secret, Events: strings.Split(events, ",")}
		w, err := CheckWebhook(req)
		if err != nil {
			if gatehouse.ErrorCode(err) != gatehouse.EINVALID {
				t.Fatalf("error %v is not %s", err, gatehouse.EINVALID)
			}
			return
		}
		if !strings.HasPrefix(w.URL, "http://") && !strings.HasPrefix(w.URL, "https://") || strings.Contains(w.URL, "#") {
			t.Fatalf("accepted URL %q", w.URL)
		}
		if problem := checkWebhookURL(w.URL); problem != "" {
			t.Fatalf("accepted URL %q: %s", w.URL, problem)
		}
		seen := map[string]bool{}
		for _, e := range w.Events {
			if seen[e] || (e != "*" && !notifiable(e)) {
				t.Fatalf("accepted events %q", w.Events)
			}
			seen[e] = true
		}
		again, err := CheckWebhook(gatehouse.WebhookRequest{Name: w.Name, URL: w.URL, SecretFile: w.SecretFile, Events: w.Events})
		if err != nil || again.URL != w.URL || strings.Join(again.Events, ",") != strings.Join(w.Events, ",") {
			t.Fatalf("its own answer %+v is not accepted unchanged: %+v, %v", w, again, err)
		}
	})
}

// The secret file is read without its line break; an empty or missing
// one is refused without its content in the error.
func TestReadSecret(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	key := strings.Repeat("s3cr3t-v", 4) // 32 bytes
	for content, want := range map[string]string{
		key + "\r\n": key, key + "\n": key, key: key,
		key + "\n\n": key + "\n", key + "\r": key + "\r", // only one final line break goes
		" " + key + " ": " " + key + " ",
	} {
		if b, err := readSecret(write("ok", content)); err != nil || string(b) != want {
			t.Errorf("readSecret(%q) = %q, %v; want %q", content, b, err, want)
		}
	}
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{write("empty", ""), write("blank", " \n"), write("short", key[:31]+"\n"),
		write("long", strings.Repeat("k", maxSecretLen+1)), filepath.Join(dir, "missing"), dir, fifo} {
		if _, err := readSecret(p); err == nil || strings.Contains(err.Error(), "kkkk") {
			t.Errorf("readSecret(%s) = %v", filepath.Base(p), err)
		}
	}
}

func TestSign(t *testing.T) {
	// HMAC-SHA256("key", "1700000000.{}"), computed independently.
	got := Sign([]byte("key"), 1700000000, []byte("{}"))
	if want := "sha256=9d713ed406bb7076d4123f0dc2c39d2df5c654ed4b0cd56b52c8b4c940bd63ae"; got != want {
		t.Fatalf("Sign = %q, want %q", got, want)
	}
	if Sign([]byte("key"), 1700000001, []byte("{}")) == got || Sign([]byte("other"), 1700000000, []byte("{}")) == got {
		t.Errorf("the signature does not depend on the timestamp and the key")
	}
}
