package cli

import (
	"slices"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse"
)

// TestCompleteAccountNames: wherever a command takes an account name (the
// NAME of `account enable`, `disable` and `delete`; every --account flag;
// audit list's --actor), TAB offers the accounts of the real server,
// described by their capabilities, filtered by what is typed, and never
// files; with the server down it offers nothing and says nothing.
func TestCompleteAccountNames(t *testing.T) {
	api := newRealAPI(t, false, "")
	run, _ := api.loggedIn(t)
	admin := api.adminClient(t)
	for _, a := range []gatehouse.AccountCreate{
		{Name: "ci-deployer", Capabilities: []gatehouse.Capability{gatehouse.CapAPIKey}},
		{Name: "carol", Capabilities: []gatehouse.Capability{gatehouse.CapLogin}, Password: "carol-password-1"},
	} {
		if _, err := admin.CreateAccount(t.Context(), a); err != nil {
			t.Fatal(err)
		}
	}
	off := false
	if _, err := admin.UpdateAccount(t.Context(), "carol", gatehouse.AccountPatch{Enabled: &off}); err != nil {
		t.Fatal(err)
	}

	all := []string{"admin", "carol", "ci-deployer"}
	tests := []struct {
		args []string // after __complete
		want []string
	}{
		{[]string{"account", "delete", ""}, all},
		{[]string{"account", "enable", "c"}, []string{"carol", "ci-deployer"}},
		{[]string{"account", "disable", "ci"}, []string{"ci-deployer"}},
		{[]string{"account", "delete", "carol", ""}, nil}, // one NAME only
		{[]string{"account", "get", "--account", ""}, all},
		{[]string{"account", "list-tokens", "--account", "a"}, []string{"admin"}},
		{[]string{"account", "generate-token", "-a", "ci"}, []string{"ci-deployer"}},
		{[]string{"account", "update-password", "--account", ""}, all},
		{[]string{"account", "delete-token", "--account", ""}, all},
		{[]string{"account", "rotate-token", "--account", ""}, all},
		{[]string{"account", "revoke-all", "--account", ""}, all},
		{[]string{"admin", "revoke", "--account", ""}, all},
		{[]string{"audit", "list", "--account", "c"}, []string{"carol", "ci-deployer"}},
		{[]string{"audit", "list", "--actor", ""}, all},
		{[]string{"account", "delete", "nobody"}, nil},
	}
	for _, tt := range tests {
		res := run.run(t, append([]string{"__complete"}, tt.args...)...)
		got, directive := completions(t, res)
		slices.Sort(got)
		if !slices.Equal(got, tt.want) || directive != ":4" {
			t.Errorf("__complete %q: %v %s, want %v and :4 (no files)", tt.args, got, directive, tt.want)
		}
	}
	res := run.run(t, "__complete", "account", "delete", "")
	for _, want := range []string{"ci-deployer\tapiKey\n", "carol\tlogin, disabled\n"} {
		if !strings.Contains(res.stdout, want) {
			t.Errorf("__complete account delete does not describe an account as %q:\n%s", want, res.stdout)
		}
	}

	// The server is down: no candidates, no message, success.
	api.srv.Close()
	res = run.run(t, "__complete", "account", "delete", "")
	if got, directive := completions(t, res); len(got) != 0 || directive != ":4" {
		t.Errorf("server down: %v %s, want nothing", got, directive)
	}
	if strings.Contains(res.stderr, "error") {
		t.Errorf("server down: stderr %q, want no error", res.stderr)
	}
}
