package policy

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
)

func newEngine(t testing.TB, cfg Config) *Engine {
	t.Helper()
	e, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return e
}

// request is one question and its expected answer.
type request struct {
	subject                  string
	groups                   []string
	resource, action, object string
	want                     bool
	rule                     string
}

func (r request) String() string {
	return fmt.Sprintf("(%s %v, %s, %s, %s)", r.subject, r.groups, r.resource, r.action, r.object)
}

func TestDecisions(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		reqs []request
	}{
		{
			name: "built-in roles",
			cfg:  Config{CSV: "g, viewer, role:readonly"},
			reqs: []request{
				{"admin", nil, "applications", "delete", "shop/web", true, RuleSubject},
				{"admin", nil, "anything", "at-all", "x/y/z", true, RuleSubject},
				{"viewer", nil, "accounts", "get", "bob", true, RuleSubject},
				{"viewer", nil, "accounts", "update", "bob", false, RuleNoMatch},
				{"role:admin", nil, "settings", "update", "rbac", true, RuleSubject},
				{"stranger", nil, "applications", "get", "shop/web", false, RuleNoMatch},
			},
		},
		{
			name: "built-in turned off",
			cfg:  Config{CSV: "g, viewer, role:readonly", DisableBuiltin: true},
			reqs: []request{
				{"admin", nil, "applications", "get", "shop/web", false, RuleNoMatch},
				{"viewer", nil, "applications", "get", "shop/web", false, RuleNoMatch},
			},
		},
		{
			name: "deny beats allow, deny first",
			cfg: Config{CSV: "p, alice, applications, delete, shop/prod, deny\n" +
				"p, alice, applications, *, shop/*, allow"},
			reqs: []request{
				{"alice", nil, "applications", "delete", "shop/prod", false, RuleDeny},
				{"alice", nil, "applications", "delete", "shop/dev", true, RuleSubject},
			},
		},
		{
			name: "deny beats allow, deny last",
			cfg: Config{CSV: "p, alice, applications, *, shop/*, allow\n" +
				"p, alice, applications, delete, shop/prod, deny"},
			reqs: []request{
				{"alice", nil, "applications", "delete", "shop/prod", false, RuleDeny},
				{"alice", nil, "applications", "delete", "shop/dev", true, RuleSubject},
			},
		},
		{
			name: "deny in an inherited role beats the subject's allow",
			cfg: Config{CSV: "p, alice, applications, *, *, allow\n" +
				"g, alice, role:careful\n" +
				"p, role:careful, applications, delete, *, deny"},
			reqs: []request{
				{"alice", nil, "applications", "delete", "shop/web", false, RuleDeny},
				{"alice", nil, "applications", "sync", "shop/web", true, RuleSubject},
			},
		},
		{
			name: "default role allows whatever the user's lines deny",
			cfg: Config{DefaultRole: RoleReadonly, CSV: "p, alice, applications, get, *, deny\n" +
				"p, alice, applications, sync, shop/*, allow"},
			reqs: []request{
				{"alice", nil, "applications", "get", "shop/web", true, RuleDefaultRole},
				{"nobody", nil, "projects", "get", "shop", true, RuleDefaultRole},
				{"alice", nil, "applications", "sync", "shop/web", true, RuleSubject},
				{"nobody", nil, "applications", "sync", "shop/web", false, RuleNoMatch},
			},
		},
		{
			name: "a deny on the default role works, but only for the default role",
			cfg: Config{DefaultRole: "role:default", CSV: "p, role:default, applications, get, *, allow\n" +
				"p, role:default, applications, get, secret/*, deny\n" +
				"p, alice, applications, get, secret/*, allow"},
			reqs: []request{
				{"nobody", nil, "applications", "get", "shop/web", true, RuleDefaultRole},
				{"nobody", nil, "applications", "get", "secret/keys", false, RuleDeny},
				{"alice", nil, "applications", "get", "secret/keys", true, RuleSubject},
			},
		},
		{
			name: "default role with nested roles",
			cfg:  Config{DefaultRole: "role:base", CSV: "g, role:base, role:readonly"},
			reqs: []request{
				{"anyone", nil, "audit", "get", "*", true, RuleDefaultRole},
				{"anyone", nil, "audit", "delete", "*", false, RuleNoMatch},
			},
		},
		{
			name: "groups",
			cfg: Config{CSV: "p, devs, applications, get, *, allow\n" + // devs has no g line: ignored
				"g, ops, role:ops\n" +
				"p, role:ops, applications, sync, *, allow\n" +
				"p, ops, applications, delete, *, allow\n" + // a bound group's own lines count
				"g, qa, role:qa\n" +
				"p, role:qa, applications, sync, prod/*, deny\n" +
				"p, alice, applications, update, *, deny"},
			reqs: []request{
				{"alice", []string{"devs"}, "applications", "get", "shop/web", false, RuleNoMatch},
				{"alice", []string{"ops"}, "applications", "sync", "shop/web", true, RuleGroup},
				{"alice", []string{"ops"}, "applications", "delete", "shop/web", true, RuleGroup},
				{"alice", []string{"devs", "ops"}, "applications", "sync", "shop/web", true, RuleGroup},
				// Groups are decided one by one: qa's deny does not cancel ops's allow.
				{"alice", []string{"qa", "ops"}, "applications", "sync", "prod/web", true, RuleGroup},
				{"alice", []string{"qa"}, "applications", "sync", "prod/web", false, RuleDeny},
				// The subject's deny does not cancel a group's allow either (Argo CD).
				{"alice", []string{"ops"}, "applications", "update", "shop/web", false, RuleDeny},
				{"alice", []string{"role:ops"}, "applications", "sync", "shop/web", false, RuleNoMatch},
				{"bob", []string{"unknown"}, "applications", "sync", "shop/web", false, RuleNoMatch},
			},
		},
		{
			name: "subject deny and group allow",
			cfg: Config{CSV: "p, alice, applications, sync, *, deny\n" +
				"g, ops, role:ops\n" +
				"p, role:ops, applications, sync, *, allow"},
			reqs: []request{
				{"alice", []string{"ops"}, "applications", "sync", "shop/web", true, RuleGroup},
				{"alice", nil, "applications", "sync", "shop/web", false, RuleDeny},
			},
		},
		{
			name: "glob objects",
			cfg: Config{CSV: "p, any2, applications, get, */*\n" +
				"p, foo, applications, get, foo/*\n" +
				"p, obj, applications, get, */obj\n" +
				"p, q, applications, ?et, \"[a-c]?/{web,api}\""},
			reqs: []request{
				{"any2", nil, "applications", "get", "foo/bar", true, RuleSubject},
				{"any2", nil, "applications", "get", "foo", false, RuleNoMatch},
				{"foo", nil, "applications", "get", "foo/https://x/y.git", true, RuleSubject},
				{"foo", nil, "applications", "get", "foobar/x", false, RuleNoMatch},
				{"obj", nil, "applications", "get", "a/b/obj", true, RuleSubject},
				{"obj", nil, "applications", "get", "a/obj/b", false, RuleNoMatch},
				{"q", nil, "applications", "get", "b1/api", true, RuleSubject},
				{"q", nil, "applications", "set", "a1/web", true, RuleSubject},
				{"q", nil, "applications", "get", "d1/web", false, RuleNoMatch},
				{"q", nil, "applications", "get", "a1/db", false, RuleNoMatch},
			},
		},
		{
			name: "glob resources and actions",
			cfg:  Config{CSV: `p, alice, app*, "{get,sync}", *`},
			reqs: []request{
				{"alice", nil, "applications", "sync", "x", true, RuleSubject},
				{"alice", nil, "applications", "delete", "x", false, RuleNoMatch},
				{"alice", nil, "projects", "get", "x", false, RuleNoMatch},
			},
		},
		{
			name: "subjects match exactly",
			cfg:  Config{CSV: "p, ali*, applications, get, *\np, bob, applications, get, *"},
			reqs: []request{
				{"alice", nil, "applications", "get", "x", false, RuleNoMatch},
				{"ali*", nil, "applications", "get", "x", true, RuleSubject},
				{"Bob", nil, "applications", "get", "x", false, RuleNoMatch},
			},
		},
		{
			name: "nested roles",
			cfg: Config{CSV: "g, alice, role:a\ng, role:a, role:b\ng, role:b, role:c\n" +
				"p, role:c, applications, get, *\n" +
				"p, role:b, applications, delete, prod/*, deny\n" +
				"p, role:c, applications, delete, *"},
			reqs: []request{
				{"alice", nil, "applications", "get", "shop/web", true, RuleSubject},
				{"alice", nil, "applications", "delete", "shop/web", true, RuleSubject},
				{"alice", nil, "applications", "delete", "prod/web", false, RuleDeny},
				{"role:a", nil, "applications", "get", "x", true, RuleSubject},
				{"role:c", nil, "applications", "delete", "prod/web", true, RuleSubject},
			},
		},
		{
			name: "quoted fields",
			cfg:  Config{CSV: "p, \"role,admin\", applications, get, \"a,b/*\"\ng, alice, \"role,admin\""},
			reqs: []request{
				{"alice", nil, "applications", "get", "a,b/x", true, RuleSubject},
				{"alice", nil, "applications", "get", "a/x", false, RuleNoMatch},
			},
		},
		{
			name: "cycles in g lines",
			cfg: Config{CSV: "g, a, b\ng, b, c\ng, c, a\ng, d, d\ng, e, a\n" +
				"p, c, applications, get, *\np, a, applications, sync, *\np, d, applications, get, *"},
			reqs: []request{
				{"a", nil, "applications", "get", "x", true, RuleSubject},
				{"b", nil, "applications", "sync", "x", true, RuleSubject},
				{"e", nil, "applications", "get", "x", true, RuleSubject},
				{"d", nil, "applications", "get", "x", true, RuleSubject},
				{"a", nil, "applications", "delete", "x", false, RuleNoMatch},
				{"z", []string{"e"}, "applications", "sync", "x", true, RuleGroup},
			},
		},
		{
			name: "project subjects stay inside their project",
			cfg: Config{DefaultRole: RoleReadonly, CSV: "p, proj:shop:ci, applications, *, shop/*\n" +
				"p, proj:shop:ci, applications, *, *\n" + // lines cannot widen a project role
				"p, proj:shop:ci, projects, *, *\n" +
				"p, proj:shop:ci, accounts, *, *\n" +
				"g, proj:shop:ci, role:admin"},
			reqs: []request{
				{"proj:shop:ci", nil, "applications", "get", "shop/web", true, RuleDefaultRole},
				{"proj:shop:ci", nil, "applications", "sync", "shop/web", true, RuleSubject},
				{"proj:shop:ci", nil, "applications", "delete", "shop/web", true, RuleSubject},
				{"proj:shop:ci", nil, "applications", "get", "other/web", false, RuleCrossProject},
				{"proj:shop:ci", nil, "applications", "get", "shopping/web", false, RuleCrossProject},
				{"proj:shop:ci", nil, "applications", "get", "shop", false, RuleCrossProject},
				{"proj:shop:ci", nil, "projects", "update", "shop", false, RuleCrossProject}, // a project governs its apps, and may read itself
				{"proj:shop:ci", nil, "projects", "get", "other", false, RuleCrossProject},
				{"proj:shop:ci", nil, "projects", "get", "*", false, RuleCrossProject},
				{"proj:shop:ci", nil, "accounts", "get", "admin", false, RuleCrossProject},
				{"proj:shop:ci", []string{"admin"}, "settings", "update", "rbac", false, RuleCrossProject},
				{"proj:shop", nil, "applications", "get", "shop/web", false, RuleCrossProject},
				{"proj:shop:ci:x", nil, "applications", "get", "shop/web", false, RuleCrossProject},
				{"proj::ci", nil, "applications", "get", "/web", false, RuleCrossProject},
			},
		},
		{
			// Issue 11, break 4: the boundary holds on the decision for
			// everyone who reaches a project role's lines, in regex mode
			// as in glob mode.
			name: "project lines are confined for accounts and groups bound to the role",
			cfg: Config{MatchMode: "regex", CSV: "p, proj:team-a:deployer, applications, .*, team-a/.*|team-b/.*, allow\n" +
				"p, proj:team-a:deployer, .*, .*, .*, allow\n" +
				"g, mallory, proj:team-a:deployer\n" +
				"g, deployers, proj:team-a:deployer\n" +
				"g, proj:team-a:deployer, role:x\n" +
				"p, role:x, applications, get, team-c/.*"},
			reqs: []request{
				{"mallory", nil, "applications", "sync", "team-a/web", true, RuleSubject},
				{"mallory", nil, "applications", "sync", "team-b/web", false, RuleNoMatch},
				{"mallory", nil, "settings", "update", "rbac", false, RuleNoMatch},
				{"mallory", nil, "projects", "get", "team-a", true, RuleSubject},
				{"mallory", nil, "projects", "update", "team-a", false, RuleNoMatch},
				{"dave", []string{"deployers"}, "applications", "get", "team-b/web", false, RuleNoMatch},
				{"dave", []string{"deployers"}, "applications", "get", "team-a/web", true, RuleGroup},
				// What the project role inherits is confined too: binding to
				// the role grants exactly what the role's token may do.
				{"mallory", nil, "applications", "get", "team-c/web", false, RuleNoMatch},
				{"proj:team-a:deployer", nil, "applications", "get", "team-c/web", false, RuleCrossProject},
			},
		},
		{
			// A project role's deny is confined to its project, but it
			// still carves its objects out of a question about every
			// object: whoever is allowed All is allowed each object.
			name: "a project role's deny refuses every object",
			cfg: Config{CSV: "p, alice, applications, get, *\n" +
				"p, alice, projects, get, *\n" +
				"p, alice, projects, update, *\n" +
				"g, alice, proj:shop:ci\n" +
				"p, proj:shop:ci, applications, get, shop/secret, deny\n" +
				"p, proj:shop:ci, projects, *, *, deny"},
			reqs: []request{
				{"alice", nil, "applications", "get", "shop/secret", false, RuleDeny},
				{"alice", nil, "applications", "get", "*", false, RuleDeny},
				{"alice", nil, "applications", "get", "other/web", true, RuleSubject},
				{"alice", nil, "projects", "get", "shop", false, RuleDeny},
				{"alice", nil, "projects", "get", "*", false, RuleDeny},
				{"alice", nil, "projects", "update", "*", true, RuleSubject}, // a project never governs its own update
				{"alice", nil, "projects", "update", "shop", true, RuleSubject},
			},
		},
		{
			name: "roles a project role inherits are confined to its project",
			cfg: Config{CSV: "g, proj:team-a:ci, role:admin\n" +
				"g, proj:team-a:ci, proj:team-b:ci\n" +
				"p, proj:team-b:ci, applications, *, *, allow\n" +
				"g, mallory, proj:team-a:ci\n" +
				"g, role:admin, role:audit\n" +
				"p, role:audit, audit, get, *, allow"},
			reqs: []request{
				{"mallory", nil, "applications", "delete", "team-a/web", true, RuleSubject},
				{"mallory", nil, "applications", "delete", "team-b/web", false, RuleNoMatch},
				{"mallory", nil, "settings", "update", "rbac", false, RuleNoMatch},
				{"mallory", nil, "audit", "get", "*", false, RuleNoMatch},
				{"proj:team-a:ci", nil, "applications", "sync", "team-a/web", true, RuleSubject},
				{"proj:team-a:ci", nil, "settings", "update", "rbac", false, RuleCrossProject},
				// role:admin itself is untouched.
				{"admin", nil, "settings", "update", "rbac", true, RuleSubject},
				{"admin", nil, "audit", "get", "*", true, RuleSubject},
			},
		},
		{
			// A project role's groups (Extra g lines) bind the group to the
			// role only: they do not make the group's own lines count.
			name: "a group bound only by a project role gets only that role",
			cfg: Config{CSV: "p, sre, applications, *, */*, allow", Extra: []Line{
				{Type: "p", Subject: "proj:team-a:r", Resource: "applications", Action: "get", Object: "team-a/*"},
				{Type: "g", Subject: "sre", Role: "proj:team-a:r"},
			}},
			reqs: []request{
				{"carol", []string{"sre"}, "applications", "get", "team-a/web", true, RuleGroup},
				{"carol", []string{"sre"}, "applications", "sync", "team-b/secret", false, RuleNoMatch},
				{"carol", []string{"sre"}, "applications", "sync", "team-a/web", false, RuleNoMatch},
			},
		},
		{
			name: "groups named like roles grant nothing",
			cfg:  Config{CSV: "p, role:x, applications, get, *\ng, ops, role:x\ng, proj:a:r, role:x"},
			reqs: []request{
				{"carol", []string{"role:admin"}, "settings", "update", "rbac", false, RuleNoMatch},
				{"carol", []string{"role:readonly"}, "applications", "get", "a/b", false, RuleNoMatch},
				{"carol", []string{"proj:a:r"}, "applications", "get", "a/b", false, RuleNoMatch},
				{"carol", []string{"ops"}, "applications", "get", "a/b", true, RuleGroup},
			},
		},
		{
			name: "regex mode is anchored",
			cfg: Config{MatchMode: "regex", CSV: "p, alice, applications, get, app\n" +
				"p, alice, (projects|accounts), get, shop/.*\n" +
				"p, bob, applications, get, shop/*"},
			reqs: []request{
				{"alice", nil, "applications", "get", "app", true, RuleSubject},
				{"alice", nil, "applications", "get", "myapp", false, RuleNoMatch},
				{"alice", nil, "applications", "get", "apps", false, RuleNoMatch},
				{"alice", nil, "accounts", "get", "shop/x", true, RuleSubject},
				{"alice", nil, "myprojects", "get", "shop/x", false, RuleNoMatch},
				{"bob", nil, "applications", "get", "shop/web", false, RuleNoMatch},
				{"bob", nil, "applications", "get", "shop//", true, RuleSubject},
				{"admin", nil, "applications", "delete", "any/thing", true, RuleSubject},
			},
		},
		{
			name: "extra lines",
			cfg: Config{CSV: "p, role:x, applications, get, *", Extra: []Line{
				{Type: "p", Subject: "proj:shop:ci", Resource: "applications", Action: "sync", Object: "shop/*"},
				{Type: "g", Subject: "ci-group", Role: "proj:shop:ci"},
				{Type: "g", Subject: "carol", Role: "role:x"},
			}},
			reqs: []request{
				{"proj:shop:ci", nil, "applications", "sync", "shop/web", true, RuleSubject},
				{"dave", []string{"ci-group"}, "applications", "sync", "shop/web", true, RuleGroup},
				{"carol", nil, "applications", "get", "x", true, RuleSubject},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEngine(t, tt.cfg)
			for _, r := range tt.reqs {
				// Twice: the second answer comes from the cache.
				for range 2 {
					if got := e.Enforce(r.subject, r.groups, r.resource, r.action, r.object); got != r.want {
						t.Errorf("Enforce%v = %v, want %v", r, got, r.want)
					}
				}
				x := e.Explain(r.subject, r.groups, r.resource, r.action, r.object)
				if x.Allowed != r.want || x.Rule != r.rule {
					t.Errorf("Explain%v = %v by %q, want %v by %q (matched %v)", r, x.Allowed, x.Rule, r.want, r.rule, x.Matched)
				}
			}
		})
	}
}

