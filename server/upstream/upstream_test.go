package upstream

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/cnpg-mcp/cnpg-mcp/mockauth0"
	mconfig "github.com/cnpg-mcp/cnpg-mcp/mockauth0/config"
	"golang.org/x/oauth2"
)

func mock(t *testing.T) *mockauth0.Server {
	t.Helper()
	srv, err := mockauth0.Start(context.Background(), mockauth0.DefaultConfig(), mockauth0.WithRSABits(2048))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return srv
}

const redirect = "http://127.0.0.1:1/auth/callback"

func client(t *testing.T, m *mockauth0.Server, mut func(*Options)) *Client {
	t.Helper()
	o := Options{Issuer: m.Issuer(), ClientID: mconfig.DefaultClientID, ClientSecret: mconfig.DefaultClientSecret,
		Audience: mconfig.DefaultAPIIdentifier, Scope: "openid profile email offline_access", RedirectURL: redirect}
	if mut != nil {
		mut(&o)
	}
	c, err := Discover(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

var stateRe = regexp.MustCompile(`name="state" value="([^"]+)"`)

// loginCode logs the default user in at the mock and returns the upstream code.
func loginCode(t *testing.T, authURL string) string {
	t.Helper()
	return loginCodeAs(t, authURL, mconfig.DefaultUserEmail, mconfig.DefaultUserPassword)
}

// loginCodeAs logs a user in at the mock and returns the upstream code.
func loginCodeAs(t *testing.T, authURL, email, password string) string {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	hc := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	next := authURL
	for i := 0; i < 8; i++ {
		res, err := hc.Get(next)
		if err != nil {
			t.Fatal(err)
		}
		b := new(strings.Builder)
		_, _ = ioCopy(b, res)
		if res.StatusCode == 200 && strings.Contains(b.String(), `id="username"`) {
			res, err = hc.PostForm(res.Request.URL.String(), url.Values{"state": {stateRe.FindStringSubmatch(b.String())[1]},
				"username": {email}, "password": {password}, "action": {"default"}})
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
		}
		loc, err := res.Request.URL.Parse(res.Header.Get("Location"))
		if err != nil || res.Header.Get("Location") == "" {
			t.Fatalf("stuck at %s (%d)", res.Request.URL, res.StatusCode)
		}
		if strings.HasPrefix(loc.String(), redirect) {
			if c := loc.Query().Get("code"); c != "" {
				return c
			}
			t.Fatalf("upstream error: %s", loc)
		}
		next = loc.String()
	}
	t.Fatal("too many redirects")
	return ""
}

func ioCopy(b *strings.Builder, res *http.Response) (int64, error) {
	defer res.Body.Close()
	buf := make([]byte, 32<<10)
	var n int64
	for {
		k, err := res.Body.Read(buf)
		b.Write(buf[:k])
		n += int64(k)
		if err != nil {
			return n, nil
		}
	}
}

func TestDiscoverIssuerMustMatchExactly(t *testing.T) {
	m := mock(t)
	_, err := Discover(context.Background(), Options{Issuer: strings.TrimSuffix(m.Issuer(), "/"), ClientID: "x"})
	if err == nil || !strings.Contains(err.Error(), "must match exactly") {
		t.Fatalf("issuer without the trailing slash accepted: %v", err)
	}
	_, err = Discover(context.Background(), Options{Issuer: "http://127.0.0.1:1/", ClientID: "x"})
	if err == nil || !strings.Contains(err.Error(), "check `issuer`") {
		t.Fatalf("unreachable upstream: %v", err)
	}
}

// PXY-16/PKCE-07/PXY-15 at the URL level, and PXY-20: exchange with id_token verification.
func TestExchangeVerifiesIdentity(t *testing.T) {
	m := mock(t)
	c := client(t, m, nil)
	verifier := oauth2.GenerateVerifier()
	u, _ := url.Parse(c.AuthCodeURL("st", "nonce-1", verifier, "https://mcp.example/mcp"))
	q := u.Query()
	if q.Get("code_challenge") != oauth2.S256ChallengeFromVerifier(verifier) || q.Get("code_challenge_method") != "S256" ||
		q.Get("audience") != mconfig.DefaultAPIIdentifier || q.Has("resource") || q.Get("nonce") != "nonce-1" {
		t.Fatalf("authorize URL %v", q)
	}
	res, err := c.Exchange(context.Background(), loginCode(t, u.String()), verifier, "nonce-1")
	if err != nil {
		t.Fatal(err)
	}
	if res.Subject != mconfig.DefaultUserSub || res.AccessTokenKind != "jws" || res.Tokens.RefreshToken == "" || res.Tokens.IDToken == "" {
		t.Fatalf("result %+v", res.AccessTokenKind)
	}
	// Wrong nonce: the id_token is refused.
	verifier = oauth2.GenerateVerifier()
	code := loginCode(t, c.AuthCodeURL("st", "nonce-2", verifier, ""))
	if _, err := c.Exchange(context.Background(), code, verifier, "other-nonce"); err == nil || !strings.Contains(err.Error(), "nonce") {
		t.Fatalf("nonce mismatch accepted: %v", err)
	}
	// Refresh keeps the subject; a revoked upstream grant gives ErrInvalidGrant.
	nt, err := c.Refresh(context.Background(), res.Tokens, res.Subject)
	if err != nil || nt.RefreshToken == res.Tokens.RefreshToken || nt.AccessToken == "" {
		t.Fatalf("refresh: %v", err)
	}
	if err := c.Revoke(context.Background(), nt.RefreshToken); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Refresh(context.Background(), nt, res.Subject); !errors.Is(err, ErrInvalidGrant) {
		t.Fatalf("refresh after revocation: %v", err)
	}
}

// PXY-15: the client's resource goes upstream only with ForwardResource.
func TestPXY15_ForwardResourceFlag(t *testing.T) {
	m := mock(t)
	c := client(t, m, func(o *Options) { o.ForwardResource = true })
	u, _ := url.Parse(c.AuthCodeURL("s", "n", oauth2.GenerateVerifier(), "https://mcp.example/mcp"))
	if u.Query().Get("resource") != "https://mcp.example/mcp" {
		t.Fatal("resource not forwarded with ForwardResource")
	}
}

func TestClassify(t *testing.T) {
	mk := func(status int, code string) error {
		return &oauth2.RetrieveError{Response: &http.Response{StatusCode: status}, ErrorCode: code, Body: []byte(`{"error":"x","secret":"leak"}`)}
	}
	cases := []struct {
		err  error
		want error
	}{
		{mk(403, "invalid_grant"), ErrInvalidGrant},
		{mk(400, "invalid_grant"), ErrInvalidGrant},
		{mk(401, "access_denied"), ErrUnavailable},
		{mk(500, ""), ErrUnavailable},
		{mk(429, "too_many_requests"), ErrUnavailable},
		{errors.New("dial tcp: refused"), ErrUnavailable},
	}
	for _, c := range cases {
		got := classify("refresh", c.err)
		if !errors.Is(got, c.want) || strings.Contains(got.Error(), "leak") {
			t.Errorf("%v → %v", c.err, got)
		}
	}
}

// client_secret_post: the secret goes in the body (the mock records the form).
func TestClientSecretPost(t *testing.T) {
	m := mock(t)
	c := client(t, m, func(o *Options) { o.AuthInBody = true })
	v := oauth2.GenerateVerifier()
	if _, err := c.Exchange(context.Background(), loginCode(t, c.AuthCodeURL("s", "n", v, "")), v, "n"); err != nil {
		t.Fatal(err)
	}
	reqs := m.RequestsTo("/oauth/token")
	if f := reqs[len(reqs)-1]; f.Form.Get("client_secret") != mconfig.DefaultClientSecret || f.Header.Get("Authorization") != "" {
		t.Fatal("secret not sent in the body")
	}
}

// CheckCredentials against the mock (which answers like Auth0: the client is authenticated before
// the code is looked at; a wrong secret is 401 access_denied "Unauthorized"), and against a token
// endpoint that answers each other way.
func TestCheckCredentials(t *testing.T) {
	m := mock(t)
	if err := client(t, m, nil).CheckCredentials(context.Background()); err != nil {
		t.Fatalf("right secret: %v", err)
	}
	for _, post := range []bool{false, true} {
		err := client(t, m, func(o *Options) { o.ClientSecret = "wrong"; o.AuthInBody = post }).CheckCredentials(context.Background())
		var ce *CredentialsError
		if !errors.As(err, &ce) || ce.Status != http.StatusUnauthorized {
			t.Fatalf("wrong secret (post %v): %v", post, err)
		}
	}
	reqs := m.RequestsTo("/oauth/token")
	if len(reqs) == 0 || !strings.HasPrefix(reqs[0].Form.Get("code"), StartupCodePrefix) {
		t.Fatalf("the probe's code is not recognizable: %+v", reqs)
	}

	for _, c := range []struct {
		status int
		body   string
		want   func(error) bool
	}{
		{403, `{"error":"invalid_grant","error_description":"Invalid authorization code"}`, func(err error) bool { return err == nil }},
		{400, `{"error":"invalid_grant"}`, func(err error) bool { return err == nil }},
		{401, `{"error":"invalid_client"}`, func(err error) bool { var ce *CredentialsError; return errors.As(err, &ce) }},
		{400, `{"error":"invalid_client"}`, func(err error) bool { var ce *CredentialsError; return errors.As(err, &ce) }},
		{403, `{"error":"unauthorized_client"}`, func(err error) bool {
			var ce *CredentialsError
			return errors.As(err, &ce) && strings.Contains(err.Error(), "authorization_code grant")
		}},
		{503, `oops`, func(err error) bool { return errors.Is(err, ErrUnavailable) }},
		{429, `{"error":"too_many_requests"}`, func(err error) bool { return errors.Is(err, ErrUnavailable) }},
		{400, `{"error":"invalid_request"}`, func(err error) bool {
			var ce *CredentialsError
			return err != nil && !errors.As(err, &ce) && !errors.Is(err, ErrUnavailable)
		}},
	} {
		srv := fakeProvider(t, c.status, c.body)
		cl, err := Discover(context.Background(), Options{Issuer: srv.URL + "/", ClientID: "c", ClientSecret: "s", RedirectURL: redirect})
		if err != nil {
			t.Fatal(err)
		}
		if err := cl.CheckCredentials(context.Background()); !c.want(err) {
			t.Errorf("token endpoint %d %s: %v", c.status, c.body, err)
		}
	}
}

// An unreachable provider is ErrUnavailable (discovery and every call), and picked up once it
// answers: the client discovers on use.
func TestDiscoveryRetriedOnUse(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	c := New(Options{Issuer: "http://" + addr + "/", ClientID: "c", ClientSecret: "s", RedirectURL: redirect})
	if err := c.Discover(context.Background()); !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), addr) {
		t.Fatalf("discovery of a dead provider: %v", err)
	}
	if err := c.Ready(context.Background()); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Ready: %v", err)
	}
	if _, err := c.Refresh(context.Background(), Tokens{RefreshToken: "r"}, "s"); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Refresh before discovery: %v (must be unavailable, never invalid_grant)", err)
	}
	if c.AuthCodeURL("s", "n", "v", "") != "" {
		t.Fatal("an authorization URL before discovery")
	}
	// A provider whose document contradicts the configuration is a configuration error, not an outage.
	srv := fakeProvider(t, 400, `{}`)
	if _, err := Discover(context.Background(), Options{Issuer: srv.URL, ClientID: "c"}); err == nil || errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "must match exactly") {
		t.Fatalf("issuer mismatch: %v", err)
	}
}

