package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// needPrometheus finds the prometheus binary (Debian's prometheus
// package), or skips, or fails when GATEHOUSE_TEST_REQUIRE_PROMETHEUS=1.
func needPrometheus(t *testing.T) string {
	t.Helper()
	if p, err := exec.LookPath("prometheus"); err == nil {
		return p
	}
	if os.Getenv("GATEHOUSE_TEST_REQUIRE_PROMETHEUS") == "1" {
		t.Fatal("prometheus is required (GATEHOUSE_TEST_REQUIRE_PROMETHEUS=1) but not installed (apt-get install prometheus)")
	}
	t.Skip("prometheus not installed (apt-get install prometheus); set GATEHOUSE_TEST_REQUIRE_PROMETHEUS=1 to require it")
	return ""
}

// TestPrometheusScrapesWithATokenFile runs a real Prometheus against the
// real server. Its scrape config reads a Gatehouse API token from a file
// (authorization: credentials_file); the token of an account that may
// get settings/metrics is scraped (up == 1, Gatehouse's own metrics
// stored), the token of one that may not is refused with 403 (up == 0).
func TestPrometheusScrapesWithATokenFile(t *testing.T) {
	t.Parallel()
	prom := needPrometheus(t)
	const password = "prometheus-admin-password"
	s := start(t, "GATEHOUSE_ADMIN_PASSWORD="+password)
	admin := login(t, s.url, "admin", password)
	if a := call(t, "PUT", s.url+"/api/v1/settings/rbac", admin,
		`{"policyCSV":"p, role:metrics, settings, get, metrics, allow\ng, monitoring, role:metrics"}`); a.status != 200 {
		t.Fatalf("PUT rbac: %v", a)
	}
	dir := t.TempDir()
	tokenFile := func(account string, groups ...string) string {
		t.Helper()
		g, _ := json.Marshal(groups)
		if a := call(t, "POST", s.url+"/api/v1/account", admin,
			fmt.Sprintf(`{"name":%q,"capabilities":["apiKey"],"groups":%s}`, account, g)); a.status != 200 {
			t.Fatalf("create account %s: %v", account, a)
		}
		a := call(t, "POST", s.url+"/api/v1/account/"+account+"/token", admin, `{"name":"scrape"}`)
		tok, _ := a.body["token"].(string)
		if a.status != 200 || tok == "" {
			t.Fatalf("mint for %s: %v", account, a)
		}
		f := filepath.Join(dir, account+".token")
		if err := os.WriteFile(f, []byte(tok+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		return f
	}
	allowed := tokenFile("prometheus", "monitoring")
	denied := tokenFile("stranger")

	target := strings.TrimPrefix(s.url, "http://")
	config := fmt.Sprintf(`global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: gatehouse
    metrics_path: /metrics
    authorization:
      type: Bearer
      credentials_file: %[1]s
    static_configs:
      - targets: [%[3]q]
  - job_name: gatehouse-denied
    metrics_path: /metrics
    authorization:
      type: Bearer
      credentials_file: %[2]s
    static_configs:
      - targets: [%[3]q]
`, allowed, denied, target)
	configFile := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(configFile, []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	promAddr := "127.0.0.1:" + freeLoopbackPort(t)
	cmd := exec.Command(prom, "--config.file="+configFile, "--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+promAddr)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir} // no proxy from the environment
	logs := &safeBuffer{}
	cmd.Stdout, cmd.Stderr = logs, logs
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-done
		}
	})

	// query asks Prometheus's HTTP API for an instant vector and returns
	// each series' value by job.
	client := &http.Client{Timeout: 5 * time.Second}
	query := func(q string) (map[string]string, error) {
		resp, err := client.Get("http://" + promAddr + "/api/v1/query?query=" + url.QueryEscape(q))
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		var out struct {
			Status string
			Data   struct {
				Result []struct {
					Metric map[string]string
					Value  [2]any
				}
			}
		}
		if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || out.Status != "success" {
			return nil, fmt.Errorf("query %s: %d %s %v", q, resp.StatusCode, out.Status, err)
		}
		byJob := map[string]string{}
		for _, r := range out.Data.Result {
			v, _ := r.Value[1].(string)
			byJob[r.Metric["job"]] = v
		}
		return byJob, nil
	}
	// Prometheus scrapes each target for the first time within a scrape
	// interval of starting; allow for a slow machine.
	var up map[string]string
	var lastErr error
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	for up == nil || up["gatehouse"] == "" || up["gatehouse-denied"] == "" {
		select {
		case <-ctx.Done():
			t.Fatalf("Prometheus reported no up series for both jobs (last: %v, %v); its logs:\n%s", up, lastErr, logs.String())
		case <-done:
			t.Fatalf("prometheus exited: %v\n%s", cmd.ProcessState, logs.String())
		case <-time.After(200 * time.Millisecond):
		}
		up, lastErr = query("up")
	}
	if up["gatehouse"] != "1" {
		t.Errorf("up{job=gatehouse} = %s, want 1 (scraped with a token that may get settings/metrics)", up["gatehouse"])
	}
	if up["gatehouse-denied"] != "0" {
		t.Errorf("up{job=gatehouse-denied} = %s, want 0 (a token without settings, get, metrics)", up["gatehouse-denied"])
	}
	// Gatehouse's own metrics were stored from the allowed scrape only.
	got, err := query("gatehouse_active_tokens")
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := got["gatehouse"]; !ok || len(got) != 1 {
		t.Errorf("gatehouse_active_tokens by job = %v, want a series of job gatehouse only", got)
	}
	// The denied scrape was refused as forbidden, not unauthenticated: the
	// token file was read and sent, and the account lacks the permission.
	resp, err := client.Get("http://" + promAddr + "/api/v1/targets")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var targets struct {
		Data struct {
			ActiveTargets []struct {
				ScrapePool string
				LastError  string
				Health     string
			}
		}
	}
	if err := json.NewDecoder(resp.Body).Decode(&targets); err != nil {
		t.Fatal(err)
	}
	for _, tg := range targets.Data.ActiveTargets {
		switch tg.ScrapePool {
		case "gatehouse":
			if tg.Health != "up" || tg.LastError != "" {
				t.Errorf("target gatehouse: %s %q, want up without error", tg.Health, tg.LastError)
			}
		case "gatehouse-denied":
			if !strings.Contains(tg.LastError, "403") {
				t.Errorf("target gatehouse-denied: last error %q, want HTTP 403", tg.LastError)
			}
		}
	}
}
