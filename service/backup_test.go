package service_test

import (
	"crypto/sha256"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/service"
	"github.com/gatehouse/gatehouse/store/sqlite"
)

// backupWorld is a service on a SQLite store, an admin session, and every
// secret the test handed out (to look for in the audit trail).
type backupWorld struct {
	t       *testing.T
	dir     string
	now     time.Time
	st      *sqlite.Store
	svc     *service.Service
	admin   *service.Principal
	is      *rsaIssuer
	secrets []string
	// restores counts restoreOverLive's restored stores, which it names.
	restores int
}

const backupAdminPassword = "admin-password-1"

// basePolicy is the policy service gives a store at its first start.
const basePolicy = "p, ci, applications, sync, *, allow"

func newBackupWorld(t *testing.T) *backupWorld {
	t.Helper()
	w := &backupWorld{t: t, dir: t.TempDir(), now: time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC), is: newRSAIssuer(t)}
	w.st = w.open("live.db")
	w.svc = w.service(w.st)
	if _, err := w.svc.Bootstrap(t.Context(), backupAdminPassword); err != nil {
		t.Fatal(err)
	}
	w.admin = w.login(w.svc, "admin", backupAdminPassword)
	return w
}

func (w *backupWorld) clock() time.Time { return w.now }

func (w *backupWorld) open(name string) *sqlite.Store {
	w.t.Helper()
	st, err := sqlite.Open(w.t.Context(), filepath.Join(w.dir, name))
	if err != nil {
		w.t.Fatal(err)
	}
	w.t.Cleanup(func() { st.Close() })
	return st
}

// service is a service on st as a server starting on it builds one.
func (w *backupWorld) service(st gatehouse.Store) *service.Service {
	w.t.Helper()
	svc, err := service.New(w.t.Context(), service.Options{Store: st, Now: w.clock, BcryptCost: 10,
		RBAC: gatehouse.RBAC{PolicyCSV: basePolicy}})
	if err != nil {
		w.t.Fatal(err)
	}
	return svc
}

func (w *backupWorld) login(svc *service.Service, name, password string) *service.Principal {
	w.t.Helper()
	nt, err := svc.Login(w.t.Context(), name, password, "127.0.0.1")
	if err != nil {
		w.t.Fatalf("login %s: %v", name, err)
	}
	w.secrets = append(w.secrets, nt.Token, password)
	p, err := svc.Authenticate(w.t.Context(), nt.Token)
	if err != nil {
		w.t.Fatal(err)
	}
	return p
}

func (w *backupWorld) session(name, password string) string {
	w.t.Helper()
	nt, err := w.svc.Login(w.t.Context(), name, password, "127.0.0.1")
	if err != nil {
		w.t.Fatalf("login %s: %v", name, err)
	}
	w.secrets = append(w.secrets, nt.Token)
	return nt.Token
}

func (w *backupWorld) account(name, password string, caps ...gatehouse.Capability) {
	w.t.Helper()
	if _, err := w.svc.CreateAccount(w.t.Context(), w.admin, gatehouse.AccountCreate{Name: name, Password: password, Capabilities: caps}); err != nil {
		w.t.Fatalf("create %s: %v", name, err)
	}
	if password != "" {
		w.secrets = append(w.secrets, password)
	}
}

func (w *backupWorld) mint(account, name string, expiresIn int64) gatehouse.NewToken {
	w.t.Helper()
	req := gatehouse.TokenRequest{Name: name}
	if expiresIn > 0 {
		req.ExpiresIn = &expiresIn
	}
	nt, err := w.svc.CreateToken(w.t.Context(), w.admin, account, req)
	if err != nil {
		w.t.Fatalf("mint %s for %s: %v", name, account, err)
	}
	w.secrets = append(w.secrets, nt.Token)
	return nt
}

// exchange trades a fresh subject token for a token of policy; it returns
// both.
func (w *backupWorld) exchange(policy string) (subject, token string) {
	w.t.Helper()
	subject = w.is.token(w.t, w.now)
	req := exchangeRequest(subject)
	req.TrustPolicy = policy
	res, err := w.svc.Exchange(w.t.Context(), req, "127.0.0.1", "test")
	if err != nil {
		w.t.Fatalf("exchange through %s: %v", policy, err)
	}
	w.secrets = append(w.secrets, subject, res.AccessToken)
	return subject, res.AccessToken
}

// backup takes a backup through the service and writes it to a file.
func (w *backupWorld) backup(name string) string {
	w.t.Helper()
	b, err := w.svc.Backup(w.t.Context(), w.admin, "192.0.2.10")
	if err != nil {
		w.t.Fatal(err)
	}
	defer b.Close()
	path := filepath.Join(w.dir, name)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		w.t.Fatal(err)
	}
	h := sha256.New()
	if _, err := io.Copy(io.MultiWriter(f, h), b); err != nil {
		w.t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		w.t.Fatal(err)
	}
	if got := [32]byte(h.Sum(nil)); got != b.SHA256 {
		w.t.Fatalf("backup SHA-256: the copy has %x, the backup says %x", got, b.SHA256)
	}
	return path
}

// restoredCopy makes a new database of the backup file's rows, as
// gatehouse admin restore does (sqlite.Rebuild), and opens it.
func (w *backupWorld) restoredCopy(backup, name string) *sqlite.Store {
	w.t.Helper()
	if _, err := sqlite.Rebuild(w.t.Context(), backup, filepath.Join(w.dir, name)); err != nil {
		w.t.Fatal(err)
	}
	return w.open(name)
}

// from is what a restore of the backup file is told of it.
func from(t *testing.T, backup string) service.RestoreFrom {
	t.Helper()
	b, err := os.ReadFile(backup)
	if err != nil {
		t.Fatal(err)
	}
	return service.RestoreFrom{Name: filepath.Base(backup), SHA256: sha256.Sum256(b)}
}

