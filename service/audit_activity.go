package service

import (
	"context"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/policy"
	"github.com/gatehouse/gatehouse/token"
)

// ActivityHours is how far back a token's activity looks: the last 7 days
// in whole UTC hours, the current hour last.
const ActivityHours = 7 * 24

// TokenActivity is one token's requests per hour over the last
// ActivityHours hours, denials apart.
type TokenActivity struct {
	TokenID string
	// Owner is the subject the token's requests are recorded under
	// (Event.Actor): its account, or proj:<project>:<role>. Kind is the
	// token's kind and Name its name while it exists. Owner and Kind come
	// from the audit trail for a token that no longer exists, and are ""
	// for one neither knows.
	Owner string
	Kind  gatehouse.TokenKind
	Name  string
	// Since and Until bound the window, [Since, Until): whole UTC hours,
	// the current one last.
	Since, Until time.Time
	// Hours has every hour of the window, oldest first, hours without
	// requests included.
	Hours           []gatehouse.HourCount
	Allowed, Denied int // totals over the window
}

// errActivityForbidden is the refusal of TokenActivity. It does not name
// the owner it looked up: a token id alone tells no one whose it is.
var errActivityForbidden = gatehouse.Errorf(gatehouse.EFORBIDDEN, "permission denied: reading a token's requests needs audit, get on its owner (your own tokens need nothing)")

// TokenActivity counts the token's requests by hour over the last
// ActivityHours hours. Reading them is reading the audit trail about the
// token's owner, under ListEvents' rule: one's own tokens need no policy
// line; another account's need audit, get, <account>, a project role
// token's audit, get, proj:<project>:<role>; a token neither the store nor
// the audit trail knows needs audit, get, * (its counts are zero).
func (s *Service) TokenActivity(ctx context.Context, p *Principal, tokenID string) (TokenActivity, error) {
	if _, err := token.ParseID(tokenID); err != nil {
		return TokenActivity{}, gatehouse.Errorf(gatehouse.EINVALID, "not a token id: token ids are UUIDs")
	}
	until := s.now().UTC().Truncate(time.Hour).Add(time.Hour)
	a := TokenActivity{TokenID: tokenID, Since: until.Add(-ActivityHours * time.Hour), Until: until}
	var account string // the owning account; "" for a project role token
	var seen time.Time // for a token only the trail knows: when it was used
	err := s.store.View(ctx, func(tx gatehouse.Tx) error {
		a.Owner, a.Kind, a.Name, account, seen = "", "", "", "", time.Time{}
		t, err := tx.GetToken(ctx, tokenID)
		if err == nil {
			a.Owner, a.Kind, a.Name, account = t.Subject(), t.Kind, t.Name, t.Account
			return nil
		}
		if !gatehouse.IsCode(err, gatehouse.ENOTFOUND) {
			return err
		}
		// Revoked or expired and reaped: the trail still says whose it was.
		evs, err := tx.ListEvents(ctx, gatehouse.EventFilter{TokenID: tokenID, Type: gatehouse.EventRequest, Limit: 1})
		if err != nil || len(evs) == 0 {
			return err
		}
		a.Owner, a.Kind, account, seen = evs[0].Actor, evs[0].TokenKind, evs[0].Account, evs[0].Time
		return nil
	})
	if err != nil {
		return TokenActivity{}, err
	}
	owner := account
	if owner == "" {
		owner = a.Owner
	}
	switch {
	case owner == "":
		err = s.authorize(p, "audit", "get", "*")
	case (owner == p.account || owner == p.subject) && !(p.owner != nil && seen.Before(p.owner.CreatedAt) && !seen.IsZero()):
		// One's own, unless it was a token of an earlier account of the
		// same name, used before this one was created.
		p.self("audit", "get", owner)
	default:
		err = s.authorize(p, "audit", "get", owner)
	}
	if err != nil {
		// The refusal lands in the caller's own audit record, which the
		// caller may read: it must not name the owner it looked up (nor
		// tell by its object whether the token exists). It names what a
		// refusal of any token id is: a question about every owner.
		// Its via is the one that question gets, for the same reason.
		via := gatehouse.ViaPolicy
		if len(p.scopes) > 0 && s.canIgnoringScopes(p, "audit", "get", policy.All) {
			via = gatehouse.ViaScope
		}
		p.noteDecision(Decision{Resource: "audit", Action: "get", Object: policy.All, Allowed: false, Via: via})
		return TokenActivity{}, errActivityForbidden
	}
	// Read your writes, as ListEvents does: the events of requests already
	// answered may still sit in the queue.
	s.drainAudit(ctx)
	s.audit.wait()
	var counts []gatehouse.HourCount
	err = s.store.View(ctx, func(tx gatehouse.Tx) error {
		var err error
		counts, err = tx.RequestsByHour(ctx, tokenID, a.Since, a.Until)
		return err
	})
	if err != nil {
		return TokenActivity{}, err
	}
	a.Hours = make([]gatehouse.HourCount, ActivityHours)
	for i := range a.Hours {
		a.Hours[i].Hour = a.Since.Add(time.Duration(i) * time.Hour)
	}
	for _, c := range counts {
		i := int(c.Hour.Sub(a.Since) / time.Hour)
		if i < 0 || i >= len(a.Hours) || !c.Hour.Equal(a.Hours[i].Hour) {
			return TokenActivity{}, gatehouse.Errorf(gatehouse.EINTERNAL, "store counted hour %v outside [%v, %v)", c.Hour, a.Since, a.Until)
		}
		a.Hours[i].Allowed, a.Hours[i].Denied = c.Allowed, c.Denied
		a.Allowed += c.Allowed
		a.Denied += c.Denied
	}
	return a, nil
}
