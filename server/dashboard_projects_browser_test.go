package server_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/gatehouse/gatehouse"
)

// TestDashboardProjectsAndRBACInBrowser walks the admin's side by the
// labels a user sees: create a project, add a role with a policy, bind a
// group to it, mint a role token (shown once) and use it; then edit the
// RBAC policy with a mistake, see the line it is on, fix it, and ask the
// explain box, of the draft and of the saved policy. A full-page
// screenshot is saved at each step.
func TestDashboardProjectsAndRBACInBrowser(t *testing.T) {
	e := newDashEnv(t)
	b := newBrowser(t, e.srv.URL)
	e.createUser("dana", "shippers")
	step := 0
	shot := func(name string) {
		t.Helper()
		step++
		saveScreenshot(t, fmt.Sprintf("%02d-%s", step, name), run(b, chromedp.FullScreenshot(100)))
	}
	notice := func(want string) {
		t.Helper()
		if got := b.text(".alert-success"); !strings.Contains(got, want) {
			t.Fatalf("notice %q, want %q", got, want)
		}
	}

	b.do(chromedp.EmulateViewport(1280, 800))
	b.open("/")
	b.do(chromedp.SendKeys(chromedp.ID("username"), "admin"), chromedp.SendKeys(chromedp.ID("password"), adminPassword))
	b.click(button("Log in"))

	// 1. Create a project from the list.
	b.click(`//nav` + link("Projects"))
	b.do(chromedp.SendKeys(chromedp.ID("project-name"), "team-a"), chromedp.SendKeys(chromedp.ID("project-description"), "Team A's services"))
	shot("projects-create")
	b.click(button("Create project"))
	if got := b.path(); got != "/projects/team-a?notice=project-created" {
		t.Fatalf("after Create project at %s", got)
	}
	notice("Project created.")
	shot("project-created")

	// 2. Add a role with a policy, first with a mistake: the line is
	// named, the text kept.
	b.click(link("Add role"))
	b.do(chromedp.SendKeys(chromedp.ID("role-name"), "deployer"),
		chromedp.SendKeys(chromedp.ID("role-description"), "CI deploys"),
		chromedp.SetValue(chromedp.ID("role-policies"), "p, proj:team-a:deployer, applications, sync, team-a/*, allow\np, proj:team-a:deployer, applications, get, team-b/*, allow"))
	b.click(button("Create role"))
	if got := b.text(".line-problems li"); !strings.Contains(got, "Line 2") || !strings.Contains(got, "object must lie under team-a/") {
		t.Fatalf("role line problem: %q", got)
	}
	shot("role-line-error")
	b.do(chromedp.SetValue(chromedp.ID("role-policies"), "p, proj:team-a:deployer, applications, sync, team-a/*, allow\np, proj:team-a:deployer, applications, get, team-a/*, allow"))
	b.click(button("Create role"))
	notice("Role created.")
	shot("role-created")

	// 3. Bind a group: its members hold the role inside the project.
	b.click(`//a[@aria-label='Edit role deployer']`)
	b.do(chromedp.SendKeys(chromedp.ID("role-groups"), "shippers"))
	shot("role-edit")
	b.click(button("Save role"))
	notice("Role saved.")
	if got := b.text(`section[aria-labelledby="role-deployer"] .chip`); got != "shippers" {
		t.Errorf("bound group chip %q", got)
	}
	var can gatehouse.CanI
	e.call("GET", "/api/v1/account/can-i/applications/sync/team-a/web", e.login("dana", "dana-password"), nil, 200, &can)
	if can.Value != "yes" {
		t.Errorf("dana, in shippers, may not sync team-a/web")
	}
	shot("group-bound")

	// 4. Mint a role token: shown once, and it works.
	b.click(link("Generate New Token"))
	b.do(chromedp.SendKeys(chromedp.ID("name"), "ci deploys"))
	b.click(button("Generate"))
	tok := run(b, chromedp.Value(chromedp.ID("new-token")))
	e.remember(tok)
	if body := b.text("main"); !strings.Contains(body, "won't be shown again") || !strings.Contains(body, "project role team-a / deployer") {
		t.Errorf("copy-once page:\n%s", body)
	}
	shot("role-token-created")
	var info gatehouse.UserInfo
	e.call("GET", "/api/v1/session/userinfo", tok, nil, 200, &info)
	if info.TokenKind != gatehouse.KindProject {
		t.Errorf("the role token acts as %+v", info)
	}
	b.click(link("Done"))
	if n := run(b, chromedp.Evaluate[int](`[...document.querySelectorAll("td.token-name")].filter(c => c.textContent === "ci deploys").length`)); n != 1 {
		t.Errorf("the role token is listed %d times, want once", n)
	}
	shot("project-with-token")

	// 5. The RBAC policy: a mistake on line 2 is refused and named.
	b.click(`//nav` + link("RBAC policy"))
	shot("rbac")
	broken := "p, role:dev, applications, get, team-a/*, allow\np, role:dev, applications, sync\ng, devs, role:dev"
	b.do(chromedp.SetValue(chromedp.ID("policy-csv"), broken))
	b.click(button("Save policy"))
	if got := b.text(".line-problems li"); !strings.Contains(got, "Line 2") || !strings.Contains(got, "p, role:dev, applications, sync") {
		t.Fatalf("policy line problem: %q", got)
	}
	if got := b.text(".alert-error"); !strings.Contains(got, "invalid policy: line 2") {
		t.Errorf("the service's refusal: %q", got)
	}
	if got := run(b, chromedp.Value(chromedp.ID("policy-csv"))); got != broken {
		t.Errorf("the refused text is not kept: %q", got)
	}
	// Clicking the line's name selects that line of the box.
	b.do(chromedp.Click(chromedp.Search(`//a[@data-line='2']`), chromedp.NodeVisible))
	if sel := run(b, chromedp.Evaluate[string](`(() => { const t = document.getElementById("policy-csv"); return t.value.slice(t.selectionStart, t.selectionEnd); })()`)); sel != "p, role:dev, applications, sync" {
		t.Errorf("the line link selected %q", sel)
	}
	shot("rbac-line-error")

	// 6. Fix it, check the draft and ask it; the saved policy still
	// says no until the draft is saved.
	fixed := "p, role:dev, applications, get, team-a/*, allow\np, role:dev, applications, sync, team-a/*, allow\ng, devs, role:dev"
	b.do(chromedp.SetValue(chromedp.ID("policy-csv"), fixed))
	e.createUser("alice", "devs")
	b.do(chromedp.SendKeys(chromedp.ID("explain-subject"), "alice"),
		chromedp.SendKeys(chromedp.ID("explain-resource"), "applications"),
		chromedp.SendKeys(chromedp.ID("explain-action"), "sync"),
		chromedp.SendKeys(chromedp.ID("explain-object"), "team-a/web"))
	b.click(button("Ask the draft"))
	if got := b.text("#check-result"); !strings.Contains(got, "The draft compiles") {
		t.Errorf("check: %q", got)
	}
	if got := b.text("#explain-answer"); !strings.Contains(got, "Yes, according to the draft") || !strings.Contains(got, "p, role:dev, applications, sync, team-a/*, allow") {
		t.Errorf("the draft's answer: %q", got)
	}
	shot("rbac-explain-draft")
	b.click(button("Ask the saved policy"))
	if got := b.text("#explain-answer"); !strings.Contains(got, "No, according to the saved policy") {
		t.Errorf("the saved policy's answer before saving: %q", got)
	}
	shot("rbac-explain-saved-before")
	b.click(button("Save policy"))
	notice("Policy saved.")
	b.do(chromedp.SendKeys(chromedp.ID("explain-subject"), "alice"),
		chromedp.SendKeys(chromedp.ID("explain-resource"), "applications"),
		chromedp.SendKeys(chromedp.ID("explain-action"), "sync"),
		chromedp.SendKeys(chromedp.ID("explain-object"), "team-a/web"))
	b.click(button("Ask the saved policy"))
	if got := b.text("#explain-answer"); !strings.Contains(got, "Yes, according to the saved policy") {
		t.Errorf("the saved policy's answer after saving: %q", got)
	}
	shot("rbac-explain-saved-after")
	if got := e.rbac(); got.PolicyCSV != fixed {
		t.Errorf("saved policy %q, want the fixed text", got.PolicyCSV)
	}

	// The new pages fit a narrow window.
	b.do(chromedp.EmulateViewport(420, 860))
	for _, path := range []string{"/projects", "/projects/team-a", "/projects/team-a/roles/deployer/edit", "/settings/rbac"} {
		b.open(path)
		if ok, wide := b.fitsWidth(); !ok {
			t.Errorf("%s does not fit 420 px: %s", path, wide)
		}
	}
	b.open("/settings/rbac")
	shot("rbac-narrow")
}