func works(t *testing.T, svc *service.Service, tok string) bool {
	t.Helper()
	_, err := svc.Authenticate(t.Context(), tok)
	return err == nil
}

// events reads the audit events of type typ, newest first.
func events(t *testing.T, svc *service.Service, p *service.Principal, typ string) []gatehouse.Event {
	t.Helper()
	l, err := svc.ListEvents(t.Context(), p, gatehouse.EventFilter{Type: typ, Limit: 1000}, "")
	if err != nil {
		t.Fatal(err)
	}
	return l.Items
}

// noSecretIn fails if any event of st holds one of the secrets.
func (w *backupWorld) noSecretIn(st gatehouse.Store) {
	w.t.Helper()
	var evs []gatehouse.Event
	if err := st.View(w.t.Context(), func(tx gatehouse.Tx) error {
		var err error
		evs, err = tx.ListEvents(w.t.Context(), gatehouse.EventFilter{})
		return err
	}); err != nil {
		w.t.Fatal(err)
	}
	for _, ev := range evs {
		s := fmt.Sprintf("%+v", ev)
		for _, secret := range w.secrets {
			if strings.Contains(s, secret) {
				w.t.Fatalf("event %s holds a secret: %s", ev.Type, s)
			}
		}
	}
}

// TestRestoreCarriesEveryRevocation: a backup is taken; afterwards tokens
// are revoked, accounts disabled, cut off, re-passworded and deleted,
// trust policies deleted and changed, a subject token exchanged, and new
// things made. Restoring the backup over that store keeps every one of
// those revocations, drops what came later, reports it all, and records
// the restore in the restored audit trail, with no secret anywhere.
func TestRestoreCarriesEveryRevocation(t *testing.T) {
	w := newBackupWorld(t)
	ctx := t.Context()
	w.account("alice", "alice-password", gatehouse.CapLogin, gatehouse.CapAPIKey)
	w.account("bob", "", gatehouse.CapAPIKey)
	w.account("carol", "carol-password", gatehouse.CapLogin, gatehouse.CapAPIKey)
	w.account("dave", "", gatehouse.CapAPIKey)
	w.account("ci", "", gatehouse.CapAPIKey)
	keep := w.mint("alice", "keep", 0)
	revokedBefore := w.mint("alice", "revoked before", 0)
	revokedAfter := w.mint("alice", "revoked after", 0)
	rotated := w.mint("alice", "rotated after", 30*24*3600)
	bobs := w.mint("bob", "bob's", 0)
	carols := w.mint("carol", "carol's", 0)
	carolSession := w.session("carol", "carol-password")
	daves := w.mint("dave", "dave's", 0)
	if err := w.svc.ApplyTrustPolicies(ctx, []gatehouse.TrustPolicy{w.is.policy("deploy"), w.is.policy("old"), w.is.policy("changed")}); err != nil {
		t.Fatal(err)
	}
	_, viaDeploy := w.exchange("deploy")
	_, viaOld := w.exchange("old")
	_, viaChanged := w.exchange("changed")
	if err := w.svc.DeleteToken(ctx, w.admin, "alice", revokedBefore.ID); err != nil {
		t.Fatal(err)
	}

	takenAt := w.now
	backup := w.backup("backup.db")
	w.now = w.now.Add(time.Minute)

	// After the backup.
	if err := w.svc.DeleteToken(ctx, w.admin, "alice", revokedAfter.ID); err != nil {
		t.Fatal(err)
	}
	successor, err := w.svc.RotateToken(ctx, w.admin, "alice", rotated.ID, gatehouse.RotateRequest{GraceSeconds: 3600})
	if err != nil {
		t.Fatal(err)
	}
	w.secrets = append(w.secrets, successor.Token)
	off, apiKeyless := false, []gatehouse.Capability{gatehouse.CapLogin}
	if _, err := w.svc.UpdateAccount(ctx, w.admin, "bob", gatehouse.AccountPatch{Enabled: &off}); err != nil {
		t.Fatal(err)
	}
	if _, err := w.svc.UpdateAccount(ctx, w.admin, "carol", gatehouse.AccountPatch{Capabilities: &apiKeyless}); err != nil {
		t.Fatal(err)
	}
	if err := w.svc.UpdatePassword(ctx, w.admin, gatehouse.PasswordChange{Name: "carol", CurrentPassword: backupAdminPassword, NewPassword: "carol-password-2"}, "127.0.0.1"); err != nil {
		t.Fatal(err)
	}
	w.secrets = append(w.secrets, "carol-password-2")
	if err := w.svc.DeleteAccount(ctx, w.admin, "dave"); err != nil {
		t.Fatal(err)
	}
	if err := w.svc.DeleteTrustPolicy(ctx, w.admin, "old"); err != nil {
		t.Fatal(err)
	}
	changed := w.is.policy("changed")
	changed.TTL = 600
	if _, err := w.svc.UpdateTrustPolicy(ctx, w.admin, "changed", changed); err != nil {
		t.Fatal(err)
	}
	spent, _ := w.exchange("deploy")
	w.account("erin", "", gatehouse.CapAPIKey)
	if _, err := w.svc.PutRBAC(ctx, w.admin, gatehouse.RBAC{PolicyCSV: "p, ci, applications, sync, *, allow\ng, erin, role:readonly"}); err != nil {
		t.Fatal(err)
	}

	// The restore, offline: a copy of the backup, and the live store it
	// replaces.
	w.now = w.now.Add(time.Minute)
	rs := w.restoredCopy(backup, "restored.db")
	report, err := w.service(rs).Restore(ctx, w.st, from(t, backup), "live.db.replaced")
	if err != nil {
		t.Fatal(err)
	}
	want := gatehouse.RestoreReport{
		Carried:       true,
		SHA256:        from(t, backup).SHA256,
		BackupTakenAt: takenAt,
		BackupTakenBy: "admin",
		// revoked after, bob's (disabled), carol's (apiKey removed), carol's
		// session (password changed), dave's (deleted), via old (deleted),
		// via changed (changed).
		TokensRevoked: 7,
		// rotated with a grace period
		TokensShortened: 1,
		// dave
		AccountsDeleted: 1,
		// bob disabled; carol's capabilities and password
		AccountsUpdated:  2,
		AccountsDisabled: 1,
		// old deleted, changed changed
		TrustPoliciesDeleted: 1,
		TrustPoliciesUpdated: 1,
		// spent after the backup
		ExchangeReplays: 1,
		// erin; the rotation's successor and the exchange after the backup
		NewerAccounts: 1,
		NewerTokens:   2,
		// erin's line in the policy
		RBACUpdated: true,
	}
	if report != want {
		t.Errorf("report:\n got %+v\nwant %+v", report, want)
	}

	// A server starting on the restored store.
	svc := w.service(rs)
	for _, c := range []struct {
		name, tok string
		want      bool
	}{
		{"kept token", keep.Token, true},
		{"rotated token (in its grace period)", rotated.Token, true},
		{"exchanged through a policy kept", viaDeploy, true},
		{"revoked before the backup", revokedBefore.Token, false},
		{"revoked after the backup", revokedAfter.Token, false},
		{"of an account disabled after the backup", bobs.Token, false},
		{"API token of an account that lost apiKey after the backup", carols.Token, false},
		{"session of an account whose password changed after the backup", carolSession, false},
		{"of an account deleted after the backup", daves.Token, false},
		{"through a trust policy deleted after the backup", viaOld, false},
		{"through a trust policy changed after the backup", viaChanged, false},
		{"made after the backup", successor.Token, false},
	} {
		if got := works(t, svc, c.tok); got != c.want {
			t.Errorf("%s: works %v, want %v", c.name, got, c.want)
		}
	}
	admin := w.login(svc, "admin", backupAdminPassword)
	if a, err := svc.GetAccount(ctx, admin, "bob"); err != nil || a.Enabled {
		t.Errorf("bob: enabled %v (%v), want disabled", a.Enabled, err)
	}
	if a, err := svc.GetAccount(ctx, admin, "carol"); err != nil || a.Has(gatehouse.CapAPIKey) {
		t.Errorf("carol: capabilities %v (%v), want login only", a.Capabilities, err)
	}
	for _, gone := range []string{"dave", "erin"} {
		if _, err := svc.GetAccount(ctx, admin, gone); !gatehouse.IsCode(err, gatehouse.ENOTFOUND) {
			t.Errorf("account %s: %v, want not found", gone, err)
		}
	}
	if _, err := svc.Login(ctx, "carol", "carol-password", "127.0.0.1"); err == nil {
		t.Error("carol's password from before the backup still works")
	}
	w.login(svc, "carol", "carol-password-2")
	if _, err := svc.GetTrustPolicy(ctx, admin, "old"); !gatehouse.IsCode(err, gatehouse.ENOTFOUND) {
		t.Errorf("trust policy old: %v, want not found", err)
	}
	if tp, err := svc.GetTrustPolicy(ctx, admin, "changed"); err != nil || tp.TTL != 600 {
		t.Errorf("trust policy changed: ttl %d (%v), want 600", tp.TTL, err)
	}
	req := exchangeRequest(spent)
	req.TrustPolicy = "deploy"
	if _, err := svc.Exchange(ctx, req, "127.0.0.1", "test"); err == nil {
		t.Error("a subject token exchanged after the backup was exchanged again")
	}
	w.svc = svc
	w.exchange("deploy") // a fresh one still is

	// The rotated token keeps the replaced store's earlier expiry.
	w.now = w.now.Add(2 * time.Hour)
	if works(t, w.service(rs), rotated.Token) {
		t.Error("the rotated token outlived its grace period")
	}

	evs := events(t, svc, admin, gatehouse.EventStoreRestored)
	if len(evs) != 1 || evs[0].Actor != "restore" || !strings.Contains(evs[0].Detail, "7 token(s) revoked") || !strings.Contains(evs[0].Detail, "from backup.db") {
		t.Errorf("store.restored events: %+v", evs)
	}
	w.noSecretIn(rs)
	w.noSecretIn(w.st)
}

