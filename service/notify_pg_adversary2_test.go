package service_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/service"
	"github.com/gatehouse/gatehouse/store/postgres"
	"github.com/gatehouse/gatehouse/store/storetest/pgtest"
)

// TestAdversary2PostgresReplicasDeliverOnce: two replicas on one
// PostgreSQL database deliver and scan at once, again and again: every
// notification reaches the receiver exactly once.
func TestAdversary2PostgresReplicasDeliverOnce(t *testing.T) {
	pg, err := pgtest.Start(pgtest.DefaultBin)
	if err != nil {
		if os.Getenv("GATEHOUSE_TEST_REQUIRE_POSTGRES") == "1" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	t.Cleanup(func() { pg.Stop() })
	url := pg.Database(t)
	ctx := context.Background()
	var mu sync.Mutex
	got := map[string]int{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got[r.Header.Get("X-Gatehouse-Delivery")]++
		mu.Unlock()
	}))
	defer srv.Close()
	key := filepath.Join(t.TempDir(), "key")
	os.WriteFile(key, []byte("pg-adversary2-webhook-key-0123456789\n"), 0o600)
	var now = time.Now()
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	replica := func() *service.Service {
		st, err := postgres.Open(ctx, url)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		svc, err := service.New(ctx, service.Options{Store: st, BcryptCost: 10, Now: clock, Notifications: service.NotifyOptions{
			Webhooks: []gatehouse.Webhook{{Name: "ci", URL: srv.URL, SecretFile: key, Events: []string{"*"}}}, Every: -1}})
		if err != nil {
			t.Fatal(err)
		}
		return svc
	}
	a := replica()
	if _, err := a.Bootstrap(ctx, "admin-password"); err != nil {
		t.Fatal(err)
	}
	b := replica()
	nt, err := a.Login(ctx, "admin", "admin-password", "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	admin, err := a.Authenticate(ctx, nt.Token)
	if err != nil {
		t.Fatal(err)
	}
	week := int64(8 * 24 * 3600)
	for range 10 {
		if _, err := a.CreateToken(ctx, admin, "admin", gatehouse.TokenRequest{Name: "deploy", ExpiresIn: &week}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := a.RevokeAll(ctx, admin, "admin", time.Time{}); err != nil {
		t.Fatal(err)
	}
	for range 10 {
		if _, err := a.CreateToken(ctx, admin, "admin", gatehouse.TokenRequest{Name: "deploy", ExpiresIn: &week}); err != nil {
			t.Fatal(err)
		}
	}
	mu.Lock()
	now = now.Add(7*24*time.Hour + time.Hour) // within 24h of expiry: one warning each
	mu.Unlock()
	for round := range 4 {
		var wg sync.WaitGroup
		for _, s := range []*service.Service{a, b, a, b} {
			wg.Go(func() {
				if _, err := s.ScanExpiring(ctx); err != nil {
					t.Error(err)
				}
				if _, err := s.DeliverNotifications(ctx); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		_ = round
	}
	mu.Lock()
	defer mu.Unlock()
	for id, n := range got {
		if n != 1 {
			t.Errorf("delivery %s received %d times", id, n)
		}
	}
	t.Logf("%d deliveries", len(got))
}
