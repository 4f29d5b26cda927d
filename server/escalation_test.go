package server_test

// The escalation property test: the adversary's view of Gatehouse's one
// promise, that no credential ever does more than the policy allows its
// owner (or its project role) now, that no caller changes a grant it may
// not, and that no project rule reaches outside its project.
//
// One real server (httptest + SQLite) lives through many random worlds. A
// world is a random policy (glob or regex mode, deny lines, nested roles,
// a default role, groups, project roles with hostile patterns bound to
// groups and account names), random service accounts with tokens minted
// by admin (unscoped and scoped), role tokens, and a run of random grant
// changes, mints, project and RBAC edits attempted by random callers, each
// followed by can-i questions asked with every kind of token. Every answer
// is compared with a small reference evaluator written here from the
// semantics, independent of the policy package.
//
// Reproduce one world with
//
//	GATEHOUSE_ESCALATION_WORLD=<world seed> go test ./server/ -run TestEscalationProperty -v
//
// GATEHOUSE_ESCALATION_CASES=<n> changes the number of cases (default
// 100,000; 4,000 with -short).

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/policy"
)

// The fixed seeds of the property test.
const (
	escSeed1 = 0x6761_7465_686f_7573 // "gatehous"
	escSeed2 = 0x0000_0000_0000_0b11 // issue 11
)

// ---------------------------------------------------------------------
// Reference evaluator.

// escRule is one p line.
type escRule struct {
	res, act, obj string
	deny          bool
}

// escRef decides like the semantics say, from the lines in force.
type escRef struct {
	regex   bool
	def     string
	rules   map[string][]escRule // by subject
	parents map[string][]string  // g lines: member -> roles
	member  map[string]bool      // named first in some g line of the policy
	// viaProject: named first only as a project role's group
	viaProject map[string]bool
	// open: the world has lines where the readings below differ (deny
	// lines of proj: subjects, or proj: subjects that join other roles).
	open bool
}

// escVariant selects a reading of the semantics. The zero value is the
// brief's reading; denyUnbounded and pathBounded are readings the brief
// leaves open (either is accepted); the old* flags reproduce the pre-fix
// behaviour and only serve to name the cause of a failure.
type escVariant struct {
	denyUnbounded      bool // a proj:P:R deny line outside P still denies
	pathBounded        bool // roles reached through proj:P:R are bounded by P as well
	oldNoRuleBoundary  bool // pre-fix: proj: lines are not bounded for accounts and groups
	oldSubjectBoundary bool // pre-fix: a role token may touch any resource whose object is under P/
	getOnly            bool // narrower than the semantics: of resource projects, P may only get P
}

// escSet is the set of acceptable can-i answers.
type escSet uint8

const (
	escNo  escSet = 1
	escYes escSet = 2
)

func (s escSet) yes() bool { return s&escYes != 0 }
func (s escSet) no() bool  { return s&escNo != 0 }
func (s escSet) String() string {
	switch s {
	case escYes:
		return "yes"
	case escNo:
		return "no"
	}
	return "yes-or-no"
}

func escBool(b bool) escSet {
	if b {
		return escYes
	}
	return escNo
}

// and combines two permissions that are both needed.
func (s escSet) and(o escSet) escSet {
	var out escSet
	if s.yes() && o.yes() {
		out |= escYes
	}
	if s.no() || o.no() {
		out |= escNo
	}
	return out
}

func (s escSet) or(o escSet) escSet {
	var out escSet
	if s.yes() || o.yes() {
		out |= escYes
	}
	if s.no() && o.no() {
		out |= escNo
	}
	return out
}

func newEscRef(regex bool, def string) *escRef {
	r := &escRef{regex: regex, def: def, rules: map[string][]escRule{}, parents: map[string][]string{}, member: map[string]bool{}, viaProject: map[string]bool{}}
	all := "*"
	if regex {
		all = ".*"
	}
	r.addP("role:readonly", all, "get", all, false)
	r.addP("role:admin", all, all, all, false)
	r.addG("role:admin", "role:readonly")
	r.addG("admin", "role:admin")
	return r
}

func (r *escRef) addP(sub, res, act, obj string, deny bool) {
	r.rules[sub] = append(r.rules[sub], escRule{res, act, obj, deny})
	if _, ok := escProjOf(sub); ok && deny {
		r.open = true
	}
}

// addProjectG binds a group to a project role through the role's groups:
// the group then counts for that role only, not for lines of its own.
func (r *escRef) addProjectG(m, role string) {
	r.viaProject[m] = true
	if !slices.Contains(r.parents[m], role) {
		r.parents[m] = append(r.parents[m], role)
	}
}

func (r *escRef) addG(m, role string) {
	r.member[m] = true
	if !slices.Contains(r.parents[m], role) {
		r.parents[m] = append(r.parents[m], role)
	}
	if _, ok := escProjOf(m); ok {
		r.open = true
	}
}

// addLine adds one CSV line as this test writes them (no quoting).
func (r *escRef) addLine(line string) {
	f := escFields(line)
	switch {
	case len(f) >= 5 && f[0] == "p":
		r.addP(f[1], f[2], f[3], f[4], len(f) > 5 && f[5] == "deny")
	case len(f) == 3 && f[0] == "g":
		r.addG(f[1], f[2])
	}
}

func escFields(line string) []string {
	f := strings.Split(line, ",")
	for i := range f {
		f[i] = strings.TrimSpace(f[i])
	}
	return f
}

var escRegexCache = map[string]*regexp.Regexp{}
var escRegexMu sync.Mutex

// escRegex compiles a regex-mode pattern as the semantics say: ^(?:pat)$.
func escRegex(p string) *regexp.Regexp {
	escRegexMu.Lock()
	defer escRegexMu.Unlock()
	re, ok := escRegexCache[p]
	if !ok {
		re, _ = regexp.Compile(`^(?:` + p + `)$`)
		escRegexCache[p] = re
	}
	return re
}

// escGlob matches a glob of '*' (any run, '/' included), '?' (one
// character) and literal characters: the only glob syntax this test writes.
func escGlob(p, s string) bool {
	pi, si, star, mark := 0, 0, -1, 0
	for si < len(s) {
		switch {
		case pi < len(p) && p[pi] == '*':
			star, mark = pi, si
			pi++
		case pi < len(p) && (p[pi] == '?' || p[pi] == s[si]):
			pi++
			si++
		case star >= 0:
			pi = star + 1
			mark++
			si = mark
		default:
			return false
		}
	}
	for pi < len(p) && p[pi] == '*' {
		pi++
	}
	return pi == len(p)
}

func (r *escRef) match(p, s string) bool {
	if r.regex {
		re := escRegex(p)
		return re != nil && re.MatchString(s)
	}
	return escGlob(p, s)
}

// escProjOf returns P of a well-formed proj:P:R subject.
func escProjOf(sub string) (string, bool) {
	rest, ok := strings.CutPrefix(sub, "proj:")
	if !ok {
		return "", false
	}
	p, role, ok := strings.Cut(rest, ":")
	if !ok || p == "" || role == "" || strings.Contains(role, ":") {
		return "", false
	}
	return p, true
}

// escInProject is the project boundary, checked literally.
func escInProject(p, res, act, obj string, v escVariant, old bool) bool {
	if res == "projects" && obj == p {
		return !v.getOnly || act == "get"
	}
	if old {
		return strings.HasPrefix(obj, p+"/")
	}
	return res == "applications" && strings.HasPrefix(obj, p+"/")
}

// escGoverns: a project governs some objects of the resource and action
// (where a project's deny line refuses a question about every object).
func escGoverns(res, act string, v escVariant) bool {
	return res == "applications" || res == "projects" && (!v.getOnly || act == "get")
}

// universal: an object pattern that matches every object.
func (r *escRef) universal(p string) bool {
	if r.regex {
		return p == ".*" || p == "(?s).*"
	}
	return p == "*"
}

const escNowhere = "\x00" // the bound of a path through two projects

type escState struct{ node, bound string }

// eval evaluates a subject, group or role with every role it reaches.
func (r *escRef) eval(start string, v escVariant, res, act, obj string) (allow, deny bool) {
	seen := map[escState]bool{{start, ""}: true}
	queue := []escState{{start, ""}}
	for len(queue) > 0 {
		s := queue[0]
		queue = queue[1:]
		own, isProj := escProjOf(s.node)
		for _, ru := range r.rules[s.node] {
			if !r.match(ru.res, res) || !r.match(ru.act, act) {
				continue
			}
			// A question about every object (policy.All): an allow line
			// answers it only with an object pattern that matches every
			// object, and a deny line of the resource and action refuses
			// it wherever its project, if it has one, governs some
			// objects of them.
			all := obj == policy.All
			switch {
			case all && !ru.deny && !r.universal(ru.obj):
				continue
			case !all && !r.match(ru.obj, obj):
				continue
			}
			within := func(p string) bool {
				if all && ru.deny {
					return escGoverns(res, act, v)
				}
				return escInProject(p, res, act, obj, v, false)
			}
			in := true
			if isProj && !v.oldNoRuleBoundary {
				in = within(own)
			}
			if s.bound != "" {
				in = in && s.bound != escNowhere && within(s.bound)
			}
			if ru.deny {
				if in || v.denyUnbounded {
					deny = true
				}
			} else if in {
				allow = true
			}
		}
		for _, p := range r.parents[s.node] {
			nb := s.bound
			if v.pathBounded && isProj {
				switch {
				case nb == "":
					nb = own
				case nb != own:
					nb = escNowhere
				}
			}
			ns := escState{p, nb}
			if !seen[ns] {
				seen[ns] = true
				queue = append(queue, ns)
			}
		}
	}
	return allow, deny
}

// decide is the Argo CD decision with Gatehouse's project boundary.
func (r *escRef) decide(v escVariant, subject string, groups []string, res, act, obj string) bool {
	if strings.HasPrefix(subject, "proj:") {
		p, ok := escProjOf(subject)
		if !ok || !escInProject(p, res, act, obj, v, v.oldSubjectBoundary) {
			return false
		}
	}
	if r.def != "" {
		if a, d := r.eval(r.def, v, res, act, obj); a && !d {
			return true
		}
	}
	if a, d := r.eval(subject, v, res, act, obj); a && !d {
		return true
	}
	for _, g := range groups {
		switch {
		case r.member[g]:
			if a, d := r.eval(g, v, res, act, obj); a && !d {
				return true
			}
		case r.viaProject[g]:
			var allow, deny bool
			for _, role := range r.parents[g] {
				a, d := r.eval(role, v, res, act, obj)
				allow, deny = allow || a, deny || d
			}
			if allow && !deny {
				return true
			}
		}
	}
	return false
}

