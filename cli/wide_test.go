package cli

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse"
)

// tableRows splits a table into its rows of cells (two or more spaces
// apart, as tabwriter pads them).
func tableRows(out string) [][]string {
	var rows [][]string
	for _, l := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
		var cells []string
		for _, c := range strings.Split(l, "  ") {
			if c = strings.TrimSpace(c); c != "" {
				cells = append(cells, c)
			}
		}
		rows = append(rows, cells)
	}
	return rows
}

// TestWideTokenList: `account list-tokens -o wide` adds the scopes, who
// created the token and where it was last used from, against the real
// server; the plain table keeps its five columns.
func TestWideTokenList(t *testing.T) {
	api := newRealAPI(t, false, "")
	run, _ := api.loggedIn(t)
	res := run.run(t, "account", "generate-token", "--name", "deploy", "--scope", "applications:sync:shop/*", "--scope", "applications:get:shop/*")
	mustSucceed(t, res)
	tok := strings.TrimSpace(res.stdout)
	// Use it once, so that it has a last use.
	ci, _ := newRun(t)
	ci.env["GATEHOUSE_SERVER"], ci.env["GATEHOUSE_AUTH_TOKEN"] = api.URL, tok
	mustSucceed(t, ci.run(t, "account", "get-user-info"))
	api.svc.Flush(t.Context())

	res = run.run(t, "account", "list-tokens")
	mustSucceed(t, res)
	if rows := tableRows(res.stdout); !slices.Equal(rows[0], []string{"ID", "NAME", "ISSUED", "EXPIRES", "LAST USED"}) {
		t.Errorf("list-tokens header %q", rows[0])
	}
	res = run.run(t, "account", "list-tokens", "-o", "wide")
	mustSucceed(t, res)
	rows := tableRows(res.stdout)
	if want := []string{"ID", "NAME", "ISSUED", "EXPIRES", "LAST USED", "SCOPES", "CREATED BY", "LAST USED FROM"}; !slices.Equal(rows[0], want) {
		t.Fatalf("list-tokens -o wide header %q, want %q", rows[0], want)
	}
	if len(rows) != 2 || len(rows[1]) != 8 {
		t.Fatalf("list-tokens -o wide:\n%s", res.stdout)
	}
	got := rows[1][5:]
	if want := []string{"applications:sync:shop/*,applications:get:shop/*", "admin", "127.0.0.1"}; !slices.Equal(got, want) {
		t.Errorf("wide columns %q, want %q", got, want)
	}
	// Wide is for list commands: elsewhere it is an unknown format.
	mustFail(t, run.run(t, "account", "get", "-o", "wide"), `unknown output format "wide"`)
	mustFail(t, run.run(t, "account", "list-tokens", "-o", "wider"), "want table, wide, json or yaml")
}

// TestAccountListShowsTokens: `account list -o json` shows each account's
// API tokens (not [] for an account that has some), as `account get` does;
// -o wide counts them.
func TestAccountListShowsTokens(t *testing.T) {
	api := newRealAPI(t, false, "")
	run, _ := api.loggedIn(t)
	admin := api.adminClient(t)
	if _, err := admin.CreateAccount(t.Context(), gatehouse.AccountCreate{Name: "ci", Capabilities: []gatehouse.Capability{gatehouse.CapAPIKey}}); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"one", "two"} {
		mustSucceed(t, run.run(t, "account", "generate-token", "--account", "ci", "--name", name))
	}
	res := run.run(t, "account", "list", "-o", "json")
	mustSucceed(t, res)
	var list []gatehouse.Account
	if err := json.Unmarshal([]byte(res.stdout), &list); err != nil {
		t.Fatal(err)
	}
	var ci gatehouse.Account
	for _, acc := range list {
		if acc.Name == "ci" {
			ci = acc
		}
	}
	var names []string
	for _, tk := range ci.Tokens {
		names = append(names, tk.Name)
	}
	slices.Sort(names)
	if !slices.Equal(names, []string{"one", "two"}) {
		t.Errorf("account list -o json: ci's tokens %q, want one and two", names)
	}

	res = run.run(t, "account", "list", "-o", "wide")
	mustSucceed(t, res)
	rows := tableRows(res.stdout)
	if want := []string{"NAME", "ENABLED", "CAPABILITIES", "GROUPS", "SOURCE", "CREATED", "TOKENS"}; !slices.Equal(rows[0], want) {
		t.Fatalf("account list -o wide header %q, want %q", rows[0], want)
	}
	for _, r := range rows[1:] {
		if want := map[string]string{"admin": "0", "ci": "2"}[r[0]]; r[len(r)-1] != want || r[4] != "local" {
			t.Errorf("account list -o wide row %q: want source local and %s tokens", r, want)
		}
	}
}
