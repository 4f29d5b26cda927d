package cli

import (
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"
)

// exitNotVerified is audit verify's exit code when the chain does not
// verify (1 stays for errors: no answer at all).
const exitNotVerified = 2

func (a *app) auditVerifyCmd() *cobra.Command {
	var anchor string
	cmd := &cobra.Command{
		Use:   "verify",
		Short: "Verify the audit trail's hash chain",
		Long: `Ask the server to recompute the audit trail's hash chain, from the oldest
event kept to the newest, and report the first event that does not fit: one
changed, removed or inserted in the database. It needs audit, get, * (the
right to read the whole trail).

The answer ends with the chain's head as an anchor (<id>:<hash>). Keep it
somewhere the server cannot write, and check later that the chain still
passes through it with --anchor: that is what shows a chain rewritten from
some event on, or cut short, by someone who could write the database
(docs/operations.md, "Audit chain").

Exit code 0 when the chain verifies, 2 when it does not, 1 when there is no
answer (an error).`,
		Example: `  gatehouse audit verify
  gatehouse audit verify -o json >> /mnt/worm/gatehouse-audit-heads.jsonl
  gatehouse audit verify --anchor 48213:6f1c...e2a9`,
		Args: cobra.NoArgs,
	}
	format := addOutputFlag(cmd)
	cmd.Flags().StringVar(&anchor, "anchor", "", "an exported head (<id>:<hash>) the chain must still pass through")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if err := checkFormat(*format); err != nil {
			return err
		}
		c, err := a.client()
		if err != nil {
			return err
		}
		res, err := c.VerifyAudit(cmd.Context(), anchor)
		if err != nil {
			return err
		}
		err = render(cmd.OutOrStdout(), *format, res, func(w *tabwriter.Writer) {
			if res.OK {
				fmt.Fprintf(w, "ok: %s verified\n", auditEventCount(res.Events))
				fmt.Fprintf(w, "anchor:\t%s\n", res.Anchor)
			} else {
				fmt.Fprintln(w, "NOT OK: the audit trail does not verify")
				fmt.Fprintf(w, "first bad event:\t%d\n", res.FirstBadID)
				fmt.Fprintf(w, "problem:\t%s\n", res.Problem)
				fmt.Fprintf(w, "events that fit before it:\t%d\n", res.Events)
			}
			if res.StartID > 0 {
				fmt.Fprintf(w, "chain starts after:\t%d:%s (the last event pruned)\n", res.StartID, res.StartHash)
			}
			if res.Unchained > 0 {
				fmt.Fprintf(w, "unchained:\t%s from before the chain began, not verified\n", auditEventCount(res.Unchained))
			}
			if anchor != "" && res.AnchorChecked {
				fmt.Fprintf(w, "anchor %s:\tin the chain\n", anchor)
			}
		})
		if err == nil && !res.OK {
			return &exitCodeError{code: exitNotVerified, err: errSilent}
		}
		return err
	}
	return cmd
}

// auditEventCount is "1 event", "2 events".
func auditEventCount(n int64) string {
	if n == 1 {
		return "1 event"
	}
	return fmt.Sprintf("%d events", n)
}
