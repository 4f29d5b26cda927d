package cli

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/client"
)

func (a *app) projCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "proj",
		Aliases: []string{"project", "projects"},
		Short:   "Manage projects, their roles and role tokens",
	}
	cmd.AddCommand(a.projListCmd(), a.projGetCmd(), a.projCreateCmd(), a.projDeleteCmd(), a.projRoleCmd())
	return cmd
}

func (a *app) projListCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "list", Short: "List projects", Args: cobra.NoArgs}
	format := addOutputFlag(cmd)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if err := checkFormat(*format); err != nil {
			return err
		}
		c, err := a.client()
		if err != nil {
			return err
		}
		items, err := c.ListProjects(cmd.Context())
		if err != nil {
			return err
		}
		return render(cmd.OutOrStdout(), *format, nonNil(items), func(w *tabwriter.Writer) {
			row(w, "NAME", "DESCRIPTION", "ROLES", "CREATED")
			for _, p := range items {
				names := make([]string, len(p.Roles))
				for i, r := range p.Roles {
					names[i] = r.Name
				}
				row(w, p.Name, orDash(p.Description), join(names), fmtTime(p.CreatedAt, "-"))
			}
		})
	}
	return cmd
}

func (a *app) projGetCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "get PROJECT", Short: "Show a project and its roles", Args: cobra.ExactArgs(1)}
	format := addOutputFlag(cmd)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if err := checkFormat(*format); err != nil {
			return err
		}
		c, err := a.client()
		if err != nil {
			return err
		}
		p, err := c.GetProject(cmd.Context(), args[0])
		if err != nil {
			return err
		}
		return render(cmd.OutOrStdout(), *format, p, func(w *tabwriter.Writer) {
			row(w, "Name:", p.Name)
			row(w, "Description:", orDash(p.Description))
			row(w, "Created At:", fmtTime(p.CreatedAt, "-"))
			row(w, "Roles:", fmt.Sprint(len(p.Roles)))
			if len(p.Roles) > 0 {
				row(w)
				row(w, "ROLE", "DESCRIPTION", "POLICIES", "GROUPS")
				for _, r := range p.Roles {
					row(w, r.Name, orDash(r.Description), fmt.Sprint(len(r.Policies)), join(r.Groups))
				}
			}
		})
	}
	return cmd
}

func (a *app) projCreateCmd() *cobra.Command {
	var description string
	cmd := &cobra.Command{
		Use:   "create PROJECT",
		Short: "Create a project",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			p := gatehouse.Project{Name: args[0], Description: description, Roles: []gatehouse.ProjectRole{}}
			if _, err := c.CreateProject(cmd.Context(), p); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "project '%s' created\n", args[0])
			return nil
		},
	}
	cmd.Flags().StringVarP(&description, "description", "d", "", "project description")
	return cmd
}

func (a *app) projDeleteCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "delete PROJECT",
		Short: "Delete a project",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			if err := c.DeleteProject(cmd.Context(), args[0]); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "project '%s' deleted\n", args[0])
			return nil
		},
	}
}

func (a *app) projRoleCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "role",
		Short: "Manage a project's roles, their policies, groups and tokens",
		Long: `Manage project roles. A role's policies may only name objects inside its
project; its tokens act as proj:PROJECT:ROLE with those policies only.
Roles are edited by reading the project, changing it and writing it back.`,
	}
	cmd.AddCommand(
		a.roleCreateCmd(), a.roleDeleteCmd(), a.roleListCmd(), a.roleGetCmd(),
		a.rolePolicyCmd("add-policy", true), a.rolePolicyCmd("remove-policy", false),
		a.roleGroupCmd("add-group", true), a.roleGroupCmd("remove-group", false),
		a.roleCreateTokenCmd(), a.roleListTokensCmd(), a.roleDeleteTokenCmd(),
	)
	return cmd
}

