package checks

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"

	"github.com/cnpg-mcp/cnpg-mcp/conformance/oauthclient"
)

// C.5 Dynamic Client Registration (RFC 7591).
func dcrChecks() map[string]func(*T) {
	return map[string]func(*T){
		"DCR-01": dcr01, "DCR-02": dcr02, "DCR-03": dcr03, "DCR-04": dcr04, "DCR-05": dcr05, "DCR-06": dcr06,
		"DCR-07": dcr07, "DCR-08": dcr08, "DCR-09": dcr09, "DCR-10": dcr10, "DCR-11": dcr11, "DCR-12": dcr12,
		"DCR-13": dcr13,
	}
}

// registration returns the registration endpoint or skips.
func (t *T) registration() string {
	as := t.AS()
	if as.RegistrationEndpoint == "" {
		t.Skipf("the authorization server offers no dynamic client registration")
	}
	return as.RegistrationEndpoint
}

// register posts metadata and returns the response (no judgement).
func (t *T) register(label string, meta map[string]any) *oauthclient.Response {
	resp, err := t.client.PostJSON(t.Label("%s", label), t.registration(), meta, http.Header{"Accept": {"application/json"}})
	t.Must(err, label)
	t.inconclusiveIfRateLimited(label, resp)
	return resp
}

// loopbackMeta is a standard public loopback client registration body.
func (t *T) loopbackMeta(mod func(map[string]any)) map[string]any {
	m := oauthclient.PublicClientMetadata("mcp-auth-conformance "+t.entry.ID, t.env.redirect.NewEndpoint().URI())
	if mod != nil {
		mod(m)
	}
	return m
}

// expectRegistrationError: the registration must be refused (registered fails the row); the
// refusal's form — 400 with a JSON error from the RFC 7591 list — is DCR-03's requirement: another
// row warns and DCR-03 fails for it (see wrongForm).
func (t *T) expectRegistrationError(what string, resp *oauthclient.Response, codes ...string) {
	if resp.Status == http.StatusCreated || resp.Status == http.StatusOK {
		t.Errorf("%s: registered (%s); it must be refused", what, resp.Describe())
		return
	}
	if resp.Status >= 500 {
		t.wrongForm(registrationErrors, true, what, fmt.Sprintf("with %s instead of an RFC 7591 error", resp.Describe()))
		return
	}
	if resp.Status != http.StatusBadRequest {
		t.wrongForm(registrationErrors, false, what, fmt.Sprintf("with HTTP %d, want 400 (RFC 7591 §3.2.2)", resp.Status))
	}
	if resp.JSON == nil || resp.ErrorCode() == "" {
		t.wrongForm(registrationErrors, false, what, fmt.Sprintf("the error response is not JSON with an error code (%s)", resp.Describe()))
		return
	}
	if len(codes) > 0 && !slices.Contains(codes, resp.ErrorCode()) {
		t.Warnf("%s: error=%s, expected %v", what, resp.ErrorCode(), codes)
	}
}

// DCR-01: a public loopback client registers: 201, JSON, client_id.
func dcr01(t *T) {
	resp := t.register("register a public loopback client", t.loopbackMeta(nil))
	if resp.Status != http.StatusCreated {
		t.Errorf("registration answered %s, want 201 Created", resp.Describe())
	}
	if resp.MediaType() != "application/json" {
		t.Errorf("registration response is %q, not application/json", resp.MediaType())
	}
	if resp.Str("client_id") == "" {
		t.Errorf("registration response has no client_id")
	}
}

// DCR-02: the response returns the registered metadata, including replaced values; a secret
// comes with client_secret_expires_at.
func dcr02(t *T) {
	meta := t.loopbackMeta(func(m map[string]any) { m["token_endpoint_auth_method"] = "client_secret_post" })
	resp := t.register("register asking for client_secret_post", meta)
	if resp.Status != http.StatusCreated && resp.Status != http.StatusOK {
		t.Logf("the AS refused client_secret_post (%s); registering a public client instead", resp.Describe())
		meta = t.loopbackMeta(nil)
		resp = t.register("register a public client", meta)
		if resp.Status != http.StatusCreated && resp.Status != http.StatusOK {
			t.Inconclusive("register a public loopback client", resp.Describe(), "", "DCR-01")
		}
	}
	method := resp.Str("token_endpoint_auth_method")
	if !resp.Has("token_endpoint_auth_method") {
		t.Errorf("the response does not say which token_endpoint_auth_method was registered")
	}
	if resp.Str("client_secret") != "" {
		if !resp.Has("client_secret_expires_at") {
			t.Errorf("a client_secret was issued without client_secret_expires_at (RFC 7591 §3.2.1: REQUIRED)")
		}
	} else if method != "none" && method != "" && method != "private_key_jwt" {
		t.Errorf("token_endpoint_auth_method is %q but no client_secret was issued", method)
	}
	if ru, ok := resp.JSON["redirect_uris"].([]any); !ok || len(ru) == 0 {
		t.Errorf("the response does not return redirect_uris")
	}
}

