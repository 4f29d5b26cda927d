package main

import (
	"bufio"
	"cmp"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"golang.org/x/term"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/config"
	"github.com/gatehouse/gatehouse/service"
	"github.com/gatehouse/gatehouse/store/postgres"
	"github.com/gatehouse/gatehouse/store/sqlite"
)

// newAdminOfflineCommand is the admin commands that work on a data
// directory itself, with its server stopped. They open the store, so they
// are wired here; the CLI adds them to its own admin group.
func newAdminOfflineCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "admin"}
	cmd.AddCommand(newRestoreCommand(), newResetAdminPasswordCommand())
	return cmd
}

// addStoreFlags registers the server's flags that say where its store is;
// config.Load reads them by name as it does the server's.
func addStoreFlags(fs *pflag.FlagSet, postgres bool) {
	fs.String(config.FlagConfig, "", "the server's YAML config file, to find its store (env "+config.EnvConfig+")")
	fs.String("data-dir", config.Default().DataDir, "the server's data directory (env GATEHOUSE_DATA_DIR)")
	if postgres {
		fs.String("database-url", "", "the servers' PostgreSQL URL, instead of a data directory (env GATEHOUSE_DATABASE_URL)")
	}
}

// embeddedStore loads the server's configuration and refuses one on
// PostgreSQL, whose tools are pg_dump and pg_restore.
func embeddedStore(cmd *cobra.Command) (config.Config, error) {
	cfg, err := config.Load(cmd.Flags(), os.Getenv)
	if err != nil {
		return cfg, err
	}
	if cfg.Database.URL != "" {
		return cfg, errors.New("the configuration names a PostgreSQL database (database.url): this command works on the embedded SQLite store in a data directory; restore PostgreSQL with pg_restore (docs/operations.md, \"Backup and restore\")")
	}
	return cfg, nil
}

// lockOffline takes the data directory's lock, as a server does, for an
// offline command: it fails at once while a server (or another such
// command) uses the directory.
func lockOffline(dir, command string) (unlock func(), ranHere bool, err error) {
	unlock, _, ranHere, err = lockDataDir(dir)
	var inUse *dataDirInUse
	if errors.As(err, &inUse) {
		return nil, false, fmt.Errorf("data directory %s is in use by a running gatehouse server (%s, lock file %s): stop it first, then run %s again", dir, inUse.holder, inUse.lock, command)
	}
	return unlock, ranHere, err
}

// offlineService is the service on st as the server would build it, for
// an offline command: the same instance, policy defaults and password
// rules; no SSO (nothing here talks to the identity provider).
func offlineService(ctx context.Context, cfg config.Config, st gatehouse.Store, log *slog.Logger) (*service.Service, error) {
	return service.New(ctx, service.Options{
		Store:          st,
		Instance:       cfg.InstanceName,
		Logger:         log,
		RBAC:           rbacOf(cfg),
		DisableBuiltin: cfg.RBAC.DisableBuiltin,
		AuditRetention: time.Duration(cfg.Audit.Retention),
	})
}

