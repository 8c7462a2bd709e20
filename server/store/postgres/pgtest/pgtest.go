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
	"syscall"
	"testing"
	"time"
)

// Server is a running PostgreSQL server.
type Server struct {
	dir  string
	cmd  *exec.Cmd
	port int
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
	s := &Server{dir: base, port: 5432}
	data := filepath.Join(base, "data")
	run := func(name string, args ...string) *exec.Cmd {
		c := exec.Command(filepath.Join(bin, name), args...)
		c.Dir = base
		c.Env = []string{"LC_ALL=C", "PATH=/usr/bin:/bin"}
		if cred != nil {
			c.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
		}
		return c
	}
	var out bytes.Buffer
	initdb := run("initdb", "-D", data, "-U", "postgres", "-A", "trust", "--no-sync", "-E", "UTF8")
	initdb.Stdout, initdb.Stderr = &out, &out
	if err := initdb.Run(); err != nil {
		t.Fatalf("initdb: %v\n%s", err, out.String())
	}
	logf, err := os.Create(filepath.Join(base, "postgres.log"))
	if err != nil {
		t.Fatal(err)
	}
	if cred != nil {
		_ = os.Chown(logf.Name(), int(cred.Uid), int(cred.Gid))
	}
	s.cmd = run("postgres", "-D", data, "-k", base, "-c", "listen_addresses=", "-p", strconv.Itoa(s.port),
		"-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off", "-c", "max_connections=50")
	s.cmd.Stdout, s.cmd.Stderr = logf, logf
	if err := s.cmd.Start(); err != nil {
		t.Fatalf("start postgres: %v", err)
	}
	t.Cleanup(func() {
		_ = s.cmd.Process.Signal(syscall.SIGINT) // fast shutdown
		done := make(chan struct{})
		go func() { _ = s.cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = s.cmd.Process.Kill()
		}
		logf.Close()
	})
	sock := filepath.Join(base, ".s.PGSQL."+strconv.Itoa(s.port))
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := os.Stat(sock); err == nil {
			ready := run("pg_isready", "-h", base, "-p", strconv.Itoa(s.port), "-U", "postgres")
			if ready.Run() == nil {
				break
			}
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(logf.Name())
			t.Fatalf("postgres did not become ready in 30s:\n%s", b)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return s
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
