// Package argo is the Argo CD approach to the same question Gatehouse
// answers, for comparison: casbin with Argo CD's model (deny wins, roles
// through g, a glob where * spans /) over an Argo CD policy CSV.
package argo

import (
	"strings"

	"github.com/casbin/casbin/v2"
	"github.com/casbin/casbin/v2/model"
)

// Model is Argo CD's casbin model.
const Model = `
[request_definition]
r = sub, res, act, obj
[policy_definition]
p = sub, res, act, obj, eft
[role_definition]
g = _, _
[policy_effect]
e = some(where (p.eft == allow)) && !some(where (p.eft == deny))
[matchers]
m = g(r.sub, p.sub) && globOrRegexMatch(r.res, p.res) && globOrRegexMatch(r.act, p.act) && globOrRegexMatch(r.obj, p.obj)
`

// Enforcer loads policy into casbin's cached enforcer, its best
// configuration, with Argo CD's model.
func Enforcer(policy string) (*casbin.SyncedCachedEnforcer, error) {
	m, err := model.NewModelFromString(Model)
	if err != nil {
		return nil, err
	}
	e, err := casbin.NewSyncedCachedEnforcer(m)
	if err != nil {
		return nil, err
	}
	e.AddFunction("globOrRegexMatch", func(args ...any) (any, error) {
		return GlobMatch(args[1].(string), args[0].(string)), nil
	})
	var ps, gs [][]string
	for _, line := range strings.Split(policy, "\n") {
		f := strings.Split(line, ",")
		for i := range f {
			f[i] = strings.TrimSpace(f[i])
		}
		switch f[0] {
		case "p":
			ps = append(ps, f[1:])
		case "g":
			gs = append(gs, f[1:])
		}
	}
	if _, err := e.AddPolicies(ps); err != nil {
		return nil, err
	}
	if _, err := e.AddGroupingPolicies(gs); err != nil {
		return nil, err
	}
	e.EnableCache(true)
	return e, nil
}

// GlobMatch is Argo CD's glob (gobwas/glob without separators): * matches
// any run of characters, / included. Enough for the fixture's patterns.
func GlobMatch(pattern, s string) bool {
	if pattern == "*" {
		return true
	}
	if prefix, ok := strings.CutSuffix(pattern, "*"); ok && !strings.ContainsAny(prefix, "*?") {
		return strings.HasPrefix(s, prefix)
	}
	return pattern == s
}
