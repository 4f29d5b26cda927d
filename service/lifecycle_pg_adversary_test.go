package service_test

import (
	"context"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/service"
	"github.com/gatehouse/gatehouse/store/postgres"
	"github.com/gatehouse/gatehouse/store/storetest/pgtest"
)

func pgReplica(t *testing.T, url string) *service.Service {
	t.Helper()
	ctx := context.Background()
	st, err := postgres.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	svc, err := service.New(ctx, service.Options{Store: st, BcryptCost: 10, StalenessBound: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	run, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); svc.Run(run, time.Hour) }()
	t.Cleanup(func() { stop(); <-done; st.Close() })
	return svc
}

// Two replicas on one PostgreSQL database: the same token rotated on
// both at once gets one successor; a rotated-away token presented on
// one while the other self-rotates the chain leaves no token of the
// family working anywhere.
func TestAdversaryPostgresReplicasRotationRaces(t *testing.T) {
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
	a := pgReplica(t, url)
	if _, err := a.Bootstrap(ctx, "admin-password"); err != nil {
		t.Fatal(err)
	}
	b := pgReplica(t, url)
	nt, err := a.Login(ctx, "admin", "admin-password", "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	adminOn := func(s *service.Service) *service.Principal {
		var p *service.Principal
		eventually(t, 5*time.Second, "admin session", func() bool {
			var err error
			p, err = s.Authenticate(ctx, nt.Token)
			return err == nil
		})
		return p
	}
	works := func(s *service.Service, tok string) bool {
		_, err := s.Authenticate(ctx, tok)
		return err == nil
	}
	for round := range 6 {
		first, err := a.CreateToken(ctx, adminOn(a), "admin", gatehouse.TokenRequest{Name: "chain", SelfRotate: true})
		if err != nil {
			t.Fatal(err)
		}
		eventually(t, 5*time.Second, "b knows the token", func() bool { return works(b, first.Token) })
		// Both replicas rotate it at once.
		var ok atomic.Int64
		var wg sync.WaitGroup
		var succ [2]gatehouse.NewToken
		for i, s := range []*service.Service{a, b} {
			p := adminOn(s)
			wg.Add(1)
			go func() {
				defer wg.Done()
				nt, err := s.RotateToken(ctx, p, "admin", first.ID, gatehouse.RotateRequest{GraceSeconds: int64(round % 2 * 30)})
				if err == nil {
					ok.Add(1)
					succ[i] = nt
				}
			}()
		}
		wg.Wait()
		if ok.Load() != 1 {
			t.Fatalf("round %d: %d of two concurrent rotations of one token succeeded", round, ok.Load())
		}
		second := succ[0]
		if second.Token == "" {
			second = succ[1]
		}
		eventually(t, 5*time.Second, "a knows the successor", func() bool { return works(a, second.Token) })
		eventually(t, 5*time.Second, "b knows the successor", func() bool { return works(b, second.Token) })
		// The successor self-rotates on a while the thief presents the
		// rotated-away first token on b (after its grace, when it had one).
		if round%2 == 1 {
			// grace of 30 s: revoke the first explicitly, so that it counts
			// as rotated away and gone.
			if err := a.DeleteToken(ctx, adminOn(a), "admin", first.ID); err != nil {
				t.Fatal(err)
			}
		}
		var live []string
		var mu sync.Mutex
		wg.Add(2)
		go func() {
			defer wg.Done()
			tok := second.Token
			for range 3 {
				p, err := a.Authenticate(ctx, tok)
				if err != nil {
					return
				}
				nt, err := a.SelfRotate(ctx, p, "admin", gatehouse.RotateRequest{})
				if err != nil {
					return
				}
				mu.Lock()
				live = append(live, nt.Token)
				mu.Unlock()
				tok = nt.Token
			}
		}()
		go func() {
			defer wg.Done()
			eventually(t, 5*time.Second, "b knows the first is rotated away", func() bool {
				_, err := b.Authenticate(ctx, first.Token)
				return err != nil
			})
		}()
		wg.Wait()
		b.Authenticate(ctx, first.Token)
		for i, tok := range append([]string{second.Token}, live...) {
			for name, s := range map[string]*service.Service{"a": a, "b": b} {
				ok := false
				for range 50 { // let the feed carry the revocations
					if !works(s, tok) {
						ok = true
						break
					}
					time.Sleep(20 * time.Millisecond)
				}
				if !ok {
					t.Errorf("round %d: token %d of a reused family still works on %s", round, i, name)
				}
			}
		}
	}
}
