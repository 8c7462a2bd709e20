package oauthproxy

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"
)

func regBody(redirects []string, extra string) string {
	b, _ := json.Marshal(redirects)
	return `{"redirect_uris":` + string(b) + extra + `}`
}

// DCR-01, DCR-08, BCP-29: 201 JSON with a server-chosen client_id; unknown fields ignored.
func TestDCR01_Register(t *testing.T) {
	h := newHarness(t)
	r := h.postJSON("/register", `{"redirect_uris":["http://127.0.0.1:3000/cb"],"client_name":"X","x_foo":1,"client_id":"i-choose","resource":"https://x","scope":""}`)
	if r.StatusCode != 201 || !strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
		t.Fatalf("%d %s", r.StatusCode, r.body)
	}
	m := r.json(t)
	if id, _ := m["client_id"].(string); id == "" || id == "i-choose" || len(id) < 40 {
		t.Fatalf("client_id %v", m["client_id"])
	}
	if m["application_type"] != "native" || m["client_id_issued_at"] == nil {
		t.Fatalf("response %v", m)
	}
	if r := h.get(nil, h.issuer+"/register"); r.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("GET /register: %d", r.StatusCode)
	}
}

// DCR-02: replaced values are returned: we register public clients only.
func TestDCR02_ReplacedValuesReturned(t *testing.T) {
	h := newHarness(t)
	m := h.postJSON("/register", regBody([]string{"https://app.example/cb"}, `,"token_endpoint_auth_method":"client_secret_post"`)).json(t)
	if m["token_endpoint_auth_method"] != "none" || m["client_secret"] != nil {
		t.Fatalf("%v", m)
	}
	if g := m["grant_types"].([]any); len(g) != 1 || g[0] != "authorization_code" {
		t.Fatalf("default grant_types %v", g)
	}
}

// DCR-03: errors.
func TestDCR03_Errors(t *testing.T) {
	h := newHarness(t)
	for body, code := range map[string]string{
		`{}`:                               "invalid_redirect_uri",
		`{"redirect_uris":[]}`:             "invalid_redirect_uri",
		`not json`:                         "invalid_client_metadata",
		`{"redirect_uris":"http://x"}`:     "invalid_client_metadata",
		`{"redirect_uris":["::nonsense"]}`: "invalid_redirect_uri",
		// one object and nothing after it: a streaming decoder would register the first and ignore the rest
		`{"redirect_uris":["http://127.0.0.1:3000/cb"]}{"redirect_uris":["https://evil.example/cb"]}`: "invalid_client_metadata",
		`{"redirect_uris":["http://127.0.0.1:3000/cb"]} x`:                                            "invalid_client_metadata",
	} {
		wantOAuthError(t, h.postJSON("/register", body), 400, code)
	}
}

// DCR-04, BCP-05: http only on loopback.
func TestDCR04_HTTPOnlyLoopback(t *testing.T) {
	h := newHarness(t)
	for _, u := range []string{"http://evil.example/cb", "http://10.0.0.1/cb", "http://127.0.0.1.evil.example/cb", "http://localhost.evil.example/cb"} {
		wantOAuthError(t, h.postJSON("/register", regBody([]string{u}, "")), 400, "invalid_redirect_uri")
	}
	for _, u := range []string{"http://127.0.0.1/cb", "http://localhost:8080/cb", "http://[::1]:9/cb", "https://claude.ai/api/mcp/auth_callback", "https://claude.com/api/mcp/auth_callback"} {
		if r := h.postJSON("/register", regBody([]string{u}, "")); r.StatusCode != 201 {
			t.Errorf("%s refused: %s", u, r.body)
		}
	}
}

// DCR-05: dangerous schemes.
func TestDCR05_DangerousSchemes(t *testing.T) {
	h := newHarness(t)
	for _, u := range []string{"javascript:alert(1)", "JavaScript:alert(1)", "data:text/html,x", "file:///etc/passwd", "vbscript:x", "about:blank", "blob:https://x/y"} {
		wantOAuthError(t, h.postJSON("/register", regBody([]string{u}, "")), 400, "invalid_redirect_uri")
	}
}

