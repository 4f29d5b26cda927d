package server_test

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
)

// introspectAs asks RFC 7662 introspection about tok with caller.
func (e *env) introspectAs(caller, tok string) gatehouse.Introspection {
	e.t.Helper()
	r, _ := http.NewRequest("POST", e.srv.URL+"/api/v1/introspect", strings.NewReader("token="+url.QueryEscape(tok)))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.Header.Set("Authorization", "Bearer "+caller)
	s, b := e.send(r)
	if s != 200 {
		e.t.Fatalf("introspect: %d %s", s, b)
	}
	var out gatehouse.Introspection
	if err := json.Unmarshal(b, &out); err != nil {
		e.t.Fatal(err)
	}
	return out
}

// A resource server that checks its clients' tokens by RFC 7662
// introspection (the integration Gatehouse offers for that) uses a token
// on every request; the token is never counted as used, so a token with
// an idle timeout, in constant use that way, is refused as idle and
// removed once its timeout has passed.
func TestAdversaryIntrospectedTokenIsRefusedAsIdle(t *testing.T) {
	e := newEnv(t)
	e.createUser("ci")
	tok := e.mint(e.admin, "ci", gatehouse.TokenRequest{Name: "client", IdleTimeout: seconds(3600)})
	for i := range 6 {
		e.clock.Advance(30 * time.Minute)
		if got := e.introspectAs(e.admin, tok.Token); !got.Active {
			t.Fatalf("after %d minutes of introspection every 30 minutes, the token is inactive (refused as idle)", (i+1)*30)
		}
		e.svc.Flush(t.Context())
	}
}

// The self-rotation route beside the others: every other method on it,
// and the ordinary rotate and delete routes with "self" for an id, answer
// a JSON 4xx and change nothing.
func TestAdversarySelfRotateRouteNeighbours(t *testing.T) {
	e := newEnv(t)
	e.createUser("ci")
	self := e.mint(e.admin, "ci", gatehouse.TokenRequest{Name: "pipe", SelfRotate: true})
	for _, c := range []struct{ method, path, tok string }{
		{"GET", "/api/v1/account/ci/token/self/rotate", self.Token},
		{"PUT", "/api/v1/account/ci/token/self/rotate", self.Token},
		{"DELETE", "/api/v1/account/ci/token/self/rotate", self.Token},
		{"DELETE", "/api/v1/account/ci/token/self", self.Token},
		{"DELETE", "/api/v1/account/ci/token/self", e.admin},
		{"POST", "/api/v1/account/ci/token/self", self.Token},
		{"POST", "/api/v1/account/ci/token/self/rotate/", self.Token},
		{"POST", "/api/v1/account/ci/token/SELF/rotate", self.Token},
		{"POST", "/api/v1/account/ci/token/self/rotate", e.admin},
		{"POST", "/api/v1/account/ci/token/self/rotate", ""},
		{"GET", "/api/v1/tokens/leaked", ""},
		{"DELETE", "/api/v1/tokens/leaked", ""},
	} {
		var body any
		if c.method != "GET" {
			body = gatehouse.RotateRequest{}
		}
		s, b := e.do(c.method, c.path, c.tok, body)
		var eb struct{ Error, Message string }
		if s < 400 || s >= 500 || json.Unmarshal(b, &eb) != nil || eb.Message == "" {
			t.Errorf("%s %s: %d %s, want a JSON 4xx", c.method, c.path, s, b)
		}
	}
	if s := e.status("GET", "/api/v1/session/userinfo", self.Token, nil); s != 200 {
		t.Fatalf("the self-rotating token after the probes: %d", s)
	}
}

