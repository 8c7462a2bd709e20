package oauthproxy

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cnpg-mcp/cnpg-mcp/server/accesstoken"
	"github.com/cnpg-mcp/cnpg-mcp/server/store"
	"github.com/cnpg-mcp/cnpg-mcp/server/store/bolt"
	"github.com/cnpg-mcp/cnpg-mcp/server/store/postgres"
	"github.com/cnpg-mcp/cnpg-mcp/server/store/postgres/pgtest"
	"github.com/cnpg-mcp/cnpg-mcp/server/store/seal"
	"github.com/cnpg-mcp/cnpg-mcp/server/store/storetest"
	"github.com/cnpg-mcp/cnpg-mcp/server/upstream"
)

// clock is the injectable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// fakeUpstream stands in for the OIDC provider in unit tests (the end-to-end tests in server/app use
// the mock Auth0). It records what it was asked and hands out recognisable secrets. With rotating
// set it behaves like Auth0 with refresh-token rotation: a refresh token works once, plus `leeway`
// after its rotation (Auth0's reuse interval); any other use is refused.
type fakeUpstream struct {
	mu          sync.Mutex
	clock       *clock
	authURLs    []url.Values
	exchanges   []string // verifiers
	revoked     []string
	issued      []string // every upstream secret handed out
	exchangeErr error
	refreshErr  error
	readyErr    error
	expiresIn   time.Duration
	n           int

	rotating  bool
	leeway    time.Duration
	rotatedAt map[string]time.Time // upstream refresh token → when it was rotated out
	refreshes int                  // Refresh calls that succeeded
	reused    int                  // Refresh calls with an already rotated upstream refresh token
	lastRT    string               // the newest upstream refresh token handed out
	// onRefresh runs inside Refresh after the new tokens are minted (tests: a store outage or a
	// crash right after the upstream answered).
	onRefresh func()
	// claims are the user's claims the exchange and every refresh return (nil: none).
	claims map[string]any
	// noRefreshToken: the upstream issues no refresh token (no offline_access).
	noRefreshToken bool
}

// setClaims changes what the upstream says about the user from now on.
func (f *fakeUpstream) setClaims(c map[string]any) { f.mu.Lock(); f.claims = c; f.mu.Unlock() }

func (f *fakeUpstream) Ready(context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.readyErr
}

func (f *fakeUpstream) AuthCodeURL(state, nonce, verifier, resource string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	v := url.Values{"state": {state}, "nonce": {nonce}, "code_challenge": {s256(verifier)}, "code_challenge_method": {"S256"}}
	if resource != "" {
		v.Set("resource", resource)
	}
	f.authURLs = append(f.authURLs, v)
	return "https://idp.test/authorize?" + v.Encode()
}

func (f *fakeUpstream) tokens() upstream.Tokens {
	f.n++
	exp := f.expiresIn
	if exp == 0 {
		exp = 24 * time.Hour
	}
	t := upstream.Tokens{AccessToken: "UPSTREAM-AT-" + randomToken(), RefreshToken: "UPSTREAM-RT-" + randomToken(), IDToken: "UPSTREAM-IDT-" + randomToken(), Expiry: f.clock.Now().Add(exp)}
	if f.noRefreshToken {
		t.RefreshToken = ""
	}
	if f.claims != nil {
		t.Claims = maps.Clone(f.claims)
	}
	f.issued = append(f.issued, t.AccessToken, t.RefreshToken, t.IDToken)
	f.issued = slices.DeleteFunc(f.issued, func(s string) bool { return s == "" })
	f.lastRT = t.RefreshToken
	return t
}

func (f *fakeUpstream) Exchange(_ context.Context, code, verifier, nonce string) (upstream.Result, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.exchanges = append(f.exchanges, verifier)
	if f.exchangeErr != nil {
		return upstream.Result{}, f.exchangeErr
	}
	t := f.tokens()
	return upstream.Result{Subject: "auth0|user-1", Tokens: t, AccessTokenKind: "jws", Claims: t.Claims}, nil
}

func (f *fakeUpstream) Refresh(_ context.Context, t upstream.Tokens, sub string) (upstream.Tokens, error) {
	f.mu.Lock()
	if f.refreshErr != nil {
		f.mu.Unlock()
		return upstream.Tokens{}, f.refreshErr
	}
	if f.rotating {
		if f.rotatedAt == nil {
			f.rotatedAt = map[string]time.Time{}
		}
		at, ok := f.rotatedAt[t.RefreshToken]
		if ok {
			f.reused++
		}
		if ok && f.clock.Now().Sub(at) > f.leeway {
			f.mu.Unlock()
			return upstream.Tokens{}, fmt.Errorf("%w: refresh: invalid_grant (reused rotated refresh token)", upstream.ErrInvalidGrant)
		} else if !ok {
			f.rotatedAt[t.RefreshToken] = f.clock.Now()
		}
	}
	nt := f.tokens()
	f.refreshes++
	hook := f.onRefresh
	f.mu.Unlock()
	if hook != nil {
		hook()
	}
	return nt, nil
}

