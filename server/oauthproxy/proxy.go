// Package oauthproxy is the server's own OAuth 2.1 authorization server towards MCP clients, with the
// user's login delegated to an upstream OpenID provider (Auth0 in production, mockauth0 in tests).
//
// One file per endpoint or RFC, each with a doc comment listing the checks it implements by catalogue
// ID (shared/spec/auth-checks.md) and the test that proves each:
//
//	metadata.go   RFC 8414 AS metadata, RFC 9728 protected-resource metadata
//	register.go   RFC 7591 dynamic client registration (+ redirect.go: redirect-URI rules)
//	cimd.go       Client ID Metadata Documents (SSRF-safe fetch, caching)
//	authorize.go  /authorize (+ resource.go: RFC 8707 resource validation)
//	consent.go    the consent page (server-side CSRF + double-submit cookie, browser binding)
//	callback.go   the upstream callback (binding check, upstream exchange, our code)
//	token.go      /token: authorization_code and refresh_token grants
//	revoke.go     RFC 7009 revocation
//
// Everything single-use is consumed atomically in the store; secrets never appear in logs, errors or
// pages.
package oauthproxy

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/cnpg-mcp/cnpg-mcp/server/accesstoken"
	"github.com/cnpg-mcp/cnpg-mcp/server/store"
	"github.com/cnpg-mcp/cnpg-mcp/server/upstream"
)

// Upstream is what the proxy needs from the upstream OpenID provider (*upstream.Client).
type Upstream interface {
	// Ready reports whether the provider can be used now (discovered; ErrUnavailable otherwise).
	Ready(ctx context.Context) error
	AuthCodeURL(state, nonce, verifier, resource string) string
	Exchange(ctx context.Context, code, verifier, nonce string) (upstream.Result, error)
	Refresh(ctx context.Context, t upstream.Tokens, subject string) (upstream.Tokens, error)
	Revoke(ctx context.Context, token string) error
}

// Lifetimes of what the proxy issues.
type Lifetimes struct {
	AccessToken       time.Duration
	AuthorizationCode time.Duration
	Transaction       time.Duration
	RefreshIdle       time.Duration
	RefreshAbsolute   time.Duration
	// UnusedRegistration: a registered client that completes no authorization in this time is
	// forgotten (it gets 401 invalid_client at /token and registers again).
	UnusedRegistration time.Duration
	// RefreshReuseWindow: for this long after a rotation, the same client presenting the old refresh
	// token (while the new one is unused) gets the identical answer again instead of being treated
	// as reuse. Zero is strict reuse detection (the server's configuration defaults to 60 s).
	RefreshReuseWindow time.Duration
}

// Options configures the proxy.
type Options struct {
	Issuer          string // canonical issuer, used byte-identically everywhere
	Resource        string // canonical MCP resource URL (aud of our tokens)
	ResourceName    string
	ScopesSupported []string
	// ScopeDescriptions say in plain words what each scope allows; the consent page shows them
	// (a scope without one is shown by its name).
	ScopeDescriptions map[string]string
	// BaseScopes are granted whenever they are requested: the consent page lists them without a
	// checkbox (the MCP endpoint needs them for every request). Every other requested scope can be
	// unticked, so the user may grant less than the client asked for.
	BaseScopes   []string
	CallbackPath string // e.g. /auth/callback (below the issuer's base path)
	Store        store.Store
	Tokens       *accesstoken.Tokens
	Upstream     Upstream
	Lifetimes    Lifetimes
	// SecureCookies selects __Host- cookie names with Secure. It is false only when the public URL
	// is plain http on loopback (development): browsers refuse __Host- and Secure cookies there.
	SecureCookies bool
	CIMD          *CIMD // nil disables Client ID Metadata Documents
	// InvalidGrantStatus overrides the HTTP status of invalid_grant token errors (RFC 6749: 400;
	// some clients want 401). Zero means 400.
	InvalidGrantStatus int
	Now                func() time.Time
	Logger             *slog.Logger
	// Wrap decorates each endpoint handler (metrics); nil leaves them as they are.
	Wrap func(route string, h http.Handler) http.Handler
	// Rotation tunes the refresh rotation under faults (zero values: defaults).
	Rotation RotationOptions
	// Identity decides what the user's upstream identity must hold and how old it may get.
	Identity IdentityOptions
}

// IdentityOptions concern the user's upstream identity kept with the grant (store.UpstreamIdentity:
// the verified claims, read at sign-in and at every upstream refresh). A server that impersonates
// users in Kubernetes sets both.
type IdentityOptions struct {
	// Check, when set, judges the claims at sign-in; an error refuses the sign-in (the client gets
	// access_denied with the reason), e.g. "the identity provider sent no email".
	Check func(claims map[string]any) error
	// MaxAge makes a refresh-token rotation refresh upstream (so read the claims again) once the
	// kept identity is older, even when the upstream access token is still good: a group removed
	// upstream takes effect at the latest MaxAge plus one access-token lifetime later. A grant
	// without an upstream refresh token then ends (invalid_grant: sign in again). Zero: the
	// identity is read again only when the upstream tokens need refreshing anyway.
	MaxAge time.Duration
}

