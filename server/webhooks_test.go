package server_test

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/service"
	"github.com/gatehouse/gatehouse/store/sqlite"
)

// receiver is a webhook endpoint that verifies every request as the
// documentation tells a receiver to: the HMAC-SHA256 signature over the
// timestamp, a dot and the body, with the key in the secret file, and a
// timestamp that is the server's now. It answers the statuses queued in
// answers, then 204.
type receiver struct {
	t      *testing.T
	srv    *httptest.Server
	secret string // the secret file's path
	now    func() time.Time

	mu      sync.Mutex
	answers []int
	got     []delivery
}

// delivery is one request the receiver verified.
type delivery struct {
	header http.Header
	body   []byte
	msg    webhookMessage
}

// webhookMessage is the body as a receiver reads it.
type webhookMessage struct {
	Event      string `json:"event"`
	DeliveryID string `json:"deliveryId"`
	Detail     string `json:"detail"`
	Token      struct {
		ID        string    `json:"id"`
		Name      string    `json:"name"`
		Kind      string    `json:"kind"`
		Owner     string    `json:"owner"`
		Account   string    `json:"account"`
		ExpiresAt time.Time `json:"expiresAt"`
	} `json:"token"`
	ExpiresIn    *int64 `json:"expiresIn"`
	Lead         string `json:"lead"`
	LeadSeconds  int64  `json:"leadSeconds"`
	RotateURL    string `json:"rotateURL"`
	DashboardURL string `json:"dashboardURL"`
}

// newReceiver starts a receiver with a fresh secret file, remembered by e
// as a secret that no log, database or answer may hold.
func newReceiver(t *testing.T, e *env) *receiver {
	t.Helper()
	r := &receiver{t: t, secret: filepath.Join(t.TempDir(), "webhook-secret"), now: e.clock.Now}
	r.rotate(e)
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(r.srv.Close)
	return r
}

// rotate writes a new key to the secret file (with a final line break,
// as echo writes it).
func (r *receiver) rotate(e *env) string {
	r.t.Helper()
	b := make([]byte, 24)
	rand.Read(b)
	key := "whsec-" + hex.EncodeToString(b)
	e.remember(key)
	if err := os.WriteFile(r.secret, []byte(key+"\n"), 0o600); err != nil {
		r.t.Fatal(err)
	}
	return key
}

func (r *receiver) key() []byte {
	b, err := os.ReadFile(r.secret)
	if err != nil {
		r.t.Error(err)
	}
	return []byte(strings.TrimRight(string(b), "\n"))
}

func (r *receiver) serve(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	ts := req.Header.Get("X-Gatehouse-Timestamp")
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || sec != r.now().Unix() {
		r.t.Errorf("X-Gatehouse-Timestamp %q, want the server's now %d", ts, r.now().Unix())
	}
	m := hmac.New(sha256.New, r.key())
	m.Write([]byte(ts + "." + string(body)))
	want := "sha256=" + hex.EncodeToString(m.Sum(nil))
	if got := req.Header.Get("X-Gatehouse-Signature"); !hmac.Equal([]byte(got), []byte(want)) {
		r.t.Errorf("X-Gatehouse-Signature %q does not verify (want %q)", got, want)
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	var msg webhookMessage
	if err := json.Unmarshal(body, &msg); err != nil {
		r.t.Errorf("body %s: %v", body, err)
	}
	if got := req.Header.Get("X-Gatehouse-Delivery"); got != msg.DeliveryID || got == "" {
		r.t.Errorf("X-Gatehouse-Delivery %q, body's deliveryId %q", got, msg.DeliveryID)
	}
	if got := req.Header.Get("X-Gatehouse-Event"); got != msg.Event {
		r.t.Errorf("X-Gatehouse-Event %q, body's event %q", got, msg.Event)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got = append(r.got, delivery{header: req.Header.Clone(), body: body, msg: msg})
	status := http.StatusNoContent
	if len(r.answers) > 0 {
		status, r.answers = r.answers[0], r.answers[1:]
	}
	w.WriteHeader(status)
}

func (r *receiver) deliveries() []delivery {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]delivery(nil), r.got...)
}

