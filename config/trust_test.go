package config

import (
	"strings"
	"testing"
)

func TestTrustPoliciesFromYAML(t *testing.T) {
	c, err := Parse([]byte(`
trustPolicies:
  - name: shop-deploy
    issuer: https://token.actions.githubusercontent.com
    jwksURL: https://token.actions.githubusercontent.com/.well-known/jwks
    audiences: [https://gatehouse.example]
    claims:
      repository_id: 123456
      ref: refs/heads/main
      environment: [prod, "prod-*"]
    account: ci-deployer
    scopes:
      - {resource: applications, action: sync, object: "shop/*"}
  - name: air-gapped
    issuer: https://gitlab.internal
    jwks:
      keys:
        - {kty: OKP, crv: Ed25519, x: 11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo, kid: k1}
    audiences: [https://gatehouse.example]
    claims: {project_id: "20"}
    project: shop
    role: deployer
    ttl: 300
`))
	if err != nil {
		t.Fatal(err)
	}
	list, err := c.TrustPolicyList()
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 {
		t.Fatalf("%d policies, want 2", len(list))
	}
	gh := list[0]
	if got := gh.Claims["repository_id"]; len(got) != 1 || got[0] != "123456" {
		t.Errorf("repository_id condition %q, want [\"123456\"] (a YAML number read as its text)", got)
	}
	if got := gh.Claims["environment"]; len(got) != 2 || got[1] != "prod-*" {
		t.Errorf("environment condition %q, want [prod prod-*]", got)
	}
	if len(gh.Scopes) != 1 || gh.Scopes[0].Object != "shop/*" || gh.Account != "ci-deployer" {
		t.Errorf("policy %+v", gh)
	}
	ag := list[1]
	if !strings.Contains(string(ag.JWKS), `"kid":"k1"`) || ag.Project != "shop" || ag.TTL != 300 {
		t.Errorf("inline policy %+v (jwks %s)", ag, ag.JWKS)
	}
}

func TestTrustPoliciesValidated(t *testing.T) {
	for name, tc := range map[string]struct{ yaml, want string }{
		"fail/no claims": {`
trustPolicies:
  - {name: p, issuer: "https://ci.example", jwksURL: "https://ci.example/jwks", audiences: [a], account: ci}`, "trustPolicies[0]: claims: at least one claim"},
		"fail/plain http": {`
trustPolicies:
  - {name: p, issuer: "http://ci.example", jwksURL: "https://ci.example/jwks", audiences: [a], claims: {sub: x}, account: ci}`, "trustPolicies[0]: issuer"},
		"fail/upper-case scheme": {`
trustPolicies:
  - {name: p, issuer: "https://ci.example", jwksURL: "HTTPS://ci.example/jwks", audiences: [a], claims: {sub: x}, account: ci}`, "trustPolicies[0]: jwksURL"},
		"fail/ttl": {`
trustPolicies:
  - {name: p, issuer: "https://ci.example", jwksURL: "https://ci.example/jwks", audiences: [a], claims: {sub: x}, account: ci, ttl: 7200}`, "ttl must be between"},
		"fail/twice": {`
trustPolicies:
  - {name: p, issuer: "https://ci.example", jwksURL: "https://ci.example/jwks", audiences: [a], claims: {sub: x}, account: ci}
  - {name: p, issuer: "https://ci.example", jwksURL: "https://ci.example/jwks", audiences: [a], claims: {sub: y}, account: ci}`, "trustPolicies[1].name"},
		"fail/unknown key": {`
trustPolicies:
  - {name: p, issuer: "https://ci.example", jwksUrl: "https://ci.example/jwks"}`, "jwksUrl"},
		"fail/claim object": {`
trustPolicies:
  - {name: p, issuer: "https://ci.example", jwksURL: "https://ci.example/jwks", audiences: [a], claims: {sub: {a: b}}, account: ci}`, "claim condition"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := Parse([]byte(tc.yaml))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Parse: %v, want an error containing %q", err, tc.want)
			}
		})
	}
}