// escSemantics is the reading of the semantics the server implements: a
// project may only read itself among projects (getOnly), and every role
// reached through proj:P:R is bounded by P as well (pathBounded: binding to
// a project role grants exactly what the role's token may do).
var escSemantics = escVariant{pathBounded: true, getOnly: true}

// answers is the one acceptable answer.
func (r *escRef) answers(subject string, groups []string, res, act, obj string) escSet {
	return escBool(r.decide(escSemantics, subject, groups, res, act, obj))
}

// escScopeMatch: some scope glob-matches all three.
func escScopeMatch(scopes []gatehouse.Scope, res, act, obj string) bool {
	for _, sc := range scopes {
		if escGlob(sc.Resource, res) && escGlob(sc.Action, act) && escGlob(sc.Object, obj) {
			return true
		}
	}
	return false
}

// ---------------------------------------------------------------------
// The world.

var (
	escProjects     = []string{"team-a", "team-b", "team"}
	escApps         = map[string]string{"web-a": "team-a", "api-a": "team-a", "web-b": "team-b", "web-t": "team"}
	escAccountPool  = []string{"alice", "bob", "carol", "dave", "erin", "frank", "svc-ci", "svc-deploy"}
	escFreshNames   = []string{"gus", "hank", "ivy", "jane", "kyle"}
	escRoles        = []string{"role:dev", "role:ops", "role:viewer", "role:sec", "role:nest1", "role:nest2"}
	escGroups       = []string{"devs", "ops-team", "auditors", "team-a-admins", "sre", "everyone"}
	escHostileGroup = []string{"role:admin", "role:readonly", "role:dev", "proj:team-b:deployer", "proj:team-a:viewer", "proj:team:ci"}
	escRoleNames    = []string{"deployer", "viewer", "admin", "ci"}

	escGlobRes  = []string{"applications", "applications", "applications", "projects", "accounts", "settings", "audit", "*", "app*", "*s", "?ccounts"}
	escGlobAct  = []string{"get", "get", "sync", "update", "create", "delete", "*", "?et", "up*"}
	escGlobObj  = []string{"*", "team-a/*", "team-b/*", "team/*", "team-*", "team-a/web-a", "team-?/*", "*/web-b", "team*", "team-a", "team-b", "team", "rbac", "carol", "erin", "e*", "*-ci", "team-a/w?b-a", "*a*", "*"}
	escRegexRes = []string{"applications", "applications", "applications", "projects", "accounts", "settings", ".*", "app.*", "applications|projects", "acc[a-z]+", "(settings|accounts)"}
	escRegexAct = []string{"get", "get", "sync", "update", "create", ".*", "get|sync", "(create|update)", "[a-z]+", "up.*"}
	escRegexObj = []string{".*", "team-a/.*", "team-b/.*", "team/.*", "team-a/.*|team-b/.*", "team-.*", "team-a/web-a", "team-./.*", "[a-z-]+/web-b", "team-a", "team-b", "rbac", "carol|erin", "e.*", ".*-ci", "team-a/(web-a|api-a)", "team-a/[^/]+", ".*a.*", ".*"}
)

func escPick[T any](r *rand.Rand, xs []T) T { return xs[r.IntN(len(xs))] }

// escToken is a token the world holds.
type escToken struct {
	raw           string
	account       string // api and session tokens
	project, role string // role tokens
	scopes        []gatehouse.Scope
}

func (t *escToken) String() string {
	if t.project != "" {
		return "role token proj:" + t.project + ":" + t.role
	}
	if len(t.scopes) == 0 {
		return "unscoped token of " + t.account
	}
	var sc []string
	for _, s := range t.scopes {
		sc = append(sc, "("+s.Resource+", "+s.Action+", "+s.Object+")")
	}
	return "token of " + t.account + " scoped to " + strings.Join(sc, " ")
}

func (t *escToken) subject() string {
	if t.project != "" {
		return gatehouse.ProjectSubject(t.project, t.role)
	}
	return t.account
}

type escWorld struct {
	h        *escHarness
	seed     uint64
	rng      *rand.Rand
	regex    bool
	def      string
	csv      []string
	projects map[string][]gatehouse.ProjectRole
	accounts map[string][]string // name -> groups
	order    []string            // account names, in creation order
	tokens   []*escToken
	admin    *escToken
	ref      *escRef
	log      []string // what happened, for the failure report
	dirty    bool     // the last step changed a grant
}

func (w *escWorld) mode() string {
	if w.regex {
		return "regex"
	}
	return "glob"
}

func (w *escWorld) rebuild() {
	r := newEscRef(w.regex, w.def)
	for _, l := range w.csv {
		r.addLine(l)
	}
	for _, p := range escProjects {
		for _, role := range w.projects[p] {
			sub := gatehouse.ProjectSubject(p, role.Name)
			for _, l := range role.Policies {
				r.addLine(l)
			}
			r.addP(sub, "projects", "get", p, false)
			for _, g := range role.Groups {
				r.addProjectG(g, sub)
			}
		}
	}
	w.ref = r
}

// can is what token t may do now, by the reference.
func (w *escWorld) can(t *escToken, res, act, obj string) escSet {
	return w.canWith(w.snapshot(), t, res, act, obj)
}

// escSnapshot is the reference state at one moment: lines and groups.
type escSnapshot struct {
	ref      *escRef
	accounts map[string][]string
}

func (w *escWorld) snapshot() escSnapshot { return escSnapshot{w.ref, w.accounts} }

func (w *escWorld) canWith(st escSnapshot, t *escToken, res, act, obj string) escSet {
	r := st.ref
	if len(t.scopes) > 0 && !escScopeMatch(t.scopes, res, act, obj) {
		return escNo
	}
	if t.project != "" {
		return r.answers(gatehouse.ProjectSubject(t.project, t.role), nil, res, act, obj)
	}
	return r.answers(t.account, st.accounts[t.account], res, act, obj)
}

func (w *escWorld) logf(format string, args ...any) {
	w.log = append(w.log, fmt.Sprintf(format, args...))
}

// describe is everything needed to reproduce the world.
func (w *escWorld) describe() string {
	var b strings.Builder
	fmt.Fprintf(&b, "world seed %d (GATEHOUSE_ESCALATION_WORLD=%d go test ./server/ -run TestEscalationProperty -v)\n", w.seed, w.seed)
	fmt.Fprintf(&b, "  matchMode %s, policy.default %q\n  policy.csv:\n", w.mode(), w.def)
	for _, l := range w.csv {
		fmt.Fprintf(&b, "    %s\n", l)
	}
	for _, p := range escProjects {
		for _, r := range w.projects[p] {
			fmt.Fprintf(&b, "  project %s role %s groups %q policies %q\n", p, r.Name, r.Groups, r.Policies)
		}
	}
	for _, a := range w.order {
		fmt.Fprintf(&b, "  account %s groups %q\n", a, w.accounts[a])
	}
	start := max(0, len(w.log)-12)
	if start > 0 {
		fmt.Fprintf(&b, "  ... %d earlier steps\n", start)
	}
	for _, l := range w.log[start:] {
		fmt.Fprintf(&b, "  step: %s\n", l)
	}
	return b.String()
}

// patterns of the world's mode.
func (w *escWorld) pat(glob, regex []string) string {
	if w.regex {
		return escPick(w.rng, regex)
	}
	return escPick(w.rng, glob)
}

func (w *escWorld) projSubjects() []string {
	var out []string
	for _, p := range escProjects {
		for _, r := range w.projects[p] {
			out = append(out, gatehouse.ProjectSubject(p, r.Name))
		}
	}
	return append(out, "proj:team-a:ghost", "proj:team-b:deployer", "proj:team-ab:x")
}

// randomLine is a random global CSV line.
func (w *escWorld) randomLine(accounts []string) string {
	r := w.rng
	if r.IntN(3) == 0 { // g line
		var m string
		switch x := r.IntN(10); {
		case x < 3:
			m = escPick(r, accounts)
		case x < 6:
			m = escPick(r, escGroups)
		case x < 9:
			m = escPick(r, escRoles)
		default:
			m = escPick(r, w.projSubjects())
		}
		var role string
		switch x := r.IntN(20); {
		case x < 11:
			role = escPick(r, escRoles)
		case x < 14:
			role = "role:readonly"
		case x < 18:
			role = escPick(r, w.projSubjects())
		case x < 19:
			role = "role:admin"
		default:
			role = escPick(r, accounts)
		}
		if role == m {
			role = "role:readonly"
		}
		return "g, " + m + ", " + role
	}
	var sub string
	switch x := r.IntN(10); {
	case x < 5:
		sub = escPick(r, escRoles)
	case x < 7:
		sub = escPick(r, w.projSubjects())
	case x < 9:
		sub = escPick(r, accounts)
	default:
		sub = escPick(r, escGroups)
	}
	eft := "allow"
	if r.IntN(5) == 0 {
		eft = "deny"
	}
	return fmt.Sprintf("p, %s, %s, %s, %s, %s", sub, w.pat(escGlobRes, escRegexRes), w.pat(escGlobAct, escRegexAct), w.pat(escGlobObj, escRegexObj), eft)
}

// roleLine is a random project role policy line; hostile: valid as text
// but written to reach outside the project (a save may refuse it).
func (w *escWorld) roleLine(p, role string) (line string, hostile bool) {
	r := w.rng
	other := escPick(r, escProjects)
	for other == p {
		other = escPick(r, escProjects)
	}
	var suffix string
	if w.regex {
		suffixes := []string{".*", "web.*", "[a-z-]+", "(web|api).*", "web-a"}
		hostiles := []string{".*|" + other + "/.*", ".*|.*", "x|.*", ".*)|(.*", "web-a|" + other + "/web-b"}
		if r.IntN(3) == 0 {
			suffix, hostile = escPick(r, hostiles), true
		} else {
			suffix = escPick(r, suffixes)
		}
	} else {
		suffix = escPick(r, []string{"*", "*", "web-a", "w*", "?eb-*", "*/x", "*-b"})
	}
	eft := "allow"
	if r.IntN(8) == 0 {
		eft = "deny"
	}
	return fmt.Sprintf("p, %s, applications, %s, %s/%s, %s", gatehouse.ProjectSubject(p, role), w.pat(escGlobAct, escRegexAct), p, suffix, eft), hostile
}

