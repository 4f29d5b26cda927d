package cli

import (
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/gatehouse/gatehouse"
)

func (a *app) appCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "app",
		Aliases: []string{"apps", "application", "applications"},
		Short:   "Manage applications, their syncs and agent reports",
	}
	cmd.AddCommand(
		a.appListCmd(), a.appGetCmd(), a.appCreateCmd(), a.appDeleteCmd(),
		a.appSyncCmd(), a.appOperationsCmd(), a.appSetStatusCmd(), a.appReportCmd(),
	)
	return cmd
}

func (a *app) appListCmd() *cobra.Command {
	var project string
	cmd := &cobra.Command{Use: "list", Short: "List the applications you may see", Args: cobra.NoArgs}
	format := addListOutputFlag(cmd)
	cmd.Flags().StringVarP(&project, "project", "p", "", "only this project's applications")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if err := format.check(); err != nil {
			return err
		}
		c, err := a.client()
		if err != nil {
			return err
		}
		items, err := c.ListApplications(cmd.Context(), project)
		if err != nil {
			return err
		}
		wide := format.wide()
		return format.render(cmd.OutOrStdout(), nonNil(items), func(w *tabwriter.Writer) {
			head := []string{"NAME", "CLUSTER", "NAMESPACE", "PROJECT", "STATUS", "HEALTH", "REPO", "PATH", "TARGET"}
			if wide {
				head = append(head, "REVISION", "REPORTED", "MESSAGE")
			}
			row(w, head...)
			for _, x := range items {
				s := x.Spec
				cells := []string{x.Name, s.Destination.Server, s.Destination.Namespace, x.Project,
					orDash(x.Status.Sync), orDash(x.Status.Health), s.RepoURL, s.Path, s.TargetRevision}
				if wide {
					cells = append(cells, orDash(x.Status.Revision), fmtTime(x.Status.ReportedAt, "-"), orDash(x.Status.Message))
				}
				row(w, cells...)
			}
		})
	}
	return cmd
}

func (a *app) appGetCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "get NAME", Short: "Show an application", Args: cobra.ExactArgs(1)}
	format := addOutputFlag(cmd)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if err := checkFormat(*format); err != nil {
			return err
		}
		c, err := a.client()
		if err != nil {
			return err
		}
		x, err := c.GetApplication(cmd.Context(), args[0])
		if err != nil {
			return err
		}
		return render(cmd.OutOrStdout(), *format, x, func(w *tabwriter.Writer) {
			s, st := x.Spec, x.Status
			row(w, "Name:", x.Name)
			row(w, "Project:", x.Project)
			row(w, "Server:", s.Destination.Server)
			row(w, "Namespace:", s.Destination.Namespace)
			row(w, "Repo:", s.RepoURL)
			row(w, "Path:", s.Path)
			row(w, "Target:", s.TargetRevision)
			row(w, "Sync Status:", orDash(st.Sync))
			row(w, "Health Status:", orDash(st.Health))
			row(w, "Revision:", orDash(st.Revision))
			row(w, "Message:", orDash(st.Message))
			row(w, "Reported At:", fmtTime(st.ReportedAt, "never"))
			row(w, "Created At:", fmtTime(x.CreatedAt, "-"))
		})
	}
	return cmd
}

func (a *app) appCreateCmd() *cobra.Command {
	var x gatehouse.Application
	cmd := &cobra.Command{
		Use:   "create NAME",
		Short: "Create an application",
		Example: `  gatehouse app create web --project shop --repo https://git.example.com/web.git \
      --path deploy --dest-server https://kubernetes.default.svc --dest-namespace web`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			x.Name = args[0]
			c, err := a.client()
			if err != nil {
				return err
			}
			if _, err := c.CreateApplication(cmd.Context(), x); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "application '%s' created\n", x.Name)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&x.Project, "project", "", "project the application belongs to")
	f.StringVar(&x.Spec.RepoURL, "repo", "", "repository URL")
	f.StringVar(&x.Spec.Path, "path", "", "path inside the repository")
	f.StringVar(&x.Spec.TargetRevision, "revision", "HEAD", "target revision")
	f.StringVar(&x.Spec.Destination.Server, "dest-server", "", "destination cluster URL")
	f.StringVar(&x.Spec.Destination.Namespace, "dest-namespace", "", "destination namespace")
	for _, name := range []string{"project", "repo", "path", "dest-server", "dest-namespace"} {
		_ = cmd.MarkFlagRequired(name)
	}
	return cmd
}

