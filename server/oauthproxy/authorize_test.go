package oauthproxy

import (
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// AZ-02, BCP-06, CLI-06: unknown or missing client → 400 page, never a redirect.
func TestAZ02_UnknownClient(t *testing.T) {
	h := newHarness(t)
	for _, q := range []url.Values{
		authorizeQuery("made-up", "http://127.0.0.1:5000/cb"),
		authorizeQuery("", "https://c.example/cb"),
		{"client_id": {"a", "b"}, "redirect_uri": {"https://c.example/cb"}},
	} {
		r := h.get(nil, h.issuer+"/authorize?"+q.Encode())
		if r.StatusCode != 400 || r.Header.Get("Location") != "" || !strings.Contains(r.Header.Get("Content-Type"), "text/html") {
			t.Fatalf("%v: %d %v", q, r.StatusCode, r.Header)
		}
	}
}

// AZ-03, BCP-03, PXY-09: exact string matching; every near-miss is refused without a redirect.
func TestAZ03_ExactRedirectMatching(t *testing.T) {
	h := newHarness(t)
	id := h.register("http://127.0.0.1:5000/cb", "https://c.example/cb")
	for _, bad := range []string{
		"https://c.example/other", "https://c.example/cb?x=1", "https://evil.example/cb", "https://c.example/CB", "https://C.example/cb",
		"https://c.example/cb/", "http://127.0.0.1@evil.com/cb", "https://c.example/cb/../x", "https://c.example:444/cb",
		"https://c.example:443/cb", "https://c.example/cb#frag", "http://c.example/cb", "http://127.0.0.1:5000/cb/", "http://localhost:5000/cb",
		"http://127.0.0.2:5000/cb", "http://127.0.0.1:5000/cb?x", "http://127.0.0.1:abc/cb",
	} {
		r := h.get(nil, h.issuer+"/authorize?"+authorizeQuery(id, bad).Encode())
		if r.StatusCode != 400 || r.Header.Get("Location") != "" {
			t.Errorf("%s: %d location=%q", bad, r.StatusCode, r.Header.Get("Location"))
		}
	}
	r := h.get(nil, h.issuer+"/authorize?"+authorizeQuery(id, "https://c.example/cb").Encode())
	if r.StatusCode != 302 {
		t.Fatalf("exact match refused: %d", r.StatusCode)
	}
}

// CLI-07, BCP-04: only the port of a loopback redirect URI may vary.
func TestCLI07_LoopbackPortVariation(t *testing.T) {
	h := newHarness(t)
	id := h.register("http://127.0.0.1:5000/cb", "http://[::1]/cb", "http://localhost:1234/callback")
	for _, ok := range []string{"http://127.0.0.1:6000/cb", "http://127.0.0.1/cb", "http://[::1]:9999/cb", "http://localhost:4321/callback"} {
		code, loc := h.authorize(id, authorizeQuery(id, ok))
		if !strings.HasPrefix(loc.String(), ok+"?") || code == "" {
			t.Fatalf("%s: redirected to %s", ok, loc)
		}
	}
}

// AZ-04: redirect_uri may be omitted only with exactly one registered.
func TestAZ04_OmittedRedirectURI(t *testing.T) {
	h := newHarness(t)
	one := h.register("http://127.0.0.1:5000/cb")
	two := h.register("http://127.0.0.1:5000/cb", "https://c.example/cb")
	q := authorizeQuery(one, "")
	q.Del("redirect_uri")
	if _, loc := h.authorize(one, q); !strings.HasPrefix(loc.String(), "http://127.0.0.1:5000/cb?") {
		t.Fatalf("single registered URI not used: %s", loc)
	}
	q = authorizeQuery(two, "")
	q.Del("redirect_uri")
	if r := h.get(nil, h.issuer+"/authorize?"+q.Encode()); r.StatusCode != 400 || r.Header.Get("Location") != "" {
		t.Fatalf("ambiguous redirect: %d", r.StatusCode)
	}
}

// AZ-05: state echoed exactly; absent state is not invented.
func TestAZ05_State(t *testing.T) {
	h := newHarness(t)
	id := h.register()
	q := authorizeQuery(id, "http://127.0.0.1:5000/cb")
	odd := "a b+c/=&é%20"
	q.Set("state", odd)
	_, loc := h.authorize(id, q)
	if loc.Query().Get("state") != odd {
		t.Fatalf("state %q came back as %q", odd, loc.Query().Get("state"))
	}
	q.Del("state")
	_, loc = h.authorize(id, q)
	if _, has := loc.Query()["state"]; has {
		t.Fatalf("state invented: %s", loc)
	}
	q.Set("state", "")
	_, loc = h.authorize(id, q)
	if _, has := loc.Query()["state"]; has {
		t.Fatalf("empty state echoed: %s", loc)
	}
}

// AZ-05 (resource exhaustion): state is stored with the transaction until it expires, and a request
// line may carry up to 1 MB, so an unbounded state lets anyone park a megabyte in the store per
// /authorize request for the transaction's lifetime (the embedded store's file never shrinks). A
// state longer than MaxStateBytes is refused with invalid_request before anything is stored; any
// realistic state (random values, encoded return URLs) is far shorter.
func TestAZ05_StateBounded(t *testing.T) {
	h := newHarness(t)
	id := h.register()
	q := authorizeQuery(id, "http://127.0.0.1:5000/cb")
	q.Set("state", strings.Repeat("s", MaxStateBytes))
	if _, loc := h.authorize(id, q); loc.Query().Get("state") != q.Get("state") {
		t.Fatal("state of the maximal length not echoed")
	}
	q.Set("state", strings.Repeat("s", 512<<10))
	if got := authorizeErr(t, h, q); got.Get("error") != "invalid_request" {
		t.Fatalf("512 KiB state: %v", got.Get("error"))
	}
}

func authorizeErr(t *testing.T, h *harness, q url.Values) url.Values {
	t.Helper()
	r := h.get(nil, h.issuer+"/authorize?"+q.Encode())
	if r.StatusCode != 302 {
		t.Fatalf("want error redirect, got %d: %s", r.StatusCode, r.body)
	}
	return r.location(t).Query()
}

// AZ-06, BCP-01: response_type=code only.
func TestAZ06_ResponseType(t *testing.T) {
	h := newHarness(t)
	id := h.register()
	for rt, want := range map[string]string{"token": "unsupported_response_type", "code id_token": "unsupported_response_type", "": "invalid_request"} {
		q := authorizeQuery(id, "http://127.0.0.1:5000/cb")
		q.Set("response_type", rt)
		if got := authorizeErr(t, h, q); got.Get("error") != want || got.Get("iss") != h.issuer || got.Get("state") != "st-1" {
			t.Errorf("response_type %q: %v", rt, got)
		}
	}
}

// AZ-07, BCP-26/27: unknown parameters ignored, repeated rejected.
func TestAZ07_Parameters(t *testing.T) {
	h := newHarness(t)
	id := h.register()
	q := authorizeQuery(id, "http://127.0.0.1:5000/cb")
	q.Set("foo", "bar")
	if r := h.get(nil, h.issuer+"/authorize?"+q.Encode()); r.StatusCode != 302 || r.location(t).Path != "/consent" {
		t.Fatalf("unknown parameter not ignored: %d", r.StatusCode)
	}
	q = authorizeQuery(id, "http://127.0.0.1:5000/cb")
	q["scope"] = []string{"mcp:read", "mcp:write"}
	if got := authorizeErr(t, h, q); got.Get("error") != "invalid_request" {
		t.Fatalf("repeated scope: %v", got)
	}
	q = authorizeQuery(id, "http://127.0.0.1:5000/cb")
	q["client_id"] = []string{id, id}
	if r := h.get(nil, h.issuer+"/authorize?"+q.Encode()); r.StatusCode != 400 || r.Header.Get("Location") != "" {
		t.Fatalf("repeated client_id: %d", r.StatusCode)
	}
}

// AZ-10, BCP-07: for a non-loopback redirect URI, errors are shown to the user first (with a link),
// not redirected automatically. For a native application the link keeps its private-use scheme
// (html/template would turn it into "#ZgotmplZ") so the user can return to the application.
func TestAZ10_NoOpenRedirect(t *testing.T) {
	for _, redirect := range []string{"https://attacker.example/cb", "cursor://anysphere.cursor-retrieval/oauth/callback"} {
		t.Run(redirect, func(t *testing.T) {
			h := newHarness(t)
			id := h.register(redirect)
			q := authorizeQuery(id, redirect)
			q.Set("response_type", "token")
			r := h.get(nil, h.issuer+"/authorize?"+q.Encode())
			if r.StatusCode != 400 || r.Header.Get("Location") != "" {
				t.Fatalf("auto-redirected to an untrusted URI: %d %s", r.StatusCode, r.Header.Get("Location"))
			}
			if !strings.Contains(r.body, "unsupported_response_type") || !strings.Contains(r.body, `id="continue" href="`+redirect+`?`) {
				t.Fatalf("page does not name the error and link the destination: %s", r.body)
			}
			if r.Header.Get("X-Frame-Options") != "DENY" {
				t.Fatal("interstitial without anti-framing headers")
			}
		})
	}
}

func TestRegisteredLinkRefusesScriptSchemes(t *testing.T) {
	for _, u := range []string{"javascript:alert(1)", " JavaScript:alert(1)", "data:text/html,x", "vbscript:x", "file:///etc/passwd", "no-scheme"} {
		if got := registeredLink(u); got != "" {
			t.Errorf("%q → %q", u, got)
		}
	}
	if got := registeredLink("https://c.example/cb?x=1"); got != "https://c.example/cb?x=1" {
		t.Errorf("https link changed: %q", got)
	}
}

// AZ-12: errors come from the registered list and descriptions use the allowed characters.
func TestAZ12_ErrorResponses(t *testing.T) {
	h := newHarness(t)
	id := h.register()
	q := authorizeQuery(id, "http://127.0.0.1:5000/cb")
	q.Del("code_challenge")
	got := authorizeErr(t, h, q)
	if got.Get("error") != "invalid_request" {
		t.Fatal(got)
	}
	for _, r := range got.Get("error_description") {
		if r < 0x20 || r > 0x7e || r == '"' || r == '\\' {
			t.Fatalf("error_description has %q", r)
		}
	}
}

// AZ-13, CLI-11, RT-00: unknown scopes are ignored (claude.ai sends "claudeai"), offline_access is
// accepted, and an omitted scope means every supported scope.
func TestAZ13_Scope(t *testing.T) {
	h := newHarness(t)
	id := h.register()
	for scope, want := range map[string]string{"claudeai": "mcp:read mcp:write", "": "mcp:read mcp:write", "mcp:read offline_access": "mcp:read", "mcp:write mcp:write": "mcp:write"} {
		q := authorizeQuery(id, "http://127.0.0.1:5000/cb")
		q.Set("scope", scope)
		code, _ := h.authorize(id, q)
		if got := h.exchange(id, code, nil).json(t)["scope"]; got != want {
			t.Errorf("scope %q granted %v, want %q", scope, got, want)
		}
	}
}

// AZ-14, BCP-23, CLI-13, ASM-09: iss on success, authorize errors, consent deny and upstream errors —
// byte-identical to the metadata issuer and present exactly once.
func TestAZ14_IssOnEveryResponse(t *testing.T) {
	h := newHarness(t)
	meta := h.get(nil, h.issuer+"/.well-known/oauth-authorization-server").json(t)
	iss := meta["issuer"].(string)
	id := h.register("http://127.0.0.1:5000/cb?tenant=a")
	check := func(what string, loc *url.URL) {
		t.Helper()
		if v := loc.Query()["iss"]; len(v) != 1 || v[0] != iss {
			t.Errorf("%s: iss=%v, want exactly [%s]", what, v, iss)
		}
		if loc.Query().Get("tenant") != "a" {
			t.Errorf("%s: registered query lost: %s", what, loc)
		}
	}
	_, loc := h.authorize(id, authorizeQuery(id, "http://127.0.0.1:5000/cb?tenant=a"))
	check("success", loc)
	q := authorizeQuery(id, "http://127.0.0.1:5000/cb?tenant=a")
	q.Set("resource", "https://other.example/mcp")
	r := h.get(nil, h.issuer+"/authorize?"+q.Encode())
	check("authorize error", r.location(t))
	b := h.browser()
	f, _ := h.consentPage(b, authorizeQuery(id, "http://127.0.0.1:5000/cb?tenant=a"))
	check("deny", h.submitConsent(b, f, "deny").location(t))
	b = h.browser()
	f, _ = h.consentPage(b, authorizeQuery(id, "http://127.0.0.1:5000/cb?tenant=a"))
	st := h.approve(b, f)
	check("upstream error", h.callback(b, st, url.Values{"error": {"access_denied"}, "code": nil}).location(t))
	// A registered redirect URI that already carries iss is refused, so iss can never be doubled.
	if r := h.postJSON("/register", `{"redirect_uris":["http://127.0.0.1:5000/cb?iss=x"]}`); r.StatusCode != 400 {
		t.Fatalf("redirect URI with iss registered: %d", r.StatusCode)
	}
}

// PKCE-01/02, BCP-10: challenge required, S256 only, well-formed.
func TestPKCE01_02_Challenge(t *testing.T) {
	h := newHarness(t)
	id := h.register()
	for name, mod := range map[string]func(url.Values){
		"missing":        func(q url.Values) { q.Del("code_challenge") },
		"plain":          func(q url.Values) { q.Set("code_challenge_method", "plain") },
		"foo":            func(q url.Values) { q.Set("code_challenge_method", "foo") },
		"method omitted": func(q url.Values) { q.Del("code_challenge_method") },
		"short":          func(q url.Values) { q.Set("code_challenge", "abc") },
		"bad chars":      func(q url.Values) { q.Set("code_challenge", strings.Repeat("+", 43)) },
	} {
		q := authorizeQuery(id, "http://127.0.0.1:5000/cb")
		mod(q)
		if got := authorizeErr(t, h, q); got.Get("error") != "invalid_request" {
			t.Errorf("%s: %v", name, got)
		}
	}
}

// RES-01/03/04/05/08: resource at authorize.
func TestRES_AuthorizeResource(t *testing.T) {
	h := newHarness(t)
	id := h.register()
	u, _ := url.Parse(h.resource)
	upper := "HTTPS://" + strings.ToUpper(u.Host) + u.Path
	for _, ok := range []string{h.resource, h.resource + "/", upper, h.resource + "?kb_name=x"} {
		q := authorizeQuery(id, "http://127.0.0.1:5000/cb")
		q.Set("resource", ok)
		code, _ := h.authorize(id, q)
		at := h.exchange(id, code, nil).json(t)["access_token"].(string)
		c, _ := h.tokens.Verify(t.Context(), at)
		if c.GrantID == "" {
			t.Fatalf("%s: token not valid for %s", ok, h.resource)
		}
	}
	for _, bad := range []string{"https://other.example/mcp", h.resource + "#x", "mcp.example.com", h.issuer + "/other", "https://user@" + u.Host + "/mcp", "http://" + u.Host + "/mcp"} {
		q := authorizeQuery(id, "http://127.0.0.1:5000/cb")
		q.Set("resource", bad)
		if got := authorizeErr(t, h, q); got.Get("error") != "invalid_target" {
			t.Errorf("%s: %v", bad, got)
		}
	}
}

// RES-08, CLI-10: a resource URL with a query must match it exactly; without one, a client's added
// query is ignored.
func TestRES08_CLI10_Query(t *testing.T) {
	p := &Proxy{o: Options{Resource: "https://mcp.example/mcp?tenant=a"}}
	if !p.checkResource("https://MCP.example/mcp?tenant=a") || p.checkResource("https://mcp.example/mcp?tenant=b") || p.checkResource("https://mcp.example/mcp") {
		t.Fatal("query comparison wrong")
	}
	p = &Proxy{o: Options{Resource: "https://mcp.example/mcp"}}
	if !p.checkResource("https://mcp.example/mcp?kb_name=docs") || p.checkResource("https://mcp.example/other?kb_name=docs") {
		t.Fatal("added query handling wrong")
	}
}

// PXY-01: /authorize leads to our consent page, for every client, never straight upstream; the
// consent POST answers 303 (AZ-11).
func TestPXY01_ConsentBeforeUpstream(t *testing.T) {
	h := newHarness(t)
	for i := 0; i < 2; i++ {
		id := h.register()
		b := h.browser()
		f, _ := h.consentPage(b, authorizeQuery(id, "http://127.0.0.1:5000/cb"))
		if len(h.up.authURLs) != i {
			t.Fatal("went upstream before consent")
		}
		h.approve(b, f)
	}
}

// PXY-02, SEC-02, CIMD-09: the page names the client (escaped), the redirect URI and host, the
// scopes, and warns for a loopback redirect.
func TestPXY02_ConsentPageContent(t *testing.T) {
	h := newHarness(t)
	r := h.postJSON("/register", `{"redirect_uris":["http://127.0.0.1:7777/cb","https://app.example/cb"],"client_name":"<script>alert(1)</script>Evil & Co"}`)
	id := r.json(t)["client_id"].(string)
	_, page := h.consentPage(h.browser(), authorizeQuery(id, "http://127.0.0.1:7777/cb"))
	for _, want := range []string{"&lt;script&gt;alert(1)&lt;/script&gt;Evil &amp; Co", "http://127.0.0.1:7777/cb", `id="redirect-host">127.0.0.1:7777`, "mcp:read", "mcp:write", id, `id="localhost-warning"`, "not verified"} {
		if !strings.Contains(page.body, want) {
			t.Errorf("consent page lacks %q", want)
		}
	}
	if strings.Contains(page.body, "<script>alert") {
		t.Fatal("client_name not escaped")
	}
	_, page = h.consentPage(h.browser(), authorizeQuery(id, "https://app.example/cb"))
	if strings.Contains(page.body, `id="localhost-warning"`) || !strings.Contains(page.body, `id="redirect-host">app.example`) {
		t.Fatal("https redirect shown wrongly")
	}
}

// PXY-03: consent CSRF.
func TestPXY03_ConsentCSRF(t *testing.T) {
	h := newHarness(t)
	id := h.register()
	victim := h.browser()
	f, _ := h.consentPage(victim, authorizeQuery(id, "http://127.0.0.1:5000/cb"))

	// (a)/(d) A cross-site POST carries no cookie: the attacker's own valid token is refused.
	attacker := h.browser()
	af, _ := h.consentPage(attacker, authorizeQuery(id, "http://127.0.0.1:5000/cb"))
	if r := h.submitConsent(victim, af, "approve"); r.StatusCode != 403 {
		t.Fatalf("(a) POST without the CSRF cookie: %d", r.StatusCode)
	}
	if strings.Contains(victimCookies(h, victim), "bind") {
		t.Fatal("binding cookie set after a refused POST")
	}
	// (b) token from another transaction.
	g, _ := h.consentPage(victim, authorizeQuery(id, "http://127.0.0.1:5000/cb"))
	if r := h.submitConsent(victim, consentForm{txn: f.txn, csrf: g.csrf}, "approve"); r.StatusCode != 400 {
		t.Fatalf("(b) other transaction's token: %d", r.StatusCode)
	}
	// (c) replay of a used token.
	h.approve(victim, f)
	if r := h.submitConsent(victim, f, "approve"); r.StatusCode != 400 {
		t.Fatalf("(c) replayed token: %d", r.StatusCode)
	}
	if r := h.submitConsent(victim, consentForm{txn: f.txn, csrf: "forged"}, "approve"); r.StatusCode != 400 {
		t.Fatalf("forged token: %d", r.StatusCode)
	}
}

func victimCookies(h *harness, b *http.Client) string {
	u, _ := url.Parse(h.issuer)
	var names []string
	for _, c := range b.Jar.Cookies(u) {
		names = append(names, c.Name)
	}
	return strings.Join(names, " ")
}

// PXY-04, PXY-19, BCP-22: anti-framing as headers and no caching, on the consent and error pages.
func TestPXY04_19_PageHeaders(t *testing.T) {
	h := newHarness(t)
	id := h.register()
	_, page := h.consentPage(h.browser(), authorizeQuery(id, "http://127.0.0.1:5000/cb"))
	errPage := h.get(nil, h.issuer+"/authorize?client_id=nope")
	cb := h.get(nil, h.issuer+"/auth/callback?state=nope")
	for name, r := range map[string]resp{"consent": page, "error": errPage, "callback": cb} {
		if r.Header.Get("X-Frame-Options") != "DENY" || !strings.Contains(r.Header.Get("Content-Security-Policy"), "frame-ancestors 'none'") ||
			r.Header.Get("Cache-Control") != "no-store" {
			t.Errorf("%s headers: %v", name, r.Header)
		}
	}
}

// PXY-05: cookie attributes over https.
func TestPXY05_CookieAttributes(t *testing.T) {
	h := newHarness(t)
	id := h.register()
	b := h.browser()
	f, page := h.consentPage(b, authorizeQuery(id, "http://127.0.0.1:5000/cb"))
	r := h.submitConsent(b, f, "approve")
	for _, sc := range append(page.Header.Values("Set-Cookie"), r.Header.Values("Set-Cookie")...) {
		if strings.Contains(sc, "Max-Age=0") {
			continue
		}
		for _, want := range []string{"__Host-", "; Path=/", "; HttpOnly", "; Secure", "; SameSite=Lax"} {
			if !strings.Contains(sc, want) {
				t.Errorf("cookie %q lacks %q", sc, want)
			}
		}
		if strings.Contains(strings.ToLower(sc), "domain=") {
			t.Errorf("__Host- cookie with Domain: %s", sc)
		}
	}
}

// PXY-07: the binding cookie appears only after approval.
func TestPXY07_BindingCookieOnlyAfterApproval(t *testing.T) {
	h := newHarness(t)
	id := h.register()
	b := h.browser()
	f, page := h.consentPage(b, authorizeQuery(id, "http://127.0.0.1:5000/cb"))
	if strings.Contains(strings.Join(page.Header.Values("Set-Cookie"), " "), "-bind-") {
		t.Fatal("binding cookie before approval")
	}
	r := h.submitConsent(b, f, "approve")
	if !strings.Contains(strings.Join(r.Header.Values("Set-Cookie"), " "), "-bind-") {
		t.Fatal("no binding cookie after approval")
	}
}

// PXY-06: a callback completed in another browser than the one that approved is refused and the
// client receives nothing.
func TestPXY06_BrowserBinding(t *testing.T) {
	h := newHarness(t)
	id := h.register()
	a := h.browser()
	f, _ := h.consentPage(a, authorizeQuery(id, "http://127.0.0.1:5000/cb"))
	state := h.approve(a, f)
	r := h.callback(h.browser(), state, nil)
	if r.StatusCode != 403 || r.Header.Get("Location") != "" {
		t.Fatalf("callback in browser B: %d %s", r.StatusCode, r.Header.Get("Location"))
	}
	if len(h.up.exchanges) != 0 {
		t.Fatal("upstream code exchanged for a foreign browser")
	}
	// The state is spent: browser A cannot complete it either afterwards.
	if r := h.callback(a, state, nil); r.StatusCode != 400 {
		t.Fatalf("spent state reused: %d", r.StatusCode)
	}
}

// PXY-08: upstream state single-use and short-lived.
func TestPXY08_StateSingleUseAndExpiry(t *testing.T) {
	h := newHarness(t)
	id := h.register()
	b := h.browser()
	f, _ := h.consentPage(b, authorizeQuery(id, "http://127.0.0.1:5000/cb"))
	state := h.approve(b, f)
	if r := h.callback(b, state, nil); r.StatusCode != 302 {
		t.Fatalf("first callback: %d", r.StatusCode)
	}
	if r := h.callback(b, state, nil); r.StatusCode != 400 || r.Header.Get("Location") != "" {
		t.Fatalf("replayed callback: %d", r.StatusCode)
	}
	f, _ = h.consentPage(b, authorizeQuery(id, "http://127.0.0.1:5000/cb"))
	state = h.approve(b, f)
	h.clock.Advance(10*time.Minute + time.Second)
	if r := h.callback(b, state, nil); r.StatusCode != 400 {
		t.Fatalf("stale callback: %d", r.StatusCode)
	}
}

// PXY-11: deny.
func TestPXY11_Deny(t *testing.T) {
	h := newHarness(t)
	id := h.register()
	b := h.browser()
	f, _ := h.consentPage(b, authorizeQuery(id, "http://127.0.0.1:5000/cb"))
	r := h.submitConsent(b, f, "deny")
	q := r.location(t).Query()
	if r.StatusCode != 303 || q.Get("error") != "access_denied" || q.Get("state") != "st-1" || q.Get("iss") != h.issuer || len(h.up.authURLs) != 0 {
		t.Fatalf("deny: %d %v", r.StatusCode, q)
	}
}

// PXY-12: upstream errors reach the client as error redirects; no internal text.
func TestPXY12_UpstreamFailures(t *testing.T) {
	h := newHarness(t)
	id := h.register()
	run := func(extra url.Values) url.Values {
		b := h.browser()
		f, _ := h.consentPage(b, authorizeQuery(id, "http://127.0.0.1:5000/cb"))
		r := h.callback(b, h.approve(b, f), extra)
		if r.StatusCode != 302 {
			t.Fatalf("%d %s", r.StatusCode, r.body)
		}
		return r.location(t).Query()
	}
	if q := run(url.Values{"error": {"access_denied"}, "error_description": {"internal <b>detail</b>"}}); q.Get("error") != "access_denied" || q.Get("iss") != h.issuer || strings.Contains(q.Get("error_description"), "detail") {
		t.Fatalf("upstream access_denied: %v", q)
	}
	if q := run(url.Values{"error": {"server_error"}}); q.Get("error") != "server_error" {
		t.Fatalf("upstream server_error: %v", q)
	}
	h.up.exchangeErr = errors.New("dial tcp 10.1.2.3:443: secret internal detail")
	q := run(nil)
	if q.Get("error") != "server_error" || q.Get("state") != "st-1" || strings.Contains(q.Encode(), "internal") || q.Get("code") != "" {
		t.Fatalf("failed exchange: %v", q)
	}
}

// PXY-18: the consent page fetched twice (prefetch) → both forms work.
func TestPXY18_DoubleRender(t *testing.T) {
	h := newHarness(t)
	id := h.register()
	b := h.browser()
	r := h.get(b, h.issuer+"/authorize?"+authorizeQuery(id, "http://127.0.0.1:5000/cb").Encode())
	first, _ := h.renderConsent(b, r.Header.Get("Location"))
	_, _ = h.renderConsent(b, r.Header.Get("Location"))
	h.approve(b, first)
}

// AZ-15: no code without the upstream login having completed (fake upstream exchange recorded).
func TestAZ15_CodeOnlyAfterLogin(t *testing.T) {
	h := newHarness(t)
	id := h.register()
	h.authorize(id, authorizeQuery(id, "http://127.0.0.1:5000/cb"))
	if len(h.up.exchanges) != 1 {
		t.Fatal("code issued without an upstream exchange")
	}
}

// PXY-16, PKCE-07: our own PKCE pair and a fresh state upstream; the client's values never leave.
func TestPXY16_UpstreamPKCEAndState(t *testing.T) {
	h := newHarness(t)
	id := h.register()
	q := authorizeQuery(id, "http://127.0.0.1:5000/cb")
	h.authorize(id, q)
	h.authorize(id, authorizeQuery(id, "http://127.0.0.1:5000/cb"))
	a, b := h.up.authURLs[0], h.up.authURLs[1]
	if a.Get("code_challenge") == q.Get("code_challenge") || a.Get("code_challenge_method") != "S256" || a.Get("state") == "st-1" ||
		a.Get("state") == b.Get("state") || a.Get("code_challenge") == b.Get("code_challenge") || a.Get("nonce") == b.Get("nonce") {
		t.Fatalf("upstream leg: %v %v", a, b)
	}
	if s256(h.up.exchanges[0]) != a.Get("code_challenge") {
		t.Fatal("upstream verifier does not match its challenge")
	}
}

// PXY-15: the client's resource is not forwarded upstream (the fake records it when it is).
func TestPXY15_ResourceNotForwarded(t *testing.T) {
	h := newHarness(t)
	id := h.register()
	q := authorizeQuery(id, "http://127.0.0.1:5000/cb")
	q.Set("resource", h.resource)
	h.authorize(id, q)
	// The proxy hands the resource to Upstream.AuthCodeURL; upstream.Client drops it unless
	// forward_resource is set (TestPXY15 in server/upstream). Here: it is our canonical value.
	if got := h.up.authURLs[0].Get("resource"); got != h.resource {
		t.Fatalf("resource passed to the upstream client: %q", got)
	}
}

// PKCE-08: the challenge of a redeemed code is refused when a client sends it again (a constant
// verifier defeats PKCE, RFC 9700 §2.1.1); a fresh challenge works, and a challenge whose code was
// never redeemed may be retried (a reloaded authorization).
func TestPKCE08_ConstantChallengeRefused(t *testing.T) {
	h := newHarness(t)
	id := h.register()
	q := authorizeQuery(id, "http://127.0.0.1:5000/cb")
	code, _ := h.authorize(id, q)
	h.authorize(id, q) // not redeemed yet: a retry with the same challenge is fine
	if r := h.exchange(id, code, nil); r.StatusCode != 200 {
		t.Fatalf("exchange: %d %s", r.StatusCode, r.body)
	}
	got := authorizeErr(t, h, q)
	if got.Get("error") != "invalid_request" || !strings.Contains(got.Get("error_description"), "code_challenge") {
		t.Fatalf("reused challenge: %v", got)
	}
	if len(h.up.authURLs) != 2 {
		t.Fatalf("the refused request reached the upstream (%d upstream authorizations)", len(h.up.authURLs))
	}
	h.authorize(id, authorizeQuery(id, "http://127.0.0.1:5000/cb"))
}
