package policy

import (
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/gatehouse/gatehouse"
)

// Config is what an engine is built from.
type Config struct {
	CSV            string // admin-written policy (Argo CD policy.csv); line numbers in errors refer to it
	DefaultRole    string // policy.default: a role every subject also has; "" for none
	MatchMode      string // "glob" ("" means glob) or "regex"
	DisableBuiltin bool   // leave out role:readonly, role:admin and "g, admin, role:admin"
	Extra          []Line // already-parsed lines of project roles, appended (see node.viaProject for their g lines)

	// CacheSize bounds the decision cache: 0 means DefaultCacheSize, a
	// negative size turns the cache off.
	CacheSize int
}

// Built-in roles.
const (
	RoleReadonly = "role:readonly" // get on everything
	RoleAdmin    = "role:admin"    // everything; inherits role:readonly
)

// Builtin returns the built-in policy for a match mode: role:readonly may
// get everything, role:admin may do everything and inherits role:readonly,
// and the admin account is in role:admin.
func Builtin(matchMode string) []Line {
	all := "*"
	if matchMode == "regex" {
		all = ".*"
	}
	lines := []Line{
		{Type: "p", Subject: RoleReadonly, Resource: all, Action: "get", Object: all, Effect: Allow},
		{Type: "p", Subject: RoleAdmin, Resource: all, Action: all, Object: all, Effect: Allow},
		{Type: "g", Subject: RoleAdmin, Role: RoleReadonly},
		{Type: "g", Subject: gatehouse.AdminAccount, Role: RoleAdmin},
	}
	for i := range lines {
		lines[i].Raw = lines[i].String()
	}
	return lines
}

// What decided, as Explanation.Rule.
const (
	RuleDefaultRole  = "default-role"  // the default role allows
	RuleSubject      = "subject"       // the subject (with its roles) allows
	RuleGroup        = "group"         // one of the caller's bound groups allows
	RuleDeny         = "deny"          // refused, and some matching line denies
	RuleNoMatch      = "no-match"      // refused: no line allows
	RuleCrossProject = "cross-project" // refused: a project role outside its project
)

// Explanation says how a decision was reached.
type Explanation struct {
	Allowed bool
	Rule    string // one of the Rule constants
	// Matched are the lines that matched, in policy order: for an allowed
	// request those of the deciding evaluation (default role, subject or
	// group), for a refused one those of every evaluation made.
	Matched []Line
}

// Engine answers permission questions for one policy. It is immutable but
// for its decision cache, and safe for concurrent use. A nil *Engine
// refuses everything.
type Engine struct {
	cfg      Config
	lines    []Line           // every line in force: built-in, CSV, extra
	nodes    map[string]*node // every name in a p subject or either side of a g line
	def      *node            // the default role; nil if none or it has no lines
	warnings []string
	cache    *decisionCache // nil when turned off
	clones   []*node        // confined copies of roles that project roles inherit
	// reachUsed is the work spent resolving the role graph, in steps (see
	// MaxReach).
	reachUsed int
}

// node is a subject, group or role.
type node struct {
	name    string
	id      int
	rules   []rule  // its own p lines, in policy order
	parents []*node // the roles it joins through g lines
	member  bool    // named first in some g line of the policy: only such groups are consulted
	// viaProject: named first only in g lines of Config.Extra (a project
	// role's groups). Such a group is consulted for the project roles it
	// is bound to and nothing else: binding a group to a project role must
	// not switch on the group's own lines elsewhere in the policy.
	viaProject bool
	clone      bool // a copy of a role confined to a project (confineProjectRoles)
	// reach is the node itself and every role it reaches through g lines,
	// transitively, keeping only those with p lines. Nodes may share it.
	reach []*node
}

// rule is a compiled p line.
type rule struct {
	res, act, obj *pattern
	deny          bool
	line          int // index in Engine.lines

	// A line whose subject is a project role (proj:<project>:<role>) is
	// confined to what that project governs, whoever reaches it (the role
	// token, or an account or group bound to the role), in either match
	// mode: the boundary is checked on the request before the patterns
	// are, so no pattern can reach past it. never marks a line whose
	// project subject is malformed: it matches nothing.
	confined bool
	project  string
	never    bool
}

