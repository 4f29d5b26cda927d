package service

import (
	"context"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/policy"
)

// CanI answers the caller's own question, scopes included.
// The request is self-service: its audit record names the question, with
// via "self" (asking is allowed whatever the answer).
func (s *Service) CanI(p *Principal, resource, action, object string) bool {
	p.self(resource, action, object)
	return s.Can(p, resource, action, object)
}

// GetRBAC returns the RBAC settings; needs settings, get, rbac.
// ManagedByConfig names the fields the configuration file sets.
func (s *Service) GetRBAC(ctx context.Context, p *Principal) (gatehouse.RBAC, error) {
	if err := s.authorize(p, "settings", "get", "rbac"); err != nil {
		return gatehouse.RBAC{}, err
	}
	var r gatehouse.RBAC
	err := s.store.View(ctx, func(tx gatehouse.Tx) error {
		var err error
		r, err = tx.GetRBAC(ctx)
		return err
	})
	if err != nil {
		return gatehouse.RBAC{}, err
	}
	r.ManagedByConfig = s.fileRBAC.Fields()
	return r, nil
}

// PutRBAC replaces the RBAC settings. A policy that does not compile is
// refused whole (400 naming its lines) and the old one stays in force; a
// good one is in force for every token before the call returns.
//
// A field that the configuration file sets may not be changed here: the
// file is its source of truth, applied at every start. A request that
// would change one is refused whole (ECONFLICT, naming the file) and
// nothing changes; one that sends such a field as it is stored (a read
// followed by a write of another field) is accepted.
func (s *Service) PutRBAC(ctx context.Context, p *Principal, r gatehouse.RBAC) (gatehouse.RBAC, error) {
	if err := s.authorize(p, "settings", "update", "rbac"); err != nil {
		return gatehouse.RBAC{}, err
	}
	r.ManagedByConfig = nil // an answer's field, never stored
	if _, problem := checkRBAC(r); problem != "" {
		return gatehouse.RBAC{}, gatehouse.Errorf(gatehouse.EINVALID, "%s", problem)
	}
	err := s.write(ctx, p, func(tx gatehouse.Tx, c *change) error {
		if len(s.fileRBAC.Settings) > 0 {
			stored, err := tx.GetRBAC(ctx)
			if err != nil {
				return err
			}
			if err := s.fileRBAC.keep(&r, stored); err != nil {
				return err
			}
		}
		if err := tx.PutRBAC(ctx, r); err != nil {
			return err
		}
		c.policy = true
		return tx.AppendEvents(ctx, []gatehouse.Event{s.event(p, gatehouse.EventPolicyChanged, "settings", "update", "rbac", "")})
	})
	if err != nil {
		return gatehouse.RBAC{}, err
	}
	r.ManagedByConfig = s.fileRBAC.Fields()
	return r, nil
}

// checkRBAC is the check of the settings' fields that every write makes,
// through the API or from the configuration file, before the policy is
// compiled: it returns the field at fault and the problem, or "".
func checkRBAC(r gatehouse.RBAC) (field, problem string) {
	switch {
	case r.MatchMode != "" && r.MatchMode != "glob" && r.MatchMode != "regex":
		return "matchMode", "matchMode must be glob or regex"
	case len(r.PolicyDefault) > 253:
		return "policyDefault", "policyDefault names a role: at most 253 bytes"
	case len(r.Scopes) > 1024:
		return "scopes", "scopes is at most 1024 bytes"
	}
	return "", ""
}

// Explain says how the policy decides a question about any subject;
// needs settings, get, rbac. For a known account the answer counts its
// groups, but only for a caller who may get that account
// (accounts, get, <subject>): otherwise any reader of the settings could
// learn whether any account is in any group, by asking about a line that
// a group grants. Without that right the answer is for the subject
// without groups, and says so (Note).
func (s *Service) Explain(p *Principal, subject, resource, action, object string) (gatehouse.Explanation, error) {
	if err := s.authorize(p, "settings", "get", "rbac"); err != nil {
		return gatehouse.Explanation{}, err
	}
	return s.explain(p, s.engine.Load(), subject, resource, action, object)
}

// explain is Explain against engine e, the policy in force or a draft,
// for caller p, whose right to read the settings is already checked. It
// notes no decision: the request's audit record stays that check.
//
// The matched lines of a project role are shown only to a caller who may
// get the project, as CheckRBAC shows its bad lines; the lines written in
// the policy text itself are the settings the caller may read.
func (s *Service) explain(p *Principal, e *policy.Engine, subject, resource, action, object string) (gatehouse.Explanation, error) {
	if subject == "" || resource == "" || action == "" || object == "" {
		return gatehouse.Explanation{}, gatehouse.Errorf(gatehouse.EINVALID, "subject, resource, action and object are required")
	}
	var groups []string
	note := ""
	switch {
	case !validAccountName(subject):
		// No account has this name: there are no groups to look up.
	case s.Can(p, "accounts", "get", subject):
		if a := s.accounts.get(subject); a != nil {
			groups = a.Groups
		}
	default:
		// Whether or not the account exists: the note must not tell.
		note = "answered without the subject's groups: counting them needs accounts, get, " + subject
	}
	x := e.Explain(subject, groups, resource, action, object)
	out := gatehouse.Explanation{Value: "no", Rule: x.Rule, Matched: []string{}, Note: note}
	if x.Allowed {
		out.Value = "yes"
	}
	for _, l := range x.Matched {
		text := l.String()
		if project, isProject, _ := policy.ProjectOf(l.Subject); isProject && l.Num == 0 && l.Type == "p" &&
			!s.Can(p, "projects", "get", project) {
			text = hiddenProjectLine
		}
		out.Matched = append(out.Matched, text)
	}
	return out, nil
}