// Proxy serves the OAuth endpoints.
type Proxy struct {
	o      Options
	base   string // issuer without trailing slash
	prefix string // path of base, "" at the root
	log    *slog.Logger
	now    func() time.Time
	rot    RotationOptions
	settle *settler
}

// New checks the options.
func New(o Options) (*Proxy, error) {
	if o.Issuer == "" || o.Resource == "" || o.Store == nil || o.Tokens == nil || o.Upstream == nil {
		return nil, errors.New("oauthproxy: issuer, resource, store, tokens and upstream are required")
	}
	u, err := url.Parse(o.Issuer)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("oauthproxy: issuer %q is not an absolute URL", o.Issuer)
	}
	if o.CallbackPath == "" {
		o.CallbackPath = "/auth/callback"
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Wrap == nil {
		o.Wrap = func(_ string, h http.Handler) http.Handler { return h }
	}
	l := &o.Lifetimes
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&l.AccessToken, time.Hour)
	def(&l.AuthorizationCode, 5*time.Minute)
	def(&l.Transaction, 10*time.Minute)
	def(&l.RefreshIdle, 14*24*time.Hour)
	def(&l.RefreshAbsolute, 90*24*time.Hour)
	def(&l.UnusedRegistration, 24*time.Hour)
	if l.RefreshReuseWindow < 0 {
		return nil, errors.New("oauthproxy: the refresh reuse window must not be negative (0 is strict)")
	}
	o.Rotation.defaults()
	if o.Rotation.Lease <= 5*time.Second {
		return nil, errors.New("oauthproxy: the refresh claim lease must be longer than 5s (the upstream call gets the lease minus 5s)")
	}
	base := strings.TrimSuffix(o.Issuer, "/")
	bu, _ := url.Parse(base)
	p := &Proxy{o: o, base: base, prefix: bu.EscapedPath(), log: o.Logger, now: o.Now, rot: o.Rotation}
	p.settle = newSettler(o.Store, o.Logger, o.Rotation, p.revokeUpstream)
	return p, nil
}

// Close saves what is still pending (rotations whose commit failed) while ctx allows; call it
// before closing the store.
func (p *Proxy) Close(ctx context.Context) { p.settle.close(ctx) }

// Endpoints are the public URLs of the endpoints (for start-up logs and metadata).
type Endpoints struct {
	Metadata, ProtectedResource, Authorize, Token, Register, Revoke, Consent, Callback string
}

// Endpoints returns the endpoint URLs.
func (p *Proxy) Endpoints() Endpoints {
	iu, _ := url.Parse(p.o.Issuer)
	origin := iu.Scheme + "://" + iu.Host
	return Endpoints{
		Metadata:          origin + p.metadataPath(),
		ProtectedResource: origin + p.prmPath(),
		Authorize:         p.base + "/authorize",
		Token:             p.base + "/token",
		Register:          p.base + "/register",
		Revoke:            p.base + "/revoke",
		Consent:           p.base + "/consent",
		Callback:          p.base + p.o.CallbackPath,
	}
}

// Handler returns the OAuth endpoints. Mount it at the root of the server's mux.
func (p *Proxy) Handler() http.Handler {
	mux := http.NewServeMux()
	h := func(pattern, route string, f http.HandlerFunc) { mux.Handle(pattern, p.o.Wrap(route, f)) }
	h(p.metadataPath(), "metadata", p.cors(p.serveMetadata))
	h(p.prmPath(), "protected_resource_metadata", p.cors(p.serveProtectedResource))
	h(p.prefix+"/register", "register", p.cors(p.serveRegister))
	h(p.prefix+"/authorize", "authorize", p.serveAuthorize)
	h(p.prefix+"/consent", "consent", p.serveConsent)
	h(p.prefix+p.o.CallbackPath, "callback", p.serveCallback)
	h(p.prefix+"/token", "token", p.cors(p.serveToken))
	h(p.prefix+"/revoke", "revoke", p.cors(p.serveRevoke))
	return mux
}

// Paths lists the exact paths Handler serves (so the server mux can route them).
func (p *Proxy) Paths() []string {
	return []string{p.metadataPath(), p.prmPath(), p.prefix + "/register", p.prefix + "/authorize", p.prefix + "/consent",
		p.prefix + p.o.CallbackPath, p.prefix + "/token", p.prefix + "/revoke"}
}

// cors allows cross-origin use of the endpoints browser-based clients call directly (SEC-03):
// metadata, registration, token and revocation. Never the authorization endpoint (AZ-08).
func (p *Proxy) cors(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Origin") != "" {
			w.Header().Set("Access-Control-Allow-Origin", "*")
			w.Header().Set("Access-Control-Expose-Headers", "WWW-Authenticate")
		}
		if r.Method == http.MethodOptions {
			w.Header().Set("Access-Control-Allow-Methods", "GET, POST, OPTIONS")
			w.Header().Set("Access-Control-Allow-Headers", "Authorization, Content-Type, MCP-Protocol-Version")
			w.Header().Set("Access-Control-Max-Age", "86400")
			w.WriteHeader(http.StatusNoContent)
			return
		}
		next(w, r)
	}
}

