package main

import (
	"fmt"
	"net/http"
	"sync"
	"testing"
)

// Two server processes on one PostgreSQL spend one login failure budget:
// 64 concurrent wrong guesses for one user, split across both, get at most
// 5 answers of 401 in all, and the rest 429; afterwards the right password
// is throttled on either replica too.
func TestLoginThrottleAcrossReplicas(t *testing.T) {
	_, url := replicaPostgres(t)
	rs := startReplicas(t, url, 2)
	const n = 64
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		counts = map[int]int{}
	)
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			body := fmt.Sprintf(`{"username":"admin","password":"wrong-guess-%d"}`, i)
			got := call(t, "POST", rs[i%2].url+"/api/v1/session", "", body)
			mu.Lock()
			counts[got.status]++
			mu.Unlock()
		})
	}
	close(start)
	wg.Wait()
	t.Logf("64 concurrent wrong guesses across two replicas: %v", counts)
	if got := counts[http.StatusUnauthorized]; got == 0 || got > 5 {
		t.Errorf("%d answers of 401, want 1 to 5 (all: %v)", got, counts)
	}
	if got := counts[http.StatusUnauthorized] + counts[http.StatusTooManyRequests]; got != n {
		t.Errorf("answers other than 401 and 429: %v", counts)
	}
	if counts[http.StatusUnauthorized] == 5 {
		for _, r := range rs {
			body := fmt.Sprintf(`{"username":"admin","password":%q}`, lossPassword)
			if got := call(t, "POST", r.url+"/api/v1/session", "", body); got.status != http.StatusTooManyRequests {
				t.Errorf("%s: the right password after 5 failures: %v, want 429", r.url, got)
			}
		}
	}
}
