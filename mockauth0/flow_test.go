package mockauth0_test

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/cnpg-mcp/cnpg-mcp/mockauth0"
	"github.com/cnpg-mcp/cnpg-mcp/mockauth0/config"
)

func TestDiscoveryAndJWKS(t *testing.T) {
	e := start(t, nil)
	var doc map[string]any
	if err := json.Unmarshal([]byte(body(t, e.get(http.DefaultClient, e.iss+".well-known/openid-configuration"))), &doc); err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(e.iss, "/") || doc["issuer"] != e.iss {
		t.Fatalf("issuer %v, want %s ending in /", doc["issuer"], e.iss)
	}
	for k, want := range map[string]string{
		"authorization_endpoint": "authorize", "token_endpoint": "oauth/token", "userinfo_endpoint": "userinfo",
		"jwks_uri": ".well-known/jwks.json", "registration_endpoint": "oidc/register", "revocation_endpoint": "oauth/revoke",
	} {
		if doc[k] != e.iss+want {
			t.Errorf("%s = %v, want %s", k, doc[k], e.iss+want)
		}
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal([]byte(body(t, e.get(http.DefaultClient, e.iss+".well-known/jwks.json"))), &set); err != nil {
		t.Fatal(err)
	}
	if len(set.Keys) != 1 || set.Keys[0].KeyID == "" || set.Keys[0].Algorithm != "RS256" || len(set.Keys[0].Certificates) != 1 {
		t.Fatalf("jwks: %+v", set.Keys)
	}
}

// The standard flow: API audience, PKCE S256, openid + offline_access.
func TestCodeFlowAPIAccessTokenShape(t *testing.T) {
	e := start(t, nil)
	p := newPKCE()
	code := e.code(e.authParams(p))
	r := e.exchange(code, p.verifier)
	if r.status != http.StatusOK {
		t.Fatalf("exchange: %d %v", r.status, r.raw)
	}
	if r.str("token_type") != "Bearer" || r.raw["expires_in"].(float64) != 86400 || r.str("refresh_token") == "" {
		t.Fatalf("token response: %v", r.raw)
	}
	if !strings.HasPrefix(r.str("refresh_token"), "v1.") || strings.Count(r.str("refresh_token"), ".") != 1 {
		t.Errorf("refresh token should be opaque, got %q", r.str("refresh_token"))
	}
	hdr, c := e.verifyJWS(r.str("access_token"))
	if hdr.Algorithm != "RS256" || hdr.KeyID == "" || hdr.ExtraHeaders["typ"] != "JWT" {
		t.Errorf("access token header: %+v", hdr)
	}
	aud, _ := c["aud"].([]any)
	if c["iss"] != e.iss || c["sub"] != config.DefaultUserSub || c["azp"] != config.DefaultClientID ||
		len(aud) != 2 || aud[0] != config.DefaultAPIIdentifier || aud[1] != e.iss+"userinfo" ||
		c["scope"] != "openid profile email offline_access mcp:read" || c["exp"] == nil || c["iat"] == nil {
		t.Errorf("access token claims: %v", c)
	}
	_, id := e.verifyJWS(r.str("id_token"))
	if id["aud"] != config.DefaultClientID || id["nonce"] != "n-1" || id["iss"] != e.iss || id["email"] != config.DefaultUserEmail {
		t.Errorf("id token claims: %v", id)
	}
	// The state comes back unchanged and the code is bound to the redirect URI.
	if strings.Contains(r.str("access_token"), config.DefaultClientSecret) {
		t.Error("secret leaked into a token")
	}
}

// No audience: Auth0 issues an encrypted (JWE "dir"/A256GCM) token that only /userinfo can read.
func TestNoAudienceGivesJWEOnlyUserinfoAccepts(t *testing.T) {
	e := start(t, nil)
	p := newPKCE()
	params := e.authParams(p)
	params.Del("audience")
	params.Set("scope", "openid profile email")
	r := e.exchange(e.code(params), p.verifier)
	at := r.str("access_token")
	parts := strings.Split(at, ".")
	if len(parts) != 5 || parts[1] != "" {
		t.Fatalf("want a 5-part JWE with an empty key part, got %d parts", len(parts))
	}
	hb, _ := base64.RawURLEncoding.DecodeString(parts[0])
	var hdr map[string]any
	_ = json.Unmarshal(hb, &hdr)
	if hdr["alg"] != "dir" || hdr["enc"] != "A256GCM" || hdr["iss"] != e.iss {
		t.Fatalf("JWE header %v", hdr)
	}
	if _, err := jwt.ParseSigned(at, []jose.SignatureAlgorithm{jose.RS256}); err == nil {
		t.Fatal("the JWE parsed as a JWS")
	}
	req, _ := http.NewRequest(http.MethodGet, e.iss+"userinfo", nil)
	req.Header.Set("Authorization", "Bearer "+at)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var ui map[string]any
	_ = json.Unmarshal([]byte(body(t, resp)), &ui)
	if resp.StatusCode != 200 || ui["sub"] != config.DefaultUserSub || ui["email"] != config.DefaultUserEmail {
		t.Fatalf("userinfo: %d %v", resp.StatusCode, ui)
	}
	// Tampering with the ciphertext is detected.
	bad := strings.Join(append(parts[:3:3], parts[3][:len(parts[3])-2]+"AA", parts[4]), ".")
	req.Header.Set("Authorization", "Bearer "+bad)
	resp, _ = http.DefaultClient.Do(req)
	body(t, resp)
	if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(resp.Header.Get("WWW-Authenticate"), "invalid_token") {
		t.Fatalf("tampered JWE: %d %s", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	}
}

func TestUserinfoRejects(t *testing.T) {
	e := start(t, nil)
	p := newPKCE()
	params := e.authParams(p)
	params.Set("scope", "mcp:read") // no openid: the API token's audience lacks /userinfo
	apiTok := e.exchange(e.code(params), p.verifier).str("access_token")
	for name, hdr := range map[string]string{
		"no header": "", "not bearer": "Basic Zm9vOmJhcg==", "garbage": "Bearer abc", "api token without openid": "Bearer " + apiTok,
	} {
		t.Run(name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodGet, e.iss+"userinfo", nil)
			if hdr != "" {
				req.Header.Set("Authorization", hdr)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body(t, resp)
			if resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("WWW-Authenticate") == "" {
				t.Fatalf("got %d", resp.StatusCode)
			}
		})
	}
}

func rsaPEM(t *testing.T) (*rsa.PrivateKey, string) {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKIXPublicKey(&k.PublicKey)
	return k, string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
}

// An API with token encryption gets a nested JWT: RS256 JWS inside RSA-OAEP-256/A256GCM JWE.
// It decrypts with the API's private key and not with any other.
func TestNestedJWERoundTrip(t *testing.T) {
	priv, pub := rsaPEM(t)
	other, _ := rsaPEM(t)
	e := start(t, func(c *mockauth0.Config) {
		c.APIs[0].TokenEncryption = &config.TokenEncryption{Format: "compact-nested-jwe",
			EncryptionKey: config.EncryptionKey{Name: "rs", Alg: "RSA-OAEP-256", Kid: "enc-1", PEM: pub}}
	})
	p := newPKCE()
	at := e.exchange(e.code(e.authParams(p)), p.verifier).str("access_token")
	if strings.Count(at, ".") != 4 {
		t.Fatalf("want a JWE, got %d dots", strings.Count(at, "."))
	}
	obj, err := jose.ParseEncryptedCompact(at, []jose.KeyAlgorithm{jose.RSA_OAEP_256}, []jose.ContentEncryption{jose.A256GCM})
	if err != nil {
		t.Fatalf("parse JWE: %v", err)
	}
	if obj.Header.KeyID != "enc-1" || obj.Header.ExtraHeaders["cty"] != "JWT" {
		t.Errorf("JWE header: kid %q cty %v", obj.Header.KeyID, obj.Header.ExtraHeaders["cty"])
	}
	if _, err := obj.Decrypt(other); err == nil {
		t.Fatal("decrypted with the wrong key")
	}
	inner, err := obj.Decrypt(priv)
	if err != nil {
		t.Fatalf("decrypt: %v", err)
	}
	_, c := e.verifyJWS(string(inner))
	if c["sub"] != config.DefaultUserSub || c["iss"] != e.iss {
		t.Fatalf("inner claims %v", c)
	}
}

func TestAuthorizeErrors(t *testing.T) {
	e := start(t, nil)
	p := newPKCE()
	cases := []struct {
		name      string
		mutate    func(url.Values)
		page      bool   // error shown to the user (400, no Location)
		wantError string // error redirected to the client
	}{
		{"unknown client", func(v url.Values) { v.Set("client_id", "nope") }, true, ""},
		{"missing client", func(v url.Values) { v.Del("client_id") }, true, ""},
		{"unregistered redirect", func(v url.Values) { v.Set("redirect_uri", "https://evil.example/cb") }, true, ""},
		{"other path on loopback", func(v url.Values) { v.Set("redirect_uri", "http://127.0.0.1:5555/other") }, true, ""},
		{"userinfo in redirect", func(v url.Values) { v.Set("redirect_uri", "http://127.0.0.1@evil.example/auth/callback") }, true, ""},
		{"repeated client_id", func(v url.Values) { v.Add("client_id", "x") }, true, ""},
		{"implicit", func(v url.Values) { v.Set("response_type", "token") }, false, "unsupported_response_type"},
		{"unknown audience", func(v url.Values) { v.Set("audience", "https://nope.example/") }, false, "access_denied"},
		{"plain pkce", func(v url.Values) { v.Set("code_challenge_method", "plain") }, false, "invalid_request"},
		{"bad challenge", func(v url.Values) { v.Set("code_challenge", "short") }, false, "invalid_request"},
		{"unknown resource", func(v url.Values) { v.Set("resource", "https://mcp.example/mcp") }, false, "invalid_target"},
		{"prompt none without session", func(v url.Values) { v.Set("prompt", "none") }, false, "login_required"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			v := e.authParams(p)
			tc.mutate(v)
			resp := e.get(browser(t), e.iss+"authorize?"+v.Encode())
			b := body(t, resp)
			if tc.page {
				if resp.StatusCode != http.StatusBadRequest || resp.Header.Get("Location") != "" || !strings.Contains(b, "error-description") {
					t.Fatalf("want an error page, got %d Location=%q", resp.StatusCode, resp.Header.Get("Location"))
				}
				return
			}
			loc, _ := url.Parse(resp.Header.Get("Location"))
			if resp.StatusCode != http.StatusFound || loc.Query().Get("error") != tc.wantError || loc.Query().Get("state") != "st-1" ||
				!strings.HasPrefix(loc.String(), redirect) {
				t.Fatalf("want redirect with error=%s, got %d %s", tc.wantError, resp.StatusCode, loc)
			}
		})
	}
}

