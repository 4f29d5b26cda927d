// Command replicas measures Gatehouse replicas the way an operator meets
// them: three real server processes (with their JSON logs going to files,
// audit on) on one real PostgreSQL that this program starts on loopback.
//
//  1. Revocation propagation: revoke through replica A, poll B and C until
//     they refuse the token; p50, p99 and max over -revocations revocations.
//
//  2. Authenticated throughput on PostgreSQL against SQLite: wrk on
//     GET /api/v1/session/userinfo of a replica and of a single server on
//     the embedded store, side by side in one run (the request path never
//     touches the database, so the two should match).
//
//  3. Fail closed: freeze PostgreSQL (SIGSTOP on the postmaster and every
//     backend) and time until every replica refuses tokens, then resume it
//     and time until they accept them again.
//
//     go run ./bench/replicas [-revocations 200] [-wrk 5s] [-out bench/results/replicas.json]
//
// It needs PostgreSQL 15's binaries and wrk, as .ci/run installs them.
// Every loop is bounded; every process it starts is stopped by PID.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/gatehouse/gatehouse/store/storetest/pgtest"
	"github.com/jackc/pgx/v5"
)

const adminPassword = "bench-replicas-admin-password"

// Results is what the run writes.
type Results struct {
	Date           string  `json:"date"`
	Replicas       int     `json:"replicas"`
	StalenessBound string  `json:"stalenessBound"`
	Revocations    int     `json:"revocations"`
	PropP50ms      float64 `json:"propagation_p50_ms"`
	PropP99ms      float64 `json:"propagation_p99_ms"`
	PropMaxms      float64 `json:"propagation_max_ms"`
	RPSPostgres    float64 `json:"rps_postgres"`
	RPSSQLite      float64 `json:"rps_sqlite"`
	RPSRatio       float64 `json:"rps_postgres_over_sqlite"`
	FailClosedMs   float64 `json:"fail_closed_after_freeze_ms"`
	RecoverMs      float64 `json:"recovered_after_resume_ms"`
	CutOffMs       float64 `json:"fail_closed_after_cut_off_ms"`
	ReconnectMs    float64 `json:"recovered_after_reconnect_ms"`
	RollingTotal   int64   `json:"rolling_restart_requests"`
	RollingFailed  int64   `json:"rolling_restart_failed"`
}

