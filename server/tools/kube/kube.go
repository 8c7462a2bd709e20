// Package kube builds the Kubernetes clients the tools use: a controller-runtime client (no cache,
// typed CloudNativePG API) and a client-go clientset for pod logs and events, plus the default
// namespace and a readiness check. A Provider hands each tool call its clients: the server's own
// (service-account mode) or, when the server impersonates the signed-in user, clients whose every
// request carries that user's Impersonate-User and Impersonate-Group (provider.go).
package kube

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	cnpgv1 "github.com/cloudnative-pg/api/pkg/api/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"
)

// Clients are the Kubernetes clients of one identity: the server's service account, or a user it
// impersonates (User set).
type Clients struct {
	Client client.Client        // typed CRUD on CloudNativePG and core objects, no cache
	Core   kubernetes.Interface // pod logs, events, discovery
	Config *rest.Config
	// Err is set when there is no Kubernetes configuration (Unconfigured): Client and Core are nil.
	Err error
	// User and Groups are the impersonated Kubernetes user and groups ("" and nil: the server's
	// own identity).
	User   string
	Groups []string

	// Shared by every impersonated identity's clients: one HTTP transport (TLS, connection pool,
	// the server's credentials) and one REST mapper (discovery done once).
	http   *http.Client
	mapper meta.RESTMapper
	scheme *runtime.Scheme
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
	hc, err := rest.HTTPClientFor(cfg)
	if err != nil {
		return nil, fmt.Errorf("kubernetes HTTP client: %w", err)
	}
	mapper, err := apiutil.NewDynamicRESTMapper(cfg, hc)
	if err != nil {
		return nil, fmt.Errorf("kubernetes REST mapper: %w", err)
	}
	c, err := client.New(cfg, client.Options{Scheme: scheme, HTTPClient: hc, Mapper: mapper})
	if err != nil {
		return nil, fmt.Errorf("kubernetes client: %w", err)
	}
	cs, err := kubernetes.NewForConfigAndClient(cfg, hc)
	if err != nil {
		return nil, fmt.Errorf("kubernetes clientset: %w", err)
	}
	return &Clients{Client: c, Core: cs, Config: cfg, http: hc, mapper: mapper, scheme: scheme}, nil
}

// Where the in-cluster configuration lives (rest.InClusterConfig reads the same files).
const (
	serviceAccountDir = "/var/run/secrets/kubernetes.io/serviceaccount"
	serviceAccountEnv = "KUBERNETES_SERVICE_HOST"
)

// LoadOptions selects the Kubernetes configuration.
type LoadOptions struct {
	Kubeconfig string // explicit kubeconfig file; empty: in-cluster, then $KUBECONFIG, then ~/.kube/config
	Context    string // kubeconfig context; empty: the current one
	// Setting names how a user sets Kubeconfig for this command, for error messages, e.g.
	// "--kubernetes-kubeconfig (CNPG_MCP_KUBERNETES_KUBECONFIG, kubernetes.kubeconfig)". Default "--kubeconfig".
	Setting string
	// Getenv, HomeFile and ServiceAccountDir are for tests; defaults os.Getenv, ~/.kube/config and
	// the standard service account mount.
	Getenv            func(string) string
	HomeFile          string
	ServiceAccountDir string
}

// Source says which configuration was loaded, for the start-up log (never credentials).
type Source struct {
	InCluster bool
	Files     []string // kubeconfig files that exist, in precedence order
	Context   string   // kubeconfig context used
	Server    string   // API server URL
	Namespace string   // default namespace of the tools
}

// LogAttrs are the start-up log attributes describing s.
func (s Source) LogAttrs() []any {
	if s.InCluster {
		return []any{"source", "in-cluster service account", "server", s.Server, "namespace", s.Namespace}
	}
	return []any{"source", "kubeconfig", "files", s.Files, "context", s.Context, "server", s.Server, "namespace", s.Namespace}
}

// NotConfiguredError means no Kubernetes configuration exists anywhere the server looks. Its
// message lists what was looked for and how to configure one.
type NotConfiguredError struct {
	Looked  []string // one entry per place looked, with what was found there
	Setting string
}

func (e *NotConfiguredError) Error() string {
	return "no Kubernetes configuration found (looked for: " + strings.Join(e.Looked, "; ") + "). " +
		"Configure one: pass " + e.Setting + " with a kubeconfig file, set KUBECONFIG, write ~/.kube/config " +
		"(for a kind cluster: kind get kubeconfig --name NAME > ~/.kube/config), or run the server in a pod with a service account (the Helm chart does)"
}

// IsNotConfigured reports whether err is (or wraps) a NotConfiguredError.
func IsNotConfigured(err error) bool {
	var nc *NotConfiguredError
	return errors.As(err, &nc)
}

