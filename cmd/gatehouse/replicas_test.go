package main

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/store/storetest/pgtest"
)

// Several real server processes on one real PostgreSQL: what one replica
// commits, the others apply from the change feed within the staleness
// bound, and a replica that cannot confirm it is current refuses tokens.

const replicaBound = time.Second

// replicaPostgres starts a PostgreSQL server of the test's own (the test
// freezes it) and returns it with a database URL on it.
func replicaPostgres(t *testing.T) (*pgtest.Server, string) {
	t.Helper()
	pg, err := pgtest.Start(pgtest.DefaultBin)
	if err != nil {
		if os.Getenv("GATEHOUSE_TEST_REQUIRE_POSTGRES") == "1" {
			t.Fatalf("PostgreSQL: %v", err)
		}
		t.Skipf("PostgreSQL: %v (GATEHOUSE_TEST_REQUIRE_POSTGRES=1 makes this a failure)", err)
	}
	t.Cleanup(func() {
		pg.Resume() // never leave it stopped, or Stop hangs
		if err := pg.Stop(); err != nil {
			t.Errorf("stop PostgreSQL: %v", err)
		}
	})
	return pg, pg.Database(t)
}

// startReplicas starts n servers on the database at url.
func startReplicas(t *testing.T, url string, n int) []*proc {
	t.Helper()
	var out []*proc
	for range n {
		dir := filepath.Join(t.TempDir(), "data")
		out = append(out, startWith(t, dir, []string{"--database-url", url, "--staleness-bound", replicaBound.String()},
			"GATEHOUSE_ADMIN_PASSWORD="+lossPassword))
	}
	return out
}

// status is the status of userinfo with tok at a replica.
func status(t *testing.T, p *proc, tok string) int {
	return call(t, "GET", p.url+"/api/v1/session/userinfo", tok, "").status
}