func (a *app) appDeleteCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "delete NAME",
		Short: "Delete an application and its operations",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			if err := c.DeleteApplication(cmd.Context(), args[0]); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "application '%s' deleted\n", args[0])
			return nil
		},
	}
}

// operationTable draws one operation as key/value lines.
func operationTable(w *tabwriter.Writer, op gatehouse.Operation) {
	row(w, "Operation:", op.ID)
	row(w, "Application:", op.Application)
	row(w, "State:", op.State)
	row(w, "Revision:", orDash(op.Revision))
	row(w, "Prune:", fmt.Sprint(op.Prune))
	row(w, "Dry Run:", fmt.Sprint(op.DryRun))
	row(w, "Requested By:", orDash(op.RequestedBy))
	row(w, "Created At:", fmtTime(op.CreatedAt, "-"))
	row(w, "Message:", orDash(op.Message))
}

func (a *app) appSyncCmd() *cobra.Command {
	var in gatehouse.SyncRequest
	cmd := &cobra.Command{
		Use:   "sync NAME",
		Short: "Queue a sync operation for the deploy agent",
		Args:  cobra.ExactArgs(1),
	}
	format := addOutputFlag(cmd)
	f := cmd.Flags()
	f.StringVar(&in.Revision, "revision", "", "revision to sync to (default: the target revision)")
	f.BoolVar(&in.Prune, "prune", false, "delete resources no longer in the repository")
	f.BoolVar(&in.DryRun, "dry-run", false, "only preview the sync")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if err := checkFormat(*format); err != nil {
			return err
		}
		c, err := a.client()
		if err != nil {
			return err
		}
		op, err := c.Sync(cmd.Context(), args[0], in)
		if err != nil {
			return err
		}
		return render(cmd.OutOrStdout(), *format, op, func(w *tabwriter.Writer) { operationTable(w, op) })
	}
	return cmd
}

func (a *app) appOperationsCmd() *cobra.Command {
	var state string
	cmd := &cobra.Command{Use: "operations NAME", Short: "List an application's operations, newest first", Args: cobra.ExactArgs(1)}
	format := addOutputFlag(cmd)
	cmd.Flags().StringVar(&state, "state", "", "only operations in this state: Pending, Running, Succeeded or Failed")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if err := checkFormat(*format); err != nil {
			return err
		}
		c, err := a.client()
		if err != nil {
			return err
		}
		items, err := c.ListOperations(cmd.Context(), args[0], state)
		if err != nil {
			return err
		}
		return render(cmd.OutOrStdout(), *format, nonNil(items), func(w *tabwriter.Writer) {
			row(w, "ID", "STATE", "REVISION", "PRUNE", "DRY-RUN", "REQUESTED-BY", "CREATED", "UPDATED", "MESSAGE")
			for _, op := range items {
				row(w, op.ID, op.State, orDash(op.Revision), fmt.Sprint(op.Prune), fmt.Sprint(op.DryRun),
					orDash(op.RequestedBy), fmtTime(op.CreatedAt, "-"), fmtTime(op.UpdatedAt, "-"), orDash(op.Message))
			}
		})
	}
	return cmd
}

func (a *app) appSetStatusCmd() *cobra.Command {
	var in gatehouse.StatusReport
	cmd := &cobra.Command{
		Use:   "set-status NAME",
		Short: "Record an application's sync and health status (for deploy agents)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			if _, err := c.SetStatus(cmd.Context(), args[0], in); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "application '%s' is %s and %s\n", args[0], in.Sync, in.Health)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&in.Sync, "sync", "", "Synced, OutOfSync or Unknown")
	f.StringVar(&in.Health, "health", "", "Healthy, Progressing, Degraded, Missing or Unknown")
	f.StringVar(&in.Revision, "revision", "", "deployed revision")
	f.StringVar(&in.Message, "message", "", "status message")
	_ = cmd.MarkFlagRequired("sync")
	_ = cmd.MarkFlagRequired("health")
	return cmd
}

func (a *app) appReportCmd() *cobra.Command {
	var in gatehouse.OperationReport
	cmd := &cobra.Command{
		Use:   "report-operation NAME ID",
		Short: "Move a sync operation to Running, Succeeded or Failed (for deploy agents)",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			op, err := c.ReportOperation(cmd.Context(), args[0], args[1], in)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "operation %s of application '%s' is %s\n", op.ID, args[0], op.State)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&in.State, "state", "", "Running, Succeeded or Failed")
	f.StringVar(&in.Message, "message", "", "message, e.g. the failure reason")
	_ = cmd.MarkFlagRequired("state")
	return cmd
}
