package main

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// On SIGTERM the server turns /readyz to 503 at once, goes on answering
// authenticated requests for the drain period, and then exits cleanly.
func TestSIGTERMDrainsBeforeExit(t *testing.T) {
	const drain = 1500 * time.Millisecond
	s := startWith(t, t.TempDir(), []string{"--shutdown-drain", drain.String()}, "GATEHOUSE_ADMIN_PASSWORD="+lossPassword)
	tok := login(t, s.url, "admin", lossPassword)
	waitReadyz(t, s.url, http.StatusOK, 5*time.Second)

	exited := make(chan error, 1)
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	signalled := time.Now()
	go func() { exited <- s.cmd.Wait() }()

	client := &http.Client{Timeout: 5 * time.Second}
	get := func(path, bearer string) (*http.Response, error) {
		req, _ := http.NewRequest("GET", s.url+path, nil)
		if bearer != "" {
			req.Header.Set("Authorization", "Bearer "+bearer)
		}
		resp, err := client.Do(req)
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		return resp, err
	}
	for {
		resp, err := get("/readyz", "")
		if err != nil {
			t.Fatalf("/readyz during the drain: %v", err)
		}
		if resp.StatusCode == http.StatusServiceUnavailable {
			break
		}
		if d := time.Since(signalled); d > 100*time.Millisecond {
			t.Fatalf("/readyz still %d %s after SIGTERM, want 503 within 100ms", resp.StatusCode, d)
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Logf("/readyz answered 503 %s after SIGTERM", time.Since(signalled).Round(time.Millisecond))

	// Authenticated requests keep working for the whole drain, each on a
	// connection the server asks to close.
	served := 0
	for time.Since(signalled) < drain-300*time.Millisecond {
		resp, err := get("/api/v1/session/userinfo", tok)
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("an authenticated request %s into the drain: %v %v", time.Since(signalled).Round(time.Millisecond), resp, err)
		}
		if !resp.Close {
			t.Errorf("a response during the drain keeps its connection open")
		}
		served++
		time.Sleep(50 * time.Millisecond)
	}

	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("exit: %v; logs:\n%s", err, s.logs.String())
		}
	case <-time.After(drain + 10*time.Second):
		t.Fatalf("still running %s after SIGTERM", drain+10*time.Second)
	}
	took := time.Since(signalled)
	if took < drain {
		t.Errorf("exited %s after SIGTERM, before the %s drain ended", took, drain)
	}
	if !strings.Contains(s.logs.String(), `"msg":"draining: /readyz answers 503, still serving"`) {
		t.Errorf("the log does not say it drains:\n%s", s.logs.String())
	}
	t.Logf("served %d authenticated requests during the drain; exited 0 %s after SIGTERM", served, took.Round(time.Millisecond))
}

// replica is one slot behind a test's load balancer: a fixed address and
// the latest verdict of its /readyz.
type replica struct {
	addr, url string
	proc      *proc
	ready     atomic.Bool
	served    atomic.Int64
}

