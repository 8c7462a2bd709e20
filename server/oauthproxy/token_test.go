package oauthproxy

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cnpg-mcp/cnpg-mcp/server/store"
	"github.com/cnpg-mcp/cnpg-mcp/server/upstream"
)

// TOK-03, TOK-15, TOK-16, RES-02, PXY-13: a full flow without resource; our JWT, never upstream tokens.
func TestFullFlow_TOK03_TOK15_PXY13(t *testing.T) {
	h := newHarness(t)
	id, m := h.flow()
	if m["token_type"] != "Bearer" || m["scope"] != "mcp:read mcp:write" || m["refresh_token"] == nil {
		t.Fatalf("token response: %v", m)
	}
	if e := m["expires_in"].(float64); e <= 0 || e > 3600 {
		t.Fatalf("expires_in %v not in (0, 3600]", e)
	}
	at := m["access_token"].(string)
	c, err := h.tokens.Verify(t.Context(), at)
	if err != nil || c.ClientID != id || c.Subject != "auth0|user-1" {
		t.Fatalf("verify: %+v %v", c, err)
	}
	payload, _ := base64.RawURLEncoding.DecodeString(strings.Split(at, ".")[1])
	var cl map[string]any
	_ = json.Unmarshal(payload, &cl)
	if cl["iss"] != h.issuer || cl["aud"] != h.resource {
		t.Fatalf("claims %v", cl)
	}
	for _, s := range h.up.issued {
		if strings.Contains(h.bodies.String(), s) {
			t.Fatalf("PXY-13: upstream token reached the client")
		}
	}
}

// TOK-01: POST with a form body only.
func TestTOK01_MethodAndContentType(t *testing.T) {
	h := newHarness(t)
	r := h.get(nil, h.issuer+"/token")
	if r.StatusCode != http.StatusMethodNotAllowed || r.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("GET /token: %d", r.StatusCode)
	}
	req, _ := http.NewRequest(http.MethodPost, h.issuer+"/token", strings.NewReader(`{"grant_type":"authorization_code"}`))
	req.Header.Set("Content-Type", "application/json")
	wantOAuthError(t, h.do(nil, req), 400, "invalid_request")
}

// TOK-02: no-store on success and errors (errors checked by wantOAuthError everywhere).
func TestTOK02_NoStore(t *testing.T) {
	h := newHarness(t)
	id := h.register()
	code, _ := h.authorize(id, authorizeQuery(id, "http://127.0.0.1:5000/cb"))
	r := h.exchange(id, code, nil)
	if r.Header.Get("Cache-Control") != "no-store" || r.Header.Get("Pragma") != "no-cache" {
		t.Fatalf("headers %v", r.Header)
	}
	wantOAuthError(t, h.exchange(id, "bogus", nil), 400, "invalid_grant")
}

// TOK-04, BCP-08: a code is single-use, also when ten redemptions race.
func TestTOK04_CodeSingleUse(t *testing.T) {
	h := newHarness(t)
	id := h.register()
	code, _ := h.authorize(id, authorizeQuery(id, "http://127.0.0.1:5000/cb"))
	var wg sync.WaitGroup
	var mu sync.Mutex
	ok := 0
	for i := 0; i < 10; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := h.exchange(id, code, nil)
			mu.Lock()
			defer mu.Unlock()
			if r.StatusCode == 200 {
				ok++
			} else if r.StatusCode != 400 || !strings.Contains(r.body, "invalid_grant") {
				t.Errorf("loser got %d %s", r.StatusCode, r.body)
			}
		}()
	}
	wg.Wait()
	if ok != 1 {
		t.Fatalf("%d successful redemptions, want exactly 1", ok)
	}
	wantOAuthError(t, h.exchange(id, code, nil), 400, "invalid_grant")
}

