package localstack_test

import (
	"context"
	"flag"
	"os"
	"testing"
	"time"

	"github.com/cnpg-mcp/cnpg-mcp/conformance/checks"
	"github.com/cnpg-mcp/cnpg-mcp/conformance/internal/localstack"
	"github.com/cnpg-mcp/cnpg-mcp/conformance/internal/testenv"
	"github.com/cnpg-mcp/cnpg-mcp/conformance/report"
	"github.com/cnpg-mcp/cnpg-mcp/conformance/suite"
)

var (
	reportDir   = flag.String("report-dir", "", "write junit.xml, report.json and index.html here")
	labelFilter = flag.String("label-filter", "", "Ginkgo label filter")
	progress    = flag.Bool("progress", false, "print a line per check")
)

// TestLocalStack runs the whole conformance suite, browser flows included, against the reference
// server and the mock Auth0 on loopback: every check must pass (or be skipped with a reason the
// in-process stack cannot lift, or pass with a reported deviation).
func TestLocalStack(t *testing.T) {
	testenv.SkipWithoutChromium(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	st, err := localstack.Start(ctx, localstack.Options{Sibling: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	cfg := st.Config()
	cfg.Browser.ExecPath = testenv.ChromiumPath()
	env, err := checks.NewEnv(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer env.Close()
	opts := suite.Options{LabelFilter: *labelFilter}
	if *progress || testing.Verbose() {
		opts.Progress = os.Stdout
	}
	run, err := suite.Run(ctx, env, opts)
	if err != nil {
		t.Fatal(err)
	}
	report.WriteSummary(os.Stdout, run)
	if *reportDir != "" {
		if err := report.WriteDir(*reportDir, run); err != nil {
			t.Error(err)
		}
	}
	if !run.Evaluated() {
		t.Fatalf("the preflight failed against the reference server: %+v", run.Preflight.Failed())
	}
	if run.Design == nil || run.Design.Kind != report.DesignProxy {
		t.Errorf("the reference server's design was detected as %+v, want %s", run.Design, report.DesignProxy)
	}
	for _, r := range run.Results {
		switch r.Status {
		case report.Fail:
			t.Errorf("%s [%s] failed against the reference server: %v", r.ID, r.Level, r.Failures)
		case report.Inconclusive:
			t.Errorf("%s [%s] is inconclusive against the reference server (every precondition must work there): %s", r.ID, r.Level, r.Message())
		case report.Skip:
			t.Logf("%s skipped: %s", r.ID, r.SkipReason)
		case report.Warn:
			t.Logf("%s warning: %v", r.ID, r.Warnings)
		}
	}

	// The run above is at MCP 2026-07-28, which has no sessions; the session checks again at
	// 2025-11-25, where the server issues Mcp-Session-Id.
	cfg.SpecVersion = "2025-11-25"
	senv, err := checks.NewEnv(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer senv.Close()
	for _, c := range checks.All() {
		if c.ID != "RS-08" && c.ID != "RS-09" && c.ID != "SEC-05" {
			continue
		}
		if res := checks.Run(ctx, senv, c); res.Status != report.Pass {
			t.Errorf("%s at MCP 2025-11-25: %s against the reference server: %s", c.ID, res.Status, res.Message())
		}
	}
}
