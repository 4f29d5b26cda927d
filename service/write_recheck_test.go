package service_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/service"
)

// Every write for a caller goes through Service.write and is decided
// again there: webhooks, syncs and operation reports too. Before (found by
// an outside attack), they called the store directly, and a request
// authenticated before its caller was disabled (or its token revoked)
// still committed after. PutRBAC in the same position is the control.
func TestWebhookWriteAfterDisableIsRefused(t *testing.T) {
	ctx := context.Background()
	w := service.NewTestWorld(t, nil)
	svc := w.Svc
	secret := filepath.Join(t.TempDir(), "hook")
	if err := os.WriteFile(secret, []byte("0123456789abcdef0123456789abcdef"), 0o600); err != nil {
		t.Fatal(err)
	}
	sess := carolSession(t, w, nil, "p, carol, settings, *, *, allow")
	// carol's requests are authenticated (the body is still arriving)...
	carolHook := mustAuth(t, svc, sess.Token)
	carolRBAC := mustAuth(t, svc, sess.Token)
	// ...when the admin disables her account (which revokes her sessions).
	f := false
	if _, err := svc.UpdateAccount(ctx, w.Admin(), "carol", gatehouse.AccountPatch{Enabled: &f}); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Authenticate(ctx, sess.Token); err == nil {
		t.Fatal("carol's session still authenticates")
	}
	// Control: a Service.write path is refused.
	if _, err := svc.PutRBAC(ctx, carolRBAC, gatehouse.RBAC{PolicyCSV: "g, carol, role:admin"}); err == nil {
		t.Fatal("control: PutRBAC after disable committed")
	} else {
		t.Logf("control PutRBAC: %v", err)
	}
	hook, err := svc.CreateWebhook(ctx, carolHook, gatehouse.WebhookRequest{Name: "exfil", URL: "https://attacker.example/x", SecretFile: secret, Events: []string{"*"}})
	if err == nil {
		t.Errorf("carol's account was disabled and her session revoked, yet her in-flight CreateWebhook committed: %+v", hook.Name)
	}
}

// On a follower, the checks an application write makes inside its
// transaction (appTx) use the policy the transaction read, not the
// replica's engine, which may not have applied a demotion yet. Found by an
// outside attack.
func TestReplicaAppDeleteIsDecidedOnTheStoredPolicy(t *testing.T) {
	ctx := context.Background()
	a, b, frozen, adminToken := carolOnTwoReplicas(t)
	admin := mustAuth(t, a, adminToken)
	redWeb(t, a, admin)
	if _, err := a.PutRBAC(ctx, admin, gatehouse.RBAC{PolicyCSV: "p, carol, applications, *, red/*, allow"}); err != nil {
		t.Fatal(err)
	}
	sess := carolSessionOnB(t, a, b, func(p *service.Principal) bool {
		_, err := b.GetApplication(ctx, p, "web")
		return err == nil && b.Can(p, "applications", "delete", "red/web")
	})
	frozen.frozen.Store(true)
	admin = mustAuth(t, a, adminToken)
	if _, err := a.PutRBAC(ctx, admin, gatehouse.RBAC{PolicyCSV: ""}); err != nil {
		t.Fatal(err)
	}
	carol, err := b.Authenticate(ctx, sess.Token)
	if err != nil || !b.Can(carol, "applications", "delete", "red/web") {
		t.Fatalf("b applied the demotion (%v): proves nothing", err)
	}
	carol, _ = b.Authenticate(ctx, sess.Token) // fresh principal, nothing relied
	err = b.DeleteApplication(ctx, carol, "web")
	frozen.frozen.Store(false)
	if err == nil {
		t.Errorf("carol, demoted through a, deleted application web through b (stale engine decided inside the write)")
	} else {
		t.Logf("delete: %v", err)
	}
}

