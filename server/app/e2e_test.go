package app

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cnpg-mcp/cnpg-mcp/mockauth0"
	mconfig "github.com/cnpg-mcp/cnpg-mcp/mockauth0/config"
	"github.com/cnpg-mcp/cnpg-mcp/server/config"
)

func claimsOf(t *testing.T, jwt string) map[string]any {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(strings.Split(jwt, ".")[1])
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	return m
}

// The whole flow against the mock Auth0: PXY-13 (our JWT, never Auth0's), PXY-16/PKCE-07 (own PKCE
// S256 + fresh state upstream), PXY-15 (resource not forwarded, audience sent), PXY-20 (id_token
// verified), AZ-14/ASM-02 (one issuer string everywhere), RS-11 (token valid right away).
func TestE2E_FlowAgainstMockAuth0(t *testing.T) {
	s := newStack(t, nil)
	in := s.start(nil)
	id := s.register(in)
	loc := s.login(in, in, id, url.Values{"resource": {in.base + "/mcp"}})
	q := loc.Query()
	if q.Get("state") != "client-state" || q.Get("iss") != in.Config.IssuerURL() || q.Get("code") == "" {
		t.Fatalf("client redirect %s", loc)
	}
	m := s.exchange(in, id, q.Get("code"))
	at := m["access_token"].(string)
	c := claimsOf(t, at)
	if c["iss"] != in.Config.IssuerURL() || c["aud"] != in.base+"/mcp" || c["sub"] != mconfig.DefaultUserSub || c["client_id"] != id {
		t.Fatalf("claims %v", c)
	}
	if _, err := in.Tokens.Verify(t.Context(), at); err != nil {
		t.Fatalf("RS-11: fresh token refused: %v", err)
	}
	// ASM-02/PRM-09: metadata issuer = PRM authorization_servers[0] = iss parameter = JWT iss.
	_, mb := s.get(nil, in.base+"/.well-known/oauth-authorization-server")
	_, pb := s.get(nil, in.base+"/.well-known/oauth-protected-resource/mcp")
	var meta, prm map[string]any
	_ = json.Unmarshal([]byte(mb), &meta)
	_ = json.Unmarshal([]byte(pb), &prm)
	if meta["issuer"] != q.Get("iss") || prm["authorization_servers"].([]any)[0] != q.Get("iss") || prm["resource"] != c["aud"] {
		t.Fatalf("issuer strings differ: meta=%v prm=%v iss=%s", meta["issuer"], prm["authorization_servers"], q.Get("iss"))
	}
	// The upstream leg, as the mock recorded it.
	authz := s.mock.RequestsTo("/authorize")
	if len(authz) == 0 {
		t.Fatal("mock saw no /authorize")
	}
	uq := authz[0].Query
	if uq.Get("code_challenge_method") != "S256" || uq.Get("code_challenge") == challenge(s.lastVerifier) || uq.Get("code_challenge") == "" ||
		uq.Get("state") == "client-state" || uq.Get("nonce") == "" || uq.Get("audience") != mconfig.DefaultAPIIdentifier || uq.Has("resource") {
		t.Fatalf("upstream authorize %v", uq)
	}
	tok := s.tokenRequests()
	if len(tok) == 0 || tok[0].Form.Get("code_verifier") == s.lastVerifier || challenge(tok[0].Form.Get("code_verifier")) != uq.Get("code_challenge") {
		t.Fatalf("upstream token request %v", tok)
	}
	// PXY-13: the upstream tokens (stored sealed) never reached the client.
	g, err := in.Store.GetGrant(t.Context(), c["sid"].(string))
	if err != nil {
		t.Fatal(err)
	}
	if g.Upstream.AccessToken == "" || g.Upstream.RefreshToken == "" || g.Upstream.IDToken == "" {
		t.Fatalf("upstream tokens not kept: %+v", g.Upstream)
	}
	for _, sec := range []string{g.Upstream.AccessToken, g.Upstream.RefreshToken, g.Upstream.IDToken} {
		if strings.Contains(s.bodies.String(), sec) {
			t.Fatal("PXY-13: an upstream token reached the client")
		}
	}
	// Refresh works end to end.
	st, r := s.refresh(in, id, m["refresh_token"].(string))
	if st != 200 || r["refresh_token"] == m["refresh_token"] {
		t.Fatalf("refresh: %d %v", st, r)
	}
}

// PXY-15: with the mock refusing unknown resources, forwarding would break the flow; we do not forward.
// With forward_resource the value goes upstream (and the mock, in "reject" mode, refuses it: the user
// gets an error redirect, PXY-12).
func TestPXY15_ResourceNotForwardedUnlessConfigured(t *testing.T) {
	s := newStack(t, nil)
	in := s.start(func(c *config.Config) { c.ForwardResource = true })
	id := s.register(in)
	b := s.browser()
	q := url.Values{"response_type": {"code"}, "client_id": {id}, "redirect_uri": {"http://127.0.0.1:5000/cb"}, "state": {"x"},
		"code_challenge": {challenge(verifier)}, "code_challenge_method": {"S256"}, "resource": {in.base + "/mcp"}}
	res, _ := s.get(b, in.base+"/authorize?"+q.Encode())
	_, body := s.get(b, res.Header.Get("Location"))
	res, _ = s.post(b, in.base+"/consent", url.Values{"txn": {txnRe.FindStringSubmatch(body)[1]}, "csrf_token": {csrfRe.FindStringSubmatch(body)[1]}, "action": {"approve"}})
	up, _ := url.Parse(res.Header.Get("Location"))
	if up.Query().Get("resource") != in.base+"/mcp" {
		t.Fatalf("forward_resource did not forward: %s", up)
	}
}