// TestRestoreRefusesAnUnrelatedStore: a data directory whose database is
// not the backup's (a new one a server made after the old was lost) is
// refused, with what to do, and the restored copy is left as it was: each
// of its tokens would otherwise count as revoked.
func TestRestoreRefusesAnUnrelatedStore(t *testing.T) {
	w := newBackupWorld(t)
	w.account("alice", "", gatehouse.CapAPIKey)
	tok := w.mint("alice", "laptop", 0)
	backup := w.backup("backup.db")

	w.now = w.now.Add(time.Hour)
	other := w.open("other.db")
	if _, err := w.service(other).Bootstrap(t.Context(), "another-admin-password"); err != nil {
		t.Fatal(err)
	}
	rs := w.restoredCopy(backup, "restored.db")
	_, err := w.service(rs).Restore(t.Context(), other, from(t, backup), "")
	if !gatehouse.IsCode(err, gatehouse.EPRECONDITION) || !strings.Contains(gatehouse.ErrorMessage(err), "move it out of the data directory") {
		t.Fatalf("restore over an unrelated store: %v, want EPRECONDITION saying what to do", err)
	}
	svc := w.service(rs)
	if !works(t, svc, tok.Token) {
		t.Error("the refused restore revoked a token")
	}
	if evs := events(t, svc, w.login(svc, "admin", backupAdminPassword), gatehouse.EventStoreRestored); len(evs) != 0 {
		t.Errorf("the refused restore was recorded: %+v", evs)
	}
}

