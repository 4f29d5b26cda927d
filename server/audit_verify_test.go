package server_test

import (
	"database/sql"
	"fmt"
	"net/url"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
)

// The audit chain through the real server: rows changed in the database
// behind its back are found by GET /api/v1/audit/verify, which names the
// first event that does not fit.

// sqlExec runs statements on the test's database file directly, as
// someone with access to it would.
func sqlExec(t *testing.T, dbPath string, stmts ...string) {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+dbPath+"?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1) // one connection: its temporary tables last
	for _, q := range stmts {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
}

// eventRowIDs lists the ids of the events table, in order.
func eventRowIDs(t *testing.T, dbPath string) []int64 {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+dbPath+"?mode=ro&_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query(`SELECT id FROM events ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var ids []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	return ids
}

func (e *env) verifyAudit(tok, anchor string) gatehouse.ChainVerification {
	e.t.Helper()
	path := "/api/v1/audit/verify"
	if anchor != "" {
		path += "?anchor=" + url.QueryEscape(anchor)
	}
	var res gatehouse.ChainVerification
	e.call("GET", path, tok, nil, 200, &res)
	return res
}

// auditEnv is a server with a dozen events in its trail, all written.
func auditEnv(t *testing.T) (*env, []int64) {
	e := newEnv(t)
	for i := range 10 { // each its own path: alike reads would be one counted event
		e.call("GET", fmt.Sprintf("/api/v1/projects/p%d", i), e.admin, nil, 404, nil)
	}
	e.svc.Flush(t.Context())
	return e, eventRowIDs(t, e.dbPath)
}

func TestAuditVerifyDetectsTamperedRows(t *testing.T) {
	q := func(format string, ids ...int64) string {
		args := make([]any, len(ids))
		for i, id := range ids {
			args[i] = id
		}
		return fmt.Sprintf(format, args...)
	}
	tests := []struct {
		name    string
		tamper  func(ids []int64) []string
		wantBad func(ids []int64) int64
	}{
		{"fail/a field changed", func(ids []int64) []string {
			return []string{q(`UPDATE events SET actor = 'mallory' WHERE id = %d`, ids[4])}
		}, func(ids []int64) int64 { return ids[4] }},
		{"fail/a time changed by a nanosecond", func(ids []int64) []string {
			return []string{q(`UPDATE events SET time = time + 1 WHERE id = %d`, ids[2])}
		}, func(ids []int64) int64 { return ids[2] }},
		{"fail/a middle row deleted", func(ids []int64) []string {
			return []string{q(`DELETE FROM events WHERE id = %d`, ids[4])}
		}, func(ids []int64) int64 { return ids[5] }},
		{"fail/two rows swapped", func(ids []int64) []string {
			a, b := ids[len(ids)-3], ids[len(ids)-2] // GET /api/v1/account and /api/v1/account/admin
			return []string{
				q(`CREATE TEMP TABLE swap AS SELECT * FROM events WHERE id IN (%d, %d)`, a, b),
				q(`UPDATE events SET path = (SELECT path FROM swap WHERE id = %d), route = (SELECT route FROM swap WHERE id = %d),
					object = (SELECT object FROM swap WHERE id = %d) WHERE id = %d`, b, b, b, a),
				q(`UPDATE events SET path = (SELECT path FROM swap WHERE id = %d), route = (SELECT route FROM swap WHERE id = %d),
					object = (SELECT object FROM swap WHERE id = %d) WHERE id = %d`, a, a, a, b),
			}
		}, func(ids []int64) int64 { return ids[len(ids)-3] }},
		{"fail/a hash rewritten", func(ids []int64) []string {
			return []string{q(`UPDATE events SET hash = zeroblob(32) WHERE id = %d`, ids[5])}
		}, func(ids []int64) int64 { return ids[5] }},
		{"fail/a row inserted without a link", func(ids []int64) []string {
			return []string{q(`INSERT INTO events (id, time, type, actor, token_id, token_kind, method, path, resource, action, object, decision, status, remote_addr, user_agent, detail, via, route, account)
				SELECT %d + 1, time, type, 'mallory', token_id, token_kind, method, path, resource, action, object, decision, status, remote_addr, user_agent, detail, via, route, account FROM events WHERE id = %d`, ids[len(ids)-1], ids[len(ids)-1])}
		}, func(ids []int64) int64 { return ids[len(ids)-1] + 1 }},
		{"fail/the newest row deleted", func(ids []int64) []string {
			return []string{q(`DELETE FROM events WHERE id = %d`, ids[len(ids)-1])}
		}, func(ids []int64) int64 { return ids[len(ids)-1] }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e, ids := auditEnv(t)
			if len(ids) < 10 {
				t.Fatalf("only %d events", len(ids))
			}
			before := e.verifyAudit(e.admin, "")
			if !before.OK || before.Events < int64(len(ids)) {
				t.Fatalf("before tampering: %+v", before)
			}
			e.svc.Flush(t.Context())
			ids = eventRowIDs(t, e.dbPath)
			sqlExec(t, e.dbPath, tc.tamper(ids)...)
			got := e.verifyAudit(e.admin, "")
			if got.OK || got.FirstBadID != tc.wantBad(ids) {
				t.Errorf("got ok %v, firstBadId %d (%s); want not ok at %d", got.OK, got.FirstBadID, got.Problem, tc.wantBad(ids))
			}
			if got.Head != nil || got.Anchor != "" {
				t.Errorf("a chain that does not verify has a head: %+v", got)
			}
		})
	}
}

