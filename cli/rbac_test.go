package cli

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// rbacResult is what one run of the rbac command printed and returned.
type rbacResult struct {
	stdout, stderr string
	code           int
	err            error
}

// runRBAC executes the rbac command tree with args, as the root would:
// errors are returned, not printed.
func runRBAC(t *testing.T, stdin string, args ...string) rbacResult {
	t.Helper()
	cmd := newRBACCommand()
	cmd.SilenceErrors = true
	cmd.SilenceUsage = true
	var out, errOut strings.Builder
	cmd.SetIn(strings.NewReader(stdin))
	cmd.SetOut(&out)
	cmd.SetErr(&errOut)
	cmd.SetArgs(args)
	err := cmd.Execute()
	res := rbacResult{stdout: out.String(), stderr: errOut.String(), err: err}
	if err != nil {
		res.code = 1
		var ec interface{ ExitCode() int }
		if errors.As(err, &ec) {
			res.code = ec.ExitCode()
		}
	}
	return res
}

// writePolicy writes a policy file into a fresh temporary directory.
func writePolicy(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

const rbacTestPolicy = `# shop team
p, role:shop-dev, applications, get, shop/*, allow
p, role:shop-dev, applications, sync, shop/*, allow
p, role:shop-dev, applications, sync, shop/prod-*, deny
g, alice, role:shop-dev
g, org:platform, role:admin
p, proj:shop:ci, applications, sync, *, allow
`

func TestRBACCan(t *testing.T) {
	file := writePolicy(t, "policy.csv", rbacTestPolicy)
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"allowed", []string{"alice", "sync", "applications", "shop/web"}, "yes\n"},
		{"denied by a deny line", []string{"alice", "sync", "applications", "shop/prod-db"}, "no\n"},
		{"no line", []string{"alice", "delete", "applications", "shop/web"}, "no\n"},
		{"action before resource", []string{"alice", "applications", "sync", "shop/web"}, "no\n"},
		{"built-in admin", []string{"admin", "delete", "accounts", "bob"}, "yes\n"},
		{"built-in turned off", []string{"admin", "delete", "accounts", "bob", "--builtin=false"}, "no\n"},
		{"group", []string{"bob", "delete", "accounts", "carol", "--group", "devs", "--group", "org:platform"}, "yes\n"},
		{"group with a comma", []string{"bob", "delete", "accounts", "carol", "--group", "a,org:platform"}, "no\n"},
		{"default role", []string{"bob", "get", "projects", "shop", "--default-role", "role:readonly"}, "yes\n"},
		{"without the default role", []string{"bob", "get", "projects", "shop"}, "no\n"},
		{"project role inside its project", []string{"proj:shop:ci", "sync", "applications", "shop/web"}, "yes\n"},
		{"project role outside its project", []string{"proj:shop:ci", "sync", "applications", "bank/web"}, "no\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := runRBAC(t, "", append([]string{"can", "--policy-file", file}, tt.args...)...)
			if res.err != nil || res.stdout != tt.want || res.stderr != "" {
				t.Errorf("stdout %q, stderr %q, err %v; want %q and no error", res.stdout, res.stderr, res.err, tt.want)
			}
		})
	}
}

func TestRBACCanExplain(t *testing.T) {
	file := writePolicy(t, "policy.csv", rbacTestPolicy)
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"alice", "sync", "applications", "shop/prod-db"}, "no\nrule: deny\nmatched:\n" +
			"  line 3: p, role:shop-dev, applications, sync, shop/*, allow\n" +
			"  line 4: p, role:shop-dev, applications, sync, shop/prod-*, deny\n"},
		{[]string{"admin", "get", "settings", "rbac"}, "yes\nrule: subject\nmatched:\n" +
			"  built-in: p, role:readonly, *, get, *, allow\n" +
			"  built-in: p, role:admin, *, *, *, allow\n"},
		{[]string{"bob", "get", "settings", "rbac", "--group", "org:platform"}, "yes\nrule: group\nmatched:\n" +
			"  built-in: p, role:readonly, *, get, *, allow\n" +
			"  built-in: p, role:admin, *, *, *, allow\n"},
		{[]string{"carol", "get", "applications", "shop/web"}, "no\nrule: no-match\nmatched: none\n"},
		{[]string{"proj:shop:ci", "sync", "applications", "bank/web"}, "no\nrule: cross-project\nmatched: none\n"},
	}
	for _, tt := range tests {
		res := runRBAC(t, "", append([]string{"can", "--policy-file", file, "--explain"}, tt.args...)...)
		if res.err != nil || res.stdout != tt.want {
			t.Errorf("can %v --explain:\n got %q (err %v)\nwant %q", tt.args, res.stdout, res.err, tt.want)
		}
	}
}