func TestResourceParameterAudienceProfile(t *testing.T) {
	e := start(t, func(c *mockauth0.Config) { c.Tenant.ResourceParameterProfile = "audience" })
	p := newPKCE()
	v := e.authParams(p)
	v.Del("audience")
	v.Set("resource", config.DefaultAPIIdentifier)
	_, c := e.verifyJWS(e.exchange(e.code(v), p.verifier).str("access_token"))
	if aud, _ := c["aud"].([]any); len(aud) == 0 || aud[0] != config.DefaultAPIIdentifier {
		t.Fatalf("aud %v", c["aud"])
	}
}

func TestLoginPageWrongPassword(t *testing.T) {
	e := start(t, nil)
	c := browser(t)
	resp := e.get(c, e.iss+"authorize?"+e.authParams(newPKCE()).Encode())
	body(t, resp)
	loc := resp.Header.Get("Location")
	page := body(t, e.get(c, e.abs(loc)))
	st := stateInput.FindStringSubmatch(page)[1]
	resp = e.post(c, e.abs(loc), url.Values{"state": {st}, "username": {config.DefaultUserEmail}, "password": {"wrong"}, "action": {"default"}})
	b := body(t, resp)
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(b, "Wrong email or password") || resp.Header.Get("Location") != "" {
		t.Fatalf("wrong password: %d", resp.StatusCode)
	}
	if resp.Header.Get("X-Frame-Options") == "" || resp.Header.Get("Cache-Control") != "no-store" {
		t.Error("login page lacks anti-framing or no-store headers")
	}
	resp = e.post(c, e.abs(loc), url.Values{"state": {st}, "username": {"nobody@example.com"}, "password": {"x"}, "action": {"default"}})
	if body(t, resp); resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("unknown user: %d", resp.StatusCode)
	}
}