func (r *receiver) answer(statuses ...int) {
	r.mu.Lock()
	r.answers = append(r.answers, statuses...)
	r.mu.Unlock()
}

// notifyEnv is an env whose configuration file declares the webhook "ci"
// to a fresh receiver for events; the test drives delivery
// (DeliverNotifications, ScanExpiring) with the env's clock.
func notifyEnv(t *testing.T, events []string, opts ...func(*service.NotifyOptions)) (*env, *receiver) {
	t.Helper()
	r := &receiver{t: t, secret: filepath.Join(t.TempDir(), "webhook-secret")}
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(r.srv.Close)
	if err := os.WriteFile(r.secret, []byte("placeholder-key-until-the-test-sets-one"), 0o600); err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, func(o *envSettings) {
		o.Notifications = service.NotifyOptions{
			Webhooks: []gatehouse.Webhook{{Name: "ci", URL: r.srv.URL + "/hook", SecretFile: r.secret, Events: events}},
			BaseURL:  "https://gatehouse.example",
			Every:    -1,
		}
		for _, opt := range opts {
			opt(&o.Notifications)
		}
	})
	r.now = e.clock.Now
	r.rotate(e)
	return e, r
}

func deliver(t *testing.T, svc *service.Service) int {
	t.Helper()
	n, err := svc.DeliverNotifications(context.Background())
	if err != nil {
		t.Fatalf("DeliverNotifications: %v", err)
	}
	return n
}

// noSecretIn fails if b holds any of the tokens or keys.
func noSecretIn(t *testing.T, what string, b []byte, secrets ...string) {
	t.Helper()
	for _, s := range secrets {
		if s != "" && strings.Contains(string(b), s) {
			t.Errorf("%s holds a secret (%d bytes long)", what, len(s))
		}
	}
}

// A revocation is delivered once, signed, with the token's id, name,
// owner, expiry and a link to rotate it, and nothing secret; replacing
// the secret file changes the key the next notification is signed with.
func TestWebhookRevokedSignedAndDelivered(t *testing.T) {
	e, r := notifyEnv(t, []string{gatehouse.NotifyTokenRevoked})
	nt := e.mint(e.admin, "admin", gatehouse.TokenRequest{Name: "deploy bot", ExpiresIn: seconds(3600)})
	if got := deliver(t, e.svc); got != 0 {
		t.Fatalf("delivered %d before anything happened", got)
	}
	e.call("DELETE", "/api/v1/account/admin/token/"+nt.ID, e.admin, nil, 200, nil)
	if got := deliver(t, e.svc); got != 1 {
		t.Fatalf("delivered %d, want 1", got)
	}
	if got := deliver(t, e.svc); got != 0 {
		t.Fatalf("delivered again: %d", got)
	}
	ds := r.deliveries()
	if len(ds) != 1 {
		t.Fatalf("receiver got %d requests, want 1", len(ds))
	}
	m := ds[0].msg
	if m.Event != "token.revoked" || m.Token.ID != nt.ID || m.Token.Name != "deploy bot" || m.Token.Owner != "admin" ||
		m.Token.Kind != "api" || !m.Token.ExpiresAt.Equal(nt.ExpiresAt) {
		t.Errorf("body %s: want token.revoked of %s (deploy bot, admin, expiring %s)", ds[0].body, nt.ID, nt.ExpiresAt)
	}
	if want := "https://gatehouse.example/api/v1/account/admin/token/" + nt.ID + "/rotate"; m.RotateURL != want {
		t.Errorf("rotateURL %q, want %q", m.RotateURL, want)
	}
	if ds[0].header.Get("Content-Type") != "application/json" {
		t.Errorf("Content-Type %q", ds[0].header.Get("Content-Type"))
	}
	body := nt.Token[strings.IndexByte(nt.Token, ':')+1:]
	noSecretIn(t, "the webhook body", ds[0].body, nt.Token, body, string(r.key()))

	// A rotated key signs the next one; the receiver verifies with it.
	r.rotate(e)
	second := e.mint(e.admin, "admin", gatehouse.TokenRequest{Name: "second", ExpiresIn: seconds(3600)})
	e.call("DELETE", "/api/v1/account/admin/token/"+second.ID, e.admin, nil, 200, nil)
	if got := deliver(t, e.svc); got != 1 {
		t.Fatalf("after rotating the key: delivered %d, want 1", got)
	}
	var list gatehouse.List[gatehouse.Notification]
	e.call("GET", "/api/v1/webhooks/ci/deliveries", e.admin, nil, 200, &list)
	if len(list.Items) != 2 || list.Items[0].State != gatehouse.NotificationDelivered || list.Items[0].Attempts != 1 ||
		list.Items[0].LastStatus != 204 || list.Items[1].DeliveryID != m.DeliveryID {
		t.Errorf("deliveries %+v: want two, delivered on the first attempt, newest first", list.Items)
	}
}

