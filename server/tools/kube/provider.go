package kube

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync/atomic"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/transport"
	"k8s.io/utils/lru"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/cnpg-mcp/cnpg-mcp/server/identity"
)

// Identity modes (config kubernetes.identity).
const (
	ModeServiceAccount = "service-account" // every call runs as the server's own identity
	ModeImpersonate    = "impersonate"     // every call runs as the signed-in user
)

// DefaultCacheSize is how many impersonated identities' clients a Provider keeps by default.
const DefaultCacheSize = 256

// ProviderOptions configure a Provider.
type ProviderOptions struct {
	// Impersonate makes every call act as the Kubernetes user of the request's identity
	// (identity.Identity.Kube); a call without one is refused, never run as the server itself.
	Impersonate bool
	// CacheSize bounds the impersonated identities whose clients are kept (least recently used
	// evicted); default DefaultCacheSize.
	CacheSize int
}

// Provider gives each tool call its clients. In service-account mode that is the server's own
// clients; in impersonate mode it is clients for the call's Kubernetes user and groups, built on a
// copy of the server's rest.Config with rest.ImpersonationConfig set and client-go's impersonating
// round tripper around the server's one HTTP transport — no TLS transport or connection pool per
// user, no discovery per user (the REST mapper is shared) — and kept in a bounded LRU cache keyed by
// user and groups, so a changed group set gets its own clients.
type Provider struct {
	base  *Clients
	o     ProviderOptions
	cache *lru.Cache
	// built and evicted count clients made and dropped (tests, metrics).
	built, evicted atomic.Int64
}

// NewProvider returns the Provider over base (the server's own clients).
func NewProvider(base *Clients, o ProviderOptions) (*Provider, error) {
	if o.CacheSize <= 0 {
		o.CacheSize = DefaultCacheSize
	}
	p := &Provider{base: base, o: o}
	if o.Impersonate && base.Err == nil {
		if base.Config.Impersonate.UserName != "" || len(base.Config.Impersonate.Groups) > 0 {
			return nil, errors.New("the server's Kubernetes configuration already impersonates someone (kubeconfig `as`/`as-groups`); in kubernetes.identity: impersonate the server sets Impersonate-User itself: remove it from the kubeconfig")
		}
		if base.http == nil {
			return nil, errors.New("kube: impersonation needs clients built by kube.New")
		}
	}
	p.cache = lru.NewWithEvictionFunc(o.CacheSize, func(lru.Key, any) { p.evicted.Add(1) })
	return p, nil
}

// Base returns the server's own clients (readiness checks, start-up).
func (p *Provider) Base() *Clients { return p.base }

// Impersonating reports whether calls act as the signed-in user.
func (p *Provider) Impersonating() bool { return p.o.Impersonate }

// ErrNoUser means a call in impersonate mode carries no Kubernetes user.
var ErrNoUser = errors.New("this server acts as the signed-in user in Kubernetes, but this request carries no user identity; nothing was done (the server never falls back to its own service account)")

// For returns the clients for the call whose context is ctx.
func (p *Provider) For(ctx context.Context) (*Clients, error) {
	if p.base.Err != nil {
		return nil, p.base.Err
	}
	if !p.o.Impersonate {
		return p.base, nil
	}
	id, ok := identity.FromContext(ctx)
	if !ok || id.Kube == nil {
		return nil, ErrNoUser
	}
	u := *id.Kube
	if u.Err != nil {
		return nil, fmt.Errorf("your sign-in cannot name you in Kubernetes, so nothing was done: %w. Sign in again (authorize the client again) once the identity provider sends it", u.Err)
	}
	if u.Name == "" {
		return nil, ErrNoUser
	}
	key := u.Key()
	if c, ok := p.cache.Get(key); ok {
		return c.(*Clients), nil
	}
	c, err := p.build(u)
	if err != nil {
		return nil, err
	}
	p.cache.Add(key, c) // a concurrent miss may build twice; the clients are equivalent and cheap
	return c, nil
}

// build makes the clients of one impersonated identity over the shared transport and mapper.
func (p *Provider) build(u identity.KubeUser) (*Clients, error) {
	cfg := rest.CopyConfig(p.base.Config)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: u.Name, Groups: u.Groups}
	hc := &http.Client{
		Transport: transport.NewImpersonatingRoundTripper(transport.ImpersonationConfig{UserName: u.Name, Groups: u.Groups}, p.base.http.Transport),
		Timeout:   p.base.http.Timeout,
	}
	c, err := client.New(cfg, client.Options{Scheme: p.base.scheme, Mapper: p.base.mapper, HTTPClient: hc})
	if err != nil {
		return nil, fmt.Errorf("kubernetes client for %s: %w", u.Name, err)
	}
	cs, err := kubernetes.NewForConfigAndClient(cfg, hc)
	if err != nil {
		return nil, fmt.Errorf("kubernetes clientset for %s: %w", u.Name, err)
	}
	p.built.Add(1)
	return &Clients{Client: c, Core: cs, Config: cfg, User: u.Name, Groups: u.Groups, http: hc, mapper: p.base.mapper, scheme: p.base.scheme}, nil
}

// Stats are the cache's counters: identities cached now, clients built, clients evicted.
func (p *Provider) Stats() (cached int, built, evicted int64) {
	return p.cache.Len(), p.built.Load(), p.evicted.Load()
}
