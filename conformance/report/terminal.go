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

var statusWord = map[Status]string{Pass: "PASS", Fail: "FAIL", Warn: "WARN", Skip: "SKIP", Inconclusive: "INCO"}
var statusColor = map[Status]string{Pass: "\x1b[32m", Fail: "\x1b[31m", Warn: "\x1b[33m", Skip: "\x1b[90m", Inconclusive: "\x1b[35m"}

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
			lines = []string{r.Message()}
		}
	case Inconclusive:
		lines = []string{"inconclusive: " + r.Message()}
	}
	if r.Attempts != nil && (p.Verbose || r.Status == Fail) {
		lines = append(lines, r.Attempts.String())
	}
	if !p.Verbose && len(lines) > 1 {
		lines = append(lines[:1:1], fmt.Sprintf("(+%d more in the report)", len(lines)-1))
	}
	for _, l := range lines {
		fmt.Fprintf(p.W, "%*s      ↳ %s\n", 2*width+3, "", oneLine(l))
	}
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// String is the one-line form for progress lines.
func (a Attempts) String() string {
	if a.DefectAt > 0 {
		return fmt.Sprintf("attempts: the defect showed at attempt %d of at most %d", a.DefectAt, a.Max)
	}
	return fmt.Sprintf("attempts: %d of at most %d (budget %s), the defect never showed", a.Count, a.Max,
		time.Duration(a.BudgetMS*float64(time.Millisecond)).Round(time.Second))
}

// WriteSummary prints the totals, the failed checks by level and where the time went.
func WriteSummary(w io.Writer, run *Run) {
	c := run.Counts()
	fmt.Fprintf(w, "\nMCP authorization conformance — %s (MCP %s%s)\n", run.Target, run.SpecVersion, versionNote(run))
	if !run.Evaluated() {
		WritePreflightFailure(w, run.Preflight)
		return
	}
	fmt.Fprintf(w, "%d checks: %d passed, %d failed, %d warnings, %d inconclusive, %d skipped — in %s\n", c.Total, c.Pass, c.Fail, c.Warn,
		c.Inconclusive, c.Skip, time.Duration(run.DurationMS*float64(time.Millisecond)).Round(10*time.Millisecond))
	if run.Design != nil {
		fmt.Fprintf(w, "  design: %s (%s)\n", run.Design.Kind, run.Design.Evidence)
	}
	if run.Mode != "" {
		fmt.Fprintf(w, "  mode: %s (%s)\n", run.Mode, run.ModeDetail)
	}
	if run.Browser != "" {
		fmt.Fprintf(w, "  browser: %s\n", run.Browser)
	}
	byLevel := map[catalogue.Level][]string{}
	var derived, inconclusive []string
	for _, r := range run.Results {
		switch {
		case r.Status == Fail && r.Derived:
			derived = append(derived, r.ID+"→"+failedLinks(r))
		case r.Status == Fail:
			byLevel[r.Level] = append(byLevel[r.Level], r.ID)
		case r.Status == Inconclusive:
			inconclusive = append(inconclusive, r.ID)
		}
	}
	for _, l := range []catalogue.Level{catalogue.LevelMust, catalogue.LevelShould, catalogue.LevelMay, catalogue.LevelInfo} {
		if ids := byLevel[l]; len(ids) > 0 {
			fmt.Fprintf(w, "  failed %-6s %s\n", l+":", strings.Join(ids, " "))
		}
	}
	if len(derived) > 0 {
		fmt.Fprintf(w, "  derived (graded by the rows named): %s\n", strings.Join(derived, " "))
	}
	if len(inconclusive) > 0 {
		fmt.Fprintf(w, "  inconclusive (a precondition was refused; see the report): %s\n", strings.Join(inconclusive, " "))
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
	if run.CPU != nil {
		fmt.Fprintf(w, "  cpu: %s (suite process %s, browser %s)\n", msDur(run.CPU.SuiteMS+run.CPU.BrowserMS), msDur(run.CPU.SuiteMS), msDur(run.CPU.BrowserMS))
	}
	if len(run.Flows) > 0 {
		keys := make([]string, 0, len(run.Flows))
		for k := range run.Flows {
			keys = append(keys, k)
		}
		sort.Slice(keys, func(i, j int) bool {
			if run.Flows[keys[i]] != run.Flows[keys[j]] {
				return run.Flows[keys[i]] > run.Flows[keys[j]]
			}
			return keys[i] < keys[j]
		})
		var parts []string
		for _, k := range keys {
			parts = append(parts, fmt.Sprintf("%d %s", run.Flows[k], k))
		}
		fmt.Fprintf(w, "  flows: %s\n", strings.Join(parts, ", "))
	}
	if c.MustFail > 0 {
		fmt.Fprintf(w, "RESULT: FAIL (%d MUST check(s) failed)\n", c.MustFail)
	} else {
		fmt.Fprintf(w, "RESULT: PASS (no MUST check failed)\n")
	}
}

func failedLinks(r Result) string {
	var ids []string
	for _, l := range r.Links {
		if l.Status == Fail {
			ids = append(ids, l.ID)
		}
	}
	return strings.Join(ids, ",")
}

// versionNote says how the MCP version was chosen, and how to change it.
func versionNote(run *Run) string {
	if run.SpecVersionSource == "default" {
		return ", assumed: the default; pass --spec-version 2025-06-18 or 2025-11-25 for servers implementing an older MCP version"
	}
	return ""
}

// WritePreflightFailure prints the failed gate step: what was seen, what to do.
func WritePreflightFailure(w io.Writer, p *Preflight) {
	st := p.Failed()
	if st == nil {
		return
	}
	fmt.Fprintf(w, "COULD NOT EVALUATE: the preflight step %q failed; no check was graded.\n", st.Name)
	fmt.Fprintf(w, "  seen: %s\n", oneLine(st.Detail))
	if st.Hint != "" {
		fmt.Fprintf(w, "  hint: %s\n", oneLine(st.Hint))
	}
	var passed []string
	for _, s := range p.Steps {
		if s.Status == Pass {
			passed = append(passed, s.Name)
		}
	}
	if len(passed) > 0 {
		fmt.Fprintf(w, "  steps that passed: %s\n", strings.Join(passed, ", "))
	}
	fmt.Fprintf(w, "RESULT: COULD NOT EVALUATE (exit status 3)\n")
}

func msDur(ms float64) time.Duration {
	return time.Duration(ms * float64(time.Millisecond)).Round(10 * time.Millisecond)
}
