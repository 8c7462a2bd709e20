// Package testenv holds helpers for the conformance packages' own tests: finding Chromium (skip, or
// fail under CNPG_MCP_REQUIRE_ALL=1) and sharing one browser process per test binary.
package testenv

import (
	"context"
	"os"
	"sync"
	"testing"

	"github.com/cnpg-mcp/cnpg-mcp/conformance/browser"
)

// RequireAll reports whether missing external tools must fail tests instead of skipping them.
func RequireAll() bool { return os.Getenv("CNPG_MCP_REQUIRE_ALL") == "1" }

// ChromiumPath is the Chromium binary the tests use ($CHROMIUM_PATH, else browser.PreferredExecPath()).
func ChromiumPath() string {
	if p := os.Getenv("CHROMIUM_PATH"); p != "" {
		return p
	}
	return browser.PreferredExecPath()
}

// SkipWithoutChromium skips (or, under CNPG_MCP_REQUIRE_ALL=1, fails) the test when Chromium is missing.
func SkipWithoutChromium(t testing.TB) {
	t.Helper()
	if err := browser.Available(ChromiumPath()); err != nil {
		if RequireAll() {
			t.Fatalf("%v (CNPG_MCP_REQUIRE_ALL=1)", err)
		}
		t.Skipf("%v", err)
	}
}

// Shared is one browser for a whole test binary; Close it from TestMain.
type Shared struct {
	once sync.Once
	b    *browser.Browser
	err  error
}

// Get starts the browser on first use.
func (s *Shared) Get(t testing.TB) *browser.Browser {
	t.Helper()
	SkipWithoutChromium(t)
	s.once.Do(func() {
		s.b, s.err = browser.Start(context.Background(), browser.Options{ExecPath: ChromiumPath()})
	})
	if s.err != nil {
		t.Fatalf("start chromium: %v", s.err)
	}
	return s.b
}

// Close stops the browser if it was started.
func (s *Shared) Close() {
	if s.b != nil {
		s.b.Close()
	}
}
