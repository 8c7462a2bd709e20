// Package pgtest starts a throw-away PostgreSQL server for tests: initdb into a temp dir and postgres
// listening on a unix socket only (no TCP port), run as the `postgres` system user when the test runs
// as root (PostgreSQL refuses to run as root). It skips the test when the binaries are missing, unless
// CNPG_MCP_REQUIRE_ALL=1, in which case it fails.
package pgtest

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Server is a running PostgreSQL server. Stop and Restart take it down and up again on the same data
// directory and socket (chaos tests: a database outage under a running application).
type Server struct {
	dir  string
	port int
	bin  string
	cred *syscall.Credential
	logf *os.File

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{} // closed when cmd has exited (nil when stopped)
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
	bin, err := BinDir()
	if err != nil {
		if os.Getenv("CNPG_MCP_REQUIRE_ALL") == "1" {
			t.Fatalf("%v (CNPG_MCP_REQUIRE_ALL=1)", err)
		}
		t.Skip(err.Error())
	}
	base, err := os.MkdirTemp("", "cnpg-mcp-pg-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	cred, err := credential(base)
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{dir: base, port: 5432, bin: bin, cred: cred}
	data := filepath.Join(base, "data")
	var out bytes.Buffer
	initdb := s.command("initdb", "-D", data, "-U", "postgres", "-A", "trust", "--no-sync", "-E", "UTF8")
	initdb.Stdout, initdb.Stderr = &out, &out
	if err := initdb.Run(); err != nil {
		t.Fatalf("initdb: %v\n%s", err, out.String())
	}
	s.logf, err = os.Create(filepath.Join(base, "postgres.log"))
	if err != nil {
		t.Fatal(err)
	}
	if cred != nil {
		_ = os.Chown(s.logf.Name(), int(cred.Uid), int(cred.Gid))
	}
	t.Cleanup(func() {
		_ = s.Stop(StopFast)
		s.logf.Close()
	})
	if err := s.Restart(); err != nil {
		t.Fatal(err)
	}
	return s
}

// command prepares one of the PostgreSQL programs, run as the postgres user when we are root.
func (s *Server) command(name string, args ...string) *exec.Cmd {
	c := exec.Command(filepath.Join(s.bin, name), args...)
	c.Dir = s.dir
	c.Env = []string{"LC_ALL=C", "PATH=/usr/bin:/bin"}
	if s.cred != nil {
		c.SysProcAttr = &syscall.SysProcAttr{Credential: s.cred}
	}
	return c
}

// StopMode is how Stop shuts the server down; the names and signals are pg_ctl stop's -m modes.
type StopMode string

// The shutdown modes.
const (
	// StopSmart (SIGTERM) waits until every client has disconnected: with a connection pool that
	// is never, so Stop falls back to StopFast after its timeout.
	StopSmart StopMode = "smart"
	// StopFast (SIGINT) rolls back open transactions, disconnects the clients and shuts down cleanly.
	StopFast StopMode = "fast"
	// StopImmediate (SIGQUIT) quits at once, without a checkpoint: the next start runs crash recovery.
	StopImmediate StopMode = "immediate"
)

// Stop shuts the server down in the given mode and waits until it has exited (at most 30 s, then it
// is killed). Stopping a stopped server does nothing.
func (s *Server) Stop(mode StopMode) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return nil
	}
	sig := map[StopMode]syscall.Signal{StopSmart: syscall.SIGTERM, StopFast: syscall.SIGINT, StopImmediate: syscall.SIGQUIT}[mode]
	if sig == 0 {
		return fmt.Errorf("pgtest: unknown stop mode %q (smart, fast or immediate)", mode)
	}
	_ = s.cmd.Process.Signal(sig)
	timeout := 30 * time.Second
	if mode == StopSmart {
		timeout = 5 * time.Second
	}
	select {
	case <-s.exited:
	case <-time.After(timeout):
		if mode == StopSmart {
			_ = s.cmd.Process.Signal(syscall.SIGINT)
		} else {
			_ = s.cmd.Process.Kill()
		}
		select {
		case <-s.exited:
		case <-time.After(30 * time.Second):
			_ = s.cmd.Process.Kill()
			<-s.exited
		}
	}
	s.cmd, s.exited = nil, nil
	return nil
}

// Restart starts a stopped server again on the same data directory and socket and waits until it
// accepts connections (at most 30 s). Restarting a running server does nothing.
func (s *Server) Restart() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		return nil
	}
	cmd := s.command("postgres", "-D", filepath.Join(s.dir, "data"), "-k", s.dir, "-c", "listen_addresses=", "-p", strconv.Itoa(s.port),
		"-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off", "-c", "max_connections=50")
	cmd.Stdout, cmd.Stderr = s.logf, s.logf
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start postgres: %w", err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	s.cmd, s.exited = cmd, exited
	sock := filepath.Join(s.dir, ".s.PGSQL."+strconv.Itoa(s.port))
	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case <-exited:
			s.cmd, s.exited = nil, nil
			b, _ := os.ReadFile(s.logf.Name())
			return fmt.Errorf("postgres exited while starting:\n%s", b)
		default:
		}
		if _, err := os.Stat(sock); err == nil {
			if s.command("pg_isready", "-h", s.dir, "-p", strconv.Itoa(s.port), "-U", "postgres").Run() == nil {
				return nil
			}
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(s.logf.Name())
			return fmt.Errorf("postgres did not become ready in 30s:\n%s", b)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// DSN returns a libpq key=value DSN for the given database (created by CreateDB or "postgres").
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
