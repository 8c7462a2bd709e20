package checks

import (
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/cnpg-mcp/cnpg-mcp/conformance/evidence"
	"github.com/cnpg-mcp/cnpg-mcp/conformance/oauthclient"
)

// C.10 Token endpoint (authorization-code grant).
func tokenChecks() map[string]func(*T) {
	return map[string]func(*T){
		"TOK-01": tok01, "TOK-02": tok02, "TOK-03": tok03, "TOK-04": tok04, "TOK-05": tok05, "TOK-06": tok06,
		"TOK-07": tok07, "TOK-08": tok08, "TOK-09": tok09, "TOK-10": tok10, "TOK-11": tok11, "TOK-12": tok12,
		"TOK-13": tok13, "TOK-14": tok14, "TOK-15": tok15, "TOK-16": tok16,
	}
}

// bogusCodeForm is a well-formed code exchange for a code that does not exist.
func (t *T) bogusCodeForm(c *Client) url.Values {
	return oauthclient.CodeExchange{ClientID: c.ID, Code: "conformance-bogus-code-" + oauthclient.RandomString(8),
		RedirectURI: c.RedirectURI, CodeVerifier: oauthclient.NewVerifier()}.Form()
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

// TOK-04: a code is single-use, also under concurrent redemption.
func tok04(t *T) {
	r := t.Authorize(Flow{Name: "code to redeem twice"})
	first := t.Token("redeem the code", r.CodeExchange().Form())
	if first.Status != http.StatusOK {
		t.Fatalf("the first redemption failed: %s", first.Describe())
	}
	second := t.Token("redeem the same code again", r.CodeExchange().Form())
	if second.Status == http.StatusOK {
		t.Errorf("the same code was redeemed twice")
	} else {
		t.gradeTokenError("the second redemption", second, "invalid_grant")
	}
	r = t.Authorize(Flow{Name: "code to redeem concurrently"})
	const n = 10
	var wg sync.WaitGroup
	statuses := make([]int, n)
	form := r.CodeExchange().Form()
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			resp, err := t.client.Token(t.Label("concurrent redemption %d", i), t.AS().TokenEndpoint, form)
			if err == nil {
				statuses[i] = resp.Status
			}
		}(i)
	}
	wg.Wait()
	wins := 0
	for _, s := range statuses {
		if s == http.StatusOK {
			wins++
		}
	}
	if wins != 1 {
		t.Errorf("%d of %d concurrent redemptions of one code succeeded (statuses %v); exactly one may", wins, n, statuses)
	}
}

// TOK-05: a second valid redemption revokes the tokens issued from the first.
func tok05(t *T) {
	r := t.Authorize(Flow{Name: "code to replay"})
	resp := t.Token("redeem the code", r.CodeExchange().Form())
	tok, err := oauthclient.DecodeToken(resp)
	t.Must(err, "first redemption")
	replay := t.Token("replay the code with the right verifier", r.CodeExchange().Form())
	if replay.Status == http.StatusOK {
		t.Fatalf("the replayed code was accepted (see TOK-04)")
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
	resp := t.Token("redeem the code", r.CodeExchange().Form())
	tok, err := oauthclient.DecodeToken(resp)
	t.Must(err, "first redemption")
	x := r.CodeExchange()
	x.CodeVerifier = oauthclient.NewVerifier()
	bad := t.Token("replay the code with a wrong verifier", x.Form())
	if bad.Status == http.StatusOK {
		t.Fatalf("a replay with a wrong verifier was accepted")
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

// TOK-10: error responses are JSON with the right status (400; 401 for invalid_client).
func tok10(t *T) {
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

// TOK-11: an unknown client → 401 invalid_client.
func tok11(t *T) {
	c := t.RegisterClient(nil)
	form := t.bogusCodeForm(c)
	form.Set("client_id", "conformance-unknown-client-"+oauthclient.RandomString(6))
	resp := t.Token("token request from an unknown client", form)
	if resp.Status != http.StatusUnauthorized || resp.ErrorCode() != "invalid_client" {
		t.Errorf("an unknown client got %s; want 401 invalid_client", resp.Describe())
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

// TOK-15: access tokens are short-lived.
func tok15(t *T) {
	g := t.SharedGrant()
	life := t.accessLifetime(g)
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
