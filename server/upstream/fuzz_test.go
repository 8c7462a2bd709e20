package upstream

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// fuzzProvider is an OIDC provider whose token and userinfo answers are the fuzzer's.
type fuzzProvider struct {
	srv      *httptest.Server
	sign     jose.Signer
	jweKey   *rsa.PrivateKey
	mu       sync.Mutex
	status   int
	body     string
	userinfo string
}

const (
	fuzzClientID = "fuzz-client"
	fuzzAudience = "https://api.example"
	fuzzSubject  = "auth0|fuzz"
)

func newFuzzProvider(f *testing.F) *fuzzProvider {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		f.Fatal(err)
	}
	jweKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		f.Fatal(err)
	}
	p := &fuzzProvider{jweKey: jweKey}
	p.sign, err = jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: jose.JSONWebKey{Key: key, KeyID: "k1"}}, (&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		f.Fatal(err)
	}
	mux := http.NewServeMux()
	p.srv = httptest.NewServer(mux)
	f.Cleanup(p.srv.Close)
	iss := p.srv.URL + "/"
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, _ *http.Request) {
		_ = json.NewEncoder(w).Encode(Metadata{Issuer: iss, AuthorizationEndpoint: iss + "authorize", TokenEndpoint: iss + "oauth/token",
			UserinfoEndpoint: iss + "userinfo", JWKSURI: iss + ".well-known/jwks.json"})
	})
	mux.HandleFunc("GET /.well-known/jwks.json", func(w http.ResponseWriter, _ *http.Request) {
		_ = json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &key.PublicKey, KeyID: "k1", Algorithm: "RS256", Use: "sig"}}})
	})
	mux.HandleFunc("POST /oauth/token", func(w http.ResponseWriter, _ *http.Request) {
		p.mu.Lock()
		status, body := p.status, p.body
		p.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		fmt.Fprint(w, body)
	})
	mux.HandleFunc("GET /userinfo", func(w http.ResponseWriter, _ *http.Request) {
		p.mu.Lock()
		body := p.userinfo
		p.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, body)
	})
	return p
}

func (p *fuzzProvider) jws(f *testing.F, claims map[string]any) string {
	b, _ := json.Marshal(claims)
	o, err := p.sign.Sign(b)
	if err != nil {
		f.Fatal(err)
	}
	s, _ := o.CompactSerialize()
	return s
}

func (p *fuzzProvider) nestedJWE(f *testing.F, inner string) string {
	enc, err := jose.NewEncrypter(jose.A256GCM, jose.Recipient{Algorithm: jose.RSA_OAEP_256, Key: &p.jweKey.PublicKey},
		(&jose.EncrypterOptions{}).WithContentType("JWT"))
	if err != nil {
		f.Fatal(err)
	}
	o, err := enc.Encrypt([]byte(inner))
	if err != nil {
		f.Fatal(err)
	}
	s, _ := o.CompactSerialize()
	return s
}

func (p *fuzzProvider) client(f *testing.F) *Client {
	c, err := Discover(context.Background(), Options{Issuer: p.srv.URL + "/", ClientID: fuzzClientID, ClientSecret: "s", Audience: fuzzAudience,
		Scope: "openid offline_access", RedirectURL: "https://mcp.example/auth/callback", JWEKey: p.jweKey})
	if err != nil {
		f.Fatal(err)
	}
	return c
}

// tokensIn returns the token values of a token response body (for the no-token-in-errors check).
func tokensIn(body string) []string {
	var m map[string]any
	_ = json.Unmarshal([]byte(body), &m)
	var out []string
	for _, k := range []string{"access_token", "refresh_token", "id_token"} {
		if s, ok := m[k].(string); ok && len(s) >= 8 {
			out = append(out, s)
		}
	}
	return out
}

func (p *fuzzProvider) seeds(f *testing.F) {
	now := time.Now().Unix()
	iss := p.srv.URL + "/"
	idt := p.jws(f, map[string]any{"iss": iss, "aud": fuzzClientID, "sub": fuzzSubject, "exp": now + 3600, "iat": now, "nonce": "n-1"})
	at := p.jws(f, map[string]any{"iss": iss, "aud": []string{fuzzAudience, iss + "userinfo"}, "sub": fuzzSubject, "exp": now + 3600, "azp": fuzzClientID})
	other := p.jws(f, map[string]any{"iss": iss, "aud": fuzzClientID, "sub": "auth0|other", "exp": now + 3600, "nonce": "n-1"})
	nested := p.nestedJWE(f, at)
	ok := func(at, idt string) string {
		b, _ := json.Marshal(map[string]any{"access_token": at, "refresh_token": "v1.rt-0123456789", "id_token": idt, "token_type": "Bearer", "expires_in": 86400})
		return string(b)
	}
	for _, s := range []struct {
		status         int
		body, userinfo string
	}{
		{200, ok(at, idt), ""},
		{200, ok(nested, idt), ""},
		{200, ok("eyJhbGciOiJkaXIiLCJlbmMiOiJBMjU2R0NNIn0..aaaa.bbbb.cccc", ""), `{"sub":"auth0|fuzz"}`},
		{200, ok("opaque-token-value", ""), `{"sub":""}`},
		{200, ok(at, other), ""},
		{200, `{"access_token":"x","token_type":"Bearer","expires_in":"soon"}`, ""},
		{200, `{"token_type":"Bearer"}`, ""},
		{403, `{"error":"invalid_grant","error_description":"Unknown or invalid refresh token."}`, ""},
		{400, `{"error":"invalid_grant"}`, ""},
		{401, `{"error":"access_denied","error_description":"Unauthorized"}`, ""},
		{500, `{"error":"invalid_grant"}`, ""},
		{503, `<html>busy</html>`, ""},
		{200, `{"access_token":"` + strings.Repeat("A", 40) + `","id_token":"a.b.c"}`, ""},
	} {
		f.Add(uint16(s.status), s.body, s.userinfo)
	}
}

