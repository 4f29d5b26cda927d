package policy

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
)

// Config is what an engine is built from.
type Config struct {
	CSV            string // the admin-written policy; line numbers in errors refer to it
	DefaultRole    string // policy.default: a role every subject also has; "" for none
	MatchMode      string // "glob" ("" means glob) or "regex"
	DisableBuiltin bool   // leave out role:readonly, role:admin and g, admin, role:admin
	Extra          []Line // already-parsed lines from other sources (project roles)
}

// builtin is Argo CD's built-in policy.
var builtin = []Line{
	{Type: "p", Subject: "role:readonly", Resource: "*", Action: "get", Object: "*", Effect: Allow},
	{Type: "p", Subject: "role:admin", Resource: "*", Action: "*", Object: "*", Effect: Allow},
	{Type: "g", Subject: "role:admin", Role: "role:readonly"},
	{Type: "g", Subject: "admin", Role: "role:admin"},
}

// Builtin returns the built-in lines.
func Builtin() []Line { return slices.Clone(builtin) }

// rule is a compiled p line.
type rule struct {
	res, act, obj Matcher
	allow         bool
	line          Line
}

// Engine answers permission questions for one policy. It is safe for
// concurrent use and immutable but for its decision cache.
type Engine struct {
	cfg      Config
	rules    map[string][]rule   // by subject or role
	parents  map[string][]string // member -> roles it joins
	grouped  map[string]bool     // members named first in some g line
	warnings []string
	cache    decisionCache
}