// fakeProvider serves a discovery document and a token endpoint that always answers status/body.
func fakeProvider(t *testing.T, status int, body string) *httptest.Server {
	t.Helper()
	var srv *httptest.Server
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/.well-known/openid-configuration":
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(`{"issuer":"` + srv.URL + `/","authorization_endpoint":"` + srv.URL + `/authorize","token_endpoint":"` + srv.URL + `/oauth/token","jwks_uri":"` + srv.URL + `/jwks"}`))
		case "/oauth/token":
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(status)
			_, _ = w.Write([]byte(body))
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

// The user's claims come back verified with the exchange and with every refresh: the id_token's,
// plus a custom claim only the access token carries; a group change upstream shows in the refresh.
func TestClaimsAtExchangeAndRefresh(t *testing.T) {
	m := mock(t)
	c := client(t, m, func(o *Options) { o.IdentityClaims = true })
	verifier := oauth2.GenerateVerifier()
	code := loginCodeAs(t, c.AuthCodeURL("st", "n", verifier, ""), mconfig.AliceEmail, mconfig.AlicePassword)
	res, err := c.Exchange(context.Background(), code, verifier, "n")
	if err != nil {
		t.Fatal(err)
	}
	if res.Subject != mconfig.AliceSub || res.Claims["email"] != mconfig.AliceEmail || res.Claims["email_verified"] != true ||
		fmt.Sprint(res.Claims[mconfig.DefaultGroupsClaim]) != "[team-a-dba]" {
		t.Fatalf("claims at exchange: %v", res.Claims)
	}
	if err := m.SetUserGroups(mconfig.AliceSub, []string{"developers"}); err != nil {
		t.Fatal(err)
	}
	nt, err := c.Refresh(context.Background(), res.Tokens, res.Subject)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(nt.Claims[mconfig.DefaultGroupsClaim]) != "[developers]" || nt.Claims["sub"] != mconfig.AliceSub {
		t.Fatalf("claims after refresh: %v", nt.Claims)
	}
}

