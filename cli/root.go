package cli

import (
	"github.com/spf13/cobra"
)

// Version is the build's version, set by the linker (-X).
var Version = "dev"

// NewRoot returns the gatehouse command tree. extra commands (the server,
// wired in cmd/gatehouse) are added at the top level.
func NewRoot(extra ...*cobra.Command) *cobra.Command {
	root := &cobra.Command{
		Use:           "gatehouse",
		Short:         "Token-based access server and its CLI",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(extra...)
	root.AddCommand(&cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cmd.Println("gatehouse", Version)
			return nil
		},
	})
	return root
}