// TestRestoreWithNothingToCarry: with no store to replace, or an empty
// one, nothing is carried, the report says so, and so does the audit
// trail; the backup's tokens work.
func TestRestoreWithNothingToCarry(t *testing.T) {
	for _, tc := range []struct {
		name    string
		current func(w *backupWorld) gatehouse.Store
	}{
		{"ok/no store", func(*backupWorld) gatehouse.Store { return nil }},
		{"ok/an empty store", func(w *backupWorld) gatehouse.Store { return w.open("empty.db") }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newBackupWorld(t)
			w.account("alice", "", gatehouse.CapAPIKey)
			tok := w.mint("alice", "laptop", 0)
			backup := w.backup("backup.db")
			if err := w.svc.DeleteToken(t.Context(), w.admin, "alice", tok.ID); err != nil {
				t.Fatal(err)
			}
			rs := w.restoredCopy(backup, "restored.db")
			report, err := w.service(rs).Restore(t.Context(), tc.current(w), from(t, backup), "")
			if err != nil {
				t.Fatal(err)
			}
			if report != (gatehouse.RestoreReport{SHA256: from(t, backup).SHA256}) {
				t.Errorf("report %+v, want nothing carried", report)
			}
			svc := w.service(rs)
			if !works(t, svc, tok.Token) {
				t.Error("a token of the backup does not work")
			}
			evs := events(t, svc, w.login(svc, "admin", backupAdminPassword), gatehouse.EventStoreRestored)
			if len(evs) != 1 || !strings.Contains(evs[0].Detail, "revocations made after the backup cannot be known") {
				t.Errorf("store.restored events: %+v", evs)
			}
		})
	}
}

// hidden is a store that does not show that it can take snapshots, as
// the PostgreSQL store cannot.
type hidden struct{ gatehouse.Store }

