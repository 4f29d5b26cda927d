package client

import (
	"context"
	"net/http"

	"github.com/gatehouse/gatehouse"
)

// ListProjects returns every project the caller may get.
func (c *Client) ListProjects(ctx context.Context) ([]gatehouse.Project, error) {
	var out gatehouse.List[gatehouse.Project]
	err := c.do(ctx, request{method: http.MethodGet, path: "/api/v1/projects"}, &out)
	return out.Items, err
}

// GetProject returns one project with its roles.
func (c *Client) GetProject(ctx context.Context, name string) (gatehouse.Project, error) {
	var out gatehouse.Project
	p, err := pathf("/api/v1/projects/%s", "project name", name)
	if err != nil {
		return out, err
	}
	err = c.do(ctx, request{method: http.MethodGet, path: p}, &out)
	return out, err
}

// CreateProject creates a project.
func (c *Client) CreateProject(ctx context.Context, in gatehouse.Project) (gatehouse.Project, error) {
	var out gatehouse.Project
	err := c.do(ctx, request{method: http.MethodPost, path: "/api/v1/projects", body: in}, &out)
	return out, err
}

// UpdateProject replaces a project, roles included; this is how roles are
// edited.
func (c *Client) UpdateProject(ctx context.Context, in gatehouse.Project) (gatehouse.Project, error) {
	var out gatehouse.Project
	p, err := pathf("/api/v1/projects/%s", "project name", in.Name)
	if err != nil {
		return out, err
	}
	err = c.do(ctx, request{method: http.MethodPut, path: p, body: in}, &out)
	return out, err
}

// DeleteProject deletes a project.
func (c *Client) DeleteProject(ctx context.Context, name string) error {
	p, err := pathf("/api/v1/projects/%s", "project name", name)
	if err != nil {
		return err
	}
	return c.do(ctx, request{method: http.MethodDelete, path: p}, nil)
}

// CreateRoleToken mints a token that acts as proj:<project>:<role>.
// Role tokens take no scopes: in.Scopes must be empty.
func (c *Client) CreateRoleToken(ctx context.Context, project, role string, in gatehouse.TokenRequest) (gatehouse.NewToken, error) {
	var out gatehouse.NewToken
	p, err := pathf("/api/v1/projects/%s/roles/%s/token", "project name", project, "role name", role)
	if err != nil {
		return out, err
	}
	if err := checkSeconds("expiresIn", in.ExpiresIn); err != nil {
		return out, err
	}
	err = c.do(ctx, request{method: http.MethodPost, path: p, body: in}, &out)
	return out, err
}

// ListRoleTokens returns a project role's tokens, newest first.
func (c *Client) ListRoleTokens(ctx context.Context, project, role string) ([]gatehouse.Token, error) {
	var out gatehouse.List[gatehouse.Token]
	p, err := pathf("/api/v1/projects/%s/roles/%s/token", "project name", project, "role name", role)
	if err != nil {
		return nil, err
	}
	err = c.do(ctx, request{method: http.MethodGet, path: p}, &out)
	return out.Items, err
}

// DeleteRoleToken revokes one project role token.
func (c *Client) DeleteRoleToken(ctx context.Context, project, role, id string) error {
	p, err := pathf("/api/v1/projects/%s/roles/%s/token/%s", "project name", project, "role name", role, "token id", id)
	if err != nil {
		return err
	}
	return c.do(ctx, request{method: http.MethodDelete, path: p}, nil)
}
