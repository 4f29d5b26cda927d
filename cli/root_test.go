package cli

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"go.yaml.in/yaml/v3"

	"github.com/gatehouse/gatehouse"
)

// exitError is an error that carries its own exit code, as the rbac
// commands' errors do.
type exitError struct{ code int }

func (e exitError) Error() string { return "policy check failed" }
func (e exitError) ExitCode() int { return e.code }

func TestRunExitCodes(t *testing.T) {
	extra := &cobra.Command{
		Use: "fail",
		RunE: func(*cobra.Command, []string) error {
			return errors.Join(errors.New("context"), exitError{code: 3})
		},
	}
	var out, errOut strings.Builder
	code := Run(context.Background(), Env{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errOut, Getenv: func(string) string { return "" }}, []string{"fail"}, extra)
	if code != 3 {
		t.Errorf("exit %d, want the error's code 3", code)
	}
	if want := "error: context policy check failed\n"; errOut.String() != want {
		t.Errorf("stderr = %q, want %q", errOut.String(), want)
	}
}

func TestRunUsageErrors(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"acount"}, `error: unknown command "acount" for "gatehouse" Did you mean this? account`},
		{[]string{"account", "list", "--bogus"}, "error: unknown flag: --bogus (see 'gatehouse account list --help')"},
		{[]string{"account", "can-i", "get"}, "error: accepts 3 arg(s), received 1"},
		// A mistyped subcommand of a group fails too, rather than print
		// the group's help and exit 0.
		{[]string{"account", "list-token"}, `error: unknown command "list-token" for "gatehouse account"; did you mean list-tokens? (see 'gatehouse account --help')`},
		{[]string{"admin", "setings", "rbac", "can"}, `error: unknown command "setings" for "gatehouse admin"; did you mean settings? (see 'gatehouse admin --help')`},
		{[]string{"proj", "role", "nope"}, `error: unknown command "nope" for "gatehouse proj role" (see 'gatehouse proj role --help')`},
	}
	for _, tt := range tests {
		res := cliRun{}.run(t, tt.args...)
		if res.code != 1 || res.stderr != tt.want+"\n" {
			t.Errorf("%v: exit %d, stderr %q; want 1, %q", tt.args, res.code, res.stderr, tt.want)
		}
	}
}

// TestCommandGroupsWithoutArgsShowHelp: a group alone still shows its
// help and succeeds.
func TestCommandGroupsWithoutArgsShowHelp(t *testing.T) {
	res := cliRun{}.run(t, "account")
	if res.code != 0 || !strings.Contains(res.stdout, "Available Commands:") {
		t.Errorf("gatehouse account: exit %d, stdout %q", res.code, res.stdout)
	}
}

func TestVersionAndCompletion(t *testing.T) {
	res := cliRun{}.run(t, "version", "--client", "--short")
	mustSucceed(t, res)
	if res.stdout != "gatehouse: "+Version+"\n" {
		t.Errorf("version stdout = %q", res.stdout)
	}
	for _, shell := range []string{"bash", "zsh", "fish"} {
		res := cliRun{}.run(t, "completion", shell)
		mustSucceed(t, res)
		if !strings.Contains(res.stdout, "gatehouse") || len(res.stdout) < 1000 {
			t.Errorf("completion %s printed %d bytes, want a script", shell, len(res.stdout))
		}
	}
}

func TestNewRootKeepsItsSignature(t *testing.T) {
	server := &cobra.Command{Use: "server"}
	root := NewRoot(server)
	if c, _, err := root.Find([]string{"server"}); err != nil || c != server {
		t.Errorf("NewRoot does not add the extra command: %v", err)
	}
	for _, path := range [][]string{
		{"login"}, {"logout"}, {"relogin"}, {"context"},
		{"account", "generate-token"}, {"account", "revoke-all"},
		{"proj", "role", "create-token"}, {"app", "report-operation"},
		{"admin", "revoke"}, {"audit", "list"}, {"token", "inspect"}, {"version"},
	} {
		if c, _, err := root.Find(path); err != nil || c.Name() != path[len(path)-1] {
			t.Errorf("command %v missing: %v", path, err)
		}
	}
}

func TestDescribe(t *testing.T) {
	a := newApp(Env{Getenv: func(string) string { return "" }})
	a.noLoginHint = true
	ge := gatehouse.Errorf(gatehouse.EFORBIDDEN, "permission denied")
	tests := []struct {
		err  error
		want string
	}{
		{ge, "permission denied"},
		{errors.Join(ge), "permission denied"},
		{wrap("logout", ge), "logout: permission denied"},
		{errors.New("line one\nline two\n"), "line one line two"},
		{&gatehouse.Error{Code: gatehouse.EUNAVAILABLE}, gatehouse.EUNAVAILABLE},
	}
	for _, tt := range tests {
		if got := a.describe(tt.err); got != tt.want {
			t.Errorf("describe(%v) = %q, want %q", tt.err, got, tt.want)
		}
	}
}

type wrapped struct {
	prefix string
	err    error
}

func (w wrapped) Error() string { return w.prefix + ": " + w.err.Error() }
func (w wrapped) Unwrap() error { return w.err }

func wrap(prefix string, err error) error { return wrapped{prefix, err} }

func TestYAMLKeepsJSONNamesAndTypes(t *testing.T) {
	v := map[string]any{"b": "true", "a": 1, "when": "2025-03-04T12:00:00Z", "list": []string{"x"}}
	b, err := toYAML(v)
	if err != nil {
		t.Fatal(err)
	}
	var back map[string]any
	if err := yaml.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if back["b"] != "true" || back["when"] != "2025-03-04T12:00:00Z" || back["a"] != 1 {
		t.Errorf("YAML round trip changed types: %#v\n%s", back, b)
	}
	if strings.Contains(string(b), "{") {
		t.Errorf("YAML is not block style:\n%s", b)
	}
}
