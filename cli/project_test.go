package cli

import (
	"net/http"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
)

func testProject() gatehouse.Project {
	return gatehouse.Project{
		Name:        "shop",
		Description: "the web shop",
		CreatedAt:   testNow.Add(-24 * time.Hour),
		Roles: []gatehouse.ProjectRole{
			{
				Name:        "ci",
				Description: "deploy pipeline",
				Policies: []string{
					"p, proj:shop:ci, applications, sync, shop/*, allow",
					"p,proj:shop:ci,applications,get,shop/*,allow",
				},
				Groups: []string{"deployers"},
			},
			{Name: "viewer", Policies: []string{}, Groups: []string{}},
		},
	}
}

// projectStore is a fake API holding one project that GET and PUT read and
// replace, as the real server does.
type projectStore struct {
	mu   sync.Mutex
	proj gatehouse.Project
	puts int
}

func (s *projectStore) routes() map[string]http.HandlerFunc {
	return map[string]http.HandlerFunc{
		"GET /api/v1/projects": func(w http.ResponseWriter, _ *http.Request) {
			s.mu.Lock()
			defer s.mu.Unlock()
			writeJSON(w, gatehouse.List[gatehouse.Project]{Items: []gatehouse.Project{s.proj}})
		},
		"GET /api/v1/projects/shop": func(w http.ResponseWriter, _ *http.Request) {
			s.mu.Lock()
			defer s.mu.Unlock()
			writeJSON(w, s.proj)
		},
		"PUT /api/v1/projects/shop": func(w http.ResponseWriter, r *http.Request) {
			var p gatehouse.Project
			if err := jsonDecoder(r).Decode(&p); err != nil {
				apiError(w, http.StatusBadRequest, gatehouse.EINVALID, err.Error())
				return
			}
			s.mu.Lock()
			defer s.mu.Unlock()
			s.proj, s.puts = p, s.puts+1
			writeJSON(w, p)
		},
	}
}

func (s *projectStore) role(t *testing.T, name string) gatehouse.ProjectRole {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.proj.Role(name)
	if !ok {
		t.Fatalf("role %q is not in the stored project", name)
	}
	return r
}

func TestProjectReadCommandsGolden(t *testing.T) {
	store := &projectStore{proj: testProject()}
	routes := store.routes()
	routes["GET /api/v1/projects/shop/roles/ci/token"] = reply(gatehouse.List[gatehouse.Token]{Items: testTokens})
	r := authed(t, newFakeAPI(t, routes))
	tests := []struct {
		golden string
		args   []string
	}{
		{"proj_list", []string{"proj", "list"}},
		{"proj_get", []string{"proj", "get", "shop"}},
		{"proj_role_list", []string{"proj", "role", "list", "shop"}},
		{"proj_role_get", []string{"proj", "role", "get", "shop", "ci"}},
		{"proj_role_list_tokens", []string{"proj", "role", "list-tokens", "shop", "ci"}},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			res := r.run(t, tt.args...)
			mustSucceed(t, res)
			golden(t, tt.golden, res.stdout)
		})
	}
	mustFail(t, r.run(t, "proj", "role", "get", "shop", "nope"), "role 'nope' does not exist in project 'shop'")
}

func TestProjectRolePolicies(t *testing.T) {
	store := &projectStore{proj: testProject()}
	r := authed(t, newFakeAPI(t, store.routes()))

	res := r.run(t, "proj", "role", "add-policy", "shop", "viewer", "-a", "get", "-o", "*")
	mustSucceed(t, res)
	want := "p, proj:shop:viewer, applications, get, shop/*, allow"
	if res.stdout != want+"\n" {
		t.Errorf("stdout = %q, want the policy line", res.stdout)
	}
	if got := store.role(t, "viewer").Policies; !reflect.DeepEqual(got, []string{want}) {
		t.Errorf("viewer policies = %q, want [%q]", got, want)
	}

	// Adding it again changes nothing and writes nothing.
	puts := store.puts
	mustSucceed(t, r.run(t, "proj", "role", "add-policy", "shop", "viewer", "-a", "get", "-o", "*"))
	if store.puts != puts {
		t.Errorf("adding an existing policy wrote the project")
	}

	mustSucceed(t, r.run(t, "proj", "role", "add-policy", "shop", "viewer", "--action", "sync", "--object", "web", "--permission", "deny"))
	want2 := "p, proj:shop:viewer, applications, sync, shop/web, deny"
	if got := store.role(t, "viewer").Policies; !reflect.DeepEqual(got, []string{want, want2}) {
		t.Errorf("viewer policies = %q, want [%q %q]", got, want, want2)
	}

	// Removal matches lines that differ only in spacing.
	mustSucceed(t, r.run(t, "proj", "role", "remove-policy", "shop", "ci", "-a", "get", "-o", "*"))
	if got, want := store.role(t, "ci").Policies, []string{"p, proj:shop:ci, applications, sync, shop/*, allow"}; !reflect.DeepEqual(got, want) {
		t.Errorf("ci policies = %q, want %q", got, want)
	}
	// The other role is untouched.
	if got := store.role(t, "ci").Groups; !reflect.DeepEqual(got, []string{"deployers"}) {
		t.Errorf("ci groups = %q, want [deployers]", got)
	}

	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"shop", "ci", "-o", "*"}, "--action is required"},
		{[]string{"shop", "ci", "-a", "get"}, "--object is required"},
		{[]string{"shop", "ci", "-a", "get", "-o", "*", "-p", "maybe"}, "--permission must be allow or deny"},
		{[]string{"shop", "ci", "-a", "get", "-o", "a, b"}, "invalid policy field"},
		{[]string{"shop", "nope", "-a", "get", "-o", "*"}, "role 'nope' does not exist in project 'shop'"},
	} {
		mustFail(t, r.run(t, append([]string{"proj", "role", "add-policy"}, tt.args...)...), tt.want)
	}
}