// A second authorization in the same browser reuses the SSO session (no login page), as Auth0 does.
func TestSSOSessionAndLogout(t *testing.T) {
	e := start(t, func(c *mockauth0.Config) { c.Clients[0].AllowedLogoutURLs = []string{"http://127.0.0.1:5555/bye"} })
	c := browser(t)
	p := newPKCE()
	e.login(c, e.authParams(p), config.DefaultUserEmail, config.DefaultUserPassword)
	resp := e.get(c, e.iss+"authorize?"+e.authParams(p).Encode())
	body(t, resp)
	if u, _ := url.Parse(resp.Header.Get("Location")); u.Query().Get("code") == "" {
		t.Fatalf("second authorize did not reuse the session: %s", u)
	}
	resp = e.get(c, e.iss+"v2/logout?client_id="+config.DefaultClientID+"&returnTo="+url.QueryEscape("http://127.0.0.1:5555/bye"))
	body(t, resp)
	if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "http://127.0.0.1:5555/bye" {
		t.Fatalf("logout: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	resp = e.get(c, e.iss+"authorize?"+e.authParams(p).Encode())
	body(t, resp)
	if !strings.HasPrefix(resp.Header.Get("Location"), "/u/login") {
		t.Fatalf("after logout: %s", resp.Header.Get("Location"))
	}
	resp = e.get(c, e.iss+"v2/logout?returnTo="+url.QueryEscape("https://evil.example/"))
	if body(t, resp); resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("logout to an unlisted URL: %d", resp.StatusCode)
	}
}

func TestCodeExchangeErrors(t *testing.T) {
	e := start(t, nil)
	p := newPKCE()
	base := func(code string) url.Values {
		return url.Values{"grant_type": {"authorization_code"}, "client_id": {config.DefaultClientID},
			"client_secret": {config.DefaultClientSecret}, "code": {code}, "redirect_uri": {redirect}, "code_verifier": {p.verifier}}
	}
	cases := []struct {
		name   string
		mutate func(url.Values)
		status int
		err    string
	}{
		{"wrong verifier", func(v url.Values) { v.Set("code_verifier", strings.Repeat("x", 43)) }, 403, "invalid_grant"},
		{"short verifier", func(v url.Values) { v.Set("code_verifier", "abc") }, 403, "invalid_grant"},
		{"missing verifier", func(v url.Values) { v.Del("code_verifier") }, 400, "invalid_request"},
		{"wrong secret", func(v url.Values) { v.Set("client_secret", "nope") }, 401, "access_denied"},
		{"no secret", func(v url.Values) { v.Del("client_secret") }, 401, "access_denied"},
		{"unknown client", func(v url.Values) { v.Set("client_id", "nope") }, 401, "access_denied"},
		{"wrong redirect_uri", func(v url.Values) { v.Set("redirect_uri", "http://127.0.0.1:5555/other") }, 403, "invalid_grant"},
		{"missing redirect_uri", func(v url.Values) { v.Del("redirect_uri") }, 403, "invalid_grant"},
		{"unknown code", func(v url.Values) { v.Set("code", "nope") }, 403, "invalid_grant"},
		{"missing code", func(v url.Values) { v.Del("code") }, 400, "invalid_request"},
		{"missing grant_type", func(v url.Values) { v.Del("grant_type") }, 400, "invalid_request"},
		{"password grant", func(v url.Values) { v.Set("grant_type", "password") }, 400, "unsupported_grant_type"},
		{"grant not allowed", func(v url.Values) { v.Set("grant_type", "client_credentials") }, 403, "unauthorized_client"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			v := base(e.code(e.authParams(p)))
			tc.mutate(v)
			wantError(t, e.token(v), tc.status, tc.err)
		})
	}
	t.Run("reused code", func(t *testing.T) {
		code := e.code(e.authParams(p))
		if r := e.exchange(code, p.verifier); r.status != 200 {
			t.Fatalf("first: %v", r.raw)
		}
		wantError(t, e.exchange(code, p.verifier), 403, "invalid_grant")
	})
	t.Run("expired code", func(t *testing.T) {
		code := e.code(e.authParams(p))
		e.srv.Advance(11 * time.Minute)
		wantError(t, e.exchange(code, p.verifier), 403, "invalid_grant")
	})
	t.Run("basic auth and body secret together", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodPost, e.iss+"oauth/token", strings.NewReader(base(e.code(e.authParams(p))).Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth(config.DefaultClientID, config.DefaultClientSecret)
		resp, _ := http.DefaultClient.Do(req)
		if body(t, resp); resp.StatusCode != 400 {
			t.Fatalf("got %d", resp.StatusCode)
		}
	})
	t.Run("basic auth and JSON body", func(t *testing.T) {
		v := base(e.code(e.authParams(p)))
		v.Del("client_secret")
		m := map[string]string{}
		for k := range v {
			m[k] = v.Get(k)
		}
		b, _ := json.Marshal(m)
		req, _ := http.NewRequest(http.MethodPost, e.iss+"oauth/token", strings.NewReader(string(b)))
		req.Header.Set("Content-Type", "application/json")
		req.SetBasicAuth(config.DefaultClientID, config.DefaultClientSecret)
		resp, _ := http.DefaultClient.Do(req)
		if b := body(t, resp); resp.StatusCode != 200 {
			t.Fatalf("got %d %s", resp.StatusCode, b)
		}
	})
}

