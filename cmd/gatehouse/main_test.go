package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/store/sqlite"
)

var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "gatehouse-bin")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "gatehouse")
	out, err := exec.Command("go", "build", "-o", binary, ".").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "building gatehouse: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// server is a running gatehouse binary.
type proc struct {
	cmd     *exec.Cmd
	url     string
	dataDir string
	logs    *safeBuffer
}

type safeBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *safeBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *safeBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// start runs `gatehouse server` on a free loopback port with a fresh data
// directory and waits until it listens.
func start(t *testing.T, env ...string) *proc {
	t.Helper()
	return startIn(t, t.TempDir(), env...)
}

// startIn runs `gatehouse server` on a free loopback port with dataDir
// and waits until it listens.
func startIn(t *testing.T, dataDir string, env ...string) *proc {
	t.Helper()
	return startWith(t, dataDir, nil, env...)
}

// startWith is startIn with more server flags.
func startWith(t *testing.T, dataDir string, flags []string, env ...string) *proc {
	t.Helper()
	cmd := exec.Command(binary, append([]string{"server", "--listen", "127.0.0.1:0", "--data-dir", dataDir}, flags...)...)
	// No drain unless a test asks for one (--shutdown-drain wins over
	// the environment): stopping a test server need not wait for a load
	// balancer that is not there.
	cmd.Env = append(append(os.Environ(), "GATEHOUSE_SHUTDOWN_DRAIN=0s"), env...)
	logs := &safeBuffer{}
	pr, pw := io.Pipe()
	cmd.Stderr = io.MultiWriter(logs, pw)
	cmd.Stdout = logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			var line struct{ Msg, URL string }
			if json.Unmarshal(sc.Bytes(), &line) == nil && line.Msg == "gatehouse listening" {
				addr <- line.URL
			}
		}
	}()
	select {
	case u := <-addr:
		return &proc{cmd: cmd, url: u, dataDir: dataDir, logs: logs}
	case <-time.After(30 * time.Second):
		t.Fatalf("server did not start; logs:\n%s", logs.String())
	}
	return nil
}

func TestFirstStartWritesTheAdminPasswordFile(t *testing.T) {
	s := start(t)
	path := filepath.Join(s.dataDir, "initial-admin-password")
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatalf("no password file: %v", err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("password file mode %v, want 0600", fi.Mode().Perm())
	}
	pw, _ := os.ReadFile(path)
	password := strings.TrimSpace(string(pw))
	if !strings.Contains(s.logs.String(), path) {
		t.Errorf("log does not say where the password is:\n%s", s.logs.String())
	}
	if strings.Contains(s.logs.String(), password) {
		t.Fatal("the log contains the admin password")
	}
	tok := login(t, s.url, "admin", password)
	if tok == "" {
		t.Fatal("no session token")
	}
	// /healthz and /readyz answer.
	for _, p := range []string{"/healthz", "/readyz"} {
		resp, err := http.Get(s.url + p)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("%s: %v %v", p, resp, err)
		}
		resp.Body.Close()
	}
}

func TestBadConfigIsRefusedWithEveryProblem(t *testing.T) {
	cmd := exec.Command(binary, "server", "--listen", "nonsense", "--instance-name", "Bad Name!", "--reaper-interval", "-1s", "--data-dir", t.TempDir())
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("server started with a bad config:\n%s", out)
	}
	for _, want := range []string{"listen", "instance", "reaper"} {
		if !strings.Contains(strings.ToLower(string(out)), want) {
			t.Errorf("error output does not mention %s:\n%s", want, out)
		}
	}
}

// TestSIGTERMUnderLoadLosesNoAcknowledgedEvent mints tokens from several
// clients while the server gets SIGTERM, then checks that every mint the
// server acknowledged has its token.created event, and every request it
// answered has its request event.
func TestSIGTERMUnderLoadLosesNoAcknowledgedEvent(t *testing.T) {
	s := start(t, "GATEHOUSE_ADMIN_PASSWORD=sigterm-admin-password")
	tok := login(t, s.url, "admin", "sigterm-admin-password")

	var (
		mu    sync.Mutex
		acked []string
		reqs  int
		wg    sync.WaitGroup
	)
	ctx, cancel := context.WithCancel(context.Background())
	client := &http.Client{Timeout: 5 * time.Second}
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ctx.Err() == nil && i < 5000; i++ {
				body := fmt.Sprintf(`{"name":"load-%d-%d","expiresIn":3600}`, w, i)
				req, _ := http.NewRequest("POST", s.url+"/api/v1/account/admin/token", strings.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("Authorization", "Bearer "+tok)
				resp, err := client.Do(req)
				if err != nil {
					return // the server is going away
				}
				var nt gatehouse.NewToken
				ok := resp.StatusCode == 200 && json.NewDecoder(resp.Body).Decode(&nt) == nil
				resp.Body.Close()
				mu.Lock()
				if ok {
					acked = append(acked, nt.ID)
					reqs++
				}
				mu.Unlock()
			}
		}()
	}
	time.Sleep(500 * time.Millisecond)
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	werr := s.cmd.Wait()
	cancel()
	wg.Wait()
	if werr != nil {
		t.Fatalf("server exited with %v; logs:\n%s", werr, s.logs.String())
	}
	if len(acked) == 0 {
		t.Fatal("no mint was acknowledged before SIGTERM")
	}

	st, err := sqlite.Open(context.Background(), filepath.Join(s.dataDir, "gatehouse.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	created := map[string]bool{}
	requests := 0
	err = st.Tx(context.Background(), func(tx gatehouse.Tx) error {
		evs, err := tx.ListEvents(context.Background(), gatehouse.EventFilter{})
		for _, ev := range evs {
			switch ev.Type {
			case gatehouse.EventTokenCreated:
				created[ev.TokenID] = true
			case gatehouse.EventRequest:
				if ev.Path == "/api/v1/account/admin/token" && ev.Status == 200 {
					requests++
				}
			}
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range acked {
		if !created[id] {
			t.Errorf("acknowledged token %s has no token.created event", id)
		}
	}
	if requests < reqs {
		t.Errorf("request events for acknowledged mints = %d, want at least %d", requests, reqs)
	}
	t.Logf("%d mints acknowledged before SIGTERM; all recorded", len(acked))
}

func login(t *testing.T, url, user, password string) string {
	t.Helper()
	body := fmt.Sprintf(`{"username":%q,"password":%q}`, user, password)
	resp, err := http.Post(url+"/api/v1/session", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct{ Token string }
	if resp.StatusCode != 200 || json.NewDecoder(resp.Body).Decode(&out) != nil {
		t.Fatalf("login: %d", resp.StatusCode)
	}
	return out.Token
}
