// Package report turns check results into what people and tools read: JUnit XML for CI, JSON for
// tools, a self-contained HTML page (a matrix of checks by section and level, with the evidence
// and screenshots of each check) and the terminal's progress lines and summary.
package report

import (
	"sort"
	"strings"
	"time"

	"github.com/cnpg-mcp/cnpg-mcp/conformance/catalogue"
	"github.com/cnpg-mcp/cnpg-mcp/conformance/evidence"
)

// Status of a check.
type Status string

// Statuses. Only Fail is a verdict against the target: the target violated the check's own
// requirement. Warn is a pass with a reported deviation (e.g. HTTP 401 instead of 400 for
// invalid_grant, or a lenient-but-unusual choice the catalogue says to report). Skip means the
// check's need was not met (SkipFlag names the flag that meets it) or the row does not apply to
// the target's design or MCP version. Inconclusive means a precondition step was refused or
// failed (Inconclusive says which, what the server answered and why that is not a verdict on
// this ID); when that refusal is itself a violation, the row that owns it fails, once.
const (
	Pass         Status = "pass"
	Fail         Status = "fail"
	Warn         Status = "warn"
	Skip         Status = "skip"
	Inconclusive Status = "inconclusive"
)

// InconclusiveStep is why a check could not reach a verdict.
type InconclusiveStep struct {
	// Step is the precondition the suite was carrying out, e.g. "register a client with the
	// redirect URIs [http://127.0.0.1:…/cb https://conformance-client.example/cb]".
	Step string `json:"step"`
	// Answer is what the server answered, e.g. "HTTP 400 error=invalid_redirect_uri (…)".
	Answer string `json:"answer"`
	// Why says why this is not a verdict on the check's ID.
	Why string `json:"why"`
	// Owner is the row that grades the refused step when the refusal is itself a violation
	// (it fails there, once); empty when the refusal is an allowed policy.
	Owner string `json:"owner,omitempty"`
}

// Link is a row a derived row (section D, the client-interop rows) is graded by.
type Link struct {
	ID     string          `json:"id"`
	Level  catalogue.Level `json:"level"`
	Status Status          `json:"status"`
}

// Attempts reports a repeated check (the concurrency rows repeat their race until the defect
// shows or the budget ends).
type Attempts struct {
	// Count is how many attempts ran; Max the bound; BudgetMS the time budget.
	Count    int     `json:"count"`
	Max      int     `json:"max"`
	BudgetMS float64 `json:"budgetMs"`
	// DefectAt is the attempt (1-based) that showed the defect; 0 when none did.
	DefectAt int `json:"defectAt,omitempty"`
}

// Result is one check's outcome.
type Result struct {
	ID          string          `json:"id"`
	Title       string          `json:"title"`
	Section     string          `json:"section"`
	Area        string          `json:"area"`
	Level       catalogue.Level `json:"level"`
	LevelText   string          `json:"levelText"`
	Requirement string          `json:"requirement"`
	Status      Status          `json:"status"`
	Failures    []string        `json:"failures,omitempty"`
	Warnings    []string        `json:"warnings,omitempty"`
	SkipReason  string          `json:"skipReason,omitempty"`
	// SkipFlag names the flag(s) that would meet the check's need, when a flag can.
	SkipFlag string `json:"skipFlag,omitempty"`
	// Inconclusive is set when Status is Inconclusive.
	Inconclusive *InconclusiveStep `json:"inconclusive,omitempty"`
	// Derived is set on rows graded by other rows (section D, client-interop rows): their
	// failures are those rows' failures and are reported there, not repeated here.
	Derived bool   `json:"derived,omitempty"`
	Links   []Link `json:"links,omitempty"`
	// Attempts is set on repeated (concurrency) checks.
	Attempts   *Attempts         `json:"attempts,omitempty"`
	Started    time.Time         `json:"started"`
	DurationMS float64           `json:"durationMs"`
	Evidence   evidence.Snapshot `json:"evidence"`
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
		if r.SkipFlag != "" && !strings.Contains(r.SkipReason, r.SkipFlag) {
			return r.SkipReason + " (set " + r.SkipFlag + ")"
		}
		return r.SkipReason
	case Inconclusive:
		if r.Inconclusive != nil {
			return r.Inconclusive.String()
		}
	}
	return ""
}

// String is the one-line form: the step, the answer, why it is no verdict, and the owner.
func (i InconclusiveStep) String() string {
	s := i.Step
	if i.Answer != "" {
		s += ": " + i.Answer
	}
	if i.Why != "" {
		s += " — " + i.Why
	}
	if i.Owner != "" {
		s += " (graded by " + i.Owner + ")"
	}
	return s
}