func (r *rule) match(resource, action, object string) bool {
	if r.confined {
		switch {
		case r.never:
			return false
		case object == All && r.deny:
			// A deny confined to a project carves its objects out of
			// "every" like any deny, where the project governs some
			// objects of the resource and action.
			if !projectGoverns(resource, action) {
				return false
			}
		case !withinProject(r.project, resource, action, object):
			return false
		}
	}
	if !r.res.Match(resource) || !r.act.Match(action) {
		return false
	}
	if object == All {
		// A question about every object: an allow line answers it only
		// if it covers every object, and a deny line of the resource and
		// action carves its objects out of "every", whichever they are.
		return r.deny || r.obj.universal()
	}
	return r.obj.Match(object)
}

// All is the object of a question about every object of a resource and
// action (the whole audit trail, every account's tokens): an allow line
// answers it only when its object pattern matches every object (* in
// glob mode; .* or (?s).* in regex mode), and any deny line of that
// resource and action refuses it. So a subject allowed All is allowed
// each object too: a line whose pattern happens to match the string "*"
// (a glob ?, a regex .) grants no "all", and a deny of some objects is
// not overlooked.
const All = "*"

// New parses and compiles a policy: the built-in lines (unless disabled),
// then cfg.CSV, then cfg.Extra. Any bad line fails the whole load with an
// ErrorList naming every bad line; an invalid glob or regex is a bad line.
func New(cfg Config) (*Engine, error) {
	var compile func(string) (*pattern, error)
	switch cfg.MatchMode {
	case "", "glob":
		compile = compileGlob
	case "regex":
		compile = compileRegex
	default:
		return nil, fmt.Errorf("match mode %q: want glob or regex", clip(cfg.MatchMode))
	}
	cfg.Extra = slices.Clone(cfg.Extra)

	csvLines, parseErrs := parseCSV(cfg.CSV)
	// Errors are reported in source order: CSV lines by number, then
	// extra lines by position.
	var errs []keyedError
	for _, le := range parseErrs {
		errs = append(errs, keyedError{le.Line, le})
	}
	const extraKey = math.MaxInt32
	var lines []Line
	if !cfg.DisableBuiltin {
		lines = Builtin(cfg.MatchMode)
	}
	lines = append(lines, csvLines...)
	firstExtra := len(lines)
	var extraPos []int // position in cfg.Extra of lines[firstExtra:]
	for j, l := range cfg.Extra {
		l, err := checkExtra(l)
		if err != nil {
			errs = append(errs, keyedError{extraKey + j, &LineError{Extra: j, Text: l.text(), Msg: err.Error()}})
			continue
		}
		lines = append(lines, l)
		extraPos = append(extraPos, j)
	}

	e := &Engine{cfg: cfg, lines: lines, nodes: make(map[string]*node)}
	get := func(name string) *node {
		n := e.nodes[name]
		if n == nil {
			n = &node{name: name, id: len(e.nodes)}
			e.nodes[name] = n
		}
		return n
	}
	type compiled struct {
		p   *pattern
		err error
	}
	patterns := make(map[string]compiled) // each distinct pattern compiled once
	pat := func(src string) (*pattern, error) {
		c, ok := patterns[src]
		if !ok {
			c.p, c.err = compile(src)
			patterns[src] = c
		}
		return c.p, c.err
	}
	joined := make(map[*node]map[*node]bool) // the roles of members that join many (addParent)
	for i, l := range lines {
		switch l.Type {
		case "p":
			r := rule{deny: l.Effect == Deny, line: i}
			if project, isProject, ok := ProjectOf(l.Subject); isProject {
				r.confined, r.project, r.never = true, project, !ok
			}
			var bad []string
			for _, f := range [...]struct {
				name string
				src  string
				dst  **pattern
			}{{"resource", l.Resource, &r.res}, {"action", l.Action, &r.act}, {"object", l.Object, &r.obj}} {
				p, err := pat(f.src)
				if err != nil {
					bad = append(bad, f.name+": "+err.Error())
				}
				*f.dst = p
			}
			if len(bad) > 0 {
				le := &LineError{Line: l.Num, Text: l.text(), Msg: strings.Join(bad, "; ")}
				key := l.Num
				if i >= firstExtra {
					le.Line = 0 // its Num counts in another source
					le.Extra = extraPos[i-firstExtra]
					key = extraKey + le.Extra
				}
				errs = append(errs, keyedError{key, le})
				continue
			}
			n := get(l.Subject)
			n.rules = append(n.rules, r)
		case "g":
			m, role := get(l.Subject), get(l.Role)
			if i >= firstExtra {
				m.viaProject = true
			} else {
				m.member = true
			}
			if addParent(m, role, joined) {
				m.parents = append(m.parents, role)
			}
		}
	}
	if len(errs) > 0 {
		slices.SortStableFunc(errs, func(a, b keyedError) int { return a.key - b.key })
		list := make(ErrorList, len(errs))
		for i, ke := range errs {
			list[i] = ke.err
		}
		return nil, list
	}

	b := &reachBudget{limit: MaxReach}
	if !e.confineProjectRoles(b) || !e.computeReach(b) {
		return nil, &ReachError{Limit: MaxReach}
	}
	e.reachUsed = b.used
	if d := e.nodes[cfg.DefaultRole]; cfg.DefaultRole != "" && d != nil && len(d.reach) > 0 {
		e.def = d
	}
	e.warnings = e.validate()
	switch {
	case cfg.CacheSize == 0:
		e.cache = newDecisionCache(DefaultCacheSize)
	case cfg.CacheSize > 0:
		e.cache = newDecisionCache(cfg.CacheSize)
	}
	return e, nil
}

