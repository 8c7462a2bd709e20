package checks

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/cnpg-mcp/cnpg-mcp/conformance/evidence"
	"github.com/cnpg-mcp/cnpg-mcp/conformance/oauthclient"
	"github.com/cnpg-mcp/cnpg-mcp/conformance/upstream"
)

// isLoopbackHost reports 127.0.0.0/8, ::1 and localhost names.
func isLoopbackHost(host string) bool {
	h := strings.ToLower(strings.TrimSuffix(host, "."))
	if h == "localhost" || strings.HasSuffix(h, ".localhost") {
		return true
	}
	ip := net.ParseIP(strings.Trim(h, "[]"))
	return ip != nil && ip.IsLoopback()
}

// checkEndpointURL returns a problem with an advertised endpoint URL: not absolute, not https
// (plain http is accepted on loopback hosts only), or carrying a fragment.
func checkEndpointURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || !u.IsAbs() || u.Host == "" {
		return fmt.Sprintf("%q is not an absolute URL", raw)
	}
	if u.Fragment != "" || strings.Contains(raw, "#") {
		return fmt.Sprintf("%q has a fragment", raw)
	}
	switch u.Scheme {
	case "https":
	case "http":
		if !isLoopbackHost(u.Hostname()) {
			return fmt.Sprintf("%q is plain http on a non-loopback host", raw)
		}
	default:
		return fmt.Sprintf("%q is not an https URL", raw)
	}
	return ""
}

// targetIsLoopback reports whether the target runs on a loopback host (a local dev stack).
func (t *T) targetIsLoopback() bool {
	u, err := url.Parse(t.env.cfg.Target)
	return err == nil && isLoopbackHost(u.Hostname())
}

func hasNoStore(h http.Header) bool {
	for _, v := range h.Values("Cache-Control") {
		for _, d := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(d), "no-store") {
				return true
			}
		}
	}
	return false
}

// oauthErrorChars: error and error_description use %x20-21 / %x23-5B / %x5D-7E (no '"' or '\').
func badErrorChars(s string) bool {
	for _, r := range s {
		if r < 0x20 || r > 0x7e || r == '"' || r == '\\' {
			return true
		}
	}
	return false
}

// scopeTokenOK: scope-token = 1*( %x21 / %x23-5B / %x5D-7E ).
func badScopeChars(s string) bool {
	for _, tok := range strings.Split(s, " ") {
		if tok == "" {
			return true
		}
		for _, r := range tok {
			if r < 0x21 || r > 0x7e || r == '"' || r == '\\' {
				return true
			}
		}
	}
	return false
}

var authzErrorCodes = []string{"invalid_request", "unauthorized_client", "access_denied", "unsupported_response_type",
	"invalid_scope", "server_error", "temporarily_unavailable", "invalid_target"}

// gradeTokenError grades a token-endpoint rejection: the request must be refused (a 2xx fails the
// row). The form of the refusal — an OAuth error code among want, HTTP 400 (401 for
// invalid_client), never a 5xx — is TOK-10's requirement: another row warns and TOK-10 fails for
// it (see wrongForm). 401 for invalid_grant is a reported deviation, never a failure.
func (t *T) gradeTokenError(what string, resp *oauthclient.Response, want ...string) {
	if resp.Status >= 200 && resp.Status < 300 {
		t.Errorf("%s: the token endpoint accepted it (%s)", what, resp.Describe())
		return
	}
	if resp.Status >= 500 {
		t.wrongForm(tokenErrors, true, what, fmt.Sprintf("with %s instead of an OAuth error", resp.Describe()))
		return
	}
	code := resp.ErrorCode()
	if code == "" {
		t.wrongForm(tokenErrors, false, what, fmt.Sprintf("the response has no OAuth error code (%s)", resp.Describe()))
		return
	}
	if len(want) > 0 && !slices.Contains(want, code) {
		t.Warnf("%s: rejected with error=%s; expected %s", what, code, strings.Join(want, " or "))
	}
	switch {
	case code == "invalid_client":
		if resp.Status != http.StatusUnauthorized && resp.Status != http.StatusBadRequest {
			t.wrongForm(tokenErrors, false, what, fmt.Sprintf("invalid_client answered with HTTP %d (want 401)", resp.Status))
		}
	case resp.Status == http.StatusUnauthorized:
		t.Warnf("%s: rejected with HTTP 401 (error=%s); OAuth 2.1 §3.2.4 says 400 — reported as a deviation", what, code)
	case resp.Status != http.StatusBadRequest:
		t.wrongForm(tokenErrors, false, what, fmt.Sprintf("rejected with HTTP %d (error=%s); OAuth 2.1 §3.2.4 says 400", resp.Status, code))
	}
}