func TestRBACCanRegexMode(t *testing.T) {
	file := writePolicy(t, "policy.csv", "p, alice, applications, get, shop/.*\n")
	for _, tt := range []struct {
		object, want string
	}{{"shop/web", "yes\n"}, {"myshop/web", "no\n"}} {
		res := runRBAC(t, "", "can", "alice", "get", "applications", tt.object, "--policy-file", file, "--match-mode", "regex")
		if res.err != nil || res.stdout != tt.want {
			t.Errorf("regex can on %s: stdout %q, err %v; want %q", tt.object, res.stdout, res.err, tt.want)
		}
	}
}

func TestRBACCanPolicyFromStdinAndConfigMap(t *testing.T) {
	res := runRBAC(t, "p, alice, applications, get, *\n", "can", "alice", "get", "applications", "x/y", "--policy-file", "-")
	if res.err != nil || res.stdout != "yes\n" {
		t.Errorf("policy on stdin: stdout %q, err %v; want yes", res.stdout, res.err)
	}

	cm := `apiVersion: v1
kind: ConfigMap
metadata:
  name: argocd-rbac-cm
data:
  policy.default: role:readonly
  policy.matchMode: regex
  policy.csv: |
    p, alice, applications, sync, shop/.*, allow
`
	file := writePolicy(t, "argocd-rbac-cm.yaml", cm)
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"alice", "sync", "applications", "shop/web"}, "yes\n"},
		{[]string{"bob", "get", "applications", "shop/web"}, "yes\n"},                               // policy.default
		{[]string{"bob", "get", "applications", "shop/web", "--default-role", "role:none"}, "no\n"}, // the flag wins
	}
	for _, tt := range tests {
		res := runRBAC(t, "", append([]string{"can", "--policy-file", file}, tt.args...)...)
		if res.err != nil || res.stdout != tt.want {
			t.Errorf("ConfigMap can %v: stdout %q, err %v; want %q", tt.args, res.stdout, res.err, tt.want)
		}
	}
	res = runRBAC(t, "", "can", "alice", "sync", "applications", "shop/web", "--policy-file", file, "--match-mode", "glob")
	if res.err != nil || res.stdout != "no\n" {
		t.Errorf("--match-mode glob over the ConfigMap's regex: stdout %q, err %v; want no", res.stdout, res.err)
	}
}

func TestRBACCanFailures(t *testing.T) {
	bad := writePolicy(t, "bad.csv", "p, alice, applications, get\ng, bob\np, carol, applications, get, [x\n")
	badGlob := writePolicy(t, "glob.csv", "p, alice, applications, get, *\np, carol, applications, get, [x\n")
	tests := []struct {
		name       string
		args       []string
		code       int
		stderr     string
		errMessage string
	}{
		{"policy does not load", []string{"can", "alice", "get", "applications", "x", "--policy-file", bad}, 2,
			"", "the policy in " + bad + " does not load: line 1: p line needs 5 or 6 fields, got 4 " +
				"(and 2 more; 'gatehouse admin rbac validate' lists them all)"},
		{"one bad pattern", []string{"can", "alice", "get", "applications", "x", "--policy-file", badGlob}, 2,
			"", "the policy in " + badGlob + ` does not load: line 2: object: invalid glob "[x": unclosed [`},
		{"missing file", []string{"can", "alice", "get", "applications", "x", "--policy-file", filepath.Join(t.TempDir(), "none.csv")}, 2,
			"", "cannot read the policy: open "},
		{"bad match mode", []string{"can", "alice", "get", "applications", "x", "--policy-file", bad, "--match-mode", "fuzzy"}, 1,
			"", `--match-mode must be glob or regex, not "fuzzy"`},
		{"no policy file", []string{"can", "alice", "get", "applications", "x"}, 1,
			"", `required flag(s) "policy-file" not set`},
		{"too few arguments", []string{"can", "alice", "get", "applications", "--policy-file", bad}, 1,
			"", "accepts 4 arg(s), received 3"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := runRBAC(t, "", tt.args...)
			if res.code != tt.code || res.stdout != "" || res.stderr != tt.stderr {
				t.Errorf("exit %d, stdout %q, stderr %q; want exit %d, no stdout, stderr %q", res.code, res.stdout, res.stderr, tt.code, tt.stderr)
			}
			if res.err == nil || !strings.HasPrefix(res.err.Error(), tt.errMessage) {
				t.Errorf("error %v, want one starting %q", res.err, tt.errMessage)
			}
			if res.err != nil && strings.Contains(res.err.Error(), "\n") {
				t.Errorf("error %q spans lines, want one line", res.err)
			}
		})
	}
}

