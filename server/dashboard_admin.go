package server

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/service"
)

// The administration pages: accounts, applications, the audit trail and
// break-glass revocation (projects are in dashboard_projects.go). Each shows
// what the service lets the user see and offers only the actions the
// policy allows; the service checks every action again.

type accountRow struct {
	gatehouse.Account
	Type      string
	CanUpdate bool
}

type accountsView struct {
	Accounts  []accountRow
	CanCreate bool
	Form      newAccountForm
}

type newAccountForm struct {
	Name, Groups string
}

func accountType(a gatehouse.Account) string {
	if a.Has(gatehouse.CapLogin) {
		return "User"
	}
	return "Service account"
}

func (d *dashboard) accounts(w http.ResponseWriter, r *http.Request, p *service.Principal) error {
	return d.showAccounts(w, r, p, http.StatusOK, newAccountForm{}, "")
}

func (d *dashboard) showAccounts(w http.ResponseWriter, r *http.Request, p *service.Principal, status int, f newAccountForm, problem string) error {
	list, err := d.svc.ListAccounts(r.Context(), p)
	if err != nil {
		return err
	}
	v := accountsView{CanCreate: d.svc.Can(p, "accounts", "create", "*"), Form: f}
	for _, a := range list {
		v.Accounts = append(v.Accounts, accountRow{
			Account:   a,
			Type:      accountType(a),
			CanUpdate: a.Name != gatehouse.AdminAccount && d.svc.Can(p, "accounts", "update", a.Name),
		})
	}
	d.render(w, r, p, status, "accounts", view{Title: "Accounts", Section: "Accounts", Error: problem, Data: v})
	return nil
}

// createAccount creates a service account: apiKey only, no password.
func (d *dashboard) createAccount(w http.ResponseWriter, r *http.Request, p *service.Principal) error {
	if err := parseForm(r); err != nil {
		return err
	}
	f := newAccountForm{Name: strings.TrimSpace(r.PostForm.Get("name")), Groups: r.PostForm.Get("groups")}
	a, err := d.svc.CreateAccount(r.Context(), p, gatehouse.AccountCreate{
		Name:         f.Name,
		Capabilities: []gatehouse.Capability{gatehouse.CapAPIKey},
		Groups:       splitList(f.Groups),
	})
	if err != nil {
		if gatehouse.ErrorCode(err) == gatehouse.EINTERNAL {
			return err
		}
		return d.showAccounts(w, r, p, StatusOf(err), f, gatehouse.ErrorMessage(err))
	}
	seeOther(w, r, "/accounts/"+url.PathEscape(a.Name)+"?notice=created")
	return nil
}

// setEnabled enables or disables an account; disabling kills its tokens.
func (d *dashboard) setEnabled(w http.ResponseWriter, r *http.Request, p *service.Principal) error {
	if err := parseForm(r); err != nil {
		return err
	}
	name := r.PathValue("name")
	enabled := r.PostForm.Get("enabled") == "true"
	if _, err := d.svc.UpdateAccount(r.Context(), p, name, gatehouse.AccountPatch{Enabled: &enabled}); err != nil {
		return err
	}
	notice := "disabled"
	if enabled {
		notice = "enabled"
	}
	back := "/accounts/" + url.PathEscape(name)
	if r.PostForm.Get("from") == "list" {
		back = "/accounts"
	}
	seeOther(w, r, back+"?notice="+notice)
	return nil
}

type accountView struct {
	accountRow
	Roles     []string
	Self      bool
	CanMint   bool
	CanRevoke bool
	MintURL   string
	RevokeURL string
}

func (d *dashboard) account(w http.ResponseWriter, r *http.Request, p *service.Principal) error {
	a, err := d.svc.GetAccount(r.Context(), p, r.PathValue("name"))
	if err != nil {
		return err
	}
	rights := d.svc.RightsOn(r.Context(), p, a)
	base := "/accounts/" + url.PathEscape(a.Name) + "/tokens/"
	v := accountView{
		accountRow: accountRow{Account: a, Type: accountType(a), CanUpdate: rights.Update},
		Roles:      rights.Roles,
		Self:       rights.Self,
		CanMint:    rights.MintTokens,
		CanRevoke:  rights.RevokeTokens,
		MintURL:    base + "new",
		RevokeURL:  base,
	}
	d.render(w, r, p, http.StatusOK, "account", view{Title: a.Name, Section: "Accounts", Data: v})
	return nil
}

type applicationsView struct {
	Apps     []appRow
	Projects []string
	Project  string
}

type appRow struct {
	gatehouse.Application
	CanSync bool
}

