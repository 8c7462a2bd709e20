package checks

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/cnpg-mcp/cnpg-mcp/conformance/evidence"
	"github.com/cnpg-mcp/cnpg-mcp/conformance/oauthclient"
)

// C.10 Token endpoint (authorization-code grant).
func tokenChecks() map[string]func(*T) {
	return map[string]func(*T){
		"TOK-01": tok01, "TOK-02": tok02, "TOK-03": tok03, "TOK-04": tok04, "TOK-05": tok05, "TOK-06": tok06,
		"TOK-07": tok07, "TOK-08": tok08, "TOK-09": tok09, "TOK-10": tok10, "TOK-11": tok11, "TOK-12": tok12,
		"TOK-13": tok13, "TOK-14": tok14, "TOK-15": tok15, "TOK-16": tok16, "TOK-17": tok17,
	}
}

// bogusCodeForm is a well-formed code exchange for a code that does not exist.
func (t *T) bogusCodeForm(c *Client) url.Values {
	return oauthclient.CodeExchange{ClientID: c.ID, Code: "conformance-bogus-code-" + oauthclient.RandomString(8),
		RedirectURI: c.RedirectURI, CodeVerifier: oauthclient.NewVerifier()}.Form()
}

// redeem redeems a flow's code (a precondition: a refused valid redemption is TOK-03's failure).
func (t *T) redeem(r *FlowResult) *oauthclient.TokenResponse {
	resp := t.Token("redeem the code", r.CodeExchange().Form())
	tok, err := oauthclient.DecodeToken(resp)
	if err != nil {
		t.Inconclusive("redeem a fresh code", resp.Describe(), "", "TOK-03")
	}
	return tok
}

// TOK-01: the token endpoint takes POST only.
func tok01(t *T) {
	c := t.RegisterClient(nil)
	u := t.AS().TokenEndpoint + "?" + t.bogusCodeForm(c).Encode()
	resp, err := t.client.Get(t.Label("GET the token endpoint"), u, nil)
	t.Must(err, "GET token endpoint")
	if resp.Status == http.StatusOK {
		t.Errorf("GET on the token endpoint answered 200 (%s)", resp.Describe())
	} else if resp.Status >= 500 {
		t.Errorf("GET on the token endpoint answered %s", resp.Describe())
	}
}

// TOK-02: Cache-Control: no-store on success and error responses.
func tok02(t *T) {
	g := t.SharedGrant()
	if !hasNoStore(g.Resp.Header) {
		t.Errorf("the successful token response has Cache-Control %q, want no-store", g.Resp.Header.Get("Cache-Control"))
	}
	c := t.RegisterClient(nil)
	resp := t.Token("redeem a bogus code", t.bogusCodeForm(c))
	if !hasNoStore(resp.Header) {
		t.Errorf("the token error response has Cache-Control %q, want no-store", resp.Header.Get("Cache-Control"))
	}
}

// TOK-03: the success response has access_token, token_type Bearer and expires_in.
func tok03(t *T) {
	g := t.SharedGrant()
	if g.Resp.MediaType() != "application/json" {
		t.Errorf("the token response is %q, not application/json", g.Resp.MediaType())
	}
	if !strings.EqualFold(g.Tokens.TokenType, "Bearer") {
		t.Errorf("token_type is %q, want Bearer", g.Tokens.TokenType)
	}
	if g.Tokens.ExpiresIn == nil {
		t.Warnf("the token response has no expires_in (RECOMMENDED)")
	}
	if s := g.Tokens.Scope; s != "" && badScopeChars(s) {
		t.Errorf("scope %q is not a valid scope string", s)
	}
}

