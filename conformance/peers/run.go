package peers

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Options say where a run finds its tools and puts its files.
type Options struct {
	// Root is the repository root (conformance/peers/<name> is read from it).
	Root string
	// Mock and Suite are the mockauth0 and mcp-auth-conformance binaries.
	Mock, Suite string
	// Cache holds the peers' npm installs, one directory per lockfile (kept between runs).
	Cache string
	// Work holds this run's files: logs, the suite's reports.
	Work string
	// Log receives progress lines (nil: discarded).
	Log io.Writer
	// SuiteTimeout bounds the suite's run (default 15 minutes).
	SuiteTimeout time.Duration
}

// Outcome is one peer's run.
type Outcome struct {
	Peer Peer
	// Report is the suite's report.json.
	Report *Report
	// ExitStatus is the suite's exit status.
	ExitStatus int
	// Summary is the suite's closing summary (from "MCP authorization conformance" on), without
	// the line naming the report files.
	Summary string
	// Install, Start and Suite are the wall times of the npm install (zero when cached), of
	// starting the mock and the peer, and of the suite's run.
	Install, Start, Suite time.Duration
	// Versions are the peer's top-level npm packages and their versions (from package.json).
	Versions []string
	// Node is the Node.js version that ran the peer.
	Node string
	// MockArgs and SuiteArgs are the flags the mock and the suite ran with, ports included.
	MockArgs, SuiteArgs []string
	// ReportDir is where the suite wrote its reports.
	ReportDir string
}

func (o Options) logf(format string, args ...any) {
	if o.Log != nil {
		fmt.Fprintf(o.Log, format+"\n", args...)
	}
}

// Run installs the peer's npm packages (or reuses the cached install), starts the mock Auth0 and
// the peer on loopback, runs the whole suite against the peer and returns the suite's report. The
// processes it started are stopped before it returns.
func Run(ctx context.Context, p Peer, o Options) (*Outcome, error) {
	if o.SuiteTimeout == 0 {
		o.SuiteTimeout = 15 * time.Minute
	}
	dir := filepath.Join(o.Root, "conformance", "peers", p.Name)
	out := &Outcome{Peer: p}
	work := filepath.Join(o.Work, p.Name)
	if err := os.MkdirAll(work, 0o755); err != nil {
		return nil, err
	}

	node, version, err := nodeBinary(ctx, p.MinNode)
	if err != nil {
		return nil, err
	}
	out.Node = version
	if out.Versions, err = topLevelPackages(filepath.Join(dir, "package.json")); err != nil {
		return nil, err
	}
	t := time.Now()
	modules, installed, err := ensureModules(ctx, p.Name, dir, o.Cache, o.logf)
	if err != nil {
		return nil, err
	}
	if installed {
		out.Install = time.Since(t)
	}

	// The peer's program runs from the work directory, next to a link to the cached packages.
	if err := copyFile(filepath.Join(dir, p.Server), filepath.Join(work, p.Server)); err != nil {
		return nil, err
	}
	_ = os.Remove(filepath.Join(work, "node_modules"))
	if err := os.Symlink(modules, filepath.Join(work, "node_modules")); err != nil {
		return nil, err
	}

	t = time.Now()
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	base := "http://localhost:" + strconv.Itoa(port)
	mcpURL := base + "/mcp"

	out.MockArgs = append([]string{"--addr", "127.0.0.1:0", "--admin"}, p.MockArgs(base, mcpURL)...)
	mock, err := startProcess(ctx, filepath.Join(work, "mockauth0.log"), nil, "", o.Mock, out.MockArgs...)
	if err != nil {
		return nil, err
	}
	defer mock.stop()
	issuer, err := mock.waitLine(ctx, regexp.MustCompile(`^mockauth0 listening on (\S+)`), 30*time.Second)
	if err != nil {
		return nil, fmt.Errorf("mockauth0 %s: %w", strings.Join(out.MockArgs, " "), err)
	}

	env := append(cleanEnv("UPSTREAM_", "PORT="), p.Env(issuer, port)...)
	peer, err := startProcess(ctx, filepath.Join(work, "peer.log"), env, work, node, p.Server)
	if err != nil {
		return nil, err
	}
	defer peer.stop()
	if _, err := peer.waitLine(ctx, regexp.MustCompile(`^peer MCP endpoint: (\S+)`), 90*time.Second); err != nil {
		return nil, fmt.Errorf("the peer %s did not start: %w", p.Name, err)
	}
	out.Start = time.Since(t)
	o.logf("%s: peer on %s, mock Auth0 on %s (started in %s)", p.Name, mcpURL, issuer, out.Start.Round(time.Millisecond))

	out.ReportDir = filepath.Join(work, "report")
	out.SuiteArgs = append([]string{"--target", mcpURL, "--mock-auth0-admin", issuer}, p.SuiteArgs(base, mcpURL)...)
	args := append(append([]string(nil), out.SuiteArgs...), "--report-dir", out.ReportDir, "--no-color")
	sctx, cancel := context.WithTimeout(ctx, o.SuiteTimeout)
	defer cancel()
	cmd := exec.CommandContext(sctx, o.Suite, args...)
	cmd.Env = cleanEnv("MCP_AUTH_CONFORMANCE_")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	var stdout bytes.Buffer
	logFile, err := os.Create(filepath.Join(work, "suite.log"))
	if err != nil {
		return nil, err
	}
	defer logFile.Close()
	cmd.Stdout = io.MultiWriter(&stdout, logFile)
	cmd.Stderr = logFile
	t = time.Now()
	o.logf("%s: running the suite (log: %s)", p.Name, logFile.Name())
	runErr := cmd.Run()
	out.Suite = time.Since(t)
	var exit *exec.ExitError
	switch {
	case runErr == nil:
	case errors.As(runErr, &exit) && sctx.Err() == nil:
		out.ExitStatus = exit.ExitCode()
	default:
		return nil, fmt.Errorf("the suite against %s: %w (after %s; log %s)", p.Name, runErr, out.Suite.Round(time.Second), logFile.Name())
	}
	out.Summary = summary(stdout.String())
	if out.ExitStatus == 2 {
		return nil, fmt.Errorf("the suite refused its flags (exit 2): %s", tail(stdout.String(), 20))
	}
	// Exit status 3 (could not evaluate: the preflight gate failed) leaves a report whose preflight
	// says which step failed; ReadReport turns it into the error.
	if out.Report, err = ReadReport(filepath.Join(out.ReportDir, "report.json")); err != nil {
		return nil, fmt.Errorf("%w (suite exit status %d; its output ends: %s)", err, out.ExitStatus, tail(stdout.String(), 20))
	}
	o.logf("%s: suite exit status %d after %s", p.Name, out.ExitStatus, out.Suite.Round(time.Millisecond))
	return out, nil
}

