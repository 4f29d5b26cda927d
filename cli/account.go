package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/client"
)

func (a *app) accountCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "account",
		Short: "Manage accounts and their API tokens",
	}
	cmd.AddCommand(
		a.accountUserInfoCmd(),
		a.accountListCmd(),
		a.accountGetCmd(),
		a.accountCreateCmd(),
		a.accountEnableCmd("enable", true),
		a.accountEnableCmd("disable", false),
		a.accountDeleteCmd(),
		a.accountPasswordCmd(),
		a.accountCanICmd(),
		a.accountGenerateTokenCmd(),
		a.accountListTokensCmd(),
		a.accountDeleteTokenCmd(),
		a.accountRotateTokenCmd(),
		a.accountRevokeAllCmd(),
	)
	return cmd
}

// accountOrSelf is name, or the caller's own account when name is empty.
func accountOrSelf(ctx context.Context, c *client.Client, name string) (string, error) {
	if name != "" {
		return name, nil
	}
	info, err := c.UserInfo(ctx)
	if err != nil {
		return "", err
	}
	switch {
	case !info.LoggedIn:
		return "", gatehouse.Errorf(gatehouse.EUNAUTHORIZED, "not logged in")
	case info.TokenKind == gatehouse.KindProject || info.Username == "":
		// A role token has no account of its own; its tokens are the
		// role's, which `proj role list-tokens` shows.
		return "", fmt.Errorf("this token acts as project role %s, not as an account; pass --account, or see 'gatehouse proj role --help' for role tokens", orDash(info.Username))
	}
	return info.Username, nil
}

func (a *app) accountUserInfoCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "get-user-info",
		Short: "Show who the current token belongs to",
		Args:  cobra.NoArgs,
	}
	format := addOutputFlag(cmd)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if err := checkFormat(*format); err != nil {
			return err
		}
		c, err := a.client()
		if err != nil {
			return err
		}
		info, err := c.UserInfo(cmd.Context())
		if err != nil {
			return err
		}
		return render(cmd.OutOrStdout(), *format, info, func(w *tabwriter.Writer) {
			row(w, "Logged In:", fmt.Sprint(info.LoggedIn))
			if !info.LoggedIn {
				return
			}
			row(w, "Username:", orDash(info.Username))
			row(w, "Issuer:", orDash(info.Iss))
			row(w, "Groups:", join(info.Groups))
			row(w, "Roles:", join(info.Roles))
			row(w, "Token ID:", orDash(info.TokenID))
			row(w, "Token Kind:", orDash(string(info.TokenKind)))
			row(w, "Expires At:", fmtExpiry(info.ExpiresAt, a.env.Now()))
		})
	}
	return cmd
}

func (a *app) accountListCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the accounts you may see",
		Long: `List the accounts you may see. -o json and -o yaml show each account with
its API tokens, as account get does; -o wide adds the account's source
(local or sso), when it was created and how many API tokens it holds.`,
		Args: cobra.NoArgs,
	}
	format := addListOutputFlag(cmd)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if err := format.check(); err != nil {
			return err
		}
		c, err := a.client()
		if err != nil {
			return err
		}
		items, err := c.ListAccounts(cmd.Context())
		if err != nil {
			return err
		}
		wide := format.wide()
		return format.render(cmd.OutOrStdout(), nonNil(items), func(w *tabwriter.Writer) {
			head := []string{"NAME", "ENABLED", "CAPABILITIES", "GROUPS"}
			if wide {
				head = append(head, "SOURCE", "CREATED", "TOKENS")
			}
			row(w, head...)
			for _, acc := range items {
				cells := []string{acc.Name, fmt.Sprint(acc.Enabled), join(acc.Capabilities), join(acc.Groups)}
				if wide {
					cells = append(cells, orDash(acc.Source), fmtTime(acc.CreatedAt, "-"), fmt.Sprint(len(acc.Tokens)))
				}
				row(w, cells...)
			}
		})
	}
	return cmd
}

