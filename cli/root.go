package cli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/gatehouse/gatehouse"
)

// Version is the build's version, set by the linker (-X).
var Version = "dev"

// Env is everything the command tree takes from its process: standard
// streams, environment lookup, clock and terminal. Zero fields take the
// process's own.
type Env struct {
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
	// Getenv looks up GATEHOUSE_* variables, XDG_CONFIG_HOME and HOME;
	// nil means os.Getenv.
	Getenv func(string) string
	// Now is the clock for "(expired)" markers and relative times such as
	// --since 1h; nil means time.Now.
	Now func() time.Time
	// Terminal, when set, says standard input is an interactive terminal
	// and reads passwords from it without echo. Nil means: a terminal
	// when Stdin is an *os.File on a terminal, else not interactive.
	Terminal Terminal
	// OpenBrowser opens a URL for `login --sso`; nil means the system's
	// browser (xdg-open, open).
	OpenBrowser func(url string) error
}

// Terminal is an interactive standard input.
type Terminal interface {
	// ReadPassword reads one line without echoing it.
	ReadPassword() (string, error)
}

// ttyTerminal is the real terminal behind an *os.File.
type ttyTerminal struct{ fd int }

func (t ttyTerminal) ReadPassword() (string, error) {
	b, err := term.ReadPassword(t.fd)
	return string(b), err
}

// withDefaults fills the zero fields of e from the process.
func (e Env) withDefaults() Env {
	if e.Stdin == nil {
		e.Stdin = os.Stdin
	}
	if e.Stdout == nil {
		e.Stdout = os.Stdout
	}
	if e.Stderr == nil {
		e.Stderr = os.Stderr
	}
	if e.Getenv == nil {
		e.Getenv = os.Getenv
	}
	if e.Now == nil {
		e.Now = time.Now
	}
	if e.Terminal == nil {
		if f, ok := e.Stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
			e.Terminal = ttyTerminal{fd: int(f.Fd())}
		}
	}
	return e
}

// Main runs the command tree on args (without the program name) and
// returns the process exit code. A failure prints one line,
// "error: <message>", on stderr. Interrupt and SIGTERM cancel the running
// request.
func Main(args []string, stdin io.Reader, stdout, stderr io.Writer, extra ...*cobra.Command) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return Run(ctx, Env{Stdin: stdin, Stdout: stdout, Stderr: stderr}, args, extra...)
}

// Run is Main with every process dependency in env, for tests and
// embedding.
func Run(ctx context.Context, env Env, args []string, extra ...*cobra.Command) int {
	a := newApp(env)
	root := a.root(extra...)
	if args == nil {
		args = []string{} // nil would make cobra read os.Args
	}
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return 0
	}
	if msg := a.describe(err); msg != "" {
		fmt.Fprintf(a.env.Stderr, "error: %s\n", msg)
	}
	return exitCode(err)
}

// NewRoot returns the gatehouse command tree on the process's own streams
// and environment. extra commands (the server, wired in cmd/gatehouse) are
// added at the top level; an extra group named like a built-in one (admin)
// adds its subcommands to it. Errors are returned, not printed; Main prints
// them.
func NewRoot(extra ...*cobra.Command) *cobra.Command {
	return newApp(Env{}).root(extra...)
}

// exitCode is the code carried by err (an ExitCode() int method anywhere
// in its chain), else 1.
func exitCode(err error) int {
	var ec interface{ ExitCode() int }
	if errors.As(err, &ec) {
		return ec.ExitCode()
	}
	return 1
}

// app is one run of the command tree: its environment, the global flags
// and what it learned about the connection.
type app struct {
	env Env
	in  *bufio.Reader // stdin, shared by every prompt of the run

	flags struct {
		server, authToken, config, context, serverCrt string
		insecure, plaintext                           bool
	}

	// conn is the connection of the running command, once resolved; it
	// shapes the hint printed after a 401.
	conn *connection
	// noLoginHint is set by the commands that log in or out themselves.
	noLoginHint bool
}

func newApp(env Env) *app {
	env = env.withDefaults()
	return &app{env: env, in: bufio.NewReader(env.Stdin)}
}

