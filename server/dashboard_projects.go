package server

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/service"
)

// The project pages: the list with a form to create a project, a project
// with its roles and their tokens, the forms that edit the project and
// its roles, and deletion. Every change is one service call
// (CreateProject, DeleteProject, SetProjectDescription, PutProjectRole,
// DeleteProjectRole), with the API's authorization, validation and audit;
// an edit of one role changes that role in the project as the store holds
// it, in one transaction, so two people editing two roles at once both
// keep their change. The pages offer only what the policy allows; the
// service decides every change again.

// projectNotices are the fixed messages a redirect to these pages may
// ask for with ?notice=.
var projectNotices = map[string]string{
	"project-created": "Project created. Add a role to give tokens and groups access to its applications.",
	"project-updated": "Project saved.",
	"project-deleted": "Project deleted. Its role tokens stopped working.",
	"role-created":    "Role created. Its policies are in force now.",
	"role-updated":    "Role saved. Its tokens and groups have the new policies now.",
	"role-deleted":    "Role deleted. Its tokens stopped working.",
}

func projectURL(name string) string { return "/projects/" + url.PathEscape(name) }

func roleURL(project, role string) string {
	return projectURL(project) + "/roles/" + url.PathEscape(role)
}

// projectForm is the create and edit form of a project as typed.
type projectForm struct {
	Name, Description string
}

func parseProjectForm(v url.Values) projectForm {
	return projectForm{Name: strings.TrimSpace(v.Get("name")), Description: strings.TrimSpace(newlines(v.Get("description")))}
}

// newlines turns a textarea's CRLF line breaks, as browsers send them,
// into LF.
func newlines(s string) string { return strings.ReplaceAll(s, "\r\n", "\n") }

type projectsView struct {
	Projects  []gatehouse.Project
	CanCreate bool
	Form      projectForm
}

func (d *dashboard) projects(w http.ResponseWriter, r *http.Request, p *service.Principal) error {
	list, err := d.svc.ListProjects(r.Context(), p)
	if err != nil {
		return err
	}
	d.showProjects(w, r, p, http.StatusOK, list, projectForm{}, "")
	return nil
}

func (d *dashboard) showProjects(w http.ResponseWriter, r *http.Request, p *service.Principal, status int, list []gatehouse.Project, f projectForm, problem string) {
	v := projectsView{Projects: list, CanCreate: d.svc.Can(p, "projects", "create", "*"), Form: f}
	d.render(w, r, p, status, "projects", view{Title: "Projects", Section: "Projects", Notice: projectNotices[r.URL.Query().Get("notice")], Error: problem, Data: v})
}

// createProject creates a project without roles; its page adds them.
//
// Here and below, what a refused change shows again is read before the
// change is asked for: the request's audit record names the last check
// the service made, which is then the change's.
func (d *dashboard) createProject(w http.ResponseWriter, r *http.Request, p *service.Principal) error {
	if err := parseForm(r); err != nil {
		return err
	}
	f := parseProjectForm(r.PostForm)
	list, err := d.svc.ListProjects(r.Context(), p)
	if err != nil {
		return err
	}
	pr, err := d.svc.CreateProject(r.Context(), p, gatehouse.Project{Name: f.Name, Description: f.Description})
	if err != nil {
		if code := gatehouse.ErrorCode(err); code == gatehouse.EINTERNAL || code == gatehouse.EFORBIDDEN {
			return err
		}
		d.showProjects(w, r, p, StatusOf(err), list, f, gatehouse.ErrorMessage(err))
		return nil
	}
	seeOther(w, r, projectURL(pr.Name)+"?notice=project-created")
	return nil
}

type projectView struct {
	gatehouse.Project
	Roles      []roleView
	CanUpdate  bool // edit the project and its roles, revoke role tokens
	CanDelete  bool
	CanMint    bool
	EditURL    string
	NewRoleURL string
	DeleteURL  string
	Confirm    string // the deletion's confirmation as typed, after a refusal
}

type roleView struct {
	gatehouse.ProjectRole
	Tokens    []gatehouse.Token
	MintURL   string
	RevokeURL string // prefix; the token id and "/revoke" follow
	EditURL   string
	DeleteURL string
}

func (d *dashboard) project(w http.ResponseWriter, r *http.Request, p *service.Principal) error {
	v, err := d.projectPage(r, p, r.PathValue("name"))
	if err != nil {
		return err
	}
	d.showProject(w, r, p, http.StatusOK, v, "")
	return nil
}