// New parses and compiles a policy. Errors name every bad line.
func New(cfg Config) (*Engine, error) {
	var match func(string) (Matcher, error)
	switch cfg.MatchMode {
	case "", "glob":
		match = CompileGlob
	case "regex":
		match = compileRegex
	default:
		return nil, fmt.Errorf("match mode must be glob or regex, got %q", cfg.MatchMode)
	}
	lines, err := ParseCSV(cfg.CSV)
	if err != nil {
		return nil, err
	}
	var all []Line
	if !cfg.DisableBuiltin {
		all = append(all, builtin...)
	}
	all = append(all, lines...)
	all = append(all, cfg.Extra...)

	e := &Engine{cfg: cfg, rules: map[string][]rule{}, parents: map[string][]string{}, grouped: map[string]bool{}}
	var errs []error
	for _, l := range all {
		switch l.Type {
		case "p":
			r := rule{allow: l.Effect != Deny, line: l}
			var err error
			if r.res, err = compileFor(match, l, l.Resource); err == nil {
				if r.act, err = compileFor(match, l, l.Action); err == nil {
					r.obj, err = compileFor(match, l, l.Object)
				}
			}
			if err != nil {
				errs = append(errs, err)
				continue
			}
			e.rules[l.Subject] = append(e.rules[l.Subject], r)
		case "g":
			if !slices.Contains(e.parents[l.Subject], l.Role) {
				e.parents[l.Subject] = append(e.parents[l.Subject], l.Role)
			}
			e.grouped[l.Subject] = true
		default:
			errs = append(errs, fmt.Errorf("unknown line type %q", l.Type))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	e.warnings = e.validate()
	e.cache.reset()
	return e, nil
}

func compileFor(match func(string) (Matcher, error), l Line, pattern string) (Matcher, error) {
	m, err := match(pattern)
	if err != nil {
		if l.Num > 0 {
			return nil, &LineError{Num: l.Num, Msg: err.Error()}
		}
		return nil, fmt.Errorf("%s: %v", l, err)
	}
	return m, nil
}

// validate lists roles that are bound with g lines but grant nothing.
func (e *Engine) validate() []string {
	var out []string
	seen := map[string]bool{}
	for member, roles := range e.parents {
		_ = member
		for _, r := range roles {
			if seen[r] {
				continue
			}
			seen[r] = true
			if len(e.rules[r]) == 0 && len(e.parents[r]) == 0 {
				out = append(out, fmt.Sprintf("role %q is assigned with g lines but has no policy lines", r))
			}
		}
	}
	slices.Sort(out)
	return out
}

// Warnings returns problems that do not stop the policy from loading.
func (e *Engine) Warnings() []string { return slices.Clone(e.warnings) }

// Config returns the configuration the engine was built from.
func (e *Engine) Config() Config { return e.cfg }

// Rules decided by Explain.
const (
	RuleDefaultRole  = "default-role"
	RuleSubject      = "subject"
	RuleGroup        = "group"
	RuleDeny         = "deny"
	RuleNoMatch      = "no-match"
	RuleCrossProject = "cross-project"
)

// Explanation says how a decision was reached.
type Explanation struct {
	Allowed bool
	Rule    string
	Matched []Line
}

// Enforce reports whether subject (with groups) may do action on
// resource/object. Repeated questions are answered from a cache.
func (e *Engine) Enforce(subject string, groups []string, resource, action, object string) bool {
	k := cacheKey{sub: subject, res: resource, act: action, obj: object}
	if len(groups) > 0 {
		k.groups = strings.Join(groups, "\x00")
	}
	if v, ok := e.cache.get(k); ok {
		return v
	}
	allowed := e.decide(subject, groups, resource, action, object, nil).Allowed
	e.cache.put(k, allowed)
	return allowed
}

// Explain decides like Enforce and says which lines matched and which rule
// decided.
func (e *Engine) Explain(subject string, groups []string, resource, action, object string) Explanation {
	var matched []Line
	x := e.decide(subject, groups, resource, action, object, &matched)
	x.Matched = matched
	return x
}

// decide applies Argo CD's order: the default role, the subject, then each
// bound group; plus Gatehouse's rule that a project role never reaches
// outside its project.
func (e *Engine) decide(subject string, groups []string, resource, action, object string, matched *[]Line) Explanation {
	if project, ok := projectOf(subject); ok && !inProject(project, resource, object) {
		return Explanation{Rule: RuleCrossProject}
	}
	denied := false
	if e.cfg.DefaultRole != "" {
		allow, deny := e.evaluate(e.cfg.DefaultRole, resource, action, object, matched)
		if allow && !deny {
			return Explanation{Allowed: true, Rule: RuleDefaultRole}
		}
		denied = denied || deny
	}
	allow, deny := e.evaluate(subject, resource, action, object, matched)
	if allow && !deny {
		return Explanation{Allowed: true, Rule: RuleSubject}
	}
	denied = denied || deny
	for _, g := range groups {
		if !e.grouped[g] {
			continue
		}
		allow, deny := e.evaluate(g, resource, action, object, matched)
		if allow && !deny {
			return Explanation{Allowed: true, Rule: RuleGroup}
		}
		denied = denied || deny
	}
	if denied {
		return Explanation{Rule: RuleDeny}
	}
	return Explanation{Rule: RuleNoMatch}
}

// evaluate checks one subject and every role it reaches through g lines:
// allowed iff some matching line allows; denied if any matching line
// denies.
func (e *Engine) evaluate(subject, resource, action, object string, matched *[]Line) (allow, deny bool) {
	var visited map[string]bool
	queue := []string{subject}
	for len(queue) > 0 {
		s := queue[0]
		queue = queue[1:]
		for i := range e.rules[s] {
			r := &e.rules[s][i]
			if !r.res.Match(resource) || !r.act.Match(action) || !r.obj.Match(object) {
				continue
			}
			if r.allow {
				allow = true
			} else {
				deny = true
			}
			if matched != nil {
				*matched = append(*matched, r.line)
			}
		}
		for _, p := range e.parents[s] {
			if visited == nil {
				visited = map[string]bool{subject: true}
			}
			if !visited[p] {
				visited[p] = true
				queue = append(queue, p)
			}
		}
	}
	return allow, deny
}

// Roles returns the roles subject has now: those reached through g lines
// from the subject and its bound groups, and the default role with its own
// roles. Sorted, without duplicates.
func (e *Engine) Roles(subject string, groups []string) []string {
	set := map[string]bool{}
	var walk func(s string)
	walk = func(s string) {
		for _, p := range e.parents[s] {
			if !set[p] {
				set[p] = true
				walk(p)
			}
		}
	}
	walk(subject)
	for _, g := range groups {
		walk(g)
	}
	if d := e.cfg.DefaultRole; d != "" {
		set[d] = true
		walk(d)
	}
	out := make([]string, 0, len(set))
	for r := range set {
		out = append(out, r)
	}
	slices.Sort(out)
	return out
}

// projectOf returns the project of a proj:<project>:<role> subject.
func projectOf(subject string) (string, bool) {
	rest, ok := strings.CutPrefix(subject, "proj:")
	if !ok {
		return "", false
	}
	project, _, ok := strings.Cut(rest, ":")
	return project, ok
}

// inProject reports whether an object lies inside project.
func inProject(project, resource, object string) bool {
	if resource == "projects" {
		return object == project
	}
	return strings.HasPrefix(object, project+"/")
}

// ---- decision cache

// maxCached bounds the decision cache. When it is full the cache is
// dropped whole: simpler and cheaper than LRU bookkeeping on every hit, and
// a full cache refills from the compiled rules in microseconds.
const maxCached = 1 << 16

type cacheKey struct {
	sub, groups, res, act, obj string
}

type decisionCache struct {
	m atomic.Pointer[cacheMap]
}

type cacheMap struct {
	sync.Map
	n atomic.Int64
}

func (c *decisionCache) reset() { c.m.Store(&cacheMap{}) }

func (c *decisionCache) get(k cacheKey) (bool, bool) {
	v, ok := c.m.Load().Load(k)
	if !ok {
		return false, false
	}
	return v.(bool), true
}

func (c *decisionCache) put(k cacheKey, v bool) {
	m := c.m.Load()
	if _, loaded := m.LoadOrStore(k, v); !loaded && m.n.Add(1) > maxCached {
		c.m.CompareAndSwap(m, &cacheMap{})
	}
}
