package report_test

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cnpg-mcp/cnpg-mcp/conformance/catalogue"
	"github.com/cnpg-mcp/cnpg-mcp/conformance/evidence"
	"github.com/cnpg-mcp/cnpg-mcp/conformance/report"
)

func sampleRun() *report.Run {
	mk := func(id string, st report.Status) report.Result {
		e := catalogue.MustLookup(id)
		r := report.Result{ID: id, Title: e.Title(), Section: e.Section, Area: e.Area, Level: e.Level, LevelText: e.LevelText,
			Requirement: e.Requirement, Status: st, DurationMS: 12.5}
		switch st {
		case report.Fail:
			r.Failures = []string{"the same code was redeemed twice <script>"}
			r.Evidence.Screenshots = []evidence.Screenshot{{Label: "consent", PNG: []byte{0x89, 'P', 'N', 'G'}}}
			r.Evidence.Exchanges = []evidence.Exchange{{Label: "redeem", Request: evidence.Request{Method: "POST", URL: "http://as/token"},
				Response: &evidence.Response{Status: 200, Body: `{"access_token":"‹elided›"}`}}}
		case report.Warn:
			r.Warnings = []string{"401 instead of 400"}
		case report.Skip:
			r.SkipReason = "needs the upstream log"
		}
		return r
	}
	return &report.Run{Tool: "mcp-auth-conformance", Target: "http://127.0.0.1:1/mcp", SpecVersion: "2026-07-28", Started: time.Unix(0, 0),
		DurationMS: 1234, Results: []report.Result{mk("PRM-01", report.Pass), mk("TOK-04", report.Fail), mk("PKCE-04", report.Warn),
			mk("PKCE-07", report.Skip), mk("PRM-05", report.Fail)}, Timings: map[string]float64{"browser flows": 800}}
}

func TestWriters(t *testing.T) {
	run := sampleRun()
	c := run.Counts()
	if c.Total != 5 || c.Fail != 2 || c.MustFail != 1 || c.Warn != 1 || c.Skip != 1 || run.Passed() {
		t.Fatalf("counts %+v passed=%v", c, run.Passed())
	}
	dir := t.TempDir()
	if err := report.WriteDir(dir, run); err != nil {
		t.Fatal(err)
	}
	var suites struct {
		Tests    int `xml:"tests,attr"`
		Failures int `xml:"failures,attr"`
		Skipped  int `xml:"skipped,attr"`
	}
	b, _ := os.ReadFile(filepath.Join(dir, report.JUnitFile))
	if err := xml.Unmarshal(b, &suites); err != nil || suites.Tests != 5 || suites.Failures != 2 || suites.Skipped != 1 {
		t.Fatalf("junit: %v %+v", err, suites)
	}
	var back report.Run
	b, _ = os.ReadFile(filepath.Join(dir, report.JSONFile))
	if err := json.Unmarshal(b, &back); err != nil || len(back.Results) != 5 {
		t.Fatalf("json: %v", err)
	}
	h, _ := os.ReadFile(filepath.Join(dir, report.HTMLFile))
	page := string(h)
	for _, want := range []string{`href="#check-TOK-04"`, "data:image/png;base64,", "&lt;script&gt;", "FAIL — 1 MUST check(s) failed", "needs the upstream log"} {
		if !strings.Contains(page, want) {
			t.Errorf("the HTML report lacks %q", want)
		}
	}
	if strings.Contains(page, "redeemed twice <script>") {
		t.Error("the HTML report does not escape messages")
	}
	if strings.Contains(page, "src=\"http") || strings.Contains(page, "<link ") {
		t.Error("the HTML report must be self-contained")
	}
	var sum bytes.Buffer
	report.WriteSummary(&sum, run)
	if !strings.Contains(sum.String(), "failed MUST:  TOK-04") || !strings.Contains(sum.String(), "RESULT: FAIL") {
		t.Errorf("summary:\n%s", sum.String())
	}
	var prog bytes.Buffer
	p := &report.Progress{W: &prog, Total: 5}
	for _, r := range run.Results {
		p.Line(r)
	}
	if n := strings.Count(prog.String(), "\n["); n != 4 || !strings.Contains(prog.String(), "FAIL MUST") {
		t.Errorf("progress:\n%s", prog.String())
	}
}

