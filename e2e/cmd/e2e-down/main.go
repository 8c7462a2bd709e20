// Command e2e-down deletes the e2e kind cluster (`make e2e-down`).
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/cnpg-mcp/cnpg-mcp/e2e/cluster"
)

func main() {
	name := flag.String("name", "cnpg-mcp-e2e", "kind cluster `name`")
	flag.Parse()
	if err := cluster.Down(*name, os.Stderr); err != nil {
		fmt.Fprintf(os.Stderr, "e2e-down: %v\n", err)
		os.Exit(1)
	}
	fmt.Printf("e2e-down: kind cluster %q is gone\n", *name)
}
