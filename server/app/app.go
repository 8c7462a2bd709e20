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
	"sync"
	"time"

	"github.com/cnpg-mcp/cnpg-mcp/server/accesstoken"
	"github.com/cnpg-mcp/cnpg-mcp/server/config"
	"github.com/cnpg-mcp/cnpg-mcp/server/metrics"
	"github.com/cnpg-mcp/cnpg-mcp/server/oauthproxy"
	"github.com/cnpg-mcp/cnpg-mcp/server/store"
	"github.com/cnpg-mcp/cnpg-mcp/server/store/bolt"
	"github.com/cnpg-mcp/cnpg-mcp/server/store/postgres"
	"github.com/cnpg-mcp/cnpg-mcp/server/store/seal"
	"github.com/cnpg-mcp/cnpg-mcp/server/tools"
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
	// upstreamErr is why the upstream is not usable (nil: discovered, credentials accepted).
	upstreamMu  sync.Mutex
	upstreamErr error

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
	a.Upstream = upstream.New(upstream.Options{
		Issuer: cfg.Issuer, ClientID: cfg.ClientID, ClientSecret: cfg.Secrets.ClientSecret, Audience: cfg.Audience,
		Scope: cfg.Scope, RedirectURL: base + cfg.CallbackPath, JWKSURI: cfg.JWKSURI, JWEKey: cfg.Secrets.UpstreamJWEKey,
		ForwardResource: cfg.ForwardResource, AuthInBody: cfg.ClientAuthMethod == "client_secret_post", HTTPClient: o.UpstreamHTTPClient, Now: o.Now, Logger: o.Logger,
		IdentityClaims: cfg.Kubernetes.Impersonating(),
	})
	if err := a.checkUpstream(ctx, true); err != nil {
		return nil, err
	}
	var tk []accesstoken.Key
	for i, k := range cfg.SigningKeys {
		tk = append(tk, accesstoken.Key{ID: k.ID, Secret: cfg.Secrets.SigningKeys[i], NotAfter: k.NotAfter})
	}
	topts := accesstoken.Options{Issuer: cfg.IssuerURL(), Audience: cfg.ResourceURL(), Keys: tk, Grants: a.Store, Now: o.Now}
	var ident oauthproxy.IdentityOptions
	if cfg.Kubernetes.Impersonating() {
		m := Mapping(cfg)
		topts.KubeUsers = kubeUsers{grants: a.Store, mapping: m}
		ident = oauthproxy.IdentityOptions{MaxAge: cfg.Kubernetes.Impersonation.MaxIdentityAge,
			Check: func(claims map[string]any) error { _, err := m.Map(claims, time.Time{}); return err }}
	}
	a.Tokens, err = accesstoken.New(topts)
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
		Issuer: cfg.IssuerURL(), Resource: cfg.ResourceURL(), ResourceName: cfg.ResourceName, ScopesSupported: GrantableScopes(cfg),
		ScopeDescriptions: cfg.ScopeDescriptions, BaseScopes: []string{tools.ScopeRead},
		CallbackPath: cfg.CallbackPath, Store: a.Store, Tokens: a.Tokens, Upstream: a.Upstream, SecureCookies: !cfg.Dev(), CIMD: cimd,
		Now: o.Now, Logger: o.Logger, InvalidGrantStatus: cfg.InvalidGrantStatus, Wrap: a.Metrics.Middleware,
		Lifetimes: oauthproxy.Lifetimes{AccessToken: cfg.Lifetimes.AccessToken, AuthorizationCode: cfg.Lifetimes.AuthorizationCode,
			Transaction: cfg.Lifetimes.Transaction, RefreshIdle: cfg.Lifetimes.RefreshTokenIdle, RefreshAbsolute: cfg.Lifetimes.RefreshTokenAbsolute,
			UnusedRegistration: cfg.Lifetimes.UnusedRegistration, RefreshReuseWindow: cfg.Lifetimes.ReuseWindow()},
		Identity: ident,
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

