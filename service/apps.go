package service

import (
	"context"
	"slices"
	"strings"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/token"
)

var (
	syncStates   = []string{"Synced", "OutOfSync", "Unknown"}
	healthStates = []string{"Healthy", "Progressing", "Degraded", "Missing", "Unknown"}
)

// ListApplications returns the applications the caller may get, of one
// project or all, from memory (see appCache).
func (s *Service) ListApplications(ctx context.Context, p *Principal, project string) ([]gatehouse.Application, error) {
	all := s.apps.list(project)
	p.filtered("applications")
	if project != "" {
		p.decision.Object = project + "/*"
	}
	out := []gatehouse.Application{}
	for _, a := range all {
		if s.Can(p, "applications", "get", a.RBACObject()) {
			out = append(out, a)
		}
	}
	return out, nil
}

// GetApplication returns an application; needs applications, get.
func (s *Service) GetApplication(ctx context.Context, p *Principal, name string) (gatehouse.Application, error) {
	return s.appFor(p, name, "get")
}

// appFor finds an application in memory and checks action on it.
func (s *Service) appFor(p *Principal, name, action string) (gatehouse.Application, error) {
	a, ok := s.apps.get(name)
	return s.decideApp(p, name, action, a, ok)
}

// appTx loads an application inside tx (a write reads what it changes
// from the store, not from memory) and checks action on it.
func (s *Service) appTx(ctx context.Context, tx gatehouse.Tx, p *Principal, name, action string) (gatehouse.Application, error) {
	a, err := tx.GetApplication(ctx, name)
	if err != nil && !gatehouse.IsCode(err, gatehouse.ENOTFOUND) {
		return a, err
	}
	return s.decideApp(p, name, action, a, err == nil)
}

// decideApp checks action on an application (found or not). An
// existing application is authorized on its real object,
// <project>/<name>, and nothing else. What a refusal says is chosen so
// that a caller who may not act on an application learns neither whether
// it exists nor its project: the same 403 for a missing one as for an
// existing one, with a message that names no project. Only a caller who
// may act on an application of that name in any project (applications,
// action, */<name>) is told 404 for a missing one. The audit record of a
// refusal names the object */<name> for the same reason (callers read
// their own audit events).
func (s *Service) decideApp(p *Principal, name, action string, a gatehouse.Application, found bool) (gatehouse.Application, error) {
	switch {
	case found:
		if s.Can(p, "applications", action, a.RBACObject()) {
			p.noteDecision(Decision{Resource: "applications", Action: action, Object: a.RBACObject(), Allowed: true, Via: gatehouse.ViaPolicy})
			return a, nil
		}
	case s.Can(p, "applications", action, "*/"+name):
		p.noteDecision(Decision{Resource: "applications", Action: action, Object: "*/" + name, Allowed: true, Via: gatehouse.ViaPolicy})
		return gatehouse.Application{}, gatehouse.Errorf(gatehouse.ENOTFOUND, "application %q not found", name)
	}
	via := gatehouse.ViaPolicy
	if found && len(p.scopes) > 0 && s.canIgnoringScopes(p, "applications", action, a.RBACObject()) {
		via = gatehouse.ViaScope
	}
	p.noteDecision(Decision{Resource: "applications", Action: action, Object: "*/" + name, Via: via})
	return gatehouse.Application{}, gatehouse.Errorf(gatehouse.EFORBIDDEN, "permission denied: applications, %s, application %q", action, name)
}

// CreateApplication registers an application in a project.
func (s *Service) CreateApplication(ctx context.Context, p *Principal, a gatehouse.Application) (gatehouse.Application, error) {
	if err := checkApp(&a); err != nil {
		return gatehouse.Application{}, err
	}
	if err := s.authorize(p, "applications", "create", a.RBACObject()); err != nil {
		return gatehouse.Application{}, err
	}
	a.Status = gatehouse.AppStatus{Sync: "Unknown", Health: "Unknown"}
	a.CreatedAt = s.now().UTC()
	err := s.write(ctx, p, func(tx gatehouse.Tx, c *change) error {
		if _, err := tx.GetProject(ctx, a.Project); gatehouse.IsCode(err, gatehouse.ENOTFOUND) {
			return gatehouse.Errorf(gatehouse.EINVALID, "project %q does not exist", a.Project)
		} else if err != nil {
			return err
		}
		err := tx.CreateApplication(ctx, a)
		switch {
		case gatehouse.IsCode(err, gatehouse.ECONFLICT):
			return gatehouse.Errorf(gatehouse.ECONFLICT, "application %q already exists", a.Name)
		case err != nil:
			return err
		}
		c.putApp(a)
		return nil
	})
	if err != nil {
		return gatehouse.Application{}, err
	}
	return a, nil
}

