package server_test

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/server"
)

var fwdRoutes = []server.Route{
	{Match: "GET /grafana/", Resource: "applications", Action: "get", Object: "monitoring/grafana"},
	{Match: "POST /deploy/{project}/{app}", Resource: "applications", Action: "sync", Object: "{project}/{app}"},
	{Match: "/repos/{project}/{rest...}", Resource: "projects", Action: "get", Object: "{project}"},
}

func TestForwardAuth(t *testing.T) {
	e := newEnv(t, withRoutes(fwdRoutes...))
	e.createUser("olga", "sre")
	e.setPolicy("p, role:sre, applications, get, monitoring/*, allow\np, role:sre, applications, sync, team-a/*, allow\np, role:sre, projects, get, team-a, allow\ng, sre, role:sre", "")
	olga := e.mint(e.login("olga", "olga-password"), "olga", gatehouse.TokenRequest{Name: "proxy"})

	cases := map[string]struct {
		method, uri, token string
		want               int
	}{
		"ok/get grafana":          {"GET", "/grafana/d/abc?orgId=1", olga.Token, 200},
		"ok/sync own project":     {"POST", "/deploy/team-a/web", olga.Token, 200},
		"ok/wildcard rest":        {"GET", "/repos/team-a/x/y/z.git", olga.Token, 200},
		"fail/sync other project": {"POST", "/deploy/team-b/web", olga.Token, 403},
		"fail/no route":           {"GET", "/admin/", olga.Token, 403},
		"fail/method not routed":  {"DELETE", "/grafana/", olga.Token, 403},
		"fail/no credential":      {"GET", "/grafana/", "", 401},
		"fail/bad credential":     {"GET", "/grafana/", "gatehouse:nope", 401},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			req, _ := http.NewRequest("GET", e.srv.URL+"/api/v1/auth/verify", nil)
			req.Header.Set("X-Original-Method", c.method)
			req.Header.Set("X-Original-URI", c.uri)
			if c.token != "" {
				req.Header.Set("Authorization", "Bearer "+c.token)
			}
			resp, err := e.srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != c.want {
				t.Fatalf("status %d, want %d", resp.StatusCode, c.want)
			}
			if c.want == 200 {
				if resp.Header.Get("X-Auth-User") != "olga" || resp.Header.Get("X-Auth-Groups") != "sre" || resp.Header.Get("X-Auth-Token-Id") != olga.ID {
					t.Fatalf("identity headers = %v", resp.Header)
				}
			}
			if c.want == 401 && resp.Header.Get("WWW-Authenticate") == "" {
				t.Fatal("401 without a challenge")
			}
		})
	}
	// Traefik's header names, and Basic credentials (git, curl -u).
	req, _ := http.NewRequest("POST", e.srv.URL+"/api/v1/auth/verify", nil)
	req.Header.Set("X-Forwarded-Method", "POST")
	req.Header.Set("X-Forwarded-Uri", "/deploy/team-a/api")
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	req.SetBasicAuth("git", olga.Token)
	if s, b := e.send(req); s != 200 {
		t.Fatalf("Traefik-style request: %d %s", s, b)
	}
	// Missing original request headers is a clear 400.
	if s := e.status("GET", "/api/v1/auth/verify", olga.Token, nil); s != 400 {
		t.Fatalf("no X-Original-*: %d, want 400", s)
	}
}

// TestNginxAuthRequest puts a real nginx with auth_request in front of a
// protected upstream and checks that Gatehouse tokens and policies guard it.
func TestNginxAuthRequest(t *testing.T) {
	nginx, err := exec.LookPath("nginx")
	if err != nil {
		if _, e2 := os.Stat("/usr/sbin/nginx"); e2 == nil {
			nginx = "/usr/sbin/nginx"
		} else if os.Getenv("GATEHOUSE_TEST_REQUIRE_NGINX") == "1" {
			t.Fatal("nginx is required (GATEHOUSE_TEST_REQUIRE_NGINX=1) but not installed")
		} else {
			t.Skip("nginx not installed; set GATEHOUSE_TEST_REQUIRE_NGINX=1 to require it")
		}
	}
	e := newEnv(t, withRoutes(fwdRoutes...))
	e.createUser("olga", "sre")
	e.setPolicy("p, role:sre, applications, get, monitoring/*, allow\ng, sre, role:sre", "")
	olga := e.mint(e.login("olga", "olga-password"), "olga", gatehouse.TokenRequest{Name: "nginx"})

	upstream := newUpstream(t)
	dir, err := os.MkdirTemp("", "ngx")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o755)
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
    location / {
      auth_request /_gatehouse;
      auth_request_set $user $upstream_http_x_auth_user;
      proxy_set_header X-User $user;
      proxy_pass %[3]s;
    }
    location = /_gatehouse {
      internal;
      proxy_pass %[4]s/api/v1/auth/verify;
      proxy_pass_request_body off;
      proxy_set_header Content-Length "";
      proxy_set_header X-Original-URI $request_uri;
      proxy_set_header X-Original-Method $request_method;
    }
  }
}
`, dir, port, upstream, e.srv.URL)
	if err := os.WriteFile(filepath.Join(dir, "nginx.conf"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(nginx, "-p", dir, "-c", filepath.Join(dir, "nginx.conf"), "-e", "stderr", "-g", "daemon off; user root;")
	var logs strings.Builder
	cmd.Stderr = &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
		}
	})
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	waitFor(t, base, &logs)

	get := func(path string, auth func(*http.Request)) (int, string) {
		req, _ := http.NewRequest("GET", base+path, nil)
		if auth != nil {
			auth(req)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var b strings.Builder
		buf := make([]byte, 1024)
		n, _ := resp.Body.Read(buf)
		b.Write(buf[:n])
		return resp.StatusCode, b.String()
	}
	bearer := func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+olga.Token) }
	basic := func(r *http.Request) { r.SetBasicAuth("x", olga.Token) }

	if s, body := get("/grafana/dashboards", bearer); s != 200 || body != "hello olga" {
		t.Fatalf("bearer through nginx: %d %q, want 200 \"hello olga\"", s, body)
	}
	if s, _ := get("/grafana/dashboards", basic); s != 200 {
		t.Fatalf("basic through nginx: %d", s)
	}
	if s, _ := get("/grafana/", nil); s != 401 {
		t.Fatalf("no credential through nginx: %d, want 401", s)
	}
	if s, _ := get("/elsewhere", bearer); s != 403 {
		t.Fatalf("unrouted path through nginx: %d, want 403", s)
	}
	e.call("DELETE", "/api/v1/account/olga/token/"+olga.ID, e.admin, nil, 200, nil)
	if s, _ := get("/grafana/dashboards", bearer); s != 401 {
		t.Fatalf("revoked token through nginx: %d, want 401", s)
	}
}

func newUpstream(t *testing.T) string {
	t.Helper()
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello %s", r.Header.Get("X-User"))
	})}
	ln := listen(t)
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return "http://" + ln.Addr().String()
}

func waitFor(t *testing.T, url string, logs *strings.Builder) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(url + "/")
		if err == nil {
			resp.Body.Close()
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("nginx did not start:\n%s", logs.String())
}
