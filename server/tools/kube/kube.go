// Package kube builds the Kubernetes clients the tools use: a controller-runtime client (no cache,
// typed CloudNativePG API) and a client-go clientset for pod logs and events, plus the default
// namespace and a readiness check.
package kube

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	cnpgv1 "github.com/cloudnative-pg/api/pkg/api/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Clients are the Kubernetes clients of one identity (the server's service account).
type Clients struct {
	Client client.Client        // typed CRUD on CloudNativePG and core objects, no cache
	Core   kubernetes.Interface // pod logs, events, discovery
	Config *rest.Config
}

// Scheme returns a scheme with core/v1 and postgresql.cnpg.io/v1.
func Scheme() (*runtime.Scheme, error) {
	s := runtime.NewScheme()
	if err := corev1.AddToScheme(s); err != nil {
		return nil, err
	}
	if err := cnpgv1.AddToScheme(s); err != nil {
		return nil, err
	}
	return s, nil
}

// New builds clients for cfg.
func New(cfg *rest.Config) (*Clients, error) {
	cfg = rest.CopyConfig(cfg)
	if cfg.UserAgent == "" {
		cfg.UserAgent = "cnpg-mcp-server"
	}
	if cfg.QPS == 0 {
		cfg.QPS, cfg.Burst = 50, 100
	}
	scheme, err := Scheme()
	if err != nil {
		return nil, err
	}
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		return nil, fmt.Errorf("kubernetes client: %w", err)
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("kubernetes clientset: %w", err)
	}
	return &Clients{Client: c, Core: cs, Config: cfg}, nil
}

// LoadConfig returns the in-cluster configuration when running in a pod, else the kubeconfig
// (explicit path, then $KUBECONFIG, then ~/.kube/config), and the namespace to use by default:
// the service account's namespace, else the kubeconfig context's, else "default".
func LoadConfig(kubeconfig, context string) (*rest.Config, string, error) {
	if kubeconfig == "" && os.Getenv("KUBERNETES_SERVICE_HOST") != "" {
		cfg, err := rest.InClusterConfig()
		if err != nil {
			return nil, "", fmt.Errorf("in-cluster Kubernetes config: %w", err)
		}
		ns := "default"
		if b, err := os.ReadFile("/var/run/secrets/kubernetes.io/serviceaccount/namespace"); err == nil && strings.TrimSpace(string(b)) != "" {
			ns = strings.TrimSpace(string(b))
		}
		return cfg, ns, nil
	}
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	if kubeconfig != "" {
		rules.ExplicitPath = kubeconfig
	}
	cc := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{CurrentContext: context})
	cfg, err := cc.ClientConfig()
	if err != nil {
		if clientcmd.IsEmptyConfig(err) {
			return nil, "", errors.New("no Kubernetes configuration: run inside a pod with a service account, or pass --kubeconfig / set KUBECONFIG")
		}
		return nil, "", fmt.Errorf("kubeconfig: %w", err)
	}
	ns, _, err := cc.Namespace()
	if err != nil || ns == "" {
		ns = "default"
	}
	return cfg, ns, nil
}

// ReadyCheck returns nil when the API server answers an authenticated discovery request.
func (c *Clients) ReadyCheck(ctx context.Context) error {
	if err := c.Core.Discovery().RESTClient().Get().AbsPath("/api").Do(ctx).Error(); err != nil {
		return fmt.Errorf("kubernetes API not reachable: %w", err)
	}
	return nil
}
