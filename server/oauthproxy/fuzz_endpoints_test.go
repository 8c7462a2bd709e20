package oauthproxy

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

// The fuzz targets of the browser-facing and token endpoints (issue 11). Each one sets up real state
// (a registered client, a pending consent, an upstream session, a grant) and lets the fuzzer write
// the request around it: the placeholders {txn}, {csrf}, {cookie}, {state}, {client}, {rt} and {at}
// in the fuzzed strings are replaced by the real values, so mutations explore both the valid and the
// tampered shapes. Invariants: never a 5xx for client input, never a secret of ours or an upstream
// token in an error, and a success only for the request that deserves it.

const fuzzRedirect = "http://127.0.0.1:5000/cb"

// serve runs one request through the OAuth handler in-process.
func (h *harness) serve(req *http.Request) *httptest.ResponseRecorder {
	w := httptest.NewRecorder()
	h.proxy.Handler().ServeHTTP(w, req)
	return w
}

func fill(s string, kv ...string) string { return strings.NewReplacer(kv...).Replace(s) }

// setCookie returns "name=value" of the response's cookie whose name starts with prefix.
func setCookie(t *testing.T, w *httptest.ResponseRecorder, prefix string) (string, string) {
	t.Helper()
	for _, c := range w.Result().Cookies() {
		if strings.HasPrefix(c.Name, prefix) && c.Value != "" {
			return c.Name, c.Value
		}
	}
	t.Fatalf("no %s cookie set (status %d)", prefix, w.Code)
	return "", ""
}

// pendingConsent is one rendered consent page: the form's fields and the CSRF cookie.
type pendingConsent struct {
	txn, csrf, cookieName string
}

func (h *harness) newConsent(t *testing.T, clientID string) pendingConsent {
	t.Helper()
	w := h.serve(httptest.NewRequest(http.MethodGet, "/authorize?"+authorizeQuery(clientID, fuzzRedirect).Encode(), nil))
	loc := w.Header().Get("Location")
	if w.Code != http.StatusFound || !strings.Contains(loc, "/consent?") {
		t.Fatalf("authorize: %d %s", w.Code, loc)
	}
	u, _ := url.Parse(loc)
	w = h.serve(httptest.NewRequest(http.MethodGet, u.RequestURI(), nil))
	if w.Code != http.StatusOK {
		t.Fatalf("consent page: %d", w.Code)
	}
	name, csrf := setCookie(t, w, "__Host-cnpg-mcp-csrf-")
	return pendingConsent{txn: u.Query().Get("txn"), csrf: csrf, cookieName: name}
}

// FuzzConsentPost: the consent form's POST. Approval (a 303 to the upstream) only for the exact txn and
// CSRF token of the rendered form with its cookie and action=approve; denial (a 303 to the client with
// access_denied) only for the same with action=deny; everything else a 4xx page that echoes nothing.
func FuzzConsentPost(f *testing.F) {
	h := newHarness(f)
	clientID := h.register(fuzzRedirect)
	f.Add("txn={txn}&csrf_token={csrf}&action=approve", "{cookie}")
	f.Add("txn={txn}&csrf_token={csrf}&action=deny", "{cookie}")
	f.Add("txn={txn}&csrf_token={csrf}&action=approve", "")
	f.Add("txn={txn}&csrf_token={csrf}&action=approve&action=approve", "{cookie}")
	f.Add("txn={txn}x&csrf_token={csrf}&action=approve", "{cookie}")
	f.Add("txn={txn}&csrf_token={csrf}&action=Approve", "{cookie}; other=1")
	f.Add("txn=&csrf_token=&action=approve", "__Host-cnpg-mcp-csrf-0000000000000000={csrf}")
	f.Add("txn={txn}&csrf_token={csrf}%00&action=approve", "{cookie}")
	f.Add("%zz", "{cookie}")
	f.Fuzz(func(t *testing.T, body, cookie string) {
		h.t = t
		pc := h.newConsent(t, clientID)
		kv := []string{"{txn}", pc.txn, "{csrf}", pc.csrf, "{cookie}", pc.cookieName + "=" + pc.csrf}
		form := fill(body, kv...)
		req := httptest.NewRequest(http.MethodPost, "/consent", strings.NewReader(form))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if c := fill(cookie, kv...); c != "" {
			req.Header.Set("Cookie", c)
		}
		w := h.serve(req)
		if w.Code >= 500 {
			t.Fatalf("status %d for body %q cookie %q", w.Code, body, cookie)
		}
		loc := w.Header().Get("Location")
		v, perr := url.ParseQuery(form)
		valid := perr == nil && len(v["txn"]) == 1 && v.Get("txn") == pc.txn && len(v["csrf_token"]) == 1 && v.Get("csrf_token") == pc.csrf &&
			len(v["action"]) <= 1 && cookieSent(req, pc.cookieName, pc.csrf)
		switch {
		case w.Code == http.StatusSeeOther && strings.HasPrefix(loc, "https://idp.test/"):
			if !valid || v.Get("action") != "approve" {
				t.Fatalf("approved a tampered consent POST: body %q cookie %q", form, req.Header.Get("Cookie"))
			}
		case w.Code == http.StatusSeeOther && strings.HasPrefix(loc, fuzzRedirect+"?"):
			u, _ := url.Parse(loc)
			if !valid || v.Get("action") != "deny" || u.Query().Get("error") != "access_denied" || u.Query().Get("iss") != h.issuer {
				t.Fatalf("client redirect %q for body %q", loc, form)
			}
		case loc != "":
			t.Fatalf("redirect to %q for body %q", loc, form)
		case w.Code < 400:
			t.Fatalf("status %d without a redirect for body %q", w.Code, form)
		default:
			if strings.Contains(w.Body.String(), pc.csrf) || strings.Contains(w.Body.String(), pc.txn) {
				t.Fatalf("the error page echoes the CSRF token or transaction")
			}
		}
	})
}