// editProject reads a project, lets edit change it and writes it back when
// edit reports a change. The API has no compare-and-swap, so a concurrent
// edit of the same project between the read and the write is lost; the
// window is one round trip.
func editProject(ctx context.Context, c *client.Client, name string, edit func(*gatehouse.Project) (bool, error)) error {
	p, err := c.GetProject(ctx, name)
	if err != nil {
		return err
	}
	changed, err := edit(&p)
	if err != nil || !changed {
		return err
	}
	p.Roles = nonNil(p.Roles)
	for i := range p.Roles {
		p.Roles[i].Policies = nonNil(p.Roles[i].Policies)
		p.Roles[i].Groups = nonNil(p.Roles[i].Groups)
	}
	_, err = c.UpdateProject(ctx, p)
	return err
}

// editRole is editProject for one existing role.
func editRole(ctx context.Context, c *client.Client, project, role string, edit func(*gatehouse.ProjectRole) (bool, error)) error {
	return editProject(ctx, c, project, func(p *gatehouse.Project) (bool, error) {
		i := slices.IndexFunc(p.Roles, func(r gatehouse.ProjectRole) bool { return r.Name == role })
		if i < 0 {
			return false, roleNotFound(project, role)
		}
		return edit(&p.Roles[i])
	})
}

func roleNotFound(project, role string) error {
	return gatehouse.Errorf(gatehouse.ENOTFOUND, "role '%s' does not exist in project '%s'", role, project)
}

func (a *app) roleCreateCmd() *cobra.Command {
	var description string
	cmd := &cobra.Command{
		Use:   "create PROJECT ROLE",
		Short: "Create a project role",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			project, role := args[0], args[1]
			err = editProject(cmd.Context(), c, project, func(p *gatehouse.Project) (bool, error) {
				if _, ok := p.Role(role); ok {
					return false, gatehouse.Errorf(gatehouse.ECONFLICT, "role '%s' already exists in project '%s'", role, project)
				}
				p.Roles = append(p.Roles, gatehouse.ProjectRole{Name: role, Description: description})
				return true, nil
			})
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "role '%s' created in project '%s'\n", role, project)
			return nil
		},
	}
	cmd.Flags().StringVarP(&description, "description", "d", "", "role description")
	return cmd
}

func (a *app) roleDeleteCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "delete PROJECT ROLE",
		Short: "Delete a project role",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			project, role := args[0], args[1]
			err = editProject(cmd.Context(), c, project, func(p *gatehouse.Project) (bool, error) {
				i := slices.IndexFunc(p.Roles, func(r gatehouse.ProjectRole) bool { return r.Name == role })
				if i < 0 {
					return false, roleNotFound(project, role)
				}
				p.Roles = slices.Delete(p.Roles, i, i+1)
				return true, nil
			})
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "role '%s' deleted from project '%s'\n", role, project)
			return nil
		},
	}
}

func (a *app) roleListCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "list PROJECT", Short: "List a project's roles", Args: cobra.ExactArgs(1)}
	format := addOutputFlag(cmd)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if err := checkFormat(*format); err != nil {
			return err
		}
		c, err := a.client()
		if err != nil {
			return err
		}
		p, err := c.GetProject(cmd.Context(), args[0])
		if err != nil {
			return err
		}
		return render(cmd.OutOrStdout(), *format, nonNil(p.Roles), func(w *tabwriter.Writer) {
			row(w, "ROLE-NAME", "DESCRIPTION", "POLICIES", "GROUPS")
			for _, r := range p.Roles {
				row(w, r.Name, orDash(r.Description), fmt.Sprint(len(r.Policies)), join(r.Groups))
			}
		})
	}
	return cmd
}

