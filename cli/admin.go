package cli

import (
	"fmt"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/client"
)

func (a *app) adminCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "admin",
		Short: "Administration: break-glass revocation, backup and restore, offline RBAC checks",
	}
	cmd.AddCommand(a.adminRevokeCmd(), a.adminBackupCmd(), newRBACCommand(), adminSettingsCmd())
	return cmd
}

// adminSettingsCmd is Argo CD's spelling, `argocd admin settings rbac
// can|validate`, of `admin rbac can|validate`: the same commands, so that
// an Argo CD user's muscle memory and scripts work.
func adminSettingsCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "settings",
		Short: "Argo CD's spelling of the offline checks: admin settings rbac can|validate (the same as admin rbac)",
	}
	cmd.AddCommand(newRBACCommand())
	return cmd
}

func (a *app) adminRevokeCmd() *cobra.Command {
	var in gatehouse.BulkRevoke
	var before, kind string
	var yes bool
	cmd := &cobra.Command{
		Use:   "revoke",
		Short: "Break-glass: revoke every token that matches the filters",
		Long: `Revoke every token of an account, of a project (or one of its roles), of a
kind, or issued before a time (RFC 3339, a date, or a duration ago such as
24h). Filters combine; at least one is needed. --dry-run lists what would be
revoked. Without --dry-run it asks for confirmation (showing how many tokens
match) unless --yes; without a terminal it needs --yes.`,
		Example: `  gatehouse admin revoke --account ci --dry-run
  gatehouse admin revoke --project shop --role ci --yes
  gatehouse admin revoke --issued-before 2025-03-04T00:00:00Z --kind session --yes -o json`,
		Args: cobra.NoArgs,
	}
	format := addOutputFlag(cmd)
	f := cmd.Flags()
	f.StringVar(&in.Account, "account", "", "tokens of this account")
	f.StringVar(&in.Project, "project", "", "role tokens of this project")
	f.StringVar(&in.Role, "role", "", "role tokens of this role (needs --project)")
	f.StringVar(&before, "issued-before", "", "tokens issued before this time")
	f.StringVar(&kind, "kind", "", "tokens of this kind: session, api or project")
	f.BoolVar(&in.DryRun, "dry-run", false, "only list what would be revoked")
	f.BoolVarP(&yes, "yes", "y", false, "do not ask for confirmation")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if err := checkFormat(*format); err != nil {
			return err
		}
		if in.Role != "" && in.Project == "" {
			return fmt.Errorf("--role needs --project")
		}
		switch k := gatehouse.TokenKind(kind); k {
		case "", gatehouse.KindSession, gatehouse.KindAPI, gatehouse.KindProject:
			in.Kind = k
		default:
			return fmt.Errorf("--kind must be session, api or project, not %q", kind)
		}
		if before != "" {
			t, err := parseTime(before, a.env.Now())
			if err != nil {
				return fmt.Errorf("--issued-before: %w", err)
			}
			in.IssuedBefore = t
		}
		if in.Account == "" && in.Project == "" && in.IssuedBefore.IsZero() && in.Kind == "" {
			return fmt.Errorf("give at least one filter: --account, --project, --issued-before or --kind")
		}
		c, err := a.client()
		if err != nil {
			return err
		}
		if !in.DryRun && !yes {
			if err := a.confirmRevoke(cmd, c, in); err != nil {
				return err
			}
		}
		res, err := c.BulkRevoke(cmd.Context(), in)
		if err != nil {
			return err
		}
		res.IDs = nonNil(res.IDs)
		return render(cmd.OutOrStdout(), *format, res, func(w *tabwriter.Writer) {
			if res.DryRun {
				fmt.Fprintf(w, "would revoke %s (dry run)\n", tokens(res.Count))
			} else {
				fmt.Fprintf(w, "revoked %s\n", tokens(res.Count))
			}
			for _, id := range res.IDs {
				fmt.Fprintln(w, id)
			}
		})
	}
	return cmd
}

// confirmRevoke asks before a real bulk revocation, after a dry run has
// counted what it would hit.
func (a *app) confirmRevoke(cmd *cobra.Command, c *client.Client, in gatehouse.BulkRevoke) error {
	if !a.interactive() {
		return a.confirm(false, "revoke tokens")
	}
	dry := in
	dry.DryRun = true
	res, err := c.BulkRevoke(cmd.Context(), dry)
	if err != nil {
		return err
	}
	return a.confirm(false, fmt.Sprintf("revoke %s (%s)", tokens(res.Count), describeRevoke(in)))
}

// describeRevoke restates the filters for the confirmation question.
func describeRevoke(in gatehouse.BulkRevoke) string {
	var parts []string
	if in.Account != "" {
		parts = append(parts, "account "+in.Account)
	}
	if in.Project != "" {
		s := "project " + in.Project
		if in.Role != "" {
			s += " role " + in.Role
		}
		parts = append(parts, s)
	}
	if in.Kind != "" {
		parts = append(parts, "kind "+string(in.Kind))
	}
	if !in.IssuedBefore.IsZero() {
		parts = append(parts, "issued before "+fmtTime(in.IssuedBefore, ""))
	}
	return strings.Join(parts, ", ")
}

