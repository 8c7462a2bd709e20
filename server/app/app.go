// Package app builds and runs the whole reference server from a validated config.Config, so that
// cmd main, hack/devstack and the end-to-end tests start exactly the same thing in-process:
// config → store → upstream client → access tokens → OAuth proxy → HTTP server.
package app

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/cnpg-mcp/cnpg-mcp/server/accesstoken"
	"github.com/cnpg-mcp/cnpg-mcp/server/config"
	"github.com/cnpg-mcp/cnpg-mcp/server/metrics"
	"github.com/cnpg-mcp/cnpg-mcp/server/oauthproxy"
	"github.com/cnpg-mcp/cnpg-mcp/server/store"
	"github.com/cnpg-mcp/cnpg-mcp/server/store/bolt"
	"github.com/cnpg-mcp/cnpg-mcp/server/store/postgres"
	"github.com/cnpg-mcp/cnpg-mcp/server/store/seal"
	"github.com/cnpg-mcp/cnpg-mcp/server/tools/kube"
	"github.com/cnpg-mcp/cnpg-mcp/server/upstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Options are the process-level knobs the config file does not carry.
type Options struct {
	Logger   *slog.Logger     // default: JSON on stderr at cfg.LogLevel
	Listener net.Listener     // default: net.Listen("tcp", cfg.Listen)
	Now      func() time.Time // default time.Now
	// UpstreamHTTPClient talks to the upstream provider (default: 15 s timeout).
	UpstreamHTTPClient *http.Client
	// CIMDAllowIP/CIMDTLS override the metadata-document egress policy (tests only).
	CIMDAllowIP func(netip.Addr) bool
	CIMDTLS     *tls.Config
	// OAuthOnly serves the OAuth endpoints (and /metrics) without the MCP endpoint and health checks:
	// for tests of the authorization server alone.
	OAuthOnly bool
	// AllowMissingKubernetes keeps the server up without a Kubernetes configuration (make run):
	// tool calls then fail with a clear error and /readyz says why.
	AllowMissingKubernetes bool
}

// Version is the server version reported to MCP clients (set by the build).
var Version = "dev"

// App is a built server.
type App struct {
	Config   *config.Config
	Log      *slog.Logger
	Store    store.Store
	Tokens   *accesstoken.Tokens
	Upstream *upstream.Client
	Proxy    *oauthproxy.Proxy
	Metrics  *metrics.Metrics
	Handler  http.Handler
	listener net.Listener
	now      func() time.Time
	kube     kube.Source // where the tools' Kubernetes configuration came from
	kubeErr  error       // set when there is none (AllowMissingKubernetes)
}

// NewLogger returns the JSON logger at level.
func NewLogger(level string) *slog.Logger {
	var l slog.Level
	_ = l.UnmarshalText([]byte(level))
	return slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: l}))
}

