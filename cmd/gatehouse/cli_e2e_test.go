package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/token"
)

// The tests in this file run the real gatehouse binary as a CLI against a
// real `gatehouse server`, as a user would: every invocation gets a clean
// environment (nothing inherited from the developer's shell) with its own
// HOME and GATEHOUSE_CONFIG_DIR, so no developer config is read or touched.

const e2eAdminPassword = "e2e-admin-password"

// cliUser is one person at a terminal: a home directory, a config
// directory, and environment variables of their own.
type cliUser struct {
	home      string
	configDir string
	env       []string // extra KEY=VALUE entries
}

// newCLIUser returns a user with an empty home and config directory. env
// adds variables such as GATEHOUSE_SERVER.
func newCLIUser(t *testing.T, env ...string) *cliUser {
	t.Helper()
	home := t.TempDir()
	return &cliUser{home: home, configDir: filepath.Join(home, "gatehouse-config"), env: env}
}

// with returns the same user (same home and config) with more variables.
func (u *cliUser) with(env ...string) *cliUser {
	return &cliUser{home: u.home, configDir: u.configDir, env: append(slices.Clone(u.env), env...)}
}

func (u *cliUser) configPath() string { return filepath.Join(u.configDir, "config") }

// cliResult is one finished run of the binary.
type cliResult struct {
	args           []string
	code           int
	stdout, stderr string
}

// run runs the binary with args and an empty standard input.
func (u *cliUser) run(t *testing.T, args ...string) cliResult {
	t.Helper()
	return u.runWithInput(t, "", args...)
}

// runWithInput runs the binary with args, feeding stdin to it. Standard
// input is never a terminal, so the CLI reads passwords from it.
func (u *cliUser) runWithInput(t *testing.T, stdin string, args ...string) cliResult {
	t.Helper()
	// The deadline only guards against a hang (a prompt that waits for
	// ever); no assertion depends on how long a command takes.
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, args...)
	cmd.Env = append([]string{"HOME=" + u.home, "GATEHOUSE_CONFIG_DIR=" + u.configDir}, u.env...)
	cmd.Dir = u.home
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	res := cliResult{args: args, stdout: stdout.String(), stderr: stderr.String()}
	var ee *exec.ExitError
	switch {
	case ctx.Err() != nil:
		t.Fatalf("gatehouse %s did not finish: %v; stderr:\n%s", strings.Join(args, " "), ctx.Err(), res.stderr)
	case errors.As(err, &ee):
		res.code = ee.ExitCode()
	case err != nil:
		t.Fatalf("gatehouse %s: %v", strings.Join(args, " "), err)
	}
	return res
}

// ok fails the test unless r exited 0 with nothing on stderr, and returns
// its standard output.
func ok(t *testing.T, r cliResult) string {
	t.Helper()
	if r.code != 0 || r.stderr != "" {
		t.Fatalf("gatehouse %s: exit %d, stderr %q, stdout %q", strings.Join(r.args, " "), r.code, r.stderr, r.stdout)
	}
	return r.stdout
}

// fails fails the test unless r exited non-zero with exactly one line on
// stderr, "error: ...", that contains every one of wants.
func fails(t *testing.T, r cliResult, wants ...string) {
	t.Helper()
	cmd := "gatehouse " + strings.Join(r.args, " ")
	if r.code == 0 {
		t.Fatalf("%s: exit 0, want a failure; stdout %q", cmd, r.stdout)
	}
	if !strings.HasPrefix(r.stderr, "error: ") || strings.Count(r.stderr, "\n") != 1 || !strings.HasSuffix(r.stderr, "\n") {
		t.Errorf("%s: stderr %q, want one line starting with \"error: \"", cmd, r.stderr)
	}
	for _, want := range wants {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("%s: stderr %q does not contain %q", cmd, r.stderr, want)
		}
	}
}

