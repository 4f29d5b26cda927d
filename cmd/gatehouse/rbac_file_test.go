package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The configuration file's rbac.* keys through the real server: the file
// is the source of truth for the keys it sets, applied at every start,
// audited when they change, and not editable through the API meanwhile.

const fileRBACPassword = "file-rbac-admin-password"

// rbacFileServer is one data directory and configuration file, started
// and stopped as an operator would.
type rbacFileServer struct {
	t       *testing.T
	dataDir string
	config  string
}

func newRBACFileServer(t *testing.T) *rbacFileServer {
	return &rbacFileServer{t: t, dataDir: filepath.Join(t.TempDir(), "data"), config: filepath.Join(t.TempDir(), "gatehouse.yaml")}
}

// write replaces the configuration file.
func (r *rbacFileServer) write(yaml string) {
	r.t.Helper()
	if err := os.WriteFile(r.config, []byte(yaml), 0o600); err != nil {
		r.t.Fatal(err)
	}
}

// start starts the server on the file and logs in as admin.
func (r *rbacFileServer) start() (*proc, string) {
	r.t.Helper()
	p := startWith(r.t, r.dataDir, []string{"--config", r.config}, "GATEHOUSE_ADMIN_PASSWORD="+fileRBACPassword)
	return p, login(r.t, p.url, "admin", fileRBACPassword)
}

// stop stops p with SIGTERM and waits for it to exit.
func (r *rbacFileServer) stop(p *proc) {
	r.t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		r.t.Fatal(err)
	}
	if err := p.cmd.Wait(); err != nil {
		r.t.Fatalf("server exited with %v; logs:\n%s", err, p.logs.String())
	}
}

