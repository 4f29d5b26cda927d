package service_test

import (
	"context"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/service"
	"github.com/gatehouse/gatehouse/store/sqlite"
)

const previewAdminPassword = "admin-password-for-preview-tests"

// previewEnv is a real Service over a SQLite store with a few accounts,
// a project and a policy; principals come from real tokens.
type previewEnv struct {
	t   *testing.T
	ctx context.Context
	svc *service.Service
	adm *service.Principal
}

func newPreviewEnv(t *testing.T, policy string) *previewEnv {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "gatehouse.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	svc, err := service.New(ctx, service.Options{Store: st, Now: func() time.Time { return now }, BcryptCost: 10,
		RBAC: gatehouse.RBAC{PolicyCSV: policy}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Bootstrap(ctx, previewAdminPassword); err != nil {
		t.Fatal(err)
	}
	e := &previewEnv{t: t, ctx: ctx, svc: svc}
	e.adm = e.session("admin", previewAdminPassword)
	return e
}

// session logs in and authenticates the session token.
func (e *previewEnv) session(user, password string) *service.Principal {
	e.t.Helper()
	nt, err := e.svc.Login(e.ctx, user, password, "127.0.0.1")
	if err != nil {
		e.t.Fatalf("login %s: %v", user, err)
	}
	return e.authenticate(nt.Token)
}

func (e *previewEnv) authenticate(tok string) *service.Principal {
	e.t.Helper()
	p, err := e.svc.Authenticate(e.ctx, tok)
	if err != nil {
		e.t.Fatalf("authenticate: %v", err)
	}
	return p
}

// account creates an account; with login it gets a password (its name
// and "-password").
func (e *previewEnv) account(name string, caps []gatehouse.Capability, groups ...string) {
	e.t.Helper()
	req := gatehouse.AccountCreate{Name: name, Capabilities: caps, Groups: groups}
	for _, c := range caps {
		if c == gatehouse.CapLogin {
			req.Password = name + "-password"
		}
	}
	if _, err := e.svc.CreateAccount(e.ctx, e.adm, req); err != nil {
		e.t.Fatalf("create account %s: %v", name, err)
	}
}

// token mints a token for account as p and authenticates it.
func (e *previewEnv) token(p *service.Principal, account string, scopes ...gatehouse.Scope) *service.Principal {
	e.t.Helper()
	nt, err := e.svc.CreateToken(e.ctx, p, account, gatehouse.TokenRequest{Name: "t", Scopes: scopes})
	if err != nil {
		e.t.Fatalf("mint for %s: %v", account, err)
	}
	return e.authenticate(nt.Token)
}

func cellOf(t *testing.T, g service.Preview, res, act string) service.PreviewCell {
	t.Helper()
	for _, r := range g.Rows {
		for _, c := range r.Cells {
			if r.Resource == res && c.Action == act {
				return c
			}
		}
	}
	t.Fatalf("no cell %s %s", res, act)
	return service.PreviewCell{}
}

var both = []gatehouse.Capability{gatehouse.CapLogin, gatehouse.CapAPIKey}

const previewPolicy = `p, role:dev, applications, *, team-a/*, allow
p, role:dev, applications, delete, team-a/prod, deny
p, carol, audit, get, carol, allow
p, role:minter, accounts, update, *, allow
g, devs, role:dev
g, mia, role:minter`

