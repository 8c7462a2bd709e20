package browser_test

import (
	"context"
	"testing"
	"time"

	"github.com/cnpg-mcp/cnpg-mcp/conformance/browser"
	"github.com/cnpg-mcp/cnpg-mcp/conformance/internal/testenv"
)

// TestCPUTime: the browser's processor time counts its helper processes (a page render happens in
// a renderer, not in the browser process) and never goes backwards.
func TestCPUTime(t *testing.T) {
	testenv.SkipWithoutChromium(t)
	ctx := context.Background()
	b, err := browser.Start(ctx, browser.Options{ExecPath: testenv.ChromiumPath()})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	before, err := b.CPUTime()
	if err != nil {
		t.Fatal(err)
	}
	s, err := b.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	page := "data:text/html,<script>let x=0;const t=Date.now();while(Date.now()-t<1000){x++}document.title=String(x)</script>"
	if err := s.Navigate(ctx, page); err != nil {
		t.Fatal(err)
	}
	after, err := b.CPUTime()
	if err != nil {
		t.Fatal(err)
	}
	// The page spun a renderer for 1 s of wall time; on a loaded machine it gets less processor
	// time, but a tenth of it at least (the browser process alone uses a few ticks meanwhile).
	if after-before < 100*time.Millisecond {
		t.Fatalf("CPUTime went from %s to %s across a busy page render: the renderer's time is not counted", before, after)
	}
}