// badRoleLine is a line a project role must refuse.
func (w *escWorld) badRoleLine(p, role string) string {
	r := w.rng
	other := escPick(r, escProjects)
	for other == p {
		other = escPick(r, escProjects)
	}
	all := "*"
	if w.regex {
		all = ".*"
	}
	sub := gatehouse.ProjectSubject(p, role)
	switch r.IntN(6) {
	case 0:
		return fmt.Sprintf("p, %s, applications, get, %s/%s, allow", gatehouse.ProjectSubject(other, role), p, all)
	case 1:
		return fmt.Sprintf("p, %s, projects, get, %s, allow", sub, p)
	case 2:
		return fmt.Sprintf("p, %s, %s, get, %s/%s, allow", sub, all, p, all)
	case 3:
		return fmt.Sprintf("p, %s, applications, get, %s/%s, allow", sub, other, all)
	case 4:
		return fmt.Sprintf("p, %s, applications, get, %s, allow", sub, all)
	default:
		return fmt.Sprintf("g, %s, role:admin", sub)
	}
}

// randomRoles is a random set of roles for project p.
func (w *escWorld) randomRoles(p string, hostileOK bool) (roles []gatehouse.ProjectRole, valid, hostile bool) {
	r := w.rng
	valid = true
	names := slices.Clone(escRoleNames)
	r.Shuffle(len(names), func(i, j int) { names[i], names[j] = names[j], names[i] })
	for _, name := range names[:r.IntN(3)+1] {
		role := gatehouse.ProjectRole{Name: name, Policies: []string{}, Groups: []string{}}
		for range r.IntN(3) + 1 {
			if hostileOK && r.IntN(10) == 0 {
				role.Policies = append(role.Policies, w.badRoleLine(p, name))
				valid = false
				continue
			}
			l, h := w.roleLine(p, name)
			role.Policies = append(role.Policies, l)
			hostile = hostile || h
		}
		for range r.IntN(3) {
			switch x := r.IntN(10); {
			case hostileOK && x == 0:
				role.Groups = append(role.Groups, escPick(r, escHostileGroup))
				valid = false
			case x < 6:
				role.Groups = append(role.Groups, escPick(r, escGroups))
			default:
				role.Groups = append(role.Groups, escPick(r, escAccountPool))
			}
		}
		roles = append(roles, role)
	}
	return roles, valid, hostile
}

// randomGroups is a random group list for an account; valid is false when
// one of them must be refused.
func (w *escWorld) randomGroups(hostileOK bool) (groups []string, valid bool) {
	r := w.rng
	valid = true
	groups = []string{}
	for range r.IntN(3) {
		switch x := r.IntN(10); {
		case hostileOK && x < 3:
			groups = append(groups, escPick(r, escHostileGroup))
			valid = false
		case x < 8:
			groups = append(groups, escPick(r, escGroups))
		default:
			groups = append(groups, escPick(r, escAccountPool)) // a group named like an account
		}
	}
	return groups, valid
}

// randomTriple is a random (resource, action, object) question.
func (w *escWorld) randomTriple() (string, string, string) {
	r := w.rng
	var res string
	switch x := r.IntN(20); {
	case x < 9:
		res = "applications"
	case x < 12:
		res = "projects"
	case x < 15:
		res = "accounts"
	case x < 17:
		res = "settings"
	case x < 18:
		res = "audit"
	default:
		res = escPick(r, []string{"*", "Applications", "application", "app", "clusters"})
	}
	act := escPick(r, []string{"get", "get", "create", "update", "delete", "sync", "*", "override"})
	var obj string
	switch res {
	case "applications":
		proj := escPick(r, []string{"team-a", "team-a", "team-b", "team-b", "team", "team-ab", "team-z", "*"})
		switch x := r.IntN(12); {
		case x < 8:
			obj = proj + "/" + escPick(r, []string{"web-a", "api-a", "web-b", "web-t", "x", "*", "w", "sub/x", ".*"})
		case x < 10:
			obj = proj
		default:
			obj = escPick(r, []string{"*", "team-a/.*|team-b/x", "team-ab/web-a", "team-a-x/y"})
		}
	case "projects":
		obj = escPick(r, []string{"team-a", "team-b", "team", "team-ab", "*", "team-a/x", "team-"})
	case "accounts", "audit":
		obj = escPick(r, append(slices.Clone(escAccountPool), "admin", "*", "team-a/x", "gus"))
	case "settings":
		obj = escPick(r, []string{"rbac", "rbac", "*", "team-a/x"})
	default:
		obj = escPick(r, []string{"*", "team-a/web-a", "team-b/web-b", "rbac", "carol"})
	}
	return res, act, obj
}

// tripleFor biases a question towards a scoped token's scopes.
func (w *escWorld) tripleFor(t *escToken) (string, string, string) {
	if len(t.scopes) == 0 || w.rng.IntN(2) == 0 {
		return w.randomTriple()
	}
	sc := escPick(w.rng, t.scopes)
	// Resources and actions are one path segment; objects may hold '/'
	// but no empty segment (a URL cannot carry it).
	fill := func(p, alt string, slash bool) string {
		if !strings.ContainsAny(p, "*?") {
			return p
		}
		if w.rng.IntN(3) == 0 {
			return alt
		}
		one, run := []string{"a", "-"}, []string{"x", "web-a", "s"}
		if slash {
			one, run = []string{"a", "-", "/"}, []string{"x", "web-a", "team-b/web-b", "a/b"}
		}
		p = strings.ReplaceAll(p, "?", escPick(w.rng, one))
		return strings.ReplaceAll(p, "*", escPick(w.rng, run))
	}
	res, act, obj := w.randomTriple()
	res, act, obj = fill(sc.Resource, res, false), fill(sc.Action, act, false), fill(sc.Object, obj, true)
	if strings.HasSuffix(obj, "/") || strings.HasPrefix(obj, "/") || strings.Contains(obj, "//") {
		return w.randomTriple()
	}
	return res, act, obj
}

// randomScope is a random glob scope.
func (w *escWorld) randomScope() gatehouse.Scope {
	r := w.rng
	return gatehouse.Scope{
		Resource: escPick(r, []string{"applications", "applications", "projects", "accounts", "settings", "*"}),
		Action:   escPick(r, []string{"get", "sync", "update", "*", "?et"}),
		Object:   escPick(r, []string{"team-a/*", "team-b/web-b", "*", "team-a/web-a", "carol", "rbac", "team-?/*", "team-a", "erin"}),
	}
}

// held: may a token of owner carry scope sc, minted by minter? Scope
// patterns are checked as literal objects; for a pattern a stricter check
// (refusal) is also acceptable.
func (w *escWorld) held(owner string, minter *escToken, sc gatehouse.Scope) escSet {
	s := w.ref.answers(owner, w.accounts[owner], sc.Resource, sc.Action, sc.Object).and(w.can(minter, sc.Resource, sc.Action, sc.Object))
	if s.yes() && strings.ContainsAny(sc.Resource+sc.Action+sc.Object, "*?") {
		s |= escNo
	}
	return s
}

// ---------------------------------------------------------------------
// The harness around the real server.

type escHarness struct {
	t      *testing.T
	e      *env
	client *http.Client

	secretMu sync.Mutex
	secrets  []string // every token the test minted

	cases, canI, real, grants, mints, worlds int
	yes, no, open, changed                   int
	hostileRefused                           int

	fails   map[string]int
	printed int
	firsts  map[string]string // first reproduction of each failure kind

	prevAccounts []string
	roledProjs   bool
}

func newEscHarness(t *testing.T, e *env) *escHarness {
	tr := &http.Transport{MaxIdleConnsPerHost: 16, MaxConnsPerHost: 16, IdleConnTimeout: time.Minute}
	t.Cleanup(tr.CloseIdleConnections)
	return &escHarness{t: t, e: e, client: &http.Client{Transport: tr}, fails: map[string]int{}, firsts: map[string]string{}}
}

func (h *escHarness) remember(tok string) {
	h.secretMu.Lock()
	h.secrets = append(h.secrets, tok)
	h.secretMu.Unlock()
	// A few also go through the harness's own leak check.
	if len(h.secrets) <= 8 {
		h.e.remember(tok)
	}
}

// do is safe to call from several goroutines.
func (h *escHarness) do(method, path, tok string, body any) (int, []byte, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, h.e.srv.URL+path, rd)
	if err != nil {
		return 0, nil, err
	}
	if method != http.MethodGet {
		req.Header.Set("Content-Type", "application/json")
	}
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := h.client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

// req is do on the test goroutine: a transport error ends the test.
func (h *escHarness) req(method, path, tok string, body any) (int, []byte) {
	h.t.Helper()
	s, b, err := h.do(method, path, tok, body)
	if err != nil {
		h.t.Fatalf("%s %s: %v", method, path, err)
	}
	return s, b
}

// must is a setup request by admin that has to succeed.
func (h *escHarness) must(w *escWorld, method, path string, body any, out any) {
	h.t.Helper()
	s, b := h.req(method, path, h.e.admin, body)
	if s != 200 {
		h.t.Fatalf("setup %s %s: %d %s\n%s", method, path, s, b, w.describe())
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			h.t.Fatalf("setup %s %s: %v", method, path, err)
		}
	}
}

func (h *escHarness) fail(w *escWorld, kind, detail string) {
	h.fails[kind]++
	if _, ok := h.firsts[kind]; !ok {
		h.firsts[kind] = detail + "\n" + w.describe()
	}
	if h.fails[kind] <= 2 && h.printed < 30 {
		h.printed++
		h.t.Errorf("%s\n  %s\n%s", kind, detail, w.describe())
	}
}

func escCanIPath(res, act, obj string) string {
	segs := strings.Split(obj, "/")
	for i := range segs {
		segs[i] = url.PathEscape(segs[i])
	}
	return "/api/v1/account/can-i/" + url.PathEscape(res) + "/" + url.PathEscape(act) + "/" + strings.Join(segs, "/")
}

