package server_test

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
)

// lifecycleEvents reads the audit events of one type, oldest first.
func lifecycleEvents(e *env, typ string) []gatehouse.Event {
	e.t.Helper()
	e.svc.Flush(e.t.Context())
	var page gatehouse.List[gatehouse.Event]
	e.call("GET", "/api/v1/audit?limit=1000&type="+typ, e.admin, nil, 200, &page)
	out := page.Items
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out
}

// A token rotated away and presented again (after its grace period, or
// at once without one) revokes its whole family: every successor, however
// many rotations later (GitLab's reuse detection).
func TestRotatedTokenReuseRevokesTheFamily(t *testing.T) {
	e := newEnv(t)
	e.createUser("ci")
	first := e.mint(e.admin, "ci", gatehouse.TokenRequest{Name: "deploy"})
	var second, third gatehouse.NewToken
	e.call("POST", "/api/v1/account/ci/token/"+first.ID+"/rotate", e.admin, gatehouse.RotateRequest{GraceSeconds: 60}, 200, &second)
	e.call("POST", "/api/v1/account/ci/token/"+second.ID+"/rotate", e.admin, gatehouse.RotateRequest{}, 200, &third)
	e.remember(second.Token, third.Token)
	other := e.mint(e.admin, "ci", gatehouse.TokenRequest{Name: "unrelated"})

	// Within its grace period the first token is still good.
	if s := e.status("GET", "/api/v1/session/userinfo", first.Token, nil); s != 200 {
		t.Fatalf("first token within grace: %d", s)
	}
	// A second rotation of a token already rotated is refused: its
	// family has one line.
	if s := e.status("POST", "/api/v1/account/ci/token/"+first.ID+"/rotate", e.admin, gatehouse.RotateRequest{}); s != 409 {
		t.Fatalf("rotating a rotated token again: %d, want 409", s)
	}
	if s := e.status("GET", "/api/v1/session/userinfo", third.Token, nil); s != 200 {
		t.Fatalf("third token: %d", s)
	}

	// The second token, rotated without grace, presented again: the family
	// (the third token; the first is within grace) is revoked.
	s, body := e.do("GET", "/api/v1/session/userinfo", second.Token, nil)
	if s != 401 || !contains(body, "rotated away") {
		t.Fatalf("reused token: %d %s", s, body)
	}
	for name, tok := range map[string]string{"first": first.Token, "third": third.Token} {
		if s := e.status("GET", "/api/v1/session/userinfo", tok, nil); s != 401 {
			t.Errorf("%s token after reuse of the second: %d, want 401", name, s)
		}
	}
	if s := e.status("GET", "/api/v1/session/userinfo", other.Token, nil); s != 200 {
		t.Errorf("a token of another family: %d, want 200", s)
	}
	// (The first token, presented above, was rotated away too; but the
	// family is gone, and what was kept of its rotations with it: no
	// second reuse, no further write.)
	reuse := lifecycleEvents(e, gatehouse.EventTokenReuseDetected)
	if len(reuse) != 1 || reuse[0].TokenID != second.ID || reuse[0].Account != "ci" || !strings.Contains(reuse[0].Detail, "2 live token(s) revoked") {
		t.Fatalf("reuse events: %+v", reuse)
	}
	revoked := map[string]bool{}
	for _, ev := range lifecycleEvents(e, gatehouse.EventTokenRevoked) {
		if strings.Contains(ev.Detail, "presented again") {
			revoked[ev.TokenID] = true
		}
	}
	if !revoked[first.ID] || !revoked[third.ID] || len(revoked) != 2 {
		t.Fatalf("revoked for reuse: %v, want the first and the third", revoked)
	}
	// Presented again and again, it stays refused (as unknown now), and
	// nothing else dies.
	for range 3 {
		if s, b := e.do("GET", "/api/v1/session/userinfo", second.Token, nil); s != 401 || contains(b, "rotated away") {
			t.Fatalf("reused token again: %d %s", s, b)
		}
	}
	if n := len(lifecycleEvents(e, gatehouse.EventTokenReuseDetected)); n != 1 {
		t.Fatalf("%d reuse events after presenting it again, want still 1", n)
	}
	if s := e.status("GET", "/api/v1/session/userinfo", other.Token, nil); s != 200 {
		t.Fatalf("other family after a second reuse: %d", s)
	}
}

