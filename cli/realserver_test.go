package cli

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"log"
	"log/slog"
	"math/big"
	"net"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/client"
	"github.com/gatehouse/gatehouse/server"
	"github.com/gatehouse/gatehouse/service"
	"github.com/gatehouse/gatehouse/store/sqlite"
)

const realAdminPassword = "real-admin-password"

// realAPI is a real Gatehouse server (the service on SQLite in a temp
// directory, behind the real HTTP handler) served by httptest.
type realAPI struct {
	URL    string
	srv    *httptest.Server
	svc    *service.Service
	dbPath string // the store's database file
}

// newRealAPI starts a real server with an admin whose password is
// realAdminPassword; with tls, httptest's TLS server (a certificate for
// 127.0.0.1 that no system trusts).
func newRealAPI(t *testing.T, tls bool, version string) *realAPI {
	t.Helper()
	ctx := context.Background()
	dbPath := filepath.Join(t.TempDir(), "gatehouse.db")
	st, err := sqlite.Open(ctx, dbPath)
	if err != nil {
		t.Fatal(err)
	}
	svc, err := service.New(ctx, service.Options{Store: st, BcryptCost: 10, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Bootstrap(ctx, realAdminPassword); err != nil {
		t.Fatal(err)
	}
	h := server.New(server.Options{Service: svc, TLS: tls, Version: version})
	srv := httptest.NewUnstartedServer(h)
	// The refused handshakes the tests provoke are not news.
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	if tls {
		srv.StartTLS()
	} else {
		srv.Start()
	}
	bg, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); svc.Run(bg, time.Hour) }()
	t.Cleanup(func() {
		srv.Close()
		stop()
		<-done
		st.Close()
	})
	return &realAPI{URL: srv.URL, srv: srv, svc: svc, dbPath: dbPath}
}

// certFile writes the server's TLS certificate to a PEM file and returns
// its path.
func (r *realAPI) certFile(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "server.crt")
	b := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: r.srv.Certificate().Raw})
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// adminToken logs in as admin from outside the CLI and returns the
// session token.
func (r *realAPI) adminToken(t *testing.T) string {
	t.Helper()
	c, err := client.New(r.URL, client.WithHTTPClient(r.srv.Client()))
	if err != nil {
		t.Fatal(err)
	}
	tok, err := c.Login(t.Context(), "admin", realAdminPassword)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// adminClient is a typed client logged in as admin, for setting up
// fixtures and checking what the CLI did, from outside the CLI.
func (r *realAPI) adminClient(t *testing.T) *client.Client {
	t.Helper()
	c, err := client.New(r.URL, client.WithHTTPClient(r.srv.Client()), client.WithToken(r.adminToken(t)))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// selfSignedPEM writes a fresh self-signed certificate for 127.0.0.1 (one
// that no server here uses) to a PEM file and returns its path.
func selfSignedPEM(t *testing.T) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "another CA"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		IsCA:         true,
		KeyUsage:     x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},

		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "other.crt")
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// loggedIn is a CLI run with a config of its own whose current context is
// logged in to r as admin.
func (r *realAPI) loggedIn(t *testing.T, extra ...string) (cliRun, string) {
	t.Helper()
	run, path := newRun(t)
	args := append([]string{"login", r.URL, "--username", "admin", "--password", realAdminPassword}, extra...)
	res := run.run(t, args...)
	mustSucceed(t, res)
	if !strings.Contains(res.stdout, "logged in successfully") {
		t.Fatalf("login printed %q", res.stdout)
	}
	return run, path
}
