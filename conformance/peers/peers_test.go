package peers

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cnpg-mcp/cnpg-mcp/conformance/catalogue"
)

// The peers run only when asked (they need the npm registry and take minutes):
//
//	CNPG_MCP_PEERS=1 go test -count=1 -timeout 40m -run 'TestPeers/fastmcp-ts' ./conformance/peers/
//
// or `make conformance-peers [PEERS=name]`. CNPG_MCP_PEERS_WRITE_RESULT=1 also rewrites each
// peer's RESULT.md. The npm installs are cached under $CACHE_DIR/peers (default
// ~/.cache/cnpg-mcp/peers); CNPG_MCP_PEERS_WORK=dir keeps the logs and reports there.
const (
	envRun         = "CNPG_MCP_PEERS"
	envWriteResult = "CNPG_MCP_PEERS_WRITE_RESULT"
)

func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("repository root not found from %s: %v", root, err)
	}
	return root
}

func catalogueIDs() []string {
	var ids []string
	for _, e := range catalogue.All() {
		ids = append(ids, e.ID)
	}
	return ids
}

// TestExpectationFiles runs in every `make test`: each peer's expected.yaml is valid, covers every
// check of the catalogue exactly once, and justifies every fail, warn and inconclusive.
func TestExpectationFiles(t *testing.T) {
	root := repoRoot(t)
	for _, p := range All() {
		t.Run(p.Name, func(t *testing.T) {
			e, err := LoadExpectation(filepath.Join(root, "conformance", "peers", p.Name, ExpectationFile))
			if err != nil {
				t.Fatal(err)
			}
			if e.Peer != p.Name {
				t.Errorf("peer: %q, want %q", e.Peer, p.Name)
			}
			missing, unknown := e.Covers(catalogueIDs())
			if len(missing) > 0 {
				t.Errorf("%s lacks %s: run `make conformance-peers PEERS=%s`, verify the new rows' verdicts by hand and add them",
					ExpectationFile, strings.Join(missing, " "), p.Name)
			}
			if len(unknown) > 0 {
				t.Errorf("%s lists checks the catalogue does not have: %s", ExpectationFile, strings.Join(unknown, " "))
			}
			if _, err := topLevelPackages(filepath.Join(root, "conformance", "peers", p.Name, "package.json")); err != nil {
				t.Error(err)
			}
		})
	}
}

// TestPeers runs the suite against every peer and fails on any verdict that differs from the
// peer's expectation, printing each difference.
func TestPeers(t *testing.T) {
	if os.Getenv(envRun) != "1" {
		t.Skipf("set %s=1 to run the suite against the npm peers (needs the npm registry; `make conformance-peers`)", envRun)
	}
	root := repoRoot(t)
	bin := t.TempDir()
	build := func(out, pkg string) string {
		path := filepath.Join(bin, out)
		cmd := exec.Command("go", "build", "-o", path, pkg)
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go build %s: %v\n%s", pkg, err, b)
		}
		return path
	}
	cache := os.Getenv("CACHE_DIR")
	if cache == "" {
		dir, err := os.UserCacheDir()
		if err != nil {
			t.Fatal(err)
		}
		cache = filepath.Join(dir, "cnpg-mcp")
	}
	o := Options{
		Root:  root,
		Mock:  build("mockauth0", "./mockauth0/cmd/mockauth0"),
		Suite: build("mcp-auth-conformance", "./conformance/cmd/mcp-auth-conformance"),
		Cache: filepath.Join(cache, "peers"),
		Work:  workDir(t),
		Log:   testLog{t},
	}
	for _, p := range All() {
		t.Run(p.Name, func(t *testing.T) {
			dir := filepath.Join(root, "conformance", "peers", p.Name)
			e, err := LoadExpectation(filepath.Join(dir, ExpectationFile))
			if err != nil {
				t.Fatal(err)
			}
			o := o
			o.Log = testLog{t}
			start := time.Now()
			out, err := Run(context.Background(), p, o)
			if err != nil {
				t.Fatal(err)
			}
			c := out.Report.Counts()
			t.Logf("%s: %d pass, %d fail, %d warn, %d skip, %d inconclusive; suite exit %d; npm install %s, start %s, suite %s, total %s",
				p.Name, c[Pass], c[Fail], c[Warn], c[Skip], c[Inconclusive], out.ExitStatus,
				out.Install.Round(time.Second), out.Start.Round(time.Millisecond), out.Suite.Round(time.Second), time.Since(start).Round(time.Second))
			diffs := Compare(e, out.Report)
			if os.Getenv(envWriteResult) == "1" {
				var b bytes.Buffer
				if err := WriteResult(&b, out, e, diffs, time.Now()); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(dir, ResultFile), b.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
				t.Logf("wrote conformance/peers/%s/%s", p.Name, ResultFile)
			}
			if len(diffs) > 0 {
				var b strings.Builder
				for _, d := range diffs {
					b.WriteString("\n  " + d.String())
				}
				t.Errorf("%d verdicts differ from conformance/peers/%s/%s (the suite's reports: %s):%s",
					len(diffs), p.Name, ExpectationFile, out.ReportDir, b.String())
			}
		})
	}
}

// workDir is CNPG_MCP_PEERS_WORK when set (the logs and reports stay there, for a look by hand),
// else a temporary directory.
func workDir(t *testing.T) string {
	if d := os.Getenv("CNPG_MCP_PEERS_WORK"); d != "" {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		return d
	}
	return t.TempDir()
}

type testLog struct{ t *testing.T }

func (l testLog) Write(b []byte) (int, error) {
	l.t.Log(strings.TrimRight(string(b), "\n"))
	return len(b), nil
}