func escRefused(s int) bool { return s == 400 || s == 403 }

// ---------------------------------------------------------------------
// can-i checks.

type escCase struct {
	tok           *escToken
	res, act, obj string
	want          escSet
	why           string // why this case was chosen
}

// checkCanI asks every case through the real server, a few at a time,
// and compares with the reference.
func (h *escHarness) checkCanI(w *escWorld, cases []escCase) {
	type result struct {
		status int
		body   []byte
		err    error
	}
	results := make([]result, len(cases))
	var wg sync.WaitGroup
	next := make(chan int)
	for range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				c := cases[i]
				s, b, err := h.do("GET", escCanIPath(c.res, c.act, c.obj), c.tok.raw, nil)
				results[i] = result{s, b, err}
			}
		}()
	}
	for i := range cases {
		next <- i
	}
	close(next)
	wg.Wait()
	for i, c := range cases {
		r := results[i]
		h.cases++
		h.canI++
		if r.err != nil {
			h.t.Fatalf("can-i: %v", r.err)
		}
		req := fmt.Sprintf("can-i (%s, %s, %s) with %s", c.res, c.act, c.obj, c.tok)
		if c.why != "" {
			req += " [" + c.why + "]"
		}
		if r.status != 200 {
			h.fail(w, "can-i: status is not 200", fmt.Sprintf("%s: %d %s", req, r.status, r.body))
			continue
		}
		var ans gatehouse.CanI
		if err := json.Unmarshal(r.body, &ans); err != nil || (ans.Value != "yes" && ans.Value != "no") {
			h.fail(w, "can-i: bad answer", fmt.Sprintf("%s: %s", req, r.body))
			continue
		}
		got := escBool(ans.Value == "yes")
		if c.want == escYes|escNo {
			h.open++
		} else if c.want == escYes {
			h.yes++
		} else {
			h.no++
		}
		if c.want&got == 0 {
			h.fail(w, "can-i "+h.cause(w, c, got), fmt.Sprintf("%s: server says %s, reference %s", req, ans.Value, c.want))
		}
	}
}

// cause names what makes the server's answer differ, by replaying the
// reference with one of the pre-fix behaviours.
func (h *escHarness) cause(w *escWorld, c escCase, got escSet) string {
	scoped := len(c.tok.scopes) > 0 && !escScopeMatch(c.tok.scopes, c.res, c.act, c.obj)
	if scoped && got == escYes {
		return "exceeds the token's scopes"
	}
	subject, groups := c.tok.account, w.accounts[c.tok.account]
	if c.tok.project != "" {
		subject, groups = gatehouse.ProjectSubject(c.tok.project, c.tok.role), nil
	}
	for _, x := range []struct {
		v    escVariant
		name string
	}{
		{escVariant{oldNoRuleBoundary: true}, "exceeds the owner: a proj:P:R rule allows an object outside P for an account/group bound to the role"},
		{escVariant{oldSubjectBoundary: true}, "exceeds the role: role token allowed a non-application resource whose object starts with P/"},
		{escVariant{oldNoRuleBoundary: true, oldSubjectBoundary: true}, "exceeds the role: proj: rule outside P (rule boundary and subject boundary)"},
		{escVariant{getOnly: true}, "narrower than the semantics: (projects, <action other than get>, P) refused through a proj:P:R line or to a role token"},
	} {
		if escBool(w.ref.decide(x.v, subject, groups, c.res, c.act, c.obj)) == got {
			return x.name
		}
	}
	if got == escYes {
		return "exceeds the reference (unexplained)"
	}
	return "refuses what the reference allows (unexplained)"
}

// batch builds n random cases, led by those whose answer changed with the
// last change (they must take effect on the very next request).
func (h *escHarness) batch(w *escWorld, before *escSnapshot, n int) {
	var cases []escCase
	if before != nil && w.dirty {
		w.dirty = false
		for range 600 {
			if len(cases) >= 8 {
				break
			}
			t := escPick(w.rng, w.tokens)
			res, act, obj := w.tripleFor(t)
			old, now := w.canWith(*before, t, res, act, obj), w.can(t, res, act, obj)
			if old != now && (now == escYes || now == escNo) {
				cases = append(cases, escCase{t, res, act, obj, now, "changed by the last step"})
				h.changed++
			}
		}
	}
	for len(cases) < n {
		t := escPick(w.rng, w.tokens)
		if w.rng.IntN(40) == 0 {
			t = w.admin
		}
		// Half the questions are drawn until one the reference allows
		// (or six tries), so that both answers are well represented.
		var res, act, obj string
		var want escSet
		for try := range 6 {
			res, act, obj = w.tripleFor(t)
			want = w.can(t, res, act, obj)
			if want.yes() || try == 0 && w.rng.IntN(2) == 0 {
				break
			}
		}
		cases = append(cases, escCase{tok: t, res: res, act: act, obj: obj, want: want})
	}
	h.checkCanI(w, cases)
	for range 3 {
		h.realRequest(w)
	}
}

// realRequest does a real request and checks that it is refused exactly
// when the reference refuses it.
func (h *escHarness) realRequest(w *escWorld) {
	r := w.rng
	t := escPick(r, w.tokens)
	var (
		method, path string
		body         any
		want         escSet
	)
	app := escPick(r, []string{"web-a", "api-a", "web-b", "web-t"})
	// Prefer the hard cases: a token refused on this application though
	// the question with a wildcard for the project ("*/<app>", or every
	// project's) is allowed: a deny line or a project boundary is all that
	// stands in the way.
	for range 8 {
		t2 := escPick(r, w.tokens)
		app2 := escPick(r, []string{"web-a", "api-a", "web-b", "web-t"})
		act2 := escPick(r, []string{"get", "sync", "update"})
		if w.can(t2, "applications", act2, escApps[app2]+"/"+app2) == escNo && w.can(t2, "applications", act2, "*/"+app2).yes() {
			t, app = t2, app2
			break
		}
	}
	obj := escApps[app] + "/" + app
	res, act, cobj := "", "", ""
	switch r.IntN(7) {
	case 0, 1:
		method, path, want = "GET", "/api/v1/applications/"+app, w.can(t, "applications", "get", obj)
		res, act, cobj = "applications", "get", obj
	case 2:
		method, path, body, want = "POST", "/api/v1/applications/"+app+"/sync", gatehouse.SyncRequest{DryRun: true}, w.can(t, "applications", "sync", obj)
		res, act, cobj = "applications", "sync", obj
	case 6:
		method, path, body, want = "PUT", "/api/v1/applications/"+app+"/status", gatehouse.StatusReport{Sync: "Synced", Health: "Healthy"}, w.can(t, "applications", "update", obj)
		res, act, cobj = "applications", "update", obj
	case 3:
		p := escPick(r, escProjects)
		method, path, want = "GET", "/api/v1/projects/"+p, w.can(t, "projects", "get", p)
	case 4:
		method, path, want = "GET", "/api/v1/settings/rbac", w.can(t, "settings", "get", "rbac")
	default:
		a := escPick(r, append(slices.Clone(w.order), "admin"))
		method, path = "GET", "/api/v1/account/"+a
		if a == t.account {
			want = escYes // callers see their own account
		} else {
			want = w.can(t, "accounts", "get", a)
		}
	}
	s, b := h.req(method, path, t.raw, body)
	h.cases++
	h.real++
	desc := fmt.Sprintf("%s %s with %s", method, path, t)
	switch {
	case s == 200 && !want.yes():
		if res != "" { // what does can-i say about the same question?
			_, cb := h.req("GET", escCanIPath(res, act, cobj), t.raw, nil)
			desc += fmt.Sprintf(" (can-i (%s, %s, %s) answers %s)", res, act, cobj, bytes.TrimSpace(cb))
		}
		h.fail(w, "real request allowed that the reference refuses", fmt.Sprintf("%s: %d %s", desc, s, b))
	case (s == 403 || s == 404) && !want.no():
		h.fail(w, "real request refused that the reference allows", fmt.Sprintf("%s: %d %s", desc, s, b))
	case s != 200 && s != 403 && s != 404:
		h.fail(w, "real request: unexpected status", fmt.Sprintf("%s: %d %s", desc, s, b))
	}
}

// ---------------------------------------------------------------------
// World setup.

