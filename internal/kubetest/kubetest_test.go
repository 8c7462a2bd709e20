package kubetest

import (
	"bytes"
	"path/filepath"
	"testing"
)

// The environment itself is exercised by server/tools (TestKubeEnv and every tool test), which
// shares one instance per test binary; starting a second one here would only cost time.

func TestBinDir(t *testing.T) {
	t.Setenv("KUBEBIN_DIR", "/x/bin")
	if BinDir() != "/x/bin" {
		t.Fatal(BinDir())
	}
	t.Setenv("KUBEBIN_DIR", "")
	t.Setenv("CACHE_DIR", "/cache")
	if BinDir() != filepath.Join("/cache", "kube", KubeVersion, "bin") {
		t.Fatal(BinDir())
	}
	t.Setenv("CACHE_DIR", t.TempDir())
	if Available() {
		t.Fatal("Available with an empty cache dir")
	}
}

func TestCRDsEmbedded(t *testing.T) {
	if len(cnpgCRDs) < 100000 {
		t.Fatalf("embedded CRDs are %d bytes", len(cnpgCRDs))
	}
	if !bytes.Contains(pluginCRDs, []byte("name: objectstores.barmancloud.cnpg.io")) {
		t.Fatal("the Barman Cloud plugin's ObjectStore CRD is not embedded")
	}
}