// TestOutcomes: inconclusive results say the step, the answer, why and the owner; derived rows
// link to their owners without repeating their messages and a derived MUST failure whose owner
// is a failed MUST row is counted once; the attempts of a race row are shown.
func TestOutcomes(t *testing.T) {
	run := sampleRun()
	az03 := report.Result{ID: "AZ-03", Level: "MUST", Status: report.Inconclusive, Inconclusive: &report.InconclusiveStep{
		Step: "register a client (redirect_uris [https://c.example/cb])", Answer: "HTTP 400 error=invalid_redirect_uri", Why: "a registration policy", Owner: ""}}
	bcp08 := report.Result{ID: "BCP-08", Level: "MUST", Status: report.Fail, Derived: true, Failures: []string{"TOK-04 failed (see TOK-04)"},
		Links: []report.Link{{ID: "AZ-09", Level: "MUST", Status: report.Pass}, {ID: "TOK-04", Level: "MUST", Status: report.Fail}}}
	rt10 := report.Result{ID: "RT-10", Level: "info", Status: report.Pass, Attempts: &report.Attempts{Count: 6, Max: 6, BudgetMS: 10000}}
	run.Results = append(run.Results, az03, bcp08, rt10)
	run.SpecVersionSource = "default"
	c := run.Counts()
	if c.Inconclusive != 1 || c.MustFail != 1 || c.DerivedFail != 1 {
		t.Fatalf("counts %+v", c)
	}
	if m := az03.Message(); !strings.Contains(m, "register a client") || !strings.Contains(m, "invalid_redirect_uri") || !strings.Contains(m, "policy") {
		t.Errorf("inconclusive message %q", m)
	}
	var sum bytes.Buffer
	report.WriteSummary(&sum, run)
	for _, want := range []string{"1 inconclusive", "BCP-08→TOK-04", "inconclusive (a precondition was refused; see the report): AZ-03", "pass --spec-version"} {
		if !strings.Contains(sum.String(), want) {
			t.Errorf("summary lacks %q:\n%s", want, sum.String())
		}
	}
	var prog bytes.Buffer
	p := &report.Progress{W: &prog, Total: 3, Verbose: true}
	for _, r := range []report.Result{az03, bcp08, rt10} {
		p.Line(r)
	}
	for _, want := range []string{"INCO MUST   AZ-03", "↳ inconclusive: register a client", "attempts: 6 of at most 6"} {
		if !strings.Contains(prog.String(), want) {
			t.Errorf("progress lacks %q:\n%s", want, prog.String())
		}
	}
	var h bytes.Buffer
	if err := report.WriteHTML(&h, run); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"why this is no verdict: a registration policy", `href="#check-TOK-04">TOK-04`, "assumed by default"} {
		if !strings.Contains(h.String(), want) {
			t.Errorf("the HTML report lacks %q", want)
		}
	}
}

// TestPreflightFailure: a run stopped at the gate is not evaluated, names the failed step with its
// hint, and is not a pass.
func TestPreflightFailure(t *testing.T) {
	run := &report.Run{Target: "http://127.0.0.1:1/mcp", SpecVersion: "2026-07-28", Preflight: &report.Preflight{Steps: []report.PreflightStep{
		{Name: "reachability", Status: report.Fail, Detail: "connection refused", Hint: "check --target"}}}}
	if run.Evaluated() || run.Passed() {
		t.Fatal("a run stopped at the preflight must be neither evaluated nor passed")
	}
	var sum bytes.Buffer
	report.WriteSummary(&sum, run)
	for _, want := range []string{`COULD NOT EVALUATE: the preflight step "reachability" failed`, "seen: connection refused", "hint: check --target", "exit status 3"} {
		if !strings.Contains(sum.String(), want) {
			t.Errorf("summary lacks %q:\n%s", want, sum.String())
		}
	}
	var h bytes.Buffer
	if err := report.WriteHTML(&h, run); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(h.String(), "COULD NOT EVALUATE") || strings.Contains(h.String(), "PASS — no MUST") {
		t.Error("the HTML report does not show the failed preflight")
	}
}

// TestMode: the terminal summary, report.json and the HTML page say which mode ran (fast or the
// strict --fresh-contexts), with which browser, and the run's processor time.
func TestMode(t *testing.T) {
	run := sampleRun()
	run.Mode, run.ModeDetail = "fast", "one login; flows that are only a precondition replayed over HTTP"
	run.Browser = "/usr/lib/chromium/chromium-headless-shell (HeadlessChrome/156)"
	run.CPU = &report.CPU{SuiteMS: 1500, BrowserMS: 2500}
	var out bytes.Buffer
	report.WriteSummary(&out, run)
	for _, want := range []string{"mode: fast (one login", "browser: /usr/lib/chromium/chromium-headless-shell", "cpu: 4s (suite process 1.5s, browser 2.5s)"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("the summary does not say %q:\n%s", want, out.String())
		}
	}
	dir := t.TempDir()
	if err := report.WriteDir(dir, run); err != nil {
		t.Fatal(err)
	}
	var back report.Run
	b, _ := os.ReadFile(filepath.Join(dir, report.JSONFile))
	if err := json.Unmarshal(b, &back); err != nil || back.Mode != "fast" || back.ModeDetail == "" || back.Browser == "" || back.CPU == nil {
		t.Errorf("report.json: %v mode=%q detail=%q browser=%q cpu=%v", err, back.Mode, back.ModeDetail, back.Browser, back.CPU)
	}
	h, _ := os.ReadFile(filepath.Join(dir, report.HTMLFile))
	if !strings.Contains(string(h), "mode: fast") || !strings.Contains(string(h), "chromium-headless-shell") {
		t.Errorf("the HTML page does not name the mode and the browser")
	}
}
