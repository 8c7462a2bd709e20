// Command gentoolsdoc writes docs/tools.md from the tool definitions (go generate ./server/mcpserver).
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/cnpg-mcp/cnpg-mcp/server/mcpserver"
)

func main() {
	out := flag.String("o", "docs/tools.md", "output file")
	flag.Parse()
	md, err := mcpserver.ToolsMarkdown()
	if err != nil {
		fmt.Fprintln(os.Stderr, "gentoolsdoc:", err)
		os.Exit(1)
	}
	if err := os.WriteFile(*out, []byte(md), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "gentoolsdoc:", err)
		os.Exit(1)
	}
}