// TOK-04: a code is single-use, also under concurrent redemption. A race shows only when the
// redemptions overlap, so the concurrent attempt (ten redemptions released together on open
// connections) is repeated with fresh codes until the defect shows or the budget is spent.
func tok04(t *T) {
	r := t.Authorize(Flow{Name: "code to redeem twice"})
	first := t.Token("redeem the code", r.CodeExchange().Form())
	if first.Status != http.StatusOK {
		t.Inconclusive("redeem a fresh code", first.Describe(), "", "TOK-03")
	}
	second := t.Token("redeem the same code again", r.CodeExchange().Form())
	if second.Status == http.StatusOK {
		t.Errorf("the same code was redeemed twice")
	} else {
		t.gradeTokenError("the second redemption", second, "invalid_grant")
	}
	const n = 10
	t.race(5, 12*time.Second, func(i int) bool {
		r := t.Authorize(Flow{Name: fmt.Sprintf("code to redeem concurrently (attempt %d)", i)})
		out := t.concurrentPosts(fmt.Sprintf("attempt %d: concurrent redemption", i), t.AS().TokenEndpoint, r.CodeExchange().Form(), nil, n)
		wins := 0
		for _, resp := range out {
			if resp != nil && resp.Status == http.StatusOK {
				wins++
			}
		}
		t.Logf("attempt %d: %d of %d concurrent redemptions succeeded (statuses %v)", i, wins, n, statusesOf(out))
		if wins > 1 {
			t.Errorf("%d of %d concurrent redemptions of one code succeeded (attempt %d, statuses %v); exactly one may", wins, n, i, statusesOf(out))
			return true
		}
		if wins == 0 {
			t.Inconclusive(fmt.Sprintf("redeem a fresh code with %d concurrent requests", n), fmt.Sprintf("none succeeded (statuses %v)", statusesOf(out)),
				"one of the concurrent redemptions of a valid code must succeed; refusing them all is no evidence about a race", "TOK-03")
		}
		return false
	})
}

// TOK-05: a second valid redemption revokes the tokens issued from the first.
func tok05(t *T) {
	r := t.Authorize(Flow{Name: "code to replay"})
	tok := t.redeem(r)
	replay := t.Token("replay the code with the right verifier", r.CodeExchange().Form())
	if replay.Status == http.StatusOK {
		t.Inconclusive("replay a redeemed code", "the replay was accepted", "a code that can be redeemed twice is TOK-04's failure; what a refused replay revokes cannot be seen", "TOK-04")
	}
	if ok, resp := t.AcceptedByMCP("the first access token after the replay", tok.AccessToken); ok {
		t.Errorf("the access token from the first redemption still works after the code was replayed (%s); OAuth 2.1 §4.1.3: revoke them", resp.Describe())
	}
	if tok.RefreshToken != "" {
		rf := t.Token("refresh with the first refresh token after the replay", oauthclient.RefreshRequest{ClientID: r.Client.ID, RefreshToken: tok.RefreshToken}.Form())
		if rf.Status == http.StatusOK {
			t.Errorf("the refresh token from the first redemption still works after the code was replayed")
		}
	}
}

// TOK-06: a replay with invalid parameters does not revoke anything (no DoS).
func tok06(t *T) {
	r := t.Authorize(Flow{Name: "code to replay wrongly"})
	tok := t.redeem(r)
	x := r.CodeExchange()
	x.CodeVerifier = oauthclient.NewVerifier()
	bad := t.Token("replay the code with a wrong verifier", x.Form())
	if bad.Status == http.StatusOK {
		t.Inconclusive("replay a redeemed code with a wrong verifier", "the replay was accepted", "a code redeemed twice or with a wrong verifier is TOK-04's and PKCE-04's failure", "TOK-04")
	}
	if ok, resp := t.AcceptedByMCP("the first access token after the invalid replay", tok.AccessToken); !ok {
		t.Errorf("an invalid replay (wrong verifier) revoked the legitimate tokens (%s); anyone holding a leaked code could log users out", resp.Describe())
	}
}

// TOK-07: a code is bound to its client.
func tok07(t *T) {
	r := t.Authorize(Flow{Name: "code for client A"})
	other := t.NewClient(nil)
	x := r.CodeExchange()
	x.ClientID = other.ID
	x.RedirectURI = other.RedirectURI
	resp := t.Token("redeem client A's code as client B", x.Form())
	t.gradeTokenError("a code redeemed by another client", resp, "invalid_grant")
}

// TOK-08: redirect_uri at /token may be omitted; when sent it must match.
func tok08(t *T) {
	r := t.Authorize(Flow{Name: "code redeemed without redirect_uri"})
	x := r.CodeExchange()
	x.RedirectURI = ""
	resp := t.Token("redeem without redirect_uri", x.Form())
	if resp.Status != http.StatusOK {
		t.Errorf("a code redeemed without redirect_uri was refused (%s); OAuth 2.1 clients omit it", resp.Describe())
	}
	r = t.Authorize(Flow{Name: "code redeemed with a wrong redirect_uri"})
	x = r.CodeExchange()
	x.RedirectURI = r.Client.RedirectURI + "x"
	resp = t.Token("redeem with a wrong redirect_uri", x.Form())
	t.gradeTokenError("a code redeemed with a different redirect_uri", resp, "invalid_grant")
}