func newRestoreCommand() *cobra.Command {
	var unrecorded bool
	cmd := &cobra.Command{
		Use:   "restore FILE",
		Short: "Restore the embedded SQLite store from a backup, with the server stopped",
		Long: `Restore the data directory's database from FILE, a backup taken with
gatehouse admin backup, while no server runs on the directory (the server's
lock is taken; a running server makes this fail at once). Give the server's
own --data-dir or --config.

FILE is checked first and nothing changes if it fails: it must be a
Gatehouse SQLite store that passes SQLite's integrity check, of a schema
version this binary knows (an older one is migrated, a newer one refused).
Its SHA-256 is printed. Only its rows are taken: the restored database is
made by this binary's own schema, so a file whose tables were altered
cannot change what the database enforces.

No revocation is undone. When the directory holds a database, FILE must be
a backup that database recorded handing out (a store.backup event with
FILE's SHA-256, kept for the audit retention), unless --unrecorded; and the
restore can only take away. Everything it revoked, deleted, disabled or cut
off after the backup was taken stays so in the restored one: tokens revoked
since stay revoked, accounts deleted or disabled since stay so and keep their
current password, trust policies deleted or changed since stay so, exchanged
subject tokens stay spent and login failures still count; the records both
hold (tokens, accounts, trust policies) and the RBAC settings, projects and
applications are the database's, not the file's. The replaced database is
kept beside the new one as gatehouse.db.replaced-<time>, and the counts are
printed. When the directory holds no database, what was revoked after the
backup cannot be known: a warning says so, and what to do. A database there
that cannot be read (a dangling symbolic link, an empty file) is refused,
never taken for none.`,
		Example: `  gatehouse admin restore gatehouse-2026-03-01.db --data-dir /var/lib/gatehouse
  gatehouse admin restore backup.db --config /etc/gatehouse/config.yaml`,
		Args: cobra.ExactArgs(1),
	}
	addStoreFlags(cmd.Flags(), false)
	cmd.Flags().BoolVar(&unrecorded, "unrecorded", false, "restore a file the data directory's database has no record of (a copy of a stopped server's database file, or a backup older than the audit retention): its content is trusted for what the restore does not carry")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		cfg, err := embeddedStore(cmd)
		if err != nil {
			return err
		}
		log := slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: slog.LevelWarn}))
		res, err := restoreDataDir(cmd.Context(), cfg, args[0], unrecorded, time.Now(), log)
		if err != nil {
			return err
		}
		res.print(cmd.OutOrStdout(), cmd.ErrOrStderr(), args[0])
		return nil
	}
	return cmd
}

// restored is what restoreDataDir did.
type restored struct {
	info   sqlite.BackupInfo
	report gatehouse.RestoreReport
	db     string // the restored database
	kept   string // where the replaced one is kept; "" when there was none
	// leftovers: the directory had no database, but files SQLite keeps
	// beside one (a write-ahead log), now kept beside kept.
	leftovers bool
	sha256    [32]byte // of the backup file, as restored
	at        time.Time
}

// restoreDataDir restores cfg's data directory from the backup file (see
// the restore command). Until the new database is renamed into place the
// directory's database is untouched; any failure before that leaves it as
// it was, and a data directory that had no database as it was too.
func restoreDataDir(ctx context.Context, cfg config.Config, file string, unrecorded bool, now time.Time, log *slog.Logger) (res restored, err error) {
	res.at = now
	// The file first: a bad one changes nothing, not even the directory.
	if res.info, err = sqlite.Verify(ctx, file); err != nil {
		return res, err
	}
	dir := cfg.DataDir
	_, statErr := os.Stat(dir)
	created := errors.Is(statErr, fs.ErrNotExist)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return res, fmt.Errorf("data dir: %w", err)
	}
	unlock, ranHere, err := lockOffline(dir, "gatehouse admin restore")
	if err != nil {
		if created {
			os.Remove(dir)
		}
		return res, err
	}
	lock := filepath.Join(dir, lockFile)
	defer func() {
		if err != nil {
			// Leave the directory as it was: a lock file that records
			// a PID would tell the next server that one ran here.
			switch {
			case created:
				os.Remove(lock)
				os.Remove(dir)
			case !ranHere:
				os.Truncate(lock, 0)
			}
		}
		unlock()
	}()

	res.db = filepath.Join(dir, dbFile)
	hasDB, leftovers, err := dataDirState(res.db)
	if err != nil {
		return res, err
	}
	res.leftovers = leftovers
	if hasDB || leftovers {
		if res.kept, err = keepName(res.db, now); err != nil {
			return res, err
		}
	}
	// The database to carry from, before any work: one that cannot be
	// read as it is is refused, never taken for none.
	var current gatehouse.Store
	closeCurrent := func() {}
	if hasDB {
		st, err := openReplaced(ctx, res.db)
		if err != nil {
			return res, err
		}
		closeCurrent = sync.OnceFunc(func() { st.Close() })
		defer closeCurrent()
		current = st
	}

	// The backup's bytes, copied where no one else writes, are what is
	// checked, hashed and restored: the file may change meanwhile.
	src, sum, err := copyBackup(file, dir)
	if err != nil {
		return res, err
	}
	defer os.Remove(src)
	res.sha256 = sum
	// The new database: this binary's schema, the copy's rows.
	cand := strings.TrimSuffix(src, restoreSuffix) + ".new" + restoreSuffix
	if res.info, err = sqlite.Rebuild(ctx, src, cand); err != nil {
		var nb *sqlite.NotABackupError
		if errors.As(err, &nb) {
			nb.Path = file // the copy is what was read; the file is what to fix
		}
		return res, err
	}
	os.Remove(src)
	defer func() {
		if err != nil {
			for _, p := range []string{cand, cand + "-wal", cand + "-shm", cand + "-journal"} {
				os.Remove(p)
			}
		}
	}()
	from := service.RestoreFrom{Name: filepath.Base(file), SHA256: sum, Unrecorded: unrecorded}
	if res.report, err = carryInto(ctx, cfg, cand, current, from, filepath.Base(res.kept), log); err != nil {
		return res, err
	}
	closeCurrent() // before its file is renamed
	if err := sqlite.Replace(cand, res.db, res.kept); err != nil {
		return res, err
	}
	return res, nil
}

