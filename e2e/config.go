// Package e2e is the end-to-end suite of cnpg-mcp on kind: a real cluster, the real CloudNativePG
// operator and PostgreSQL, the chart as production installs it, the mock Auth0 beside the cluster, the
// conformance suite through a real browser and every CNPG tool through an authenticated MCP client.
//
// Run it with `make e2e` (upstream images) or `make e2e OFFLINE=1` (every image built here by
// kind/offline/build.sh); `make e2e-down` deletes what it left. The specs live in e2e_test.go (build tag
// "e2e", so `go test ./...` does not start a cluster); this file reads the settings make passes.
package e2e

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Config is what `make e2e` passes in the environment.
type Config struct {
	RepoRoot    string
	ClusterName string // E2E_CLUSTER
	Offline     bool   // E2E_OFFLINE=1
	Reuse       bool   // E2E_REUSE=1: keep an existing cluster (faster local iterations)
	Keep        bool   // E2E_KEEP=1: leave the cluster up after the run
	ReportDir   string // E2E_REPORT: dumps and reports on failure
	Helm        string // HELM
	Kubeconfig  string

	ServerImage, MockImage string // E2E_SERVER_IMAGE, E2E_MOCK_IMAGE
	ForwardImage           string // E2E_FORWARD_IMAGE: the tcp-forward sidecar

	// Offline images (from $CACHE_DIR/offline/images.env, written by kind/offline/build.sh).
	NodeImage, K8sImageRepository, CNPGImage, PGImage string
	// CNPGManifest is the operator's release manifest (offline: rewritten to the local image).
	CNPGManifest string
	CNPGVersion  string

	// Backups (e2e/objstore): the object store's image (built locally online and offline), the
	// Barman Cloud plugin's images (offline: built here; online: empty = the release images named
	// by its manifest) and the plugin module's manifest.yaml (E2E_PLUGIN_MANIFEST).
	ObjStoreImage, PluginImage, PluginSidecarImage string
	PluginManifest, PluginVersion                  string
}

// ConfigFromEnv reads the settings; repoRoot is the directory holding go.mod.
func ConfigFromEnv(repoRoot string) (Config, error) {
	versions, err := readEnvFile(filepath.Join(repoRoot, "hack", "versions.env"))
	if err != nil {
		return Config{}, err
	}
	c := Config{
		RepoRoot:     repoRoot,
		ClusterName:  envOr("E2E_CLUSTER", "cnpg-mcp-e2e"),
		Offline:      os.Getenv("E2E_OFFLINE") == "1",
		Reuse:        os.Getenv("E2E_REUSE") == "1",
		Keep:         os.Getenv("E2E_KEEP") == "1",
		ReportDir:    envOr("E2E_REPORT", filepath.Join(repoRoot, "e2e-report")),
		Helm:         os.Getenv("HELM"),
		ServerImage:  envOr("E2E_SERVER_IMAGE", "cnpg-mcp/cnpg-mcp-server:dev"),
		MockImage:    envOr("E2E_MOCK_IMAGE", "cnpg-mcp/mockauth0:dev"),
		ForwardImage: envOr("E2E_FORWARD_IMAGE", "cnpg-mcp/tcp-forward:dev"),
		CNPGVersion:  versions["CNPG_VERSION"],

		ObjStoreImage:  os.Getenv("E2E_OBJSTORE_IMAGE"),
		PluginManifest: os.Getenv("E2E_PLUGIN_MANIFEST"),
		PluginVersion:  versions["BARMAN_CLOUD_PLUGIN_VERSION"],
	}
	c.Kubeconfig = filepath.Join(c.ReportDir, "kubeconfig")
	if c.Helm == "" {
		return c, fmt.Errorf("HELM is not set: run the suite through `make e2e` (it builds the pinned helm)")
	}
	cache := envOr("CACHE_DIR", filepath.Join(os.Getenv("HOME"), ".cache", "cnpg-mcp"))
	if c.Offline {
		imgs, err := readEnvFile(filepath.Join(cache, "offline", "images.env"))
		if err != nil {
			return c, fmt.Errorf("offline images not built (run `make offline-images`): %w", err)
		}
		c.NodeImage, c.K8sImageRepository = imgs["NODE_IMAGE"], imgs["K8S_IMAGE_REPOSITORY"]
		c.CNPGImage, c.PGImage, c.CNPGManifest = imgs["CNPG_IMAGE"], imgs["PG_IMAGE"], imgs["CNPG_MANIFEST"]
		c.ObjStoreImage, c.PluginImage, c.PluginSidecarImage = imgs["OBJSTORE_IMAGE"], imgs["PLUGIN_IMAGE"], imgs["PLUGIN_SIDECAR_IMAGE"]
	} else {
		// Online: the release manifest as published, from the operator's module (its images are pulled).
		c.CNPGManifest = os.Getenv("E2E_CNPG_MANIFEST")
	}
	if c.CNPGManifest == "" {
		return c, fmt.Errorf("no CloudNativePG manifest: set E2E_CNPG_MANIFEST (make e2e does)")
	}
	return c, nil
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

// readEnvFile reads KEY=VALUE lines (comments and blank lines skipped).
func readEnvFile(path string) (map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	out := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if ok {
			out[strings.TrimSpace(k)] = strings.Trim(strings.TrimSpace(v), `"'`)
		}
	}
	return out, sc.Err()
}

// RepoRoot walks up from dir to the directory holding go.mod.
func RepoRoot(dir string) (string, error) {
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d, nil
		}
		if filepath.Dir(d) == d {
			return "", fmt.Errorf("no go.mod above %s", dir)
		}
	}
}
