package service_test

import (
	"context"
	"errors"
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
	var h *heldView
	w := service.NewTestWorld(t, func(st *sqlite.Store) service.Options {
		h = &heldView{Store: storetest.TxTwice(st), entered: make(chan struct{}), release: make(chan struct{})}
		return service.Options{Store: h}
	})
	svc, admin := w.Svc, w.Admin()
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
