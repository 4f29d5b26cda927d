package cli

import (
	"errors"
	"fmt"

	"github.com/gatehouse/gatehouse/client"
)

// connection is where a command sends its requests and with which token.
type connection struct {
	server    string // as the user gave it: URL or host:port
	context   string // config context it came from, if any
	current   bool   // context is the config's current context
	user      string // the context's user name, for relogin
	token     string
	tokenFrom string // "--auth-token", "GATEHOUSE_AUTH_TOKEN" or "context"
	plaintext bool
	insecure  bool
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
		plaintext: a.flags.plaintext,
		insecure:  a.flags.insecure,
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
		c.plaintext = c.plaintext || ctx.Plaintext
		c.insecure = c.insecure || ctx.Insecure
	}
	if c.server == "" {
		return nil, errors.New("no server: pass --server, set GATEHOUSE_SERVER or run: gatehouse login SERVER")
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
	return newClient(conn.server, conn.token, conn.plaintext, conn.insecure)
}

func newClient(server, token string, plaintext, insecure bool) (*client.Client, error) {
	return client.New(server,
		client.WithToken(token),
		client.WithPlaintext(plaintext),
		client.WithInsecure(insecure),
		client.WithUserAgent("gatehouse-cli/"+Version),
	)
}
