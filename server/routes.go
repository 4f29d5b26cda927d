package server

import "net/http"

const introspectPath = "/api/v1/introspect"

// routes is the whole HTTP surface on one screen.
func (s *Server) routes(mux *http.ServeMux) {
	// Operations.
	mux.HandleFunc("GET /healthz", s.healthz)
	mux.HandleFunc("GET /readyz", s.readyz)
	mux.HandleFunc("GET /metrics", s.api(s.metricsHandler))

	// Session.
	mux.HandleFunc("POST /api/v1/session", s.login)
	mux.HandleFunc("DELETE /api/v1/session", s.api(s.logout))
	mux.HandleFunc("GET /api/v1/session/userinfo", s.userInfo)

	// Accounts and their tokens.
	mux.HandleFunc("GET /api/v1/account", s.api(s.listAccounts))
	mux.HandleFunc("POST /api/v1/account", s.api(s.createAccount))
	mux.HandleFunc("PUT /api/v1/account/password", s.api(s.updatePassword))
	mux.HandleFunc("GET /api/v1/account/can-i/{resource}/{action}/{object...}", s.api(s.canI))
	mux.HandleFunc("GET /api/v1/account/{name}", s.api(s.getAccount))
	mux.HandleFunc("PATCH /api/v1/account/{name}", s.api(s.updateAccount))
	mux.HandleFunc("DELETE /api/v1/account/{name}", s.api(s.deleteAccount))
	mux.HandleFunc("POST /api/v1/account/{name}/token", s.api(s.createToken))
	mux.HandleFunc("GET /api/v1/account/{name}/token", s.api(s.listTokens))
	mux.HandleFunc("DELETE /api/v1/account/{name}/token", s.api(s.revokeAll))
	mux.HandleFunc("DELETE /api/v1/account/{name}/token/{id}", s.api(s.deleteToken))
	mux.HandleFunc("POST /api/v1/account/{name}/token/{id}/rotate", s.api(s.rotateToken))

	// Projects, roles, role tokens.
	mux.HandleFunc("GET /api/v1/projects", s.api(s.listProjects))
	mux.HandleFunc("POST /api/v1/projects", s.api(s.createProject))
	mux.HandleFunc("GET /api/v1/projects/{name}", s.api(s.getProject))
	mux.HandleFunc("PUT /api/v1/projects/{name}", s.api(s.updateProject))
	mux.HandleFunc("DELETE /api/v1/projects/{name}", s.api(s.deleteProject))
	mux.HandleFunc("POST /api/v1/projects/{name}/roles/{role}/token", s.api(s.createRoleToken))
	mux.HandleFunc("GET /api/v1/projects/{name}/roles/{role}/token", s.api(s.listRoleTokens))
	mux.HandleFunc("DELETE /api/v1/projects/{name}/roles/{role}/token/{id}", s.api(s.deleteRoleToken))

	// Applications.
	mux.HandleFunc("GET /api/v1/applications", s.api(s.listApplications))
	mux.HandleFunc("POST /api/v1/applications", s.api(s.createApplication))
	mux.HandleFunc("GET /api/v1/applications/{name}", s.api(s.getApplication))
	mux.HandleFunc("PUT /api/v1/applications/{name}", s.api(s.updateApplication))
	mux.HandleFunc("DELETE /api/v1/applications/{name}", s.api(s.deleteApplication))
	mux.HandleFunc("POST /api/v1/applications/{name}/sync", s.api(s.syncApplication))
	mux.HandleFunc("GET /api/v1/applications/{name}/operations", s.api(s.listOperations))
	mux.HandleFunc("PUT /api/v1/applications/{name}/operations/{id}", s.api(s.reportOperation))
	mux.HandleFunc("PUT /api/v1/applications/{name}/status", s.api(s.setStatus))

	// Policy and settings.
	mux.HandleFunc("GET /api/v1/settings/rbac", s.api(s.getRBAC))
	mux.HandleFunc("PUT /api/v1/settings/rbac", s.api(s.putRBAC))
	mux.HandleFunc("GET /api/v1/settings/rbac/can", s.api(s.explain))

	// Audit and break-glass.
	mux.HandleFunc("GET /api/v1/audit", s.api(s.listEvents))
	mux.HandleFunc("POST /api/v1/admin/revoke", s.api(s.bulkRevoke))

	// Integration.
	mux.HandleFunc("POST "+introspectPath, s.api(s.introspect))
	mux.HandleFunc(verifyPath, s.api(s.verify)) // any method: Envoy and Traefik keep the original one

	// Anything else under /api/ is a JSON 404, not the dashboard.
	mux.HandleFunc("/api/", s.notFound)

	// Dashboard.
	d := newDashboard(s)
	mux.Handle("GET /static/", d.staticFiles())
	mux.HandleFunc("GET /{$}", d.home)
	mux.HandleFunc("POST /login", d.login)
	mux.HandleFunc("POST /logout", d.page(d.logout))
	mux.HandleFunc("GET /user-info", d.page(d.userInfo))
	mux.HandleFunc("GET /tokens/created", d.page(d.tokenCreated))
	mux.HandleFunc("GET /accounts", d.page(d.accounts))
	mux.HandleFunc("POST /accounts", d.page(d.createAccount))
	mux.HandleFunc("GET /accounts/{name}", d.page(d.account))
	mux.HandleFunc("POST /accounts/{name}/enabled", d.page(d.setEnabled))
	mux.HandleFunc("GET /accounts/{name}/tokens/new", d.page(d.accountTokenForm))
	mux.HandleFunc("POST /accounts/{name}/tokens/new", d.page(d.accountTokenPost))
	mux.HandleFunc("POST /accounts/{name}/tokens/{id}/revoke", d.page(d.revokeAccountToken))
	mux.HandleFunc("GET /projects", d.page(d.projects))
	mux.HandleFunc("GET /projects/{name}", d.page(d.project))
	mux.HandleFunc("GET /projects/{name}/roles/{role}/tokens/new", d.page(d.roleTokenForm))
	mux.HandleFunc("POST /projects/{name}/roles/{role}/tokens/new", d.page(d.roleTokenPost))
	mux.HandleFunc("POST /projects/{name}/roles/{role}/tokens/{id}/revoke", d.page(d.revokeRoleToken))
	mux.HandleFunc("GET /applications", d.page(d.applications))
	mux.HandleFunc("POST /applications/{name}/sync", d.page(d.syncApplication))
	mux.HandleFunc("GET /audit", d.page(d.audit))
	mux.HandleFunc("GET /break-glass", d.page(d.breakGlass))
	mux.HandleFunc("POST /break-glass", d.page(d.breakGlassPost))
	mux.HandleFunc("/", d.notFound)
}
