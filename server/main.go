// Command cnpg-mcp-server is the reference MCP server for CloudNativePG with its built-in OAuth proxy.
//
//	cnpg-mcp-server [serve] --config oidc.yaml   HTTP: OAuth endpoints + MCP at mcp.path (flags and
//	                                             CNPG_MCP_* variables override the file; --help lists them,
//	                                             typed, with their defaults, on stdout)
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
  serve         (default) the HTTP server: OAuth endpoints + MCP; flags below
  list-tools    the tools as JSON (no cluster needed); cnpg-mcp-server list-tools --help
  stdio         MCP over stdin/stdout with your own Kubernetes credentials (no OAuth);
                cnpg-mcp-server stdio --help
  setup-auth0   create or update the Auth0 API and application, write the Helm values file and the
                client-secret Secret manifest; cnpg-mcp-server setup-auth0 --help
  help          this text

Flags of serve. Each is also a key of the --config file (--mcp-read-only is mcp.read_only,
--lifetimes-access-token is lifetimes.access_token) and an environment variable (CNPG_MCP_MCP_READ_ONLY);
flags override the environment, which overrides the file.

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
		err := serve(ctx, args, getenv)
		if errors.Is(err, flag.ErrHelp) {
			printServeHelp(stdout)
		}
		return err
	case "help":
		printServeHelp(stdout)
		return nil
	case "setup-auth0":
		return setupAuth0(ctx, args, getenv, stdout)
	case "list-tools":
		fs := flag.NewFlagSet("list-tools", flag.ContinueOnError)
		ro := fs.Bool("read-only", false, "list only the read-only tools")
		toolsets := fs.String("toolsets", "", "comma-separated toolsets to list, of "+config.ToolsetNames+" (default: all)")
		if err := parseFlags(fs, args, stdout, "Usage: cnpg-mcp-server list-tools [flags]\n\nWrites every tool (name, description, annotations, input schema, scopes, Kubernetes calls) as JSON.\n\nFlags:\n"); err != nil {
			return err
		}
		return mcpserver.WriteToolsJSON(stdout, *ro, splitList(*toolsets))
	case "stdio":
		return stdio(ctx, args, stdout)
	default:
		return fmt.Errorf("unknown command %q: use serve, list-tools, stdio or setup-auth0 (cnpg-mcp-server help)", cmd)
	}
}

func printServeHelp(w io.Writer) {
	fmt.Fprint(w, usage)
	config.PrintFlags(w, config.NewFlagSet())
}

// parseFlags parses a subcommand's flags: --help prints synopsis and the flags on stdout and
// returns flag.ErrHelp (main exits 0); a bad flag is an error saying where the list is.
func parseFlags(fs *flag.FlagSet, args []string, stdout io.Writer, synopsis string) error {
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(stdout, synopsis)
			config.PrintFlags(stdout, fs)
			return err
		}
		return config.FlagError(fs, err, "cnpg-mcp-server "+fs.Name()+" --help")
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q (cnpg-mcp-server %s --help lists the flags)", fs.Args(), fs.Name())
	}
	return nil
}

// setupAuth0 prepares an Auth0 tenant (server/setupauth0); the management secret comes from the
// environment or a file, never from a flag value. --help prints on stdout and returns flag.ErrHelp (exit 0).
func setupAuth0(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	opts, err := setupauth0.ParseArgs(args, getenv, stdout)
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
func stdio(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("stdio", flag.ContinueOnError)
	kubeconfig := fs.String("kubeconfig", "", "kubeconfig `file` (default: in-cluster, then $KUBECONFIG, then ~/.kube/config)")
	kubeContext := fs.String("context", "", "kubeconfig context (default: current)")
	imageTemplate := fs.String("image-template", "", "postgres_version → image, e.g. registry/postgresql:{version}")
	namespaces := fs.String("namespaces", "", "comma-separated namespaces the tools may touch (default: all)")
	ro := fs.Bool("read-only", false, "register read-only tools only")
	toolsets := fs.String("toolsets", "", "comma-separated toolsets to serve, of "+config.ToolsetNames+" (default: all)")
	if err := parseFlags(fs, args, stdout, "Usage: cnpg-mcp-server stdio [flags]\n\nServes MCP over stdin/stdout with your own Kubernetes credentials (no OAuth); logs go to stderr.\n\nFlags:\n"); err != nil {
		return err
	}
	cfg := &config.Config{Kubernetes: config.Kubernetes{Kubeconfig: *kubeconfig, Context: *kubeContext, ImageTemplate: *imageTemplate}, MCP: config.MCP{ReadOnly: *ro, Toolsets: splitList(*toolsets)}}
	cfg.Kubernetes.Namespaces = splitList(*namespaces)
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

// splitList splits a comma-separated flag value, dropping empty items.
func splitList(v string) []string {
	var out []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}