// checkUpstream discovers the upstream provider and verifies our client credentials with it
// (upstream.CheckCredentials). Wrong credentials, an application that may not use the code grant,
// or a discovery document that contradicts the configuration are fatal at start-up (the error names
// the setting to fix); an unreachable provider is not: the server serves, /readyz says "upstream"
// is not ready and why, and Run checks again until it is.
func (a *App) checkUpstream(ctx context.Context, startup bool) error {
	cctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	err := a.Upstream.Discover(cctx)
	if err != nil && !errors.Is(err, upstream.ErrUnavailable) {
		return err // issuer mismatch, endpoints missing: configuration
	}
	if err == nil {
		err = a.Upstream.CheckCredentials(cctx)
	}
	c := a.Config
	var ce *upstream.CredentialsError
	switch {
	case err == nil:
		if startup {
			a.Log.Info("upstream client credentials accepted", "client_id", c.ClientID, "client_auth", c.ClientAuthMethod)
		} else if a.upstreamState() != nil {
			a.Log.Info("upstream reachable again; client credentials accepted", "issuer", c.Issuer)
		}
		a.setUpstream(nil)
	case errors.As(err, &ce):
		var fix error
		if ce.Code == "unauthorized_client" {
			fix = fmt.Errorf("%w: allow the Authorization Code grant for the application %q at the provider (Auth0: Applications → the application → Advanced Settings → Grant Types)", ce, c.ClientID)
		} else {
			fix = fmt.Errorf("%w: check that %s holds the current client secret of the application %q (%s), and that %s, now %s, is the application's token endpoint authentication method",
				ce, config.Describe("client_secret_file"), c.ClientID, config.Describe("client_id"), config.Describe("client_auth_method"), c.ClientAuthMethod)
		}
		a.setUpstream(fix)
		if startup {
			return fix
		}
		a.Log.Error("upstream refuses our client credentials", "err", fix.Error())
	case errors.Is(err, upstream.ErrUnavailable):
		a.setUpstream(err)
		a.Log.Warn("upstream identity provider not reachable: serving, but not ready until it is (checked again every 15 s)", "issuer", c.Issuer, "err", err.Error())
	default:
		// The check is inconclusive (an answer it does not know): say so, do not block.
		a.setUpstream(nil)
		a.Log.Warn("upstream client credentials could not be verified", "err", err.Error())
	}
	return nil
}

func (a *App) setUpstream(err error) {
	a.upstreamMu.Lock()
	a.upstreamErr = err
	a.upstreamMu.Unlock()
}

// upstreamState is why the upstream is not usable now (nil when it is).
func (a *App) upstreamState() error {
	a.upstreamMu.Lock()
	defer a.upstreamMu.Unlock()
	return a.upstreamErr
}

// UpstreamReady is the /readyz check of the upstream provider.
func (a *App) UpstreamReady(context.Context) error {
	if err := a.upstreamState(); err != nil {
		return fmt.Errorf("%s: %w", a.Config.Issuer, err)
	}
	return nil
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
		"refresh_token", fmt.Sprintf("rotating, reuse detection, idle %s, absolute %s, reuse window %s", c.Lifetimes.RefreshTokenIdle, c.Lifetimes.RefreshTokenAbsolute, c.Lifetimes.ReuseWindow()),
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
	if k := c.Kubernetes; k.Impersonating() {
		im := k.Impersonation
		a.Log.Info("tool calls act as the signed-in user in Kubernetes (kubernetes.identity: impersonate; Impersonate-User/Impersonate-Group)", "user_claim", im.UserClaim,
			"user_prefix", im.UserPrefix, "groups_claim", im.GroupsClaim, "groups_prefix", im.GroupsPrefix, "users", im.Users, "groups", im.Groups,
			"max_identity_age", im.MaxIdentityAge.String(), "group_change_lag_at_most", (im.MaxIdentityAge + c.Lifetimes.AccessToken).String(), "client_cache", im.CacheSize)
		if !strings.Contains(" "+c.Scope+" ", " offline_access ") {
			a.Log.Warn("scope has no offline_access: without an upstream refresh token every grant ends once its identity is older than kubernetes.impersonation.max_identity_age (the user signs in again)")
		}
	} else {
		a.Log.Info("tool calls act as the server's own Kubernetes identity, the same for every user (kubernetes.identity: service-account)")
	}
	a.Log.Info("storage", "driver", c.Storage.Driver, "backend", a.Store.Backend(), "path", c.Storage.Path, "sealing_key_ids", len(c.SealingKeys))
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
	upcheck := time.NewTicker(15 * time.Second)
	defer upcheck.Stop()
	for {
		select {
		case <-upcheck.C:
			if a.upstreamState() != nil {
				_ = a.checkUpstream(ctx, false)
			}
		case err := <-errc:
			a.closeStore(ctx)
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
			if cerr := a.closeStore(ctx); err == nil {
				err = cerr
			}
			if errors.Is(err, http.ErrServerClosed) {
				err = nil
			}
			return err
		}
	}
}

// closeStore saves what the OAuth proxy still holds in memory (rotations whose commit failed while
// the store was down; at most 10 s), then closes the store.
func (a *App) closeStore(ctx context.Context) error {
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	a.Proxy.Close(sctx)
	cancel()
	return a.Store.Close()
}

// URL is the server's public base URL.
func (a *App) URL() string { return strings.TrimSuffix(a.Config.PublicURL, "/") }
