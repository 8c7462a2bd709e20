// Package catalogue is the list of checks of the MCP authorization check catalogue
// (shared/spec/auth-checks.md, sections C and D): IDs, normative levels, areas, the spec versions
// each applies to, the requirement and the black-box procedure. It is data only; the checks
// package implements them and the suite labels its specs from it.
package catalogue

import (
	"fmt"
	"strings"
)

// Level is the normative level a failure is graded by.
type Level string

// Levels. MUST covers MUST, MUST NOT and the mixed "MUST / SHOULD" rows (their weaker parts are
// graded as warnings by the check itself); SHOULD covers SHOULD, SHOULD NOT and RECOMMENDED;
// info covers the catalogue's interop, consistency and informational rows.
const (
	LevelMust   Level = "MUST"
	LevelShould Level = "SHOULD"
	LevelMay    Level = "MAY"
	LevelInfo   Level = "info"
)

// Entry is one catalogue row.
type Entry struct {
	ID      string
	Section string // e.g. "C.8 PKCE"
	Area    string // label: PRM, RS, Scopes, ASM, DCR, CIMD, Authorize, PKCE, Resource, Token, Refresh, Revocation, Proxy, Transport, ClientInterop, BCP
	Level   Level
	// LevelText is the level as the catalogue words it ("MUST / RECOMMENDED", "interop", …).
	LevelText string
	// Versions lists the MCP spec versions the row applies to: A = 2025-06-18, B = 2025-11-25,
	// C = 2026-07-28. OAuth-derived rows apply to all three.
	Versions    string
	Requirement string
	Procedure   string
}

// SectionID is the section number ("C.8", "D").
func (e Entry) SectionID() string {
	id, _, _ := strings.Cut(e.Section, " ")
	return id
}

// Title is the requirement's first clause, short enough for a progress line.
func (e Entry) Title() string {
	t := e.Requirement
	for _, sep := range []string{" (", ". ", "; "} {
		if i := strings.Index(t, sep); i > 20 {
			t = t[:i]
		}
	}
	t = strings.TrimSuffix(t, ".")
	t = strings.ReplaceAll(t, "`", "")
	if len(t) > 110 {
		t = t[:107] + "…"
	}
	return t
}

// Labels are the Ginkgo labels of the check: its ID, level and area.
func (e Entry) Labels() []string { return []string{e.ID, string(e.Level), e.Area} }

// AppliesTo reports whether the row applies to an MCP spec version ("2025-06-18", "2025-11-25",
// "2026-07-28", or the letters A/B/C).
func (e Entry) AppliesTo(version string) bool {
	letter, ok := VersionLetter(version)
	if !ok {
		return true
	}
	return strings.Contains(e.Versions, letter)
}

// Versions of the MCP specification the catalogue knows.
var versionLetters = map[string]string{"2025-06-18": "A", "2025-11-25": "B", "2026-07-28": "C", "A": "A", "B": "B", "C": "C"}

// VersionLetter maps a version to the catalogue's letter.
func VersionLetter(v string) (string, bool) {
	l, ok := versionLetters[v]
	return l, ok
}

// ValidateVersion returns an error naming the accepted values.
func ValidateVersion(v string) error {
	if _, ok := VersionLetter(v); !ok {
		return fmt.Errorf("unknown MCP spec version %q: use 2025-06-18, 2025-11-25 or 2026-07-28", v)
	}
	return nil
}

// All returns every entry in catalogue order.
func All() []Entry { return append([]Entry(nil), entries...) }

// Lookup returns the entry with this ID.
func Lookup(id string) (Entry, bool) {
	for _, e := range entries {
		if e.ID == id {
			return e, true
		}
	}
	return Entry{}, false
}

// MustLookup is Lookup for IDs known at compile time; it panics on a typo.
func MustLookup(id string) Entry {
	e, ok := Lookup(id)
	if !ok {
		panic("catalogue: unknown check ID " + id)
	}
	return e
}

// Sections returns the section names in catalogue order.
func Sections() []string {
	var out []string
	seen := map[string]bool{}
	for _, e := range entries {
		if !seen[e.Section] {
			seen[e.Section] = true
			out = append(out, e.Section)
		}
	}
	return out
}
