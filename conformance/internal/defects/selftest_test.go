package defects_test

import (
	"context"
	"flag"
	"fmt"
	"os"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/cnpg-mcp/cnpg-mcp/conformance/browser"
	"github.com/cnpg-mcp/cnpg-mcp/conformance/catalogue"
	"github.com/cnpg-mcp/cnpg-mcp/conformance/checks"
	"github.com/cnpg-mcp/cnpg-mcp/conformance/internal/defects"
	"github.com/cnpg-mcp/cnpg-mcp/conformance/internal/localstack"
	"github.com/cnpg-mcp/cnpg-mcp/conformance/internal/testenv"
	"github.com/cnpg-mcp/cnpg-mcp/conformance/report"
)

// notProvable are the rows no defect can make fail against the in-process stack, and why. They
// are excluded from the self-test count (and listed in the report).
var notProvable = map[string]string{
	"SC-04":  "the reference server documents no scope hierarchy",
	"RES-08": "the reference server's resource URI has no query",
	"PXY-14": "white-box (storage encryption): not observable from outside",
	"PXY-17": "needs two replicas sharing a store (PostgreSQL); covered by server/app's two-instance test",
	"SEC-06": "deployment guidance, not observable",
	"CLI-05": "report-only when CIMD works (it does); a CIMD defect fails CIMD-01 instead",
	"CLI-09": "report-only (policy on private-use schemes)",
	"BCP-14": "informational (the AS's risk decision)",
	"BCP-17": "informational (DPoP is optional)",
}

// minProven is the number of checks a defect must prove able to fail (it only goes up).
const minProven = 190

