package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/internal/buildinfo"
)

// versionTimeout bounds the wait for the server's version: `version` is
// often the first thing run against a server that may not answer.
const versionTimeout = 10 * time.Second

// versionOutput is `gatehouse version -o json`: this binary and, unless
// --client or no server is configured, the server's.
type versionOutput struct {
	Client gatehouse.VersionInfo  `json:"client"`
	Server *gatehouse.VersionInfo `json:"server,omitempty"`
}

func (a *app) versionCmd() *cobra.Command {
	var clientOnly, short bool
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print the client's version and the server's",
		Long: `Print this binary's version, Go version, platform and VCS revision, and
those of the server (GET /api/version, which needs no login) when one is
configured: --server, GATEHOUSE_SERVER or the current context. Without a
configured server only the client's is printed. A configured server that
does not answer is an error, after the client's version is printed.`,
		Example: `  gatehouse version
  gatehouse version --client --short
  gatehouse version -o json`,
		Args: cobra.NoArgs,
	}
	format := addOutputFlag(cmd)
	f := cmd.Flags()
	f.BoolVar(&clientOnly, "client", false, "print the client's version only; ask no server")
	f.BoolVar(&short, "short", false, "print the version numbers only")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if err := checkFormat(*format); err != nil {
			return err
		}
		a.noLoginHint = true // the version needs no login
		out := versionOutput{Client: buildinfo.Read(Version)}
		var serverErr error
		if !clientOnly {
			out.Server, serverErr = a.serverVersion(cmd.Context())
		}
		w := cmd.OutOrStdout()
		if err := render(w, *format, out, func(tw *tabwriter.Writer) {
			printVersion(tw, "gatehouse", out.Client, short)
			if out.Server != nil {
				printVersion(tw, "gatehouse-server", *out.Server, short)
			}
		}); err != nil {
			return err
		}
		if serverErr != nil {
			return fmt.Errorf("server version: %w", serverErr)
		}
		return nil
	}
	return cmd
}

// serverVersion asks the configured server for its version: nil and no
// error when no server is configured.
func (a *app) serverVersion(ctx context.Context) (*gatehouse.VersionInfo, error) {
	c, err := a.client()
	if errors.Is(err, errNoServer) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, versionTimeout)
	defer cancel()
	v, err := c.Version(ctx)
	if err != nil {
		return nil, err
	}
	return &v, nil
}

// printVersion writes one binary's version as Argo CD's `version` does:
// "name: version", then its build details indented.
func printVersion(w io.Writer, name string, v gatehouse.VersionInfo, short bool) {
	fmt.Fprintf(w, "%s: %s\n", name, v.Version)
	if short {
		return
	}
	row(w, "  Go Version:", v.GoVersion)
	row(w, "  Platform:", v.Platform)
	if v.Revision != "" {
		rev := v.Revision
		if v.Modified {
			rev += " (modified)"
		}
		row(w, "  Revision:", rev)
	}
	if !v.RevisionTime.IsZero() {
		row(w, "  Revision Time:", fmtTime(v.RevisionTime, "-"))
	}
}