// TOK-09: an expired code → invalid_grant.
func tok09(t *T) {
	r := t.expiredCode()
	resp := t.Token("redeem an expired code", r.CodeExchange().Form())
	t.gradeTokenError("an expired code", resp, "invalid_grant")
}

// TOK-10: error responses are JSON with the right status (400; 401 for invalid_client): its own
// probes, and every refusal of the wrong form the other token-endpoint rows saw.
func tok10(t *T) {
	defer t.gradeRecordedForms(tokenErrors, false)
	c := t.RegisterClient(nil)
	resp := t.Token("redeem a bogus code", t.bogusCodeForm(c))
	if resp.JSON == nil {
		t.Errorf("the error response is not JSON (%s)", resp.Describe())
	}
	t.gradeTokenError("a bogus code", resp, "invalid_grant")
	resp = t.Token("unknown grant_type", url.Values{"grant_type": {"urn:conformance:bogus"}, "client_id": {c.ID}})
	t.gradeTokenError("an unknown grant_type", resp, "unsupported_grant_type")
	basic := http.Header{"Authorization": {"Basic " + b64([]byte(url.QueryEscape(c.ID)+":wrong-secret"))}}
	form := t.bogusCodeForm(c)
	form.Del("client_id")
	bresp, err := t.client.PostForm(t.Label("client_secret_basic with a wrong secret"), t.AS().TokenEndpoint, form, basic)
	t.Must(err, "basic auth")
	switch {
	case bresp.Status == http.StatusUnauthorized:
		if bresp.Header.Get("WWW-Authenticate") == "" {
			t.Errorf("401 invalid_client after Basic authentication carries no WWW-Authenticate (OAuth 2.1 §3.2.4)")
		}
	case bresp.Status == http.StatusBadRequest:
		t.Logf("Basic credentials for a public client were refused with 400 %s", bresp.ErrorCode())
	default:
		t.Errorf("Basic authentication with a wrong secret got %s", bresp.Describe())
	}
}

// TOK-11: an unknown client → invalid_client, never 5xx. Without an Authorization header RFC 6749
// §5.2 allows 400 (a warning: clients such as Claude re-register only on 401); with Basic
// credentials (when the server takes them) 401 is required.
func tok11(t *T) {
	c := t.RegisterClient(nil)
	form := t.bogusCodeForm(c)
	form.Set("client_id", "conformance-unknown-client-"+oauthclient.RandomString(6))
	resp := t.Token("token request from an unknown client", form)
	t.gradeUnknownClient("an unknown client_id in the body", resp, false)
	// The Authorization-header rule applies to a server that takes client credentials there:
	// client_secret_basic advertised, or no list at all (RFC 8414 §2: the default is
	// client_secret_basic). A server that lists only other methods is not asked about Basic.
	if m := t.AS(); m.Has("token_endpoint_auth_methods_supported") && !slices.Contains(m.TokenEndpointAuthMethodsSupported, "client_secret_basic") {
		t.Logf("token_endpoint_auth_methods_supported %v has no client_secret_basic: the unknown client is not tried with Basic credentials", m.TokenEndpointAuthMethodsSupported)
		return
	}
	basic := t.bogusCodeForm(c)
	basic.Del("client_id")
	bresp, err := t.client.PostForm(t.Label("token request from an unknown client with Basic credentials"), t.AS().TokenEndpoint, basic,
		http.Header{"Authorization": {"Basic " + b64([]byte("conformance-unknown-client-"+oauthclient.RandomString(6)+":secret"))}})
	t.Must(err, "token request with Basic credentials")
	t.gradeUnknownClient("an unknown client authenticating with Basic credentials", bresp, true)
}