// A claim an Action put only into the access token is merged in (the id_token wins on conflicts);
// with neither an id_token nor a verifiable access token, /userinfo supplies the claims.
func TestClaimsFromAccessTokenAndUserinfo(t *testing.T) {
	f := false
	m, err := mockauth0.Start(context.Background(), func() mockauth0.Config {
		cfg := mockauth0.DefaultConfig()
		cfg.Tenant.PostLoginAction = &mconfig.PostLoginAction{GroupsClaim: mconfig.DefaultGroupsClaim, IDToken: &f}
		return cfg
	}())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	c := client(t, m, nil)
	verifier := oauth2.GenerateVerifier()
	res, err := c.Exchange(context.Background(), loginCodeAs(t, c.AuthCodeURL("st", "n", verifier, ""), mconfig.AliceEmail, mconfig.AlicePassword), verifier, "n")
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(res.Claims[mconfig.DefaultGroupsClaim]) != "[team-a-dba]" || res.Claims["email"] != mconfig.AliceEmail {
		t.Fatalf("access-token-only claim not merged: %v", res.Claims)
	}
	// No openid scope and no audience: an opaque access token and no id_token; /userinfo answers.
	u := client(t, m, func(o *Options) { o.Scope = "profile email offline_access"; o.Audience = ""; o.IdentityClaims = true })
	verifier = oauth2.GenerateVerifier()
	res, err = u.Exchange(context.Background(), loginCodeAs(t, u.AuthCodeURL("st", "n", verifier, ""), mconfig.AliceEmail, mconfig.AlicePassword), verifier, "n")
	if err != nil {
		t.Fatal(err)
	}
	if res.AccessTokenKind != "opaque" || res.Subject != mconfig.AliceSub || res.Claims["email"] != mconfig.AliceEmail {
		t.Fatalf("claims from userinfo: kind %s, %v", res.AccessTokenKind, res.Claims)
	}
	nt, err := u.Refresh(context.Background(), res.Tokens, res.Subject)
	if err != nil || nt.Claims["email"] != mconfig.AliceEmail {
		t.Fatalf("refresh with userinfo claims: %v %v", nt.Claims, err)
	}
}

