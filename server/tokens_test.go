package server_test

import (
	"bytes"
	"encoding/base64"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
)

func TestMintShowsSecretOnceAndStoresOnlyItsHash(t *testing.T) {
	e := newEnv(t)
	nt := e.mint(e.admin, "admin", gatehouse.TokenRequest{Name: "ci deploys"})
	_, body, _ := strings.Cut(nt.Token, ":")

	// The token works.
	var info gatehouse.UserInfo
	e.call("GET", "/api/v1/session/userinfo", nt.Token, nil, 200, &info)
	if info.Username != "admin" || info.TokenID != nt.ID || info.TokenKind != gatehouse.KindAPI {
		t.Fatalf("userinfo = %+v", info)
	}

	// Neither list nor get shows the secret.
	for _, path := range []string{"/api/v1/account/admin/token", "/api/v1/account/admin"} {
		_, b := e.do("GET", path, e.admin, nil)
		if !contains(b, nt.ID) {
			t.Errorf("%s does not list token %s: %s", path, nt.ID, b)
		}
		if contains(b, body) || contains(b, `"token"`) {
			t.Errorf("%s shows the secret: %s", path, b)
		}
	}

	// The database holds no secret: not the token, not its body.
	e.svc.Flush(t.Context())
	files, _ := filepath.Glob(e.dbPath + "*")
	if len(files) == 0 {
		t.Fatal("no database files")
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(data, []byte(body)) {
			t.Errorf("%s contains the token body", f)
		}
		if bytes.Contains(data, []byte(e.admin[strings.IndexByte(e.admin, ':')+1:])) {
			t.Errorf("%s contains the admin session secret", f)
		}
		if bytes.Contains(data, []byte(adminPassword)) {
			t.Errorf("%s contains the admin password", f)
		}
	}
}

func TestDefaultAndMaximumLifetime(t *testing.T) {
	e := newEnv(t)
	nt := e.mint(e.admin, "admin", gatehouse.TokenRequest{})
	if got := nt.ExpiresAt.Sub(nt.IssuedAt); got < 12*time.Hour-time.Second || got > 12*time.Hour+time.Second {
		t.Errorf("default life = %v, want 12h", got)
	}
	for name, req := range map[string]gatehouse.TokenRequest{
		"over max":     {Name: "x", ExpiresIn: seconds(int64(721 * time.Hour / time.Second))},
		"non-expiring": {Name: "x", ExpiresIn: seconds(0)},
		"negative":     {Name: "x", ExpiresIn: seconds(-5)},
		"no name":      {},
		"long name":    {Name: strings.Repeat("n", 101)},
	} {
		if req.Name == "" && name != "no name" {
			req.Name = "x"
		}
		s, b := e.do("POST", "/api/v1/account/admin/token", e.admin, req)
		if code, _ := errorOf(t, b); s != 400 || code != "invalid_argument" {
			t.Errorf("%s: got %d %s, want 400 invalid_argument", name, s, b)
		}
	}
	// The Argo CD "id" field names the token when name is absent.
	var nt2 gatehouse.NewToken
	e.call("POST", "/api/v1/account/admin/token", e.admin, gatehouse.TokenRequest{ID: "argo-style"}, 200, &nt2)
	if nt2.Name != "argo-style" {
		t.Errorf("name = %q, want argo-style", nt2.Name)
	}
}

func TestNonExpiringTokensWhenAllowed(t *testing.T) {
	e := newEnv(t, func(o *serviceOptions) { o.AllowNonExpiring = true })
	nt := e.mint(e.admin, "admin", gatehouse.TokenRequest{ExpiresIn: seconds(0)})
	if !nt.ExpiresAt.IsZero() {
		t.Fatalf("expiresAt = %v, want none", nt.ExpiresAt)
	}
	e.clock.Advance(10000 * time.Hour)
	if s := e.status("GET", "/api/v1/session/userinfo", nt.Token, nil); s != 200 {
		t.Fatalf("non-expiring token: status %d", s)
	}
}