func TestExplainMatched(t *testing.T) {
	e := newEngine(t, Config{DefaultRole: "role:def", DisableBuiltin: true, CSV: strings.Join([]string{
		"p, role:def, applications, get, public/*",         // 1
		"p, alice, applications, *, shop/*",                // 2
		"p, alice, applications, delete, shop/*, deny",     // 3
		"g, alice, role:dev",                               // 4
		"p, role:dev, applications, sync, shop/*",          // 5
		"g, ops, role:ops",                                 // 6
		"p, role:ops, applications, delete, shop/*",        // 7
		"p, role:def, applications, delete, shop/db, deny", // 8
	}, "\n")})
	tests := []struct {
		name    string
		groups  []string
		action  string
		object  string
		allowed bool
		rule    string
		lines   []int
	}{
		{"default role", nil, "get", "public/x", true, RuleDefaultRole, []int{1}},
		{"subject and its role", nil, "sync", "shop/web", true, RuleSubject, []int{2, 5}},
		{"deny", nil, "delete", "shop/web", false, RuleDeny, []int{2, 3}},
		{"group after a subject deny", []string{"ops"}, "delete", "shop/web", true, RuleGroup, []int{7}},
		{"deny from default role and subject", nil, "delete", "shop/db", false, RuleDeny, []int{2, 3, 8}},
		{"the subject allows before any group", []string{"ops"}, "update", "shop/db", true, RuleSubject, []int{2}},
		{"no match", nil, "create", "other/x", false, RuleNoMatch, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			x := e.Explain("alice", tt.groups, "applications", tt.action, tt.object)
			var nums []int
			for _, l := range x.Matched {
				nums = append(nums, l.Num)
			}
			if x.Allowed != tt.allowed || x.Rule != tt.rule || !slices.Equal(nums, tt.lines) {
				t.Errorf("Explain = %v by %q, lines %v; want %v by %q, lines %v", x.Allowed, x.Rule, nums, tt.allowed, tt.rule, tt.lines)
			}
		})
	}
	x := e.Explain("alice", nil, "applications", "sync", "shop/web")
	want := []string{"p, alice, applications, *, shop/*", "p, role:dev, applications, sync, shop/*"}
	var raws []string
	for _, l := range x.Matched {
		raws = append(raws, l.Raw)
	}
	if !slices.Equal(raws, want) {
		t.Errorf("matched raw lines = %q, want %q", raws, want)
	}
	if x := e.Explain("proj:a:b", nil, "applications", "get", "b/x"); x.Allowed || x.Rule != RuleCrossProject || len(x.Matched) != 0 {
		t.Errorf("cross-project Explain = %+v, want refused by %q with no lines", x, RuleCrossProject)
	}
}

