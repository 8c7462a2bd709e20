package peers

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"sort"
	"strings"

	"sigs.k8s.io/yaml"
)

// ExpectationFile is the name of the expectation file in each peer's directory.
const ExpectationFile = "expected.yaml"

// Expectation is a peer's expected.yaml: the true outcome of every check ID against that peer.
type Expectation struct {
	// Peer names the peer (its directory).
	Peer string `json:"peer"`
	// Checks has one entry per check ID, in catalogue order.
	Checks []Expected `json:"checks"`
}

// Expected is the expected outcome of one check.
type Expected struct {
	ID string `json:"id"`
	// Outcome is the true outcome: what the server's behaviour earns, verified by hand.
	Outcome string `json:"outcome"`
	// Why states what the server did; required for fail, warn and inconclusive.
	Why string `json:"why,omitempty"`
	// Suite, when set, is the outcome the suite gives today although it is wrong (a known suite
	// bug, described in Bug). The comparison accepts it, and fails once the suite gives Outcome, so
	// that the override is removed when the bug is fixed.
	Suite string `json:"suite,omitempty"`
	// Bug says in one line what the suite gets wrong; required with Suite.
	Bug string `json:"bug,omitempty"`
}

// Graded is the outcome the comparison expects from the suite today.
func (e Expected) Graded() string {
	if e.Suite != "" {
		return e.Suite
	}
	return e.Outcome
}

// LoadExpectation reads and validates an expectation file (unknown fields are errors).
func LoadExpectation(path string) (*Expectation, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read expectation: %w", err)
	}
	var e Expectation
	if err := yaml.UnmarshalStrict(b, &e); err != nil {
		return nil, fmt.Errorf("parse %s: %w", path, err)
	}
	if err := e.Validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &e, nil
}

// Validate checks each entry on its own: a known outcome, no ID twice, a justification where one is
// needed. Whether every check is covered is Covers's job.
func (e *Expectation) Validate() error {
	var errs []error
	seen := map[string]bool{}
	for i, c := range e.Checks {
		at := fmt.Sprintf("checks[%d] (%s)", i, c.ID)
		switch {
		case c.ID == "":
			errs = append(errs, fmt.Errorf("checks[%d]: no id", i))
		case seen[c.ID]:
			errs = append(errs, fmt.Errorf("%s: the id is listed twice", at))
		}
		seen[c.ID] = true
		if !slices.Contains(Outcomes, c.Outcome) {
			errs = append(errs, fmt.Errorf("%s: outcome %q is not one of %s", at, c.Outcome, strings.Join(Outcomes, ", ")))
		}
		if needsWhy(c.Outcome) && strings.TrimSpace(c.Why) == "" {
			errs = append(errs, fmt.Errorf("%s: a %s needs `why`: what the server did", at, c.Outcome))
		}
		if c.Suite != "" {
			if !slices.Contains(Outcomes, c.Suite) {
				errs = append(errs, fmt.Errorf("%s: suite %q is not one of %s", at, c.Suite, strings.Join(Outcomes, ", ")))
			}
			if c.Suite == c.Outcome {
				errs = append(errs, fmt.Errorf("%s: suite equals outcome (%s): drop `suite` and `bug`", at, c.Outcome))
			}
			if strings.TrimSpace(c.Bug) == "" {
				errs = append(errs, fmt.Errorf("%s: `suite` (a known wrong verdict) needs `bug`: what the suite gets wrong", at))
			}
		} else if c.Bug != "" {
			errs = append(errs, fmt.Errorf("%s: `bug` without `suite`", at))
		}
	}
	return errors.Join(errs...)
}

func needsWhy(outcome string) bool {
	return outcome == Fail || outcome == Warn || outcome == Inconclusive
}

// Covers reports the check IDs the expectation lacks and the ones it has that are not in ids.
func (e *Expectation) Covers(ids []string) (missing, unknown []string) {
	have := map[string]bool{}
	for _, c := range e.Checks {
		have[c.ID] = true
	}
	want := map[string]bool{}
	for _, id := range ids {
		want[id] = true
		if !have[id] {
			missing = append(missing, id)
		}
	}
	for _, c := range e.Checks {
		if !want[c.ID] {
			unknown = append(unknown, c.ID)
		}
	}
	return missing, unknown
}

// Lookup returns the entry for id.
func (e *Expectation) Lookup(id string) (Expected, bool) {
	for _, c := range e.Checks {
		if c.ID == id {
			return c, true
		}
	}
	return Expected{}, false
}

// Difference is one check whose verdict is not the expected one.
type Difference struct {
	ID string
	// Want is the outcome the comparison expected (Graded), Got what the suite said ("" when the
	// report lacks the ID, "(none)" shown).
	Want, Got string
	// Expected is the expectation's entry (zero when the ID is new).
	Expected Expected
	// Said is what the suite said about it.
	Said []string
	// Fixed: the suite now gives the true outcome of a known suite bug.
	Fixed bool
}

// String is the difference as one line a person can act on.
func (d Difference) String() string {
	said := strings.Join(d.Said, " / ")
	if len(said) > 300 {
		said = said[:300] + "…"
	}
	switch {
	case d.Fixed:
		return fmt.Sprintf("%s: the suite now says %s, the true outcome (known bug: %s): remove `suite` and `bug` from the entry", d.ID, d.Got, d.Expected.Bug)
	case d.Expected.ID == "":
		return fmt.Sprintf("%s: new check, %s (%s): verify it by hand and add it to %s", d.ID, d.Got, said, ExpectationFile)
	case d.Got == "":
		return fmt.Sprintf("%s: expected %s, but the report has no such check", d.ID, d.Want)
	}
	why := d.Expected.Why
	if d.Expected.Suite != "" {
		why = "known suite bug: " + d.Expected.Bug
	}
	if why != "" {
		why = " (" + why + ")"
	}
	return fmt.Sprintf("%s: expected %s%s, the suite said %s: %s", d.ID, d.Want, why, d.Got, said)
}

// Compare returns every check whose verdict in r differs from the expectation, in report order
// (then the expected IDs the report lacks).
func Compare(e *Expectation, r *Report) []Difference {
	var diffs []Difference
	inReport := map[string]bool{}
	for _, res := range r.Results {
		inReport[res.ID] = true
		exp, ok := e.Lookup(res.ID)
		switch {
		case !ok:
			diffs = append(diffs, Difference{ID: res.ID, Got: res.Status, Said: res.Messages()})
		case exp.Suite != "" && res.Status == exp.Outcome:
			diffs = append(diffs, Difference{ID: res.ID, Want: exp.Graded(), Got: res.Status, Expected: exp, Said: res.Messages(), Fixed: true})
		case res.Status != exp.Graded():
			diffs = append(diffs, Difference{ID: res.ID, Want: exp.Graded(), Got: res.Status, Expected: exp, Said: res.Messages()})
		}
	}
	var gone []Difference
	for _, c := range e.Checks {
		if !inReport[c.ID] {
			gone = append(gone, Difference{ID: c.ID, Want: c.Graded(), Expected: c})
		}
	}
	sort.SliceStable(gone, func(i, j int) bool { return gone[i].ID < gone[j].ID })
	return append(diffs, gone...)
}
