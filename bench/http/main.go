// Command http measures Gatehouse the way its users meet it: the real
// gatehouse binary (built once from this tree, or given with -bin), its
// default JSON log going to a file, the audit trail on, on the embedded
// SQLite store with a 1,000-line policy and a forward-auth table of 50
// routes; and, in the same run, an Argo CD-style peer (HS256 JWT checked
// against the account's token ids, then casbin's cached enforcer with Argo
// CD's model on the same policy; no log, no audit), and the floor: a bare
// net/http handler in the peer's process, what any Go server on the
// machine pays for a request. All are driven over
// loopback by wrk (-t2 -c32 -d5s by default), rows interleaved over
// several rounds; the median of the rounds is reported, with the ratios
// the performance targets are stated in. Without wrk it falls back to a
// Go driver and says so.
//
// With -compare, a second gatehouse binary (an earlier build) runs beside
// the first with its own data directory, its rows interleaved with the
// others, so that a before/after comparison sees the same machine load.
//
// After the run the server is stopped with SIGTERM and the harness counts
// what it kept: access log lines and request audit events against the
// requests answered.
//
//	go run ./bench/http [-duration 5s] [-rounds 3] [-bin path] [-compare path] [-out bench/results/http.json]
package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/json"
	"errors"
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
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/golang-jwt/jwt/v5"
	_ "modernc.org/sqlite"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/bench/internal/argo"
	"github.com/gatehouse/gatehouse/bench/internal/fixture"
	"github.com/gatehouse/gatehouse/store/sqlite"
)

// Row is one measured endpoint: the median of its rounds.
type Row struct {
	Name    string    `json:"name"`
	Target  string    `json:"target"`
	RPS     float64   `json:"rps"`
	Rounds  []float64 `json:"rounds_rps"`
	P50ms   float64   `json:"p50_ms"`
	P99ms   float64   `json:"p99_ms"`
	Answers int       `json:"answers"`
	// CPUus is the server process's CPU time (user + system, from
	// /proc/<pid>/stat) per answered request during the timed runs, in
	// microseconds: the median of the rounds. Unlike req/s it hardly
	// moves with load elsewhere on the machine.
	CPUus     float64   `json:"cpu_us_per_request"`
	CPURounds []float64 `json:"rounds_cpu_us"`
	Non2xx    int       `json:"non_2xx"`
	Errors    int       `json:"socket_errors"`
}

type target struct {
	inst            *instance
	name, path, url string
	headers         map[string]string
	peer            bool
	pid             int // the serving process
}

const (
	policyLines = 1000
	fwdRoutes   = 50
	appName     = "web" // in project team-a: object team-a/web
)

func main() {
	if len(os.Args) > 2 && os.Args[1] == "-serve-argo-peer" {
		servePeer(os.Args[2]) // the peer, in a process of its own
		return
	}
	if err := run(); err != nil {
		log.Fatal(err)
	}
}

