package service

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/policy"
)

// The mint preview: what a token would be able to do if it were minted
// now, for the token form of the dashboard. It answers under exactly the
// rules of CreateToken and CreateRoleToken (who may mint for whom, which
// scopes are refused), so that the form never promises what minting would
// refuse, and computes the grid with the policy engine in force.
//
// A token's permission is its owner's permission now, intersected with its
// scopes, so each cell asks the engine about the owner and
// then the scopes. A cell reads "all" when the token may act on every
// object (the owner's patterns cover the object "*", the way scopes are
// checked at minting), or lists the object patterns it may act on.
// Candidate patterns come from the policy lines and the scopes themselves;
// each is checked by the engine, so role nesting, groups, deny lines, the
// default role and the project boundary all count as they do for real
// requests.

// MintOwner names whose token a mint creates: an account's API token
// (Account), or a project role's token (Project and Role).
type MintOwner struct {
	Account string
	Project string
	Role    string
}

// Preview is what a token would be able to do.
type Preview struct {
	Subject  string   // the RBAC subject the token would act as
	Actions  []string // the columns
	Rows     []PreviewRow
	Problems []string // why minting with these scopes would be refused
	Scoped   bool
}

// PreviewRow is one resource of a Preview.
type PreviewRow struct {
	Resource string
	Cells    []PreviewCell
}

// PreviewCell is one resource × action answer.
type PreviewCell struct {
	Action     string
	Applicable bool
	All        bool
	Objects    []string // when not All: the patterns allowed
	Except     []string // objects a deny line takes out
}

// None reports whether the token may not do this at all.
func (c PreviewCell) None() bool { return !c.All && len(c.Objects) == 0 }

// previewResources are the rows of the preview and the actions each has.
var previewResources = []struct {
	Resource string
	Actions  []string
}{
	{"applications", []string{"get", "create", "update", "delete", "sync"}},
	{"projects", []string{"get", "create", "update", "delete"}},
	{"accounts", []string{"get", "create", "update", "delete"}},
	{"audit", []string{"get"}},
	{"settings", []string{"get", "update"}},
}

// previewActions are the columns of the preview.
var previewActions = []string{"get", "create", "update", "delete", "sync"}

// MintPreview answers whether p may mint a token for o, with the error
// minting would answer (403, 404, 412), and if so what a token narrowed by
// scopes (none: not narrowed) would be able to do. A scope that minting
// would refuse is a Problem, not an error: the form shows it before the
// user presses Generate.
func (s *Service) MintPreview(ctx context.Context, p *Principal, o MintOwner, scopes []gatehouse.Scope) (Preview, error) {
	sub, err := s.authorizeMint(ctx, p, o)
	if err != nil {
		return Preview{}, err
	}
	e := s.engine.Load()
	g := Preview{Subject: sub.name, Actions: previewActions, Scoped: len(scopes) > 0}
	g.Problems = s.scopeProblems(p, sub, scopes)
	if e == nil {
		return g, nil
	}
	// The grid is narrowed by the scopes that compile; one that does not
	// is a Problem already.
	var narrow []compiledScope
	for _, sc := range scopes {
		if c, err := compileScopes([]gatehouse.Scope{trimScope(sc)}); err == nil {
			narrow = append(narrow, c...)
		}
	}
	allowed := func(res, act, obj string) bool {
		if !e.Enforce(sub.name, sub.groups, res, act, obj) {
			return false
		}
		if len(scopes) == 0 {
			return true
		}
		for _, sc := range narrow {
			if sc.match(res, act, obj) {
				return true
			}
		}
		return false
	}
	match := policy.MatchGlob
	if e.Config().MatchMode == "regex" {
		match = matchRegex
	}
	lines := e.Lines()
	for _, pr := range previewResources {
		row := PreviewRow{Resource: pr.Resource}
		for _, act := range previewActions {
			cell := PreviewCell{Action: act, Applicable: slices.Contains(pr.Actions, act)}
			if cell.Applicable {
				fillCell(&cell, pr.Resource, act, lines, scopes, match, allowed)
			}
			row.Cells = append(row.Cells, cell)
		}
		g.Rows = append(g.Rows, row)
	}
	return g, nil
}

// MayMint reports whether p may mint a token for o (under the rules of
// CreateToken and CreateRoleToken), for a page that offers the link. It is
// a question, not a request: it leaves p's recorded decision alone.
func (s *Service) MayMint(ctx context.Context, p *Principal, o MintOwner) bool {
	if p == nil {
		return false
	}
	saved := p.decision
	_, err := s.authorizeMint(ctx, p, o)
	p.decision = saved
	return err == nil
}

// mintSubject is whose permissions a minted token carries.
type mintSubject struct {
	name   string
	groups []string
	owner  *gatehouse.Account // account tokens
	role   bool
}