// DCR-06: absolute, no fragment, no user info, no dot segments, no response parameters.
func TestDCR06_FragmentsAndShape(t *testing.T) {
	h := newHarness(t)
	for _, u := range []string{"https://c.example/cb#x", "https://c.example/cb#", "/relative/cb", "https://u:p@c.example/cb", "https://c.example/a/../cb",
		"https://c.example/a/%2e%2e/cb", "https://c.example/cb?code=1", "https://c.example/cb?state=1", "https://c.example/cb?error=x", "https://c.example/c b"} {
		wantOAuthError(t, h.postJSON("/register", regBody([]string{u}, "")), 400, "invalid_redirect_uri")
	}
}

// DCR-07 (deliberate): private-use schemes without a dot are accepted for native clients (Cursor,
// VS Code); reverse-domain schemes too.
func TestDCR07_PrivateUseSchemes(t *testing.T) {
	h := newHarness(t)
	for _, u := range []string{"cursor://anysphere.cursor-mcp/oauth/callback", "com.example.app:/cb", "vscode://vscode.github-authentication/did-authenticate"} {
		if r := h.postJSON("/register", regBody([]string{u}, "")); r.StatusCode != 201 {
			t.Errorf("%s: %s", u, r.body)
		}
	}
}

// DCR-09, CLI-12: application_type rules.
func TestDCR09_ApplicationType(t *testing.T) {
	h := newHarness(t)
	wantOAuthError(t, h.postJSON("/register", regBody([]string{"http://127.0.0.1/cb"}, `,"application_type":"web"`)), 400, "invalid_redirect_uri")
	wantOAuthError(t, h.postJSON("/register", regBody([]string{"https://localhost/cb"}, `,"application_type":"web"`)), 400, "invalid_redirect_uri")
	wantOAuthError(t, h.postJSON("/register", regBody([]string{"cursor://x/cb"}, `,"application_type":"web"`)), 400, "invalid_redirect_uri")
	wantOAuthError(t, h.postJSON("/register", regBody([]string{"https://a.example/cb"}, `,"application_type":"service"`)), 400, "invalid_client_metadata")
	if r := h.postJSON("/register", regBody([]string{"https://a.example/cb"}, `,"application_type":"web"`)); r.StatusCode != 201 {
		t.Fatal(r.body)
	}
	if r := h.postJSON("/register", regBody([]string{"http://127.0.0.1/cb"}, "")); r.StatusCode != 201 {
		t.Fatal("absent application_type broke a loopback client")
	}
}

// DCR-11, CLI-11: unknown scopes are dropped, not rejected.
func TestDCR11_UnknownScopeSubstituted(t *testing.T) {
	h := newHarness(t)
	r := h.postJSON("/register", regBody([]string{"https://a.example/cb"}, `,"scope":"claudeai mcp:read"`))
	if r.StatusCode != 201 || r.json(t)["scope"] != "mcp:read" {
		t.Fatalf("%d %s", r.StatusCode, r.body)
	}
}

// DCR-12: grant/response types consistent.
func TestDCR12_GrantTypes(t *testing.T) {
	h := newHarness(t)
	wantOAuthError(t, h.postJSON("/register", regBody([]string{"https://a.example/cb"}, `,"grant_types":["client_credentials"]`)), 400, "invalid_client_metadata")
	wantOAuthError(t, h.postJSON("/register", regBody([]string{"https://a.example/cb"}, `,"grant_types":["refresh_token"]`)), 400, "invalid_client_metadata")
	wantOAuthError(t, h.postJSON("/register", regBody([]string{"https://a.example/cb"}, `,"response_types":["token"]`)), 400, "invalid_client_metadata")
	wantOAuthError(t, h.postJSON("/register", regBody([]string{"https://a.example/cb"}, `,"grant_types":["implicit","authorization_code"]`)), 400, "invalid_client_metadata")
}

// CLI-08: hosted Claude redirect URIs register and match exactly.
func TestCLI08_HostedRedirects(t *testing.T) {
	h := newHarness(t)
	id := h.register("https://claude.ai/api/mcp/auth_callback")
	if r := h.get(nil, h.issuer+"/authorize?"+authorizeQuery(id, "https://claude.ai/api/mcp/auth_callback").Encode()); r.StatusCode != 302 {
		t.Fatal(r.StatusCode)
	}
	if r := h.get(nil, h.issuer+"/authorize?"+authorizeQuery(id, "https://claude.com/api/mcp/auth_callback").Encode()); r.StatusCode != 400 {
		t.Fatal("other host accepted")
	}
}