func run() error {
	duration := flag.Duration("duration", 5*time.Second, "length of each wrk run")
	rounds := flag.Int("rounds", 3, "rounds over all endpoints (median reported)")
	threads := flag.Int("threads", 2, "wrk threads")
	conns := flag.Int("connections", 32, "wrk connections")
	bin := flag.String("bin", "", "gatehouse binary to measure (default: build ./cmd/gatehouse)")
	compare := flag.String("compare", "", "a second gatehouse binary (an earlier build) measured in the same run, rows interleaved")
	out := flag.String("out", "bench/results/http.json", "JSON results file ('' for none)")
	perfDir := flag.String("perf", "", "with perf installed: record a CPU profile of the server during each timed gatehouse row of the first round into this directory")
	label := flag.String("label", "", "free text stored with the results (what is measured)")
	flag.Parse()
	if *duration <= 0 || *duration > time.Minute || *rounds < 1 || *rounds > 10 || *conns < 1 || *conns > 256 || *threads < 1 || *threads > 16 {
		return errors.New("want 0 < -duration <= 1m, 1 <= -rounds <= 10, 1 <= -connections <= 256, 1 <= -threads <= 16")
	}
	work, err := os.MkdirTemp("", "gatehouse-bench-http")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)

	if *bin == "" {
		*bin = filepath.Join(work, "gatehouse")
		fmt.Println("building ./cmd/gatehouse ...")
		cmd := exec.Command("go", "build", "-o", *bin, "./cmd/gatehouse")
		cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("go build: %w", err)
		}
	}
	bins := []string{*bin}
	if *compare != "" {
		bins = append(bins, *compare)
	}
	var ghs []*instance
	for i, b := range bins {
		g, err := startInstance(b, filepath.Join(work, strconv.Itoa(i)))
		if err != nil {
			return err
		}
		defer g.proc.kill()
		ghs = append(ghs, g)
	}
	peerURL := "http://127.0.0.1:" + strconv.Itoa(freePort())
	peer, err := startPeer(strings.TrimPrefix(peerURL, "http://"))
	if err != nil {
		return err
	}
	defer peer.kill()
	if err := waitUp(peerURL+"/healthz", peer); err != nil {
		return err
	}
	peerTok, err := peerToken(peerURL)
	if err != nil {
		return err
	}

	// Rows 0-3 are the measured binary, 4 the peer, 5 the floor, 6-9 the
	// compared binary. The floor is the peer's /healthz: a net/http
	// handler that writes two bytes, with no middleware, no log, no audit
	// (what any Go server on this machine pays per request).
	targets := ghs[0].targets("")
	targets = append(targets, target{name: "argo-style peer GET /api/v1/applications/web", path: "/api/v1/applications/" + appName, url: peerURL + "/api/v1/applications/" + appName,
		headers: map[string]string{"Authorization": "Bearer " + peerTok}, peer: true, pid: peer.cmd.Process.Pid},
		target{name: "floor: bare net/http handler (the peer's GET /healthz)", path: "/healthz", url: peerURL + "/healthz", peer: true, pid: peer.cmd.Process.Pid})
	if len(ghs) > 1 {
		targets = append(targets, ghs[1].targets("[compare] ")...)
	}
	// Every target must answer 200 before anything is timed.
	for _, t := range targets {
		if code, body := probe(t); code != http.StatusOK {
			return fmt.Errorf("%s: answered %d: %s", t.name, code, body)
		}
	}

	_, wrkErr := exec.LookPath("wrk")
	driver := "wrk"
	if wrkErr != nil {
		driver = "go (wrk not found: the Go driver shares the CPU with the servers, so absolute figures are lower)"
		fmt.Println("wrk not found: falling back to the Go driver")
	}
	rows := make([]Row, len(targets))
	for i, t := range targets {
		rows[i] = Row{Name: t.name, Target: t.path}
	}
	p50s, p99s := make([][]float64, len(targets)), make([][]float64, len(targets))
	for round := range *rounds {
		for i, t := range targets {
			// A short warm-up keeps one row's connections from being
			// another row's cost.
			drive(wrkErr == nil, t, *threads, *conns, time.Second)
			var perf *exec.Cmd
			if *perfDir != "" && round == 0 && t.inst != nil {
				perf = exec.Command("perf", "record", "-F", "499", "-g", "-p", strconv.Itoa(t.inst.proc.cmd.Process.Pid),
					"-o", filepath.Join(*perfDir, fmt.Sprintf("row-%d.data", i)), "--", "sleep", strconv.Itoa(int(duration.Seconds())))
				if err := perf.Start(); err != nil {
					return fmt.Errorf("perf: %w", err)
				}
			}
			cpu0 := cpuTime(t.pid)
			r := drive(wrkErr == nil, t, *threads, *conns, *duration)
			cpu := float64((cpuTime(t.pid) - cpu0).Microseconds()) / float64(max(r.Answers, 1))
			if perf != nil {
				perf.Wait()
			}
			fmt.Printf("round %d  %-72s %9.0f req/s  %6.1f µs CPU/req  p50 %.2f ms  p99 %.2f ms  non-2xx %d  errors %d\n",
				round+1, t.name, r.RPS, cpu, r.P50ms, r.P99ms, r.Non2xx, r.Errors)
			rows[i].Rounds = append(rows[i].Rounds, r.RPS)
			rows[i].CPURounds = append(rows[i].CPURounds, cpu)
			p50s[i], p99s[i] = append(p50s[i], r.P50ms), append(p99s[i], r.P99ms)
			rows[i].Answers += r.Answers
			rows[i].Non2xx += r.Non2xx
			rows[i].Errors += r.Errors
		}
	}
	for i := range rows {
		rows[i].RPS, rows[i].P50ms, rows[i].P99ms = median(rows[i].Rounds), median(p50s[i]), median(p99s[i])
		rows[i].CPUus = median(rows[i].CPURounds)
	}

	// Stop the servers the way an orchestrator does, then count what each
	// kept.
	peer.kill()
	var kept []map[string]any
	for gi, g := range ghs {
		if err := g.proc.stop(); err != nil {
			return fmt.Errorf("gatehouse did not stop cleanly: %w", err)
		}
		logLines, err := countRequestLines(g.logPath)
		if err != nil {
			return err
		}
		events, err := countRequestEvents(filepath.Join(g.dataDir, "gatehouse.db"))
		if err != nil {
			return err
		}
		base := 0
		if gi == 1 {
			base = 6
		}
		var answers, authed int
		for i := base; i < base+4; i++ {
			answers += rows[i].Answers
			if i > base {
				authed += rows[i].Answers
			}
		}
		k := map[string]any{"binary": filepath.Base(bins[gi]), "access_log_request_lines": logLines, "audit_request_events": events,
			"timed_answers_all": answers, "timed_answers_authenticated": authed}
		kept = append(kept, k)
		fmt.Printf("\n%s kept after SIGTERM: %d access log request lines, %d request audit events; timed answers %d (authenticated %d)\n",
			bins[gi], logLines, events, answers, authed)
		if logLines < answers || events < authed {
			fmt.Println("LOST: fewer log lines or audit events than answered requests")
		}
	}

	// Ratios are taken within each round (the rows of a round ran within
	// seconds of each other, so load from elsewhere on the machine
	// affects both sides alike), then the median over rounds.
	// comparisons are the targets' ratios over per-round values v(a, b,
	// round) of rows a and b, each with its per-round values.
	comparisons := func(v func(a, b, round int) float64) map[string][]float64 {
		ratio := func(a, b int) []float64 {
			var rs []float64
			for r := range *rounds {
				rs = append(rs, v(a, b, r))
			}
			return rs
		}
		m := map[string][]float64{
			"userinfo/healthz":     ratio(1, 0),
			"app_get/healthz":      ratio(2, 0),
			"forward_auth/healthz": ratio(3, 0),
			"userinfo/argo_peer":   ratio(1, 4),
			"app_get/argo_peer":    ratio(2, 4),
			"healthz/argo_peer":    ratio(0, 4),
			"healthz/floor":        ratio(0, 5),
			"userinfo/floor":       ratio(1, 5),
			"app_get/floor":        ratio(2, 5),
			"forward_auth/floor":   ratio(3, 5),
			"argo_peer/floor":      ratio(4, 5),
		}
		if len(ghs) > 1 {
			for i, name := range []string{"healthz", "userinfo", "app_get", "forward_auth"} {
				m[name+"/compared"] = ratio(i, 6+i)
			}
		}
		return m
	}
	// Throughput a/b, and the same comparisons in server CPU per request,
	// inverted so that above 1 still means "the first is cheaper".
	ratioRounds := comparisons(func(a, b, r int) float64 { return rows[a].Rounds[r] / rows[b].Rounds[r] })
	cpuRatioRounds := comparisons(func(a, b, r int) float64 { return rows[b].CPURounds[r] / rows[a].CPURounds[r] })
	ratios, cpuRatios := medians(ratioRounds), medians(cpuRatioRounds)
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "\nENDPOINT\tREQ/S (median)\tROUNDS\tCPU µs/REQ\tP50\tP99\tNON-2XX")
	for _, r := range rows {
		var rs []string
		for _, x := range r.Rounds {
			rs = append(rs, fmt.Sprintf("%.0f", x))
		}
		fmt.Fprintf(tw, "%s\t%.0f\t%s\t%.1f\t%.2f ms\t%.2f ms\t%d\n", r.Name, r.RPS, strings.Join(rs, " "), r.CPUus, r.P50ms, r.P99ms, r.Non2xx)
	}
	tw.Flush()
	fmt.Println("\nratios (median of the per-round ratios): throughput, and server CPU per request (cost of the second over the first)")
	for _, k := range []string{"userinfo/healthz", "app_get/healthz", "forward_auth/healthz", "userinfo/argo_peer", "app_get/argo_peer", "healthz/argo_peer",
		"healthz/floor", "userinfo/floor", "app_get/floor", "forward_auth/floor", "argo_peer/floor",
		"healthz/compared", "userinfo/compared", "app_get/compared", "forward_auth/compared"} {
		v, ok := ratios[k]
		if !ok {
			continue
		}
		fmt.Printf("  %-22s %.2f  cpu %.2f  rounds %.2f-%.2f", k, v, cpuRatios[k], slices.Min(ratioRounds[k]), slices.Max(ratioRounds[k]))
		if t, ok := goal[k]; ok {
			fmt.Printf("  (target >= %.2f: reached in %d of %d rounds)", t, countAtLeast(ratioRounds[k], t), *rounds)
		}
		fmt.Println()
	}

	if *out != "" {
		b, _ := json.MarshalIndent(map[string]any{
			"date": time.Now().UTC().Format(time.RFC3339), "label": *label,
			"machine": machine(), "driver": driver,
			"wrk": fmt.Sprintf("-t%d -c%d -d%s, %d rounds interleaved, median", *threads, *conns, duration, *rounds),
			"setup": "real gatehouse binary, JSON log to a file, audit on, SQLite, 1,000-line policy, 50 forward-auth routes; " +
				"peer: HS256 JWT + token id set + casbin SyncedCachedEnforcer (Argo CD model), app from memory, no log, no audit",
			"rows": rows, "ratios": ratios, "cpu_ratios": cpuRatios, "kept": kept,
			"ratio_rounds": ratioRounds, "cpu_ratio_rounds": cpuRatioRounds, "targets": goal,
		}, "", "  ")
		if err := os.MkdirAll(filepath.Dir(*out), 0o755); err != nil {
			return err
		}
		return os.WriteFile(*out, append(b, '\n'), 0o644)
	}
	return nil
}