// rejectedAt reports whether an authorization probe ended in an error: a page with a client error,
// or an error redirect to the client.
func (p *AuthzProbe) errorCode() string {
	if p.Kind == ClientRedirect {
		return p.Client.Get("error")
	}
	return ""
}

// refused reports whether the AS refused the request (error page or error redirect).
func (p *AuthzProbe) refused() bool {
	return p.Kind == Rejected || (p.Kind == ClientRedirect && p.Client.Get("error") != "")
}

// Upstream returns the upstream view, skipping the check when there is none. A check that uses it
// runs alone (no prefetched flow beside it touches the upstream).
func (t *T) Upstream() upstream.View {
	if t.env.cfg.Upstream == nil {
		t.Skipf("needs the upstream identity provider's request log: run against the mock Auth0 and pass --mock-auth0-admin")
	}
	t.exclusiveOnce()
	return t.env.cfg.Upstream
}

// exclusiveOnce pauses the flow pool for this check (once). A check that runs beside others
// stops here, to be run again alone (see Schedule).
func (t *T) exclusiveOnce() {
	if t.env.concurrent.Load() {
		panic(needsAlone{})
	}
	t.mu.Lock()
	done := t.exclusive
	t.exclusive = true
	t.mu.Unlock()
	if !done {
		t.Exclusive()
	}
}

// UpstreamMark is the upstream log's position now (read what comes after with UpstreamRequests).
func (t *T) UpstreamMark() int64 {
	seq, err := upstream.LastSeq(t.ctx, t.Upstream())
	t.Must(err, "read the mock Auth0's request log")
	return seq
}

// UpstreamRequests returns the upstream requests to path ("" = all) after a mark.
func (t *T) UpstreamRequests(mark int64, path string) []upstream.Request {
	reqs, err := t.Upstream().Requests(t.ctx, path, mark)
	t.Must(err, "read the mock Auth0's request log")
	return reqs
}

// TimeTravel moves the target's clock, skipping the check when the target cannot be time-warped.
func (t *T) TimeTravel(d time.Duration) {
	if t.env.cfg.TimeTravel == nil {
		t.Skipf("needs to move the target's clock forward by %s (available against the in-process reference stack only)", d)
	}
	t.exclusiveOnce()
	t.invalidatePool()
	t.env.forgetShared()
	t.Must(t.env.cfg.TimeTravel(t.ctx, d), "move the target's clock")
	t.Logf("moved the target's clock forward by %s", d)
}

// decodeJWT returns the token's decoded form (kind JWS/JWE/opaque).
func decodeJWT(tok string) evidence.Token { return evidence.DecodeToken("token", tok) }

// claimString returns a string claim.
func claimString(claims map[string]any, name string) string {
	s, _ := claims[name].(string)
	return s
}

// audContains reports whether the aud claim (string or array) contains v.
func audContains(claims map[string]any, v string) bool {
	switch a := claims["aud"].(type) {
	case string:
		return a == v
	case []any:
		for _, x := range a {
			if s, _ := x.(string); s == v {
				return true
			}
		}
	}
	return false
}

// corsAllowed reports whether a response carries Access-Control-Allow-Origin for origin (or *).
func corsAllowed(resp *oauthclient.Response, origin string) bool {
	v := resp.Header.Get("Access-Control-Allow-Origin")
	return v == "*" || v == origin
}

// testOrigin is a foreign origin for CORS and Origin checks.
const testOrigin = "https://conformance-evil.example"

// sleepCtx waits d or until ctx ends.
func sleepCtx(ctx context.Context, d time.Duration) {
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-ctx.Done():
	case <-tm.C:
	}
}

// scopesOf splits a scope string.
func scopesOf(s string) []string { return strings.Fields(s) }

// supportedScopes are the scopes a client can ask for (PRM first, then AS metadata), without offline_access.
func (t *T) supportedScopes() []string {
	d := t.Discovery()
	src := d.PRM.ScopesSupported
	if len(src) == 0 {
		src = d.AS.ScopesSupported
	}
	var out []string
	for _, s := range src {
		if s != "offline_access" {
			out = append(out, s)
		}
	}
	return out
}
