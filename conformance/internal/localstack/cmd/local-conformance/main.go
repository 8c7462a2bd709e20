// Command local-conformance is `make conformance`: it starts the local stack (the mock Auth0 and
// the reference server, in-process on loopback) and runs the whole conformance suite against it,
// with every capability only an in-process target offers (clock, upstream log, second user,
// sibling deployment, client-metadata documents).
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime/pprof"
	"syscall"

	"github.com/cnpg-mcp/cnpg-mcp/conformance/browser"
	"github.com/cnpg-mcp/cnpg-mcp/conformance/cli"
	"github.com/cnpg-mcp/cnpg-mcp/conformance/internal/localstack"
)

func main() {
	fs := flag.NewFlagSet("local-conformance", flag.ExitOnError)
	var o cli.RunOptions
	fs.StringVar(&o.ReportDir, "report-dir", "conformance-report", "directory for junit.xml, report.json and index.html")
	fs.StringVar(&o.LabelFilter, "label-filter", "", "Ginkgo label filter selecting checks")
	fs.BoolVar(&o.Verbose, "verbose", false, "print every failure, warning and skip reason")
	fs.BoolVar(&o.Strict, "strict", false, "exit non-zero when a SHOULD check fails too")
	noColor := fs.Bool("no-color", false, "no ANSI colours")
	chromium := fs.String("chromium", browser.PreferredExecPath(), "Chromium binary (default: chromium-headless-shell when installed, else chromium)")
	fresh := fs.Bool("fresh-contexts", false, "the slow, strict mode: every browser flow in a fresh browser context, no flow replayed over HTTP, one check at a time")
	parallel := fs.Int("parallel", 4, "how many checks run side by side")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of this process (suite, reference server and mock Auth0; not the browser) to this file")
	_ = fs.Parse(os.Args[1:])
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err == nil {
			err = pprof.StartCPUProfile(f)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "error: --cpuprofile:", err)
			os.Exit(cli.ExitUsage)
		}
		defer f.Close()
	}
	o.Color = !*noColor && cli.IsTerminal(os.Stdout)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := browser.Available(*chromium); err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(cli.ExitUsage)
	}
	st, err := localstack.Start(ctx, localstack.Options{Sibling: true})
	if err != nil {
		fmt.Fprintln(os.Stderr, "error: start the local stack:", err)
		os.Exit(cli.ExitUsage)
	}
	cfg := st.Config()
	cfg.Browser.ExecPath = *chromium
	cfg.FreshContexts = *fresh
	cfg.Parallel = *parallel
	fmt.Printf("local stack: mock Auth0 %s, reference server %s\n", st.MockURL, st.Target)
	code := cli.RunSuite(ctx, cfg, o, os.Stdout, os.Stderr)
	st.Close()
	pprof.StopCPUProfile()
	os.Exit(code)
}