// The temporary files of a restore in the data directory are named
// .gatehouse.db.restore-*.tmp, so that a server starting after a restore
// that died removes them (removeStaleFiles).
const (
	restorePrefix = "." + dbFile + ".restore-"
	restoreSuffix = ".tmp"
)

// removeStaleFiles removes what a backup or a restore that died left in
// the data directory dir, at a server's start, under the directory's
// lock: no snapshot or restore runs then. Files that cannot be removed
// are left for the next start; they take space, nothing else.
func removeStaleFiles(dir string) {
	sqlite.RemoveStaleSnapshots(filepath.Join(dir, dbFile))
	stale, _ := filepath.Glob(filepath.Join(dir, restorePrefix+"*"+restoreSuffix))
	for _, p := range stale {
		for _, q := range []string{p, p + "-wal", p + "-shm", p + "-journal"} {
			if fi, err := os.Lstat(q); err == nil && fi.Mode().IsRegular() {
				os.Remove(q)
			}
		}
	}
}

// dataDirState says whether db exists, and whether files SQLite keeps
// beside a database (a write-ahead log, a journal) are there without it.
func dataDirState(db string) (hasDB, leftovers bool, err error) {
	if _, err := os.Lstat(db); err == nil {
		return true, false, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return false, false, fmt.Errorf("data dir: %w", err)
	}
	for _, suffix := range []string{"-wal", "-shm", "-journal"} {
		if _, err := os.Lstat(db + suffix); err == nil {
			leftovers = true
		}
	}
	return false, leftovers, nil
}

// keepName is a free name beside db for the database a restore replaces.
func keepName(db string, now time.Time) (string, error) {
	base := db + ".replaced-" + now.UTC().Format("20060102T150405Z")
	for i := 1; i < 100; i++ {
		name := base
		if i > 1 {
			name = fmt.Sprintf("%s-%d", base, i)
		}
		free := true
		for _, p := range []string{name, name + "-wal", name + "-shm", name + "-journal"} {
			if _, err := os.Lstat(p); err == nil {
				free = false
			}
		}
		if free {
			return name, nil
		}
	}
	return "", fmt.Errorf("data dir: no free name for the replaced database beside %s", db)
}

// copyBackup copies file into a new file (mode 0600) in dir and returns
// its name and the SHA-256 of what it wrote.
func copyBackup(file, dir string) (string, [32]byte, error) {
	var sum [32]byte
	in, err := os.Open(file)
	if err != nil {
		return "", sum, fmt.Errorf("backup: %w", err)
	}
	defer in.Close()
	out, err := os.CreateTemp(dir, restorePrefix+"*"+restoreSuffix)
	if err != nil {
		return "", sum, fmt.Errorf("data dir: %w", err)
	}
	h := sha256.New()
	_, err = io.Copy(io.MultiWriter(out, h), in)
	if err == nil {
		err = out.Sync()
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(out.Name())
		return "", sum, fmt.Errorf("copy the backup into %s: %w", dir, err)
	}
	h.Sum(sum[:0])
	return out.Name(), sum, nil
}

