package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestServerCrtTrustsAPrivateCertificate: a server whose certificate no
// system trusts is refused; --server-crt FILE trusts it, login stores the
// file (as an absolute path) in the context, and later commands use it
// without the flag.
func TestServerCrtTrustsAPrivateCertificate(t *testing.T) {
	api := newRealAPI(t, true, "")
	crt := api.certFile(t)

	run, path := newRun(t)
	mustFail(t, run.run(t, "login", api.URL, "--username", "admin", "--password", realAdminPassword), "certificate")
	if _, err := os.Stat(path); err == nil {
		t.Fatal("a refused login wrote the config")
	}

	// A relative path is stored absolute, so the context works anywhere.
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	rel, err := filepath.Rel(wd, crt)
	if err != nil {
		t.Fatal(err)
	}
	mustSucceed(t, run.run(t, "login", api.URL, "--username", "admin", "--password", realAdminPassword, "--server-crt", rel))
	cfg, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(cfg), "server-crt: "+crt+"\n") {
		t.Errorf("the context does not keep the certificate file %s:\n%s", crt, cfg)
	}
	res := run.run(t, "account", "get-user-info")
	mustSucceed(t, res)
	if !strings.Contains(res.stdout, "admin") {
		t.Errorf("get-user-info through the stored certificate printed %q", res.stdout)
	}

	// The certificate replaces the system's roots: a file holding another
	// certificate does not let this server through.
	mustFail(t, run.run(t, "account", "get-user-info", "--server-crt", selfSignedPEM(t)), "certificate")

	// A CI job: no config, the server and token in the environment, the
	// certificate from GATEHOUSE_SERVER_CRT.
	ci, _ := newRun(t)
	ci.env["GATEHOUSE_SERVER"] = api.URL
	ci.env["GATEHOUSE_AUTH_TOKEN"] = api.adminToken(t)
	mustFail(t, ci.run(t, "account", "get-user-info"), "certificate")
	ci.env["GATEHOUSE_SERVER_CRT"] = crt
	if res := ci.run(t, "account", "get-user-info"); res.code != 0 || !strings.Contains(res.stdout, "admin") {
		t.Errorf("with GATEHOUSE_SERVER_CRT: exit %d, stdout %q, stderr %q", res.code, res.stdout, res.stderr)
	}
}

// TestServerCrtErrors: a file that is missing or holds no certificate,
// --server-crt with --insecure, and --server-crt with plain HTTP are each
// refused before anything is sent.
func TestServerCrtErrors(t *testing.T) {
	api := newRealAPI(t, true, "")
	crt := api.certFile(t)
	notPEM := filepath.Join(t.TempDir(), "not.pem")
	if err := os.WriteFile(notPEM, []byte("not a certificate\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	run, _ := newRun(t)
	run.env["GATEHOUSE_SERVER"] = api.URL
	run.env["GATEHOUSE_AUTH_TOKEN"] = testToken
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--server-crt", filepath.Join(t.TempDir(), "missing.pem")}, "no such file"},
		{[]string{"--server-crt", notPEM}, "no PEM certificate"},
		{[]string{"--server-crt", crt, "--insecure"}, "--server-crt conflicts with --insecure"},
		{[]string{"--server-crt", crt, "--server", "http://127.0.0.1:1"}, "needs an https server"},
	} {
		mustFail(t, run.run(t, append([]string{"account", "get-user-info"}, c.args...)...), c.want)
	}
}