func TestShortTokenExpiresAndIsReaped(t *testing.T) {
	e := newEnv(t)
	nt := e.mint(e.admin, "admin", gatehouse.TokenRequest{Name: "short", ExpiresIn: seconds(2)})
	if s := e.status("GET", "/api/v1/projects", nt.Token, nil); s != 200 {
		t.Fatalf("fresh token: %d", s)
	}
	e.clock.Advance(2 * time.Second)
	s, b := e.do("GET", "/api/v1/projects", nt.Token, nil)
	if _, msg := errorOf(t, b); s != 401 || msg != "token expired" {
		t.Fatalf("expired token: %d %s, want 401 token expired", s, b)
	}
	// Still listed until the reaper runs, then gone, with an audit record.
	_, b = e.do("GET", "/api/v1/account/admin/token", e.admin, nil)
	if !contains(b, nt.ID) {
		t.Fatalf("expired token vanished before the reaper ran: %s", b)
	}
	n, err := e.svc.Reap(t.Context())
	if err != nil || n != 1 {
		t.Fatalf("Reap = %d, %v; want 1", n, err)
	}
	_, b = e.do("GET", "/api/v1/account/admin/token", e.admin, nil)
	if contains(b, nt.ID) {
		t.Fatalf("reaped token still listed: %s", b)
	}
	var events gatehouse.List[gatehouse.Event]
	e.call("GET", "/api/v1/audit?type=token.expired&tokenId="+nt.ID, e.admin, nil, 200, &events)
	if len(events.Items) != 1 {
		t.Fatalf("token.expired events = %+v, want 1", events.Items)
	}
}

func TestRevokedTokenFailsOnTheNextRequest(t *testing.T) {
	e := newEnv(t)
	nt := e.mint(e.admin, "admin", gatehouse.TokenRequest{})
	if s := e.status("GET", "/api/v1/projects", nt.Token, nil); s != 200 {
		t.Fatalf("before revoke: %d", s)
	}
	e.call("DELETE", "/api/v1/account/admin/token/"+nt.ID, e.admin, nil, 200, nil)
	s, b := e.do("GET", "/api/v1/projects", nt.Token, nil)
	if s != 401 {
		t.Fatalf("after revoke: %d %s, want 401", s, b)
	}
	// Deleting it again is a 404.
	if s := e.status("DELETE", "/api/v1/account/admin/token/"+nt.ID, e.admin, nil); s != 404 {
		t.Fatalf("second delete: %d, want 404", s)
	}
}

func TestRotateWithAndWithoutGrace(t *testing.T) {
	e := newEnv(t)
	old := e.mint(e.admin, "admin", gatehouse.TokenRequest{Name: "rotating"})
	var fresh gatehouse.NewToken
	e.call("POST", "/api/v1/account/admin/token/"+old.ID+"/rotate", e.admin, gatehouse.RotateRequest{GraceSeconds: 60}, 200, &fresh)
	if fresh.Token == "" || fresh.ID == old.ID || fresh.Name != "rotating" {
		t.Fatalf("rotate returned %+v", fresh)
	}
	for _, tok := range []string{old.Token, fresh.Token} {
		if s := e.status("GET", "/api/v1/projects", tok, nil); s != 200 {
			t.Fatalf("within grace: %d", s)
		}
	}
	e.clock.Advance(61 * time.Second)
	if s := e.status("GET", "/api/v1/projects", fresh.Token, nil); s != 200 {
		t.Fatalf("new token after grace: %d", s)
	}
	// (The old token presented now would revoke the new one as reuse:
	// TestRotatedTokenAfterGraceIsReuse.)

	// Without grace the old token dies at once.
	var third gatehouse.NewToken
	e.call("POST", "/api/v1/account/admin/token/"+fresh.ID+"/rotate", e.admin, gatehouse.RotateRequest{}, 200, &third)
	if s := e.status("GET", "/api/v1/projects", third.Token, nil); s != 200 {
		t.Fatalf("third token: %d", s)
	}
	if s := e.status("GET", "/api/v1/projects", fresh.Token, nil); s != 401 {
		t.Fatalf("rotated without grace: old token %d, want 401", s)
	}
}

func TestTokensInheritTheOwnersCurrentPermissions(t *testing.T) {
	e := newEnv(t)
	e.createUser("bob")
	e.setPolicy("g, bob, role:readonly", "")
	bob := e.mint(e.login("bob", "bob-password"), "bob", gatehouse.TokenRequest{})

	project := gatehouse.Project{Name: "p1"}
	if s := e.status("GET", "/api/v1/projects", bob.Token, nil); s != 200 {
		t.Fatalf("readonly get: %d", s)
	}
	if s := e.status("POST", "/api/v1/projects", bob.Token, project); s != 403 {
		t.Fatalf("readonly create: %d, want 403", s)
	}
	e.setPolicy("g, bob, role:admin", "")
	if s := e.status("POST", "/api/v1/projects", bob.Token, project); s != 200 {
		t.Fatalf("after role:admin, create: %d, want 200", s)
	}
	e.setPolicy("g, bob, role:readonly", "")
	if s := e.status("POST", "/api/v1/projects", bob.Token, gatehouse.Project{Name: "p2"}); s != 403 {
		t.Fatalf("after removal, create: %d, want 403", s)
	}
}

