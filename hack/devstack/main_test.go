package main

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"strings"
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
