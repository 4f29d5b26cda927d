package server_test

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
)

func TestEveryUseIsAuditedAndLastUsedMoves(t *testing.T) {
	e := newEnv(t)
	nt := e.mint(e.admin, "admin", gatehouse.TokenRequest{Name: "audited"})
	for range 50 {
		e.call("GET", "/api/v1/projects", nt.Token, nil, 200, nil)
	}
	e.createUser("ivy")
	e.setPolicy("g, ivy, role:readonly", "")
	ivy := e.mint(e.login("ivy", "ivy-password"), "ivy", gatehouse.TokenRequest{})
	if s := e.status("POST", "/api/v1/projects", ivy.Token, gatehouse.Project{Name: "nope"}); s != 403 {
		t.Fatalf("readonly create: %d", s)
	}
	e.svc.Flush(t.Context())

	var events gatehouse.List[gatehouse.Event]
	e.call("GET", "/api/v1/audit?type=request&limit=1000&tokenId="+nt.ID, e.admin, nil, 200, &events)
	if n := requests(events.Items); n != 50 {
		t.Fatalf("request events for the token stand for %d requests, want 50", n)
	}
	for _, ev := range events.Items {
		if ev.TokenID != nt.ID || ev.Decision != "allow" || ev.Status != 200 || ev.Path != "/api/v1/projects" || ev.Actor != "admin" {
			t.Fatalf("event = %+v", ev)
		}
	}
	e.call("GET", "/api/v1/audit?decision=deny&tokenId="+ivy.ID, e.admin, nil, 200, &events)
	if len(events.Items) != 1 || events.Items[0].Status != 403 || events.Items[0].Resource != "projects" || events.Items[0].Action != "create" {
		t.Fatalf("denied events = %+v, want one projects/create 403", events.Items)
	}

	var list gatehouse.List[gatehouse.Token]
	e.call("GET", "/api/v1/account/admin/token", e.admin, nil, 200, &list)
	var used time.Time
	for _, tk := range list.Items {
		if tk.ID == nt.ID {
			used = tk.LastUsedAt
			if tk.LastUsedFrom != "127.0.0.1" {
				t.Errorf("lastUsedFrom = %q", tk.LastUsedFrom)
			}
		}
	}
	if used.IsZero() {
		t.Fatal("lastUsedAt not set after use")
	}
	// At most one write a minute: a use 30 s later does not move it, one
	// after a minute does.
	e.clock.Advance(30 * time.Second)
	e.call("GET", "/api/v1/projects", nt.Token, nil, 200, nil)
	e.svc.Flush(t.Context())
	if got := lastUsed(e, nt.ID); !got.Equal(used) {
		t.Fatalf("lastUsedAt moved within a minute: %v -> %v", used, got)
	}
	e.clock.Advance(31 * time.Second)
	e.call("GET", "/api/v1/projects", nt.Token, nil, 200, nil)
	e.svc.Flush(t.Context())
	if got := lastUsed(e, nt.ID); !got.After(used) {
		t.Fatalf("lastUsedAt did not move after a minute: %v -> %v", used, got)
	}
}

func lastUsed(e *env, id string) time.Time {
	e.t.Helper()
	var list gatehouse.List[gatehouse.Token]
	e.call("GET", "/api/v1/account/admin/token", e.admin, nil, 200, &list)
	for _, tk := range list.Items {
		if tk.ID == id {
			return tk.LastUsedAt
		}
	}
	e.t.Fatalf("token %s not listed", id)
	return time.Time{}
}

func TestAuditPagination(t *testing.T) {
	e := newEnv(t)
	for i := range 25 { // each its own path: alike reads would be one counted event
		e.call("GET", fmt.Sprintf("/api/v1/projects/p%d", i), e.admin, nil, 404, nil)
	}
	e.svc.Flush(t.Context())
	seen := map[int64]bool{}
	cursor := ""
	pages := 0
	for {
		var page gatehouse.List[gatehouse.Event]
		e.call("GET", "/api/v1/audit?type=request&limit=10&cursor="+cursor, e.admin, nil, 200, &page)
		pages++
		for i, ev := range page.Items {
			if seen[ev.ID] {
				t.Fatalf("event %d seen twice", ev.ID)
			}
			seen[ev.ID] = true
			if i > 0 && ev.ID > page.Items[i-1].ID {
				t.Fatal("events not newest first")
			}
		}
		if page.NextCursor == "" {
			break
		}
		cursor = page.NextCursor
	}
	if len(seen) < 25 || pages < 3 {
		t.Fatalf("walked %d events in %d pages", len(seen), pages)
	}
	if s := e.status("GET", "/api/v1/audit?cursor=garbage!", e.admin, nil); s != 400 {
		t.Fatalf("bad cursor: %d, want 400", s)
	}
}

