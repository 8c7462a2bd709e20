// Command cnpg-mcp-server is the reference MCP server for CloudNativePG with its built-in OAuth proxy.
//
//	cnpg-mcp-server [serve] --config oidc.yaml   HTTP: OAuth endpoints + MCP at mcp.path (flags and
//	                                             CNPG_MCP_* variables override the file; --help lists them)
//	cnpg-mcp-server list-tools [--read-only]     the tools as JSON (no cluster needed)
//	cnpg-mcp-server stdio [--kubeconfig F] [--namespaces a,b] [--read-only]
//	                                             MCP over stdin/stdout with your own Kubernetes credentials
//	cnpg-mcp-server setup-auth0 --domain T --public-url URL
//	                                             create/update the Auth0 API and application, write the
//	                                             Helm values and the client-secret Secret manifest
//
// main only wires things together: config → app (store, upstream, tokens, OAuth proxy, MCP, HTTP).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/cnpg-mcp/cnpg-mcp/server/app"
	"github.com/cnpg-mcp/cnpg-mcp/server/config"
	"github.com/cnpg-mcp/cnpg-mcp/server/mcpserver"
	"github.com/cnpg-mcp/cnpg-mcp/server/setupauth0"
)

func main() {
	if err := run(os.Args[1:], os.Getenv, os.Stdout, os.Stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return
		}
		fmt.Fprintln(os.Stderr, "cnpg-mcp-server:", err)
		os.Exit(1)
	}
}

const usage = `Usage: cnpg-mcp-server [command] [flags]

Commands:
  serve         (default) the HTTP server: OAuth endpoints + MCP; flags below, or CNPG_MCP_* variables
  list-tools    the tools as JSON (no cluster needed); --read-only for the read-only set
  stdio         MCP over stdin/stdout with your own Kubernetes credentials (no OAuth)
  setup-auth0   create or update the Auth0 API and application, write the Helm values file and the
                client-secret Secret manifest (cnpg-mcp-server setup-auth0 --help)
  help          this text

`

func run(args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cmd := "serve"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		cmd, args = args[0], args[1:]
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	switch cmd {
	case "serve":
		if len(args) > 0 && isHelp(args[0]) {
			fmt.Fprint(stderr, usage) // the command list, then the flags of serve
		}
		return serve(ctx, args, getenv)
	case "help":
		fmt.Fprint(stdout, usage)
		return nil
	case "setup-auth0":
		return setupAuth0(ctx, args, getenv, stdout, stderr)
	case "list-tools":
		fs := flag.NewFlagSet("list-tools", flag.ContinueOnError)
		ro := fs.Bool("read-only", false, "list only the read-only tools")
		if err := fs.Parse(args); err != nil {
			return err
		}
		return mcpserver.WriteToolsJSON(stdout, *ro)
	case "stdio":
		return stdio(ctx, args)
	default:
		return fmt.Errorf("unknown command %q: use serve, list-tools, stdio or setup-auth0 (cnpg-mcp-server help)", cmd)
	}
}

func isHelp(arg string) bool {
	return arg == "-h" || arg == "-help" || arg == "--help"
}

// setupAuth0 prepares an Auth0 tenant (server/setupauth0); the management secret comes from the
// environment or a file, never from a flag value. --help returns flag.ErrHelp (exit 0).
func setupAuth0(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	opts, err := setupauth0.ParseArgs(args, getenv, stderr)
	if err != nil {
		return err
	}
	opts.Out = stdout
	return setupauth0.Run(ctx, opts)
}

func serve(ctx context.Context, args []string, getenv func(string) string) error {
	cfg, err := config.Load(args, getenv)
	if err != nil {
		return err
	}
	a, err := app.New(ctx, cfg, app.Options{})
	if err != nil {
		return err
	}
	a.LogStartup()
	return a.Run(ctx)
}

// stdio needs no OAuth configuration: the local user's Kubernetes credentials are the authority.
func stdio(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("stdio", flag.ContinueOnError)
	kubeconfig := fs.String("kubeconfig", "", "kubeconfig file (default: $KUBECONFIG, ~/.kube/config)")
	kubeContext := fs.String("context", "", "kubeconfig context (default: current)")
	imageTemplate := fs.String("image-template", "", "postgres_version → image, e.g. registry/postgresql:{version}")
	namespaces := fs.String("namespaces", "", "comma-separated namespaces the tools may touch (default: all)")
	ro := fs.Bool("read-only", false, "register read-only tools only")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg := &config.Config{Kubernetes: config.Kubernetes{Kubeconfig: *kubeconfig, Context: *kubeContext, ImageTemplate: *imageTemplate}, MCP: config.MCP{ReadOnly: *ro}}
	for _, n := range strings.Split(*namespaces, ",") {
		if n = strings.TrimSpace(n); n != "" {
			cfg.Kubernetes.Namespaces = append(cfg.Kubernetes.Namespaces, n)
		}
	}
	kc, src, err := app.Kubernetes(cfg, "--kubeconfig", false)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewJSONHandler(os.Stderr, nil)) // stdout carries the protocol
	log.Info("kubernetes", src.LogAttrs()...)
	srv, err := app.NewMCPServer(cfg, kc, src.Namespace, log, nil, false)
	if err != nil {
		return err
	}
	return srv.ServeStdio(ctx, os.Stdin, os.Stdout)
}