// Leak reports in the encodings a scanner meets: a bare body (found
// without its prefix) is the token; a token of another instance is not
// ours; its whole-text hash in upper case or with surrounding space is
// refused. Only the holder's report revokes; the answer is the same.
func TestAdversaryLeakReportEncodings(t *testing.T) {
	e := newEnv(t)
	e.createUser("ci")
	bare := e.mint(e.admin, "ci", gatehouse.TokenRequest{Name: "bare"})
	other := e.mint(e.admin, "ci", gatehouse.TokenRequest{Name: "other-instance"})
	_, body, _ := strings.Cut(bare.Token, ":")
	_, obody, _ := strings.Cut(other.Token, ":")
	// Another instance's prefix on our body: not ours, not revoked.
	s, b := e.do("POST", "/api/v1/tokens/leaked", "", gatehouse.LeakReport{Tokens: []string{"elsewhere:" + obody}})
	if s != 200 {
		t.Fatalf("other instance: %d %s", s, b)
	}
	if e.status("GET", "/api/v1/session/userinfo", other.Token, nil) != 200 {
		t.Error("a token of another instance's prefix revoked ours")
	}
	// The bare body is the token.
	s2, b2 := e.do("POST", "/api/v1/tokens/leaked", "", gatehouse.LeakReport{Tokens: []string{body}})
	if s2 != 200 || string(b2) != string(b) {
		t.Fatalf("bare body: %d %s (vs %s)", s2, b2, b)
	}
	if e.status("GET", "/api/v1/session/userinfo", bare.Token, nil) != 401 {
		t.Error("a bare body reported whole did not revoke its token")
	}
	// Someone who does not hold the token: a body with another secret of
	// the same id, and hashes of near misses, revoke nothing.
	sum := sha256.Sum256([]byte(other.Token + "\n"))
	s3, _ := e.do("POST", "/api/v1/tokens/leaked", "", gatehouse.LeakReport{SHA256: []string{hex.EncodeToString(sum[:])}})
	if s3 != 200 || e.status("GET", "/api/v1/session/userinfo", other.Token, nil) != 200 {
		t.Errorf("a hash of another text revoked the token (%d)", s3)
	}
	for _, bad := range []string{" " + other.Token, other.Token + "\n", strings.ToUpper(other.Token)} {
		if s := e.status("POST", "/api/v1/tokens/leaked", "", gatehouse.LeakReport{Tokens: []string{bad}}); s != 400 {
			t.Errorf("a near-token %q...: %d, want 400", bad[:12], s)
		}
	}
	if e.status("GET", "/api/v1/session/userinfo", other.Token, nil) != 200 {
		t.Error("refused reports revoked the token")
	}
}

// Bad self-rotation requests: a JSON 4xx, and the token is not rotated
// (it still works and can still rotate afterwards).
func TestAdversarySelfRotateBadInput(t *testing.T) {
	e := newEnv(t)
	e.createUser("ci")
	self := e.mint(e.admin, "ci", gatehouse.TokenRequest{Name: "pipe", SelfRotate: true, ExpiresIn: seconds(3600)})
	for name, body := range map[string]any{
		"negative expiresIn":     map[string]any{"expiresIn": -1},
		"negative grace":         map[string]any{"graceSeconds": -1},
		"grace beyond life":      map[string]any{"graceSeconds": 3601},
		"grace beyond a week":    map[string]any{"graceSeconds": 7*24*3600 + 1},
		"huge expiresIn":         map[string]any{"expiresIn": 1 << 62},
		"string grace":           map[string]any{"graceSeconds": "60"},
		"unknown field":          map[string]any{"idleTimeout": 0},
		"scopes smuggled":        map[string]any{"scopes": []any{map[string]string{"resource": "*", "action": "*", "object": "*"}}},
		"expiresIn beyond life":  map[string]any{"expiresIn": 3601},
		"expiresIn zero (never)": map[string]any{"expiresIn": 0},
	} {
		s, b := e.do("POST", "/api/v1/account/ci/token/self/rotate", self.Token, body)
		var eb struct{ Error, Message string }
		if s < 400 || s >= 500 || json.Unmarshal(b, &eb) != nil {
			t.Errorf("%s: %d %s, want a JSON 4xx", name, s, b)
		}
	}
	if s := e.status("GET", "/api/v1/session/userinfo", self.Token, nil); s != 200 {
		t.Fatalf("the token after refused self-rotations: %d", s)
	}
	var next gatehouse.NewToken
	e.call("POST", "/api/v1/account/ci/token/self/rotate", self.Token, gatehouse.RotateRequest{}, 200, &next)
	e.remember(next.Token)
}