func (h *escHarness) newWorld(seed uint64) *escWorld {
	w := &escWorld{h: h, seed: seed, rng: rand.New(rand.NewPCG(escSeed1, seed)),
		projects: map[string][]gatehouse.ProjectRole{}, accounts: map[string][]string{}}
	w.admin = &escToken{raw: h.e.admin, account: gatehouse.AdminAccount}
	r := w.rng
	w.regex = r.IntN(3) == 0

	// Accounts and their groups.
	pool := slices.Clone(escAccountPool)
	r.Shuffle(len(pool), func(i, j int) { pool[i], pool[j] = pool[j], pool[i] })
	w.order = pool[:3+r.IntN(4)]
	for _, a := range w.order {
		w.accounts[a], _ = w.randomGroups(false)
	}
	// Project roles (their names are needed by the global policy).
	hostile := map[string]bool{}
	for _, p := range escProjects {
		if r.IntN(4) == 0 {
			continue
		}
		var hh bool
		w.projects[p], _, hh = w.randomRoles(p, false)
		hostile[p] = hh
	}
	// The global policy.
	for range 4 + r.IntN(12) {
		w.csv = append(w.csv, w.randomLine(w.order))
	}
	switch x := r.IntN(20); {
	case x < 9:
	case x < 14:
		w.def = "role:readonly"
	case x < 18:
		w.def = escPick(r, escRoles)
	case x < 19:
		w.def = escPick(r, w.projSubjects())
	default:
		w.def = "role:ghost"
	}

	// Reset the server to it: no project lines while the mode changes, no
	// accounts of the last world.
	if h.roledProjs {
		for _, p := range escProjects {
			h.must(w, "PUT", "/api/v1/projects/"+p, gatehouse.Project{Name: p}, nil)
		}
	}
	for _, a := range h.prevAccounts {
		if s, b := h.req("DELETE", "/api/v1/account/"+a, h.e.admin, nil); s != 200 && s != 404 {
			h.t.Fatalf("delete account %s: %d %s", a, s, b)
		}
	}
	h.prevAccounts = slices.Clone(w.order)
	// admin's groups live across worlds: start each world with none.
	if g, _ := h.getAccount(gatehouse.AdminAccount); len(g) > 0 {
		h.must(w, "PATCH", "/api/v1/account/admin", gatehouse.AccountPatch{Groups: &[]string{}}, nil)
	}
	w.accounts[gatehouse.AdminAccount] = []string{}
	h.must(w, "PUT", "/api/v1/settings/rbac", gatehouse.RBAC{PolicyCSV: strings.Join(w.csv, "\n"), PolicyDefault: w.def, MatchMode: w.mode()}, nil)
	for _, a := range w.order {
		h.must(w, "POST", "/api/v1/account", gatehouse.AccountCreate{Name: a, Capabilities: []gatehouse.Capability{gatehouse.CapAPIKey}, Groups: w.accounts[a]}, nil)
	}
	h.roledProjs = false
	for _, p := range escProjects {
		if len(w.projects[p]) == 0 {
			continue
		}
		h.roledProjs = true
		pr := gatehouse.Project{Name: p, Roles: w.projects[p]}
		s, b := h.req("PUT", "/api/v1/projects/"+p, h.e.admin, pr)
		if s == 400 && hostile[p] {
			// Refusing a line that reaches outside the project at save
			// time is one way to keep the promise; keep the others.
			h.hostileRefused++
			for i := range pr.Roles {
				pr.Roles[i].Policies = slices.DeleteFunc(slices.Clone(pr.Roles[i].Policies), func(l string) bool { return strings.Contains(l, "|") })
			}
			w.projects[p] = pr.Roles
			s, b = h.req("PUT", "/api/v1/projects/"+p, h.e.admin, pr)
		}
		if s != 200 {
			h.t.Fatalf("setup PUT project %s: %d %s\n%s", p, s, b, w.describe())
		}
	}
	w.rebuild()

	// Tokens: an unscoped one per account, some scoped ones, a role token
	// per role.
	for _, a := range w.order {
		h.adminMint(w, a, nil)
		for range r.IntN(3) {
			h.mintScoped(w, a)
		}
	}
	for _, p := range escProjects {
		for _, role := range w.projects[p] {
			var nt gatehouse.NewToken
			h.must(w, "POST", "/api/v1/projects/"+p+"/roles/"+role.Name+"/token", gatehouse.TokenRequest{Name: "ci"}, &nt)
			h.remember(nt.Token)
			w.tokens = append(w.tokens, &escToken{raw: nt.Token, project: p, role: role.Name})
		}
	}
	return w
}

func (h *escHarness) adminMint(w *escWorld, account string, scopes []gatehouse.Scope) {
	var nt gatehouse.NewToken
	h.must(w, "POST", "/api/v1/account/"+account+"/token", gatehouse.TokenRequest{Name: "t", Scopes: scopes}, &nt)
	h.remember(nt.Token)
	w.tokens = append(w.tokens, &escToken{raw: nt.Token, account: account, scopes: scopes})
}

// mintScoped has admin mint a token for account with random scopes, most
// of them held by the account; one it does not hold must be refused.
func (h *escHarness) mintScoped(w *escWorld, account string) {
	var scopes []gatehouse.Scope
	want := escYes
	for range 1 + w.rng.IntN(3) {
		sc := w.randomScope()
		hs := w.held(account, w.admin, sc)
		if hs == escNo && w.rng.IntN(4) != 0 {
			continue // mostly scopes the owner holds
		}
		scopes = append(scopes, sc)
		want = want.and(hs)
	}
	if len(scopes) == 0 {
		return
	}
	h.mintAttempt(w, w.admin, account, scopes, escYes, want)
}

// ---------------------------------------------------------------------
// Steps: grant changes and mints attempted by random callers.

func (w *escWorld) caller() *escToken {
	if w.rng.IntN(25) == 0 {
		return w.admin
	}
	return escPick(w.rng, w.tokens)
}

// callerWith is a random caller, half the time one that holds what need
// asks (when one is found), so that permitted changes are tried as often
// as refused ones.
func (w *escWorld) callerWith(need func(*escToken) escSet) *escToken {
	if w.rng.IntN(2) == 0 {
		for range 12 {
			if t := escPick(w.rng, w.tokens); need(t) == escYes {
				return t
			}
		}
	}
	return w.caller()
}

func escSameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	sort.Strings(a)
	sort.Strings(b)
	return slices.Equal(slices.Compact(a), slices.Compact(b))
}

// getAccount reads an account back as admin: its groups, or nil if absent.
func (h *escHarness) getAccount(name string) ([]string, bool) {
	s, b := h.req("GET", "/api/v1/account/"+name, h.e.admin, nil)
	if s == 404 {
		return nil, false
	}
	var a gatehouse.Account
	if s != 200 || json.Unmarshal(b, &a) != nil {
		h.t.Fatalf("get account %s: %d %s", name, s, b)
	}
	return a.Groups, true
}

// grantCheck judges a grant change: want is whether it may succeed,
// status the answer, changed whether the state changed, and refusal
// whether a refusal must be 400 exactly.
func (h *escHarness) grantCheck(w *escWorld, what string, want escSet, status int, changed, stateOK bool, body []byte, reason func() string) {
	h.cases++
	h.grants++
	w.dirty = w.dirty || changed
	desc := fmt.Sprintf("%s: %d %s", what, status, bytes.TrimSpace(body))
	switch {
	case status == 200 && !want.yes():
		h.fail(w, "grant change allowed: "+reason(), desc)
	case escRefused(status) && !want.no():
		h.fail(w, "grant change refused that the semantics allow", desc)
	case status != 200 && !escRefused(status):
		h.fail(w, "grant change: unexpected status", desc)
	}
	switch {
	case status == 200 && !stateOK:
		h.fail(w, "grant change answered 200 but the state is not what was asked", desc)
	case status != 200 && changed:
		h.fail(w, "grant change refused but the state changed anyway", desc)
	}
}

func (h *escHarness) stepPatchGroups(w *escWorld) {
	target := escPick(w.rng, w.order)
	if w.rng.IntN(12) == 0 {
		target = gatehouse.AdminAccount
	}
	c := w.callerWith(func(t *escToken) escSet {
		return w.can(t, "accounts", "update", target).and(w.can(t, "settings", "update", "rbac"))
	})
	if c.account != "" && c.account != gatehouse.AdminAccount && w.rng.IntN(3) == 0 {
		target = c.account // self-grant
	}
	groups, valid := w.randomGroups(true)
	canAcc := w.can(c, "accounts", "update", target)
	canRBAC := w.can(c, "settings", "update", "rbac")
	want := canAcc.and(canRBAC)
	old := w.accounts[target]
	if escSameSet(old, groups) {
		// Sending the groups an account already has grants nothing: a
		// server may take it without settings, update, rbac.
		want |= canAcc
	}
	if !valid {
		want = escNo
	}
	s, b := h.req("PATCH", "/api/v1/account/"+target, c.raw, gatehouse.AccountPatch{Groups: &groups})
	after, _ := h.getAccount(target)
	what := fmt.Sprintf("PATCH /api/v1/account/%s {groups: %q} by %s", target, groups, c)
	w.logf("%s -> %d", what, s)
	if !valid && canAcc.yes() && canRBAC.yes() && s == 403 && !canAcc.no() && !canRBAC.no() {
		h.fail(w, "prefixed group refused with 403, not 400", what)
	}
	h.grantCheck(w, what, want, s, !escSameSet(after, old), escSameSet(after, groups), b, func() string {
		switch {
		case !valid:
			return "an account's groups set to a role:/proj: name"
		case canAcc.yes() && !canRBAC.yes():
			return "an account's groups changed without settings, update, rbac"
		}
		return "an account's groups changed without accounts, update, <name>"
	})
	w.accounts[target] = after // follow the server, so later answers are judged on the real state
	w.rebuild()
}

func (h *escHarness) stepCreateAccount(w *escWorld) {
	var name string
	for _, n := range escFreshNames {
		if _, ok := w.accounts[n]; !ok {
			name = n
			break
		}
	}
	if name == "" {
		return
	}
	c := w.callerWith(func(t *escToken) escSet {
		return w.can(t, "accounts", "create", name).and(w.can(t, "settings", "update", "rbac"))
	})
	groups, valid := []string{}, true
	if w.rng.IntN(2) == 0 {
		groups, valid = w.randomGroups(true)
	}
	want := w.can(c, "accounts", "create", name)
	if len(groups) > 0 {
		want = want.and(w.can(c, "settings", "update", "rbac"))
	}
	if !valid {
		want = escNo
	}
	s, b := h.req("POST", "/api/v1/account", c.raw, gatehouse.AccountCreate{Name: name, Capabilities: []gatehouse.Capability{gatehouse.CapAPIKey}, Groups: groups})
	after, exists := h.getAccount(name)
	what := fmt.Sprintf("POST /api/v1/account {name: %s, groups: %q} by %s", name, groups, c)
	w.logf("%s -> %d", what, s)
	h.grantCheck(w, what, want, s, exists, exists && escSameSet(after, groups), b, func() string {
		switch {
		case !valid:
			return "an account created with a role:/proj: group"
		case len(groups) > 0 && w.can(c, "accounts", "create", name).yes():
			return "an account created with groups without settings, update, rbac"
		}
		return "an account created without accounts, create, <name>"
	})
	if exists {
		h.prevAccounts = append(h.prevAccounts, name)
		w.order = append(w.order, name)
		w.accounts[name] = after
		w.rebuild()
		h.adminMint(w, name, nil)
	}
}

