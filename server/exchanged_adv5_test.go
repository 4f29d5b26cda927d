package server_test

import (
	"testing"

	"github.com/gatehouse/gatehouse"
)

// TestAdv5ExchangedTokenRevokesRoleTokensByEditingTheProject: docs/ci.md
// promises a token issued by token exchange "cannot mint, rotate or
// revoke tokens, even its own subject's (API tokens, project role tokens,
// break-glass)", and DeleteRoleToken and BulkRevoke now refuse it. With
// the same permission those refusals are about (projects, update, shop),
// the exchanged token edits the project instead: a PUT without the role
// revokes every token of the role ("role deleted"), and a second PUT puts
// the role back as it was. The project ends as it began; its role tokens
// are gone, revoked by the exchanged token.
func TestAdv5ExchangedTokenRevokesRoleTokensByEditingTheProject(t *testing.T) {
	te := newTrustEnv(t, withPolicy("p, ci-deployer, applications, *, *, allow\np, ci-deployer, projects, update, shop, allow\np, ci-deployer, projects, get, shop, allow", ""))
	unscoped := te.githubPolicy("unscoped")
	unscoped.Scopes = nil
	unscoped.Claims["ref"] = gatehouse.ClaimPatterns{"refs/heads/release"}
	te.createPolicy(unscoped)
	c := githubClaims(te.clock.Now())
	c["ref"], c["jti"] = "refs/heads/release", "adv5-release"
	f := exchangeForm(te.is.sign(c))
	f.Set("trust_policy", "unscoped")
	tok := te.exchangeOK(f)

	var victim gatehouse.NewToken
	te.call("POST", "/api/v1/projects/shop/roles/deployer/token", te.admin, gatehouse.TokenRequest{Name: "deploy-bot"}, 200, &victim)
	te.remember(victim.Token)

	// The direct way is refused (the adv4 fix)...
	if s, _ := te.do("DELETE", "/api/v1/projects/shop/roles/deployer/token/"+victim.ID, tok, nil); s != 403 {
		t.Fatalf("DELETE role token with the exchanged token: %d, want 403", s)
	}
	// ...the project edit is not.
	var shop gatehouse.Project
	te.call("GET", "/api/v1/projects/shop", te.admin, nil, 200, &shop)
	without := shop
	without.Roles = nil
	s1, b1 := te.do("PUT", "/api/v1/projects/shop", tok, without)
	s2, b2 := te.do("PUT", "/api/v1/projects/shop", tok, gatehouse.Project{Name: shop.Name, Description: shop.Description, Roles: shop.Roles})
	t.Logf("exchanged token: PUT without the role %d %s; PUT with it again %d %s", s1, b1, s2, b2)
	if s, _ := te.do("GET", "/api/v1/session/userinfo", victim.Token, nil); s != 200 {
		t.Errorf("the role token of shop/deployer after the exchanged token's two project edits: userinfo %d, want 200 (a token from an exchange cannot revoke tokens)", s)
	}
	for _, ev := range eventsOf(te.env, gatehouse.EventTokenRevoked) {
		if ev.TokenID == victim.ID {
			t.Logf("revocation event: actor %q with token %s, detail %q", ev.Actor, ev.TokenID, ev.Detail)
		}
	}
}

// The same through an account: DeleteToken and RevokeAll refuse the
// exchanged token (authorizeTokens), though its subject holds accounts,
// update, bot, the permission they ask. With that same permission, a
// PATCH taking bot's apiKey capability away and a second giving it back
// revoke every API token of bot ("apiKey capability removed"): the
// account ends as it began, its tokens revoked by the exchanged token.
func TestAdv5ExchangedTokenRevokesAPITokensByEditingTheAccount(t *testing.T) {
	te := newTrustEnv(t, withPolicy("p, ci-deployer, applications, *, *, allow\np, ci-deployer, accounts, update, bot, allow", ""))
	unscoped := te.githubPolicy("unscoped")
	unscoped.Scopes = nil
	unscoped.Claims["ref"] = gatehouse.ClaimPatterns{"refs/heads/release"}
	te.createPolicy(unscoped)
	c := githubClaims(te.clock.Now())
	c["ref"], c["jti"] = "refs/heads/release", "adv5-release-2"
	f := exchangeForm(te.is.sign(c))
	f.Set("trust_policy", "unscoped")
	tok := te.exchangeOK(f)

	te.call("POST", "/api/v1/account", te.admin, gatehouse.AccountCreate{Name: "bot", Capabilities: []gatehouse.Capability{gatehouse.CapAPIKey}}, 200, nil)
	var victim gatehouse.NewToken
	te.call("POST", "/api/v1/account/bot/token", te.admin, gatehouse.TokenRequest{Name: "bot-key"}, 200, &victim)
	te.remember(victim.Token)

	if s, _ := te.do("DELETE", "/api/v1/account/bot/token/"+victim.ID, tok, nil); s != 403 {
		t.Fatalf("DELETE bot's token with the exchanged token: %d, want 403", s)
	}
	none, key := []gatehouse.Capability{}, []gatehouse.Capability{gatehouse.CapAPIKey}
	s1, b1 := te.do("PATCH", "/api/v1/account/bot", tok, gatehouse.AccountPatch{Capabilities: &none})
	s2, b2 := te.do("PATCH", "/api/v1/account/bot", tok, gatehouse.AccountPatch{Capabilities: &key})
	t.Logf("exchanged token: PATCH capabilities [] %d %s; PATCH [apiKey] %d %s", s1, b1, s2, b2)
	if s, _ := te.do("GET", "/api/v1/session/userinfo", victim.Token, nil); s != 200 {
		t.Errorf("bot's API token after the exchanged token's two account edits: userinfo %d, want 200 (a token from an exchange cannot revoke tokens)", s)
	}
}