// After its grace period, the token rotated away counts as reused too.
func TestRotatedTokenAfterGraceIsReuse(t *testing.T) {
	e := newEnv(t)
	old := e.mint(e.admin, "admin", gatehouse.TokenRequest{Name: "rotating"})
	var fresh gatehouse.NewToken
	e.call("POST", "/api/v1/account/admin/token/"+old.ID+"/rotate", e.admin, gatehouse.RotateRequest{GraceSeconds: 60}, 200, &fresh)
	e.clock.Advance(61 * time.Second)
	if s := e.status("GET", "/api/v1/session/userinfo", fresh.Token, nil); s != 200 {
		t.Fatalf("successor after grace: %d", s)
	}
	if s, b := e.do("GET", "/api/v1/session/userinfo", old.Token, nil); s != 401 || !contains(b, "rotated away") {
		t.Fatalf("old token after grace: %d %s", s, b)
	}
	if s := e.status("GET", "/api/v1/session/userinfo", fresh.Token, nil); s != 401 {
		t.Fatalf("successor after the old token came back: %d, want 401", s)
	}
	// Once its family is gone, the reaper forgets the rotation; the old
	// token is then merely unknown.
	if _, err := e.svc.Reap(t.Context()); err != nil {
		t.Fatal(err)
	}
	if s, b := e.do("GET", "/api/v1/session/userinfo", old.Token, nil); s != 401 || contains(b, "rotated away") {
		t.Fatalf("old token once its rotation is pruned: %d %s", s, b)
	}
}

// A token minted with selfRotate rotates itself, scoped or not, without
// its owner's permission to manage tokens; others may not use the route.
func TestSelfRotate(t *testing.T) {
	e := newEnv(t)
	e.createUser("ci")
	e.setPolicy("p, ci, applications, get, */*, allow", "")
	scoped := []gatehouse.Scope{{Resource: "applications", Action: "get", Object: "*/*"}}
	self := e.mint(e.admin, "ci", gatehouse.TokenRequest{Name: "pipeline", Scopes: scoped, SelfRotate: true, IdleTimeout: seconds(7200)})
	plain := e.mint(e.admin, "ci", gatehouse.TokenRequest{Name: "plain"})

	if s := e.status("POST", "/api/v1/account/ci/token/self/rotate", plain.Token, gatehouse.RotateRequest{}); s != 403 {
		t.Fatalf("self-rotate without selfRotate: %d, want 403", s)
	}
	if s := e.status("POST", "/api/v1/account/admin/token/self/rotate", self.Token, gatehouse.RotateRequest{}); s != 403 {
		t.Fatalf("self-rotate naming another account: %d, want 403", s)
	}
	// The scoped token may not rotate itself through the ordinary route.
	if s := e.status("POST", "/api/v1/account/ci/token/"+self.ID+"/rotate", self.Token, gatehouse.RotateRequest{}); s != 403 {
		t.Fatalf("scoped token on the ordinary rotate route: %d, want 403", s)
	}
	// It keeps itself fresh; it cannot make itself live longer.
	for _, life := range []int64{0, 12*3600 + 1} {
		if s := e.status("POST", "/api/v1/account/ci/token/self/rotate", self.Token, gatehouse.RotateRequest{ExpiresIn: seconds(life)}); s != 400 {
			t.Fatalf("self-rotate to a lifetime of %d s: %d, want 400", life, s)
		}
	}
	var next gatehouse.NewToken
	e.call("POST", "/api/v1/account/ci/token/self/rotate", self.Token, gatehouse.RotateRequest{GraceSeconds: 30, ExpiresIn: seconds(3600)}, 200, &next)
	e.remember(next.Token)
	if next.ID == self.ID || next.Name != "pipeline" {
		t.Fatalf("successor: %+v", next)
	}
	var toks gatehouse.List[gatehouse.Token]
	e.call("GET", "/api/v1/account/ci/token", e.admin, nil, 200, &toks)
	var succ gatehouse.Token
	for _, k := range toks.Items {
		if k.ID == next.ID {
			succ = k
		}
	}
	if !succ.SelfRotate || succ.IdleTimeout != 7200 || succ.Family != self.ID || len(succ.Scopes) != 1 {
		t.Fatalf("successor record: %+v", succ)
	}
	// The successor rotates itself in turn; its predecessor is in grace.
	var third gatehouse.NewToken
	e.call("POST", "/api/v1/account/ci/token/self/rotate", next.Token, gatehouse.RotateRequest{}, 200, &third)
	e.remember(third.Token)
	if s := e.status("GET", "/api/v1/applications", third.Token, nil); s != 200 {
		t.Fatalf("third token: %d", s)
	}
	// A self-rotation is audited with its triple, as self-service.
	var created []gatehouse.Event
	for _, ev := range requestEvents(e, "") {
		if ev.Route == "POST /api/v1/account/{name}/token/self/rotate" && ev.Status == 200 {
			created = append(created, ev)
		}
	}
	if len(created) != 2 || created[0].Via != gatehouse.ViaSelf || created[0].Resource != "accounts" || created[0].Action != "update" || created[0].Object != "ci" {
		t.Fatalf("self-rotate request events: %+v", created)
	}
	// Project role tokens have no self-rotation.
	if s := e.status("POST", "/api/v1/projects", e.admin, gatehouse.Project{Name: "web", Roles: []gatehouse.ProjectRole{{Name: "deploy"}}}); s != 201 && s != 200 {
		t.Fatalf("create project: %d", s)
	}
	if s := e.status("POST", "/api/v1/projects/web/roles/deploy/token", e.admin, gatehouse.TokenRequest{SelfRotate: true}); s != 400 {
		t.Fatalf("project token with selfRotate: %d, want 400", s)
	}
}