// decodeStrict decodes the CLI's JSON output into T, refusing fields that
// T does not have: -o json must be the API's own JSON.
func decodeStrict[T any](t *testing.T, r cliResult) T {
	t.Helper()
	var v T
	dec := json.NewDecoder(strings.NewReader(ok(t, r)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("gatehouse %s: output is not a %T: %v\n%s", strings.Join(r.args, " "), v, err, r.stdout)
	}
	return v
}

// onlyToken checks that out is exactly one line holding one well-formed
// token, and returns the token.
func onlyToken(t *testing.T, out string) (string, token.Token) {
	t.Helper()
	tok, found := strings.CutSuffix(out, "\n")
	if !found || strings.ContainsAny(tok, "\n \t") {
		t.Fatalf("output %q, want exactly one line with the token", out)
	}
	parsed, err := token.Parse(tok)
	if err != nil {
		t.Fatalf("output is not a token: %v", err)
	}
	return tok, parsed
}

// loggedIn starts a server and logs a fresh user in to it as admin with a
// host:port server address and --plaintext, the password on standard
// input.
func loggedIn(t *testing.T) (*proc, *cliUser) {
	t.Helper()
	s := start(t, "GATEHOUSE_ADMIN_PASSWORD="+e2eAdminPassword)
	u := newCLIUser(t)
	hostport := strings.TrimPrefix(s.url, "http://")
	out := ok(t, u.runWithInput(t, e2eAdminPassword+"\n", "login", hostport, "--plaintext", "--username", "admin"))
	if want := "'admin' logged in successfully\nContext '" + hostport + "' updated\n"; out != want {
		t.Fatalf("login printed %q, want %q", out, want)
	}
	return s, u
}

// sessionToken reads the token that the user's current context holds.
func sessionToken(t *testing.T, u *cliUser) string {
	t.Helper()
	b, err := os.ReadFile(u.configPath())
	if err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		Current  string `yaml:"current-context"`
		Contexts []struct {
			Name, Token string
		}
	}
	if err := yaml.Unmarshal(b, &cfg); err != nil {
		t.Fatalf("config file: %v", err)
	}
	for _, c := range cfg.Contexts {
		if c.Name == cfg.Current {
			return c.Token
		}
	}
	t.Fatalf("config file has no current context:\n%s", b)
	return ""
}

