package cli

import (
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/gatehouse/gatehouse/token"
)

func (a *app) tokenCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "token", Short: "Work with tokens offline"}
	cmd.AddCommand(a.tokenInspectCmd())
	return cmd
}

// tokenInfo is what inspect shows: never the secret.
type tokenInfo struct {
	Instance string `json:"instance"`
	ID       string `json:"id"`
	Checksum string `json:"checksum"`
}

func (a *app) tokenInspectCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "inspect TOKEN|-",
		Short: "Check a token's format and checksum offline and show its instance and id",
		Long: `Parse a token without contacting any server: check its format and
checksum, and show the instance that issued it and its id (the id that
list-tokens, audit and revocation use). The secret is never printed. With
"-" the token is read from standard input, which keeps it out of the
process list and shell history.`,
		Example: `  gatehouse token inspect - <<<"$TOKEN"`,
		Args:    cobra.ExactArgs(1),
	}
	format := addOutputFlag(cmd)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if err := checkFormat(*format); err != nil {
			return err
		}
		s := args[0]
		if s == "-" {
			line, err := a.readLine("token")
			if err != nil {
				return err
			}
			s = line
		}
		t, err := token.Parse(strings.TrimSpace(s))
		if err != nil {
			// Parse's reasons never quote the input.
			return fmt.Errorf("invalid token: %s", strings.TrimPrefix(err.Error(), "token: "))
		}
		info := tokenInfo{Instance: t.Instance, ID: t.ID.String(), Checksum: "ok"}
		return render(cmd.OutOrStdout(), *format, info, func(w *tabwriter.Writer) {
			row(w, "Instance:", orDash(info.Instance))
			row(w, "ID:", info.ID)
			row(w, "Checksum:", info.Checksum)
		})
	}
	return cmd
}