// A token unused for its idle timeout is refused and removed (audited
// token.idle_expired), whether it is presented or the reaper finds it;
// each use restarts the count.
func TestIdleTimeout(t *testing.T) {
	e := newEnv(t)
	used := e.mint(e.admin, "admin", gatehouse.TokenRequest{Name: "used", IdleTimeout: seconds(3600)})
	presented := e.mint(e.admin, "admin", gatehouse.TokenRequest{Name: "presented", IdleTimeout: seconds(3600)})
	reaped := e.mint(e.admin, "admin", gatehouse.TokenRequest{Name: "reaped", IdleTimeout: seconds(3600)})
	none := e.mint(e.admin, "admin", gatehouse.TokenRequest{Name: "none"})
	for _, bad := range []int64{-1, 1, 3599, 366*24*3600 + 1} {
		if s := e.status("POST", "/api/v1/account/admin/token", e.admin, gatehouse.TokenRequest{IdleTimeout: seconds(bad)}); s != 400 {
			t.Errorf("idleTimeout %d: %d, want 400", bad, s)
		}
	}
	// Used every 50 minutes for five hours: never idle.
	for range 6 {
		e.clock.Advance(50 * time.Minute)
		if s := e.status("GET", "/api/v1/session/userinfo", used.Token, nil); s != 200 {
			t.Fatalf("token in use: %d", s)
		}
		e.svc.Flush(t.Context())
	}
	// The other two were last used at their issue, five hours ago.
	if s, b := e.do("GET", "/api/v1/session/userinfo", presented.Token, nil); s != 401 || !contains(b, "idle timeout") {
		t.Fatalf("idle token presented: %d %s", s, b)
	}
	if n, err := e.svc.Reap(t.Context()); err != nil || n != 1 {
		t.Fatalf("Reap = %d, %v; want the one idle token left", n, err)
	}
	for name, tok := range map[string]string{"presented": presented.Token, "reaped": reaped.Token} {
		if s := e.status("GET", "/api/v1/session/userinfo", tok, nil); s != 401 {
			t.Errorf("%s idle token: %d, want 401", name, s)
		}
	}
	for name, tok := range map[string]string{"used": used.Token, "none": none.Token} {
		if s := e.status("GET", "/api/v1/session/userinfo", tok, nil); s != 200 {
			t.Errorf("%s token: %d, want 200", name, s)
		}
	}
	idle := map[string]string{}
	for _, ev := range lifecycleEvents(e, gatehouse.EventTokenIdleExpired) {
		idle[ev.TokenID] = ev.Actor
	}
	if idle[presented.ID] != "system:gatehouse" || idle[reaped.ID] != "reaper" || len(idle) != 2 {
		t.Fatalf("idle events: %v", idle)
	}
}

