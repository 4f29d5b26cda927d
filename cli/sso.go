package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"net"
	"net/http"
	"net/url"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/spf13/cobra"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/client"
	"github.com/gatehouse/gatehouse/internal/loopback"
)

// ssoTimeout bounds how long `login --sso` waits for the browser.
const ssoTimeout = 5 * time.Minute

// ssoLogin logs in through the server's identity provider with the
// browser: it listens on a loopback port, sends the browser to the
// server's /auth/login with that port and a fresh public key, and waits
// for the browser to bring back the session, sealed to the key by the
// server after the provider's callback. Neither the browser's history nor
// anything on the way sees the session in the clear.
func (a *app) ssoLogin(ctx context.Context, c *client.Client, launch bool) (gatehouse.NewToken, error) {
	key, err := loopback.NewKey()
	if err != nil {
		return gatehouse.NewToken{}, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return gatehouse.NewToken{}, fmt.Errorf("listening for the browser on the loopback interface: %w", err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	got := make(chan gatehouse.NewToken, 1)
	srv := &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/callback" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		plain, err := key.Open(r.URL.Query().Get("result"))
		var nt gatehouse.NewToken
		if err == nil {
			err = json.Unmarshal(plain, &nt)
		}
		if err != nil || nt.Token == "" {
			w.WriteHeader(http.StatusBadRequest)
			_ = ssoPage.Execute(w, "This is not the answer to this login. Start it again from the command line.")
			return
		}
		_ = ssoPage.Execute(w, "You are logged in to the Gatehouse CLI. You can close this tab.")
		select {
		case got <- nt:
		default:
		}
	})}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()

	u := c.Server() + "/auth/login?" + url.Values{"cli_port": {strconv.Itoa(port)}, "cli_key": {key.Public()}}.Encode()
	out := a.env.Stderr
	if launch {
		fmt.Fprintf(out, "Opening the browser for SSO login; if it does not open, visit:\n%s\n", u)
		if err := a.openBrowser(u); err != nil {
			fmt.Fprintf(out, "Could not open a browser (%v); open the address above yourself.\n", err)
		}
	} else {
		fmt.Fprintf(out, "To log in, open this address in a browser on this machine:\n%s\n", u)
	}
	wait, cancel := context.WithTimeout(ctx, ssoTimeout)
	defer cancel()
	select {
	case nt := <-got:
		return nt, nil
	case <-wait.Done():
		if errors.Is(wait.Err(), context.DeadlineExceeded) {
			return gatehouse.NewToken{}, fmt.Errorf("no SSO login arrived within %s", ssoTimeout)
		}
		return gatehouse.NewToken{}, wait.Err()
	}
}

