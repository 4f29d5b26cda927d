package server_test

import (
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse"
)

// TestAdv4ExchangedTokenCannotRevokeRoleTokens: docs/ci.md and
// docs/design.md promise that a token issued by token exchange "cannot
// mint, rotate or revoke tokens, even its own subject's". The API-token
// paths (DELETE .../account/{name}/token[/{id}], rotate, mint) refuse it
// (authorizeTokens); the project role token revocation and break-glass
// revocation do not ask p.exchanged() at all, so an exchanged CI token
// whose subject may update a project revokes that project's role tokens.
func TestAdv4ExchangedTokenCannotRevokeRoleTokens(t *testing.T) {
	te := newTrustEnv(t, withPolicy("p, ci-deployer, applications, *, *, allow\np, ci-deployer, projects, update, shop, allow", ""))
	unscoped := te.githubPolicy("unscoped")
	unscoped.Scopes = nil
	unscoped.Claims["ref"] = gatehouse.ClaimPatterns{"refs/heads/release"}
	te.createPolicy(unscoped)
	c := githubClaims(te.clock.Now())
	c["ref"], c["jti"] = "refs/heads/release", "adv4-release"
	f := exchangeForm(te.is.sign(c))
	f.Set("trust_policy", "unscoped")
	tok := te.exchangeOK(f)

	// Role tokens of shop, minted by the admin.
	var victim, victim2 gatehouse.NewToken
	te.call("POST", "/api/v1/projects/shop/roles/deployer/token", te.admin, gatehouse.TokenRequest{Name: "deploy-bot"}, 200, &victim)
	te.remember(victim.Token)
	te.call("POST", "/api/v1/projects/shop/roles/deployer/token", te.admin, gatehouse.TokenRequest{Name: "deploy-bot-2"}, 200, &victim2)
	te.remember(victim2.Token)

	// The exchanged token revokes one role token by id...
	if s, b := te.do("DELETE", "/api/v1/projects/shop/roles/deployer/token/"+victim.ID, tok, nil); s != 403 {
		t.Errorf("exchanged token revoking a role token: %d %s, want 403 (a token from an exchange cannot revoke tokens)", s, b)
	}
	// ...and every token of the project through break-glass.
	if s, b := te.do("POST", "/api/v1/admin/revoke", tok, gatehouse.BulkRevoke{Project: "shop"}); s != 403 {
		t.Errorf("exchanged token break-glass revoking project shop: %d %s, want 403 (a token from an exchange cannot revoke tokens)", s, b)
	}
	if s, _ := te.do("GET", "/api/v1/session/userinfo", victim2.Token, nil); s != 200 {
		t.Errorf("the role token the exchanged token should not have been able to revoke: userinfo %d, want 200", s)
	}
}

// A token from a token exchange is not rotated, not even by an
// administrator: its successor would be the rotator's, and would outlive
// the trust policy that issued the original (found by an outside attack).
func TestAdv4ExchangedTokenIsNotRotated(t *testing.T) {
	te := newTrustEnv(t, withPolicy("p, ci-deployer, applications, *, *, allow", ""))
	te.createPolicy(te.githubPolicy("deploy"))
	c := githubClaims(te.clock.Now())
	c["jti"] = "adv4-rotate"
	f := exchangeForm(te.is.sign(c))
	f.Set("trust_policy", "deploy")
	tok := te.exchangeOK(f)
	var list gatehouse.List[gatehouse.Token]
	te.call("GET", "/api/v1/account/ci-deployer/token", te.admin, nil, 200, &list)
	id := ""
	for _, tk := range list.Items {
		if strings.HasPrefix(tk.CreatedBy, gatehouse.TrustCreatorPrefix) {
			id = tk.ID
		}
	}
	if id == "" {
		t.Fatalf("no exchanged token among %+v", list.Items)
	}
	if s, b := te.do("POST", "/api/v1/account/ci-deployer/token/"+id+"/rotate", te.admin, gatehouse.RotateRequest{}); s != 412 || !strings.Contains(string(b), "token exchange") {
		t.Errorf("the admin rotating an exchanged token: %d %s, want 412", s, b)
	}
	if s, _ := te.do("GET", "/api/v1/session/userinfo", tok, nil); s != 200 {
		t.Errorf("the exchanged token after the refused rotation: userinfo %d, want 200", s)
	}
	te.call("GET", "/api/v1/account/ci-deployer/token", te.admin, nil, 200, &list)
	if len(list.Items) != 1 {
		t.Errorf("%d tokens after the refused rotation, want the one exchanged", len(list.Items))
	}
}