// UpdateApplication replaces an application's spec (and project). Moving
// it to another project needs update rights on both.
func (s *Service) UpdateApplication(ctx context.Context, p *Principal, name string, a gatehouse.Application) (gatehouse.Application, error) {
	if a.Name == "" {
		a.Name = name
	}
	if a.Name != name {
		return gatehouse.Application{}, gatehouse.Errorf(gatehouse.EINVALID, "application name in the body (%q) differs from the path (%q)", a.Name, name)
	}
	if err := checkApp(&a); err != nil {
		return gatehouse.Application{}, err
	}
	var out gatehouse.Application
	err := s.write(ctx, p, func(tx gatehouse.Tx, c *change) error {
		old, err := s.appTx(ctx, tx, p, name, "update")
		if err != nil {
			return err
		}
		if a.Project != old.Project {
			if err := s.authorize(p, "applications", "update", a.RBACObject()); err != nil {
				return err
			}
			if _, err := tx.GetProject(ctx, a.Project); gatehouse.IsCode(err, gatehouse.ENOTFOUND) {
				return gatehouse.Errorf(gatehouse.EINVALID, "project %q does not exist", a.Project)
			} else if err != nil {
				return err
			}
		}
		old.Project, old.Spec = a.Project, a.Spec
		out = old
		c.putApp(old)
		return tx.UpdateApplication(ctx, old)
	})
	return out, err
}

// DeleteApplication deletes an application and its operations.
func (s *Service) DeleteApplication(ctx context.Context, p *Principal, name string) error {
	return s.write(ctx, p, func(tx gatehouse.Tx, c *change) error {
		if _, err := s.appTx(ctx, tx, p, name, "delete"); err != nil {
			return err
		}
		c.deleteApp(name)
		return tx.DeleteApplication(ctx, name)
	})
}

// Sync queues a sync operation (Pending) for an agent to pick up.
func (s *Service) Sync(ctx context.Context, p *Principal, name string, req gatehouse.SyncRequest) (gatehouse.Operation, error) {
	if len(req.Revision) > 255 {
		return gatehouse.Operation{}, gatehouse.Errorf(gatehouse.EINVALID, "revision is too long")
	}
	id, err := token.NewID(s.rand)
	if err != nil {
		return gatehouse.Operation{}, gatehouse.Internal(err)
	}
	now := s.now().UTC()
	var op gatehouse.Operation
	err = s.write(ctx, p, func(tx gatehouse.Tx, _ *change) error {
		a, err := s.appTx(ctx, tx, p, name, "sync")
		if err != nil {
			return err
		}
		rev := req.Revision
		if rev == "" {
			rev = a.Spec.TargetRevision
		}
		op = gatehouse.Operation{
			ID: id.String(), Application: name, State: gatehouse.OpPending,
			Revision: rev, Prune: req.Prune, DryRun: req.DryRun,
			RequestedBy: p.subject, CreatedAt: now, UpdatedAt: now,
		}
		return tx.CreateOperation(ctx, op)
	})
	return op, err
}

// ListOperations lists an application's operations, newest first.
func (s *Service) ListOperations(ctx context.Context, p *Principal, name, state string) ([]gatehouse.Operation, error) {
	if state != "" && !validOpState(state) {
		return nil, gatehouse.Errorf(gatehouse.EINVALID, "state must be Pending, Running, Succeeded or Failed")
	}
	if _, err := s.appFor(p, name, "get"); err != nil {
		return nil, err
	}
	var ops []gatehouse.Operation
	err := s.store.View(ctx, func(tx gatehouse.Tx) error {
		var err error
		ops, err = tx.ListOperations(ctx, name, state)
		return err
	})
	if ops == nil {
		ops = []gatehouse.Operation{}
	}
	return ops, err
}