// DCR-03: errors are 400 JSON with RFC 7591 codes: its own probes, and every refusal of the wrong
// form the other registration rows saw.
func dcr03(t *T) {
	defer t.gradeRecordedForms(registrationErrors, false)
	t.expectRegistrationError("no redirect_uris", t.register("register without redirect_uris", t.loopbackMeta(func(m map[string]any) { delete(m, "redirect_uris") })),
		"invalid_redirect_uri", "invalid_client_metadata")
	resp, err := t.client.PostRaw(t.Label("register with malformed JSON"), t.registration(), "application/json", `{"redirect_uris": [`, nil)
	t.Must(err, "malformed JSON")
	t.expectRegistrationError("malformed JSON", resp, "invalid_client_metadata", "invalid_request")
	t.expectRegistrationError("a redirect URI that is not a URI", t.register("register with a non-URI redirect", t.loopbackMeta(func(m map[string]any) { m["redirect_uris"] = []string{"not a uri"} })),
		"invalid_redirect_uri", "invalid_client_metadata")
}

// DCR-04: only https or loopback redirect URIs.
func dcr04(t *T) {
	t.expectRegistrationError("http://evil.example/cb", t.register("register an http non-loopback redirect", t.loopbackMeta(func(m map[string]any) {
		m["redirect_uris"] = []string{"http://conformance-evil.example/cb"}
	})), "invalid_redirect_uri", "invalid_client_metadata")
}

// DCR-05: dangerous schemes are refused.
func dcr05(t *T) {
	for _, u := range []string{"javascript:alert(1)//", "data:text/html,<script>alert(1)</script>", "file:///etc/passwd", "vbscript:msgbox(1)"} {
		t.expectRegistrationError(u, t.register("register "+u, t.loopbackMeta(func(m map[string]any) { m["redirect_uris"] = []string{u} })),
			"invalid_redirect_uri", "invalid_client_metadata")
	}
}

// DCR-06: redirect URIs are absolute and have no fragment.
func dcr06(t *T) {
	for _, u := range []string{"https://conformance-client.example/cb#x", "/cb", "127.0.0.1/cb"} {
		t.expectRegistrationError(u, t.register("register "+u, t.loopbackMeta(func(m map[string]any) { m["redirect_uris"] = []string{u} })),
			"invalid_redirect_uri", "invalid_client_metadata")
	}
	ep := t.env.redirect.NewEndpoint()
	t.expectRegistrationError("loopback with a fragment", t.register("register a loopback URI with a fragment", t.loopbackMeta(func(m map[string]any) {
		m["redirect_uris"] = []string{ep.URI() + "#frag"}
	})), "invalid_redirect_uri", "invalid_client_metadata")
}

// DCR-07: private-use schemes should be reverse-domain names.
func dcr07(t *T) {
	resp := t.register("register myapp://cb", t.loopbackMeta(func(m map[string]any) { m["redirect_uris"] = []string{"myapp://cb"} }))
	if resp.Status == http.StatusCreated || resp.Status == http.StatusOK {
		t.Warnf("myapp://cb (a private-use scheme that is not a reverse domain name) was accepted (OAuth 2.1 §2.3.1: SHOULD be refused)")
	}
	resp = t.register("register com.example.app:/cb", t.loopbackMeta(func(m map[string]any) { m["redirect_uris"] = []string{"com.example.app:/cb"} }))
	if resp.Status != http.StatusCreated && resp.Status != http.StatusOK {
		t.Warnf("com.example.app:/cb (a reverse-domain private-use scheme) was refused (%s): native apps such as Cursor cannot register", resp.Describe())
	}
}

// DCR-08: unknown metadata fields are ignored.
func dcr08(t *T) {
	resp := t.register("register with an unknown field", t.loopbackMeta(func(m map[string]any) {
		m["x_conformance_unknown"] = 1
		m["resource"] = t.Resource() // mcp-go's client sends this non-standard field
	}))
	if resp.Status != http.StatusCreated && resp.Status != http.StatusOK {
		t.Errorf("a registration with unknown fields was refused (%s); RFC 7591 §2 says ignore them", resp.Describe())
	}
}

