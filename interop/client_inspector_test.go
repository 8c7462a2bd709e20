package interop

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/cnpg-mcp/cnpg-mcp/interop/internal/stack"
)

// The Inspector CLI only starts an interactive login when a person is there (a terminal on stdin or
// stderr): each command runs under script(1), which gives it one, and its output goes to a file.
var navigateRe = regexp.MustCompile(`Please navigate to: (\S+)`)

// inspectorCLI drives the MCP Inspector's CLI as a person at a terminal would: one command per
// step, the first one logging in (the CLI prints the authorization URL; our browser follows it to
// the CLI's callback listener), the others reusing the tokens the CLI stored in its state file.
func inspectorCLI(f *flow) {
	home, err := os.MkdirTemp("", "cnpg-mcp-interop-inspector-")
	if err != nil {
		f.fail("register", err)
		return
	}
	defer os.RemoveAll(home)
	callback, err := freeLoopbackURL("/oauth/callback")
	if err != nil {
		f.fail("register", err)
		return
	}
	era := "legacy"
	if f.cell.Version >= "2026-07-28" {
		era = "modern"
	}
	cli := filepath.Join(f.env.nodeDir, "node_modules", "@modelcontextprotocol", "inspector", "clients", "cli", "build", "index.js")
	// run runs one CLI command and returns its result document.
	run := func(step string, o cliRun, args ...string) (map[string]any, error) {
		ctx, cancel := context.WithTimeout(f.ctx, 2*time.Minute)
		defer cancel()
		out := filepath.Join(o.home, step+".json")
		argv := append([]string{f.env.node(), cli, f.env.st.MCP, "--transport", "http", "--protocol-era", era,
			"--callback-url", o.callback, "--format", "json", "--output", out}, args...)
		cmd := exec.CommandContext(ctx, "script", "-qfec", shellJoin(argv), "/dev/null")
		cmd.Dir = o.home
		cmd.Env = append(os.Environ(), "HOME="+o.home, "MCP_AUTO_OPEN_ENABLED=false", "NO_COLOR=1", "MCP_INSPECTOR_SECRET_STORE=file")
		tty, err := cmd.StdoutPipe()
		if err != nil {
			return nil, err
		}
		cmd.Stderr = cmd.Stdout
		if err := cmd.Start(); err != nil {
			return nil, fmt.Errorf("start the Inspector CLI: %w", err)
		}
		var transcript strings.Builder
		sc := bufio.NewScanner(tty)
		sc.Split(linesOrPrompt)
		var stop error
		logins := 0
		for sc.Scan() && stop == nil {
			line := sc.Text()
			transcript.WriteString(line + "\n")
			switch m := navigateRe.FindStringSubmatch(line); {
			case strings.Contains(line, stepUpPrompt):
				stop = errors.New("the CLI asked to step up, which this command should not need")
			case m != nil && logins < len(o.logins):
				act := o.logins[logins]
				logins++
				if o.onBrowse != nil {
					stop = o.onBrowse(m[1], act)
				}
			case m != nil:
				stop = errors.New("the CLI asked the person to log in again instead of using its stored tokens")
			}
		}
		if stop != nil {
			_ = cmd.Process.Kill()
		}
		werr := cmd.Wait()
		if stop != nil {
			return nil, stop
		}
		if logins < len(o.logins) {
			return nil, fmt.Errorf("the CLI logged in %d times, want %d; it printed: %s", logins, len(o.logins), clip(transcript.String(), 3000))
		}
		// A tool error still writes the result (and exits non-zero): the caller reports its content.
		var doc map[string]any
		b, rerr := os.ReadFile(out)
		if rerr == nil && json.Unmarshal(b, &doc) == nil {
			return doc, nil
		}
		return nil, fmt.Errorf("the Inspector CLI failed (%v); it printed: %s", errors.Join(werr, rerr), clip(transcript.String(), 3000))
	}
	main := cliRun{home: home, callback: callback, onBrowse: func(u string, act stack.UserAction) error {
		if !f.browse(u, callback, act) {
			return f.stopped
		}
		return nil
	}}
	login := main
	login.logins = []stack.UserAction{{}}
	mark := f.env.st.Recorder.Mark()
	doc, err := run("list-tools", login, "--method", "tools/list")
	if err != nil {
		f.fail(firstUnreported(f, "register", "consent", "login", "initialize", "list-tools"), err)
		return
	}
	f.pass("register", "registered dynamically during the first command")
	// The CLI does not print the negotiated version: it is the MCP-Protocol-Version it sent.
	for _, r := range f.env.st.Recorder.Since(mark) {
		if r.Path == "/mcp" && r.ProtocolVersion != "" && len(r.RPC) > 0 && r.RPC[0] == "tools/list" && r.Status == 200 {
			f.version = r.ProtocolVersion
		}
	}
	f.pass("initialize", "tools/list sent with MCP-Protocol-Version %s (--protocol-era %s)", f.version, era)
	toolsList, _ := doc["tools"].([]any)
	f.tools = len(toolsList)
	f.pass("list-tools", "%d tools", f.tools)
	call := func(step, tool string, args map[string]any) bool {
		a, _ := json.Marshal(args)
		doc, err := run(step, main, "--method", "tools/call", "--tool-name", tool, "--tool-args-json", string(a))
		if err != nil {
			f.fail(step, fmt.Errorf("%s: %w", tool, err))
			return false
		}
		if isErr, _ := doc["isError"].(bool); isErr {
			f.fail(step, fmt.Errorf("%s returned a tool error: %v", tool, doc["content"]))
			return false
		}
		f.pass(step, "%s: ok", tool)
		return true
	}
	if !call("read-tool", "list_postgres_clusters", map[string]any{"namespace": "default"}) ||
		!call("write-tool", "create_postgres_cluster", map[string]any{"name": f.cluster, "namespace": "default", "instances": 1, "wait": false}) {
		return
	}
	f.expire()
	if !call("refresh", "get_cluster_status", map[string]any{"name": f.cluster, "namespace": "default"}) {
		return
	}
	call("call-again", "scale_postgres_cluster", map[string]any{"name": f.cluster, "namespace": "default", "instances": 2, "dry_run": true})
}

// cliRun is how one Inspector command is run: its state directory and callback, and which logins
// the person performs (in order).
type cliRun struct {
	home, callback string
	logins         []stack.UserAction
	onBrowse       func(url string, act stack.UserAction) error
}

const stepUpPrompt = "Proceed with step-up authorization? [y/N]"

// linesOrPrompt splits a terminal transcript into lines, and also ends a token after the step-up
// prompt, which waits for an answer on the same line.
func linesOrPrompt(data []byte, atEOF bool) (int, []byte, error) {
	if i := bytes.IndexByte(data, '\n'); i >= 0 {
		return i + 1, bytes.TrimRight(data[:i], "\r"), nil
	}
	if i := bytes.Index(data, []byte(stepUpPrompt)); i >= 0 {
		end := i + len(stepUpPrompt)
		return end, data[:end], nil
	}
	if atEOF && len(data) > 0 {
		return len(data), data, nil
	}
	return 0, nil, nil
}

// freeLoopbackURL returns http://127.0.0.1:<free port><path> for a program that must be told its
// listener's port (the Inspector CLI's callback).
func freeLoopbackURL(path string) (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return "http://" + ln.Addr().String() + path, nil
}

// shellJoin quotes argv for script(1)'s -c.
func shellJoin(argv []string) string {
	q := make([]string, len(argv))
	for i, a := range argv {
		q[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
	}
	return strings.Join(q, " ")
}
