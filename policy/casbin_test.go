package policy

import (
	"math/rand/v2"
	"regexp"
	"strings"
	"testing"

	"github.com/casbin/casbin/v2"
	"github.com/casbin/casbin/v2/model"
)

// argoModel is Argo CD's casbin model.
const argoModel = `
[request_definition]
r = sub, res, act, obj

[policy_definition]
p = sub, res, act, obj, eft

[role_definition]
g = _, _

[policy_effect]
e = some(where (p.eft == allow)) && !some(where (p.eft == deny))

[matchers]
m = g(r.sub, p.sub) && projectBoundary(p.sub, r.res, r.act, r.obj) && globOrRegexMatch(r.res, p.res) && globOrRegexMatch(r.act, p.act) && globOrRegexMatch(r.obj, p.obj)
`

// oracle decides with casbin the way Argo CD's enforcer drives it: the
// default role, then the subject, then each group bound by a g line; plus
// Gatehouse's project boundary, written out independently.
type oracle struct {
	enf         *casbin.Enforcer
	defaultRole string
	bound       map[string]bool
}

func newOracle(t *testing.T, p genPolicy) *oracle {
	t.Helper()
	m, err := model.NewModelFromString(argoModel)
	if err != nil {
		t.Fatalf("casbin model: %v", err)
	}
	enf, err := casbin.NewEnforcer(m)
	if err != nil {
		t.Fatalf("casbin enforcer: %v", err)
	}
	match := globOracle
	if p.regex {
		match = func(pattern, s string) bool {
			re, err := regexp.Compile(`^(?:` + pattern + `)$`)
			return err == nil && re.MatchString(s)
		}
	}
	enf.AddFunction("globOrRegexMatch", func(args ...any) (any, error) {
		return match(args[1].(string), args[0].(string)), nil
	})
	// A line of a project role allows only inside its project, whatever
	// its patterns say: written out here from the rule, not from the
	// package's code.
	enf.AddFunction("projectBoundary", func(args ...any) (any, error) {
		return oracleWithin(args[0].(string), args[1].(string), args[2].(string), args[3].(string)), nil
	})
	o := &oracle{enf: enf, defaultRole: p.defaultRole, bound: map[string]bool{}}
	var ps, gs [][]string
	for _, l := range p.lines {
		if l[0] == "g" {
			gs = append(gs, l[1:])
			o.bound[l[1]] = true
		} else {
			eft := "allow"
			if len(l) == 6 {
				eft = l[5]
			}
			ps = append(ps, []string{l[1], l[2], l[3], l[4], eft})
		}
	}
	ps, gs = confineThroughProjectRoles(ps, gs)
	if len(ps) > 0 {
		if _, err := enf.AddPoliciesEx(ps); err != nil {
			t.Fatalf("casbin AddPolicies: %v", err)
		}
	}
	if len(gs) > 0 {
		if _, err := enf.AddGroupingPoliciesEx(gs); err != nil {
			t.Fatalf("casbin AddGroupingPolicies: %v", err)
		}
	}
	return o
}

func (o *oracle) enforce(t *testing.T, sub string, groups []string, res, act, obj string) bool {
	if !oracleWithin(sub, res, act, obj) {
		return false
	}
	ask := func(s string) bool {
		ok, err := o.enf.Enforce(s, res, act, obj)
		if err != nil {
			t.Fatalf("casbin Enforce: %v", err)
		}
		return ok
	}
	if o.defaultRole != "" && ask(o.defaultRole) {
		return true
	}
	if ask(sub) {
		return true
	}
	for _, g := range groups {
		reserved := strings.HasPrefix(g, "role:") || strings.HasPrefix(g, "proj:")
		if o.bound[g] && !reserved && ask(g) {
			return true
		}
	}
	return false
}