// summary is the suite's closing block without the line naming the report files (a path of this
// machine).
func summary(stdout string) string {
	i := strings.Index(stdout, "MCP authorization conformance")
	if i < 0 {
		return ""
	}
	var keep []string
	for _, l := range strings.Split(strings.TrimRight(stdout[i:], "\n"), "\n") {
		if !strings.HasPrefix(l, "reports: ") {
			keep = append(keep, l)
		}
	}
	return strings.Join(keep, "\n")
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// freePort returns a loopback port that was free a moment ago. The peers take their base URL in
// their configuration before they listen, so the port is chosen first.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// cleanEnv is this process's environment without variables starting with any of prefixes.
func cleanEnv(prefixes ...string) []string {
	var env []string
next:
	for _, kv := range os.Environ() {
		for _, p := range prefixes {
			if strings.HasPrefix(kv, p) {
				continue next
			}
		}
		env = append(env, kv)
	}
	return env
}

// process is a started program whose output goes to a log file and is scanned for lines.
type process struct {
	cmd   *exec.Cmd
	log   string
	mu    sync.Mutex
	lines []string
	more  chan struct{} // closed and replaced whenever a line arrives or the output ends
	ended bool
	done  chan struct{}
}

func startProcess(ctx context.Context, logPath string, env []string, dir, name string, args ...string) (*process, error) {
	f, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(name, args...)
	cmd.Env, cmd.Dir = env, dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &process{cmd: cmd, log: logPath, more: make(chan struct{}), done: make(chan struct{})}
	go func() {
		s := bufio.NewScanner(pr)
		s.Buffer(make([]byte, 64<<10), 1<<20)
		for s.Scan() {
			fmt.Fprintln(f, s.Text())
			p.mu.Lock()
			p.lines = append(p.lines, s.Text())
			close(p.more)
			p.more = make(chan struct{})
			p.mu.Unlock()
		}
		f.Close()
		p.mu.Lock()
		p.ended = true
		close(p.more)
		p.mu.Unlock()
	}()
	go func() {
		_ = cmd.Wait()
		pw.Close()
		close(p.done)
	}()
	return p, nil
}

// waitLine waits for an output line matching re and returns its first group.
func (p *process) waitLine(ctx context.Context, re *regexp.Regexp, timeout time.Duration) (string, error) {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	seen := 0
	for {
		p.mu.Lock()
		for ; seen < len(p.lines); seen++ {
			if m := re.FindStringSubmatch(p.lines[seen]); m != nil {
				p.mu.Unlock()
				return m[1], nil
			}
		}
		ended, more := p.ended, p.more
		last := tail(strings.Join(p.lines, "\n"), 15)
		p.mu.Unlock()
		if ended {
			return "", fmt.Errorf("it exited (%v) without printing the ready line; its output ends:\n%s", p.cmd.ProcessState, last)
		}
		select {
		case <-more:
		case <-deadline.C:
			return "", fmt.Errorf("no ready line after %s; its output ends:\n%s", timeout, last)
		case <-ctx.Done():
			return "", ctx.Err()
		}
	}
}

// stop ends the process group (SIGTERM, then SIGKILL after 5 s) and waits for it.
func (p *process) stop() {
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
	}
}

