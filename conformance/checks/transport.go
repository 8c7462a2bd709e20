package checks

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/cnpg-mcp/cnpg-mcp/conformance/browser"
)

// C.14 Transport and general security.
func transportChecks() map[string]func(*T) {
	return map[string]func(*T){
		"SEC-01": sec01, "SEC-02": sec02, "SEC-03": sec03, "SEC-04": sec04, "SEC-05": sec05, "SEC-06": sec06,
	}
}

// SEC-01: every AS endpoint is https; plain http is refused or redirected.
func sec01(t *T) {
	as := t.AS()
	if t.targetIsLoopback() {
		for _, f := range []string{"authorization_endpoint", "token_endpoint", "registration_endpoint", "revocation_endpoint"} {
			if v, _ := as.Raw[f].(string); v != "" {
				if p := checkEndpointURL(v); p != "" {
					t.Errorf("%s: %s", f, p)
				}
			}
		}
		t.Logf("the target runs on loopback; plain http is allowed there")
		return
	}
	for _, f := range []string{"issuer", "authorization_endpoint", "token_endpoint", "registration_endpoint", "revocation_endpoint", "jwks_uri"} {
		if v, _ := as.Raw[f].(string); v != "" && !strings.HasPrefix(v, "https://") {
			t.Errorf("%s is %s, not https", f, v)
		}
	}
	if !strings.HasPrefix(t.env.cfg.Target, "https://") {
		t.Errorf("the MCP endpoint %s is not https", t.env.cfg.Target)
	}
	u, _ := url.Parse(as.URL)
	u.Scheme = "http"
	resp, err := t.client.Get(t.Label("metadata over plain http"), u.String(), nil)
	if err != nil {
		t.Logf("plain http is not served (%v)", err)
		return
	}
	if resp.Status == http.StatusOK && resp.JSON != nil {
		t.Errorf("the metadata is served over plain http at %s", u)
	} else if resp.IsRedirect() && !strings.HasPrefix(resp.Location(), "https://") {
		t.Errorf("plain http redirects to %s, not to https", resp.Location())
	}
}

// SEC-02: client-controlled text is escaped on the consent page (no script runs).
func sec02(t *T) {
	t.requireConsentPage()
	payload := `<img src=x onerror="window.__mcpconfXSS=1">conformance-xss`
	c := t.RegisterClient(func(m map[string]any) { m["client_name"] = payload })
	stateProbe := `"><img src=x onerror="window.__mcpconfXSS=2">`
	s, _ := t.consentPage(Flow{Client: c, State: ptr(stateProbe), Name: "consent with hostile text"})
	// An injected <img src=x onerror=…> has run by the load event.
	t.Must(s.WaitLoaded(t.ctx), "wait for the consent page to load")
	v, err := browser.Eval[int](t.ctx, s, `window.__mcpconfXSS || 0`)
	t.Must(err, "read the page")
	if v != 0 {
		t.Screenshot(s, "script injected into the consent page")
		t.Errorf("markup from the %s ran on the consent page: HTML is not escaped", map[int]string{1: "client_name", 2: "state"}[v])
	}
	text, _ := evalText(t, s)
	if !strings.Contains(text, "conformance-xss") {
		t.Logf("the consent page does not show the client_name at all")
	}
}

// SEC-03: CORS on token, registration, metadata and revocation (MAY); never on authorize (MUST NOT).
func sec03(t *T) {
	as := t.AS()
	for name, ep := range map[string]string{"token": as.TokenEndpoint, "registration": as.RegistrationEndpoint, "revocation": as.RevocationEndpoint} {
		if ep == "" {
			continue
		}
		pre, err := t.client.Options(t.Label("CORS preflight to the %s endpoint", name), ep, testOrigin, http.MethodPost, "content-type")
		t.Must(err, "preflight")
		if !corsAllowed(pre, testOrigin) {
			t.Warnf("the %s endpoint does not allow cross-origin calls (browser-based clients cannot use it)", name)
		}
	}
	pre, err := t.client.Options(t.Label("CORS preflight to the authorization endpoint"), as.AuthorizationEndpoint, testOrigin, http.MethodGet, "")
	t.Must(err, "preflight")
	if pre.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("the authorization endpoint allows cross-origin requests (RFC 9700 §2.6: it MUST NOT)")
	}
}

// SEC-04: no tokens in URLs: the browser only ever carries a code.
func sec04(t *T) {
	g := t.SharedGrant()
	for _, n := range g.Flow.Navigations {
		u, err := url.Parse(n.URL)
		if err != nil {
			continue
		}
		for _, k := range []string{"access_token", "id_token", "refresh_token", "token"} {
			if u.Query().Has(k) {
				t.Errorf("the browser was sent to %s with %s in the URL", stripQuery(n.URL), k)
			}
		}
	}
	if f := g.Flow.Response.Fragment; f != "" {
		if v, err := url.ParseQuery(f); err == nil && (v.Has("access_token") || v.Has("id_token")) {
			t.Errorf("the authorization response carries a token in the URL fragment")
		}
	}
	for k := range g.Flow.Response.Query {
		if strings.Contains(k, "token") {
			t.Errorf("the authorization response carries %s", k)
		}
	}
}

// SEC-05: session IDs are random.
func sec05(t *T) {
	g := t.SharedGrant()
	var ids []string
	for i := 0; i < 5; i++ {
		sid, _ := t.initSession("initialize", g.Tokens.AccessToken)
		if sid == "" {
			t.Skipf("the server runs stateless (no Mcp-Session-Id)")
		}
		ids = append(ids, sid)
	}
	seen := map[string]bool{}
	for _, id := range ids {
		if seen[id] {
			t.Errorf("the same session ID was issued twice")
		}
		seen[id] = true
		if len(id) < 16 {
			t.Errorf("session ID of %d characters is too short to be unguessable", len(id))
		}
	}
	prefix := ids[0]
	for _, id := range ids[1:] {
		for !strings.HasPrefix(id, prefix) {
			prefix = prefix[:len(prefix)-1]
		}
	}
	if len(prefix) > len(ids[0])/2 {
		t.Errorf("session IDs share a %d-character prefix: they look sequential", len(prefix))
	}
}

// SEC-06: deployment guidance only.
func sec06(t *T) {
	t.Skipf("deployment guidance (protect tokens behind TLS terminators): not observable from outside")
}
