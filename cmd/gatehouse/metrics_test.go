package main

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

func TestMetricsNeedSettingsGet(t *testing.T) {
	s := start(t, "GATEHOUSE_ADMIN_PASSWORD=metrics-admin-password")
	tok := login(t, s.url, "admin", "metrics-admin-password")
	get := func(auth string) (int, string) {
		req, _ := http.NewRequest("GET", s.url+"/metrics", nil)
		if auth != "" {
			req.Header.Set("Authorization", "Bearer "+auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, _ := get(""); code != 401 {
		t.Fatalf("/metrics without a token: %d, want 401", code)
	}
	code, body := get(tok)
	if code != 200 {
		t.Fatalf("/metrics as admin: %d", code)
	}
	for _, m := range []string{
		"gatehouse_http_requests_total", "gatehouse_auth_decisions_total", "gatehouse_token_verify_seconds",
		"gatehouse_logins_total", "gatehouse_active_tokens", "gatehouse_audit_queue_depth",
		"gatehouse_audit_refused_requests_total", "gatehouse_log_lines_dropped_total", "gatehouse_reaper_runs_total",
	} {
		if !strings.Contains(body, m) {
			t.Errorf("/metrics lacks %s", m)
		}
	}
	if strings.Contains(body, tok[strings.IndexByte(tok, ':')+1:]) {
		t.Fatal("/metrics contains the session secret")
	}
}

func TestMetricsOnASeparateListener(t *testing.T) {
	port := freeLoopbackPort(t)
	s := start(t, "GATEHOUSE_METRICS_LISTEN=127.0.0.1:"+port)
	resp, err := http.Get("http://127.0.0.1:" + port + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(b), "gatehouse_active_tokens") {
		t.Fatalf("metrics listener: %d", resp.StatusCode)
	}
	// The main listener no longer serves them.
	resp, err = http.Get(s.url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode == 200 {
		t.Fatal("main listener still serves /metrics without a token")
	}
}