var ssoPage = template.Must(template.New("sso").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Gatehouse CLI</title></head>
<body><p>{{.}}</p></body></html>
`))

// openBrowser opens u in the user's browser (Env.OpenBrowser in tests).
func (a *app) openBrowser(u string) error {
	if a.env.OpenBrowser != nil {
		return a.env.OpenBrowser(u)
	}
	var cmd *exec.Cmd
	switch runtime.GOOS {
	case "darwin":
		cmd = exec.Command("open", u)
	case "windows":
		cmd = exec.Command("rundll32", "url.dll,FileProtocolHandler", u)
	default:
		cmd = exec.Command("xdg-open", u)
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	go func() { _ = cmd.Wait() }()
	return nil
}

// deviceLogin logs in through the server's identity provider with the
// device authorization grant (RFC 8628), for a machine without a browser:
// the server starts the login at the provider; the user opens the address
// shown, on any device, and enters the code; meanwhile the CLI polls the
// server, at the interval it says, until the user has logged in.
func (a *app) deviceLogin(ctx context.Context, c *client.Client) (gatehouse.NewToken, error) {
	dl, err := c.StartDeviceLogin(ctx)
	if err != nil {
		return gatehouse.NewToken{}, err
	}
	if !shownAsIs(dl.UserCode) || !shownAsIs(dl.VerificationURI) || !shownAsIs(dl.VerificationURIComplete) {
		return gatehouse.NewToken{}, errors.New("the server's answer to a device login holds characters a terminal should not be sent")
	}
	// The server's own limit, whatever an answer says.
	ttl := min(time.Duration(max(dl.ExpiresIn, 1))*time.Second, maxDeviceWait)
	out := a.env.Stderr
	fmt.Fprintf(out, "To log in, open %s on any device and enter the code %s\n", dl.VerificationURI, dl.UserCode)
	if dl.VerificationURIComplete != "" {
		fmt.Fprintf(out, "(or open %s, which carries the code)\n", dl.VerificationURIComplete)
	}
	fmt.Fprintf(out, "Waiting for the login (up to %s)...\n", ttl)
	wait, cancel := context.WithTimeout(ctx, ttl)
	defer cancel()
	pause := time.Duration(min(max(dl.Interval, 1), 60)) * time.Second
	for {
		select {
		case <-time.After(pause):
		case <-wait.Done():
			if ctx.Err() != nil {
				return gatehouse.NewToken{}, ctx.Err()
			}
			return gatehouse.NewToken{}, fmt.Errorf("the device login was not finished within %s", ttl)
		}
		tok, interval, err := c.PollDeviceLogin(wait, dl.Handle)
		switch {
		case err != nil && wait.Err() != nil:
			continue // the loop's select says which ended
		case gatehouse.IsCode(err, gatehouse.ETHROTTLED) || gatehouse.IsCode(err, gatehouse.EUNAVAILABLE):
			// The server is busy or could not reach the provider, which
			// has not spent the code: wait longer, then ask again.
			pause = max(pause, 5*time.Second)
		case err != nil:
			return gatehouse.NewToken{}, err
		case tok != "":
			return gatehouse.NewToken{Token: tok}, nil
		default:
			pause = time.Duration(min(max(interval, 1), 60)) * time.Second
		}
	}
}

// maxDeviceWait is the longest a device login may take (the server's
// limit too).
const maxDeviceWait = 30 * time.Minute

// shownAsIs reports whether s can be printed to a terminal as it is.
func shownAsIs(s string) bool {
	return !strings.ContainsFunc(s, func(r rune) bool { return r > unicode.MaxASCII || !unicode.IsPrint(r) })
}

// ssoFlags are login's SSO flags.
type ssoFlags struct {
	on, launch, device bool
}

func (f *ssoFlags) add(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.BoolVar(&f.on, "sso", false, "log in through the server's identity provider (SSO) in a browser; the session comes back through a port on 127.0.0.1")
	fl.BoolVar(&f.launch, "sso-launch-browser", true, "with --sso, open the browser (false: print the address to open)")
	fl.BoolVar(&f.device, "sso-device", false, "log in through the server's identity provider without a browser on this machine: open the address shown on any device and enter the code (device authorization grant, RFC 8628, where the provider offers it)")
	for _, flag := range []string{"sso", "sso-device"} {
		cmd.MarkFlagsMutuallyExclusive(flag, "username")
		cmd.MarkFlagsMutuallyExclusive(flag, "password")
	}
	cmd.MarkFlagsMutuallyExclusive("sso", "sso-device")
	cmd.MarkFlagsMutuallyExclusive("sso-device", "sso-launch-browser")
}

// loginWithSSO is `login --sso` and `login --sso-device`: the session is
// stored in the context like a password login's, under the user name the
// server knows it by.
func (a *app) loginWithSSO(cmd *cobra.Command, c *client.Client, cfg config, path, name, server string, f ssoFlags, tr transport) error {
	var nt gatehouse.NewToken
	var err error
	if f.device {
		nt, err = a.deviceLogin(cmd.Context(), c)
	} else {
		nt, err = a.ssoLogin(cmd.Context(), c, f.launch)
	}
	if err != nil {
		return err
	}
	who, err := newClient(server, nt.Token, tr)
	if err != nil {
		return err
	}
	info, err := who.UserInfo(cmd.Context())
	if err != nil {
		return err
	}
	cfg.upsert(configContext{Name: name, Server: server, User: info.Username, Token: nt.Token, transport: tr})
	cfg.CurrentContext = name
	if err := saveConfig(path, cfg); err != nil {
		return err
	}
	out := cmd.OutOrStdout()
	fmt.Fprintf(out, "'%s' logged in successfully\n", termSafe(info.Username))
	fmt.Fprintf(out, "Context '%s' updated\n", name)
	return nil
}