// TestBackup: the copy is a Gatehouse store that Verify accepts, recorded
// with who took it, from where, and its digest, before it is handed out;
// a caller without settings, update, backup is refused, and so is a store that
// cannot take snapshots, with what to do instead.
func TestBackup(t *testing.T) {
	w := newBackupWorld(t)
	ctx := t.Context()
	w.account("alice", "alice-password", gatehouse.CapLogin, gatehouse.CapAPIKey)
	w.mint("alice", "laptop", 0)
	path := w.backup("backup.db")
	info, err := sqlite.Verify(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	if info.Accounts != 2 || info.Tokens != 2 {
		t.Errorf("backup holds %d accounts and %d tokens, want 2 and 2", info.Accounts, info.Tokens)
	}
	b, _ := os.ReadFile(path)
	evs := events(t, w.svc, w.admin, gatehouse.EventStoreBackup)
	if len(evs) != 1 {
		t.Fatalf("store.backup events: %+v", evs)
	}
	ev := evs[0]
	if ev.Actor != "admin" || ev.Account != "admin" || ev.RemoteAddr != "192.0.2.10" || ev.TokenID != w.admin.TokenID() ||
		!strings.Contains(ev.Detail, fmt.Sprintf("sha256 %x", sha256.Sum256(b))) || !strings.Contains(ev.Detail, fmt.Sprintf("%d bytes", len(b))) {
		t.Errorf("store.backup event: %+v", ev)
	}

	alice := w.login(w.svc, "alice", "alice-password")
	if _, err := w.svc.Backup(ctx, alice, "192.0.2.11"); !gatehouse.IsCode(err, gatehouse.EFORBIDDEN) || !strings.Contains(gatehouse.ErrorMessage(err), "settings, update, backup") {
		t.Errorf("backup by alice: %v, want EFORBIDDEN naming settings, update, backup", err)
	}
	pg, err := service.New(ctx, service.Options{Store: hidden{w.st}, Now: w.clock, BcryptCost: 10})
	if err != nil {
		t.Fatal(err)
	}
	admin := w.login(pg, "admin", backupAdminPassword)
	if _, err := pg.Backup(ctx, admin, "192.0.2.12"); !gatehouse.IsCode(err, gatehouse.EPRECONDITION) || !strings.Contains(gatehouse.ErrorMessage(err), "pg_dump") {
		t.Errorf("backup of a store without snapshots: %v, want EPRECONDITION naming pg_dump", err)
	}
	if evs := events(t, w.svc, w.admin, gatehouse.EventStoreBackup); len(evs) != 1 {
		t.Errorf("refused backups were recorded: %+v", evs)
	}
	w.noSecretIn(w.st)
}

// TestResetAdminPassword: the new password follows the API's rules; once
// set, it logs in and the old one does not, the admin's sessions are
// revoked and its API tokens are not, its failed logins no longer
// throttle it, and the audit trail records who did it, without the
// password.
func TestResetAdminPassword(t *testing.T) {
	w := newBackupWorld(t)
	ctx := t.Context()
	other := w.session("admin", backupAdminPassword)
	key := w.mint("admin", "automation", 0)
	for range 6 {
		w.svc.Login(ctx, "admin", "wrong-password", "127.0.0.1")
	}
	if _, err := w.svc.Login(ctx, "admin", backupAdminPassword, "127.0.0.1"); !gatehouse.IsCode(err, gatehouse.ETHROTTLED) {
		t.Fatalf("after 6 failures: %v, want throttled", err)
	}

	// Offline: a service of its own on the store, as the command runs it.
	svc := w.service(w.st)
	for _, bad := range []string{"short", strings.Repeat("x", 73)} {
		if _, err := svc.ResetAdminPassword(ctx, bad, false); !gatehouse.IsCode(err, gatehouse.EINVALID) {
			t.Errorf("password of %d bytes: %v, want EINVALID", len(bad), err)
		}
	}
	const fresh = "a-new-admin-password"
	w.secrets = append(w.secrets, fresh)
	got, err := svc.ResetAdminPassword(ctx, fresh, false)
	if err != nil {
		t.Fatal(err)
	}
	if want := (service.PasswordReset{SessionsRevoked: 2, APITokensLeft: 1}); got != want {
		t.Errorf("reset: %+v, want %+v", got, want)
	}

	// The server again.
	svc = w.service(w.st)
	if works(t, svc, other) {
		t.Error("a session from before the reset still works")
	}
	if !works(t, svc, key.Token) {
		t.Error("the admin's API token was revoked")
	}
	if _, err := svc.Login(ctx, "admin", backupAdminPassword, "127.0.0.1"); err == nil {
		t.Error("the old password still works")
	}
	admin := w.login(svc, "admin", fresh)
	var reset []gatehouse.Event
	for _, ev := range events(t, svc, admin, gatehouse.EventAccountChanged) {
		if ev.Actor == "reset-admin-password" {
			reset = append(reset, ev)
		}
	}
	if len(reset) != 1 || reset[0].Account != "admin" || !strings.Contains(reset[0].Detail, "2 session(s) revoked; 1 API token(s) kept") {
		t.Errorf("reset events: %+v", reset)
	}
	w.noSecretIn(w.st)
}

// TestResetAdminPasswordRevokingAPITokens: with revokeAPITokens the admin
// account's API tokens are revoked too, each recorded by the reset's
// actor, and no other account's token is touched.
func TestResetAdminPasswordRevokingAPITokens(t *testing.T) {
	w := newBackupWorld(t)
	ctx := t.Context()
	keys := []gatehouse.NewToken{w.mint("admin", "automation", 0), w.mint("admin", "laptop", 3600)}
	w.account("ci", "", gatehouse.CapAPIKey)
	cis := w.mint("ci", "deploy", 0)

	const fresh = "a-new-admin-password"
	got, err := w.service(w.st).ResetAdminPassword(ctx, fresh, true)
	if err != nil {
		t.Fatal(err)
	}
	if want := (service.PasswordReset{SessionsRevoked: 1, APITokensRevoked: 2}); got != want {
		t.Errorf("reset: %+v, want %+v", got, want)
	}
	svc := w.service(w.st)
	for _, k := range keys {
		if works(t, svc, k.Token) {
			t.Errorf("admin's API token %q still works", k.Name)
		}
	}
	if !works(t, svc, cis.Token) {
		t.Error("another account's token was revoked")
	}
	admin := w.login(svc, "admin", fresh)
	var revoked int
	for _, ev := range events(t, svc, admin, gatehouse.EventTokenRevoked) {
		if ev.Actor == "reset-admin-password" && ev.Account == "admin" {
			revoked++
		}
	}
	if revoked != 3 {
		t.Errorf("%d token.revoked events by reset-admin-password, want 3 (a session and two API tokens)", revoked)
	}
}

// craftBackup edits a backup file in place, as whoever can write where
// backups are kept could, and leaves it a database on its own.
func craftBackup(t *testing.T, path string, stmts ...string) {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	for _, s := range append(stmts, `PRAGMA journal_mode=DELETE`) {
		if _, err := db.Exec(s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
}

// restoreOverLive restores the backup file over the live store as
// gatehouse admin restore does (Verify, Rebuild, Restore), with the
// file's own SHA-256, and returns a service on the restored store as a
// server starting on it builds one.
func (w *backupWorld) restoreOverLive(backup string, unrecorded bool) (*service.Service, *sqlite.Store, gatehouse.RestoreReport) {
	w.t.Helper()
	if _, err := sqlite.Verify(w.t.Context(), backup); err != nil {
		w.t.Fatalf("Verify refused the backup: %v", err)
	}
	w.restores++
	rs := w.restoredCopy(backup, "restored-"+strconv.Itoa(w.restores)+".db")
	f := from(w.t, backup)
	f.Unrecorded = unrecorded
	rep, err := w.service(rs).Restore(w.t.Context(), w.st, f, "live.db.replaced")
	if err != nil {
		w.t.Fatal(err)
	}
	return w.service(rs), rs, rep
}

// principal authenticates tok on svc.
func principal(t *testing.T, svc *service.Service, tok string) *service.Principal {
	t.Helper()
	p, err := svc.Authenticate(t.Context(), tok)
	if err != nil {
		t.Fatalf("authenticate: %v", err)
	}
	return p
}

// TestRestoreKeepsPermissionsTakenAwaySince: permissions taken away
// after the backup through what decides them (a policy line, a project
// role's group binding, a project deleted, an application deleted or
// moved to another project) stay taken away after a restore over the
// store: the replaced store's RBAC settings, projects and applications
// win, and what it made since (a project) is there.
func TestRestoreKeepsPermissionsTakenAwaySince(t *testing.T) {
	w := newBackupWorld(t)
	ctx := t.Context()
	w.account("alice", "", gatehouse.CapAPIKey)
	if _, err := w.svc.CreateAccount(ctx, w.admin, gatehouse.AccountCreate{Name: "bob", Capabilities: []gatehouse.Capability{gatehouse.CapAPIKey}, Groups: []string{"deployers"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := w.svc.PutRBAC(ctx, w.admin, gatehouse.RBAC{PolicyCSV: basePolicy + "\ng, alice, role:admin"}); err != nil {
		t.Fatal(err)
	}
	role := func(project string) gatehouse.ProjectRole {
		return gatehouse.ProjectRole{Name: "deploy", Policies: []string{"p, proj:" + project + ":deploy, applications, *, " + project + "/*, allow"}, Groups: []string{"deployers"}}
	}
	for _, name := range []string{"shop", "legacy", "staff"} {
		if _, err := w.svc.CreateProject(ctx, w.admin, gatehouse.Project{Name: name, Roles: []gatehouse.ProjectRole{role(name)}}); err != nil {
			t.Fatal(err)
		}
	}
	app := func(name, project string) gatehouse.Application {
		return gatehouse.Application{Name: name, Project: project, Spec: gatehouse.AppSpec{RepoURL: "https://git.example/" + name, Destination: gatehouse.AppDestination{Namespace: name}}}
	}
	for _, a := range []gatehouse.Application{app("web", "shop"), app("old", "legacy"), app("wiki", "staff")} {
		if _, err := w.svc.CreateApplication(ctx, w.admin, a); err != nil {
			t.Fatal(err)
		}
	}
	alices, bobs := w.mint("alice", "laptop", 0), w.mint("bob", "laptop", 0)
	backup := w.backup("backup.db")

	// After the backup: every way of taking a permission away.
	w.now = w.now.Add(time.Minute)
	if _, err := w.svc.PutRBAC(ctx, w.admin, gatehouse.RBAC{PolicyCSV: basePolicy}); err != nil {
		t.Fatal(err)
	}
	unbound := role("staff")
	unbound.Groups = []string{}
	if _, err := w.svc.UpdateProject(ctx, w.admin, "staff", gatehouse.Project{Name: "staff", Roles: []gatehouse.ProjectRole{unbound}}); err != nil {
		t.Fatal(err)
	}
	if err := w.svc.DeleteApplication(ctx, w.admin, "old"); err != nil {
		t.Fatal(err)
	}
	if err := w.svc.DeleteProject(ctx, w.admin, "legacy"); err != nil {
		t.Fatal(err)
	}
	if _, err := w.svc.CreateProject(ctx, w.admin, gatehouse.Project{Name: "lab"}); err != nil {
		t.Fatal(err)
	}
	if _, err := w.svc.UpdateApplication(ctx, w.admin, "web", app("web", "lab")); err != nil {
		t.Fatal(err)
	}

	svc, _, report := w.restoreOverLive(backup, false)
	want := gatehouse.RestoreReport{
		Carried: true, SHA256: from(t, backup).SHA256, BackupTakenAt: report.BackupTakenAt, BackupTakenBy: "admin",
		RBACUpdated:     true,
		ProjectsCreated: 1, ProjectsUpdated: 1, ProjectsDeleted: 1,
		ApplicationsUpdated: 1, ApplicationsDeleted: 1,
	}
	if report != want {
		t.Errorf("report:\n got %+v\nwant %+v", report, want)
	}
	alice, bob := principal(t, svc, alices.Token), principal(t, svc, bobs.Token)
	if svc.Authorize(alice, "settings", "update", "rbac") == nil {
		t.Error("alice, cut off from role:admin by the policy after the backup, is admin again")
	}
	for _, object := range []string{"staff/wiki", "legacy/old"} {
		if svc.Can(bob, "applications", "sync", object) {
			t.Errorf("bob may sync %s again", object)
		}
	}
	if _, err := svc.Sync(ctx, bob, "web", gatehouse.SyncRequest{}); err == nil {
		t.Error("bob may sync web, moved out of his project after the backup")
	}
	admin := w.login(svc, "admin", backupAdminPassword)
	if a, err := svc.GetApplication(ctx, admin, "web"); err != nil || a.Project != "lab" {
		t.Errorf("application web: project %q (%v), want lab", a.Project, err)
	}
	if _, err := svc.GetApplication(ctx, admin, "old"); err == nil {
		t.Error("application old, deleted after the backup, is back")
	}
	if _, err := svc.GetProject(ctx, admin, "legacy"); !gatehouse.IsCode(err, gatehouse.ENOTFOUND) {
		t.Errorf("project legacy, deleted after the backup: %v, want not found", err)
	}
	if _, err := svc.GetProject(ctx, admin, "lab"); err != nil {
		t.Errorf("project lab, made after the backup: %v", err)
	}
}

// TestRestoreChecksTheBackupWasRecorded: over a store, only a file the
// store recorded handing out (store.backup, by SHA-256) is restored; an
// edited one is refused, with nothing changed, unless Unrecorded, and
// then its edited policy is not in force either (the replaced store's
// is). A backup whose record the audit retention pruned is refused,
// naming the retention.
func TestRestoreChecksTheBackupWasRecorded(t *testing.T) {
	t.Run("fail/an edited backup", func(t *testing.T) {
		w := newBackupWorld(t)
		w.account("mallory", "", gatehouse.CapAPIKey)
		tok := w.mint("mallory", "laptop", 0)
		backup := w.backup("backup.db")
		craftBackup(t, backup, `UPDATE rbac SET policy_csv = policy_csv || char(10) || 'g, mallory, role:admin'`)

		rs := w.restoredCopy(backup, "restored.db")
		_, err := w.service(rs).Restore(t.Context(), w.st, from(t, backup), "")
		if !gatehouse.IsCode(err, gatehouse.EPRECONDITION) || !strings.Contains(gatehouse.ErrorMessage(err), "--unrecorded") ||
			!strings.Contains(gatehouse.ErrorMessage(err), fmt.Sprintf("%x", from(t, backup).SHA256)) {
			t.Fatalf("restore of an edited backup: %v, want EPRECONDITION naming its SHA-256 and --unrecorded", err)
		}
		svc := w.service(rs)
		if evs := events(t, svc, w.login(svc, "admin", backupAdminPassword), gatehouse.EventStoreRestored); len(evs) != 0 {
			t.Errorf("the refused restore was recorded: %+v", evs)
		}

		svc, rs, report := w.restoreOverLive(backup, true)
		if !report.Unrecorded || !report.BackupTakenAt.IsZero() {
			t.Errorf("report %+v, want Unrecorded", report)
		}
		if svc.Authorize(principal(t, svc, tok.Token), "settings", "update", "*") == nil {
			t.Error("mallory is admin after restoring a backup whose policy was edited")
		}
		evs := events(t, svc, w.login(svc, "admin", backupAdminPassword), gatehouse.EventStoreRestored)
		if len(evs) != 1 || !strings.Contains(evs[0].Detail, "records no such backup (restored with --unrecorded)") {
			t.Errorf("store.restored events: %+v", evs)
		}
		w.noSecretIn(rs)
	})
	t.Run("fail/a backup older than the audit retention", func(t *testing.T) {
		w := newBackupWorld(t)
		backup := w.backup("backup.db")
		w.now = w.now.Add(100 * 24 * time.Hour)
		if _, err := w.svc.Reap(t.Context()); err != nil {
			t.Fatal(err)
		}
		rs := w.restoredCopy(backup, "restored.db")
		_, err := w.service(rs).Restore(t.Context(), w.st, from(t, backup), "")
		if !gatehouse.IsCode(err, gatehouse.EPRECONDITION) || !strings.Contains(gatehouse.ErrorMessage(err), "kept for the audit retention, 90 days") {
			t.Fatalf("restore of a backup whose record was pruned: %v, want EPRECONDITION naming the retention", err)
		}
	})
	t.Run("ok/a backup restored once stays recorded", func(t *testing.T) {
		w := newBackupWorld(t)
		backup := w.backup("backup.db")
		w.now = w.now.Add(time.Minute)
		second := w.backup("second.db")
		_, rs, _ := w.restoreOverLive(backup, false)
		// The restored store replaces the live one; both backups were
		// recorded after the first one's snapshot, and are carried.
		w.st = rs
		for _, b := range []string{backup, second} {
			if _, _, report := w.restoreOverLive(b, false); report.Unrecorded || report.BackupTakenBy != "admin" {
				t.Errorf("%s over the restored store: %+v", filepath.Base(b), report)
			}
		}
	})
}

// TestRestoreKeepsTheReplacedStoresTokenRecords: a token both stores
// hold takes the replaced store's whole record, so a backup edited to
// give a token another owner gains nothing; the report counts it.
func TestRestoreKeepsTheReplacedStoresTokenRecords(t *testing.T) {
	w := newBackupWorld(t)
	w.account("mallory", "", gatehouse.CapAPIKey)
	nt := w.mint("mallory", "laptop", 0)
	backup := w.backup("backup.db")
	craftBackup(t, backup, `UPDATE tokens SET account = 'admin', scopes = '[]' WHERE id = '`+nt.ID+`'`)

	svc, _, report := w.restoreOverLive(backup, true)
	if report.TokensUpdated != 1 {
		t.Errorf("report %+v, want 1 token updated", report)
	}
	p := principal(t, svc, nt.Token)
	if p.Account() != "mallory" || svc.Authorize(p, "settings", "update", "*") == nil {
		t.Errorf("mallory's token after the restore is account %q's, or admin", p.Account())
	}
}

// TestRestoreTakesRowsNotSchema: a backup whose tables were made again
// with constraints of their own (a primary key that replaces on
// conflict, a CHECK that keeps one account enabled) passes Verify, which
// compares columns, but the restored database is this binary's schema:
// a subject token is still exchanged once, and the account can be
// disabled.
func TestRestoreTakesRowsNotSchema(t *testing.T) {
	w := newBackupWorld(t)
	ctx := t.Context()
	w.account("ci", "", gatehouse.CapAPIKey)
	w.account("mallory", "", gatehouse.CapAPIKey)
	if err := w.svc.ApplyTrustPolicies(ctx, []gatehouse.TrustPolicy{w.is.policy("deploy")}); err != nil {
		t.Fatal(err)
	}
	backup := w.backup("backup.db")
	craftBackup(t, backup,
		`CREATE TEMP TABLE er AS SELECT * FROM exchange_replays`,
		`DROP TABLE exchange_replays`,
		`CREATE TABLE exchange_replays (key TEXT PRIMARY KEY ON CONFLICT REPLACE, expires_at INTEGER NOT NULL)`,
		`INSERT INTO exchange_replays SELECT * FROM er`,
		`CREATE INDEX exchange_replays_expires ON exchange_replays (expires_at)`,
		`CREATE TEMP TABLE a AS SELECT * FROM accounts`,
		`DROP TABLE accounts`,
		`CREATE TABLE accounts (
	name          TEXT PRIMARY KEY,
	enabled       INTEGER NOT NULL CHECK (enabled = 1 OR name <> 'mallory'),
	capabilities  TEXT NOT NULL,
	groups_json   TEXT NOT NULL,
	created_at    INTEGER NOT NULL,
	password_hash BLOB, source TEXT NOT NULL DEFAULT 'local', last_login_at INTEGER NOT NULL DEFAULT 0, groups_refreshed_at INTEGER NOT NULL DEFAULT 0, sso TEXT NOT NULL DEFAULT '', sso_issuer TEXT NOT NULL DEFAULT '', sso_subject TEXT NOT NULL DEFAULT '')`,
		`INSERT INTO accounts SELECT * FROM a`,
		`CREATE UNIQUE INDEX accounts_sso_user ON accounts (sso_issuer, sso_subject) WHERE sso_subject <> ''`,
	)
	svc, _, _ := w.restoreOverLive(backup, true)
	req := exchangeRequest(w.is.token(t, w.now))
	req.TrustPolicy = "deploy"
	if _, err := svc.Exchange(ctx, req, "127.0.0.1", "test"); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Exchange(ctx, req, "127.0.0.1", "test"); err == nil {
		t.Error("a subject token was exchanged twice")
	}
	off := false
	if _, err := svc.UpdateAccount(ctx, w.login(svc, "admin", backupAdminPassword), "mallory", gatehouse.AccountPatch{Enabled: &off}); err != nil {
		t.Errorf("mallory cannot be disabled: %v", err)
	}
}

// TestRestoreNeverReusesEventIDs: the events the replaced store wrote
// after the backup keep their ids to themselves; the restored store's
// next ids come after them.
func TestRestoreNeverReusesEventIDs(t *testing.T) {
	w := newBackupWorld(t)
	w.account("alice", "", gatehouse.CapAPIKey)
	backup := w.backup("backup.db")
	for i := range 20 {
		w.mint("alice", "token "+strconv.Itoa(i), 0)
	}
	var maxLive int64
	for _, ev := range events(t, w.svc, w.admin, "") {
		maxLive = max(maxLive, ev.ID)
	}
	svc, _, _ := w.restoreOverLive(backup, false)
	evs := events(t, svc, w.login(svc, "admin", backupAdminPassword), "")
	if evs[0].ID <= maxLive {
		t.Errorf("newest event after the restore has id %d; the replaced store used ids up to %d", evs[0].ID, maxLive)
	}
	for _, ev := range evs {
		if ev.Type == gatehouse.EventStoreRestored && ev.ID <= maxLive {
			t.Errorf("store.restored has id %d, not after the replaced store's %d", ev.ID, maxLive)
		}
	}
}

// TestRestoreKeepsLoginFailures: failed logins after the backup still
// count against the account and the address after the restore.
func TestRestoreKeepsLoginFailures(t *testing.T) {
	w := newBackupWorld(t)
	ctx := t.Context()
	w.account("alice", "alice-password", gatehouse.CapLogin)
	backup := w.backup("backup.db")
	for range 6 {
		w.svc.Login(ctx, "alice", "wrong-password", "198.51.100.7")
	}
	if _, err := w.svc.Login(ctx, "alice", "alice-password", "198.51.100.7"); !gatehouse.IsCode(err, gatehouse.ETHROTTLED) {
		t.Fatalf("before the restore: %v, want throttled", err)
	}
	svc, _, report := w.restoreOverLive(backup, false)
	if report.LoginAttempts == 0 {
		t.Errorf("report %+v: no login attempt carried", report)
	}
	if _, err := svc.Login(ctx, "alice", "alice-password", "198.51.100.7"); !gatehouse.IsCode(err, gatehouse.ETHROTTLED) {
		t.Errorf("after the restore: %v, want throttled still", err)
	}
}

// TestBackupAuthorization: a backup needs settings, update, backup,
// which role:admin has; a scope or policy line that covers only the
// string "*" ("?"), or another settings object, is not enough, and
// neither is a token exchanged through a trust policy.
func TestBackupAuthorization(t *testing.T) {
	w := newBackupWorld(t)
	ctx := t.Context()
	w.account("ci", "", gatehouse.CapAPIKey)
	w.account("ops", "", gatehouse.CapAPIKey)
	w.account("backups", "", gatehouse.CapAPIKey)
	if _, err := w.svc.PutRBAC(ctx, w.admin, gatehouse.RBAC{PolicyCSV: basePolicy +
		"\np, ops, settings, update, ?, allow\np, backups, settings, update, backup, allow"}); err != nil {
		t.Fatal(err)
	}
	if err := w.svc.ApplyTrustPolicies(ctx, []gatehouse.TrustPolicy{w.is.policy("deploy")}); err != nil {
		t.Fatal(err)
	}
	token := func(account string, sc ...gatehouse.Scope) *service.Principal {
		nt, err := w.svc.CreateToken(ctx, w.admin, account, gatehouse.TokenRequest{Name: fmt.Sprint(len(w.secrets)), Scopes: sc})
		if err != nil {
			t.Fatal(err)
		}
		w.secrets = append(w.secrets, nt.Token)
		return principal(t, w.svc, nt.Token)
	}
	scope := func(action, object string) gatehouse.Scope {
		return gatehouse.Scope{Resource: "settings", Action: action, Object: object}
	}
	_, exchanged := w.exchange("deploy")
	for _, tc := range []struct {
		name string
		p    *service.Principal
		ok   bool
	}{
		{"ok/the admin's session", w.admin, true},
		{"ok/an admin token scoped settings:update:*", token("admin", scope("update", "*")), true},
		{"ok/an admin token scoped settings:update:backup", token("admin", scope("update", "backup")), true},
		{"ok/an account granted settings, update, backup", token("backups"), true},
		{"fail/an admin token scoped settings:update:rbac", token("admin", scope("update", "rbac")), false},
		{"fail/an admin token scoped settings:get:*", token("admin", scope("get", "*")), false},
		{"fail/an admin token scoped settings:update:?", token("admin", scope("update", "?")), false},
		{"fail/an account granted settings, update, ?", token("ops"), false},
		{"fail/a token exchanged through a trust policy", principal(t, w.svc, exchanged), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := w.svc.Backup(ctx, tc.p, "192.0.2.10")
			if b != nil {
				b.Close()
			}
			if got := err == nil; got != tc.ok {
				t.Errorf("backup allowed %v (%v), want %v", got, err, tc.ok)
			}
			if !tc.ok && !gatehouse.IsCode(err, gatehouse.EFORBIDDEN) {
				t.Errorf("refused with %v, want EFORBIDDEN", err)
			}
		})
	}
}

// TestBackupOneAtATime: while a backup is handed out, another is refused
// with ETHROTTLED and a Retry-After; once it is closed, the next one is
// taken.
func TestBackupOneAtATime(t *testing.T) {
	w := newBackupWorld(t)
	ctx := t.Context()
	first, err := w.svc.Backup(ctx, w.admin, "192.0.2.10")
	if err != nil {
		t.Fatal(err)
	}
	_, err = w.svc.Backup(ctx, w.admin, "192.0.2.11")
	var ge *gatehouse.Error
	if !errors.As(err, &ge) || ge.Code != gatehouse.ETHROTTLED || ge.RetryAfter <= 0 {
		t.Fatalf("a second backup meanwhile: %v, want ETHROTTLED with a Retry-After", err)
	}
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	next, err := w.svc.Backup(ctx, w.admin, "192.0.2.12")
	if err != nil {
		t.Fatalf("a backup once the first was closed: %v", err)
	}
	next.Close()
	if evs := events(t, w.svc, w.admin, gatehouse.EventStoreBackup); len(evs) != 2 {
		t.Errorf("%d store.backup events, want 2 (the refused one is not a backup)", len(evs))
	}
}
