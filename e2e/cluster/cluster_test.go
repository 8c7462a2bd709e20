package cluster

import (
	"os"
	"strings"
	"testing"
)

// kind/cluster.yaml must parse strictly and keep every listener on loopback.
func TestClusterConfigStaysOnLoopback(t *testing.T) {
	patch, err := os.ReadFile("../../kind/offline/kubeadm-patch.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := LoadConfig("../../kind/cluster.yaml", string(patch))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Networking.APIServerAddress != "127.0.0.1" {
		t.Errorf("API server address %q, want 127.0.0.1", cfg.Networking.APIServerAddress)
	}
	if len(cfg.Nodes) != 1 {
		t.Fatalf("want one node, got %d", len(cfg.Nodes))
	}
	var server bool
	for _, m := range cfg.Nodes[0].ExtraPortMappings {
		if m.ListenAddress != "127.0.0.1" {
			t.Errorf("port %d published on %q, want 127.0.0.1", m.HostPort, m.ListenAddress)
		}
		server = server || (m.ContainerPort == 30080 && m.HostPort == 30080)
	}
	if !server {
		t.Errorf("the server's NodePort 30080 is not published")
	}
	if len(cfg.KubeadmConfigPatches) != 1 || !strings.Contains(cfg.KubeadmConfigPatches[0], "imageRepository:") {
		t.Errorf("offline kubeadm patch not applied: %v", cfg.KubeadmConfigPatches)
	}
}

func TestLoadConfigRejectsUnknownFields(t *testing.T) {
	f := t.TempDir() + "/bad.yaml"
	if err := os.WriteFile(f, []byte("kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\nnodez: []\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadConfig(f); err == nil {
		t.Fatal("a misspelt field was accepted")
	}
}
