package cli

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"

	"go.yaml.in/yaml/v3"
)

// config is the CLI's config file: named contexts, each a server and the
// session token the CLI holds for it.
type config struct {
	CurrentContext string          `yaml:"current-context"`
	Contexts       []configContext `yaml:"contexts"`
}

// configContext is one server the CLI has logged in to.
type configContext struct {
	Name      string `yaml:"name"`
	Server    string `yaml:"server"`
	User      string `yaml:"user,omitempty"` // for relogin
	Token     string `yaml:"token,omitempty"`
	transport `yaml:",inline"`
}

// transport is how the CLI reaches a server: what a bare host:port means
// and how the server's TLS certificate is verified.
type transport struct {
	Plaintext bool `yaml:"plaintext,omitempty"`
	Insecure  bool `yaml:"insecure,omitempty"`
	// ServerCrt is a PEM file of the certificates to verify the server
	// against instead of the system's roots: a private CA, or the
	// server's own self-signed certificate. Stored as an absolute path.
	ServerCrt string `yaml:"server-crt,omitempty"`
}

// parseConfig decodes and validates a config file's content.
func parseConfig(b []byte) (config, error) {
	var c config
	if err := yaml.Unmarshal(b, &c); err != nil {
		return config{}, err
	}
	seen := map[string]bool{}
	for i, ctx := range c.Contexts {
		switch {
		case ctx.Name == "":
			return config{}, fmt.Errorf("context %d has no name", i+1)
		case seen[ctx.Name]:
			return config{}, fmt.Errorf("context %q appears twice", ctx.Name)
		case ctx.Server == "":
			return config{}, fmt.Errorf("context %q has no server", ctx.Name)
		}
		seen[ctx.Name] = true
	}
	if c.CurrentContext != "" && !seen[c.CurrentContext] {
		return config{}, fmt.Errorf("current-context %q is not among the contexts", c.CurrentContext)
	}
	return c, nil
}

// find returns the named context.
func (c *config) find(name string) (*configContext, bool) {
	for i := range c.Contexts {
		if c.Contexts[i].Name == name {
			return &c.Contexts[i], true
		}
	}
	return nil, false
}

// findServer returns the context named server or, failing that, the first
// one whose server is server.
func (c *config) findServer(server string) (*configContext, bool) {
	if ctx, ok := c.find(server); ok {
		return ctx, true
	}
	for i := range c.Contexts {
		if c.Contexts[i].Server == server {
			return &c.Contexts[i], true
		}
	}
	return nil, false
}

// upsert adds ctx or replaces the context of the same name.
func (c *config) upsert(ctx configContext) {
	if old, ok := c.find(ctx.Name); ok {
		*old = ctx
		return
	}
	c.Contexts = append(c.Contexts, ctx)
}

// remove deletes the named context and reports whether it existed.
func (c *config) remove(name string) bool {
	for i := range c.Contexts {
		if c.Contexts[i].Name == name {
			c.Contexts = append(c.Contexts[:i], c.Contexts[i+1:]...)
			if c.CurrentContext == name {
				c.CurrentContext = ""
			}
			return true
		}
	}
	return false
}

// configPath is --config, else $GATEHOUSE_CONFIG_DIR/config, else
// $XDG_CONFIG_HOME/gatehouse/config, else ~/.config/gatehouse/config.
func (a *app) configPath() (string, error) {
	getenv := a.env.Getenv
	switch {
	case a.flags.config != "":
		return a.flags.config, nil
	case getenv("GATEHOUSE_CONFIG_DIR") != "":
		return filepath.Join(getenv("GATEHOUSE_CONFIG_DIR"), "config"), nil
	case getenv("XDG_CONFIG_HOME") != "":
		return filepath.Join(getenv("XDG_CONFIG_HOME"), "gatehouse", "config"), nil
	case getenv("HOME") != "":
		return filepath.Join(getenv("HOME"), ".config", "gatehouse", "config"), nil
	}
	return "", errors.New("cannot locate the config file: set --config, GATEHOUSE_CONFIG_DIR or HOME")
}

// loadConfig reads the config file; a missing file is an empty config. A
// file that group or others may read or write is refused: it holds tokens.
func (a *app) loadConfig() (config, string, error) {
	path, err := a.configPath()
	if err != nil {
		return config{}, "", err
	}
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return config{}, path, nil
	}
	if err != nil {
		return config{}, path, fmt.Errorf("read config: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return config{}, path, fmt.Errorf("read config: %w", err)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 && runtime.GOOS != "windows" {
		return config{}, path, fmt.Errorf("config file %s has mode %04o; run chmod 600 %s", path, perm, path)
	}
	b, err := readAllLimited(f, 1<<20)
	if err != nil {
		return config{}, path, fmt.Errorf("read config %s: %w", path, err)
	}
	c, err := parseConfig(b)
	if err != nil {
		return config{}, path, fmt.Errorf("config file %s: %w", path, err)
	}
	return c, path, nil
}

// saveConfig writes c atomically with mode 0600, creating its directory
// with mode 0700.
func saveConfig(path string, c config) error {
	b, err := yaml.Marshal(c)
	if err != nil {
		return fmt.Errorf("write config: %w", err)
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("write config: %w", err)
	}
	// CreateTemp makes the file 0600, so the tokens are never readable by
	// others, not even for a moment.
	f, err := os.CreateTemp(dir, ".config-*")
	if err != nil {
		return fmt.Errorf("write config: %w", err)
	}
	tmp := f.Name()
	defer os.Remove(tmp) // a no-op after the rename
	if _, err := f.Write(b); err != nil {
		f.Close()
		return fmt.Errorf("write config: %w", err)
	}
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return fmt.Errorf("write config: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("write config: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write config: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write config: %w", err)
	}
	return nil
}

// readAllLimited reads at most limit bytes and fails on more.
func readAllLimited(r io.Reader, limit int64) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("larger than %d bytes", limit)
	}
	return b, nil
}
