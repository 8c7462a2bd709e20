package checks

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
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
	if !slices.Contains(t.AS().ScopesSupported, offlineAccess) {
		t.Logf("offline_access is not in the AS's scopes_supported; clients will not add it")
		return
	}
	scope := strings.TrimSpace(t.Discovery().DefaultScope + " " + offlineAccess)
	if slices.Contains(scopesOf(t.Discovery().DefaultScope), offlineAccess) {
		scope = t.Discovery().DefaultScope
	}
	g := t.Grant(Flow{Scope: ptr(scope), Name: "with offline_access", Subject: true})
	if g.Tokens.RefreshToken == "" {
		t.Warnf("a grant with offline_access came without a refresh token")
	}
}

// RT-01: refreshing rotates the refresh token (public clients: BCP-12).
func rt01(t *T) {
	g := t.refreshGrantAs(Flow{}, false)
	resp, tok := t.refresh("refresh", g, g.Tokens.RefreshToken)
	if tok == nil {
		t.Inconclusive("refresh with a fresh refresh token", resp.Describe(), "", "RT-05")
	}
	if tok.RefreshToken == "" {
		t.Errorf("the refresh response has no new refresh token: public-client refresh tokens must rotate (or be sender-constrained)")
	} else if tok.RefreshToken == g.Tokens.RefreshToken {
		t.Errorf("the refresh response returned the same refresh token: no rotation")
	}
}

// rotate refreshes a grant's refresh token once (R1 → R2) and returns the response; a refused
// refresh or one without a new refresh token stops the check as inconclusive (RT-05 and RT-01
// grade those).
func (t *T) rotate(g *Grant) *oauthclient.TokenResponse {
	resp, tok := t.refresh("refresh R1 → R2", g, g.Tokens.RefreshToken)
	if tok == nil {
		t.Inconclusive("refresh with a fresh refresh token", resp.Describe(), "", "RT-05")
	}
	if tok.RefreshToken == "" || tok.RefreshToken == g.Tokens.RefreshToken {
		t.Inconclusive("rotate the refresh token", "the refresh response carries no new refresh token", "without rotation there is no rotated-out token to try", "RT-01")
	}
	return tok
}