func TestExplainBuiltinLine(t *testing.T) {
	e := newEngine(t, Config{})
	x := e.Explain("admin", nil, "applications", "get", "shop/web")
	var got []string
	for _, l := range x.Matched {
		got = append(got, l.String())
	}
	want := []string{"p, role:readonly, *, get, *, allow", "p, role:admin, *, *, *, allow"}
	if !slices.Equal(got, want) || x.Matched[0].Num != 0 {
		t.Errorf("matched = %q, want %q (numbered 0)", got, want)
	}
}

func TestNewErrors(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want []string // one per bad line, in order
	}{
		{"invalid glob", Config{CSV: "p, a, applications, get, [abc\np, b, applications, get, *"},
			[]string{`line 1: object: invalid glob "[abc": unclosed [`}},
		{"invalid globs in several fields", Config{CSV: "\n\np, a, {x, get, [abc"},
			[]string{`line 3: resource: invalid glob "{x": unclosed {; object: invalid glob "[abc": unclosed [`}},
		{"invalid regex", Config{MatchMode: "regex", CSV: "p, a, applications, get, shop/(.*\np, a, app[, get, .*"},
			[]string{`line 1: object: invalid regex "shop/(.*": error parsing regexp: missing closing ): ` + "`shop/(.*`",
				`line 2: resource: invalid regex "app[": error parsing regexp: missing closing ]: ` + "`[`"}},
		{"glob-only pattern in regex mode", Config{MatchMode: "regex", CSV: "p, a, applications, get, *"},
			[]string{`line 1: object: invalid regex "*": error parsing regexp: missing argument to repetition operator: ` + "`*`"}},
		{"parse and compile errors together, in order", Config{CSV: "p, a, applications, get, [x\np, a\ng, b, c\nx, y, z"},
			[]string{`line 1: object: invalid glob "[x": unclosed [`, "line 2: p line needs 5 or 6 fields, got 2", `line 4: unknown line type "x": want p or g`}},
		{"bad extra lines are named by their text", Config{CSV: "p, a, applications, get, [x", Extra: []Line{
			{Type: "p", Subject: "proj:a:b", Resource: "applications", Action: "get", Object: "a/[", Num: 1},
			{Type: "p", Subject: "proj:a:b", Resource: "applications", Action: "get", Object: "a/*", Effect: "maybe"},
			{Type: "q", Subject: "x", Raw: "q, x"},
			{Type: "g", Subject: "x"},
		}}, []string{
			`line 1: object: invalid glob "[x": unclosed [`,
			`line "p, proj:a:b, applications, get, a/[, allow": object: invalid glob "a/[": unclosed [`,
			`line "p, proj:a:b, applications, get, a/*, maybe": bad effect "maybe": want allow or deny`,
			`line "q, x": unknown line type "q": want p or g`,
			`line "g, x, ": empty subject or role`,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, err := New(tt.cfg)
			if e != nil {
				t.Errorf("New returned an engine with error %v", err)
			}
			var list ErrorList
			if !errors.As(err, &list) {
				t.Fatalf("New error = %v (%T), want an ErrorList", err, err)
			}
			var got []string
			for _, le := range list {
				got = append(got, le.Error())
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("errors:\n got %q\nwant %q", got, tt.want)
			}
			if err.Error() != strings.Join(tt.want, "\n") {
				t.Errorf("Error() = %q, want the lines joined", err.Error())
			}
		})
	}
	if _, err := New(Config{MatchMode: "glob2"}); err == nil || err.Error() != `match mode "glob2": want glob or regex` {
		t.Errorf("New with a bad match mode: error %v", err)
	}
}