// goal is the least throughput ratio each target asks for.
var goal = map[string]float64{
	"userinfo/healthz": 0.85, "app_get/healthz": 0.85, "forward_auth/healthz": 0.85,
	"userinfo/argo_peer": 1.3, "app_get/argo_peer": 1.3,
}

// instance is one running gatehouse server with its own data directory.
type instance struct {
	url, token       string
	dataDir, logPath string
	proc             *proc
}

func startInstance(bin, dir string) (*instance, error) {
	ctx := context.Background()
	g := &instance{dataDir: filepath.Join(dir, "data"), logPath: filepath.Join(dir, "gatehouse.log")}
	var err error
	if g.token, err = prepare(ctx, g.dataDir); err != nil {
		return nil, err
	}
	port := freePort()
	cfgPath := filepath.Join(dir, "gatehouse.yaml")
	if err := os.WriteFile(cfgPath, config(port, g.dataDir, fixture.Policy(policyLines)), 0o600); err != nil {
		return nil, err
	}
	if g.proc, err = startGatehouse(bin, cfgPath, g.logPath); err != nil {
		return nil, err
	}
	g.url = "http://127.0.0.1:" + strconv.Itoa(port)
	if err := waitUp(g.url+"/healthz", g.proc); err != nil {
		g.proc.kill()
		return nil, err
	}
	return g, nil
}

