package app

import (
	"fmt"
	"log/slog"
	"net/http"
	"slices"

	"github.com/cnpg-mcp/cnpg-mcp/server/bearer"
	"github.com/cnpg-mcp/cnpg-mcp/server/config"
	"github.com/cnpg-mcp/cnpg-mcp/server/health"
	"github.com/cnpg-mcp/cnpg-mcp/server/mcpserver"
	"github.com/cnpg-mcp/cnpg-mcp/server/tools"
	"github.com/cnpg-mcp/cnpg-mcp/server/tools/kube"
	"k8s.io/client-go/rest"
)

// Kubernetes builds the tools' Kubernetes clients from the config. With allowMissing (make run on a
// machine without a cluster) a missing configuration is not fatal: the clients point at an address
// that refuses connections, tool calls fail with a clear error and /readyz reports it.
func Kubernetes(cfg *config.Config, allowMissing bool) (*kube.Clients, string, error) {
	rc, ns, err := kube.LoadConfig(cfg.Kubernetes.Kubeconfig, cfg.Kubernetes.Context)
	if err != nil {
		if !allowMissing {
			return nil, "", fmt.Errorf("%w (kubernetes.kubeconfig / --kubernetes-kubeconfig)", err)
		}
		rc, ns = &rest.Config{Host: "https://127.0.0.1:1"}, "default"
	}
	kc, err := kube.New(rc)
	if err != nil {
		return nil, "", err
	}
	return kc, ns, nil
}

// NewMCPServer builds the MCP server with every CloudNativePG tool.
// requireIdentity is set behind the bearer check (HTTP) and not for stdio; obs may be nil.
func NewMCPServer(cfg *config.Config, kc *kube.Clients, defaultNS string, log *slog.Logger, obs mcpserver.ToolObserver, requireIdentity bool) (*mcpserver.Server, error) {
	deps := &tools.Deps{Client: kc.Client, Core: kc.Core, DefaultNamespace: defaultNS, AllowedNamespaces: cfg.Kubernetes.Namespaces,
		ImageTemplate: cfg.Kubernetes.ImageTemplate, ImageCatalog: cfg.Kubernetes.ImageCatalog, Logger: log}
	if len(cfg.Kubernetes.Namespaces) > 0 {
		deps.DefaultNamespace = cfg.Kubernetes.Namespaces[0]
	}
	return mcpserver.New(mcpserver.Options{Version: Version, Tools: tools.All(deps), ReadOnly: cfg.MCP.ReadOnly,
		RequireIdentity: requireIdentity, Logger: log, Observer: obs})
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
	kc, ns, err := Kubernetes(a.Config, allowMissingKube)
	if err != nil {
		return err
	}
	srv, err := NewMCPServer(a.Config, kc, ns, a.Log, a.Metrics, true)
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
