package cli

import (
	"context"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/gatehouse/gatehouse"
)

func (a *app) loginCmd() *cobra.Command {
	var username, password, name, oidcFile, oidcValue, trustPolicy string
	var sso ssoFlags
	cmd := &cobra.Command{
		Use:   "login SERVER",
		Short: "Log in with a password (or a CI job's ID token) and store the token in a context",
		Long: `Log in to SERVER (a URL or host:port) with a username and password and
store the session token in a context named after the server (or --name),
which becomes the current context. Missing values are prompted for; the
password is read without echo, or from standard input when it is not a
terminal.

In a CI job, --oidc-token-file FILE (or --oidc-token - for standard input,
or GATEHOUSE_OIDC_TOKEN) exchanges the job's OIDC ID token under a trust
policy for a short-lived token instead; no password is involved.`,
		Example: `  gatehouse login gatehouse.example.com:443
  gatehouse login gatehouse.example.com:443 --oidc-token-file "$ID_TOKEN_FILE"
  gatehouse login http://127.0.0.1:8080 --username admin
  echo "$PASSWORD" | gatehouse login 127.0.0.1:8080 --plaintext --username ci`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			a.noLoginHint = true
			server := args[0]
			if name == "" {
				name = server
			}
			// Read the config first: a config that is refused (mode) or
			// broken must fail before a password is asked for.
			cfg, path, err := a.loadConfig()
			if err != nil {
				return err
			}
			var stored transport
			if old, ok := cfg.find(name); ok && old.Server == server {
				stored = old.transport
			}
			tr, err := a.transportOver(stored).forStorage()
			if err != nil {
				return err
			}
			idToken, keyless, err := a.oidcToken(oidcFile, oidcValue)
			if err != nil {
				return err
			}
			if keyless {
				return a.loginWithOIDC(cmd, cfg, path, name, server, idToken, trustPolicy, tr)
			}
			c, err := newClient(server, "", tr)
			if err != nil {
				return err
			}
			if sso.on || sso.device {
				return a.loginWithSSO(cmd, c, cfg, path, name, server, sso, tr)
			}
			if username == "" {
				if username, err = a.promptLine("Username: ", "username"); err != nil {
					return err
				}
			}
			if password == "" {
				if password, err = a.promptPassword("Password: ", "password"); err != nil {
					return err
				}
			}
			tok, err := c.Login(cmd.Context(), username, password)
			if err != nil {
				return err
			}
			cfg.upsert(configContext{Name: name, Server: server, User: username, Token: tok, transport: tr})
			cfg.CurrentContext = name
			if err := saveConfig(path, cfg); err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "'%s' logged in successfully\n", username)
			fmt.Fprintf(out, "Context '%s' updated\n", name)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&username, "username", "", "user name (prompted for when missing)")
	f.StringVar(&password, "password", "", "password (prompted for when missing; visible to other local users in the process list)")
	f.StringVar(&name, "name", "", "context name (default: the server address)")
	f.StringVar(&oidcFile, "oidc-token-file", "", "exchange the OIDC ID token in this file for a short-lived token (env GATEHOUSE_OIDC_TOKEN holds the token itself)")
	f.StringVar(&oidcValue, "oidc-token", "", `"-": read the OIDC ID token to exchange from standard input`)
	f.StringVar(&trustPolicy, "trust-policy", "", "trust policy to exchange the ID token under (default: the one that matches)")
	sso.add(cmd)
	return cmd
}

func (a *app) reloginCmd() *cobra.Command {
	var password string
	cmd := &cobra.Command{
		Use:   "relogin",
		Short: "Log in again to the current context's server as the same user",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			a.noLoginHint = true
			cfg, path, err := a.loadConfig()
			if err != nil {
				return err
			}
			ctx, err := a.contextFor(cfg, path, "")
			if err != nil {
				return err
			}
			if ctx.User == "" {
				return fmt.Errorf("context %q has no user name; run: gatehouse login %s", ctx.Name, ctx.Server)
			}
			c, err := newClient(ctx.Server, "", a.transportOver(ctx.transport))
			if err != nil {
				return err
			}
			if password == "" {
				label := fmt.Sprintf("Password for %s: ", ctx.User)
				if password, err = a.promptPassword(label, "password"); err != nil {
					return err
				}
			}
			tok, err := c.Login(cmd.Context(), ctx.User, password)
			if err != nil {
				return err
			}
			ctx.Token = tok
			if err := saveConfig(path, cfg); err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "'%s' logged in successfully\n", ctx.User)
			fmt.Fprintf(out, "Context '%s' updated\n", ctx.Name)
			return nil
		},
	}
	cmd.Flags().StringVar(&password, "password", "", "password (prompted for when missing)")
	return cmd
}