func (a *app) roleGetCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "get PROJECT ROLE", Short: "Show a project role's policies and groups", Args: cobra.ExactArgs(2)}
	format := addOutputFlag(cmd)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if err := checkFormat(*format); err != nil {
			return err
		}
		c, err := a.client()
		if err != nil {
			return err
		}
		p, err := c.GetProject(cmd.Context(), args[0])
		if err != nil {
			return err
		}
		r, ok := p.Role(args[1])
		if !ok {
			return roleNotFound(args[0], args[1])
		}
		out := cmd.OutOrStdout()
		if *format != formatTable {
			return render(out, *format, r, nil)
		}
		if err := render(out, *format, r, func(w *tabwriter.Writer) {
			row(w, "Role Name:", r.Name)
			row(w, "Description:", orDash(r.Description))
			row(w, "Groups:", join(r.Groups))
		}); err != nil {
			return err
		}
		fmt.Fprintln(out, "Policies:")
		for _, line := range r.Policies {
			fmt.Fprintln(out, line)
		}
		return nil
	}
	return cmd
}

// policyFields splits a CSV policy line into trimmed fields, for comparing
// lines that differ only in spacing.
func policyFields(line string) []string {
	fs := strings.Split(line, ",")
	for i := range fs {
		fs[i] = strings.TrimSpace(fs[i])
	}
	return fs
}

// rolePolicy builds the policy line that Argo CD's `proj role add-policy`
// builds: applications only, objects inside the project.
func rolePolicy(project, role, action, object, permission string) (string, error) {
	switch {
	case action == "":
		return "", fmt.Errorf("--action is required")
	case object == "":
		return "", fmt.Errorf("--object is required")
	case permission != "allow" && permission != "deny":
		return "", fmt.Errorf("--permission must be allow or deny, not %q", permission)
	}
	for _, f := range []string{action, object} {
		if strings.ContainsAny(f, ",\n\r") || strings.TrimSpace(f) != f {
			return "", fmt.Errorf("invalid policy field %q: no commas, line breaks or surrounding spaces", f)
		}
	}
	return fmt.Sprintf("p, %s, applications, %s, %s/%s, %s", gatehouse.ProjectSubject(project, role), action, project, object, permission), nil
}

func (a *app) rolePolicyCmd(verb string, add bool) *cobra.Command {
	var action, object, permission string
	short := "Add an applications policy to a project role"
	if !add {
		short = "Remove an applications policy from a project role"
	}
	cmd := &cobra.Command{
		Use:   verb + " PROJECT ROLE",
		Short: short,
		Long: short + `. The line is
  p, proj:PROJECT:ROLE, applications, ACTION, PROJECT/OBJECT, PERMISSION
where OBJECT is an application name or glob inside the project.`,
		Example: "  gatehouse proj role " + verb + " shop ci -a sync -o '*' -p allow",
		Args:    cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			project, role := args[0], args[1]
			line, err := rolePolicy(project, role, action, object, permission)
			if err != nil {
				return err
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			want := policyFields(line)
			err = editRole(cmd.Context(), c, project, role, func(r *gatehouse.ProjectRole) (bool, error) {
				i := slices.IndexFunc(r.Policies, func(l string) bool { return slices.Equal(policyFields(l), want) })
				switch {
				case add && i >= 0, !add && i < 0:
					return false, nil // already as asked
				case add:
					r.Policies = append(r.Policies, line)
				default:
					r.Policies = slices.Delete(r.Policies, i, i+1)
				}
				return true, nil
			})
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), line)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVarP(&action, "action", "a", "", "action: get, create, update, delete, sync or a glob")
	f.StringVarP(&object, "object", "o", "", "application name or glob inside the project")
	f.StringVarP(&permission, "permission", "p", "allow", "allow or deny")
	return cmd
}

