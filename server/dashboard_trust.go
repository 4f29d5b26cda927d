package server

import (
	"encoding/json"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/service"
)

// The Trust policies page: the list, a form to create a policy or edit the
// one opened, its deletion, and a box to test an ID token against it with
// the same answer as `gatehouse trust test`. The form is parsed here; the
// service validates and decides.

type trustView struct {
	Policies []trustRow
	CanEdit  bool
	Editing  string // the policy opened, "" for a new one
	Form     trustForm
	Problem  string
	Test     *gatehouse.TrustTestResult
}

type trustRow struct {
	gatehouse.TrustPolicy
	Claims string
}

// trustForm is the policy form as typed: lists one item a line.
type trustForm struct {
	Name, Issuer, JWKSURL, JWKS, Audiences, Claims string
	Account, Project, Role, TTL, Scopes            string
}

func formOf(tp gatehouse.TrustPolicy) trustForm {
	f := trustForm{Name: tp.Name, Issuer: tp.Issuer, JWKSURL: tp.JWKSURL, JWKS: string(tp.JWKS),
		Audiences: strings.Join(tp.Audiences, "\n"), Account: tp.Account, Project: tp.Project, Role: tp.Role,
		TTL: strconv.FormatInt(tp.TTL, 10)}
	names := make([]string, 0, len(tp.Claims))
	for k := range tp.Claims {
		names = append(names, k)
	}
	sort.Strings(names)
	var claims, scopes []string
	for _, k := range names {
		claims = append(claims, k+" = "+strings.Join(tp.Claims[k], " | "))
	}
	for _, sc := range tp.Scopes {
		scopes = append(scopes, sc.Resource+", "+sc.Action+", "+sc.Object)
	}
	f.Claims, f.Scopes = strings.Join(claims, "\n"), strings.Join(scopes, "\n")
	return f
}

// parseTrustForm reads the form into a policy. A line that does not parse
// is reported; the service checks the rest.
func parseTrustForm(v url.Values) (trustForm, gatehouse.TrustPolicy, string) {
	f := trustForm{
		Name: strings.TrimSpace(v.Get("name")), Issuer: v.Get("issuer"), JWKSURL: v.Get("jwks_url"), JWKS: v.Get("jwks"),
		Audiences: v.Get("audiences"), Claims: v.Get("claims"), Account: strings.TrimSpace(v.Get("account")),
		Project: strings.TrimSpace(v.Get("project")), Role: strings.TrimSpace(v.Get("role")),
		TTL: strings.TrimSpace(v.Get("ttl")), Scopes: v.Get("scopes"),
	}
	tp := gatehouse.TrustPolicy{Name: f.Name, Issuer: f.Issuer, JWKSURL: f.JWKSURL, Account: f.Account, Project: f.Project, Role: f.Role,
		Claims: map[string]gatehouse.ClaimPatterns{}}
	if j := strings.TrimSpace(f.JWKS); j != "" {
		if !json.Valid([]byte(j)) {
			return f, tp, "The inline JWKS is not JSON."
		}
		tp.JWKS = json.RawMessage(j)
	}
	tp.Audiences = lines(f.Audiences)
	for i, l := range lines(f.Claims) {
		k, vals, ok := strings.Cut(l, "=")
		k = strings.TrimSpace(k)
		if !ok || k == "" {
			return f, tp, "Claims line " + strconv.Itoa(i+1) + ": write claim = value (or value | value)."
		}
		for _, val := range strings.Split(vals, "|") {
			if val = strings.TrimSpace(val); val != "" {
				tp.Claims[k] = append(tp.Claims[k], val)
			}
		}
	}
	for i, l := range lines(f.Scopes) {
		parts := strings.Split(l, ",")
		if len(parts) != 3 {
			return f, tp, "Scopes line " + strconv.Itoa(i+1) + ": write resource, action, object."
		}
		tp.Scopes = append(tp.Scopes, gatehouse.Scope{Resource: strings.TrimSpace(parts[0]), Action: strings.TrimSpace(parts[1]), Object: strings.TrimSpace(parts[2])})
	}
	if f.TTL != "" {
		n, err := strconv.ParseInt(f.TTL, 10, 64)
		if err != nil {
			return f, tp, "TTL is a number of seconds."
		}
		tp.TTL = n
	}
	return f, tp, ""
}