// readJSON takes exactly one JSON document: trailing data (a second object a streaming decoder would
// ignore, found by FuzzExchange: /userinfo `{"sub":"0"}0` gave the subject "0") and answers over the
// bound are errors.
func TestReadJSONStrict(t *testing.T) {
	for name, tc := range map[string]struct {
		body string
		ok   bool
	}{
		"one object":           {`{"sub":"auth0|a"}`, true},
		"whitespace around":    {" \n{\"sub\":\"auth0|a\"}\n ", true},
		"trailing digit":       {`{"sub":"0"}0`, false},
		"second object":        {`{"sub":"auth0|a"}{"sub":"auth0|b"}`, false},
		"trailing garbage":     {`{"sub":"auth0|a"}<html>`, false},
		"empty":                {``, false},
		"over the bound":       {`{"sub":"auth0|a","pad":"` + strings.Repeat("x", maxJSONBytes) + `"}`, false},
		"exactly at the bound": {`{"p":"` + strings.Repeat("x", maxJSONBytes-8) + `"}`, true},
	} {
		var v map[string]any
		err := readJSON(strings.NewReader(tc.body), &v)
		if (err == nil) != tc.ok {
			t.Errorf("%s: err %v, want ok=%t", name, err, tc.ok)
		}
	}
}
