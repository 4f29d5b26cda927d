package cli

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"go.yaml.in/yaml/v3"

	"github.com/gatehouse/gatehouse/policy"
)

// exitCodeError ends the command with a given exit code. Run honours any
// error in the chain with an ExitCode() int method.
type exitCodeError struct {
	code int
	err  error
}

func (e *exitCodeError) Error() string { return e.err.Error() }
func (e *exitCodeError) Unwrap() error { return e.err }
func (e *exitCodeError) ExitCode() int { return e.code }

// Exit codes of the rbac commands besides 0 and 1 (a usage error).
const (
	exitPolicyInvalid = 1 // validate: the policy has errors
	exitPolicyLoad    = 2 // can: the policy cannot be read or does not load, so no answer
)

// newRBACCommand returns `rbac`: offline checks of a policy file, as
// `argocd admin settings rbac` does. Nothing is sent to a server.
func newRBACCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "rbac",
		Short: "Check an RBAC policy file offline",
		Long: `Check an RBAC policy file offline, with the same engine the server uses.

The file is an Argo CD policy.csv, or a Kubernetes ConfigMap in the shape of
argocd-rbac-cm (its data keys policy.csv, policy.default and policy.matchMode
are read). "-" reads standard input.`,
	}
	cmd.AddCommand(newRBACCanCommand(), newRBACValidateCommand())
	return cmd
}

// rbacPolicyFlags are the flags that say how to load the policy.
type rbacPolicyFlags struct {
	file, defaultRole, matchMode string
	builtin                      bool
}

func (f *rbacPolicyFlags) add(cmd *cobra.Command, full bool) {
	fs := cmd.Flags()
	fs.StringVar(&f.file, "policy-file", "", `policy file: policy.csv or an argocd-rbac-cm ConfigMap ("-" for standard input)`)
	fs.StringVar(&f.matchMode, "match-mode", "", "how patterns match: glob or regex (default glob, or the ConfigMap's policy.matchMode)")
	if full {
		fs.StringVar(&f.defaultRole, "default-role", "", "role every subject also has (default none, or the ConfigMap's policy.default)")
		fs.BoolVar(&f.builtin, "builtin", true, "include the built-in roles role:readonly and role:admin")
	} else {
		f.builtin = true
	}
	_ = cmd.MarkFlagRequired("policy-file")
}

// config reads the policy file into an engine configuration. Flags win
// over a ConfigMap's settings.
func (f *rbacPolicyFlags) config(cmd *cobra.Command) (policy.Config, error) {
	switch f.matchMode {
	case "", "glob", "regex":
	default:
		return policy.Config{}, fmt.Errorf("--match-mode must be glob or regex, not %q", f.matchMode)
	}
	var (
		b   []byte
		err error
	)
	if f.file == "-" {
		b, err = io.ReadAll(cmd.InOrStdin())
	} else {
		b, err = os.ReadFile(f.file)
	}
	if err != nil {
		return policy.Config{}, &exitCodeError{exitPolicyLoad, fmt.Errorf("cannot read the policy: %w", err)}
	}
	cfg := policy.Config{CSV: string(b), DisableBuiltin: !f.builtin, CacheSize: -1}
	if cm, ok := parseRBACConfigMap(b); ok {
		cfg.CSV = cm.Data["policy.csv"]
		cfg.DefaultRole = cm.Data["policy.default"]
		cfg.MatchMode = cm.Data["policy.matchMode"]
	}
	if f.defaultRole != "" {
		cfg.DefaultRole = f.defaultRole
	}
	if f.matchMode != "" {
		cfg.MatchMode = f.matchMode
	}
	return cfg, nil
}

// rbacConfigMap is the part of an argocd-rbac-cm ConfigMap that holds the
// policy.
type rbacConfigMap struct {
	Kind string            `yaml:"kind"`
	Data map[string]string `yaml:"data"`
}

// parseRBACConfigMap recognizes a ConfigMap. A policy.csv does not parse
// as a YAML mapping, so it is never mistaken for one.
func parseRBACConfigMap(b []byte) (rbacConfigMap, bool) {
	var cm rbacConfigMap
	if err := yaml.Unmarshal(b, &cm); err != nil || cm.Kind != "ConfigMap" {
		return rbacConfigMap{}, false
	}
	return cm, true
}

// name is how messages refer to the policy file.
func (f *rbacPolicyFlags) name() string {
	if f.file == "-" {
		return "standard input"
	}
	return f.file
}