// confineProjectRoles keeps the project boundary for roles that a project
// role inherits. A global line "g, proj:P:R, role:x" lets the role reach
// role:x's lines; those are not project lines, so the rule-level boundary
// does not confine them, and anyone bound to proj:P:R (which a project
// administrator may arrange through the role's groups) would gain role:x
// everywhere. So a project role's parents are replaced by copies confined
// to P: every line reached through a project role allows only what P
// governs, for the role's tokens and for everyone bound to it alike —
// binding to a project role grants exactly what the role's token may do.
// A project role of another project (or a malformed one) reached this way
// contributes nothing: its lines are confined to its own project.
//
// Every copy, with its lines and parents, is paid for from b: a policy
// whose project roles inherit a large role tree would otherwise copy the
// tree once per project. It reports false, having stopped, when b runs
// out.
func (e *Engine) confineProjectRoles(b *reachBudget) bool {
	type key struct{ name, project string }
	memo := map[key]*node{}
	var confined func(x *node, project string) *node
	confined = func(x *node, project string) *node {
		if p, isProject, ok := ProjectOf(x.name); isProject {
			if ok && p == project {
				return x // its own parents are confined in the loop below
			}
			return nil
		}
		k := key{x.name, project}
		if c, ok := memo[k]; ok {
			return c
		}
		if !b.spend(cloneCost + ruleCost*len(x.rules) + 2*len(x.parents)) {
			return nil
		}
		c := &node{name: x.name, id: len(e.nodes) + len(e.clones), clone: true}
		memo[k] = c
		e.clones = append(e.clones, c)
		for _, r := range x.rules {
			if !r.confined {
				r.confined, r.project = true, project
			} else if r.project != project {
				r.never = true
			}
			c.rules = append(c.rules, r)
		}
		for _, p := range x.parents {
			if cp := confined(p, project); cp != nil {
				c.parents = append(c.parents, cp)
			}
			if b.over {
				return nil
			}
		}
		return c
	}
	for _, n := range e.nodes {
		project, isProject, ok := ProjectOf(n.name)
		if !isProject || len(n.parents) == 0 {
			continue
		}
		var parents []*node
		if ok {
			// n.parents are distinct roles, and confined gives distinct
			// roles distinct copies, so parents needs no check for
			// repeats (which would cost the square of their number).
			for _, p := range n.parents {
				if cp := confined(p, project); cp != nil {
					parents = append(parents, cp)
				}
				if b.over {
					return false
				}
			}
		}
		n.parents = parents
	}
	return true
}

