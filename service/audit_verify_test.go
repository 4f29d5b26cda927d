package service_test

import (
	"context"
	"errors"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/service"
	"github.com/gatehouse/gatehouse/store/sqlite"
	"github.com/gatehouse/gatehouse/store/storetest"
)

// heldView is a store whose Views wait, while hold is set, until release
// is closed: a verification that takes its time.
type heldView struct {
	gatehouse.Store
	hold    atomic.Bool
	entered chan struct{}
	release chan struct{}
}

func (h *heldView) View(ctx context.Context, fn func(gatehouse.Tx) error) error {
	if h.hold.Load() {
		h.entered <- struct{}{}
		<-h.release
	}
	return h.Store.View(ctx, fn)
}

// TestVerifyAuditOneAtATime: while a verification runs, another on the
// same server is refused with 429 and Retry-After, rather than re-hash
// the trail twice at once; afterwards it runs. Every transaction runs
// twice (TxTwice), as a retrying backend may: the answer is the same.
func TestVerifyAuditOneAtATime(t *testing.T) {
	ctx := t.Context()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "gatehouse.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	h := &heldView{Store: storetest.TxTwice(st), entered: make(chan struct{}), release: make(chan struct{})}
	svc, err := service.New(ctx, service.Options{Store: h, BcryptCost: 10})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Bootstrap(ctx, "admin-password"); err != nil {
		t.Fatal(err)
	}
	nt, err := svc.Login(ctx, "admin", "admin-password", "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	admin, err := svc.Authenticate(ctx, nt.Token)
	if err != nil {
		t.Fatal(err)
	}
	first, err := svc.VerifyAudit(ctx, admin, "")
	if err != nil || !first.OK || first.Events == 0 {
		t.Fatalf("verify: %+v, %v", first, err)
	}

	h.hold.Store(true)
	done := make(chan error)
	go func() {
		_, err := svc.VerifyAudit(ctx, admin, first.Anchor)
		done <- err
	}()
	<-h.entered
	h.hold.Store(false)
	_, err = svc.VerifyAudit(ctx, admin, "")
	var ge *gatehouse.Error
	if gatehouse.ErrorCode(err) != gatehouse.ETHROTTLED || !errors.As(err, &ge) || ge.RetryAfter <= 0 {
		t.Errorf("a second verification meanwhile: got %v, want %s with Retry-After", err, gatehouse.ETHROTTLED)
	}
	close(h.release)
	if err := <-done; err != nil {
		t.Fatalf("the held verification: %v", err)
	}
	again, err := svc.VerifyAudit(ctx, admin, first.Anchor)
	if err != nil || !again.OK || !again.AnchorChecked {
		t.Errorf("after it: %+v, %v", again, err)
	}
	if _, err := svc.VerifyAudit(ctx, admin, "not-an-anchor"); gatehouse.ErrorCode(err) != gatehouse.EINVALID {
		t.Errorf("a bad anchor: got %v, want %s", err, gatehouse.EINVALID)
	}
}
