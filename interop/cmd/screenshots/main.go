// Command screenshots renders every page a person sees during a sign-in (interop/pages) in headless
// Chromium, light and dark, against the local stack, and writes them as PNG files with an index:
//
//	go run ./interop/cmd/screenshots --out docs/screenshots      (make screenshots)
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/cnpg-mcp/cnpg-mcp/conformance/browser"
	"github.com/cnpg-mcp/cnpg-mcp/interop/internal/stack"
	"github.com/cnpg-mcp/cnpg-mcp/interop/pages"
)

func main() {
	out := flag.String("out", "docs/screenshots", "directory for the PNG files and README.md")
	chromium := flag.String("chromium", browser.DefaultExecPath, "Chromium binary")
	flag.Parse()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if err := run(ctx, *out, *chromium); err != nil {
		fmt.Fprintln(os.Stderr, "screenshots:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, out, chromium string) error {
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	st, err := stack.Start(ctx, stack.Options{})
	if err != nil {
		return err
	}
	defer st.Close()
	b, err := browser.Start(ctx, browser.Options{ExecPath: chromium})
	if err != nil {
		return err
	}
	defer b.Close()
	var index strings.Builder
	index.WriteString("# Screenshots\n\nEvery page a person sees while an MCP client signs in, light and dark (`prefers-color-scheme`), " +
		"rendered by headless Chromium against the local stack. Regenerate with `make screenshots` " +
		"(`interop/cmd/screenshots`); the same pages pass the axe-core check (`interop/pages`, TestAccessibility).\n\n")
	for _, p := range pages.All() {
		fmt.Fprintf(&index, "## %s\n\n%s\n\n", p.Name, p.Title)
		for _, scheme := range pages.Schemes {
			s, err := pages.Show(ctx, st, b, p, scheme)
			if err != nil {
				return err
			}
			png, err := pages.Screenshot(ctx, s)
			s.Close()
			if err != nil {
				return fmt.Errorf("%s (%s): %w", p.Name, scheme, err)
			}
			if len(png) == 0 {
				return errors.New("empty screenshot")
			}
			name := p.Name + "-" + scheme + ".png"
			if err := os.WriteFile(filepath.Join(out, name), png, 0o644); err != nil {
				return err
			}
			fmt.Fprintf(&index, "![%s, %s](%s)\n", p.Name, scheme, name)
			fmt.Printf("%s (%d KB)\n", filepath.Join(out, name), len(png)/1024)
		}
		index.WriteString("\n")
	}
	return os.WriteFile(filepath.Join(out, "README.md"), []byte(index.String()), 0o644)
}
