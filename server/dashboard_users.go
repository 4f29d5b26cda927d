package server

import (
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/service"
)

// Local users and their passwords: an administrator creates a local user
// with a password and sets another local account's password, and a local
// user changes their own. Each form is one call of the service method the
// API calls (CreateAccount, UpdatePassword), so who may, the password
// rules, what happens to sessions and the audit record are the API's. The
// pages never put a password back into a form.

// userForm is the Create local user form as submitted, passwords aside.
type userForm struct {
	Name, Groups  string
	Login, APIKey bool
}

type userFormView struct {
	Form userForm
}

// newUserForm shows the empty form: a user who logs in and may hold API
// tokens, the common case.
func (d *dashboard) newUserForm(w http.ResponseWriter, r *http.Request, p *service.Principal) error {
	return d.showUserForm(w, r, p, http.StatusOK, userForm{Login: true, APIKey: true}, "")
}

func (d *dashboard) showUserForm(w http.ResponseWriter, r *http.Request, p *service.Principal, status int, f userForm, problem string) error {
	d.render(w, r, p, status, "users_new", view{Title: "Create local user", Section: "Accounts", Error: problem, Data: userFormView{Form: f}})
	return nil
}

// createUser creates a local account with a password and the chosen
// capabilities. A refusal shows the form again with the service's reason.
func (d *dashboard) createUser(w http.ResponseWriter, r *http.Request, p *service.Principal) error {
	if err := parseForm(r); err != nil {
		return err
	}
	caps := r.PostForm["capability"]
	f := userForm{
		Name:   strings.TrimSpace(r.PostForm.Get("name")),
		Groups: r.PostForm.Get("groups"),
		Login:  slices.Contains(caps, string(gatehouse.CapLogin)),
		APIKey: slices.Contains(caps, string(gatehouse.CapAPIKey)),
	}
	// The service decides first, so that a refused form is recorded as
	// the creation it asked for, and a user who may not create the
	// account hears that before anything about the form.
	if err := d.svc.Authorize(p, "accounts", "create", f.Name); err != nil {
		return d.showUserForm(w, r, p, StatusOf(err), f, gatehouse.ErrorMessage(err))
	}
	password, again := r.PostForm.Get("password"), r.PostForm.Get("password_again")
	if password != again {
		return d.showUserForm(w, r, p, http.StatusBadRequest, f, "The two passwords differ. Type the same password twice.")
	}
	req := gatehouse.AccountCreate{Name: f.Name, Password: password, Groups: splitList(f.Groups), Capabilities: []gatehouse.Capability{}}
	for _, c := range caps {
		req.Capabilities = append(req.Capabilities, gatehouse.Capability(c))
	}
	a, err := d.svc.CreateAccount(r.Context(), p, req)
	if err != nil {
		if gatehouse.ErrorCode(err) == gatehouse.EINTERNAL {
			return err
		}
		return d.showUserForm(w, r, p, StatusOf(err), f, gatehouse.ErrorMessage(err))
	}
	seeOther(w, r, "/accounts/"+url.PathEscape(a.Name)+"?notice=user-created")
	return nil
}

// passwordView is the Set password page (another account's) and the
// Change password page (one's own).
type passwordView struct {
	Account gatehouse.Account
	// Offer is whether the page shows the form: the account is local and
	// the policy lets the user change it. The service decides again.
	Offer  bool
	Action string // where the form posts
	Back   string
}

// accountPassword shows the form that sets another account's password.
// One's own password has its own page, which asks for it first.
func (d *dashboard) accountPassword(w http.ResponseWriter, r *http.Request, p *service.Principal) error {
	a, err := d.svc.GetAccount(r.Context(), p, r.PathValue("name"))
	if err != nil {
		return err
	}
	if d.svc.RightsOn(r.Context(), p, a).Self {
		seeOther(w, r, "/user-info/password")
		return nil
	}
	return d.showAccountPassword(w, r, p, http.StatusOK, a, "")
}

func (d *dashboard) showAccountPassword(w http.ResponseWriter, r *http.Request, p *service.Principal, status int, a gatehouse.Account, problem string) error {
	base := "/accounts/" + url.PathEscape(a.Name)
	v := passwordView{
		Account: a,
		Offer:   !a.IsSSO() && d.svc.Can(p, "accounts", "update", a.Name),
		Action:  base + "/password",
		Back:    base,
	}
	d.render(w, r, p, status, "password_reset", view{Title: "Set password of " + a.Name, Section: "Accounts", Error: problem, Data: v})
	return nil
}