// MaxReach bounds the work of resolving a policy's role graph, in steps of
// about 8 bytes of memory each: what the resolved graph takes and what
// building it costs. A role chain's reach grows with the square of its
// length (each role reaches every role after it), so without a bound a
// policy text of a few hundred kilobytes could take seconds and a
// gigabyte to load. A policy that needs more is refused whole, with a
// *ReachError, before the memory is taken.
//
// The steps: for every account, group and role, New gathers the roles
// with p lines that it reaches through g lines, looking at each of its
// own (one step each) and at the whole set of each role it joins (one
// step per role in the set); a name without p lines that joins one role
// shares that role's set, for nothing. Each copy of a role that a project
// role inherits (confined to the project) costs cloneCost, plus ruleCost
// for each of its lines and 2 for each role it joins.
//
// Real policies are far below it: the 1,000-line benchmark policies (100
// roles with 10,000 accounts bound to them; 50 team roles) use 2,961 and
// 194 steps, a chain of 1,000 roles about 500,000, and 1,000 projects
// whose roles inherit an 11-role tree about 760,000. A chain of 8,000
// roles, each with a line and each joining the next, would need 32
// million.
const MaxReach = 4_000_000

// ReachError refuses a policy whose role graph needs more than Limit
// steps to resolve (see MaxReach).
type ReachError struct {
	Limit int
}

func (e *ReachError) Error() string {
	return fmt.Sprintf("the policy's role graph is too large: working out which roles each subject reaches would take more than %d steps (the reach limit); "+
		"shorten long chains of roles that each join the next, or have fewer roles join the same large set of roles", e.Limit)
}

// What a copy of a role and each of its lines cost, in steps of MaxReach:
// about their size in memory.
const (
	cloneCost = 20
	ruleCost  = 8
)

// reachBudget is the work New may spend on the role graph.
type reachBudget struct {
	limit, used int
	over        bool // used went past limit: New stops and refuses
}

// spend takes n steps, and reports false once the budget is exceeded.
func (b *reachBudget) spend(n int) bool {
	if !b.over {
		b.used += n
		b.over = b.used > b.limit
	}
	return !b.over
}

// manyParents is how many roles a member joins before addParent keeps a
// set of them rather than search them.
const manyParents = 32

// addParent reports whether m does not join role yet, so that a repeated
// g line adds nothing. It searches m's roles while they are few, which
// costs less than a set for the common case, and keeps a set of them in
// joined once they are many: one subject may join tens of thousands of
// roles, and searching them for each would cost the square of their
// number.
func addParent(m, role *node, joined map[*node]map[*node]bool) bool {
	if len(m.parents) < manyParents {
		return !slices.Contains(m.parents, role)
	}
	set := joined[m]
	if set == nil {
		set = make(map[*node]bool, 2*len(m.parents))
		for _, p := range m.parents {
			set[p] = true
		}
		joined[m] = set
	}
	if set[role] {
		return false
	}
	set[role] = true
	return true
}

// keyedError is a bad line with its place in the sources.
type keyedError struct {
	key int
	err *LineError
}

// checkExtra validates a line that did not come through the parser and
// normalizes an empty effect to allow.
func checkExtra(l Line) (Line, error) {
	switch l.Type {
	case "p":
		for i, f := range [...]string{l.Subject, l.Resource, l.Action, l.Object} {
			if f == "" {
				return l, fmt.Errorf("empty %s", pFields[i+1])
			}
		}
		switch l.Effect {
		case "":
			l.Effect = Allow
		case Allow, Deny:
		default:
			return l, fmt.Errorf("bad effect %q: want allow or deny", clip(string(l.Effect)))
		}
	case "g":
		if l.Subject == "" || l.Role == "" {
			return l, fmt.Errorf("empty subject or role")
		}
	default:
		return l, fmt.Errorf("unknown line type %q: want p or g", clip(l.Type))
	}
	return l, nil
}
