package checks

import (
	"net/http"
	"net/url"
	"time"

	"github.com/cnpg-mcp/cnpg-mcp/conformance/evidence"
	"github.com/cnpg-mcp/cnpg-mcp/conformance/oauthclient"
	"github.com/cnpg-mcp/cnpg-mcp/conformance/report"
)

// C.2 Resource-server request handling.
func rsChecks() map[string]func(*T) {
	return map[string]func(*T){
		"RS-01": rs01, "RS-02": rs02, "RS-03": rs03, "RS-04": rs04, "RS-05": rs05, "RS-06": rs06, "RS-07": rs07,
		"RS-08": rs08, "RS-09": rs09, "RS-10": rs10, "RS-11": rs11, "RS-12": rs12, "RS-13": rs13,
	}
}

// unauthChallenge sends initialize without credentials and returns the response and its Bearer challenge.
func (t *T) unauthChallenge() (*oauthclient.Response, oauthclient.Challenge, bool) {
	resp := t.CallMCP("MCP initialize without a token", "")
	ch, ok, err := oauthclient.BearerChallenge(resp.Header.Values("WWW-Authenticate"))
	if err != nil {
		t.Errorf("malformed WWW-Authenticate %q: %v", resp.Header.Values("WWW-Authenticate"), err)
	}
	return resp, ch, ok
}

// RS-01: no token → 401 with a Bearer challenge carrying an absolute resource_metadata.
func rs01(t *T) {
	resp, ch, ok := t.unauthChallenge()
	if resp.Status != http.StatusUnauthorized {
		t.Fatalf("a request without a token got %s, want 401", resp.Describe())
	}
	if !ok {
		t.Fatalf("the 401 has no Bearer challenge (WWW-Authenticate: %q)", resp.Header.Values("WWW-Authenticate"))
	}
	rm, has := ch.Param("resource_metadata")
	if !has || rm == "" {
		if t.env.cfg.SpecVersion == "2025-06-18" {
			t.Errorf("the challenge has no resource_metadata (required by MCP 2025-06-18)")
		} else {
			t.Warnf("the challenge has no resource_metadata; clients must fall back to the well-known URLs (see PRM-04)")
		}
		return
	}
	if u, err := url.Parse(rm); err != nil || !u.IsAbs() {
		t.Errorf("resource_metadata %q is not an absolute URL", rm)
	}
}

// RS-02: no error attribute when the request had no credentials.
func rs02(t *T) {
	resp, ch, ok := t.unauthChallenge()
	if resp.Status != http.StatusUnauthorized || !ok {
		t.Inconclusive("send initialize without a token", resp.Describe()+" without a Bearer challenge", "there is no challenge to inspect", "RS-01")
	}
	if e, has := ch.Param("error"); has {
		t.Errorf("the challenge to a request without credentials carries error=%q (RFC 6750 §3.1: SHOULD NOT)", e)
	}
}

// invalidTokens are tokens a resource server must refuse, derived from a valid grant.
func (t *T) invalidTokens(g *Grant) map[string]string {
	at := g.Tokens.AccessToken
	out := map[string]string{
		"a random string":               oauthclient.RandomString(32),
		"the token truncated":           truncate(at, 4),
		"the token with a char flipped": flipChar(at),
	}
	if d := decodeJWT(at); d.Kind == evidence.KindJWS {
		hdr := map[string]any{}
		for k, v := range d.Header {
			hdr[k] = v
		}
		hdr["alg"] = "HS256"
		out["the same claims signed with another key"] = forgeJWT(hdr, d.Claims)
		out["the same claims with alg none"] = unsignedJWT(d.Claims)
		expired := map[string]any{}
		for k, v := range d.Claims {
			expired[k] = v
		}
		expired["exp"] = time.Now().Add(-time.Hour).Unix()
		expired["iat"] = time.Now().Add(-2 * time.Hour).Unix()
		out["an expired copy signed with another key"] = forgeJWT(hdr, expired)
		wrongIss := map[string]any{}
		for k, v := range d.Claims {
			wrongIss[k] = v
		}
		wrongIss["iss"] = "https://conformance-evil.example/"
		out["a copy with another iss, signed with another key"] = forgeJWT(hdr, wrongIss)
	}
	if g.Tokens.RefreshToken != "" {
		out["the refresh token"] = g.Tokens.RefreshToken
	}
	return out
}