func TestProjectRoleLifecycle(t *testing.T) {
	store := &projectStore{proj: testProject()}
	r := authed(t, newFakeAPI(t, store.routes()))

	mustSucceed(t, r.run(t, "proj", "role", "create", "shop", "deployer", "-d", "deploys"))
	got := store.role(t, "deployer")
	if want := (gatehouse.ProjectRole{Name: "deployer", Description: "deploys", Policies: []string{}, Groups: []string{}}); !reflect.DeepEqual(got, want) {
		t.Errorf("created role %+v, want %+v", got, want)
	}
	mustFail(t, r.run(t, "proj", "role", "create", "shop", "deployer"), "already exists")

	mustSucceed(t, r.run(t, "proj", "role", "add-group", "shop", "deployer", "ops"))
	mustSucceed(t, r.run(t, "proj", "role", "add-group", "shop", "deployer", "dev"))
	mustSucceed(t, r.run(t, "proj", "role", "remove-group", "shop", "deployer", "ops"))
	if got := store.role(t, "deployer").Groups; !reflect.DeepEqual(got, []string{"dev"}) {
		t.Errorf("groups = %q, want [dev]", got)
	}

	mustSucceed(t, r.run(t, "proj", "role", "delete", "shop", "deployer"))
	store.mu.Lock()
	_, ok := store.proj.Role("deployer")
	n := len(store.proj.Roles)
	store.mu.Unlock()
	if ok || n != 2 {
		t.Errorf("after delete: role still there %v, %d roles, want 2", ok, n)
	}
	mustFail(t, r.run(t, "proj", "role", "delete", "shop", "deployer"), "does not exist")
}

func TestProjectCreateDelete(t *testing.T) {
	api := newFakeAPI(t, map[string]http.HandlerFunc{
		"POST /api/v1/projects":          reply(testProject()),
		"DELETE /api/v1/projects/{name}": reply(struct{}{}),
	})
	r := authed(t, api)
	mustSucceed(t, r.run(t, "proj", "create", "shop", "--description", "the web shop"))
	got := decodeBody[gatehouse.Project](t, api.last(t, "POST", "/api/v1/projects"))
	if want := (gatehouse.Project{Name: "shop", Description: "the web shop", Roles: []gatehouse.ProjectRole{}}); !reflect.DeepEqual(got, want) {
		t.Errorf("create %+v, want %+v", got, want)
	}
	mustSucceed(t, r.run(t, "proj", "delete", "shop"))
	api.last(t, "DELETE", "/api/v1/projects/shop")
}

func TestProjectRoleTokens(t *testing.T) {
	newTok := gatehouse.NewToken{Token: testToken, ID: tokenID1, Name: "pipeline", IssuedAt: testNow, ExpiresAt: testNow.Add(30 * 24 * time.Hour)}
	api := newFakeAPI(t, map[string]http.HandlerFunc{
		"POST /api/v1/projects/{p}/roles/{r}/token":        reply(newTok),
		"DELETE /api/v1/projects/{p}/roles/{r}/token/{id}": reply(struct{}{}),
	})
	r := authed(t, api)

	res := r.run(t, "proj", "role", "create-token", "shop", "ci", "-e", "30d", "--name", "pipeline")
	mustSucceed(t, res)
	golden(t, "proj_role_create_token", res.stdout)
	got := decodeBody[gatehouse.TokenRequest](t, api.last(t, "POST", "/api/v1/projects/shop/roles/ci/token"))
	if want := (gatehouse.TokenRequest{Name: "pipeline", ExpiresIn: ptr(int64(30 * 24 * 3600))}); !reflect.DeepEqual(got, want) {
		t.Errorf("request %+v, want %+v", got, want)
	}

	res = r.run(t, "proj", "role", "create-token", "shop", "ci", "-t")
	mustSucceed(t, res)
	if res.stdout != testToken+"\n" {
		t.Errorf("-t stdout = %q, want only the token", res.stdout)
	}
	if got := api.last(t, "POST", "/api/v1/projects/shop/roles/ci/token").body; got != "{}" {
		t.Errorf("request %s, want {} (server defaults)", got)
	}

	res = r.run(t, "proj", "role", "delete-token", "shop", "ci", tokenID1)
	mustSucceed(t, res)
	api.last(t, "DELETE", "/api/v1/projects/shop/roles/ci/token/"+tokenID1)
}
