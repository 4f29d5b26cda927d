package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/cobra"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/cli"
	"github.com/gatehouse/gatehouse/config"
	"github.com/gatehouse/gatehouse/internal/logbuf"
	"github.com/gatehouse/gatehouse/server"
	"github.com/gatehouse/gatehouse/service"
	"github.com/gatehouse/gatehouse/store/postgres"
	"github.com/gatehouse/gatehouse/store/sqlite"
)

func newServerCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "server",
		Short: "Run the Gatehouse server",
		Long: `Run the Gatehouse server: on the embedded SQLite store in --data-dir, or
with --database-url on PostgreSQL, where several replicas may share one
database (each follows the database's change feed and refuses tokens when it
cannot confirm, within --staleness-bound, that it is current).

Settings come from defaults, then the YAML file given by --config, then
GATEHOUSE_* environment variables, then flags. On first start the admin
account is created; its password comes from GATEHOUSE_ADMIN_PASSWORD or is
generated and written to <data-dir>/initial-admin-password.`,
		Args: cobra.NoArgs,
	}
	config.AddFlags(cmd.Flags())
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		cfg, err := config.Load(cmd.Flags(), os.Getenv)
		if err != nil {
			return err
		}
		ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		// The log is written in the background (see logbuf): a request
		// never waits for the disk. Close writes what is left.
		logw := logbuf.New(cmd.ErrOrStderr(), logbuf.DefaultInterval, logbuf.DefaultMaxBytes)
		defer logw.Close()
		log := slog.New(slog.NewJSONHandler(logw, nil))
		return run(ctx, cfg, log, logw, os.Getenv("GATEHOUSE_ADMIN_PASSWORD"), nil)
	}
	return cmd
}

