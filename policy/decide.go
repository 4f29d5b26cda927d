package policy

import (
	"fmt"
	"slices"
	"strings"
)

// Enforce reports whether subject, a member of groups, may do action on
// resource and object. It decides as Argo CD does:
//
//  1. if the default role allows, allow (a deny written for the subject
//     cannot take that away);
//  2. else if the subject allows — its own lines and those of every role it
//     reaches through g lines, some allowing and none denying — allow;
//  3. else if one of groups that some g line names first allows, allow;
//  4. else refuse.
//
// A project role subject proj:<project>:<role> is refused anything outside
// its project before any of that. A repeated question is answered from the
// engine's cache with one map lookup.
func (e *Engine) Enforce(subject string, groups []string, resource, action, object string) bool {
	if e == nil {
		return false
	}
	if e.cache == nil {
		return e.decide(subject, groups, resource, action, object, nil)
	}
	k := cacheKey{subject: subject, resource: resource, action: action, object: object, groups: groups}
	h := e.cache.hash(&k)
	sh := e.cache.shard(h)
	if allowed, ok := sh.get(h, &k); ok {
		return allowed
	}
	allowed := e.decide(subject, groups, resource, action, object, nil)
	sh.put(h, k, allowed, e.cache.limit)
	return allowed
}

// Explain decides like Enforce (without the cache) and says which rule
// decided and which lines matched.
func (e *Engine) Explain(subject string, groups []string, resource, action, object string) Explanation {
	if e == nil {
		return Explanation{Rule: RuleNoMatch}
	}
	t := &trace{}
	allowed := e.decide(subject, groups, resource, action, object, t)
	x := Explanation{Allowed: allowed, Rule: t.rule}
	slices.Sort(t.matched)
	for _, i := range slices.Compact(t.matched) {
		x.Matched = append(x.Matched, e.lines[i])
	}
	return x
}

// trace records how a decision was made, for Explain.
type trace struct {
	rule    string
	matched []int // indexes in Engine.lines
}

func (e *Engine) decide(subject string, groups []string, resource, action, object string, t *trace) bool {
	if !projectMayAccess(subject, resource, action, object) {
		t.decided(RuleCrossProject, 0)
		return false
	}
	denied := false
	mark := t.mark()
	if e.def != nil {
		allow, deny := e.def.eval(resource, action, object, t)
		if allow && !deny {
			t.decided(RuleDefaultRole, mark)
			return true
		}
		denied = denied || deny
	}
	if n := e.nodes[subject]; n != nil {
		mark = t.mark()
		allow, deny := n.eval(resource, action, object, t)
		if allow && !deny {
			t.decided(RuleSubject, mark)
			return true
		}
		denied = denied || deny
	}
	for _, g := range groups {
		n := e.nodes[g]
		if n == nil || ReservedGroup(g) || !(n.member || n.viaProject) {
			continue
		}
		mark = t.mark()
		var allow, deny bool
		if n.member {
			allow, deny = n.eval(resource, action, object, t)
		} else {
			// Bound only by project roles' groups: those roles and
			// nothing of the group's own.
			for _, p := range n.parents {
				a, d := p.eval(resource, action, object, t)
				allow, deny = allow || a, deny || d
			}
		}
		if allow && !deny {
			t.decided(RuleGroup, mark)
			return true
		}
		denied = denied || deny
	}
	if denied {
		t.decided(RuleDeny, 0)
	} else {
		t.decided(RuleNoMatch, 0)
	}
	return false
}

// mark is where the current evaluation's matches start.
func (t *trace) mark() int {
	if t == nil {
		return 0
	}
	return len(t.matched)
}

// decided records the rule and keeps the matches from mark on.
func (t *trace) decided(rule string, mark int) {
	if t == nil {
		return
	}
	t.rule = rule
	t.matched = t.matched[mark:]
}

// eval evaluates one subject, group or role with every role it reaches:
// allow if a matching line allows, deny if a matching line denies. Without
// a trace it stops at the first deny, which settles the evaluation.
func (n *node) eval(resource, action, object string, t *trace) (allow, deny bool) {
	for _, m := range n.reach {
		for i := range m.rules {
			r := &m.rules[i]
			if !r.match(resource, action, object) {
				continue
			}
			if t != nil {
				t.matched = append(t.matched, r.line)
			}
			if r.deny {
				deny = true
				if t == nil {
					return allow, deny
				}
			} else {
				allow = true
			}
		}
	}
	return allow, deny
}

