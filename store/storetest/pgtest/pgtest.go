// Package pgtest starts a throwaway PostgreSQL server for the tests of one
// package and hands each test a database of its own.
//
// A test package starts one server in TestMain, because initdb costs about
// 1.5 s and a database copied from template0 about 50-100 ms:
//
//	var pg *pgtest.Server
//
//	func TestMain(m *testing.M) { os.Exit(pgtest.Main(m, &pg)) }
//
//	func TestSomething(t *testing.T) {
//		url := pg.Database(t) // skips when PostgreSQL is not installed
//		...
//	}
//
// The server runs the binaries of PostgreSQL 15 from /usr/lib/postgresql/15/bin
// (GATEHOUSE_TEST_POSTGRES_BIN names another directory) on a free port of
// 127.0.0.1, as the postgres OS user when the tests run as root (initdb and
// postgres refuse to run as root), with durability switched off. Without the
// binaries every test that asks for a database skips with a message saying
// why, unless GATEHOUSE_TEST_REQUIRE_POSTGRES=1 (CI), which fails the
// package instead: CI must never skip silently.
package pgtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// DefaultBin is where Debian's postgresql-15 package puts the server.
const DefaultBin = "/usr/lib/postgresql/15/bin"

// Server is a running throwaway PostgreSQL server, or the reason there is
// none (then Database skips).
type Server struct {
	skip string // why there is no server; "" when running

	dir  string // owns the data directory and the unix socket
	port int
	cmd  *exec.Cmd
	exit chan struct{} // closed when the postmaster has exited
	log  *bytes.Buffer // the server's own log, for failure messages

	mu    sync.Mutex // serializes CREATE/DROP DATABASE on admin
	admin *pgx.Conn
	n     atomic.Int64 // databases handed out
}

// Main starts the server, runs the package's tests, stops the server and
// returns the exit code for os.Exit. *srv is set before the tests run; it is
// a Server that skips when PostgreSQL is missing and not required.
func Main(m *testing.M, srv **Server) int {
	bin := os.Getenv("GATEHOUSE_TEST_POSTGRES_BIN")
	if bin == "" {
		bin = DefaultBin
	}
	required := os.Getenv("GATEHOUSE_TEST_REQUIRE_POSTGRES") == "1"
	s, err := Start(bin)
	switch {
	case err != nil && errors.Is(err, errNoBinaries) && !required:
		*srv = &Server{skip: err.Error() + " (install postgresql-15, or set GATEHOUSE_TEST_POSTGRES_BIN; GATEHOUSE_TEST_REQUIRE_POSTGRES=1 turns this skip into a failure)"}
		return m.Run()
	case err != nil:
		fmt.Fprintf(os.Stderr, "pgtest: %v\n", err)
		return 1
	}
	*srv = s
	code := m.Run()
	if err := s.Stop(); err != nil {
		fmt.Fprintf(os.Stderr, "pgtest: %v\n", err)
		if code == 0 {
			code = 1
		}
	}
	return code
}

var errNoBinaries = errors.New("PostgreSQL binaries not found")

// Start initializes a data directory and starts postgres on it. The caller
// must call Stop.
func Start(bin string) (_ *Server, err error) {
	for _, name := range []string{"initdb", "postgres"} {
		if fi, err := os.Stat(filepath.Join(bin, name)); err != nil || fi.Mode()&0o111 == 0 {
			return nil, fmt.Errorf("%w: no executable %s in %s", errNoBinaries, name, bin)
		}
	}
	cred, err := credential()
	if err != nil {
		return nil, err
	}
	// Not t.TempDir: its parent is 0700 root, which the postgres user cannot
	// enter. A short path keeps the unix socket under its 107-byte limit.
	dir, err := os.MkdirTemp("", "pg")
	if err != nil {
		return nil, err
	}
	s := &Server{dir: dir, exit: make(chan struct{}), log: &bytes.Buffer{}}
	defer func() {
		if err != nil {
			s.Stop()
		}
	}()
	if cred != nil {
		if err := os.Chown(dir, int(cred.Uid), int(cred.Gid)); err != nil {
			return nil, err
		}
	}
	data := filepath.Join(dir, "data")
	initdb := s.command(cred, filepath.Join(bin, "initdb"), "-D", data, "-U", "postgres", "-A", "trust",
		"-E", "UTF8", "--locale=C.UTF-8", "--no-sync")
	if out, err := initdb.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("initdb: %v\n%s", err, out)
	}
	if s.port, err = freePort(); err != nil {
		return nil, err
	}
	s.cmd = s.command(cred, filepath.Join(bin, "postgres"), "-D", data, "-p", strconv.Itoa(s.port), "-k", dir,
		"-c", "listen_addresses=127.0.0.1",
		"-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
		// Parallel tests each hold a pool of a few connections.
		"-c", "max_connections=300")
	s.cmd.Stdout, s.cmd.Stderr = s.log, s.log
	if err := s.cmd.Start(); err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	go func() { s.cmd.Wait(); close(s.exit) }()

	// Ready when it accepts a connection; give up if it exits first.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for {
		s.admin, err = pgx.Connect(ctx, s.url("postgres"))
		if err == nil {
			return s, nil
		}
		select {
		case <-s.exit:
			return nil, fmt.Errorf("postgres exited at start-up: %s", s.log)
		case <-ctx.Done():
			return nil, fmt.Errorf("postgres did not accept connections within 30s: %v\n%s", err, s.log)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// credential is who runs initdb and postgres: the postgres user (else
// nobody) when we are root, ourselves (nil) otherwise.
func credential() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	for _, name := range []string{"postgres", "nobody"} {
		u, err := user.Lookup(name)
		if err != nil {
			continue
		}
		uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
		gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
		if err1 != nil || err2 != nil {
			continue
		}
		return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), Groups: []uint32{}}, nil
	}
	return nil, errors.New("running as root and neither a postgres nor a nobody user exists to run PostgreSQL as")
}

