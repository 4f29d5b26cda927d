package cli

import (
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/gatehouse/gatehouse/client"
)

// errNoServer: neither a flag, the environment nor a context names a
// server.
var errNoServer = errors.New("no server: pass --server, set GATEHOUSE_SERVER or run: gatehouse login SERVER")

// connection is where a command sends its requests and with which token.
type connection struct {
	server    string // as the user gave it: URL or host:port
	context   string // config context it came from, if any
	current   bool   // context is the config's current context
	user      string // the context's user name, for relogin
	token     string
	tokenFrom string // "--auth-token", "GATEHOUSE_AUTH_TOKEN" or "context"
	transport
}

// resolve works out the connection: --server, else GATEHOUSE_SERVER, else
// the context's server; --auth-token, else GATEHOUSE_AUTH_TOKEN, else the
// context's token. The config file is not read at all when the server and
// the token both come from flags or the environment, so a token in the
// environment works on a machine with no config.
func (a *app) resolve() (*connection, error) {
	c := &connection{
		server:    a.flags.server,
		token:     a.flags.authToken,
		transport: a.transportOver(transport{}),
	}
	if c.server == "" {
		c.server = a.env.Getenv("GATEHOUSE_SERVER")
	}
	switch {
	case c.token != "":
		c.tokenFrom = "--auth-token"
	case a.env.Getenv("GATEHOUSE_AUTH_TOKEN") != "":
		c.token = a.env.Getenv("GATEHOUSE_AUTH_TOKEN")
		c.tokenFrom = "GATEHOUSE_AUTH_TOKEN"
	}
	if a.flags.context == "" && c.server != "" && c.token != "" {
		return c, nil
	}

	cfg, path, err := a.loadConfig()
	if err != nil {
		return nil, err
	}
	var ctx *configContext
	switch {
	case a.flags.context != "":
		var ok bool
		if ctx, ok = cfg.find(a.flags.context); !ok {
			return nil, fmt.Errorf("context %q is not in %s", a.flags.context, path)
		}
		if c.server != "" && c.server != ctx.Server {
			// The context's token must not be sent to another server.
			return nil, fmt.Errorf("--server %s differs from the server %s of context %q", c.server, ctx.Server, ctx.Name)
		}
	case c.server != "":
		// Only a context for this very server lends its token.
		ctx, _ = cfg.findServer(c.server)
	case cfg.CurrentContext != "":
		ctx, _ = cfg.find(cfg.CurrentContext)
	}
	if ctx != nil {
		c.context, c.user = ctx.Name, ctx.User
		c.current = ctx.Name == cfg.CurrentContext
		if c.server == "" {
			c.server = ctx.Server
		}
		if c.token == "" && ctx.Token != "" {
			c.token, c.tokenFrom = ctx.Token, "context"
		}
		c.transport = a.transportOver(ctx.transport)
	}
	if c.server == "" {
		return nil, errNoServer
	}
	return c, nil
}

// client returns an API client for the resolved connection.
func (a *app) client() (*client.Client, error) {
	conn, err := a.resolve()
	if err != nil {
		return nil, err
	}
	a.conn = conn
	return newClient(conn.server, conn.token, conn.transport)
}

// transportOver is a stored context's transport as this run's flags
// change it: --plaintext adds to it; --insecure replaces a stored
// --server-crt and --server-crt (or GATEHOUSE_SERVER_CRT) a stored
// --insecure; both flags at once conflict, which newClient reports.
func (a *app) transportOver(stored transport) transport {
	t := stored
	t.Plaintext = t.Plaintext || a.flags.plaintext
	crt := a.flags.serverCrt
	if crt == "" {
		crt = a.env.Getenv("GATEHOUSE_SERVER_CRT")
	}
	if a.flags.insecure {
		t.Insecure, t.ServerCrt = true, ""
	}
	if crt != "" {
		t.ServerCrt = crt
		t.Insecure = a.flags.insecure
	}
	return t
}

// describe says in a table cell how t verifies the server.
func (t transport) describe() string {
	switch {
	case t.Insecure:
		return "insecure"
	case t.ServerCrt != "":
		return "server-crt " + t.ServerCrt
	case t.Plaintext:
		return "plaintext"
	}
	return "-"
}

// forStorage is t as a context keeps it: the certificate file as an
// absolute path, so that the context works from any directory.
func (t transport) forStorage() (transport, error) {
	if t.ServerCrt == "" {
		return t, nil
	}
	abs, err := filepath.Abs(t.ServerCrt)
	if err != nil {
		return t, fmt.Errorf("--server-crt: %w", err)
	}
	t.ServerCrt = abs
	return t, nil
}

func newClient(server, token string, t transport) (*client.Client, error) {
	opts := []client.Option{
		client.WithToken(token),
		client.WithPlaintext(t.Plaintext),
		client.WithInsecure(t.Insecure),
		client.WithUserAgent("gatehouse-cli/" + Version),
	}
	if t.ServerCrt != "" {
		if t.Insecure {
			return nil, errors.New("--server-crt conflicts with --insecure: trust the certificate, or skip verification, not both")
		}
		pool, err := loadServerCrt(t.ServerCrt)
		if err != nil {
			return nil, err
		}
		opts = append(opts, client.WithRootCAs(pool))
	}
	return client.New(server, opts...)
}

// loadServerCrt reads a PEM file of certificates to trust for the server.
func loadServerCrt(path string) (*x509.CertPool, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("--server-crt: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("--server-crt %s: no PEM certificate in the file", path)
	}
	return pool, nil
}
