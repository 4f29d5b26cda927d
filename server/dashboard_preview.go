package server

import (
	"fmt"
	"regexp"
	"slices"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/policy"
)

// The permission preview of the token form: what a token would be able to
// do, computed with the policy engine in force. A token's permission is
// its owner's permission now, intersected with its scopes (DESIGN.md §2),
// so each cell asks the engine about the owner and then the scopes.
//
// A cell reads "all" when the token may act on every object (the owner's
// patterns cover the object "*", the way the service checks scopes), or
// lists the object patterns it may act on. Candidate patterns come from
// the policy lines and the scopes themselves; each is checked by the
// engine, so role nesting, groups, deny lines, the default role and the
// project confinement all count exactly as they do for real requests.

// permResources are the rows of the preview and the actions each has.
var permResources = []struct {
	Resource string
	Actions  []string
}{
	{"applications", []string{"get", "create", "update", "delete", "sync"}},
	{"projects", []string{"get", "create", "update", "delete"}},
	{"accounts", []string{"get", "create", "update", "delete"}},
	{"audit", []string{"get"}},
	{"settings", []string{"get", "update"}},
}

// permActions are the columns of the preview.
var permActions = []string{"get", "create", "update", "delete", "sync"}

// permGrid is the rendered preview.
type permGrid struct {
	Subject  string
	Actions  []string
	Rows     []permRow
	Problems []string // scopes the owner does not hold (minting would refuse them)
	Scoped   bool
}

type permRow struct {
	Resource string
	Cells    []permCell
}

// permCell is one resource × action answer.
type permCell struct {
	Action     string
	Applicable bool
	All        bool
	Objects    []string // when not All: the patterns allowed
	Except     []string // objects a deny line takes out
}

// None reports whether the token may not do this at all.
func (c permCell) None() bool { return !c.All && len(c.Objects) == 0 }

// previewSubject is whose permissions a token carries.
type previewSubject struct {
	Name   string
	Groups []string
}

// previewPermissions computes the grid for a token of sub narrowed by
// scopes (none: not narrowed).
func previewPermissions(e *policy.Engine, sub previewSubject, scopes []gatehouse.Scope) permGrid {
	g := permGrid{Subject: sub.Name, Actions: permActions, Scoped: len(scopes) > 0}
	if e == nil {
		return g
	}
	match := policy.MatchGlob
	if e.Config().MatchMode == "regex" {
		match = matchRegex
	}
	lines := e.Lines()

	for i, sc := range scopes {
		if !e.Enforce(sub.Name, sub.Groups, sc.Resource, sc.Action, sc.Object) {
			g.Problems = append(g.Problems, fmt.Sprintf("Scope %d (%s, %s, %s) is more than %s may do now; generating would be refused.", i+1, sc.Resource, sc.Action, sc.Object, sub.Name))
		}
	}
	allowed := func(res, act, obj string) bool {
		if !e.Enforce(sub.Name, sub.Groups, res, act, obj) {
			return false
		}
		if len(scopes) == 0 {
			return true
		}
		for _, sc := range scopes {
			if policy.MatchGlob(sc.Resource, res) && policy.MatchGlob(sc.Action, act) && policy.MatchGlob(sc.Object, obj) {
				return true
			}
		}
		return false
	}

	for _, pr := range permResources {
		row := permRow{Resource: pr.Resource}
		for _, act := range permActions {
			cell := permCell{Action: act, Applicable: slices.Contains(pr.Actions, act)}
			if cell.Applicable {
				fillCell(&cell, pr.Resource, act, lines, scopes, match, allowed)
			}
			row.Cells = append(row.Cells, cell)
		}
		g.Rows = append(g.Rows, row)
	}
	return g
}

// fillCell decides one cell.
func fillCell(cell *permCell, res, act string, lines []policy.Line, scopes []gatehouse.Scope,
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
