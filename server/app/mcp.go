package app

import (
	"errors"
	"log/slog"
	"net/http"
	"slices"

	"github.com/cnpg-mcp/cnpg-mcp/server/bearer"
	"github.com/cnpg-mcp/cnpg-mcp/server/config"
	"github.com/cnpg-mcp/cnpg-mcp/server/health"
	"github.com/cnpg-mcp/cnpg-mcp/server/mcpserver"
	"github.com/cnpg-mcp/cnpg-mcp/server/tools"
	"github.com/cnpg-mcp/cnpg-mcp/server/tools/kube"
)

// KubeSetting is how `serve` users set the kubeconfig, for messages.
const KubeSetting = "--kubernetes-kubeconfig (or CNPG_MCP_KUBERNETES_KUBECONFIG, kubernetes.kubeconfig in the config file)"

// Kubernetes builds the tools' Kubernetes clients from the config and says where the configuration
// came from. setting names how users of this command set the kubeconfig (KubeSetting for serve).
// With allowMissing (make run on a machine without a cluster) a missing configuration is not fatal:
// the clients carry the *kube.NotConfiguredError, every tool call answers with it and /readyz reports
// it; a broken configuration (bad file, unknown context) is always an error.
func Kubernetes(cfg *config.Config, setting string, allowMissing bool) (*kube.Clients, kube.Source, error) {
	rc, src, err := kube.Load(kube.LoadOptions{Kubeconfig: cfg.Kubernetes.Kubeconfig, Context: cfg.Kubernetes.Context, Setting: setting})
	if err != nil {
		if allowMissing && kube.IsNotConfigured(err) {
			return kube.Unconfigured(err), kube.Source{Namespace: "default"}, nil
		}
		return nil, kube.Source{}, err
	}
	kc, err := kube.New(rc)
	if err != nil {
		return nil, kube.Source{}, err
	}
	return kc, src, nil
}

// NewMCPServer builds the MCP server with every CloudNativePG tool.
// requireIdentity is set behind the bearer check (HTTP) and not for stdio; obs may be nil.
// With kubernetes.identity: impersonate every call acts as the signed-in user (its identity comes
// from the bearer check), which needs requireIdentity.
func NewMCPServer(cfg *config.Config, kc *kube.Clients, defaultNS string, log *slog.Logger, obs mcpserver.ToolObserver, requireIdentity bool) (*mcpserver.Server, error) {
	if cfg.Kubernetes.Impersonating() && !requireIdentity {
		return nil, errors.New("kubernetes.identity: impersonate needs signed-in users (the HTTP endpoint with OAuth); here there is no user to act as")
	}
	provider, err := kube.NewProvider(kc, kube.ProviderOptions{Impersonate: cfg.Kubernetes.Impersonating(), CacheSize: cfg.Kubernetes.Impersonation.CacheSize})
	if err != nil {
		return nil, err
	}
	deps := &tools.Deps{Kube: provider, Unavailable: kc.Err, DefaultNamespace: defaultNS, AllowedNamespaces: cfg.Kubernetes.Namespaces,
		ImageTemplate: cfg.Kubernetes.ImageTemplate, ImageCatalog: cfg.Kubernetes.ImageCatalog, Logger: log}
	if len(cfg.Kubernetes.Namespaces) > 0 {
		deps.DefaultNamespace = cfg.Kubernetes.Namespaces[0]
	}
	return mcpserver.New(mcpserver.Options{Version: Version, Tools: tools.All(deps), ReadOnly: cfg.MCP.ReadOnly, Toolsets: cfg.MCP.Toolsets,
		RequireIdentity: requireIdentity, Logger: log, Observer: obs, CompressToolsList: cfg.MCP.CompressToolsList})
}

// The scope strategy (docs/mcp-endpoint.md, "Scopes"): the first 401 names every scope the served
// tools need, so clients that follow the MCP scope selection strategy (the challenge's scope, as
// given) ask for all of them in one authorization, and the consent page lets the user grant less.
// Per-tool 403 step-up challenges stay for clients that start narrow.

// ChallengeScopes is the scope of the 401 challenge: mcp:read plus every scope a served tool needs
// (mcp:write unless read-only), in a stable order.
func ChallengeScopes(srv *mcpserver.Server) []string {
	out := []string{tools.ScopeRead}
	for _, name := range srv.ToolNames() {
		for _, s := range srv.ToolScopes(name) {
			if !slices.Contains(out, s) {
				out = append(out, s)
			}
		}
	}
	return out
}

// GrantableScopes are the scopes the authorization server offers (metadata, protected-resource
// metadata, consent): the configured ones, without mcp:write on a read-only server, whose tools
// could never use it and whose consent page must not ask for it.
func GrantableScopes(cfg *config.Config) []string {
	if !cfg.MCP.ReadOnly {
		return cfg.ScopesSupported
	}
	return slices.DeleteFunc(slices.Clone(cfg.ScopesSupported), func(s string) bool { return s == tools.ScopeWrite })
}

// mountMCP serves the MCP endpoint behind the bearer check (our access-token verifier), plus /healthz
// and /readyz (store — naming the backend and what is wrong —, upstream provider and Kubernetes API).
func (a *App) mountMCP(mux *http.ServeMux, allowMissingKube bool) error {
	kc, src, err := Kubernetes(a.Config, KubeSetting, allowMissingKube)
	if err != nil {
		return err
	}
	a.kube, a.kubeErr = src, kc.Err
	srv, err := NewMCPServer(a.Config, kc, src.Namespace, a.Log, a.Metrics, true)
	if err != nil {
		return err
	}
	bw, err := bearer.New(bearer.Options{Verifier: a.Tokens, ResourceMetadataURL: a.Proxy.ProtectedResourceMetadataURL(),
		RequiredScopes: []string{tools.ScopeRead}, ChallengeScopes: ChallengeScopes(srv), ToolScopes: srv.ToolScopes,
		AllowedOrigins: a.Config.MCP.AllowedOrigins, Logger: a.Log})
	if err != nil {
		return err
	}
	mux.Handle(a.Config.MCP.Path, a.Metrics.Middleware("mcp", bw.Wrap(srv.Handler())))
	health.New(health.Options{Checks: []health.Checker{
		health.CheckFunc{CheckName: "store", Fn: a.Store.Ping},
		health.CheckFunc{CheckName: "upstream", Fn: a.UpstreamReady},
		health.CheckFunc{CheckName: "kubernetes", Fn: kc.ReadyCheck},
	}}).Register(mux)
	return nil
}