func TestScopesNarrowAndCannotExceedTheOwner(t *testing.T) {
	e := newEnv(t)
	e.createUser("carol")
	e.setPolicy("p, carol, applications, get, *, allow", "")
	carol := e.login("carol", "carol-password")
	scoped := e.mint(carol, "carol", gatehouse.TokenRequest{Scopes: []gatehouse.Scope{{Resource: "applications", Action: "get", Object: "team-a/*"}}})

	for obj, want := range map[string]string{"team-a/x": "yes", "team-b/x": "no"} {
		var got gatehouse.CanI
		e.call("GET", "/api/v1/account/can-i/applications/get/"+obj, scoped.Token, nil, 200, &got)
		if got.Value != want {
			t.Errorf("scoped can-i get %s = %s, want %s", obj, got.Value, want)
		}
		e.call("GET", "/api/v1/account/can-i/applications/get/"+obj, carol, nil, 200, &got)
		if got.Value != "yes" {
			t.Errorf("owner can-i get %s = %s, want yes", obj, got.Value)
		}
	}
	// A scope the owner does not hold is refused at minting.
	s, b := e.do("POST", "/api/v1/account/carol/token", carol, gatehouse.TokenRequest{Name: "too wide",
		Scopes: []gatehouse.Scope{{Resource: "applications", Action: "sync", Object: "team-a/*"}}})
	if s != 400 {
		t.Fatalf("minting a scope beyond the owner: %d %s, want 400", s, b)
	}
	// A scoped token cannot mint itself a wider successor, nor rotate
	// itself into one.
	if s := e.status("POST", "/api/v1/account/carol/token", scoped.Token, gatehouse.TokenRequest{Name: "escape"}); s != 403 {
		t.Fatalf("scoped token minting an unscoped one: %d, want 403", s)
	}
	if s := e.status("POST", "/api/v1/account/carol/token/"+scoped.ID+"/rotate", scoped.Token, gatehouse.RotateRequest{}); s != 403 {
		t.Fatalf("scoped token rotating itself: %d, want 403", s)
	}
}

func TestLoginThrottle(t *testing.T) {
	e := newEnv(t)
	e.createUser("dave")
	for i := 1; i <= 5; i++ {
		s, b := e.do("POST", "/api/v1/session", "", gatehouse.LoginRequest{Username: "dave", Password: "wrong-password"})
		if _, msg := errorOf(t, b); s != 401 || msg != "invalid username or password" {
			t.Fatalf("failure %d: %d %s", i, s, b)
		}
	}
	req, _ := http.NewRequest("POST", e.srv.URL+"/api/v1/session", strings.NewReader(`{"username":"dave","password":"dave-password"}`))
	req.Header.Set("Content-Type", "application/json")
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 429 || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("6th attempt with the right password: %d Retry-After=%q, want 429 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	// After the window passes, the right password works again.
	e.clock.Advance(5*time.Minute + time.Second)
	e.login("dave", "dave-password")

	// Unknown users get the same answer as wrong passwords.
	s, b := e.do("POST", "/api/v1/session", "", gatehouse.LoginRequest{Username: "nobody", Password: "whatever-pw"})
	if _, msg := errorOf(t, b); s != 401 || msg != "invalid username or password" {
		t.Fatalf("unknown user: %d %s", s, b)
	}
}

func TestCredentialForms(t *testing.T) {
	e := newEnv(t)
	nt := e.mint(e.admin, "admin", gatehouse.TokenRequest{})
	_, body, _ := strings.Cut(nt.Token, ":")
	basic := func(s string) string { return "Basic " + base64.StdEncoding.EncodeToString([]byte(s)) }
	cases := map[string]struct {
		header, cookie string
		want           int
	}{
		"ok/bearer whole":         {header: "Bearer " + nt.Token, want: 200},
		"ok/bearer body":          {header: "Bearer " + body, want: 200},
		"ok/basic token":          {header: basic(nt.Token), want: 200},
		"ok/basic any user":       {header: basic("someone:" + nt.Token), want: 200},
		"ok/basic user body":      {header: basic("someone:" + body), want: 200},
		"ok/cookie":               {cookie: nt.Token, want: 200},
		"fail/garbage bearer":     {header: "Bearer not-a-token", want: 401},
		"fail/unknown scheme":     {header: "Token " + nt.Token, want: 401},
		"fail/no scheme":          {header: nt.Token, want: 401},
		"fail/bad basic":          {header: "Basic !!!", want: 401},
		"fail/other instance":     {header: "Bearer other:" + body, want: 401},
		"fail/one char changed":   {header: "Bearer " + flip(nt.Token), want: 401},
		"fail/unknown but formed": {header: "Bearer " + e.mintAndRevoke(), want: 401},
	}
	var unknownMsg string
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			req, _ := http.NewRequest("GET", e.srv.URL+"/api/v1/projects", nil)
			if c.header != "" {
				req.Header.Set("Authorization", c.header)
			}
			if c.cookie != "" {
				req.AddCookie(&http.Cookie{Name: "gatehouse.token", Value: c.cookie})
			}
			resp, err := e.srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != c.want {
				t.Fatalf("status %d, want %d", resp.StatusCode, c.want)
			}
			if c.want == 401 {
				// Basic first: a proxy that passes one challenge (nginx
				// auth_request) must pass the one git understands.
				if got, want := resp.Header.Values("WWW-Authenticate"), []string{`Basic realm="gatehouse"`, `Bearer realm="gatehouse"`}; !slices.Equal(got, want) {
					t.Errorf("WWW-Authenticate = %q, want %q", got, want)
				}
				var eb struct{ Error, Message string }
				decodeJSON(t, resp, &eb)
				if eb.Error != "unauthenticated" {
					t.Errorf("error code %q", eb.Error)
				}
				// Every bad credential reads the same: nothing tells
				// whether a token id exists.
				if unknownMsg == "" {
					unknownMsg = eb.Message
				} else if eb.Message != unknownMsg {
					t.Errorf("message %q differs from %q", eb.Message, unknownMsg)
				}
			}
		})
	}
}

