package interop

import (
	"flag"
	"os"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the README's interop table from matrix.go")

const (
	tableBegin = "<!-- interop-matrix: generated from interop/matrix.go by `make interop-doc`; TestREADMETable checks it -->\n"
	tableEnd   = "<!-- /interop-matrix -->"
)

// The README's interop table is generated from the matrix that TestMatrix runs, so it cannot claim a
// cell that is not tested or miss one that is.
func TestREADMETable(t *testing.T) {
	const path = "../README.md"
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	i, j := strings.Index(s, tableBegin), strings.Index(s, tableEnd)
	if i < 0 || j < i {
		t.Fatalf("README.md has no interop table between %q and %q", strings.TrimSpace(tableBegin), tableEnd)
	}
	got, want := s[i+len(tableBegin):j], Table()
	if got == want {
		return
	}
	if *update {
		if err := os.WriteFile(path, []byte(s[:i+len(tableBegin)]+want+s[j:]), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	t.Fatalf("README.md's interop table is stale: run `make interop-doc`.\nwant:\n%s", want)
}

// Every client has a driver, and every cell a client does not speak says why.
func TestMatrixComplete(t *testing.T) {
	for _, c := range Clients {
		if drivers[c.ID] == nil {
			t.Errorf("client %s has no driver", c.ID)
		}
		for v, why := range c.NotSpoken {
			if why == "" || !strings.Contains(strings.Join(Versions, " "), v) {
				t.Errorf("client %s: version %q skipped without a reason or unknown", c.ID, v)
			}
		}
	}
	if len(Cells()) == 0 {
		t.Fatal("no cells")
	}
}
