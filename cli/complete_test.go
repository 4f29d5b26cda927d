package cli

import (
	"slices"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse"
)

// completions returns the candidates a `__complete` run printed (the
// lines before cobra's ":<directive>" line), each without its
// description, and the directive line.
func completions(t *testing.T, res result) ([]string, string) {
	t.Helper()
	mustSucceed(t, res)
	lines := strings.Split(strings.TrimSuffix(res.stdout, "\n"), "\n")
	if len(lines) == 0 || !strings.HasPrefix(lines[len(lines)-1], ":") {
		t.Fatalf("__complete printed %q, want candidates and a directive", res.stdout)
	}
	var out []string
	for _, l := range lines[:len(lines)-1] {
		id, _, _ := strings.Cut(l, "\t")
		out = append(out, id)
	}
	return out, lines[len(lines)-1]
}

// TestCompleteTokenIDs: TAB after `account delete-token` or `rotate-token`
// offers the ids of the account's API tokens from the real server, named,
// filtered by what is typed, and never files; with the server down it
// offers nothing and says nothing.
func TestCompleteTokenIDs(t *testing.T) {
	api := newRealAPI(t, false, "")
	run, _ := api.loggedIn(t)
	mint := func(args ...string) string {
		res := run.run(t, append([]string{"account", "generate-token"}, args...)...)
		mustSucceed(t, res)
		return strings.TrimSpace(res.stdout)
	}
	mint("--name", "laptop")
	mint("--name", "ci")
	admin := api.adminClient(t)
	mine, err := admin.ListTokens(t.Context(), "admin")
	if err != nil || len(mine) != 2 {
		t.Fatalf("admin's tokens: %+v, %v", mine, err)
	}
	var ids []string
	for _, tk := range mine {
		ids = append(ids, tk.ID)
	}
	slices.Sort(ids)

	for _, sub := range []string{"delete-token", "rotate-token"} {
		res := run.run(t, "__complete", "account", sub, "")
		got, directive := completions(t, res)
		slices.Sort(got)
		if !slices.Equal(got, ids) || directive != ":4" {
			t.Errorf("__complete account %s '': %v %s, want %v and :4 (no files)", sub, got, directive, ids)
		}
		if !strings.Contains(res.stdout, "\tlaptop\n") {
			t.Errorf("__complete account %s does not describe a token by its name:\n%s", sub, res.stdout)
		}
	}
	// What is typed narrows the candidates.
	got, _ := completions(t, run.run(t, "__complete", "account", "delete-token", ids[0][:8]))
	if len(got) != 1 || got[0] != ids[0] {
		t.Errorf("__complete with prefix %s: %v, want %s", ids[0][:8], got, ids[0])
	}
	// Another account's tokens with --account.
	if _, err := admin.CreateAccount(t.Context(), gatehouse.AccountCreate{Name: "ci", Capabilities: []gatehouse.Capability{gatehouse.CapAPIKey}}); err != nil {
		t.Fatal(err)
	}
	mint("--account", "ci", "--name", "deploy")
	got, _ = completions(t, run.run(t, "__complete", "account", "delete-token", "--account", "ci", ""))
	if len(got) != 1 || slices.Contains(ids, got[0]) {
		t.Errorf("__complete --account ci: %v, want ci's one token", got)
	}
	// The ID is the only argument.
	if got, _ := completions(t, run.run(t, "__complete", "account", "delete-token", ids[0], "")); len(got) != 0 {
		t.Errorf("a second argument is completed: %v", got)
	}

	// The server is down: no candidates, no message, success.
	api.srv.Close()
	res := run.run(t, "__complete", "account", "delete-token", "")
	if got, directive := completions(t, res); len(got) != 0 || directive != ":4" {
		t.Errorf("server down: %v %s, want nothing", got, directive)
	}
	if strings.Contains(res.stderr, "error") {
		t.Errorf("server down: stderr %q, want no error", res.stderr)
	}
}

// TestCompleteRoleTokenIDs: `proj role delete-token` completes the
// project, then the role, then the role's token ids.
func TestCompleteRoleTokenIDs(t *testing.T) {
	api := newRealAPI(t, false, "")
	run, _ := api.loggedIn(t)
	admin := api.adminClient(t)
	if _, err := admin.CreateProject(t.Context(), gatehouse.Project{Name: "shop", Roles: []gatehouse.ProjectRole{{Name: "deployer"}}}); err != nil {
		t.Fatal(err)
	}
	nt, err := admin.CreateRoleToken(t.Context(), "shop", "deployer", gatehouse.TokenRequest{Name: "ci"})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{""}, "shop"},
		{[]string{"shop", ""}, "deployer"},
		{[]string{"shop", "deployer", ""}, nt.ID},
	} {
		got, _ := completions(t, run.run(t, append([]string{"__complete", "proj", "role", "delete-token"}, c.args...)...))
		if len(got) != 1 || got[0] != c.want {
			t.Errorf("__complete proj role delete-token %q: %v, want %s", c.args, got, c.want)
		}
	}
}

// TestCompleteContextNames: `context`, `logout` and --context complete the
// config's context names, with no server involved.
func TestCompleteContextNames(t *testing.T) {
	r, path := newRun(t)
	writeConfig(t, path, config{CurrentContext: "prod", Contexts: []configContext{
		{Name: "prod", Server: "gatehouse.example.com:443"},
		{Name: "local", Server: "http://127.0.0.1:8080"},
		{Name: "lab", Server: "lab.example.com"},
	}})
	for _, args := range [][]string{
		{"context", "l"},
		{"logout", "l"},
		{"account", "list", "--context", "l"},
	} {
		res := r.run(t, append([]string{"__complete"}, args...)...)
		got, directive := completions(t, res)
		slices.Sort(got)
		if !slices.Equal(got, []string{"lab", "local"}) || directive != ":4" {
			t.Errorf("__complete %q: %v %s, want [lab local] :4", args, got, directive)
		}
		if !strings.Contains(res.stdout, "local\thttp://127.0.0.1:8080\n") {
			t.Errorf("__complete %q does not describe a context by its server:\n%s", args, res.stdout)
		}
	}
}