// run starts the server and blocks until ctx ends, then shuts down
// gracefully: drain (see drain), stop accepting, finish requests, flush
// audit events. ready, when not nil, receives the bound address once the
// server listens.
// logw, when not nil, is the log's asynchronous writer, under log's JSON
// handler: its drops are exported as a metric, and the access log is
// written to it directly.
func run(ctx context.Context, cfg config.Config, log *slog.Logger, logw *logbuf.Writer, adminPassword string, ready chan<- string) error {
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return fmt.Errorf("data dir: %w", err)
	}
	st, closeStore, err := openStore(ctx, cfg)
	if err != nil {
		return err
	}
	defer closeStore()

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	metrics := service.NewMetrics(reg)
	if logw != nil {
		reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "gatehouse_log_lines_dropped_total",
			Help: "Log lines dropped because the log's write queue was full (the disk fell behind).",
		}, func() float64 { return float64(logw.Dropped()) }))
	}
	svc, err := service.New(ctx, service.Options{
		Store:              st,
		Instance:           cfg.InstanceName,
		Logger:             log,
		Metrics:            metrics,
		DefaultLifetime:    time.Duration(cfg.Tokens.DefaultLifetime),
		MaxLifetime:        time.Duration(cfg.Tokens.MaxLifetime),
		AllowNonExpiring:   cfg.Tokens.AllowNonExpiring,
		IdleTimeout:        time.Duration(cfg.Tokens.IdleTimeout),
		RBAC:               rbacOf(cfg),
		FileRBAC:           cfg.FileRBAC(),
		Replica:            replicaName(cfg),
		DisableBuiltin:     cfg.RBAC.DisableBuiltin,
		LoginMaxFailures:   cfg.Login.MaxFailures,
		LoginWindow:        time.Duration(cfg.Login.Window),
		LoginMaxConcurrent: cfg.Login.MaxConcurrent,
		AuditRetention:     time.Duration(cfg.Audit.Retention),
		StalenessBound:     time.Duration(cfg.Cluster.StalenessBound),
		SSO:                ssoOf(cfg),
		Notifications:      cfg.Notifications.Options(),
	})
	if err != nil {
		return err
	}
	if err := bootstrapAdmin(ctx, svc, cfg.DataDir, adminPassword, log); err != nil {
		return err
	}
	trust, err := cfg.TrustPolicyList()
	if err != nil {
		return err
	}
	if err := svc.ApplyTrustPolicies(ctx, trust); err != nil {
		return fmt.Errorf("config: %w", err)
	}

	promh := promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
	opts := server.Options{Service: svc, Logger: log, Metrics: metrics, TLS: cfg.TLS.Cert != "", Version: cli.Version}
	if logw != nil {
		opts.LogWriter = logw // the access log is encoded onto it directly
	}
	opts.ForwardAuthHeaders = server.ForwardAuthHeaders(cfg.ForwardAuth.Headers)
	if opts.TrustedProxies, err = cfg.ForwardAuth.TrustedProxyPrefixes(); err != nil {
		return err // Validate has refused it already
	}
	for _, r := range cfg.ForwardAuth.Routes {
		opts.ForwardAuth = append(opts.ForwardAuth, server.Route(r))
	}
	if cfg.MetricsListen == "" {
		opts.MetricsHandler = promh
	}
	var draining atomic.Bool
	srv := &http.Server{
		Handler:           closeWhileDraining(server.New(opts), &draining),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return err
	}
	servers := []*http.Server{srv}
	errc := make(chan error, 2)
	go func() {
		if cfg.TLS.Cert != "" {
			errc <- srv.ServeTLS(ln, cfg.TLS.Cert, cfg.TLS.Key)
		} else {
			errc <- srv.Serve(ln)
		}
	}()
	if cfg.MetricsListen != "" {
		mln, err := net.Listen("tcp", cfg.MetricsListen)
		if err != nil {
			return err
		}
		msrv := &http.Server{Handler: promh, ReadHeaderTimeout: 10 * time.Second}
		servers = append(servers, msrv)
		go func() { errc <- msrv.Serve(mln) }()
		log.Info("metrics listening", "addr", mln.Addr().String())
	}

	bgCtx, stopBg := context.WithCancel(context.WithoutCancel(ctx))
	bgDone := make(chan struct{})
	go func() {
		defer close(bgDone)
		go svc.RunSSORefresh(bgCtx)
		svc.Run(bgCtx, time.Duration(cfg.ReaperInterval))
	}()

	scheme := "http"
	if cfg.TLS.Cert != "" {
		scheme = "https"
	}
	log.Info("gatehouse listening", "addr", ln.Addr().String(), "url", scheme+"://"+ln.Addr().String(), "instance", cfg.InstanceName, "data_dir", cfg.DataDir, "config", cfg)
	if ready != nil {
		ready <- ln.Addr().String()
	}

	var serveErr error
	select {
	case <-ctx.Done():
		serveErr = drain(svc, &draining, time.Duration(cfg.ShutdownDrain), errc, log)
	case serveErr = <-errc:
	}
	log.Info("shutting down")
	shutCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 20*time.Second)
	defer cancel()
	for _, s := range servers {
		if err := s.Shutdown(shutCtx); err != nil {
			log.Error("shutdown", "err", err)
		}
	}
	// Requests are done: write what they queued, then stop.
	stopBg()
	<-bgDone
	if errors.Is(serveErr, http.ErrServerClosed) {
		serveErr = nil
	}
	return serveErr
}

// drain is the first step of a shutdown: /readyz answers 503 at once, and
// the server keeps serving for d so that a load balancer checking
// readiness stops sending here before the listener closes; what it still
// sends meanwhile is answered. Each response during the drain closes its
// connection, so that clients holding one open here reconnect, to another
// replica. A second signal, or a listener that fails, ends the drain early.
func drain(svc *service.Service, draining *atomic.Bool, d time.Duration, errc <-chan error, log *slog.Logger) error {
	svc.Drain()
	draining.Store(true)
	if d <= 0 {
		return nil
	}
	again := make(chan os.Signal, 1)
	signal.Notify(again, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(again)
	log.Info("draining: /readyz answers 503, still serving", "drain", d.String())
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-again:
		log.Info("second signal: ending the drain early")
	case err := <-errc:
		return err
	}
	return nil
}

// closeWhileDraining asks the client to close its connection after each
// response once draining is set.
func closeWhileDraining(h http.Handler, draining *atomic.Bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if draining.Load() {
			w.Header().Set("Connection", "close")
		}
		h.ServeHTTP(w, r)
	})
}

// The data directory's own files.
const (
	dbFile   = "gatehouse.db"
	lockFile = "gatehouse.lock"
)