func (a *app) accountGetCmd() *cobra.Command {
	var name string
	cmd := &cobra.Command{
		Use:   "get",
		Short: "Show an account and its tokens",
		Args:  cobra.NoArgs,
	}
	format := addOutputFlag(cmd)
	cmd.Flags().StringVarP(&name, "account", "a", "", "account (default: your own)")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if err := checkFormat(*format); err != nil {
			return err
		}
		c, err := a.client()
		if err != nil {
			return err
		}
		if name, err = accountOrSelf(cmd.Context(), c, name); err != nil {
			return err
		}
		acc, err := c.GetAccount(cmd.Context(), name)
		if err != nil {
			return err
		}
		out := cmd.OutOrStdout()
		if *format != formatTable {
			return render(out, *format, acc, nil)
		}
		err = render(out, *format, acc, func(w *tabwriter.Writer) {
			row(w, "Name:", acc.Name)
			row(w, "Enabled:", fmt.Sprint(acc.Enabled))
			row(w, "Capabilities:", join(acc.Capabilities))
			row(w, "Groups:", join(acc.Groups))
			row(w, "Created At:", fmtTime(acc.CreatedAt, "-"))
		})
		if err != nil {
			return err
		}
		fmt.Fprintln(out, "\nTokens:")
		if len(acc.Tokens) == 0 {
			fmt.Fprintln(out, "NONE")
			return nil
		}
		return render(out, formatTable, nil, func(w *tabwriter.Writer) { a.tokenTable(w, acc.Tokens, false) })
	}
	return cmd
}

// tokenTable lists tokens: ID, NAME, ISSUED, EXPIRES ("never", or marked
// "(expired)"), LAST USED ("never"); wide adds SCOPES, CREATED BY and LAST
// USED FROM.
func (a *app) tokenTable(w io.Writer, tokens []gatehouse.Token, wide bool) {
	now := a.env.Now()
	head := []string{"ID", "NAME", "ISSUED", "EXPIRES", "LAST USED"}
	if wide {
		head = append(head, "SCOPES", "CREATED BY", "LAST USED FROM")
	}
	row(w, head...)
	for _, t := range tokens {
		cells := []string{t.ID, orDash(t.Name), fmtTime(t.IssuedAt, "-"), fmtExpiry(t.ExpiresAt, now), fmtTime(t.LastUsedAt, "never")}
		if wide {
			cells = append(cells, scopeList(t.Scopes), orDash(t.CreatedBy), orDash(t.LastUsedFrom))
		}
		row(w, cells...)
	}
}

// scopeList shows a token's scopes as resource:action:object, comma
// separated, or "-" for an unscoped token (its owner's permissions).
func scopeList(scopes []gatehouse.Scope) string {
	s := make([]string, len(scopes))
	for i, sc := range scopes {
		s[i] = sc.Resource + ":" + sc.Action + ":" + sc.Object
	}
	return join(s)
}

func (a *app) accountCreateCmd() *cobra.Command {
	var caps, groups []string
	var password string
	cmd := &cobra.Command{
		Use:   "create NAME",
		Short: "Create a local user or service account",
		Long: `Create an account. --capabilities apiKey makes a service account (tokens
only); login lets it log in with a password, which is prompted for (or read
from standard input) when --password is not given.`,
		Example: `  gatehouse account create ci --capabilities apiKey --group deployers
  gatehouse account create alice --capabilities login,apiKey`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			in := gatehouse.AccountCreate{Name: args[0], Groups: groups}
			for _, s := range caps {
				c := gatehouse.Capability(s)
				if c != gatehouse.CapLogin && c != gatehouse.CapAPIKey {
					return fmt.Errorf("unknown capability %q: want apiKey or login", s)
				}
				if !slices.Contains(in.Capabilities, c) {
					in.Capabilities = append(in.Capabilities, c)
				}
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			if slices.Contains(in.Capabilities, gatehouse.CapLogin) {
				if password == "" {
					if password, err = a.newPassword(); err != nil {
						return err
					}
				}
				in.Password = password
			} else if password != "" {
				return errors.New("--password needs the login capability")
			}
			acc, err := c.CreateAccount(cmd.Context(), in)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "account '%s' created\n", acc.Name)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringSliceVar(&caps, "capabilities", nil, "capabilities: apiKey, login (comma-separated)")
	f.StringArrayVar(&groups, "group", nil, "group to put the account in (repeatable)")
	f.StringVar(&password, "password", "", "password for the login capability (prompted for when missing)")
	_ = cmd.MarkFlagRequired("capabilities")
	return cmd
}

func (a *app) accountEnableCmd(verb string, enabled bool) *cobra.Command {
	return &cobra.Command{
		Use:               verb + " NAME",
		Short:             map[bool]string{true: "Enable an account", false: "Disable an account; its tokens stop working at once"}[enabled],
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: a.completeAccountName,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			if _, err := c.UpdateAccount(cmd.Context(), args[0], gatehouse.AccountPatch{Enabled: &enabled}); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "account '%s' %sd\n", args[0], verb)
			return nil
		},
	}
}