// PXY-20: Auth0 without an audience issues a dir/A256GCM JWE access token; it is never parsed as a
// JWS nor forwarded, identity comes from the verified id_token and the flow succeeds.
func TestPXY20_JWEUpstreamTokenOpaque(t *testing.T) {
	s := newStack(t, nil)
	in := s.start(func(c *config.Config) { c.Audience = "" })
	id := s.register(in)
	loc := s.login(in, in, id, nil)
	m := s.exchange(in, id, loc.Query().Get("code"))
	c := claimsOf(t, m["access_token"].(string))
	g, _ := in.Store.GetGrant(t.Context(), c["sid"].(string))
	if strings.Count(g.Upstream.AccessToken, ".") != 4 {
		t.Fatalf("the mock did not issue a JWE (%d dots)", strings.Count(g.Upstream.AccessToken, "."))
	}
	if c["sub"] != mconfig.DefaultUserSub || !strings.Contains(s.logs.String(), `"upstream_access_token":"opaque"`) {
		t.Fatalf("identity %v; logs lack opaque classification", c["sub"])
	}
}

// PXY-20: an API with token encryption issues nested JWEs; with our RSA key configured they are
// decrypted and the inner JWS verified.
func TestPXY20_NestedJWEDecrypted(t *testing.T) {
	key, _ := rsa.GenerateKey(rand.Reader, 2048)
	pub, _ := x509.MarshalPKIXPublicKey(&key.PublicKey)
	s := newStack(t, func(c *mockauth0.Config) {
		c.APIs[0].TokenEncryption = &mconfig.TokenEncryption{Format: "compact-nested-jwe", EncryptionKey: mconfig.EncryptionKey{Name: "k", Alg: "RSA-OAEP-256", Kid: "rs-enc-1",
			PEM: string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub}))}}
	})
	kp := filepath.Join(s.dir, "jwe.pem")
	_ = os.WriteFile(kp, pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}), 0o600)
	in := s.start(func(c *config.Config) { c.UpstreamJWEKeyFile = kp })
	id := s.register(in)
	loc := s.login(in, in, id, nil)
	s.exchange(in, id, loc.Query().Get("code"))
	if !strings.Contains(s.logs.String(), `"upstream_access_token":"nested-jwe"`) {
		t.Fatalf("nested JWE not decrypted and verified: %s", s.logs.String())
	}
}

// RS-10, RT-09: the user's upstream grant is revoked; once the upstream token expires our access
// token has expired too, and the refresh fails with invalid_grant (transparent upstream refresh
// meets the revocation).
func TestRS10_RT09_UpstreamGrantRevoked(t *testing.T) {
	s := newStack(t, func(c *mockauth0.Config) { c.APIs[0].TokenLifetime = 600 })
	in := s.start(nil)
	id := s.register(in)
	loc := s.login(in, in, id, nil)
	m := s.exchange(in, id, loc.Query().Get("code"))
	if e := m["expires_in"].(float64); e > 600 {
		t.Fatalf("access token (%vs) outlives the upstream token", e)
	}
	// Transparent upstream refresh while the upstream grant is alive.
	s.clock.Advance(11 * time.Minute)
	s.mock.Advance(11 * time.Minute)
	st, r := s.refresh(in, id, m["refresh_token"].(string))
	if st != 200 {
		t.Fatalf("refresh with live upstream grant: %d %v", st, r)
	}
	if n := len(s.tokenRequests()); n != 2 {
		t.Fatalf("upstream token endpoint called %d times, want 2 (code + refresh)", n)
	}
	s.mock.RevokeUserGrants(mconfig.DefaultUserSub)
	s.clock.Advance(11 * time.Minute)
	s.mock.Advance(11 * time.Minute)
	if _, err := in.Tokens.Verify(t.Context(), r["access_token"].(string)); err == nil {
		t.Fatal("access token still valid after the upstream token expired")
	}
	st, r2 := s.refresh(in, id, r["refresh_token"].(string))
	if st != 400 || r2["error"] != "invalid_grant" {
		t.Fatalf("refresh after upstream revocation: %d %v", st, r2)
	}
}

