// Package cluster creates, reuses and deletes the e2e kind cluster through sigs.k8s.io/kind's Go API, and
// loads local images into its node.
package cluster

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"sigs.k8s.io/kind/pkg/apis/config/v1alpha4"
	kindcluster "sigs.k8s.io/kind/pkg/cluster"
	"sigs.k8s.io/kind/pkg/cluster/nodes"
	"sigs.k8s.io/kind/pkg/log"
	"sigs.k8s.io/yaml"
)

// Options of the e2e cluster.
type Options struct {
	Name string
	// ConfigFile is kind/cluster.yaml; KubeadmPatches are added to it (the offline image repository).
	ConfigFile     string
	KubeadmPatches []string
	// NodeImage is the offline node image; empty = kind's default (online).
	NodeImage string
	// KubeconfigPath receives the cluster's kubeconfig.
	KubeconfigPath string
	// Reuse an existing cluster of that name instead of recreating it.
	Reuse bool
	Log   io.Writer
}

// Cluster is a running kind cluster.
type Cluster struct {
	Name, Kubeconfig string
	provider         *kindcluster.Provider
	log              io.Writer
}

// LoadConfig reads a kind v1alpha4 cluster config file and appends kubeadm patches.
func LoadConfig(path string, patches ...string) (*v1alpha4.Cluster, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("kind config: %w", err)
	}
	var cfg v1alpha4.Cluster
	if err := yaml.UnmarshalStrict(b, &cfg); err != nil {
		return nil, fmt.Errorf("kind config %s: %w", path, err)
	}
	cfg.KubeadmConfigPatches = append(cfg.KubeadmConfigPatches, patches...)
	return &cfg, nil
}

// Up creates the cluster (or reuses it when asked and it exists) and writes its kubeconfig.
func Up(o Options) (*Cluster, error) {
	if o.Log == nil {
		o.Log = io.Discard
	}
	p := kindcluster.NewProvider(kindcluster.ProviderWithDocker(), kindcluster.ProviderWithLogger(writerLogger{o.Log}))
	c := &Cluster{Name: o.Name, Kubeconfig: o.KubeconfigPath, provider: p, log: o.Log}
	existing, err := p.List()
	if err != nil {
		return nil, fmt.Errorf("list kind clusters (is the Docker engine running?): %w", err)
	}
	if slices.Contains(existing, o.Name) {
		if o.Reuse {
			fmt.Fprintf(o.Log, "cluster: reusing kind cluster %q\n", o.Name)
			return c, c.writeKubeconfig()
		}
		fmt.Fprintf(o.Log, "cluster: deleting the previous kind cluster %q\n", o.Name)
		if err := p.Delete(o.Name, o.KubeconfigPath); err != nil {
			return nil, fmt.Errorf("delete kind cluster %q: %w", o.Name, err)
		}
	}
	cfg, err := LoadConfig(o.ConfigFile, o.KubeadmPatches...)
	if err != nil {
		return nil, err
	}
	opts := []kindcluster.CreateOption{
		kindcluster.CreateWithV1Alpha4Config(cfg),
		kindcluster.CreateWithWaitForReady(5 * time.Minute),
		kindcluster.CreateWithKubeconfigPath(o.KubeconfigPath),
		kindcluster.CreateWithDisplayUsage(false),
		kindcluster.CreateWithDisplaySalutation(false),
	}
	if o.NodeImage != "" {
		opts = append(opts, kindcluster.CreateWithNodeImage(o.NodeImage))
	}
	start := time.Now()
	if err := p.Create(o.Name, opts...); err != nil {
		return nil, fmt.Errorf("create kind cluster %q: %w", o.Name, err)
	}
	fmt.Fprintf(o.Log, "cluster: created %q in %s\n", o.Name, time.Since(start).Round(time.Second))
	return c, c.writeKubeconfig()
}

// Attach returns a handle to a running kind cluster that another test process created with Up; it
// neither creates nor deletes anything, and leaves the kubeconfig as Up wrote it.
func Attach(name, kubeconfig string, log io.Writer) (*Cluster, error) {
	if log == nil {
		log = io.Discard
	}
	p := kindcluster.NewProvider(kindcluster.ProviderWithDocker(), kindcluster.ProviderWithLogger(writerLogger{log}))
	existing, err := p.List()
	if err != nil {
		return nil, fmt.Errorf("list kind clusters (is the Docker engine running?): %w", err)
	}
	if !slices.Contains(existing, name) {
		return nil, fmt.Errorf("kind cluster %q not found: the first test process creates it", name)
	}
	return &Cluster{Name: name, Kubeconfig: kubeconfig, provider: p, log: log}, nil
}

func (c *Cluster) writeKubeconfig() error {
	kc, err := c.provider.KubeConfig(c.Name, false)
	if err != nil {
		return fmt.Errorf("kubeconfig of %q: %w", c.Name, err)
	}
	if err := os.MkdirAll(filepath.Dir(c.Kubeconfig), 0o755); err != nil {
		return err
	}
	return os.WriteFile(c.Kubeconfig, []byte(kc), 0o600)
}

