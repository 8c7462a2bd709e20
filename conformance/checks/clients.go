package checks

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"

	"github.com/cnpg-mcp/cnpg-mcp/conformance/oauthclient"
)

// C.15 Client behaviours the server must support (interop).
func clientChecks() map[string]func(*T) {
	return map[string]func(*T){
		"CLI-01": cli01, "CLI-02": cli02,
		"CLI-03": func(t *T) { t.CrossRef("ASM-02", "PRM-09") },
		"CLI-04": func(t *T) { t.CrossRef("ASM-05") },
		"CLI-05": cli05, "CLI-06": cli06, "CLI-07": cli07, "CLI-08": cli08, "CLI-09": cli09,
		"CLI-10": func(t *T) { t.CrossRef("RES-01", "RES-02", "RES-08") },
		"CLI-11": cli11,
		"CLI-12": func(t *T) { t.CrossRef("DCR-09") },
		"CLI-13": func(t *T) { t.CrossRef("AZ-14", "ASM-09") },
		"CLI-14": func(t *T) { t.CrossRef("TOK-08", "RES-06") },
		"CLI-15": cli15,
		"CLI-16": func(t *T) { t.CrossRef("RS-01", "PRM-03") },
		"CLI-17": cli17,
	}
}

// CLI-01: every PRM URL a client may try gives the same, correct document.
func cli01(t *T) {
	m, how := t.fetchPRM()
	t.Logf("first PRM hit through %s", how)
	good, _ := json.Marshal(m.Raw)
	urls, _ := oauthclient.PRMURLs(t.env.cfg.Target)
	resp := t.CallMCP("MCP initialize without a token", "")
	if ch, ok, _ := oauthclient.BearerChallenge(resp.Header.Values("WWW-Authenticate")); ok {
		if u, has := ch.Param("resource_metadata"); has {
			urls = append([]string{u}, urls...)
		}
	}
	for _, u := range urls {
		r, err := t.client.Get(t.Label("PRM candidate"), u, http.Header{"Accept": {"application/json"}})
		t.Must(err, u)
		switch {
		case r.Status == http.StatusOK && r.JSON != nil:
			got, _ := json.Marshal(r.JSON)
			if string(got) != string(good) {
				t.Errorf("%s serves a different PRM document", u)
			}
		case r.Status == http.StatusNotFound:
		default:
			t.Errorf("%s answers %s (want the document or 404)", u, r.Describe())
		}
	}
}

// CLI-02: each client generation's discovery order finds the right metadata first.
func cli02(t *T) {
	issuer := t.issuerFromPRM()
	iu, _ := url.Parse(issuer)
	p := strings.TrimSuffix(iu.EscapedPath(), "/")
	origin := iu.Scheme + "://" + iu.Host
	tu, _ := url.Parse(t.env.cfg.Target)
	orders := map[string][]string{
		"MCP 2025-11-25 and later":                  nil,
		"MCP 2025-06-18 (RFC 8414 only)":            {origin + "/.well-known/oauth-authorization-server" + p},
		"MCP 2025-03-26 (the MCP origin is the AS)": {tu.Scheme + "://" + tu.Host + "/.well-known/oauth-authorization-server"},
	}
	orders["MCP 2025-11-25 and later"], _ = oauthclient.ASMetadataURLs(issuer)
	for gen, urls := range orders {
		found := false
		for _, u := range urls {
			m, resp, err := t.client.FetchASMetadata(t.Label("%s discovery", gen), u)
			if err != nil {
				if resp != nil && resp.Status == http.StatusOK {
					t.Errorf("%s: %s answers 200 with something that is not metadata", gen, u)
				}
				continue
			}
			found = true
			if m.Issuer != issuer {
				t.Errorf("%s: the first document found (%s) names issuer %q, not %q", gen, u, m.Issuer, issuer)
			}
			break
		}
		if !found {
			if strings.HasPrefix(gen, "MCP 2025-03-26") && (tu.Host != iu.Host) {
				t.Logf("%s: no metadata at the MCP origin (the AS is elsewhere; such clients cannot work)", gen)
			} else {
				t.Errorf("%s clients find no metadata (tried %v)", gen, urls)
			}
		}
	}
}

