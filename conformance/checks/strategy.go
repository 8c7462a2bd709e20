package checks

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/cnpg-mcp/cnpg-mcp/conformance/oauthclient"
	"github.com/cnpg-mcp/cnpg-mcp/conformance/report"
)

// Client strategies: the scopes, client types and repetitions a real client would use, so every
// row reaches the behaviour it is about.

const offlineAccess = "offline_access"

// scopeSet is the scopes the suite works with, without offline_access: those it requests (--scope,
// else the 401 challenge's scope, else the PRM's scopes_supported); when they are fewer than min
// and --scope was not given, the scopes the server advertises. The check is skipped when fewer
// than min remain.
func (t *T) scopeSet(min int) []string {
	var out []string
	for _, s := range scopesOf(t.Discovery().DefaultScope) {
		if s != offlineAccess {
			out = append(out, s)
		}
	}
	if len(out) >= min {
		return out
	}
	if t.env.cfg.Scope != "" {
		t.SkipFor("--scope", "this check needs %d scopes to narrow down from, and --scope %q lists %d (besides offline_access)", min, t.env.cfg.Scope, len(out))
	}
	if sup := t.supportedScopes(); len(sup) >= min {
		return sup
	}
	t.SkipFor("--scope", "this check needs %d scopes to narrow down from; the server asks for and advertises fewer (%v)", min, out)
	return nil
}

// wantsOfflineAccess reports whether a client would add offline_access to get a refresh token:
// --scope asks for it, or the authorization server lists it in scopes_supported (MCP 2026-07-28
// "Refresh Tokens": clients MAY add it then).
func (t *T) wantsOfflineAccess() bool {
	return slices.Contains(scopesOf(t.env.cfg.Scope), offlineAccess) || slices.Contains(t.AS().ScopesSupported, offlineAccess)
}

// withOfflineAccess adds offline_access to a scope when a client would (see wantsOfflineAccess).
func (t *T) withOfflineAccess(scope string) string {
	if slices.Contains(scopesOf(scope), offlineAccess) || !t.wantsOfflineAccess() {
		return scope
	}
	return strings.TrimSpace(scope + " " + offlineAccess)
}

// refreshGrant makes a grant that has a refresh token: the scope gets offline_access when a
// client would add it; a public client that gets none is followed, when confidential is true and
// the server advertises client secrets, by a confidential client (some servers issue refresh
// tokens only to those). Without a refresh token the check is inconclusive, saying how to get one.
func (t *T) refreshGrant(f Flow) *Grant { return t.refreshGrantAs(f, true) }

func (t *T) refreshGrantAs(f Flow, confidential bool) *Grant {
	if f.Name == "" {
		f.Name = "grant with a refresh token"
	}
	base := t.Discovery().DefaultScope
	if f.Scope != nil {
		base = *f.Scope
	}
	if sc := t.withOfflineAccess(base); sc != base || f.Scope != nil {
		f.Scope = &sc
	}
	g := t.Grant(f)
	if g.Tokens.RefreshToken != "" {
		return g
	}
	scope := g.Flow.Params.Get("scope")
	if confidential && f.Client == nil && !g.Client.Confidential() && t.offersSecrets() && t.AS().RegistrationEndpoint != "" {
		t.Logf("no refresh token for a public client; trying a confidential client")
		f.Client = t.ConfidentialClient("a public client got no refresh token")
		f.Name += " (confidential client)"
		if g2 := t.Grant(f); g2.Tokens.RefreshToken != "" {
			return g2
		}
	}
	why := "the authorization server decides whether to issue refresh tokens (RFC 9700 §4.14.2, see BCP-14); without one this row cannot be tested"
	if !slices.Contains(scopesOf(scope), offlineAccess) {
		why += fmt.Sprintf("; if the upstream issues them only for offline_access, pass --scope '%s offline_access'", strings.TrimSpace(scope))
	}
	t.Inconclusive(fmt.Sprintf("obtain a refresh token (scope %q)", scope), "the token response carries no refresh_token", why, "")
	return nil
}

// offersSecrets reports whether the AS advertises client_secret_basic or client_secret_post.
func (t *T) offersSecrets() bool {
	m := t.AS().TokenEndpointAuthMethodsSupported
	return slices.Contains(m, "client_secret_basic") || slices.Contains(m, "client_secret_post")
}

// revocationClient is the client the revocation rows use: nil (the usual public client) when
// the revocation endpoint takes public clients (revocation_endpoint_auth_methods_supported absent
// or listing none), else a confidential client of an advertised secret method, so the rows test
// revocation rather than client authentication.
func (t *T) revocationClient() *Client {
	as := t.AS()
	methods := as.RevocationEndpointAuthMethodsSupported
	if !as.Has("revocation_endpoint_auth_methods_supported") || slices.Contains(methods, "none") {
		return nil
	}
	t.Logf("revocation_endpoint_auth_methods_supported %v does not take public clients: using a confidential client", methods)
	return t.ConfidentialClient(fmt.Sprintf("revocation_endpoint_auth_methods_supported is %v", methods))
}

// Revoke posts a revocation request authenticated as c.
func (t *T) revokeAs(label string, c *Client, token, hint string) *oauthclient.Response {
	f := url.Values{"token": {token}, "client_id": {c.ID}}
	if hint != "" {
		f.Set("token_type_hint", hint)
	}
	h := c.authenticate(f)
	resp, err := t.client.PostForm(t.Label("%s", label), t.revocation(), f, h)
	t.Must(err, label)
	t.inconclusiveIfRateLimited(label, resp)
	return resp
}

// race repeats attempt (a race: concurrent requests that only sometimes expose a defect) until
// it reports the defect, max attempts are done or the budget is spent, and records the attempts.
func (t *T) race(max int, budget time.Duration, attempt func(i int) bool) {
	start := time.Now()
	a := report.Attempts{Max: max, BudgetMS: float64(budget.Microseconds()) / 1000}
	defer func() { t.setAttempts(a) }()
	for i := 1; i <= max; i++ {
		a.Count = i
		if attempt(i) {
			a.DefectAt = i
			t.Logf("the defect showed at attempt %d", i)
			return
		}
		if time.Since(start) > budget || t.ctx.Err() != nil {
			t.Logf("stopped after %d attempts: the budget of %s is spent", i, budget)
			return
		}
	}
}

// concurrentPosts sends n copies of a form POST at the same instant: n connections are opened
// first (a GET of the endpoint's origin each), then every goroutine waits at a barrier and all are
// released together, so the requests reach the server within microseconds of each other.
// Responses are nil where the request failed.
func (t *T) concurrentPosts(label, endpoint string, form url.Values, header http.Header, n int) []*oauthclient.Response {
	u, err := url.Parse(endpoint)
	t.Must(err, "parse "+endpoint)
	warm := u.Scheme + "://" + u.Host + "/.well-known/oauth-authorization-server"
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, _ = t.client.Get(t.Label("open a connection for the concurrent requests"), warm, nil)
		}()
	}
	wg.Wait()
	out := make([]*oauthclient.Response, n)
	release := make(chan struct{})
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			h := http.Header{"Accept": {"application/json"}}
			for k, vs := range header {
				h[k] = vs
			}
			<-release
			out[i], _ = t.client.PostForm(t.Label("%s %d", label, i+1), endpoint, form, h)
		}(i)
	}
	close(release)
	wg.Wait()
	return out
}

// statusesOf lists the statuses of responses (0 for a failed request).
func statusesOf(rs []*oauthclient.Response) []int {
	out := make([]int, len(rs))
	for i, r := range rs {
		if r != nil {
			out[i] = r.Status
		}
	}
	return out
}