// projectPage reads what a project's page shows.
func (d *dashboard) projectPage(r *http.Request, p *service.Principal, name string) (projectView, error) {
	pr, err := d.svc.GetProject(r.Context(), p, name)
	if err != nil {
		return projectView{}, err
	}
	base := projectURL(pr.Name)
	v := projectView{
		Project:   pr,
		CanUpdate: d.svc.Can(p, "projects", "update", pr.Name),
		CanDelete: d.svc.Can(p, "projects", "delete", pr.Name),
		// Minting (and revoking) role tokens needs the same right for
		// every role of a project, so asking for one of them answers for
		// all.
		CanMint:    len(pr.Roles) > 0 && d.svc.MayMint(r.Context(), p, service.MintOwner{Project: pr.Name, Role: pr.Roles[0].Name}),
		EditURL:    base + "/edit",
		NewRoleURL: base + "/roles/new",
		DeleteURL:  base + "/delete",
	}
	for _, role := range pr.Roles {
		toks, err := d.svc.ListRoleTokens(r.Context(), p, pr.Name, role.Name)
		if err != nil {
			return projectView{}, err
		}
		u := roleURL(pr.Name, role.Name)
		v.Roles = append(v.Roles, roleView{ProjectRole: role, Tokens: toks, MintURL: u + "/tokens/new", RevokeURL: u + "/tokens/",
			EditURL: u + "/edit", DeleteURL: u + "/delete"})
	}
	return v, nil
}

// showProject renders a project's page; problem is a refused deletion's.
func (d *dashboard) showProject(w http.ResponseWriter, r *http.Request, p *service.Principal, status int, v projectView, problem string) {
	d.render(w, r, p, status, "project", view{Title: v.Name, Section: "Projects", Notice: projectNotices[r.URL.Query().Get("notice")], Error: problem, Data: v})
}

// deleteProject deletes a project once its name has been typed to
// confirm; the service refuses a project that still has applications.
func (d *dashboard) deleteProject(w http.ResponseWriter, r *http.Request, p *service.Principal) error {
	if err := parseForm(r); err != nil {
		return err
	}
	name := r.PathValue("name")
	v, err := d.projectPage(r, p, name)
	if err != nil {
		return err
	}
	// The service decides on the deletion before the confirmation is
	// checked, so that a refused form is recorded as the deletion asked
	// for (not as the reads of the page around it).
	if err := d.svc.Authorize(p, "projects", "delete", name); err != nil {
		return err
	}
	v.Confirm = strings.TrimSpace(r.PostForm.Get("confirm"))
	if v.Confirm != name {
		d.showProject(w, r, p, http.StatusBadRequest, v, "To delete the project, type its name, "+name+", in the box.")
		return nil
	}
	if err := d.svc.DeleteProject(r.Context(), p, name); err != nil {
		switch gatehouse.ErrorCode(err) {
		case gatehouse.EINVALID, gatehouse.EPRECONDITION, gatehouse.ECONFLICT:
			d.showProject(w, r, p, StatusOf(err), v, gatehouse.ErrorMessage(err))
			return nil
		}
		return err
	}
	seeOther(w, r, "/projects?notice=project-deleted")
	return nil
}

// projectFormView is the page that edits a project's details.
type projectFormView struct {
	Project string
	Form    projectForm
	Action  string
	Back    string
}

func (d *dashboard) projectEdit(w http.ResponseWriter, r *http.Request, p *service.Principal) error {
	pr, err := d.svc.GetProject(r.Context(), p, r.PathValue("name"))
	if err != nil {
		return err
	}
	if err := d.svc.Authorize(p, "projects", "update", pr.Name); err != nil {
		return err
	}
	d.showProjectForm(w, r, p, http.StatusOK, pr.Name, projectForm{Name: pr.Name, Description: pr.Description}, "")
	return nil
}

func (d *dashboard) showProjectForm(w http.ResponseWriter, r *http.Request, p *service.Principal, status int, name string, f projectForm, problem string) {
	v := projectFormView{Project: name, Form: f, Action: projectURL(name) + "/edit", Back: projectURL(name)}
	d.render(w, r, p, status, "project_form", view{Title: "Edit " + name, Section: "Projects", Error: problem, Data: v})
}

// projectSave replaces the project's description; its roles stay as
// they are.
func (d *dashboard) projectSave(w http.ResponseWriter, r *http.Request, p *service.Principal) error {
	if err := parseForm(r); err != nil {
		return err
	}
	name := r.PathValue("name")
	f := parseProjectForm(r.PostForm)
	f.Name = name
	if _, err := d.svc.SetProjectDescription(r.Context(), p, name, f.Description); err != nil {
		switch gatehouse.ErrorCode(err) {
		case gatehouse.EINVALID, gatehouse.EPRECONDITION, gatehouse.ECONFLICT:
			d.showProjectForm(w, r, p, StatusOf(err), name, f, gatehouse.ErrorMessage(err))
			return nil
		}
		return err
	}
	seeOther(w, r, projectURL(name)+"?notice=project-updated")
	return nil
}

// roleForm is the role form as typed: policies one a line, groups
// separated by commas.
type roleForm struct {
	Name, Description, Policies, Groups string
}

func roleFormOf(role gatehouse.ProjectRole) roleForm {
	return roleForm{Name: role.Name, Description: role.Description,
		Policies: strings.Join(role.Policies, "\n"), Groups: strings.Join(role.Groups, ", ")}
}

