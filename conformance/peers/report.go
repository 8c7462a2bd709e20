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
	Target      string   `json:"target"`
	SpecVersion string   `json:"specVersion"`
	DurationMS  float64  `json:"durationMs"`
	Results     []Result `json:"results"`
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
	// Reason is what made an inconclusive check inconclusive (the step and what the server answered).
	Reason string `json:"reason,omitempty"`
}

// Messages are what the suite said about the result, whatever its outcome.
func (r Result) Messages() []string {
	var m []string
	m = append(m, r.Failures...)
	m = append(m, r.Warnings...)
	if r.Reason != "" {
		m = append(m, r.Reason)
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
