package server

import (
	"net/http"
	"net/url"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/service"
)

// userInfoView is the User Info page.
type userInfoView struct {
	Info      gatehouse.UserInfo
	Account   gatehouse.Account
	CanMint   bool
	MintURL   string
	RevokeURL string // prefix; the token id and "/revoke" follow
	// Expiring are the user's tokens within the longest expiry warning.
	Expiring []service.ExpiringToken
}

// userInfo shows who the user is, their roles and their API tokens.
func (d *dashboard) userInfo(w http.ResponseWriter, r *http.Request, p *service.Principal) error {
	a, err := d.svc.GetAccount(r.Context(), p, p.Account())
	if err != nil {
		return err
	}
	base := "/accounts/" + url.PathEscape(a.Name) + "/tokens/"
	d.render(w, r, p, http.StatusOK, "user_info", view{
		Title:   "User Info",
		Section: "User Info",
		Data: userInfoView{
			Info:      d.svc.UserInfo(p),
			Account:   a,
			CanMint:   d.svc.MayMint(r.Context(), p, service.MintOwner{Account: a.Name}),
			MintURL:   base + "new",
			RevokeURL: base,
			Expiring:  d.svc.ExpiringSoon(a.Tokens),
		},
	})
	return nil
}

// tokenFormView is the Generate New Token page, for an account or a
// project role.
type tokenFormView struct {
	Owner          string // account name, or project/role
	OwnerKind      string // "account" or "project role"
	Action         string // where the form posts
	Back           string
	Form           tokenForm
	Choices        []expiryChoice
	CustomSelected bool
	MaxHours       int64
	MaxLabel       string
	AllowScopes    bool
	Rows           []scopeRowView
	Preview        service.Preview
	Problems       []string
}

type scopeRowView struct {
	N int // 1-based, for ids and labels
	scopeRow
}

// tokenOwner is whose token a form mints.
type tokenOwner struct {
	kind    gatehouse.TokenKind
	account string // api tokens
	project string // project role tokens
	role    string
}

// mintOwner is the owner as the service names it.
func (o tokenOwner) mintOwner() service.MintOwner {
	if o.kind == gatehouse.KindProject {
		return service.MintOwner{Project: o.project, Role: o.role}
	}
	return service.MintOwner{Account: o.account}
}

func (o tokenOwner) label() (name, kind string) {
	if o.kind == gatehouse.KindProject {
		return o.project + " / " + o.role, "project role"
	}
	return o.account, "account"
}

// formURL is where the owner's token form lives.
func (o tokenOwner) formURL() string {
	if o.kind == gatehouse.KindProject {
		return "/projects/" + url.PathEscape(o.project) + "/roles/" + url.PathEscape(o.role) + "/tokens/new"
	}
	return "/accounts/" + url.PathEscape(o.account) + "/tokens/new"
}

// backURL is the page that lists the owner's tokens.
func (o tokenOwner) backURL(p *service.Principal) string {
	switch {
	case o.kind == gatehouse.KindProject:
		return "/projects/" + url.PathEscape(o.project)
	case o.account == p.Account():
		return "/user-info"
	}
	return "/accounts/" + url.PathEscape(o.account)
}

// accountOwner and roleOwner name the owner of a token form. Whether the
// user may mint for it is the service's decision: MintPreview and
// CreateToken / CreateRoleToken answer it, under one rule.
func accountOwner(r *http.Request) tokenOwner {
	return tokenOwner{kind: gatehouse.KindAPI, account: r.PathValue("name")}
}

func roleOwner(r *http.Request) tokenOwner {
	return tokenOwner{kind: gatehouse.KindProject, project: r.PathValue("name"), role: r.PathValue("role")}
}

// accountTokenForm and roleTokenForm show an empty form with the preview
// of the owner's unscoped permissions.
func (d *dashboard) accountTokenForm(w http.ResponseWriter, r *http.Request, p *service.Principal) error {
	return d.showTokenForm(w, r, p, accountOwner(r), http.StatusOK, tokenForm{}, nil, nil)
}

func (d *dashboard) roleTokenForm(w http.ResponseWriter, r *http.Request, p *service.Principal) error {
	return d.showTokenForm(w, r, p, roleOwner(r), http.StatusOK, tokenForm{}, nil, nil)
}

func (d *dashboard) accountTokenPost(w http.ResponseWriter, r *http.Request, p *service.Principal) error {
	return d.tokenPost(w, r, p, accountOwner(r))
}

func (d *dashboard) roleTokenPost(w http.ResponseWriter, r *http.Request, p *service.Principal) error {
	return d.tokenPost(w, r, p, roleOwner(r))
}

