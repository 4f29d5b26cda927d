package server

import (
	"net/url"
	"strings"
	"testing"
)

// FuzzParseRoleForm: whatever the form holds, every policy the role
// gets is a non-blank line of the Policies box, trimmed, found at the
// line parseRoleForm says (so a problem is shown next to the right
// line), in order; an edited role keeps its name; no group is blank.
func FuzzParseRoleForm(f *testing.F) {
	f.Add("name=ci&policies=p%2C+proj%3Aa%3Aci%2C+applications%2C+get%2C+a%2F*%2C+allow&groups=a%2C+b", "")
	f.Add("policies=%0D%0A%0D%0Ap%2C+x%0D%0A++%0D%0Ag%2C+y&groups=%0Aa%2C%2C+%0Ab", "ci")
	f.Add("policies=%0D%0D%0A%E2%80%A8x&name=+", "")
	f.Fuzz(func(t *testing.T, form, editing string) {
		v, err := url.ParseQuery(form)
		if err != nil {
			return
		}
		fm, role, at := parseRoleForm(v, editing)
		if editing != "" && role.Name != editing {
			t.Fatalf("an edited role was renamed %q to %q", editing, role.Name)
		}
		if len(at) != len(role.Policies) {
			t.Fatalf("%d lines for %d policies", len(at), len(role.Policies))
		}
		box := strings.Split(fm.Policies, "\n")
		prev := 0
		for i, p := range role.Policies {
			if at[i] <= prev || at[i] > len(box) {
				t.Fatalf("policy %d at line %d (previous %d, %d lines)", i, at[i], prev, len(box))
			}
			prev = at[i]
			if p == "" || p != strings.TrimSpace(box[at[i]-1]) {
				t.Fatalf("policy %d is %q, line %d is %q", i, p, at[i], box[at[i]-1])
			}
		}
		for _, g := range role.Groups {
			if strings.TrimSpace(g) == "" || strings.Contains(g, ",") {
				t.Fatalf("group %q", g)
			}
		}
	})
}

// FuzzParseRBACForm: the policy keeps every line of the box, so that the
// service's line numbers are the box's.
func FuzzParseRBACForm(f *testing.F) {
	f.Add("policy_csv=p%2C+a%2C+b%2C+c%2C+d%0D%0Ag%2C+x%2C+y&match_mode=glob")
	f.Add("policy_csv=%0D%0D%0A%0A&policy_default=+role%3Ax+")
	f.Fuzz(func(t *testing.T, form string) {
		v, err := url.ParseQuery(form)
		if err != nil {
			return
		}
		in := v.Get("policy_csv")
		fm, rb := parseRBACForm(v)
		if rb.PolicyCSV != fm.PolicyCSV {
			t.Fatalf("policy %q from %q", rb.PolicyCSV, in)
		}
		if got, want := strings.Count(rb.PolicyCSV, "\n"), strings.Count(in, "\n"); got != want {
			t.Fatalf("%d line breaks kept of %d", got, want)
		}
	})
}