// refreshCount is how many upstream refreshes succeeded.
func (f *fakeUpstream) refreshCount() int { f.mu.Lock(); defer f.mu.Unlock(); return f.refreshes }

// reuseCount is how many times a rotated upstream refresh token was presented again.
func (f *fakeUpstream) reuseCount() int { f.mu.Lock(); defer f.mu.Unlock(); return f.reused }

func (f *fakeUpstream) Revoke(_ context.Context, tok string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.revoked = append(f.revoked, tok)
	return nil
}

// syncBuffer collects logs.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

type harness struct {
	t        testing.TB
	srv      *httptest.Server
	proxy    *Proxy
	store    store.Store
	fkv      *storetest.FaultKV // the store's backend, with injectable faults
	kv       store.KV           // the backend itself
	tokens   *accesstoken.Tokens
	up       *fakeUpstream
	clock    *clock
	logs     *syncBuffer
	issuer   string
	resource string
	bodies   *syncBuffer // every response body seen by the harness clients
	secrets  []string    // every code/token the harness saw
	mu       sync.Mutex
	// codeVerifiers maps the codes authorize returned to the verifier of their authorization.
	codeVerifiers map[string]string
}

type harnessOpt func(*Options)

// backends are the storage backends the store-touching tests run on.
var backends = []string{"bolt", "postgres"}

// sharedPG is the package's PostgreSQL server (started on first use; TestMain stops it).
var sharedPG pgtest.Shared

func TestMain(m *testing.M) {
	code := m.Run()
	sharedPG.Close()
	os.Exit(code)
}

// openKV opens a fresh backend: a bbolt file, or a new database on the package's PostgreSQL.
func openKV(t testing.TB, backend string) store.KV {
	t.Helper()
	switch backend {
	case "postgres":
		kv, err := postgres.Open(context.Background(), sharedPG.NewDatabase(t))
		if err != nil {
			t.Fatal(err)
		}
		return kv
	default:
		kv, err := bolt.Open(filepath.Join(t.TempDir(), "store.db"), time.Second)
		if err != nil {
			t.Fatal(err)
		}
		return kv
	}
}

func newHarness(t testing.TB, opts ...harnessOpt) *harness {
	t.Helper()
	return newHarnessOn(t, "bolt", opts...)
}

// newHarnessOn is newHarness on the named backend (bolt or postgres).
func newHarnessOn(t testing.TB, backend string, opts ...harnessOpt) *harness {
	t.Helper()
	return newHarnessKV(t, openKV(t, backend), &clock{t: time.Unix(1_800_000_000, 0)}, nil, opts...)
}

// newHarnessKV builds the harness on kv (a restart test passes the reopened store, the clock and the
// upstream of the previous harness).
func newHarnessKV(t testing.TB, kv store.KV, c *clock, up *fakeUpstream, opts ...harnessOpt) *harness {
	t.Helper()
	h := &harness{t: t, clock: c, logs: &syncBuffer{}, bodies: &syncBuffer{}, up: up}
	if h.up == nil {
		h.up = &fakeUpstream{clock: h.clock}
	}
	h.kv = kv
	h.fkv = storetest.NewFaultKV(kv)
	sealer, _ := seal.New([]seal.Key{{ID: 1, Secret: bytes.Repeat([]byte{5}, 32)}})
	h.store = store.New(h.fkv, sealer, h.clock.Now)
	t.Cleanup(func() { h.store.Close() })
	h.srv = httptest.NewUnstartedServer(nil)
	h.srv.StartTLS()
	t.Cleanup(h.srv.Close)
	h.issuer = h.srv.URL
	h.resource = h.srv.URL + "/mcp"
	var err error
	h.tokens, err = accesstoken.New(accesstoken.Options{Issuer: h.issuer, Audience: h.resource,
		Keys: []accesstoken.Key{{ID: "k1", Secret: bytes.Repeat([]byte{8}, 32)}}, Grants: h.store, Now: h.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	o := Options{Issuer: h.issuer, Resource: h.resource, ResourceName: "Test MCP", ScopesSupported: []string{"mcp:read", "mcp:write"},
		Store: h.store, Tokens: h.tokens, Upstream: h.up, SecureCookies: true, Now: h.clock.Now,
		Logger: slog.New(slog.NewJSONHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))}
	for _, f := range opts {
		f(&o)
	}
	h.proxy, err = New(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		h.proxy.Close(ctx)
		cancel()
	})
	h.srv.Config.Handler = h.proxy.Handler()
	return h
}

