// Command devstack is `make run`: the mock Auth0 and the reference server on loopback, wired
// together, with the embedded file store. When both are ready it prints exactly one line on stdout,
//
//	MCP endpoint: http://127.0.0.1:8080/mcp
//
// and logs go to stderr. Ctrl-C (or SIGTERM) stops both. Log in as dev@example.com / dev-password.
//
// Besides its own flags it takes the server's flags (and CNPG_MCP_ variables) that do not concern
// the wiring to the mock (make run RUN_ARGS="--mcp-read-only --kubernetes-namespaces db");
// devstack --help lists them.
package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/cnpg-mcp/cnpg-mcp/mockauth0"
	mconfig "github.com/cnpg-mcp/cnpg-mcp/mockauth0/config"
	"github.com/cnpg-mcp/cnpg-mcp/server/app"
	"github.com/cnpg-mcp/cnpg-mcp/server/config"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "devstack:", err)
		os.Exit(1)
	}
}

const usage = `Usage: make run RUN_ARGS="[flags]"   (or: go run ./hack/devstack [flags])

Starts the mock Auth0 and the reference server on loopback with an embedded store, prints
"MCP endpoint: <url>" on stdout when both are ready, logs on stderr; Ctrl-C stops both.
Log in as dev@example.com / dev-password.

Flags of devstack:
`

// devstackOwned are the server settings devstack derives from the mock and its state directory;
// every other server flag passes through (--mcp-read-only, --kubernetes-kubeconfig, ...).
var devstackOwned = map[string]bool{
	"issuer": true, "audience": true, "client_id": true, "client_secret_file": true, "public_url": true, "jwks_uri": true,
	"scope": true, "client_auth_method": true, "forward_resource": true, "upstream_jwe_private_key_file": true,
	"callback_path": true, "listen": true, "log_level": true, "signing_key_file": true, "sealing_key_file": true,
	"storage.driver": true, "storage.path": true, "storage.dsn_file": true, "storage.dsn": true,
}

// serverFields are the server settings devstack passes through.
func serverFields() []config.Field {
	var out []config.Field
	for _, f := range config.Fields() {
		if !devstackOwned[f.Path] {
			out = append(out, f)
		}
	}
	return out
}

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	own := flag.NewFlagSet("devstack", flag.ContinueOnError)
	addr := own.String("addr", "127.0.0.1:8080", "listen address of the reference server (loopback)")
	mockAddr := own.String("mock-addr", "127.0.0.1:0", "listen address of the mock Auth0 (port 0: a free one)")
	stateDir := own.String("state-dir", "", "`directory` for the store file and generated keys (default: a temporary directory removed on exit)")
	logLevel := own.String("log-level", "info", "log `level` of both servers: debug, info, warn or error")
	srv := flag.NewFlagSet("server", flag.ContinueOnError)
	serverFlags := config.RegisterFlags(srv, serverFields())
	// One set parses both; the two halves are printed apart in --help.
	fs := flag.NewFlagSet("devstack", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	own.VisitAll(func(f *flag.Flag) { fs.Var(f.Value, f.Name, f.Usage) })
	srv.VisitAll(func(f *flag.Flag) { fs.Var(f.Value, f.Name, f.Usage) })
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(stdout, usage)
			config.PrintFlags(stdout, own)
			fmt.Fprint(stdout, "\nServer flags passed through (cnpg-mcp-server --help has the rest; the upstream, public URL, listen\naddress, keys and store are devstack's):\n")
			config.PrintFlags(stdout, srv)
			return err
		}
		return config.FlagError(fs, err, "make run RUN_ARGS=--help")
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q (make run RUN_ARGS=--help lists the flags)", fs.Args())
	}
	configure := func(c *config.Config) error { // as the server does: environment, then flags
		var errs []error
		for _, f := range serverFields() {
			if v := getenv(f.Env()); v != "" {
				if err := f.Set(c, v); err != nil {
					errs = append(errs, fmt.Errorf("%s: %w", f.Env(), err))
				}
			}
		}
		return errors.Join(append(errs, serverFlags.Apply(c))...)
	}
	return Run(ctx, Options{Addr: *addr, MockAddr: *mockAddr, StateDir: *stateDir, LogLevel: *logLevel, Stdout: stdout, Stderr: stderr,
		Configure: configure})
}