// RT-02: the old refresh token is dead after rotation. An AS with a reuse window (RFC 9700 §4.14.2
// leaves room for it; Auth0's reuse interval, Okta's grace period) may answer a retry of the old
// token with the identical earlier response, while the new token is unused: that issues nothing new
// and passes, but once the new token has been used the old one must fail.
func rt02(t *T) {
	g := t.refreshGrantAs(Flow{}, false)
	tok := t.rotate(g)
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
// the same rule as a strict one. Reuse detection can race with the rotation it follows, so the
// attempt is repeated (bounded).
func rt03(t *T) {
	t.race(2, 15*time.Second, func(i int) bool {
		g := t.refreshGrantAs(Flow{Name: fmt.Sprintf("grant for attempt %d", i)}, false)
		r2 := t.rotate(g)
		resp, r3 := t.refresh("refresh R2 → R3", g, r2.RefreshToken)
		if r3 == nil {
			t.Inconclusive("refresh with the rotated-in R2", resp.Describe(), "the successor of a rotation must refresh; that failure is RT-01's", "RT-01")
		}
		current := r3.RefreshToken
		if current == "" {
			current = r2.RefreshToken
		}
		reuse := t.Token("reuse R1", g.RefreshForm(g.Tokens.RefreshToken))
		if reuse.Status == http.StatusOK {
			t.Errorf("the rotated-out R1 still refreshes after two rotations (attempt %d; see RT-02): its reuse is not treated as a breach (RFC 9700 §4.14.2)", i)
			return true
		}
		after := t.Token("refresh with R3 after R1 was reused", g.RefreshForm(current))
		if after.Status == http.StatusOK {
			t.Errorf("after the rotated-out R1 was replayed, R3 still refreshes (attempt %d): reuse is not treated as theft (RFC 9700 §4.14.2)", i)
			return true
		}
		if ok, _ := t.AcceptedByMCP("the access token from R3 after the reuse", r3.AccessToken); ok && i == 1 {
			t.Warnf("the access token issued with R3 still works after the reuse was detected")
		}
		return false
	})
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

// narrowScope is the first scope of a set, with offline_access when the grant asked for it (a
// narrowed refresh must still be allowed to return a refresh token).
func (t *T) narrowScope(scopes []string, grantScope string) string {
	if slices.Contains(scopesOf(grantScope), offlineAccess) {
		return scopes[0] + " " + offlineAccess
	}
	return scopes[0]
}

// RT-05: requested scope ⊆ original (more → invalid_scope); omitted = original.
func rt05(t *T) {
	scopes := t.scopeSet(2)
	g := t.refreshGrant(Flow{Scope: ptr(scopes[0]), Name: "narrow grant"})
	granted := g.Tokens.Scope
	if granted == "" {
		granted = g.Flow.Params.Get("scope")
	}
	more := strings.Join(scopes, " ")
	if slices.Contains(scopesOf(granted), offlineAccess) {
		more += " " + offlineAccess
	}
	f := g.RefreshForm(g.Tokens.RefreshToken)
	f.Set("scope", more)
	resp := t.Token("refresh asking for more scope", f)
	if resp.Status == http.StatusOK {
		tok, _ := oauthclient.DecodeToken(resp)
		if tok != nil && len(withoutOffline(scopesOf(tok.Scope))) > 1 {
			t.Fatalf("a refresh widened the scope from %q to %q", granted, tok.Scope)
		}
		if tok != nil {
			t.Warnf("a refresh asking for more scope succeeded (granted %q); OAuth 2.1 §4.3.1 wants invalid_scope", tok.Scope)
			if tok.RefreshToken != "" {
				g.Tokens.RefreshToken = tok.RefreshToken
			}
		}
	} else {
		t.gradeTokenError("a refresh asking for more scope", resp, "invalid_scope")
	}
	resp, tok := t.refresh("refresh without scope", g, g.Tokens.RefreshToken)
	if tok == nil {
		t.Fatalf("refresh without scope failed: %s", resp.Describe())
	}
	if got := withoutOffline(scopesOf(tok.Scope)); tok.Scope != "" && !slices.Equal(got, []string{scopes[0]}) {
		t.Errorf("a refresh without scope granted %q, not the original %q", tok.Scope, granted)
	}
}

func withoutOffline(ss []string) []string {
	var out []string
	for _, s := range ss {
		if s != offlineAccess {
			out = append(out, s)
		}
	}
	return out
}

// RT-06: the new refresh token keeps the original scope even when the access token was narrowed.
func rt06(t *T) {
	scopes := t.scopeSet(2)
	g := t.refreshGrant(Flow{Scope: ptr(strings.Join(scopes, " ")), Name: "broad grant"})
	all := g.Tokens.Scope // the original scope is the one granted (offline_access may be dropped)
	if all == "" {
		all = g.Flow.Params.Get("scope")
	}
	narrow := t.narrowScope(scopes, all)
	f := g.RefreshForm(g.Tokens.RefreshToken)
	f.Set("scope", narrow)
	resp := t.Token("refresh narrowed to "+narrow, f)
	tok, err := oauthclient.DecodeToken(resp)
	if err != nil {
		t.Inconclusive("refresh narrowed to "+narrow, resp.Describe(), "a narrower scope at refresh is allowed (OAuth 2.1 §4.3.1); its refusal is graded by RT-05's rules, and RT-06 cannot go on", "")
	}
	if tok.RefreshToken == "" {
		t.Inconclusive("refresh narrowed to "+narrow, "the response carries no new refresh token",
			"without a refresh token from the narrowed refresh there is nothing to widen back", "")
	}
	f = g.RefreshForm(tok.RefreshToken)
	f.Set("scope", all)
	resp = t.Token("refresh back to the original scope with the new refresh token", f)
	if resp.Status != http.StatusOK {
		t.Errorf("after a refresh narrowed to %q, the new refresh token cannot get the original %q back (%s); OAuth 2.1 §4.3.3", narrow, all, resp.Describe())
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
	t.requireUpstreamLeg()
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

// RT-10: concurrent refreshes with one token: one wins (or all get the same answer); the winner's
// tokens work. The race is repeated (bounded), each attempt with the winner's new refresh token.
func rt10(t *T) {
	g := t.refreshGrant(Flow{})
	const n = 4
	rt := g.Tokens.RefreshToken
	t.race(6, 10*time.Second, func(i int) bool {
		form := g.RefreshForm(rt)
		h := g.Client.authenticate(form)
		out := t.concurrentPosts(fmt.Sprintf("attempt %d: concurrent refresh", i), t.AS().TokenEndpoint, form, h, n)
		var winners []*oauthclient.TokenResponse
		for _, r := range out {
			if r != nil && r.Status == http.StatusOK {
				if tok, err := oauthclient.DecodeToken(r); err == nil {
					winners = append(winners, tok)
				}
			}
		}
		t.Logf("attempt %d: concurrent refresh statuses %v", i, statusesOf(out))
		switch {
		case len(winners) == 0 && i == 1:
			t.Errorf("none of %d concurrent refreshes with one valid refresh token succeeded (statuses %v)", n, statusesOf(out))
			return true
		case len(winners) == 0:
			// The token is the winner of the previous attempt, whose access token still worked:
			// the losers' refreshes were taken as reuse of a rotated-out token and revoked the grant.
			t.Warnf("the winning refresh token of attempt %d was refused by all %d concurrent refreshes of attempt %d (statuses %v): the losing concurrent refreshes of attempt %d revoked the grant (strict reuse detection without a grace window; clients that refresh in parallel lose the session)", i-1, n, i, statusesOf(out), i-1)
			return true
		}
		for _, w := range winners[1:] {
			if w.AccessToken != winners[0].AccessToken {
				t.Errorf("%d of %d concurrent refreshes with one refresh token got different tokens (attempt %d): two live token families", len(winners), n, i)
				return true
			}
		}
		if ok, _ := t.AcceptedByMCP("the winner's access token", winners[0].AccessToken); !ok {
			t.Warnf("the winning refresh's access token was revoked by the losing concurrent refreshes (strict reuse detection; clients that refresh in parallel lose the session)")
			return true
		}
		if winners[0].RefreshToken == "" {
			return false
		}
		rt = winners[0].RefreshToken
		return false
	})
}

// RT-11: the refresh grant only for clients registered for it. A server that refuses to register
// such a client leaves the row inconclusive (a registration policy, not a verdict).
func rt11(t *T) {
	c := t.RegisterClient(func(m map[string]any) { m["grant_types"] = []string{"authorization_code"} })
	if gts := c.Reg.GrantTypes; slices.Contains(gts, "refresh_token") {
		t.Logf("the AS registered the client with grant_types %v anyway", gts)
	}
	g := t.Grant(Flow{Client: c, Name: "client without the refresh grant", Scope: ptr(t.withOfflineAccess(t.Discovery().DefaultScope))})
	if g.Tokens.RefreshToken == "" {
		t.Logf("no refresh token issued to a client not registered for the refresh grant")
		return
	}
	resp := t.Token("refresh by a client not registered for it", g.RefreshForm(g.Tokens.RefreshToken))
	if resp.Status == http.StatusOK && !slices.Contains(c.Reg.GrantTypes, "refresh_token") {
		t.Errorf("a client registered with grant_types [authorization_code] refreshed successfully")
	}
}
