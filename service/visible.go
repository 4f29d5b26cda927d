package service

import (
	"context"

	"github.com/gatehouse/gatehouse"
)

// SeesAnyProject reports whether the caller may see at least one project
// (for a dashboard's navigation). Unlike ListProjects it notes no
// decision on the principal: the request's own audit record stays the
// one its real question made.
func (s *Service) SeesAnyProject(ctx context.Context, p *Principal) bool {
	if s.Can(p, "projects", "get", "*") {
		return true
	}
	var all []gatehouse.Project
	err := s.store.View(ctx, func(tx gatehouse.Tx) error {
		var err error
		all, err = tx.ListProjects(ctx)
		return err
	})
	if err != nil {
		return false
	}
	for _, pr := range all {
		if s.Can(p, "projects", "get", pr.Name) {
			return true
		}
	}
	return false
}

// SeesAnyApplication reports whether the caller may see at least one
// application, noting no decision (see SeesAnyProject).
func (s *Service) SeesAnyApplication(ctx context.Context, p *Principal) bool {
	if s.Can(p, "applications", "get", "*") {
		return true
	}
	for _, a := range s.apps.list("") {
		if s.Can(p, "applications", "get", a.RBACObject()) {
			return true
		}
	}
	return false
}