// cookieSent reports whether the request carries exactly name=value (the first cookie of that name
// is the one Go's server reads).
func cookieSent(r *http.Request, name, value string) bool {
	c, err := r.Cookie(name)
	return err == nil && c.Value == value
}

// upstreamSession is an approved consent: the state sent upstream and the browser-binding cookie.
type upstreamSession struct {
	state, cookieName, binding string
}

func (h *harness) newUpstreamSession(t *testing.T, clientID string) upstreamSession {
	t.Helper()
	pc := h.newConsent(t, clientID)
	req := httptest.NewRequest(http.MethodPost, "/consent", strings.NewReader(url.Values{"txn": {pc.txn}, "csrf_token": {pc.csrf}, "action": {"approve"}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.AddCookie(&http.Cookie{Name: pc.cookieName, Value: pc.csrf})
	w := h.serve(req)
	u, _ := url.Parse(w.Header().Get("Location"))
	if w.Code != http.StatusSeeOther || u == nil || u.Host != "idp.test" {
		t.Fatalf("approve: %d %s", w.Code, w.Header().Get("Location"))
	}
	name, binding := setCookie(t, w, "__Host-cnpg-mcp-bind-")
	return upstreamSession{state: u.Query().Get("state"), cookieName: name, binding: binding}
}

// FuzzCallback: the upstream's redirect back to us. A code for the client only for the real state
// with its browser-binding cookie and an upstream code; errors go to the registered redirect URI with
// iss; never an upstream token anywhere in the answer.
func FuzzCallback(f *testing.F) {
	h := newHarness(f)
	clientID := h.register(fuzzRedirect)
	f.Add("state={state}&code=upstream-code", "{cookie}")
	f.Add("state={state}&code=upstream-code", "")
	f.Add("state={state}&error=access_denied&error_description=no", "{cookie}")
	f.Add("state={state}&error=server_error", "{cookie}")
	f.Add("state={state}&state={state}&code=c", "{cookie}")
	f.Add("state={state}&code=", "{cookie}")
	f.Add("state={state}x&code=c", "{cookie}")
	f.Add("state={state}&code=c", "__Host-cnpg-mcp-bind-0000000000000000={binding}")
	f.Add("code=c", "{cookie}")
	f.Fuzz(func(t *testing.T, query, cookie string) {
		h.t = t
		us := h.newUpstreamSession(t, clientID)
		kv := []string{"{state}", url.QueryEscape(us.state), "{cookie}", us.cookieName + "=" + us.binding, "{binding}", us.binding}
		h.up.mu.Lock()
		before := len(h.up.issued)
		h.up.mu.Unlock()
		req := httptest.NewRequest(http.MethodGet, "/auth/callback", nil)
		req.URL.RawQuery = fill(query, kv...)
		if c := fill(cookie, kv...); c != "" {
			req.Header.Set("Cookie", c)
		}
		w := h.serve(req)
		if w.Code >= 500 {
			t.Fatalf("status %d for %q", w.Code, req.URL.RawQuery)
		}
		h.up.mu.Lock()
		issued := append([]string(nil), h.up.issued[before:]...)
		h.up.mu.Unlock()
		all := w.Body.String() + fmt.Sprint(w.Header())
		for _, s := range issued {
			if strings.Contains(all, s) {
				t.Fatalf("an upstream token appears in the answer to %q", req.URL.RawQuery)
			}
		}
		loc := w.Header().Get("Location")
		if loc == "" {
			if w.Code < 400 {
				t.Fatalf("status %d without a redirect", w.Code)
			}
			return
		}
		u, err := url.Parse(loc)
		if err != nil || !strings.HasPrefix(loc, fuzzRedirect+"?") || u.Query().Get("iss") != h.issuer {
			t.Fatalf("callback redirected to %q", loc)
		}
		q, _ := url.ParseQuery(req.URL.RawQuery)
		if u.Query().Get("code") != "" {
			if len(q["state"]) != 1 || q.Get("state") != us.state || !cookieSent(req, us.cookieName, us.binding) || q.Get("code") == "" || q.Get("error") != "" {
				t.Fatalf("issued a code for %q with cookie %q", req.URL.RawQuery, req.Header.Get("Cookie"))
			}
		} else if u.Query().Get("error") == "" {
			t.Fatalf("a client redirect with neither code nor error: %q", loc)
		}
	})
}

// grantFixture keeps one live grant for the token and revocation fuzzers, renewing it when a fuzz
// input legitimately ended it.
type grantFixture struct {
	h                *harness
	client           string
	rt, at, grantID  string
	otherClient      string
	mu               sync.Mutex
	otherRT, otherAT string
}

func newGrantFixture(t testing.TB, h *harness) *grantFixture {
	g := &grantFixture{h: h, client: h.register(fuzzRedirect), otherClient: h.register(fuzzRedirect)}
	g.renew(t)
	return g
}

func (g *grantFixture) grantFor(t testing.TB, client string) (rt, at string) {
	t.Helper()
	h := g.h
	h.t = t
	code, _ := h.authorize(client, authorizeQuery(client, fuzzRedirect))
	r := h.exchange(client, code, nil)
	if r.StatusCode != http.StatusOK {
		t.Fatalf("exchange: %d %s", r.StatusCode, r.body)
	}
	m := r.json(t)
	return m["refresh_token"].(string), m["access_token"].(string)
}

func (g *grantFixture) renew(t testing.TB) {
	g.rt, g.at = g.grantFor(t, g.client)
	rec, _, err := g.h.store.GetRefreshToken(t.Context(), g.rt)
	if err != nil {
		t.Fatal(err)
	}
	g.grantID = rec.GrantID
	g.otherRT, g.otherAT = g.grantFor(t, g.otherClient)
}

func (g *grantFixture) alive(t *testing.T) bool {
	ok, err := g.h.store.GrantActive(t.Context(), g.grantID)
	if err != nil {
		t.Fatal(err)
	}
	return ok
}

func (g *grantFixture) secrets() []string { return []string{g.rt, g.at, g.otherRT, g.otherAT} }

func (g *grantFixture) kv() []string {
	return []string{"{client}", url.QueryEscape(g.client), "{rt}", url.QueryEscape(g.rt), "{at}", url.QueryEscape(g.at),
		"{other}", url.QueryEscape(g.otherClient), "{otherrt}", url.QueryEscape(g.otherRT)}
}

func noSecretIn(t *testing.T, body string, secrets []string) {
	t.Helper()
	for _, s := range secrets {
		if s != "" && strings.Contains(body, s) {
			t.Fatalf("a token appears in the error body %q", body)
		}
	}
}

// FuzzRevoke: RFC 7009 revocation. Always 200 (empty), 400 or 401 with a JSON error; never a token in
// an error; the grant ends only when its own client presented one of its tokens (REV-05).
func FuzzRevoke(f *testing.F) {
	h := newHarness(f)
	g := newGrantFixture(f, h)
	f.Add("token={rt}&client_id={client}", "")
	f.Add("token={at}&client_id={client}&token_type_hint=access_token", "")
	f.Add("token={rt}&client_id={other}", "")
	f.Add("token={at}&client_id={other}", "")
	f.Add("token={otherrt}&client_id={client}", "")
	f.Add("token={rt}", "Basic {basic}")
	f.Add("token={rt}&client_id={client}&client_secret=x", "")
	f.Add("token=&client_id={client}", "")
	f.Add("token={rt}&token={rt}&client_id={client}", "")
	f.Fuzz(func(t *testing.T, body, auth string) {
		h.t = t
		g.mu.Lock()
		defer g.mu.Unlock()
		if !g.alive(t) {
			g.renew(t)
		}
		kv := append(g.kv(), "{basic}", basicOf(g.client))
		form := fill(body, kv...)
		req := httptest.NewRequest(http.MethodPost, "/revoke", strings.NewReader(form))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if a := fill(auth, kv...); a != "" {
			req.Header.Set("Authorization", a)
		}
		w := h.serve(req)
		switch w.Code {
		case http.StatusOK:
			if w.Body.Len() != 0 {
				t.Fatalf("200 with a body %q", w.Body.String())
			}
		case http.StatusBadRequest, http.StatusUnauthorized:
			if w.Header().Get("Cache-Control") != "no-store" || !json.Valid(w.Body.Bytes()) {
				t.Fatalf("bad error response %q", w.Body.String())
			}
			noSecretIn(t, w.Body.String(), g.secrets())
		default:
			t.Fatalf("status %d for %q", w.Code, form)
		}
		if !g.alive(t) {
			v, _ := url.ParseQuery(form)
			id := v.Get("client_id")
			if bid, _, ok := req.BasicAuth(); ok {
				id, _ = url.QueryUnescape(bid)
			}
			if w.Code != http.StatusOK || id != g.client || (v.Get("token") != g.rt && v.Get("token") != g.at) {
				t.Fatalf("the grant ended on %d %q (auth %q)", w.Code, form, req.Header.Get("Authorization"))
			}
		}
	})
}

// basicOf is the HTTP Basic credential of a public client (its id, an empty secret).
func basicOf(id string) string {
	r := &http.Request{Header: http.Header{}}
	r.SetBasicAuth(url.QueryEscape(id), "")
	return strings.TrimPrefix(r.Header.Get("Authorization"), "Basic ")
}

// FuzzTokenRefresh: the token endpoint around a live grant. A 200 only for refresh_token={rt} of its
// own client (or a code never issued here: impossible); errors are JSON with no-store and never carry a
// token; a 5xx never happens while the store is healthy.
func FuzzTokenRefresh(f *testing.F) {
	h := newHarness(f)
	g := newGrantFixture(f, h)
	f.Add("grant_type=refresh_token&refresh_token={rt}&client_id={client}", "")
	f.Add("grant_type=refresh_token&refresh_token={rt}&client_id={client}&scope=mcp:read", "")
	f.Add("grant_type=refresh_token&refresh_token={rt}&client_id={client}&scope=mcp:admin", "")
	f.Add("grant_type=refresh_token&refresh_token={rt}&client_id={other}", "")
	f.Add("grant_type=refresh_token&refresh_token={otherrt}&client_id={client}", "")
	f.Add("grant_type=refresh_token&refresh_token={rt}", "Basic {basic}")
	f.Add("grant_type=refresh_token&refresh_token={rt}&client_id={client}&resource=https%3A%2F%2Fevil%2Fmcp", "")
	f.Add("grant_type=refresh_token&refresh_token={at}&client_id={client}", "")
	f.Add("grant_type=authorization_code&code={rt}&code_verifier="+testVerifier+"&client_id={client}", "")
	f.Fuzz(func(t *testing.T, body, auth string) {
		h.t = t
		g.mu.Lock()
		defer g.mu.Unlock()
		if !g.alive(t) {
			g.renew(t)
		}
		kv := append(g.kv(), "{basic}", basicOf(g.client))
		form := fill(body, kv...)
		req := httptest.NewRequest(http.MethodPost, "/token", strings.NewReader(form))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if a := fill(auth, kv...); a != "" {
			req.Header.Set("Authorization", a)
		}
		w := h.serve(req)
		if w.Header().Get("Cache-Control") != "no-store" {
			t.Fatalf("status %d without Cache-Control: no-store", w.Code)
		}
		switch w.Code {
		case http.StatusOK:
			v, _ := url.ParseQuery(form)
			id := v.Get("client_id")
			if bid, _, ok := req.BasicAuth(); ok {
				id, _ = url.QueryUnescape(bid)
			}
			if v.Get("grant_type") != "refresh_token" || v.Get("refresh_token") != g.rt || id != g.client {
				t.Fatalf("tokens issued for %q (auth %q)", form, req.Header.Get("Authorization"))
			}
			var m map[string]any
			if err := json.Unmarshal(w.Body.Bytes(), &m); err != nil || m["access_token"] == nil || m["refresh_token"] == nil {
				t.Fatalf("bad token response %q", w.Body.String())
			}
			g.rt, g.at = m["refresh_token"].(string), m["access_token"].(string)
		case http.StatusBadRequest, http.StatusUnauthorized:
			if !json.Valid(w.Body.Bytes()) || !strings.Contains(w.Body.String(), `"error"`) {
				t.Fatalf("bad error response %q", w.Body.String())
			}
			noSecretIn(t, w.Body.String(), g.secrets())
		default:
			t.Fatalf("status %d for %q", w.Code, form)
		}
	})
}

// FuzzCIMDDocument: a client metadata document as fetched from its URL. Accepted only when it names
// exactly its own URL, has a client_name without spoofing characters, no client_secret, only the code
// and refresh grants and valid redirect URIs; the cache lifetime stays within the maximum.
func FuzzCIMDDocument(f *testing.F) {
	var (
		mu   sync.Mutex
		doc  string
		cc   string
		path = "/client.json"
	)
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		d, c := doc, cc
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		if c != "" {
			w.Header().Set("Cache-Control", c)
		}
		fmt.Fprint(w, d)
	}))
	f.Cleanup(srv.Close)
	pool := x509.NewCertPool()
	pool.AddCert(srv.Certificate())
	const maxTTL = 24 * time.Hour
	// The production client opens a new TLS connection per fetch (no keep-alive); fuzzing what is done
	// with the answer needs none of that, and keep-alive makes it a hundred times faster.
	hc := NewCIMDHTTPClient(func(netip.Addr) bool { return true }, &tls.Config{RootCAs: pool})
	hc.Transport.(*http.Transport).DisableKeepAlives = false
	h := newHarness(f, func(o *Options) {
		o.CIMD = &CIMD{HTTPClient: hc, DefaultTTL: time.Hour, MaxTTL: maxTTL}
	})
	id := srv.URL + path
	f.Add(`{"client_id":"{id}","client_name":"Doc","redirect_uris":["http://127.0.0.1:3000/cb"],"grant_types":["authorization_code","refresh_token"]}`, "max-age=600")
	f.Add(`{"client_id":"{id}","client_name":"Doc","redirect_uris":["https://app.example/cb"],"application_type":"web","token_endpoint_auth_method":"none"}`, "no-store")
	f.Add(`{"client_id":"{id}","client_name":"Doc","redirect_uris":["http://127.0.0.1/cb"],"client_secret":"s"}`, "")
	f.Add(`{"client_id":"{id}/","client_name":"Doc","redirect_uris":["http://127.0.0.1/cb"]}`, "")
	f.Add(`{"client_id":"{id}","client_name":"Doc\u202e","redirect_uris":["http://127.0.0.1/cb"]}`, "max-age=99999999")
	f.Add(`{"client_id":"{id}","client_name":"Doc","redirect_uris":["javascript:alert(1)"]}`, "")
	f.Add(`{"client_id":"{id}","client_name":"Doc","redirect_uris":["http://127.0.0.1/cb"],"token_endpoint_auth_method":"private_key_jwt"}`, "")
	f.Add(`[]`, "")
	f.Fuzz(func(t *testing.T, body, cacheControl string) {
		mu.Lock()
		doc, cc = fill(body, "{id}", id), cacheControl
		mu.Unlock()
		c, ttl, err := h.proxy.fetchClientMetadata(context.Background(), id)
		if err != nil {
			return
		}
		var raw map[string]json.RawMessage
		if json.Unmarshal([]byte(doc), &raw) != nil {
			t.Fatalf("accepted a document that is not a JSON object: %q", doc)
		}
		if _, ok := raw["client_secret"]; ok {
			t.Fatalf("accepted a document with client_secret: %q", doc)
		}
		if c.ID != id || !c.Metadata || strings.TrimSpace(c.Name) == "" || strings.ContainsFunc(c.Name, spoofingRune) || len(c.Name) > 200 {
			t.Fatalf("accepted client %+v from %q", c, doc)
		}
		if len(c.RedirectURIs) == 0 {
			t.Fatalf("accepted a client without redirect URIs: %q", doc)
		}
		for _, u := range c.RedirectURIs {
			if err := validateRedirectURI(u, c.ApplicationType); err != nil {
				t.Fatalf("accepted redirect %q: %v", u, err)
			}
		}
		for _, gt := range c.GrantTypes {
			if gt != "authorization_code" && gt != "refresh_token" {
				t.Fatalf("accepted grant type %q", gt)
			}
		}
		if ttl < 0 || ttl > maxTTL {
			t.Fatalf("cache lifetime %s for Cache-Control %q", ttl, cacheControl)
		}
	})
}
