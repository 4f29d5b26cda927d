package cli

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"go.yaml.in/yaml/v3"

	"github.com/gatehouse/gatehouse"
)

func (a *app) trustCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "trust",
		Short: "Manage trust policies: keyless CI through OIDC token exchange",
		Long: `Trust policies let a CI job exchange the OIDC ID token its platform gives
it (GitHub Actions, GitLab CI id_tokens, a Kubernetes service account token)
for a short-lived Gatehouse token, with no long-lived secret in the pipeline.
Managing them needs settings, get|update, trust. The job itself runs:
gatehouse login SERVER --oidc-token-file FILE`,
	}
	cmd.AddCommand(a.trustListCmd(), a.trustGetCmd(), a.trustCreateCmd(false), a.trustCreateCmd(true),
		a.trustDeleteCmd(), a.trustTestCmd())
	return cmd
}

func (a *app) trustListCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "list", Short: "List trust policies", Args: cobra.NoArgs}
	format := addListOutputFlag(cmd)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if err := format.check(); err != nil {
			return err
		}
		c, err := a.client()
		if err != nil {
			return err
		}
		list, err := c.ListTrustPolicies(cmd.Context())
		if err != nil {
			return err
		}
		wide := format.wide()
		return format.render(cmd.OutOrStdout(), nonNil(list), func(w *tabwriter.Writer) {
			head := []string{"NAME", "ISSUER", "SUBJECT", "TTL", "CLAIMS"}
			if wide {
				head = append(head, "AUDIENCES", "SCOPES", "UPDATED")
			}
			row(w, head...)
			for _, tp := range list {
				cells := []string{tp.Name, tp.Issuer, tp.Subject(), strconv.FormatInt(tp.TTL, 10) + "s", claimSummary(tp.Claims)}
				if wide {
					cells = append(cells, join(tp.Audiences), scopeList(tp.Scopes), fmtTime(tp.UpdatedAt, "-"))
				}
				row(w, cells...)
			}
		})
	}
	return cmd
}

// claimSummary lists a policy's conditions on one line, by claim name.
func claimSummary(claims map[string]gatehouse.ClaimPatterns) string {
	names := make([]string, 0, len(claims))
	for k := range claims {
		names = append(names, k)
	}
	sort.Strings(names)
	parts := make([]string, len(names))
	for i, k := range names {
		parts[i] = k + "=" + strings.Join(claims[k], "|")
	}
	return orDash(strings.Join(parts, " "))
}

func (a *app) trustGetCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "get NAME", Short: "Show a trust policy", Args: cobra.ExactArgs(1)}
	format := addOutputFlag(cmd)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if err := checkFormat(*format); err != nil {
			return err
		}
		c, err := a.client()
		if err != nil {
			return err
		}
		tp, err := c.GetTrustPolicy(cmd.Context(), args[0])
		if err != nil {
			return err
		}
		return render(cmd.OutOrStdout(), *format, tp, func(w *tabwriter.Writer) {
			keys := "jwksURL " + tp.JWKSURL
			if tp.JWKSURL == "" {
				keys = "inline JWKS"
			}
			row(w, "NAME:", tp.Name)
			row(w, "ISSUER:", tp.Issuer)
			row(w, "KEYS:", keys)
			row(w, "AUDIENCES:", join(tp.Audiences))
			row(w, "CLAIMS:", claimSummary(tp.Claims))
			row(w, "SUBJECT:", tp.Subject())
			row(w, "TTL:", strconv.FormatInt(tp.TTL, 10)+"s")
			scopes := make([]string, len(tp.Scopes))
			for i, sc := range tp.Scopes {
				scopes[i] = sc.Resource + ":" + sc.Action + ":" + sc.Object
			}
			row(w, "SCOPES:", orDash(strings.Join(scopes, " ")))
		})
	}
	return cmd
}

// trustCreateCmd is create (update false) or update: the policy comes
// from a JSON or YAML file in the API's shape.
func (a *app) trustCreateCmd(update bool) *cobra.Command {
	var file string
	cmd := &cobra.Command{
		Use:   "create -f FILE",
		Short: "Create a trust policy from a JSON or YAML file",
		Example: `  gatehouse trust create -f shop-deploy.json
  gatehouse trust update shop-deploy -f shop-deploy.yaml`,
		Args: cobra.NoArgs,
	}
	if update {
		cmd.Use, cmd.Short, cmd.Args = "update NAME -f FILE", "Replace a trust policy (a change revokes the tokens issued through it)", cobra.ExactArgs(1)
	}
	format := addOutputFlag(cmd)
	cmd.Flags().StringVarP(&file, "file", "f", "", `policy file, JSON or YAML ("-" for standard input)`)
	_ = cmd.MarkFlagRequired("file")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if err := checkFormat(*format); err != nil {
			return err
		}
		tp, err := a.readTrustPolicy(file)
		if err != nil {
			return err
		}
		c, err := a.client()
		if err != nil {
			return err
		}
		verb := "created"
		if update {
			tp, err = c.UpdateTrustPolicy(cmd.Context(), args[0], tp)
			verb = "updated"
		} else {
			tp, err = c.CreateTrustPolicy(cmd.Context(), tp)
		}
		if err != nil {
			return err
		}
		return render(cmd.OutOrStdout(), *format, tp, func(w *tabwriter.Writer) {
			fmt.Fprintf(w, "trust policy '%s' %s\n", tp.Name, verb)
		})
	}
	return cmd
}