// RS-03: invalid tokens get 401 with error="invalid_token".
func rs03(t *T) {
	g := t.SharedGrant()
	for name, tok := range t.invalidTokens(g) {
		resp := t.CallMCP("MCP initialize with "+name, oauthclient.Bearer(tok))
		if resp.Status != http.StatusUnauthorized {
			t.Errorf("%s: got %s, want 401", name, resp.Describe())
			continue
		}
		ch, ok, _ := oauthclient.BearerChallenge(resp.Header.Values("WWW-Authenticate"))
		if e, _ := ch.Param("error"); !ok || e != "invalid_token" {
			t.Warnf("%s: the 401 challenge has error=%q, SHOULD be invalid_token", name, e)
		}
	}
	if t.env.cfg.TimeTravel != nil && !t.Failed() {
		t.Logf("expiry of a genuine token is covered by TOK-15/RS-10 with the target's clock")
	}
}

// RS-04: tokens are audience-restricted: a token for this server is refused by a sibling
// deployment behind the same upstream application.
func rs04(t *T) {
	sib := t.env.cfg.Sibling
	if sib == "" {
		t.Skipf("needs a second deployment behind the same upstream application (--sibling-target URL)")
	}
	g := t.SharedGrant()
	resp, err := t.client.CallMCP(t.Label("the token at the sibling deployment"), sib, oauthclient.MCPCall{Authorization: oauthclient.Bearer(g.Tokens.AccessToken)})
	t.Must(err, "call the sibling")
	if resp.Status != http.StatusUnauthorized {
		t.Errorf("the sibling deployment %s answered %s to a token issued for %s; want 401", sib, resp.Describe(), t.Resource())
	}
	if d := decodeJWT(g.Tokens.AccessToken); d.Kind == evidence.KindJWS && !audContains(d.Claims, t.Resource()) {
		t.Errorf("the access token's aud %v is not the resource %s", d.Claims["aud"], t.Resource())
	}
}

// RS-05: no passthrough: an access token issued by the upstream IdP is refused. In a pass-through
// design the upstream is the client's authorization server: its tokens for this resource — the
// audience of the tokens the proxy hands out — are the client's tokens, and only upstream tokens
// for another audience (or none) must be refused.
func rs05(t *T) {
	toks := t.UpstreamTokens()
	passThrough := t.isPassThrough()
	var own []any
	if passThrough {
		if d := decodeJWT(t.SharedGrant().Tokens.AccessToken); d.Kind == evidence.KindJWS {
			own = audiences(d.Claims)
		}
	}
	for name, tok := range toks {
		if passThrough {
			if d := decodeJWT(tok); d.Kind == evidence.KindJWS && (audContains(d.Claims, t.Resource()) || sharesAudience(d.Claims, own)) {
				t.Logf("%s has the audience of the tokens this server hands out (%v); in a pass-through design it is a token the client could have been issued", name, d.Claims["aud"])
				continue
			}
		}
		resp := t.CallMCP("MCP initialize with "+name, oauthclient.Bearer(tok))
		if resp.Status != http.StatusUnauthorized {
			if passThrough {
				t.Errorf("%s issued by the upstream was accepted by the MCP endpoint (%s); in this pass-through design the upstream's tokens for this resource are the client's, but a token for another audience or none must be refused", name, resp.Describe())
				continue
			}
			t.Errorf("%s issued by the upstream was accepted by the MCP endpoint (%s); tokens must be issued by this server for this resource", name, resp.Describe())
		}
	}
}

// audiences is the aud claim as a list.
func audiences(claims map[string]any) []any {
	switch a := claims["aud"].(type) {
	case string:
		return []any{a}
	case []any:
		return a
	}
	return nil
}

// sharesAudience reports whether the claims' aud contains one of auds.
func sharesAudience(claims map[string]any, auds []any) bool {
	for _, a := range auds {
		if s, _ := a.(string); s != "" && audContains(claims, s) {
			return true
		}
	}
	return false
}

