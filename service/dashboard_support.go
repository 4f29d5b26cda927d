package service

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/policy"
)

// Questions an editor asks about text it has not saved, so that it can
// show every problem next to the line that has it and answer "can X do
// Y?" against a draft. They change nothing and decide nothing: PutRBAC,
// CreateProject and UpdateProject stay the only ways in, and check the
// same things again when asked to save.

// PolicyProblem is one bad line of a policy text.
type PolicyProblem struct {
	// Line is the line's 1-based place in the text checked; 0 for a line
	// from elsewhere (a project role's line, checked with the policy).
	Line    int
	Text    string // the line as written, trimmed
	Message string // what is wrong with it
}

// RBACDraft is RBAC settings compiled as PutRBAC would compile them,
// and kept out of force.
type RBACDraft struct {
	// Problems are the bad lines, in line order. With any, PutRBAC
	// refuses the settings.
	Problems []PolicyProblem
	// Invalid is a problem that is no line's (an unknown match mode);
	// PutRBAC refuses the settings too.
	Invalid string
	// Warnings are what would load but is probably a mistake, such as a
	// role that is bound but grants nothing.
	Warnings []string

	svc    *Service
	p      *Principal     // who checked it: explaining answers to them
	engine *policy.Engine // nil unless the draft compiles
}

// OK reports whether the draft compiles.
func (d RBACDraft) OK() bool { return d.engine != nil }

// errCheckBusy refuses a draft check while another one runs.
var errCheckBusy = &gatehouse.Error{Code: gatehouse.ETHROTTLED, RetryAfter: time.Second,
	Message: "another policy check is running, and this server checks one at a time: try again in a moment"}

// hiddenProjectLine stands for the text of a project role's line that the
// caller may not read (it lacks projects, get on the project).
const hiddenProjectLine = "a line of a project role you cannot read"

// CheckRBAC compiles r with the projects' roles as they are now, as
// PutRBAC would, without saving or applying anything; needs settings,
// get, rbac (it answers questions about the policy, as Explain does).
//
// Anyone who may read the settings may ask, with a draft of up to a
// request body, so a check costs what compiling a policy costs (bounded
// by policy.MaxReach): the server runs one at a time, and a check asked
// for while another runs is refused, ETHROTTLED, to be tried again.
//
// A bad line of a project role is named by its text only to a caller who
// may get that project.
func (s *Service) CheckRBAC(ctx context.Context, p *Principal, r gatehouse.RBAC) (RBACDraft, error) {
	if err := s.authorize(p, "settings", "get", "rbac"); err != nil {
		return RBACDraft{}, err
	}
	if !s.rbacCheckBusy.CompareAndSwap(false, true) {
		return RBACDraft{}, errCheckBusy
	}
	defer s.rbacCheckBusy.Store(false)
	var projects []gatehouse.Project
	err := s.store.View(ctx, func(tx gatehouse.Tx) error {
		var err error
		projects, err = tx.ListProjects(ctx)
		return err
	})
	if err != nil {
		return RBACDraft{}, err
	}
	var extra []policy.Line
	var owner []string // the project of each line of extra
	for _, pr := range projects {
		lines, err := projectLines(pr)
		if err != nil {
			return RBACDraft{}, err
		}
		extra = append(extra, lines...)
		for range lines {
			owner = append(owner, pr.Name)
		}
	}
	if err := ctx.Err(); err != nil {
		return RBACDraft{}, err // nobody waits for the answer
	}
	// The configuration of buildEngine; a test holds the two to the same
	// answers. The draft asks few questions, so it keeps no cache.
	e, err := policy.New(policy.Config{
		CSV:            r.PolicyCSV,
		DefaultRole:    r.PolicyDefault,
		MatchMode:      r.MatchMode,
		DisableBuiltin: s.disableBuiltin,
		Extra:          extra,
		CacheSize:      -1,
	})
	d := RBACDraft{svc: s, p: p}
	if err != nil {
		var list policy.ErrorList
		if !errors.As(err, &list) {
			d.Invalid = err.Error()
			return d, nil
		}
		for _, le := range list {
			pp := PolicyProblem{Line: le.Line, Text: le.Text, Message: le.Msg}
			if le.Line == 0 && (le.Extra >= len(owner) || !s.Can(p, "projects", "get", owner[le.Extra])) {
				// The message quotes the line's patterns: it goes too.
				pp.Text = hiddenProjectLine
				pp.Message = "it does not compile with these settings; someone who may read its project can see why"
			}
			d.Problems = append(d.Problems, pp)
		}
		return d, nil
	}
	d.engine = e
	d.Warnings = e.Warnings()
	return d, nil
}

// Explain answers as Service.Explain does, against the draft, for the
// caller who checked it: the subject's groups are those of the account of
// that name, if any, when the caller may get that account.
func (d RBACDraft) Explain(subject, resource, action, object string) (gatehouse.Explanation, error) {
	if d.engine == nil {
		return gatehouse.Explanation{}, gatehouse.Errorf(gatehouse.EPRECONDITION, "the draft does not compile; fix its problems first")
	}
	return d.svc.explain(d.p, d.engine, subject, resource, action, object)
}

// RolePolicyProblems checks each policy line of a project role with the
// checks CreateProject and UpdateProject apply to it, and compiles it
// under the match mode in force, so that every bad line is named, not
// only the first. Line is a line's 1-based place in role.Policies.
func (s *Service) RolePolicyProblems(project string, role gatehouse.ProjectRole) []PolicyProblem {
	subject := gatehouse.ProjectSubject(project, role.Name)
	mode := s.engine.Load().Config().MatchMode
	var out []PolicyProblem
	for i, raw := range role.Policies {
		msg := ""
		l, err := policy.ParseLine(raw)
		if err == nil {
			err = checkRoleLine(project, subject, l)
		}
		if err == nil {
			_, err = policy.New(policy.Config{MatchMode: mode, DisableBuiltin: true, Extra: []policy.Line{l}, CacheSize: -1})
			var list policy.ErrorList
			if errors.As(err, &list) && len(list) > 0 {
				msg = list[0].Msg
			}
		}
		if err != nil {
			if msg == "" {
				msg = err.Error()
			}
			out = append(out, PolicyProblem{Line: i + 1, Text: strings.TrimSpace(raw), Message: msg})
		}
	}
	return out
}