// A session's end (logout) is no notification; an unsubscribed event
// is not sent.
func TestWebhookOnlySubscribedEvents(t *testing.T) {
	e, r := notifyEnv(t, []string{gatehouse.NotifyTokenExpired})
	nt := e.mint(e.admin, "admin", gatehouse.TokenRequest{ExpiresIn: seconds(3600)})
	e.call("DELETE", "/api/v1/account/admin/token/"+nt.ID, e.admin, nil, 200, nil)
	session := e.login("admin", adminPassword)
	e.call("DELETE", "/api/v1/session", session, nil, 200, nil)
	deliver(t, e.svc)
	if ds := r.deliveries(); len(ds) != 0 {
		t.Errorf("receiver got %d requests (first %s), want none", len(ds), ds[0].body)
	}
}

// The reaper's removal of an expired token is token.expired.
func TestWebhookExpiredByReaper(t *testing.T) {
	e, r := notifyEnv(t, []string{"*"}, func(o *service.NotifyOptions) { o.ExpiryWarnings = []time.Duration{} })
	nt := e.mint(e.admin, "admin", gatehouse.TokenRequest{Name: "nightly", ExpiresIn: seconds(3600)})
	e.clock.Advance(2 * time.Hour)
	if n, err := e.svc.Reap(context.Background()); err != nil || n < 1 {
		t.Fatalf("Reap: %d, %v", n, err)
	}
	if got := deliver(t, e.svc); got != 1 {
		t.Fatalf("delivered %d, want 1 (the API token; the admin's session is not news)", got)
	}
	m := r.deliveries()[0].msg
	if m.Event != "token.expired" || m.Token.ID != nt.ID || m.Token.Name != "nightly" {
		t.Errorf("got %+v, want token.expired of %s", m, nt.ID)
	}
}

