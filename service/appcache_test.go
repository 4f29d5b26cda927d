package service_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/service"
)

// Applications are read from memory; what one replica commits (create,
// a move to another project, a status report, a delete) the other serves
// after the change feed, and never an application, or a project, that
// the store no longer holds. A random sequence of writes on both
// replicas (fixed seed) ends with both serving exactly what the store
// lists.
func TestReplicasServeApplicationsAsCommitted(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "gatehouse.db")
	const bound = 300 * time.Millisecond
	a, _ := replica(t, path, bound)
	if _, err := a.Bootstrap(ctx, "admin-password"); err != nil {
		t.Fatal(err)
	}
	b, _ := replica(t, path, bound)
	nt, err := a.Login(ctx, "admin", "admin-password", "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	principal := func(s *service.Service) *service.Principal {
		// A replica the loaded machine (the race detector's run) kept from
		// the feed past the 300 ms bound refuses until it has caught up:
		// that is the rule, so wait for it rather than fail.
		deadline := time.Now().Add(10 * time.Second)
		for {
			p, err := s.Authenticate(ctx, nt.Token)
			if err == nil {
				return p
			}
			if !gatehouse.IsCode(err, gatehouse.EUNAVAILABLE) || time.Now().After(deadline) {
				t.Fatal(err)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	for _, name := range []string{"red", "blue"} {
		if _, err := a.CreateProject(ctx, principal(a), gatehouse.Project{Name: name}); err != nil {
			t.Fatal(err)
		}
	}
	app := func(name, project string) gatehouse.Application {
		return gatehouse.Application{Name: name, Project: project, Spec: gatehouse.AppSpec{
			RepoURL: "https://git.example/" + name, Destination: gatehouse.AppDestination{Namespace: name},
		}}
	}
	projectOn := func(s *service.Service, name string) string {
		got, err := s.GetApplication(ctx, principal(s), name)
		switch {
		case gatehouse.IsCode(err, gatehouse.ENOTFOUND):
			return "missing"
		case err != nil:
			t.Fatal(err)
		}
		return got.Project + " " + got.Status.Health
	}

	if _, err := a.CreateApplication(ctx, principal(a), app("web", "red")); err != nil {
		t.Fatal(err)
	}
	eventually(t, bound, "b serves the new application", func() bool { return projectOn(b, "web") == "red Unknown" })
	if _, err := b.UpdateApplication(ctx, principal(b), "web", app("web", "blue")); err != nil {
		t.Fatal(err)
	}
	if got := projectOn(b, "web"); got != "blue Unknown" {
		t.Fatalf("the replica that moved the application serves %q", got)
	}
	eventually(t, bound, "a serves the move", func() bool { return projectOn(a, "web") == "blue Unknown" })
	if _, err := a.SetStatus(ctx, principal(a), "web", gatehouse.StatusReport{Sync: "Synced", Health: "Healthy"}); err != nil {
		t.Fatal(err)
	}
	eventually(t, bound, "b serves the status", func() bool { return projectOn(b, "web") == "blue Healthy" })
	if err := a.DeleteApplication(ctx, principal(a), "web"); err != nil {
		t.Fatal(err)
	}
	eventually(t, bound, "b forgets the deleted application", func() bool { return projectOn(b, "web") == "missing" })

	// Random writes on either replica; a write that fails (a name taken,
	// missing) changes nothing in memory either.
	rng := rand.New(rand.NewPCG(15, 2026))
	reps := []*service.Service{a, b}
	for i := 0; i < 300; i++ {
		s := reps[rng.IntN(2)]
		name := fmt.Sprintf("app%d", rng.IntN(12))
		project := []string{"red", "blue", "nope"}[rng.IntN(3)]
		switch rng.IntN(4) {
		case 0:
			_, _ = s.CreateApplication(ctx, principal(s), app(name, project))
		case 1:
			_, _ = s.UpdateApplication(ctx, principal(s), name, app(name, project))
		case 2:
			_, _ = s.SetStatus(ctx, principal(s), name, gatehouse.StatusReport{Sync: "OutOfSync", Health: []string{"Healthy", "Degraded"}[rng.IntN(2)]})
		case 3:
			_ = s.DeleteApplication(ctx, principal(s), name)
		}
	}
	// The store's own view, through a replica started now; a and b
	// serve exactly that once each has read the other's writes.
	c, _ := replica(t, path, bound)
	fromStore, err := c.ListApplications(ctx, principal(c), "")
	if err != nil {
		t.Fatal(err)
	}
	for i, s := range reps {
		eventually(t, bound, fmt.Sprintf("replica %d serves what the store holds", i), func() bool {
			got, err := s.ListApplications(ctx, principal(s), "")
			return err == nil && slices.Equal(got, fromStore)
		})
	}
	if len(fromStore) == 0 {
		t.Fatal("the random writes left no application; the check above proved nothing")
	}
	for _, project := range []string{"red", "blue"} {
		got, _ := b.ListApplications(ctx, principal(b), project)
		for _, x := range got {
			if x.Project != project {
				t.Errorf("b lists %s under project %s", x.Name, project)
			}
		}
	}
}
