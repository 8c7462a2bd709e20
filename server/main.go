// Command cnpg-mcp-server is the reference MCP server for CloudNativePG with its built-in OAuth proxy.
//
//	cnpg-mcp-server --config oidc.yaml        serve (flags and CNPG_MCP_* variables override the file)
//	cnpg-mcp-server --help                    every setting with its variable
//
// main only wires things together: config → app (store, upstream, tokens, OAuth proxy, HTTP).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/cnpg-mcp/cnpg-mcp/server/app"
	"github.com/cnpg-mcp/cnpg-mcp/server/config"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return
		}
		fmt.Fprintln(os.Stderr, "cnpg-mcp-server:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	if len(args) > 0 && args[0] == "serve" {
		args = args[1:]
	}
	cfg, err := config.Load(args, os.Getenv)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	a, err := app.New(ctx, cfg, app.Options{})
	if err != nil {
		return err
	}
	a.LogStartup()
	return a.Run(ctx)
}