// token.expiring is sent once per token at each lead time it reaches,
// only for lead times shorter than the token's life, and never for
// session tokens; scanning again, or from another server, sends nothing
// more.
func TestWebhookExpiryWarningsOncePerLead(t *testing.T) {
	e, r := notifyEnv(t, []string{gatehouse.NotifyTokenExpiring})
	ctx := context.Background()
	long := e.mint(e.admin, "admin", gatehouse.TokenRequest{Name: "thirty days", ExpiresIn: seconds(30 * 24 * 3600)})
	short := e.mint(e.admin, "admin", gatehouse.TokenRequest{Name: "twelve hours", ExpiresIn: seconds(12 * 3600)})
	scan := func(want int) {
		t.Helper()
		for i := range 2 {
			n, err := e.svc.ScanExpiring(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if i == 1 {
				want = 0 // the second scan finds them enqueued
			}
			if n != want {
				t.Fatalf("scan %d: enqueued %d, want %d", i+1, n, want)
			}
		}
		deliver(t, e.svc)
	}
	scan(0) // nothing is within a lead time it lives longer than
	e.clock.Advance(23*24*time.Hour - time.Minute)
	scan(0)
	e.clock.Advance(time.Minute) // 7 days left
	scan(1)
	e.clock.Advance(5 * 24 * time.Hour) // 2 days left
	scan(0)
	e.clock.Advance(24 * time.Hour) // 1 day left
	scan(1)
	e.clock.Advance(23 * time.Hour)
	scan(0)

	ds := r.deliveries()
	if len(ds) != 2 {
		t.Fatalf("receiver got %d, want 2", len(ds))
	}
	for i, want := range []struct {
		lead string
		secs int64
		left int64
	}{{"168h0m0s", 7 * 24 * 3600, 7 * 24 * 3600}, {"24h0m0s", 24 * 3600, 24 * 3600}} {
		m := ds[i].msg
		if m.Event != "token.expiring" || m.Token.ID != long.ID || m.Lead != want.lead || m.LeadSeconds != want.secs ||
			m.ExpiresIn == nil || *m.ExpiresIn != want.left || !m.Token.ExpiresAt.Equal(long.ExpiresAt) {
			t.Errorf("warning %d: %s, want token.expiring of %s at lead %s with %d seconds left", i+1, ds[i].body, long.ID, want.lead, want.left)
		}
		if m.Token.ID == short.ID {
			t.Errorf("a 12-hour token was warned")
		}
	}
}

// A receiver that fails is retried with backoff, with the same delivery
// id, until it answers 2xx; the attempts and statuses are listed.
func TestWebhookRetriedWithBackoff(t *testing.T) {
	e, r := notifyEnv(t, []string{"*"})
	r.answer(500, 503)
	nt := e.mint(e.admin, "admin", gatehouse.TokenRequest{ExpiresIn: seconds(3600)})
	e.call("DELETE", "/api/v1/account/admin/token/"+nt.ID, e.admin, nil, 200, nil)
	steps := []struct {
		advance   time.Duration
		delivered int
		requests  int
	}{
		{0, 0, 1},                         // 500
		{29 * time.Second, 0, 1},          // not due: 30 s after the first failure
		{time.Second, 0, 2},               // 503
		{time.Minute - time.Second, 0, 2}, // not due: 1 min after the second
		{time.Second, 1, 3},               // 204
		{24 * time.Hour, 0, 3},            // done
	}
	for i, s := range steps {
		e.clock.Advance(s.advance)
		if got := deliver(t, e.svc); got != s.delivered {
			t.Fatalf("step %d: delivered %d, want %d", i+1, got, s.delivered)
		}
		if got := len(r.deliveries()); got != s.requests {
			t.Fatalf("step %d: receiver got %d requests, want %d", i+1, got, s.requests)
		}
	}
	ds := r.deliveries()
	for _, d := range ds[1:] {
		if d.msg.DeliveryID != ds[0].msg.DeliveryID || string(d.body) != string(ds[0].body) {
			t.Errorf("a retry changed the delivery id or the body: %s, first %s", d.body, ds[0].body)
		}
	}
	var list gatehouse.List[gatehouse.Notification]
	e.call("GET", "/api/v1/webhooks/ci/deliveries", e.login("admin", adminPassword), nil, 200, &list)
	if len(list.Items) != 1 || list.Items[0].Attempts != 3 || list.Items[0].State != gatehouse.NotificationDelivered {
		t.Errorf("deliveries %+v, want one delivered after 3 attempts", list.Items)
	}
}

// A notification that keeps failing is given up after the last attempt,
// and that is audited (without the body or the key).
func TestWebhookGivenUpAfterMaxAttempts(t *testing.T) {
	e, r := notifyEnv(t, []string{"*"}, func(o *service.NotifyOptions) { o.MaxAttempts = 2 })
	r.answer(500, 500, 500)
	nt := e.mint(e.admin, "admin", gatehouse.TokenRequest{ExpiresIn: seconds(3600)})
	e.call("DELETE", "/api/v1/account/admin/token/"+nt.ID, e.admin, nil, 200, nil)
	deliver(t, e.svc)
	e.clock.Advance(time.Hour)
	deliver(t, e.svc)
	e.clock.Advance(24 * time.Hour)
	deliver(t, e.svc)
	if got := len(r.deliveries()); got != 2 {
		t.Errorf("receiver got %d requests, want 2", got)
	}
	admin := e.login("admin", adminPassword)
	var list gatehouse.List[gatehouse.Notification]
	e.call("GET", "/api/v1/webhooks/ci/deliveries", admin, nil, 200, &list)
	if len(list.Items) != 1 || list.Items[0].State != gatehouse.NotificationFailed || list.Items[0].LastStatus != 500 {
		t.Errorf("deliveries %+v, want one failed with 500", list.Items)
	}
	e.svc.Flush(context.Background())
	var events gatehouse.List[gatehouse.Event]
	e.call("GET", "/api/v1/audit?type="+gatehouse.EventNotificationFailed, admin, nil, 200, &events)
	if len(events.Items) != 1 || !strings.Contains(events.Items[0].Detail, `"ci"`) {
		t.Errorf("audit %+v, want one notification.failed naming the webhook", events.Items)
	}
}

// Two servers on one store (each with the job lock, as on PostgreSQL)
// deliver a notification once, and their expiry scans enqueue a warning
// once.
func TestWebhookDeliveredOnceAcrossReplicas(t *testing.T) {
	e, r := notifyEnv(t, []string{"*"})
	st, err := sqlite.Open(context.Background(), e.dbPath)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var lock sync.Mutex
	replica := func() *service.Service {
		svc, err := service.New(context.Background(), service.Options{
			Store: lockingStore{st, &lock}, Now: e.clock.Now, BcryptCost: 10,
			Notifications: service.NotifyOptions{
				Webhooks: []gatehouse.Webhook{{Name: "ci", URL: r.srv.URL + "/hook", SecretFile: r.secret, Events: []string{"*"}}},
				Every:    -1,
			},
		})
		if err != nil {
			t.Fatal(err)
		}
		return svc
	}
	a, b := replica(), replica()
	nt := e.mint(e.admin, "admin", gatehouse.TokenRequest{ExpiresIn: seconds(30 * 24 * 3600)})
	other := e.mint(e.admin, "admin", gatehouse.TokenRequest{ExpiresIn: seconds(3600)})
	e.call("DELETE", "/api/v1/account/admin/token/"+other.ID, e.admin, nil, 200, nil)
	e.clock.Advance(23 * 24 * time.Hour)
	for round := range 3 {
		var wg sync.WaitGroup
		for _, svc := range []*service.Service{a, b, a, b} {
			wg.Go(func() {
				if _, err := svc.ScanExpiring(context.Background()); err != nil {
					t.Error(err)
				}
				if _, err := svc.DeliverNotifications(context.Background()); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		if got := len(r.deliveries()); got != 2 {
			t.Fatalf("round %d: receiver got %d requests, want 2 (the revocation and the warning)", round+1, got)
		}
	}
	ids := map[string]bool{}
	for _, d := range r.deliveries() {
		ids[d.msg.Event+" "+d.msg.Token.ID] = true
	}
	if !ids["token.revoked "+other.ID] || !ids["token.expiring "+nt.ID] {
		t.Errorf("delivered %v", ids)
	}
}

// The webhooks API: create, get, list (the file's shown read-only),
// replace, delete; the file's refused with a clear message; bad input
// refused with 400 and nothing changed; the key is never shown.
func TestWebhooksAPI(t *testing.T) {
	e, r := notifyEnv(t, []string{gatehouse.NotifyTokenRevoked})
	dir := t.TempDir()
	secret := r.secret // the API's webhook goes to the same receiver, with the same key
	key := string(r.key())
	empty := filepath.Join(dir, "empty")
	if err := os.WriteFile(empty, []byte("\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ok := gatehouse.WebhookRequest{Name: "ops", URL: r.srv.URL + "/ops", SecretFile: secret, Events: []string{"token.expiring", "token.revoked", "token.expiring"}}
	var created gatehouse.Webhook
	e.call("POST", "/api/v1/webhooks", e.admin, ok, 200, &created)
	if created.Name != "ops" || len(created.Events) != 2 || created.FromFile {
		t.Errorf("created %+v", created)
	}
	e.call("POST", "/api/v1/webhooks", e.admin, ok, 409, nil)

	bad := map[string]gatehouse.WebhookRequest{
		"fail/ftp URL":         {Name: "x", URL: "ftp://hooks.example/", SecretFile: secret, Events: []string{"*"}},
		"fail/credentials":     {Name: "x", URL: "https://user:pw@hooks.example/", SecretFile: secret, Events: []string{"*"}},
		"fail/no host":         {Name: "x", URL: "https:///path", SecretFile: secret, Events: []string{"*"}},
		"fail/unknown event":   {Name: "x", URL: "https://hooks.example/", SecretFile: secret, Events: []string{"token.created"}},
		"fail/no events":       {Name: "x", URL: "https://hooks.example/", SecretFile: secret},
		"fail/bad name":        {Name: "X Y", URL: "https://hooks.example/", SecretFile: secret, Events: []string{"*"}},
		"fail/relative secret": {Name: "x", URL: "https://hooks.example/", SecretFile: "secret", Events: []string{"*"}},
		"fail/missing secret":  {Name: "x", URL: "https://hooks.example/", SecretFile: filepath.Join(dir, "nope"), Events: []string{"*"}},
		"fail/empty secret":    {Name: "x", URL: "https://hooks.example/", SecretFile: empty, Events: []string{"*"}},
		"fail/the file's name": {Name: "ci", URL: "https://hooks.example/", SecretFile: secret, Events: []string{"*"}},
		"fail/a secret's dir":  {Name: "x", URL: "https://hooks.example/", SecretFile: dir, Events: []string{"*"}},
	}
	for name, req := range bad {
		t.Run(name, func(t *testing.T) {
			status, b := e.do("POST", "/api/v1/webhooks", e.admin, req)
			want := 400
			if req.Name == "ci" {
				want = 409
			}
			if status != want {
				t.Fatalf("status %d, want %d: %s", status, want, b)
			}
			if _, msg := errorOf(t, b); msg == "" {
				t.Errorf("no message: %s", b)
			}
			noSecretIn(t, "the error", b, key)
		})
	}
	status, b := e.do("PUT", "/api/v1/webhooks/ci", e.admin, ok)
	if _, msg := errorOf(t, b); status != 409 || !strings.Contains(msg, "configuration file") {
		t.Errorf("PUT the file's webhook: %d %s, want 409 naming the configuration file", status, b)
	}
	if status := e.status("DELETE", "/api/v1/webhooks/ci", e.admin, nil); status != 409 {
		t.Errorf("DELETE the file's webhook: %d, want 409", status)
	}

	var list gatehouse.List[gatehouse.Webhook]
	e.call("GET", "/api/v1/webhooks", e.admin, nil, 200, &list)
	if len(list.Items) != 2 || list.Items[0].Name != "ci" || !list.Items[0].FromFile || list.Items[1].Name != "ops" {
		t.Errorf("list %+v, want ci (from the file) and ops", list.Items)
	}
	_, listed := e.do("GET", "/api/v1/webhooks", e.admin, nil)
	noSecretIn(t, "the list", listed, key)

	changed := ok
	changed.Name, changed.Events = "", []string{"*"}
	var got gatehouse.Webhook
	e.call("PUT", "/api/v1/webhooks/ops", e.admin, changed, 200, &got)
	if len(got.Events) != 1 || got.Events[0] != "*" || !got.CreatedAt.Equal(created.CreatedAt) {
		t.Errorf("replaced %+v", got)
	}
	e.call("GET", "/api/v1/webhooks/ops", e.admin, nil, 200, &got)
	e.call("PUT", "/api/v1/webhooks/nosuch", e.admin, changed, 404, nil)

	// The API's webhook is sent to, too.
	nt := e.mint(e.admin, "admin", gatehouse.TokenRequest{ExpiresIn: seconds(3600)})
	e.call("DELETE", "/api/v1/account/admin/token/"+nt.ID, e.admin, nil, 200, nil)
	if got := deliver(t, e.svc); got != 2 {
		t.Errorf("delivered %d, want 2 (to the file's webhook and the API's)", got)
	}
	hooks := map[string]bool{}
	for _, d := range r.deliveries() {
		hooks[d.header.Get("X-Gatehouse-Delivery")] = true
	}
	if len(hooks) != 2 {
		t.Errorf("two webhooks got %d distinct delivery ids, want 2", len(hooks))
	}

	e.createUser("alice")
	alice := e.login("alice", "alice-password")
	e.call("GET", "/api/v1/webhooks", alice, nil, 403, nil)
	e.call("POST", "/api/v1/webhooks", alice, ok, 403, nil)
	e.call("DELETE", "/api/v1/webhooks/ops", e.admin, nil, 200, nil)
	e.call("DELETE", "/api/v1/webhooks/ops", e.admin, nil, 404, nil)
	e.call("GET", "/api/v1/webhooks/ops", e.admin, nil, 404, nil)
}

// User Info warns of the user's own tokens that expire within the
// longest lead time, with the days left.
func TestDashboardExpiringWarning(t *testing.T) {
	e, _ := notifyEnv(t, []string{"*"})
	e.mint(e.admin, "admin", gatehouse.TokenRequest{Name: "soon", ExpiresIn: seconds(3 * 24 * 3600)})
	e.mint(e.admin, "admin", gatehouse.TokenRequest{Name: "later", ExpiresIn: seconds(20 * 24 * 3600)})
	req, err := http.NewRequest("GET", e.srv.URL+"/user-info", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.AddCookie(&http.Cookie{Name: "gatehouse.token", Value: e.admin})
	status, b := e.send(req)
	if status != 200 {
		t.Fatalf("GET /user-info: %d", status)
	}
	page := string(b)
	i := strings.Index(page, `id="expiring-tokens"`)
	if i < 0 {
		t.Fatalf("no expiry warning on User Info")
	}
	warning := page[i:]
	warning = warning[:strings.Index(warning, "</div>")]
	if !strings.Contains(warning, "soon") || !strings.Contains(warning, "expires in 3 days") || strings.Contains(warning, "later") {
		t.Errorf("warning %q: want the 3-day token only, expiring in 3 days", warning)
	}
}

// openAPIWebhooks exercises the webhook routes for the OpenAPI test.
func openAPIWebhooks(t *testing.T, c *specClient, admin, other string) {
	t.Helper()
	secret := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(secret, []byte("openapi-webhook-key-0123456789abcdef"), 0o600); err != nil {
		t.Fatal(err)
	}
	c.e.remember("openapi-webhook-key-0123456789abcdef")
	hook := gatehouse.WebhookRequest{Name: "ops", URL: "https://hooks.example/gatehouse", SecretFile: secret, Events: []string{"*"}}
	c.post("/api/v1/webhooks", admin, hook, 200)
	c.post("/api/v1/webhooks", admin, hook, 409)
	c.post("/api/v1/webhooks", admin, gatehouse.WebhookRequest{Name: "bad", URL: "ftp://x", SecretFile: secret, Events: []string{"*"}}, 400)
	c.post("/api/v1/webhooks", other, hook, 403)
	c.get("/api/v1/webhooks", admin, 200)
	c.get("/api/v1/webhooks", other, 403)
	c.get("/api/v1/webhooks/ops", admin, 200)
	c.get("/api/v1/webhooks/nosuch", admin, 404)
	hook.Events = []string{"token.expiring"}
	c.put("/api/v1/webhooks/ops", admin, hook, 200)
	c.put("/api/v1/webhooks/nosuch", admin, gatehouse.WebhookRequest{URL: hook.URL, SecretFile: secret, Events: hook.Events}, 404)
	c.get("/api/v1/webhooks/ops/deliveries", admin, 200)
	c.get("/api/v1/webhooks/nosuch/deliveries", admin, 404)
	c.del("/api/v1/webhooks/ops", admin, 200)
	c.del("/api/v1/webhooks/ops", admin, 404)
}

// webhookFixture is a webhook to https://hooks.example with a secret file
// of its own.
func webhookFixture(t *testing.T, name string) gatehouse.WebhookRequest {
	t.Helper()
	secret := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(secret, []byte("fixture-webhook-key-0123456789abcdef"), 0o600); err != nil {
		t.Fatal(err)
	}
	return gatehouse.WebhookRequest{Name: name, URL: "https://hooks.example/" + name, SecretFile: secret, Events: []string{"*"}}
}

// A receiver that cannot be reached does not hold up the others, and
// spends one attempt per pass; deleting its webhook gives up what was
// pending, which a new webhook of the same name is then not sent.
func TestWebhookDownReceiver(t *testing.T) {
	e, r := notifyEnv(t, []string{gatehouse.NotifyTokenRevoked})
	gone := httptest.NewServer(http.NotFoundHandler())
	gone.Close() // refuses connections
	hook := gatehouse.WebhookRequest{Name: "ops", URL: gone.URL + "/hook", SecretFile: r.secret, Events: []string{"*"}}
	e.call("POST", "/api/v1/webhooks", e.admin, hook, 200, nil)
	for range 2 {
		nt := e.mint(e.admin, "admin", gatehouse.TokenRequest{ExpiresIn: seconds(3600)})
		e.call("DELETE", "/api/v1/account/admin/token/"+nt.ID, e.admin, nil, 200, nil)
	}
	if got := deliver(t, e.svc); got != 2 {
		t.Fatalf("delivered %d, want 2 (both to the receiver that is up)", got)
	}
	var list gatehouse.List[gatehouse.Notification]
	e.call("GET", "/api/v1/webhooks/ops/deliveries", e.admin, nil, 200, &list)
	attempts := map[int]int{}
	for _, n := range list.Items {
		attempts[n.Attempts]++
		if n.Attempts == 1 && !strings.Contains(n.LastError, "could not be reached") {
			t.Errorf("last error %q", n.LastError)
		}
	}
	if len(list.Items) != 2 || attempts[1] != 1 || attempts[0] != 1 {
		t.Errorf("ops deliveries %+v: want one tried once, one not tried", list.Items)
	}
	e.call("DELETE", "/api/v1/webhooks/ops", e.admin, nil, 200, nil)
	hook.URL = r.srv.URL + "/ops"
	e.call("POST", "/api/v1/webhooks", e.admin, hook, 200, nil)
	e.clock.Advance(time.Hour)
	if got := deliver(t, e.svc); got != 0 {
		t.Errorf("delivered %d of a deleted webhook's notifications to its successor", got)
	}
	e.call("GET", "/api/v1/webhooks/ops/deliveries", e.login("admin", adminPassword), nil, 200, &list)
	for _, n := range list.Items {
		if n.State != gatehouse.NotificationFailed || n.LastError != "the webhook was deleted" {
			t.Errorf("after delete: %+v", n)
		}
	}
}

// A leak report and a reused rotated token notify the owner: token.leaked
// for the reported token, token.reuse_detected for each token of the
// family it revoked, signed like every other notification, and the
// revocation of a disabled account's tokens is told as token.revoked.
func TestWebhookLeakedReusedAndAccountRevocations(t *testing.T) {
	e, r := notifyEnv(t, []string{"*"})
	e.createUser("ci")
	leaked := e.mint(e.admin, "ci", gatehouse.TokenRequest{Name: "pasted in a ticket"})
	sum := sha256.Sum256([]byte(leaked.Token))
	e.call("POST", "/api/v1/tokens/leaked", "", gatehouse.LeakReport{SHA256: []string{hex.EncodeToString(sum[:])}}, 200, nil)

	first := e.mint(e.admin, "ci", gatehouse.TokenRequest{Name: "pipeline"})
	var second gatehouse.NewToken
	e.call("POST", "/api/v1/account/ci/token/"+first.ID+"/rotate", e.admin, gatehouse.RotateRequest{}, 200, &second)
	e.remember(second.Token)
	if s := e.status("GET", "/api/v1/session/userinfo", first.Token, nil); s != 401 {
		t.Fatalf("reused token: %d", s)
	}

	other := e.mint(e.admin, "ci", gatehouse.TokenRequest{Name: "other"})
	off := false
	e.call("PATCH", "/api/v1/account/ci", e.admin, gatehouse.AccountPatch{Enabled: &off}, 200, nil)

	deliver(t, e.svc)
	got := map[string]string{}
	for _, d := range r.deliveries() {
		got[d.msg.Event+" "+d.msg.Token.ID] = d.msg.Token.Owner
		noSecretIn(t, "the webhook body", d.body, leaked.Token, first.Token, second.Token, other.Token)
	}
	for _, want := range []string{
		"token.leaked " + leaked.ID,
		"token.revoked " + first.ID, // rotated without grace
		"token.reuse_detected " + second.ID,
		"token.revoked " + second.ID,
		"token.revoked " + other.ID, // with its account
	} {
		if got[want] != "ci" {
			t.Errorf("no %q to ci among %v", want, got)
		}
	}
}
