package server

import "net/http"

const introspectPath = "/api/v1/introspect"

// route is one entry of the route table: a ServeMux pattern and its
// handler.
type route struct {
	pattern string
	handler http.HandlerFunc
}

// routes registers the route table, and in s.methods the table without
// its catch-alls, which tells a known API path asked with the wrong
// method (405) from an unknown one (404).
func (s *Server) routes(mux *http.ServeMux) {
	s.methods = http.NewServeMux()
	for _, rt := range s.routeTable() {
		mux.HandleFunc(rt.pattern, rt.handler)
		if rt.pattern != "/api/" && rt.pattern != "/" {
			s.methods.HandleFunc(rt.pattern, func(http.ResponseWriter, *http.Request) {})
		}
	}
}

// allowedMethods returns the Allow list of r's path when the route table
// has the path under other methods only, and "" otherwise.
func (s *Server) allowedMethods(r *http.Request) string {
	var rec methodRecorder
	// A copy: ServeMux sets the request's Pattern, which the access log
	// and metrics read from r.
	s.methods.ServeHTTP(&rec, r.WithContext(r.Context()))
	if rec.code != http.StatusMethodNotAllowed {
		return ""
	}
	return rec.h.Get("Allow")
}

// methodRecorder keeps what ServeMux answers for a path it has under
// other methods: the status and the Allow header.
type methodRecorder struct {
	h    http.Header
	code int
}

func (m *methodRecorder) Header() http.Header {
	if m.h == nil {
		m.h = http.Header{}
	}
	return m.h
}
func (m *methodRecorder) Write(b []byte) (int, error) { return len(b), nil }
func (m *methodRecorder) WriteHeader(code int)        { m.code = code }

