package peers

import (
	"encoding/json"
	"fmt"
	"os"
)

// Outcomes a check can end with. Inconclusive: a precondition step failed, so the check's own
// requirement could not be evaluated.
const (
	Pass         = "pass"
	Fail         = "fail"
	Warn         = "warn"
	Skip         = "skip"
	Inconclusive = "inconclusive"
)

// Outcomes lists every outcome an expectation may name.
var Outcomes = []string{Pass, Fail, Warn, Skip, Inconclusive}

// Report is the part of the suite's report.json the comparison reads. It is decoded leniently (a
// field the suite adds later is ignored) so that only the per-ID outcome ties the two together.
type Report struct {
	Target      string     `json:"target"`
	SpecVersion string     `json:"specVersion"`
	DurationMS  float64    `json:"durationMs"`
	Preflight   *Preflight `json:"preflight,omitempty"`
	// Design is what the suite detected the target to be (proxy, own-as, pass-through, …).
	Design *struct {
		Kind     string `json:"kind"`
		Evidence string `json:"evidence,omitempty"`
	} `json:"design,omitempty"`
	Results []Result `json:"results"`
}

// Preflight is the suite's gate before any check: when it fails, nothing is graded (exit status 3).
type Preflight struct {
	Passed bool `json:"passed"`
	Steps  []struct {
		Name   string `json:"name"`
		Status string `json:"status"`
		Detail string `json:"detail,omitempty"`
		Hint   string `json:"hint,omitempty"`
	} `json:"steps"`
}

// Failure says which preflight step failed, what the server did and the hint.
func (p *Preflight) Failure() string {
	for _, s := range p.Steps {
		if s.Status == Fail {
			msg := fmt.Sprintf("preflight step %q failed: %s", s.Name, s.Detail)
			if s.Hint != "" {
				msg += " (hint: " + s.Hint + ")"
			}
			return msg
		}
	}
	return "the preflight failed"
}

// Result is one check's outcome in report.json.
type Result struct {
	ID         string   `json:"id"`
	Title      string   `json:"title"`
	Level      string   `json:"level"`
	Status     string   `json:"status"`
	Failures   []string `json:"failures,omitempty"`
	Warnings   []string `json:"warnings,omitempty"`
	SkipReason string   `json:"skipReason,omitempty"`
	// Inconclusive says which precondition step failed, what the server answered and why that is
	// not a verdict on the check.
	Inconclusive *InconclusiveDetail `json:"inconclusive,omitempty"`
}

// InconclusiveDetail is the suite's account of an inconclusive check.
type InconclusiveDetail struct {
	Step   string `json:"step"`
	Answer string `json:"answer"`
	Why    string `json:"why"`
	// Owner is the row that grades the refusal when it is itself a violation.
	Owner string `json:"owner,omitempty"`
}

// Messages are what the suite said about the result, whatever its outcome.
func (r Result) Messages() []string {
	var m []string
	m = append(m, r.Failures...)
	m = append(m, r.Warnings...)
	if i := r.Inconclusive; i != nil {
		msg := fmt.Sprintf("%s: %s — %s", i.Step, i.Answer, i.Why)
		if i.Owner != "" {
			msg += " (graded by " + i.Owner + ")"
		}
		m = append(m, msg)
	}
	if r.SkipReason != "" {
		m = append(m, r.SkipReason)
	}
	return m
}

// ReadReport reads a report.json.
func ReadReport(path string) (*Report, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read the suite's report: %w", err)
	}
	var r Report
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("parse the suite's report %s: %w", path, err)
	}
	if r.Preflight != nil && !r.Preflight.Passed {
		return nil, fmt.Errorf("the suite could not evaluate the peer: %s", r.Preflight.Failure())
	}
	if len(r.Results) == 0 {
		return nil, fmt.Errorf("the suite's report %s has no results", path)
	}
	return &r, nil
}

// Counts tallies the results by outcome.
func (r *Report) Counts() map[string]int {
	c := map[string]int{}
	for _, res := range r.Results {
		c[res.Status]++
	}
	return c
}
