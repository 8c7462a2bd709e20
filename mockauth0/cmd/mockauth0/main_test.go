package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestHelpDocumentsEveryFlag(t *testing.T) {
	var out bytes.Buffer
	err := run(context.Background(), []string{"--help"}, io.Discard, &out)
	if !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("--help: %v", err)
	}
	for _, want := range []string{"-addr", "-config", "-issuer", "-admin", "-admin-token", "-log-level", "-print-default-config", "-callback", "-api", "-resource-parameter-profile", "repeatable", "dev@example.com", "MOCKAUTH0_"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("--help does not mention %s", want)
		}
	}
}

func TestBadInputsGiveClearErrors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	_ = os.WriteFile(bad, []byte("users:\n  - email: nope\n    password: x\n"), 0o600)
	cases := map[string][]string{
		"config field users[0].email":  {"--config", bad},
		"no such file":                 {"--config", filepath.Join(dir, "missing.yaml")},
		"--log-level":                  {"--log-level", "loud"},
		"unexpected argument":          {"extra"},
		"listen on":                    {"--addr", "256.0.0.1:1"},
		"--callback \"not a url\"":     {"--callback", "not a url"},
		"without fragment":             {"--callback", "https://proxy.example/cb#frag"},
		"already has this API":         {"--api", "https://cnpg-mcp.example/api"},
		"--resource-parameter-profile": {"--resource-parameter-profile", "forward"},
	}
	for want, args := range cases {
		err := run(context.Background(), args, io.Discard, io.Discard)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%v: want an error containing %q, got %v", args, want, err)
		}
	}
}

func TestPrintsListeningLineAndServes(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"--addr", "127.0.0.1:0"}, pw, io.Discard) }()
	line, err := bufio.NewReader(pr).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	iss := strings.TrimSpace(strings.TrimPrefix(line, "mockauth0 listening on "))
	if !strings.HasPrefix(line, "mockauth0 listening on http://127.0.0.1:") || !strings.HasSuffix(iss, "/") {
		t.Fatalf("line %q", line)
	}
	resp, err := http.Get(iss + ".well-known/openid-configuration")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("discovery: %v", err)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("shutdown: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("did not stop")
	}
}

// start runs the command with args until the test ends and returns the issuer it printed.
func start(t *testing.T, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() { done <- run(ctx, append([]string{"--addr", "127.0.0.1:0"}, args...), pw, io.Discard) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Error("mockauth0 did not stop")
		}
	})
	line, err := bufio.NewReader(pr).ReadString('\n')
	if err != nil {
		t.Fatalf("%v: %v", args, err)
	}
	return strings.TrimSpace(strings.TrimPrefix(line, "mockauth0 listening on "))
}

// authorize sends the default application to /authorize and returns the status and, for a
// redirect, where it goes (the login page when the request was accepted).
func authorize(t *testing.T, issuer string, params url.Values) (int, string) {
	t.Helper()
	q := url.Values{"client_id": {"cnpg-mcp-proxy"}, "response_type": {"code"}, "scope": {"openid"}, "state": {"s"},
		"code_challenge": {"E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"}, "code_challenge_method": {"S256"}}
	for k, v := range params {
		q[k] = v
	}
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Get(issuer + "authorize?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	return resp.StatusCode, resp.Header.Get("Location")
}

func TestCallbackAndAPIFlags(t *testing.T) {
	const cb, cb2, api = "https://proxy.example/oauth/callback", "https://other.example/cb", "https://proxy.example/mcp"
	accepted := func(status int, loc string) bool {
		return status == http.StatusFound && strings.Contains(loc, "/u/login")
	}

	plain := start(t)
	if st, loc := authorize(t, plain, url.Values{"redirect_uri": {cb}}); accepted(st, loc) {
		t.Fatalf("without --callback the mock accepted %s (HTTP %d → %s): the test proves nothing", cb, st, loc)
	}
	if st, loc := authorize(t, plain, url.Values{"redirect_uri": {"http://127.0.0.1:9/auth/callback"}, "audience": {api}}); accepted(st, loc) || !strings.Contains(loc, "Service+not+found") {
		t.Fatalf("without --api the mock accepted audience %s (HTTP %d → %s)", api, st, loc)
	}

	iss := start(t, "--callback", cb, "--callback", cb2, "--api", api)
	for _, u := range []string{cb, cb2, "http://localhost:4242/auth/callback"} {
		if st, loc := authorize(t, iss, url.Values{"redirect_uri": {u}}); !accepted(st, loc) {
			t.Errorf("--callback: redirect_uri %s refused (HTTP %d → %s)", u, st, loc)
		}
	}
	if st, loc := authorize(t, iss, url.Values{"redirect_uri": {"https://proxy.example/oauth/callback2"}}); accepted(st, loc) {
		t.Errorf("a callback that was not added was accepted (HTTP %d → %s)", st, loc)
	}
	if st, loc := authorize(t, iss, url.Values{"redirect_uri": {cb}, "audience": {api}}); !accepted(st, loc) {
		t.Errorf("--api: audience %s refused (HTTP %d → %s)", api, st, loc)
	}
	// resource is refused unless it names an API (reject profile), or taken as audience.
	if st, loc := authorize(t, iss, url.Values{"redirect_uri": {cb}, "resource": {"https://proxy.example/elsewhere"}}); accepted(st, loc) {
		t.Errorf("reject profile: an unknown resource was accepted (HTTP %d → %s)", st, loc)
	}
	aud := start(t, "--callback", cb, "--api", api, "--resource-parameter-profile", "audience")
	if st, loc := authorize(t, aud, url.Values{"redirect_uri": {cb}, "resource": {api}}); !accepted(st, loc) {
		t.Errorf("--resource-parameter-profile audience: resource %s refused (HTTP %d → %s)", api, st, loc)
	}
}

func TestListFlagsFromEnvironment(t *testing.T) {
	const cb = "https://env.example/cb"
	t.Setenv("MOCKAUTH0_CALLBACK", cb+", https://env2.example/cb")
	t.Setenv("MOCKAUTH0_API", "https://env.example/api")
	var out bytes.Buffer
	if err := run(context.Background(), []string{"--print-default-config"}, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"- " + cb, "- https://env2.example/cb", "identifier: https://env.example/api"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("MOCKAUTH0_CALLBACK/API: the tenant lacks %q:\n%s", want, out.String())
		}
	}
	// The command line replaces a list from the environment (flags win, as for every flag).
	out.Reset()
	if err := run(context.Background(), []string{"--print-default-config", "--callback", "https://cli.example/cb"}, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out.String(), cb) || !strings.Contains(out.String(), "- https://cli.example/cb") {
		t.Errorf("--callback did not replace MOCKAUTH0_CALLBACK:\n%s", out.String())
	}
}