// TOK-05, BCP-09: a second valid redemption revokes what the first one issued, and the upstream grant.
func TestTOK05_CodeReplayRevokes(t *testing.T) {
	h := newHarness(t)
	id := h.register()
	code, _ := h.authorize(id, authorizeQuery(id, "http://127.0.0.1:5000/cb"))
	m := h.exchange(id, code, nil).json(t)
	if !h.accessOK(m["access_token"].(string)) {
		t.Fatal("fresh token refused")
	}
	wantOAuthError(t, h.exchange(id, code, nil), 400, "invalid_grant")
	if h.accessOK(m["access_token"].(string)) {
		t.Fatal("access token still valid after code replay")
	}
	wantOAuthError(t, h.refresh(id, m["refresh_token"].(string), nil), 400, "invalid_grant")
	if len(h.up.revoked) != 1 || !strings.HasPrefix(h.up.revoked[0], "UPSTREAM-RT-") {
		t.Fatalf("upstream refresh token not revoked: %v", h.up.revoked)
	}
}

// TOK-06: a replay with a wrong verifier (or another client) revokes nothing.
func TestTOK06_InvalidReplayDoesNotRevoke(t *testing.T) {
	h := newHarness(t)
	id := h.register()
	other := h.register()
	code, _ := h.authorize(id, authorizeQuery(id, "http://127.0.0.1:5000/cb"))
	m := h.exchange(id, code, nil).json(t)
	wantOAuthError(t, h.exchange(id, code, url.Values{"code_verifier": {strings.Repeat("x", 43)}}), 400, "invalid_grant")
	wantOAuthError(t, h.exchange(other, code, nil), 400, "invalid_grant")
	if !h.accessOK(m["access_token"].(string)) {
		t.Fatal("invalid replay revoked the grant")
	}
	if r := h.refresh(id, m["refresh_token"].(string), nil); r.StatusCode != 200 {
		t.Fatalf("refresh after invalid replay: %d %s", r.StatusCode, r.body)
	}
}

// TOK-07: a code is bound to its client; the failed attempt does not burn it.
func TestTOK07_CodeBoundToClient(t *testing.T) {
	h := newHarness(t)
	id, other := h.register(), h.register()
	code, _ := h.authorize(id, authorizeQuery(id, "http://127.0.0.1:5000/cb"))
	wantOAuthError(t, h.exchange(other, code, nil), 400, "invalid_grant")
	if r := h.exchange(id, code, nil); r.StatusCode != 200 {
		t.Fatalf("rightful client refused after a foreign attempt: %s", r.body)
	}
}

// TOK-08, BCP-25: redirect_uri may be omitted; if sent it must match exactly.
func TestTOK08_RedirectURI(t *testing.T) {
	h := newHarness(t)
	id := h.register()
	code, _ := h.authorize(id, authorizeQuery(id, "http://127.0.0.1:5000/cb"))
	wantOAuthError(t, h.exchange(id, code, url.Values{"redirect_uri": {"http://127.0.0.1:5000/cb/"}}), 400, "invalid_grant")
	if r := h.exchange(id, code, url.Values{"redirect_uri": {"http://127.0.0.1:5000/cb"}}); r.StatusCode != 200 {
		t.Fatalf("matching redirect_uri refused: %s", r.body)
	}
	code2, _ := h.authorize(id, authorizeQuery(id, "http://127.0.0.1:5000/cb"))
	if r := h.exchange(id, code2, nil); r.StatusCode != 200 {
		t.Fatalf("omitted redirect_uri refused: %s", r.body)
	}
}

// TOK-09, AZ-09: codes expire (5 minutes by default).
func TestTOK09_ExpiredCode(t *testing.T) {
	h := newHarness(t)
	id := h.register()
	code, _ := h.authorize(id, authorizeQuery(id, "http://127.0.0.1:5000/cb"))
	h.clock.Advance(5*time.Minute + time.Second)
	wantOAuthError(t, h.exchange(id, code, nil), 400, "invalid_grant")
}

