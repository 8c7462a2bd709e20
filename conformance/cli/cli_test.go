package cli_test

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/cnpg-mcp/cnpg-mcp/conformance/cli"
)

func run(args []string, env map[string]string) (int, string, string) {
	var out, errb bytes.Buffer
	code := cli.Main(context.Background(), args, &out, &errb, func(k string) string { return env[k] })
	return code, out.String(), errb.String()
}

// TestUsageErrors: every configuration mistake exits 2 with a message that says what to do, and
// nothing is checked.
func TestUsageErrors(t *testing.T) {
	cases := []struct {
		name string
		args []string
		env  map[string]string
		want string
	}{
		{"no target", nil, nil, "--target is required"},
		{"bad spec version", []string{"--target", "https://mcp.example/mcp", "--spec-version", "2024-01-01"}, nil, "2025-06-18, 2025-11-25 or 2026-07-28"},
		{"target not a URL", []string{"--target", "mcp.example/mcp"}, nil, "not an absolute http(s) URL"},
		{"bad label filter", []string{"--list", "--label-filter", "MUST &&"}, nil, "label filter"},
		{"empty password", []string{"--target", "https://mcp.example/mcp", "--password", ""}, nil, "--password is empty"},
		{"cimd base url over http", []string{"--target", "https://mcp.example/mcp", "--cimd-base-url", "http://x"}, nil, "must be an https URL"},
		{"bad scope probe args", []string{"--target", "https://mcp.example/mcp", "--scope-probe-tool", "t", "--scope-probe-args", "[1"}, nil, "not a JSON object"},
		{"bad env value", []string{"--target", "https://mcp.example/mcp"}, map[string]string{"MCP_AUTH_CONFORMANCE_CHECK_TIMEOUT": "soon"}, "MCP_AUTH_CONFORMANCE_CHECK_TIMEOUT"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, _, errs := run(tc.args, tc.env)
			if code != cli.ExitUsage || !strings.Contains(errs, tc.want) {
				t.Fatalf("exit %d, stderr %q; want %d and %q", code, errs, cli.ExitUsage, tc.want)
			}
		})
	}
}

// TestList: --list prints the checks a label filter selects; the filter works on IDs, levels and areas.
func TestList(t *testing.T) {
	code, out, _ := run([]string{"--list", "--label-filter", "PKCE && MUST"}, nil)
	if code != cli.ExitPass || !strings.Contains(out, "PKCE-01") || strings.Contains(out, "PKCE-06") || !strings.Contains(out, "6 checks") {
		t.Fatalf("exit %d:\n%s", code, out)
	}
	// The environment sets flags not given on the command line.
	code, out, _ = run([]string{"--list"}, map[string]string{"MCP_AUTH_CONFORMANCE_LABEL_FILTER": "PXY-06"})
	if code != cli.ExitPass || !strings.Contains(out, "PXY-06") || !strings.Contains(out, "1 checks") {
		t.Fatalf("exit %d:\n%s", code, out)
	}
	code, out, _ = run([]string{"--list"}, nil)
	if code != cli.ExitPass || !strings.Contains(out, "209 checks") {
		t.Fatalf("exit %d:\n%s", code, out)
	}
}