// lockDataDir takes an exclusive flock on the data directory's lock file
// and writes this process's PID into it, for as long as the server runs.
// Two servers on one database would each trust their own caches: a token
// revoked on one would stay valid on the other. So a second one fails at
// once, naming the first.
//
// The PID stays in the file after exit: a lock file that holds one shows
// that a server has run here before (ranHere), which checkDataDir needs.
// unlock releases the lock; the file is never removed, since removing it
// while another server waits to open it would give the two different locks.
func lockDataDir(dir string) (unlock func(), held func() error, ranHere bool, err error) {
	path := filepath.Join(dir, lockFile)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, nil, false, fmt.Errorf("data dir lock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			holder := "its PID is not recorded yet"
			if b, _ := os.ReadFile(path); len(bytes.TrimSpace(b)) > 0 {
				holder = "PID " + string(bytes.TrimSpace(b))
			}
			return nil, nil, false, &dataDirInUse{dir: dir, holder: holder, lock: path}
		}
		return nil, nil, false, fmt.Errorf("data dir lock %s: %w", path, err)
	}
	// Read the previous holder's PID before writing ours over it.
	prev, err := io.ReadAll(f)
	if err == nil {
		err = f.Truncate(0)
	}
	if err == nil {
		_, err = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	if err != nil {
		f.Close()
		return nil, nil, false, fmt.Errorf("data dir lock %s: %w", path, err)
	}
	locked, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, nil, false, fmt.Errorf("data dir lock %s: %w", path, err)
	}
	return func() { f.Close() }, heldLock(path, locked), len(bytes.TrimSpace(prev)) > 0, nil
}

// dataDirInUse is lockDataDir's answer while another process holds the
// lock: a server, or an offline admin command.
type dataDirInUse struct{ dir, holder, lock string }

func (e *dataDirInUse) Error() string {
	return fmt.Sprintf("data directory %s is in use by another gatehouse server (%s, lock file %s): stop it first, or give this server its own --data-dir; two servers on one database would disagree about which tokens are revoked", e.dir, e.holder, e.lock)
}

// openStore opens the store the configuration names: PostgreSQL for a
// database URL (several replicas may share it; each follows its change
// feed), else the embedded SQLite database in the data directory, which
// this server locks for itself.
func openStore(ctx context.Context, cfg config.Config) (gatehouse.Store, func(), error) {
	if cfg.Database.URL != "" {
		db, err := postgres.Open(ctx, cfg.Database.URL)
		if err != nil {
			return nil, nil, err
		}
		return db, func() { db.Close() }, nil
	}
	unlock, held, ranHere, err := lockDataDir(cfg.DataDir)
	if err != nil {
		return nil, nil, err
	}
	if err := checkDataDir(cfg.DataDir, ranHere); err != nil {
		unlock()
		return nil, nil, err
	}
	removeStaleFiles(cfg.DataDir)
	db, err := sqlite.Open(ctx, filepath.Join(cfg.DataDir, dbFile))
	if err != nil {
		unlock()
		return nil, nil, err
	}
	return lockedStore{Store: db, held: held}, func() { db.Close(); unlock() }, nil
}

// heldLock reports, as EUNAVAILABLE, when the lock file at path is no
// longer the file this server locked: someone removed or replaced it, and
// a second server may now hold a lock of its own on the same data.
func heldLock(path string, locked os.FileInfo) func() error {
	return func() error {
		fi, err := os.Stat(path)
		if err == nil && os.SameFile(fi, locked) {
			return nil
		}
		return &gatehouse.Error{Code: gatehouse.EUNAVAILABLE, Message: "store unavailable",
			Err: fmt.Errorf("lock file %s was removed or replaced: another server may be using this data directory", path)}
	}
}

// lockedStore is the store of a data directory this server has locked. It
// takes the lock's loss as the store's: readiness fails and writes and
// Views are refused, as when the database file itself is lost.
type lockedStore struct {
	gatehouse.Store
	held func() error
}

func (s lockedStore) Check(ctx context.Context) error {
	if err := s.held(); err != nil {
		return err
	}
	return s.Store.Check(ctx)
}

func (s lockedStore) Tx(ctx context.Context, fn func(gatehouse.Tx) error) error {
	if err := s.held(); err != nil {
		return err
	}
	return s.Store.Tx(ctx, fn)
}

// View is refused too once the lock is lost: the database file may now be
// another server's, and reads must not answer from it, as they do not once
// the database file itself is lost.
func (s lockedStore) View(ctx context.Context, fn func(gatehouse.Tx) error) error {
	if err := s.held(); err != nil {
		return err
	}
	return s.Store.View(ctx, fn)
}