// TestAuditVerifyAnchor: cutting off the newest events and moving the
// recorded head back verifies on its own (nothing inside the database
// can tell), but not against a head exported before; a rewritten chain
// likewise.
func TestAuditVerifyAnchor(t *testing.T) {
	e, _ := auditEnv(t)
	exported := e.verifyAudit(e.admin, "")
	if !exported.OK || exported.Anchor == "" {
		t.Fatalf("verify: %+v", exported)
	}
	for range 3 {
		e.call("GET", "/api/v1/account", e.admin, nil, 200, nil)
	}
	if got := e.verifyAudit(e.admin, exported.Anchor); !got.OK || !got.AnchorChecked || got.HeadID <= exported.HeadID {
		t.Fatalf("verify against an earlier head: %+v", got)
	}
	e.svc.Flush(t.Context())
	// Cut the trail back to before the exported head, head and all.
	sqlExec(t, e.dbPath,
		fmt.Sprintf(`DELETE FROM events WHERE id >= %d`, exported.HeadID),
		fmt.Sprintf(`UPDATE audit_chain SET (head_id, head_hash) = (SELECT id, hash FROM events WHERE id < %d ORDER BY id DESC LIMIT 1)`, exported.HeadID))
	if got := e.verifyAudit(e.admin, ""); !got.OK {
		t.Fatalf("a trail cut back with its head moved should verify on its own: %+v", got)
	}
	e.svc.Flush(t.Context())
	if got := e.verifyAudit(e.admin, exported.Anchor); got.OK || got.FirstBadID != exported.HeadID {
		t.Errorf("against the exported head: got ok %v, firstBadId %d (%s); want not ok at %d", got.OK, got.FirstBadID, got.Problem, exported.HeadID)
	}

	// Bad anchors are refused; the permission is the whole trail's.
	for _, a := range []string{"x", "1:abc", "-1:" + exported.Anchor[len(exported.Anchor)-64:]} {
		if code := e.status("GET", "/api/v1/audit/verify?anchor="+url.QueryEscape(a), e.admin, nil); code != 400 {
			t.Errorf("anchor %q: status %d, want 400", a, code)
		}
	}
	if code := e.status("GET", "/api/v1/audit/verify?from=1", e.admin, nil); code != 400 {
		t.Errorf("an unknown parameter: status %d, want 400", code)
	}
	e.createUser("bob")
	bob := e.login("bob", "bob-password")
	if got, b := e.do("GET", "/api/v1/audit/verify", bob, nil); got != 403 || !contains(b, "audit, get, *") {
		t.Errorf("bob: status %d %s, want 403 naming audit, get, *", got, b)
	}
	if code := e.status("GET", "/api/v1/audit/verify", "", nil); code != 401 {
		t.Errorf("no credential: status %d, want 401", code)
	}
}

// TestAuditVerifyAfterPrune: the reaper's retention prune keeps the rest
// verifiable, from the boundary it records, and a head exported before it
// at the boundary still checks.
func TestAuditVerifyAfterPrune(t *testing.T) {
	e, _ := auditEnv(t)
	old := e.verifyAudit(e.admin, "")
	e.clock.Advance(91 * 24 * time.Hour)
	admin := e.login("admin", adminPassword)
	for range 5 {
		e.call("GET", "/api/v1/account", admin, nil, 200, nil)
	}
	e.svc.Flush(t.Context())
	if _, err := e.svc.Reap(t.Context()); err != nil {
		t.Fatal(err)
	}
	got := e.verifyAudit(admin, "")
	if !got.OK || got.StartID < old.HeadID || got.StartHash == (gatehouse.ChainHash{}) {
		t.Fatalf("after the prune: %+v (the old head was %d)", got, old.HeadID)
	}
	if ids := eventRowIDs(t, e.dbPath); len(ids) == 0 || ids[0] <= old.HeadID {
		t.Errorf("the prune kept events up to %v", ids)
	}
	// An anchor from before the prune can no longer be checked.
	if again := e.verifyAudit(admin, old.Anchor); again.OK {
		t.Errorf("an anchor older than the oldest event kept verified: %+v", again)
	}
}