// A leak report revokes what it names, by whole token or by the SHA-256
// of one, without a credential; the answer is the same whether anything
// matched; malformed entries are refused and change nothing.
func TestLeakReports(t *testing.T) {
	e := newEnv(t)
	e.createUser("ci")
	byToken := e.mint(e.admin, "ci", gatehouse.TokenRequest{Name: "pasted"})
	byHash := e.mint(e.admin, "ci", gatehouse.TokenRequest{Name: "hashed"})
	kept := e.mint(e.admin, "ci", gatehouse.TokenRequest{Name: "kept"})
	sum := sha256.Sum256([]byte(byHash.Token))

	// Bad input: refused, nothing revoked.
	for name, body := range map[string]any{
		"empty":            gatehouse.LeakReport{},
		"not a token":      gatehouse.LeakReport{Tokens: []string{"ghp_not-ours"}},
		"upper-case hex":   gatehouse.LeakReport{SHA256: []string{strings.ToUpper(hex.EncodeToString(sum[:]))}},
		"short hex":        gatehouse.LeakReport{SHA256: []string{"abcd"}},
		"one bad of two":   gatehouse.LeakReport{Tokens: []string{kept.Token, kept.Token[:len(kept.Token)-1]}},
		"too many entries": gatehouse.LeakReport{SHA256: strings.Fields(strings.Repeat(hex.EncodeToString(sum[:])+" ", 101))},
	} {
		if s := e.status("POST", "/api/v1/tokens/leaked", "", body); s != 400 {
			t.Errorf("%s: %d, want 400", name, s)
		}
	}
	if s := e.status("GET", "/api/v1/session/userinfo", kept.Token, nil); s != 200 {
		t.Fatalf("kept token after refused reports: %d", s)
	}

	unknown := sha256.Sum256([]byte("gatehouse:nothing"))
	s1, b1 := e.do("POST", "/api/v1/tokens/leaked", "", gatehouse.LeakReport{SHA256: []string{hex.EncodeToString(unknown[:])}})
	s2, b2 := e.do("POST", "/api/v1/tokens/leaked", "", gatehouse.LeakReport{Tokens: []string{byToken.Token}})
	s3, b3 := e.do("POST", "/api/v1/tokens/leaked", "", gatehouse.LeakReport{SHA256: []string{hex.EncodeToString(sum[:])}})
	if s1 != 200 || s2 != 200 || s3 != 200 || string(b1) != string(b2) || string(b2) != string(b3) {
		t.Fatalf("answers differ: %d %s / %d %s / %d %s", s1, b1, s2, b2, s3, b3)
	}
	for name, tok := range map[string]string{"by token": byToken.Token, "by hash": byHash.Token} {
		if s := e.status("GET", "/api/v1/session/userinfo", tok, nil); s != 401 {
			t.Errorf("token reported %s: %d, want 401", name, s)
		}
	}
	if s := e.status("GET", "/api/v1/session/userinfo", kept.Token, nil); s != 200 {
		t.Fatalf("unreported token: %d", s)
	}
	leaked := map[string]gatehouse.Event{}
	for _, ev := range lifecycleEvents(e, gatehouse.EventTokenLeaked) {
		leaked[ev.TokenID] = ev
	}
	if len(leaked) != 2 || leaked[byToken.ID].RemoteAddr != "127.0.0.1" || leaked[byHash.ID].Account != "ci" || leaked[byHash.ID].Actor != "system:leak-report" {
		t.Fatalf("leak events: %+v", leaked)
	}

	// Rate-limited per address.
	throttled := false
	for range 40 {
		if s := e.status("POST", "/api/v1/tokens/leaked", "", gatehouse.LeakReport{SHA256: []string{hex.EncodeToString(unknown[:])}}); s == 429 {
			throttled = true
			break
		}
	}
	if !throttled {
		t.Fatal("40 reports in a minute from one address were never refused")
	}
}
