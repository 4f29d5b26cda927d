package client

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/gatehouse/gatehouse"
)

// AuditFilter selects audit events; zero fields do not filter.
type AuditFilter struct {
	Actor    string // events this subject caused
	Account  string // events about this account, whoever caused them
	TokenID  string
	Type     string // event type: request, token.created, ...
	Resource string // RBAC resource
	Action   string // RBAC action
	Decision string // allow or deny
	Route    string // the matched route, e.g. "GET /api/v1/account/{name}"
	Status   int    // HTTP status of request events; 0 means any
	Since    time.Time
	Until    time.Time
	Limit    int
	Cursor   string // NextCursor of the previous page
}

// GetRBAC returns the server's policy settings.
func (c *Client) GetRBAC(ctx context.Context) (gatehouse.RBAC, error) {
	var out gatehouse.RBAC
	err := c.do(ctx, request{method: http.MethodGet, path: "/api/v1/settings/rbac"}, &out)
	return out, err
}

// SetRBAC replaces the server's policy settings. A policy that does not
// parse is refused whole and the old one stays in force.
func (c *Client) SetRBAC(ctx context.Context, in gatehouse.RBAC) (gatehouse.RBAC, error) {
	var out gatehouse.RBAC
	err := c.do(ctx, request{method: http.MethodPut, path: "/api/v1/settings/rbac", body: in}, &out)
	return out, err
}

// ExplainRBAC asks the server whether subject may perform action on object
// of resource, and which policy lines decided it.
func (c *Client) ExplainRBAC(ctx context.Context, subject, resource, action, object string) (gatehouse.Explanation, error) {
	q := url.Values{"subject": {subject}, "resource": {resource}, "action": {action}, "object": {object}}
	var out gatehouse.Explanation
	err := c.do(ctx, request{method: http.MethodGet, path: "/api/v1/settings/rbac/can", query: q}, &out)
	return out, err
}

// ListAudit returns one page of audit events.
func (c *Client) ListAudit(ctx context.Context, f AuditFilter) (gatehouse.List[gatehouse.Event], error) {
	q := url.Values{}
	set := func(k, v string) {
		if v != "" {
			q.Set(k, v)
		}
	}
	set("actor", f.Actor)
	set("account", f.Account)
	set("tokenId", f.TokenID)
	set("type", f.Type)
	set("resource", f.Resource)
	set("action", f.Action)
	set("decision", f.Decision)
	set("route", f.Route)
	if f.Status != 0 {
		q.Set("status", strconv.Itoa(f.Status))
	}
	if !f.Since.IsZero() {
		q.Set("since", f.Since.UTC().Format(time.RFC3339Nano))
	}
	if !f.Until.IsZero() {
		q.Set("until", f.Until.UTC().Format(time.RFC3339Nano))
	}
	if f.Limit < 0 {
		return gatehouse.List[gatehouse.Event]{}, gatehouse.Errorf(gatehouse.EINVALID, "limit must not be negative")
	}
	if f.Limit > 0 {
		q.Set("limit", strconv.Itoa(f.Limit))
	}
	set("cursor", f.Cursor)
	var out gatehouse.List[gatehouse.Event]
	err := c.do(ctx, request{method: http.MethodGet, path: "/api/v1/audit", query: q}, &out)
	return out, err
}

// BulkRevoke revokes every token matching the filter (break-glass).
func (c *Client) BulkRevoke(ctx context.Context, in gatehouse.BulkRevoke) (gatehouse.BulkRevokeResult, error) {
	var out gatehouse.BulkRevokeResult
	if in.Account == "" && in.Project == "" && in.Role == "" && in.IssuedBefore.IsZero() && in.Kind == "" {
		return out, gatehouse.Errorf(gatehouse.EINVALID, "bulk revoke needs at least one filter")
	}
	err := c.do(ctx, request{method: http.MethodPost, path: "/api/v1/admin/revoke", body: in}, &out)
	return out, err
}

// Introspect asks the server about token (RFC 7662). The caller must itself
// be authenticated. The token travels in the form body, never in the URL.
func (c *Client) Introspect(ctx context.Context, token string) (gatehouse.Introspection, error) {
	var out gatehouse.Introspection
	err := c.do(ctx, request{method: http.MethodPost, path: "/api/v1/introspect", form: url.Values{"token": {token}}}, &out)
	return out, err
}
