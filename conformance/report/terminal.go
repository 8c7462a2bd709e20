package report

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/cnpg-mcp/cnpg-mcp/conformance/catalogue"
)

// Progress prints one line per finished check.
type Progress struct {
	W     io.Writer
	Total int
	// Verbose prints every failure and warning line, not just the first.
	Verbose bool
	// Color adds ANSI colours to the status word.
	Color bool

	mu sync.Mutex
	n  int
}

var statusWord = map[Status]string{Pass: "PASS", Fail: "FAIL", Warn: "WARN", Skip: "SKIP"}
var statusColor = map[Status]string{Pass: "\x1b[32m", Fail: "\x1b[31m", Warn: "\x1b[33m", Skip: "\x1b[90m"}

// Line prints a result.
func (p *Progress) Line(r Result) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.n++
	word := statusWord[r.Status]
	if p.Color {
		word = statusColor[r.Status] + word + "\x1b[0m"
	}
	width := len(fmt.Sprint(p.Total))
	fmt.Fprintf(p.W, "[%*d/%d] %s %-6s %-8s %s (%s)\n", width, p.n, p.Total, word, r.Level, r.ID, r.Title,
		r.Duration().Round(time.Millisecond))
	var lines []string
	switch r.Status {
	case Fail:
		lines = r.Failures
	case Warn:
		lines = r.Warnings
	case Skip:
		if p.Verbose {
			lines = []string{r.SkipReason}
		}
	}
	if !p.Verbose && len(lines) > 1 {
		lines = append(lines[:1:1], fmt.Sprintf("(+%d more in the report)", len(lines)-1))
	}
	for _, l := range lines {
		fmt.Fprintf(p.W, "%*s      ↳ %s\n", 2*width+3, "", oneLine(l))
	}
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// WriteSummary prints the totals, the failed checks by level and where the time went.
func WriteSummary(w io.Writer, run *Run) {
	c := run.Counts()
	fmt.Fprintf(w, "\nMCP authorization conformance — %s (MCP %s)\n", run.Target, run.SpecVersion)
	fmt.Fprintf(w, "%d checks: %d passed, %d failed, %d warnings, %d skipped — in %s\n", c.Total, c.Pass, c.Fail, c.Warn, c.Skip,
		time.Duration(run.DurationMS*float64(time.Millisecond)).Round(10*time.Millisecond))
	byLevel := map[catalogue.Level][]string{}
	for _, r := range run.Results {
		if r.Status == Fail {
			byLevel[r.Level] = append(byLevel[r.Level], r.ID)
		}
	}
	for _, l := range []catalogue.Level{catalogue.LevelMust, catalogue.LevelShould, catalogue.LevelMay, catalogue.LevelInfo} {
		if ids := byLevel[l]; len(ids) > 0 {
			fmt.Fprintf(w, "  failed %-6s %s\n", l+":", strings.Join(ids, " "))
		}
	}
	if len(run.Timings) > 0 {
		keys := make([]string, 0, len(run.Timings))
		for k := range run.Timings {
			keys = append(keys, k)
		}
		sort.Slice(keys, func(i, j int) bool { return run.Timings[keys[i]] > run.Timings[keys[j]] })
		var parts []string
		for _, k := range keys {
			parts = append(parts, fmt.Sprintf("%s %s", k, time.Duration(run.Timings[k]*float64(time.Millisecond)).Round(10*time.Millisecond)))
		}
		fmt.Fprintf(w, "  time: %s\n", strings.Join(parts, ", "))
	}
	if c.MustFail > 0 {
		fmt.Fprintf(w, "RESULT: FAIL (%d MUST check(s) failed)\n", c.MustFail)
	} else {
		fmt.Fprintf(w, "RESULT: PASS (no MUST check failed)\n")
	}
}
