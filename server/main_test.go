package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cnpg-mcp/cnpg-mcp/mockauth0"
	mockconfig "github.com/cnpg-mcp/cnpg-mcp/mockauth0/config"
	"github.com/cnpg-mcp/cnpg-mcp/server/config"
	"github.com/cnpg-mcp/cnpg-mcp/server/tools"
)

// --help (and the help command) print on stdout, nothing on stderr, and main exits 0 (nil or
// flag.ErrHelp); the serve help lists the commands and every flag with its type and default.
func TestHelpOnStdout(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"help"}, []string{"serve", "list-tools", "stdio", "setup-auth0", "  --mcp-read-only\n", "  --lifetimes-access-token duration\n", "(default 1h; env CNPG_MCP_LIFETIMES_ACCESS_TOKEN)"}},
		{[]string{"--help"}, []string{"serve", "setup-auth0", "  --mcp-read-only\n", "  --storage-driver string\n"}},
		{[]string{"serve", "-h"}, []string{"  --mcp-read-only\n"}},
		{[]string{"--mcp-read-only", "--help"}, []string{"  --mcp-read-only\n"}},
		{[]string{"list-tools", "--help"}, []string{"Usage: cnpg-mcp-server list-tools", "  --read-only\n"}},
		{[]string{"stdio", "--help"}, []string{"Usage: cnpg-mcp-server stdio", "  --kubeconfig file\n", "  --read-only\n"}},
		{[]string{"setup-auth0", "--help"}, []string{"setup-auth0", "  --domain string\n", "  --public-url string\n", "AUTH0_MGMT_CLIENT_SECRET", "(default cnpg-mcp-values.yaml)"}},
	} {
		var out, errb bytes.Buffer
		err := run(tc.args, func(string) string { return "" }, &out, &errb)
		if err != nil && !errors.Is(err, flag.ErrHelp) {
			t.Fatalf("%v: %v", tc.args, err)
		}
		if errb.Len() > 0 {
			t.Errorf("%v: help on stderr: %s", tc.args, errb.String())
		}
		for _, w := range tc.want {
			if !strings.Contains(out.String(), w) {
				t.Errorf("%v: stdout lacks %q:\n%s", tc.args, w, out.String())
			}
		}
	}
	err := run([]string{"nope"}, func(string) string { return "" }, &bytes.Buffer{}, &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), "setup-auth0") {
		t.Errorf("an unknown command should list the commands: %v", err)
	}
}

// A flag of another command, or a misspelt one, names the flag meant and where the list is.
func TestUnknownFlagSaysWhatToDo(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--read-only"}, "flag provided but not defined: --read-only; did you mean --mcp-read-only? (cnpg-mcp-server --help lists the flags)"},
		{[]string{"stdio", "--mcp-read-only"}, "flag provided but not defined: --mcp-read-only (cnpg-mcp-server stdio --help lists the flags)"},
		{[]string{"list-tools", "--readonly"}, "flag provided but not defined: --readonly (cnpg-mcp-server list-tools --help lists the flags)"},
		{[]string{"setup-auth0", "--tenant", "x"}, "flag provided but not defined: --tenant (cnpg-mcp-server setup-auth0 --help lists the flags)"},
	} {
		var out, errb bytes.Buffer
		err := run(tc.args, func(string) string { return "" }, &out, &errb)
		if err == nil || errors.Is(err, flag.ErrHelp) || err.Error() != tc.want {
			t.Errorf("%v:\n got %v\nwant %s", tc.args, err, tc.want)
		}
		if out.Len()+errb.Len() > 0 {
			t.Errorf("%v: printed %q %q besides the error", tc.args, out.String(), errb.String())
		}
	}
}

// stdio without any Kubernetes configuration fails at once, naming what it looked for and the
// --kubeconfig flag of this command.
func TestStdioWithoutKubernetesSaysWhatToDo(t *testing.T) {
	t.Setenv("KUBECONFIG", filepath.Join(t.TempDir(), "none"))
	t.Setenv("KUBERNETES_SERVICE_HOST", "")
	err := run([]string{"stdio"}, func(string) string { return "" }, &bytes.Buffer{}, &bytes.Buffer{})
	for _, w := range []string{"no Kubernetes configuration found", "--kubeconfig: not set", "$KUBECONFIG=", "Configure one: pass --kubeconfig"} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("stdio without Kubernetes: want %q in %v", w, err)
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

// The toolsets named in the flags' help are the tools package's; list-tools --toolsets selects them
// and refuses an unknown one with the valid names.
func TestToolsetsFlag(t *testing.T) {
	if config.ToolsetNames != strings.Join(tools.ToolsetNames(), ", ") {
		t.Fatalf("config.ToolsetNames %q is not tools.ToolsetNames %q", config.ToolsetNames, tools.ToolsetNames())
	}
	var out bytes.Buffer
	if err := run([]string{"list-tools", "--toolsets", "roles, poolers", "--read-only"}, func(string) string { return "" }, &out, &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	var list struct {
		Tools []struct {
			Name, Toolset string
			Mutating      bool
		} `json:"tools"`
	}
	if err := json.Unmarshal(out.Bytes(), &list); err != nil || len(list.Tools) != 3 {
		t.Fatalf("%v: %s", err, out.String())
	}
	for _, tl := range list.Tools {
		if (tl.Toolset != "roles" && tl.Toolset != "poolers") || tl.Mutating {
			t.Errorf("%+v listed", tl)
		}
	}
	err := run([]string{"list-tools", "--toolsets", "backup"}, func(string) string { return "" }, &bytes.Buffer{}, &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), `unknown toolset "backup": use any of clusters, instances`) {
		t.Fatalf("unknown toolset: %v", err)
	}
}
