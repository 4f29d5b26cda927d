package server_test

import (
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse"
)

// A token from a token exchange mints, rotates and revokes no token, by
// any path (docs/ci.md); each of these was a way around that, found by an
// outside attack.

// exchangedUnscoped exchanges a pipeline ID token (jti) under an unscoped
// trust policy for ci-deployer and returns the Gatehouse token.
func exchangedUnscoped(te *trustEnv, jti string) string {
	te.t.Helper()
	unscoped := te.githubPolicy("unscoped")
	unscoped.Scopes = nil
	unscoped.Claims["ref"] = gatehouse.ClaimPatterns{"refs/heads/release"}
	te.createPolicy(unscoped)
	c := githubClaims(te.clock.Now())
	c["ref"], c["jti"] = "refs/heads/release", jti
	f := exchangeForm(te.is.sign(c))
	f.Set("trust_policy", "unscoped")
	return te.exchangeOK(f)
}

// An exchanged token whose subject may update a project revokes none of
// its role tokens, by id or through break-glass.
func TestExchangedTokenCannotRevokeRoleTokens(t *testing.T) {
	te := newTrustEnv(t, withPolicy("p, ci-deployer, applications, *, *, allow\np, ci-deployer, projects, update, shop, allow", ""))
	tok := exchangedUnscoped(te, "adv4-release")

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
// the trust policy that issued the original.
func TestExchangedTokenIsNotRotated(t *testing.T) {
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

// An edit that would revoke tokens is refused whole to an exchanged
// token, though its subject may make it: a PUT of the project without a
// role would revoke the role's tokens ("role deleted").
func TestExchangedTokenCannotRevokeByEditingTheProject(t *testing.T) {
	te := newTrustEnv(t, withPolicy("p, ci-deployer, applications, *, *, allow\np, ci-deployer, projects, update, shop, allow\np, ci-deployer, projects, get, shop, allow", ""))
	tok := exchangedUnscoped(te, "adv5-release")

	var victim gatehouse.NewToken
	te.call("POST", "/api/v1/projects/shop/roles/deployer/token", te.admin, gatehouse.TokenRequest{Name: "deploy-bot"}, 200, &victim)
	te.remember(victim.Token)

	// The direct way is refused...
	if s, _ := te.do("DELETE", "/api/v1/projects/shop/roles/deployer/token/"+victim.ID, tok, nil); s != 403 {
		t.Fatalf("DELETE role token with the exchanged token: %d, want 403", s)
	}
	// ...and so is the edit that would do it.
	var shop gatehouse.Project
	te.call("GET", "/api/v1/projects/shop", te.admin, nil, 200, &shop)
	without := shop
	without.Roles = nil
	if s, b := te.do("PUT", "/api/v1/projects/shop", tok, without); s != 403 {
		t.Errorf("the exchanged token removing the role: %d %s, want 403 (it would revoke the role's tokens)", s, b)
	}
	var after gatehouse.Project
	te.call("GET", "/api/v1/projects/shop", te.admin, nil, 200, &after)
	if len(after.Roles) != len(shop.Roles) {
		t.Errorf("the refused edit changed the project: roles %+v, were %+v", after.Roles, shop.Roles)
	}
	if s, _ := te.do("GET", "/api/v1/session/userinfo", victim.Token, nil); s != 200 {
		t.Errorf("the role token of shop/deployer after the exchanged token's two project edits: userinfo %d, want 200 (a token from an exchange cannot revoke tokens)", s)
	}
	for _, ev := range eventsOf(te.env, gatehouse.EventTokenRevoked) {
		if ev.TokenID == victim.ID {
			t.Errorf("revocation event: actor %q with token %s, detail %q", ev.Actor, ev.TokenID, ev.Detail)
		}
	}
}

// The same through an account: taking bot's apiKey capability away would
// revoke its API tokens, so it is refused; an edit that revokes nothing
// is not.
func TestExchangedTokenCannotRevokeByEditingTheAccount(t *testing.T) {
	te := newTrustEnv(t, withPolicy("p, ci-deployer, applications, *, *, allow\np, ci-deployer, accounts, update, bot, allow", ""))
	tok := exchangedUnscoped(te, "adv5-release-2")

	te.call("POST", "/api/v1/account", te.admin, gatehouse.AccountCreate{Name: "bot", Capabilities: []gatehouse.Capability{gatehouse.CapAPIKey}}, 200, nil)
	var victim gatehouse.NewToken
	te.call("POST", "/api/v1/account/bot/token", te.admin, gatehouse.TokenRequest{Name: "bot-key"}, 200, &victim)
	te.remember(victim.Token)

	if s, _ := te.do("DELETE", "/api/v1/account/bot/token/"+victim.ID, tok, nil); s != 403 {
		t.Fatalf("DELETE bot's token with the exchanged token: %d, want 403", s)
	}
	none, key := []gatehouse.Capability{}, []gatehouse.Capability{gatehouse.CapAPIKey}
	if s, b := te.do("PATCH", "/api/v1/account/bot", tok, gatehouse.AccountPatch{Capabilities: &none}); s != 403 {
		t.Errorf("the exchanged token taking bot's apiKey away: %d %s, want 403 (it would revoke bot's tokens)", s, b)
	}
	if s, b := te.do("PATCH", "/api/v1/account/bot", tok, gatehouse.AccountPatch{Capabilities: &key}); s != 200 {
		t.Errorf("the exchanged token editing bot without revoking anything: %d %s, want 200", s, b)
	}
	if s, _ := te.do("GET", "/api/v1/session/userinfo", victim.Token, nil); s != 200 {
		t.Errorf("bot's API token after the exchanged token's two account edits: userinfo %d, want 200 (a token from an exchange cannot revoke tokens)", s)
	}
}

// An exchanged token whose subject may manage trust policies and update a
// project saves no trust policy for one of the project's roles, new or
// existing: the policy would mint role tokens for whoever holds the key it
// names, long after the exchanged token's minutes.
func TestExchangedTokenSavesNoTrustPolicy(t *testing.T) {
	te := newTrustEnv(t, withPolicy("p, ci-deployer, applications, *, *, allow\np, ci-deployer, projects, *, shop, allow\np, ci-deployer, settings, *, trust, allow", ""))
	existing := te.githubPolicy("shop-role")
	existing.Account, existing.Project, existing.Role, existing.Scopes = "", "shop", "deployer", nil
	te.createPolicy(existing)
	tok := exchangedUnscoped(te, "adv-trust-save")

	planted := te.githubPolicy("planted")
	planted.Account, planted.Project, planted.Role, planted.Scopes = "", "shop", "deployer", nil
	planted.Claims = map[string]gatehouse.ClaimPatterns{"repository_id": {"123456"}, "ref": {"refs/heads/*"}}
	if s, b := te.do("POST", "/api/v1/trust-policies", tok, planted); s != 403 || !strings.Contains(string(b), "token exchange") {
		t.Errorf("exchanged token creating a role's trust policy: %d %s, want 403", s, b)
	}
	existing.Claims["ref"] = gatehouse.ClaimPatterns{"refs/heads/*"}
	if s, b := te.do("PUT", "/api/v1/trust-policies/shop-role", tok, existing); s != 403 {
		t.Errorf("exchanged token widening a role's trust policy: %d %s, want 403", s, b)
	}
	if s, _ := te.do("GET", "/api/v1/trust-policies/planted", te.admin, nil); s != 404 {
		t.Errorf("the refused policy: GET %d, want 404", s)
	}
}

// An exchanged token whose subject may change trust policies revokes no
// token by deleting one: the tokens issued through it (other pipelines'
// runs) stay. Found by an outside attack: the deletion revoked them
// through revokeIssuedTx, around removeTx's refusal.
func TestExchangedTokenCannotRevokeByDeletingATrustPolicy(t *testing.T) {
	te := newTrustEnv(t, withPolicy("p, ci-deployer, applications, *, *, allow\np, ci-deployer, settings, *, trust, allow", ""))
	// Another pipeline's run holds a token issued through shop-deploy.
	victim := te.exchangeOK(exchangeForm(te.is.sign(githubClaims(te.clock.Now()))))
	tok := exchangedUnscoped(te, "release-2")
	if s, b := te.do("DELETE", "/api/v1/trust-policies/shop-deploy", tok, nil); s != 403 {
		t.Errorf("exchanged token deleting the trust policy that issued another run's token: %d %s, want 403 (a token from an exchange cannot revoke tokens)", s, b)
	}
	if s, _ := te.do("GET", "/api/v1/session/userinfo", victim, nil); s != 200 {
		t.Errorf("the other run's token after the exchanged token's deletion: userinfo %d, want 200", s)
	}
}