func (a *app) logoutCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "logout [CONTEXT]",
		Short: "Revoke the context's session on the server and forget its token",
		Long: `Revoke the session token of CONTEXT (default: the current context) on the
server, then remove it from the config file. The token is removed even when
the server cannot be reached; the command then says so and fails, since the
session stays valid on the server until it expires.`,
		Args:              cobra.MaximumNArgs(1),
		ValidArgsFunction: a.completeContextNames,
		RunE: func(cmd *cobra.Command, args []string) error {
			a.noLoginHint = true
			cfg, path, err := a.loadConfig()
			if err != nil {
				return err
			}
			name := ""
			if len(args) == 1 {
				name = args[0]
			}
			ctx, err := a.contextFor(cfg, path, name)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if ctx.Token == "" {
				fmt.Fprintf(out, "Context '%s' is not logged in\n", ctx.Name)
				return nil
			}
			var revokeErr error
			c, err := newClient(ctx.Server, ctx.Token, a.transportOver(ctx.transport))
			if err == nil {
				revokeErr = c.Logout(cmd.Context())
			} else {
				revokeErr = err
			}
			ctx.Token = ""
			if err := saveConfig(path, cfg); err != nil {
				return err
			}
			// A refused token is already as dead as logout would make it.
			if revokeErr != nil && !gatehouse.IsCode(revokeErr, gatehouse.EUNAUTHORIZED) {
				fmt.Fprintf(out, "Removed the token of context '%s' from %s\n", ctx.Name, path)
				return fmt.Errorf("the server did not revoke the session, which stays valid until it expires: %s", a.describe(revokeErr))
			}
			fmt.Fprintf(out, "Logged out from '%s'\n", ctx.Name)
			return nil
		},
	}
}

// revokeTimeout bounds the wait for a server to revoke a session.
const revokeTimeout = 10 * time.Second

// revokeForDelete revokes the session of ctx before `context --delete`
// forgets it. It fails, so that the context is kept, when the server could
// not revoke it, unless force.
func (a *app) revokeForDelete(cmd *cobra.Command, ctx *configContext, force bool) error {
	a.noLoginHint = true
	c, err := newClient(ctx.Server, ctx.Token, a.transportOver(ctx.transport))
	if err == nil {
		rctx, cancel := context.WithTimeout(cmd.Context(), revokeTimeout)
		err = c.Logout(rctx)
		cancel()
	}
	out := cmd.OutOrStdout()
	switch {
	case err == nil:
		fmt.Fprintf(out, "Session of context '%s' revoked\n", ctx.Name)
		return nil
	case gatehouse.IsCode(err, gatehouse.EUNAUTHORIZED):
		// Refused: as dead as revoking would make it.
		fmt.Fprintf(out, "Session of context '%s' had already ended\n", ctx.Name)
		return nil
	case gatehouse.IsCode(err, gatehouse.EINVALID):
		// Not a session (a token exchanged with login --oidc-token):
		// logout cannot revoke it, and it is short-lived.
		fmt.Fprintf(out, "Context '%s' holds no session to revoke; its token expires on its own\n", ctx.Name)
		return nil
	case force:
		fmt.Fprintf(cmd.ErrOrStderr(), "warning: the session of context '%s' was not revoked and stays valid until it expires: %s\n", ctx.Name, a.describe(err))
		return nil
	}
	return fmt.Errorf("context %q kept: its session was not revoked (%s); run the command again when the server answers, or add --force to delete the context anyway (the session then stays valid until it expires)", ctx.Name, a.describe(err))
}