func newRBACCanCommand() *cobra.Command {
	var (
		pf      rbacPolicyFlags
		groups  []string
		explain bool
	)
	cmd := &cobra.Command{
		Use:   "can SUBJECT ACTION RESOURCE OBJECT",
		Short: "Tell whether a subject may do an action, by a policy file",
		Long: `Print yes or no: may SUBJECT (an account, a group, a role or a project role
proj:<project>:<role>) do ACTION on RESOURCE and OBJECT under the policy in
--policy-file? As in Argo CD, the action comes before the resource.

The exit code is 0 for both answers, and 2 when the policy cannot be read or
does not load (one line names the first problem; validate lists them all).
--explain adds the rule that decided and the lines that matched.`,
		Example: `  gatehouse admin rbac can alice sync applications shop/web --policy-file policy.csv
  gatehouse admin rbac can bob get projects shop --policy-file policy.csv --group org:platform --default-role role:readonly
  gatehouse admin rbac can proj:shop:ci sync applications shop/web --policy-file argocd-rbac-cm.yaml --explain`,
		Args: cobra.ExactArgs(4),
	}
	pf.add(cmd, true)
	cmd.Flags().StringArrayVar(&groups, "group", nil, "a group the subject is in (repeat for more)")
	cmd.Flags().BoolVar(&explain, "explain", false, "also print the deciding rule and the matching lines")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		subject, action, resource, object := args[0], args[1], args[2], args[3]
		cfg, err := pf.config(cmd)
		if err != nil {
			return err
		}
		e, err := policy.New(cfg)
		if err != nil {
			return &exitCodeError{exitPolicyLoad, loadError(pf.name(), err)}
		}
		x := e.Explain(subject, groups, resource, action, object)
		w := cmd.OutOrStdout()
		answer := "no"
		if x.Allowed {
			answer = "yes"
		}
		fmt.Fprintln(w, answer)
		if !explain {
			return nil
		}
		fmt.Fprintf(w, "rule: %s\n", x.Rule)
		if len(x.Matched) == 0 {
			fmt.Fprintln(w, "matched: none")
			return nil
		}
		fmt.Fprintln(w, "matched:")
		for _, l := range x.Matched {
			where := "built-in"
			if l.Num > 0 {
				where = fmt.Sprintf("line %d", l.Num)
			}
			fmt.Fprintf(w, "  %s: %s\n", where, l.String())
		}
		return nil
	}
	return cmd
}

func newRBACValidateCommand() *cobra.Command {
	var pf rbacPolicyFlags
	cmd := &cobra.Command{
		Use:   "validate",
		Short: "Check a policy file for errors and likely mistakes",
		Long: `Load the policy in --policy-file as the server would and print every problem:
errors (a malformed line, an invalid glob or regex), which make the server
refuse the policy, and warnings (a role that is assigned but grants
nothing). Exits 1 if there are errors, 0 with warnings only, and 2 when the
file cannot be read.`,
		Example: `  gatehouse admin rbac validate --policy-file policy.csv
  gatehouse admin rbac validate --policy-file argocd-rbac-cm.yaml --match-mode regex`,
		Args: cobra.NoArgs,
	}
	pf.add(cmd, false)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		cfg, err := pf.config(cmd)
		if err != nil {
			return err
		}
		w := cmd.OutOrStdout()
		e, err := policy.New(cfg)
		if err != nil {
			var list policy.ErrorList
			if !errors.As(err, &list) {
				return err
			}
			for _, le := range list {
				fmt.Fprintf(w, "error: %s\n", le.Error())
			}
			return &exitCodeError{exitPolicyInvalid, fmt.Errorf("the policy in %s is invalid: %s", pf.name(), rbacPlural(len(list), "error"))}
		}
		warnings := e.Warnings()
		for _, msg := range warnings {
			fmt.Fprintf(w, "warning: %s\n", msg)
		}
		n := 0
		for _, l := range e.Lines() {
			if l.Num > 0 {
				n++
			}
		}
		summary := rbacPlural(n, "line")
		if len(warnings) > 0 {
			summary += ", " + rbacPlural(len(warnings), "warning")
		}
		_, err = fmt.Fprintf(w, "policy is valid (%s)\n", summary)
		return err
	}
	return cmd
}

// loadError is the one-line message for a policy that does not load: its
// first problem and how many more there are, which validate lists.
func loadError(name string, err error) error {
	msgs := strings.Split(strings.TrimSpace(err.Error()), "\n")
	msg := fmt.Sprintf("the policy in %s does not load: %s", name, msgs[0])
	if more := len(msgs) - 1; more > 0 {
		msg += fmt.Sprintf(" (and %d more; 'gatehouse admin rbac validate' lists them all)", more)
	}
	return errors.New(msg)
}

// rbacPlural writes "1 line" or "2 lines".
func rbacPlural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