// targets are the four measured requests to g.
func (g *instance) targets(prefix string) []target {
	bearer := map[string]string{"Authorization": "Bearer " + g.token}
	fwd := fmt.Sprintf("/svc-%d/team-a/%s/index.html", fwdRoutes/2, appName)
	ts := []target{
		{name: prefix + "gatehouse GET /healthz", path: "/healthz"},
		{name: prefix + "gatehouse GET /api/v1/session/userinfo", path: "/api/v1/session/userinfo", headers: bearer},
		{name: prefix + "gatehouse GET /api/v1/applications/web (1,000-line policy)", path: "/api/v1/applications/" + appName, headers: bearer},
		{name: prefix + "gatehouse forward auth, 50 routes", path: "/api/v1/auth/verify", headers: map[string]string{
			"Authorization": "Bearer " + g.token, "X-Original-Method": "GET", "X-Original-URI": fwd,
		}},
	}
	for i := range ts {
		ts[i].url, ts[i].inst, ts[i].pid = g.url+ts[i].path, g, g.proc.cmd.Process.Pid
	}
	return ts
}

// prepare creates the data directory's database: user-0 with 1,000 API
// tokens (one is used), project team-a and its application web.
func prepare(ctx context.Context, dir string) (string, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	st, err := sqlite.Open(ctx, filepath.Join(dir, "gatehouse.db"))
	if err != nil {
		return "", err
	}
	defer st.Close()
	if err := fixture.Accounts(ctx, st); err != nil {
		return "", err
	}
	toks, err := fixture.Tokens(ctx, st, "gatehouse", 1000, 1)
	if err != nil {
		return "", err
	}
	now := time.Now().UTC()
	err = st.Tx(ctx, func(tx gatehouse.Tx) error {
		if err := tx.CreateProject(ctx, gatehouse.Project{Name: "team-a", Roles: []gatehouse.ProjectRole{}, CreatedAt: now}); err != nil {
			return err
		}
		return tx.CreateApplication(ctx, peerApp)
	})
	return toks[0], err
}