// TOK-10, TOK-11, TOK-14, CLI-06, DCR-10, REV-07 style: status codes.
func TestTOK10_ErrorStatuses(t *testing.T) {
	h := newHarness(t)
	id := h.register()
	wantOAuthError(t, h.postForm(nil, "/token", url.Values{"grant_type": {"authorization_code"}, "code": {"x"}, "code_verifier": {testVerifier}, "client_id": {"made-up"}}), 401, "invalid_client")
	wantOAuthError(t, h.postForm(nil, "/token", url.Values{"grant_type": {"authorization_code"}, "code": {"x"}, "code_verifier": {testVerifier}}), 401, "invalid_client")
	// Basic with an unknown client: 401 + WWW-Authenticate.
	req, _ := http.NewRequest(http.MethodPost, h.issuer+"/token", strings.NewReader("grant_type=authorization_code&code=x&code_verifier="+testVerifier))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth("made-up", "secret")
	r := h.do(nil, req)
	wantOAuthError(t, r, 401, "invalid_client")
	if !strings.HasPrefix(r.Header.Get("WWW-Authenticate"), "Basic") {
		t.Fatal("401 after Basic without WWW-Authenticate")
	}
	// A secret for a public client is an authentication failure.
	wantOAuthError(t, h.postForm(nil, "/token", url.Values{"grant_type": {"authorization_code"}, "code": {"x"}, "code_verifier": {testVerifier}, "client_id": {id}, "client_secret": {"guess"}}), 401, "invalid_client")
	// Basic with the client id and an empty password identifies a public client.
	req, _ = http.NewRequest(http.MethodPost, h.issuer+"/token", strings.NewReader("grant_type=authorization_code&code=x&code_verifier="+testVerifier))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(id, "")
	wantOAuthError(t, h.do(nil, req), 400, "invalid_grant")
	wantOAuthError(t, h.postForm(nil, "/token", url.Values{"client_id": {id}}), 400, "invalid_request")
}

// TOK-12, BCP-02: other grant types are refused.
func TestTOK12_UnsupportedGrants(t *testing.T) {
	h := newHarness(t)
	id := h.register()
	for _, g := range []string{"password", "implicit", "client_credentials", "urn:ietf:params:oauth:grant-type:jwt-bearer"} {
		wantOAuthError(t, h.postForm(nil, "/token", url.Values{"grant_type": {g}, "client_id": {id}, "username": {"u"}, "password": {"p"}}), 400, "unsupported_grant_type")
	}
}

