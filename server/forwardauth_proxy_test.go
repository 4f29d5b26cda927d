package server_test

import (
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/server"
)

// readmeNginx returns the nginx configuration of README.md's forward-auth
// section, so that what the README tells people to run is what is tested.
func readmeNginx(t *testing.T, upstream, gatehouseURL string) string {
	t.Helper()
	b, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(b), "```nginx\n")
	block, _, ok2 := strings.Cut(rest, "```")
	if !ok || !ok2 {
		t.Fatal("README.md has no ```nginx block")
	}
	for _, s := range []string{"http://protected-upstream", "http://127.0.0.1:8080"} {
		if !strings.Contains(block, s) {
			t.Fatalf("README's nginx block no longer names %s:\n%s", s, block)
		}
	}
	block = strings.ReplaceAll(block, "http://protected-upstream", upstream)
	return strings.ReplaceAll(block, "http://127.0.0.1:8080", gatehouseURL)
}

// startNginx runs nginx with the README's configuration in front of
// upstream and returns its base URL.
func startNginx(t *testing.T, nginx, upstream, gatehouseURL string) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "ngx")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o755) // workers run as another user
	port := freePort(t)
	conf := fmt.Sprintf(`
worker_processes 1;
pid %[1]s/nginx.pid;
error_log stderr;
events { worker_connections 64; }
http {
  access_log off;
  client_body_temp_path %[1]s/body;
  proxy_temp_path %[1]s/proxy;
  fastcgi_temp_path %[1]s/fastcgi;
  uwsgi_temp_path %[1]s/uwsgi;
  scgi_temp_path %[1]s/scgi;
  server {
    listen 127.0.0.1:%[2]d;
%[3]s
  }
}
`, dir, port, readmeNginx(t, upstream, gatehouseURL))
	if err := os.WriteFile(filepath.Join(dir, "nginx.conf"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(nginx, "-p", dir, "-c", filepath.Join(dir, "nginx.conf"), "-e", "stderr", "-g", "daemon off; user root;")
	logs := &lockedBuffer{}
	cmd.Stderr = logs
	start(t, cmd, syscall.SIGQUIT)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	waitFor(t, base, "nginx", logs)
	return base
}

// start starts cmd in its own process group and stops that group with
// stop (then SIGKILL) at cleanup.
func start(t *testing.T, cmd *exec.Cmd, stop syscall.Signal) {
	t.Helper()
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pgid := cmd.Process.Pid
	t.Cleanup(func() {
		syscall.Kill(-pgid, stop)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			syscall.Kill(-pgid, syscall.SIGKILL)
			<-done
		}
	})
}

