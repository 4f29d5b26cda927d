package server

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/service"
)

// The RBAC policy page: the settings (policy CSV, default role, scopes,
// match mode) in one form, and a box that asks "can SUBJECT do ACTION on
// RESOURCE OBJECT?". Save is PutRBAC, as for the API. Check and asking the
// draft are CheckRBAC, which compiles the text in the form as PutRBAC
// would and keeps it out of force; asking the saved policy is Explain,
// the API's explain. A refused save comes back with the text as typed and
// every bad line named by its number.

// rbacNotices are the fixed messages a redirect to the page may ask for.
var rbacNotices = map[string]string{
	"rbac-saved": "Policy saved. It is in force for every token now.",
}

// rbacForm is the settings form as typed.
type rbacForm struct {
	PolicyCSV, PolicyDefault, Scopes, MatchMode string
}

func rbacFormOf(rb gatehouse.RBAC) rbacForm {
	return rbacForm{PolicyCSV: rb.PolicyCSV, PolicyDefault: rb.PolicyDefault, Scopes: rb.Scopes, MatchMode: rb.MatchMode}
}

// parseRBACForm reads the settings form. The policy keeps its lines as
// typed (LF line breaks), so that the service's line numbers are the
// box's.
func parseRBACForm(v url.Values) (rbacForm, gatehouse.RBAC) {
	f := rbacForm{
		PolicyCSV:     newlines(v.Get("policy_csv")),
		PolicyDefault: strings.TrimSpace(v.Get("policy_default")),
		Scopes:        strings.TrimSpace(v.Get("scopes")),
		MatchMode:     strings.TrimSpace(v.Get("match_mode")),
	}
	return f, gatehouse.RBAC{PolicyCSV: f.PolicyCSV, PolicyDefault: f.PolicyDefault, Scopes: f.Scopes, MatchMode: f.MatchMode}
}

// question is the explain box as typed.
type question struct {
	Subject, Resource, Action, Object string
}

func parseQuestion(v url.Values) question {
	return question{
		Subject:  strings.TrimSpace(v.Get("subject")),
		Resource: strings.TrimSpace(v.Get("resource")),
		Action:   strings.TrimSpace(v.Get("action")),
		Object:   strings.TrimSpace(v.Get("object")),
	}
}

// answer is the explain box's answer, or why there is none.
type answer struct {
	Against string // "the saved policy" or "the draft"
	gatehouse.Explanation
	Why     string // the rule that decided, in words
	Problem string
}

// ruleWords says in words which rule decided an explanation.
var ruleWords = map[string]string{
	"default-role":  "The default role allows it.",
	"subject":       "The subject, or a role it holds, allows it.",
	"group":         "A group of the subject allows it.",
	"deny":          "A deny line matches, and deny wins.",
	"no-match":      "No line allows it.",
	"cross-project": "A project role acts only inside its own project.",
}

func answerOf(against string, x gatehouse.Explanation, err error) *answer {
	if err != nil {
		return &answer{Against: against, Problem: gatehouse.ErrorMessage(err)}
	}
	return &answer{Against: against, Explanation: x, Why: ruleWords[x.Rule]}
}

type modeChoice struct {
	Value, Label string
	Selected     bool
}

type rbacView struct {
	Form     rbacForm
	Modes    []modeChoice
	CanEdit  bool
	Draft    bool // the form holds text that is not (known to be) saved
	Checked  bool // the draft was checked
	Problems []lineProblem
	Invalid  string
	Warnings []string
	Question question
	Answer   *answer
}

// draftOf fills the view's problems and warnings from a check.
func (v *rbacView) draftOf(dr service.RBACDraft) {
	for _, pp := range dr.Problems {
		v.Problems = append(v.Problems, lineProblem{Line: pp.Line, Text: pp.Text, Message: pp.Message})
	}
	v.Invalid, v.Warnings = dr.Invalid, dr.Warnings
}

func (d *dashboard) rbacSettings(w http.ResponseWriter, r *http.Request, p *service.Principal) error {
	rb, err := d.svc.GetRBAC(r.Context(), p)
	if err != nil {
		return err
	}
	// Checking the saved settings lists their warnings.
	dr, err := d.svc.CheckRBAC(r.Context(), p, rb)
	if err != nil {
		return err
	}
	v := rbacView{Form: rbacFormOf(rb)}
	v.draftOf(dr)
	d.showRBAC(w, r, p, http.StatusOK, v, "")
	return nil
}

// rbacPost handles the form's buttons. "save" saves; "explain" asks the
// saved policy; anything else ("check", and the Enter key, which
// submits the first button) checks the draft and asks it the question,
// if one was typed. Only "save" changes anything.
func (d *dashboard) rbacPost(w http.ResponseWriter, r *http.Request, p *service.Principal) error {
	if err := parseForm(r); err != nil {
		return err
	}
	f, rb := parseRBACForm(r.PostForm)
	v := rbacView{Form: f, Draft: true, Question: parseQuestion(r.PostForm)}
	q := v.Question
	status := http.StatusOK
	switch r.PostForm.Get("op") {
	case "save":
		// The check that names every bad line goes first, so that the
		// request's audit record is of the save, the service's last
		// decision. A user who may not read the settings gets no lines.
		dr, cerr := d.svc.CheckRBAC(r.Context(), p, rb)
		_, err := d.svc.PutRBAC(r.Context(), p, rb)
		if err == nil {
			seeOther(w, r, "/settings/rbac?notice=rbac-saved")
			return nil
		}
		if code := gatehouse.ErrorCode(err); code == gatehouse.EINTERNAL || code == gatehouse.EFORBIDDEN {
			return err
		}
		if gatehouse.ErrorCode(err) == gatehouse.EINVALID && cerr == nil {
			v.draftOf(dr) // the message on top is the service's refusal itself
		}
		d.showRBAC(w, r, p, StatusOf(err), v, gatehouse.ErrorMessage(err))
		return nil
	case "explain":
		x, err := d.svc.Explain(p, q.Subject, q.Resource, q.Action, q.Object)
		if err != nil {
			if code := gatehouse.ErrorCode(err); code == gatehouse.EINTERNAL || code == gatehouse.EFORBIDDEN {
				return err
			}
			status = StatusOf(err)
		}
		v.Answer = answerOf("the saved policy", x, err)
	default:
		dr, err := d.svc.CheckRBAC(r.Context(), p, rb)
		if err != nil {
			return err
		}
		v.Checked = true
		v.draftOf(dr)
		if q != (question{}) {
			x, err := dr.Explain(q.Subject, q.Resource, q.Action, q.Object)
			if err != nil {
				status = StatusOf(err)
			}
			v.Answer = answerOf("the draft", x, err)
		}
	}
	d.showRBAC(w, r, p, status, v, "")
	return nil
}

func (d *dashboard) showRBAC(w http.ResponseWriter, r *http.Request, p *service.Principal, status int, v rbacView, problem string) {
	v.CanEdit = d.svc.Can(p, "settings", "update", "rbac")
	for _, m := range []modeChoice{{Value: "glob", Label: "glob (*, ?, [abc])"}, {Value: "regex", Label: "regex"}} {
		m.Selected = m.Value == v.Form.MatchMode || (m.Value == "glob" && v.Form.MatchMode == "")
		v.Modes = append(v.Modes, m)
	}
	d.render(w, r, p, status, "rbac", view{Title: "RBAC policy", Section: "RBAC policy",
		Notice: rbacNotices[r.URL.Query().Get("notice")], Error: problem, Data: v})
}