func (a *app) root(extra ...*cobra.Command) *cobra.Command {
	root := &cobra.Command{
		Use:           "gatehouse",
		Short:         "Token-based access server and its CLI",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetIn(a.env.Stdin)
	root.SetOut(a.env.Stdout)
	root.SetErr(a.env.Stderr)
	root.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error {
		return fmt.Errorf("%w (see '%s --help')", err, cmd.CommandPath())
	})

	pf := root.PersistentFlags()
	pf.StringVar(&a.flags.server, "server", "", "server address: URL or host:port (env GATEHOUSE_SERVER)")
	pf.StringVar(&a.flags.authToken, "auth-token", "", "token to authenticate with, instead of the context's (env GATEHOUSE_AUTH_TOKEN)")
	pf.StringVar(&a.flags.config, "config", "", "config file (default $GATEHOUSE_CONFIG_DIR/config, $XDG_CONFIG_HOME/gatehouse/config or ~/.config/gatehouse/config)")
	pf.StringVar(&a.flags.context, "context", "", "config context to use instead of the current one")
	pf.BoolVar(&a.flags.insecure, "insecure", false, "skip verification of the server's TLS certificate")
	pf.BoolVar(&a.flags.plaintext, "plaintext", false, "use plain HTTP for a host:port server address")
	pf.StringVar(&a.flags.serverCrt, "server-crt", "", "PEM file of the CA (or self-signed certificate) to verify the server's TLS certificate against, instead of the system's roots; login stores it in the context (env GATEHOUSE_SERVER_CRT)")

	_ = root.RegisterFlagCompletionFunc("context", func(cmd *cobra.Command, _ []string, prefix string) ([]string, cobra.ShellCompDirective) {
		return a.completeContextNames(cmd, nil, prefix)
	})

	root.AddCommand(
		a.loginCmd(),
		a.logoutCmd(),
		a.reloginCmd(),
		a.contextCmd(),
		a.accountCmd(),
		a.projCmd(),
		a.appCmd(),
		a.adminCmd(),
		a.auditCmd(),
		a.tokenCmd(),
		a.trustCmd(),
		a.versionCmd(),
	)
	addCommands(root, extra...)
	refuseUnknownSubcommands(root)
	a.completeAccountFlags(root)
	return root
}

// addCommands adds cmds to parent. A command group (one with nothing to
// run itself) named like a group parent has already adds its subcommands
// to that group instead: cmd/gatehouse puts the offline admin commands,
// which open the store, under `gatehouse admin`.
func addCommands(parent *cobra.Command, cmds ...*cobra.Command) {
	for _, c := range cmds {
		var into *cobra.Command
		for _, have := range parent.Commands() {
			if have.Name() == c.Name() && !c.Runnable() {
				into = have
			}
		}
		if into == nil {
			parent.AddCommand(c)
			continue
		}
		subs := c.Commands()
		c.RemoveCommand(subs...)
		into.AddCommand(subs...)
	}
}

// describe renders err as the one line after "error: ". API errors show the
// server's message; a 401 adds how to log in again.
func (a *app) describe(err error) string {
	var ge *gatehouse.Error
	if !errors.As(err, &ge) {
		return oneLine(err.Error())
	}
	msg := ge.Message
	if msg == "" {
		msg = ge.Code
	}
	if ge.Code == gatehouse.ETHROTTLED && ge.RetryAfter > 0 {
		msg += fmt.Sprintf("; retry in %s", ge.RetryAfter)
	}
	if ge.Code == gatehouse.EUNAUTHORIZED && !a.noLoginHint {
		msg += "; " + a.loginHint()
	}
	// Wrapping context (fmt.Errorf("...: %w", ge)) goes before the message.
	if full := err.Error(); full != ge.Error() && strings.HasSuffix(full, ge.Error()) {
		msg = strings.TrimSuffix(full, ge.Error()) + msg
	}
	return oneLine(msg)
}

// loginHint says how to get a fresh credential for the connection in use.
func (a *app) loginHint() string {
	c := a.conn
	switch {
	case c == nil:
		return "run: gatehouse login SERVER"
	case c.tokenFrom != "" && c.tokenFrom != "context":
		return "the token from " + c.tokenFrom + " was refused"
	case c.context != "" && c.user != "" && c.current:
		// Also after logout, which keeps the context and its user but
		// not the token.
		return "run: gatehouse relogin"
	case c.context != "" && c.user != "":
		// relogin works on the current context unless told otherwise.
		return "run: gatehouse relogin --context " + c.context
	}
	return "run: gatehouse login " + c.server
}

// oneLine folds a multi-line message (cobra's suggestions) onto one line,
// terminal-safe (a server's message may hold escape sequences).
func oneLine(s string) string {
	lines := strings.Split(s, "\n")
	out := lines[:0]
	for _, l := range lines {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	return termSafe(strings.Join(out, " "))
}

// refuseUnknownSubcommands makes every command group (a command with
// subcommands and nothing to run itself) fail on a word that names none of
// them, as the root command does, with cobra's suggestions; cobra would
// print the group's help and exit 0, so that a script calling a mistyped
// command ("account lst") carries on as if it had worked.
func refuseUnknownSubcommands(cmd *cobra.Command) {
	for _, sub := range cmd.Commands() {
		refuseUnknownSubcommands(sub)
	}
	if cmd.Parent() == nil || !cmd.HasSubCommands() || cmd.Runnable() {
		return
	}
	cmd.Args = cobra.ArbitraryArgs
	cmd.SuggestionsMinimumDistance = 2
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if len(args) == 0 {
			return cmd.Help()
		}
		msg := fmt.Sprintf("unknown command %q for %q", args[0], cmd.CommandPath())
		if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
			msg += "; did you mean " + strings.Join(s, " or ") + "?"
		}
		return fmt.Errorf("%s (see '%s --help')", msg, cmd.CommandPath())
	}
}