// Run is a whole suite run.
type Run struct {
	Tool        string `json:"tool"`
	Target      string `json:"target"`
	SpecVersion string `json:"specVersion"`
	// SpecVersionSource says where SpecVersion came from: "default" or "--spec-version".
	SpecVersionSource string `json:"specVersionSource,omitempty"`
	// Design is the target's detected design (see Design*), with the evidence for it.
	Design *Design `json:"design,omitempty"`
	// Preflight is the gate run before any check; when it failed, Results is empty.
	Preflight   *Preflight `json:"preflight,omitempty"`
	LabelFilter string     `json:"labelFilter,omitempty"`
	Started     time.Time  `json:"started"`
	DurationMS  float64    `json:"durationMs"`
	Results     []Result   `json:"results"`
	// Timings break the wall time down (browser start, discovery, browser flows, …).
	Timings map[string]float64 `json:"timingsMs,omitempty"`
	// CPU is the processor time the run used (user + system), when measured.
	CPU *CPU `json:"cpu,omitempty"`
	// Mode says how the run drove its flows: "fast" (one login; flows that are only a
	// precondition replayed over HTTP with the logged-in browser's cookies; checks side by side)
	// or "strict (--fresh-contexts)" (every browser flow in a fresh context, one check at a time).
	Mode string `json:"mode,omitempty"`
	// ModeDetail says the same in a sentence, with what happened (e.g. replays stopped, and why).
	ModeDetail string `json:"modeDetail,omitempty"`
	// Browser is the browser the run drove: its binary (or DevTools URL) and version.
	Browser string `json:"browser,omitempty"`
	// Flows counts the authorization flows by how they ran (replayed over HTTP, in the logged-in
	// browser, in a fresh browser context, in a check's own browser), and notable events.
	Flows map[string]int `json:"flows,omitempty"`
}

// CPU is a run's processor time in milliseconds (user + system).
type CPU struct {
	// SuiteMS is the suite's own process (with an in-process target, the target too).
	SuiteMS float64 `json:"suiteMs"`
	// BrowserMS is Chromium's processes (0 with --browser-url: the browser runs elsewhere).
	BrowserMS float64 `json:"browserMs"`
}

// Designs the suite tells apart (the rows that apply differ).
const (
	// DesignProxy: the server is its own authorization server with its own consent page and
	// sends the user on to an upstream identity provider (an OAuth proxy).
	DesignProxy = "proxy"
	// DesignOwnAS: the server is its own authorization server and logs the user in itself (no
	// upstream leg): the upstream-leg rows do not apply.
	DesignOwnAS = "own-as"
	// DesignPassThrough: the server sends each client to the upstream under the client's own
	// registration; the upstream is the client's authorization server and its tokens are the
	// client's tokens: the proxy-consent and upstream-leg rows do not apply.
	DesignPassThrough = "pass-through"
	// DesignStaticNoConsent: the server sends every client to the upstream under one static
	// client ID without a consent page of its own: the confused-deputy hole (PXY-01 fails;
	// the consent rows are inconclusive, graded by PXY-01).
	DesignStaticNoConsent = "static-client-without-consent"
)

// Design is what the suite learnt about how the target authorizes.
type Design struct {
	Kind string `json:"kind"`
	// Evidence is one line on what was seen (where the authorization request led).
	Evidence string `json:"evidence"`
	// Upstream is the upstream's origin, when there is one.
	Upstream string `json:"upstream,omitempty"`
}

// Preflight is the gate before any check: each step the suite must get through before a
// verdict can mean anything. When a step fails the run reports it and grades nothing.
type Preflight struct {
	Passed bool            `json:"passed"`
	Steps  []PreflightStep `json:"steps"`
	// DurationMS is the gate's wall time.
	DurationMS float64 `json:"durationMs"`
}

// PreflightStep is one step of the gate.
type PreflightStep struct {
	// Name: "reachability", "401 challenge", "protected-resource metadata",
	// "authorization-server metadata", "client registration", "browser authorization",
	// "authorized initialize".
	Name string `json:"name"`
	// Status is pass, fail or skip (not needed, e.g. no registration endpoint with CIMD).
	Status Status `json:"status"`
	// Detail is what was seen (status, URL, error); Hint what to do when it failed.
	Detail   string            `json:"detail"`
	Hint     string            `json:"hint,omitempty"`
	Evidence evidence.Snapshot `json:"evidence"`
}

// Failed returns the failed step (nil when the gate passed).
func (p *Preflight) Failed() *PreflightStep {
	if p == nil {
		return nil
	}
	for i := range p.Steps {
		if p.Steps[i].Status == Fail {
			return &p.Steps[i]
		}
	}
	return nil
}

// Counts tallies results by status.
type Counts struct {
	Total, Pass, Fail, Warn, Skip, Inconclusive int
	// MustFail counts failed MUST checks: any makes the run fail. A derived row is counted only
	// when none of the rows it is graded by is a failed MUST row (that one is counted already).
	MustFail int
	// DerivedFail counts failed derived rows.
	DerivedFail int
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
			if res.Derived {
				c.DerivedFail++
			}
			if res.Level == catalogue.LevelMust && !(res.Derived && res.linkFailedAt(catalogue.LevelMust)) {
				c.MustFail++
			}
		case Warn:
			c.Warn++
		case Skip:
			c.Skip++
		case Inconclusive:
			c.Inconclusive++
		}
	}
	return c
}

func (r Result) linkFailedAt(l catalogue.Level) bool {
	for _, k := range r.Links {
		if k.Status == Fail && k.Level == l {
			return true
		}
	}
	return false
}

// Evaluated reports whether the run got past the preflight gate (checks were graded).
func (r *Run) Evaluated() bool { return r.Preflight == nil || r.Preflight.Passed }

// Passed reports whether the run was evaluated and no MUST check failed.
func (r *Run) Passed() bool { return r.Evaluated() && r.Counts().MustFail == 0 }

// SortByCatalogue orders results as the catalogue lists the checks.
func (r *Run) SortByCatalogue() {
	order := map[string]int{}
	for i, e := range catalogue.All() {
		order[e.ID] = i
	}
	sort.SliceStable(r.Results, func(i, j int) bool { return order[r.Results[i].ID] < order[r.Results[j].ID] })
}
