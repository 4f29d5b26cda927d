// Command load drives a real Gatehouse server on loopback and reports
// requests/s and latency for: the unauthenticated health endpoint, an
// authenticated GET of a small resource, the same GET while 100 clients
// flood the login endpoint with wrong passwords, and the same GET with the
// request audit trail switched off. Every phase is bounded in time.
//
//	go run ./bench/load [-duration 5s] [-concurrency 8] [-flood 100] [-out bench/results/load.json]
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/bench/internal/fixture"
	"github.com/gatehouse/gatehouse/server"
	"github.com/gatehouse/gatehouse/service"
	"github.com/gatehouse/gatehouse/store/sqlite"
)

// Row is one measured phase.
type Row struct {
	Phase    string  `json:"phase"`
	Requests int     `json:"requests"`
	Errors   int     `json:"errors"`
	RPS      float64 `json:"rps"`
	P50us    float64 `json:"p50_us"`
	P99us    float64 `json:"p99_us"`
	Note     string  `json:"note,omitempty"`
}

func main() {
	duration := flag.Duration("duration", 5*time.Second, "length of each phase")
	conc := flag.Int("concurrency", 8, "concurrent clients per phase")
	flood := flag.Int("flood", 100, "concurrent wrong-password logins during the flood phase")
	out := flag.String("out", "bench/results/load.json", "JSON results file ('' for none)")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of the whole run to this file")
	flag.Parse()
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			log.Fatal(err)
		}
		pprof.StartCPUProfile(f)
		defer pprof.StopCPUProfile()
	}

	ctx := context.Background()
	on, err := startServer(ctx, false)
	if err != nil {
		log.Fatal(err)
	}
	defer on.close()
	off, err := startServer(ctx, true)
	if err != nil {
		log.Fatal(err)
	}
	defer off.close()

	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: *conc * 2, MaxConnsPerHost: *conc * 2}}
	health := func(base string) func() (int, error) {
		return get(client, base+"/healthz", "")
	}
	authed := func(s *srv) func() (int, error) {
		return get(client, s.url+"/api/v1/account/can-i/applications/get/team-a/web", s.token)
	}

	var rows []Row
	// Warm up connections and caches.
	measure(*conc, time.Second, authed(on))
	rows = append(rows, measure(*conc, *duration, health(on.url)).named("GET /healthz (no auth)"))
	idle := measure(*conc, *duration, authed(on)).named("authenticated GET (audit on)")
	rows = append(rows, idle)

	stop := make(chan struct{})
	var fl floodStats
	var wg sync.WaitGroup
	for i := range *flood {
		wg.Add(1)
		go func() { defer wg.Done(); loginFlood(on.url, i, stop, &fl) }()
	}
	time.Sleep(500 * time.Millisecond) // let the flood build up
	under := measure(*conc, *duration, authed(on)).named("authenticated GET, login flood")
	close(stop)
	wg.Wait()
	under.Note = fmt.Sprintf("%d logins: %d answered 401, %d answered 429", fl.total.Load(), fl.unauth.Load(), fl.throttled.Load())
	rows = append(rows, under)
	rows = append(rows, measure(*conc, *duration, authed(off)).named("authenticated GET (audit off)"))

	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "PHASE\tREQUESTS\tERRORS\tREQ/S\tP50\tP99\tNOTE")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%.0f\t%.0fµs\t%.0fµs\t%s\n", r.Phase, r.Requests, r.Errors, r.RPS, r.P50us, r.P99us, r.Note)
	}
	tw.Flush()
	fmt.Printf("\nauthenticated/health throughput: %.0f%%   flood p99 / idle p99: %.2f×   audit off/on throughput: %.0f%%\n",
		100*rows[1].RPS/rows[0].RPS, rows[2].P99us/rows[1].P99us, 100*rows[3].RPS/rows[1].RPS)

	if *out != "" {
		if err := os.MkdirAll(filepath.Dir(*out), 0o755); err != nil {
			log.Fatal(err)
		}
		b, _ := json.MarshalIndent(map[string]any{
			"date": time.Now().UTC().Format(time.RFC3339), "duration": duration.String(),
			"concurrency": *conc, "flood": *flood, "rows": rows,
		}, "", "  ")
		if err := os.WriteFile(*out, append(b, '\n'), 0o644); err != nil {
			log.Fatal(err)
		}
	}
}