// CLI-05: if CIMD is advertised it works end to end.
func cli05(t *T) {
	if v, _ := t.AS().Bool("client_id_metadata_document_supported"); !v {
		t.Logf("CIMD is not advertised; clients fall back to DCR")
		if t.AS().RegistrationEndpoint == "" {
			t.Errorf("neither CIMD nor DCR is offered: clients without pre-registration cannot connect")
		}
		return
	}
	t.CrossRef("CIMD-01")
}

// CLI-06: cached client IDs after data loss: 401 invalid_client at /token, an error page at /authorize.
func cli06(t *T) {
	t.CrossRef("AZ-02", "TOK-11")
}

// CLI-07: loopback redirects may come back on another port (localhost and 127.0.0.1).
func cli07(t *T) {
	port, err := t.env.redirect.AddPort()
	t.Must(err, "open another loopback port")
	c := t.RegisterClient(nil)
	alt := c.Endpoint.WithPort(port)
	r := t.Authorize(Flow{Client: c, RedirectURI: ptr(alt), Name: "redirect on another port", Subject: true})
	if u, _ := url.Parse(r.Response.URL); u == nil || u.Port() != itoa(port) {
		t.Errorf("the code was delivered to %s, not to the requested port %d", r.Response.URL, port)
	}
	lh := t.env.redirect.NewEndpointHost("localhost")
	c2 := t.RegisterClient(func(m map[string]any) { m["redirect_uris"] = []string{lh.URI()} })
	c2.Endpoint, c2.RedirectURI = lh, lh.URI()
	altLH := lh.WithPort(port)
	p := t.ProbeAuthorize("localhost redirect on another port", t.AuthParams(&Flow{Client: c2, RedirectURI: ptr(altLH)}), nil, altLH)
	if p.refused() || p.Kind == ServerError {
		t.Errorf("http://localhost redirect on another port was refused (%s)", p.Describe())
	}
}

// CLI-08: Claude's hosted redirect URIs register and match exactly.
func cli08(t *T) {
	uris := []string{"https://claude.ai/api/mcp/auth_callback", "https://claude.com/api/mcp/auth_callback"}
	// Registering these URIs is this row's subject, not a precondition: a refusal (a redirect
	// allow-list, an https policy) fails it, as it keeps Claude from connecting.
	// (Without dynamic registration the client is a metadata document, as in every row.)
	var c *Client
	if t.AS().RegistrationEndpoint == "" {
		c = t.RegisterClient(func(m map[string]any) { m["redirect_uris"] = uris; m["client_name"] = "claudeai" })
	} else {
		ep := t.env.redirect.NewEndpoint()
		meta := oauthclient.PublicClientMetadata("claudeai", ep.URI())
		meta["redirect_uris"] = uris
		reg, resp, err := t.client.Register(t.Label("register Claude's hosted redirect URIs"), t.registration(), meta)
		t.inconclusiveIfRateLimited("register Claude's hosted redirect URIs", resp)
		if err != nil {
			t.Errorf("Claude's hosted redirect URIs cannot be registered (%v): claude.ai and claude.com cannot connect", err)
			return
		}
		c = &Client{ID: reg.ClientID, RedirectURI: ep.URI(), Endpoint: ep, Reg: reg, Metadata: meta, AuthMethod: "none"}
	}
	for _, u := range uris {
		p := t.ProbeAuthorize("Claude redirect URI", t.AuthParams(&Flow{Client: c, RedirectURI: ptr(u)}), nil, u)
		if p.refused() || p.Kind == ServerError {
			t.Errorf("the registered %s was refused (%s)", u, p.Describe())
		}
		bad := u + "/"
		p = t.ProbeAuthorize("Claude redirect URI with a trailing slash", t.AuthParams(&Flow{Client: c, RedirectURI: ptr(bad)}), nil, bad, u)
		if p.Kind != Rejected {
			t.Errorf("%s (not registered) was not refused with an error page (%s)", bad, p.Describe())
		}
	}
}