func (a *app) auditCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "audit", Short: "Read the audit trail"}
	cmd.AddCommand(a.auditListCmd(), a.auditVerifyCmd())
	return cmd
}

func (a *app) auditListCmd() *cobra.Command {
	var f client.AuditFilter
	var since, until string
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List audit events, newest first",
		Long: `List audit events, newest first. Filters combine (all must hold):

  --actor A     events A caused: A's requests and what A changed
  --account A   events about account A, whoever caused them: requests
                made with A's tokens, and changes to A's tokens and record
                (an admin revoking A's token is listed under A, not under
                the admin's --actor)
  --route R     request events of one route: an API route as the server's
                route table names it ("GET /api/v1/account/{name}"), or for
                forward auth the route of the forwardAuth table that matched
  --status N    request events answered with HTTP status N

Without --actor or --account, a caller who may not read the whole trail
(audit, get, *) sees the events it caused. --since and --until take RFC 3339
times, dates, or durations ago (1h, 7d). When more events remain, the cursor
of the next page is printed on standard error.`,
		Example: `  gatehouse audit list --account ci --decision deny --since 24h
  gatehouse audit list --actor admin --type token.revoked
  gatehouse audit list --route "POST /api/v1/applications/{name}/sync" --status 403
  gatehouse audit list --token-id 5f0c6b2e-7d1a-4c1e-9a51-0e8f1b2c3d4e -o json`,
		Args: cobra.NoArgs,
	}
	format := addListOutputFlag(cmd)
	fl := cmd.Flags()
	fl.StringVar(&f.Actor, "actor", "", "events this account (or project role, proj:P:R) caused")
	fl.StringVar(&f.Account, "account", "", "events about this account, whoever caused them")
	fl.StringVar(&f.TokenID, "token-id", "", "events of this token")
	fl.StringVar(&f.Type, "type", "", "event type: request, token.created, token.revoked, login.failed, ...")
	fl.StringVar(&f.Resource, "resource", "", "RBAC resource: accounts, applications, projects, ...")
	fl.StringVar(&f.Action, "action", "", "RBAC action")
	fl.StringVar(&f.Decision, "decision", "", "allow or deny")
	fl.StringVar(&f.Route, "route", "", `matched route, e.g. "GET /api/v1/account/{name}"`)
	fl.IntVar(&f.Status, "status", 0, "HTTP status of request events")
	fl.StringVar(&since, "since", "", "events at or after this time")
	fl.StringVar(&until, "until", "", "events before this time")
	fl.IntVar(&f.Limit, "limit", 100, "events per page (1-1000)")
	fl.StringVar(&f.Cursor, "cursor", "", "cursor of the page to read, from a previous listing")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if err := format.check(); err != nil {
			return err
		}
		var err error
		now := a.env.Now()
		if f.Since, err = optTime(since, now); err != nil {
			return fmt.Errorf("--since: %w", err)
		}
		if f.Until, err = optTime(until, now); err != nil {
			return fmt.Errorf("--until: %w", err)
		}
		c, err := a.client()
		if err != nil {
			return err
		}
		page, err := c.ListAudit(cmd.Context(), f)
		if err != nil {
			return err
		}
		wide := format.wide()
		err = format.render(cmd.OutOrStdout(), nonNil(page.Items), func(w *tabwriter.Writer) {
			head := []string{"TIME", "TYPE", "ACTOR", "ACCOUNT", "TOKEN", "METHOD", "PATH", "PERMISSION", "DECISION", "VIA", "STATUS", "COUNT"}
			if wide {
				head = append(head, "ROUTE", "REMOTE", "USER AGENT", "DETAIL")
			}
			row(w, head...)
			for _, e := range page.Items {
				status := "-"
				if e.Status != 0 {
					status = fmt.Sprint(e.Status)
				}
				count := "-" // requests the event stands for
				if e.Type == gatehouse.EventRequest {
					count = strconv.Itoa(e.Requests())
				}
				perm := "-"
				if e.Resource != "" && e.Action != "" {
					perm = e.Resource + "," + e.Action + "," + e.Object
				}
				cells := []string{fmtTime(e.Time, "-"), e.Type, orDash(e.Actor), orDash(e.Account), orDash(e.TokenID), orDash(e.Method),
					orDash(e.Path), perm, orDash(e.Decision), orDash(e.Via), status, count}
				if wide {
					cells = append(cells, orDash(e.Route), orDash(e.RemoteAddr), orDash(e.UserAgent), orDash(e.Detail))
				}
				row(w, cells...)
			}
		})
		if err != nil {
			return err
		}
		if page.NextCursor != "" {
			fmt.Fprintf(cmd.ErrOrStderr(), "more events: add --cursor %s\n", page.NextCursor)
		}
		return nil
	}
	return cmd
}

// optTime is parseTime for an optional flag.
func optTime(s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	return parseTime(s, now)
}
