package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cnpg-mcp/cnpg-mcp/mockauth0"
	mockconfig "github.com/cnpg-mcp/cnpg-mcp/mockauth0/config"
)

func TestHelpListsTheCommands(t *testing.T) {
	for _, args := range [][]string{{"help"}, {"--help"}} {
		var out, errb bytes.Buffer
		err := run(args, func(string) string { return "" }, &out, &errb)
		if err != nil && !errors.Is(err, flag.ErrHelp) {
			t.Fatalf("%v: %v", args, err)
		}
		text := out.String() + errb.String()
		for _, cmd := range []string{"serve", "list-tools", "stdio", "setup-auth0"} {
			if !strings.Contains(text, cmd) {
				t.Errorf("%v: the help does not name %q:\n%s", args, cmd, text)
			}
		}
	}
	err := run([]string{"nope"}, func(string) string { return "" }, &bytes.Buffer{}, &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), "setup-auth0") {
		t.Errorf("an unknown command should list the commands: %v", err)
	}
}

func TestSetupAuth0Help(t *testing.T) {
	var out, errb bytes.Buffer
	err := run([]string{"setup-auth0", "--help"}, func(string) string { return "" }, &out, &errb)
	if !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("--help: %v (main exits 0 only on flag.ErrHelp)", err)
	}
	for _, want := range []string{"setup-auth0", "--domain", "--public-url", "AUTH0_MGMT_CLIENT_SECRET"} {
		if !strings.Contains(errb.String(), want) {
			t.Errorf("the help does not mention %s:\n%s", want, errb.String())
		}
	}
}

// The subcommand end to end against the mock's Management API: files written, the secret only in the
// Secret manifest (never on stdout), and a second run changes nothing.
func TestSetupAuth0AgainstMock(t *testing.T) {
	srv, err := mockauth0.Start(context.Background(), mockauth0.DefaultConfig(), mockauth0.WithRSABits(2048))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	dir := t.TempDir()
	values, secret := filepath.Join(dir, "values.yaml"), filepath.Join(dir, "secret.yaml")
	env := map[string]string{
		"AUTH0_DOMAIN":             strings.TrimSuffix(srv.Issuer(), "/"),
		"AUTH0_MGMT_CLIENT_ID":     mockconfig.DefaultSetupClientID,
		"AUTH0_MGMT_CLIENT_SECRET": mockconfig.DefaultSetupSecret,
	}
	getenv := func(k string) string { return env[k] }
	// the mock tenant already has the API "cnpg-mcp" with this identifier
	args := []string{"setup-auth0", "--public-url", "http://127.0.0.1:30080", "--audience", "https://cnpg-mcp.example/api",
		"--values-file", values, "--secret-file", secret}

	for i, want := range []string{"created", "unchanged"} {
		var out, errb bytes.Buffer
		if err := run(args, getenv, &out, &errb); err != nil {
			t.Fatalf("run %d: %v (stderr %s)", i+1, err, errb.String())
		}
		if !strings.Contains(out.String(), "application cnpg-mcp-server") || !strings.Contains(out.String(), ": "+want) {
			t.Errorf("run %d should report %q:\n%s", i+1, want, out.String())
		}
		sb, err := os.ReadFile(secret)
		if err != nil {
			t.Fatal(err)
		}
		var clientSecret string
		for _, line := range strings.Split(string(sb), "\n") {
			if k, v, ok := strings.Cut(strings.TrimSpace(line), ": "); ok && k == "client-secret" {
				clientSecret = v
			}
		}
		if clientSecret == "" {
			t.Fatalf("no client-secret in the Secret manifest:\n%s", sb)
		}
		if strings.Contains(out.String()+errb.String(), clientSecret) {
			t.Errorf("run %d printed the client secret", i+1)
		}
		vb, err := os.ReadFile(values)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(vb), clientSecret) || !strings.Contains(string(vb), "issuer: "+srv.Issuer()) {
			t.Errorf("values file: want the issuer and no secret:\n%s", vb)
		}
	}
}

func TestSetupAuth0ErrorSaysWhatToDo(t *testing.T) {
	err := run([]string{"setup-auth0", "--domain", "tenant.eu.auth0.com", "--public-url", "https://mcp.example.com"},
		func(string) string { return "" }, &bytes.Buffer{}, &bytes.Buffer{})
	if err == nil || errors.Is(err, flag.ErrHelp) || !strings.Contains(err.Error(), "AUTH0_MGMT_CLIENT_SECRET") {
		t.Fatalf("missing management credentials: %v", err)
	}
}
