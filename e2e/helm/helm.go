// Package helm runs the pinned Helm binary against the e2e cluster.
package helm

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"

	"sigs.k8s.io/yaml"
)

// Helm is a helm binary bound to one kubeconfig.
type Helm struct {
	Bin, Kubeconfig string
}

// Install runs `helm upgrade --install` of chart as release in namespace with the values files, then
// values (written to a file, so a secret never appears in a process listing; it wins over the files).
func (h Helm) Install(ctx context.Context, release, namespace, chart string, values map[string]any, valuesFiles ...string) error {
	b, err := yaml.Marshal(values)
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "cnpg-mcp-e2e-values-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	vf := filepath.Join(dir, "values.yaml")
	if err := os.WriteFile(vf, b, 0o600); err != nil {
		return err
	}
	args := []string{"upgrade", "--install", release, chart, "--namespace", namespace, "--create-namespace"}
	for _, f := range append(valuesFiles, vf) {
		args = append(args, "--values", f)
	}
	_, err = h.run(ctx, args...)
	return err
}

// Uninstall removes a release (no error when it does not exist).
func (h Helm) Uninstall(ctx context.Context, release, namespace string) error {
	_, err := h.run(ctx, "uninstall", release, "--namespace", namespace, "--ignore-not-found", "--wait")
	return err
}

func (h Helm) run(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, h.Bin, append(args, "--kubeconfig", h.Kubeconfig)...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("helm %v: %w: %s", args[:2], err, errb.String())
	}
	return out.String(), nil
}
