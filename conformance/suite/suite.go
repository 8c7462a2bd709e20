// Package suite runs the conformance checks as a Ginkgo v2 suite: one spec per catalogue ID,
// labelled with the ID, its level (MUST, SHOULD, MAY, info) and its area (PRM, DCR, PKCE, …), so
// `--label-filter` selects e.g. `MUST`, `PKCE` or `PXY-06`. Ginkgo is used as a library inside
// a binary (or a go test), the way the Kubernetes e2e framework ships its suite.
//
// Ginkgo allows one RunSpecs per process: Run may be called once (runs that stop at the preflight
// gate do not count).
package suite

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/onsi/ginkgo/v2"
	"github.com/onsi/ginkgo/v2/formatter"
	"github.com/onsi/ginkgo/v2/types"

	"github.com/cnpg-mcp/cnpg-mcp/conformance/checks"
	"github.com/cnpg-mcp/cnpg-mcp/conformance/report"
)

// Options control a run.
type Options struct {
	// LabelFilter is a Ginkgo label filter (e.g. "MUST && !Proxy", "PKCE", "PXY-06").
	LabelFilter string
	// Progress prints a line per check (nil prints nothing).
	Progress io.Writer
	// Verbose prints every failure line and skip reason.
	Verbose bool
	// Color adds ANSI colours to progress lines.
	Color bool
	// GinkgoOutput keeps Ginkgo's own reporter output (for debugging the suite).
	GinkgoOutput bool
	// T is the Ginkgo testing handle (a *testing.T under go test); nil for a binary.
	T ginkgo.GinkgoTestingT
	// Timeout bounds the whole run (1 h when zero).
	Timeout time.Duration
	// SpecVersionSource says where the MCP version came from ("default" or "--spec-version").
	SpecVersionSource string
	// Preflight receives the gate's outcome before any check runs (nil: not reported).
	Preflight func(*report.Preflight)
}

// ErrNoChecks is returned when the label filter selects no check.
var ErrNoChecks = errors.New("the label filter selects no check")

type failRecorder struct{ failed bool }

func (f *failRecorder) Fail() { f.failed = true }

var ran sync.Once

// ErrRanTwice is returned by a second Run in one process.
var ErrRanTwice = errors.New("the conformance suite can run once per process (a Ginkgo limitation)")

// Selector returns the label filter as a predicate (everything for an invalid filter; Count
// reports the error).
func Selector(filter string) func([]string) bool {
	if filter == "" {
		return func([]string) bool { return true }
	}
	f, err := types.ParseLabelFilter(filter)
	if err != nil {
		return func([]string) bool { return true }
	}
	return f
}

// Count returns how many checks a label filter selects; a filter that selects none is an error
// (a typo in an ID or label would otherwise run nothing and report success).
func Count(filter string) (int, error) {
	if filter != "" {
		if _, err := types.ParseLabelFilter(filter); err != nil {
			return 0, fmt.Errorf("label filter %q: %w", filter, err)
		}
	}
	match := Selector(filter)
	n := 0
	for _, c := range checks.All() {
		if match(c.Labels()) {
			n++
		}
	}
	if n == 0 {
		return 0, fmt.Errorf("%w: %q (labels are check IDs such as PKCE-01, levels MUST SHOULD MAY info, and areas such as PRM DCR PKCE Token Refresh Revocation Proxy; --list shows them)", ErrNoChecks, filter)
	}
	return n, nil
}

