package pages

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/cnpg-mcp/cnpg-mcp/conformance/browser"
	"github.com/cnpg-mcp/cnpg-mcp/interop/internal/stack"
)

// axeResult is the part of axe.run's result the check reads.
type axeResult struct {
	Violations []struct {
		ID     string `json:"id"`
		Impact string `json:"impact"`
		Help   string `json:"help"`
		Nodes  []struct {
			Target  []any  `json:"target"`
			Summary string `json:"failureSummary"`
		} `json:"nodes"`
	} `json:"violations"`
	Passes int `json:"passes"`
}

// TestAccessibility runs axe-core (the npm package, pinned in interop/node) in Chromium against every
// page a person sees, in the light and the dark scheme: no serious or critical violation (WCAG 2.x A
// and AA rules, colour contrast included). Lesser findings are logged.
func TestAccessibility(t *testing.T) {
	nodeDir := stack.Needs(t, false)
	axe, err := os.ReadFile(filepath.Join(nodeDir, "node_modules", "axe-core", "axe.min.js"))
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	st, err := stack.Start(ctx, stack.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	b, err := browser.Start(ctx, browser.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	for _, p := range All() {
		for _, scheme := range Schemes {
			t.Run(p.Name+"/"+scheme, func(t *testing.T) {
				s, err := Show(ctx, st, b, p, scheme)
				if err != nil {
					t.Fatal(err)
				}
				defer s.Close()
				res, err := runAxe(t, s, string(axe))
				if err != nil {
					t.Fatal(err)
				}
				for _, v := range res.Violations {
					var where []string
					for _, n := range v.Nodes {
						where = append(where, fmt.Sprint(n.Target)+": "+strings.ReplaceAll(n.Summary, "\n", " "))
					}
					msg := fmt.Sprintf("%s (%s): %s — %s", v.ID, v.Impact, v.Help, strings.Join(where, "; "))
					if v.Impact == "serious" || v.Impact == "critical" {
						t.Error(msg)
					} else {
						t.Log(msg)
					}
				}
				t.Logf("%d rules passed, %d violations", res.Passes, len(res.Violations))
			})
		}
	}
}

func runAxe(t *testing.T, s *browser.Session, axe string) (axeResult, error) {
	var res axeResult
	if _, err := browser.Eval[bool](t.Context(), s, axe+"\n;true"); err != nil {
		return res, fmt.Errorf("load axe-core: %w", err)
	}
	var raw string
	err := s.Run(t.Context(), chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		var err error
		raw, err = chromedp.Evaluate[string](`axe.run(document, {runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22aa', 'best-practice']}})
  .then(r => JSON.stringify({violations: r.violations, passes: r.passes.length}))`, chromedp.EvalAwaitPromise)(ctx, tg)
		return err
	}))
	if err != nil {
		return res, fmt.Errorf("axe.run: %w", err)
	}
	return res, json.Unmarshal([]byte(raw), &res)
}