// nodeBinary finds node on PATH and checks its major version.
func nodeBinary(ctx context.Context, minMajor int) (path, version string, err error) {
	path, err = exec.LookPath("node")
	if err != nil {
		return "", "", errors.New("node is not on PATH: install Node.js ≥ " + strconv.Itoa(minMajor))
	}
	b, err := exec.CommandContext(ctx, path, "--version").Output()
	if err != nil {
		return "", "", fmt.Errorf("node --version: %w", err)
	}
	version = strings.TrimSpace(string(b))
	major, _ := strconv.Atoi(strings.SplitN(strings.TrimPrefix(version, "v"), ".", 2)[0])
	if major < minMajor {
		return "", "", fmt.Errorf("node %s is too old: the peer needs Node.js ≥ %d", version, minMajor)
	}
	return path, version, nil
}

// ensureModules returns a node_modules directory holding exactly the peer's package-lock.json,
// installing it with `npm ci` into the cache when no earlier run did. Installs go to a temporary
// directory renamed into place, so a concurrent or interrupted install never leaves a half one.
func ensureModules(ctx context.Context, name, dir, cache string, logf func(string, ...any)) (modules string, installed bool, err error) {
	h := sha256.New()
	for _, f := range []string{"package.json", "package-lock.json"} {
		b, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			return "", false, fmt.Errorf("peer %s: %w (pin its npm packages with a lockfile)", name, err)
		}
		h.Write(b)
	}
	target := filepath.Join(cache, name+"-"+hex.EncodeToString(h.Sum(nil))[:16])
	modules = filepath.Join(target, "node_modules")
	if _, err := os.Stat(filepath.Join(modules, ".package-lock.json")); err == nil {
		return modules, false, nil
	}
	if err := os.MkdirAll(cache, 0o755); err != nil {
		return "", false, err
	}
	tmp, err := os.MkdirTemp(cache, name+".install-")
	if err != nil {
		return "", false, err
	}
	defer os.RemoveAll(tmp)
	for _, f := range []string{"package.json", "package-lock.json"} {
		if err := copyFile(filepath.Join(dir, f), filepath.Join(tmp, f)); err != nil {
			return "", false, err
		}
	}
	logf("%s: npm ci into %s", name, target)
	ictx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ictx, "npm", "ci", "--no-audit", "--no-fund", "--ignore-scripts", "--loglevel=error")
	cmd.Dir = tmp
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", false, fmt.Errorf("npm ci for peer %s (needs the npm registry): %w\n%s", name, err, tail(string(b), 20))
	}
	if err := os.Rename(tmp, target); err != nil {
		if _, serr := os.Stat(filepath.Join(modules, ".package-lock.json")); serr == nil {
			return modules, false, nil // another run installed it meanwhile
		}
		return "", false, err
	}
	return modules, true, nil
}

func copyFile(from, to string) error {
	b, err := os.ReadFile(from)
	if err != nil {
		return err
	}
	return os.WriteFile(to, b, 0o644)
}