func (h *harness) remember(s ...string) {
	h.mu.Lock()
	h.secrets = append(h.secrets, s...)
	h.mu.Unlock()
}

// browser is a cookie-keeping client that does not follow redirects.
func (h *harness) browser() *http.Client {
	jar, _ := cookiejar.New(nil)
	c := h.srv.Client()
	return &http.Client{Transport: c.Transport, Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

type resp struct {
	*http.Response
	body string
}

func (r resp) json(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(r.body), &m); err != nil {
		t.Fatalf("not JSON (%d): %s", r.StatusCode, r.body)
	}
	return m
}

func (r resp) location(t testing.TB) *url.URL {
	t.Helper()
	l := r.Header.Get("Location")
	if l == "" {
		t.Fatalf("no Location (status %d): %s", r.StatusCode, r.body)
	}
	u, err := url.Parse(l)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func (h *harness) do(c *http.Client, req *http.Request) resp {
	h.t.Helper()
	if c == nil {
		c = h.browser()
	}
	res, err := c.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	h.bodies.Write(b)
	h.bodies.Write([]byte(res.Header.Get("Location") + "\n"))
	return resp{res, string(b)}
}

func (h *harness) get(c *http.Client, u string) resp {
	req, _ := http.NewRequest(http.MethodGet, u, nil)
	return h.do(c, req)
}

func (h *harness) postForm(c *http.Client, path string, v url.Values) resp {
	req, _ := http.NewRequest(http.MethodPost, h.issuer+path, strings.NewReader(v.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return h.do(c, req)
}

func (h *harness) postJSON(path string, body string) resp {
	req, _ := http.NewRequest(http.MethodPost, h.issuer+path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	return h.do(nil, req)
}

// register registers a public client with refresh support and returns its id.
func (h *harness) register(redirects ...string) string {
	h.t.Helper()
	if len(redirects) == 0 {
		redirects = []string{"http://127.0.0.1:5000/cb"}
	}
	b, _ := json.Marshal(map[string]any{"redirect_uris": redirects, "client_name": "Test Client", "grant_types": []string{"authorization_code", "refresh_token"},
		"response_types": []string{"code"}, "token_endpoint_auth_method": "none"})
	r := h.postJSON("/register", string(b))
	if r.StatusCode != http.StatusCreated {
		h.t.Fatalf("register: %d %s", r.StatusCode, r.body)
	}
	return r.json(h.t)["client_id"].(string)
}

// testVerifier is a well-formed verifier for requests that never reach a real code.
const testVerifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk-verifier-0001"

// verifiers maps each challenge authorizeQuery made to its verifier: every authorization gets a fresh
// PKCE pair, as clients must (the server refuses the challenge of a redeemed code again, PKCE-08).
var verifiers sync.Map

func newVerifier() string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

func authorizeQuery(clientID, redirect string) url.Values {
	v := newVerifier()
	verifiers.Store(s256(v), v)
	return url.Values{"response_type": {"code"}, "client_id": {clientID}, "redirect_uri": {redirect}, "state": {"st-1"},
		"code_challenge": {s256(v)}, "code_challenge_method": {"S256"}, "scope": {"mcp:read mcp:write"}}
}

// verifierFor returns the verifier of a challenge made by authorizeQuery (testVerifier otherwise).
func verifierFor(challenge string) string {
	if v, ok := verifiers.Load(challenge); ok {
		return v.(string)
	}
	return testVerifier
}

var (
	csrfRe = regexp.MustCompile(`name="csrf_token" value="([^"]+)"`)
	txnRe  = regexp.MustCompile(`name="txn" value="([^"]+)"`)
)

type consentForm struct{ txn, csrf string }

// consentPage follows /authorize to our consent page and returns the form fields.
func (h *harness) consentPage(b *http.Client, q url.Values) (consentForm, resp) {
	h.t.Helper()
	r := h.get(b, h.issuer+"/authorize?"+q.Encode())
	if r.StatusCode != http.StatusFound {
		h.t.Fatalf("authorize: %d %s", r.StatusCode, r.body)
	}
	loc := r.location(h.t)
	if loc.Path != "/consent" {
		h.t.Fatalf("authorize did not lead to our consent page: %s", loc)
	}
	return h.renderConsent(b, loc.String())
}

func (h *harness) renderConsent(b *http.Client, consentURL string) (consentForm, resp) {
	h.t.Helper()
	if !strings.HasPrefix(consentURL, "http") {
		consentURL = h.issuer + consentURL
	}
	r := h.get(b, consentURL)
	if r.StatusCode != http.StatusOK {
		h.t.Fatalf("consent page: %d %s", r.StatusCode, r.body)
	}
	return consentForm{txn: txnRe.FindStringSubmatch(r.body)[1], csrf: csrfRe.FindStringSubmatch(r.body)[1]}, r
}

func (h *harness) submitConsent(b *http.Client, f consentForm, action string) resp {
	return h.postForm(b, "/consent", url.Values{"txn": {f.txn}, "csrf_token": {f.csrf}, "action": {action}})
}

// approve submits the form and returns the upstream state from the redirect.
func (h *harness) approve(b *http.Client, f consentForm) string {
	h.t.Helper()
	r := h.submitConsent(b, f, "approve")
	if r.StatusCode != http.StatusSeeOther {
		h.t.Fatalf("approve: %d %s", r.StatusCode, r.body)
	}
	loc := r.location(h.t)
	if loc.Host != "idp.test" {
		h.t.Fatalf("approve did not go upstream: %s", loc)
	}
	return loc.Query().Get("state")
}

// callback plays the upstream's redirect back to us.
func (h *harness) callback(b *http.Client, state string, extra url.Values) resp {
	v := url.Values{"state": {state}, "code": {"upstream-code"}}
	for k, x := range extra {
		v[k] = x
	}
	return h.get(b, h.issuer+"/auth/callback?"+v.Encode())
}

// authorize runs the browser part and returns our code (and the full client redirect).
func (h *harness) authorize(clientID string, q url.Values) (string, *url.URL) {
	h.t.Helper()
	b := h.browser()
	f, _ := h.consentPage(b, q)
	state := h.approve(b, f)
	r := h.callback(b, state, nil)
	if r.StatusCode != http.StatusFound {
		h.t.Fatalf("callback: %d %s", r.StatusCode, r.body)
	}
	loc := r.location(h.t)
	code := loc.Query().Get("code")
	if code == "" {
		h.t.Fatalf("no code in %s", loc)
	}
	v := verifierFor(q.Get("code_challenge"))
	h.mu.Lock()
	if h.codeVerifiers == nil {
		h.codeVerifiers = map[string]string{}
	}
	h.codeVerifiers[code] = v
	h.mu.Unlock()
	h.remember(code, v)
	return code, loc
}

func (h *harness) exchange(clientID, code string, extra url.Values) resp {
	h.mu.Lock()
	verifier, ok := h.codeVerifiers[code]
	h.mu.Unlock()
	if !ok {
		verifier = testVerifier
	}
	v := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "code_verifier": {verifier}, "client_id": {clientID}}
	for k, x := range extra {
		v[k] = x
	}
	r := h.postForm(nil, "/token", v)
	if r.StatusCode == http.StatusOK {
		m := r.json(h.t)
		h.remember(m["access_token"].(string))
		if rt, ok := m["refresh_token"].(string); ok {
			h.remember(rt)
		}
	}
	return r
}

func (h *harness) refresh(clientID, rt string, extra url.Values) resp {
	v := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}, "client_id": {clientID}}
	for k, x := range extra {
		v[k] = x
	}
	r := h.postForm(nil, "/token", v)
	if r.StatusCode == http.StatusOK {
		m := r.json(h.t)
		h.remember(m["access_token"].(string), m["refresh_token"].(string))
	}
	return r
}

// flow does register → authorize → token and returns client id and the token response.
func (h *harness) flow() (string, map[string]any) {
	h.t.Helper()
	id := h.register()
	code, _ := h.authorize(id, authorizeQuery(id, "http://127.0.0.1:5000/cb"))
	r := h.exchange(id, code, nil)
	if r.StatusCode != http.StatusOK {
		h.t.Fatalf("token: %d %s", r.StatusCode, r.body)
	}
	return id, r.json(h.t)
}

func (h *harness) accessOK(at string) bool {
	_, err := h.tokens.Verify(context.Background(), at)
	var e *accesstoken.Error
	if err != nil && !errors.As(err, &e) {
		h.t.Fatal(err)
	}
	return err == nil
}

func wantOAuthError(t *testing.T, r resp, status int, code string) {
	t.Helper()
	if r.StatusCode != status {
		t.Fatalf("want %d %s, got %d: %s", status, code, r.StatusCode, r.body)
	}
	if got := r.json(t)["error"]; got != code {
		t.Fatalf("want error %s, got %v (%s)", code, got, r.body)
	}
	if r.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("error response without Cache-Control: no-store")
	}
}