// RS-06: tokens only from the Authorization header.
func rs06(t *T) {
	g := t.SharedGrant()
	target := t.env.cfg.Target
	u, _ := url.Parse(target)
	q := u.Query()
	q.Set("access_token", g.Tokens.AccessToken)
	u.RawQuery = q.Encode()
	resp, err := t.client.CallMCP(t.Label("token in the query string"), target, oauthclient.MCPCall{URL: u.String()})
	t.Must(err, "query-string token")
	if resp.Status != http.StatusUnauthorized {
		t.Errorf("a token in ?access_token= got %s, want 401 (tokens in URLs leak into logs)", resp.Describe())
	} else if ch, ok, _ := oauthclient.BearerChallenge(resp.Header.Values("WWW-Authenticate")); ok {
		_, bare, _ := t.unauthChallenge()
		_, bareErr := bare.Param("error")
		if e, has := ch.Param("error"); has && !bareErr {
			t.Warnf("the 401 to a query-string token carries error=%q while a request without any token does not: the server seems to read the query token", e)
		}
	}
	body := url.Values{"access_token": {g.Tokens.AccessToken}}.Encode()
	resp, err = t.client.PostRaw(t.Label("token in a form body"), target, "application/x-www-form-urlencoded", body, http.Header{"Accept": {"application/json, text/event-stream"}})
	t.Must(err, "form-body token")
	if resp.Status >= 200 && resp.Status < 300 {
		t.Warnf("a token in a form-encoded body was accepted (%s); MCP clients must use the header", resp.Describe())
	}
}

// RS-07: the Bearer scheme is case-insensitive.
func rs07(t *T) {
	g := t.SharedGrant()
	for _, scheme := range []string{"bearer", "BEARER", "bEaReR"} {
		resp := t.CallMCP("MCP initialize with scheme "+scheme, scheme+" "+g.Tokens.AccessToken)
		if resp.Status < 200 || resp.Status >= 300 {
			t.Errorf("Authorization: %s <token> got %s; the scheme is case-insensitive (RFC 9110 §11.1)", scheme, resp.Describe())
		}
	}
}

// initSession initializes an MCP session with a token and returns the session ID ("" if stateless).
func (t *T) initSession(label, token string) (string, *oauthclient.Response) {
	resp := t.CallMCP(label, oauthclient.Bearer(token))
	if resp.Status < 200 || resp.Status >= 300 {
		t.Inconclusive(label, resp.Describe(), "a valid token must work for initialize before anything else can be tried", "RS-11")
	}
	return resp.Header.Get("Mcp-Session-Id"), resp
}

// RS-08: a session ID is not a credential: a request with the session but no token gets 401.
func rs08(t *T) {
	g := t.SharedGrant()
	sid, _ := t.initSession("initialize with a token", g.Tokens.AccessToken)
	if sid == "" {
		t.Skipf("the server runs stateless (no Mcp-Session-Id), so a session cannot stand in for a token")
	}
	resp, err := t.client.CallMCP(t.Label("tools/list with the session and no token"), t.env.cfg.Target,
		oauthclient.MCPCall{Method: "tools/list", Params: map[string]any{}, SessionID: sid})
	t.Must(err, "session without token")
	if resp.Status != http.StatusUnauthorized {
		t.Errorf("a request with a valid Mcp-Session-Id but no token got %s, want 401 (sessions are not authentication)", resp.Describe())
	}
}

// RS-09: a session is bound to its user: another user's valid token cannot use it.
func rs09(t *T) {
	second := t.env.cfg.SecondUser
	if second == nil {
		t.Skipf("needs a second upstream user (--second-username/--second-password)")
	}
	a := t.SharedGrant()
	b := t.Grant(Flow{Name: "user B", Credentials: second})
	sid, _ := t.initSession("initialize as user A", a.Tokens.AccessToken)
	if sid == "" {
		t.Skipf("the server runs stateless (no Mcp-Session-Id)")
	}
	resp, err := t.client.CallMCP(t.Label("user B's token on user A's session"), t.env.cfg.Target,
		oauthclient.MCPCall{Method: "tools/list", Params: map[string]any{}, SessionID: sid, Authorization: oauthclient.Bearer(b.Tokens.AccessToken)})
	t.Must(err, "cross-user session")
	if resp.Status >= 200 && resp.Status < 300 {
		t.Errorf("user B's token was accepted on user A's session %s (%s); bind sessions to the user", evidence.Elide(sid), resp.Describe())
	}
}