// Snapshot is refused too once the lock is lost: the database file may
// now be another server's.
func (s lockedStore) Snapshot(ctx context.Context) (gatehouse.Snapshot, error) {
	if err := s.held(); err != nil {
		return nil, err
	}
	sn, ok := s.Store.(gatehouse.Snapshotter)
	if !ok {
		return nil, gatehouse.Internal(fmt.Errorf("the locked store %T cannot take snapshots", s.Store))
	}
	return sn.Snapshot(ctx)
}

// checkDataDir refuses to start over with a new, empty database in a data
// directory that has been used: a database missing there was deleted or
// moved, and a fresh one would silently drop every account, token and
// revocation that was acknowledged. Only an empty or new directory (a
// volume's lost+found aside) gets a fresh database. ranHere says the lock
// file shows an earlier server; the lock file this server just created
// does not count.
func checkDataDir(dir string, ranHere bool) error {
	db := filepath.Join(dir, dbFile)
	if _, err := os.Lstat(db); err == nil {
		return nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("data dir: %w", err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("data dir: %w", err)
	}
	var found []string
	for _, e := range entries {
		switch name := e.Name(); {
		case name == "lost+found":
		case name == lockFile:
			if ranHere {
				found = append(found, name)
			}
		default:
			found = append(found, name)
		}
	}
	if len(found) == 0 {
		return nil
	}
	return fmt.Errorf("data directory %s has no database (%s) but is not empty (it holds %s): the database of the server that ran here was deleted or moved. Gatehouse creates a new, empty database only in an empty or new data directory, so that acknowledged accounts, tokens and revocations are never dropped silently. Restore %s from a backup, or, to start fresh, move the directory away (mv %s %s.old) and start again",
		dir, dbFile, strings.Join(found, ", "), db, dir, dir)
}

// bootstrapAdmin creates the admin account on first start and, when its
// password was generated, writes it to a 0600 file and says where.
func bootstrapAdmin(ctx context.Context, svc *service.Service, dataDir, password string, log *slog.Logger) error {
	generated, err := svc.Bootstrap(ctx, password)
	if err != nil {
		return fmt.Errorf("creating the admin account: %w", err)
	}
	if generated == "" {
		return nil
	}
	path := filepath.Join(dataDir, "initial-admin-password")
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("writing the initial admin password: %w", err)
	}
	if _, err := fmt.Fprintln(f, generated); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	abs, _ := filepath.Abs(path)
	log.Warn("created the admin account; its generated password is in the file shown (mode 0600): log in, change it with `gatehouse account update-password`, then delete the file", "password_file", abs)
	return nil
}

// ssoOf is the service's SSO configuration, nil without SSO.
func ssoOf(cfg config.Config) *service.SSOOptions {
	if !cfg.SSO.OIDC.Enabled() {
		return nil
	}
	o := cfg.SSO.OIDC.WithDefaults()
	var caps []gatehouse.Capability
	for _, c := range o.Capabilities {
		caps = append(caps, gatehouse.Capability(c))
	}
	return &service.SSOOptions{
		Name: o.Name, Issuer: o.Issuer, ClientID: o.ClientID, ClientSecret: string(o.ClientSecret),
		RedirectURL: o.RedirectURL, Scopes: o.Scopes, UsernameClaim: o.UsernameClaim, GroupsClaim: o.GroupsClaim,
		GroupsRefreshInterval: time.Duration(o.GroupsRefreshInterval), GroupsMaxAge: time.Duration(o.GroupsMaxAge),
		DeviceLogin: o.DeviceLogin, Capabilities: caps,
	}
}

func rbacOf(cfg config.Config) gatehouse.RBAC {
	return gatehouse.RBAC{
		PolicyCSV:     cfg.RBAC.PolicyCSV,
		PolicyDefault: cfg.RBAC.PolicyDefault,
		MatchMode:     cfg.RBAC.MatchMode,
	}
}

// replicaName names this server in the audit record of a change its
// configuration file makes: the host, the listen address and the data
// directory, which stay the same across its restarts and tell apart
// replicas on one host.
func replicaName(cfg config.Config) string {
	host, err := os.Hostname()
	if err != nil {
		host = "unknown host"
	}
	dir := cfg.DataDir
	if abs, err := filepath.Abs(dir); err == nil {
		dir = abs
	}
	return host + ", listen " + cfg.Listen + ", data dir " + dir
}
