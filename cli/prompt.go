package cli

import (
	"errors"
	"fmt"
	"io"
	"strings"
)

// interactive reports whether standard input is a terminal a person types
// at.
func (a *app) interactive() bool { return a.env.Terminal != nil }

// readLine reads one line of standard input without its line ending.
func (a *app) readLine(what string) (string, error) {
	line, err := a.in.ReadString('\n')
	if err != nil && !(errors.Is(err, io.EOF) && line != "") {
		if errors.Is(err, io.EOF) {
			return "", fmt.Errorf("no %s on standard input", what)
		}
		return "", fmt.Errorf("read %s: %w", what, err)
	}
	return strings.TrimRight(line, "\r\n"), nil
}

// promptLine asks for a value: with a prompt on a terminal, else as the next
// line of standard input.
func (a *app) promptLine(label, what string) (string, error) {
	if a.interactive() {
		fmt.Fprint(a.env.Stderr, label)
	}
	s, err := a.readLine(what)
	if err != nil {
		return "", err
	}
	if s = strings.TrimSpace(s); s == "" {
		return "", fmt.Errorf("%s is empty", what)
	}
	return s, nil
}

// promptPassword asks for a secret: without echo on a terminal, else as the
// next line of standard input (so `echo "$PW" | gatehouse login ...` works).
func (a *app) promptPassword(label, what string) (string, error) {
	var s string
	var err error
	if a.interactive() {
		fmt.Fprint(a.env.Stderr, label)
		s, err = a.env.Terminal.ReadPassword()
		fmt.Fprintln(a.env.Stderr)
		if err != nil {
			return "", fmt.Errorf("read %s: %w", what, err)
		}
	} else if s, err = a.readLine(what); err != nil {
		return "", err
	}
	if s == "" {
		return "", fmt.Errorf("%s is empty", what)
	}
	return s, nil
}

// newPassword asks for a new password, twice on a terminal.
func (a *app) newPassword() (string, error) {
	pw, err := a.promptPassword("New password: ", "new password")
	if err != nil || !a.interactive() {
		return pw, err
	}
	again, err := a.promptPassword("Confirm new password: ", "new password")
	if err != nil {
		return "", err
	}
	if again != pw {
		return "", errors.New("the passwords do not match")
	}
	return pw, nil
}

// confirm asks a yes/no question before a destructive action. Unless yes
// is already given, it needs a terminal: a script must say --yes.
func (a *app) confirm(yes bool, question string) error {
	if yes {
		return nil
	}
	if !a.interactive() {
		return fmt.Errorf("refusing to %s without confirmation: standard input is not a terminal; pass --yes", question)
	}
	fmt.Fprintf(a.env.Stderr, "%s%s? [y/N] ", strings.ToUpper(question[:1]), question[1:])
	answer, err := a.readLine("answer")
	if err != nil {
		return err
	}
	switch strings.ToLower(strings.TrimSpace(answer)) {
	case "y", "yes":
		return nil
	}
	return errors.New("aborted")
}
