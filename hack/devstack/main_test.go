package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// make run: exactly one stdout line "MCP endpoint: <url>" once both servers answer; cancelling stops
// both cleanly.
func TestDevstackPrintsEndpointAndStops(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, Options{Addr: "127.0.0.1:0", MockAddr: "127.0.0.1:0", LogLevel: "warn", Stdout: pw, Stderr: io.Discard})
		pw.Close()
	}()
	sc := bufio.NewScanner(pr)
	if !sc.Scan() {
		t.Fatalf("no output: %v", <-done)
	}
	line := sc.Text()
	if !strings.HasPrefix(line, "MCP endpoint: http://127.0.0.1:") || !strings.HasSuffix(line, "/mcp") {
		t.Fatalf("line %q", line)
	}
	base := strings.TrimSuffix(strings.TrimPrefix(line, "MCP endpoint: "), "/mcp")
	res, err := http.Get(base + "/.well-known/oauth-authorization-server")
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("metadata: %v %v", res, err)
	}
	res.Body.Close()
	cancel()
	go func() { io.Copy(io.Discard, pr) }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("stop: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("did not stop")
	}
	if _, err := http.Get(base + "/.well-known/oauth-authorization-server"); err == nil {
		t.Fatal("server still answering after stop")
	}
}

// make run RUN_ARGS="..." passes server flags (and CNPG_MCP_ variables) through: read-only mode,
// namespaces and the MCP path reach the server.
func TestDevstackPassesServerFlags(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	var logs syncBuffer
	done := make(chan error, 1)
	env := map[string]string{"CNPG_MCP_MCP_PATH": "/m", "CNPG_MCP_KUBERNETES_NAMESPACES": "ignored-by-the-flag"}
	go func() {
		done <- run(ctx, []string{"--addr", "127.0.0.1:0", "--mock-addr", "127.0.0.1:0", "--mcp-read-only", "--kubernetes-namespaces", "db,web"},
			func(k string) string { return env[k] }, pw, &logs)
		pw.Close()
	}()
	sc := bufio.NewScanner(pr)
	if !sc.Scan() {
		t.Fatalf("no output: %v", <-done)
	}
	if line := sc.Text(); !strings.HasSuffix(line, "/m") {
		t.Errorf("CNPG_MCP_MCP_PATH not applied: %q", line)
	}
	cancel()
	go func() { _, _ = io.Copy(io.Discard, pr) }()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	var mcpLine string
	for _, l := range strings.Split(logs.String(), "\n") {
		if strings.Contains(l, `msg="mcp endpoint"`) {
			mcpLine = l
		}
	}
	if !strings.Contains(mcpLine, "read_only=true") || !strings.Contains(mcpLine, `namespaces="[db web]"`) {
		t.Fatalf("server flags not applied: %q", mcpLine)
	}
}

// --help lists devstack's flags and the server flags it passes through, on stdout; a server flag
// devstack owns (the wiring to the mock) or a misspelt one is refused with a pointer to --help.
func TestDevstackHelpAndFlagErrors(t *testing.T) {
	var out, errb bytes.Buffer
	if err := run(context.Background(), []string{"--help"}, func(string) string { return "" }, &out, &errb); !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("--help: %v", err)
	}
	for _, w := range []string{"make run RUN_ARGS=", "  --mock-addr string\n", "  --log-level level\n", "  --state-dir directory\n", "Server flags passed through", "  --mcp-read-only\n", "  --kubernetes-kubeconfig string\n"} {
		if !strings.Contains(out.String(), w) {
			t.Errorf("--help lacks %q:\n%s", w, out.String())
		}
	}
	if errb.Len() > 0 || strings.Contains(out.String(), "--issuer") || strings.Contains(out.String(), "--storage-path") {
		t.Errorf("--help: stderr %q, or lists a flag devstack owns", errb.String())
	}
	for args, want := range map[string]string{
		"--read-only":        "flag provided but not defined: --read-only; did you mean --mcp-read-only? (make run RUN_ARGS=--help lists the flags)",
		"--issuer":           "flag provided but not defined: --issuer (make run RUN_ARGS=--help lists the flags)",
		"--mcp-read-only=no": `--mcp-read-only: mcp.read_only: "no" is not a boolean (true/false)`,
	} {
		err := run(context.Background(), []string{args, "--addr", "127.0.0.1:0", "--mock-addr", "127.0.0.1:0"}, func(string) string { return "" }, &bytes.Buffer{}, &bytes.Buffer{})
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: got %v, want %q", args, err, want)
		}
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
