package cli_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cnpg-mcp/cnpg-mcp/conformance/cimdhost"
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
	if code != cli.ExitPass || !strings.Contains(out, "210 checks") {
		t.Fatalf("exit %d:\n%s", code, out)
	}
}

// TestLabelFilterSelectingNothing: a filter that selects no check is a usage error (a typo would
// otherwise run nothing and pass), for --list and for a run.
func TestLabelFilterSelectingNothing(t *testing.T) {
	for _, args := range [][]string{
		{"--list", "--label-filter", "PKCE-99"},
		{"--target", "https://mcp.example/mcp", "--label-filter", "PKCE-99"},
	} {
		code, _, errs := run(args, nil)
		if code != cli.ExitUsage || !strings.Contains(errs, "selects no check") || !strings.Contains(errs, "--list") {
			t.Fatalf("%v: exit %d, stderr %q", args, code, errs)
		}
	}
}

// TestCouldNotEvaluate: an unreachable target and a misrouted one (404 at the MCP URL) are one
// clear "could not evaluate" message naming the failed preflight step, exit status 3, and no
// check graded — not a page of failures.
func TestCouldNotEvaluate(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + ln.Addr().String() + "/mcp"
	ln.Close()
	misrouted := httptest.NewServer(http.NotFoundHandler())
	defer misrouted.Close()
	for _, tc := range []struct{ target, step, hint string }{
		{closed, `"reachability"`, "check --target"},
		{misrouted.URL + "/mcp", `"401 challenge"`, "does not look like the MCP endpoint"},
	} {
		dir := t.TempDir()
		code, out, errs := run([]string{"--target", tc.target, "--report-dir", dir, "--chromium", "/nonexistent/chromium", "--no-color"}, nil)
		if code != cli.ExitCouldNotEvaluate {
			t.Fatalf("%s: exit %d, want %d\n%s\n%s", tc.target, code, cli.ExitCouldNotEvaluate, out, errs)
		}
		for _, want := range []string{"COULD NOT EVALUATE", tc.step, tc.hint, "assumed by default; for a server implementing another version pass --spec-version"} {
			if !strings.Contains(out, want) {
				t.Errorf("%s: output lacks %q:\n%s", tc.target, want, out)
			}
		}
		if strings.Contains(out, "FAIL ") || strings.Count(out, "\n") > 12 {
			t.Errorf("%s: more than one message:\n%s", tc.target, out)
		}
		b, err := os.ReadFile(filepath.Join(dir, "report.json"))
		if err != nil {
			t.Fatal(err)
		}
		var rep struct {
			Results   []any `json:"results"`
			Preflight struct {
				Passed bool `json:"passed"`
				Steps  []struct{ Name, Status, Hint string }
			} `json:"preflight"`
			SpecVersionSource string `json:"specVersionSource"`
		}
		if err := json.Unmarshal(b, &rep); err != nil {
			t.Fatal(err)
		}
		last := rep.Preflight.Steps[len(rep.Preflight.Steps)-1]
		if len(rep.Results) != 0 || rep.Preflight.Passed || last.Status != "fail" || last.Hint == "" || rep.SpecVersionSource != "default" {
			t.Errorf("%s: report %+v", tc.target, rep)
		}
	}
}

// TestCIMDTLSFromTheCLI: --cimd-tls makes the CLI itself serve the client-metadata documents over
// https on --cimd-listen, with a certificate that verifies against the CA file it writes to
// --report-dir and names on stdout. The target here fetches from that host while the run is on, as a
// server resolving a CIMD client_id would.
func TestCIMDTLSFromTheCLI(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	listen := ln.Addr().String()
	ln.Close()
	dir := t.TempDir()
	fetched := make(chan error, 1)
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case fetched <- fetchWithCA(filepath.Join(dir, cimdhost.CAFile), "https://"+listen+"/"):
		default:
		}
		http.NotFound(w, r)
	}))
	defer target.Close()

	_, out, errs := run([]string{"--target", target.URL + "/mcp", "--report-dir", dir, "--chromium", "/nonexistent/chromium",
		"--no-color", "--cimd-tls", "--cimd-listen", listen}, nil)
	want := "CIMD host: https://" + listen + " serves https with a certificate from a generated CA; make the target trust " + filepath.Join(dir, cimdhost.CAFile)
	if !strings.Contains(out, want) {
		t.Fatalf("stdout lacks %q:\n%s\n%s", want, out, errs)
	}
	select {
	case err := <-fetched:
		if err != nil {
			t.Fatalf("https to the CLI's CIMD host with the printed CA: %v", err)
		}
	default:
		t.Fatal("the target was never asked anything, so the CIMD host was never fetched")
	}
	// after the run the host is closed
	if err := fetchWithCA(filepath.Join(dir, cimdhost.CAFile), "https://"+listen+"/"); err == nil {
		t.Fatal("the CIMD host still answers after the run")
	}
}

// fetchWithCA GETs url trusting only the CA in caFile; any HTTP answer is success (the TLS handshake
// verified), a transport error is not.
func fetchWithCA(caFile, url string) error {
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return fmt.Errorf("%s holds no PEM certificate", caFile)
	}
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}
	resp, err := c.Get(url)
	if err != nil {
		return err
	}
	return resp.Body.Close()
}
