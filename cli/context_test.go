package cli

import (
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/client"
)

// sessionWorks asks the real server, outside the CLI, whether tok is still
// accepted.
func (r *realAPI) sessionWorks(t *testing.T, tok string) bool {
	t.Helper()
	c, err := client.New(r.URL, client.WithHTTPClient(r.srv.Client()), client.WithToken(tok))
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.UserInfo(t.Context())
	switch {
	case err == nil:
		return true
	case gatehouse.IsCode(err, gatehouse.EUNAUTHORIZED):
		return false
	}
	t.Fatalf("userinfo: %v", err)
	return false
}

// TestContextDeleteRevokesTheSession: deleting a context revokes its
// session on the server, so the token that leaves the config file is
// dead, not merely forgotten.
func TestContextDeleteRevokesTheSession(t *testing.T) {
	api := newRealAPI(t, false, "")
	run, path := api.loggedIn(t)
	name := api.URL
	tok := readConfig(t, path).Contexts[0].Token
	if !api.sessionWorks(t, tok) {
		t.Fatal("the fresh session is refused")
	}
	res := run.run(t, "context", name, "--delete")
	mustSucceed(t, res)
	if want := "Session of context '" + name + "' revoked\nContext '" + name + "' deleted\n"; res.stdout != want {
		t.Errorf("context --delete printed %q, want %q", res.stdout, want)
	}
	if api.sessionWorks(t, tok) {
		t.Error("the deleted context's session still works")
	}
	if cfg := readConfig(t, path); len(cfg.Contexts) != 0 || cfg.CurrentContext != "" {
		t.Errorf("config after delete: %+v", cfg)
	}
}

// TestContextDeleteOfAnEndedSession: a session the server already refuses
// (logged out elsewhere) is dead anyway: the context goes without --force.
func TestContextDeleteOfAnEndedSession(t *testing.T) {
	api := newRealAPI(t, false, "")
	run, path := api.loggedIn(t)
	tok := readConfig(t, path).Contexts[0].Token
	c, err := client.New(api.URL, client.WithHTTPClient(api.srv.Client()), client.WithToken(tok))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Logout(t.Context()); err != nil {
		t.Fatal(err)
	}
	res := run.run(t, "context", api.URL, "--delete")
	mustSucceed(t, res)
	if !strings.Contains(res.stdout, "had already ended") || !strings.HasSuffix(res.stdout, "Context '"+api.URL+"' deleted\n") {
		t.Errorf("context --delete printed %q", res.stdout)
	}
	if cfg := readConfig(t, path); len(cfg.Contexts) != 0 {
		t.Errorf("the context is still there: %+v", cfg)
	}
}

// TestContextDeleteWhenTheServerIsDown: a session that cannot be revoked
// keeps its context (so it can be revoked later) unless --force, which
// deletes it and warns that the session lives on.
func TestContextDeleteWhenTheServerIsDown(t *testing.T) {
	api := newRealAPI(t, false, "")
	run, path := api.loggedIn(t)
	tok := readConfig(t, path).Contexts[0].Token
	api.srv.Close()

	res := run.run(t, "context", api.URL, "--delete")
	mustFail(t, res, "kept: its session was not revoked")
	if !strings.Contains(res.stderr, "--force") {
		t.Errorf("stderr %q does not say how to delete anyway", res.stderr)
	}
	if cfg := readConfig(t, path); len(cfg.Contexts) != 1 || cfg.Contexts[0].Token != tok {
		t.Fatalf("a failed revocation changed the config: %+v", cfg)
	}

	res = run.run(t, "context", api.URL, "--delete", "--force")
	mustSucceed(t, res)
	if res.stdout != "Context '"+api.URL+"' deleted\n" {
		t.Errorf("context --delete --force printed %q", res.stdout)
	}
	if !strings.HasPrefix(res.stderr, "warning: the session of context '"+api.URL+"' was not revoked") {
		t.Errorf("stderr %q, want a warning that the session was not revoked", res.stderr)
	}
	if cfg := readConfig(t, path); len(cfg.Contexts) != 0 {
		t.Errorf("--force kept the context: %+v", cfg)
	}
}