// freeAddr returns a loopback address with a port free right now.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// Two real replicas on one real PostgreSQL are restarted one by one while
// clients send authenticated requests, each to a replica whose /readyz
// last answered 200 (polled every 50 ms, as a load balancer does): no
// request fails.
func TestRollingRestartUnderLoadFailsNoRequest(t *testing.T) {
	_, dbURL := replicaPostgres(t)
	const drain = time.Second
	flags := func(addr string) []string {
		return []string{"--listen", addr, "--database-url", dbURL, "--staleness-bound", replicaBound.String(), "--shutdown-drain", drain.String()}
	}
	var rs []*replica
	for range 2 {
		addr := freeAddr(t)
		r := &replica{addr: addr, url: "http://" + addr}
		r.proc = startWith(t, t.TempDir(), flags(addr), "GATEHOUSE_ADMIN_PASSWORD="+lossPassword)
		rs = append(rs, r)
	}
	a, b := rs[0], rs[1]
	w := writes{t: t, url: a.url, bearer: login(t, a.url, "admin", lossPassword)}
	_, secret := w.mintOK("load")
	waitStatus(t, b.proc, secret, http.StatusOK, replicaBound)

	// The load balancer's health checks.
	stop := make(chan struct{})
	var checks sync.WaitGroup
	check := &http.Client{Timeout: time.Second}
	for _, r := range rs {
		checks.Add(1)
		go func() {
			defer checks.Done()
			tick := time.NewTicker(50 * time.Millisecond)
			defer tick.Stop()
			for {
				resp, err := check.Get(r.url + "/readyz")
				ok := err == nil && resp.StatusCode == http.StatusOK
				if err == nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
				r.ready.Store(ok)
				select {
				case <-stop:
					return
				case <-tick.C:
				}
			}
		}()
	}
	defer func() { close(stop); checks.Wait() }()
	waitFor(t, 5*time.Second, "both replicas ready", func() bool { return a.ready.Load() && b.ready.Load() })

	// The clients: each request goes to a replica that was ready at the
	// latest check. The loop is bounded; it runs at least until both
	// restarts are done.
	const (
		clients  = 4
		minEach  = 200
		maxEach  = 4000
		interval = 5 * time.Millisecond
	)
	var (
		restarted atomic.Bool
		total     atomic.Int64
		waited    atomic.Int64
		mu        sync.Mutex
		failures  []string
		load      sync.WaitGroup
	)
	// pick returns the first replica from start on that was ready at its
	// latest check, waiting while none is; nil once the test stops.
	pick := func(start int) *replica {
		for {
			for n := range len(rs) {
				if r := rs[(start+n)%len(rs)]; r.ready.Load() {
					return r
				}
			}
			waited.Add(1)
			select {
			case <-stop:
				return nil
			case <-time.After(interval):
			}
		}
	}
	client := &http.Client{Timeout: 10 * time.Second}
	for c := range clients {
		load.Add(1)
		go func() {
			defer load.Done()
			for i := 0; i < maxEach && (i < minEach || !restarted.Load()); i++ {
				r := pick(c + i)
				if r == nil {
					return
				}
				req, _ := http.NewRequest("GET", r.url+"/api/v1/session/userinfo", nil)
				req.Header.Set("Authorization", "Bearer "+secret)
				resp, err := client.Do(req)
				total.Add(1)
				if err == nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != http.StatusOK {
						err = fmt.Errorf("status %d", resp.StatusCode)
					}
				}
				if err != nil {
					mu.Lock()
					failures = append(failures, fmt.Sprintf("%s: %v", r.addr, err))
					mu.Unlock()
				} else {
					r.served.Add(1)
				}
				time.Sleep(interval)
			}
		}()
	}

	// Restart A, then B, each on its address and the same database, once
	// the other one is ready.
	for i, r := range rs {
		other := rs[1-i]
		waitFor(t, 10*time.Second, other.addr+" ready", other.ready.Load)
		before := r.served.Load()
		time.Sleep(300 * time.Millisecond) // load on both
		if r.served.Load() == before {
			t.Errorf("%s served nothing before its restart", r.addr)
		}
		stoppedAt := time.Now()
		if err := r.proc.cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		if err := r.proc.cmd.Wait(); err != nil {
			t.Fatalf("%s exited with %v; logs:\n%s", r.addr, err, r.proc.logs.String())
		}
		t.Logf("%s drained and exited %s after SIGTERM", r.addr, time.Since(stoppedAt).Round(time.Millisecond))
		r.proc = startWith(t, r.proc.dataDir, flags(r.addr), "GATEHOUSE_ADMIN_PASSWORD="+lossPassword)
		waitFor(t, 10*time.Second, r.addr+" ready again", r.ready.Load)
		t.Logf("%s serving again %s after SIGTERM", r.addr, time.Since(stoppedAt).Round(time.Millisecond))
	}
	time.Sleep(300 * time.Millisecond) // load on both again
	restarted.Store(true)
	load.Wait()

	t.Logf("%d requests, %d failed; served by %s: %d, %s: %d; %d waits with no replica ready",
		total.Load(), len(failures), a.addr, a.served.Load(), b.addr, b.served.Load(), waited.Load())
	if len(failures) > 0 {
		t.Errorf("%d of %d requests failed during the rolling restart; first: %s", len(failures), total.Load(), failures[0])
	}
	if total.Load() < clients*minEach {
		t.Errorf("%d requests, want at least %d", total.Load(), clients*minEach)
	}
}