// userinfoStatus asks the server directly, not through the CLI, whom tok
// belongs to and returns the HTTP status.
func userinfoStatus(t *testing.T, s *proc, tok string) int {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, s.url+"/api/v1/session/userinfo", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// withToken is a user with no config file at all who has tok and the
// server in the environment, as in a CI job.
func withToken(t *testing.T, s *proc, tok string) *cliUser {
	t.Helper()
	return newCLIUser(t, "GATEHOUSE_SERVER="+s.url, "GATEHOUSE_AUTH_TOKEN="+tok)
}

// tokenByID returns the listed token with the given id.
func tokenByID(t *testing.T, items []gatehouse.Token, id string) gatehouse.Token {
	t.Helper()
	i := slices.IndexFunc(items, func(x gatehouse.Token) bool { return x.ID == id })
	if i < 0 {
		t.Fatalf("token %s is not among the %d listed", id, len(items))
	}
	return items[i]
}

func TestCLIAccountTokenLifecycle(t *testing.T) {
	t.Parallel()
	s, u := loggedIn(t)

	// The config file holds a session token: only its owner may read it.
	fi, err := os.Stat(u.configPath())
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got != 0o600 {
		t.Errorf("config file mode %04o, want 0600", got)
	}
	session := sessionToken(t, u)
	if status := userinfoStatus(t, s, session); status != http.StatusOK {
		t.Fatalf("the session token from the config gets %d, want 200", status)
	}

	// generate-token prints the token and nothing else.
	tok, parsed := onlyToken(t, ok(t, u.run(t, "account", "generate-token", "--name", "laptop scripts", "-e", "7d")))
	id := parsed.ID.String()

	table := ok(t, u.run(t, "account", "list-tokens"))
	lines := strings.Split(strings.TrimSuffix(table, "\n"), "\n")
	if len(lines) != 2 {
		t.Fatalf("list-tokens printed %d lines, want a header and one token:\n%s", len(lines), table)
	}
	if got := strings.Fields(lines[0]); !slices.Equal(got, []string{"ID", "NAME", "ISSUED", "EXPIRES", "LAST", "USED"}) {
		t.Errorf("list-tokens header %q", lines[0])
	}
	if !strings.HasPrefix(lines[1], id+"  laptop scripts  ") {
		t.Errorf("list-tokens row %q, want the id %s and the name", lines[1], id)
	}
	if strings.Contains(table, tok) || strings.Contains(table, parsed.Body()) {
		t.Fatal("list-tokens printed the token secret")
	}
	listed := tokenByID(t, decodeStrict[[]gatehouse.Token](t, u.run(t, "account", "list-tokens", "-o", "json")), id)
	if listed.Name != "laptop scripts" || listed.Kind != gatehouse.KindAPI || listed.Account != "admin" {
		t.Errorf("listed token = %+v, want admin's api token \"laptop scripts\"", listed)
	}
	if got := listed.ExpiresAt.Sub(listed.IssuedAt).Round(time.Second); got != 7*24*time.Hour {
		t.Errorf("token lifetime %v, want 7d", got)
	}

	// A CI job: no config at all, the token and server in the environment.
	ci := withToken(t, s, tok)
	info := decodeStrict[gatehouse.UserInfo](t, ci.run(t, "account", "get-user-info", "-o", "json"))
	if !info.LoggedIn || info.Username != "admin" || info.TokenID != id || info.TokenKind != gatehouse.KindAPI {
		t.Errorf("get-user-info = %+v, want admin's api token %s", info, id)
	}
	out := ok(t, ci.run(t, "account", "get-user-info"))
	for _, want := range []string{"Username:    admin", "Token ID:    " + id, "Token Kind:  api"} {
		if !strings.Contains(out, want) {
			t.Errorf("get-user-info table does not show %q:\n%s", want, out)
		}
	}
	if got := ok(t, ci.run(t, "account", "can-i", "get", "projects", "*")); got != "yes\n" {
		t.Errorf("can-i get projects '*' = %q, want yes", got)
	}
	if _, err := os.Stat(ci.configDir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a run with the token in the environment created %s (%v)", ci.configDir, err)
	}

	// rotate-token with a grace period: both tokens work for now.
	graced, gracedParsed := onlyToken(t, ok(t, u.run(t, "account", "rotate-token", id, "--grace", "1h")))
	for _, tk := range []string{tok, graced} {
		if got := ok(t, withToken(t, s, tk).run(t, "account", "can-i", "get", "projects", "*")); got != "yes\n" {
			t.Errorf("during the grace period a token answers %q, want yes", got)
		}
	}
	items := decodeStrict[[]gatehouse.Token](t, u.run(t, "account", "list-tokens", "-o", "json"))
	if old, fresh := tokenByID(t, items, id), tokenByID(t, items, gracedParsed.ID.String()); !old.ExpiresAt.Before(fresh.ExpiresAt) || fresh.Name != "laptop scripts" {
		t.Errorf("after rotate --grace 1h: old token %+v, new token %+v; want the old one to end first and the name kept", old, fresh)
	}

	// rotate-token without grace: the old token is refused at once.
	rotated, rotatedParsed := onlyToken(t, ok(t, u.run(t, "account", "rotate-token", gracedParsed.ID.String())))
	if rotated == graced {
		t.Fatal("rotate-token printed the old token")
	}
	rotatedUser := withToken(t, s, rotated)
	if got := decodeStrict[gatehouse.UserInfo](t, rotatedUser.run(t, "account", "get-user-info", "-o", "json")); got.TokenID != rotatedParsed.ID.String() {
		t.Errorf("the rotated token is %q, want %s", got.TokenID, rotatedParsed.ID)
	}
	// (Presenting the old token now would revoke the rotated one as
	// reuse, which the server tests show; it is presented below, once
	// the rotated one is deleted.)

	// delete-token: the token is refused, with a one-line error that
	// says which token and never shows it.
	out = ok(t, u.run(t, "account", "delete-token", rotatedParsed.ID.String()))
	if want := "token " + rotatedParsed.ID.String() + " of account 'admin' deleted\n"; out != want {
		t.Errorf("delete-token printed %q, want %q", out, want)
	}
	res := rotatedUser.run(t, "account", "can-i", "get", "projects", "*")
	fails(t, res, "the token from GATEHOUSE_AUTH_TOKEN was refused")
	if strings.Contains(res.stderr, rotatedParsed.Body()) {
		t.Fatal("the error shows the token")
	}
	if res.stdout != "" {
		t.Errorf("a refused token printed %q on stdout", res.stdout)
	}
	fails(t, u.run(t, "account", "delete-token", rotatedParsed.ID.String()), "not found")
	fails(t, withToken(t, s, graced).run(t, "account", "get-user-info"), "the token from GATEHOUSE_AUTH_TOKEN was refused")

	// logout revokes the session on the server, not only in the config.
	if out := ok(t, u.run(t, "logout")); !strings.HasPrefix(out, "Logged out from ") {
		t.Errorf("logout printed %q", out)
	}
	if status := userinfoStatus(t, s, session); status != http.StatusUnauthorized {
		t.Errorf("the logged-out session token gets %d, want 401", status)
	}
	if got := sessionToken(t, u); got != "" {
		t.Error("the config still holds the session token after logout")
	}
	// The context stays, without a token: the CLI says how to get back in.
	fails(t, u.run(t, "account", "list-tokens"), "run: gatehouse relogin")
	ok(t, u.runWithInput(t, e2eAdminPassword+"\n", "relogin"))
	if out := ok(t, u.run(t, "account", "can-i", "get", "projects", "*")); out != "yes\n" {
		t.Errorf("after relogin can-i = %q, want yes", out)
	}
}

func TestCLIConfigFileMustBePrivate(t *testing.T) {
	t.Parallel()
	s := start(t, "GATEHOUSE_ADMIN_PASSWORD="+e2eAdminPassword)
	u := newCLIUser(t)
	hostport := strings.TrimPrefix(s.url, "http://")

	// A bare host:port means HTTPS; the answer says how to reach a plain
	// HTTP server, and nothing is written.
	fails(t, u.runWithInput(t, e2eAdminPassword+"\n", "login", hostport, "--username", "admin"), "--plaintext", "http://"+hostport)
	if _, err := os.Stat(u.configPath()); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a failed login wrote the config file (%v)", err)
	}
	fails(t, u.runWithInput(t, "wrong-password\n", "login", s.url, "--username", "admin"), "invalid username or password")

	// An http:// URL needs no --plaintext; the password comes from the flag.
	ok(t, u.run(t, "login", s.url, "--username", "admin", "--password", e2eAdminPassword))
	fi, err := os.Stat(u.configPath())
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got != 0o600 {
		t.Fatalf("config file mode %04o, want 0600", got)
	}
	if fi, err := os.Stat(u.configDir); err != nil {
		t.Error(err)
	} else if got := fi.Mode().Perm(); got != 0o700 {
		t.Errorf("config directory mode %04o, want 0700", got)
	}
	ok(t, u.run(t, "account", "get-user-info"))

	if err := os.Chmod(u.configPath(), 0o644); err != nil {
		t.Fatal(err)
	}
	before, err := os.ReadFile(u.configPath())
	if err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"account", "get-user-info"},
		{"logout"},
		// Refused before the password is asked for.
		{"login", s.url, "--username", "admin"},
	} {
		fails(t, u.runWithInput(t, e2eAdminPassword+"\n", args...), "mode 0644", "chmod 600 "+u.configPath())
	}
	after, err := os.ReadFile(u.configPath())
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(before, after) {
		t.Error("a refused config file was rewritten")
	}
	// With the token in the environment the config is not read at all.
	ok(t, u.with("GATEHOUSE_SERVER="+s.url, "GATEHOUSE_AUTH_TOKEN="+sessionToken(t, u)).run(t, "account", "get-user-info"))

	if err := os.Chmod(u.configPath(), 0o600); err != nil {
		t.Fatal(err)
	}
	ok(t, u.run(t, "account", "get-user-info"))
}

