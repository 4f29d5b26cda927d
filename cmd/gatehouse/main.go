// Command gatehouse is Gatehouse's one binary: `gatehouse server` runs the
// server; every other sub-command is the CLI.
package main

import (
	"os"

	"github.com/gatehouse/gatehouse/cli"
)

func main() {
	os.Exit(cli.Main(os.Args[1:], os.Stdin, os.Stdout, os.Stderr, newServerCommand(), newAdminOfflineCommand()))
}
