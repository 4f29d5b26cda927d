package main

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/gatehouse/gatehouse"
)

// ciIssuer is a CI platform's OIDC issuer: an RS256 key and its JWKS on
// 127.0.0.1.
type ciIssuer struct {
	url    string
	signer jose.Signer
	jti    atomic.Int64
}

func newCIIssuer(t *testing.T) *ciIssuer {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	is := &ciIssuer{}
	is.signer, err = jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: key}, (&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", "ci-1"))
	if err != nil {
		t.Fatal(err)
	}
	jwks := jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: key.Public(), KeyID: "ci-1", Algorithm: "RS256", Use: "sig"}}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode(jwks)
	}))
	t.Cleanup(srv.Close)
	is.url = srv.URL
	return is
}

// token signs claims over GitHub-shaped defaults, issued now (the real
// server runs on the real clock).
func (is *ciIssuer) token(t *testing.T, over map[string]any) string {
	t.Helper()
	now := time.Now()
	c := map[string]any{
		"iss": is.url, "aud": "https://gatehouse.example", "jti": fmt.Sprintf("run-%d", is.jti.Add(1)),
		"sub": "repo:octo-org/shop:ref:refs/heads/main", "repository": "octo-org/shop", "repository_id": "123456",
		"ref": "refs/heads/main", "workflow": "deploy", "run_id": "42",
		"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(5 * time.Minute).Unix(),
	}
	for k, v := range over {
		c[k] = v
	}
	b, _ := json.Marshal(c)
	obj, err := is.signer.Sign(b)
	if err != nil {
		t.Fatal(err)
	}
	s, err := obj.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestCLIKeylessCI: a trust policy from the config file and one made with
// the CLI; CI jobs log in with their ID tokens three ways and sync only
// what the policy allows; trust test explains a refusal; deleting a
// policy kills its tokens.
func TestCLIKeylessCI(t *testing.T) {
	t.Parallel()
	is := newCIIssuer(t)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "gatehouse.yaml")
	writeFile(t, cfg, fmt.Sprintf(`trustPolicies:
  - name: yaml-deploy
    issuer: %s
    jwksURL: %s/jwks
    audiences: [https://gatehouse.example]
    claims:
      repository_id: 123456
      ref: refs/heads/main
    account: admin
    ttl: 600
    scopes:
      - {resource: applications, action: sync, object: "shop/*"}
`, is.url, is.url))
	s := startWith(t, t.TempDir(), []string{"--config", cfg}, "GATEHOUSE_ADMIN_PASSWORD="+e2eAdminPassword)
	hostport := strings.TrimPrefix(s.url, "http://")
	admin := newCLIUser(t)
	ok(t, admin.runWithInput(t, e2eAdminPassword+"\n", "login", hostport, "--plaintext", "--username", "admin"))
	for _, args := range [][]string{
		{"proj", "create", "shop"},
		{"proj", "create", "other"},
		{"proj", "role", "create", "shop", "ci"},
		{"proj", "role", "add-policy", "shop", "ci", "-a", "sync", "-o", "*", "-p", "allow"},
		{"app", "create", "web", "--project", "shop", "--repo", "https://git.example.com/web.git", "--path", "deploy",
			"--dest-server", "https://kubernetes.default.svc", "--dest-namespace", "web"},
		{"app", "create", "db", "--project", "other", "--repo", "https://git.example.com/db.git", "--path", "deploy",
			"--dest-server", "https://kubernetes.default.svc", "--dest-namespace", "db"},
	} {
		ok(t, admin.run(t, args...))
	}

	// The file's policy is in force; a second one comes from a YAML file.
	list := decodeStrict[[]gatehouse.TrustPolicy](t, admin.run(t, "trust", "list", "-o", "json"))
	if len(list) != 1 || list[0].Name != "yaml-deploy" || list[0].TTL != 600 || list[0].Claims["repository_id"][0] != "123456" {
		t.Fatalf("trust list = %+v, want the file's yaml-deploy", list)
	}
	gitlab := filepath.Join(dir, "gitlab.yaml")
	writeFile(t, gitlab, fmt.Sprintf(`name: gitlab-deploy
issuer: %s
jwksURL: %s/jwks
audiences: [https://gatehouse.example]
claims:
  project_path: my-group/*
  ref_protected: "true"
project: shop
role: ci
`, is.url, is.url))
	if out := ok(t, admin.run(t, "trust", "create", "-f", gitlab)); out != "trust policy 'gitlab-deploy' created\n" {
		t.Errorf("trust create printed %q", out)
	}
	table := ok(t, admin.run(t, "trust", "get", "gitlab-deploy"))
	for _, want := range []string{"SUBJECT:    proj:shop:ci", "project_path=my-group/*", "TTL:        900s"} {
		if !strings.Contains(table, want) {
			t.Errorf("trust get does not show %q:\n%s", want, table)
		}
	}

	// A GitHub job: the token in GATEHOUSE_OIDC_TOKEN.
	ghTok := is.token(t, nil)
	gh := newCIUser(t, "GATEHOUSE_OIDC_TOKEN="+ghTok)
	out := ok(t, gh.run(t, "login", hostport, "--plaintext"))
	if !strings.Contains(out, "'admin' logged in through token exchange (valid 600s)") {
		t.Errorf("login printed %q", out)
	}
	if strings.Contains(out, ghTok) {
		t.Error("login printed the ID token")
	}
	ok(t, gh.run(t, "app", "sync", "web"))
	fails(t, gh.run(t, "app", "sync", "db"), "permission denied")
	fails(t, gh.run(t, "app", "delete", "web"), "permission denied")

	// The same ID token again: refused, it was used.
	again := newCIUser(t, "GATEHOUSE_OIDC_TOKEN="+ghTok)
	fails(t, again.run(t, "login", hostport, "--plaintext"), "token exchange refused (invalid_grant)")

	// A GitLab job: the token in a file (--oidc-token-file), and one on
	// standard input (--oidc-token -).
	glClaims := map[string]any{"project_path": "my-group/my-project", "ref_protected": "true", "pipeline_id": "574"}
	tokFile := filepath.Join(dir, "id-token")
	writeFile(t, tokFile, is.token(t, glClaims)+"\n")
	gl := newCIUser(t)
	ok(t, gl.run(t, "login", hostport, "--plaintext", "--oidc-token-file", tokFile, "--trust-policy", "gitlab-deploy"))
	ok(t, gl.run(t, "app", "sync", "web"))
	fails(t, gl.run(t, "app", "sync", "db"), "permission denied")
	stdin := newCIUser(t)
	ok(t, stdin.runWithInput(t, is.token(t, glClaims), "login", hostport, "--plaintext", "--oidc-token", "-", "--trust-policy", "gitlab-deploy"))
	ok(t, stdin.run(t, "app", "sync", "web"))
	fails(t, newCIUser(t).run(t, "login", hostport, "--plaintext", "--oidc-token", ghTok), "--oidc-token takes -")

	// trust test: why a token from another branch would be refused.
	dev := filepath.Join(dir, "dev-token")
	writeFile(t, dev, is.token(t, map[string]any{"ref": "refs/heads/dev"}))
	r := admin.run(t, "trust", "test", "yaml-deploy", "--token-file", dev)
	if r.code != 2 || !strings.Contains(r.stdout, "not accepted") || !strings.Contains(r.stdout, `claim "ref" is "refs/heads/dev"`) || r.stderr != "" {
		t.Errorf("trust test of a dev token: exit %d, stdout %q, stderr %q; want exit 2 naming the ref claim", r.code, r.stdout, r.stderr)
	}
	good := filepath.Join(dir, "good-token")
	writeFile(t, good, is.token(t, nil))
	if out := ok(t, admin.run(t, "trust", "test", "yaml-deploy", "--token-file", good)); out != "accepted: a token for admin would be issued\n" {
		t.Errorf("trust test of a good token printed %q", out)
	}

	// Deleting the GitLab policy kills the tokens it issued.
	ok(t, admin.run(t, "trust", "delete", "gitlab-deploy"))
	fails(t, gl.run(t, "app", "sync", "web"), "invalid or unknown token")
	ok(t, gh.run(t, "app", "sync", "web"))
}

func newCIUser(t *testing.T, env ...string) *cliUser { return newCLIUser(t, env...) }

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}