// lines splits a textarea into its non-blank lines, trimmed.
func lines(s string) []string {
	var out []string
	for l := range strings.Lines(s) {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	return out
}

// showTrust renders the page; v's form and problem are the caller's.
func (d *dashboard) showTrust(w http.ResponseWriter, r *http.Request, p *service.Principal, status int, v trustView) error {
	list, err := d.svc.ListTrustPolicies(r.Context(), p)
	if err != nil {
		return err
	}
	for _, tp := range list {
		v.Policies = append(v.Policies, trustRow{TrustPolicy: tp, Claims: formOf(tp).Claims})
	}
	v.CanEdit = d.svc.Can(p, "settings", "update", "trust")
	title := "Trust policies"
	if v.Editing != "" {
		title = v.Editing + " · Trust policies"
	}
	d.render(w, r, p, status, "trust", view{Title: title, Section: "Trust policies", Error: v.Problem, Data: v})
	return nil
}

func (d *dashboard) trustPolicies(w http.ResponseWriter, r *http.Request, p *service.Principal) error {
	return d.showTrust(w, r, p, http.StatusOK, trustView{Form: trustForm{TTL: "900"}})
}

func (d *dashboard) trustPolicy(w http.ResponseWriter, r *http.Request, p *service.Principal) error {
	tp, err := d.svc.GetTrustPolicy(r.Context(), p, r.PathValue("name"))
	if err != nil {
		return err
	}
	return d.showTrust(w, r, p, http.StatusOK, trustView{Editing: tp.Name, Form: formOf(tp)})
}

// trustSave creates a policy (POST /trust) or replaces the one opened
// (POST /trust/{name}).
func (d *dashboard) trustSave(w http.ResponseWriter, r *http.Request, p *service.Principal) error {
	if err := parseForm(r); err != nil {
		return err
	}
	editing := r.PathValue("name")
	f, tp, problem := parseTrustForm(r.PostForm)
	v := trustView{Editing: editing, Form: f}
	if problem != "" {
		v.Problem = problem
		return d.showTrust(w, r, p, http.StatusBadRequest, v)
	}
	var err error
	notice := "trust-created"
	if editing == "" {
		tp, err = d.svc.CreateTrustPolicy(r.Context(), p, tp)
	} else {
		tp, err = d.svc.UpdateTrustPolicy(r.Context(), p, editing, tp)
		notice = "trust-updated"
	}
	if err != nil {
		if gatehouse.ErrorCode(err) == gatehouse.EINTERNAL || gatehouse.ErrorCode(err) == gatehouse.EFORBIDDEN {
			return err
		}
		v.Problem = gatehouse.ErrorMessage(err)
		return d.showTrust(w, r, p, StatusOf(err), v)
	}
	seeOther(w, r, "/trust/"+url.PathEscape(tp.Name)+"?notice="+notice)
	return nil
}

func (d *dashboard) trustDelete(w http.ResponseWriter, r *http.Request, p *service.Principal) error {
	if err := parseForm(r); err != nil {
		return err
	}
	if err := d.svc.DeleteTrustPolicy(r.Context(), p, r.PathValue("name")); err != nil {
		return err
	}
	seeOther(w, r, "/trust?notice=trust-deleted")
	return nil
}

// trustTest answers the test box. The token is never shown back.
func (d *dashboard) trustTest(w http.ResponseWriter, r *http.Request, p *service.Principal) error {
	if err := parseForm(r); err != nil {
		return err
	}
	name := r.PathValue("name")
	res, err := d.svc.TestTrustPolicy(r.Context(), p, name, strings.TrimSpace(r.PostForm.Get("token")))
	v := trustView{Editing: name}
	if err != nil {
		if gatehouse.ErrorCode(err) != gatehouse.EINVALID {
			return err
		}
		v.Problem = gatehouse.ErrorMessage(err)
	} else {
		v.Test = &res
	}
	// The form shows the policy as stored, for a reader who may see it.
	if tp, err := d.svc.GetTrustPolicy(r.Context(), p, name); err == nil {
		v.Form = formOf(tp)
	}
	return d.showTrust(w, r, p, http.StatusOK, v)
}
