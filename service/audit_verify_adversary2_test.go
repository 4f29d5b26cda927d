package service

import (
	"context"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
)

// TestAdversary2VerifyWithGoneCallerLosesOthersEvents: VerifyAudit
// writes the audit queue (every request's events, not the caller's) with
// the caller's context before it verifies. A caller that has gone away
// (a dropped connection; here a context already canceled) makes every
// write fail, and the writer gives the events up as lost: one call
// of verify by someone with audit, get, * destroys the events of the
// requests just served, their own denied attempts among them. The
// events are never in the chain, so no verification can report them.
func TestAdversary2VerifyWithGoneCallerLosesOthersEvents(t *testing.T) {
	ctx := t.Context()
	w := NewTestWorld(t, nil)
	svc, st, admin := w.Svc, w.Store, w.Admin()
	svc.Flush(ctx)
	// Requests just answered: their events wait in the queue for the
	// background writer.
	for range 3 {
		svc.audit.record(gatehouse.Event{Time: time.Now(), Type: gatehouse.EventRequest, Actor: "mallory", Decision: "deny",
			Method: "DELETE", Path: "/api/v1/accounts/alice", Status: 403}, false)
	}
	gone, cancel := context.WithCancel(ctx)
	cancel()
	_, _ = svc.VerifyAudit(gone, admin, "")
	svc.Flush(ctx)
	n := 0
	if err := st.View(ctx, func(tx gatehouse.Tx) error {
		evs, err := tx.ListEvents(ctx, gatehouse.EventFilter{Actor: "mallory", Limit: 100})
		n = len(evs)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if n != 3 {
		t.Errorf("%d of 3 queued events of other requests are stored after a verify whose caller had gone away: the rest were lost", n)
	}
}

// TestAdversary2OwnAuditListWithGoneCallerLosesOthersEvents: the same
// drain runs in ListEvents, which every account may call for its own
// events: an account with no right at all erases the queued events of
// other requests (here those recorded against it) by asking for its own
// trail and dropping the connection.
func TestAdversary2OwnAuditListWithGoneCallerLosesOthersEvents(t *testing.T) {
	ctx := t.Context()
	w := NewTestWorld(t, nil)
	svc, st, admin := w.Svc, w.Store, w.Admin()
	if _, err := svc.CreateAccount(ctx, admin, gatehouse.AccountCreate{Name: "mallory", Password: "mallory-password", Capabilities: []gatehouse.Capability{gatehouse.CapLogin}}); err != nil {
		t.Fatal(err)
	}
	mt, err := svc.Login(ctx, "mallory", "mallory-password", "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	mallory, err := svc.Authenticate(ctx, mt.Token)
	if err != nil {
		t.Fatal(err)
	}
	svc.Flush(ctx)
	for range 3 {
		svc.RecordRequest(gatehouse.Event{Actor: "mallory", Decision: "deny", Method: "DELETE", Path: "/api/v1/accounts/alice", Status: 403})
	}
	gone, cancel := context.WithCancel(ctx)
	cancel()
	_, _ = svc.ListEvents(gone, mallory, gatehouse.EventFilter{}, "")
	svc.Flush(ctx)
	n := 0
	if err := st.View(ctx, func(tx gatehouse.Tx) error {
		evs, err := tx.ListEvents(ctx, gatehouse.EventFilter{Actor: "mallory", Type: gatehouse.EventRequest, Limit: 100})
		for _, e := range evs {
			if e.Path == "/api/v1/accounts/alice" {
				n++
			}
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if n != 3 {
		t.Errorf("%d of 3 queued denials are stored after the denied account listed its own trail and hung up", n)
	}
}
