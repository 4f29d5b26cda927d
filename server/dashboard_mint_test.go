package server_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse"
)

// The token form asks the service whether the user may mint for the owner
// (MintPreview), under the rule minting applies: the form opens exactly
// when Generate could succeed for that owner.
func TestDashboardTokenFormFollowsTheMintingRule(t *testing.T) {
	t.Parallel()
	e := newDashEnv(t, withPolicy("p, role:minter, accounts, update, *, allow\ng, minters, role:minter", ""))
	e.remember("lou-password")
	e.call("POST", "/api/v1/account", e.admin, gatehouse.AccountCreate{
		Name: "lou", Capabilities: []gatehouse.Capability{"login"}, Password: "lou-password",
	}, 200, nil)
	e.createUser("carol")
	e.createUser("mia", "minters")

	lou := newWeb(t, e)
	lou.login("lou", "lou-password")
	if r := lou.get("/user-info"); strings.Contains(r.body, `href="/accounts/lou/tokens/new"`) {
		t.Error("user info offers lou, who lacks apiKey, to generate a token")
	}
	mia := newWeb(t, e)
	mia.login("mia", "mia-password")
	admin := newWeb(t, e)
	admin.login("admin", adminPassword)
	for name, tc := range map[string]struct {
		w      *web
		path   string
		status int
	}{
		"fail/own account without apiKey":     {lou, "/accounts/lou/tokens/new", http.StatusPreconditionFailed},
		"fail/another account without apiKey": {admin, "/accounts/lou/tokens/new", http.StatusPreconditionFailed},
		"fail/no such account":                {admin, "/accounts/ghost/tokens/new", http.StatusNotFound},
		"fail/another account":                {lou, "/accounts/carol/tokens/new", http.StatusForbidden},
		"fail/no such role":                   {admin, "/projects/none/roles/r/tokens/new", http.StatusNotFound},
		"ok/accounts update without get":      {mia, "/accounts/carol/tokens/new", http.StatusOK},
		"ok/own account":                      {mia, "/accounts/mia/tokens/new", http.StatusOK},
	} {
		t.Run(name, func(t *testing.T) {
			if r := tc.w.get(tc.path); r.status != tc.status {
				t.Errorf("GET %s: %d, want %d", tc.path, r.status, tc.status)
			}
			if r := tc.w.post(tc.path, url.Values{"name": {"x"}, "op": {"preview"}}); r.status != tc.status {
				t.Errorf("preview at %s: %d, want %d", tc.path, r.status, tc.status)
			}
		})
	}
	// What the form allowed, Generate does: mia mints for carol.
	tok := mia.generate("/accounts/carol/tokens/new", url.Values{"name": {"by mia"}})
	var info gatehouse.UserInfo
	e.call("GET", "/api/v1/session/userinfo", tok, nil, 200, &info)
	if info.Username != "carol" {
		t.Errorf("token acts as %q, want carol", info.Username)
	}
}