func main() {
	revocations := flag.Int("revocations", 200, "revocations to time")
	wrkFor := flag.Duration("wrk", 5*time.Second, "length of each wrk run")
	bound := flag.Duration("bound", time.Second, "the replicas' --staleness-bound")
	out := flag.String("out", "bench/results/replicas.json", "JSON results file ('' for none)")
	flag.Parse()

	dir, err := os.MkdirTemp("", "gatehouse-replicas")
	check(err)
	defer os.RemoveAll(dir)
	bin := filepath.Join(dir, "gatehouse")
	if b, err := exec.Command("go", "build", "-o", bin, "./cmd/gatehouse").CombinedOutput(); err != nil {
		log.Fatalf("go build: %v\n%s", err, b)
	}
	pg, err := pgtest.Start(pgtest.DefaultBin)
	check(err)
	var procs []*exec.Cmd
	defer func() {
		pg.Resume()
		for _, p := range procs {
			p.Process.Signal(syscall.SIGTERM)
			p.Wait()
		}
		pg.Stop()
	}()
	adminURL := fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", pg.Port())
	dbURL := fmt.Sprintf("postgres://postgres@127.0.0.1:%d/gatehouse?sslmode=disable", pg.Port())
	sql := func(q string) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, adminURL)
		check(err)
		defer conn.Close(ctx)
		_, err = conn.Exec(ctx, q)
		check(err)
	}
	sql("CREATE DATABASE gatehouse")

	running := map[string]*exec.Cmd{}
	start := func(name, addr string, flags ...string) string {
		args := append([]string{"server", "--listen", addr, "--data-dir", filepath.Join(dir, name)}, flags...)
		cmd := exec.Command(bin, args...)
		cmd.Env = append(os.Environ(), "GATEHOUSE_ADMIN_PASSWORD="+adminPassword)
		logFile, err := os.Create(filepath.Join(dir, name+".log"))
		check(err)
		pr, pw := io.Pipe()
		cmd.Stderr = io.MultiWriter(logFile, pw)
		check(cmd.Start())
		procs = append(procs, cmd)
		running[name] = cmd
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			var line struct{ Msg, URL string }
			if json.Unmarshal(sc.Bytes(), &line) == nil && line.Msg == "gatehouse listening" {
				go io.Copy(io.Discard, pr)
				return line.URL
			}
		}
		log.Fatalf("%s did not start; see %s.log", name, name)
		return ""
	}
	var rs []string
	replicaFlags := func() []string {
		return []string{"--database-url", dbURL, "--staleness-bound", bound.String(), "--shutdown-drain", "1s"}
	}
	for i := range 3 {
		rs = append(rs, start("replica"+strconv.Itoa(i), freeAddr(), replicaFlags()...))
	}
	single := start("sqlite", freeAddr())
	a, others := rs[0], rs[1:]
	admin := login(a)

	// 1. Revocation propagation.
	var lat []time.Duration
	for i := range *revocations {
		id, tok := mint(a, admin, "r"+strconv.Itoa(i))
		for _, o := range others {
			waitStatus(o, tok, 200, 5*time.Second)
		}
		req(a, "DELETE", "/api/v1/account/admin/token/"+id, admin, "", 200)
		revoked := time.Now()
		var wg sync.WaitGroup
		var mu sync.Mutex
		for _, o := range others {
			wg.Add(1)
			go func() {
				defer wg.Done()
				waitStatus(o, tok, 401, 5*time.Second)
				mu.Lock()
				lat = append(lat, time.Since(revoked))
				mu.Unlock()
			}()
		}
		wg.Wait()
	}
	slices.Sort(lat)
	res := Results{Date: time.Now().UTC().Format(time.RFC3339), Replicas: len(rs), StalenessBound: bound.String(), Revocations: *revocations,
		PropP50ms: ms(lat[len(lat)/2]), PropP99ms: ms(lat[len(lat)*99/100]), PropMaxms: ms(lat[len(lat)-1])}

	// 2. Throughput, PostgreSQL replica against a single SQLite server.
	_, pgTok := mint(a, admin, "wrk")
	waitStatus(others[0], pgTok, 200, 5*time.Second)
	sAdmin := login(single)
	_, sqTok := mint(single, sAdmin, "wrk")
	res.RPSPostgres = wrk(others[0], pgTok, *wrkFor)
	res.RPSSQLite = wrk(single, sqTok, *wrkFor)
	res.RPSRatio = res.RPSPostgres / res.RPSSQLite

	// 3. Fail closed and recover.
	_, live := mint(a, admin, "frozen")
	for _, r := range rs {
		waitStatus(r, live, 200, 5*time.Second)
	}
	check(pg.Freeze())
	frozen := time.Now()
	var wg sync.WaitGroup
	for _, r := range rs {
		wg.Add(1)
		go func() { defer wg.Done(); waitStatus(r, live, 503, *bound+5*time.Second) }()
	}
	wg.Wait()
	res.FailClosedMs = ms(time.Since(frozen))
	pg.Resume()
	resumed := time.Now()
	for _, r := range rs {
		wg.Add(1)
		go func() { defer wg.Done(); waitStatus(r, live, 200, 30*time.Second) }()
	}
	wg.Wait()
	res.RecoverMs = ms(time.Since(resumed))

	// 3b. Cut off: the database refuses the replicas' connections and drops
	// the ones they hold.
	sql("ALTER DATABASE gatehouse WITH ALLOW_CONNECTIONS false")
	sql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = 'gatehouse'")
	cut := time.Now()
	for _, r := range rs {
		wg.Add(1)
		go func() { defer wg.Done(); waitStatus(r, live, 503, *bound+5*time.Second) }()
	}
	wg.Wait()
	res.CutOffMs = ms(time.Since(cut))
	sql("ALTER DATABASE gatehouse WITH ALLOW_CONNECTIONS true")
	back := time.Now()
	for _, r := range rs {
		wg.Add(1)
		go func() { defer wg.Done(); waitStatus(r, live, 200, 30*time.Second) }()
	}
	wg.Wait()
	res.ReconnectMs = ms(time.Since(back))

	// 4. A rolling restart under load: clients send only to replicas whose
	// latest /readyz (every 50 ms) was 200; each replica in turn gets
	// SIGTERM, drains, exits and starts again on its address.
	res.RollingTotal, res.RollingFailed = rolling(rs, live, func(i int) {
		name := "replica" + strconv.Itoa(i)
		cmd := running[name]
		check(cmd.Process.Signal(syscall.SIGTERM))
		check(cmd.Wait())
		start(name, strings.TrimPrefix(rs[i], "http://"), replicaFlags()...)
	})

	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "revocation propagation (%d, 2 other replicas each)\tp50 %.2f ms\tp99 %.2f ms\tmax %.2f ms\n", res.Revocations, res.PropP50ms, res.PropP99ms, res.PropMaxms)
	fmt.Fprintf(tw, "authenticated GET, wrk -t2 -c32 -d%s\tPostgreSQL replica %.0f req/s\tSQLite %.0f req/s\tratio %.2f\n", *wrkFor, res.RPSPostgres, res.RPSSQLite, res.RPSRatio)
	fmt.Fprintf(tw, "frozen database (bound %s)\tall replicas refuse after %.0f ms\trecover %.0f ms after resume\t\n", res.StalenessBound, res.FailClosedMs, res.RecoverMs)
	fmt.Fprintf(tw, "database cut off\tall replicas refuse after %.0f ms\trecover %.0f ms after reconnect\t\n", res.CutOffMs, res.ReconnectMs)
	fmt.Fprintf(tw, "rolling restart of %d replicas under load\t%d requests\t%d failed\t\n", len(rs), res.RollingTotal, res.RollingFailed)
	tw.Flush()
	if *out != "" {
		b, _ := json.MarshalIndent(res, "", "  ")
		check(os.WriteFile(*out, append(b, '\n'), 0o644))
	}
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func check(err error) {
	if err != nil {
		log.Fatal(err)
	}
}