// ReportOperation moves an operation along Pending → Running →
// Succeeded|Failed (or Pending → Failed); anything else is 412.
func (s *Service) ReportOperation(ctx context.Context, p *Principal, name, id string, rep gatehouse.OperationReport) (gatehouse.Operation, error) {
	if !validOpState(rep.State) {
		return gatehouse.Operation{}, gatehouse.Errorf(gatehouse.EINVALID, "state must be Running, Succeeded or Failed")
	}
	if len(rep.Message) > 4096 {
		return gatehouse.Operation{}, gatehouse.Errorf(gatehouse.EINVALID, "message is too long (4096 bytes at most)")
	}
	var op gatehouse.Operation
	err := s.write(ctx, p, func(tx gatehouse.Tx, _ *change) error {
		if _, err := s.appTx(ctx, tx, p, name, "update"); err != nil {
			return err
		}
		var err error
		if op, err = tx.GetOperation(ctx, name, id); err != nil {
			return err
		}
		if !legalTransition(op.State, rep.State) {
			return gatehouse.Errorf(gatehouse.EPRECONDITION, "operation %s is %s; it cannot move to %s", id, op.State, rep.State)
		}
		op.State, op.Message, op.UpdatedAt = rep.State, rep.Message, s.now().UTC()
		return tx.UpdateOperation(ctx, op)
	})
	return op, err
}

// SetStatus records what an agent observed: sync status and health.
func (s *Service) SetStatus(ctx context.Context, p *Principal, name string, rep gatehouse.StatusReport) (gatehouse.Application, error) {
	if !slices.Contains(syncStates, rep.Sync) {
		return gatehouse.Application{}, gatehouse.Errorf(gatehouse.EINVALID, "sync must be one of %s", strings.Join(syncStates, ", "))
	}
	if !slices.Contains(healthStates, rep.Health) {
		return gatehouse.Application{}, gatehouse.Errorf(gatehouse.EINVALID, "health must be one of %s", strings.Join(healthStates, ", "))
	}
	if len(rep.Message) > 4096 || len(rep.Revision) > 255 {
		return gatehouse.Application{}, gatehouse.Errorf(gatehouse.EINVALID, "message or revision is too long")
	}
	var a gatehouse.Application
	err := s.write(ctx, p, func(tx gatehouse.Tx, c *change) error {
		var err error
		if a, err = s.appTx(ctx, tx, p, name, "update"); err != nil {
			return err
		}
		a.Status = gatehouse.AppStatus{Sync: rep.Sync, Health: rep.Health, Revision: rep.Revision, Message: rep.Message, ReportedAt: s.now().UTC()}
		c.putApp(a)
		return tx.UpdateApplication(ctx, a)
	})
	return a, err
}

func legalTransition(from, to string) bool {
	switch from {
	case gatehouse.OpPending:
		return to == gatehouse.OpRunning || to == gatehouse.OpFailed
	case gatehouse.OpRunning:
		return to == gatehouse.OpSucceeded || to == gatehouse.OpFailed
	}
	return false
}

func validOpState(s string) bool {
	return slices.Contains([]string{gatehouse.OpPending, gatehouse.OpRunning, gatehouse.OpSucceeded, gatehouse.OpFailed}, s)
}

func checkApp(a *gatehouse.Application) error {
	if !dnsLabel.MatchString(a.Name) {
		return gatehouse.Errorf(gatehouse.EINVALID, "application name must be a DNS label: 1-63 lowercase letters, digits and '-'")
	}
	if !dnsLabel.MatchString(a.Project) {
		return gatehouse.Errorf(gatehouse.EINVALID, "project is required")
	}
	sp := &a.Spec
	if strings.TrimSpace(sp.RepoURL) == "" {
		return gatehouse.Errorf(gatehouse.EINVALID, "spec.repoURL is required")
	}
	if sp.Destination.Server == "" && sp.Destination.Namespace == "" {
		return gatehouse.Errorf(gatehouse.EINVALID, "spec.destination needs a server or a namespace")
	}
	if sp.TargetRevision == "" {
		sp.TargetRevision = "HEAD"
	}
	for _, f := range []string{sp.RepoURL, sp.Path, sp.TargetRevision, sp.Destination.Server, sp.Destination.Namespace} {
		if len(f) > 2048 {
			return gatehouse.Errorf(gatehouse.EINVALID, "spec fields are limited to 2048 bytes")
		}
	}
	return nil
}