// FuzzExchange: the code exchange with any token-endpoint answer (and any /userinfo answer). Success
// only for a 2xx whose identity verifies (a subject always set); a non-2xx is always an error; no
// error message carries a token from the answer.
func FuzzExchange(f *testing.F) {
	p := newFuzzProvider(f)
	c := p.client(f)
	p.seeds(f)
	f.Fuzz(func(t *testing.T, status uint16, body, userinfo string) {
		if status < 200 || status > 599 {
			return
		}
		p.mu.Lock()
		p.status, p.body, p.userinfo = int(status), body, userinfo
		p.mu.Unlock()
		res, err := c.Exchange(context.Background(), "code", "verifier-0123456789-0123456789-0123456789", "n-1")
		if err != nil {
			for _, tok := range tokensIn(body) {
				if strings.Contains(err.Error(), tok) {
					t.Fatalf("the error carries a token: %v", err)
				}
			}
			return
		}
		if status >= 300 {
			t.Fatalf("HTTP %d accepted", status)
		}
		if res.Subject == "" || res.Tokens.AccessToken == "" {
			t.Fatalf("success without subject or access token: %+v", res)
		}
		// The fuzzer cannot sign: a subject comes from our validly signed seed tokens (all name
		// fuzzSubject, but for one id_token that contradicts its access token) or from /userinfo.
		var ui struct {
			Sub string `json:"sub"`
		}
		_ = json.Unmarshal([]byte(userinfo), &ui)
		if res.Subject != fuzzSubject && res.Subject != ui.Sub {
			t.Fatalf("subject %q from an unverified source", res.Subject)
		}
		switch res.AccessTokenKind {
		case "jws", "nested-jwe", "opaque":
		default:
			t.Fatalf("access token kind %q", res.AccessTokenKind)
		}
	})
}

// FuzzRefresh: the refresh with any answer. A 5xx, or any answer without a usable token, never ends
// the grant (never ErrInvalidGrant): only the provider's explicit refusal (invalid_grant, or Auth0's
// bare 403) does; a success always carries an access and a refresh token (the old one when none came
// back) and, when a new id_token came, the same subject; no error carries a token.
func FuzzRefresh(f *testing.F) {
	p := newFuzzProvider(f)
	c := p.client(f)
	p.seeds(f)
	f.Fuzz(func(t *testing.T, status uint16, body, _ string) {
		if status < 200 || status > 599 {
			return
		}
		p.mu.Lock()
		p.status, p.body = int(status), body
		p.mu.Unlock()
		nt, err := c.Refresh(context.Background(), Tokens{AccessToken: "old-at", RefreshToken: "old-rt", IDToken: "old-idt"}, fuzzSubject)
		if err != nil {
			if status >= 500 && errors.Is(err, ErrInvalidGrant) {
				t.Fatalf("HTTP %d ended the grant: %v", status, err)
			}
			if !errors.Is(err, ErrInvalidGrant) && !errors.Is(err, ErrUnavailable) && status >= 300 {
				t.Fatalf("HTTP %d: error neither invalid grant nor unavailable: %v", status, err)
			}
			for _, tok := range tokensIn(body) {
				if strings.Contains(err.Error(), tok) {
					t.Fatalf("the error carries a token: %v", err)
				}
			}
			return
		}
		if status >= 300 {
			t.Fatalf("HTTP %d accepted", status)
		}
		if nt.AccessToken == "" || nt.RefreshToken == "" || nt.IDToken == "" {
			t.Fatalf("refreshed tokens incomplete: %+v", nt)
		}
	})
}

// FuzzAccessToken: classifying an upstream access token. A five-part token (JWE) is never taken for a
// JWS; a "jws" or "nested-jwe" verdict comes only with a verified subject; nothing panics.
func FuzzAccessToken(f *testing.F) {
	p := newFuzzProvider(f)
	c := p.client(f)
	now := time.Now().Unix()
	iss := p.srv.URL + "/"
	at := p.jws(f, map[string]any{"iss": iss, "aud": fuzzAudience, "sub": fuzzSubject, "exp": now + 3600})
	for _, s := range []string{at, p.nestedJWE(f, at), p.nestedJWE(f, "not a jwt"), "eyJhbGciOiJkaXIiLCJlbmMiOiJBMjU2R0NNIn0..aaaa.bbbb.cccc",
		"a.b.c", "a.b.c.d.e", "opaque", "", strings.Replace(at, ".", "..", 1)} {
		f.Add(s)
	}
	d, err := c.ready(context.Background())
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		kind, claims, err := c.inspectAccessToken(context.Background(), d, raw)
		if err != nil {
			return
		}
		sub, _ := claims["sub"].(string)
		switch kind {
		case "opaque":
		case "jws":
			if strings.Count(raw, ".") != 2 {
				t.Fatalf("a %d-part token taken for a JWS", strings.Count(raw, ".")+1)
			}
			if _, err := jwt.ParseSigned(raw, sigAlgs); err != nil || sub == "" {
				t.Fatalf("jws verdict without a verified subject (%q, %v)", sub, err)
			}
		case "nested-jwe":
			if strings.Count(raw, ".") != 4 || sub == "" {
				t.Fatalf("nested-jwe verdict for %d parts, subject %q", strings.Count(raw, ".")+1, sub)
			}
		default:
			t.Fatalf("kind %q", kind)
		}
	})
}
