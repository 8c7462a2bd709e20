package chaos

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Process is cnpg-mcp-server running as a child process, so that a kill -9 is real: no deferred
// function, no graceful shutdown, connections cut mid-request. It listens on a fixed loopback address
// so its public URL (the issuer and audience of its tokens) stays the same across restarts.
type Process struct {
	Bin  string   // the cnpg-mcp-server binary
	Args []string // serve flags (ServerConfig.Args)
	Addr string   // 127.0.0.1:port it listens on
	Log  string   // file receiving stdout and stderr (appended across restarts)

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
	logf   *os.File
}

// BaseURL is http://Addr.
func (p *Process) BaseURL() string { return "http://" + p.Addr }

// Start starts the server and waits until /healthz answers 200 (at most 60 s).
func (p *Process) Start(ctx context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd != nil {
		return errors.New("chaos: the server is already running")
	}
	if p.logf == nil {
		f, err := os.OpenFile(p.Log, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
		if err != nil {
			return err
		}
		p.logf = f
	}
	fmt.Fprintf(p.logf, "--- chaos: starting %s at %s\n", filepath.Base(p.Bin), time.Now().Format(time.RFC3339Nano))
	cmd := exec.Command(p.Bin, append([]string{"serve"}, p.Args...)...)
	cmd.Stdout, cmd.Stderr = p.logf, p.logf
	cmd.Env = serverEnv()
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", p.Bin, err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	p.cmd, p.exited = cmd, exited
	hc := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(60 * time.Second)
	for {
		select {
		case <-exited:
			p.cmd, p.exited = nil, nil
			return fmt.Errorf("cnpg-mcp-server exited while starting:\n%s", p.tailLocked(40))
		default:
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, p.BaseURL()+"/healthz", nil)
		if resp, err := hc.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			_ = cmd.Process.Kill()
			<-exited
			p.cmd, p.exited = nil, nil
			return fmt.Errorf("cnpg-mcp-server did not answer /healthz within 60 s:\n%s", p.tailLocked(40))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// serverEnv is the harness's environment without CNPG_MCP_* settings and without an in-cluster
// Kubernetes configuration, so only the flags configure the server.
func serverEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "CNPG_MCP_") || strings.HasPrefix(kv, "KUBERNETES_SERVICE_") || strings.HasPrefix(kv, "KUBECONFIG=") {
			continue
		}
		env = append(env, kv)
	}
	return env
}

// Kill sends SIGKILL and waits until the process is gone.
func (p *Process) Kill() error { return p.signal(syscall.SIGKILL, 0) }

// Stop sends SIGTERM and waits (at most 15 s, then SIGKILL).
func (p *Process) Stop() error { return p.signal(syscall.SIGTERM, 15*time.Second) }

func (p *Process) signal(sig syscall.Signal, grace time.Duration) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return nil
	}
	if err := p.cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return err
	}
	if grace > 0 {
		select {
		case <-p.exited:
		case <-time.After(grace):
			_ = p.cmd.Process.Kill()
		}
	}
	<-p.exited
	p.cmd, p.exited = nil, nil
	return nil
}

// Close stops the server and closes the log.
func (p *Process) Close() error {
	err := p.Stop()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.logf != nil {
		p.logf.Close()
		p.logf = nil
	}
	return err
}

// Tail returns the last n lines of the server's log.
func (p *Process) Tail(n int) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.tailLocked(n)
}

func (p *Process) tailLocked(n int) string {
	b, _ := os.ReadFile(p.Log)
	lines := bytes.Split(bytes.TrimRight(b, "\n"), []byte("\n"))
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return string(bytes.Join(lines, []byte("\n")))
}

// ServerConfig is what the chaos harness configures in cnpg-mcp-server.
type ServerConfig struct {
	Dir                                      string // where the secret files and the bolt store go
	Addr                                     string // 127.0.0.1:port
	Issuer, ClientID, ClientSecret, Audience string // the upstream
	// Driver is bolt or postgres; DSN is the PostgreSQL DSN (written to a file).
	Driver, DSN string
	LogLevel    string // default info
}

// Args writes the key and secret files into Dir and returns the serve flags.
func (c ServerConfig) Args() ([]string, error) {
	write := func(name, content string) (string, error) {
		p := filepath.Join(c.Dir, name)
		return p, os.WriteFile(p, []byte(content), 0o600)
	}
	key := func() string {
		b := make([]byte, 32)
		_, _ = rand.Read(b)
		return base64.StdEncoding.EncodeToString(b)
	}
	secret, e1 := write("client-secret", c.ClientSecret)
	signing, e2 := write("signing.key", key())
	sealing, e3 := write("sealing.key", key())
	// No cluster: the tools' API server address refuses connections; the bearer check is what matters.
	kubeconfig, e4 := write("kubeconfig", `apiVersion: v1
kind: Config
clusters: [{name: none, cluster: {server: "https://127.0.0.1:1"}}]
contexts: [{name: none, context: {cluster: none, user: none, namespace: default}}]
current-context: none
users: [{name: none, user: {token: none}}]
`)
	if err := errors.Join(e1, e2, e3, e4); err != nil {
		return nil, err
	}
	level := c.LogLevel
	if level == "" {
		level = "info"
	}
	args := []string{"--issuer", c.Issuer, "--client-id", c.ClientID, "--client-secret-file", secret, "--audience", c.Audience,
		"--public-url", "http://" + c.Addr, "--listen", c.Addr, "--signing-key-file", signing, "--sealing-key-file", sealing,
		"--kubernetes-kubeconfig", kubeconfig, "--log-level", level, "--storage-driver", c.Driver}
	switch c.Driver {
	case "bolt":
		args = append(args, "--storage-path", filepath.Join(c.Dir, "cnpg-mcp.db"))
	case "postgres":
		dsn, err := write("dsn", c.DSN)
		if err != nil {
			return nil, err
		}
		args = append(args, "--storage-dsn-file", dsn)
	default:
		return nil, fmt.Errorf("chaos: unknown store driver %q", c.Driver)
	}
	return args, nil
}

// FreeAddr returns a loopback address with a port that was free a moment ago.
func FreeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// BuildServer builds cnpg-mcp-server from the module at repoRoot into out.
func BuildServer(ctx context.Context, repoRoot, out string) error {
	goBin, err := exec.LookPath("go")
	if err != nil {
		return fmt.Errorf("the go command is needed to build cnpg-mcp-server (or set CNPG_MCP_CHAOS_SERVER_BIN): %w", err)
	}
	cmd := exec.CommandContext(ctx, goBin, "build", "-o", out, "./server")
	cmd.Dir = repoRoot
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build ./server: %w\n%s", err, b)
	}
	return nil
}

// RepoRoot walks up from dir to the directory holding go.mod.
func RepoRoot(dir string) (string, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d, nil
		}
		if filepath.Dir(d) == d {
			return "", fmt.Errorf("no go.mod above %s", dir)
		}
	}
}
