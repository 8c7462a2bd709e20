package peers

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func writeExpectation(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), ExpectationFile)
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadExpectationRefusesWhatCannotBeChecked(t *testing.T) {
	cases := map[string]string{
		"unknown field":           "peer: x\nchecks:\n- {id: A-1, outcome: pass, note: hi}\n",
		"not one of":              "peer: x\nchecks:\n- {id: A-1, outcome: passed}\n",
		"listed twice":            "peer: x\nchecks:\n- {id: A-1, outcome: pass}\n- {id: A-1, outcome: pass}\n",
		"a fail needs `why`":      "peer: x\nchecks:\n- {id: A-1, outcome: fail}\n",
		"a warn needs `why`":      "peer: x\nchecks:\n- {id: A-1, outcome: warn, why: \" \"}\n",
		"inconclusive needs":      "peer: x\nchecks:\n- {id: A-1, outcome: inconclusive}\n",
		"needs `bug`":             "peer: x\nchecks:\n- {id: A-1, outcome: pass, suite: fail}\n",
		"suite equals outcome":    "peer: x\nchecks:\n- {id: A-1, outcome: pass, suite: pass, bug: b}\n",
		"`bug` without `suite`":   "peer: x\nchecks:\n- {id: A-1, outcome: pass, bug: b}\n",
		"suite \"broken\" is not": "peer: x\nchecks:\n- {id: A-1, outcome: pass, suite: broken, bug: b}\n",
		"no id":                   "peer: x\nchecks:\n- {outcome: pass}\n",
	}
	for want, body := range cases {
		_, err := LoadExpectation(writeExpectation(t, body))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: want an error containing %q, got %v", body, want, err)
		}
	}
	e, err := LoadExpectation(writeExpectation(t, "peer: x\nchecks:\n"+
		"- {id: A-1, outcome: pass}\n- {id: A-2, outcome: fail, why: it did X}\n"+
		"- {id: A-3, outcome: inconclusive, why: DCR refused}\n- {id: A-4, outcome: pass, suite: fail, bug: wrong cause}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if missing, unknown := e.Covers([]string{"A-1", "A-2", "A-3", "A-5"}); strings.Join(missing, ",") != "A-5" || strings.Join(unknown, ",") != "A-4" {
		t.Errorf("Covers: missing %v, unknown %v", missing, unknown)
	}
}

func TestCompare(t *testing.T) {
	e := &Expectation{Peer: "x", Checks: []Expected{
		{ID: "A-1", Outcome: Pass},
		{ID: "A-2", Outcome: Fail, Why: "the server accepted a reused code"},
		{ID: "A-3", Outcome: Pass, Suite: Fail, Bug: "blames the wrong row"},
		{ID: "A-4", Outcome: Inconclusive, Why: "DCR refused the https redirect by policy"},
		{ID: "A-5", Outcome: Pass, Suite: Fail, Bug: "fixed soon"},
		{ID: "A-6", Outcome: Skip},
	}}
	r := &Report{Results: []Result{
		{ID: "A-1", Status: Pass},
		{ID: "A-2", Status: Pass},                                    // a defect no longer found
		{ID: "A-3", Status: Fail, Failures: []string{"x"}},           // the known bug: accepted
		{ID: "A-4", Status: Fail, Failures: []string{"DCR refused"}}, // a setup step graded as a failure
		{ID: "A-5", Status: Pass},                                    // the bug was fixed
		{ID: "A-7", Status: Warn, Warnings: []string{"a new row"}},   // not in the expectation
	}}
	diffs := Compare(e, r)
	var got []string
	for _, d := range diffs {
		got = append(got, d.String())
	}
	want := []string{
		"A-2: expected fail (the server accepted a reused code), the suite said pass: ",
		"A-4: expected inconclusive (DCR refused the https redirect by policy), the suite said fail: DCR refused",
		"A-5: the suite now says pass, the true outcome (known bug: fixed soon): remove `suite` and `bug` from the entry",
		"A-7: new check, warn (a new row): verify it by hand and add it to expected.yaml",
		"A-6: expected skip, but the report has no such check",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("differences:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// The same report against an expectation it matches: no difference.
	match := &Expectation{Checks: []Expected{{ID: "A-1", Outcome: Pass}}}
	if d := Compare(match, &Report{Results: []Result{{ID: "A-1", Status: Pass}}}); len(d) != 0 {
		t.Fatalf("a matching report: %v", d)
	}
}

func TestSummaryDropsTheReportPath(t *testing.T) {
	out := "[1/1] PASS ...\nMCP authorization conformance — http://localhost:1/mcp (MCP 2026-07-28)\n1 checks: 1 passed\nRESULT: PASS\nreports: /somewhere/report/{junit.xml,report.json,index.html}\n"
	s := summary(out)
	if strings.Contains(s, "reports:") || !strings.HasPrefix(s, "MCP authorization conformance") || !strings.HasSuffix(s, "RESULT: PASS") {
		t.Fatalf("summary:\n%s", s)
	}
}

func TestTopLevelPackagesMustBeExact(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "package.json")
	for body, ok := range map[string]bool{
		`{"dependencies":{"fastmcp":"4.20.16","express":"5.3.0"}}`: true,
		`{"dependencies":{"fastmcp":"^4.20.16"}}`:                  false,
		`{"dependencies":{"fastmcp":"latest"}}`:                    false,
		`{"dependencies":{"fastmcp":"4.x"}}`:                       false,
	} {
		_ = os.WriteFile(p, []byte(body), 0o600)
		_, err := topLevelPackages(p)
		if (err == nil) != ok {
			t.Errorf("%s: err %v", body, err)
		}
	}
}

func TestShellJoin(t *testing.T) {
	got := shellJoin([]string{"--scope", "openid profile", "--x", "it's", "plain"})
	if want := `--scope 'openid profile' --x 'it'\''s' plain`; got != want {
		t.Fatalf("shellJoin: %s, want %s", got, want)
	}
}

func TestReadReportOutcomeModel(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "report.json")
	_ = os.WriteFile(p, []byte(`{"target":"http://x/mcp","preflight":{"passed":true,"steps":[]},"results":[
	 {"id":"AZ-03","status":"inconclusive","inconclusive":{"step":"register a client","answer":"HTTP 400 invalid_redirect_uri","why":"policy","owner":"DCR-01"}},
	 {"id":"BCP-03","status":"inconclusive","derived":true,"links":[{"id":"AZ-03","status":"inconclusive"}]}]}`), 0o600)
	r, err := ReadReport(p)
	if err != nil {
		t.Fatal(err)
	}
	if m := r.Results[0].Messages(); len(m) != 1 || m[0] != "register a client: HTTP 400 invalid_redirect_uri — policy (graded by DCR-01)" {
		t.Fatalf("messages: %q", m)
	}
	if c := r.Counts(); c[Inconclusive] != 2 {
		t.Fatalf("counts: %v", c)
	}
	_ = os.WriteFile(p, []byte(`{"target":"http://x/mcp","preflight":{"passed":false,"steps":[
	 {"name":"reachability","status":"pass"},{"name":"401 challenge","status":"fail","detail":"HTTP 404 at /mcp","hint":"is --target the MCP endpoint?"}]},"results":[]}`), 0o600)
	_, err = ReadReport(p)
	if err == nil || !strings.Contains(err.Error(), `preflight step "401 challenge" failed: HTTP 404 at /mcp (hint: is --target the MCP endpoint?)`) {
		t.Fatalf("a failed preflight: %v", err)
	}
}