// mintAndRevoke returns a well-formed token that the server no longer knows.
func (e *env) mintAndRevoke() string {
	nt := e.mint(e.admin, "admin", gatehouse.TokenRequest{Name: "gone"})
	e.call("DELETE", "/api/v1/account/admin/token/"+nt.ID, e.admin, nil, 200, nil)
	return nt.Token
}

// flip changes one character in the middle of the token body.
func flip(tok string) string {
	b := []byte(tok)
	i := len(b) - 20
	if b[i] == 'A' {
		b[i] = 'B'
	} else {
		b[i] = 'A'
	}
	return string(b)
}

// TestRepeatedQuestionFollowsEveryChange asks one token the same question
// over and over while the policy, the owner's groups and the owner's
// state change underneath: every answer must reflect the change at once.
func TestRepeatedQuestionFollowsEveryChange(t *testing.T) {
	e := newEnv(t)
	e.createUser("quinn")
	tok := e.mint(e.login("quinn", "quinn-password"), "quinn", gatehouse.TokenRequest{}).Token
	ask := func(want string) {
		t.Helper()
		var got gatehouse.CanI
		e.call("GET", "/api/v1/account/can-i/applications/sync/team-a/web", tok, nil, 200, &got)
		if got.Value != want {
			t.Fatalf("can-i = %s, want %s", got.Value, want)
		}
	}
	ask("no")
	e.setPolicy("p, role:deployer, applications, sync, team-a/*, allow\ng, deployers, role:deployer", "")
	ask("no")
	groups := []string{"deployers"}
	e.call("PATCH", "/api/v1/account/quinn", e.admin, gatehouse.AccountPatch{Groups: &groups}, 200, nil)
	ask("yes")
	ask("yes")
	e.setPolicy("p, role:deployer, applications, sync, team-a/*, allow\np, role:deployer, applications, sync, team-a/web, deny\ng, deployers, role:deployer", "")
	ask("no")
	e.setPolicy("p, role:deployer, applications, sync, team-a/*, allow\ng, deployers, role:deployer", "")
	ask("yes")
	none := []string{}
	e.call("PATCH", "/api/v1/account/quinn", e.admin, gatehouse.AccountPatch{Groups: &none}, 200, nil)
	ask("no")
}

func TestRotationKeepsTheTokensLifetime(t *testing.T) {
	e := newEnv(t)
	week := int64(7 * 24 * 3600)
	old := e.mint(e.admin, "admin", gatehouse.TokenRequest{Name: "ci", ExpiresIn: &week})
	e.clock.Advance(time.Hour)
	var fresh gatehouse.NewToken
	e.call("POST", "/api/v1/account/admin/token/"+old.ID+"/rotate", e.admin, gatehouse.RotateRequest{}, 200, &fresh)
	if got := fresh.ExpiresAt.Sub(fresh.IssuedAt); got != 7*24*time.Hour {
		t.Fatalf("rotated token lives %v, want the predecessor's 168h", got)
	}
	hour := int64(3600)
	var short gatehouse.NewToken
	e.call("POST", "/api/v1/account/admin/token/"+fresh.ID+"/rotate", e.admin, gatehouse.RotateRequest{ExpiresIn: &hour}, 200, &short)
	if got := short.ExpiresAt.Sub(short.IssuedAt); got != time.Hour {
		t.Fatalf("rotation with expiresIn: %v, want 1h", got)
	}
}