// TOK-13, BCP-26, BCP-27: repeated parameters rejected, unknown ignored, one auth method, empty = omitted.
func TestTOK13_Parameters(t *testing.T) {
	h := newHarness(t)
	id := h.register()
	code, _ := h.authorize(id, authorizeQuery(id, "http://127.0.0.1:5000/cb"))
	wantOAuthError(t, h.postForm(nil, "/token", url.Values{"grant_type": {"authorization_code"}, "code": {code, code}, "code_verifier": {testVerifier}, "client_id": {id}}), 400, "invalid_request")
	req, _ := http.NewRequest(http.MethodPost, h.issuer+"/token", strings.NewReader(url.Values{"grant_type": {"authorization_code"}, "code": {code}, "code_verifier": {testVerifier}, "client_id": {"someone-else"}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(id, "")
	wantOAuthError(t, h.do(nil, req), 400, "invalid_request")
	r := h.exchange(id, code, url.Values{"foo": {"bar"}, "redirect_uri": {""}, "resource": {""}})
	if r.StatusCode != 200 {
		t.Fatalf("unknown/empty parameters not ignored: %s", r.body)
	}
}

// PKCE-03..06: verifier required, must match, syntax enforced.
func TestPKCE03_06_Verifier(t *testing.T) {
	h := newHarness(t)
	id := h.register()
	code, _ := h.authorize(id, authorizeQuery(id, "http://127.0.0.1:5000/cb"))
	wantOAuthError(t, h.exchange(id, code, url.Values{"code_verifier": {""}}), 400, "invalid_request")
	wantOAuthError(t, h.exchange(id, code, url.Values{"code_verifier": {testVerifier + "x"}}), 400, "invalid_grant")
	// PKCE-06: a 42-character verifier is refused even if its S256 matches the challenge.
	short := strings.Repeat("a", 42)
	q := authorizeQuery(id, "http://127.0.0.1:5000/cb")
	q.Set("code_challenge", s256(short))
	code2, _ := h.authorize(id, q)
	wantOAuthError(t, h.exchange(id, code2, url.Values{"code_verifier": {short}}), 400, "invalid_grant")
	if r := h.exchange(id, code, nil); r.StatusCode != 200 {
		t.Fatalf("failed attempts burnt the code: %s", r.body)
	}
}

// RES-06/07: resource at the token endpoint and at refresh must name this server.
func TestRES06_07_TokenResource(t *testing.T) {
	h := newHarness(t)
	id := h.register()
	code, _ := h.authorize(id, authorizeQuery(id, "http://127.0.0.1:5000/cb"))
	wantOAuthError(t, h.exchange(id, code, url.Values{"resource": {"https://other.example/mcp"}}), 400, "invalid_target")
	m := h.exchange(id, code, url.Values{"resource": {strings.ToUpper(h.resource[:8]) + h.resource[8:]}}).json(t)
	wantOAuthError(t, h.refresh(id, m["refresh_token"].(string), url.Values{"resource": {"https://other.example/mcp"}}), 400, "invalid_target")
	if r := h.refresh(id, m["refresh_token"].(string), url.Values{"resource": {h.resource}}); r.StatusCode != 200 {
		t.Fatalf("refresh with our resource: %s", r.body)
	}
}

// RT-01/02: rotation.
func TestRT01_02_Rotation(t *testing.T) {
	h := newHarness(t)
	id, m := h.flow()
	rt1 := m["refresh_token"].(string)
	n := h.refresh(id, rt1, nil).json(t)
	rt2 := n["refresh_token"].(string)
	if rt2 == "" || rt2 == rt1 || n["access_token"] == m["access_token"] {
		t.Fatal("refresh did not rotate")
	}
	wantOAuthError(t, h.refresh(id, rt1, nil), 400, "invalid_grant")
}

// RT-03, BCP-12: reuse of a rotated refresh token revokes the whole family and its access tokens.
func TestRT03_ReuseRevokesFamily(t *testing.T) {
	h := newHarness(t)
	id, m := h.flow()
	rt1 := m["refresh_token"].(string)
	n := h.refresh(id, rt1, nil).json(t)
	wantOAuthError(t, h.refresh(id, rt1, nil), 400, "invalid_grant")
	wantOAuthError(t, h.refresh(id, n["refresh_token"].(string), nil), 400, "invalid_grant")
	if h.accessOK(n["access_token"].(string)) {
		t.Fatal("access token of a revoked family still valid")
	}
	if len(h.up.revoked) == 0 {
		t.Fatal("upstream grant not revoked on reuse")
	}
}

// RT-04: bound to the client.
func TestRT04_BoundToClient(t *testing.T) {
	h := newHarness(t)
	_, m := h.flow()
	other := h.register()
	wantOAuthError(t, h.refresh(other, m["refresh_token"].(string), nil), 400, "invalid_grant")
}

// RT-05/06: narrowing is allowed, widening is not, and the family keeps the original scope.
func TestRT05_06_Scope(t *testing.T) {
	h := newHarness(t)
	id, m := h.flow()
	wantOAuthError(t, h.refresh(id, m["refresh_token"].(string), url.Values{"scope": {"mcp:read admin"}}), 400, "invalid_scope")
	n := h.refresh(id, m["refresh_token"].(string), url.Values{"scope": {"mcp:read"}}).json(t)
	if n["scope"] != "mcp:read" {
		t.Fatalf("narrowed scope: %v", n["scope"])
	}
	c, _ := h.tokens.Verify(t.Context(), n["access_token"].(string))
	if c.Scope != "mcp:read" {
		t.Fatalf("narrowed access token scope %q", c.Scope)
	}
	o := h.refresh(id, n["refresh_token"].(string), url.Values{"scope": {"mcp:read mcp:write"}})
	if o.StatusCode != 200 || o.json(t)["scope"] != "mcp:read mcp:write" {
		t.Fatalf("RT-06: full scope refused after narrowing: %s", o.body)
	}
}

// RT-07: unforgeable.
func TestRT07_Tampered(t *testing.T) {
	h := newHarness(t)
	id, m := h.flow()
	rt := m["refresh_token"].(string)
	last := "A"
	if strings.HasSuffix(rt, "A") {
		last = "B"
	}
	wantOAuthError(t, h.refresh(id, rt[:len(rt)-1]+last, nil), 400, "invalid_grant")
	wantOAuthError(t, h.refresh(id, m["access_token"].(string), nil), 400, "invalid_grant")
}

// RT-08, BCP-15: inactivity expiry (14 days by default), reset by each use.
func TestRT08_IdleExpiry(t *testing.T) {
	h := newHarness(t)
	id, m := h.flow()
	h.clock.Advance(13 * 24 * time.Hour)
	n := h.refresh(id, m["refresh_token"].(string), nil)
	if n.StatusCode != 200 {
		t.Fatalf("refresh within the idle window: %s", n.body)
	}
	h.clock.Advance(14*24*time.Hour + time.Minute)
	wantOAuthError(t, h.refresh(id, n.json(t)["refresh_token"].(string), nil), 400, "invalid_grant")
}

// RT-09, RS-10: the upstream refuses the refresh → invalid_grant and the grant ends; an upstream outage
// → 503 and the refresh token stays usable. The access token never outlives the upstream token.
func TestRT09_UpstreamRefresh(t *testing.T) {
	h := newHarness(t)
	h.up.expiresIn = 10 * time.Minute
	id, m := h.flow()
	if e := m["expires_in"].(float64); e > 600 {
		t.Fatalf("access token (%vs) outlives the upstream token (600s)", e)
	}
	h.clock.Advance(11 * time.Minute)
	if h.accessOK(m["access_token"].(string)) {
		t.Fatal("access token valid after the upstream token expired")
	}
	h.up.refreshErr = upstream.ErrUnavailable
	r := h.refresh(id, m["refresh_token"].(string), nil)
	if r.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("upstream outage: %d %s", r.StatusCode, r.body)
	}
	h.up.refreshErr = nil
	n := h.refresh(id, m["refresh_token"].(string), nil)
	if n.StatusCode != 200 {
		t.Fatalf("refresh token lost after an outage: %s", n.body)
	}
	h.clock.Advance(11 * time.Minute)
	h.up.refreshErr = upstream.ErrInvalidGrant
	wantOAuthError(t, h.refresh(id, n.json(t)["refresh_token"].(string), nil), 400, "invalid_grant")
}

// RT-11: refresh only for clients registered for it; they get no refresh token either.
func TestRT11_GrantTypeRegistered(t *testing.T) {
	h := newHarness(t)
	r := h.postJSON("/register", `{"redirect_uris":["http://127.0.0.1:5000/cb"],"grant_types":["authorization_code"]}`)
	id := r.json(t)["client_id"].(string)
	code, _ := h.authorize(id, authorizeQuery(id, "http://127.0.0.1:5000/cb"))
	m := h.exchange(id, code, nil).json(t)
	if _, ok := m["refresh_token"]; ok {
		t.Fatal("refresh token issued to a client not registered for it")
	}
	wantOAuthError(t, h.refresh(id, "whatever", nil), 400, "unauthorized_client")
}

// REV-01: 200 for unknown tokens; token required.
func TestREV01_UnknownToken200(t *testing.T) {
	h := newHarness(t)
	id := h.register()
	r := h.postForm(nil, "/revoke", url.Values{"token": {"nonsense"}, "client_id": {id}})
	if r.StatusCode != 200 {
		t.Fatalf("%d %s", r.StatusCode, r.body)
	}
	wantOAuthError(t, h.postForm(nil, "/revoke", url.Values{"client_id": {id}}), 400, "invalid_request")
}

// REV-02/03/06: revoking the refresh token ends the grant here and upstream.
func TestREV02_03_06_RevokeRefresh(t *testing.T) {
	h := newHarness(t)
	id, m := h.flow()
	r := h.postForm(nil, "/revoke", url.Values{"token": {m["refresh_token"].(string)}, "token_type_hint": {"refresh_token"}, "client_id": {id}})
	if r.StatusCode != 200 {
		t.Fatal(r.body)
	}
	wantOAuthError(t, h.refresh(id, m["refresh_token"].(string), nil), 400, "invalid_grant")
	if h.accessOK(m["access_token"].(string)) {
		t.Fatal("REV-03: access token of the revoked grant still valid")
	}
	if len(h.up.revoked) != 1 || !strings.HasPrefix(h.up.revoked[0], "UPSTREAM-RT-") {
		t.Fatalf("REV-06: upstream revocation got %v", h.up.revoked)
	}
}

// REV-04: a revoked access token is refused.
func TestREV04_RevokeAccessToken(t *testing.T) {
	h := newHarness(t)
	id, m := h.flow()
	h.postForm(nil, "/revoke", url.Values{"token": {m["access_token"].(string)}, "client_id": {id}})
	if h.accessOK(m["access_token"].(string)) {
		t.Fatal("revoked access token accepted")
	}
}

// REV-05: another client cannot revoke.
func TestREV05_OtherClient(t *testing.T) {
	h := newHarness(t)
	_, m := h.flow()
	other := h.register()
	for _, tok := range []string{m["access_token"].(string), m["refresh_token"].(string)} {
		if r := h.postForm(nil, "/revoke", url.Values{"token": {tok}, "client_id": {other}}); r.StatusCode != 200 {
			t.Fatal(r.body)
		}
	}
	if !h.accessOK(m["access_token"].(string)) {
		t.Fatal("another client revoked the grant")
	}
}

// REV-07: client authentication failure.
func TestREV07_BadClient(t *testing.T) {
	h := newHarness(t)
	wantOAuthError(t, h.postForm(nil, "/revoke", url.Values{"token": {"x"}, "client_id": {"made-up"}}), 401, "invalid_client")
}

// CLI-15: the invalid_grant status can be switched to 401 for clients that need it; 400 by default.
func TestCLI15_InvalidGrantStatusSwitch(t *testing.T) {
	h := newHarness(t, func(o *Options) { o.InvalidGrantStatus = 401 })
	id := h.register()
	wantOAuthError(t, h.exchange(id, "bogus", nil), 401, "invalid_grant")
	wantOAuthError(t, h.postForm(nil, "/token", url.Values{"grant_type": {"password"}, "client_id": {id}}), 400, "unsupported_grant_type")
}

// flakyGrants fails GetGrant with a transient error a given number of times.
type flakyGrants struct {
	store.Store
	mu    sync.Mutex
	fails int
}

func (f *flakyGrants) GetGrant(ctx context.Context, id string) (store.Grant, error) {
	f.mu.Lock()
	fail := f.fails > 0
	if fail {
		f.fails--
	}
	f.mu.Unlock()
	if fail {
		return store.Grant{}, errors.New("disk I/O error")
	}
	return f.Store.GetGrant(ctx, id)
}

// A transient store failure during a refresh answers 503 and keeps the refresh token usable: the
// client retries instead of being sent through a new authorization (and it is not counted as reuse).
func TestRT_TransientStoreFailureKeepsRefreshToken(t *testing.T) {
	var flaky *flakyGrants
	h := newHarness(t, func(o *Options) { flaky = &flakyGrants{Store: o.Store}; o.Store = flaky })
	id, m := h.flow()
	rt := m["refresh_token"].(string)
	flaky.mu.Lock()
	flaky.fails = 1
	flaky.mu.Unlock()
	r := h.refresh(id, rt, nil)
	if r.StatusCode != 503 || r.json(t)["error"] != "temporarily_unavailable" {
		t.Fatalf("transient failure: %d %s", r.StatusCode, r.body)
	}
	if r := h.refresh(id, rt, nil); r.StatusCode != 200 {
		t.Fatalf("retry with the same refresh token: %d %s", r.StatusCode, r.body)
	}
}