// TestNewErrorsNameExtraLinesByIndex: a bad line of Config.Extra is
// named by its index there, so that a caller can tell whose line it is
// (a project's, for one).
func TestNewErrorsNameExtraLinesByIndex(t *testing.T) {
	_, err := New(Config{CSV: "p, a, applications, get, [x", Extra: []Line{
		{Type: "p", Subject: "proj:a:b", Resource: "applications", Action: "get", Object: "a/*"},
		{Type: "p", Subject: "proj:a:b", Resource: "applications", Action: "get", Object: "a/["},
		{Type: "g", Subject: "devs", Role: "proj:a:b"},
		{Type: "q", Subject: "x"},
	}})
	var list ErrorList
	if !errors.As(err, &list) {
		t.Fatalf("New: %v, want an ErrorList", err)
	}
	var got [][2]int
	for _, le := range list {
		got = append(got, [2]int{le.Line, le.Extra})
	}
	if want := [][2]int{{1, 0}, {0, 1}, {0, 3}}; !slices.Equal(got, want) {
		t.Errorf("(line, extra index) of the bad lines: %v, want %v", got, want)
	}
}

func TestRoles(t *testing.T) {
	e := newEngine(t, Config{DefaultRole: "role:base", CSV: "g, alice, role:dev\ng, role:dev, role:base\n" +
		"g, role:base, role:readonly\ng, ops, role:ops\ng, cyc, role:c\ng, role:c, cyc\n" +
		"p, devs, applications, get, *"})
	tests := []struct {
		subject string
		groups  []string
		want    []string
	}{
		{"alice", nil, []string{"role:base", "role:dev", "role:readonly"}},
		{"alice", []string{"ops", "devs"}, []string{"role:base", "role:dev", "role:ops", "role:readonly"}},
		{"admin", nil, []string{"role:admin", "role:base", "role:readonly"}},
		{"nobody", nil, []string{"role:base", "role:readonly"}},
		{"cyc", nil, []string{"role:base", "role:c", "role:readonly"}},
	}
	for _, tt := range tests {
		if got := e.Roles(tt.subject, tt.groups); !slices.Equal(got, tt.want) {
			t.Errorf("Roles(%q, %q) = %q, want %q", tt.subject, tt.groups, got, tt.want)
		}
	}
}