// New builds everything. It contacts the upstream for discovery and opens the store; on error
// everything opened is closed again.
func New(ctx context.Context, cfg *config.Config, o Options) (a *App, err error) {
	if o.Logger == nil {
		o.Logger = NewLogger(cfg.LogLevel)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	a = &App{Config: cfg, Log: o.Logger, now: o.Now}
	var keys []seal.Key
	for i, k := range cfg.SealingKeys {
		keys = append(keys, seal.Key{ID: byte(k.ID), Secret: cfg.Secrets.SealingKeys[i]})
	}
	sealer, err := seal.New(keys)
	if err != nil {
		return nil, err
	}
	var kv store.KV
	switch cfg.Storage.Driver {
	case "postgres":
		kv, err = postgres.Open(ctx, cfg.Secrets.DSN)
	default:
		kv, err = bolt.Open(cfg.Storage.Path, 5*time.Second)
	}
	if err != nil {
		return nil, err
	}
	st := store.New(kv, sealer, o.Now)
	a.Store = st
	defer func() {
		if err != nil { // a is nil here: close what was opened through the local
			st.Close()
		}
	}()
	base := cfg.BaseURL()
	a.Upstream, err = upstream.Discover(ctx, upstream.Options{
		Issuer: cfg.Issuer, ClientID: cfg.ClientID, ClientSecret: cfg.Secrets.ClientSecret, Audience: cfg.Audience,
		Scope: cfg.Scope, RedirectURL: base + cfg.CallbackPath, JWKSURI: cfg.JWKSURI, JWEKey: cfg.Secrets.UpstreamJWEKey,
		ForwardResource: cfg.ForwardResource, AuthInBody: cfg.ClientAuthMethod == "client_secret_post", HTTPClient: o.UpstreamHTTPClient, Now: o.Now, Logger: o.Logger,
	})
	if err != nil {
		return nil, err
	}
	var tk []accesstoken.Key
	for i, k := range cfg.SigningKeys {
		tk = append(tk, accesstoken.Key{ID: k.ID, Secret: cfg.Secrets.SigningKeys[i], NotAfter: k.NotAfter})
	}
	a.Tokens, err = accesstoken.New(accesstoken.Options{Issuer: cfg.IssuerURL(), Audience: cfg.ResourceURL(), Keys: tk, Grants: a.Store, Now: o.Now})
	if err != nil {
		return nil, err
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	a.Metrics = metrics.New(reg)
	var cimd *oauthproxy.CIMD
	if *cfg.ClientMetadataDocuments {
		cimd = &oauthproxy.CIMD{HTTPClient: oauthproxy.NewCIMDHTTPClient(o.CIMDAllowIP, o.CIMDTLS), DefaultTTL: cfg.Lifetimes.ClientMetadataCache, MaxTTL: 24 * time.Hour}
	}
	a.Proxy, err = oauthproxy.New(oauthproxy.Options{
		Issuer: cfg.IssuerURL(), Resource: cfg.ResourceURL(), ResourceName: cfg.ResourceName, ScopesSupported: cfg.ScopesSupported,
		CallbackPath: cfg.CallbackPath, Store: a.Store, Tokens: a.Tokens, Upstream: a.Upstream, SecureCookies: !cfg.Dev(), CIMD: cimd,
		Now: o.Now, Logger: o.Logger, InvalidGrantStatus: cfg.InvalidGrantStatus, Wrap: a.Metrics.Middleware,
		Lifetimes: oauthproxy.Lifetimes{AccessToken: cfg.Lifetimes.AccessToken, AuthorizationCode: cfg.Lifetimes.AuthorizationCode,
			Transaction: cfg.Lifetimes.Transaction, RefreshIdle: cfg.Lifetimes.RefreshTokenIdle, RefreshAbsolute: cfg.Lifetimes.RefreshTokenAbsolute,
			UnusedRegistration: cfg.Lifetimes.UnusedRegistration},
	})
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	oauth := a.Proxy.Handler()
	for _, p := range a.Proxy.Paths() {
		mux.Handle(p, oauth)
	}
	mux.Handle("/metrics", metrics.Handler(reg))
	if !o.OAuthOnly {
		if err := a.mountMCP(mux, o.AllowMissingKubernetes); err != nil {
			return nil, err
		}
	}
	a.Handler = mux
	if o.Listener == nil {
		o.Listener, err = net.Listen("tcp", cfg.Listen)
		if err != nil {
			return nil, fmt.Errorf("listen on %s (set listen / --listen): %w", cfg.Listen, err)
		}
	}
	a.listener = o.Listener
	return a, nil
}

// Addr is the address the server listens on.
func (a *App) Addr() net.Addr { return a.listener.Addr() }

// LogStartup logs the token flow, as the seed's log lines did — never a secret.
func (a *App) LogStartup() {
	c := a.Config
	e := a.Proxy.Endpoints()
	m := a.Upstream.Metadata()
	a.Log.Info("cnpg-mcp server starting", "listen", a.listener.Addr().String(), "public_url", c.PublicURL, "issuer", c.IssuerURL(), "mcp_resource", c.ResourceURL())
	a.Log.Info("oauth endpoints", "metadata", e.Metadata, "protected_resource_metadata", e.ProtectedResource, "authorize", e.Authorize,
		"token", e.Token, "register", e.Register, "revoke", e.Revoke, "consent", e.Consent, "callback", e.Callback)
	a.Log.Info("token flow", "pkce", "S256 (clients) + own S256 pair upstream", "consent", c.Consent.Mode,
		"access_token", "HS256 at+jwt, kid="+c.SigningKeys[0].ID, "access_token_lifetime", c.Lifetimes.AccessToken.String(),
		"refresh_token", fmt.Sprintf("rotating, reuse detection, idle %s, absolute %s", c.Lifetimes.RefreshTokenIdle, c.Lifetimes.RefreshTokenAbsolute),
		"client_id_metadata_documents", *c.ClientMetadataDocuments, "secure_cookies", !c.Dev())
	a.Log.Info("upstream", "issuer", m.Issuer, "authorization_endpoint", m.AuthorizationEndpoint, "token_endpoint", m.TokenEndpoint,
		"revocation_endpoint", m.RevocationEndpoint, "client_id", c.ClientID, "client_auth", c.ClientAuthMethod, "audience", c.Audience, "scope", c.Scope,
		"forward_resource", c.ForwardResource, "jwe_private_key", c.Secrets.UpstreamJWEKey != nil, "callback", e.Callback)
	toolsets := c.MCP.Toolsets
	if len(toolsets) == 0 {
		toolsets = []string{"all"}
	}
	a.Log.Info("mcp endpoint", "url", c.ResourceURL(), "bearer", "our at+jwt (HS256), grant checked per request", "read_only", c.MCP.ReadOnly, "toolsets", toolsets,
		"namespaces", c.Kubernetes.Namespaces, "health", "/healthz /readyz", "metrics", "/metrics")
	switch {
	case a.kubeErr != nil:
		a.Log.Warn("kubernetes: tool calls will fail until this is fixed: "+a.kubeErr.Error(), "source", "none")
	case a.kube.Server != "":
		a.Log.Info("kubernetes", a.kube.LogAttrs()...)
	}
	a.Log.Info("storage", "driver", c.Storage.Driver, "path", c.Storage.Path, "sealing_key_ids", len(c.SealingKeys))
	if c.Dev() {
		a.Log.Warn("public_url is plain http on loopback: development mode (cookies without __Host-/Secure); use https in production")
	}
}

// Run serves until ctx is cancelled, then shuts down gracefully and closes the store.
func (a *App) Run(ctx context.Context) error {
	srv := &http.Server{Handler: a.Handler, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 60 * time.Second, IdleTimeout: 120 * time.Second,
		ErrorLog: slog.NewLogLogger(a.Log.Handler(), slog.LevelWarn)}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(a.listener) }()
	sweep := time.NewTicker(time.Minute)
	defer sweep.Stop()
	for {
		select {
		case err := <-errc:
			a.Store.Close()
			return err
		case <-sweep.C:
			if n, err := a.Store.Sweep(ctx); err != nil {
				a.Log.Warn("store sweep", "err", err)
			} else if n > 0 {
				a.Log.Debug("store sweep", "removed", n)
			}
		case <-ctx.Done():
			sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			err := srv.Shutdown(sctx)
			cancel()
			<-errc
			if cerr := a.Store.Close(); err == nil {
				err = cerr
			}
			if errors.Is(err, http.ErrServerClosed) {
				err = nil
			}
			return err
		}
	}
}

// URL is the server's public base URL.
func (a *App) URL() string { return strings.TrimSuffix(a.Config.PublicURL, "/") }