// Of concurrent redemptions of one code exactly one succeeds.
func TestConcurrentCodeRedemption(t *testing.T) {
	e := start(t, nil)
	p := newPKCE()
	code := e.code(e.authParams(p))
	var wg sync.WaitGroup
	var mu sync.Mutex
	ok := 0
	for range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if r := e.exchange(code, p.verifier); r.status == 200 {
				mu.Lock()
				ok++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if ok != 1 {
		t.Fatalf("%d successful redemptions, want 1", ok)
	}
}

func TestRefreshRotationAndReuseDetection(t *testing.T) {
	e := start(t, nil)
	p := newPKCE()
	r0 := e.exchange(e.code(e.authParams(p)), p.verifier)
	rt1 := r0.str("refresh_token")
	r1 := e.refresh(rt1, nil)
	rt2 := r1.str("refresh_token")
	if r1.status != 200 || rt2 == "" || rt2 == rt1 || r1.str("access_token") == "" || r1.str("id_token") == "" {
		t.Fatalf("rotation: %d %v", r1.status, r1.raw)
	}
	// Reusing the rotated token is a breach: it fails and the whole family (rt2 too) is revoked.
	wantError(t, e.refresh(rt1, nil), 403, "invalid_grant")
	wantError(t, e.refresh(rt2, nil), 403, "invalid_grant")
}

func TestRefreshLeewayScopeAndExpiry(t *testing.T) {
	e := start(t, func(c *mockauth0.Config) {
		c.Clients[0].RefreshToken = config.RefreshTokenPolicy{Leeway: 30, IdleTokenLifetime: 3600, TokenLifetime: 7200}
	})
	p := newPKCE()
	rt1 := e.exchange(e.code(e.authParams(p)), p.verifier).str("refresh_token")
	rt2 := e.refresh(rt1, nil).str("refresh_token")
	// Within the reuse interval the old token still works (Auth0's leeway), and the family survives.
	if r := e.refresh(rt1, nil); r.status != 200 {
		t.Fatalf("reuse within leeway: %v", r.raw)
	}
	if r := e.refresh(rt2, url.Values{"scope": {"openid mcp:read"}}); r.status != 200 || r.str("scope") != "openid mcp:read" {
		t.Fatalf("narrowed refresh: %v", r.raw)
	} else {
		rt2 = r.str("refresh_token")
	}
	wantError(t, e.refresh(rt2, url.Values{"scope": {"mcp:write"}}), 403, "access_denied")
	// The scope error did not rotate: rt2 still works after it.
	rt3 := e.refresh(rt2, nil).str("refresh_token")
	if rt3 == "" {
		t.Fatal("rt2 stopped working after a rejected scope expansion")
	}
	e.srv.Advance(3601 * time.Second) // idle
	wantError(t, e.refresh(rt3, nil), 403, "invalid_grant")
}

func TestRefreshNonRotatingAndOtherClient(t *testing.T) {
	e := start(t, func(c *mockauth0.Config) {
		c.Clients[0].RefreshToken.RotationType = "non-rotating"
		c.Clients = append(c.Clients, config.Client{ClientID: "other", ClientSecret: "other-secret", Name: "other",
			Callbacks: []string{redirect}})
	})
	p := newPKCE()
	rt := e.exchange(e.code(e.authParams(p)), p.verifier).str("refresh_token")
	for range 2 {
		if r := e.refresh(rt, nil); r.status != 200 || r.str("refresh_token") != "" {
			t.Fatalf("non-rotating refresh: %v", r.raw)
		}
	}
	r := e.token(url.Values{"grant_type": {"refresh_token"}, "client_id": {"other"}, "client_secret": {"other-secret"}, "refresh_token": {rt}})
	wantError(t, r, 403, "invalid_grant")
}

func TestRevocation(t *testing.T) {
	e := start(t, func(c *mockauth0.Config) {
		c.Clients = append(c.Clients, config.Client{ClientID: "other", ClientSecret: "other-secret", Name: "other", Callbacks: []string{redirect}})
	})
	p := newPKCE()
	rt := e.exchange(e.code(e.authParams(p)), p.verifier).str("refresh_token")
	revoke := func(form url.Values) int {
		resp := e.post(http.DefaultClient, e.iss+"oauth/revoke", form)
		body(t, resp)
		return resp.StatusCode
	}
	if s := revoke(url.Values{"client_id": {"other"}, "client_secret": {"other-secret"}, "token": {rt}}); s != 200 {
		t.Fatalf("other client's revoke: %d", s)
	}
	if r := e.refresh(rt, nil); r.status != 200 {
		t.Fatalf("another client revoked our token: %v", r.raw)
	} else {
		rt = r.str("refresh_token")
	}
	if s := revoke(url.Values{"client_id": {config.DefaultClientID}, "client_secret": {"bad"}, "token": {rt}}); s != 401 {
		t.Fatalf("bad client auth: %d", s)
	}
	if s := revoke(url.Values{"client_id": {config.DefaultClientID}, "client_secret": {config.DefaultClientSecret}, "token": {"unknown"}}); s != 200 {
		t.Fatalf("unknown token: %d", s)
	}
	if s := revoke(url.Values{"client_id": {config.DefaultClientID}, "client_secret": {config.DefaultClientSecret}, "token": {rt}}); s != 200 {
		t.Fatalf("revoke: %d", s)
	}
	wantError(t, e.refresh(rt, nil), 403, "invalid_grant")
	got := e.srv.RequestsTo("/oauth/revoke")
	if len(got) != 4 || got[3].Form.Get("token") != rt {
		t.Fatalf("request log of /oauth/revoke: %d entries", len(got))
	}
}

func TestRevokeUserGrants(t *testing.T) {
	e := start(t, nil)
	p := newPKCE()
	rt := e.exchange(e.code(e.authParams(p)), p.verifier).str("refresh_token")
	if n := e.srv.RevokeUserGrants(config.DefaultUserSub); n != 1 {
		t.Fatalf("revoked %d families", n)
	}
	wantError(t, e.refresh(rt, nil), 403, "invalid_grant")
}

func TestClientCredentials(t *testing.T) {
	e := start(t, nil)
	cc := func(id, secret, aud, scope string) tokenResp {
		v := url.Values{"grant_type": {"client_credentials"}, "client_id": {id}, "client_secret": {secret}, "audience": {aud}}
		if scope != "" {
			v.Set("scope", scope)
		}
		return e.token(v)
	}
	r := cc(config.DefaultSetupClientID, config.DefaultSetupSecret, e.srv.ManagementAudience(), "read:clients")
	if r.status != 200 || r.str("scope") != "read:clients" || r.str("refresh_token") != "" {
		t.Fatalf("mgmt token: %v", r.raw)
	}
	_, c := e.verifyJWS(r.str("access_token"))
	if c["sub"] != config.DefaultSetupClientID+"@clients" || c["gty"] != "client-credentials" || c["aud"] != e.srv.ManagementAudience() {
		t.Fatalf("claims %v", c)
	}
	wantError(t, cc(config.DefaultSetupClientID, config.DefaultSetupSecret, config.DefaultAPIIdentifier, ""), 403, "access_denied")
	wantError(t, cc(config.DefaultSetupClientID, config.DefaultSetupSecret, "https://nope/", ""), 403, "access_denied")
	wantError(t, cc(config.DefaultSetupClientID, config.DefaultSetupSecret, e.srv.ManagementAudience(), "no:such"), 403, "access_denied")
	wantError(t, cc(config.DefaultSetupClientID, "bad", e.srv.ManagementAudience(), ""), 401, "access_denied")
	wantError(t, cc(config.DefaultClientID, config.DefaultClientSecret, e.srv.ManagementAudience(), ""), 403, "unauthorized_client")
}

// DCR clients are third party: the user sees a consent page the first time.
func TestDynamicRegistrationAndConsent(t *testing.T) {
	e := start(t, nil)
	reg := func(body string) (int, map[string]any) {
		resp, err := http.Post(e.iss+"oidc/register", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		_ = json.Unmarshal([]byte(bodyOf(t, resp)), &m)
		return resp.StatusCode, m
	}
	for name, b := range map[string]string{
		"javascript": `{"redirect_uris":["javascript:alert(1)"]}`, "http remote": `{"redirect_uris":["http://evil.example/cb"]}`,
		"fragment": `{"redirect_uris":["https://c.example/cb#x"]}`, "none": `{"client_name":"x"}`, "not json": `{`,
	} {
		if s, m := reg(b); s != 400 || m["error"] == nil {
			t.Errorf("%s: %d %v", name, s, m)
		}
	}
	s, m := reg(`{"client_name":"Suite","redirect_uris":["` + redirect + `"],"token_endpoint_auth_method":"none","x_unknown":1}`)
	if s != 201 || m["client_id"] == "" || m["client_secret"] != nil {
		t.Fatalf("register public: %d %v", s, m)
	}
	p := newPKCE()
	v := e.authParams(p)
	v.Set("client_id", m["client_id"].(string))
	c := browser(t)
	u := e.login(c, v, config.DefaultUserEmail, config.DefaultUserPassword) // accepts consent on the way
	r := e.token(url.Values{"grant_type": {"authorization_code"}, "client_id": {m["client_id"].(string)},
		"code": {u.Query().Get("code")}, "redirect_uri": {redirect}, "code_verifier": {p.verifier}})
	if r.status != 200 {
		t.Fatalf("public client exchange: %v", r.raw)
	}
	// Consent is remembered for this user and client.
	resp := e.get(c, e.iss+"authorize?"+v.Encode())
	body(t, resp)
	if loc, _ := url.Parse(resp.Header.Get("Location")); loc.Query().Get("code") == "" {
		t.Fatalf("consent not remembered: %s", loc)
	}
	// Public clients must use PKCE.
	v.Del("code_challenge")
	v.Del("code_challenge_method")
	resp = e.get(c, e.iss+"authorize?"+v.Encode())
	body(t, resp)
	if loc, _ := url.Parse(resp.Header.Get("Location")); loc.Query().Get("error") != "invalid_request" {
		t.Fatalf("public client without PKCE: %s", loc)
	}
}

func TestConsentDeny(t *testing.T) {
	e := start(t, func(c *mockauth0.Config) {
		third := false
		c.Clients = append(c.Clients, config.Client{ClientID: "third", ClientSecret: "third-secret", Name: "Third",
			Callbacks: []string{redirect}, IsFirstParty: &third})
	})
	c := browser(t)
	v := e.authParams(newPKCE())
	v.Set("client_id", "third")
	resp := e.get(c, e.iss+"authorize?"+v.Encode())
	body(t, resp)
	login := resp.Header.Get("Location")
	st := stateInput.FindStringSubmatch(body(t, e.get(c, e.abs(login))))[1]
	resp = e.post(c, e.abs(login), url.Values{"state": {st}, "username": {config.DefaultUserEmail}, "password": {config.DefaultUserPassword}})
	body(t, resp)
	resp = e.get(c, e.abs(resp.Header.Get("Location"))) // resume → consent
	body(t, resp)
	consent := resp.Header.Get("Location")
	if !strings.HasPrefix(consent, "/u/consent") {
		t.Fatalf("no consent page: %s", consent)
	}
	page := body(t, e.get(c, e.abs(consent)))
	if !strings.Contains(page, "mcp:read") || !strings.Contains(page, `value="deny"`) {
		t.Fatal("consent page lacks scopes or deny button")
	}
	resp = e.post(c, e.abs(consent), url.Values{"state": {st}, "action": {"deny"}})
	body(t, resp)
	loc, _ := url.Parse(resp.Header.Get("Location"))
	if loc.Query().Get("error") != "access_denied" || loc.Query().Get("state") != "st-1" {
		t.Fatalf("deny: %s", loc)
	}
}

func TestFormPostResponseMode(t *testing.T) {
	e := start(t, nil)
	c := browser(t)
	v := e.authParams(newPKCE())
	e.login(c, v, config.DefaultUserEmail, config.DefaultUserPassword) // SSO session
	v.Set("response_mode", "form_post")
	resp := e.get(c, e.iss+"authorize?"+v.Encode())
	page := body(t, resp)
	if resp.StatusCode != 200 || !strings.Contains(page, `action="`+redirect+`"`) || !strings.Contains(page, `name="code"`) {
		t.Fatalf("form_post: %d %s", resp.StatusCode, page)
	}
}

func bodyOf(t *testing.T, resp *http.Response) string { return body(t, resp) }

// Nothing the mock logs contains a code, token or secret.
func TestLogsHoldNoSecrets(t *testing.T) {
	e := start(t, nil)
	p := newPKCE()
	code := e.code(e.authParams(p))
	r := e.exchange(code, p.verifier)
	e.refresh(r.str("refresh_token"), nil)
	logs := e.logs.String()
	if !strings.Contains(logs, "/oauth/token") {
		t.Fatalf("expected request logs at debug level, got %q", logs)
	}
	for _, s := range []string{code, r.str("access_token"), r.str("refresh_token"), r.str("id_token"), config.DefaultClientSecret, config.DefaultUserPassword, p.verifier} {
		if s != "" && strings.Contains(logs, s) {
			t.Fatalf("log contains a secret: %.12s…", s)
		}
	}
	if slices.Contains(strings.Fields(logs), "code=") {
		t.Fatal("query string logged")
	}
}

// The default (dev) tenant's login page names its users' credentials; a tenant that does not say
// so (any tenant loaded from a file, by default) never shows a password.
func TestLoginPageDevCredentials(t *testing.T) {
	for _, show := range []bool{true, false} {
		e := start(t, func(c *mockauth0.Config) {
			if !show {
				c.Tenant.ShowCredentialsOnLogin = false
			}
		})
		c := browser(t)
		resp := e.get(c, e.iss+"authorize?"+e.authParams(newPKCE()).Encode())
		body(t, resp)
		page := body(t, e.get(c, e.abs(resp.Header.Get("Location"))))
		has := strings.Contains(page, `id="dev-credentials"`) && strings.Contains(page, "<code>"+config.DefaultUserEmail+"</code>") &&
			strings.Contains(page, "<code>"+config.DefaultUserPassword+"</code>")
		if has != show || (!show && strings.Contains(page, config.DefaultUserPassword)) {
			t.Fatalf("show=%v: credentials on the login page: %v\n%s", show, has, page)
		}
	}
	if parsed, err := config.Parse([]byte("users: []\n")); err != nil || parsed.Tenant.ShowCredentialsOnLogin {
		t.Fatalf("a tenant from a file shows credentials unless it says so (%v)", err)
	}
}