var client = &http.Client{Timeout: 10 * time.Second}

// req sends a request and checks its status; it returns the decoded body.
func req(base, method, path, tok, body string, want int) map[string]any {
	r, err := http.NewRequest(method, base+path, strings.NewReader(body))
	check(err)
	if method != "GET" {
		r.Header.Set("Content-Type", "application/json")
	}
	if tok != "" {
		r.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := client.Do(r)
	check(err)
	defer resp.Body.Close()
	var out map[string]any
	json.NewDecoder(resp.Body).Decode(&out)
	if resp.StatusCode != want {
		log.Fatalf("%s %s: %d, want %d", method, path, resp.StatusCode, want)
	}
	return out
}

func login(base string) string {
	out := req(base, "POST", "/api/v1/session", "", fmt.Sprintf(`{"username":"admin","password":%q}`, adminPassword), 200)
	return out["token"].(string)
}

func mint(base, admin, name string) (id, tok string) {
	out := req(base, "POST", "/api/v1/account/admin/token", admin, fmt.Sprintf(`{"name":%q}`, name), 200)
	return out["id"].(string), out["token"].(string)
}

func status(base, tok string) int {
	r, _ := http.NewRequest("GET", base+"/api/v1/session/userinfo", nil)
	r.Header.Set("Authorization", "Bearer "+tok)
	resp, err := client.Do(r)
	if err != nil {
		return 0
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

func waitStatus(base, tok string, want int, within time.Duration) {
	for start := time.Now(); status(base, tok) != want; time.Sleep(time.Millisecond) {
		if time.Since(start) > within {
			log.Fatalf("%s: no %d within %s", base, want, within)
		}
	}
}

// freeAddr is a free loopback address.
func freeAddr() string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	check(err)
	defer l.Close()
	return l.Addr().String()
}

// rolling runs a load of 4 clients against the ready replicas while
// restart(i) restarts each replica in turn, and counts requests and
// failures. The load is bounded: it stops once every replica has been
// restarted and is ready again, or after 20,000 requests.
func rolling(rs []string, tok string, restart func(i int)) (total, failed int64) {
	ready := make([]atomic.Bool, len(rs))
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i, r := range rs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				resp, err := client.Get(r + "/readyz")
				ok := err == nil && resp.StatusCode == 200
				if err == nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
				ready[i].Store(ok)
				select {
				case <-stop:
					return
				case <-time.After(50 * time.Millisecond):
				}
			}
		}()
	}
	var n, bad atomic.Int64
	var done atomic.Bool
	for c := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; !done.Load() && n.Load() < 20000; i++ {
				target := ""
				for k := range rs {
					if j := (c + i + k) % len(rs); ready[j].Load() {
						target = rs[j]
						break
					}
				}
				if target == "" {
					time.Sleep(5 * time.Millisecond)
					continue
				}
				n.Add(1)
				if status(target, tok) != 200 {
					bad.Add(1)
				}
				time.Sleep(2 * time.Millisecond)
			}
		}()
	}
	time.Sleep(300 * time.Millisecond)
	for i := range rs {
		for !ready[(i+1)%len(rs)].Load() {
			time.Sleep(10 * time.Millisecond)
		}
		restart(i)
		for !ready[i].Load() {
			time.Sleep(10 * time.Millisecond)
		}
	}
	time.Sleep(300 * time.Millisecond)
	done.Store(true)
	close(stop)
	wg.Wait()
	return n.Load(), bad.Load()
}

var rpsLine = regexp.MustCompile(`Requests/sec:\s+([0-9.]+)`)

// wrk runs wrk against userinfo with tok and returns requests per second;
// it fails if any answer was not 2xx.
func wrk(base, tok string, d time.Duration) float64 {
	out, err := exec.Command("wrk", "-t2", "-c32", "-d"+d.String(), "-H", "Authorization: Bearer "+tok, base+"/api/v1/session/userinfo").CombinedOutput()
	if err != nil {
		log.Fatalf("wrk: %v\n%s", err, out)
	}
	if strings.Contains(string(out), "Non-2xx") {
		log.Fatalf("wrk saw failed answers:\n%s", out)
	}
	m := rpsLine.FindSubmatch(out)
	if m == nil {
		log.Fatalf("wrk output without Requests/sec:\n%s", out)
	}
	v, _ := strconv.ParseFloat(string(m[1]), 64)
	return v
}
