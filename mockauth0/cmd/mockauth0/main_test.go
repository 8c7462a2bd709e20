package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"io"
	"net/http"
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
	for _, want := range []string{"-addr", "-config", "-issuer", "-admin", "-admin-token", "-log-level", "-print-default-config", "dev@example.com", "MOCKAUTH0_"} {
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
		"config field users[0].email": {"--config", bad},
		"no such file":                {"--config", filepath.Join(dir, "missing.yaml")},
		"--log-level":                 {"--log-level", "loud"},
		"unexpected argument":         {"extra"},
		"listen on":                   {"--addr", "256.0.0.1:1"},
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