// gradeUnknownClient grades the answer to an unknown client: invalid_client; 401 (with a
// WWW-Authenticate) when the client used the Authorization header, 400 allowed otherwise (warn).
func (t *T) gradeUnknownClient(what string, resp *oauthclient.Response, usedHeader bool) {
	switch {
	case resp.Status >= 500:
		t.Errorf("%s got %s; want invalid_client, never a server error", what, resp.Describe())
	case resp.ErrorCode() != "invalid_client":
		t.Errorf("%s got %s; want error=invalid_client (RFC 6749 §5.2)", what, resp.Describe())
	case resp.Status == http.StatusUnauthorized:
		if usedHeader && resp.Header.Get("WWW-Authenticate") == "" {
			t.Errorf("%s: 401 without WWW-Authenticate (RFC 6749 §5.2 requires it after Authorization-header authentication)", what)
		}
	case resp.Status == http.StatusBadRequest && !usedHeader:
		t.Warnf("%s got 400 invalid_client: allowed without an Authorization header (RFC 6749 §5.2), but clients such as Claude re-register only on 401", what)
	default:
		t.Errorf("%s got %s; want 401 invalid_client (RFC 6749 §5.2: REQUIRED when the client authenticated with the Authorization header)", what, resp.Describe())
	}
}

// TOK-12: password, implicit and (for public clients) client_credentials are refused.
func tok12(t *T) {
	c := t.RegisterClient(nil)
	cases := map[string]url.Values{
		"password":           {"grant_type": {"password"}, "username": {"dev@example.com"}, "password": {"x"}, "client_id": {c.ID}},
		"implicit":           {"grant_type": {"implicit"}, "client_id": {c.ID}},
		"client_credentials": {"grant_type": {"client_credentials"}, "client_id": {c.ID}},
	}
	for name, f := range cases {
		resp := t.Token("grant_type="+name, f)
		t.gradeTokenError("grant_type="+name, resp, "unsupported_grant_type", "unauthorized_client")
	}
}

// TOK-13: repeated parameters are refused; unknown ones ignored; one client-auth method only.
func tok13(t *T) {
	r := t.Authorize(Flow{Name: "code for a duplicated parameter"})
	f := r.CodeExchange().Form()
	f["code"] = append(f["code"], f.Get("code"))
	resp := t.Token("redeem with code twice", f)
	if resp.Status == http.StatusOK {
		t.Errorf("a token request with code twice was accepted (OAuth 2.1 §3.2: parameters MUST NOT repeat)")
	} else {
		t.gradeTokenError("code sent twice", resp, "invalid_request", "invalid_grant")
	}
	r = t.Authorize(Flow{Name: "code with an unknown parameter"})
	x := r.CodeExchange()
	x.Extra = url.Values{"conformance_unknown": {"1"}}
	if resp := t.Token("redeem with an unknown parameter", x.Form()); resp.Status != http.StatusOK {
		t.Errorf("an unknown parameter made the token request fail (%s); it must be ignored", resp.Describe())
	}
	c := r.Client
	form := t.bogusCodeForm(c)
	form.Set("client_secret", "conformance-secret")
	two, err := t.client.PostForm(t.Label("two client authentication methods"), t.AS().TokenEndpoint, form,
		http.Header{"Authorization": {"Basic " + b64([]byte(url.QueryEscape(c.ID)+":conformance-secret"))}})
	t.Must(err, "two auth methods")
	if two.Status == http.StatusOK {
		t.Errorf("a request authenticating the client twice (Basic and body) was accepted")
	}
}

// TOK-14: a public client must identify itself with client_id.
func tok14(t *T) {
	r := t.Authorize(Flow{Name: "code redeemed without client_id"})
	x := r.CodeExchange()
	x.ClientID = ""
	resp := t.Token("redeem without client_id", x.Form())
	t.gradeTokenError("a code redeemed without client_id", resp, "invalid_client", "invalid_request")
}

