package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/cnpg-mcp/cnpg-mcp/conformance/internal/localstack"
)

// TestImage checks the suite's container image (built by `make images`; `make image-test` runs this
// with CNPG_MCP_IMAGE set): it lists the checks, and a short run that needs the browser — Chromium
// from Debian inside the image, started by the suite — passes against the reference stack started
// here on the host's loopback, reached with --network host.
func TestImage(t *testing.T) {
	image := os.Getenv("CNPG_MCP_IMAGE")
	if image == "" {
		t.Skip("set CNPG_MCP_IMAGE to the suite's image (make image-test builds it and runs this)")
	}
	docker := os.Getenv("DOCKER")
	if docker == "" {
		docker = "docker"
	}
	run := func(t *testing.T, timeout time.Duration, args ...string) (string, int) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		name := fmt.Sprintf("cnpg-mcp-image-test-%d-%d", os.Getpid(), time.Now().UnixNano())
		full := append([]string{"run", "--rm", "--name", name}, args...)
		cmd := exec.CommandContext(ctx, docker, full...)
		cmd.WaitDelay = 10 * time.Second
		out, err := cmd.CombinedOutput()
		if ctx.Err() != nil {
			_ = exec.Command(docker, "rm", "-f", name).Run()
			t.Fatalf("docker %s: no answer after %s:\n%s", strings.Join(full, " "), timeout, out)
		}
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatalf("docker %s: %v", strings.Join(full, " "), err)
		}
		return string(out), code
	}

	t.Run("list", func(t *testing.T) {
		out, code := run(t, 2*time.Minute, image, "--list", "--label-filter", "PKCE")
		if code != 0 || !strings.Contains(out, "PKCE-01") || !strings.Contains(out, "checks") {
			t.Fatalf("--list: exit %d:\n%s", code, out)
		}
	})

	t.Run("short run with the browser", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		st, err := localstack.Start(ctx, localstack.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		// AZ-01 needs a whole browser flow (login at the mock, consent, the redirect to the suite's
		// loopback listener inside the container).
		out, code := run(t, 4*time.Minute, "--network", "host", image,
			"--target", st.Target, "--label-filter", "PRM-01 || AZ-01 || TOK-03", "--no-color", "--no-report")
		if code != 0 {
			t.Fatalf("the suite in the image: exit %d:\n%s", code, out)
		}
		for _, id := range []string{"PRM-01", "AZ-01", "TOK-03"} {
			passed := false
			for _, l := range strings.Split(out, "\n") {
				f := strings.Fields(l)
				passed = passed || (len(f) >= 4 && f[1] == "PASS" && f[3] == id)
			}
			if !passed {
				t.Errorf("%s did not pass:\n%s", id, out)
			}
		}
		if !strings.Contains(out, "3 checks") {
			t.Errorf("want a run of 3 checks:\n%s", out)
		}
		t.Logf("%s", out)
	})
}
