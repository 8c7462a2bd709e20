package checks

import (
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/cnpg-mcp/cnpg-mcp/conformance/oauthclient"
)

// C.11 Refresh tokens.
func refreshChecks() map[string]func(*T) {
	return map[string]func(*T){
		"RT-00": rt00, "RT-01": rt01, "RT-02": rt02, "RT-03": rt03, "RT-04": rt04, "RT-05": rt05,
		"RT-06": rt06, "RT-07": rt07, "RT-08": rt08, "RT-09": rt09, "RT-10": rt10, "RT-11": rt11,
	}
}

// refreshGrant makes a grant that has a refresh token, or skips.
func (t *T) refreshGrant(f Flow) *Grant {
	if f.Name == "" {
		f.Name = "grant with a refresh token"
	}
	g := t.Grant(f)
	if g.Tokens.RefreshToken == "" {
		t.Skipf("the authorization server issued no refresh token (scope %q)", g.Flow.Params.Get("scope"))
	}
	return g
}

// refresh posts a refresh request and decodes a success.
func (t *T) refresh(label string, g *Grant, rt string) (*oauthclient.Response, *oauthclient.TokenResponse) {
	resp := t.Token(label, g.RefreshForm(rt))
	if resp.Status != http.StatusOK {
		return resp, nil
	}
	tok, err := oauthclient.DecodeToken(resp)
	t.Must(err, label)
	return resp, tok
}

// RT-00: authorization works with and without offline_access.
func rt00(t *T) {
	t.SharedGrant()
	if !slices.Contains(t.AS().ScopesSupported, "offline_access") {
		t.Logf("offline_access is not in the AS's scopes_supported; clients will not add it")
		return
	}
	scope := strings.TrimSpace(t.Discovery().DefaultScope + " offline_access")
	g := t.Grant(Flow{Scope: ptr(scope), Name: "with offline_access"})
	if g.Tokens.RefreshToken == "" {
		t.Warnf("a grant with offline_access came without a refresh token")
	}
}

// RT-01: refreshing rotates the refresh token.
func rt01(t *T) {
	g := t.refreshGrant(Flow{})
	resp, tok := t.refresh("refresh", g, g.Tokens.RefreshToken)
	if tok == nil {
		t.Fatalf("refresh failed: %s", resp.Describe())
	}
	if tok.RefreshToken == "" {
		t.Errorf("the refresh response has no new refresh token: public-client refresh tokens must rotate (or be sender-constrained)")
	} else if tok.RefreshToken == g.Tokens.RefreshToken {
		t.Errorf("the refresh response returned the same refresh token: no rotation")
	}
}

// RT-02: the old refresh token is dead after rotation. An AS with a reuse window (RFC 9700 §4.14.2
// leaves room for it; Auth0's reuse interval, Okta's grace period) may answer a retry of the old
// token with the identical earlier response, while the new token is unused: that issues nothing new
// and passes, but once the new token has been used the old one must fail.
func rt02(t *T) {
	g := t.refreshGrant(Flow{})
	resp, tok := t.refresh("refresh", g, g.Tokens.RefreshToken)
	if tok == nil {
		t.Fatalf("refresh failed: %s", resp.Describe())
	}
	if tok.RefreshToken == "" || tok.RefreshToken == g.Tokens.RefreshToken {
		t.Skipf("the refresh token was not rotated (see RT-01)")
	}
	old := t.Token("refresh with the rotated-out token", g.RefreshForm(g.Tokens.RefreshToken))
	if old.Status != http.StatusOK {
		t.gradeTokenError("the rotated-out refresh token", old, "invalid_grant")
		return
	}
	again, err := oauthclient.DecodeToken(old)
	t.Must(err, "retry with the rotated-out token")
	if again.AccessToken != tok.AccessToken || again.RefreshToken != tok.RefreshToken {
		t.Fatalf("the rotated-out refresh token still refreshes: it was answered with new tokens, not the earlier response")
	}
	t.Logf("the rotated-out token was answered with the identical earlier response (a reuse window); checking that it ends once the new token is used")
	if resp, next := t.refresh("refresh with the new token", g, tok.RefreshToken); next == nil {
		t.Fatalf("the new refresh token failed after the replay: %s", resp.Describe())
	}
	old = t.Token("the rotated-out token after the new one was used", g.RefreshForm(g.Tokens.RefreshToken))
	t.gradeTokenError("the rotated-out refresh token after its successor was used", old, "invalid_grant")
}