// TOK-15: access tokens are short-lived. The lifetime is expires_in; when the token is a JWT its
// exp is compared with it too (from the token's iat, else the token response's Date, so clock
// skew does not count): a token response that claims a lifetime the token does not have misleads
// clients (they refresh too late, or use a dead token), and the longer one is graded.
func tok15(t *T) {
	g := t.SharedGrant()
	d := decodeJWT(g.Tokens.AccessToken)
	var real time.Duration
	if exp, ok := d.Claims["exp"].(float64); ok && d.Kind == evidence.KindJWS {
		from, src := time.Time{}, ""
		if iat, ok := d.Claims["iat"].(float64); ok && iat > 0 {
			from, src = time.Unix(int64(iat), 0), "iat"
		} else if dt, err := http.ParseTime(g.Resp.Header.Get("Date")); err == nil {
			from, src = dt, "the token response's Date"
		}
		if !from.IsZero() {
			real = time.Unix(int64(exp), 0).Sub(from)
			t.Logf("the token's exp is %s after %s", real, src)
		}
	}
	var life time.Duration
	switch {
	case g.Tokens.ExpiresIn != nil && *g.Tokens.ExpiresIn > 0:
		life = time.Duration(*g.Tokens.ExpiresIn) * time.Second
		if real != 0 {
			if diff := (life - real).Abs(); diff > max(2*time.Minute, min(life, real)/10) {
				t.Errorf("expires_in says the access token lives %s, but its exp says %s: the token response misstates the lifetime", life, real)
			}
			life = max(life, real)
		}
	case real != 0:
		life = real
		t.Logf("no expires_in; the token's exp gives a lifetime of %s", life)
	default:
		t.Logf("the lifetime of the access token is not stated (no expires_in, no readable exp)")
		return
	}
	switch {
	case life <= time.Hour:
		t.Logf("access tokens live %s", life)
	case life > 24*time.Hour:
		t.Warnf("access tokens live %s (more than 24 h)", life)
	default:
		t.Logf("access tokens live %s (more than the 1 h the catalogue suggests)", life)
	}
}

// TOK-16: a JWT access token carries iss, aud, exp, jti and preferably typ at+jwt.
func tok16(t *T) {
	g := t.SharedGrant()
	d := decodeJWT(g.Tokens.AccessToken)
	if d.Kind != evidence.KindJWS {
		t.Logf("the access token is %s, not a JWT", d.Kind)
		return
	}
	as := t.AS()
	if iss := claimString(d.Claims, "iss"); iss != as.Issuer {
		t.Errorf("iss %q is not the AS issuer %q", iss, as.Issuer)
	}
	if !audContains(d.Claims, t.Resource()) {
		t.Errorf("aud %v does not contain the resource %s", d.Claims["aud"], t.Resource())
	}
	for _, c := range []string{"exp", "jti"} {
		if _, ok := d.Claims[c]; !ok {
			t.Errorf("the access token has no %s", c)
		}
	}
	if typ, _ := d.Header["typ"].(string); !strings.EqualFold(typ, "at+jwt") && !strings.EqualFold(typ, "application/at+jwt") {
		t.Warnf("the access token's typ is %q; RFC 9068 uses at+jwt", typ)
	}
	if _, ok := d.Claims["sub"]; !ok {
		t.Warnf("the access token has no sub")
	}
}

// TOK-17: a failed redemption does not void the code for its owner (a warning: refusing the
// owner afterwards is a denial of service anyone who sees a code can cause, not a leak).
func tok17(t *T) {
	r := t.Authorize(Flow{Name: "code tried by another client first"})
	other := t.NewClient(nil)
	x := r.CodeExchange()
	x.ClientID, x.RedirectURI = other.ID, other.RedirectURI
	if resp := t.Token("redeem client A's code as client B", x.Form()); resp.Status == http.StatusOK {
		t.Inconclusive("redeem client A's code as client B", "the redemption was accepted", "a code redeemed by another client is TOK-07's failure; whether a refusal voids it cannot be seen", "TOK-07")
	}
	if resp := t.Token("redeem the code as its own client afterwards", r.CodeExchange().Form()); resp.Status != http.StatusOK {
		t.Warnf("after another client's failed attempt, the client the code was issued to could not redeem it (%s): anyone who sees a code can cancel the user's login", resp.Describe())
	}
	r = t.Authorize(Flow{Name: "code tried with a wrong verifier first"})
	x = r.CodeExchange()
	x.CodeVerifier = oauthclient.NewVerifier()
	if resp := t.Token("redeem the code with a wrong verifier", x.Form()); resp.Status == http.StatusOK {
		t.Inconclusive("redeem a code with a wrong verifier", "the redemption was accepted", "a code redeemed with a wrong verifier is PKCE-04's failure", "PKCE-04")
	}
	if resp := t.Token("redeem the code with the right verifier afterwards", r.CodeExchange().Form()); resp.Status != http.StatusOK {
		t.Warnf("after a failed attempt with a wrong code_verifier, the right verifier could not redeem the code (%s): anyone who sees a code can cancel the user's login", resp.Describe())
	}
}