func TestCLIProjectRoleTokenAndApplications(t *testing.T) {
	t.Parallel()
	s, admin := loggedIn(t)

	steps := []struct {
		args []string
		want string
	}{
		{[]string{"proj", "create", "shop", "-d", "the shop"}, "project 'shop' created\n"},
		{[]string{"proj", "create", "other"}, "project 'other' created\n"},
		{[]string{"proj", "role", "create", "shop", "ci"}, "role 'ci' created in project 'shop'\n"},
		{[]string{"proj", "role", "add-policy", "shop", "ci", "-a", "sync", "-o", "*", "-p", "allow"}, "p, proj:shop:ci, applications, sync, shop/*, allow\n"},
		{[]string{"app", "create", "web", "--project", "shop", "--repo", "https://git.example.com/web.git", "--path", "deploy",
			"--dest-server", "https://kubernetes.default.svc", "--dest-namespace", "web"}, "application 'web' created\n"},
		{[]string{"app", "create", "db", "--project", "other", "--repo", "https://git.example.com/db.git", "--path", "deploy",
			"--dest-server", "https://kubernetes.default.svc", "--dest-namespace", "db"}, "application 'db' created\n"},
	}
	for _, st := range steps {
		if got := ok(t, admin.run(t, st.args...)); got != st.want {
			t.Errorf("gatehouse %s printed %q, want %q", strings.Join(st.args, " "), got, st.want)
		}
	}
	// Adding the same policy again changes nothing.
	ok(t, admin.run(t, "proj", "role", "add-policy", "shop", "ci", "-a", "sync", "-o", "*"))
	role := decodeStrict[gatehouse.ProjectRole](t, admin.run(t, "proj", "role", "get", "shop", "ci", "-o", "json"))
	if want := []string{"p, proj:shop:ci, applications, sync, shop/*, allow"}; !slices.Equal(role.Policies, want) {
		t.Errorf("role policies = %q, want %q", role.Policies, want)
	}

	roleTok, roleParsed := onlyToken(t, ok(t, admin.run(t, "proj", "role", "create-token", "shop", "ci", "-t", "--name", "pipeline")))
	listed := tokenByID(t, decodeStrict[[]gatehouse.Token](t, admin.run(t, "proj", "role", "list-tokens", "shop", "ci", "-o", "json")), roleParsed.ID.String())
	if listed.Kind != gatehouse.KindProject || listed.Project != "shop" || listed.Role != "ci" || listed.Name != "pipeline" {
		t.Errorf("role token listed as %+v", listed)
	}

	// The role token syncs inside its project and nowhere else.
	pipeline := withToken(t, s, roleTok)
	op := decodeStrict[gatehouse.Operation](t, pipeline.run(t, "app", "sync", "web", "--revision", "v1.4.2", "-o", "json"))
	if op.Application != "web" || op.State != gatehouse.OpPending || op.Revision != "v1.4.2" || op.RequestedBy != "proj:shop:ci" {
		t.Errorf("sync answered %+v, want a Pending operation on web at v1.4.2 by proj:shop:ci", op)
	}
	table := ok(t, pipeline.run(t, "app", "sync", "web"))
	for _, want := range []string{"Application:   web", "State:         Pending", "Requested By:  proj:shop:ci"} {
		if !strings.Contains(table, want) {
			t.Errorf("sync table does not show %q:\n%s", want, table)
		}
	}
	// The refusal names no project: a caller who may not act on an
	// application does not learn where it lives.
	fails(t, pipeline.run(t, "app", "sync", "db"), "permission denied", `applications, sync, application "db"`)
	for _, tt := range []struct {
		object, want string
	}{
		{"shop/web", "yes\n"},
		{"other/db", "no\n"},
	} {
		if got := ok(t, pipeline.run(t, "account", "can-i", "sync", "applications", tt.object)); got != tt.want {
			t.Errorf("role token can-i sync %s = %q, want %q", tt.object, got, tt.want)
		}
	}
	// It cannot reach outside the project, not even to read.
	fails(t, pipeline.run(t, "app", "get", "db"), "permission denied")
	fails(t, pipeline.run(t, "proj", "role", "create-token", "shop", "ci"), "permission denied")
	fails(t, pipeline.run(t, "account", "list-tokens"), "acts as project role proj:shop:ci")

	// The admin sees both applications and the operations.
	apps := decodeStrict[[]gatehouse.Application](t, admin.run(t, "app", "list", "-o", "json"))
	var names []string
	for _, a := range apps {
		names = append(names, a.Project+"/"+a.Name)
	}
	if want := []string{"other/db", "shop/web"}; !slices.Equal(names, want) {
		t.Errorf("app list = %q, want %q", names, want)
	}
	if shopOnly := decodeStrict[[]gatehouse.Application](t, admin.run(t, "app", "list", "-p", "shop", "-o", "json")); len(shopOnly) != 1 || shopOnly[0].Name != "web" {
		t.Errorf("app list -p shop = %+v, want web only", shopOnly)
	}
	table = ok(t, admin.run(t, "app", "list"))
	if !strings.HasPrefix(table, "NAME ") || !strings.Contains(table, "https://git.example.com/web.git") {
		t.Errorf("app list table:\n%s", table)
	}
	ops := decodeStrict[[]gatehouse.Operation](t, admin.run(t, "app", "operations", "web", "-o", "json"))
	if len(ops) != 2 || !slices.ContainsFunc(ops, func(o gatehouse.Operation) bool { return o.ID == op.ID && o.RequestedBy == "proj:shop:ci" }) {
		t.Errorf("operations of web = %+v, want the two syncs of the role token", ops)
	}
	if ops := decodeStrict[[]gatehouse.Operation](t, admin.run(t, "app", "operations", "db", "-o", "json")); len(ops) != 0 {
		t.Errorf("the refused sync queued %d operations on db", len(ops))
	}

	// A deploy agent reports the status.
	if got := ok(t, admin.run(t, "app", "set-status", "web", "--sync", "Synced", "--health", "Healthy", "--revision", "v1.4.2", "--message", "all good")); got != "application 'web' is Synced and Healthy\n" {
		t.Errorf("set-status printed %q", got)
	}
	fails(t, admin.run(t, "app", "set-status", "web", "--sync", "Synched", "--health", "Healthy"), "Synced, OutOfSync, Unknown")
	app := decodeStrict[gatehouse.Application](t, admin.run(t, "app", "get", "web", "-o", "json"))
	if st := app.Status; st.Sync != "Synced" || st.Health != "Healthy" || st.Revision != "v1.4.2" || st.Message != "all good" || st.ReportedAt.IsZero() {
		t.Errorf("web status = %+v, want what set-status reported", st)
	}
	if app.Project != "shop" || app.Spec.RepoURL != "https://git.example.com/web.git" || app.Spec.TargetRevision != "HEAD" {
		t.Errorf("web = %+v, want the created spec", app)
	}
	table = ok(t, admin.run(t, "app", "get", "web"))
	for _, want := range []string{"Sync Status:    Synced", "Health Status:  Healthy"} {
		if !strings.Contains(table, want) {
			t.Errorf("app get does not show %q:\n%s", want, table)
		}
	}

	// Deleting the role kills its tokens.
	ok(t, admin.run(t, "proj", "role", "delete", "shop", "ci"))
	fails(t, pipeline.run(t, "app", "sync", "web"), "the token from GATEHOUSE_AUTH_TOKEN was refused")
}