// routeTable is the whole HTTP surface on one screen. It is data so that
// tests walk it: the bad-input matrix covers a new route by itself.
func (s *Server) routeTable() []route {
	d := newDashboard(s)
	return []route{
		// Operations.
		{"GET /healthz", s.healthz},
		{"GET /readyz", s.readyz},
		{"GET /api/version", s.versionInfo},
		{"GET /api/v1/openapi.json", s.openAPIDocument},
		{"GET /metrics", s.api(s.metricsHandler)},

		// Session.
		{"POST /api/v1/session", s.login},
		{"DELETE /api/v1/session", s.api(s.logout)},
		{"GET /api/v1/session/userinfo", s.userInfo},
		{"POST /api/v1/session/device", s.startDeviceLogin},
		{"POST /api/v1/session/device/token", s.pollDeviceLogin},

		// Accounts and their tokens.
		{"GET /api/v1/account", s.api(s.listAccounts)},
		{"POST /api/v1/account", s.api(s.createAccount)},
		{"PUT /api/v1/account/password", s.api(s.updatePassword)},
		{"GET /api/v1/account/can-i/{resource}/{action}/{object...}", s.api(s.canI)},
		{"GET /api/v1/account/{name}", s.api(s.getAccount)},
		{"PATCH /api/v1/account/{name}", s.api(s.updateAccount)},
		{"DELETE /api/v1/account/{name}", s.api(s.deleteAccount)},
		{"POST /api/v1/account/{name}/token", s.api(s.createToken)},
		{"GET /api/v1/account/{name}/token", s.api(s.listTokens)},
		{"DELETE /api/v1/account/{name}/token", s.api(s.revokeAll)},
		{"DELETE /api/v1/account/{name}/token/{id}", s.api(s.deleteToken)},
		{"POST /api/v1/account/{name}/token/{id}/rotate", s.api(s.rotateToken)},
		{"POST /api/v1/account/{name}/token/self/rotate", s.api(s.selfRotate)},

		// Projects, roles, role tokens.
		{"GET /api/v1/projects", s.api(s.listProjects)},
		{"POST /api/v1/projects", s.api(s.createProject)},
		{"GET /api/v1/projects/{name}", s.api(s.getProject)},
		{"PUT /api/v1/projects/{name}", s.api(s.updateProject)},
		{"DELETE /api/v1/projects/{name}", s.api(s.deleteProject)},
		{"POST /api/v1/projects/{name}/roles/{role}/token", s.api(s.createRoleToken)},
		{"GET /api/v1/projects/{name}/roles/{role}/token", s.api(s.listRoleTokens)},
		{"DELETE /api/v1/projects/{name}/roles/{role}/token/{id}", s.api(s.deleteRoleToken)},

		// Applications.
		{"GET /api/v1/applications", s.api(s.listApplications)},
		{"POST /api/v1/applications", s.api(s.createApplication)},
		{"GET /api/v1/applications/{name}", s.api(s.getApplication)},
		{"PUT /api/v1/applications/{name}", s.api(s.updateApplication)},
		{"DELETE /api/v1/applications/{name}", s.api(s.deleteApplication)},
		{"POST /api/v1/applications/{name}/sync", s.api(s.syncApplication)},
		{"GET /api/v1/applications/{name}/operations", s.api(s.listOperations)},
		{"PUT /api/v1/applications/{name}/operations/{id}", s.api(s.reportOperation)},
		{"PUT /api/v1/applications/{name}/status", s.api(s.setStatus)},

		// Policy and settings.
		{"GET /api/v1/settings/rbac", s.api(s.getRBAC)},
		{"PUT /api/v1/settings/rbac", s.api(s.putRBAC)},
		{"GET /api/v1/settings/rbac/can", s.api(s.explain)},

		// Trust policies and token exchange (keyless CI).
		{"GET /api/v1/trust-policies", s.api(s.listTrustPolicies)},
		{"POST /api/v1/trust-policies", s.api(s.createTrustPolicy)},
		{"GET /api/v1/trust-policies/{name}", s.api(s.getTrustPolicy)},
		{"PUT /api/v1/trust-policies/{name}", s.api(s.updateTrustPolicy)},
		{"DELETE /api/v1/trust-policies/{name}", s.api(s.deleteTrustPolicy)},
		{"POST /api/v1/trust-policies/{name}/test", s.api(s.testTrustPolicy)},
		{"POST " + exchangePath, s.exchange},

		// Webhook notifications.
		{"GET /api/v1/webhooks", s.api(s.listWebhooks)},
		{"POST /api/v1/webhooks", s.api(s.createWebhook)},
		{"GET /api/v1/webhooks/{name}", s.api(s.getWebhook)},
		{"PUT /api/v1/webhooks/{name}", s.api(s.updateWebhook)},
		{"DELETE /api/v1/webhooks/{name}", s.api(s.deleteWebhook)},
		{"GET /api/v1/webhooks/{name}/deliveries", s.api(s.listDeliveries)},

		// Audit and break-glass.
		{"GET /api/v1/audit", s.api(s.listEvents)},
		{"GET /api/v1/audit/verify", s.api(s.verifyAudit)},
		{"POST /api/v1/admin/revoke", s.api(s.bulkRevoke)},
		// Leak reports need no credential: the token found is the report.
		{"POST /api/v1/tokens/leaked", s.reportLeaked},
		{"GET /api/v1/admin/backup", s.api(s.backup)},

		// Integration.
		{"POST " + introspectPath, s.api(s.introspect)},
		// Forward auth, any method (Envoy and Traefik keep the original one);
		// with forwardAuth.headers: envoy, verifyPath+"/<original path>" too
		// (envoyPrefix hands those to this route uncleaned).
		{verifyPath, s.api(s.verify)},

		// Anything else under /api/ is a JSON 404, not the dashboard.
		{"/api/", s.notFound},

		// Dashboard.
		{"GET /static/", d.staticFiles().ServeHTTP},
		{"GET /{$}", d.home},
		{"POST /login", d.login},
		{"POST /logout", d.page(d.logout)},
		{"GET /auth/login", d.ssoLogin},
		{"GET /auth/callback", d.ssoCallback},
		{"POST /auth/cli", d.ssoCLIConfirm},
		{"GET /user-info", d.page(d.userInfo)},
		{"GET /user-info/password", d.page(d.ownPassword)},
		{"POST /user-info/password", d.page(d.changeOwnPassword)},
		{"GET /tokens/created", d.page(d.tokenCreated)},
		{"GET /accounts", d.page(d.accounts)},
		{"POST /accounts", d.page(d.createAccount)},
		{"GET /accounts/{name}", d.page(d.account)},
		{"POST /accounts/{name}/enabled", d.page(d.setEnabled)},
		{"GET /accounts/{name}/tokens/new", d.page(d.accountTokenForm)},
		{"POST /accounts/{name}/tokens/new", d.page(d.accountTokenPost)},
		{"POST /accounts/{name}/tokens/{id}/revoke", d.page(d.revokeAccountToken)},
		{"GET /accounts/{name}/password", d.page(d.accountPassword)},
		{"POST /accounts/{name}/password", d.page(d.setAccountPassword)},
		{"GET /users/new", d.page(d.newUserForm)},
		{"POST /users/new", d.page(d.createUser)},
		{"GET /projects", d.page(d.projects)},
		{"GET /projects/{name}", d.page(d.project)},
		{"POST /projects", d.page(d.createProject)},
		{"GET /projects/{name}/edit", d.page(d.projectEdit)},
		{"POST /projects/{name}/edit", d.page(d.projectSave)},
		{"POST /projects/{name}/delete", d.page(d.deleteProject)},
		{"GET /projects/{name}/roles/new", d.page(d.roleNew)},
		{"POST /projects/{name}/roles/new", d.page(d.roleSave)},
		{"GET /projects/{name}/roles/{role}/edit", d.page(d.roleEdit)},
		{"POST /projects/{name}/roles/{role}/edit", d.page(d.roleSave)},
		{"POST /projects/{name}/roles/{role}/delete", d.page(d.roleDelete)},
		{"GET /projects/{name}/roles/{role}/tokens/new", d.page(d.roleTokenForm)},
		{"POST /projects/{name}/roles/{role}/tokens/new", d.page(d.roleTokenPost)},
		{"POST /projects/{name}/roles/{role}/tokens/{id}/revoke", d.page(d.revokeRoleToken)},
		{"GET /applications", d.page(d.applications)},
		{"POST /applications/{name}/sync", d.page(d.syncApplication)},
		{"GET /audit", d.page(d.audit)},
		{"GET /audit/tokens/{id}", d.page(d.tokenActivity)},
		{"GET /audit/export.csv", d.page(d.auditExportCSV)},
		{"GET /audit/export.json", d.page(d.auditExportJSON)},
		{"GET /break-glass", d.page(d.breakGlass)},
		{"POST /break-glass", d.page(d.breakGlassPost)},
		{"GET /trust", d.page(d.trustPolicies)},
		{"POST /trust", d.page(d.trustSave)},
		{"GET /trust/{name}", d.page(d.trustPolicy)},
		{"POST /trust/{name}", d.page(d.trustSave)},
		{"POST /trust/{name}/delete", d.page(d.trustDelete)},
		{"POST /trust/{name}/test", d.page(d.trustTest)},
		{"GET /settings/rbac", d.page(d.rbacSettings)},
		{"POST /settings/rbac", d.page(d.rbacPost)},
		{"/", d.notFound},
	}
}