// confineThroughProjectRoles rewrites the policy for casbin so that what a
// project role inherits is confined to its project: each role X that
// proj:P:R joins (directly or further up) is replaced, on that path, by a
// copy named "P§X" carrying X's p lines, which oracleWithin confines to P.
// A project role of another project joined this way is dropped.
func confineThroughProjectRoles(ps, gs [][]string) ([][]string, [][]string) {
	parents := map[string][]string{}
	for _, g := range gs {
		parents[g[0]] = append(parents[g[0]], g[1])
	}
	linesOf := map[string][][]string{}
	for _, l := range ps {
		linesOf[l[0]] = append(linesOf[l[0]], l)
	}
	projectOf := func(sub string) (string, bool, bool) {
		parts := strings.Split(sub, ":")
		if parts[0] != "proj" {
			return "", false, false
		}
		return parts[1], true, len(parts) == 3 && parts[1] != "" && parts[2] != ""
	}
	var outG [][]string
	made := map[string]bool{}
	var target func(x, project string) (string, bool)
	target = func(x, project string) (string, bool) {
		if p, isProject, ok := projectOf(x); isProject {
			return x, ok && p == project
		}
		name := project + "§" + x
		if !made[name] {
			made[name] = true
			for _, l := range linesOf[x] {
				ps = append(ps, append([]string{name}, l[1:]...))
			}
			for _, y := range parents[x] {
				if t, ok := target(y, project); ok {
					outG = append(outG, []string{name, t})
				}
			}
		}
		return name, true
	}
	for _, g := range gs {
		p, isProject, ok := projectOf(g[0])
		switch {
		case !isProject:
			outG = append(outG, g)
		case ok:
			if t, ok := target(g[1], p); ok {
				outG = append(outG, []string{g[0], t})
			}
		}
	}
	return ps, outG
}

// oracleWithin: a subject proj:<p>:<r> (exactly three parts, none empty)
// may get project p and act on applications "p/<name>"; a malformed one
// nothing; any other subject is not limited.
func oracleWithin(sub, res, act, obj string) bool {
	var project string
	if p, _, ok := strings.Cut(sub, "§"); ok {
		project = p // a role reached through a project role of p
	} else if strings.HasPrefix(sub, "proj:") {
		parts := strings.Split(sub, ":")
		if len(parts) != 3 || parts[1] == "" || parts[2] == "" {
			return false
		}
		project = parts[1]
	} else {
		return true
	}
	switch res {
	case "applications":
		return strings.HasPrefix(obj, project+"/") && len(obj) > len(project)+1
	case "projects":
		return act == "get" && obj == project
	}
	return false
}

// globOracle matches with a regular expression translated from the glob,
// not with the package's matcher.
func globOracle(pattern, s string) bool {
	re, err := globRegexp(pattern)
	return err == nil && re.MatchString(s)
}

// genPolicy is a random policy: its lines as fields, and its CSV text.
type genPolicy struct {
	lines       [][]string // as given to casbin: "p", sub, res, act, obj[, eft] or "g", member, role
	csv         string
	defaultRole string
	regex       bool
	builtin     bool
}

var (
	genNames     = []string{"alice", "bob", "role:a", "role:b", "role:c", "grp:x", "grp:y", "proj:a:r", "proj:b:r"}
	genGroups    = []string{"grp:x", "grp:y", "grp:z", "role:a", "alice"}
	genSubjects  = []string{"alice", "alice", "bob", "bob", "carol", "carol", "admin", "role:a", "role:c", "grp:x", "proj:a:r", "proj:b:r", "proj:a", "proj:a:r:x"}
	genDefaults  = []string{"", "", "role:a", "role:readonly", "grp:x", "nobody"}
	genResources = []string{"applications", "projects", "accounts"}
	genActions   = []string{"get", "sync", "update", "delete"}

	globResources  = []string{"*", "applications", "projects", "app*", "*s", "{projects,accounts}", "?rojects", "[ap]*"}
	globActions    = []string{"*", "get", "sync", "*e", "{get,sync}", "?et", "[!g]*"}
	regexResources = []string{".*", "applications", "projects", "app.*", ".*s", "(projects|accounts)", ".rojects"}
	regexActions   = []string{".*", "get", "sync", ".*e", "get|sync", "[^g].*"}
	regexObjects   = []string{"a", "b", "/", ".", ".*", "[ab]", "(a|b)", "a?", "/.*"}
)

func pick[T any](r *rand.Rand, xs []T) T { return xs[r.IntN(len(xs))] }