// pythonUpstream serves a folder with public/ and admin/ pages through
// python3 -m http.server, which decodes %2E%2E and resolves dot segments
// before it serves: the kind of upstream a path confusion reaches.
func pythonUpstream(t *testing.T) string {
	t.Helper()
	python := needBinary(t, "python3", "GATEHOUSE_TEST_REQUIRE_NGINX")
	dir := t.TempDir()
	for name, body := range map[string]string{"public/index.html": "public page\n", "admin/index.html": "ADMIN SECRET\n"} {
		p := filepath.Join(dir, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	port := freePort(t)
	cmd := exec.Command(python, "-m", "http.server", fmt.Sprint(port), "--bind", "127.0.0.1", "--directory", dir)
	logs := &lockedBuffer{}
	cmd.Stdout, cmd.Stderr = logs, logs
	start(t, cmd, syscall.SIGTERM)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	waitFor(t, base, "python3 -m http.server", logs)
	// The upstream really does resolve an encoded traversal to the admin
	// page: without forward auth refusing it, the attack would work.
	c := newRawClient(t, strings.TrimPrefix(base, "http://"))
	if s, _, body := c.do("GET", "/public/%2e%2e/admin/"); s != 200 || !strings.Contains(body, "ADMIN SECRET") {
		t.Fatalf("upstream did not normalize /public/%%2e%%2e/admin/: %d %q", s, body)
	}
	return base
}

// attacks are original requests that a normalizing upstream serves as
// /admin/ while a matcher that does not decode sees /public/.
var attacks = []string{
	"/public/%2e%2e/admin/",
	"/public/%2E%2E/admin/",
	"/public/.%2e/admin/",
	"/public/..%2fadmin/",
	"/public/..%2Fadmin/",
	"/public/%2Fadmin",
	"/public/%2F..%2Fadmin/",
	"/public/../admin/",
	"/public/./../admin/",
	"/public//../admin/",
}

// checkProxy runs the public/admin checks through a proxy at base.
func checkProxy(t *testing.T, base string, olga gatehouse.NewToken) {
	t.Helper()
	c := newRawClient(t, strings.TrimPrefix(base, "http://"))
	auth := "Authorization: Bearer " + olga.Token
	if s, _, body := c.do("GET", "/public/", auth); s != 200 || !strings.Contains(body, "public page") {
		t.Fatalf("GET /public/: %d %q, want 200 with the public page", s, body)
	}
	if s, _, body := c.do("GET", "/admin/", auth); s != 403 || strings.Contains(body, "ADMIN SECRET") {
		t.Fatalf("GET /admin/: %d %q, want 403", s, body)
	}
	if s, _, body := c.do("GET", "/public/"); s != 401 || strings.Contains(body, "public page") {
		t.Fatalf("GET /public/ without a token: %d %q, want 401", s, body)
	}
	for _, path := range attacks {
		s, _, body := c.do("GET", path, auth)
		t.Logf("GET %s: %d", path, s)
		if strings.Contains(body, "ADMIN SECRET") || s/100 == 2 {
			t.Errorf("GET %s: %d %q reached the upstream", path, s, body)
		} else if s != 403 && s != 400 {
			t.Errorf("GET %s: %d %q, want 403 (or the proxy's own 400)", path, s, body)
		}
	}
}

// TestNginxNormalizingUpstream runs the README's nginx configuration in
// front of an upstream that normalizes paths: encoded traversals never
// reach the admin page.
func TestNginxNormalizingUpstream(t *testing.T) {
	nginx := needBinary(t, "nginx", "GATEHOUSE_TEST_REQUIRE_NGINX", "/usr/sbin/nginx")
	e, olga := fwdEnv(t)
	base := startNginx(t, nginx, pythonUpstream(t), e.srv.URL)
	checkProxy(t, base, olga)
	// A client's own X-Forwarded-* headers are dropped by the README's
	// config: they are neither believed nor a way to get a request refused.
	c := newRawClient(t, strings.TrimPrefix(base, "http://"))
	if s, _, body := c.do("GET", "/admin/", "Authorization: Bearer "+olga.Token, "X-Forwarded-Uri: /public/", "X-Forwarded-Method: GET"); s != 403 || strings.Contains(body, "ADMIN SECRET") {
		t.Fatalf("forged X-Forwarded-Uri through nginx: %d %q, want 403", s, body)
	}
	if s, _, body := c.do("GET", "/public/", "Authorization: Bearer "+olga.Token, "X-Forwarded-Uri: /admin/", "X-Forwarded-Method: POST"); s != 200 {
		t.Fatalf("a client's X-Forwarded-Uri through nginx got a permitted request refused: %d %q", s, body)
	}
	checkProxiedAudit(t, e, c, olga)
}

// checkProxiedAudit sends a request through the proxy with a forged
// client address and checks its audit event: the original request, the
// route that matched, and the client's real address (the proxy replaces
// the forged headers with the address it saw).
func checkProxiedAudit(t *testing.T, e *env, c *rawClient, olga gatehouse.NewToken) {
	t.Helper()
	ua := "User-Agent: audit-through-proxy"
	if s, _, body := c.do("GET", "/public/?q=secret-query", "Authorization: Bearer "+olga.Token, ua,
		"X-Forwarded-For: 203.0.113.9", "X-Real-IP: 203.0.113.9"); s != 200 {
		t.Fatalf("GET /public/ through the proxy: %d %q", s, body)
	}
	e.svc.Flush(t.Context())
	var page gatehouse.List[gatehouse.Event]
	e.call("GET", "/api/v1/audit?type=request&account=olga&route="+url.QueryEscape("GET /public/"), e.admin, nil, 200, &page)
	var found bool
	for _, ev := range page.Items {
		if ev.UserAgent != "audit-through-proxy" {
			continue
		}
		found = true
		if ev.Method != "GET" || ev.Path != "/public/" || ev.Decision != "allow" || ev.Resource != "applications" || ev.Object != "public/site" {
			t.Errorf("proxied request's event = %+v, want GET /public/ allowed as applications, get, public/site", ev)
		}
		if ev.RemoteAddr != "127.0.0.1" {
			t.Errorf("proxied request's client = %q: the forged header was believed (want 127.0.0.1)", ev.RemoteAddr)
		}
	}
	if !found {
		t.Fatalf("no audit event of the proxied request among %+v", page.Items)
	}
}

// TestCaddyForwardAuth puts a real Caddy (forward_auth, headers:
// forwarded) in front of the normalizing upstream. Caddy copies the
// client's own headers to the auth request, so a client-sent
// X-Original-URI must be refused, and a client-sent X-Forwarded-Uri is
// replaced by Caddy's.
func TestCaddyForwardAuth(t *testing.T) {
	caddy := needBinary(t, "caddy", "GATEHOUSE_TEST_REQUIRE_CADDY")
	e, olga := fwdEnv(t)
	upstream := pythonUpstream(t)
	gh := fwdServer(t, e, server.HeadersForwarded, fwdRoutes...)

	dir := t.TempDir()
	port := freePort(t)
	caddyfile := fmt.Sprintf(`{
	admin off
	auto_https off
	storage file_system %[1]s/caddydata
}
http://127.0.0.1:%[2]d {
	forward_auth %[3]s {
		uri /api/v1/auth/verify
		copy_headers X-Auth-User
	}
	reverse_proxy %[4]s
}
`, dir, port, strings.TrimPrefix(gh.URL, "http://"), strings.TrimPrefix(upstream, "http://"))
	if err := os.WriteFile(filepath.Join(dir, "Caddyfile"), []byte(caddyfile), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(caddy, "run", "--config", filepath.Join(dir, "Caddyfile"), "--adapter", "caddyfile")
	cmd.Env = append(os.Environ(), "XDG_DATA_HOME="+filepath.Join(dir, "data"), "XDG_CONFIG_HOME="+filepath.Join(dir, "config"), "HOME="+dir)
	logs := &lockedBuffer{}
	cmd.Stdout, cmd.Stderr = logs, logs
	start(t, cmd, syscall.SIGTERM)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	waitForPort(t, port, "caddy", logs)

	checkProxy(t, base, olga)
	c := newRawClient(t, strings.TrimPrefix(base, "http://"))
	auth := "Authorization: Bearer " + olga.Token
	// A client-sent X-Original-URI reaches Gatehouse: refused.
	if s, _, body := c.do("GET", "/admin/", auth, "X-Original-URI: /public/", "X-Original-Method: GET"); s != 403 || strings.Contains(body, "ADMIN SECRET") {
		t.Fatalf("client X-Original-URI through Caddy: %d %q, want 403", s, body)
	} else if !strings.Contains(body, "X-Original-") {
		t.Errorf("refusal %q does not name the forged header", body)
	}
	// A client-sent X-Forwarded-Uri is overwritten by Caddy's own.
	if s, _, body := c.do("GET", "/admin/", auth, "X-Forwarded-Uri: /public/"); s != 403 || strings.Contains(body, "ADMIN SECRET") {
		t.Fatalf("client X-Forwarded-Uri through Caddy: %d %q, want 403", s, body)
	}
	checkProxiedAudit(t, e, c, olga)
}

// waitForPort waits until something accepts TCP connections on port.
func waitForPort(t *testing.T, port int, what string, logs *lockedBuffer) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		conn, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second)
		if err == nil {
			conn.Close()
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s did not start:\n%s", what, logs.Bytes())
}