// DCR-09: application_type rules: web ⇒ https non-loopback (the MUST binds clients: a server
// that accepts web + loopback gets a warning); absent or native + loopback must work.
func dcr09(t *T) {
	ep := t.env.redirect.NewEndpoint()
	resp := t.register("register application_type web with a loopback URI", t.loopbackMeta(func(m map[string]any) {
		m["application_type"] = "web"
		m["redirect_uris"] = []string{ep.URI()}
	}))
	if resp.Status == http.StatusCreated || resp.Status == http.StatusOK {
		t.Warnf("application_type web with http://127.0.0.1 was registered (%s); OpenID Registration §2 says web clients use https non-loopback redirects (the MCP MUST binds clients, so this is reported, not failed)", resp.Describe())
	} else {
		t.expectRegistrationError("application_type web with http://127.0.0.1", resp, "invalid_redirect_uri", "invalid_client_metadata")
	}
	for _, at := range []string{"", "native"} {
		resp := t.register("register a loopback client with application_type "+at, t.loopbackMeta(func(m map[string]any) {
			if at != "" {
				m["application_type"] = at
			}
		}))
		if resp.Status != http.StatusCreated && resp.Status != http.StatusOK {
			t.Errorf("a loopback client with application_type %q was refused: %s", at, resp.Describe())
		}
	}
}

// DCR-10: an unknown client at /token gets invalid_client (401 preferred, so clients re-register;
// 400 allowed without an Authorization header: a warning).
func dcr10(t *T) {
	form := url.Values{"grant_type": {"authorization_code"}, "code": {"conformance-bogus-code"}, "client_id": {"conformance-unknown-client-" + oauthclient.RandomString(6)},
		"code_verifier": {oauthclient.NewVerifier()}, "redirect_uri": {t.env.redirect.NewEndpoint().URI()}}
	resp := t.Token("token request from an unknown client", form)
	t.gradeUnknownClient("an unknown client_id at /token", resp, false)
	if t.env.cfg.SecondInstance == "" {
		t.Logf("persistence across restarts/replicas is checked by PXY-17 when --second-instance is set")
	}
}

// DCR-11: an unknown scope at registration is either substituted (pass) or refused (warn).
func dcr11(t *T) {
	resp := t.register("register with scope claudeai", t.loopbackMeta(func(m map[string]any) { m["scope"] = "claudeai" }))
	switch {
	case resp.Status == http.StatusCreated || resp.Status == http.StatusOK:
		t.Logf("registered; scope returned: %q", resp.Str("scope"))
	case resp.Status == http.StatusBadRequest:
		t.Warnf("registration with scope \"claudeai\" was refused (%s); Claude.ai registered this way", resp.Describe())
	default:
		t.Errorf("registration with an unknown scope got %s", resp.Describe())
	}
}

// DCR-12: grant_types and response_types are consistent.
func dcr12(t *T) {
	resp := t.register("register with grant_types [client_credentials]", t.loopbackMeta(func(m map[string]any) {
		m["grant_types"] = []string{"client_credentials"}
		delete(m, "response_types")
	}))
	if resp.Status == http.StatusCreated || resp.Status == http.StatusOK {
		gts, _ := resp.JSON["grant_types"].([]any)
		for _, g := range gts {
			if g == "client_credentials" {
				t.Errorf("a public client was registered with grant_types %v (client_credentials needs a confidential client)", gts)
			}
		}
	}
	resp = t.register("register grant_types [authorization_code] with response_types [token]", t.loopbackMeta(func(m map[string]any) {
		m["grant_types"] = []string{"authorization_code"}
		m["response_types"] = []string{"token"}
	}))
	if resp.Status == http.StatusCreated || resp.Status == http.StatusOK {
		rts, _ := resp.JSON["response_types"].([]any)
		if slices.Contains(rts, any("token")) {
			t.Errorf("the AS registered response_types [token] (the implicit grant)")
		}
	}
}

// DCR-13: a client registered with token_endpoint_auth_method none gets no client_secret (RFC 7591
// §2, §3.2.1: a secret is for confidential clients; one issued to a public client invites its use
// and its leak).
func dcr13(t *T) {
	resp := t.register("register a public client (token_endpoint_auth_method none)", t.loopbackMeta(nil))
	if resp.Status != http.StatusCreated && resp.Status != http.StatusOK {
		t.Inconclusive("register a public loopback client", resp.Describe(), "", "DCR-01")
	}
	if sec := resp.Str("client_secret"); sec != "" {
		t.Errorf("a client registered with token_endpoint_auth_method none was issued a client_secret (token_endpoint_auth_method in the response: %q): public clients must get none", resp.Str("token_endpoint_auth_method"))
	}
}
