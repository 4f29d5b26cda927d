package client

import (
	"context"
	"reflect"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
)

var (
	t0 = time.Date(2025, 3, 4, 5, 6, 7, 0, time.UTC)
	t1 = t0.Add(12 * time.Hour)
)

func secs(n int64) *int64 { return &n }
func ptr[T any](v T) *T   { return &v }

// TestEndpoints checks, for every API method, the request the client sends
// (method, escaped path, query, JSON body) and the value it decodes.
func TestEndpoints(t *testing.T) {
	token := gatehouse.Token{ID: "5f0c6b2e-7d1a-4c1e-9a51-0e8f1b2c3d4e", Name: "ci", Kind: gatehouse.KindAPI, Account: "ci", IssuedAt: t0, ExpiresAt: t1, CreatedBy: "admin"}
	newToken := gatehouse.NewToken{Token: testToken, ID: token.ID, Name: "ci", IssuedAt: t0, ExpiresAt: t1}
	newTokenJSON := `{"token":"` + testToken + `","id":"5f0c6b2e-7d1a-4c1e-9a51-0e8f1b2c3d4e","name":"ci","issuedAt":"2025-03-04T05:06:07Z","expiresAt":"2025-03-04T17:06:07Z"}`
	account := gatehouse.Account{Name: "ci", Enabled: true, Capabilities: []gatehouse.Capability{gatehouse.CapAPIKey}, Groups: []string{"deployers"}, CreatedAt: t0}
	accountJSON := `{"name":"ci","enabled":true,"capabilities":["apiKey"],"groups":["deployers"],"createdAt":"2025-03-04T05:06:07Z","tokens":null}`
	project := gatehouse.Project{Name: "shop", Description: "the shop", Roles: []gatehouse.ProjectRole{{Name: "ci", Policies: []string{"p, proj:shop:ci, applications, sync, shop/*, allow"}, Groups: []string{}}}, CreatedAt: t0}
	projectJSON := `{"name":"shop","description":"the shop","roles":[{"name":"ci","description":"","policies":["p, proj:shop:ci, applications, sync, shop/*, allow"],"groups":[]}],"createdAt":"2025-03-04T05:06:07Z"}`
	app := gatehouse.Application{Name: "web", Project: "shop", Spec: gatehouse.AppSpec{RepoURL: "https://git.example.com/web.git", Path: "deploy", TargetRevision: "HEAD", Destination: gatehouse.AppDestination{Server: "https://kubernetes.default.svc", Namespace: "web"}}, CreatedAt: t0}
	appJSON := `{"name":"web","project":"shop","spec":{"repoURL":"https://git.example.com/web.git","path":"deploy","targetRevision":"HEAD","destination":{"server":"https://kubernetes.default.svc","namespace":"web"}},"status":{"sync":"","health":""},"createdAt":"2025-03-04T05:06:07Z"}`
	op := gatehouse.Operation{ID: "op1", Application: "web", State: gatehouse.OpPending, Revision: "v2", Prune: true, RequestedBy: "admin", CreatedAt: t0, UpdatedAt: t0}
	opJSON := `{"id":"op1","application":"web","state":"Pending","revision":"v2","prune":true,"dryRun":false,"requestedBy":"admin","createdAt":"2025-03-04T05:06:07Z","updatedAt":"2025-03-04T05:06:07Z","message":""}`
	rbac := gatehouse.RBAC{PolicyCSV: "g, alice, role:admin\n", PolicyDefault: "role:readonly", Scopes: "[groups]", MatchMode: "glob"}
	rbacJSON := `{"policyCSV":"g, alice, role:admin\n","policyDefault":"role:readonly","scopes":"[groups]","matchMode":"glob"}`
	event := gatehouse.Event{ID: 7, Time: t0, Type: gatehouse.EventRequest, Actor: "ci", TokenID: token.ID, TokenKind: gatehouse.KindAPI, Method: "GET", Path: "/api/v1/applications", Decision: "allow", Status: 200}
	eventJSON := `{"id":7,"time":"2025-03-04T05:06:07Z","type":"request","actor":"ci","tokenId":"5f0c6b2e-7d1a-4c1e-9a51-0e8f1b2c3d4e","tokenKind":"api","method":"GET","path":"/api/v1/applications","decision":"allow","status":200}`

	tests := []struct {
		name      string
		call      func(context.Context, *Client) (any, error)
		resp      string
		method    string
		path      string
		query     string
		body      string
		want      any
		wantNoOut bool
	}{
		// Session.
		{
			name:   "login",
			call:   func(ctx context.Context, c *Client) (any, error) { return c.Login(ctx, "admin", "s3cret") },
			resp:   `{"token":"` + testToken + `"}`,
			method: "POST", path: "/api/v1/session", body: `{"username":"admin","password":"s3cret"}`,
			want: testToken,
		},
		{
			name:   "logout",
			call:   func(ctx context.Context, c *Client) (any, error) { return nil, c.Logout(ctx) },
			resp:   `{}`,
			method: "DELETE", path: "/api/v1/session", wantNoOut: true,
		},
		{
			name:   "userinfo",
			call:   func(ctx context.Context, c *Client) (any, error) { return c.UserInfo(ctx) },
			resp:   `{"loggedIn":true,"username":"admin","iss":"gatehouse","groups":["ops"],"roles":["role:admin"],"tokenId":"t1","tokenKind":"session","expiresAt":"2025-03-04T17:06:07Z"}`,
			method: "GET", path: "/api/v1/session/userinfo",
			want: gatehouse.UserInfo{LoggedIn: true, Username: "admin", Iss: "gatehouse", Groups: []string{"ops"}, Roles: []string{"role:admin"}, TokenID: "t1", TokenKind: gatehouse.KindSession, ExpiresAt: t1},
		},
		// Accounts.
		{
			name:   "list accounts",
			call:   func(ctx context.Context, c *Client) (any, error) { return c.ListAccounts(ctx) },
			resp:   `{"items":[` + accountJSON + `]}`,
			method: "GET", path: "/api/v1/account",
			want: []gatehouse.Account{account},
		},
		{
			name:   "get account",
			call:   func(ctx context.Context, c *Client) (any, error) { return c.GetAccount(ctx, "ci bot") },
			resp:   accountJSON,
			method: "GET", path: "/api/v1/account/ci%20bot",
			want: account,
		},
		{
			name: "create account",
			call: func(ctx context.Context, c *Client) (any, error) {
				return c.CreateAccount(ctx, gatehouse.AccountCreate{Name: "ci", Capabilities: []gatehouse.Capability{gatehouse.CapAPIKey}, Groups: []string{"deployers"}})
			},
			resp:   accountJSON,
			method: "POST", path: "/api/v1/account", body: `{"name":"ci","capabilities":["apiKey"],"groups":["deployers"]}`,
			want: account,
		},
		{
			name: "disable account",
			call: func(ctx context.Context, c *Client) (any, error) {
				return c.UpdateAccount(ctx, "ci", gatehouse.AccountPatch{Enabled: ptr(false)})
			},
			resp:   accountJSON,
			method: "PATCH", path: "/api/v1/account/ci", body: `{"enabled":false}`,
			want: account,
		},
		{
			name: "update account groups",
			call: func(ctx context.Context, c *Client) (any, error) {
				return c.UpdateAccount(ctx, "ci", gatehouse.AccountPatch{Groups: &[]string{}, Capabilities: &[]gatehouse.Capability{gatehouse.CapLogin}})
			},
			resp:   accountJSON,
			method: "PATCH", path: "/api/v1/account/ci", body: `{"capabilities":["login"],"groups":[]}`,
			want: account,
		},
		{
			name:   "delete account",
			call:   func(ctx context.Context, c *Client) (any, error) { return nil, c.DeleteAccount(ctx, "ci") },
			resp:   `{}`,
			method: "DELETE", path: "/api/v1/account/ci", wantNoOut: true,
		},
		{
			name: "update password",
			call: func(ctx context.Context, c *Client) (any, error) {
				return nil, c.UpdatePassword(ctx, gatehouse.PasswordChange{Name: "alice", CurrentPassword: "old", NewPassword: "new"})
			},
			resp:   `{}`,
			method: "PUT", path: "/api/v1/account/password", body: `{"name":"alice","currentPassword":"old","newPassword":"new"}`, wantNoOut: true,
		},
		{
			name: "can-i yes, object with slash",
			call: func(ctx context.Context, c *Client) (any, error) {
				return c.CanI(ctx, "applications", "sync", "shop/web app")
			},
			resp:   `{"value":"yes"}`,
			method: "GET", path: "/api/v1/account/can-i/applications/sync/shop/web%20app",
			want: true,
		},
		{
			name:   "can-i no",
			call:   func(ctx context.Context, c *Client) (any, error) { return c.CanI(ctx, "accounts", "delete", "*") },
			resp:   `{"value":"no"}`,
			method: "GET", path: "/api/v1/account/can-i/accounts/delete/%2A",
			want: false,
		},
		{
			name: "create token with scopes and lifetime",
			call: func(ctx context.Context, c *Client) (any, error) {
				return c.CreateToken(ctx, "ci", gatehouse.TokenRequest{Name: "ci", ExpiresIn: secs(43200), Scopes: []gatehouse.Scope{{Resource: "applications", Action: "sync", Object: "shop/*"}}})
			},
			resp:   newTokenJSON,
			method: "POST", path: "/api/v1/account/ci/token", body: `{"name":"ci","expiresIn":43200,"scopes":[{"resource":"applications","action":"sync","object":"shop/*"}]}`,
			want: newToken,
		},
		{
			name: "create non-expiring token sends expiresIn 0",
			call: func(ctx context.Context, c *Client) (any, error) {
				return c.CreateToken(ctx, "ci", gatehouse.TokenRequest{ID: "legacy", ExpiresIn: secs(0)})
			},
			resp:   newTokenJSON,
			method: "POST", path: "/api/v1/account/ci/token", body: `{"expiresIn":0,"id":"legacy"}`,
			want: newToken,
		},
		{
			name: "create token with server default lifetime",
			call: func(ctx context.Context, c *Client) (any, error) {
				return c.CreateToken(ctx, "ci", gatehouse.TokenRequest{})
			},
			resp:   newTokenJSON,
			method: "POST", path: "/api/v1/account/ci/token", body: `{}`,
			want: newToken,
		},
		{
			name:   "list tokens",
			call:   func(ctx context.Context, c *Client) (any, error) { return c.ListTokens(ctx, "ci") },
			resp:   `{"items":[{"id":"5f0c6b2e-7d1a-4c1e-9a51-0e8f1b2c3d4e","name":"ci","kind":"api","account":"ci","issuedAt":"2025-03-04T05:06:07Z","expiresAt":"2025-03-04T17:06:07Z","createdBy":"admin"}]}`,
			method: "GET", path: "/api/v1/account/ci/token",
			want: []gatehouse.Token{token},
		},
		{
			name:   "delete token",
			call:   func(ctx context.Context, c *Client) (any, error) { return nil, c.DeleteToken(ctx, "ci", token.ID) },
			resp:   `{}`,
			method: "DELETE", path: "/api/v1/account/ci/token/" + token.ID, wantNoOut: true,
		},
		{
			name: "rotate token with grace",
			call: func(ctx context.Context, c *Client) (any, error) {
				return c.RotateToken(ctx, "ci", token.ID, gatehouse.RotateRequest{ExpiresIn: secs(3600), GraceSeconds: 300})
			},
			resp:   newTokenJSON,
			method: "POST", path: "/api/v1/account/ci/token/" + token.ID + "/rotate", body: `{"expiresIn":3600,"graceSeconds":300}`,
			want: newToken,
		},
		{
			name: "rotate token now",
			call: func(ctx context.Context, c *Client) (any, error) {
				return c.RotateToken(ctx, "ci", token.ID, gatehouse.RotateRequest{})
			},
			resp:   newTokenJSON,
			method: "POST", path: "/api/v1/account/ci/token/" + token.ID + "/rotate", body: `{}`,
			want: newToken,
		},
		{
			name:   "revoke all",
			call:   func(ctx context.Context, c *Client) (any, error) { return c.RevokeAllTokens(ctx, "ci", time.Time{}) },
			resp:   `{"revoked":3}`,
			method: "DELETE", path: "/api/v1/account/ci/token",
			want: 3,
		},
		{
			name: "revoke all issued before",
			call: func(ctx context.Context, c *Client) (any, error) {
				return c.RevokeAllTokens(ctx, "ci", t0.In(time.FixedZone("CET", 3600)))
			},
			resp:   `{"revoked":1}`,
			method: "DELETE", path: "/api/v1/account/ci/token", query: "issuedBefore=2025-03-04T05%3A06%3A07Z",
			want: 1,
		},
		// Projects.
		{
			name:   "list projects",
			call:   func(ctx context.Context, c *Client) (any, error) { return c.ListProjects(ctx) },
			resp:   `{"items":[` + projectJSON + `]}`,
			method: "GET", path: "/api/v1/projects",
			want: []gatehouse.Project{project},
		},
		{
			name:   "get project",
			call:   func(ctx context.Context, c *Client) (any, error) { return c.GetProject(ctx, "shop") },
			resp:   projectJSON,
			method: "GET", path: "/api/v1/projects/shop",
			want: project,
		},
		{
			name:   "create project",
			call:   func(ctx context.Context, c *Client) (any, error) { return c.CreateProject(ctx, project) },
			resp:   projectJSON,
			method: "POST", path: "/api/v1/projects", body: projectJSON,
			want: project,
		},
		{
			name:   "update project",
			call:   func(ctx context.Context, c *Client) (any, error) { return c.UpdateProject(ctx, project) },
			resp:   projectJSON,
			method: "PUT", path: "/api/v1/projects/shop", body: projectJSON,
			want: project,
		},
		{
			name:   "delete project",
			call:   func(ctx context.Context, c *Client) (any, error) { return nil, c.DeleteProject(ctx, "shop") },
			resp:   `{}`,
			method: "DELETE", path: "/api/v1/projects/shop", wantNoOut: true,
		},
		{
			name: "create role token",
			call: func(ctx context.Context, c *Client) (any, error) {
				return c.CreateRoleToken(ctx, "shop", "ci", gatehouse.TokenRequest{Name: "deploy", ExpiresIn: secs(604800)})
			},
			resp:   newTokenJSON,
			method: "POST", path: "/api/v1/projects/shop/roles/ci/token", body: `{"name":"deploy","expiresIn":604800}`,
			want: newToken,
		},
		{
			name:   "list role tokens",
			call:   func(ctx context.Context, c *Client) (any, error) { return c.ListRoleTokens(ctx, "shop", "ci") },
			resp:   `{"items":[]}`,
			method: "GET", path: "/api/v1/projects/shop/roles/ci/token",
			want: []gatehouse.Token{},
		},
		{
			name: "delete role token",
			call: func(ctx context.Context, c *Client) (any, error) {
				return nil, c.DeleteRoleToken(ctx, "shop", "ci", "id1")
			},
			resp:   `{}`,
			method: "DELETE", path: "/api/v1/projects/shop/roles/ci/token/id1", wantNoOut: true,
		},
		// Applications.
		{
			name:   "list applications of a project",
			call:   func(ctx context.Context, c *Client) (any, error) { return c.ListApplications(ctx, "shop & co") },
			resp:   `{"items":[` + appJSON + `]}`,
			method: "GET", path: "/api/v1/applications", query: "project=shop+%26+co",
			want: []gatehouse.Application{app},
		},
		{
			name:   "list all applications",
			call:   func(ctx context.Context, c *Client) (any, error) { return c.ListApplications(ctx, "") },
			resp:   `{"items":[]}`,
			method: "GET", path: "/api/v1/applications",
			want: []gatehouse.Application{},
		},
		{
			name:   "get application",
			call:   func(ctx context.Context, c *Client) (any, error) { return c.GetApplication(ctx, "web") },
			resp:   appJSON,
			method: "GET", path: "/api/v1/applications/web",
			want: app,
		},
		{
			name:   "create application",
			call:   func(ctx context.Context, c *Client) (any, error) { return c.CreateApplication(ctx, app) },
			resp:   appJSON,
			method: "POST", path: "/api/v1/applications", body: appJSON,
			want: app,
		},
		{
			name:   "update application",
			call:   func(ctx context.Context, c *Client) (any, error) { return c.UpdateApplication(ctx, app) },
			resp:   appJSON,
			method: "PUT", path: "/api/v1/applications/web", body: appJSON,
			want: app,
		},
		{
			name:   "delete application",
			call:   func(ctx context.Context, c *Client) (any, error) { return nil, c.DeleteApplication(ctx, "web") },
			resp:   `{}`,
			method: "DELETE", path: "/api/v1/applications/web", wantNoOut: true,
		},
		{
			name: "sync",
			call: func(ctx context.Context, c *Client) (any, error) {
				return c.Sync(ctx, "web", gatehouse.SyncRequest{Revision: "v2", Prune: true})
			},
			resp:   opJSON,
			method: "POST", path: "/api/v1/applications/web/sync", body: `{"revision":"v2","prune":true}`,
			want: op,
		},
		{
			name:   "operations by state",
			call:   func(ctx context.Context, c *Client) (any, error) { return c.ListOperations(ctx, "web", "Pending") },
			resp:   `{"items":[` + opJSON + `]}`,
			method: "GET", path: "/api/v1/applications/web/operations", query: "state=Pending",
			want: []gatehouse.Operation{op},
		},
		{
			name: "report operation",
			call: func(ctx context.Context, c *Client) (any, error) {
				return c.ReportOperation(ctx, "web", "op1", gatehouse.OperationReport{State: gatehouse.OpFailed, Message: "boom"})
			},
			resp:   opJSON,
			method: "PUT", path: "/api/v1/applications/web/operations/op1", body: `{"state":"Failed","message":"boom"}`,
			want: op,
		},
		{
			name: "set status",
			call: func(ctx context.Context, c *Client) (any, error) {
				return c.SetStatus(ctx, "web", gatehouse.StatusReport{Sync: "Synced", Health: "Healthy", Revision: "v2"})
			},
			resp:   appJSON,
			method: "PUT", path: "/api/v1/applications/web/status", body: `{"sync":"Synced","health":"Healthy","revision":"v2"}`,
			want: app,
		},
		// Settings.
		{
			name:   "get rbac",
			call:   func(ctx context.Context, c *Client) (any, error) { return c.GetRBAC(ctx) },
			resp:   rbacJSON,
			method: "GET", path: "/api/v1/settings/rbac",
			want: rbac,
		},
		{
			name:   "set rbac",
			call:   func(ctx context.Context, c *Client) (any, error) { return c.SetRBAC(ctx, rbac) },
			resp:   rbacJSON,
			method: "PUT", path: "/api/v1/settings/rbac", body: rbacJSON,
			want: rbac,
		},
		{
			name: "explain rbac",
			call: func(ctx context.Context, c *Client) (any, error) {
				return c.ExplainRBAC(ctx, "alice", "applications", "get", "shop/web")
			},
			resp:   `{"value":"yes","matched":["p, role:readonly, *, get, *, allow"]}`,
			method: "GET", path: "/api/v1/settings/rbac/can", query: "action=get&object=shop%2Fweb&resource=applications&subject=alice",
			want: gatehouse.Explanation{Value: "yes", Matched: []string{"p, role:readonly, *, get, *, allow"}},
		},
		// Audit.
		{
			name: "audit with every filter",
			call: func(ctx context.Context, c *Client) (any, error) {
				return c.ListAudit(ctx, AuditFilter{Account: "ci", TokenID: "t1", Type: "request", Action: "get", Decision: "deny", Since: t0, Until: t1, Limit: 50, Cursor: "abc"})
			},
			resp:   `{"items":[` + eventJSON + `],"nextCursor":"def"}`,
			method: "GET", path: "/api/v1/audit",
			query: "account=ci&action=get&cursor=abc&decision=deny&limit=50&since=2025-03-04T05%3A06%3A07Z&tokenId=t1&type=request&until=2025-03-04T17%3A06%3A07Z",
			want:  gatehouse.List[gatehouse.Event]{Items: []gatehouse.Event{event}, NextCursor: "def"},
		},
		{
			name:   "audit without filter",
			call:   func(ctx context.Context, c *Client) (any, error) { return c.ListAudit(ctx, AuditFilter{}) },
			resp:   `{"items":[]}`,
			method: "GET", path: "/api/v1/audit",
			want: gatehouse.List[gatehouse.Event]{Items: []gatehouse.Event{}},
		},
		// Break-glass and introspection.
		{
			name: "bulk revoke",
			call: func(ctx context.Context, c *Client) (any, error) {
				return c.BulkRevoke(ctx, gatehouse.BulkRevoke{Project: "shop", Role: "ci", IssuedBefore: t0, DryRun: true})
			},
			resp:   `{"count":2,"ids":["a","b"],"dryRun":true}`,
			method: "POST", path: "/api/v1/admin/revoke", body: `{"project":"shop","role":"ci","issuedBefore":"2025-03-04T05:06:07Z","dryRun":true}`,
			want: gatehouse.BulkRevokeResult{Count: 2, IDs: []string{"a", "b"}, DryRun: true},
		},
		{
			name:   "introspect",
			call:   func(ctx context.Context, c *Client) (any, error) { return c.Introspect(ctx, "gatehouse:abc+/=") },
			resp:   `{"active":true,"sub":"ci","exp":1741108000,"iat":1741064800,"jti":"t1","token_type":"api","iss":"gatehouse","scope":"applications:sync:shop/*"}`,
			method: "POST", path: "/api/v1/introspect", body: "token=gatehouse%3Aabc%2B%2F%3D",
			want: gatehouse.Introspection{Active: true, Sub: "ci", Exp: 1741108000, Iat: 1741064800, Jti: "t1", TokenType: "api", Iss: "gatehouse", Scope: "applications:sync:shop/*"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, rec := newTestServer(t, answer{body: tt.resp})
			got, err := tt.call(t.Context(), c)
			if err != nil {
				t.Fatalf("call: %v", err)
			}
			if rec.method != tt.method {
				t.Errorf("method = %q, want %q", rec.method, tt.method)
			}
			if rec.escapedPath != tt.path {
				t.Errorf("path = %q, want %q", rec.escapedPath, tt.path)
			}
			if rec.rawQuery != tt.query {
				t.Errorf("query = %q, want %q", rec.rawQuery, tt.query)
			}
			if rec.body != tt.body {
				t.Errorf("body = %s, want %s", rec.body, tt.body)
			}
			if tt.wantNoOut {
				return
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("decoded %#v, want %#v", got, tt.want)
			}
		})
	}
}
