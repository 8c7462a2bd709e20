package peers

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"regexp"
	"sort"
	"strings"
	"time"
)

// ResultFile is the name of the last run's summary in each peer's directory.
const ResultFile = "RESULT.md"

// exactVersion is a semantic version without range operators or tags.
var exactVersion = regexp.MustCompile(`^\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?$`)

// topLevelPackages reads the exact versions package.json pins ("name@version").
func topLevelPackages(path string) ([]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var pj struct {
		Dependencies map[string]string `json:"dependencies"`
	}
	if err := json.Unmarshal(b, &pj); err != nil {
		return nil, fmt.Errorf("parse %s: %w", path, err)
	}
	var out []string
	for name, v := range pj.Dependencies {
		if !exactVersion.MatchString(v) {
			return nil, fmt.Errorf("%s: %s@%s is not an exact version: pin it", path, name, v)
		}
		out = append(out, name+"@"+v)
	}
	sort.Strings(out)
	return out, nil
}

// WriteResult writes RESULT.md: what ran, the outcome counts, every check that did not pass with
// what the suite said and the expectation's justification, the skips by reason, and the
// differences from the expectation. Paths are repository-relative; nothing names this machine.
func WriteResult(w io.Writer, o *Outcome, e *Expectation, diffs []Difference, now time.Time) error {
	p := o.Peer
	var b strings.Builder
	fmt.Fprintf(&b, "# mcp-auth-conformance against %s\n\n", p.Title)
	fmt.Fprintf(&b, "Peer: %s; %s. Node.js %s.\n", backticked(o.Versions), p.Wiring, o.Node)
	fmt.Fprintf(&b, "Upstream: this repository's mock Auth0, `mockauth0 %s`.\n", shellJoin(o.MockArgs))
	fmt.Fprintf(&b, "Suite: `mcp-auth-conformance %s`.\n\n", shellJoin(o.SuiteArgs))
	fmt.Fprintf(&b, "Reproduce: `make conformance-peers PEERS=%s` (checks every verdict against `conformance/peers/%s/%s`;\n", p.Name, p.Name, ExpectationFile)
	fmt.Fprintf(&b, "`PEERS_WRITE_RESULT=1` rewrites this file). Generated %s; suite exit status %d; the suite ran %s\n",
		now.UTC().Format("2006-01-02T15:04Z"), o.ExitStatus, o.Suite.Round(time.Second))
	fmt.Fprintf(&b, "(starting the mock and the peer %s).\n\n", o.Start.Round(100*time.Millisecond))

	if d := o.Report.Design; d != nil && d.Kind != "" {
		fmt.Fprintf(&b, "Design the suite detected: %s (%s).\n\n", d.Kind, oneLine(d.Evidence, 300))
	}
	c := o.Report.Counts()
	truth := map[string]int{}
	for _, x := range e.Checks {
		truth[x.Outcome]++
	}
	fmt.Fprintf(&b, "| outcome | the suite said | true outcome (`%s`) |\n|---|---|---|\n", ExpectationFile)
	for _, s := range Outcomes {
		fmt.Fprintf(&b, "| %s | %d | %d |\n", s, c[s], truth[s])
	}
	fmt.Fprintf(&b, "| total | %d | %d |\n\n", len(o.Report.Results), len(e.Checks))

	if len(diffs) == 0 {
		fmt.Fprintf(&b, "Every verdict is the one `%s` expects.\n\n", ExpectationFile)
	} else {
		fmt.Fprintf(&b, "## Verdicts that differ from `%s`\n\n", ExpectationFile)
		for _, d := range diffs {
			fmt.Fprintf(&b, "- %s\n", oneLine(d.String(), 600))
		}
		b.WriteString("\n")
	}

	var known []string
	for _, x := range e.Checks {
		if x.Suite != "" {
			known = append(known, fmt.Sprintf("- **%s**: the suite says %s, the true outcome is %s — %s", x.ID, x.Suite, x.Outcome, x.Bug))
		}
	}
	if len(known) > 0 {
		b.WriteString("## Known suite bugs on this peer\n\n")
		b.WriteString(strings.Join(known, "\n") + "\n\n")
	}

	for _, status := range []string{Fail, Inconclusive, Warn} {
		var lines []string
		for _, r := range o.Report.Results {
			if r.Status != status {
				continue
			}
			line := fmt.Sprintf("- **%s** (%s): %s", r.ID, r.Level, oneLine(strings.Join(r.Messages(), " / "), 400))
			if x, ok := e.Lookup(r.ID); ok && x.Why != "" && x.Suite == "" {
				line += "\n  - expected: " + x.Why
			}
			lines = append(lines, line)
		}
		if len(lines) > 0 {
			fmt.Fprintf(&b, "## %s (%d)\n\n%s\n\n", heading(status), len(lines), strings.Join(lines, "\n"))
		}
	}

	skips := map[string][]string{}
	var reasons []string
	for _, r := range o.Report.Results {
		if r.Status != Skip {
			continue
		}
		reason := r.SkipReason
		if i := strings.Index(reason, ":"); i > 0 {
			reason = reason[:i]
		}
		if _, ok := skips[reason]; !ok {
			reasons = append(reasons, reason)
		}
		skips[reason] = append(skips[reason], r.ID)
	}
	if len(reasons) > 0 {
		sort.SliceStable(reasons, func(i, j int) bool { return len(skips[reasons[i]]) > len(skips[reasons[j]]) })
		fmt.Fprintf(&b, "## Skipped (%d), by reason\n\n", c[Skip])
		for _, r := range reasons {
			fmt.Fprintf(&b, "- %s: %s\n", r, strings.Join(skips[r], " "))
		}
		b.WriteString("\n")
	}
	if o.Summary != "" {
		fmt.Fprintf(&b, "## The suite's summary\n\n```\n%s\n```\n", o.Summary)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// shellJoin quotes the arguments that need it, so that the line can be pasted into a shell.
func shellJoin(args []string) string {
	out := make([]string, len(args))
	for i, a := range args {
		if a == "" || strings.ContainsAny(a, " \t'\"$&|;<>*?()[]{}") {
			a = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
		out[i] = a
	}
	return strings.Join(out, " ")
}

func heading(status string) string {
	switch status {
	case Fail:
		return "Failed"
	case Inconclusive:
		return "Inconclusive"
	default:
		return "Warnings"
	}
}

func backticked(xs []string) string {
	out := make([]string, len(xs))
	for i, x := range xs {
		out[i] = "`" + x + "`"
	}
	return strings.Join(out, ", ")
}

func oneLine(s string, max int) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > max {
		s = s[:max] + "…"
	}
	return s
}