// REV-06: revocation reaches the upstream with the upstream refresh token.
func TestREV06_UpstreamRevocation(t *testing.T) {
	s := newStack(t, nil)
	in := s.start(nil)
	id := s.register(in)
	loc := s.login(in, in, id, nil)
	m := s.exchange(in, id, loc.Query().Get("code"))
	g, _ := in.Store.GetGrant(t.Context(), claimsOf(t, m["access_token"].(string))["sid"].(string))
	res, _ := s.post(nil, in.base+"/revoke", url.Values{"token": {m["refresh_token"].(string)}, "client_id": {id}})
	if res.StatusCode != 200 {
		t.Fatal(res.Status)
	}
	rev := s.mock.RequestsTo("/oauth/revoke")
	if len(rev) != 1 || rev[0].Form.Get("token") != g.Upstream.RefreshToken {
		t.Fatalf("upstream revocation: %+v", rev)
	}
	// The upstream grant is really gone: the mock refuses the upstream refresh token now.
	st, _ := s.refresh(in, id, m["refresh_token"].(string))
	if st != 400 {
		t.Fatalf("refresh after revocation: %d", st)
	}
}

// PXY-12: the upstream token endpoint fails → error redirect with state and iss, no 500 page.
func TestPXY12_UpstreamTokenEndpointFailure(t *testing.T) {
	s := newStack(t, nil)
	in := s.start(nil)
	id := s.register(in)
	if err := s.mock.SetFault("/oauth/token", mockauth0.Fault{Status: 500, Count: 1}); err != nil {
		t.Fatal(err)
	}
	loc := s.login(in, in, id, nil)
	q := loc.Query()
	if q.Get("error") != "server_error" || q.Get("state") != "client-state" || q.Get("iss") != in.Config.IssuerURL() || q.Has("code") {
		t.Fatalf("client redirect after upstream failure: %s", loc)
	}
}

// DCR-10, restart: registrations, grants and refresh tokens survive a restart on the file store.
func TestDCR10_RegistrationSurvivesRestart(t *testing.T) {
	s := newStack(t, nil)
	in := s.start(nil)
	id := s.register(in)
	loc := s.login(in, in, id, nil)
	m := s.exchange(in, id, loc.Query().Get("code"))
	addr := in.Addr().String()
	in.stop()
	again := s.startAt(addr, nil)
	if _, err := again.Tokens.Verify(t.Context(), m["access_token"].(string)); err != nil {
		t.Fatalf("access token refused after restart: %v", err)
	}
	st, r := s.refresh(again, id, m["refresh_token"].(string))
	if st != 200 {
		t.Fatalf("refresh after restart: %d %v", st, r)
	}
	loc = s.login(again, again, id, nil)
	if loc.Query().Get("code") == "" {
		t.Fatal("registration lost across restart")
	}
}

// Nothing in logs or response bodies contains a token, code or secret (ours or upstream's).
func TestNoSecretsInLogsOrBodies(t *testing.T) {
	s := newStack(t, nil)
	in := s.start(nil)
	id := s.register(in)
	loc := s.login(in, in, id, nil)
	code := loc.Query().Get("code")
	m := s.exchange(in, id, code)
	_, r := s.refresh(in, id, m["refresh_token"].(string))
	s.post(nil, in.base+"/revoke", url.Values{"token": {r["refresh_token"].(string)}, "client_id": {id}})
	secrets := []string{code, m["access_token"].(string), m["refresh_token"].(string), r["access_token"].(string), r["refresh_token"].(string),
		mconfig.DefaultClientSecret, s.lastVerifier}
	for _, f := range []string{in.Config.SigningKeyFile, in.Config.SealingKeyFile} {
		b, _ := os.ReadFile(f)
		secrets = append(secrets, strings.TrimSpace(string(b)))
	}
	for _, req := range s.mock.RequestsTo("/oauth/token") {
		secrets = append(secrets, req.Form.Get("code"), req.Form.Get("code_verifier"), req.Form.Get("refresh_token"))
	}
	logs := s.logs.String()
	for _, sec := range secrets {
		if sec == "" {
			continue
		}
		if strings.Contains(logs, sec) {
			t.Errorf("log contains a secret (%.6s…)", sec)
		}
	}
}

// PXY-05 (development exception): with an http loopback public_url the cookies use plain names without
// Secure (browsers refuse __Host-/Secure there) and keep HttpOnly and SameSite=Lax.
func TestPXY05_DevCookiesOnHTTPLoopback(t *testing.T) {
	s := newStack(t, nil)
	in := s.start(nil)
	id := s.register(in)
	q := url.Values{"response_type": {"code"}, "client_id": {id}, "redirect_uri": {"http://127.0.0.1:5000/cb"},
		"code_challenge": {challenge(verifier)}, "code_challenge_method": {"S256"}}
	b := s.browser()
	res, _ := s.get(b, in.base+"/authorize?"+q.Encode())
	res, _ = s.get(b, res.Header.Get("Location"))
	sc := res.Header.Get("Set-Cookie")
	if sc == "" || strings.HasPrefix(sc, "__Host-") || strings.Contains(sc, "Secure") || !strings.Contains(sc, "HttpOnly") || !strings.Contains(sc, "SameSite=Lax") {
		t.Fatalf("dev cookie %q", sc)
	}
}