var peerApp = gatehouse.Application{
	Name: appName, Project: "team-a",
	Spec: gatehouse.AppSpec{RepoURL: "https://git.example.com/team-a/web.git", Path: "deploy", TargetRevision: "main",
		Destination: gatehouse.AppDestination{Server: "https://kubernetes.default.svc", Namespace: "web"}},
	Status:    gatehouse.AppStatus{Sync: "Unknown", Health: "Unknown"},
	CreatedAt: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC),
}

// config is the server's YAML: loopback, the data dir, the policy and 50
// forward-auth routes, the measured one in the middle.
func config(port int, dataDir, policy string) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "listen: 127.0.0.1:%d\ndataDir: %s\nshutdownDrain: 0s\nrbac:\n  policyCSV: |\n", port, dataDir)
	for line := range strings.SplitSeq(strings.TrimSpace(policy), "\n") {
		fmt.Fprintf(&b, "    %s\n", line)
	}
	b.WriteString("forwardAuth:\n  routes:\n")
	for i := range fwdRoutes {
		fmt.Fprintf(&b, "    - match: \"GET /svc-%d/{project}/{app}/\"\n      resource: applications\n      action: get\n      object: \"{project}/{app}\"\n", i)
	}
	return b.Bytes()
}

// proc is a process this harness started.
type proc struct {
	cmd  *exec.Cmd
	done chan error
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop sends SIGTERM and waits up to 30 s for a clean exit.
func (p *proc) stop() error {
	if p.exited() {
		return errors.New("had already exited")
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return err
	}
	select {
	case err := <-p.done:
		close(p.done)
		return err
	case <-time.After(30 * time.Second):
		p.cmd.Process.Kill()
		return errors.New("no exit 30 s after SIGTERM")
	}
}

func (p *proc) kill() {
	if p.cmd.ProcessState == nil && !p.exited() {
		p.cmd.Process.Kill()
		<-p.done
		close(p.done)
	}
}

func start(cmd *exec.Cmd) (*proc, error) {
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &proc{cmd: cmd, done: make(chan error, 1)}
	go func() { p.done <- cmd.Wait() }()
	return p, nil
}

func startGatehouse(bin, cfg, logPath string) (*proc, error) {
	lf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "server", "--config", cfg)
	cmd.Stdout, cmd.Stderr = lf, lf // its JSON log, to a file as in production
	cmd.Env = append(os.Environ(), "GATEHOUSE_ADMIN_PASSWORD=bench-admin-password-1")
	p, err := start(cmd)
	lf.Close() // the child has its own descriptor
	return p, err
}

func startPeer(addr string) (*proc, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(self, "-serve-argo-peer", addr)
	cmd.Stderr = os.Stderr
	return start(cmd)
}