// command runs name in its own process group (so Stop can kill all of it),
// killed if the test binary dies first.
func (s *Server) command(cred *syscall.Credential, name string, args ...string) *exec.Cmd {
	cmd := exec.Command(name, args...)
	cmd.Dir = s.dir
	cmd.Env = append(os.Environ(), "LC_ALL=C.UTF-8")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Setpgid: true, Pdeathsig: syscall.SIGKILL}
	return cmd
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func (s *Server) url(db string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", s.port, db)
}

// Port is the TCP port the server listens on (127.0.0.1).
func (s *Server) Port() int { return s.port }

// PID is the postmaster's process id, for tests that signal it.
func (s *Server) PID() int { return s.cmd.Process.Pid }

// SkipIfMissing skips t when there is no server, before it starts work
// that would only skip later.
func (s *Server) SkipIfMissing(t testing.TB) {
	t.Helper()
	if s == nil {
		t.Fatal("pgtest: no server: call pgtest.Main from TestMain")
	}
	if s.skip != "" {
		t.Skip("pgtest: " + s.skip)
	}
}

// Database creates an empty database for t and returns its URL; it is
// dropped when t ends, after the cleanups t registers later (such as closing
// a store on it). It skips t when there is no server.
func (s *Server) Database(t testing.TB) string {
	t.Helper()
	s.SkipIfMissing(t)
	name := "t" + strconv.FormatInt(s.n.Add(1), 10)
	// FILE_COPY copies template0's files: about 4x faster than the default
	// WAL_LOG strategy for a database this small.
	if err := s.exec("CREATE DATABASE " + name + " TEMPLATE template0 STRATEGY FILE_COPY"); err != nil {
		t.Fatalf("pgtest: create database: %v", err)
	}
	t.Cleanup(func() {
		if err := s.exec("DROP DATABASE " + name + " WITH (FORCE)"); err != nil {
			t.Errorf("pgtest: drop database: %v", err)
		}
	})
	return s.url(name)
}

// Exec runs one statement as the superuser in the maintenance database, for
// tests that change server-wide settings (ALTER DATABASE, pg_terminate_backend).
func (s *Server) Exec(t testing.TB, sql string, args ...any) {
	t.Helper()
	if err := s.exec(sql, args...); err != nil {
		t.Fatalf("pgtest: %s: %v", sql, err)
	}
}

func (s *Server) exec(sql string, args ...any) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := s.admin.Exec(ctx, sql, args...)
	return err
}

// Stop shuts the server down (SIGINT, a fast shutdown), kills its process
// group if it is still there after 10 s, and removes its directory.
func (s *Server) Stop() error {
	if s.admin != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		s.admin.Close(ctx)
		cancel()
	}
	var errs []error
	if s.cmd != nil && s.cmd.Process != nil {
		pid := s.cmd.Process.Pid
		s.cmd.Process.Signal(syscall.SIGINT)
		select {
		case <-s.exit:
		case <-time.After(10 * time.Second):
			errs = append(errs, errors.New("postgres did not stop within 10s of SIGINT; killed"))
			syscall.Kill(-pid, syscall.SIGKILL)
			<-s.exit
		}
	}
	if s.dir != "" {
		errs = append(errs, os.RemoveAll(s.dir))
	}
	return errors.Join(errs...)
}