// projectMayAccess applies the project boundary to a subject: a
// proj:<project>:<role> subject may touch only what its project governs
// (see withinProject). A malformed project subject may touch nothing.
// Other subjects are not limited here.
func projectMayAccess(subject, resource, action, object string) bool {
	project, isProject, ok := ProjectOf(subject)
	if !isProject {
		return true
	}
	return ok && withinProject(project, resource, action, object)
}

// ProjectOf reports whether subject names a project role
// (proj:<project>:<role>) and, if it is well formed, its project.
func ProjectOf(subject string) (project string, isProject, ok bool) {
	rest, isProject := strings.CutPrefix(subject, "proj:")
	if !isProject {
		return "", false, false
	}
	project, role, found := strings.Cut(rest, ":")
	if !found || project == "" || role == "" || strings.Contains(role, ":") {
		return "", true, false
	}
	return project, true, true
}

// withinProject is what a project governs, checked literally so that no
// pattern text (a regex alternation, a glob star) can reach past it:
// applications whose object is "<project>/<something>", and reading the
// project itself.
func withinProject(project, resource, action, object string) bool {
	switch {
	case !projectGoverns(resource, action):
		return false
	case resource == "projects":
		return object == project
	}
	return len(object) > len(project)+1 && object[len(project)] == '/' && object[:len(project)] == project
}

// projectGoverns reports whether a project governs some objects of
// resource and action: every action on applications, and reading the
// project. withinProject says which objects.
func projectGoverns(resource, action string) bool {
	return resource == "applications" || resource == "projects" && action == "get"
}

// ReservedGroup reports whether a name may not be used as a group: role
// and project-role names. A group of such a name would hand its members
// that role through the g line that defines the role's inheritance (the
// built-in "g, role:admin, role:readonly" makes role:admin a member name).
func ReservedGroup(name string) bool {
	return strings.HasPrefix(name, "role:") || strings.HasPrefix(name, "proj:")
}

// computeReach fills every node's reach. Roles may nest in cycles, so it
// works on strongly connected components (Tarjan): every node of a
// component reaches the same roles, and components come out children
// first, so each reach is built from finished ones. A node with no lines of
// its own and one parent component shares that component's slice, which
// keeps 10,000 accounts bound to one role cheap.
//
// The reach of a chain of roles grows with the square of its length, so
// every reach is paid for from b before it is built (see MaxReach); it
// reports false, having stopped, when b runs out.
func (e *Engine) computeReach(b *reachBudget) bool {
	all := make([]*node, len(e.nodes)+len(e.clones))
	for _, n := range e.nodes {
		all[n.id] = n
	}
	for _, n := range e.clones {
		all[n.id] = n
	}
	var (
		index   = make([]int, len(all)) // 0: not visited; else visit order + 1
		low     = make([]int, len(all))
		onStack = make([]bool, len(all))
		comp    = make([]int, len(all)) // component of each node
		stack   []*node
		counter int
		comps   [][]*node
		reach   [][]*node // of each component
		stamp   = make([]int, len(all))
		seen    = make([]int, len(all)) // component c+1 marks a child component of c
	)
	var visit func(n *node)
	visit = func(n *node) {
		counter++
		index[n.id], low[n.id] = counter, counter
		stack = append(stack, n)
		onStack[n.id] = true
		for _, p := range n.parents {
			switch {
			case index[p.id] == 0:
				visit(p)
				if b.over {
					return
				}
				low[n.id] = min(low[n.id], low[p.id])
			case onStack[p.id]:
				low[n.id] = min(low[n.id], index[p.id])
			}
		}
		if low[n.id] != index[n.id] {
			return
		}
		c := len(comps)
		var members []*node
		for {
			m := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			onStack[m.id] = false
			comp[m.id] = c
			members = append(members, m)
			if m == n {
				break
			}
		}
		comps = append(comps, members)
		r, ok := componentReach(c, members, comp, reach, stamp, seen, b)
		if !ok {
			return
		}
		reach = append(reach, r)
		for _, m := range members {
			m.reach = reach[c]
		}
	}
	for _, n := range all {
		if index[n.id] == 0 {
			visit(n)
			if b.over {
				return false
			}
		}
	}
	return true
}