// srv is a running in-process server with an API token for user-0.
type srv struct {
	url, token string
	close      func()
}

func startServer(ctx context.Context, auditOff bool) (*srv, error) {
	dir, err := os.MkdirTemp("", "gatehouse-load")
	if err != nil {
		return nil, err
	}
	st, err := sqlite.Open(ctx, filepath.Join(dir, "load.db"))
	if err != nil {
		return nil, err
	}
	if err := fixture.Accounts(ctx, st); err != nil {
		return nil, err
	}
	toks, err := fixture.Tokens(ctx, st, "gatehouse", 1000, 1)
	if err != nil {
		return nil, err
	}
	logger := slog.New(slog.NewJSONHandler(io.Discard, nil))
	svc, err := service.New(ctx, service.Options{
		Store: st, Logger: logger, AuditDisabled: auditOff,
		RBAC: gatehouse.RBAC{PolicyCSV: fixture.Policy(1000)},
	})
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	hs := &http.Server{Handler: server.New(server.Options{Service: svc, Logger: logger}), ReadHeaderTimeout: 10 * time.Second}
	go hs.Serve(ln)
	bg, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); svc.Run(bg, time.Minute) }()
	return &srv{url: "http://" + ln.Addr().String(), token: toks[0], close: func() {
		hs.Close()
		cancel()
		<-done
		st.Close()
		os.RemoveAll(dir)
	}}, nil
}

func get(c *http.Client, url, token string) func() (int, error) {
	return func() (int, error) {
		req, _ := http.NewRequest("GET", url, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := c.Do(req)
		if err != nil {
			return 0, err
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode, nil
	}
}

type result struct {
	Row
	lat []time.Duration
}

func (r result) named(name string) Row { r.Row.Phase = name; return r.Row }

// measure runs conc clients doing op for d and summarizes latencies.
func measure(conc int, d time.Duration, op func() (int, error)) result {
	var (
		mu   sync.Mutex
		all  []time.Duration
		errs atomic.Int64
		wg   sync.WaitGroup
	)
	start := time.Now()
	deadline := start.Add(d)
	for range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			lat := make([]time.Duration, 0, 1<<16)
			for n := 0; n < 5_000_000 && time.Now().Before(deadline); n++ {
				t0 := time.Now()
				code, err := op()
				lat = append(lat, time.Since(t0))
				if err != nil || code != http.StatusOK {
					errs.Add(1)
				}
			}
			mu.Lock()
			all = append(all, lat...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	fixture.Sort(all)
	return result{Row: Row{
		Requests: len(all), Errors: int(errs.Load()),
		RPS:   float64(len(all)) / elapsed.Seconds(),
		P50us: float64(fixture.Percentile(all, 50).Microseconds()),
		P99us: float64(fixture.Percentile(all, 99).Microseconds()),
	}, lat: all}
}

type floodStats struct{ total, unauth, throttled atomic.Int64 }

// loginFlood posts wrong passwords for fresh usernames from its own
// loopback address (127.0.0.2 …) until stop closes, so the per-address
// limit does not end the flood at once and bcrypt really runs.
func loginFlood(base string, i int, stop <-chan struct{}, st *floodStats) {
	local := &net.TCPAddr{IP: net.IPv4(127, 0, byte(1+i/250), byte(2+i%250))}
	c := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		DialContext: (&net.Dialer{LocalAddr: local}).DialContext,
	}}
	for n := 0; ; n++ {
		select {
		case <-stop:
			return
		default:
		}
		body := fmt.Sprintf(`{"username":"flood-%d-%d","password":"wrong-password"}`, i, n)
		resp, err := c.Post(base+"/api/v1/session", "application/json", strings.NewReader(body))
		if err != nil {
			continue
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		st.total.Add(1)
		switch resp.StatusCode {
		case http.StatusUnauthorized:
			st.unauth.Add(1)
		case http.StatusTooManyRequests:
			st.throttled.Add(1)
		}
	}
}