// RS-10: once the upstream grant is revoked and tokens expire, the proxy stops accepting the grant.
func rs10(t *T) {
	if t.design().Kind == report.DesignOwnAS {
		t.Skipf("not applicable: %s, so there is no upstream grant to revoke", t.design().Evidence)
	}
	up := t.Upstream()
	g := t.Grant(Flow{Name: "grant to revoke upstream"})
	sub := t.subjectOf(g)
	t.Must(up.RevokeUserGrants(t.ctx, sub), "revoke the user's grants at the upstream")
	// Past our access token and the upstream's (so the proxy has to go back to the upstream).
	d := max(t.accessLifetime(g), upstreamTokenLifetime) + 2*time.Minute
	t.TimeTravel(d)
	t.upstreamAdvance(d)
	if ok, resp := t.AcceptedByMCP("the access token after expiry", g.Tokens.AccessToken); ok {
		t.Errorf("the access token still works after its lifetime and the upstream revocation (%s)", resp.Describe())
	}
	if g.Tokens.RefreshToken == "" {
		t.Logf("no refresh token was issued; nothing more to check")
		return
	}
	resp := t.Token("refresh after the upstream grant was revoked", g.RefreshForm(g.Tokens.RefreshToken))
	t.gradeTokenError("refresh after the upstream revoked the grant", resp, "invalid_grant")
}

// RS-11: a freshly issued token works at once.
func rs11(t *T) {
	g := t.Grant(Flow{Name: "fresh grant"})
	if ok, resp := t.AcceptedByMCP("initialize right after /token", g.Tokens.AccessToken); !ok {
		t.Errorf("a token straight from /token was refused by the MCP endpoint: %s", resp.Describe())
	}
}

// RS-12: malformed Authorization headers get 400 or 401, never 2xx or 5xx.
func rs12(t *T) {
	g := t.SharedGrant()
	cases := map[string]string{
		"Bearer without a token": "Bearer",
		"Bearer with two tokens": "Bearer " + g.Tokens.AccessToken + " " + g.Tokens.AccessToken,
		"Bearer with a comma":    "Bearer " + g.Tokens.AccessToken + ", Bearer x",
		"Basic credentials":      "Basic " + b64([]byte("user:pass")),
	}
	for name, h := range cases {
		resp := t.CallMCP("MCP initialize with "+name, h)
		if resp.Status != http.StatusBadRequest && resp.Status != http.StatusUnauthorized {
			t.Errorf("%s: got %s, want 400 or 401", name, resp.Describe())
		}
	}
}

// RS-13: a foreign Origin is refused (DNS-rebinding protection).
func rs13(t *T) {
	g := t.SharedGrant()
	resp, err := t.client.CallMCP(t.Label("initialize from a foreign Origin"), t.env.cfg.Target,
		oauthclient.MCPCall{Authorization: oauthclient.Bearer(g.Tokens.AccessToken), Header: http.Header{"Origin": {testOrigin}}})
	t.Must(err, "foreign origin")
	if resp.Status != http.StatusForbidden {
		t.Errorf("a request with Origin: %s got %s, want 403 (servers MUST validate Origin)", testOrigin, resp.Describe())
	}
}

// subjectOf is the user the grant belongs to (the token's sub, else the configured user).
func (t *T) subjectOf(g *Grant) string {
	if d := decodeJWT(g.Tokens.AccessToken); d.Kind == evidence.KindJWS {
		if s := claimString(d.Claims, "sub"); s != "" {
			return s
		}
	}
	if s := t.env.cfg.UpstreamSubject; s != "" {
		return s
	}
	t.Skipf("cannot tell the upstream subject of the grant (opaque token and no --upstream-subject)")
	return ""
}

// accessLifetime is the access token's lifetime (expires_in, else exp-iat, else 1 h).
func (t *T) accessLifetime(g *Grant) time.Duration {
	if g.Tokens.ExpiresIn != nil && *g.Tokens.ExpiresIn > 0 {
		return time.Duration(*g.Tokens.ExpiresIn) * time.Second
	}
	if d := decodeJWT(g.Tokens.AccessToken); d.Kind == evidence.KindJWS {
		exp, _ := d.Claims["exp"].(float64)
		iat, _ := d.Claims["iat"].(float64)
		if exp > iat && iat > 0 {
			return time.Duration(exp-iat) * time.Second
		}
	}
	return time.Hour
}

// upstreamTokenLifetime is how long the upstream's access tokens are assumed to live: Auth0's
// default API token lifetime is 24 h. Checks that need the proxy to go back to the upstream move
// both clocks past it.
const upstreamTokenLifetime = 25 * time.Hour

// upstreamAdvance moves the upstream's clock when the run can (the mock Auth0's admin API).
func (t *T) upstreamAdvance(d time.Duration) {
	if t.env.cfg.Upstream == nil {
		return
	}
	t.exclusiveOnce()
	t.invalidatePool()
	t.env.forgetShared()
	t.Must(t.env.cfg.Upstream.Advance(t.ctx, d), "move the upstream's clock")
	t.Logf("moved the upstream's clock forward by %s", d)
}