// TestDefects is the suite's self-test: for every check, a target with exactly that defect (the
// reference server behind a defect-injecting wrapper) must make the check not pass, with a message
// that says what is wrong.
func TestDefects(t *testing.T) {
	testenv.SkipWithoutChromium(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	st, err := localstack.Start(ctx, localstack.Options{Sibling: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	b, err := browser.Start(ctx, browser.Options{ExecPath: testenv.ChromiumPath()})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	tab, err := b.NewSession() // one logged-in tab for all the short runs
	if err != nil {
		t.Fatal(err)
	}
	defer tab.Close()

	byID := map[string]checks.Check{}
	for _, c := range checks.All() {
		byID[c.ID] = c
	}
	proven := map[string]string{}  // ID → defect that made it fail
	warned := map[string]string{}  // ID → defect that made it warn (a reported deviation)
	defectsOf := map[string]bool{} // IDs some defect targets
	for _, d := range defects.All() {
		d := d
		for _, id := range d.Checks {
			defectsOf[id] = true
		}
		if d.Target == nil && d.Upstream == nil {
			continue
		}
		t.Run(d.Name, func(t *testing.T) {
			if d.Why != "" {
				t.Logf("reproduces: %s", d.Why)
			}
			st.SetDefect(&d)
			defer st.SetDefect(nil)
			for rep := 0; rep < max(1, d.Repeat); rep++ {
				if rep > 0 {
					st.SetDefect(&d) // a fresh observer state for each repetition
				}
				cfg := st.Config()
				cfg.SharedBrowser, cfg.SharedTab = b, tab
				cfg.NoPrefetch = true
				cfg.CheckTimeout = 45 * time.Second
				if d.SpecVersion != "" {
					cfg.SpecVersion = d.SpecVersion
				}
				if d.Scope != "" {
					cfg.Scope = d.Scope
				}
				env, err := checks.NewEnv(cfg)
				if err != nil {
					t.Fatal(err)
				}
				run := func(id string) report.Result {
					c, ok := byID[id]
					if !ok {
						t.Fatalf("defect %q names unknown check %s", d.Name, id)
					}
					res := checks.Run(ctx, env, c)
					for _, want := range d.Messages[id] {
						msg := res.Message() + " " + strings.Join(res.Failures, " ") + " " + strings.Join(res.Warnings, " ")
						if neg, ok := strings.CutPrefix(want, "!"); ok {
							if strings.Contains(msg, neg) {
								t.Errorf("%s: the message must not say %q: %s", id, neg, firstLine(msg))
							}
						} else if !strings.Contains(msg, want) {
							t.Errorf("%s: the message must say %q: %s", id, want, firstLine(msg))
						}
					}
					if res.Attempts != nil {
						t.Logf("%s: %s", id, res.Attempts.String())
					}
					return res
				}
				for _, id := range d.Checks {
					res := run(id)
					switch res.Status {
					case report.Fail:
						if strings.TrimSpace(res.Message()) == "" {
							t.Errorf("%s failed without a message", id)
						}
						proven[id] = d.Name
						t.Logf("%s fails as it should: %s", id, firstLine(res.Message()))
					case report.Warn:
						warned[id] = d.Name
						t.Logf("%s warns: %s", id, firstLine(res.Message()))
					default:
						t.Errorf("%s %s against the defect %q (%s); it must fail", id, res.Status, d.Name, res.Message())
					}
				}
				for _, id := range d.Inconclusive {
					if res := run(id); res.Status != report.Inconclusive {
						t.Errorf("%s %s against the defect %q (%s); a refused precondition must make it inconclusive", id, res.Status, d.Name, res.Message())
					} else {
						t.Logf("%s is inconclusive as it should: %s", id, firstLine(res.Message()))
					}
				}
				for _, id := range d.Pass {
					if res := run(id); res.Status != report.Pass && res.Status != report.Warn {
						t.Errorf("%s %s against the defect %q (%s); this defect is not about %s, it must pass", id, res.Status, d.Name, res.Message(), id)
					} else {
						t.Logf("%s: %s as it should %s", id, res.Status, firstLine(res.Message()))
					}
				}
				for _, id := range d.NotFail {
					if res := run(id); res.Status == report.Fail || res.Status == report.Inconclusive {
						t.Errorf("%s %s against the defect %q (%s); it must pass or not apply", id, res.Status, d.Name, res.Message())
					} else {
						t.Logf("%s %s: %s", id, res.Status, firstLine(res.Message()))
					}
				}
				env.Close()
			}
		})
	}

	// The count: every catalogue row is a spec; which of them a defect proved able to fail.
	var missing, warnOnly []string
	for _, e := range catalogue.All() {
		_, p := proven[e.ID]
		_, w := warned[e.ID]
		_, np := notProvable[e.ID]
		switch {
		case p:
		case w:
			warnOnly = append(warnOnly, e.ID)
		case np:
		default:
			missing = append(missing, e.ID)
		}
	}
	sort.Strings(missing)
	total := len(catalogue.All())
	summary := fmt.Sprintf("self-test: %d specs; %d with a proven failing defect, %d more with a defect that makes them warn (%s); %d not provable in-process (%s)",
		total, len(proven), len(warnOnly), strings.Join(warnOnly, " "), len(notProvable), keys(notProvable))
	t.Log(summary)
	if p := os.Getenv("CONFORMANCE_SELFTEST_SUMMARY"); p != "" {
		_ = os.WriteFile(p, []byte(summary+"\n"), 0o644)
	}
	if f := flag.Lookup("test.run"); f != nil && strings.Contains(f.Value.String(), "/") {
		t.Logf("a subset of the defects ran (-run %s): the count is not checked", f.Value.String())
		return
	}
	if len(missing) > 0 {
		t.Errorf("checks without a proven failing defect: %s", strings.Join(missing, " "))
	}
	if len(proven) < minProven {
		t.Errorf("%d checks have a proven failing defect; the self-test must keep at least %d", len(proven), minProven)
	}
}

func keys(m map[string]string) string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return strings.Join(ks, " ")
}

func firstLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 200 {
		return s[:200] + "…"
	}
	return s
}