// openReplaced opens the data directory's database db for a restore to
// carry from: read-only, never created or migrated (sqlite.OpenExisting).
func openReplaced(ctx context.Context, db string) (*sqlite.Store, error) {
	st, err := sqlite.OpenExisting(ctx, db)
	var old *sqlite.SchemaVersionError
	switch {
	case errors.As(err, &old):
		return nil, fmt.Errorf("the data directory's database %s is at schema version %d, older than this gatehouse's %d, and the restore reads it without changing it; nothing was changed. Restore with the gatehouse version the server ran, or start this version's server on the directory once (it migrates the database), stop it and restore again", db, old.Version, old.Latest)
	case err != nil:
		return nil, fmt.Errorf("the data directory's database cannot be read, so its revocations cannot be carried into the restored one; nothing was changed. If it is lost (an unmounted volume, a dangling link), mount or restore it and try again; to restore without it, move %s (and any %s-wal) out of the data directory and restore again: the restore then cannot know the revocations made after the backup. The cause: %w", db, filepath.Base(db), err)
	}
	return st, nil
}

// carryInto opens the restored database cand and lets the service carry
// into it what current, the database it replaces (nil for none), says,
// and record the restore. cand is closed when it returns, so that it
// stands alone.
func carryInto(ctx context.Context, cfg config.Config, cand string, current gatehouse.Store, from service.RestoreFrom, kept string, log *slog.Logger) (gatehouse.RestoreReport, error) {
	st, err := sqlite.Open(ctx, cand)
	if err != nil {
		return gatehouse.RestoreReport{}, fmt.Errorf("open the restored copy: %w", err)
	}
	svc, err := offlineService(ctx, cfg, st, log)
	if err != nil {
		st.Close()
		return gatehouse.RestoreReport{}, fmt.Errorf("the restored copy: %w", err)
	}
	report, err := svc.Restore(ctx, current, from, kept)
	if cerr := st.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("close the restored copy: %w", cerr)
	}
	return report, err
}

// print reports a restore: what was restored and carried on stdout; with
// nothing to carry from, or a file the replaced database did not record,
// a warning on stderr.
func (res restored) print(stdout, stderr io.Writer, file string) {
	r := res.report
	fmt.Fprintf(stdout, "restored %s from %s (sha256 %x, schema version %d", res.db, file, res.sha256, res.info.Version)
	if res.info.Version < res.info.Latest {
		fmt.Fprintf(stdout, ", migrated to %d", res.info.Latest)
	}
	fmt.Fprintf(stdout, "; %d accounts, %d tokens in the backup)\n", res.info.Accounts, res.info.Tokens)
	switch {
	case res.leftovers:
		fmt.Fprintf(stdout, "the files a lost database left beside it are kept as %s-wal (and -shm, -journal)\n", res.kept)
	case res.kept != "":
		fmt.Fprintf(stdout, "the replaced database is kept as %s\n", res.kept)
	}
	if !r.Carried {
		fmt.Fprintf(stderr, `
WARNING: %s held no database (or an empty one) to carry revocations from, so this restore
cannot know what was revoked after the backup was taken. Every token, account
and trust policy in the backup works again as it did then, including tokens
revoked, accounts disabled or deleted, and trust policies removed since; and
a subject token exchanged after the backup can be exchanged again until it
expires. Before you start the server, decide what to cut off, then revoke it
once it runs: every token of an account that may have been revoked since
  gatehouse admin revoke --account NAME --yes
or every token in the backup (all were issued before this restore)
  gatehouse admin revoke --issued-before %s --yes
and disable or delete the accounts and trust policies that were meant to be
gone (delete a trust policy to refuse its subject tokens again). The restore
is recorded in the audit trail (store.restored).
`, filepath.Dir(res.db), res.at.UTC().Format(time.RFC3339))
		return
	}
	if r.Unrecorded {
		fmt.Fprintf(stderr, `
WARNING: the replaced database has no record of handing out %s (sha256 %x):
it was restored because of --unrecorded. What the restore carries from the
replaced database (tokens, accounts, trust policies, the RBAC settings,
projects, applications, exchanged subject tokens, login failures) is the
database's; the rest, the audit trail before the restore above all, is the
file's as it is. Unless you are sure no one changed the file, restore a
backup the server recorded instead: the kept database's store.backup events
name their SHA-256.
`, file, res.sha256)
	}
	w := bufio.NewWriter(stdout)
	defer w.Flush()
	if !r.Unrecorded {
		fmt.Fprintf(w, "the backup is the one %s took at %s (store.backup)\n", r.BackupTakenBy, r.BackupTakenAt.UTC().Format(time.RFC3339))
	}
	fmt.Fprintln(w, "carried from the replaced database, so that no revocation is undone:")
	line := func(n int, what string) { fmt.Fprintf(w, "  %6d %s\n", n, what) }
	line(r.TokensRevoked, "tokens revoked after the backup: revoked")
	line(r.TokensExpired, "tokens expired and removed since: removed")
	line(r.TokensShortened, "tokens whose expiry was brought forward since (rotation grace): earlier expiry kept")
	line(r.AccountsDeleted, "accounts deleted since: deleted, with their tokens")
	line(r.AccountsUpdated, "accounts changed since: current state kept (enabled, capabilities, groups, password, SSO link)")
	line(r.AccountsDisabled, "of those, disabled since: disabled")
	line(r.TrustPoliciesDeleted, "trust policies deleted since: deleted")
	line(r.TrustPoliciesUpdated, "trust policies changed since: current definition kept")
	line(r.ExchangeReplays, "exchanged subject tokens and answered CLI logins: still refused a second time")
	line(r.LoginAttempts, "login attempts: still counted by the login throttle")
	line(r.ProjectsCreated+r.ProjectsUpdated+r.ProjectsDeleted, "projects made, changed or deleted since: as they are now (roles, policies, groups)")
	line(r.ApplicationsCreated+r.ApplicationsUpdated+r.ApplicationsDeleted, "applications made, changed or deleted since: as they are now")
	if r.RBACUpdated {
		fmt.Fprintln(w, "  the RBAC settings changed since: the current ones kept")
	}
	if r.TokensUpdated > 0 {
		line(r.TokensUpdated, "tokens whose record in the file is not the database's (owner, scopes, ...): the database's kept; the file may have been edited")
	}
	fmt.Fprintln(w, "made after the backup, so not in it (gone; still in the kept database):")
	line(r.NewerAccounts, "accounts")
	line(r.NewerTokens, "unexpired tokens, which no longer work")
	line(r.NewerTrustPolicies, "trust policies")
}