func TestUsersSeeOnlyTheirOwnEvents(t *testing.T) {
	e := newEnv(t)
	e.createUser("jill")
	jill := e.login("jill", "jill-password")
	e.call("GET", "/api/v1/session/userinfo", jill, nil, 200, nil)
	e.svc.Flush(t.Context())
	var page gatehouse.List[gatehouse.Event]
	e.call("GET", "/api/v1/audit", jill, nil, 200, &page)
	if len(page.Items) == 0 {
		t.Fatal("jill sees none of her events")
	}
	for _, ev := range page.Items {
		if ev.Actor != "jill" {
			t.Fatalf("jill sees %+v", ev)
		}
	}
	if s := e.status("GET", "/api/v1/audit?account=admin", jill, nil); s != 403 {
		t.Fatalf("jill reading admin's events: %d, want 403", s)
	}
}

func TestBreakGlassDryRunThenRevoke(t *testing.T) {
	e := newEnv(t)
	e.createUser("kim")
	e.createUser("lee")
	kimSession := e.login("kim", "kim-password")
	var kim []gatehouse.NewToken
	for i := range 3 {
		kim = append(kim, e.mint(kimSession, "kim", gatehouse.TokenRequest{Name: fmt.Sprint("k", i)}))
	}
	lee := e.mint(e.login("lee", "lee-password"), "lee", gatehouse.TokenRequest{})

	var dry gatehouse.BulkRevokeResult
	e.call("POST", "/api/v1/admin/revoke", e.admin, gatehouse.BulkRevoke{Account: "kim", DryRun: true}, 200, &dry)
	if dry.Count != 4 || !dry.DryRun { // three API tokens and one session
		t.Fatalf("dry run = %+v, want 4", dry)
	}
	for _, k := range kim {
		if s := e.status("GET", "/api/v1/session/userinfo", k.Token, nil); s != 200 {
			t.Fatalf("dry run revoked something: %d", s)
		}
	}
	var real gatehouse.BulkRevokeResult
	e.call("POST", "/api/v1/admin/revoke", e.admin, gatehouse.BulkRevoke{Account: "kim"}, 200, &real)
	if real.Count != dry.Count || strings.Join(sorted(real.IDs), ",") != strings.Join(sorted(dry.IDs), ",") {
		t.Fatalf("real run %+v differs from dry run %+v", real, dry)
	}
	for _, tok := range append([]string{kimSession}, kim[0].Token, kim[1].Token, kim[2].Token) {
		if s := e.status("GET", "/api/v1/session/userinfo", tok, nil); s != 401 {
			t.Fatalf("revoked token: %d, want 401", s)
		}
	}
	if s := e.status("GET", "/api/v1/session/userinfo", lee.Token, nil); s != 200 {
		t.Fatalf("unrelated token: %d, want 200", s)
	}
	// No filter at all is refused; a non-admin is refused.
	if s := e.status("POST", "/api/v1/admin/revoke", e.admin, gatehouse.BulkRevoke{}); s != 400 {
		t.Fatalf("no filter: %d, want 400", s)
	}
	if s := e.status("POST", "/api/v1/admin/revoke", lee.Token, gatehouse.BulkRevoke{Account: "kim"}); s != 403 {
		t.Fatalf("non-admin break-glass: %d, want 403", s)
	}
	// Server-wide by issue time.
	e.clock.Advance(time.Minute)
	cut := e.clock.Now()
	var byTime gatehouse.BulkRevokeResult
	e.call("POST", "/api/v1/admin/revoke", e.admin, gatehouse.BulkRevoke{IssuedBefore: cut, Kind: gatehouse.KindAPI}, 200, &byTime)
	if byTime.Count != 1 || byTime.IDs[0] != lee.ID {
		t.Fatalf("issuedBefore revoke = %+v, want lee's token", byTime)
	}
}