// RT-03: reuse of a rotated-out refresh token revokes the grant (the current refresh token too).
// The reuse comes after the successor was used, so an AS with a reuse window (RT-02) is held to
// the same rule as a strict one.
func rt03(t *T) {
	g := t.refreshGrant(Flow{})
	resp, r2 := t.refresh("refresh R1 → R2", g, g.Tokens.RefreshToken)
	if r2 == nil {
		t.Fatalf("refresh failed: %s", resp.Describe())
	}
	if r2.RefreshToken == "" || r2.RefreshToken == g.Tokens.RefreshToken {
		t.Skipf("the refresh token was not rotated (see RT-01)")
	}
	resp, r3 := t.refresh("refresh R2 → R3", g, r2.RefreshToken)
	if r3 == nil {
		t.Fatalf("refresh with R2 failed: %s", resp.Describe())
	}
	current := r3.RefreshToken
	if current == "" {
		current = r2.RefreshToken
	}
	reuse := t.Token("reuse R1", g.RefreshForm(g.Tokens.RefreshToken))
	if reuse.Status == http.StatusOK {
		t.Fatalf("R1 still worked after two rotations (see RT-02)")
	}
	after := t.Token("refresh with R3 after R1 was reused", g.RefreshForm(current))
	if after.Status == http.StatusOK {
		t.Errorf("after the rotated-out R1 was replayed, R3 still refreshes: reuse is not treated as theft (RFC 9700 §4.14.2)")
	}
	if ok, _ := t.AcceptedByMCP("the access token from R3 after the reuse", r3.AccessToken); ok {
		t.Warnf("the access token issued with R3 still works after the reuse was detected")
	}
}

// RT-04: a refresh token is bound to its client.
func rt04(t *T) {
	g := t.refreshGrant(Flow{})
	other := t.NewClient(nil)
	f := g.RefreshForm(g.Tokens.RefreshToken)
	f.Set("client_id", other.ID)
	resp := t.Token("refresh client A's token as client B", f)
	t.gradeTokenError("a refresh token used by another client", resp, "invalid_grant")
}

// RT-05: requested scope ⊆ original (more → invalid_scope); omitted = original.
func rt05(t *T) {
	scopes := t.supportedScopes()
	if len(scopes) < 2 {
		t.Skipf("the server advertises fewer than two scopes; a grant cannot be narrower than the set")
	}
	g := t.refreshGrant(Flow{Scope: ptr(scopes[0]), Name: "narrow grant"})
	f := g.RefreshForm(g.Tokens.RefreshToken)
	f.Set("scope", strings.Join(scopes, " "))
	resp := t.Token("refresh asking for more scope", f)
	if resp.Status == http.StatusOK {
		tok, _ := oauthclient.DecodeToken(resp)
		if tok != nil && len(scopesOf(tok.Scope)) > 1 {
			t.Fatalf("a refresh widened the scope from %q to %q", scopes[0], tok.Scope)
		}
		t.Warnf("a refresh asking for more scope succeeded (granted %q); OAuth 2.1 §4.3.1 wants invalid_scope", tok.Scope)
		g.Tokens.RefreshToken = tok.RefreshToken
	} else {
		t.gradeTokenError("a refresh asking for more scope", resp, "invalid_scope")
	}
	resp, tok := t.refresh("refresh without scope", g, g.Tokens.RefreshToken)
	if tok == nil {
		t.Fatalf("refresh without scope failed: %s", resp.Describe())
	}
	if tok.Scope != "" && !slices.Equal(scopesOf(tok.Scope), []string{scopes[0]}) {
		t.Errorf("a refresh without scope granted %q, not the original %q", tok.Scope, scopes[0])
	}
}

// RT-06: the new refresh token keeps the original scope even when the access token was narrowed.
func rt06(t *T) {
	scopes := t.supportedScopes()
	if len(scopes) < 2 {
		t.Skipf("the server advertises fewer than two scopes")
	}
	all := strings.Join(scopes, " ")
	g := t.refreshGrant(Flow{Scope: ptr(all), Name: "broad grant"})
	f := g.RefreshForm(g.Tokens.RefreshToken)
	f.Set("scope", scopes[0])
	resp := t.Token("refresh narrowed to "+scopes[0], f)
	tok, err := oauthclient.DecodeToken(resp)
	t.Must(err, "narrowing refresh")
	if tok.RefreshToken == "" {
		t.Skipf("the narrowing refresh returned no refresh token")
	}
	f = g.RefreshForm(tok.RefreshToken)
	f.Set("scope", all)
	resp = t.Token("refresh back to the original scope with the new refresh token", f)
	if resp.Status != http.StatusOK {
		t.Errorf("after a narrowed refresh, the new refresh token cannot get the original scope back (%s); OAuth 2.1 §4.3.3", resp.Describe())
	}
}