// Options for Run.
type Options struct {
	Addr, MockAddr, StateDir, LogLevel string
	Stdout, Stderr                     io.Writer
	// Configure, when set, adjusts the server's configuration after devstack's wiring (the server
	// flags given on the command line).
	Configure func(*config.Config) error
}

// Run starts both servers, prints the endpoint line and blocks until ctx ends.
func Run(ctx context.Context, o Options) error {
	log := slog.New(slog.NewTextHandler(o.Stderr, &slog.HandlerOptions{Level: level(o.LogLevel)}))
	dir := o.StateDir
	if dir == "" {
		d, err := os.MkdirTemp("", "cnpg-mcp-devstack-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(d)
		dir = d
	} else if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	mcfg := mockauth0.DefaultConfig()
	mcfg.Addr = o.MockAddr
	mock, err := mockauth0.Start(ctx, mcfg, mockauth0.WithLogger(log.With("component", "mockauth0")))
	if err != nil {
		return fmt.Errorf("start mock Auth0: %w", err)
	}
	defer mock.Close()

	ln, err := net.Listen("tcp", o.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s (choose another with --addr): %w", o.Addr, err)
	}
	secret, e1 := writeSecret(dir, "upstream-client-secret", []byte(mconfig.DefaultClientSecret), false)
	signing, e2 := keyFile(dir, "signing.key")
	sealing, e3 := keyFile(dir, "sealing.key")
	if err := errors.Join(e1, e2, e3); err != nil {
		ln.Close()
		return err
	}
	cfg := &config.Config{
		Issuer: mock.Issuer(), Audience: mconfig.DefaultAPIIdentifier, ClientID: mconfig.DefaultClientID, ClientSecretFile: secret,
		PublicURL: "http://" + ln.Addr().String(), SigningKeyFile: signing, SealingKeyFile: sealing, LogLevel: o.LogLevel,
		Storage: config.Storage{Driver: "bolt", Path: filepath.Join(dir, "cnpg-mcp.db")},
	}
	if o.Configure != nil {
		if err := o.Configure(cfg); err != nil {
			ln.Close()
			return err
		}
	}
	cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		ln.Close()
		return err
	}
	a, err := app.New(ctx, cfg, app.Options{Logger: log.With("component", "cnpg-mcp-server"), Listener: ln, AllowMissingKubernetes: true})
	if err != nil {
		ln.Close()
		return err
	}
	a.LogStartup()
	log.Info("mock Auth0 ready", "issuer", mock.Issuer(), "user", mconfig.DefaultUserEmail, "password", "see mockauth0 README (dev-password)")
	errc := make(chan error, 1)
	go func() { errc <- a.Run(ctx) }()
	fmt.Fprintf(o.Stdout, "MCP endpoint: %s\n", cfg.ResourceURL())
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
		return <-errc
	}
}

func level(s string) slog.Level {
	var l slog.Level
	_ = l.UnmarshalText([]byte(s))
	return l
}

// keyFile creates (once) a file with 32 random bytes, base64.
func keyFile(dir, name string) (string, error) {
	p := filepath.Join(dir, name)
	if _, err := os.Stat(p); err == nil {
		return p, nil
	}
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return writeSecret(dir, name, []byte(base64.StdEncoding.EncodeToString(b)), true)
}

func writeSecret(dir, name string, b []byte, keep bool) (string, error) {
	p := filepath.Join(dir, name)
	if keep {
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return p, os.WriteFile(p, b, 0o600)
}