func TestRBACValidate(t *testing.T) {
	tests := []struct {
		name   string
		policy string
		args   []string
		code   int
		stdout string
	}{
		{"valid", rbacTestPolicy, nil, 0, "policy is valid (6 lines)\n"},
		{"warnings only", "g, alice, role:ghost\ng, bob, role:admin\n", nil, 0,
			"warning: line 1: role \"role:ghost\" has no policy lines, so \"alice\" gains nothing from it\n" +
				"policy is valid (2 lines, 1 warning)\n"},
		{"errors", "p, alice, applications, get\n# fine\np, bob, applications, get, *, permit\np, carol, app[, get, *\n", nil, 1,
			"error: line 1: p line needs 5 or 6 fields, got 4\n" +
				"error: line 3: bad effect \"permit\": want allow or deny\n" +
				"error: line 4: resource: invalid glob \"app[\": unclosed [\n"},
		{"regex mode", "p, alice, applications, get, shop/(\n", []string{"--match-mode", "regex"}, 1,
			"error: line 1: object: invalid regex \"shop/(\": error parsing regexp: missing closing ): `shop/(`\n"},
		{"empty", "# nothing yet\n", nil, 0, "policy is valid (0 lines)\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			file := writePolicy(t, "policy.csv", tt.policy)
			res := runRBAC(t, "", append([]string{"validate", "--policy-file", file}, tt.args...)...)
			if res.code != tt.code || res.stdout != tt.stdout {
				t.Errorf("exit %d, stdout\n%s\nwant exit %d, stdout\n%s", res.code, res.stdout, tt.code, tt.stdout)
			}
			if tt.code != 0 && (res.err == nil || !strings.Contains(res.err.Error(), "is invalid")) {
				t.Errorf("error %v, want one saying the policy is invalid", res.err)
			}
		})
	}
	res := runRBAC(t, "", "validate", "--policy-file", filepath.Join(t.TempDir(), "missing.csv"))
	if res.code != 2 {
		t.Errorf("validate of a missing file: exit %d, want 2", res.code)
	}
}

// TestRBACUnderAdmin runs the commands as a user does, through the whole
// gatehouse tree: they are wired under admin, answer offline (no server is
// configured), and their exit codes and one-line errors survive Run.
func TestRBACUnderAdmin(t *testing.T) {
	good := writePolicy(t, "policy.csv", rbacTestPolicy)
	bad := writePolicy(t, "bad.csv", "p, alice, applications, get, *\ng, bob\nx, y, z\n")
	tests := []struct {
		name   string
		args   []string
		code   int
		stdout string
		stderr string // for a failure, part of its one "error: " line
	}{
		{"yes", []string{"can", "alice", "sync", "applications", "shop/web", "--policy-file", good}, 0, "yes\n", ""},
		{"no", []string{"can", "alice", "sync", "applications", "shop/prod-db", "--policy-file", good}, 0, "no\n", ""},
		{"valid", []string{"validate", "--policy-file", good}, 0, "policy is valid (6 lines)\n", ""},
		{"does not load", []string{"can", "alice", "get", "applications", "x", "--policy-file", bad}, 2, "",
			"error: the policy in " + bad + " does not load: line 2: g line needs 3 fields, got 2 (and 1 more; "},
		{"invalid", []string{"validate", "--policy-file", bad}, 1,
			"error: line 2: g line needs 3 fields, got 2\nerror: line 3: unknown line type \"x\": want p or g\n",
			"error: the policy in " + bad + " is invalid: 2 errors"},
		{"unreadable", []string{"validate", "--policy-file", filepath.Join(t.TempDir(), "none.csv")}, 2, "",
			"error: cannot read the policy: open "},
	}
	// Argo CD's spelling, admin settings rbac, is the same command.
	for _, prefix := range [][]string{{"admin", "rbac"}, {"admin", "settings", "rbac"}} {
		for _, tt := range tests {
			t.Run(strings.Join(prefix, " ")+"/"+tt.name, func(t *testing.T) {
				res := cliRun{}.run(t, append(append([]string{}, prefix...), tt.args...)...)
				if res.code != tt.code || res.stdout != tt.stdout {
					t.Errorf("exit %d, stdout %q; want exit %d, stdout %q", res.code, res.stdout, tt.code, tt.stdout)
				}
				if tt.code == 0 {
					if res.stderr != "" {
						t.Errorf("stderr %q, want nothing", res.stderr)
					}
					return
				}
				mustFail(t, res, tt.stderr)
			})
		}
	}
	// A mistyped word under the new group fails, with a suggestion.
	mustFail(t, cliRun{}.run(t, "admin", "settings", "rbac", "cann"), `did you mean can?`)
	mustFail(t, cliRun{}.run(t, "admin", "settings", "rback"), `did you mean rbac?`)
}
