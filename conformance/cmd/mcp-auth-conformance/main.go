// Command mcp-auth-conformance checks an MCP server's authorization (OAuth 2.1 proxy or
// authorization server) against the MCP authorization check catalogue, through a real headless
// Chromium. See `mcp-auth-conformance --help`.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/cnpg-mcp/cnpg-mcp/conformance/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Main(ctx, os.Args[1:], os.Stdout, os.Stderr, os.Getenv)
	stop()
	os.Exit(code)
}