// authorizeMint applies the checks of CreateToken and CreateRoleToken that
// do not depend on the request body, in their order, and returns the
// subject the token would act as.
func (s *Service) authorizeMint(ctx context.Context, p *Principal, o MintOwner) (mintSubject, error) {
	if p == nil {
		return mintSubject{}, gatehouse.Errorf(gatehouse.EUNAUTHORIZED, "no credentials")
	}
	if p.exchanged() {
		// Also a trust policy's owner (checkTrustPolicy): a policy saved by
		// an exchanged token would mint for it long after its minutes.
		return mintSubject{}, errExchangedMint
	}
	switch {
	case o.Account != "" && o.Project == "" && o.Role == "":
		if err := s.authorizeTokens(p, o.Account, "update"); err != nil {
			return mintSubject{}, err
		}
		owner := s.accounts.get(o.Account)
		if owner == nil {
			return mintSubject{}, gatehouse.Errorf(gatehouse.ENOTFOUND, "account %q not found", o.Account)
		}
		if !owner.Enabled {
			return mintSubject{}, gatehouse.Errorf(gatehouse.EPRECONDITION, "account %q is disabled", o.Account)
		}
		if !owner.Has(gatehouse.CapAPIKey) {
			return mintSubject{}, gatehouse.Errorf(gatehouse.EPRECONDITION, "account %q does not have the apiKey capability", o.Account)
		}
		return mintSubject{name: owner.Name, groups: owner.Groups, owner: owner}, nil
	case o.Account == "" && o.Project != "" && o.Role != "":
		if err := s.authorize(p, "projects", "update", o.Project); err != nil {
			return mintSubject{}, err
		}
		if err := s.roleExists(ctx, o.Project, o.Role); err != nil {
			return mintSubject{}, err
		}
		return mintSubject{name: gatehouse.ProjectSubject(o.Project, o.Role), role: true}, nil
	}
	return mintSubject{}, gatehouse.Errorf(gatehouse.EINVALID, "a token belongs to an account or to a project role")
}

// scopeProblems says, scope by scope, why minting would refuse them: it
// asks the very check minting applies (checkScopes), one scope at a time,
// so that every problem is listed and none is invented here.
func (s *Service) scopeProblems(p *Principal, sub mintSubject, scopes []gatehouse.Scope) []string {
	if len(scopes) == 0 {
		return nil
	}
	if sub.role {
		return []string{"Project role tokens carry their role's policies; scopes are not accepted."}
	}
	_, whole := s.checkScopes(p, sub.owner, scopes)
	if whole == nil {
		return nil
	}
	if msg := gatehouse.ErrorMessage(whole); !strings.HasPrefix(msg, "scope ") {
		return []string{refusal(msg)} // the list as a whole (too many scopes)
	}
	var out []string
	for i, sc := range scopes {
		if _, err := s.checkScopes(p, sub.owner, []gatehouse.Scope{sc}); err != nil {
			// checkScopes numbers the one scope it was given as 1.
			msg := gatehouse.ErrorMessage(err)
			if rest, ok := strings.CutPrefix(msg, "scope 1"); ok {
				msg = fmt.Sprintf("Scope %d%s", i+1, rest)
			}
			out = append(out, refusal(msg))
		}
	}
	return out
}

func refusal(msg string) string {
	if msg != "" {
		msg = strings.ToUpper(msg[:1]) + msg[1:]
	}
	return msg + "; generating would be refused."
}

func trimScope(sc gatehouse.Scope) gatehouse.Scope {
	return gatehouse.Scope{Resource: strings.TrimSpace(sc.Resource), Action: strings.TrimSpace(sc.Action), Object: strings.TrimSpace(sc.Object)}
}

// fillCell decides one cell.
func fillCell(cell *PreviewCell, res, act string, lines []policy.Line, scopes []gatehouse.Scope,
	match func(pattern, s string) bool, allowed func(res, act, obj string) bool) {
	var candidates, denied []string
	for _, l := range lines {
		if l.Type != "p" || !match(l.Resource, res) || !match(l.Action, act) {
			continue
		}
		if l.Effect == policy.Deny {
			denied = appendNew(denied, l.Object)
		} else {
			candidates = appendNew(candidates, l.Object)
		}
	}
	for _, sc := range scopes {
		sc = trimScope(sc)
		if policy.MatchGlob(sc.Resource, res) && policy.MatchGlob(sc.Action, act) {
			candidates = appendNew(candidates, sc.Object)
		}
	}
	cell.All = allowed(res, act, "*")
	var ok []string
	if !cell.All {
		for _, c := range candidates {
			if allowed(res, act, c) {
				ok = append(ok, c)
			}
		}
		// Show the widest patterns only: team-a/web adds nothing to team-a/*.
		for _, c := range ok {
			covered := false
			for _, o := range ok {
				covered = covered || (o != c && match(o, c))
			}
			if !covered {
				cell.Objects = append(cell.Objects, c)
			}
		}
	}
	// Deny lines carve objects out of what is shown.
	for _, d := range denied {
		if allowed(res, act, d) {
			continue
		}
		inside := cell.All
		for _, o := range cell.Objects {
			inside = inside || match(o, d)
		}
		if inside && d != "*" {
			cell.Except = append(cell.Except, d)
		}
	}
	slices.Sort(cell.Objects)
	slices.Sort(cell.Except)
}

// matchRegex matches as the engine's regex mode does: anchored.
func matchRegex(pattern, s string) bool {
	if pattern == ".*" {
		return true
	}
	re, err := regexp.Compile(`^(?:` + pattern + `)$`)
	return err == nil && re.MatchString(s)
}

func appendNew(list []string, s string) []string {
	if slices.Contains(list, s) {
		return list
	}
	return append(list, s)
}
