package service

import (
	"context"
	"time"

	"github.com/gatehouse/gatehouse"
)

// Verifying the audit chain (audit_chain.go) reads every kept event and
// hashes it again: about a microsecond of hashing an event, plus the
// store's read, so a million events take seconds. It is bounded so that
// it cannot crowd out the requests the server is for: one verification
// at a time on each server (another meanwhile gets 429 with Retry-After),
// in pages of verifyPage events (memory stays constant whatever the
// trail's length), and it stops when the caller goes away.
const (
	verifyPage  = 1000
	verifyRetry = 5 * time.Second
)

// VerifyAudit recomputes the audit trail's hash chain from its oldest kept
// event to the head the store records, and reports the first event that
// does not fit. With anchor ("<id>:<hex hash>", a head exported earlier)
// it also checks that the chain still passes through it, which is what
// shows that events were rewritten or removed wholesale, the newest
// included: a chain rewritten by someone who can write the database
// verifies on its own, but not against a head they could not change.
//
// It needs the right to read the whole audit trail, audit, get, * (what
// ListEvents needs to show every event).
func (s *Service) VerifyAudit(ctx context.Context, p *Principal, anchor string) (gatehouse.ChainVerification, error) {
	var zero gatehouse.ChainVerification
	if err := s.authorize(p, "audit", "get", "*"); err != nil {
		return zero, err
	}
	var a *gatehouse.ChainAnchor
	if anchor != "" {
		parsed, err := gatehouse.ParseChainAnchor(anchor)
		if err != nil {
			return zero, err
		}
		a = &parsed
	}
	if !s.auditVerifyBusy.CompareAndSwap(false, true) {
		return zero, &gatehouse.Error{Code: gatehouse.ETHROTTLED, RetryAfter: verifyRetry,
			Message: "a verification of the audit trail is under way on this server, and it runs one at a time: try again once it is done"}
	}
	defer s.auditVerifyBusy.Store(false)

	// The events of requests already answered may still sit in the
	// queue: the head should include them.
	s.drainAudit(ctx)
	s.audit.wait()

	res, err := s.verifyChain(ctx, a)
	if err != nil {
		return zero, err
	}
	if !res.OK {
		s.log.ErrorContext(ctx, "the audit trail does not verify", "firstBadId", res.FirstBadID, "problem", res.Problem)
	}
	return res, nil
}

// verifyChain reads the chain in one View, so that the head and every page
// are one snapshot (a prune or an append committing meanwhile cannot make
// a page disagree with the next), and feeds it to the verifier page by
// page.
func (s *Service) verifyChain(ctx context.Context, anchor *gatehouse.ChainAnchor) (gatehouse.ChainVerification, error) {
	var res gatehouse.ChainVerification
	err := s.store.View(ctx, func(tx gatehouse.Tx) error {
		// Everything starts afresh here: a backend may run this again.
		chain, err := tx.AuditChain(ctx)
		if err != nil {
			return err
		}
		v := gatehouse.NewChainVerifier(chain, anchor)
		var after int64
		for {
			if err := ctx.Err(); err != nil {
				return gatehouse.Internal(err)
			}
			page, err := tx.ChainedEvents(ctx, after, verifyPage)
			if err != nil {
				return err
			}
			for _, e := range page {
				if !v.Check(e) {
					res = v.Finish()
					return nil
				}
			}
			if len(page) < verifyPage {
				break
			}
			after = page[len(page)-1].ID
		}
		res = v.Finish()
		return nil
	})
	return res, err
}