func TestWarnings(t *testing.T) {
	e := newEngine(t, Config{DefaultRole: "role:nothing", CSV: strings.Join([]string{
		"g, alice, role:empty",  // 1: warned
		"g, bob, role:empty",    // 2: warned once
		"g, carol, role:admin",  // 3: built-in
		"g, dave, role:outer",   // 4: inherits lines
		"g, role:outer, role:x", // 5
		"p, role:x, applications, get, *",
		"g, erin, role:readonly",
	}, "\n")})
	want := []string{
		`line 1: role "role:empty" has no policy lines, so "alice" gains nothing from it`,
		`default role "role:nothing" has no policy lines`,
	}
	if got := e.Warnings(); !slices.Equal(got, want) {
		t.Errorf("Warnings() =\n%q\nwant\n%q", got, want)
	}
	// Built-in role names count as having lines even with the built-in policy off.
	e = newEngine(t, Config{DisableBuiltin: true, CSV: "g, carol, role:admin"})
	if got := e.Warnings(); len(got) != 0 {
		t.Errorf("Warnings() = %q, want none for a built-in role", got)
	}
}

func TestConfigAndLines(t *testing.T) {
	extra := []Line{{Type: "g", Subject: "x", Role: "role:readonly"}}
	cfg := Config{CSV: "p, a, b, c, d", DefaultRole: "role:readonly", MatchMode: "glob", Extra: extra, CacheSize: 10}
	e := newEngine(t, cfg)
	got := e.Config()
	if !reflect.DeepEqual(got, cfg) {
		t.Errorf("Config() = %+v, want %+v", got, cfg)
	}
	got.Extra[0].Subject = "changed"
	extra[0].Role = "changed"
	if e.Config().Extra[0].Subject != "x" || !e.Enforce("x", nil, "applications", "get", "y") {
		t.Error("the engine shares its Extra lines with the caller")
	}
	lines := e.Lines()
	if len(lines) != 6 || lines[0].Subject != RoleReadonly || lines[4].Num != 1 || lines[5].Subject != "x" {
		t.Errorf("Lines() = %v, want 4 built-in lines, the CSV line and the extra line", lines)
	}
}