func (a *app) roleGroupCmd(verb string, add bool) *cobra.Command {
	short := "Bind a group to a project role"
	if !add {
		short = "Unbind a group from a project role"
	}
	return &cobra.Command{
		Use:   verb + " PROJECT ROLE GROUP",
		Short: short,
		Args:  cobra.ExactArgs(3),
		RunE: func(cmd *cobra.Command, args []string) error {
			project, role, group := args[0], args[1], args[2]
			c, err := a.client()
			if err != nil {
				return err
			}
			err = editRole(cmd.Context(), c, project, role, func(r *gatehouse.ProjectRole) (bool, error) {
				i := slices.Index(r.Groups, group)
				switch {
				case add && i >= 0, !add && i < 0:
					return false, nil
				case add:
					r.Groups = append(r.Groups, group)
				default:
					r.Groups = slices.Delete(r.Groups, i, i+1)
				}
				return true, nil
			})
			if err != nil {
				return err
			}
			if add {
				fmt.Fprintf(cmd.OutOrStdout(), "group '%s' bound to role '%s' of project '%s'\n", group, role, project)
			} else {
				fmt.Fprintf(cmd.OutOrStdout(), "group '%s' unbound from role '%s' of project '%s'\n", group, role, project)
			}
			return nil
		},
	}
}

func (a *app) roleCreateTokenCmd() *cobra.Command {
	var name, expiresIn string
	var tokenOnly bool
	cmd := &cobra.Command{
		Use:   "create-token PROJECT ROLE",
		Short: "Mint a token that acts as the project role",
		Long: `Mint a token whose permissions are the role's policies only. The token is
shown once; with -t only the token is printed, for scripts.`,
		Example: `  TOKEN=$(gatehouse proj role create-token shop ci -e 30d -t)`,
		Args:    cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			project, role := args[0], args[1]
			in := gatehouse.TokenRequest{Name: name}
			if cmd.Flags().Changed("expires-in") {
				d, err := parseDuration(expiresIn)
				if err != nil {
					return err
				}
				in.ExpiresIn = seconds(d)
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			tok, err := c.CreateRoleToken(cmd.Context(), project, role, in)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if tokenOnly {
				_, err := fmt.Fprintln(out, tok.Token)
				return err
			}
			fmt.Fprintf(out, "Create token succeeded for %s.\n", gatehouse.ProjectSubject(project, role))
			err = render(out, formatTable, nil, func(w *tabwriter.Writer) {
				row(w, "  ID:", tok.ID)
				row(w, "  Name:", orDash(tok.Name))
				row(w, "  Issued At:", fmtTime(tok.IssuedAt, "-"))
				row(w, "  Expires At:", fmtExpiry(tok.ExpiresAt, a.env.Now()))
				row(w, "  Token:", tok.Token)
			})
			if err != nil {
				return err
			}
			fmt.Fprintln(out, "The token is shown only once: store it now.")
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&name, "name", "", "token name")
	f.StringVarP(&expiresIn, "expires-in", "e", "", "lifetime: 30m, 12h, 7d, or 0 for never (default: the server's, 12h)")
	f.BoolVarP(&tokenOnly, "token-only", "t", false, "print only the token")
	return cmd
}

func (a *app) roleListTokensCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "list-tokens PROJECT ROLE", Short: "List a project role's tokens", Args: cobra.ExactArgs(2)}
	format := addListOutputFlag(cmd)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if err := format.check(); err != nil {
			return err
		}
		c, err := a.client()
		if err != nil {
			return err
		}
		items, err := c.ListRoleTokens(cmd.Context(), args[0], args[1])
		if err != nil {
			return err
		}
		return format.render(cmd.OutOrStdout(), nonNil(items), func(w *tabwriter.Writer) { a.tokenTable(w, items, format.wide()) })
	}
	return cmd
}

func (a *app) roleDeleteTokenCmd() *cobra.Command {
	return &cobra.Command{
		Use:               "delete-token PROJECT ROLE ID",
		Short:             "Revoke a project role token",
		Args:              cobra.ExactArgs(3),
		ValidArgsFunction: a.completeRoleArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			if err := c.DeleteRoleToken(cmd.Context(), args[0], args[1], args[2]); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "token %s of %s deleted\n", args[2], gatehouse.ProjectSubject(args[0], args[1]))
			return nil
		},
	}
}