func newResetAdminPasswordCommand() *cobra.Command {
	var fromStdin, revokeAPITokens bool
	cmd := &cobra.Command{
		Use:   "reset-admin-password",
		Short: "Set a new password for the admin account, with the server stopped",
		Long: `Set a new password for the admin account, for an administrator who lost it.
On the embedded store, no server may run on the data directory (the server's
lock is taken; a running server makes this fail at once). Give the server's
own --data-dir or --config. On PostgreSQL (--database-url, or the config's
database.url) the replicas may keep running: they apply the change, as any
other, within their staleness bound.

The new password is read twice from the terminal without echo, or, with
--password-stdin, from standard input (its first line). The API's rules
apply (8 to 72 bytes) and it is stored hashed as every password is. The
admin account is enabled, its sessions are revoked, its failed logins are
forgotten, and the audit trail records the reset (account.changed, actor
reset-admin-password). Its API tokens stay, and the command says how many
still work; a password that was lost may have been taken, and so may the
tokens made with it: --revoke-api-tokens revokes them too (token.revoked
events, same actor).`,
		Example: `  gatehouse admin reset-admin-password --data-dir /var/lib/gatehouse
  printf '%s\n' "$NEW_PASSWORD" | gatehouse admin reset-admin-password --data-dir /var/lib/gatehouse --password-stdin
  gatehouse admin reset-admin-password --database-url "$GATEHOUSE_DATABASE_URL"`,
		Args: cobra.NoArgs,
	}
	addStoreFlags(cmd.Flags(), true)
	cmd.Flags().BoolVar(&fromStdin, "password-stdin", false, "read the new password from standard input")
	cmd.Flags().BoolVar(&revokeAPITokens, "revoke-api-tokens", false, "revoke the admin account's API tokens as well")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		cfg, err := config.Load(cmd.Flags(), os.Getenv)
		if err != nil {
			return err
		}
		ctx := cmd.Context()
		if cfg.Database.URL != "" {
			password, err := readNewPassword(cmd.InOrStdin(), cmd.ErrOrStderr(), fromStdin)
			if err != nil {
				return err
			}
			pg, err := postgres.Open(ctx, cfg.Database.URL)
			if err != nil {
				return err
			}
			defer pg.Close()
			return resetAdminPassword(cmd, cfg, pg, password, revokeAPITokens, "the PostgreSQL database",
				"the replicas apply it within their staleness bound: log in as admin with the new password")
		}
		db := filepath.Join(cfg.DataDir, dbFile)
		if _, err := os.Lstat(db); errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("%s holds no Gatehouse database (%s): give the server's --data-dir or --config", cfg.DataDir, dbFile)
		}
		// Open would make a new, empty database of a dangling link or an
		// empty file, and the reset would then report no admin account.
		if fi, err := os.Stat(db); err != nil || fi.Size() == 0 {
			return fmt.Errorf("%s cannot be read as a Gatehouse database (a dangling link, an unmounted volume, an empty file?): %v", db, cmp.Or(err, errors.New("it is empty")))
		}
		unlock, _, err := lockOffline(cfg.DataDir, "gatehouse admin reset-admin-password")
		if err != nil {
			return err
		}
		defer unlock()
		password, err := readNewPassword(cmd.InOrStdin(), cmd.ErrOrStderr(), fromStdin)
		if err != nil {
			return err
		}
		lite, err := sqlite.Open(ctx, db)
		if err != nil {
			return err
		}
		defer lite.Close()
		return resetAdminPassword(cmd, cfg, lite, password, revokeAPITokens, db, "start the server and log in as admin with the new password")
	}
	return cmd
}