func genPolicyFor(r *rand.Rand) genPolicy {
	p := genPolicy{regex: r.IntN(4) == 0, builtin: r.IntN(2) == 0, defaultRole: pick(r, genDefaults)}
	if p.builtin {
		all := "*"
		if p.regex {
			all = ".*"
		}
		p.lines = append(p.lines,
			[]string{"p", "role:readonly", all, "get", all, "allow"},
			[]string{"p", "role:admin", all, all, all, "allow"},
			[]string{"g", "role:admin", "role:readonly"},
			[]string{"g", "admin", "role:admin"})
	}
	var csv []string
	n := 3 + r.IntN(12)
	for range n {
		if r.IntN(3) == 0 {
			member := pick(r, genNames)
			if r.IntN(2) == 0 {
				member = pick(r, []string{"grp:x", "grp:y"})
			}
			l := []string{"g", member, pick(r, genNames)}
			p.lines = append(p.lines, l)
			csv = append(csv, csvLine(r, l))
			continue
		}
		var res, act, obj string
		if p.regex {
			res, act = pick(r, regexResources), pick(r, regexActions)
			obj = ""
			for range 1 + r.IntN(3) {
				obj += pick(r, regexObjects)
			}
		} else {
			res, act, obj = pick(r, globResources), pick(r, globActions), randomGlob(r)
		}
		sub := pick(r, genNames)
		if p.defaultRole != "" && r.IntN(4) == 0 {
			// Lines of the default role itself, allows and denies, so that
			// a deny written on it is put to the test.
			sub = p.defaultRole
		}
		l := []string{"p", sub, res, act, obj}
		switch x := r.IntN(20); {
		case x < 11:
			l = append(l, "allow")
		case x < 16:
			l = append(l, "deny")
		}
		p.lines = append(p.lines, l)
		csv = append(csv, csvLine(r, l))
		if r.IntN(8) == 0 {
			csv = append(csv, "# a comment", "")
		}
	}
	p.csv = strings.Join(csv, "\n")
	return p
}

// csvLine writes a line with random spacing, quoting what must be quoted
// and sometimes what need not be.
func csvLine(r *rand.Rand, fields []string) string {
	out := make([]string, len(fields))
	for i, f := range fields {
		if strings.ContainsAny(f, `,"`) || (i > 0 && r.IntN(6) == 0) {
			f = `"` + strings.ReplaceAll(f, `"`, `""`) + `"`
		}
		out[i] = strings.Repeat(" ", r.IntN(2)) + f + strings.Repeat(" ", r.IntN(2))
	}
	return strings.Repeat("\t", r.IntN(2)) + strings.Join(out, ",")
}

// TestAgainstCasbin compares the engine with casbin running Argo CD's
// model, over random policies and requests from a fixed seed.
func TestAgainstCasbin(t *testing.T) {
	const policies, perPolicy = 250, 48
	r := rand.New(rand.NewPCG(2024, 11))
	cases, allowed, disagreements := 0, 0, 0
	rules := map[string]int{}
	for pi := range policies {
		p := genPolicyFor(r)
		mode := "glob"
		if p.regex {
			mode = "regex"
		}
		e, err := New(Config{CSV: p.csv, DefaultRole: p.defaultRole, MatchMode: mode, DisableBuiltin: !p.builtin})
		if err != nil {
			t.Fatalf("policy %d does not load: %v\n%s", pi, err, p.csv)
		}
		o := newOracle(t, p)
		// Half the requests name what the policy names, so that lines
		// match, denies meet allows and bound groups take part often.
		var named, members []string
		for _, l := range p.lines {
			named = append(named, l[1])
			if l[0] == "g" {
				members = append(members, l[1])
			}
		}
		for range perPolicy {
			sub := pick(r, genSubjects)
			if r.IntN(2) == 0 {
				sub = pick(r, named)
			}
			var groups []string
			for range r.IntN(4) + r.IntN(2) {
				g := pick(r, genGroups)
				if len(members) > 0 && r.IntN(2) == 0 {
					g = pick(r, members)
				}
				groups = append(groups, g)
			}
			res, act := pick(r, genResources), pick(r, genActions)
			obj := randomValue(r, 4)
			if r.IntN(2) == 0 {
				obj = pick(r, []string{"a", "b", "ab", "a/", "a/b", "b/a", "a/" + obj})
			}
			if obj == All {
				// A question about every object is stricter than in Argo
				// CD (see All and TestAllImpliesEach).
				obj = "a/*"
			}
			want := o.enforce(t, sub, groups, res, act, obj)
			got := e.Enforce(sub, groups, res, act, obj)
			x := e.Explain(sub, groups, res, act, obj)
			cases++
			rules[x.Rule]++
			if want {
				allowed++
			}
			if got != want || x.Allowed != want {
				disagreements++
				if disagreements <= 10 {
					t.Errorf("policy %d (%s, default %q, builtin %v):\n%s\nEnforce(%q, %q, %q, %q, %q) = %v (explain %v by %s, %v), casbin says %v",
						pi, mode, p.defaultRole, p.builtin, p.csv, sub, groups, res, act, obj, got, x.Allowed, x.Rule, x.Matched, want)
				}
			}
		}
	}
	if disagreements > 0 {
		t.Fatalf("%d of %d cases disagree with casbin", disagreements, cases)
	}
	// The generator must exercise every outcome, or the comparison proves little.
	t.Logf("%d cases: %d allowed, %d denied; by rule: %v", cases, allowed, cases-allowed, rules)
	for _, rule := range []string{RuleDefaultRole, RuleSubject, RuleGroup, RuleDeny, RuleNoMatch, RuleCrossProject} {
		if rules[rule] < 150 {
			t.Errorf("only %d cases decided by %q; the generator needs tuning", rules[rule], rule)
		}
	}
	if allowed < cases/5 || cases-allowed < cases/5 {
		t.Errorf("%d of %d cases allowed; want at least a fifth each way", allowed, cases)
	}
	if cases < 10000 {
		t.Errorf("only %d cases, want at least 10,000", cases)
	}
}