func (a *app) accountDeleteCmd() *cobra.Command {
	return &cobra.Command{
		Use:               "delete NAME",
		Short:             "Delete an account and all its tokens",
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: a.completeAccountName,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			if err := c.DeleteAccount(cmd.Context(), args[0]); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "account '%s' deleted\n", args[0])
			return nil
		},
	}
}

func (a *app) accountPasswordCmd() *cobra.Command {
	var name, current, next string
	cmd := &cobra.Command{
		Use:   "update-password",
		Short: "Change a password (your own by default)",
		Long: `Change the password of --account (default: your own). --current-password
is always yours, the logged-in caller's. Missing passwords are prompted for
without echo, or read from standard input (current, then new) when it is not
a terminal. Your other sessions are revoked; this one stays.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			if current == "" {
				if current, err = a.promptPassword("Current password (yours): ", "current password"); err != nil {
					return err
				}
			}
			if next == "" {
				if next, err = a.newPassword(); err != nil {
					return err
				}
			}
			in := gatehouse.PasswordChange{Name: name, CurrentPassword: current, NewPassword: next}
			if err := c.UpdatePassword(cmd.Context(), in); err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), "Password updated")
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVarP(&name, "account", "a", "", "account whose password to change (default: your own)")
	f.StringVar(&current, "current-password", "", "your current password")
	f.StringVar(&next, "new-password", "", "the new password")
	return cmd
}

func (a *app) accountCanICmd() *cobra.Command {
	return &cobra.Command{
		Use:   "can-i ACTION RESOURCE OBJECT",
		Short: "Ask whether the current token may do something; prints yes or no",
		Example: `  gatehouse account can-i sync applications shop/web
  gatehouse account can-i update accounts ci`,
		Args: cobra.ExactArgs(3),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			ok, err := c.CanI(cmd.Context(), args[1], args[0], args[2])
			if err != nil {
				return err
			}
			answer := "no"
			if ok {
				answer = "yes"
			}
			fmt.Fprintln(cmd.OutOrStdout(), answer)
			return nil
		},
	}
}

func (a *app) accountGenerateTokenCmd() *cobra.Command {
	var name, account, expiresIn, idle string
	var scopes []string
	var selfRotate bool
	cmd := &cobra.Command{
		Use:   "generate-token",
		Short: "Mint an API token; prints only the token",
		Long: `Mint an API token for --account (default: your own) and print only the
token, so that TOKEN=$(gatehouse account generate-token ...) works. The
token carries its owner's permissions, narrowed by every --scope
(resource:action:object globs). --expires-in takes 30m, 12h, 7d, or 0 for a
token that never expires (if the server allows it); the server's default
is 12h. --idle-timeout refuses and removes the token once it has not been
used that long (1h to 366d; 0 for none; default: the server's). With
--self-rotate the token may rotate itself (rotate-token --self), so a
pipeline keeps it fresh on its own.`,
		Example: `  TOKEN=$(gatehouse account generate-token --account ci --name deploy -e 7d \
      --scope applications:sync:shop/* --scope applications:get:shop/*)
  TOKEN=$(gatehouse account generate-token --account ci --name nightly -e 7d --idle-timeout 3d --self-rotate)`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			in := gatehouse.TokenRequest{Name: name, SelfRotate: selfRotate}
			if cmd.Flags().Changed("idle-timeout") {
				d, err := parseDuration(idle)
				if err != nil {
					return fmt.Errorf("--idle-timeout: %w", err)
				}
				in.IdleTimeout = seconds(d)
			}
			if cmd.Flags().Changed("expires-in") {
				d, err := parseDuration(expiresIn)
				if err != nil {
					return err
				}
				in.ExpiresIn = seconds(d)
			}
			for _, s := range scopes {
				sc, err := parseScope(s)
				if err != nil {
					return err
				}
				in.Scopes = append(in.Scopes, sc)
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			if account, err = accountOrSelf(cmd.Context(), c, account); err != nil {
				return err
			}
			tok, err := c.CreateToken(cmd.Context(), account, in)
			if err != nil {
				return err
			}
			_, err = fmt.Fprintln(cmd.OutOrStdout(), tok.Token)
			return err
		},
	}
	f := cmd.Flags()
	f.StringVarP(&account, "account", "a", "", "account to mint for (default: your own)")
	f.StringVar(&name, "name", "", "token name")
	f.StringVarP(&expiresIn, "expires-in", "e", "", "lifetime: 30m, 12h, 7d, or 0 for never (default: the server's, 12h)")
	f.StringArrayVar(&scopes, "scope", nil, "narrow the token to resource:action:object (repeatable)")
	f.StringVar(&idle, "idle-timeout", "", "refuse and remove the token after this long unused: 1h to 366d, or 0 for none (default: the server's)")
	f.BoolVar(&selfRotate, "self-rotate", false, "let the token rotate itself (rotate-token --self)")
	return cmd
}

func (a *app) accountListTokensCmd() *cobra.Command {
	var account string
	cmd := &cobra.Command{
		Use:   "list-tokens",
		Short: "List an account's tokens",
		Args:  cobra.NoArgs,
	}
	format := addListOutputFlag(cmd)
	cmd.Flags().StringVarP(&account, "account", "a", "", "account (default: your own)")
	var expiring string
	cmd.Flags().StringVar(&expiring, "expiring", "", "only tokens that expire within this time, such as 7d or 36h")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if err := format.check(); err != nil {
			return err
		}
		within, err := parseExpiring(expiring)
		if err != nil {
			return err
		}
		c, err := a.client()
		if err != nil {
			return err
		}
		if account, err = accountOrSelf(cmd.Context(), c, account); err != nil {
			return err
		}
		items, err := c.ListTokens(cmd.Context(), account)
		if err != nil {
			return err
		}
		if expiring != "" {
			items = expiringWithin(items, a.env.Now(), within)
		}
		return format.render(cmd.OutOrStdout(), nonNil(items), func(w *tabwriter.Writer) { a.tokenTable(w, items, format.wide()) })
	}
	return cmd
}

func (a *app) accountDeleteTokenCmd() *cobra.Command {
	var account string
	cmd := &cobra.Command{
		Use:               "delete-token ID",
		Short:             "Revoke one of an account's tokens",
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: a.completeAccountTokenIDs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			if account, err = accountOrSelf(cmd.Context(), c, account); err != nil {
				return err
			}
			if err := c.DeleteToken(cmd.Context(), account, args[0]); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "token %s of account '%s' deleted\n", args[0], account)
			return nil
		},
	}
	cmd.Flags().StringVarP(&account, "account", "a", "", "account (default: your own)")
	return cmd
}

func (a *app) accountRotateTokenCmd() *cobra.Command {
	var account, expiresIn, grace string
	var self bool
	cmd := &cobra.Command{
		Use:   "rotate-token ID | --self",
		Short: "Replace a token with a new one; prints only the new token",
		Long: `Mint a replacement for token ID and revoke the old one, at once or after
--grace (so running clients can switch over). Prints only the new token.
The new token keeps the old one's name, scopes and lifetime (capped at the
server's maximum) unless --expires-in says otherwise.

With --self, the token the CLI authenticates with rotates itself: it must
have been minted with --self-rotate, and needs no other permission. The
old token then stops working (after --grace); presented again after that,
it revokes its successors as a stolen token's would be, so store the new
one before anything else uses the old.`,
		Example: `  NEW=$(gatehouse account rotate-token --account ci "$ID" --grace 5m)
  GATEHOUSE_AUTH_TOKEN=$(gatehouse account rotate-token --self)`,
		Args: func(cmd *cobra.Command, args []string) error {
			switch {
			case self && len(args) > 0:
				return fmt.Errorf("--self rotates the token in use: give no ID")
			case !self && len(args) != 1:
				return fmt.Errorf("give the ID of the token to rotate, or --self")
			}
			return nil
		},
		ValidArgsFunction: a.completeAccountTokenIDs,
		RunE: func(cmd *cobra.Command, args []string) error {
			var in gatehouse.RotateRequest
			if cmd.Flags().Changed("expires-in") {
				d, err := parseDuration(expiresIn)
				if err != nil {
					return err
				}
				in.ExpiresIn = seconds(d)
			}
			if grace != "" && grace != "0" {
				d, err := parseDuration(grace)
				if err != nil {
					return fmt.Errorf("--grace: %w", err)
				}
				in.GraceSeconds = *seconds(d)
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			if self && account != "" {
				return fmt.Errorf("--self rotates the token in use, of its own account: drop --account")
			}
			if account, err = accountOrSelf(cmd.Context(), c, account); err != nil {
				return err
			}
			var tok gatehouse.NewToken
			if self {
				tok, err = c.SelfRotate(cmd.Context(), account, in)
			} else {
				tok, err = c.RotateToken(cmd.Context(), account, args[0], in)
			}
			if err != nil {
				return err
			}
			_, err = fmt.Fprintln(cmd.OutOrStdout(), tok.Token)
			return err
		},
	}
	f := cmd.Flags()
	f.StringVarP(&account, "account", "a", "", "account (default: your own)")
	f.StringVarP(&expiresIn, "expires-in", "e", "", "lifetime of the new token: 30m, 12h, 7d, or 0 for never (default: the old token's lifetime)")
	f.StringVar(&grace, "grace", "0", "keep the old token valid this long (e.g. 5m)")
	f.BoolVar(&self, "self", false, "rotate the token in use (minted with --self-rotate)")
	return cmd
}

func (a *app) accountRevokeAllCmd() *cobra.Command {
	var account, before string
	var yes bool
	cmd := &cobra.Command{
		Use:   "revoke-all",
		Short: "Revoke every API token of an account",
		Long: `Revoke every API token of --account (default: your own), or only those
issued before --issued-before (RFC 3339, a date, or a duration ago such as
24h). Sessions are not API tokens and stay: end them with logout, or revoke
them all with "admin revoke --account NAME --kind session". Asks for
confirmation unless --yes; without a terminal it needs --yes.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var issuedBefore time.Time
			if before != "" {
				t, err := parseTime(before, a.env.Now())
				if err != nil {
					return fmt.Errorf("--issued-before: %w", err)
				}
				issuedBefore = t
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			if account, err = accountOrSelf(cmd.Context(), c, account); err != nil {
				return err
			}
			question := fmt.Sprintf("revoke every token of account '%s'", account)
			if !issuedBefore.IsZero() {
				question += " issued before " + fmtTime(issuedBefore, "")
			}
			if err := a.confirm(yes, question); err != nil {
				return err
			}
			n, err := c.RevokeAllTokens(cmd.Context(), account, issuedBefore)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "revoked %s of account '%s'\n", tokens(n), account)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVarP(&account, "account", "a", "", "account (default: your own)")
	f.StringVar(&before, "issued-before", "", "only tokens issued before this time (RFC 3339, date, or duration ago)")
	f.BoolVarP(&yes, "yes", "y", false, "do not ask for confirmation")
	return cmd
}