// resetAdminPassword runs the reset through the service on st and says
// what it did.
func resetAdminPassword(cmd *cobra.Command, cfg config.Config, st gatehouse.Store, password string, revokeAPITokens bool, where, next string) error {
	ctx := cmd.Context()
	log := slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	svc, err := offlineService(ctx, cfg, st, log)
	if err != nil {
		return err
	}
	r, err := svc.ResetAdminPassword(ctx, password, revokeAPITokens)
	if err != nil {
		return err
	}
	out := cmd.OutOrStdout()
	fmt.Fprintf(out, "admin password reset in %s; %d session(s) revoked", where, r.SessionsRevoked)
	if revokeAPITokens {
		fmt.Fprintf(out, ", %d API token(s) revoked", r.APITokensRevoked)
	}
	fmt.Fprintf(out, "; %s\n", next)
	if r.APITokensLeft > 0 {
		fmt.Fprintf(out, "the admin account still has %d API token(s) that work: if the old password may have been taken, so may they: revoke them with --revoke-api-tokens, or once the server runs with gatehouse admin revoke --account admin --kind api --yes\n", r.APITokensLeft)
	}
	return nil
}

// readNewPassword reads the new password: the first line of in with
// fromStdin, else twice from the terminal that in is, without echo.
func readNewPassword(in io.Reader, prompt io.Writer, fromStdin bool) (string, error) {
	if fromStdin {
		line, err := bufio.NewReader(io.LimitReader(in, 4096)).ReadString('\n')
		if err != nil && !(errors.Is(err, io.EOF) && line != "") {
			return "", errors.New("no password on standard input")
		}
		pw := strings.TrimRight(line, "\r\n")
		if pw == "" {
			return "", errors.New("the password on standard input is empty")
		}
		return pw, nil
	}
	f, ok := in.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return "", errors.New("standard input is not a terminal: pass --password-stdin to read the new password from it")
	}
	read := func(label string) (string, error) {
		fmt.Fprint(prompt, label)
		b, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(prompt)
		if err != nil {
			return "", fmt.Errorf("read the password: %w", err)
		}
		return string(b), nil
	}
	pw, err := read("New admin password: ")
	if err != nil {
		return "", err
	}
	if pw == "" {
		return "", errors.New("the password is empty")
	}
	again, err := read("Confirm new admin password: ")
	if err != nil {
		return "", err
	}
	if again != pw {
		return "", errors.New("the passwords do not match")
	}
	return pw, nil
}