// Load returns the in-cluster configuration when running in a pod (and no kubeconfig is given),
// else the kubeconfig (explicit path, then $KUBECONFIG, then ~/.kube/config), with its Source; the
// default namespace is the service account's, else the kubeconfig context's, else "default". When
// none exists the error is a *NotConfiguredError; a kubeconfig that exists but is broken (bad
// YAML, unknown context, missing explicit file) is a plain error naming the problem.
func Load(o LoadOptions) (*rest.Config, Source, error) {
	if o.Getenv == nil {
		o.Getenv = os.Getenv
	}
	if o.ServiceAccountDir == "" {
		o.ServiceAccountDir = serviceAccountDir
	}
	if o.Setting == "" {
		o.Setting = "--kubeconfig"
	}
	if o.HomeFile == "" {
		o.HomeFile = clientcmd.RecommendedHomeFile
	}
	inClusterEnv := o.Getenv(serviceAccountEnv) != ""
	if o.Kubeconfig == "" && inClusterEnv {
		cfg, err := rest.InClusterConfig()
		switch {
		case err == nil:
			ns := "default"
			if b, err := os.ReadFile(filepath.Join(o.ServiceAccountDir, "namespace")); err == nil && strings.TrimSpace(string(b)) != "" {
				ns = strings.TrimSpace(string(b))
			}
			return cfg, Source{InCluster: true, Server: cfg.Host, Namespace: ns}, nil
		case !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, rest.ErrNotInCluster):
			return nil, Source{}, fmt.Errorf("%s is set, so this looks like a pod, but the in-cluster configuration failed (%w); mount the service account token (automountServiceAccountToken) or pass %s", serviceAccountEnv, err, o.Setting)
		}
		// No token mounted: fall back to a kubeconfig, as client-go's own loading rules do.
	}
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.MigrationRules = nil // never move old files around
	if env := o.Getenv(clientcmd.RecommendedConfigPathEnvVar); env != "" {
		rules.Precedence = filepath.SplitList(env)
	} else {
		rules.Precedence = []string{o.HomeFile}
	}
	if o.Kubeconfig != "" {
		rules.ExplicitPath = o.Kubeconfig
	}
	cc := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{CurrentContext: o.Context})
	cfg, err := cc.ClientConfig()
	if err != nil {
		if clientcmd.IsEmptyConfig(err) && o.Kubeconfig == "" {
			return nil, Source{}, notConfigured(o, rules.Precedence, inClusterEnv)
		}
		if o.Kubeconfig != "" {
			return nil, Source{}, fmt.Errorf("kubeconfig %s (from %s): %w", o.Kubeconfig, o.Setting, err)
		}
		return nil, Source{}, fmt.Errorf("kubeconfig: %w", err)
	}
	src := Source{Server: cfg.Host, Context: o.Context}
	if raw, err := cc.RawConfig(); err == nil && src.Context == "" {
		src.Context = raw.CurrentContext
	}
	if o.Kubeconfig != "" {
		src.Files = []string{o.Kubeconfig}
	} else {
		for _, f := range rules.Precedence {
			if _, err := os.Stat(f); err == nil {
				src.Files = append(src.Files, f)
			}
		}
	}
	src.Namespace, _, err = cc.Namespace()
	if err != nil || src.Namespace == "" {
		src.Namespace = "default"
	}
	return cfg, src, nil
}

func notConfigured(o LoadOptions, files []string, inClusterEnv bool) *NotConfiguredError {
	e := &NotConfiguredError{Setting: o.Setting}
	e.Looked = append(e.Looked, o.Setting+": not set")
	if env := o.Getenv(clientcmd.RecommendedConfigPathEnvVar); env != "" {
		e.Looked = append(e.Looked, "$KUBECONFIG="+env+": "+missing(files))
	} else {
		e.Looked = append(e.Looked, "$KUBECONFIG: not set", "~/.kube/config ("+o.HomeFile+"): "+missing(files))
	}
	sa := "in-cluster service account: " + serviceAccountEnv + " not set"
	if inClusterEnv {
		sa = "in-cluster service account: " + serviceAccountEnv + " is set"
	}
	if _, err := os.Stat(filepath.Join(o.ServiceAccountDir, "token")); err != nil {
		sa += ", no token at " + filepath.Join(o.ServiceAccountDir, "token")
	}
	e.Looked = append(e.Looked, sa)
	return e
}

// missing describes why kubeconfig files yielded nothing: absent, or present but empty.
func missing(files []string) string {
	for _, f := range files {
		if _, err := os.Stat(f); err == nil {
			return "no clusters or contexts in it"
		}
	}
	return "no such file"
}

// Unconfigured returns clients that cannot reach Kubernetes: every tool call and the readiness
// check fail with err (a *NotConfiguredError), never with a connection error to a placeholder address.
func Unconfigured(err error) *Clients { return &Clients{Err: err} }

// ReadyCheck returns nil when the API server answers an authenticated discovery request.
func (c *Clients) ReadyCheck(ctx context.Context) error {
	if c.Err != nil {
		return c.Err
	}
	if err := c.Core.Discovery().RESTClient().Get().AbsPath("/api").Do(ctx).Error(); err != nil {
		return fmt.Errorf("kubernetes API not reachable: %w", err)
	}
	return nil
}