// readTrustPolicy reads a policy file strictly: unknown fields are an
// error, as the API refuses them.
func (a *app) readTrustPolicy(file string) (gatehouse.TrustPolicy, error) {
	var tp gatehouse.TrustPolicy
	b, err := a.readInput(file)
	if err != nil {
		return tp, err
	}
	if t := bytes.TrimSpace(b); len(t) == 0 || t[0] != '{' {
		var v any
		if err := yaml.Unmarshal(b, &v); err != nil {
			return tp, fmt.Errorf("%s: neither JSON nor YAML: %v", file, err)
		}
		if b, err = json.Marshal(v); err != nil {
			return tp, fmt.Errorf("%s: %v", file, err)
		}
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&tp); err != nil {
		return tp, fmt.Errorf("%s: not a trust policy: %v", file, err)
	}
	return tp, nil
}

// readInput reads a file, or standard input for "-".
func (a *app) readInput(file string) ([]byte, error) {
	var r io.Reader = a.in
	if file != "-" {
		f, err := os.Open(file)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		r = f
	}
	b, err := io.ReadAll(io.LimitReader(r, 1<<20+1))
	if err != nil {
		return nil, err
	}
	if len(b) > 1<<20 {
		return nil, fmt.Errorf("%s exceeds 1 MiB", file)
	}
	return b, nil
}

func (a *app) trustDeleteCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "delete NAME",
		Short: "Delete a trust policy and revoke the tokens issued through it",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			if err := c.DeleteTrustPolicy(cmd.Context(), args[0]); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "trust policy '%s' deleted\n", args[0])
			return nil
		},
	}
}

func (a *app) trustTestCmd() *cobra.Command {
	var file string
	cmd := &cobra.Command{
		Use:   "test NAME --token-file FILE",
		Short: "Say whether an ID token would be accepted by a trust policy",
		Long: `Say whether an ID token would be accepted by the trust policy NAME now,
without exchanging it. To a caller who may read trust policies it also says
which condition failed and shows the token's claims. Exits 0 when the token
would be accepted and 2 when not.`,
		Args: cobra.ExactArgs(1),
	}
	format := addOutputFlag(cmd)
	cmd.Flags().StringVar(&file, "token-file", "", `file holding the ID token ("-" for standard input)`)
	_ = cmd.MarkFlagRequired("token-file")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if err := checkFormat(*format); err != nil {
			return err
		}
		b, err := a.readInput(file)
		if err != nil {
			return err
		}
		c, err := a.client()
		if err != nil {
			return err
		}
		res, err := c.TestTrustPolicy(cmd.Context(), args[0], strings.TrimSpace(string(b)))
		if err != nil {
			return err
		}
		err = render(cmd.OutOrStdout(), *format, res, func(w *tabwriter.Writer) {
			if res.Accepted {
				fmt.Fprintf(w, "accepted: a token for %s would be issued\n", orDash(res.Subject))
				return
			}
			fmt.Fprintln(w, "not accepted")
			if res.Failed != "" {
				fmt.Fprintf(w, "failed: %s\n", res.Failed)
			}
		})
		if err == nil && !res.Accepted {
			return &exitCodeError{code: 2, err: errSilent}
		}
		return err
	}
	return cmd
}

// errSilent ends a command with its exit code and no error line: the
// output has said it all.
var errSilent = errors.New("")

// oidcToken reads the ID token for login: --oidc-token-file, --oidc-token -
// (standard input) or GATEHOUSE_OIDC_TOKEN. ok is false when none is given.
func (a *app) oidcToken(file, value string) (tok string, ok bool, err error) {
	switch {
	case file != "" && value != "":
		return "", false, errors.New("give --oidc-token-file or --oidc-token, not both")
	case value != "" && value != "-":
		// A token in the argument list is visible to every local user.
		return "", false, errors.New("--oidc-token takes - (standard input); use --oidc-token-file or GATEHOUSE_OIDC_TOKEN")
	case value == "-":
		file = "-"
	case file == "":
		if v := strings.TrimSpace(a.env.Getenv("GATEHOUSE_OIDC_TOKEN")); v != "" {
			return v, true, nil
		}
		return "", false, nil
	}
	b, err := a.readInput(file)
	if err != nil {
		return "", false, fmt.Errorf("reading the ID token: %w", err)
	}
	tok = strings.TrimSpace(string(b))
	if tok == "" {
		return "", false, fmt.Errorf("the ID token in %s is empty", file)
	}
	return tok, true, nil
}

// loginWithOIDC is login SERVER with an ID token: it exchanges the token
// for a short-lived Gatehouse token and stores that in the context, as a
// password login stores its session.
func (a *app) loginWithOIDC(cmd *cobra.Command, cfg config, path, name, server, idToken, trustPolicy string, tr transport) error {
	c, err := newClient(server, "", tr)
	if err != nil {
		return err
	}
	res, err := c.ExchangeToken(cmd.Context(), idToken, trustPolicy)
	if err != nil {
		var oe *gatehouse.OAuthError
		if errors.As(err, &oe) {
			return fmt.Errorf("token exchange refused (%s): %s", oe.Code, oe.Description)
		}
		return err
	}
	// Who the token acts as, for the message only: the context keeps no
	// user, as there is no password to log in again with.
	who := ""
	if uc, err := newClient(server, res.AccessToken, tr); err == nil {
		if info, err := uc.UserInfo(cmd.Context()); err == nil {
			who = info.Username
		}
	}
	cfg.upsert(configContext{Name: name, Server: server, Token: res.AccessToken, transport: tr})
	cfg.CurrentContext = name
	if err := saveConfig(path, cfg); err != nil {
		return err
	}
	out := cmd.OutOrStdout()
	fmt.Fprintf(out, "'%s' logged in through token exchange (valid %ds)\n", orDash(who), res.ExpiresIn)
	fmt.Fprintf(out, "Context '%s' updated\n", name)
	return nil
}