// mintAttempt mints a token for account with caller's token and judges
// the answer: authorized is whether the caller may mint for the account
// at all, scopesOK whether the scopes are held.
func (h *escHarness) mintAttempt(w *escWorld, c *escToken, account string, scopes []gatehouse.Scope, authorized, scopesOK escSet) {
	s, b := h.req("POST", "/api/v1/account/"+account+"/token", c.raw, gatehouse.TokenRequest{Name: "m", Scopes: scopes})
	h.cases++
	h.mints++
	var sc []string
	for _, x := range scopes {
		sc = append(sc, "("+x.Resource+", "+x.Action+", "+x.Object+")")
	}
	what := fmt.Sprintf("mint for %s with scopes %s by %s", account, strings.Join(sc, " "), c)
	w.logf("%s -> %d", what, s)
	desc := fmt.Sprintf("%s: %d %s", what, s, bytes.TrimSpace(b))
	ok := authorized.and(scopesOK)
	switch {
	case s == 200 && !authorized.yes():
		h.fail(w, "mint allowed for an account the caller may not mint for", desc)
	case s == 200 && !ok.yes():
		h.fail(w, "mint allowed with a scope the owner or minter does not hold", desc)
	case escRefused(s) && !ok.no():
		h.fail(w, "mint refused that the semantics allow", desc)
	case s != 200 && !escRefused(s):
		h.fail(w, "mint: unexpected status", desc)
	}
	if s == 200 {
		var nt gatehouse.NewToken
		if err := json.Unmarshal(b, &nt); err != nil || nt.Token == "" {
			h.t.Fatalf("mint answer %s", b)
		}
		h.remember(nt.Token)
		w.tokens = append(w.tokens, &escToken{raw: nt.Token, account: account, scopes: scopes})
	}
}

func (h *escHarness) stepMint(w *escWorld) {
	c := w.caller()
	target := escPick(w.rng, w.order)
	if c.account != "" && w.rng.IntN(2) == 0 {
		target = c.account
	}
	var scopes []gatehouse.Scope
	scopesOK := escYes
	for range w.rng.IntN(3) {
		sc := w.randomScope()
		scopes = append(scopes, sc)
		scopesOK = scopesOK.and(w.held(target, c, sc))
	}
	authorized := w.can(c, "accounts", "update", target)
	if c.project == "" && c.account == target && len(c.scopes) == 0 {
		authorized = escYes // self-service
	}
	h.mintAttempt(w, c, target, scopes, authorized, scopesOK)
}

// getProject reads a project's roles back as admin.
func (h *escHarness) getProject(p string) []gatehouse.ProjectRole {
	s, b := h.req("GET", "/api/v1/projects/"+p, h.e.admin, nil)
	var pr gatehouse.Project
	if s != 200 || json.Unmarshal(b, &pr) != nil {
		h.t.Fatalf("get project %s: %d %s", p, s, b)
	}
	return pr.Roles
}

// escSameRoles compares roles, policy lines field by field.
func escSameRoles(a, b []gatehouse.ProjectRole) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Name != b[i].Name || !escSameSet(a[i].Groups, b[i].Groups) || len(a[i].Policies) != len(b[i].Policies) {
			return false
		}
		for j := range a[i].Policies {
			if !slices.Equal(escFields(a[i].Policies[j]), escFields(b[i].Policies[j])) {
				return false
			}
		}
	}
	return true
}

func (h *escHarness) stepEditProject(w *escWorld) {
	p := escPick(w.rng, escProjects)
	c := w.callerWith(func(t *escToken) escSet { return w.can(t, "projects", "update", p) })
	roles, valid, hostile := w.randomRoles(p, true)
	if w.rng.IntN(6) == 0 {
		roles, valid, hostile = []gatehouse.ProjectRole{}, true, false // remove every role
	}
	want := w.can(c, "projects", "update", p)
	if !valid {
		want = escNo
	}
	if hostile {
		want |= escNo // a save-time refusal of a line reaching outside is fine
	}
	old := w.projects[p]
	s, b := h.req("PUT", "/api/v1/projects/"+p, c.raw, gatehouse.Project{Name: p, Roles: roles})
	after := h.getProject(p)
	what := fmt.Sprintf("PUT /api/v1/projects/%s roles %+v by %s", p, roles, c)
	w.logf("%s -> %d", what, s)
	if s == 400 && hostile && valid {
		h.hostileRefused++
	}
	if escRefused(s) && want == escYes && !w.ref.decide(escVariant{getOnly: true}, c.subject(), w.accounts[c.account], "projects", "update", p) {
		h.fail(w, "project change refused that the semantics allow (narrower than the semantics: (projects, update, P) through a proj:P:R line or to a role token)", what)
		want |= escNo
	}
	h.grantCheck(w, what, want, s, !escSameRoles(after, old), escSameRoles(after, roles), b, func() string {
		if !valid {
			return "a project role with a line or group the semantics refuse"
		}
		return "a project changed without projects, update, <project>"
	})
	w.projects[p] = after
	if len(after) > 0 {
		h.roledProjs = true
	}
	// Tokens of roles that are gone must be dead at once.
	var gone *escToken
	w.tokens = slices.DeleteFunc(w.tokens, func(t *escToken) bool {
		if t.project != p {
			return false
		}
		for _, r := range after {
			if r.Name == t.role {
				return false
			}
		}
		gone = t
		return true
	})
	if gone != nil {
		s, b := h.req("GET", escCanIPath("projects", "get", p), gone.raw, nil)
		h.cases++
		if s != 401 {
			h.fail(w, "role token alive after its role was deleted", fmt.Sprintf("%s: %d %s", gone, s, b))
		}
	}
	w.rebuild()
}

func (h *escHarness) stepEditRBAC(w *escWorld) {
	c := w.callerWith(func(t *escToken) escSet { return w.can(t, "settings", "update", "rbac") })
	csv := slices.Clone(w.csv)
	def := w.def
	switch x := w.rng.IntN(6); {
	case x < 2 && c.account != "" && c.account != gatehouse.AdminAccount:
		// The classic: grant oneself everything.
		csv = append(csv, escPick(w.rng, []string{"g, " + c.account + ", role:admin", "p, " + c.account + ", " + w.pat([]string{"*"}, []string{".*"}) + ", " + w.pat([]string{"*"}, []string{".*"}) + ", " + w.pat([]string{"*"}, []string{".*"}) + ", allow"}))
	case x < 4:
		csv = append(csv, w.randomLine(w.order))
	case x < 5 && len(csv) > 0:
		i := w.rng.IntN(len(csv))
		csv = slices.Delete(csv, i, i+1)
	default:
		def = escPick(w.rng, []string{"", "role:readonly", escPick(w.rng, escRoles)})
	}
	want := w.can(c, "settings", "update", "rbac")
	rb := gatehouse.RBAC{PolicyCSV: strings.Join(csv, "\n"), PolicyDefault: def, MatchMode: w.mode()}
	oldCSV := strings.Join(w.csv, "\n")
	s, b := h.req("PUT", "/api/v1/settings/rbac", c.raw, rb)
	var after gatehouse.RBAC
	if s2, b2 := h.req("GET", "/api/v1/settings/rbac", h.e.admin, nil); s2 != 200 || json.Unmarshal(b2, &after) != nil {
		h.t.Fatalf("get rbac: %d %s", s2, b2)
	}
	what := fmt.Sprintf("PUT /api/v1/settings/rbac {policyCSV: %q, policyDefault: %q} by %s", rb.PolicyCSV, def, c)
	w.logf("%s -> %d", what, s)
	changed := after.PolicyCSV != oldCSV || after.PolicyDefault != w.def
	asked := after.PolicyCSV == rb.PolicyCSV && after.PolicyDefault == def
	h.grantCheck(w, what, want, s, changed, asked, b, func() string { return "the RBAC policy replaced without settings, update, rbac" })
	w.csv = nil
	for _, l := range strings.Split(after.PolicyCSV, "\n") {
		if strings.TrimSpace(l) != "" {
			w.csv = append(w.csv, l)
		}
	}
	w.def = after.PolicyDefault
	w.rebuild()
}

func (h *escHarness) stepMintRole(w *escWorld) {
	p := escPick(w.rng, escProjects)
	c := w.callerWith(func(t *escToken) escSet { return w.can(t, "projects", "update", p) })
	if len(w.projects[p]) == 0 {
		return
	}
	role := escPick(w.rng, w.projects[p]).Name
	want := w.can(c, "projects", "update", p)
	s, b := h.req("POST", "/api/v1/projects/"+p+"/roles/"+role+"/token", c.raw, gatehouse.TokenRequest{Name: "r"})
	h.cases++
	h.mints++
	what := fmt.Sprintf("mint role token proj:%s:%s by %s", p, role, c)
	w.logf("%s -> %d", what, s)
	desc := fmt.Sprintf("%s: %d %s", what, s, bytes.TrimSpace(b))
	switch {
	case s == 200 && !want.yes():
		h.fail(w, "role token minted without projects, update, <project>", desc)
	case s == 403 && !want.no():
		kind := "role token mint refused that the semantics allow"
		if !w.ref.decide(escVariant{getOnly: true}, c.subject(), w.accounts[c.account], "projects", "update", p) {
			kind += " (narrower than the semantics: (projects, update, P) through a proj:P:R line or to a role token)"
		}
		h.fail(w, kind, desc)
	case s != 200 && s != 403:
		h.fail(w, "role token mint: unexpected status", desc)
	}
	if s == 200 {
		var nt gatehouse.NewToken
		if err := json.Unmarshal(b, &nt); err != nil || nt.Token == "" {
			h.t.Fatalf("mint answer %s", b)
		}
		h.remember(nt.Token)
		w.tokens = append(w.tokens, &escToken{raw: nt.Token, project: p, role: role})
	}
}

// runWorld sets a world up and runs its steps.
func (h *escHarness) runWorld(seed uint64) {
	w := h.newWorld(seed)
	h.worlds++
	h.batch(w, nil, 60)
	for range 8 + w.rng.IntN(7) {
		before := escSnapshot{w.ref, maps.Clone(w.accounts)}
		switch x := w.rng.IntN(100); {
		case x < 25:
			h.stepPatchGroups(w)
		case x < 35:
			h.stepCreateAccount(w)
		case x < 55:
			h.stepMint(w)
		case x < 72:
			h.stepEditProject(w)
		case x < 85:
			h.stepEditRBAC(w)
		default:
			h.stepMintRole(w)
		}
		h.batch(w, &before, 30)
	}
}

// checkAllSecrets is the harness's leak check for every token the
// property test minted, done in one pass: every token body is 71
// base64url characters, so only runs of such characters can hold one.
func (h *escHarness) checkAllSecrets() {
	want := map[string]bool{}
	for _, s := range h.secrets {
		if _, body, ok := strings.Cut(s, ":"); ok && len(body) > 40 {
			want[body] = true
		}
	}
	if len(want) == 0 {
		return
	}
	n := 0
	for b := range want {
		n = len(b)
		break
	}
	hay := map[string][]byte{"the log": h.e.logs.Bytes()}
	files, _ := filepath.Glob(h.e.dbPath + "*")
	for _, f := range files {
		if b, err := os.ReadFile(f); err == nil {
			hay[filepath.Base(f)] = b
		}
	}
	isB64 := func(c byte) bool {
		return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_'
	}
	for name, b := range hay {
		for i := 0; i < len(b); {
			if !isB64(b[i]) {
				i++
				continue
			}
			j := i
			for j < len(b) && isB64(b[j]) {
				j++
			}
			for k := i; k+n <= j; k++ {
				if want[string(b[k:k+n])] {
					h.t.Errorf("%s contains a token the property test minted", name)
					return
				}
			}
			i = j
		}
	}
}