func waitUp(url string, p *proc) error {
	for range 300 {
		if p.exited() {
			return fmt.Errorf("%s: the server exited", url)
		}
		if resp, err := http.Get(url); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("%s: not up after 30 s", url)
}

func freePort() int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func probe(t target) (int, string) {
	req, _ := http.NewRequest("GET", t.url, nil)
	for k, v := range t.headers {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	return resp.StatusCode, string(b)
}

// result is one run of the driver.
type result struct {
	RPS, P50ms, P99ms       float64
	Answers, Non2xx, Errors int
}

// cpuTime is the user plus system CPU time process pid has used, from
// /proc/<pid>/stat (0 where there is no /proc).
func cpuTime(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// The command name, in parentheses, may hold spaces: fields are
	// counted after its closing parenthesis. utime and stime are fields
	// 14 and 15, in clock ticks of 1/100 s (USER_HZ).
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0
	}
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(utime+stime) * 10 * time.Millisecond
}

func drive(useWrk bool, t target, threads, conns int, d time.Duration) result {
	if !useWrk {
		return goDrive(t, conns, d)
	}
	args := []string{"-t" + strconv.Itoa(threads), "-c" + strconv.Itoa(conns), "-d" + d.String(), "--latency"}
	for k, v := range t.headers {
		args = append(args, "-H", k+": "+v)
	}
	out, err := exec.Command("wrk", append(args, t.url)...).CombinedOutput()
	if err != nil {
		log.Fatalf("wrk: %v\n%s", err, out)
	}
	return parseWrk(string(out))
}

var (
	reRPS     = regexp.MustCompile(`Requests/sec:\s+([\d.]+)`)
	reTotal   = regexp.MustCompile(`(\d+) requests in`)
	reNon2xx  = regexp.MustCompile(`Non-2xx or 3xx responses: (\d+)`)
	reSockErr = regexp.MustCompile(`Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)`)
	reLat     = regexp.MustCompile(`(?m)^\s+(50|99)(?:\.000)?%\s+([\d.]+)(us|ms|s)`)
)

func parseWrk(s string) result {
	var r result
	if m := reRPS.FindStringSubmatch(s); m != nil {
		r.RPS, _ = strconv.ParseFloat(m[1], 64)
	}
	if m := reTotal.FindStringSubmatch(s); m != nil {
		r.Answers, _ = strconv.Atoi(m[1])
	}
	if m := reNon2xx.FindStringSubmatch(s); m != nil {
		r.Non2xx, _ = strconv.Atoi(m[1])
	}
	if m := reSockErr.FindStringSubmatch(s); m != nil {
		for _, x := range m[1:] {
			n, _ := strconv.Atoi(x)
			r.Errors += n
		}
	}
	for _, m := range reLat.FindAllStringSubmatch(s, -1) {
		v, _ := strconv.ParseFloat(m[2], 64)
		switch m[3] {
		case "us":
			v /= 1000
		case "s":
			v *= 1000
		}
		if m[1] == "50" {
			r.P50ms = v
		} else {
			r.P99ms = v
		}
	}
	return r
}

// goDrive is the fallback driver: conns keep-alive clients for d.
func goDrive(t target, conns int, d time.Duration) result {
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: conns, MaxConnsPerHost: conns}}
	var (
		mu          sync.Mutex
		lat         []time.Duration
		non2xx, bad atomic.Int64
		wg          sync.WaitGroup
	)
	start := time.Now()
	deadline := start.Add(d)
	for range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine []time.Duration
			for n := 0; n < 10_000_000 && time.Now().Before(deadline); n++ {
				t0 := time.Now()
				code, _ := probeWith(client, t)
				mine = append(mine, time.Since(t0))
				if code == 0 {
					bad.Add(1)
				} else if code >= 300 {
					non2xx.Add(1)
				}
			}
			mu.Lock()
			lat = append(lat, mine...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	fixture.Sort(lat)
	return result{
		RPS: float64(len(lat)) / time.Since(start).Seconds(), Answers: len(lat),
		Non2xx: int(non2xx.Load()), Errors: int(bad.Load()),
		P50ms: float64(fixture.Percentile(lat, 50).Microseconds()) / 1000,
		P99ms: float64(fixture.Percentile(lat, 99).Microseconds()) / 1000,
	}
}