// componentReach is the reach of component c: its members with lines, then
// the reach of every component its members join, each node once. Its
// cost, paid from b before anything is built, is what it looks at: its
// own members with lines and every node of its children's reaches. It
// reports false when b cannot pay.
func componentReach(c int, members []*node, comp []int, reach [][]*node, stamp, seen []int, b *reachBudget) ([]*node, bool) {
	var own []*node
	var children []int
	for _, m := range members {
		if len(m.rules) > 0 {
			own = append(own, m)
		}
		for _, p := range m.parents {
			if pc := comp[p.id]; pc != c && seen[pc] != c+1 {
				seen[pc] = c + 1
				children = append(children, pc)
			}
		}
	}
	if len(own) == 0 && len(children) == 1 {
		return reach[children[0]], true
	}
	cost := len(own)
	for _, ch := range children {
		cost += len(reach[ch])
	}
	if !b.spend(cost) {
		return nil, false
	}
	slices.SortFunc(own, func(a, b *node) int { return a.id - b.id })
	// Count first, then fill a slice of just that size: the engine keeps
	// the reach, and no growth is wasted. Stamps 2c+1 and 2c+2 mark the
	// nodes already counted and already placed.
	n := len(own)
	for _, m := range own {
		stamp[m.id] = 2*c + 1
	}
	for _, ch := range children {
		for _, m := range reach[ch] {
			if stamp[m.id] != 2*c+1 {
				stamp[m.id] = 2*c + 1
				n++
			}
		}
	}
	out := make([]*node, 0, n)
	for _, m := range own {
		stamp[m.id] = 2*c + 2
		out = append(out, m)
	}
	for _, ch := range children {
		for _, m := range reach[ch] {
			if stamp[m.id] != 2*c+2 {
				stamp[m.id] = 2*c + 2
				out = append(out, m)
			}
		}
	}
	return out, true
}

// validate lists what loads but is probably a mistake: a role bound with g
// lines (or set as the default role) that grants nothing because neither it
// nor any role it inherits has p lines. Built-in roles count as having
// lines.
func (e *Engine) validate() []string {
	var out []string
	seen := map[string]bool{}
	empty := func(name string) bool {
		if name == RoleAdmin || name == RoleReadonly {
			return false
		}
		n := e.nodes[name]
		return n == nil || len(n.reach) == 0
	}
	for _, l := range e.lines {
		if l.Type != "g" || seen[l.Role] {
			continue
		}
		seen[l.Role] = true
		if empty(l.Role) {
			out = append(out, fmt.Sprintf("%s: role %q has no policy lines, so %q gains nothing from it", l.where(), l.Role, l.Subject))
		}
	}
	if d := e.cfg.DefaultRole; d != "" && empty(d) {
		out = append(out, fmt.Sprintf("default role %q has no policy lines", d))
	}
	return out
}

// Roles returns the roles subject holds now: those reached through g lines
// from the subject and from its bound groups, and the default role with
// the roles it reaches. Sorted, without duplicates.
func (e *Engine) Roles(subject string, groups []string) []string {
	if e == nil {
		return nil
	}
	set := map[string]bool{}
	var walk func(n *node)
	walk = func(n *node) {
		for _, p := range n.parents {
			if p.clone {
				continue // a role held only inside a project is not a role of the subject
			}
			if !set[p.name] {
				set[p.name] = true
				walk(p)
			}
		}
	}
	if n := e.nodes[subject]; n != nil {
		walk(n)
	}
	for _, g := range groups {
		if n := e.nodes[g]; n != nil && (n.member || n.viaProject) && !ReservedGroup(g) {
			walk(n)
		}
	}
	if subject != e.cfg.DefaultRole {
		delete(set, subject) // reached back through a cycle: not a role of its own
	}
	if d := e.cfg.DefaultRole; d != "" {
		set[d] = true
		if n := e.nodes[d]; n != nil {
			walk(n)
		}
	}
	out := make([]string, 0, len(set))
	for r := range set {
		out = append(out, r)
	}
	slices.Sort(out)
	return out
}

// Binds reports whether the policy gives name anything of its own: p lines
// with name as their subject, or g lines naming it first. An account of that
// name would hold it the moment it exists.
func (e *Engine) Binds(name string) bool {
	if e == nil {
		return false
	}
	n := e.nodes[name]
	return n != nil && (len(n.rules) > 0 || len(n.parents) > 0)
}

// Warnings returns what loads but is probably a mistake, such as a role
// that is bound but grants nothing.
func (e *Engine) Warnings() []string {
	if e == nil {
		return nil
	}
	return slices.Clone(e.warnings)
}

// Config returns the configuration the engine was built from.
func (e *Engine) Config() Config {
	if e == nil {
		return Config{}
	}
	c := e.cfg
	c.Extra = slices.Clone(c.Extra)
	return c
}

// Lines returns every line in force, in policy order: the built-in lines,
// those of Config.CSV, then Config.Extra.
func (e *Engine) Lines() []Line {
	if e == nil {
		return nil
	}
	return slices.Clone(e.lines)
}
