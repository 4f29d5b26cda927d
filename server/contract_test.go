package server_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse"
)

// Answers keep the API's own promises: an account changed with PATCH is
// shown with its API tokens, as GET shows it; an empty list is [] for
// every caller; an over-long introspection body is 413, as every other
// body.
func TestAnswersKeepTheContract(t *testing.T) {
	e := newEnv(t)
	e.createUser("alice")
	tok := e.mint(e.admin, "alice", gatehouse.TokenRequest{Name: "laptop"})
	var a gatehouse.Account
	e.call("PATCH", "/api/v1/account/alice", e.admin, map[string]any{"groups": []string{"devs"}}, 200, &a)
	if len(a.Tokens) != 1 || a.Tokens[0].ID != tok.ID {
		t.Errorf("PATCH answered tokens %+v; want alice's laptop token", a.Tokens)
	}

	e.call("POST", "/api/v1/projects", e.admin, gatehouse.Project{Name: "shop", Roles: []gatehouse.ProjectRole{{
		Name: "ci", Policies: []string{"p, proj:shop:ci, applications, get, shop/*, allow"},
	}}}, 200, nil)
	var role gatehouse.NewToken
	e.call("POST", "/api/v1/projects/shop/roles/ci/token", e.admin, gatehouse.TokenRequest{Name: "ci"}, 200, &role)
	e.remember(role.Token)
	status, body := e.do("GET", "/api/v1/account", role.Token, nil)
	if status != http.StatusOK || strings.TrimSpace(string(body)) != `{"items":[]}` {
		t.Errorf("a role token's account list: %d %s; want 200 {\"items\":[]}", status, body)
	}

	req, _ := http.NewRequest("POST", e.srv.URL+"/api/v1/introspect", strings.NewReader("token="+strings.Repeat("a", 2<<20)))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Authorization", "Bearer "+e.admin)
	if status, body := e.send(req); status != http.StatusRequestEntityTooLarge {
		t.Errorf("a 2 MiB introspection body: %d %s; want 413", status, body)
	}
}
