package interop

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/cnpg-mcp/cnpg-mcp/interop/internal/stack"
)

// nodeScript copies a driver script from interop/node into a scratch directory whose node_modules
// is the installed package set, so the script's imports resolve there.
func (f *flow) nodeScript(name string) (string, error) {
	dir, err := os.MkdirTemp("", "cnpg-mcp-interop-node-")
	if err != nil {
		return "", err
	}
	src, err := os.ReadFile(filepath.Join("node", name))
	if err != nil {
		return "", err
	}
	if err := os.Symlink(filepath.Join(f.env.nodeDir, "node_modules"), filepath.Join(dir, "node_modules")); err != nil {
		return "", err
	}
	p := filepath.Join(dir, name)
	return p, os.WriteFile(p, src, 0o600)
}

// tsSDK runs interop/node/ts-sdk-client.mjs: the SDK's Client with an OAuthClientProvider, as an
// application built on the SDK would. The script reports its steps as JSON lines; the browser step
// and the clock are ours.
func tsSDK(f *flow) {
	script, err := f.nodeScript("ts-sdk-client.mjs")
	if err != nil {
		f.fail("register", err)
		return
	}
	defer os.RemoveAll(filepath.Dir(script))
	ctx, cancel := context.WithTimeout(f.ctx, 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, f.env.node(), script, "--url", f.env.st.MCP, "--version", f.cell.Version, "--cluster", f.cluster)
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		f.fail("register", err)
		return
	}
	sc := bufio.NewScanner(stdout)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var ev struct {
			Event, URL, Step, Error string
			OK                      bool
			Detail                  json.RawMessage
		}
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			continue // not ours
		}
		switch {
		case ev.Event == "authorize":
			redirect := redirectOf(ev.URL)
			if !f.browse(ev.URL, redirect, stack.UserAction{}) {
				_ = cmd.Process.Kill()
			}
		case ev.Event == "expire":
			f.expire()
			_, _ = io.WriteString(stdin, "continue\n")
		case ev.Step != "" && !ev.OK:
			f.fail(tsStep(ev.Step), errors.New(ev.Error))
		case ev.Step == "token":
			// part of the login step (the code exchange); verify() checks the grant.
		case ev.Step == "initialize":
			var d struct{ ProtocolVersion string }
			_ = json.Unmarshal(ev.Detail, &d)
			f.version = d.ProtocolVersion
			f.pass("initialize", "negotiated %s", d.ProtocolVersion)
		case ev.Step == "list-tools":
			var d struct{ Count int }
			_ = json.Unmarshal(ev.Detail, &d)
			f.tools = d.Count
			f.pass("list-tools", "%d tools", d.Count)
		case ev.Step != "":
			f.pass(ev.Step, "%s", clip(string(ev.Detail), 200))
		}
	}
	err = cmd.Wait()
	if err != nil && !f.failed() {
		f.fail("register", fmt.Errorf("the TypeScript SDK driver exited: %v; stderr: %s", err, clip(stderr.String(), 2000)))
	}
}

func tsStep(s string) string {
	if s == "token" {
		return "login"
	}
	return s
}

// redirectOf is the redirect_uri of an authorization URL (where the browser ends).
func redirectOf(authURL string) string {
	if u, err := url.Parse(authURL); err == nil && u.Query().Get("redirect_uri") != "" {
		return u.Query().Get("redirect_uri")
	}
	return "http://127.0.0.1"
}

func clip(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}
