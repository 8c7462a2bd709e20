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

// CrossRef grades this row by the rows it maps to (section D and the client-interop rows),
// running those that have not run yet in this run. The row is derived: it never repeats its
// owners' messages, it links to them (Result.Links). It fails when an owner failed (in a
// mixed-level row such as "MUST / SHOULD", a failure of a weaker-level owner is a warning), is
// inconclusive when no owner failed and one was inconclusive, skipped when every owner was
// skipped, and passes (or warns) otherwise.
func (t *T) CrossRef(ids ...string) {
	mixed := strings.ContainsAny(t.entry.LevelText, "/") || strings.Contains(t.entry.LevelText, "RECOMMENDED")
	var skipped []string
	var inconclusive *report.Result
	t.mu.Lock()
	t.derived = true
	t.mu.Unlock()
	for _, id := range ids {
		res, ok := t.env.Result(id)
		if !ok {
			c, found := ByID(id)
			if !found {
				t.Fatalf("internal: unknown cross-referenced check %s", id)
			}
			res = Run(t.ctx, t.env, c)
		}
		t.mu.Lock()
		t.links = append(t.links, report.Link{ID: id, Level: res.Level, Status: res.Status})
		t.mu.Unlock()
		t.Logf("%s: %s", id, res.Status)
		switch res.Status {
		case report.Fail:
			if mixed && levelRank(res.Level) < levelRank(t.entry.Level) && res.Level != catalogue.LevelMust {
				t.Warnf("%s failed (see %s; graded %s there, a weaker part of this row)", id, id, res.Level)
			} else {
				t.Errorf("%s failed (see %s)", id, id)
			}
		case report.Warn:
			t.Warnf("%s passed with a warning (see %s)", id, id)
		case report.Inconclusive:
			if inconclusive == nil {
				r := res
				inconclusive = &r
			}
		case report.Skip:
			skipped = append(skipped, fmt.Sprintf("%s (%s)", id, res.Message()))
		}
	}
	if t.Failed() {
		return
	}
	if inconclusive != nil {
		t.Inconclusive("grade by "+strings.Join(ids, ", "), inconclusive.ID+" is inconclusive",
			fmt.Sprintf("this row is graded by %s, which could not reach a verdict (see %s)", strings.Join(ids, ", "), inconclusive.ID), "")
	}
	if len(skipped) == len(ids) {
		t.Skipf("every row this one is graded by was skipped: %s", strings.Join(skipped, "; "))
	}
}