func (d *dashboard) applications(w http.ResponseWriter, r *http.Request, p *service.Principal) error {
	project := r.URL.Query().Get("project")
	apps, err := d.svc.ListApplications(r.Context(), p, project)
	if err != nil {
		return err
	}
	projects, err := d.svc.ListProjects(r.Context(), p)
	if err != nil {
		return err
	}
	v := applicationsView{Project: project}
	for _, pr := range projects {
		v.Projects = append(v.Projects, pr.Name)
	}
	for _, a := range apps {
		v.Apps = append(v.Apps, appRow{Application: a, CanSync: d.svc.Can(p, "applications", "sync", a.RBACObject())})
	}
	d.render(w, r, p, http.StatusOK, "applications", view{Title: "Applications", Section: "Applications", Data: v})
	return nil
}

// syncApplication queues a sync operation for a deploy agent.
func (d *dashboard) syncApplication(w http.ResponseWriter, r *http.Request, p *service.Principal) error {
	if err := parseForm(r); err != nil {
		return err
	}
	if _, err := d.svc.Sync(r.Context(), p, r.PathValue("name"), gatehouse.SyncRequest{}); err != nil {
		return err
	}
	q := url.Values{"notice": {"synced"}}
	if pr := r.PostForm.Get("project"); pr != "" {
		q.Set("project", pr)
	}
	seeOther(w, r, "/applications?"+q.Encode())
	return nil
}

type auditView struct {
	Query   auditQuery
	Types   []string
	Events  []gatehouse.Event
	NextURL string
	CanAll  bool
	Links   auditLinks // exports of this view, the chart of its token
}

// audit lists recent events, newest first, with simple filters. Users
// without audit, get, * see their own events.
func (d *dashboard) audit(w http.ResponseWriter, r *http.Request, p *service.Principal) error {
	q, f, err := parseAuditQuery(r.URL.Query())
	v := auditView{Query: q, Types: auditEventTypes, CanAll: d.svc.Can(p, "audit", "get", "*")}
	if err == nil {
		v.Links = q.links()
		var list gatehouse.List[gatehouse.Event]
		list, err = d.svc.ListEvents(r.Context(), p, f, q.Cursor)
		v.Events = list.Items
		if list.NextCursor != "" {
			next := q.values()
			next.Set("cursor", list.NextCursor)
			v.NextURL = "/audit?" + next.Encode()
		}
	}
	status, problem := http.StatusOK, ""
	if err != nil {
		if gatehouse.ErrorCode(err) == gatehouse.EINTERNAL {
			return err
		}
		status, problem = StatusOf(err), gatehouse.ErrorMessage(err)
	}
	d.render(w, r, p, status, "audit", view{Title: "Audit", Section: "Audit", Error: problem, Data: v})
	return nil
}

type breakGlassView struct {
	Form   bulkRevokeForm
	Result *gatehouse.BulkRevokeResult
	IDs    []string // the ids shown (the first maxShownIDs)
	More   int
}

const maxShownIDs = 100

func (d *dashboard) breakGlass(w http.ResponseWriter, r *http.Request, p *service.Principal) error {
	d.render(w, r, p, http.StatusOK, "break_glass", view{Title: "Break-glass", Section: "Break-glass", Data: breakGlassView{}})
	return nil
}

// breakGlassPost runs a dry run (which changes nothing and shows the
// tokens that match) or, after confirmation, the revocation itself.
func (d *dashboard) breakGlassPost(w http.ResponseWriter, r *http.Request, p *service.Principal) error {
	if err := parseForm(r); err != nil {
		return err
	}
	f, req, err := parseBulkRevokeForm(r.PostForm)
	v := breakGlassView{Form: f}
	if err == nil {
		req.DryRun = r.PostForm.Get("op") != "revoke"
		var res gatehouse.BulkRevokeResult
		res, err = d.svc.BulkRevoke(r.Context(), p, req)
		if err == nil {
			v.Result = &res
			v.IDs = res.IDs[:min(len(res.IDs), maxShownIDs)]
			v.More = len(res.IDs) - len(v.IDs)
		}
	}
	status, problem := http.StatusOK, ""
	if err != nil {
		if gatehouse.ErrorCode(err) == gatehouse.EINTERNAL {
			return err
		}
		status, problem = StatusOf(err), gatehouse.ErrorMessage(err)
	}
	d.render(w, r, p, status, "break_glass", view{Title: "Break-glass", Section: "Break-glass", Error: problem, Data: v})
	return nil
}

// splitList reads a comma-separated list, dropping blanks.
func splitList(s string) []string {
	var out []string
	for _, part := range strings.Split(s, ",") {
		if part = strings.TrimSpace(part); part != "" {
			out = append(out, part)
		}
	}
	return out
}