func TestEscalationProperty(t *testing.T) {
	target := 100_000
	if testing.Short() {
		target = 4_000
	}
	if v := os.Getenv("GATEHOUSE_ESCALATION_CASES"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			t.Fatalf("GATEHOUSE_ESCALATION_CASES: %v", err)
		}
		target = n
	}
	var h *escHarness
	// Registered first, so it runs last: after the server is closed and
	// the audit queue flushed.
	t.Cleanup(func() {
		if h != nil {
			h.checkAllSecrets()
		}
	})
	e := newEnv(t)
	h = newEscHarness(t, e)
	start := time.Now()

	// The projects and applications every world shares.
	for _, p := range escProjects {
		e.call("POST", "/api/v1/projects", e.admin, gatehouse.Project{Name: p}, 200, nil)
	}
	for _, name := range slices.Sorted(maps.Keys(escApps)) {
		p := escApps[name]
		e.call("POST", "/api/v1/applications", e.admin, gatehouse.Application{Name: name, Project: p, Spec: gatehouse.AppSpec{
			RepoURL: "https://git.example/" + p + ".git", Path: "deploy",
			Destination: gatehouse.AppDestination{Server: "https://kubernetes.default.svc", Namespace: p},
		}}, 200, nil)
	}

	if v := os.Getenv("GATEHOUSE_ESCALATION_WORLD"); v != "" {
		seed, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			t.Fatalf("GATEHOUSE_ESCALATION_WORLD: %v", err)
		}
		h.runWorld(seed)
	} else {
		master := rand.New(rand.NewPCG(escSeed1, escSeed2))
		for h.cases < target {
			h.runWorld(master.Uint64())
		}
	}

	t.Logf("escalation property: %d cases (%d can-i, %d real requests, %d grant changes, %d mints) in %d worlds, seed %#x/%#x, %v",
		h.cases, h.canI, h.real, h.grants, h.mints, h.worlds, uint64(escSeed1), uint64(escSeed2), time.Since(start).Round(time.Millisecond))
	t.Logf("escalation property: can-i reference answers: %d yes, %d no, %d open (either accepted); %d asked right after the step that changed them; %d hostile project lines refused at save",
		h.yes, h.no, h.open, h.changed, h.hostileRefused)
	if len(h.fails) > 0 {
		kinds := slices.Sorted(maps.Keys(h.fails))
		var b strings.Builder
		for _, k := range kinds {
			fmt.Fprintf(&b, "  %6d × %s\n", h.fails[k], k)
		}
		t.Errorf("escalation property: failures by kind:\n%s", b.String())
		if os.Getenv("GATEHOUSE_ESCALATION_FIRSTS") != "" {
			for _, k := range kinds {
				t.Logf("FIRST %s\n  %s", k, h.firsts[k])
			}
		}
	}
}

// ---------------------------------------------------------------------
// Regressions for the breaks of issue 11 items 3 and 4, each on its own.

// escServiceAccount creates a service account (apiKey only) as admin and
// returns an unscoped token minted for it by admin.
func escServiceAccount(e *env, name string, groups ...string) string {
	e.t.Helper()
	e.call("POST", "/api/v1/account", e.admin, gatehouse.AccountCreate{
		Name: name, Capabilities: []gatehouse.Capability{gatehouse.CapAPIKey}, Groups: groups,
	}, 200, nil)
	return e.mint(e.admin, name, gatehouse.TokenRequest{Name: "t"}).Token
}

// escCanI asks can-i with tok.
func escCanI(e *env, tok, res, act, obj string) string {
	e.t.Helper()
	var out gatehouse.CanI
	e.call("GET", escCanIPath(res, act, obj), tok, nil, 200, &out)
	return out.Value
}

func escGroupsOf(e *env, name string) []string {
	e.t.Helper()
	var a gatehouse.Account
	e.call("GET", "/api/v1/account/"+name, e.admin, nil, 200, &a)
	return a.Groups
}

// escTeams creates projects team-a and team-b with applications web
// (team-a) and api (team-b).
func escTeams(e *env) {
	e.t.Helper()
	for _, p := range []string{"team-a", "team-b"} {
		e.call("POST", "/api/v1/projects", e.admin, gatehouse.Project{Name: p}, 200, nil)
	}
	for name, p := range map[string]string{"web": "team-a", "api": "team-b"} {
		e.call("POST", "/api/v1/applications", e.admin, gatehouse.Application{Name: name, Project: p, Spec: gatehouse.AppSpec{
			RepoURL: "https://git.example/" + p + ".git", Path: "deploy",
			Destination: gatehouse.AppDestination{Server: "https://kubernetes.default.svc", Namespace: p},
		}}, 200, nil)
	}
}

// escRefusedApp: a request on an application the caller may not act on is
// refused, 403 or 404 (the two may not be told apart).
func escRefusedApp(t *testing.T, e *env, method, path, tok string, body any) {
	t.Helper()
	if s, b := e.do(method, path, tok, body); s != 403 && s != 404 {
		t.Errorf("%s %s: %d %s, want 403 or 404", method, path, s, b)
	}
}

// Issue 11 item 3: PATCH carol {"groups":["role:admin"]} by a caller with
// only accounts, update, carol made carol an admin.
func TestEscalationCarolRoleAdminViaPatch(t *testing.T) {
	e := newEnv(t)
	e.setPolicy(strings.Join([]string{
		"p, role:carol-manager, accounts, update, carol, allow",
		"p, role:carol-manager, accounts, get, carol, allow",
		"g, mallory, role:carol-manager",
		"g, ops, role:admin", // a group that is bound to admin, legitimately
		"p, role:rbac-admin, settings, update, rbac, allow",
		"g, rita, role:rbac-admin",
		"g, rita, role:carol-manager",
	}, "\n"), "")
	carol := escServiceAccount(e, "carol")
	mallory := escServiceAccount(e, "mallory")
	rita := escServiceAccount(e, "rita") // holds accounts, update, carol and settings, update, rbac

	for _, groups := range [][]string{{"role:admin"}, {"role:readonly"}, {"proj:team-a:deployer"}, {"ops"}, {"devs", "role:admin"}} {
		s, b := e.do("PATCH", "/api/v1/account/carol", mallory, gatehouse.AccountPatch{Groups: &groups})
		if s != 400 && s != 403 {
			t.Errorf("PATCH carol groups %q by mallory (accounts, update, carol only): %d %s, want 403 or 400", groups, s, b)
		}
		if g := escGroupsOf(e, "carol"); len(g) != 0 {
			t.Fatalf("after a refused PATCH carol has groups %q", g)
		}
		for _, q := range [][3]string{{"settings", "update", "rbac"}, {"accounts", "delete", "mallory"}, {"applications", "delete", "team-b/api"}} {
			if v := escCanI(e, carol, q[0], q[1], q[2]); v != "no" {
				t.Errorf("after PATCH carol groups %q: carol can-i %v = %s", groups, q, v)
			}
		}
	}
	// Creating an account with groups is the same grant.
	mallory2 := []string{"p, role:creator, accounts, create, *, allow", "g, mallory, role:creator"}
	e.setPolicy(strings.Join(append(mallory2, "g, ops, role:admin"), "\n"), "")
	for _, groups := range [][]string{{"role:admin"}, {"ops"}} {
		s, b := e.do("POST", "/api/v1/account", mallory, gatehouse.AccountCreate{Name: "eve", Capabilities: []gatehouse.Capability{gatehouse.CapAPIKey}, Groups: groups})
		if s != 400 && s != 403 {
			t.Errorf("create eve with groups %q by mallory (accounts, create only): %d %s, want 403 or 400", groups, s, b)
		}
		if s := e.status("GET", "/api/v1/account/eve", e.admin, nil); s != 404 {
			t.Fatalf("after a refused create, GET eve: %d, want 404", s)
		}
	}
	// A caller with every right still may not use a role name as a group
	// (400), but may bind carol to a group: that is an RBAC change it may make.
	e.setPolicy(strings.Join([]string{
		"p, role:carol-manager, accounts, update, carol, allow",
		"g, ops, role:admin",
		"p, role:rbac-admin, settings, update, rbac, allow",
		"g, rita, role:rbac-admin",
		"g, rita, role:carol-manager",
	}, "\n"), "")
	for _, groups := range [][]string{{"role:admin"}, {"proj:team-a:deployer"}, {"ok", "role:readonly"}} {
		if s, b := e.do("PATCH", "/api/v1/account/carol", rita, gatehouse.AccountPatch{Groups: &groups}); s != 400 {
			t.Errorf("PATCH carol groups %q by rita (may update carol and the RBAC): %d %s, want 400", groups, s, b)
		}
	}
	e.call("PATCH", "/api/v1/account/carol", rita, gatehouse.AccountPatch{Groups: &[]string{"ops"}}, 200, nil)
	if v := escCanI(e, carol, "settings", "update", "rbac"); v != "yes" {
		t.Errorf("a permitted grant does not take effect on the next request: %s", v)
	}
}

