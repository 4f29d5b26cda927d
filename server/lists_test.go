package server_test

import (
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/server"
)

// TestEmptyListsAreEmptyArrays walks every GET route of the API in the
// route table on a fresh server whose objects have nothing in their
// lists (a project with a role without policies, groups or tokens, an
// application never synced, an account without tokens, ...), as admin and
// as a user whom the policy shows nothing, and checks that no answer
// holds a JSON null anywhere: an empty list is [], and a value that may
// be absent is left out. A new GET route is covered by itself.
func TestEmptyListsAreEmptyArrays(t *testing.T) {
	e := newEnv(t)
	e.createUser("nobody")
	nobody := e.login("nobody", "nobody-password")
	e.call("POST", "/api/v1/projects", e.admin, gatehouse.Project{Name: "empty", Roles: []gatehouse.ProjectRole{{Name: "r"}}}, 200, nil)
	e.call("POST", "/api/v1/applications", e.admin, app("web", "empty"), 200, nil)
	e.call("POST", "/api/v1/trust-policies", e.admin, gatehouse.TrustPolicy{Name: "ci", Issuer: "https://ci.example",
		JWKSURL: "https://ci.example/jwks", Audiences: []string{"https://gatehouse.example"}, Account: "nobody",
		Claims: map[string]gatehouse.ClaimPatterns{"repository_id": {"1"}}}, 200, nil)
	e.call("POST", "/api/v1/webhooks", e.admin, webhookFixture(t, "ops"), 200, nil)

	// Path values by wildcard, as the route table names them.
	values := map[string]string{"name": "", "role": "r", "resource": "applications", "action": "get", "object...": "empty/web"}
	valueFor := func(path, wildcard, caller string) string {
		if wildcard != "name" {
			return values[wildcard]
		}
		switch {
		case strings.HasPrefix(path, "/api/v1/account/"):
			return caller // one's own account: every caller may see it
		case strings.HasPrefix(path, "/api/v1/projects/"):
			return "empty"
		case strings.HasPrefix(path, "/api/v1/applications/"):
			return "web"
		case strings.HasPrefix(path, "/api/v1/trust-policies/"):
			return "ci"
		case strings.HasPrefix(path, "/api/v1/webhooks/"):
			return "ops"
		}
		t.Fatalf("no value for {name} in %s: add one", path)
		return ""
	}
	// Queries that a route needs to answer at all.
	queries := map[string]string{"/api/v1/settings/rbac/can": "?subject=nobody&resource=applications&action=get&object=empty/web"}

	wildcard := regexp.MustCompile(`\{([^}]*)\}`)
	lists := 0
	for _, p := range server.RoutePatterns() {
		method, path, ok := strings.Cut(p, " ")
		if !ok || method != "GET" || !strings.HasPrefix(path, "/api/") {
			continue
		}
		for _, who := range []struct{ name, tok string }{{"admin", e.admin}, {"nobody", nobody}} {
			concrete := wildcard.ReplaceAllStringFunc(path, func(w string) string {
				return valueFor(path, strings.Trim(w, "{}"), who.name)
			}) + queries[path]
			status, body := e.do("GET", concrete, who.tok, nil)
			if status != 200 {
				if who.name == "admin" {
					t.Errorf("GET %s as admin: %d %s, want 200", concrete, status, body)
				}
				continue // a refusal is an error body, tested elsewhere
			}
			var v any
			if err := json.Unmarshal(body, &v); err != nil {
				continue // not JSON (none yet under /api/ but would be skipped)
			}
			if m, ok := v.(map[string]any); ok {
				if _, isList := m["items"]; isList {
					lists++
				}
			}
			for _, where := range nulls(v, "") {
				t.Errorf("GET %s as %s: %s is null, want [] (or the field left out)", p, who.name, where)
			}
		}
	}
	if lists < 10 {
		t.Errorf("only %d list answers checked; is the walk reaching the list routes?", lists)
	}
}

// nulls returns the JSON paths of every null in v.
func nulls(v any, at string) []string {
	var out []string
	switch x := v.(type) {
	case nil:
		return []string{orRoot(at)}
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			out = append(out, nulls(x[k], at+"."+k)...)
		}
	case []any:
		for i, e := range x {
			out = append(out, nulls(e, fmt.Sprintf("%s[%d]", at, i))...)
		}
	}
	return out
}

func orRoot(at string) string {
	if at == "" {
		return "the answer"
	}
	return at
}

// TestAccountListShowsTokens: each listed account carries its API tokens,
// the same ones its GET shows (sessions are not listed in either), and an
// account without any has [].
func TestAccountListShowsTokens(t *testing.T) {
	e := newEnv(t)
	e.createUser("ivy")
	e.createUser("bare")
	a := e.mint(e.admin, "ivy", gatehouse.TokenRequest{Name: "one"})
	b := e.mint(e.admin, "ivy", gatehouse.TokenRequest{Name: "two"})
	var list gatehouse.List[gatehouse.Account]
	e.call("GET", "/api/v1/account", e.admin, nil, 200, &list)
	byName := map[string]gatehouse.Account{}
	for _, acc := range list.Items {
		byName[acc.Name] = acc
	}
	var got gatehouse.Account
	e.call("GET", "/api/v1/account/ivy", e.admin, nil, 200, &got)
	ids := func(ts []gatehouse.Token) []string {
		out := []string{}
		for _, t := range ts {
			out = append(out, t.ID)
		}
		sort.Strings(out)
		return out
	}
	want := []string{a.ID, b.ID}
	sort.Strings(want)
	if l, g := ids(byName["ivy"].Tokens), ids(got.Tokens); !slices.Equal(l, want) || !slices.Equal(g, want) {
		t.Errorf("ivy's tokens: list %v, get %v; want %v in both", l, g, want)
	}
	if toks := byName["bare"].Tokens; toks == nil || len(toks) != 0 {
		t.Errorf("bare's tokens in the list = %#v, want []", toks)
	}
	// admin has a session only: not an API token.
	if toks := byName["admin"].Tokens; len(toks) != 0 {
		t.Errorf("admin's tokens in the list = %+v, want none (sessions are not listed)", toks)
	}
}
