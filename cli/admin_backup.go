package cli

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	"github.com/spf13/cobra"
)

func (a *app) adminBackupCmd() *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:   "backup FILE",
		Short: "Download a consistent copy of the server's SQLite store",
		Long: `Download a consistent copy of the server's whole store, the embedded SQLite
database as of one commit, taken while the server runs, into FILE. It goes
through the API with the current context (or --server and --auth-token) and
needs settings, update, backup (role:admin has it); the server records it in
the audit trail (store.backup, with its SHA-256, which is printed) and takes
one backup at a time.

The copy holds every account's password hash, every token's hash, the sealed
SSO refresh tokens (readable with the OIDC client secret), the trust policies
and the whole audit trail: it is written with mode 0600; keep it as safe as
the server's data directory, from being changed as well as from being read. FILE
is written whole or not at all: a temporary file beside it becomes FILE once
the copy is complete and its length and SHA-256 match what the server sent.
An existing FILE is left alone unless --force.

A server on PostgreSQL refuses: back its database up with pg_dump. To restore,
stop the server and run gatehouse admin restore FILE --data-dir DIR.`,
		Example: `  gatehouse admin backup gatehouse-$(date +%F).db
  gatehouse admin backup --force /var/backups/gatehouse.db`,
		Args: cobra.ExactArgs(1),
	}
	cmd.Flags().BoolVar(&force, "force", false, "replace FILE if it exists")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		path := args[0]
		if !force {
			if _, err := os.Lstat(path); err == nil {
				return fmt.Errorf("%s exists: pass --force to replace it", path)
			}
		}
		c, err := a.client()
		if err != nil {
			return err
		}
		// CreateTemp makes the file 0600: the copy is never readable by
		// others, not even while it is written.
		tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".part-*")
		if err != nil {
			return fmt.Errorf("backup: %w", err)
		}
		done := false
		defer func() {
			if !done {
				tmp.Close()
				os.Remove(tmp.Name())
			}
		}()
		info, err := c.Backup(cmd.Context(), tmp)
		if err != nil {
			return err
		}
		if err := tmp.Sync(); err != nil {
			return fmt.Errorf("backup: %w", err)
		}
		if err := tmp.Close(); err != nil {
			return fmt.Errorf("backup: %w", err)
		}
		if err := installBackup(tmp.Name(), path, force); err != nil {
			return err
		}
		done = true
		fmt.Fprintf(cmd.OutOrStdout(), "backup written to %s (%d bytes, sha256 %x)\n", path, info.Size, info.SHA256)
		return nil
	}
	return cmd
}

// installBackup gives the complete file tmp the name path, in one step: a
// rename with force, else a hard link, which fails rather than replace a
// file made meanwhile (on a file system without hard links, a rename after
// checking that path is still free).
func installBackup(tmp, path string, force bool) error {
	if !force {
		err := os.Link(tmp, path)
		switch {
		case errors.Is(err, fs.ErrExist):
			return fmt.Errorf("%s exists: pass --force to replace it", path)
		case err == nil:
			os.Remove(tmp)
			return syncBackupDir(filepath.Dir(path))
		case !errors.Is(err, syscall.EPERM) && !errors.Is(err, syscall.ENOTSUP) && !errors.Is(err, syscall.EMLINK):
			return fmt.Errorf("backup: %w", err)
		}
		if _, err := os.Lstat(path); err == nil {
			return fmt.Errorf("%s exists: pass --force to replace it", path)
		}
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	return syncBackupDir(filepath.Dir(path))
}

// syncBackupDir makes a new name in dir durable.
func syncBackupDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	return nil
}
