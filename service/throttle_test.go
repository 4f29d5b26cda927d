package service_test

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/service"
)

// Two replicas on one database spend one failure budget: 64 concurrent
// wrong guesses for one user, split across both, get at most 5 answers of
// 401 in all (the rest are throttled), and afterwards the right password
// is refused on either replica too.
func TestLoginThrottleHoldsAcrossReplicas(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "gatehouse.db")
	a, _ := replica(t, path, time.Second)
	if _, err := a.Bootstrap(ctx, "admin-password"); err != nil {
		t.Fatal(err)
	}
	b, _ := replica(t, path, time.Second)
	replicas := []*service.Service{a, b}

	const n = 64
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		counts = map[string]int{}
	)
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			_, err := replicas[i%2].Login(ctx, "admin", fmt.Sprint("wrong-guess-", i), "192.0.2.1")
			mu.Lock()
			counts[gatehouse.ErrorCode(err)]++
			mu.Unlock()
		})
	}
	began := time.Now()
	close(start)
	wg.Wait()
	t.Logf("guesses took %v", time.Since(began))
	if got := counts[gatehouse.EUNAUTHORIZED]; got == 0 || got > 5 {
		t.Errorf("64 wrong guesses across two replicas: %d answers of 401, want 1 to 5 (all: %v)", got, counts)
	}
	if got := counts[gatehouse.EUNAUTHORIZED] + counts[gatehouse.ETHROTTLED]; got != n {
		t.Errorf("answers other than unauthorized and throttled: %v", counts)
	}
	t.Logf("64 concurrent wrong guesses across two replicas: %v", counts)

	if counts[gatehouse.EUNAUTHORIZED] == 5 {
		for i, r := range replicas {
			_, err := r.Login(ctx, "admin", "admin-password", "198.51.100.7")
			if code := gatehouse.ErrorCode(err); code != gatehouse.ETHROTTLED {
				t.Errorf("replica %d: the right password after 5 failures: %v, want throttled", i, err)
			}
		}
	}
}