func TestMintPreviewGrid(t *testing.T) {
	e := newPreviewEnv(t, previewPolicy)
	e.account("carol", both, "devs")

	admin, err := e.svc.MintPreview(e.ctx, e.adm, service.MintOwner{Account: "admin"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c := cellOf(t, admin, "settings", "update"); !c.All {
		t.Errorf("admin settings update = %+v, want all", c)
	}
	if admin.Subject != "admin" || admin.Scoped || len(admin.Problems) != 0 {
		t.Errorf("admin preview %+v", admin)
	}

	carol, err := e.svc.MintPreview(e.ctx, e.adm, service.MintOwner{Account: "carol"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		res, act string
		all      bool
		objects  string
		except   string
	}{
		{"applications", "get", false, "team-a/*", ""},
		{"applications", "delete", false, "team-a/*", "team-a/prod"},
		{"audit", "get", false, "carol", ""},
		{"accounts", "get", false, "", ""},
	} {
		c := cellOf(t, carol, tc.res, tc.act)
		if c.All != tc.all || strings.Join(c.Objects, ",") != tc.objects || strings.Join(c.Except, ",") != tc.except {
			t.Errorf("carol %s %s = %+v, want all %v objects %q except %q", tc.res, tc.act, c, tc.all, tc.objects, tc.except)
		}
	}

	scoped, err := e.svc.MintPreview(e.ctx, e.adm, service.MintOwner{Account: "admin"}, []gatehouse.Scope{{Resource: "applications", Action: "get", Object: "team-b/*"}})
	if err != nil {
		t.Fatal(err)
	}
	if c := cellOf(t, scoped, "applications", "get"); c.All || strings.Join(c.Objects, ",") != "team-b/*" {
		t.Errorf("scoped admin applications get = %+v, want team-b/*", c)
	}
	if c := cellOf(t, scoped, "projects", "get"); !c.None() {
		t.Errorf("scoped admin projects get = %+v, want none", c)
	}
	if len(scoped.Problems) != 0 || !scoped.Scoped {
		t.Errorf("admin holds the scope, yet %+v", scoped)
	}
}

// The grid says what the minted token then does: every "all" cell is
// allowed on "*", every listed pattern is allowed, every "no" cell is
// refused on every pattern the policy and the scopes name.
func TestMintPreviewMatchesTheMintedToken(t *testing.T) {
	e := newPreviewEnv(t, previewPolicy)
	e.account("carol", both, "devs")
	carolSession := e.session("carol", "carol-password")
	for name, scopes := range map[string][]gatehouse.Scope{
		"unscoped":  nil,
		"one app":   {{Resource: "applications", Action: "get", Object: "team-a/web"}},
		"two kinds": {{Resource: "applications", Action: "*", Object: "team-a/*"}, {Resource: "audit", Action: "get", Object: "carol"}},
	} {
		t.Run(name, func(t *testing.T) {
			g, err := e.svc.MintPreview(e.ctx, carolSession, service.MintOwner{Account: "carol"}, scopes)
			if err != nil || len(g.Problems) != 0 {
				t.Fatalf("preview: %v, problems %q", err, g.Problems)
			}
			tok := e.token(carolSession, "carol", scopes...)
			probes := []string{"*", "team-a/*", "team-a/web", "team-a/prod", "team-b/x", "carol", "rbac"}
			for _, row := range g.Rows {
				for _, c := range row.Cells {
					if !c.Applicable {
						continue
					}
					if c.All && !e.svc.Can(tok, row.Resource, c.Action, "*") {
						t.Errorf("%s %s: preview says all, token refused on *", row.Resource, c.Action)
					}
					for _, o := range c.Objects {
						if !e.svc.Can(tok, row.Resource, c.Action, o) {
							t.Errorf("%s %s: preview lists %s, token refused", row.Resource, c.Action, o)
						}
					}
					if c.None() {
						for _, o := range probes {
							if e.svc.Can(tok, row.Resource, c.Action, o) {
								t.Errorf("%s %s: preview says no, token allowed on %s", row.Resource, c.Action, o)
							}
						}
					}
				}
			}
		})
	}
}

// MintPreview answers who may mint for whom exactly as minting does: for
// each case the preview's error and CreateToken's (or CreateRoleToken's)
// are the same.
func TestMintPreviewAppliesTheMintingRules(t *testing.T) {
	e := newPreviewEnv(t, previewPolicy)
	e.account("carol", both, "devs")
	e.account("dave", both)
	e.account("mia", both)
	e.account("loginonly", []gatehouse.Capability{gatehouse.CapLogin})
	e.account("bot", []gatehouse.Capability{gatehouse.CapAPIKey})
	e.account("gone", both)
	off := false
	if _, err := e.svc.UpdateAccount(e.ctx, e.adm, "gone", gatehouse.AccountPatch{Enabled: &off}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.CreateProject(e.ctx, e.adm, gatehouse.Project{Name: "team-a", Roles: []gatehouse.ProjectRole{
		{Name: "deployer", Policies: []string{"p, proj:team-a:deployer, applications, sync, team-a/*, allow"}},
	}}); err != nil {
		t.Fatal(err)
	}
	roleTok, err := e.svc.CreateRoleToken(e.ctx, e.adm, "team-a", "deployer", gatehouse.TokenRequest{Name: "ci"})
	if err != nil {
		t.Fatal(err)
	}
	carol := e.session("carol", "carol-password")
	mia := e.session("mia", "mia-password")
	callers := map[string]*service.Principal{
		"admin":         e.adm,
		"carol":         carol,
		"carol-api":     e.token(carol, "carol"),
		"carol-scoped":  e.token(carol, "carol", gatehouse.Scope{Resource: "applications", Action: "get", Object: "team-a/*"}),
		"mia":           mia,
		"mia-scoped":    e.token(mia, "mia", gatehouse.Scope{Resource: "accounts", Action: "update", Object: "dave"}),
		"role":          e.authenticate(roleTok.Token),
		"loginonly":     e.session("loginonly", "loginonly-password"),
		"admin-for-bot": e.adm,
	}
	acct := func(n string) service.MintOwner { return service.MintOwner{Account: n} }
	role := func(p, r string) service.MintOwner { return service.MintOwner{Project: p, Role: r} }
	for name, tc := range map[string]struct {
		caller string
		owner  service.MintOwner
		want   string
	}{
		"ok/own account":                          {"carol", acct("carol"), ""},
		"ok/own account with an unscoped token":   {"carol-api", acct("carol"), ""},
		"ok/admin for another":                    {"admin", acct("carol"), ""},
		"ok/accounts update for another":          {"mia", acct("carol"), ""},
		"ok/scoped to that account":               {"mia-scoped", acct("dave"), ""},
		"ok/apiKey only":                          {"admin-for-bot", acct("bot"), ""},
		"ok/role token":                           {"admin", role("team-a", "deployer"), ""},
		"fail/another account":                    {"carol", acct("dave"), gatehouse.EFORBIDDEN},
		"fail/own account with a scoped token":    {"carol-scoped", acct("carol"), gatehouse.EFORBIDDEN},
		"fail/own account, scoped to another":     {"mia-scoped", acct("mia"), gatehouse.EFORBIDDEN},
		"fail/a project token for an account":     {"role", acct("carol"), gatehouse.EFORBIDDEN},
		"fail/own account lacks apiKey":           {"loginonly", acct("loginonly"), gatehouse.EPRECONDITION},
		"fail/another account lacks apiKey":       {"admin", acct("loginonly"), gatehouse.EPRECONDITION},
		"fail/disabled account":                   {"admin", acct("gone"), gatehouse.EPRECONDITION},
		"fail/no such account":                    {"admin", acct("ghost"), gatehouse.ENOTFOUND},
		"fail/no such account, no permission":     {"carol", acct("ghost"), gatehouse.EFORBIDDEN},
		"fail/role token without projects update": {"carol", role("team-a", "deployer"), gatehouse.EFORBIDDEN},
		"fail/role token by the role itself":      {"role", role("team-a", "deployer"), gatehouse.EFORBIDDEN},
		"fail/no such role":                       {"admin", role("team-a", "nobody"), gatehouse.ENOTFOUND},
		"fail/no such project":                    {"admin", role("team-z", "deployer"), gatehouse.ENOTFOUND},
		"fail/both kinds of owner":                {"admin", service.MintOwner{Account: "carol", Project: "team-a", Role: "deployer"}, gatehouse.EINVALID},
		"fail/no owner":                           {"admin", service.MintOwner{}, gatehouse.EINVALID},
	} {
		t.Run(name, func(t *testing.T) {
			p := callers[tc.caller]
			_, err := e.svc.MintPreview(e.ctx, p, tc.owner, nil)
			if got := gatehouse.ErrorCode(err); got != tc.want {
				t.Errorf("MintPreview: %v (code %q), want %q", err, got, tc.want)
			}
			before := p.LastDecision()
			if got, want := e.svc.MayMint(e.ctx, p, tc.owner), tc.want == ""; got != want {
				t.Errorf("MayMint = %v, want %v", got, want)
			}
			if p.LastDecision() != before {
				t.Errorf("MayMint recorded a decision: %+v", p.LastDecision())
			}
			if tc.owner.Account != "" && tc.owner.Project != "" || tc.owner == (service.MintOwner{}) {
				return
			}
			var mintErr error
			if tc.owner.Account != "" {
				_, mintErr = e.svc.CreateToken(e.ctx, p, tc.owner.Account, gatehouse.TokenRequest{Name: "same rules"})
			} else {
				_, mintErr = e.svc.CreateRoleToken(e.ctx, p, tc.owner.Project, tc.owner.Role, gatehouse.TokenRequest{Name: "same rules"})
			}
			if got := gatehouse.ErrorCode(mintErr); got != tc.want {
				t.Errorf("minting: %v (code %q), want %q like the preview", mintErr, got, tc.want)
			}
		})
	}
}

// A scope that minting would refuse is a problem of the preview, named
// with its number, for the owner's and for the minter's limits alike.
func TestMintPreviewScopeProblems(t *testing.T) {
	e := newPreviewEnv(t, previewPolicy)
	e.account("carol", both, "devs")
	e.account("mia", both)
	mia := e.session("mia", "mia-password")
	ok := gatehouse.Scope{Resource: "applications", Action: "get", Object: "team-a/*"}
	for name, tc := range map[string]struct {
		p      *service.Principal
		scopes []gatehouse.Scope
		want   []string
	}{
		"ok/held":              {e.adm, []gatehouse.Scope{ok}, nil},
		"fail/beyond owner":    {e.adm, []gatehouse.Scope{ok, {Resource: "accounts", Action: "*", Object: "*"}}, []string{`Scope 2 (accounts, *, *) exceeds the permissions of account "carol"`}},
		"fail/beyond minter":   {mia, []gatehouse.Scope{ok}, []string{"Scope 1 (applications, get, team-a/*) exceeds your own permissions"}},
		"fail/incomplete":      {e.adm, []gatehouse.Scope{{Resource: "applications", Action: " "}}, []string{"Scope 1: resource, action and object are required"}},
		"fail/both, in order":  {mia, []gatehouse.Scope{{Resource: "settings", Action: "get", Object: "x"}, ok}, []string{"Scope 1 (settings", "Scope 2 (applications"}},
		"fail/too many scopes": {e.adm, slices.Repeat([]gatehouse.Scope{ok}, 101), []string{"At most 100 scopes"}},
	} {
		t.Run(name, func(t *testing.T) {
			g, err := e.svc.MintPreview(e.ctx, tc.p, service.MintOwner{Account: "carol"}, tc.scopes)
			if err != nil {
				t.Fatal(err)
			}
			if len(g.Problems) != len(tc.want) {
				t.Fatalf("problems %q, want %d like %q", g.Problems, len(tc.want), tc.want)
			}
			for i, w := range tc.want {
				if !strings.HasPrefix(g.Problems[i], w) || !strings.HasSuffix(g.Problems[i], "; generating would be refused.") {
					t.Errorf("problem %d = %q, want it to start with %q", i+1, g.Problems[i], w)
				}
			}
			_, mintErr := e.svc.CreateToken(e.ctx, tc.p, "carol", gatehouse.TokenRequest{Name: "x", Scopes: tc.scopes})
			if (mintErr == nil) != (len(tc.want) == 0) {
				t.Errorf("minting: %v, yet the preview found %d problems", mintErr, len(g.Problems))
			}
		})
	}
	// Role tokens take no scopes.
	if _, err := e.svc.CreateProject(e.ctx, e.adm, gatehouse.Project{Name: "team-a", Roles: []gatehouse.ProjectRole{{Name: "r"}}}); err != nil {
		t.Fatal(err)
	}
	g, err := e.svc.MintPreview(e.ctx, e.adm, service.MintOwner{Project: "team-a", Role: "r"}, []gatehouse.Scope{ok})
	if err != nil || len(g.Problems) != 1 {
		t.Errorf("role token with scopes: %v, problems %q, want one", err, g.Problems)
	}
}

func TestMintPreviewOfARole(t *testing.T) {
	e := newPreviewEnv(t, "")
	if _, err := e.svc.CreateProject(e.ctx, e.adm, gatehouse.Project{Name: "team-a", Roles: []gatehouse.ProjectRole{
		{Name: "deployer", Policies: []string{"p, proj:team-a:deployer, applications, sync, team-a/*, allow"}},
	}}); err != nil {
		t.Fatal(err)
	}
	g, err := e.svc.MintPreview(e.ctx, e.adm, service.MintOwner{Project: "team-a", Role: "deployer"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if g.Subject != "proj:team-a:deployer" {
		t.Errorf("subject %q", g.Subject)
	}
	if c := cellOf(t, g, "applications", "sync"); strings.Join(c.Objects, ",") != "team-a/*" {
		t.Errorf("applications sync = %+v, want team-a/*", c)
	}
	if c := cellOf(t, g, "applications", "delete"); !c.None() {
		t.Errorf("applications delete = %+v, want none", c)
	}
}