// contextFor returns the named context, else --context, else the current
// one.
func (a *app) contextFor(cfg config, path, name string) (*configContext, error) {
	if name == "" {
		name = a.flags.context
	}
	if name == "" {
		name = cfg.CurrentContext
	}
	if name == "" {
		return nil, fmt.Errorf("no current context in %s; run: gatehouse login SERVER", path)
	}
	ctx, ok := cfg.find(name)
	if !ok {
		return nil, fmt.Errorf("context %q is not in %s", name, path)
	}
	return ctx, nil
}

// contextView is a context as listed: never its token.
type contextView struct {
	Current bool   `json:"current"`
	Name    string `json:"name"`
	Server  string `json:"server"`
	User    string `json:"user,omitempty"`
}

func (a *app) contextCmd() *cobra.Command {
	var del, force bool
	cmd := &cobra.Command{
		Use:   "context [NAME]",
		Short: "List contexts, switch to one, or delete one",
		Long: `Without NAME, list the contexts of the config file; with NAME, make it the
current context.

--delete NAME revokes the context's session on its server, as logout does,
then deletes the context. A session the server already refuses (401) was
dead anyway. When the server cannot revoke it (unreachable, an error), the
context is kept, so that the session can still be revoked later; --force
deletes it anyway, and the session then stays valid until it expires. A
token from login --oidc-token is not a session: it is not revoked and
expires on its own (exchange tokens are short-lived).`,
		Example: `  gatehouse context
  gatehouse context prod
  gatehouse context old --delete`,
		Aliases:           []string{"ctx"},
		Args:              cobra.MaximumNArgs(1),
		ValidArgsFunction: a.completeContextNames,
	}
	format := addListOutputFlag(cmd)
	cmd.Flags().BoolVar(&del, "delete", false, "revoke the session of context NAME on its server and delete the context")
	cmd.Flags().BoolVar(&force, "force", false, "with --delete: delete the context even when its session cannot be revoked")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if err := format.check(); err != nil {
			return err
		}
		cfg, path, err := a.loadConfig()
		if err != nil {
			return err
		}
		out := cmd.OutOrStdout()
		switch {
		case len(args) == 0 && del:
			return fmt.Errorf("--delete needs a context NAME")
		case len(args) == 0:
			views := make([]contextView, 0, len(cfg.Contexts))
			for _, c := range cfg.Contexts {
				views = append(views, contextView{Current: c.Name == cfg.CurrentContext, Name: c.Name, Server: c.Server, User: c.User})
			}
			wide := format.wide()
			return format.render(out, views, func(w *tabwriter.Writer) {
				head := []string{"CURRENT", "NAME", "SERVER", "USER"}
				if wide {
					head = append(head, "TLS", "LOGGED IN")
				}
				row(w, head...)
				for i, v := range views {
					mark := ""
					if v.Current {
						mark = "*"
					}
					cells := []string{mark, v.Name, v.Server, orDash(v.User)}
					if wide {
						ctx := cfg.Contexts[i]
						cells = append(cells, ctx.transport.describe(), fmt.Sprint(ctx.Token != ""))
					}
					row(w, cells...)
				}
			})
		case del:
			ctx, ok := cfg.find(args[0])
			if !ok {
				return fmt.Errorf("context %q is not in %s", args[0], path)
			}
			if ctx.Token != "" {
				if err := a.revokeForDelete(cmd, ctx, force); err != nil {
					return err
				}
			}
			cfg.remove(args[0])
			if err := saveConfig(path, cfg); err != nil {
				return err
			}
			fmt.Fprintf(out, "Context '%s' deleted\n", args[0])
			return nil
		}
		if _, ok := cfg.find(args[0]); !ok {
			return fmt.Errorf("context %q is not in %s", args[0], path)
		}
		cfg.CurrentContext = args[0]
		if err := saveConfig(path, cfg); err != nil {
			return err
		}
		fmt.Fprintf(out, "Switched to context '%s'\n", args[0])
		return nil
	}
	return cmd
}
