package client

import (
	"context"
	"net/http"
	"net/url"

	"github.com/gatehouse/gatehouse"
)

// ListApplications returns the applications the caller may get, of one
// project when project is not empty.
func (c *Client) ListApplications(ctx context.Context, project string) ([]gatehouse.Application, error) {
	var q url.Values
	if project != "" {
		q = url.Values{"project": {project}}
	}
	var out gatehouse.List[gatehouse.Application]
	err := c.do(ctx, request{method: http.MethodGet, path: "/api/v1/applications", query: q}, &out)
	return out.Items, err
}

// GetApplication returns one application.
func (c *Client) GetApplication(ctx context.Context, name string) (gatehouse.Application, error) {
	var out gatehouse.Application
	p, err := pathf("/api/v1/applications/%s", "application name", name)
	if err != nil {
		return out, err
	}
	err = c.do(ctx, request{method: http.MethodGet, path: p}, &out)
	return out, err
}

// CreateApplication creates an application.
func (c *Client) CreateApplication(ctx context.Context, in gatehouse.Application) (gatehouse.Application, error) {
	var out gatehouse.Application
	err := c.do(ctx, request{method: http.MethodPost, path: "/api/v1/applications", body: in}, &out)
	return out, err
}

// UpdateApplication replaces an application.
func (c *Client) UpdateApplication(ctx context.Context, in gatehouse.Application) (gatehouse.Application, error) {
	var out gatehouse.Application
	p, err := pathf("/api/v1/applications/%s", "application name", in.Name)
	if err != nil {
		return out, err
	}
	err = c.do(ctx, request{method: http.MethodPut, path: p, body: in}, &out)
	return out, err
}

// DeleteApplication deletes an application and its operations.
func (c *Client) DeleteApplication(ctx context.Context, name string) error {
	p, err := pathf("/api/v1/applications/%s", "application name", name)
	if err != nil {
		return err
	}
	return c.do(ctx, request{method: http.MethodDelete, path: p}, nil)
}

// Sync queues a sync operation (state Pending) for a deploy agent.
func (c *Client) Sync(ctx context.Context, name string, in gatehouse.SyncRequest) (gatehouse.Operation, error) {
	var out gatehouse.Operation
	p, err := pathf("/api/v1/applications/%s/sync", "application name", name)
	if err != nil {
		return out, err
	}
	err = c.do(ctx, request{method: http.MethodPost, path: p, body: in}, &out)
	return out, err
}

// ListOperations returns an application's operations, newest first, in one
// state when state is not empty.
func (c *Client) ListOperations(ctx context.Context, name, state string) ([]gatehouse.Operation, error) {
	p, err := pathf("/api/v1/applications/%s/operations", "application name", name)
	if err != nil {
		return nil, err
	}
	var q url.Values
	if state != "" {
		q = url.Values{"state": {state}}
	}
	var out gatehouse.List[gatehouse.Operation]
	err = c.do(ctx, request{method: http.MethodGet, path: p, query: q}, &out)
	return out.Items, err
}

// ReportOperation moves an operation to a new state.
func (c *Client) ReportOperation(ctx context.Context, app, id string, in gatehouse.OperationReport) (gatehouse.Operation, error) {
	var out gatehouse.Operation
	p, err := pathf("/api/v1/applications/%s/operations/%s", "application name", app, "operation id", id)
	if err != nil {
		return out, err
	}
	err = c.do(ctx, request{method: http.MethodPut, path: p, body: in}, &out)
	return out, err
}

// SetStatus records an application's sync and health status.
func (c *Client) SetStatus(ctx context.Context, app string, in gatehouse.StatusReport) (gatehouse.Application, error) {
	var out gatehouse.Application
	p, err := pathf("/api/v1/applications/%s/status", "application name", app)
	if err != nil {
		return out, err
	}
	err = c.do(ctx, request{method: http.MethodPut, path: p, body: in}, &out)
	return out, err
}
