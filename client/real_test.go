package client

import (
	"context"
	"crypto/x509"
	"io"
	"log"
	"log/slog"
	"net/http/httptest"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/server"
	"github.com/gatehouse/gatehouse/service"
	"github.com/gatehouse/gatehouse/store/sqlite"
)

// realServer starts the real Gatehouse handler (service on SQLite in a
// temp dir) over httptest's TLS server and returns it.
func realServer(t *testing.T, version string) *httptest.Server {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "gatehouse.db"))
	if err != nil {
		t.Fatal(err)
	}
	svc, err := service.New(ctx, service.Options{Store: st, BcryptCost: 10, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Bootstrap(ctx, "real-admin-password"); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(server.New(server.Options{Service: svc, TLS: true, Version: version}))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.StartTLS()
	bg, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); svc.Run(bg, time.Hour) }()
	t.Cleanup(func() {
		srv.Close()
		stop()
		<-done
		st.Close()
	})
	return srv
}

// TestRootCAs: the server's certificate is refused against the system's
// roots and accepted with WithRootCAs trusting it; WithRootCAs conflicts
// with WithInsecure, WithHTTPClient and a plain HTTP server.
func TestRootCAs(t *testing.T) {
	srv := realServer(t, "v9.8.7")
	plain, err := New(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := plain.Version(t.Context()); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("an untrusted certificate: err %v, want a certificate error", err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(srv.Certificate())
	c, err := New(srv.URL, WithRootCAs(pool))
	if err != nil {
		t.Fatal(err)
	}
	v, err := c.Version(t.Context())
	if err != nil {
		t.Fatalf("WithRootCAs trusting the server's certificate: %v", err)
	}
	if v.Version != "v9.8.7" || v.GoVersion != runtime.Version() {
		t.Errorf("version %+v, want v9.8.7 built by %s", v, runtime.Version())
	}
	for name, opts := range map[string][]Option{
		"insecure":    {WithRootCAs(pool), WithInsecure(true)},
		"http client": {WithRootCAs(pool), WithHTTPClient(srv.Client())},
	} {
		if _, err := New(srv.URL, opts...); err == nil {
			t.Errorf("New accepted WithRootCAs with %s", name)
		}
	}
	if _, err := New("http://127.0.0.1:1", WithRootCAs(pool)); !gatehouse.IsCode(err, gatehouse.EINVALID) {
		t.Errorf("WithRootCAs on plain HTTP: err %v, want EINVALID", err)
	}
}

// TestVersionWorksWithARefusedToken: the version answers whatever token
// the client holds: an expired context must not hide the server version.
func TestVersionWorksWithARefusedToken(t *testing.T) {
	srv := realServer(t, "v1.0.0")
	c, err := New(srv.URL, WithHTTPClient(srv.Client()), WithToken(testToken))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.UserInfo(t.Context()); !gatehouse.IsCode(err, gatehouse.EUNAUTHORIZED) {
		t.Fatalf("userinfo with a token the server never issued: %v, want EUNAUTHORIZED", err)
	}
	v, err := c.Version(t.Context())
	if err != nil || v.Version != "v1.0.0" {
		t.Errorf("Version with a refused token: %+v, %v; want v1.0.0", v, err)
	}
}