// BCP-31, PXY-02, CIMD-09 (consent phishing): the consent page tells the user where the code goes by
// the redirect URI's host. A host written with look-alike letters (IDN homograph: Cyrillic "о" in
// "gооgle.com", raw or percent-encoded) or a bidi override reordering the text would show one
// destination and send the code to another, so redirect URIs must be plain ASCII (RFC 3986 URIs;
// international host names in punycode). Percent-encoding in the path stays allowed: it is shown as
// written.
func TestBCP31_RedirectURIHomographsRefused(t *testing.T) {
	h := newHarness(t)
	for _, u := range []string{
		"https://g\u043e\u043egle.com/cb",          // raw Cyrillic о
		"https://g%D0%BE%D0%BEgle.com/cb",          // the same host percent-encoded (url.Parse decodes it)
		"https://evil.example/\u202ecb.elgoog",     // right-to-left override in the path
		"cursor://\u202eanysphere.cursor-mcp/cb",   // in a private-use scheme's authority
		"http://127.0.0.1:5000/c\u00e9b",           // any non-ASCII byte
		"https://app.example/cb?next=\u0430pp.com", // also in the query
	} {
		wantOAuthError(t, h.postJSON("/register", regBody([]string{u}, "")), 400, "invalid_redirect_uri")
	}
	for _, u := range []string{"https://xn--ggle-55da.com/cb", "https://app.example/%E2%80%AE/cb"} {
		r := h.postJSON("/register", regBody([]string{u}, ""))
		if r.StatusCode != http.StatusCreated {
			t.Fatalf("%s refused: %s", u, r.body)
		}
		id := r.json(t)["client_id"].(string)
		_, page := h.consentPage(h.browser(), authorizeQuery(id, u))
		host := strings.SplitN(strings.TrimPrefix(u, "https://"), "/", 2)[0]
		if !strings.Contains(page.body, `id="redirect-host">`+host+`<`) {
			t.Fatalf("consent page does not show the host %s as written", host)
		}
	}
}

// BCP-31, SEC-02 (consent phishing): client_name is shown (escaped) on the consent page next to the
// warning that it is not verified. HTML escaping does not stop a bidi override (U+202E) or isolate in
// the name from reversing the rest of the line, which turns "its name is not verified" into
// unreadable text. Names with bidi controls or control characters are refused, for DCR and metadata
// documents alike; right-to-left scripts and emoji sequences stay allowed.
func TestBCP31_ClientNameBidiControlsRefused(t *testing.T) {
	h := newHarness(t)
	for _, name := range []string{"Claude\u202e", "Claude \u2067(verified)", "\u202dClaude", "Claude\u200f", "Claude\x00", "Claude\u0085"} {
		b, _ := json.Marshal(name)
		wantOAuthError(t, h.postJSON("/register", regBody([]string{"http://127.0.0.1:5000/cb"}, `,"client_name":`+string(b))), 400, "invalid_client_metadata")
		if _, _, err := h.proxy.clientFromMetadata([]string{"http://127.0.0.1:5000/cb"}, name, nil, nil, "", ""); err == nil {
			t.Errorf("metadata document client_name %q accepted", name)
		}
	}
	for _, name := range []string{"\u05e9\u05dc\u05d5\u05dd", "\U0001F469\u200d\U0001F4BB Dev", "Caf\u00e9 & Co"} {
		b, _ := json.Marshal(name)
		if r := h.postJSON("/register", regBody([]string{"http://127.0.0.1:5000/cb"}, `,"client_name":`+string(b))); r.StatusCode != http.StatusCreated {
			t.Errorf("%q refused: %s", name, r.body)
		}
	}
}

// DCR-10 and storage growth: an open registration that never completes an authorization is
// forgotten after lifetimes.unused_registration (the client then gets 401 invalid_client and
// registers again); a client that completed one is kept.
func TestDCR_UnusedRegistrationExpires(t *testing.T) {
	h := newHarness(t)
	unused := h.register()
	used, _ := h.flow()
	h.clock.Advance(25 * time.Hour)
	if r := h.authorizeStatus(unused, "http://127.0.0.1:5000/cb"); r.StatusCode != 400 || r.Header.Get("Location") != "" {
		t.Fatalf("unused registration still accepted at /authorize: %d", r.StatusCode)
	}
	wantOAuthError(t, h.exchange(unused, "x", nil), 401, "invalid_client")
	code, _ := h.authorize(used, authorizeQuery(used, "http://127.0.0.1:5000/cb"))
	if r := h.exchange(used, code, nil); r.StatusCode != 200 {
		t.Fatalf("used registration forgotten: %d %s", r.StatusCode, r.body)
	}
}
