// Package pgtest starts a throw-away PostgreSQL server for tests: initdb into a temp dir and postgres
// listening on a unix socket only (no TCP port), run as the `postgres` system user when the test runs
// as root (PostgreSQL refuses to run as root). It skips the test when the binaries are missing, unless
// CNPG_MCP_REQUIRE_ALL=1, in which case it fails.
//
// Outage tests stop and start the server while clients use it: Stop is a fast shutdown (pg_ctl stop
// -m fast), Kill a SIGKILL (crash recovery at the next Start), Start brings it back on the same socket
// and data directory.
package pgtest

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// Server is a running PostgreSQL server.
type Server struct {
	dir  string
	bin  string
	cred *syscall.Credential
	port int
	logf *os.File

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd has exited
}

// BinDir finds /usr/lib/postgresql/<newest>/bin (or $CNPG_MCP_PG_BIN).
func BinDir() (string, error) {
	if d := os.Getenv("CNPG_MCP_PG_BIN"); d != "" {
		return d, nil
	}
	m, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	if len(m) == 0 {
		return "", fmt.Errorf("PostgreSQL binaries not found under /usr/lib/postgresql/*/bin (install Debian's postgresql package: apt-get install -y postgresql, or run `make deps`)")
	}
	sort.Strings(m)
	return filepath.Dir(m[len(m)-1]), nil
}

// Start starts a server, registers its shutdown with t.Cleanup, and returns it.
func Start(t testing.TB) *Server {
	t.Helper()
	s, err := start()
	if err != nil {
		if errors.Is(err, errNoBinaries) && os.Getenv("CNPG_MCP_REQUIRE_ALL") != "1" {
			t.Skip(err.Error())
		}
		t.Fatal(err)
	}
	t.Cleanup(s.close)
	return s
}

var errNoBinaries = errors.New("no PostgreSQL binaries")

func start() (*Server, error) {
	bin, err := BinDir()
	if err != nil {
		if os.Getenv("CNPG_MCP_REQUIRE_ALL") == "1" {
			return nil, fmt.Errorf("%v (CNPG_MCP_REQUIRE_ALL=1)", err)
		}
		return nil, fmt.Errorf("%w: %v", errNoBinaries, err)
	}
	base, err := os.MkdirTemp("", "cnpg-mcp-pg-")
	if err != nil {
		return nil, err
	}
	cred, err := credential(base)
	if err != nil {
		os.RemoveAll(base)
		return nil, err
	}
	s := &Server{dir: base, bin: bin, cred: cred, port: 5432}
	var out bytes.Buffer
	initdb := s.command("initdb", "-D", s.data(), "-U", "postgres", "-A", "trust", "--no-sync", "-E", "UTF8")
	initdb.Stdout, initdb.Stderr = &out, &out
	if err := initdb.Run(); err != nil {
		os.RemoveAll(base)
		return nil, fmt.Errorf("initdb: %v\n%s", err, out.String())
	}
	s.logf, err = os.Create(filepath.Join(base, "postgres.log"))
	if err != nil {
		os.RemoveAll(base)
		return nil, err
	}
	if cred != nil {
		_ = os.Chown(s.logf.Name(), int(cred.Uid), int(cred.Gid))
	}
	if err := s.Start(); err != nil {
		s.close()
		return nil, err
	}
	return s, nil
}

// close stops the server and removes its directory.
func (s *Server) close() {
	_ = s.Stop()
	s.logf.Close()
	os.RemoveAll(s.dir)
}

// Shared is one server for a whole test package, started on first use (a package whose tests
// mostly do not need PostgreSQL pays nothing). TestMain calls Close after m.Run.
type Shared struct {
	once sync.Once
	srv  *Server
	err  error
	dbs  atomic.Int64
}

// Get returns the package's server, starting it on the first call.
func (sh *Shared) Get(t testing.TB) *Server {
	t.Helper()
	sh.once.Do(func() { sh.srv, sh.err = start() })
	if sh.err != nil {
		if errors.Is(sh.err, errNoBinaries) {
			t.Skip(sh.err.Error())
		}
		t.Fatal(sh.err)
	}
	return sh.srv
}

