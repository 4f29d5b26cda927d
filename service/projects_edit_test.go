package service_test

import (
	"context"
	"path/filepath"
	"sync"
	"testing"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/service"
	"github.com/gatehouse/gatehouse/store/sqlite"
)

// Editing one role changes that role in the project as the store holds
// it: two people editing two roles at once both keep their change; a new
// role may not take an existing name; a role's name does not change; a
// deleted role's tokens go with it.
func TestEditOneRole(t *testing.T) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "gatehouse.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	svc, err := service.New(ctx, service.Options{Store: st, BcryptCost: 10})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Bootstrap(ctx, "admin-password"); err != nil {
		t.Fatal(err)
	}
	nt, _ := svc.Login(ctx, "admin", "admin-password", "127.0.0.1")
	admin, _ := svc.Authenticate(ctx, nt.Token)
	if _, err := svc.CreateProject(ctx, admin, gatehouse.Project{Name: "shop"}); err != nil {
		t.Fatal(err)
	}
	role := func(name string) gatehouse.ProjectRole {
		return gatehouse.ProjectRole{Name: name, Policies: []string{"p, proj:shop:" + name + ", applications, get, shop/*, allow"}}
	}
	var wg sync.WaitGroup
	for _, name := range []string{"a", "b", "c", "d", "e", "f"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Each request has its own principal, as through the server.
			p, err := svc.Authenticate(ctx, nt.Token)
			if err != nil {
				t.Error(err)
				return
			}
			if _, err := svc.PutProjectRole(ctx, p, "shop", "", role(name)); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	pr, err := svc.GetProject(ctx, admin, "shop")
	if err != nil {
		t.Fatal(err)
	}
	if len(pr.Roles) != 6 {
		t.Fatalf("after six concurrent role creations the project has %d roles: %+v", len(pr.Roles), pr.Roles)
	}
	if _, err := svc.PutProjectRole(ctx, admin, "shop", "", role("a")); !gatehouse.IsCode(err, gatehouse.ECONFLICT) {
		t.Errorf("a second role a: %v, want a conflict", err)
	}
	if _, err := svc.PutProjectRole(ctx, admin, "shop", "a", role("z")); !gatehouse.IsCode(err, gatehouse.EINVALID) {
		t.Errorf("renaming role a: %v, want invalid", err)
	}
	if _, err := svc.PutProjectRole(ctx, admin, "shop", "nope", role("nope")); !gatehouse.IsCode(err, gatehouse.ENOTFOUND) {
		t.Errorf("editing a missing role: %v, want not found", err)
	}
	tok, err := svc.CreateRoleToken(ctx, admin, "shop", "b", gatehouse.TokenRequest{Name: "ci"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.DeleteProjectRole(ctx, admin, "shop", "b"); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Authenticate(ctx, tok.Token); err == nil {
		t.Error("the deleted role's token still works")
	}
	if pr, _ := svc.SetProjectDescription(ctx, admin, "shop", "the shop"); pr.Description != "the shop" || len(pr.Roles) != 5 {
		t.Errorf("after the description change: %+v", pr)
	}
}

// A project's roles are what projects, update governs (their policies,
// their groups, their tokens): creating a project with roles needs it too.
// Otherwise projects, create alone would bind anyone — the creator
// included — to a role of the new project, and grant them the project's
// applications.
func TestCreatingAProjectWithRolesNeedsUpdate(t *testing.T) {
	w := service.NewTestWorld(t, nil)
	ctx := context.Background()
	admin := w.Admin()
	if _, err := w.Svc.PutRBAC(ctx, admin, gatehouse.RBAC{PolicyCSV: "p, carol, projects, create, *, allow\np, carol, projects, get, *, allow"}); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Svc.CreateAccount(ctx, admin, gatehouse.AccountCreate{Name: "carol", Password: "carol-password", Capabilities: []gatehouse.Capability{gatehouse.CapLogin}}); err != nil {
		t.Fatal(err)
	}
	nt, err := w.Svc.Login(ctx, "carol", "carol-password", "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	carol := func() *service.Principal {
		p, err := w.Svc.Authenticate(ctx, nt.Token)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	_, err = w.Svc.CreateProject(ctx, carol(), gatehouse.Project{Name: "sandbox", Roles: []gatehouse.ProjectRole{{
		Name:     "dev",
		Policies: []string{"p, proj:sandbox:dev, applications, *, sandbox/*, allow"},
		Groups:   []string{"carol"},
	}}})
	if !gatehouse.IsCode(err, gatehouse.EFORBIDDEN) {
		t.Errorf("carol, who may create projects but not update them, created one with a role bound to herself: %v, want 403", err)
	}
	if w.Svc.Can(carol(), "applications", "delete", "sandbox/web") {
		t.Error("carol may delete the project's applications through the role she bound herself to")
	}
	// An empty project is still hers to create.
	if _, err := w.Svc.CreateProject(ctx, carol(), gatehouse.Project{Name: "empty"}); err != nil {
		t.Errorf("creating a project without roles: %v", err)
	}
}
