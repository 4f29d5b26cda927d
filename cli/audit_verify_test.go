package cli

import (
	"database/sql"
	"encoding/json"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse"
)

// TestAuditVerifyAgainstTheRealServer: audit verify prints ok and the
// anchor and exits 0; with that anchor it checks it; after a row is
// changed in the database it names the event and exits 2, in JSON too;
// a caller who may not read the whole trail is refused.
func TestAuditVerifyAgainstTheRealServer(t *testing.T) {
	api := newRealAPI(t, false, "")
	run, _ := api.loggedIn(t)
	mustSucceed(t, run.run(t, "account", "list"))

	res := run.run(t, "audit", "verify", "-o", "json")
	mustSucceed(t, res)
	var v gatehouse.ChainVerification
	if err := json.Unmarshal([]byte(res.stdout), &v); err != nil {
		t.Fatalf("-o json: %v: %s", err, res.stdout)
	}
	if !v.OK || v.Events == 0 || v.Anchor == "" {
		t.Fatalf("verify: %+v", v)
	}
	table := run.run(t, "audit", "verify", "--anchor", v.Anchor)
	mustSucceed(t, table)
	for _, want := range []string{"ok: ", " events verified\n", "anchor:", "anchor " + v.Anchor + ":", "in the chain"} {
		if !strings.Contains(table.stdout, want) {
			t.Errorf("table output lacks %q:\n%s", want, table.stdout)
		}
	}
	mustFail(t, run.run(t, "audit", "verify", "--anchor", "12:xyz"), "an anchor is <event id>:<64 hex digits>")

	// Someone with the database file changes one event.
	api.svc.Flush(t.Context())
	db, err := sql.Open("sqlite", "file:"+api.dbPath+"?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var id int64
	if err := db.QueryRow(`SELECT id FROM events WHERE hash IS NOT NULL ORDER BY id LIMIT 1 OFFSET 2`).Scan(&id); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`UPDATE events SET detail = 'nothing happened' WHERE id = ?`, id); err != nil {
		t.Fatal(err)
	}
	bad := run.run(t, "audit", "verify")
	if bad.code != exitNotVerified || bad.stderr != "" {
		t.Errorf("a tampered trail: exit %d, stderr %q; want exit %d and no error line", bad.code, bad.stderr, exitNotVerified)
	}
	if want := "first bad event:  "; !strings.Contains(bad.stdout, "NOT OK") || !strings.Contains(bad.stdout, want) {
		t.Errorf("table output of a bad chain:\n%s", bad.stdout)
	}
	badJSON := run.run(t, "audit", "verify", "-o", "json")
	var bv gatehouse.ChainVerification
	if err := json.Unmarshal([]byte(badJSON.stdout), &bv); err != nil || badJSON.code != exitNotVerified {
		t.Fatalf("-o json of a bad chain: exit %d, %v: %s", badJSON.code, err, badJSON.stdout)
	}
	if bv.OK || bv.FirstBadID != id {
		t.Errorf("got ok %v, firstBadId %d; want not ok at %d", bv.OK, bv.FirstBadID, id)
	}

	admin := api.adminClient(t)
	if _, err := admin.CreateAccount(t.Context(), gatehouse.AccountCreate{Name: "ivy", Capabilities: []gatehouse.Capability{"login"}, Password: "ivy-password"}); err != nil {
		t.Fatal(err)
	}
	ivy, _ := newRun(t)
	mustSucceed(t, ivy.run(t, "login", api.URL, "--username", "ivy", "--password", "ivy-password"))
	mustFail(t, ivy.run(t, "audit", "verify"), "permission denied: audit, get, *")
}