// RT-07: a tampered refresh token is refused.
func rt07(t *T) {
	g := t.refreshGrant(Flow{})
	resp := t.Token("refresh with a tampered token", g.RefreshForm(flipChar(g.Tokens.RefreshToken)))
	t.gradeTokenError("a tampered refresh token", resp, "invalid_grant")
	resp = t.Token("refresh with a made-up token", g.RefreshForm(oauthclient.RandomString(32)))
	t.gradeTokenError("a made-up refresh token", resp, "invalid_grant")
}

// RT-08: refresh tokens expire after inactivity.
func rt08(t *T) {
	if t.env.cfg.TimeTravel == nil {
		t.Skipf("needs to move the target's clock (available against the in-process reference stack)")
	}
	g := t.refreshGrant(Flow{})
	idle := 90 * 24 * time.Hour
	t.TimeTravel(idle)
	t.upstreamAdvance(idle)
	resp := t.Token("refresh after 90 idle days", g.RefreshForm(g.Tokens.RefreshToken))
	if resp.Status == http.StatusOK {
		t.Errorf("a refresh token idle for 90 days still works (OAuth 2.1 §4.3.3: SHOULD expire after inactivity)")
	}
}

// RT-09: the proxy refreshes upstream transparently and turns an upstream revocation into invalid_grant.
func rt09(t *T) {
	up := t.Upstream()
	g := t.refreshGrant(Flow{})
	life := max(t.accessLifetime(g), upstreamTokenLifetime) + 2*time.Minute
	t.TimeTravel(life)
	t.upstreamAdvance(life)
	resp, tok := t.refresh("refresh after the upstream access token expired", g, g.Tokens.RefreshToken)
	if tok == nil {
		t.Fatalf("refresh after the upstream token expired failed: %s (the proxy must refresh upstream)", resp.Describe())
	}
	if ok, r := t.AcceptedByMCP("the refreshed access token", tok.AccessToken); !ok {
		t.Errorf("the access token refreshed after upstream expiry is refused: %s", r.Describe())
	}
	t.Must(up.RevokeUserGrants(t.ctx, t.subjectOf(g)), "revoke the user's upstream grants")
	t.TimeTravel(life)
	t.upstreamAdvance(life)
	next := tok.RefreshToken
	if next == "" {
		next = g.Tokens.RefreshToken
	}
	resp = t.Token("refresh after the upstream grant was revoked", g.RefreshForm(next))
	t.gradeTokenError("a refresh after the upstream revoked the grant", resp, "invalid_grant")
}

// RT-10: concurrent refreshes with one token: one wins (or all get the same answer); the winner works.
func rt10(t *T) {
	g := t.refreshGrant(Flow{})
	const n = 3
	var wg sync.WaitGroup
	out := make([]*oauthclient.Response, n)
	form := g.RefreshForm(g.Tokens.RefreshToken)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			out[i], _ = t.client.Token(t.Label("concurrent refresh %d", i), t.AS().TokenEndpoint, form)
		}(i)
	}
	wg.Wait()
	var winners []*oauthclient.TokenResponse
	var statuses []int
	for _, r := range out {
		if r == nil {
			continue
		}
		statuses = append(statuses, r.Status)
		if r.Status == http.StatusOK {
			tok, _ := oauthclient.DecodeToken(r)
			winners = append(winners, tok)
		}
	}
	t.Logf("concurrent refresh statuses: %v", statuses)
	if len(winners) == 0 {
		t.Errorf("none of %d concurrent refreshes succeeded", n)
		return
	}
	same := true
	for _, w := range winners[1:] {
		same = same && w.AccessToken == winners[0].AccessToken
	}
	if len(winners) > 1 && !same {
		t.Errorf("%d concurrent refreshes with one refresh token got different tokens: two live token families", len(winners))
	}
	if ok, _ := t.AcceptedByMCP("the winner's access token", winners[0].AccessToken); !ok {
		t.Warnf("the winning refresh's access token was revoked by the losing concurrent refreshes (strict reuse detection; clients that refresh in parallel lose the session)")
	}
}

// RT-11: the refresh grant only for clients registered for it.
func rt11(t *T) {
	c := t.RegisterClient(func(m map[string]any) { m["grant_types"] = []string{"authorization_code"} })
	if gts := c.Reg.GrantTypes; slices.Contains(gts, "refresh_token") {
		t.Logf("the AS registered the client with grant_types %v anyway", gts)
	}
	g := t.Grant(Flow{Client: c, Name: "client without the refresh grant"})
	if g.Tokens.RefreshToken == "" {
		t.Logf("no refresh token issued to a client not registered for the refresh grant")
		return
	}
	resp := t.Token("refresh by a client not registered for it", g.RefreshForm(g.Tokens.RefreshToken))
	if resp.Status == http.StatusOK && !slices.Contains(c.Reg.GrantTypes, "refresh_token") {
		t.Errorf("a client registered with grant_types [authorization_code] refreshed successfully")
	}
}