// RetryAfterSeconds is the Retry-After of every 503 the endpoints send.
const RetryAfterSeconds = "5"

// unavailablePage answers a browser request the store could not serve: 503 with Retry-After. What
// the request would have consumed (the consent form, the callback's state) is still there, so
// reloading the page later works.
func unavailablePage(w http.ResponseWriter) {
	w.Header().Set("Retry-After", RetryAfterSeconds)
	page(w, http.StatusServiceUnavailable, pageData{Title: "Temporarily unavailable",
		Message: "The server cannot reach its storage right now. Nothing was lost: reload this page in a few seconds."})
}

// tooLarge reports a request body over limit bytes (413, naming the limit).
func tooLarge(err error) (int64, bool) {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return mbe.Limit, true
	}
	return 0, false
}

// randomToken returns 256 random bits, base64url (43 characters; also a valid PKCE verifier).
func randomToken() string { return accesstoken.NewID() }

func hashBytes(s string) []byte {
	h := sha256.Sum256([]byte(s))
	return h[:]
}

func equalSecret(a, b string) bool { return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1 }

// errRepeated marks a parameter given more than once (AZ-07, TOK-13).
type errRepeated struct{ name string }

func (e errRepeated) Error() string { return "parameter " + e.name + " is repeated" }

// params reads single-valued parameters: a repeated parameter is an error, an empty one is treated as
// omitted (BCP-27), unknown ones are ignored.
func params(v url.Values, names ...string) (map[string]string, error) {
	out := make(map[string]string, len(names))
	for _, n := range names {
		vs := v[n]
		if len(vs) > 1 {
			return out, errRepeated{n}
		}
		if len(vs) == 1 && vs[0] != "" {
			out[n] = vs[0]
		}
	}
	return out, nil
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

type oauthError struct {
	Error       string `json:"error"`
	Description string `json:"error_description,omitempty"`
}

// scopeList filters requested scopes to the supported ones (unknown scopes are ignored, CLI-11);
// an empty result means all supported scopes.
func (p *Proxy) scopeList(requested string) []string {
	var out []string
	seen := map[string]bool{}
	for _, s := range strings.Fields(requested) {
		for _, sup := range p.o.ScopesSupported {
			if s == sup && !seen[s] {
				out = append(out, s)
				seen[s] = true
			}
		}
	}
	if len(out) == 0 {
		out = append(out, p.o.ScopesSupported...)
	}
	return out
}

// cookieName gives the browser cookie name: __Host-… over https; a plain name for http loopback
// development, where browsers refuse the __Host- prefix.
func (p *Proxy) cookieName(kind, key string) string {
	n := "cnpg-mcp-" + kind + "-" + store.HashKey(key)[:16]
	if p.o.SecureCookies {
		return "__Host-" + n
	}
	return n
}

func (p *Proxy) setCookie(w http.ResponseWriter, name, value string, until time.Time) {
	maxAge := int(until.Sub(p.now()).Seconds())
	if maxAge <= 0 {
		maxAge = -1
	}
	http.SetCookie(w, &http.Cookie{Name: name, Value: value, Path: "/", MaxAge: maxAge, HttpOnly: true,
		Secure: p.o.SecureCookies, SameSite: http.SameSiteLaxMode})
}

func (p *Proxy) clearCookie(w http.ResponseWriter, name string) {
	http.SetCookie(w, &http.Cookie{Name: name, Value: "", Path: "/", MaxAge: -1, HttpOnly: true,
		Secure: p.o.SecureCookies, SameSite: http.SameSiteLaxMode})
}

// clientRedirect builds the authorization response to the client: the registered redirect URI as a
// raw string, plus our parameters and always iss (AZ-14), and state exactly as received, only if the
// client sent one (AZ-05).
func (p *Proxy) clientRedirect(t store.Transaction, extra url.Values) string {
	v := url.Values{}
	for k, vs := range extra {
		v[k] = vs
	}
	if t.HasState {
		v.Set("state", t.State)
	}
	v.Set("iss", p.o.Issuer)
	sep := "?"
	if strings.Contains(t.RedirectURI, "?") {
		sep = "&"
		if strings.HasSuffix(t.RedirectURI, "?") || strings.HasSuffix(t.RedirectURI, "&") {
			sep = ""
		}
	}
	return t.RedirectURI + sep + v.Encode()
}

// writeRaw writes JSON with the headers already set (metadata documents are cacheable).
func writeRaw(w http.ResponseWriter, v any) {
	w.WriteHeader(http.StatusOK)
	_ = json.NewEncoder(w).Encode(v)
}
