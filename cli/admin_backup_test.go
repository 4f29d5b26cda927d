package cli

import (
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/store/sqlite"
)

// backupDir lists a directory, to show that a backup left no temporary
// file behind.
func backupDir(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		out = append(out, e.Name())
	}
	return out
}

// TestAdminBackupAgainstTheRealServer: the current context's server
// writes a backup that is a Gatehouse store, mode 0600, with the SHA-256
// printed; an existing file is left alone unless --force; a caller
// without settings, update, backup is refused and no file is made.
func TestAdminBackupAgainstTheRealServer(t *testing.T) {
	api := newRealAPI(t, false, "")
	run, _ := api.loggedIn(t)
	dir := t.TempDir()
	file := filepath.Join(dir, "gatehouse.db")

	res := run.run(t, "admin", "backup", file)
	mustSucceed(t, res)
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprintf("backup written to %s (%d bytes, sha256 %x)\n", file, len(b), sha256.Sum256(b)); res.stdout != want {
		t.Errorf("stdout %q, want %q", res.stdout, want)
	}
	if fi, _ := os.Stat(file); fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", fi.Mode().Perm())
	}
	if _, err := sqlite.Verify(t.Context(), file); err != nil {
		t.Errorf("the backup is not a store: %v", err)
	}
	if got := backupDir(t, dir); len(got) != 1 {
		t.Errorf("the directory holds %v, want only the backup", got)
	}

	mustFail(t, run.run(t, "admin", "backup", file), "exists: pass --force to replace it")
	if again, _ := os.ReadFile(file); string(again) != string(b) {
		t.Error("a refused backup changed the file")
	}
	mustSucceed(t, run.run(t, "admin", "backup", "--force", file))
	if _, err := sqlite.Verify(t.Context(), file); err != nil {
		t.Errorf("the forced backup is not a store: %v", err)
	}

	admin := api.adminClient(t)
	if _, err := admin.CreateAccount(t.Context(), gatehouse.AccountCreate{Name: "ivy", Capabilities: []gatehouse.Capability{"login"}, Password: "ivy-password"}); err != nil {
		t.Fatal(err)
	}
	ivy, _ := newRun(t)
	mustSucceed(t, ivy.run(t, "login", api.URL, "--username", "ivy", "--password", "ivy-password"))
	other := filepath.Join(dir, "ivy.db")
	mustFail(t, ivy.run(t, "admin", "backup", other), "permission denied: settings, update, backup")
	if got := backupDir(t, dir); len(got) != 1 {
		t.Errorf("a refused backup left %v", got)
	}
}

// TestAdminBackupRefusesWhatIsNotWhole: an answer cut short, one whose
// SHA-256 is not the one sent, and the PostgreSQL refusal leave no file.
func TestAdminBackupRefusesWhatIsNotWhole(t *testing.T) {
	body := []byte("SQLite format 3\x00 and the rest of a database")
	sum := sha256.Sum256(body)
	digest := "sha-256=:" + base64.StdEncoding.EncodeToString(sum[:]) + ":"
	serve := func(length int, digest string, send []byte) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/octet-stream")
			w.Header().Set("Repr-Digest", digest)
			w.Header().Set("Content-Length", fmt.Sprint(length))
			w.Write(send)
		}
	}
	for _, tc := range []struct {
		name    string
		h       http.HandlerFunc
		wantErr string
	}{
		{"fail/cut short", serve(len(body)+10, digest, body), "unexpected EOF"},
		{"fail/damaged", serve(len(body), digest, append([]byte("X"), body[1:]...)), "damaged on the way"},
		{"fail/no digest", serve(len(body), "", body), "no sha-256 Repr-Digest"},
		{"fail/PostgreSQL", replyError(http.StatusPreconditionFailed, gatehouse.EPRECONDITION, "this server's store is PostgreSQL, which is not backed up through the API: back up the database with pg_dump"), "back up the database with pg_dump"},
		{"fail/not a backup", reply(map[string]string{"hello": "world"}), `answered "application/json", not a backup`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			api := newFakeAPI(t, map[string]http.HandlerFunc{"GET /api/v1/admin/backup": tc.h})
			dir := t.TempDir()
			res := authed(t, api).run(t, "admin", "backup", filepath.Join(dir, "b.db"))
			mustFail(t, res, tc.wantErr)
			if got := backupDir(t, dir); len(got) != 0 {
				t.Errorf("the failed backup left %v", got)
			}
			if strings.Contains(res.stderr, testToken) {
				t.Error("the error shows the token")
			}
		})
	}
}