// TestNoSecretReachesLogsOrTheDatabase runs a broad scenario with a JSON
// logger and then greps the log and every database file for each secret
// it minted or typed.
func TestNoSecretReachesLogsOrTheDatabase(t *testing.T) {
	var logs bytes.Buffer
	e := newEnv(t, withLogger(&logs))
	secrets := []string{adminPassword, e.admin}
	e.createUser("max")
	secrets = append(secrets, "max-password")
	maxS := e.login("max", "max-password")
	secrets = append(secrets, maxS)
	e.do("POST", "/api/v1/session", "", gatehouse.LoginRequest{Username: "max", Password: "typo-password-1"})
	secrets = append(secrets, "typo-password-1")
	nt := e.mint(e.admin, "admin", gatehouse.TokenRequest{Name: "secret-test"})
	secrets = append(secrets, nt.Token)
	var rotated gatehouse.NewToken
	e.call("POST", "/api/v1/account/admin/token/"+nt.ID+"/rotate", e.admin, gatehouse.RotateRequest{}, 200, &rotated)
	secrets = append(secrets, rotated.Token)
	e.do("GET", "/api/v1/projects", rotated.Token, nil)
	e.do("GET", "/api/v1/projects", nt.Token, nil) // revoked: 401
	e.do("GET", "/api/v1/projects?token="+rotated.Token, "", nil)
	e.call("PUT", "/api/v1/account/password", maxS, gatehouse.PasswordChange{CurrentPassword: "max-password", NewPassword: "max-password-2"}, 200, nil)
	secrets = append(secrets, "max-password-2")
	e.call("POST", "/api/v1/projects", e.admin, gatehouse.Project{Name: "sec", Roles: []gatehouse.ProjectRole{{Name: "r"}}}, 200, nil)
	rt := roleToken(e, "sec", "r")
	secrets = append(secrets, rt.Token)
	e.do("GET", "/api/v1/projects/sec", rt.Token, nil)
	e.svc.Flush(t.Context())

	haystacks := map[string][]byte{"log": logs.Bytes()}
	files, _ := filepath.Glob(e.dbPath + "*")
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		haystacks[filepath.Base(f)] = b
	}
	if len(logs.Bytes()) == 0 {
		t.Fatal("no log output captured")
	}
	for _, s := range secrets {
		needles := []string{s}
		if _, body, ok := strings.Cut(s, ":"); ok && len(body) > 40 {
			needles = append(needles, body)
		}
		for name, hay := range haystacks {
			for _, n := range needles {
				if bytes.Contains(hay, []byte(n)) {
					t.Errorf("%s contains a secret (%d bytes long)", name, len(n))
				}
			}
		}
	}
}

func sorted(s []string) []string {
	out := slices.Clone(s)
	slices.Sort(out)
	return out
}

// requests is how many requests events stand for.
func requests(evs []gatehouse.Event) int {
	n := 0
	for _, e := range evs {
		n += e.Requests()
	}
	return n
}

// Alike allowed reads are stored as counts that add up to the requests
// made; a denial (or any event kept on its own) between reads splits
// them, so the reads before it are counted before it, and the chain,
// counts included, verifies.
func TestAllowedReadsAreCounted(t *testing.T) {
	e := newEnv(t)
	nt := e.mint(e.admin, "admin", gatehouse.TokenRequest{Name: "poller"})
	e.createUser("ivy")
	e.setPolicy("g, ivy, role:readonly", "")
	ivy := e.mint(e.login("ivy", "ivy-password"), "ivy", gatehouse.TokenRequest{})
	const before, after = 120, 80
	for range before {
		e.call("GET", "/api/v1/projects", nt.Token, nil, 200, nil)
	}
	if s := e.status("POST", "/api/v1/projects", ivy.Token, gatehouse.Project{Name: "nope"}); s != 403 {
		t.Fatalf("readonly create: %d", s)
	}
	for range after {
		e.call("GET", "/api/v1/projects", nt.Token, nil, 200, nil)
	}
	e.svc.Flush(t.Context())

	var denied, reads gatehouse.List[gatehouse.Event]
	e.call("GET", "/api/v1/audit?decision=deny&tokenId="+ivy.ID, e.admin, nil, 200, &denied)
	if len(denied.Items) != 1 || denied.Items[0].Count != 0 {
		t.Fatalf("denied events = %+v, want one, not counted", denied.Items)
	}
	cut := denied.Items[0].ID
	e.call("GET", "/api/v1/audit?type=request&limit=1000&tokenId="+nt.ID, e.admin, nil, 200, &reads)
	var pre, post []gatehouse.Event
	counted := false
	for _, ev := range reads.Items {
		if ev.Decision != "allow" || ev.Status != 200 || ev.Method != "GET" || ev.Path != "/api/v1/projects" || ev.Count < 0 || ev.Count == 1 {
			t.Fatalf("event = %+v", ev)
		}
		counted = counted || ev.Count > 1
		if ev.ID < cut {
			pre = append(pre, ev)
		} else {
			post = append(post, ev)
		}
	}
	if requests(pre) != before || requests(post) != after {
		t.Errorf("reads counted %d before the denial and %d after, want %d and %d", requests(pre), requests(post), before, after)
	}
	if !counted || len(reads.Items) >= before+after {
		t.Errorf("%d events for %d alike reads: none counted", len(reads.Items), before+after)
	}
	var v gatehouse.ChainVerification
	e.call("GET", "/api/v1/audit/verify", e.admin, nil, 200, &v)
	if !v.OK {
		t.Errorf("verify with counted reads: %+v", v)
	}
}
