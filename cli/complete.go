package cli

import (
	"context"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/client"
)

// completionTimeout bounds the requests of one shell completion: the user
// is waiting at a TAB, and a server that does not answer must not hang the
// shell. Completion is silent on every error: no candidates, no message.
const completionTimeout = 2 * time.Second

const noFiles = cobra.ShellCompDirectiveNoFileComp

// completionContext is cmd's context bounded by completionTimeout.
func completionContext(cmd *cobra.Command) (context.Context, context.CancelFunc) {
	ctx := cmd.Context()
	if ctx == nil {
		ctx = context.Background()
	}
	return context.WithTimeout(ctx, completionTimeout)
}

// tokenCandidates turns tokens into completions of prefix: the id, with
// the token's name as its description.
func tokenCandidates(tokens []gatehouse.Token, prefix string) []string {
	var out []string
	for _, t := range tokens {
		if !strings.HasPrefix(t.ID, prefix) {
			continue
		}
		if t.Name != "" {
			out = append(out, t.ID+"\t"+t.Name)
		} else {
			out = append(out, t.ID)
		}
	}
	return out
}

// completeAccountTokenIDs completes the ID argument of `account
// delete-token` and `rotate-token`: the API tokens of --account (default
// the caller's own), fetched from the server.
func (a *app) completeAccountTokenIDs(cmd *cobra.Command, args []string, prefix string) ([]string, cobra.ShellCompDirective) {
	if len(args) > 0 {
		return nil, noFiles
	}
	c, err := a.client()
	if err != nil {
		return nil, noFiles
	}
	ctx, cancel := completionContext(cmd)
	defer cancel()
	account, _ := cmd.Flags().GetString("account")
	if account, err = accountOrSelf(ctx, c, account); err != nil {
		return nil, noFiles
	}
	tokens, err := c.ListTokens(ctx, account)
	if err != nil {
		return nil, noFiles
	}
	return tokenCandidates(tokens, prefix), noFiles
}

// completeRoleArgs completes `proj role delete-token PROJECT ROLE ID`: the
// projects, then the project's roles, then the role's tokens.
func (a *app) completeRoleArgs(cmd *cobra.Command, args []string, prefix string) ([]string, cobra.ShellCompDirective) {
	if len(args) > 2 {
		return nil, noFiles
	}
	c, err := a.client()
	if err != nil {
		return nil, noFiles
	}
	ctx, cancel := completionContext(cmd)
	defer cancel()
	return roleCandidates(ctx, c, args, prefix), noFiles
}

func roleCandidates(ctx context.Context, c *client.Client, args []string, prefix string) []string {
	var out []string
	switch len(args) {
	case 0:
		projects, err := c.ListProjects(ctx)
		if err != nil {
			return nil
		}
		for _, p := range projects {
			if strings.HasPrefix(p.Name, prefix) {
				out = append(out, p.Name)
			}
		}
	case 1:
		p, err := c.GetProject(ctx, args[0])
		if err != nil {
			return nil
		}
		for _, r := range p.Roles {
			if strings.HasPrefix(r.Name, prefix) {
				out = append(out, r.Name)
			}
		}
	case 2:
		tokens, err := c.ListRoleTokens(ctx, args[0], args[1])
		if err != nil {
			return nil
		}
		out = tokenCandidates(tokens, prefix)
	}
	return out
}

// completeContextNames completes a context name from the config file, with
// its server as the description; nothing is sent to a server.
func (a *app) completeContextNames(_ *cobra.Command, args []string, prefix string) ([]string, cobra.ShellCompDirective) {
	if len(args) > 0 {
		return nil, noFiles
	}
	cfg, _, err := a.loadConfig()
	if err != nil {
		return nil, noFiles
	}
	var out []string
	for _, c := range cfg.Contexts {
		if strings.HasPrefix(c.Name, prefix) {
			out = append(out, c.Name+"\t"+c.Server)
		}
	}
	return out, noFiles
}

// accountCandidates are the accounts the caller may see whose names start
// with prefix, each described by its capabilities, and "disabled" when it
// is.
func accountCandidates(ctx context.Context, c *client.Client, prefix string) []string {
	accounts, err := c.ListAccounts(ctx)
	if err != nil {
		return nil
	}
	var out []string
	for _, acc := range accounts {
		if !strings.HasPrefix(acc.Name, prefix) {
			continue
		}
		var desc []string
		for _, cp := range acc.Capabilities {
			desc = append(desc, string(cp))
		}
		if !acc.Enabled {
			desc = append(desc, "disabled")
		}
		if len(desc) == 0 {
			out = append(out, acc.Name)
		} else {
			out = append(out, acc.Name+"\t"+strings.Join(desc, ", "))
		}
	}
	return out
}

// completeAccounts completes an account name, from the server of the
// current context (or --server, --context, GATEHOUSE_SERVER).
func (a *app) completeAccounts(cmd *cobra.Command, prefix string) ([]string, cobra.ShellCompDirective) {
	c, err := a.client()
	if err != nil {
		return nil, noFiles
	}
	ctx, cancel := completionContext(cmd)
	defer cancel()
	return accountCandidates(ctx, c, prefix), noFiles
}

// completeAccountName completes the NAME argument of `account enable`,
// `disable` and `delete`.
func (a *app) completeAccountName(cmd *cobra.Command, args []string, prefix string) ([]string, cobra.ShellCompDirective) {
	if len(args) > 0 {
		return nil, noFiles
	}
	return a.completeAccounts(cmd, prefix)
}

// completeAccountFlags makes every --account flag in the tree under cmd,
// and audit list's --actor, complete account names, so that a command
// that takes an account by flag completes it without a line of its own.
func (a *app) completeAccountFlags(cmd *cobra.Command) {
	complete := func(cmd *cobra.Command, _ []string, prefix string) ([]string, cobra.ShellCompDirective) {
		return a.completeAccounts(cmd, prefix)
	}
	for _, name := range []string{"account", "actor"} {
		if cmd.LocalNonPersistentFlags().Lookup(name) != nil {
			_ = cmd.RegisterFlagCompletionFunc(name, complete)
		}
	}
	for _, sub := range cmd.Commands() {
		a.completeAccountFlags(sub)
	}
}
