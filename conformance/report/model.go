// Package report turns check results into what people and tools read: JUnit XML for CI, JSON for
// tools, a self-contained HTML page (a matrix of checks by section and level, with the evidence
// and screenshots of each check) and the terminal's progress lines and summary.
package report

import (
	"sort"
	"time"

	"github.com/cnpg-mcp/cnpg-mcp/conformance/catalogue"
	"github.com/cnpg-mcp/cnpg-mcp/conformance/evidence"
)

// Status of a check.
type Status string

// Statuses. Warn is a pass with a reported deviation (e.g. HTTP 401 instead of 400 for
// invalid_grant, or a lenient-but-unusual choice the catalogue says to report).
const (
	Pass Status = "pass"
	Fail Status = "fail"
	Warn Status = "warn"
	Skip Status = "skip"
)

// Result is one check's outcome.
type Result struct {
	ID          string            `json:"id"`
	Title       string            `json:"title"`
	Section     string            `json:"section"`
	Area        string            `json:"area"`
	Level       catalogue.Level   `json:"level"`
	LevelText   string            `json:"levelText"`
	Requirement string            `json:"requirement"`
	Status      Status            `json:"status"`
	Failures    []string          `json:"failures,omitempty"`
	Warnings    []string          `json:"warnings,omitempty"`
	SkipReason  string            `json:"skipReason,omitempty"`
	Started     time.Time         `json:"started"`
	DurationMS  float64           `json:"durationMs"`
	Evidence    evidence.Snapshot `json:"evidence"`
}

// Duration is the check's wall time.
func (r Result) Duration() time.Duration {
	return time.Duration(r.DurationMS * float64(time.Millisecond))
}

// Message is the main line to show for a non-passing result.
func (r Result) Message() string {
	switch r.Status {
	case Fail:
		if len(r.Failures) > 0 {
			return r.Failures[0]
		}
	case Warn:
		if len(r.Warnings) > 0 {
			return r.Warnings[0]
		}
	case Skip:
		return r.SkipReason
	}
	return ""
}

// Run is a whole suite run.
type Run struct {
	Tool        string    `json:"tool"`
	Target      string    `json:"target"`
	SpecVersion string    `json:"specVersion"`
	LabelFilter string    `json:"labelFilter,omitempty"`
	Started     time.Time `json:"started"`
	DurationMS  float64   `json:"durationMs"`
	Results     []Result  `json:"results"`
	// Timings break the wall time down (browser start, discovery, browser flows, …).
	Timings map[string]float64 `json:"timingsMs,omitempty"`
}

// Counts tallies results by status.
type Counts struct {
	Total, Pass, Fail, Warn, Skip int
	// MustFail counts failed MUST checks: any makes the run fail.
	MustFail int
}

// Counts tallies the run.
func (r *Run) Counts() Counts {
	var c Counts
	for _, res := range r.Results {
		c.Total++
		switch res.Status {
		case Pass:
			c.Pass++
		case Fail:
			c.Fail++
			if res.Level == catalogue.LevelMust {
				c.MustFail++
			}
		case Warn:
			c.Warn++
		case Skip:
			c.Skip++
		}
	}
	return c
}

// Passed reports whether no MUST check failed.
func (r *Run) Passed() bool { return r.Counts().MustFail == 0 }

// SortByCatalogue orders results as the catalogue lists the checks.
func (r *Run) SortByCatalogue() {
	order := map[string]int{}
	for i, e := range catalogue.All() {
		order[e.ID] = i
	}
	sort.SliceStable(r.Results, func(i, j int) bool { return order[r.Results[i].ID] < order[r.Results[j].ID] })
}
