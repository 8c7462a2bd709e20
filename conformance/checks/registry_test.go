package checks

import (
	"testing"

	"github.com/cnpg-mcp/cnpg-mcp/conformance/catalogue"
)

// TestEveryCatalogueRowIsImplemented: sections C and D have a check for every ID, and nothing
// implements an ID the catalogue does not have.
func TestEveryCatalogueRowIsImplemented(t *testing.T) {
	impls := implementations()
	ids := map[string]bool{}
	for _, e := range catalogue.All() {
		ids[e.ID] = true
		if _, ok := impls[e.ID]; !ok {
			t.Errorf("%s (%s) has no implementation", e.ID, e.Section)
		}
	}
	for id := range impls {
		if !ids[id] {
			t.Errorf("%s is implemented but not in the catalogue", id)
		}
	}
	if n := len(catalogue.All()); n != 210 {
		t.Errorf("the catalogue has %d rows, want 210 (C.1–C.15 and D, with the 2026-12 additions DCR-13, PRM-11, ASM-15, TOK-17)", n)
	}
}
