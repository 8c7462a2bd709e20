package checks

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/cnpg-mcp/cnpg-mcp/conformance/catalogue"
	"github.com/cnpg-mcp/cnpg-mcp/conformance/login"
	"github.com/cnpg-mcp/cnpg-mcp/conformance/report"
)

func testEnv(t *testing.T) *Env {
	t.Helper()
	env, err := NewEnv(Config{Target: "http://127.0.0.1:1/mcp", NoPrefetch: true,
		Login: login.Options{Credentials: login.Credentials{Username: "u", Password: "p"}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(env.Close)
	return env
}

func runAs(env *Env, id string, f func(*T)) report.Result {
	return Run(context.Background(), env, Check{Entry: catalogue.MustLookup(id), Run: f})
}

// TestOutcomes: a refused precondition is inconclusive (with a default "why" naming the row), it
// fails the row that owns it, and a network error, a suite panic or a timeout are never failures.
func TestOutcomes(t *testing.T) {
	env := testEnv(t)
	r := runAs(env, "AZ-03", func(t *T) { t.Inconclusive("register a client", "HTTP 400 error=invalid_redirect_uri", "", "") })
	if r.Status != report.Inconclusive || r.Inconclusive == nil || !strings.Contains(r.Inconclusive.Why, "no verdict on AZ-03") {
		t.Errorf("policy refusal: %+v %+v", r.Status, r.Inconclusive)
	}
	r = runAs(env, "RT-11", func(t *T) { t.Inconclusive("register a public loopback client", "HTTP 500", "", "DCR-01") })
	if r.Status != report.Inconclusive || r.Inconclusive.Owner != "DCR-01" || !strings.Contains(r.Message(), "graded by DCR-01") {
		t.Errorf("owned refusal elsewhere: %+v %q", r.Status, r.Message())
	}
	r = runAs(env, "DCR-01", func(t *T) { t.Inconclusive("register a public loopback client", "HTTP 500", "", "DCR-01") })
	if r.Status != report.Fail || !strings.Contains(r.Message(), "HTTP 500") {
		t.Errorf("the owner's own refusal: %+v %q", r.Status, r.Message())
	}
	r = runAs(env, "TOK-01", func(t *T) { t.Must(errors.New("connection reset by peer"), "GET the token endpoint") })
	if r.Status != report.Inconclusive || !strings.Contains(r.Message(), "connection reset") {
		t.Errorf("network error: %+v %q", r.Status, r.Message())
	}
	r = runAs(env, "TOK-02", func(t *T) { panic("boom") })
	if r.Status != report.Inconclusive || !strings.Contains(r.Message(), "boom") {
		t.Errorf("suite panic: %+v %q", r.Status, r.Message())
	}
	r = runAs(env, "TOK-03", func(t *T) {
		t.Errorf("a verdict first")
		t.Inconclusive("a later step", "refused", "", "")
	})
	if r.Status != report.Fail {
		t.Errorf("a failure found before a refused step stays a failure: %+v", r.Status)
	}
	r = runAs(env, "PKCE-07", func(t *T) { t.SkipFor("--mock-auth0-admin", "needs the upstream's log") })
	if r.Status != report.Skip || r.SkipFlag != "--mock-auth0-admin" || !strings.Contains(r.Message(), "--mock-auth0-admin") {
		t.Errorf("skip with a flag: %+v %q", r.Status, r.Message())
	}
}

// TestCrossRef: derived rows link to their owners, never repeat their messages, and take the
// owners' outcome (a weaker owner's failure in a mixed-level row is a warning).
func TestCrossRef(t *testing.T) {
	env := testEnv(t)
	store := func(id string, st report.Status, msg string) {
		e := catalogue.MustLookup(id)
		env.storeResult(report.Result{ID: id, Level: e.Level, Status: st, Failures: []string{msg}})
	}
	store("AZ-03", report.Fail, "redirect_uri with a trailing slash was accepted")
	store("AZ-02", report.Pass, "")
	store("AZ-10", report.Inconclusive, "")
	store("TOK-04", report.Pass, "")
	store("TOK-05", report.Fail, "the first access token still works")
	store("TOK-06", report.Pass, "")
	store("RT-08", report.Skip, "")

	r := runAs(env, "BCP-03", func(t *T) { t.CrossRef("AZ-03") })
	if r.Status != report.Fail || !r.Derived || len(r.Links) != 1 || r.Links[0].Status != report.Fail ||
		strings.Contains(r.Message(), "trailing slash") || !strings.Contains(r.Message(), "see AZ-03") {
		t.Errorf("derived failure: %+v %q %+v", r.Status, r.Message(), r.Links)
	}
	r = runAs(env, "BCP-06", func(t *T) { t.CrossRef("AZ-02", "AZ-10") })
	if r.Status != report.Inconclusive {
		t.Errorf("a pass and an inconclusive owner: %+v", r.Status)
	}
	r = runAs(env, "BCP-09", func(t *T) { t.CrossRef("TOK-04", "TOK-05", "TOK-06") })
	if r.Status != report.Warn || !strings.Contains(r.Message(), "TOK-05") {
		t.Errorf("MUST / SHOULD row with a failed SHOULD owner: %+v %q", r.Status, r.Message())
	}
	r = runAs(env, "BCP-15", func(t *T) { t.CrossRef("RT-08") })
	if r.Status != report.Skip {
		t.Errorf("every owner skipped: %+v", r.Status)
	}
	run := &report.Run{Results: []report.Result{env.resultOf("AZ-03"), runAs(env, "BCP-03", func(t *T) { t.CrossRef("AZ-03") })}}
	if c := run.Counts(); c.MustFail != 1 || c.DerivedFail != 1 {
		t.Errorf("a MUST failure counted once: %+v", c)
	}
}

func (e *Env) resultOf(id string) report.Result { r, _ := e.Result(id); return r }