// setAccountPassword sets another account's password. The service asks
// for the caller's own current password, and ends every session of the
// account; its API tokens keep working.
func (d *dashboard) setAccountPassword(w http.ResponseWriter, r *http.Request, p *service.Principal) error {
	if err := parseForm(r); err != nil {
		return err
	}
	a, err := d.svc.GetAccount(r.Context(), p, r.PathValue("name"))
	if err != nil {
		return err
	}
	if d.svc.RightsOn(r.Context(), p, a).Self {
		// Not here: one's own password changes on one's own page, which
		// keeps this session (and says so).
		seeOther(w, r, "/user-info/password")
		return nil
	}
	// As for a new user: the service's decision on the change comes
	// before the form's checks, and is the request's record.
	if err := d.svc.Authorize(p, "accounts", "update", a.Name); err != nil {
		return d.showAccountPassword(w, r, p, StatusOf(err), a, gatehouse.ErrorMessage(err))
	}
	if problem := samePasswords(r); problem != "" {
		return d.showAccountPassword(w, r, p, http.StatusBadRequest, a, problem)
	}
	err = d.svc.UpdatePassword(r.Context(), p, gatehouse.PasswordChange{
		Name:            a.Name,
		CurrentPassword: r.PostForm.Get("current_password"),
		NewPassword:     r.PostForm.Get("new_password"),
	}, clientIP(r))
	if err != nil {
		if gatehouse.ErrorCode(err) == gatehouse.EINTERNAL {
			return err
		}
		return d.showAccountPassword(w, r, p, StatusOf(err), a, passwordProblem(err))
	}
	seeOther(w, r, "/accounts/"+url.PathEscape(a.Name)+"?notice=password-set")
	return nil
}

// ownPassword shows the Change password form of the user's own account.
func (d *dashboard) ownPassword(w http.ResponseWriter, r *http.Request, p *service.Principal) error {
	a, err := d.svc.GetAccount(r.Context(), p, p.Account())
	if err != nil {
		return err
	}
	return d.showOwnPassword(w, r, p, http.StatusOK, a, "")
}

func (d *dashboard) showOwnPassword(w http.ResponseWriter, r *http.Request, p *service.Principal, status int, a gatehouse.Account, problem string) error {
	v := passwordView{Account: a, Offer: !a.IsSSO(), Action: "/user-info/password", Back: "/user-info"}
	d.render(w, r, p, status, "password_change", view{Title: "Change password", Section: "User Info", Error: problem, Data: v})
	return nil
}

// changeOwnPassword changes the user's password. As through the API, the
// service ends the account's other sessions and keeps this one.
func (d *dashboard) changeOwnPassword(w http.ResponseWriter, r *http.Request, p *service.Principal) error {
	if err := parseForm(r); err != nil {
		return err
	}
	a, err := d.svc.GetAccount(r.Context(), p, p.Account())
	if err != nil {
		return err
	}
	if problem := samePasswords(r); problem != "" {
		return d.showOwnPassword(w, r, p, http.StatusBadRequest, a, problem)
	}
	err = d.svc.UpdatePassword(r.Context(), p, gatehouse.PasswordChange{
		CurrentPassword: r.PostForm.Get("current_password"),
		NewPassword:     r.PostForm.Get("new_password"),
	}, clientIP(r))
	if err != nil {
		if gatehouse.ErrorCode(err) == gatehouse.EINTERNAL {
			return err
		}
		return d.showOwnPassword(w, r, p, StatusOf(err), a, passwordProblem(err))
	}
	seeOther(w, r, "/user-info?notice=password-changed")
	return nil
}

// samePasswords checks that the new password was typed the same twice.
func samePasswords(r *http.Request) string {
	if r.PostForm.Get("new_password") != r.PostForm.Get("new_password_again") {
		return "The two new passwords differ. Type the same new password twice."
	}
	return ""
}

// passwordProblem is the service's refusal as the form says it.
func passwordProblem(err error) string {
	if gatehouse.ErrorCode(err) == gatehouse.EUNAUTHORIZED {
		return "Your current password is wrong."
	}
	return gatehouse.ErrorMessage(err)
}