func TestNilEngineRefuses(t *testing.T) {
	var e *Engine
	if e.Enforce("admin", nil, "applications", "get", "x") {
		t.Error("nil engine allowed a request")
	}
	if x := e.Explain("admin", nil, "applications", "get", "x"); x.Allowed {
		t.Error("nil engine's Explain allowed a request")
	}
}

func TestCacheGroupKeys(t *testing.T) {
	// Different group lists must never share a cache entry.
	e := newEngine(t, Config{CSV: "g, a, role:readonly\ng, 1:a, role:x\np, role:x, applications, delete, *"})
	tests := []struct {
		groups []string
		action string
		want   bool
	}{
		{[]string{"a"}, "get", true},
		{[]string{"ab"}, "get", false},
		{[]string{"a", "b"}, "get", true},
		{[]string{"1:a"}, "get", false},
		{[]string{"1:a"}, "delete", true},
		{[]string{"1:a", "b"}, "get", false},
		{[]string{"b", "a"}, "get", true},
		{[]string{"x", "1:a"}, "delete", true},
		{[]string{"x", "1:a"}, "get", false},
		{[]string{"x1:a"}, "delete", false},
		{nil, "get", false},
		{[]string{""}, "get", false},
	}
	for range 2 {
		for _, tt := range tests {
			if got := e.Enforce("u", tt.groups, "applications", tt.action, "o"); got != tt.want {
				t.Errorf("Enforce(u, %q, %s) = %v, want %v", tt.groups, tt.action, got, tt.want)
			}
		}
	}
}