// Run runs the selected checks against env and returns the results in catalogue order.
func Run(ctx context.Context, env *checks.Env, opts Options) (*report.Run, error) {
	total, err := Count(opts.LabelFilter)
	if err != nil {
		return nil, err
	}
	run := &report.Run{Tool: "mcp-auth-conformance", Target: env.Config().Target, SpecVersion: env.Config().SpecVersion,
		SpecVersionSource: opts.SpecVersionSource, LabelFilter: opts.LabelFilter, Started: time.Now()}
	var progress *report.Progress
	if opts.Progress != nil {
		progress = &report.Progress{W: opts.Progress, Total: total, Verbose: opts.Verbose, Color: opts.Color}
	}
	env.StartBrowser()
	run.Preflight = env.Preflight(ctx)
	if opts.Preflight != nil {
		opts.Preflight(run.Preflight)
	}
	if !run.Preflight.Passed {
		run.DurationMS = float64(time.Since(run.Started).Microseconds()) / 1000
		return run, nil
	}
	first := false
	ran.Do(func() { first = true })
	if !first {
		return nil, ErrRanTwice
	}
	run.Design = env.DetectDesign(ctx)
	run.Mode = env.Mode()
	match := Selector(opts.LabelFilter)
	var selected []checks.Check
	for _, c := range checks.All() {
		if match(c.Labels()) {
			selected = append(selected, c)
		}
	}
	sched := checks.Start(ctx, env, selected, env.Workers())
	var mu sync.Mutex
	register(sched, func(r report.Result) {
		mu.Lock()
		run.Results = append(run.Results, r)
		mu.Unlock()
		if progress != nil {
			progress.Line(r)
		}
	})

	suiteCfg, reporterCfg := ginkgo.GinkgoConfiguration()
	suiteCfg.LabelFilter = opts.LabelFilter
	suiteCfg.RandomizeAllSpecs = false
	suiteCfg.RandomSeed = 1
	suiteCfg.Timeout = opts.Timeout
	if suiteCfg.Timeout == 0 {
		suiteCfg.Timeout = time.Hour
	}
	reporterCfg.Succinct = true
	reporterCfg.SilenceSkips = true
	reporterCfg.NoColor = !opts.Color
	t := opts.T
	if t == nil {
		t = &failRecorder{}
	}
	if !opts.GinkgoOutput {
		// Ginkgo's default reporter writes to this package variable; the progress lines and the
		// summary replace it. Restored afterwards.
		prev := formatter.ColorableStdOut
		formatter.ColorableStdOut = io.Discard
		defer func() { formatter.ColorableStdOut = prev }()
	}
	ginkgo.RunSpecs(t, "MCP authorization conformance", suiteCfg, reporterCfg)
	run.DurationMS = float64(time.Since(run.Started).Microseconds()) / 1000
	run.SortByCatalogue()
	run.Timings = map[string]float64{}
	for k, v := range env.Timings() {
		run.Timings[k] = float64(v.Microseconds()) / 1000
	}
	run.Flows = env.Counts()
	run.ModeDetail = env.ModeDetail()
	run.Browser = env.BrowserInfo(ctx)
	return run, nil
}

// register builds the Ginkgo tree: one container per catalogue section, one spec per check. The
// checks run in the schedule (several at a time); each spec reports its check's result.
func register(sched *checks.Schedule, record func(report.Result)) {
	all := checks.All()
	var sections []string
	bySection := map[string][]checks.Check{}
	for _, c := range all {
		if _, ok := bySection[c.Section]; !ok {
			sections = append(sections, c.Section)
		}
		bySection[c.Section] = append(bySection[c.Section], c)
	}
	// Ordered keeps catalogue order (Ginkgo would shuffle the sections otherwise); ContinueOnFailure
	// keeps going after a failed check.
	ginkgo.Describe("MCP authorization conformance", ginkgo.Ordered, ginkgo.ContinueOnFailure, func() {
		for _, s := range sections {
			ginkgo.Describe(s, func() {
				for _, c := range bySection[s] {
					c := c
					ginkgo.It(fmt.Sprintf("%s [%s] %s", c.ID, c.Level, c.Title()), ginkgo.Label(c.Labels()...), func(sctx ginkgo.SpecContext) {
						res, ok := sched.Result(sctx, c.ID)
						if !ok {
							ginkgo.Fail(fmt.Sprintf("%s: the run ended before the check did", c.ID))
						}
						record(res)
						switch res.Status {
						case report.Fail:
							ginkgo.Fail(fmt.Sprintf("%s: %s", c.ID, joinLines(res.Failures)))
						case report.Skip:
							ginkgo.Skip(res.Message())
						case report.Inconclusive:
							ginkgo.Skip("inconclusive: " + res.Message())
						case report.Warn:
							ginkgo.AddReportEntry("warning", joinLines(res.Warnings))
						}
					})
				}
			})
		}
	})
}

func joinLines(ls []string) string {
	out := ""
	for i, l := range ls {
		if i > 0 {
			out += "\n"
		}
		out += l
	}
	return out
}