// NewDatabase creates an empty database on the package's server and returns its DSN.
func (sh *Shared) NewDatabase(t testing.TB) string {
	t.Helper()
	srv := sh.Get(t)
	name := fmt.Sprintf("t%d_%d", os.Getpid(), sh.dbs.Add(1))
	out, err := srv.command("psql", "-h", srv.dir, "-p", strconv.Itoa(srv.port), "-U", "postgres", "-d", "postgres", "-v", "ON_ERROR_STOP=1",
		"-c", "CREATE DATABASE "+name).CombinedOutput()
	if err != nil {
		t.Fatalf("create database %s: %v\n%s", name, err, out)
	}
	return srv.DSN(name)
}

// Close stops the server if it was started.
func (sh *Shared) Close() {
	if sh.srv != nil {
		sh.srv.close()
	}
}

func (s *Server) data() string { return filepath.Join(s.dir, "data") }

func (s *Server) command(name string, args ...string) *exec.Cmd {
	c := exec.Command(filepath.Join(s.bin, name), args...)
	c.Dir = s.dir
	c.Env = []string{"LC_ALL=C", "PATH=/usr/bin:/bin"}
	if s.cred != nil {
		c.SysProcAttr = &syscall.SysProcAttr{Credential: s.cred}
	}
	return c
}

// Start (re)starts a stopped server on the same data directory and socket and waits until it
// accepts connections (at most 30 s).
func (s *Server) Start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		return errors.New("pgtest: the server is already running")
	}
	cmd := s.command("postgres", "-D", s.data(), "-k", s.dir, "-c", "listen_addresses=", "-p", strconv.Itoa(s.port),
		// fsync off keeps tests fast; commits still reach the OS before they are acknowledged
		// (synchronous_commit on), so a killed server (Kill) loses nothing it acknowledged.
		"-c", "fsync=off", "-c", "synchronous_commit=on", "-c", "full_page_writes=off", "-c", "max_connections=100")
	cmd.Stdout, cmd.Stderr = s.logf, s.logf
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start postgres: %w", err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	s.cmd, s.done = cmd, done
	deadline := time.Now().Add(30 * time.Second)
	for {
		ready := s.command("pg_isready", "-h", s.dir, "-p", strconv.Itoa(s.port), "-U", "postgres")
		if ready.Run() == nil {
			return nil
		}
		select {
		case <-done:
			b, _ := os.ReadFile(s.logf.Name())
			s.cmd = nil
			return fmt.Errorf("postgres exited during start-up:\n%s", b)
		default:
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(s.logf.Name())
			return fmt.Errorf("postgres did not become ready in 30s:\n%s", b)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Stop shuts the server down the way `pg_ctl stop -m fast` does (SIGINT: open connections are
// terminated, in-flight transactions rolled back) and waits for it to exit. Stopping a stopped
// server does nothing.
func (s *Server) Stop() error { return s.halt(syscall.SIGINT) }

// Kill ends the server with SIGKILL (no shutdown checkpoint: the next Start runs crash recovery).
func (s *Server) Kill() error { return s.halt(syscall.SIGKILL) }

func (s *Server) halt(sig syscall.Signal) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return nil
	}
	_ = s.cmd.Process.Signal(sig)
	select {
	case <-s.done:
	case <-time.After(10 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.done
	}
	if sig == syscall.SIGKILL {
		// The postmaster's children notice its death on their own; wait until none holds the
		// shared memory any more, or the next start refuses ("pre-existing shared memory block").
		deadline := time.Now().Add(10 * time.Second)
		for time.Now().Before(deadline) && s.command("pg_ctl", "status", "-D", s.data()).Run() == nil {
			time.Sleep(50 * time.Millisecond)
		}
		time.Sleep(200 * time.Millisecond)
	}
	s.cmd = nil
	return nil
}

// DSN returns a libpq key=value DSN for the given database ("postgres", or one the test created).
func (s *Server) DSN(db string) string {
	return fmt.Sprintf("host=%s port=%d user=postgres dbname=%s sslmode=disable", s.dir, s.port, db)
}

// credential returns the postgres user's credentials when running as root (and hands it the dir).
func credential(dir string) (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("running as root needs the postgres system user (installed with Debian's postgresql package): %w", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	if err := os.Chown(dir, uid, gid); err != nil {
		return nil, err
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return nil, err
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}