func TestCLIBreakGlassAndAudit(t *testing.T) {
	t.Parallel()
	s, admin := loggedIn(t)

	if got := ok(t, admin.run(t, "account", "create", "ci", "--capabilities", "apiKey")); got != "account 'ci' created\n" {
		t.Errorf("account create printed %q", got)
	}
	var ids []string
	var ciTokens []string
	for _, name := range []string{"one", "two"} {
		tok, parsed := onlyToken(t, ok(t, admin.run(t, "account", "generate-token", "-a", "ci", "--name", name)))
		ids = append(ids, parsed.ID.String())
		ciTokens = append(ciTokens, tok)
	}
	adminTok, _ := onlyToken(t, ok(t, admin.run(t, "account", "generate-token", "--name", "mine")))
	// The ci token is used once, so the audit has a request of it.
	ciUser := withToken(t, s, ciTokens[0])
	if got := ok(t, ciUser.run(t, "account", "can-i", "sync", "applications", "shop/web")); got != "no\n" {
		t.Errorf("ci can-i = %q, want no", got)
	}

	firstID := ids[0]
	res := decodeStrict[gatehouse.BulkRevokeResult](t, admin.run(t, "admin", "revoke", "--account", "ci", "--dry-run", "-o", "json"))
	slices.Sort(res.IDs)
	slices.Sort(ids)
	if !res.DryRun || res.Count != 2 || !slices.Equal(res.IDs, ids) {
		t.Errorf("dry run = %+v, want count 2, ids %v, dryRun true", res, ids)
	}
	// A dry run revokes nothing.
	ok(t, ciUser.run(t, "account", "get-user-info"))
	// Without --dry-run and without a terminal it needs --yes.
	fails(t, admin.run(t, "admin", "revoke", "--account", "ci"), "--yes")
	ok(t, ciUser.run(t, "account", "get-user-info"))

	// audit list, as a table and as JSON. Token lifecycle events are
	// written in the transaction that mints, so they are there at once.
	table := ok(t, admin.run(t, "audit", "list"))
	if header := strings.Fields(strings.SplitN(table, "\n", 2)[0]); !slices.Equal(header, []string{"TIME", "TYPE", "ACTOR", "ACCOUNT", "TOKEN", "METHOD", "PATH", "PERMISSION", "DECISION", "VIA", "STATUS", "COUNT"}) {
		t.Errorf("audit list header %q", header)
	}
	for _, id := range ids {
		r := admin.run(t, "audit", "list", "--token-id", id, "-o", "json")
		events := decodeStrict[[]gatehouse.Event](t, r)
		if !slices.ContainsFunc(events, func(e gatehouse.Event) bool {
			return e.Type == gatehouse.EventTokenCreated && e.Actor == "admin" && e.Object == "ci"
		}) {
			t.Errorf("no token.created event by admin for ci's token %s among %+v", id, events)
		}
		for _, e := range events {
			if e.TokenID != id {
				t.Errorf("audit list --token-id %s lists an event of token %q", id, e.TokenID)
			}
		}
		noSecrets(t, r.stdout, append([]string{adminTok}, ciTokens...))
	}
	// Request events are written behind the request (group commit), so
	// the ci token's request may take a moment to show.
	canI := "/api/v1/account/can-i/applications/sync/shop/web"
	var events []gatehouse.Event
	for attempt := 0; attempt < 100; attempt++ {
		r := admin.run(t, "audit", "list", "--account", "ci", "-o", "json")
		noSecrets(t, r.stdout, append([]string{adminTok}, ciTokens...))
		events = decodeStrict[[]gatehouse.Event](t, r)
		if slices.ContainsFunc(events, func(e gatehouse.Event) bool { return e.Path == canI }) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	i := slices.IndexFunc(events, func(e gatehouse.Event) bool { return e.Path == canI })
	if i < 0 {
		t.Fatalf("no request event of the ci token's can-i among %+v", events)
	}
	if e := events[i]; e.Type != gatehouse.EventRequest || e.TokenID != firstID || e.TokenKind != gatehouse.KindAPI || e.Status != http.StatusOK || e.Method != http.MethodGet {
		t.Errorf("can-i request event = %+v, want a GET by token %s answered 200", e, firstID)
	}
	// --account is what concerns ci, whoever acted: the admin's minting
	// of ci's tokens too. --actor is what ci did.
	for _, e := range events {
		if e.Account != "ci" {
			t.Errorf("audit list --account ci lists an event about %q", e.Account)
		}
	}
	if !slices.ContainsFunc(events, func(e gatehouse.Event) bool { return e.Actor == "admin" && e.Type == gatehouse.EventTokenCreated }) {
		t.Errorf("audit list --account ci misses the admin minting ci's tokens: %+v", events)
	}
	byCI := decodeStrict[[]gatehouse.Event](t, admin.run(t, "audit", "list", "--actor", "ci", "-o", "json"))
	if len(byCI) == 0 {
		t.Error("audit list --actor ci lists nothing")
	}
	for _, e := range byCI {
		if e.Actor != "ci" {
			t.Errorf("audit list --actor ci lists an event of %q", e.Actor)
		}
	}
	// A page of one says on stderr where the next page starts.
	r := admin.run(t, "audit", "list", "--limit", "1", "-o", "json")
	if page := decodeStrict[[]gatehouse.Event](t, cliResult{args: r.args, stdout: r.stdout}); r.code != 0 || len(page) != 1 || !strings.HasPrefix(r.stderr, "more events: add --cursor ") {
		t.Errorf("audit list --limit 1: exit %d, %d events, stderr %q; want one event and the next cursor", r.code, len(page), r.stderr)
	}

	// The real thing, then the tokens are refused.
	res = decodeStrict[gatehouse.BulkRevokeResult](t, admin.run(t, "admin", "revoke", "--account", "ci", "--yes", "-o", "json"))
	if res.DryRun || res.Count != 2 {
		t.Errorf("revoke = %+v, want count 2", res)
	}
	fails(t, ciUser.run(t, "account", "get-user-info"), "the token from GATEHOUSE_AUTH_TOKEN was refused")
	ok(t, withToken(t, s, adminTok).run(t, "account", "get-user-info"))
}

// noSecrets fails the test if out shows any of the tokens, whole or
// their body (which carries the secret).
func noSecrets(t *testing.T, out string, tokens []string) {
	t.Helper()
	for _, tk := range tokens {
		_, body, _ := strings.Cut(tk, ":")
		if strings.Contains(out, body) {
			t.Fatal("the output shows a token")
		}
	}
}

func TestCLITokenInspect(t *testing.T) {
	t.Parallel()
	_, admin := loggedIn(t)
	tok, parsed := onlyToken(t, ok(t, admin.run(t, "account", "generate-token", "--name", "inspect me")))
	id := parsed.ID.String()
	body := parsed.Body()

	// Offline: a user with no server and no config.
	offline := newCLIUser(t)
	out := ok(t, offline.run(t, "token", "inspect", tok))
	if want := "Instance:  gatehouse\nID:        " + id + "\nChecksum:  ok\n"; out != want {
		t.Errorf("inspect printed %q, want %q", out, want)
	}
	if got := ok(t, offline.runWithInput(t, tok+"\n", "token", "inspect", "-")); got != out {
		t.Errorf("inspect - printed %q, want %q", got, out)
	}
	info := decodeStrict[struct{ Instance, ID, Checksum string }](t, offline.run(t, "token", "inspect", tok, "-o", "json"))
	if info.ID != id || info.Instance != "gatehouse" || info.Checksum != "ok" {
		t.Errorf("inspect -o json = %+v", info)
	}

	// One changed character anywhere in the body: version, id, secret or
	// checksum. CRC-32 catches every such change.
	bodyStart := len(tok) - len(body)
	for _, pos := range []int{0, 5, 30, 60, len(body) - 3} {
		b := []byte(tok)
		if b[bodyStart+pos] == 'A' {
			b[bodyStart+pos] = 'B'
		} else {
			b[bodyStart+pos] = 'A'
		}
		changed := string(b)
		res := offline.run(t, "token", "inspect", changed)
		fails(t, res, "invalid token")
		if res.code != 1 {
			t.Errorf("body character %d changed: exit %d, want 1", pos, res.code)
		}
		if res.stdout != "" {
			t.Errorf("body character %d changed: stdout %q, want nothing", pos, res.stdout)
		}
		noSecrets(t, res.stderr, []string{tok, changed})
	}
	if _, err := os.Stat(offline.configDir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("token inspect touched the config directory (%v)", err)
	}
}

// A pipeline's token rotates itself through the CLI, with nothing but
// itself: minted with --self-rotate and --idle-timeout, rotate-token
// --self prints its successor, which carries both; the old token
// presented again afterwards revokes the successor (reuse detection).
func TestCLISelfRotation(t *testing.T) {
	t.Parallel()
	s, u := loggedIn(t)
	ok(t, u.run(t, "account", "create", "ci", "--capabilities", "apiKey"))
	fails(t, u.run(t, "account", "generate-token", "--account", "ci", "--name", "x", "--idle-timeout", "10m"), "idleTimeout")
	first, _ := onlyToken(t, ok(t, u.run(t, "account", "generate-token", "--account", "ci", "--name", "nightly", "-e", "7d", "--idle-timeout", "3d", "--self-rotate")))
	pipeline := withToken(t, s, first)
	fails(t, pipeline.run(t, "account", "rotate-token", "--self", "some-id"), "give no ID")
	fails(t, pipeline.run(t, "account", "rotate-token"), "or --self")
	second, parsed := onlyToken(t, ok(t, pipeline.run(t, "account", "rotate-token", "--self")))
	items := decodeStrict[[]gatehouse.Token](t, u.run(t, "account", "list-tokens", "--account", "ci", "-o", "json"))
	succ := tokenByID(t, items, parsed.ID.String())
	if !succ.SelfRotate || succ.IdleTimeout != 3*24*3600 || succ.Name != "nightly" || succ.Family == "" {
		t.Fatalf("successor %+v, want selfRotate, a 3-day idle timeout, the name and a family", succ)
	}
	next := withToken(t, s, second)
	if got := decodeStrict[gatehouse.UserInfo](t, next.run(t, "account", "get-user-info", "-o", "json")); got.TokenID != parsed.ID.String() {
		t.Fatalf("the successor authenticates as %q", got.TokenID)
	}
	fails(t, pipeline.run(t, "account", "get-user-info"), "rotated away")
	fails(t, next.run(t, "account", "get-user-info"), "the token from GATEHOUSE_AUTH_TOKEN was refused")
}