// Down deletes the cluster.
func Down(name string, logw io.Writer) error {
	p := kindcluster.NewProvider(kindcluster.ProviderWithDocker(), kindcluster.ProviderWithLogger(writerLogger{logw}))
	existing, err := p.List()
	if err != nil {
		return err
	}
	if !slices.Contains(existing, name) {
		return nil
	}
	return p.Delete(name, "")
}

// Nodes returns the cluster's node containers.
func (c *Cluster) Nodes() ([]nodes.Node, error) { return c.provider.ListNodes(c.Name) }

// LoadImages imports local Docker images into every node's containerd (what `kind load docker-image`
// does), skipping images a node already has with the same ID.
func (c *Cluster) LoadImages(ctx context.Context, images ...string) error {
	ns, err := c.Nodes()
	if err != nil {
		return err
	}
	for _, img := range images {
		id, err := exec.CommandContext(ctx, "docker", "image", "inspect", "-f", "{{.Id}}", img).Output()
		if err != nil {
			return fmt.Errorf("image %s is not in the local Docker engine (build it first): %w", img, err)
		}
		for _, n := range ns {
			have, _ := exec.CommandContext(ctx, "docker", "exec", n.String(), "crictl", "inspecti", "-o", "go-template",
				"--template", "{{.status.id}}", img).Output()
			if strings.TrimSpace(string(have)) == strings.TrimSpace(string(id)) {
				continue
			}
			start := time.Now()
			save := exec.CommandContext(ctx, "docker", "save", img)
			imp := exec.CommandContext(ctx, "docker", "exec", "-i", n.String(), "ctr", "--namespace=k8s.io", "images", "import",
				"--all-platforms", "--digests", "--snapshotter=overlayfs", "-")
			pipe, err := save.StdoutPipe()
			if err != nil {
				return err
			}
			imp.Stdin = pipe
			var stderr strings.Builder
			imp.Stderr = &stderr
			if err := save.Start(); err != nil {
				return fmt.Errorf("docker save %s: %w", img, err)
			}
			if err := imp.Run(); err != nil {
				_ = save.Wait()
				return fmt.Errorf("import %s into %s: %w: %s", img, n, err, stderr.String())
			}
			if err := save.Wait(); err != nil {
				return fmt.Errorf("docker save %s: %w", img, err)
			}
			fmt.Fprintf(c.log, "cluster: loaded %s into %s in %s\n", img, n, time.Since(start).Round(time.Millisecond))
		}
	}
	return nil
}

// writerLogger adapts kind's logger to an io.Writer (info and warnings; debug at verbosity 0 only).
type writerLogger struct{ w io.Writer }

func (l writerLogger) Warn(message string) { fmt.Fprintln(l.w, "kind: "+message) }
func (l writerLogger) Warnf(format string, args ...interface{}) {
	fmt.Fprintf(l.w, "kind: "+format+"\n", args...)
}
func (l writerLogger) Error(message string) { fmt.Fprintln(l.w, "kind: "+message) }
func (l writerLogger) Errorf(format string, args ...interface{}) {
	fmt.Fprintf(l.w, "kind: "+format+"\n", args...)
}
func (l writerLogger) V(level log.Level) log.InfoLogger { return infoLogger{w: l.w, on: level <= 0} }

type infoLogger struct {
	w  io.Writer
	on bool
}

func (l infoLogger) Info(message string) {
	if l.on {
		fmt.Fprintln(l.w, "kind: "+message)
	}
}

func (l infoLogger) Infof(format string, args ...interface{}) {
	if l.on {
		fmt.Fprintf(l.w, "kind: "+format+"\n", args...)
	}
}
func (l infoLogger) Enabled() bool { return l.on }

// UseDockerShimIfNeeded checks whether `docker run --privileged` works on this host (it fails where
// dockerd lacks a capability, e.g. CAP_SYS_RESOURCE: "unable to apply caps"). When it does not, it puts
// kind/offline/docker-shim first on PATH as "docker" for kind (which calls the docker CLI), in a private
// directory. probeImage is any local image with an entrypoint that exits 0 with probeArgs.
func UseDockerShimIfNeeded(ctx context.Context, shim, probeImage string, probeArgs ...string) (bool, error) {
	real, err := exec.LookPath("docker")
	if err != nil {
		return false, fmt.Errorf("docker CLI not found: %w", err)
	}
	// as root: runc applies the full capability set only to a root process
	args := append([]string{"run", "--rm", "--privileged", "--user", "0", probeImage}, probeArgs...)
	out, err := exec.CommandContext(ctx, real, args...).CombinedOutput()
	if err == nil {
		return false, nil
	}
	if !strings.Contains(string(out), "apply caps") && !strings.Contains(string(out), "operation not permitted") {
		return false, fmt.Errorf("docker run --privileged %s: %w: %s", probeImage, err, out)
	}
	dir, err := os.MkdirTemp("", "cnpg-mcp-docker-shim-")
	if err != nil {
		return false, err
	}
	b, err := os.ReadFile(shim)
	if err != nil {
		return false, err
	}
	if err := os.WriteFile(filepath.Join(dir, "docker"), b, 0o755); err != nil {
		return false, err
	}
	os.Setenv("CNPG_MCP_REAL_DOCKER", real)
	os.Setenv("PATH", dir+string(os.PathListSeparator)+os.Getenv("PATH"))
	return true, nil
}
