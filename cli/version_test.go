package cli

import (
	"encoding/json"
	"runtime"
	"strings"
	"testing"
)

// TestVersion: `gatehouse version` prints the client's version and, with a
// server configured, the server's from GET /api/version, even when the
// token at hand is refused; --client asks no server.
func TestVersion(t *testing.T) {
	api := newRealAPI(t, false, "v0.9.0-test")

	// No server anywhere: the client's version only, and success.
	none, _ := newRun(t)
	res := none.run(t, "version")
	mustSucceed(t, res)
	if !strings.HasPrefix(res.stdout, "gatehouse: "+Version+"\n") || strings.Contains(res.stdout, "gatehouse-server") {
		t.Errorf("version without a server printed %q, want the client's only", res.stdout)
	}
	if !strings.Contains(res.stdout, "Go Version:") || !strings.Contains(res.stdout, runtime.GOOS+"/"+runtime.GOARCH) {
		t.Errorf("version printed %q, want the Go version and platform", res.stdout)
	}

	// The current context's server.
	run, _ := api.loggedIn(t)
	res = run.run(t, "version", "--short")
	mustSucceed(t, res)
	if want := "gatehouse: " + Version + "\ngatehouse-server: v0.9.0-test\n"; res.stdout != want {
		t.Errorf("version --short printed %q, want %q", res.stdout, want)
	}
	res = run.run(t, "version", "-o", "json")
	mustSucceed(t, res)
	var out versionOutput
	if err := json.Unmarshal([]byte(res.stdout), &out); err != nil {
		t.Fatalf("version -o json: %v\n%s", err, res.stdout)
	}
	if out.Client.Version != Version || out.Server == nil || out.Server.Version != "v0.9.0-test" || out.Server.GoVersion != runtime.Version() {
		t.Errorf("version -o json = %+v (server %+v)", out, out.Server)
	}

	// A refused token does not hide the server's version: it needs none.
	stale := authed(t, &fakeAPI{URL: api.URL})
	res = stale.run(t, "version", "--short")
	mustSucceed(t, res)
	if !strings.Contains(res.stdout, "gatehouse-server: v0.9.0-test\n") {
		t.Errorf("version with a refused token printed %q", res.stdout)
	}

	// --client sends nothing: an unreachable server does not matter.
	down, _ := newRun(t)
	down.env["GATEHOUSE_SERVER"] = "http://127.0.0.1:1"
	res = down.run(t, "version", "--client", "--short")
	mustSucceed(t, res)
	if res.stdout != "gatehouse: "+Version+"\n" {
		t.Errorf("version --client printed %q", res.stdout)
	}
	// Without it, a configured server that does not answer is an error,
	// after the client's version.
	res = down.run(t, "version", "--short")
	mustFail(t, res, "server version:")
	if res.stdout != "gatehouse: "+Version+"\n" {
		t.Errorf("version against a server that is down printed %q, want the client's version", res.stdout)
	}
}