// refused runs the server on the file, expecting it to refuse to start,
// and returns its output.
func (r *rbacFileServer) refused() string {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(r.t.Context(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, "server", "--listen", "127.0.0.1:0", "--data-dir", r.dataDir, "--config", r.config)
	cmd.Env = append(os.Environ(), "GATEHOUSE_ADMIN_PASSWORD="+fileRBACPassword)
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil || err == nil {
		r.t.Fatalf("the server did not refuse to start (%v); output:\n%s", err, out)
	}
	return string(out)
}

// settings is GET /api/v1/settings/rbac.
func settings(t *testing.T, p *proc, tok string) answer {
	t.Helper()
	a := call(t, "GET", p.url+"/api/v1/settings/rbac", tok, "")
	if a.status != 200 {
		t.Fatalf("GET settings: %v", a)
	}
	return a
}

func managed(a answer) string { return fmt.Sprint(a.body["managedByConfig"]) }

// policyChanges are the policy.changed events, newest first.
func policyChanges(t *testing.T, p *proc, tok string) []map[string]any {
	t.Helper()
	a := call(t, "GET", p.url+"/api/v1/audit?type=policy.changed", tok, "")
	if a.status != 200 {
		t.Fatalf("GET audit: %v", a)
	}
	var out []map[string]any
	for _, it := range a.body["items"].([]any) {
		out = append(out, it.(map[string]any))
	}
	return out
}

const (
	fileV1 = `listen: 127.0.0.1:0
rbac:
  policyCSV: |
    p, role:deployer, applications, sync, */*, allow
    g, ci-deployer, role:deployer
  matchMode: glob
`
	fileV2 = `listen: 127.0.0.1:0
rbac:
  policyCSV: |
    p, role:deployer, applications, sync, */*, allow
    p, role:deployer, applications, get, */*, allow
    g, ci-deployer, role:deployer
  matchMode: glob
`
	csvV1 = "p, role:deployer, applications, sync, */*, allow\ng, ci-deployer, role:deployer\n"
	csvV2 = "p, role:deployer, applications, sync, */*, allow\np, role:deployer, applications, get, */*, allow\ng, ci-deployer, role:deployer\n"
)

func TestRBACKeysOfTheConfigFileApplyAtEveryStart(t *testing.T) {
	r := newRBACFileServer(t)
	r.write(fileV1)

	// First start: the file's keys are stored, and recorded as a change
	// by the configuration.
	p, tok := r.start()
	s := settings(t, p, tok)
	if s.body["policyCSV"] != csvV1 || managed(s) != "[policyCSV matchMode policyDefault]" {
		t.Fatalf("after the first start: %v, want the file's policy, managed by the file", s.body)
	}
	evs := policyChanges(t, p, tok)
	if len(evs) != 1 || evs[0]["actor"] != "system:config" || !strings.Contains(evs[0]["detail"].(string), "changed rbac.policyCSV;") {
		t.Fatalf("policy events after the first start: %v, want one by config", evs)
	}

	// An API edit of a key the file sets is refused, and changes nothing.
	a := call(t, "PUT", p.url+"/api/v1/settings/rbac", tok, `{"policyCSV":"g, ci-deployer, role:admin","policyDefault":"","matchMode":"glob"}`)
	wantMsg := "rbac.policyCSV is set in the configuration file (" + r.config + "); edit the file and restart"
	if a.status != 409 || a.body["message"] != wantMsg {
		t.Errorf("PUT of a file-managed key: %v, want 409 %q", a, wantMsg)
	}
	if got := settings(t, p, tok); got.body["policyCSV"] != csvV1 {
		t.Errorf("a refused PUT changed policyCSV to %q", got.body["policyCSV"])
	}
	if got := len(policyChanges(t, p, tok)); got != 1 {
		t.Errorf("a refused PUT recorded an event (%d in all)", got)
	}
	// The file sets the policy, so it owns the default role too.
	a = call(t, "PUT", p.url+"/api/v1/settings/rbac", tok, `{"policyCSV":`+jsonString(csvV1)+`,"policyDefault":"role:readonly","matchMode":"glob"}`)
	if a.status != 409 {
		t.Errorf("PUT of policyDefault beside a file's policy: %v, want 409", a)
	}
	// A key the file does not own stays editable.
	a = call(t, "PUT", p.url+"/api/v1/settings/rbac", tok, `{"policyCSV":`+jsonString(csvV1)+`,"policyDefault":"","matchMode":"glob","scopes":"[groups]"}`)
	if a.status != 200 || a.body["scopes"] != "[groups]" || fmt.Sprint(a.body["managedByConfig"]) != "[policyCSV matchMode policyDefault]" {
		t.Errorf("PUT of scopes only: %v, want 200 with managedByConfig", a)
	}
	r.stop(p)

	// The same file again: nothing written, nothing recorded.
	p, tok = r.start()
	if got := len(policyChanges(t, p, tok)); got != 2 { // the first start's and the API edit
		t.Errorf("an identical file made events: %d in all, want 2", got)
	}
	if strings.Contains(p.logs.String(), "applied the RBAC settings") {
		t.Errorf("an identical file logged an apply:\n%s", p.logs.String())
	}
	r.stop(p)

	// A changed file is applied, audited and logged; what the API set
	// outside the file's keys stays.
	r.write(fileV2)
	p, tok = r.start()
	s = settings(t, p, tok)
	if s.body["policyCSV"] != csvV2 || s.body["scopes"] != "[groups]" {
		t.Errorf("after a changed file: %v, want its policy and the API's scopes", s.body)
	}
	evs = policyChanges(t, p, tok)
	if len(evs) != 3 || evs[0]["actor"] != "system:config" || !strings.Contains(evs[0]["detail"].(string), "changed rbac.policyCSV;") {
		t.Errorf("policy events after a changed file: %v, want a third, by config, changing rbac.policyCSV", evs)
	}
	if !strings.Contains(p.logs.String(), `"msg":"applied the RBAC settings of the configuration file"`) {
		t.Errorf("the apply is not logged:\n%s", p.logs.String())
	}
	r.stop(p)

	// The file stops setting policyCSV: the stored policy stays, and the
	// API may change it again.
	r.write("listen: 127.0.0.1:0\nrbac:\n  matchMode: glob\n")
	p, tok = r.start()
	s = settings(t, p, tok)
	if s.body["policyCSV"] != csvV2 || managed(s) != "[matchMode]" {
		t.Errorf("with policyCSV removed from the file: %v, want the stored policy, only matchMode managed", s.body)
	}
	a = call(t, "PUT", p.url+"/api/v1/settings/rbac", tok, `{"policyCSV":"g, ci-deployer, role:readonly","policyDefault":"","matchMode":"glob"}`)
	if a.status != 200 {
		t.Errorf("PUT of policyCSV once the file no longer sets it: %v", a)
	}
	r.stop(p)

	// A policy that does not load refuses the start, naming the key and
	// the file's line, and the stored settings stay.
	r.write("listen: 127.0.0.1:0\nrbac:\n  matchMode: glob\n  policyCSV: |\n    g, ci-deployer, role:deployer\n    p, role:deployer, applications, sync\n")
	out := r.refused()
	for _, want := range []string{"configuration file " + r.config, "rbac.policyCSV (line 4)", "policy line 2 (file line 6)", "p line needs 5 or 6 fields, got 4"} {
		if !strings.Contains(out, want) {
			t.Errorf("refused start's output does not contain %q:\n%s", want, out)
		}
	}
	r.write("listen: 127.0.0.1:0\nrbac:\n  matchMode: glob\n")
	p, tok = r.start()
	if got := settings(t, p, tok).body["policyCSV"]; got != "g, ci-deployer, role:readonly" {
		t.Errorf("after a refused start, policyCSV = %q, want the last stored", got)
	}
}

// A first start with a policy that does not load starts nothing.
func TestInvalidRBACInTheConfigFileRefusesTheFirstStart(t *testing.T) {
	r := newRBACFileServer(t)
	r.write("rbac:\n  policyCSV: \"g, alice\"\n")
	out := r.refused()
	for _, want := range []string{"rbac.policyCSV (line 2)", "policy line 1: g line needs 3 fields, got 2"} {
		if !strings.Contains(out, want) {
			t.Errorf("refused first start's output does not contain %q:\n%s", want, out)
		}
	}
}

func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// Replicas whose files disagree, on one PostgreSQL database: each
// applies its own file at start (the last to start wins, and the others
// follow it through the change feed), and the one that replaces values
// another replica's file applied says so in a warning.
func TestReplicasWithDifferentRBACFiles(t *testing.T) {
	_, url := replicaPostgres(t)
	replicaWith := func(yaml string) *proc {
		t.Helper()
		r := newRBACFileServer(t)
		r.write(yaml)
		return startWith(t, r.dataDir, []string{"--config", r.config, "--database-url", url, "--staleness-bound", replicaBound.String()},
			"GATEHOUSE_ADMIN_PASSWORD="+fileRBACPassword)
	}
	a := replicaWith(fileV1)
	b := replicaWith(fileV2)
	tok := login(t, a.url, "admin", fileRBACPassword)

	const warning = "the RBAC settings in force come from another replica's configuration file"
	if strings.Contains(a.logs.String(), warning) {
		t.Errorf("the first replica warned:\n%s", a.logs.String())
	}
	var warned map[string]any
	for line := range strings.Lines(b.logs.String()) {
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) == nil && strings.HasPrefix(fmt.Sprint(m["msg"]), warning) {
			warned = m
		}
	}
	if warned == nil || warned["level"] != "WARN" || !strings.Contains(fmt.Sprint(warned["other_replica"]), a.dataDir) {
		t.Fatalf("the second replica, whose file differs, logged no warning naming the first (data dir %s):\n%s", a.dataDir, b.logs.String())
	}

	// The last start wins, on every replica: a follows b's file.
	if got := settings(t, a, tok).body["policyCSV"]; got != csvV2 {
		t.Errorf("policyCSV = %q, want the last started replica's %q", got, csvV2)
	}
	explain := "/api/v1/settings/rbac/can?subject=ci-deployer&resource=applications&action=get&object=shop/web"
	waitFor(t, 5*time.Second, "the first replica decides with the second's file", func() bool {
		return call(t, "GET", a.url+explain, tok, "").body["value"] == "yes"
	})
	// Both files set policyCSV: neither replica lets the API change it.
	for _, p := range []*proc{a, b} {
		res := call(t, "PUT", p.url+"/api/v1/settings/rbac", tok, `{"policyCSV":"","policyDefault":"","matchMode":"glob"}`)
		if res.status != 409 {
			t.Errorf("PUT of policyCSV through %s: %v, want 409", p.url, res)
		}
	}
}
