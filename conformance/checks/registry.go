package checks

import (
	"fmt"
	"strings"

	"github.com/cnpg-mcp/cnpg-mcp/conformance/catalogue"
	"github.com/cnpg-mcp/cnpg-mcp/conformance/report"
)

// implementations joins every section's checks.
func implementations() map[string]func(*T) {
	all := map[string]func(*T){}
	for _, m := range []map[string]func(*T){
		prmChecks(), rsChecks(), scopeChecks(), asmChecks(), dcrChecks(), cimdChecks(), authorizeChecks(),
		pkceChecks(), resourceChecks(), tokenChecks(), refreshChecks(), revocationChecks(), proxyChecks(),
		transportChecks(), clientChecks(), bcpChecks(),
	} {
		for id, f := range m {
			if _, dup := all[id]; dup {
				panic("checks: two implementations of " + id)
			}
			all[id] = f
		}
	}
	return all
}

// All returns every check in catalogue order. A catalogue row without an implementation becomes
// a check that fails with "not implemented", so a gap can never pass silently.
func All() []Check {
	impls := implementations()
	var out []Check
	for _, e := range catalogue.All() {
		f, ok := impls[e.ID]
		if !ok {
			id := e.ID
			f = func(t *T) { t.Fatalf("%s is not implemented by this suite", id) }
		}
		out = append(out, Check{Entry: e, Run: f})
	}
	return out
}

// Implemented reports whether a catalogue ID has an implementation.
func Implemented(id string) bool { _, ok := implementations()[id]; return ok }

// ByID returns one check.
func ByID(id string) (Check, bool) {
	for _, c := range All() {
		if c.ID == id {
			return c, true
		}
	}
	return Check{}, false
}

// levelRank orders levels for cross-references.
func levelRank(l catalogue.Level) int {
	switch l {
	case catalogue.LevelMust:
		return 3
	case catalogue.LevelShould:
		return 2
	case catalogue.LevelMay:
		return 1
	}
	return 0
}

// CrossRef grades this check by the results of the checks it maps to (section D and the client
// interop rows), running those that have not run yet in this run. In a mixed-level row ("MUST /
// SHOULD"), a failure of a weaker-level check is reported as a warning; in a plain MUST row every
// failure counts.
func (t *T) CrossRef(ids ...string) {
	var skipped []string
	for _, id := range ids {
		res, ok := t.env.Result(id)
		if !ok {
			c, found := ByID(id)
			if !found {
				t.Fatalf("internal: unknown cross-referenced check %s", id)
			}
			res = Run(t.ctx, t.env, c)
		}
		t.Logf("%s: %s %s", id, res.Status, oneLine(res.Message()))
		switch res.Status {
		case report.Fail:
			msg := fmt.Sprintf("%s failed: %s", id, oneLine(strings.Join(res.Failures, "; ")))
			mixed := strings.ContainsAny(t.entry.LevelText, "/") || strings.Contains(t.entry.LevelText, "RECOMMENDED")
			if mixed && levelRank(res.Level) < levelRank(t.entry.Level) && res.Level != catalogue.LevelMust {
				t.Warnf("%s (graded %s there)", msg, res.Level)
			} else {
				t.Errorf("%s", msg)
			}
		case report.Warn:
			t.Warnf("%s: %s", id, oneLine(res.Message()))
		case report.Skip:
			skipped = append(skipped, fmt.Sprintf("%s (%s)", id, res.SkipReason))
		}
	}
	if len(skipped) == len(ids) {
		t.Skipf("every check this row maps to was skipped: %s", strings.Join(skipped, "; "))
	}
}