// waitStatus polls until tok gets want at p and returns how long it took;
// it fails the test after within.
func waitStatus(t *testing.T, p *proc, tok string, want int, within time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		got := status(t, p, tok)
		if got == want {
			return time.Since(start)
		}
		if time.Since(start) > within {
			t.Fatalf("%s: status %d after %s, want %d", p.url, got, within, want)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func TestReplicasFollowTheChangeFeed(t *testing.T) {
	pg, url := replicaPostgres(t)
	rs := startReplicas(t, url, 3)
	a, others := rs[0], rs[1:]
	w := writes{t: t, url: a.url, bearer: login(t, a.url, "admin", lossPassword)}

	// Revocations made through one replica are refused by the others
	// within the bound.
	const n = 20
	var lat []time.Duration
	for i := range n {
		id, secret := w.mintOK("r" + strconv.Itoa(i))
		for _, o := range others {
			waitStatus(t, o, secret, http.StatusOK, replicaBound)
		}
		if got := w.revoke(id); got.status != http.StatusOK {
			t.Fatalf("revoke: %v", got)
		}
		if s := status(t, a, secret); s != http.StatusUnauthorized {
			t.Fatalf("the revoking replica still accepts the token: %d", s)
		}
		var wg sync.WaitGroup
		var mu sync.Mutex
		for _, o := range others {
			wg.Add(1)
			go func() {
				defer wg.Done()
				d := waitStatus(t, o, secret, http.StatusUnauthorized, replicaBound)
				mu.Lock()
				lat = append(lat, d)
				mu.Unlock()
			}()
		}
		wg.Wait()
	}
	slices.Sort(lat)
	t.Logf("revocation seen by the other replicas: p50 %s, max %s over %d", lat[len(lat)/2], lat[len(lat)-1], len(lat))

	// Policy and account changes travel the same way.
	b := others[0]
	put := func(csv string) {
		t.Helper()
		if got := call(t, "PUT", a.url+"/api/v1/settings/rbac", w.bearer, `{"policyCSV":`+strconv.Quote(csv)+`}`); got.status != http.StatusOK {
			t.Fatalf("PUT rbac: %v", got)
		}
	}
	if got := call(t, "POST", a.url+"/api/v1/account", w.bearer, `{"name":"ci","capabilities":["apiKey"]}`); got.status != http.StatusOK {
		t.Fatalf("create ci: %v", got)
	}
	put("p, ci, applications, get, */*, allow")
	ci := call(t, "POST", a.url+"/api/v1/account/ci/token", w.bearer, `{"name":"ci"}`)
	ciTok, _ := ci.body["token"].(string)
	canI := func(p *proc) string {
		got := call(t, "GET", p.url+"/api/v1/account/can-i/applications/get/shop/web", ciTok, "")
		v, _ := got.body["value"].(string)
		return v
	}
	waitFor(t, replicaBound, "replica b to apply the new policy", func() bool { return canI(b) == "yes" })
	put("")
	waitFor(t, replicaBound, "replica b to apply the policy change that takes it away", func() bool { return canI(b) == "no" })
	if got := call(t, "PATCH", a.url+"/api/v1/account/ci", w.bearer, `{"enabled":false}`); got.status != http.StatusOK {
		t.Fatalf("disable ci: %v", got)
	}
	waitStatus(t, b, ciTok, http.StatusUnauthorized, replicaBound)

	// With its notification connection killed, a replica still learns of a
	// revocation within the bound (it reads the feed every 250ms) and
	// listens again.
	pg.Exec(t, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query ILIKE 'LISTEN%'")
	id, secret := w.mintOK("listener")
	for _, o := range others {
		waitStatus(t, o, secret, http.StatusOK, replicaBound)
	}
	if got := w.revoke(id); got.status != http.StatusOK {
		t.Fatalf("revoke: %v", got)
	}
	for _, o := range others {
		waitStatus(t, o, secret, http.StatusUnauthorized, replicaBound)
	}

	// A frozen database: every replica refuses tokens within the bound
	// (plus a confirmation interval), /readyz says 503, /healthz 200; all
	// recover by themselves once it answers again.
	_, live := w.mintOK("frozen")
	for _, o := range others {
		waitStatus(t, o, live, http.StatusOK, replicaBound)
	}
	if err := pg.Freeze(); err != nil {
		t.Fatal(err)
	}
	frozeAt := time.Now()
	for _, r := range rs {
		waitStatus(t, r, live, http.StatusServiceUnavailable, replicaBound+2*time.Second)
		t.Logf("%s refuses tokens %s after the freeze", r.url, time.Since(frozeAt).Round(time.Millisecond))
		if got := call(t, "GET", r.url+"/readyz", "", ""); got.status != http.StatusServiceUnavailable {
			t.Errorf("/readyz of a stale replica: %v", got)
		}
		if got := call(t, "GET", r.url+"/healthz", "", ""); got.status != http.StatusOK {
			t.Errorf("/healthz of a stale replica: %v", got)
		}
	}
	pg.Resume()
	thawedAt := time.Now()
	for _, r := range rs {
		waitStatus(t, r, live, http.StatusOK, 15*time.Second)
	}
	t.Logf("all replicas accept tokens again %s after the database answers", time.Since(thawedAt).Round(time.Millisecond))
}

// waitFor polls cond until it holds, failing the test after within.
func waitFor(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	for start := time.Now(); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Since(start) > within {
			t.Fatalf("waited %s for %s", within, what)
		}
	}
}

// Replicas reap one at a time (an advisory lock): each expired token is
// removed, and audited as expired, exactly once.
func TestReplicasReapEachTokenOnce(t *testing.T) {
	_, url := replicaPostgres(t)
	var rs []*proc
	for range 3 {
		rs = append(rs, startWith(t, filepath.Join(t.TempDir(), "data"),
			[]string{"--database-url", url, "--reaper-interval", "200ms"}, "GATEHOUSE_ADMIN_PASSWORD="+lossPassword))
	}
	w := writes{t: t, url: rs[0].url, bearer: login(t, rs[0].url, "admin", lossPassword)}
	ids := map[string]bool{}
	for i := range 6 {
		got := call(t, "POST", rs[i%3].url+"/api/v1/account/admin/token", w.bearer, fmt.Sprintf(`{"name":"short-%d","expiresIn":1}`, i))
		if got.status != http.StatusOK {
			t.Fatalf("mint: %v", got)
		}
		ids[got.body["id"].(string)] = true
	}
	count := func() map[string]int {
		got := call(t, "GET", rs[1].url+"/api/v1/audit?type=token.expired&limit=1000", w.bearer, "")
		n := map[string]int{}
		items, _ := got.body["items"].([]any)
		for _, it := range items {
			if id, _ := it.(map[string]any)["tokenId"].(string); ids[id] {
				n[id]++
			}
		}
		return n
	}
	waitFor(t, 10*time.Second, "every short-lived token to be reaped", func() bool { return len(count()) == len(ids) })
	time.Sleep(time.Second) // several more reaper rounds on every replica
	for id, n := range count() {
		if n != 1 {
			t.Errorf("token %s was audited as expired %d times, want once", id, n)
		}
	}
}
