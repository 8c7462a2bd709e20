package mockauth0_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/cnpg-mcp/cnpg-mcp/mockauth0"
	"github.com/cnpg-mcp/cnpg-mcp/mockauth0/config"
)

// syncBuffer collects log output from concurrent handlers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type env struct {
	t    *testing.T
	srv  *mockauth0.Server
	iss  string
	logs *syncBuffer
}

// start runs a mock with cfg (default tenant when nil) and debug logging captured.
func start(t *testing.T, mutate func(*mockauth0.Config)) *env {
	t.Helper()
	cfg := mockauth0.DefaultConfig()
	cfg.Admin.Enabled = true
	if mutate != nil {
		mutate(&cfg)
	}
	logs := &syncBuffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	srv, err := mockauth0.Start(context.Background(), cfg, mockauth0.WithLogger(log))
	if err != nil {
		t.Fatalf("start mock: %v", err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	return &env{t: t, srv: srv, iss: srv.Issuer(), logs: logs}
}

// browser is a cookie-keeping HTTP client that does not follow redirects.
func browser(t *testing.T) *http.Client {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

type pkce struct{ verifier, challenge string }

func newPKCE() pkce {
	v := base64.RawURLEncoding.EncodeToString(bytes.Repeat([]byte{7}, 32)) + "abc"
	sum := sha256.Sum256([]byte(v))
	return pkce{verifier: v, challenge: base64.RawURLEncoding.EncodeToString(sum[:])}
}

const redirect = "http://127.0.0.1:5555/auth/callback"

// authParams are the default /authorize parameters for the proxy client.
func (e *env) authParams(p pkce) url.Values {
	return url.Values{
		"client_id": {config.DefaultClientID}, "redirect_uri": {redirect}, "response_type": {"code"},
		"scope": {"openid profile email offline_access mcp:read"}, "state": {"st-1"}, "nonce": {"n-1"},
		"audience": {config.DefaultAPIIdentifier}, "code_challenge": {p.challenge}, "code_challenge_method": {"S256"},
	}
}

func (e *env) get(c *http.Client, u string) *http.Response {
	e.t.Helper()
	resp, err := c.Get(u)
	if err != nil {
		e.t.Fatalf("GET %s: %v", u, err)
	}
	return resp
}

func body(t *testing.T, resp *http.Response) string {
	t.Helper()
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

var stateInput = regexp.MustCompile(`name="state" value="([^"]+)"`)

// login drives /authorize → /u/login → resume (→ consent) and returns the final redirect URL.
func (e *env) login(c *http.Client, params url.Values, email, password string) *url.URL {
	e.t.Helper()
	resp := e.get(c, e.iss+"authorize?"+params.Encode())
	loc := resp.Header.Get("Location")
	body(e.t, resp)
	if resp.StatusCode != http.StatusFound {
		e.t.Fatalf("authorize: status %d", resp.StatusCode)
	}
	for i := 0; i < 6; i++ {
		u, err := url.Parse(loc)
		if err != nil {
			e.t.Fatal(err)
		}
		if !strings.HasPrefix(u.String(), e.iss) && u.Host != "" && !strings.HasPrefix(loc, "/") {
			return u
		}
		switch {
		case strings.HasPrefix(u.Path, "/u/login"):
			page := body(e.t, e.get(c, e.abs(loc)))
			for _, sel := range []string{`id="username"`, `id="password"`, `type="submit" name="action"`} {
				if !strings.Contains(page, sel) {
					e.t.Fatalf("login page lacks %s", sel)
				}
			}
			st := stateInput.FindStringSubmatch(page)[1]
			resp = e.post(c, e.abs(loc), url.Values{"state": {st}, "username": {email}, "password": {password}, "action": {"default"}})
		case strings.HasPrefix(u.Path, "/u/consent"):
			page := body(e.t, e.get(c, e.abs(loc)))
			st := stateInput.FindStringSubmatch(page)[1]
			resp = e.post(c, e.abs(loc), url.Values{"state": {st}, "action": {"accept"}})
		default:
			resp = e.get(c, e.abs(loc))
		}
		loc = resp.Header.Get("Location")
		b := body(e.t, resp)
		if resp.StatusCode != http.StatusFound {
			e.t.Fatalf("flow step %s: status %d: %s", u.Path, resp.StatusCode, b)
		}
	}
	e.t.Fatal("too many redirects")
	return nil
}

func (e *env) abs(loc string) string {
	if strings.HasPrefix(loc, "/") {
		return strings.TrimSuffix(e.iss, "/") + loc
	}
	return loc
}

func (e *env) post(c *http.Client, u string, form url.Values) *http.Response {
	e.t.Helper()
	resp, err := c.PostForm(u, form)
	if err != nil {
		e.t.Fatalf("POST %s: %v", u, err)
	}
	return resp
}

// code runs a login for the default user and returns the authorization code.
func (e *env) code(params url.Values) string {
	e.t.Helper()
	u := e.login(browser(e.t), params, config.DefaultUserEmail, config.DefaultUserPassword)
	code := u.Query().Get("code")
	if code == "" {
		e.t.Fatalf("no code in %s", u)
	}
	return code
}

type tokenResp struct {
	status int
	raw    map[string]any
}

func (r tokenResp) str(k string) string { s, _ := r.raw[k].(string); return s }

func (e *env) token(form url.Values) tokenResp {
	e.t.Helper()
	resp := e.post(http.DefaultClient, e.iss+"oauth/token", form)
	b := body(e.t, resp)
	if resp.Header.Get("Cache-Control") != "no-store" {
		e.t.Errorf("token response without Cache-Control: no-store")
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(b), &m); err != nil {
		e.t.Fatalf("token response not JSON (%d): %s", resp.StatusCode, b)
	}
	return tokenResp{resp.StatusCode, m}
}

func (e *env) exchange(code, verifier string) tokenResp {
	return e.token(url.Values{
		"grant_type": {"authorization_code"}, "client_id": {config.DefaultClientID},
		"client_secret": {config.DefaultClientSecret}, "code": {code}, "redirect_uri": {redirect}, "code_verifier": {verifier},
	})
}

func (e *env) refresh(rt string, extra url.Values) tokenResp {
	f := url.Values{"grant_type": {"refresh_token"}, "client_id": {config.DefaultClientID},
		"client_secret": {config.DefaultClientSecret}, "refresh_token": {rt}}
	for k, v := range extra {
		f[k] = v
	}
	return e.token(f)
}

// verifyJWS checks a JWS against the tenant JWKS and returns header and claims.
func (e *env) verifyJWS(tok string) (jose.Header, map[string]any) {
	e.t.Helper()
	var set jose.JSONWebKeySet
	if err := json.Unmarshal([]byte(body(e.t, e.get(http.DefaultClient, e.iss+".well-known/jwks.json"))), &set); err != nil {
		e.t.Fatal(err)
	}
	parsed, err := jwt.ParseSigned(tok, []jose.SignatureAlgorithm{jose.RS256})
	if err != nil {
		e.t.Fatalf("parse JWS: %v", err)
	}
	keys := set.Key(parsed.Headers[0].KeyID)
	if len(keys) != 1 {
		e.t.Fatalf("kid %q not in JWKS", parsed.Headers[0].KeyID)
	}
	var claims map[string]any
	if err := parsed.Claims(keys[0].Key, &claims); err != nil {
		e.t.Fatalf("signature: %v", err)
	}
	return parsed.Headers[0], claims
}

func wantError(t *testing.T, r tokenResp, status int, code string) {
	t.Helper()
	if r.status != status || r.str("error") != code {
		t.Fatalf("want %d %s, got %d %v", status, code, r.status, r.raw)
	}
	if r.str("error_description") == "" {
		t.Errorf("error without error_description: %v", r.raw)
	}
}
