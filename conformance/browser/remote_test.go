package browser_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cnpg-mcp/cnpg-mcp/conformance/browser"
	"github.com/cnpg-mcp/cnpg-mcp/conformance/internal/testenv"
)

// TestRemoteBrowser: the suite can drive a Chromium it did not start (the container image's mode,
// --browser-url), with isolated sessions there too.
func TestRemoteBrowser(t *testing.T) {
	testenv.SkipWithoutChromium(t)
	// Not t.TempDir: Chromium's helper processes may still be writing the profile when the main
	// process has exited, and t.TempDir's strict cleanup then fails the test.
	dir, err := os.MkdirTemp("", "remote-browser-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { removeAllRetry(t, dir) })
	cmd := exec.Command(testenv.ChromiumPath(), "--headless", "--disable-gpu", "--no-sandbox", "--no-first-run",
		"--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0", "--user-data-dir="+dir, "about:blank")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // its own process group, helpers included
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL); _ = cmd.Wait() })
	var port string
	for i := 0; i < 100 && port == ""; i++ {
		if b, err := os.ReadFile(filepath.Join(dir, "DevToolsActivePort")); err == nil {
			port = strings.SplitN(string(b), "\n", 2)[0]
		} else {
			time.Sleep(50 * time.Millisecond)
		}
	}
	if port == "" {
		t.Fatal("chromium did not report its DevTools port")
	}
	ctx := context.Background()
	b, err := browser.Start(ctx, browser.Options{RemoteURL: "http://127.0.0.1:" + port + "/"})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	s1, err := b.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	defer s1.Close()
	if err := s1.Navigate(ctx, "data:text/html,<p id=x>remote</p>"); err != nil {
		t.Fatal(err)
	}
	if txt, err := browser.Eval[string](ctx, s1, `document.getElementById("x").textContent`); err != nil || txt != "remote" {
		t.Fatalf("page text %q, %v", txt, err)
	}
}

// removeAllRetry removes dir, retrying for up to 2 s while killed helper processes finish exiting.
func removeAllRetry(t *testing.T, dir string) {
	t.Helper()
	var err error
	for range 40 {
		if err = os.RemoveAll(dir); err == nil {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Errorf("removing Chromium's profile %s: %v", dir, err)
}