// tokenPost handles the form's three buttons: "Preview" and "Add scope"
// show the form again and change nothing; "Generate" mints, seals the
// secret into a cookie for one showing and redirects to it.
func (d *dashboard) tokenPost(w http.ResponseWriter, r *http.Request, p *service.Principal, o tokenOwner) error {
	if err := parseForm(r); err != nil {
		return err
	}
	allowScopes := o.kind == gatehouse.KindAPI
	f, req, problems := parseTokenForm(r.PostForm, d.svc.MaxLifetime(), allowScopes)
	op := r.PostForm.Get("op")
	if op == "add-scope" && len(f.Scopes) < maxScopeRows {
		f.Scopes = append(f.Scopes, scopeRow{})
	}
	if op != "generate" {
		return d.showTokenForm(w, r, p, o, http.StatusOK, f, req.Scopes, nil)
	}
	if len(problems) > 0 {
		return d.showTokenForm(w, r, p, o, http.StatusBadRequest, f, req.Scopes, problems)
	}
	var nt gatehouse.NewToken
	var err error
	if o.kind == gatehouse.KindProject {
		nt, err = d.svc.CreateRoleToken(r.Context(), p, o.project, o.role, req)
	} else {
		nt, err = d.svc.CreateToken(r.Context(), p, o.account, req)
	}
	switch gatehouse.ErrorCode(err) {
	case "":
	case gatehouse.EINVALID, gatehouse.EPRECONDITION:
		return d.showTokenForm(w, r, p, o, StatusOf(err), f, req.Scopes, []string{gatehouse.ErrorMessage(err)})
	default:
		return err
	}
	owner, kind := o.label()
	c, err := r.Cookie(CookieName) // the session cookie p was authenticated with
	if err != nil {
		return gatehouse.Internal(err)
	}
	sealed, err := d.flash.seal(c.Value, p.TokenID(), flashToken{Token: nt, Owner: kind + " " + owner, Back: o.backURL(p)})
	if err != nil {
		return err
	}
	d.setFlashCookie(w, sealed)
	seeOther(w, r, flashPath)
	return nil
}

// showTokenForm renders the form with its values, the preview of what the
// token could do and any problems. The preview is also the service's
// answer to whether the user may mint for this owner at all.
func (d *dashboard) showTokenForm(w http.ResponseWriter, r *http.Request, p *service.Principal, o tokenOwner, status int, f tokenForm, scopes []gatehouse.Scope, problems []string) error {
	preview, err := d.svc.MintPreview(r.Context(), p, o.mintOwner(), scopes)
	if err != nil {
		return err
	}
	maxLife := d.svc.MaxLifetime()
	choices := expiryChoices(maxLife)
	if f.Expiration == "" {
		f.Expiration = defaultChoice(choices)
	}
	for i := range choices {
		choices[i].Selected = choices[i].Value == f.Expiration
	}
	owner, kind := o.label()
	v := tokenFormView{
		Owner:          owner,
		OwnerKind:      kind,
		Action:         o.formURL(),
		Back:           o.backURL(p),
		Form:           f,
		Choices:        choices,
		CustomSelected: f.Expiration == customExpiry,
		MaxHours:       int64(maxLife / time.Hour),
		MaxLabel:       humanDuration(maxLife),
		AllowScopes:    o.kind == gatehouse.KindAPI,
		Preview:        preview,
		Problems:       problems,
	}
	if v.AllowScopes {
		rows := f.Scopes
		if len(rows) == 0 || rows[len(rows)-1] != (scopeRow{}) {
			rows = append(rows, scopeRow{}) // always one empty row to fill in
		}
		for i, row := range rows[:min(len(rows), maxScopeRows)] {
			v.Rows = append(v.Rows, scopeRowView{N: i + 1, scopeRow: row})
		}
	}
	d.render(w, r, p, status, "token_form", view{Title: "Generate New Token", Section: d.sectionOf(o), Data: v})
	return nil
}

func (d *dashboard) sectionOf(o tokenOwner) string {
	if o.kind == gatehouse.KindProject {
		return "Projects"
	}
	return "User Info"
}

// tokenCreatedView is the copy-once page.
type tokenCreatedView struct {
	Shown   bool
	Token   gatehouse.NewToken
	Owner   string
	Back    string
	APIBase string
}

// tokenCreated shows a freshly minted token once: it opens the sealed
// cookie with the session cookie and clears it, so a reload (or any later
// visit) finds nothing.
func (d *dashboard) tokenCreated(w http.ResponseWriter, r *http.Request, p *service.Principal) error {
	v := tokenCreatedView{Back: "/user-info"}
	// Only a GET takes the token out: a HEAD would spend it unseen.
	c, err := r.Cookie(flashCookie)
	session, serr := r.Cookie(CookieName) // the one p was authenticated with
	if err == nil && serr == nil && c.Value != "" && r.Method == http.MethodGet {
		if f, ok := d.flash.take(c.Value, session.Value, p.TokenID()); ok {
			v = tokenCreatedView{Shown: true, Token: f.Token, Owner: f.Owner, Back: f.Back, APIBase: d.origin(r)}
		}
		d.clearFlashCookie(w)
	}
	title := "Token already shown"
	if v.Shown {
		title = "New token"
	}
	d.render(w, r, p, http.StatusOK, "token_created", view{Title: title, Data: v})
	return nil
}

// origin is the server's address as the browser sees it, for the usage
// example.
func (d *dashboard) origin(r *http.Request) string {
	scheme := "http"
	if d.s.tls || r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

// revokeAccountToken and revokeRoleToken delete a token; it stops working
// before the redirect is sent.
func (d *dashboard) revokeAccountToken(w http.ResponseWriter, r *http.Request, p *service.Principal) error {
	name := r.PathValue("name")
	if err := d.svc.DeleteToken(r.Context(), p, name, r.PathValue("id")); err != nil {
		return err
	}
	o := tokenOwner{kind: gatehouse.KindAPI, account: name}
	seeOther(w, r, o.backURL(p)+"?notice=revoked")
	return nil
}

func (d *dashboard) revokeRoleToken(w http.ResponseWriter, r *http.Request, p *service.Principal) error {
	project := r.PathValue("name")
	if err := d.svc.DeleteRoleToken(r.Context(), p, project, r.PathValue("role"), r.PathValue("id")); err != nil {
		return err
	}
	seeOther(w, r, "/projects/"+url.PathEscape(project)+"?notice=revoked")
	return nil
}
