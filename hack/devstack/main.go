// Command devstack is `make run`: the mock Auth0 and the reference server on loopback, wired
// together, with the embedded file store. When both are ready it prints exactly one line on stdout,
//
//	MCP endpoint: http://127.0.0.1:8080/mcp
//
// and logs go to stderr. Ctrl-C (or SIGTERM) stops both. Log in as dev@example.com / dev-password.
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
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "devstack:", err)
		os.Exit(1)
	}
}

func run(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("devstack", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "127.0.0.1:8080", "listen address of the reference server (loopback)")
	mockAddr := fs.String("mock-addr", "127.0.0.1:0", "listen address of the mock Auth0")
	stateDir := fs.String("state-dir", "", "directory for the store file and generated keys (default: a temporary directory removed on exit)")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	if err := fs.Parse(args); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return Run(ctx, Options{Addr: *addr, MockAddr: *mockAddr, StateDir: *stateDir, LogLevel: *logLevel, Stdout: stdout, Stderr: stderr})
}

// Options for Run.
type Options struct {
	Addr, MockAddr, StateDir, LogLevel string
	Stdout, Stderr                     io.Writer
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