func probeWith(c *http.Client, t target) (int, error) {
	req, _ := http.NewRequest("GET", t.url, nil)
	for k, v := range t.headers {
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, nil
}

// medians maps each key to the median of its values.
func medians(m map[string][]float64) map[string]float64 {
	out := make(map[string]float64, len(m))
	for k, xs := range m {
		out[k] = median(xs)
	}
	return out
}

// countAtLeast counts the values of xs at or above t.
func countAtLeast(xs []float64, t float64) int {
	n := 0
	for _, x := range xs {
		if x >= t {
			n++
		}
	}
	return n
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func countRequestLines(path string) (int, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	n := 0
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if bytes.Contains(sc.Bytes(), []byte(`"msg":"request"`)) {
			n++
		}
	}
	return n, sc.Err()
}

func countRequestEvents(db string) (int, error) {
	d, err := sql.Open("sqlite", "file:"+db+"?mode=ro")
	if err != nil {
		return 0, err
	}
	defer d.Close()
	// The requests the events stand for: counted reads carry their count
	// (a build from before counts has no such column: one row each).
	var n int
	err = d.QueryRow(`SELECT COALESCE(SUM(count), 0) FROM events WHERE type = ?`, gatehouse.EventRequest).Scan(&n)
	if err != nil && strings.Contains(err.Error(), "no such column") {
		err = d.QueryRow(`SELECT count(*) FROM events WHERE type = ?`, gatehouse.EventRequest).Scan(&n)
	}
	return n, err
}

func machine() map[string]any {
	m := map[string]any{"cpus": runtime.NumCPU(), "go": runtime.Version(), "os": runtime.GOOS + "/" + runtime.GOARCH}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.SplitSeq(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m["cpu"] = strings.TrimSpace(v)
				break
			}
		}
	}
	if out, err := exec.Command("wrk", "--version").CombinedOutput(); err == nil || len(out) > 0 {
		m["wrk"] = strings.TrimSpace(strings.SplitN(string(out), "\n", 2)[0])
	}
	return m
}

// The Argo CD-style peer.

// peerKey signs the peer's tokens; it lives only in the peer process.
var peerKey = func() []byte { b := make([]byte, 32); rand.Read(b); return b }()

// servePeer is an API server the way Argo CD's checks a request: an HS256
// JWT (golang-jwt/jwt/v5), its id looked up in the account's token set,
// then casbin's SyncedCachedEnforcer with Argo CD's model on the same
// 1,000-line policy; the application comes from memory (Argo CD's
// informer cache). No access log, no audit trail. GET /token hands the
// harness a token (loopback only, a benchmark).
func servePeer(addr string) {
	e, err := argo.Enforcer(fixture.Policy(policyLines))
	if err != nil {
		log.Fatal(err)
	}
	var mu sync.RWMutex
	tokenIDs := map[string]struct{}{}
	apps := map[string]gatehouse.Application{appName: peerApp}
	parser := jwt.NewParser(jwt.WithValidMethods([]string{"HS256"}), jwt.WithExpirationRequired())
	keyFunc := func(*jwt.Token) (any, error) { return peerKey, nil }
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })
	mux.HandleFunc("GET /token", func(w http.ResponseWriter, r *http.Request) {
		jti := rand.Text()
		s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.RegisteredClaims{
			Subject: fixture.Subject + ":apiKey", ID: jti, Issuer: "argocd",
			IssuedAt: jwt.NewNumericDate(time.Now()), ExpiresAt: jwt.NewNumericDate(time.Now().Add(12 * time.Hour)),
		}).SignedString(peerKey)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		mu.Lock()
		tokenIDs[jti] = struct{}{}
		mu.Unlock()
		io.WriteString(w, s)
	})
	mux.HandleFunc("GET /api/v1/applications/{name}", func(w http.ResponseWriter, r *http.Request) {
		raw, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		var claims jwt.RegisteredClaims
		if !ok {
			http.Error(w, `{"error":"unauthenticated"}`, http.StatusUnauthorized)
			return
		}
		if _, err := parser.ParseWithClaims(raw, &claims, keyFunc); err != nil {
			http.Error(w, `{"error":"unauthenticated"}`, http.StatusUnauthorized)
			return
		}
		mu.RLock()
		_, known := tokenIDs[claims.ID]
		mu.RUnlock()
		if !known {
			http.Error(w, `{"error":"unauthenticated"}`, http.StatusUnauthorized)
			return
		}
		sub, _, _ := strings.Cut(claims.Subject, ":")
		mu.RLock()
		a, found := apps[r.PathValue("name")]
		mu.RUnlock()
		if !found {
			http.Error(w, `{"error":"permission_denied"}`, http.StatusForbidden)
			return
		}
		if ok, err := e.Enforce(sub, "applications", "get", a.RBACObject()); err != nil || !ok {
			http.Error(w, `{"error":"permission_denied"}`, http.StatusForbidden)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(a)
	})
	srv := &http.Server{Addr: addr, Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	log.Fatal(srv.ListenAndServe())
}

func peerToken(base string) (string, error) {
	resp, err := http.Get(base + "/token")
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("peer token: %d %s", resp.StatusCode, b)
	}
	return string(b), err
}
