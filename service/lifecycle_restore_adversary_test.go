package service_test

import (
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
)

// A backup taken before a rotation with grace, restored over the live
// store: the old token keeps its grace end (not its minted expiry), and
// after it, presented again, it is refused as reuse (the rotation is
// carried) and never works.
func TestAdversaryRestoreKeepsRotationAndGrace(t *testing.T) {
	w := newBackupWorld(t)
	w.account("ci", "", gatehouse.CapAPIKey)
	first := w.mint("ci", "chain", 3600)
	idle := int64(3600)
	idler, err := w.svc.CreateToken(t.Context(), w.admin, "ci", gatehouse.TokenRequest{Name: "idler", IdleTimeout: &idle})
	if err != nil {
		t.Fatal(err)
	}
	w.secrets = append(w.secrets, idler.Token)
	backup := w.backup("before.db")
	second, err := w.svc.RotateToken(t.Context(), w.admin, "ci", first.ID, gatehouse.RotateRequest{GraceSeconds: 60})
	if err != nil {
		t.Fatal(err)
	}
	w.secrets = append(w.secrets, second.Token)
	// The idler is used after the backup, 50 minutes on.
	w.now = w.now.Add(50 * time.Minute)
	q := principal(t, w.svc, idler.Token)
	w.svc.Touch(q, "127.0.0.1")
	w.svc.Flush(t.Context())

	svc, _, _ := w.restoreOverLive(backup, false)
	// (Once reuse is detected, the family is gone and so is what was kept
	// of its rotations: presented again, the token is merely unknown.)
	if _, err := svc.Authenticate(t.Context(), first.Token); err == nil || !strings.Contains(err.Error(), "rotated away") {
		t.Errorf("after the restore, the token rotated away is not known as reused: %v", err)
	}
	// The idler was used 50 minutes ago, after the backup: not idle for
	// 70 more minutes.
	w.now = w.now.Add(60 * time.Minute)
	if !works(t, svc, idler.Token) {
		t.Error("after the restore, a token used after the backup is refused as idle")
	}
}