// Issue 11 item 3: a caller with accounts, update, erin (erin herself)
// gave erin role:admin and then minted an erin token.
func TestEscalationErinSelfGrantThenMint(t *testing.T) {
	e := newEnv(t)
	e.setPolicy(strings.Join([]string{
		"p, role:self, accounts, update, erin, allow",
		"p, role:self, accounts, get, erin, allow",
		"p, role:self, applications, get, team-a/*, allow",
		"g, erin, role:self",
		"g, ops, role:admin",
	}, "\n"), "")
	erin := escServiceAccount(e, "erin")
	escServiceAccount(e, "carol")
	for _, groups := range [][]string{{"role:admin"}, {"ops"}, {"proj:team-b:deployer"}} {
		s, b := e.do("PATCH", "/api/v1/account/erin", erin, gatehouse.AccountPatch{Groups: &groups})
		if s != 400 && s != 403 {
			t.Errorf("self-grant PATCH erin groups %q: %d %s, want 403 or 400", groups, s, b)
		}
	}
	if g := escGroupsOf(e, "erin"); len(g) != 0 {
		t.Fatalf("erin's groups after refused self-grants: %q", g)
	}
	// Then mint: a fresh token of erin carries only erin's permissions.
	fresh := e.mint(erin, "erin", gatehouse.TokenRequest{Name: "after"}).Token
	for _, q := range [][3]string{{"settings", "update", "rbac"}, {"accounts", "update", "carol"}, {"accounts", "create", "eve"}, {"applications", "get", "team-b/api"}} {
		if v := escCanI(e, fresh, q[0], q[1], q[2]); v != "no" {
			t.Errorf("erin's fresh token can-i %v = %s", q, v)
		}
	}
	if v := escCanI(e, fresh, "applications", "get", "team-a/web"); v != "yes" {
		t.Errorf("erin's fresh token lost what erin holds: can-i applications get team-a/web = %s", v)
	}
	if s := e.status("PUT", "/api/v1/settings/rbac", fresh, gatehouse.RBAC{PolicyCSV: "g, erin, role:admin"}); s != 403 {
		t.Errorf("erin replaces the RBAC policy: %d, want 403", s)
	}
	// Scopes cannot claim more than erin holds, nor can erin mint for carol.
	for _, sc := range []gatehouse.Scope{{Resource: "*", Action: "*", Object: "*"}, {Resource: "settings", Action: "update", Object: "rbac"}, {Resource: "applications", Action: "get", Object: "team-b/*"}} {
		if s, b := e.do("POST", "/api/v1/account/erin/token", erin, gatehouse.TokenRequest{Name: "wide", Scopes: []gatehouse.Scope{sc}}); s != 400 {
			t.Errorf("erin mints herself a token scoped to %+v: %d %s, want 400", sc, s, b)
		}
	}
	if s, b := e.do("POST", "/api/v1/account/carol/token", erin, gatehouse.TokenRequest{Name: "x"}); s != 403 {
		t.Errorf("erin mints for carol: %d %s, want 403", s, b)
	}
}

// Issue 11 item 4: in regex mode a project admin saved
// "p, proj:team-a:deployer, applications, .*, team-a/.*|team-b/.*, allow",
// bound himself through the role's groups and read and synced team-b.
func TestEscalationRegexProjectEscape(t *testing.T) {
	for _, bind := range []struct{ name, group string }{{"group", "team-a-deployers"}, {"account name", "mallory"}} {
		for _, object := range []string{"team-a/.*|team-b/.*", "team-a/.*)|(.*", "team-a/x|.*"} {
			t.Run(bind.name+" "+object, func(t *testing.T) {
				e := newEnv(t)
				e.call("PUT", "/api/v1/settings/rbac", e.admin, gatehouse.RBAC{MatchMode: "regex", PolicyCSV: strings.Join([]string{
					"p, role:team-a-admin, projects, .*, team-a, allow",
					"p, role:team-a-admin, applications, .*, team-a/.*, allow",
					"g, mallory, role:team-a-admin",
				}, "\n")}, 200, nil)
				escTeams(e)
				mallory := escServiceAccount(e, "mallory", "team-a-deployers")
				line := "p, proj:team-a:deployer, applications, .*, " + object + ", allow"
				s, b := e.do("PUT", "/api/v1/projects/team-a", mallory, gatehouse.Project{Name: "team-a", Roles: []gatehouse.ProjectRole{{
					Name: "deployer", Policies: []string{line}, Groups: []string{bind.group},
				}}})
				switch s {
				case 400: // refusing the line at save time also keeps the promise
					return
				case 200:
				default:
					t.Fatalf("PUT team-a with %q: %d %s", line, s, b)
				}
				role := e.mint(e.admin, "mallory", gatehouse.TokenRequest{Name: "again"}).Token // the owner's permissions now
				var nt gatehouse.NewToken
				e.call("POST", "/api/v1/projects/team-a/roles/deployer/token", mallory, gatehouse.TokenRequest{Name: "ci"}, 200, &nt)
				e.remember(nt.Token)
				for _, tok := range []struct{ name, tok string }{{"mallory", mallory}, {"mallory's new token", role}, {"the role token", nt.Token}} {
					for _, q := range [][3]string{{"applications", "get", "team-b/api"}, {"applications", "sync", "team-b/api"}, {"applications", "delete", "team-b/x"}, {"applications", "get", "team-b"}} {
						if v := escCanI(e, tok.tok, q[0], q[1], q[2]); v != "no" {
							t.Errorf("%s can-i %v = %s after %q", tok.name, q, v, line)
						}
					}
					escRefusedApp(t, e, "GET", "/api/v1/applications/api", tok.tok, nil)
					escRefusedApp(t, e, "POST", "/api/v1/applications/api/sync", tok.tok, gatehouse.SyncRequest{})
				}
				// Inside the project the role still works.
				if v := escCanI(e, nt.Token, "applications", "sync", "team-a/web"); v != "yes" {
					t.Errorf("role token can-i sync team-a/web = %s", v)
				}
			})
		}
	}
}

// A global CSV line with a proj: subject and a glob * object must not
// reach outside the project, for the role token nor for accounts and
// groups bound to the role (through a g line or the role's groups).
func TestEscalationGlobalProjLineGlobStar(t *testing.T) {
	e := newEnv(t)
	escTeams(e)
	e.call("PUT", "/api/v1/projects/team-a", e.admin, gatehouse.Project{Name: "team-a", Roles: []gatehouse.ProjectRole{{
		Name: "viewer", Policies: []string{"p, proj:team-a:viewer, applications, get, team-a/*, allow"}, Groups: []string{"auditors"},
	}}}, 200, nil)
	e.setPolicy(strings.Join([]string{
		"p, proj:team-a:viewer, applications, *, *, allow",
		"p, proj:team-a:viewer, *, *, *, allow",
		"g, alice, proj:team-a:viewer",
		"g, viewers, proj:team-a:viewer",
	}, "\n"), "")
	alice := escServiceAccount(e, "alice")
	bob := escServiceAccount(e, "bob", "auditors")
	carol := escServiceAccount(e, "carol", "viewers")
	var nt gatehouse.NewToken
	e.call("POST", "/api/v1/projects/team-a/roles/viewer/token", e.admin, gatehouse.TokenRequest{Name: "ci"}, 200, &nt)
	e.remember(nt.Token)
	for _, tok := range []struct{ name, tok string }{{"alice (g line)", alice}, {"bob (role group)", bob}, {"carol (group in a g line)", carol}, {"the role token", nt.Token}} {
		for _, q := range [][3]string{
			{"applications", "get", "team-b/api"}, {"applications", "sync", "team-b/api"}, {"applications", "get", "team-ab/x"},
			{"projects", "get", "team-b"}, {"projects", "delete", "team-b"}, {"accounts", "get", "bob"}, {"accounts", "update", "team-a/x"},
			{"settings", "update", "rbac"}, {"audit", "get", "*"}, {"applications", "get", "*"},
		} {
			if v := escCanI(e, tok.tok, q[0], q[1], q[2]); v != "no" {
				t.Errorf("%s can-i %v = %s", tok.name, q, v)
			}
		}
		for _, q := range [][3]string{{"applications", "get", "team-a/web"}, {"applications", "sync", "team-a/web"}, {"projects", "get", "team-a"}} {
			if v := escCanI(e, tok.tok, q[0], q[1], q[2]); v != "yes" {
				t.Errorf("%s can-i %v = %s, want yes (inside the project)", tok.name, q, v)
			}
		}
		escRefusedApp(t, e, "GET", "/api/v1/applications/api", tok.tok, nil)
		escRefusedApp(t, e, "POST", "/api/v1/applications/api/sync", tok.tok, gatehouse.SyncRequest{})
		if s := e.status("GET", "/api/v1/applications/web", tok.tok, nil); s != 200 {
			t.Errorf("%s GET team-a/web: %d", tok.name, s)
		}
	}
}

// Found by TestEscalationProperty: a deny line for one project must hold on
// every application endpoint, also when the caller may act on
// applications "anywhere" (the */<name> check that hides whether an
// application exists must not decide an allowed request).
func TestEscalationDenyLineHoldsOnApplicationEndpoints(t *testing.T) {
	e := newEnv(t)
	escTeams(e)
	e.setPolicy(strings.Join([]string{
		"p, role:dev, applications, *, *, allow",
		"p, role:dev, applications, *, team-b/*, deny",
		"g, mallory, role:dev",
	}, "\n"), "")
	mallory := escServiceAccount(e, "mallory")
	for _, act := range []string{"get", "sync", "update", "delete"} {
		if v := escCanI(e, mallory, "applications", act, "team-b/api"); v != "no" {
			t.Errorf("can-i applications %s team-b/api = %s", act, v)
		}
	}
	escRefusedApp(t, e, "GET", "/api/v1/applications/api", mallory, nil)
	escRefusedApp(t, e, "POST", "/api/v1/applications/api/sync", mallory, gatehouse.SyncRequest{})
	escRefusedApp(t, e, "GET", "/api/v1/applications/api/operations", mallory, nil)
	escRefusedApp(t, e, "PUT", "/api/v1/applications/api/status", mallory, gatehouse.StatusReport{Sync: "Synced", Health: "Healthy"})
	escRefusedApp(t, e, "PUT", "/api/v1/applications/api", mallory, gatehouse.Application{Name: "api", Project: "team-b", Spec: gatehouse.AppSpec{
		RepoURL: "https://git.example/evil.git", Path: "deploy",
		Destination: gatehouse.AppDestination{Server: "https://kubernetes.default.svc", Namespace: "team-b"},
	}})
	escRefusedApp(t, e, "DELETE", "/api/v1/applications/api", mallory, nil)
	if s := e.status("GET", "/api/v1/applications/api", e.admin, nil); s != 200 {
		t.Fatalf("team-b/api is gone after mallory's DELETE: %d", s)
	}
	if s := e.status("GET", "/api/v1/applications/web", mallory, nil); s != 200 {
		t.Errorf("GET team-a/web (allowed): %d", s)
	}
}
