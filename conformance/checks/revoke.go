package checks

import (
	"net/http"
	"slices"
	"time"

	"github.com/cnpg-mcp/cnpg-mcp/conformance/oauthclient"
	"github.com/cnpg-mcp/cnpg-mcp/conformance/report"
)

// C.12 Revocation (RFC 7009).
func revocationChecks() map[string]func(*T) {
	return map[string]func(*T){
		"REV-01": rev01, "REV-02": rev02, "REV-03": rev03, "REV-04": rev04, "REV-05": rev05, "REV-06": rev06, "REV-07": rev07,
	}
}

func (t *T) revocation() string {
	ep := t.AS().RevocationEndpoint
	if ep == "" {
		t.Skipf("the authorization server advertises no revocation_endpoint (RFC 7009 is optional)")
	}
	return ep
}

func (t *T) revoke(label, clientID, token, hint string) *oauthclient.Response {
	resp, err := t.client.Revoke(t.Label("%s", label), t.revocation(), clientID, token, hint)
	t.Must(err, label)
	return resp
}

// revokeOK revokes a token as c and stops the check as inconclusive when the revocation of a
// valid token is refused (REV-01 grades the endpoint itself).
func (t *T) revokeOK(label string, c *Client, token, hint string) {
	if resp := t.revokeAs(label, c, token, hint); resp.Status != http.StatusOK {
		t.Inconclusive(label, resp.Describe(), "", "REV-01")
	}
}

// REV-01: revocation of an unknown token answers 200.
func rev01(t *T) {
	t.revocation()
	c := t.revocationClient()
	if c == nil {
		c = t.RegisterClient(nil)
	}
	resp := t.revokeAs("revoke an unknown token", c, "conformance-unknown-token-"+oauthclient.RandomString(8), "")
	if resp.Status != http.StatusOK {
		t.Errorf("revoking an unknown token got %s, want 200 (RFC 7009 §2.2)", resp.Describe())
	}
	resp = t.revokeAs("revoke an unknown token with a hint", c, "conformance-unknown-token-"+oauthclient.RandomString(8), "refresh_token")
	if resp.Status != http.StatusOK {
		t.Errorf("revoking an unknown token with token_type_hint got %s, want 200", resp.Describe())
	}
}

// REV-02: a revoked refresh token no longer refreshes.
func rev02(t *T) {
	t.revocation()
	g := t.refreshGrant(Flow{Client: t.revocationClient()})
	t.revokeOK("revoke the refresh token", g.Client, g.Tokens.RefreshToken, "refresh_token")
	resp := t.Token("refresh with the revoked token", g.RefreshForm(g.Tokens.RefreshToken))
	t.gradeTokenError("a revoked refresh token", resp, "invalid_grant")
}

// REV-03: revoking a refresh token invalidates the grant's access tokens.
func rev03(t *T) {
	t.revocation()
	g := t.refreshGrant(Flow{Client: t.revocationClient()})
	t.revokeOK("revoke the refresh token", g.Client, g.Tokens.RefreshToken, "refresh_token")
	if ok, resp := t.AcceptedByMCP("the grant's access token after its refresh token was revoked", g.Tokens.AccessToken); ok {
		t.Errorf("the access token still works after the grant's refresh token was revoked (%s)", resp.Describe())
	}
}

// REV-04: a revoked access token is refused by the resource server.
func rev04(t *T) {
	t.revocation()
	g := t.Grant(Flow{Client: t.revocationClient(), Name: "grant whose access token is revoked"})
	t.revokeOK("revoke the access token", g.Client, g.Tokens.AccessToken, "access_token")
	if ok, resp := t.AcceptedByMCP("the revoked access token", g.Tokens.AccessToken); ok {
		t.Errorf("a revoked access token still works at the MCP endpoint (%s)", resp.Describe())
	}
}

// REV-05: a client cannot revoke another client's tokens.
func rev05(t *T) {
	t.revocation()
	g := t.Grant(Flow{Client: t.revocationClient(), Name: "client A's grant"})
	other := t.revocationClient()
	if other == nil {
		other = t.NewClient(nil)
	}
	resp := t.revokeAs("client B revokes A's access token", other, g.Tokens.AccessToken, "access_token")
	if resp.Status >= 500 {
		t.Errorf("the cross-client revocation got %s", resp.Describe())
	}
	if g.Tokens.RefreshToken != "" {
		t.revokeAs("client B revokes A's refresh token", other, g.Tokens.RefreshToken, "refresh_token")
	}
	if ok, r := t.AcceptedByMCP("A's access token after B's revocation attempt", g.Tokens.AccessToken); !ok {
		t.Errorf("client B revoked client A's access token (%s)", r.Describe())
	}
	if g.Tokens.RefreshToken != "" {
		if r := t.Token("A refreshes after B's revocation attempt", g.RefreshForm(g.Tokens.RefreshToken)); r.Status != http.StatusOK {
			t.Errorf("client B revoked client A's refresh token (%s)", r.Describe())
		}
	}
}

// REV-06: the proxy revokes the upstream token at the upstream. In a pass-through design the
// client's token is the upstream's: the revocation must reach the upstream with it.
func rev06(t *T) {
	t.revocation()
	t.Upstream()
	if t.design().Kind == report.DesignOwnAS {
		t.Skipf("not applicable: %s, so there is no upstream token to revoke", t.design().Evidence)
	}
	passThrough := t.isPassThrough()
	g := t.refreshGrant(Flow{Client: t.revocationClient()})
	start := t.UpstreamMark()
	t.revokeOK("revoke the refresh token", g.Client, g.Tokens.RefreshToken, "refresh_token")
	var revoked []string
	for i := 0; i < 20 && len(revoked) == 0; i++ {
		for _, r := range t.UpstreamRequests(start, "/oauth/revoke") {
			revoked = append(revoked, r.Form.Get("token"))
		}
		if len(revoked) == 0 {
			sleepCtx(t.ctx, 50*time.Millisecond)
		}
	}
	if passThrough {
		if !slices.Contains(revoked, g.Tokens.RefreshToken) {
			t.Errorf("in this pass-through design the client's refresh token is the upstream's, but revoking it did not revoke it at the upstream (upstream revocations seen: %d)", len(revoked))
		}
		return
	}
	if len(revoked) == 0 {
		t.Errorf("revoking the refresh token did not revoke the upstream token (no request to the upstream's /oauth/revoke)")
		return
	}
	for _, tok := range revoked {
		if tok == g.Tokens.RefreshToken || tok == g.Tokens.AccessToken {
			t.Errorf("the proxy sent its own token to the upstream's revocation endpoint instead of the upstream token")
		}
	}
}

// REV-07: a client-authentication failure → invalid_client.
func rev07(t *T) {
	t.revocation()
	resp := t.revoke("revoke as an unknown client", "conformance-unknown-client-"+oauthclient.RandomString(6), "conformance-token", "")
	if resp.ErrorCode() != "invalid_client" || (resp.Status != http.StatusUnauthorized && resp.Status != http.StatusBadRequest) {
		t.Errorf("an unknown client at the revocation endpoint got %s; want invalid_client (401)", resp.Describe())
	}
}