// parseRoleForm reads the role form. editing is the name of the role
// being edited, which the form cannot change ("" for a new role). at[i]
// is the line of the Policies box that holds the role's policy i, for
// showing a problem next to its line.
func parseRoleForm(v url.Values, editing string) (f roleForm, role gatehouse.ProjectRole, at []int) {
	f = roleForm{
		Name:        strings.TrimSpace(v.Get("name")),
		Description: strings.TrimSpace(newlines(v.Get("description"))),
		Policies:    newlines(v.Get("policies")),
		Groups:      v.Get("groups"),
	}
	if editing != "" {
		f.Name = editing
	}
	role = gatehouse.ProjectRole{Name: f.Name, Description: f.Description, Policies: []string{},
		Groups: splitList(strings.ReplaceAll(newlines(f.Groups), "\n", ","))}
	for i, l := range strings.Split(f.Policies, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			role.Policies = append(role.Policies, l)
			at = append(at, i+1)
		}
	}
	return f, role, at
}

// lineProblem is a problem shown next to a line of a text box.
type lineProblem struct {
	Line    int // 1-based line of the box; 0 for a line from elsewhere
	Text    string
	Message string
}

type roleFormView struct {
	Project   string
	Editing   string // the role's name; "" for a new role
	Form      roleForm
	Subject   string // the subject the role's lines name
	Problems  []lineProblem
	Action    string
	Back      string
	DeleteURL string
}

func (d *dashboard) roleNew(w http.ResponseWriter, r *http.Request, p *service.Principal) error {
	pr, err := d.svc.GetProject(r.Context(), p, r.PathValue("name"))
	if err != nil {
		return err
	}
	if err := d.svc.Authorize(p, "projects", "update", pr.Name); err != nil {
		return err
	}
	d.showRoleForm(w, r, p, http.StatusOK, pr.Name, "", roleForm{}, nil, "")
	return nil
}

func (d *dashboard) roleEdit(w http.ResponseWriter, r *http.Request, p *service.Principal) error {
	pr, err := d.svc.GetProject(r.Context(), p, r.PathValue("name"))
	if err != nil {
		return err
	}
	role, ok := pr.Role(r.PathValue("role"))
	if !ok {
		return noRole(pr.Name, r.PathValue("role"))
	}
	if err := d.svc.Authorize(p, "projects", "update", pr.Name); err != nil {
		return err
	}
	d.showRoleForm(w, r, p, http.StatusOK, pr.Name, role.Name, roleFormOf(role), nil, "")
	return nil
}

func noRole(project, role string) error {
	return gatehouse.Errorf(gatehouse.ENOTFOUND, "project %q has no role %q", project, role)
}

func (d *dashboard) showRoleForm(w http.ResponseWriter, r *http.Request, p *service.Principal, status int, project, editing string, f roleForm, problems []lineProblem, problem string) {
	v := roleFormView{Project: project, Editing: editing, Form: f, Problems: problems, Back: projectURL(project),
		Action: projectURL(project) + "/roles/new"}
	v.Subject = gatehouse.ProjectSubject(project, "<role>")
	title := "New role · " + project
	if editing != "" {
		v.Subject = gatehouse.ProjectSubject(project, editing)
		v.Action = roleURL(project, editing) + "/edit"
		v.DeleteURL = roleURL(project, editing) + "/delete"
		title = editing + " · " + project
	} else if f.Name != "" {
		v.Subject = gatehouse.ProjectSubject(project, f.Name)
	}
	d.render(w, r, p, status, "role_form", view{Title: title, Section: "Projects", Error: problem, Data: v})
}

// roleSave creates a role (POST .../roles/new) or replaces the one being
// edited (POST .../roles/{role}/edit) through PutProjectRole, which
// leaves the project's other roles as the store holds them. When the
// service refuses, the form comes back as typed, with each bad policy
// line named next to its line.
func (d *dashboard) roleSave(w http.ResponseWriter, r *http.Request, p *service.Principal) error {
	if err := parseForm(r); err != nil {
		return err
	}
	project, editing := r.PathValue("name"), r.PathValue("role")
	f, role, at := parseRoleForm(r.PostForm, editing)
	notice := "role-created"
	if editing != "" {
		notice = "role-updated"
	}
	if _, err := d.svc.PutProjectRole(r.Context(), p, project, editing, role); err != nil {
		switch gatehouse.ErrorCode(err) {
		case gatehouse.EINVALID, gatehouse.EPRECONDITION, gatehouse.ECONFLICT:
		default:
			return err
		}
		var problems []lineProblem
		for _, pp := range d.svc.RolePolicyProblems(project, role) {
			problems = append(problems, lineProblem{Line: at[pp.Line-1], Text: pp.Text, Message: pp.Message})
		}
		d.showRoleForm(w, r, p, StatusOf(err), project, editing, f, problems, gatehouse.ErrorMessage(err))
		return nil
	}
	seeOther(w, r, projectURL(project)+"?notice="+notice)
	return nil
}

// roleDelete removes a role from its project; the service revokes the
// role's tokens in the same transaction.
func (d *dashboard) roleDelete(w http.ResponseWriter, r *http.Request, p *service.Principal) error {
	if err := parseForm(r); err != nil {
		return err
	}
	project, name := r.PathValue("name"), r.PathValue("role")
	if _, err := d.svc.DeleteProjectRole(r.Context(), p, project, name); err != nil {
		return err
	}
	seeOther(w, r, projectURL(project)+"?notice=role-deleted")
	return nil
}
