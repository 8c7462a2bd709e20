// Command mockauth0 serves a mock Auth0 tenant. With no arguments it serves a default tenant that a
// newcomer can log in to; see --help.
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

	"sigs.k8s.io/yaml"

	"github.com/cnpg-mcp/cnpg-mcp/mockauth0"
	"github.com/cnpg-mcp/cnpg-mcp/mockauth0/config"
)

func main() {
	if err := run(context.Background(), os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintln(os.Stderr, "mockauth0:", err)
		os.Exit(1)
	}
}

const usageHeader = `mockauth0 — a mock Auth0 tenant for tests (Authentication API, Universal-Login-like page,
Management API subset, JWE access tokens, refresh-token rotation with reuse detection).

Usage: mockauth0 [flags]

Every flag can also be set with an environment variable MOCKAUTH0_<FLAG> (upper case, "-" → "_").

Default tenant (used when --config is not given):
  user         ` + config.DefaultUserEmail + ` / ` + config.DefaultUserPassword + `  (sub ` + config.DefaultUserSub + `)
  API          ` + config.DefaultAPIIdentifier + `  scopes mcp:read mcp:write, offline access allowed
  application  ` + config.DefaultClientID + ` / ` + config.DefaultClientSecret + `  regular web app, callbacks
               http://127.0.0.1/auth/callback and http://localhost/auth/callback on any port
  M2M app      ` + config.DefaultSetupClientID + ` / ` + config.DefaultSetupSecret + `  client_credentials for the Management API
  --print-default-config writes it as YAML to start your own file.

Flags:
`

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("mockauth0", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, usageHeader)
		fs.PrintDefaults()
	}
	configPath := fs.String("config", "", "tenant configuration `file` (YAML); default: the built-in tenant described above")
	addr := fs.String("addr", "", "listen address `host:port` (port 0 picks a free one); default 127.0.0.1:0, or the config's addr")
	issuer := fs.String("issuer", "", "public issuer `URL` ending in \"/\" (e.g. https://tenant.example/ behind a TLS proxy); default http://<addr>/")
	admin := fs.Bool("admin", false, "enable the test controls under /mock-admin/v1/ (request log, clock, faults, keys, grants)")
	adminToken := fs.String("admin-token", "", "require this bearer `token` on the admin API")
	logLevel := fs.String("log-level", "info", "log `level`: debug, info, warn or error (requests are logged at debug, never with tokens)")
	printDefault := fs.Bool("print-default-config", false, "print the tenant configuration (the default one, or --config's) as YAML, with --callback, --api and\n--resource-parameter-profile applied, and exit")
	var callbacks, apis listFlag
	fs.Var(&callbacks, "callback", "an extra allowed callback `URL` for the tenant's first interactive application ("+config.DefaultClientID+" by default),\n"+
		"e.g. http://localhost:8080/oauth/callback for a proxy in front of the mock; repeatable, or several separated by commas\n"+
		"(a loopback callback matches on any port while the application has loopback_any_port, as the default one does)")
	fs.Var(&apis, "api", "an extra API `identifier` (audience), e.g. the MCP URL http://localhost:8080/mcp: scopes mcp:read mcp:write,\n"+
		"offline access allowed; repeatable, or several separated by commas")
	resourceProfile := fs.String("resource-parameter-profile", "", "`profile`: how /authorize treats the resource parameter: \"reject\" (refused unless it is an API identifier)\n"+
		"or \"audience\" (it acts as audience, Auth0's compatibility profile); default: the config's tenant.resource_parameter_profile (reject)")
	if err := applyEnv(fs); err != nil {
		return err
	}
	callbacks.fromEnv, apis.fromEnv = callbacks.values != nil, apis.values != nil
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q: see --help", fs.Arg(0))
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		return fmt.Errorf("--log-level: %w (use debug, info, warn or error)", err)
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))

	cfg := config.Default()
	if *configPath != "" {
		c, err := config.Load(*configPath)
		if err != nil {
			return err
		}
		cfg = c
	}
	if *addr != "" {
		cfg.Addr = *addr
	}
	if *issuer != "" {
		cfg.Issuer = *issuer
	}
	if *admin {
		cfg.Admin.Enabled = true
	}
	if *adminToken != "" {
		cfg.Admin.Token = *adminToken
	}
	if err := cfg.AddCallbacks(callbacks.values...); err != nil {
		return fmt.Errorf("--callback %w", err)
	}
	if err := cfg.AddAPIs(apis.values...); err != nil {
		return fmt.Errorf("--api %w", err)
	}
	switch *resourceProfile {
	case "":
	case "reject", "audience":
		cfg.Tenant.ResourceParameterProfile = *resourceProfile
	default:
		return fmt.Errorf("--resource-parameter-profile %q: use reject or audience", *resourceProfile)
	}
	if *printDefault {
		b, err := yaml.Marshal(cfg)
		if err != nil {
			return err
		}
		_, err = stdout.Write(b)
		return err
	}

	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	srv, err := mockauth0.Start(ctx, cfg, mockauth0.WithLogger(log))
	if err != nil {
		return err
	}
	log.Info("mock Auth0 tenant ready", "issuer", srv.Issuer(), "addr", srv.Addr(),
		"users", len(cfg.Users), "apis", len(cfg.APIs), "clients", len(cfg.Clients), "admin_api", cfg.Admin.Enabled)
	fmt.Fprintf(stdout, "mockauth0 listening on %s\n", srv.Issuer())
	<-ctx.Done()
	log.Info("shutting down")
	return srv.Close()
}

// listFlag is a repeatable flag; one value may also hold several separated by commas (as in
// MOCKAUTH0_CALLBACK="a,b"). Values from the environment are replaced, not extended, by the
// command line's.
type listFlag struct {
	values  []string
	fromEnv bool
}

func (l *listFlag) String() string { return strings.Join(l.values, ",") }

func (l *listFlag) Set(v string) error {
	if l.fromEnv {
		l.values, l.fromEnv = nil, false
	}
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			l.values = append(l.values, s)
		}
	}
	return nil
}

// applyEnv sets flags from MOCKAUTH0_* environment variables (flags on the command line win).
func applyEnv(fs *flag.FlagSet) error {
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		name := "MOCKAUTH0_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		if v, ok := os.LookupEnv(name); ok && err == nil {
			if e := fs.Set(f.Name, v); e != nil {
				err = fmt.Errorf("%s: %w", name, e)
			}
		}
	})
	return err
}