// The checks made inside a write's transaction (appTx) use the caller's
// stored groups, not those it was authenticated with: a member removed
// from the group that grants application rights deletes nothing through
// an in-flight request. Found by an outside attack.
func TestAppDeleteAfterGroupRemovalIsRefused(t *testing.T) {
	ctx := context.Background()
	w := service.NewTestWorld(t, nil)
	svc := w.Svc
	if _, err := svc.CreateAccount(ctx, w.Admin(), gatehouse.AccountCreate{Name: "carol", Groups: []string{"devs"},
		Capabilities: []gatehouse.Capability{gatehouse.CapLogin}, Password: "carol-password"}); err != nil {
		t.Fatal(err)
	}
	redWeb(t, svc, w.Admin())
	if _, err := svc.PutRBAC(ctx, w.Admin(), gatehouse.RBAC{PolicyCSV: "p, role:dev, applications, *, red/*, allow\np, role:dev, settings, *, rbac, allow\ng, devs, role:dev"}); err != nil {
		t.Fatal(err)
	}
	sess, err := svc.Login(ctx, "carol", "carol-password", "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	carolApp := mustAuth(t, svc, sess.Token)
	carolRBAC := mustAuth(t, svc, sess.Token)
	none := []string{}
	if _, err := svc.UpdateAccount(ctx, w.Admin(), "carol", gatehouse.AccountPatch{Groups: &none}); err != nil {
		t.Fatal(err)
	}
	now, err := svc.Authenticate(ctx, sess.Token)
	if err != nil {
		t.Logf("session after group removal: %v", err)
	} else if svc.Can(now, "applications", "delete", "red/web") {
		t.Fatal("group removal did not take the right away: proves nothing")
	}
	// Control: PutRBAC (decided before the write, so relied) is refused.
	if !svc.Can(carolRBAC, "settings", "update", "rbac") {
		t.Fatal("stale principal lost the right")
	}
	if _, err := svc.PutRBAC(ctx, carolRBAC, gatehouse.RBAC{PolicyCSV: "g, carol, role:admin"}); err == nil {
		t.Fatal("control: PutRBAC committed after group removal")
	} else {
		t.Logf("control PutRBAC: %v", err)
	}
	if err := svc.DeleteApplication(ctx, carolApp, "web"); err == nil {
		t.Errorf("carol, removed from devs, deleted application web through an in-flight request")
	} else {
		t.Logf("delete: %v", err)
	}
}

// A stolen API token's in-flight Sync and ReportOperation do not commit
// after the admin's revoke-all (they called the store directly before).
func TestSyncAfterRevokeAllIsRefused(t *testing.T) {
	ctx := context.Background()
	w := service.NewTestWorld(t, nil)
	svc := w.Svc
	if _, err := svc.CreateAccount(ctx, w.Admin(), gatehouse.AccountCreate{Name: "ci",
		Capabilities: []gatehouse.Capability{gatehouse.CapAPIKey}}); err != nil {
		t.Fatal(err)
	}
	redWeb(t, svc, w.Admin())
	if _, err := svc.PutRBAC(ctx, w.Admin(), gatehouse.RBAC{PolicyCSV: "p, ci, applications, *, red/*, allow"}); err != nil {
		t.Fatal(err)
	}
	stolen, err := svc.CreateToken(ctx, w.Admin(), "ci", gatehouse.TokenRequest{Name: "ci"})
	if err != nil {
		t.Fatal(err)
	}
	op0, err := svc.Sync(ctx, mustAuth(t, svc, stolen.Token), "web", gatehouse.SyncRequest{})
	if err != nil {
		t.Fatal(err)
	}
	thiefSync := mustAuth(t, svc, stolen.Token)
	thiefReport := mustAuth(t, svc, stolen.Token)
	thiefStatus := mustAuth(t, svc, stolen.Token)
	if n, err := svc.RevokeAll(ctx, w.Admin(), "ci", time.Time{}); err != nil || n != 1 {
		t.Fatalf("revoke-all: %d, %v", n, err)
	}
	if _, err := svc.Authenticate(ctx, stolen.Token); err == nil {
		t.Fatal("revoked token authenticates")
	}
	// Control: SetStatus goes through Service.write and is refused.
	if _, err := svc.SetStatus(ctx, thiefStatus, "web", gatehouse.StatusReport{Sync: "Synced", Health: "Healthy"}); err == nil {
		t.Error("control: SetStatus committed after revoke-all")
	} else {
		t.Logf("control SetStatus: %v", err)
	}
	if op, err := svc.Sync(ctx, thiefSync, "web", gatehouse.SyncRequest{Revision: "evil"}); err == nil {
		t.Errorf("revoke-all acknowledged, yet the revoked token's in-flight Sync queued operation %s (revision %q)", op.ID, op.Revision)
	}
	if op, err := svc.ReportOperation(ctx, thiefReport, "web", op0.ID, gatehouse.OperationReport{State: gatehouse.OpFailed, Message: "x"}); err == nil {
		t.Errorf("revoke-all acknowledged, yet the revoked token's in-flight ReportOperation moved %s to %s", op.ID, op.State)
	}
}

// The grant check of UpdateAccount (authorizeGrant) runs inside the
// transaction on carol's stored groups: removed from the group that gave
// her settings, update, rbac, her in-flight request does not make her
// role:admin. Found by an outside attack.
func TestGroupGrantAfterDemotionIsRefused(t *testing.T) {
	ctx := context.Background()
	w := service.NewTestWorld(t, nil)
	svc := w.Svc
	sess := carolSession(t, w, []string{"editors"}, "p, carol, accounts, update, carol, allow\np, role:rbac, settings, *, rbac, allow\ng, editors, role:rbac\ng, admins, role:admin")
	carol := mustAuth(t, svc, sess.Token) // in flight
	none := []string{}
	if _, err := svc.UpdateAccount(ctx, w.Admin(), "carol", gatehouse.AccountPatch{Groups: &none}); err != nil {
		t.Fatal(err)
	}
	if now := mustAuth(t, svc, sess.Token); svc.Can(now, "settings", "update", "rbac") {
		t.Fatal("removal did not demote: proves nothing")
	}
	admins := []string{"admins"}
	_, err := svc.UpdateAccount(ctx, carol, "carol", gatehouse.AccountPatch{Groups: &admins})
	if now := mustAuth(t, svc, sess.Token); svc.Can(now, "accounts", "delete", "anyone") {
		t.Errorf("carol's demotion was acknowledged, then her in-flight UpdateAccount made her admin (err %v)", err)
	} else {
		t.Logf("update: %v", err)
	}
}

// The same as a real race: the admin's removal commits while carol's
// request waits for the write lock.
func TestGroupGrantRacingDemotionIsRefused(t *testing.T) {
	ctx := context.Background()
	w, gs := newGateWorld(t)
	svc := w.Svc
	sess := carolSession(t, w, []string{"editors"}, "p, carol, accounts, update, carol, allow\np, role:rbac, settings, *, rbac, allow\ng, editors, role:rbac\ng, admins, role:admin")
	carol := mustAuth(t, svc, sess.Token)
	admin := w.Admin()
	gs.armed.Store(true)
	demoted := make(chan error, 1)
	none := []string{}
	go func() {
		_, err := svc.UpdateAccount(ctx, admin, "carol", gatehouse.AccountPatch{Groups: &none})
		demoted <- err
	}()
	<-gs.entered
	grabbed := make(chan error, 1)
	go func() {
		admins := []string{"admins"}
		_, err := svc.UpdateAccount(ctx, carol, "carol", gatehouse.AccountPatch{Groups: &admins})
		grabbed <- err
	}()
	time.Sleep(200 * time.Millisecond)
	close(gs.gate)
	if err := <-demoted; err != nil {
		t.Fatal(err)
	}
	err := <-grabbed
	if now := mustAuth(t, svc, sess.Token); svc.Can(now, "accounts", "delete", "anyone") {
		t.Errorf("carol's removal from editors was acknowledged, then her in-flight UpdateAccount committed: she is role:admin (err %v)", err)
	}
}

// On a follower, the grant check inside UpdateAccount uses the policy the
// transaction read: carol, demoted through a, does not make herself admin
// through b.
func TestReplicaGroupGrantAfterDemotionIsRefused(t *testing.T) {
	ctx := context.Background()
	a, b, frozen, adminToken := carolOnTwoReplicas(t)
	admin := mustAuth(t, a, adminToken)
	const keep = "p, carol, accounts, update, carol, allow\ng, admins, role:admin\n"
	if _, err := a.PutRBAC(ctx, admin, gatehouse.RBAC{PolicyCSV: keep + "p, carol, settings, *, rbac, allow"}); err != nil {
		t.Fatal(err)
	}
	sess := carolSessionOnB(t, a, b, func(p *service.Principal) bool { return b.Can(p, "settings", "update", "rbac") })
	frozen.frozen.Store(true)
	admin = mustAuth(t, a, adminToken)
	if _, err := a.PutRBAC(ctx, admin, gatehouse.RBAC{PolicyCSV: keep}); err != nil {
		t.Fatal(err)
	}
	carol, err := b.Authenticate(ctx, sess.Token)
	if err != nil {
		t.Fatal(err)
	}
	admins := []string{"admins"}
	_, err = b.UpdateAccount(ctx, carol, "carol", gatehouse.AccountPatch{Groups: &admins})
	frozen.frozen.Store(false)
	t.Logf("update through b: %v", err)
	admin = mustAuth(t, a, adminToken)
	if got, gerr := a.GetAccount(ctx, admin, "carol"); gerr == nil {
		t.Logf("carol's groups as a reads them: %v", got.Groups)
	}
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) {
		if p, aerr := a.Authenticate(ctx, sess.Token); aerr == nil && a.Can(p, "accounts", "delete", "anyone") {
			t.Errorf("carol, demoted through a, made herself admin through b (err %v)", err)
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// More than four allowed checks and a policy change in
// between: the write fails closed (503).
func TestReliedOverflowFailsClosed(t *testing.T) {
	ctx := context.Background()
	w := service.NewTestWorld(t, nil)
	svc := w.Svc
	if _, err := svc.CreateAccount(ctx, w.Admin(), gatehouse.AccountCreate{Name: "ci",
		Capabilities: []gatehouse.Capability{gatehouse.CapAPIKey}}); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.PutRBAC(ctx, w.Admin(), gatehouse.RBAC{PolicyCSV: "p, ci, applications, *, *, allow"}); err != nil {
		t.Fatal(err)
	}
	tok, err := svc.CreateToken(ctx, w.Admin(), "ci", gatehouse.TokenRequest{Name: "ci"})
	if err != nil {
		t.Fatal(err)
	}
	ci := mustAuth(t, svc, tok.Token)
	for i := 0; i < 5; i++ {
		svc.Can(ci, "applications", "get", "x/y")
	}
	if _, err := svc.PutRBAC(ctx, w.Admin(), gatehouse.RBAC{PolicyCSV: "p, ci, applications, *, *, allow\n"}); err != nil {
		t.Fatal(err)
	}
	_, err = svc.CreateToken(ctx, ci, "ci", gatehouse.TokenRequest{Name: "x"})
	if gatehouse.ErrorCode(err) != gatehouse.EUNAVAILABLE {
		t.Errorf("overflow: %v, want unavailable", err)
	}
}

// redWeb creates project red and its application web.
func redWeb(t *testing.T, svc *service.Service, admin *service.Principal) {
	t.Helper()
	ctx := context.Background()
	if _, err := svc.CreateProject(ctx, admin, gatehouse.Project{Name: "red"}); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.CreateApplication(ctx, admin, gatehouse.Application{Name: "web", Project: "red", Spec: gatehouse.AppSpec{
		RepoURL: "https://git.example/web", Destination: gatehouse.AppDestination{Namespace: "web"}}}); err != nil {
		t.Fatal(err)
	}
}

// carolSession creates carol (login capability, the given groups), puts
// policyCSV as the whole RBAC policy and logs carol in.
func carolSession(t *testing.T, w *service.TestWorld, groups []string, policyCSV string) gatehouse.NewToken {
	t.Helper()
	ctx := context.Background()
	if _, err := w.Svc.CreateAccount(ctx, w.Admin(), gatehouse.AccountCreate{Name: "carol", Groups: groups,
		Capabilities: []gatehouse.Capability{gatehouse.CapLogin}, Password: "carol-password"}); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Svc.PutRBAC(ctx, w.Admin(), gatehouse.RBAC{PolicyCSV: policyCSV}); err != nil {
		t.Fatal(err)
	}
	sess, err := w.Svc.Login(ctx, "carol", "carol-password", "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	return sess
}

// On a follower, a project role bound to a group is refused when that
// group is the default role (or one it reaches) under the policy the
// write's transaction reads, not the replica's engine, which may not have
// applied a change of the default role yet: otherwise a project
// administrator hands his project's role to every account, a grant only
// the RBAC policy may make. Found by an outside attack.
func TestReplicaProjectRoleCannotBindTheNewDefaultRole(t *testing.T) {
	ctx := context.Background()
	a, b, frozen, adminToken := carolOnTwoReplicas(t)
	admin := mustAuth(t, a, adminToken)
	if _, err := a.CreateProject(ctx, admin, gatehouse.Project{Name: "shop"}); err != nil {
		t.Fatal(err)
	}
	const lines = "p, carol, projects, update, shop, allow\np, carol, projects, get, shop, allow\n"
	if _, err := a.PutRBAC(ctx, admin, gatehouse.RBAC{PolicyCSV: lines}); err != nil {
		t.Fatal(err)
	}
	sess := carolSessionOnB(t, a, b, func(p *service.Principal) bool { return b.Can(p, "projects", "update", "shop") })
	frozen.frozen.Store(true)
	// Through a, the administrator makes "everyone" the default role:
	// every account holds it from now on.
	admin = mustAuth(t, a, adminToken)
	if _, err := a.PutRBAC(ctx, admin, gatehouse.RBAC{PolicyCSV: lines, PolicyDefault: "everyone"}); err != nil {
		t.Fatal(err)
	}
	// Control: a refuses the binding.
	carolA := mustAuth(t, a, sess.Token)
	role := gatehouse.ProjectRole{Name: "dev", Policies: []string{"p, proj:shop:dev, applications, *, shop/*, allow"}, Groups: []string{"everyone"}}
	if _, err := a.PutProjectRole(ctx, carolA, "shop", "", role); err == nil {
		t.Fatal("control: a let carol bind the default role")
	}
	carol := mustAuth(t, b, sess.Token)
	_, err := b.PutProjectRole(ctx, carol, "shop", "", role)
	frozen.frozen.Store(false)
	if err == nil {
		t.Errorf("through b, whose engine had not applied the new default role, carol bound her project role to it: every account now holds proj:shop:dev")
	} else {
		t.Logf("put role: %v", err)
	}
}

// A backup hands out the whole store (password and token hashes, sealed
// refresh tokens); it is recorded, and handed out, only if its caller
// still may take it when the record commits: a caller authenticated
// before being disabled, or before her session was revoked, gets none.
// Found by an outside attack: the record was appended outside
// Service.write, so nothing was decided again.
func TestBackupAfterRevocationIsRefused(t *testing.T) {
	ctx := context.Background()
	for _, how := range []string{"disabled", "revoked"} {
		t.Run(how, func(t *testing.T) {
			w := service.NewTestWorld(t, nil)
			svc := w.Svc
			sess := carolSession(t, w, nil, "p, carol, settings, update, backup, allow")
			// carol's backup request is authenticated...
			carol := mustAuth(t, svc, sess.Token)
			// ...when the admin takes the right away.
			switch how {
			case "disabled":
				f := false
				if _, err := svc.UpdateAccount(ctx, w.Admin(), "carol", gatehouse.AccountPatch{Enabled: &f}); err != nil {
					t.Fatal(err)
				}
			case "revoked":
				if err := svc.DeleteToken(ctx, w.Admin(), "carol", sess.ID); err != nil {
					t.Fatal(err)
				}
			}
			b, err := svc.Backup(ctx, carol, "192.0.2.10")
			if err == nil {
				b.Snapshot.Close()
				t.Errorf("carol was %s, yet her in-flight backup was recorded and handed out (%d bytes)", how, b.Snapshot.Size())
			} else {
				t.Logf("backup: %v", err)
			}
			// The next backup is not held up by the refused one.
			b, err = svc.Backup(ctx, w.Admin(), "192.0.2.10")
			if err != nil {
				t.Fatal(err)
			}
			b.Snapshot.Close()
		})
	}
}

// A password change is decided on the password the write's transaction
// reads, not the one the replica's cache holds: carol changes her password
// through a (her old one has leaked); through b, whose feed is frozen, the
// intruder holding the old password and one of her API tokens (a password
// change revokes sessions, not API tokens) gives the old password as the
// current one. b's cache still holds its hash; the intruder's new password
// must not replace carol's, or the old password outlives its change and
// the intruder, not carol, can log in.
func TestReplicaPasswordChangeChecksTheStoredPassword(t *testing.T) {
	ctx := context.Background()
	a, b, frozen, adminToken := carolOnTwoReplicas(t)
	admin := mustAuth(t, a, adminToken)
	caps := []gatehouse.Capability{gatehouse.CapLogin, gatehouse.CapAPIKey}
	if _, err := a.UpdateAccount(ctx, admin, "carol", gatehouse.AccountPatch{Capabilities: &caps}); err != nil {
		t.Fatal(err)
	}
	api, err := a.CreateToken(ctx, admin, "carol", gatehouse.TokenRequest{Name: "ci"})
	if err != nil {
		t.Fatal(err)
	}
	sess, err := a.Login(ctx, "carol", "carol-password", "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "b knows carol's API token", func() bool {
		_, err := b.Authenticate(ctx, api.Token)
		return err == nil
	})

	frozen.frozen.Store(true)
	if err := a.UpdatePassword(ctx, mustAuth(t, a, sess.Token), gatehouse.PasswordChange{
		CurrentPassword: "carol-password", NewPassword: "carol-new-password"}, "127.0.0.1"); err != nil {
		t.Fatal(err)
	}
	intruder, err := b.Authenticate(ctx, api.Token)
	if err != nil {
		t.Fatal(err)
	}
	err = b.UpdatePassword(ctx, intruder, gatehouse.PasswordChange{
		CurrentPassword: "carol-password", NewPassword: "intruder-password"}, "192.0.2.7")
	if gatehouse.ErrorCode(err) != gatehouse.EUNAUTHORIZED {
		t.Errorf("a password change through b giving carol's old password after she changed it through a: %v, want unauthorized", err)
	}
	frozen.frozen.Store(false)
	if _, err := a.Login(ctx, "carol", "intruder-password", "192.0.2.7"); err == nil {
		t.Error("the intruder logs in as carol with the password he set with her old one")
	}
	if _, err := a.Login(ctx, "carol", "carol-new-password", "127.0.0.1"); err != nil {
		t.Errorf("carol's own new password: %v", err)
	}
}
