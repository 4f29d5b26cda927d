package service

import (
	"context"
	"strings"

	"github.com/gatehouse/gatehouse"
)

// Introspect answers RFC 7662 token introspection for an authenticated
// caller. What a token is (its subject, kind, expiry and scopes) is
// information about its owner, so the answer is {"active": false} not only
// for anything that is not a valid token but also when the caller may not
// see the owner: accounts, get, <owner> (its own account needs nothing)
// for session and API tokens, projects, get, <project> for project tokens.
//
// A token introspected is a token used (by the client that presented it
// to the caller): its last use is recorded as from, the caller's address,
// so that an idle timeout does not remove a credential in constant use.
func (s *Service) Introspect(ctx context.Context, caller *Principal, raw, from string) gatehouse.Introspection {
	inactive := gatehouse.Introspection{Active: false}
	if raw == "" || caller == nil {
		return inactive
	}
	// The audit record names what the answer was about: the owner when
	// the caller may see it, "tokens, introspect, *" otherwise.
	caller.self("tokens", "introspect", "*")
	q, err := s.Authenticate(ctx, raw)
	if err != nil {
		return inactive
	}
	s.Touch(q, from)
	switch {
	case q.kind == gatehouse.KindProject:
		if !s.Can(caller, "projects", "get", q.project) {
			return inactive
		}
		caller.noteDecision(Decision{Resource: "projects", Action: "get", Object: q.project, Allowed: true, Via: gatehouse.ViaPolicy})
	case q.account == caller.account:
		caller.self("accounts", "get", q.account)
	default:
		if !s.Can(caller, "accounts", "get", q.account) {
			return inactive
		}
		caller.noteDecision(Decision{Resource: "accounts", Action: "get", Object: q.account, Allowed: true, Via: gatehouse.ViaPolicy})
	}
	out := gatehouse.Introspection{
		Active:    true,
		Sub:       q.subject,
		Iat:       q.issuedAt.Unix(),
		Jti:       q.tokenID,
		TokenType: string(q.kind),
		Iss:       s.instance,
	}
	if !q.expiresAt.IsZero() {
		out.Exp = q.expiresAt.Unix()
	}
	scopes := make([]string, 0, len(q.scopes))
	for _, sc := range q.scopes {
		scopes = append(scopes, sc.Resource+":"+sc.Action+":"+sc.Object)
	}
	out.Scope = strings.Join(scopes, " ")
	return out
}