func TestCacheIsBounded(t *testing.T) {
	e := newEngine(t, Config{CacheSize: 2 * cacheShards, CSV: "p, alice, applications, get, shop/*"})
	for i := range 5000 {
		obj := fmt.Sprintf("shop/app-%d", i%700)
		if !e.Enforce("alice", nil, "applications", "get", obj) {
			t.Fatalf("alice refused %s", obj)
		}
		if e.Enforce("bob", nil, "applications", "get", obj) {
			t.Fatalf("bob allowed %s", obj)
		}
	}
	total := 0
	for i := range e.cache.shards {
		n := len(e.cache.shards[i].m)
		if n > e.cache.limit {
			t.Errorf("shard %d holds %d decisions, limit %d", i, n, e.cache.limit)
		}
		total += n
	}
	if total == 0 || total > 2*cacheShards {
		t.Errorf("cache holds %d decisions, want 1..%d", total, 2*cacheShards)
	}
	if off := newEngine(t, Config{CacheSize: -1}); off.cache != nil {
		t.Error("CacheSize -1 left the cache on")
	}
}

// TestConcurrentEnforce runs cached decisions from many goroutines (run
// with -race) and checks them against an engine without a cache.
func TestConcurrentEnforce(t *testing.T) {
	csv := "p, role:dev, applications, *, shop/*\np, role:dev, applications, delete, shop/prod, deny\n" +
		"g, alice, role:dev\ng, ops, role:dev"
	cached := newEngine(t, Config{CSV: csv, CacheSize: 100})
	plain := newEngine(t, Config{CSV: csv, CacheSize: -1})
	subjects := []string{"alice", "bob", "admin"}
	actions := []string{"get", "delete", "sync"}
	objects := []string{"shop/web", "shop/prod", "other/x"}
	var wg sync.WaitGroup
	errs := make(chan string, 8)
	for w := range 8 {
		wg.Go(func() {
			for i := range 3000 {
				s, a, o := subjects[(i+w)%3], actions[(i/3)%3], objects[(i/9+w)%3]
				var groups []string
				if i%2 == 0 {
					groups = []string{"ops"}
				}
				if got, want := cached.Enforce(s, groups, "applications", a, o), plain.Enforce(s, groups, "applications", a, o); got != want {
					errs <- fmt.Sprintf("Enforce(%s, %v, %s, %s) = %v, want %v", s, groups, a, o, got, want)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}

func TestLargeRoleGraph(t *testing.T) {
	// A long chain and a wide fan-in load quickly and decide correctly.
	var b strings.Builder
	for i := range 2000 {
		fmt.Fprintf(&b, "g, role:%d, role:%d\n", i, i+1)
	}
	b.WriteString("p, role:2000, applications, get, *\n")
	b.WriteString("g, role:2000, role:0\n") // and close the loop
	for i := range 5000 {
		fmt.Fprintf(&b, "g, user%d, role:1999\n", i)
	}
	e := newEngine(t, Config{CSV: b.String()})
	for _, s := range []string{"role:0", "role:1000", "user4999"} {
		if !e.Enforce(s, nil, "applications", "get", "x") {
			t.Errorf("%s refused, want allowed through the chain", s)
		}
	}
	if e.Enforce("user1", nil, "applications", "sync", "x") {
		t.Error("user1 allowed sync, want refused")
	}
}

func TestCacheCollisionIsAMiss(t *testing.T) {
	e := newEngine(t, Config{CSV: "p, alice, applications, get, *"})
	k := cacheKey{subject: "bob", resource: "applications", action: "get", object: "x"}
	h := e.cache.hash(&k)
	// Plant a different question's "allowed" under bob's hash.
	other := cacheKey{subject: "alice", resource: "applications", action: "get", object: "x"}
	e.cache.shard(h).put(h, other, true, e.cache.limit)
	if _, ok := e.cache.shard(h).get(h, &k); ok {
		t.Fatal("a different question's entry answered bob's")
	}
	if e.Enforce("bob", nil, "applications", "get", "x") {
		t.Error("bob allowed through a colliding cache entry")
	}
}

// TestCacheHashSeparatesFields: questions whose strings run together the
// same way (a zero byte, or a field boundary moved) are hashed from
// different bytes, so no caller can make two questions collide whatever
// the seed. (Equal hashes here would be a 2^-64 accident.)
func TestCacheHashSeparatesFields(t *testing.T) {
	e := newEngine(t, Config{CSV: "p, alice, applications, get, *"})
	for _, pair := range [][2]cacheKey{
		{{subject: "u", resource: "applications", action: "get", object: "x\x00g"}, {subject: "u", resource: "applications", action: "get", object: "x", groups: []string{"g"}}},
		{{subject: "u", resource: "applications\x00delete", object: "x"}, {subject: "u", resource: "applications", action: "delete", object: "x"}},
		{{subject: "alice\x00applications", action: "get"}, {subject: "alice", resource: "applications", action: "get"}},
		{{subject: "u", object: "x", groups: []string{""}}, {subject: "u", object: "x\x00"}},
		{{subject: "ab", resource: "c"}, {subject: "a", resource: "bc"}},
		{{subject: "u", groups: []string{"a", "b"}}, {subject: "u", groups: []string{"ab"}}},
	} {
		if e.cache.hash(&pair[0]) == e.cache.hash(&pair[1]) {
			t.Errorf("%+v and %+v hash alike", pair[0], pair[1])
		}
	}
}

func TestCacheKeyDoesNotAliasCallerGroups(t *testing.T) {
	e := newEngine(t, Config{CSV: "g, ops, role:admin"})
	groups := []string{"ops", "x"}
	if !e.Enforce("u", groups, "applications", "delete", "a/b") {
		t.Fatal("ops refused")
	}
	groups[0] = "nobody" // the caller reuses its slice
	if e.Enforce("u", groups, "applications", "delete", "a/b") {
		t.Error("a reused groups slice got the old answer from the cache")
	}
}