// CLI-09: private-use schemes (Cursor): report the policy.
func cli09(t *T) {
	resp := t.register("register cursor://", t.loopbackMeta(func(m map[string]any) {
		m["redirect_uris"] = []string{"cursor://anysphere.cursor-retrieval/oauth/user-mcp/callback"}
	}))
	if resp.Status == http.StatusCreated || resp.Status == http.StatusOK {
		t.Logf("policy: private-use scheme redirect URIs (cursor://) are accepted")
	} else {
		t.Logf("policy: private-use scheme redirect URIs are refused (%s); Cursor-style clients cannot register", resp.Describe())
	}
}

// CLI-11: Claude's scope "claudeai" does not break registration or authorization.
func cli11(t *T) {
	resp := t.register("register with scope claudeai", t.loopbackMeta(func(m map[string]any) { m["scope"] = "claudeai" }))
	if resp.Status != http.StatusCreated && resp.Status != http.StatusOK {
		t.Errorf("registration with scope \"claudeai\" failed (%s)", resp.Describe())
		return
	}
	c := t.RegisterClient(nil)
	params := t.AuthParams(&Flow{Client: c})
	params.Set("scope", "claudeai")
	p := t.ProbeAuthorize("authorize with scope claudeai", params, nil, c.RedirectURI)
	if p.Kind == Rejected || p.Kind == ServerError {
		t.Errorf("authorization with scope \"claudeai\" failed hard (%s)", p.Describe())
	} else if p.Kind == ClientRedirect {
		t.Warnf("authorization with scope \"claudeai\" answered error=%s", p.Client.Get("error"))
	}
}

// CLI-15: the status used for invalid_grant (reported), never 5xx.
func cli15(t *T) {
	defer t.gradeRecordedForms(tokenErrors, true)
	c := t.RegisterClient(nil)
	resp := t.Token("redeem a bogus code", t.bogusCodeForm(c))
	if resp.Status >= 500 {
		t.Errorf("invalid_grant answered %s", resp.Describe())
		return
	}
	t.Logf("invalid_grant is answered with HTTP %d", resp.Status)
	if resp.Status == http.StatusUnauthorized {
		t.Warnf("invalid_grant is answered with 401 (OAuth says 400; some clients loop on one or the other)")
	}
}

// CLI-17: browser clients: CORS on PRM/metadata/register/token, WWW-Authenticate exposed at the MCP endpoint.
func cli17(t *T) {
	m, _ := t.fetchPRM()
	as := t.AS()
	for name, u := range map[string]string{"PRM": m.URL, "AS metadata": as.URL} {
		r, err := t.client.Get(t.Label("cross-origin GET of the %s", name), u, http.Header{"Origin": {testOrigin}})
		t.Must(err, name)
		if !corsAllowed(r, testOrigin) {
			t.Warnf("the %s is not readable cross-origin", name)
		}
	}
	for name, u := range map[string]string{"registration": as.RegistrationEndpoint, "token": as.TokenEndpoint} {
		if u == "" {
			continue
		}
		r, err := t.client.Options(t.Label("CORS preflight to the %s endpoint", name), u, testOrigin, http.MethodPost, "content-type")
		t.Must(err, name)
		if !corsAllowed(r, testOrigin) {
			t.Warnf("the %s endpoint does not allow cross-origin calls", name)
		}
	}
	r, err := t.client.CallMCP(t.Label("cross-origin MCP request without a token"), t.env.cfg.Target, oauthclient.MCPCall{Header: http.Header{"Origin": {testOrigin}}})
	t.Must(err, "MCP")
	if corsAllowed(r, testOrigin) && !strings.Contains(strings.ToLower(r.Header.Get("Access-Control-Expose-Headers")), "www-authenticate") {
		t.Warnf("the MCP endpoint allows the origin but does not expose WWW-Authenticate to scripts")
	}
	if !corsAllowed(r, testOrigin) {
		t.Logf("the MCP endpoint does not allow the foreign origin %s (expected when Origin is validated, RS-13)", testOrigin)
	}
}