func TestOracleSanity(t *testing.T) {
	// The oracle itself must tell allow from deny, or a zero-disagreement
	// run means nothing.
	p := genPolicy{lines: [][]string{
		{"p", "alice", "applications", "get", "a/*", "allow"},
		{"p", "alice", "applications", "get", "a/b", "deny"},
	}}
	o := newOracle(t, p)
	for _, tt := range []struct {
		obj  string
		want bool
	}{{"a/x/y", true}, {"a/b", false}, {"b/x", false}} {
		if got := o.enforce(t, "alice", nil, "applications", "get", tt.obj); got != tt.want {
			t.Errorf("oracle on %q = %v, want %v", tt.obj, got, tt.want)
		}
	}
}

// TestAllImpliesEach: whoever is allowed a question about every object
// (All) is allowed it for each object, over random policies from a fixed
// seed in both match modes; and All is allowed often enough that this
// proves something.
func TestAllImpliesEach(t *testing.T) {
	const policies, perPolicy, objects = 400, 40, 24
	r := rand.New(rand.NewPCG(2026, 12))
	cases, allAllowed := 0, 0
	for pi := range policies {
		p := genPolicyFor(r)
		mode := "glob"
		if p.regex {
			mode = "regex"
		}
		e, err := New(Config{CSV: p.csv, DefaultRole: p.defaultRole, MatchMode: mode, DisableBuiltin: !p.builtin})
		if err != nil {
			t.Fatalf("policy %d does not load: %v\n%s", pi, err, p.csv)
		}
		var named []string
		for _, l := range p.lines {
			named = append(named, l[1])
		}
		for range perPolicy {
			sub := pick(r, genSubjects)
			if len(named) > 0 && r.IntN(2) == 0 {
				sub = pick(r, named)
			}
			var groups []string
			for range r.IntN(3) {
				groups = append(groups, pick(r, genGroups))
			}
			res, act := pick(r, genResources), pick(r, genActions)
			cases++
			if !e.Enforce(sub, groups, res, act, All) {
				continue
			}
			allAllowed++
			for range objects {
				obj := randomValue(r, 5)
				if r.IntN(2) == 0 {
					obj = pick(r, []string{"a", "b", "ab", "a/", "a/b", "b/a", "*", "?", "a/" + obj})
				}
				if !e.Enforce(sub, groups, res, act, obj) {
					t.Fatalf("policy %d (%s):\n%s\n%q with groups %v is allowed %s, %s on every object but not on %q (explain: %+v)",
						pi, mode, p.csv, sub, groups, res, act, obj, e.Explain(sub, groups, res, act, obj))
				}
			}
		}
	}
	t.Logf("%d questions about every object, %d allowed", cases, allAllowed)
	if allAllowed < cases/20 {
		t.Fatalf("only %d of %d questions about every object were allowed; the generator proves little", allAllowed, cases)
	}
}
