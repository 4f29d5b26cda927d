package server_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse"
)

func TestDashboardTrustPolicies(t *testing.T) {
	t.Parallel()
	te := trustOn(newDashEnv(t, trustRBAC))
	te.createUser("alice")
	admin, alice := newWeb(t, te.env), newWeb(t, te.env)
	admin.login("admin", adminPassword)
	alice.login("alice", "alice-password")

	r := admin.get("/trust")
	if r.status != 200 || !strings.Contains(r.body, `href="/trust/shop-deploy"`) || !strings.Contains(between(r.body, `<nav class="mainnav"`, `</nav>`), ">Trust policies</a>") {
		t.Fatalf("admin's trust page: %d, want the list with shop-deploy and the nav entry:\n%s", r.status, r.body)
	}
	if r := alice.get("/trust"); r.status != http.StatusForbidden || strings.Contains(r.body, "shop-deploy") {
		t.Errorf("alice's trust page: %d, want 403 without the list", r.status)
	}
	if strings.Contains(alice.get("/user-info").body, ">Trust policies</a>") {
		t.Error("alice's nav shows Trust policies")
	}

	// Create through the form; a form without claims is refused with the
	// service's reason and keeps what was typed.
	form := url.Values{
		"name": {"gl-deploy"}, "issuer": {te.is.url()}, "jwks_url": {te.is.jwksURL()},
		"audiences": {testAudience + "\n"}, "claims": {""}, "account": {"ci-deployer"}, "ttl": {"600"},
		"scopes": {"applications, sync, shop/*\n"},
	}
	r = admin.post("/trust", form)
	if r.status != 400 || !strings.Contains(r.body, "at least one claim") || !strings.Contains(r.body, `value="gl-deploy"`) {
		t.Errorf("form without claims: %d, want 400 naming the claims and keeping the form", r.status)
	}
	form.Set("claims", "project_id = 20\nref = main | release/*\n")
	admin.wantRedirect(admin.post("/trust", form), "/trust/gl-deploy?notice=trust-created")
	var tp gatehouse.TrustPolicy
	te.call("GET", "/api/v1/trust-policies/gl-deploy", te.admin, nil, 200, &tp)
	if tp.TTL != 600 || len(tp.Claims["ref"]) != 2 || tp.Claims["project_id"][0] != "20" || len(tp.Scopes) != 1 {
		t.Errorf("created policy %+v", tp)
	}
	if r := alice.post("/trust", form); r.status != http.StatusForbidden {
		t.Errorf("alice creating: %d, want 403", r.status)
	}

	// Edit: the page shows the policy; saving a change says its tokens went.
	r = admin.get("/trust/gl-deploy")
	if r.status != 200 || !strings.Contains(r.body, "ref = main | release/*") {
		t.Errorf("edit page: %d, want the claims one a line", r.status)
	}
	form.Set("ttl", "300")
	admin.wantRedirect(admin.post("/trust/gl-deploy", form), "/trust/gl-deploy?notice=trust-updated")
	te.call("GET", "/api/v1/trust-policies/gl-deploy", te.admin, nil, 200, &tp)
	if tp.TTL != 300 {
		t.Errorf("ttl after the edit: %d, want 300", tp.TTL)
	}

	// The test box: the same answer as trust test, the token not shown back.
	good := te.is.sign(githubClaims(te.clock.Now()))
	c := githubClaims(te.clock.Now())
	c["ref"] = "refs/heads/dev"
	dev := te.is.sign(c)
	te.remember(good, dev)
	r = admin.post("/trust/shop-deploy/test", url.Values{"token": {good}})
	if r.status != 200 || !strings.Contains(r.body, "Accepted: a token for <strong>ci-deployer</strong>") || strings.Contains(r.body, good) {
		t.Errorf("testing a good token: %d\n%s", r.status, between(r.body, `id="test-result"`, `</div>`))
	}
	r = admin.post("/trust/shop-deploy/test", url.Values{"token": {dev}})
	if !strings.Contains(r.body, "Not accepted. claim &#34;ref&#34; is &#34;refs/heads/dev&#34;") {
		t.Errorf("testing a dev token: %s", between(r.body, `id="test-result"`, `</div>`))
	}
	r = alice.post("/trust/shop-deploy/test", url.Values{"token": {dev}})
	if r.status != 403 && strings.Contains(r.body, "refs/heads/dev") {
		t.Errorf("alice's test shows the failed condition: %d", r.status)
	}

	// Delete: its tokens go.
	form2 := exchangeForm(te.is.sign(githubClaims(te.clock.Now())))
	form2.Set("trust_policy", "shop-deploy")
	tok := te.exchangeOK(form2)
	admin.wantRedirect(admin.post("/trust/shop-deploy/delete", url.Values{}), "/trust?notice=trust-deleted")
	if s := te.status("GET", "/api/v1/applications/web", tok, nil); s != 401 {
		t.Errorf("the deleted policy's token: %d, want 401", s)
	}
	te.call("GET", "/api/v1/trust-policies/shop-deploy", te.admin, nil, 404, nil)
	if r := admin.get("/trust?notice=trust-deleted"); !strings.Contains(r.body, "Trust policy deleted.") || strings.Contains(r.body, `href="/trust/shop-deploy"`) {
		t.Errorf("list after the delete:\n%s", r.body)
	}
}
