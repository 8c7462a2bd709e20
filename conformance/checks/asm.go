package checks

import (
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/cnpg-mcp/cnpg-mcp/conformance/oauthclient"
)

// C.4 Authorization-server metadata and discovery.
func asmChecks() map[string]func(*T) {
	return map[string]func(*T){
		"ASM-01": asm01, "ASM-02": asm02, "ASM-03": asm03, "ASM-04": asm04, "ASM-05": asm05, "ASM-06": asm06,
		"ASM-07": asm07, "ASM-08": asm08, "ASM-09": asm09, "ASM-10": asm10, "ASM-11": asm11, "ASM-12": asm12,
		"ASM-13": asm13, "ASM-15": asm15,
	}
}

// issuerFromPRM returns the first authorization server of the PRM.
func (t *T) issuerFromPRM() string {
	m, _ := t.fetchPRM()
	if len(m.AuthorizationServers) == 0 {
		t.Inconclusive("read the authorization server from the protected-resource metadata", "the PRM lists no authorization_servers", "", "PRM-02")
	}
	return m.AuthorizationServers[0]
}

// discoverAS runs the client discovery order for the PRM's issuer with this check's evidence.
func (t *T) discoverAS() (*oauthclient.ASMetadata, []oauthclient.Probe) {
	issuer := t.issuerFromPRM()
	m, probes, err := t.client.DiscoverAS(t.Label("discover the authorization server"), issuer)
	if err != nil {
		var parts []string
		for _, p := range probes {
			parts = append(parts, describeFetch(p.URL, p.Resp, p.Err))
		}
		t.Inconclusive("discover the metadata of "+issuer, strings.Join(parts, "; "), "", "ASM-01")
	}
	return m, probes
}

// ASM-01: the AS publishes discovery metadata where clients look for it.
func asm01(t *T) {
	m, probes := t.discoverAS()
	t.Logf("metadata found at %s after %d probe(s)", m.URL, len(probes))
	if resp := probes[len(probes)-1].Resp; resp != nil && resp.MediaType() != "application/json" {
		t.Errorf("the metadata at %s is served as %q, not application/json", m.URL, resp.MediaType())
	}
}

// ASM-02: issuer is byte-identical to the issuer the URL was built from.
func asm02(t *T) {
	issuer := t.issuerFromPRM()
	m, _ := t.discoverAS()
	if m.Issuer != issuer {
		t.Errorf("metadata issuer %q is not the PRM's authorization server %q (byte for byte)", m.Issuer, issuer)
	}
}

// ASM-03: the well-known URLs for the issuer follow RFC 8414 §3 path insertion; the ones not
// served answer 404 (or serve the same document).
func asm03(t *T) {
	issuer := t.issuerFromPRM()
	m, _ := t.discoverAS()
	urls, err := oauthclient.ASMetadataURLs(issuer)
	t.Must(err, "build the discovery URLs")
	u, _ := url.Parse(issuer)
	if p := strings.Trim(u.Path, "/"); p == "" {
		// Without a path, a path-appended document under the issuer must not be a different one.
		urls = append(urls, strings.TrimSuffix(issuer, "/")+"/.well-known/oauth-authorization-server/conformance-no-such-issuer")
	}
	for _, v := range urls {
		if v == m.URL {
			continue
		}
		resp, err := t.client.Get(t.Label("probe a discovery URL"), v, http.Header{"Accept": {"application/json"}})
		t.Must(err, "probe "+v)
		switch {
		case resp.Status == http.StatusOK && resp.JSON != nil:
			if iss, _ := resp.JSON["issuer"].(string); iss != m.Issuer {
				t.Errorf("%s serves metadata for issuer %q; a client trying it first would use the wrong issuer", v, iss)
			}
		case resp.Status == http.StatusOK:
			t.Errorf("%s answers 200 with %q instead of 404", v, resp.MediaType())
		case resp.Status >= 500:
			t.Errorf("%s answers %s", v, resp.Describe())
		}
	}
}

// ASM-04: required fields.
func asm04(t *T) {
	m, _ := t.discoverAS()
	for _, f := range []string{"issuer", "authorization_endpoint", "token_endpoint", "response_types_supported"} {
		if !m.Has(f) {
			t.Errorf("metadata lacks %s (RFC 8414 §2)", f)
		}
	}
	if !slices.Contains(m.ResponseTypesSupported, "code") {
		t.Errorf("response_types_supported %v does not contain code", m.ResponseTypesSupported)
	}
}

// ASM-05: code_challenge_methods_supported contains S256 (also in the OIDC document if served).
func asm05(t *T) {
	m, _ := t.discoverAS()
	if !m.Has("code_challenge_methods_supported") {
		t.Fatalf("metadata has no code_challenge_methods_supported; MCP clients MUST refuse to proceed")
	}
	if !slices.Contains(m.CodeChallengeMethodsSupported, "S256") {
		t.Errorf("code_challenge_methods_supported %v lacks S256", m.CodeChallengeMethodsSupported)
	}
	if slices.Contains(m.CodeChallengeMethodsSupported, "plain") {
		t.Warnf("code_challenge_methods_supported offers plain")
	}
	if oidc := t.oidcDocument(); oidc != nil && !slices.Contains(oidc.CodeChallengeMethodsSupported, "S256") {
		t.Errorf("the OpenID configuration at %s lacks code_challenge_methods_supported S256", oidc.URL)
	}
}

// oidcDocument returns the issuer's OpenID configuration when one is served.
func (t *T) oidcDocument() *oauthclient.ASMetadata {
	issuer := t.issuerFromPRM()
	u, _ := url.Parse(issuer)
	origin := u.Scheme + "://" + u.Host
	p := strings.TrimSuffix(u.EscapedPath(), "/")
	for _, v := range []string{origin + "/.well-known/openid-configuration" + p, strings.TrimSuffix(issuer, "/") + "/.well-known/openid-configuration"} {
		m, resp, err := t.client.FetchASMetadata(t.Label("probe the OpenID configuration"), v)
		if err == nil {
			return m
		}
		if resp != nil && resp.Status == http.StatusOK {
			t.Errorf("%s answers 200 with something that is not a JSON object", v)
		}
	}
	return nil
}

// ASM-06: grant_types_supported is explicit and has neither implicit nor password.
func asm06(t *T) {
	m, _ := t.discoverAS()
	if !m.Has("grant_types_supported") {
		t.Errorf("grant_types_supported is absent; RFC 8414's default includes implicit")
		return
	}
	for _, g := range []string{"implicit", "password"} {
		if slices.Contains(m.GrantTypesSupported, g) {
			t.Errorf("grant_types_supported advertises %s", g)
		}
	}
}

// ASM-07: token_endpoint_auth_methods_supported is explicit and truthful (none for public clients).
func asm07(t *T) {
	m, _ := t.discoverAS()
	if !m.Has("token_endpoint_auth_methods_supported") {
		t.Errorf("token_endpoint_auth_methods_supported is absent (RFC 8414's default is client_secret_basic)")
		return
	}
	if m.RegistrationEndpoint == "" {
		return
	}
	c := t.RegisterClient(nil)
	method := c.Reg.TokenEndpointAuthMethod
	if method == "" {
		method = "client_secret_basic"
	}
	if !slices.Contains(m.TokenEndpointAuthMethodsSupported, method) {
		t.Errorf("a registered client got token_endpoint_auth_method %q, which token_endpoint_auth_methods_supported %v does not list", method, m.TokenEndpointAuthMethodsSupported)
	}
}

// ASM-08: registration_endpoint is advertised iff DCR works; CIMD support iff CIMD works.
func asm08(t *T) {
	m, _ := t.discoverAS()
	if m.RegistrationEndpoint != "" {
		ep := t.env.redirect.NewEndpoint()
		if _, resp, err := t.client.Register(t.Label("register a client"), m.RegistrationEndpoint, oauthclient.PublicClientMetadata("mcp-auth-conformance ASM-08", ep.URI())); err != nil {
			t.Errorf("registration_endpoint is advertised but registering a standard public client failed: %s", describeFetch(m.RegistrationEndpoint, resp, err))
		}
	}
	if v, present := m.Bool("client_id_metadata_document_supported"); present && v {
		if t.env.cfg.CIMD == nil {
			t.Logf("client_id_metadata_document_supported is advertised; CIMD-01 checks that it works when --cimd-base-url is set")
		} else if res, ok := t.env.Result("CIMD-01"); ok && res.Status == "fail" {
			t.Errorf("client_id_metadata_document_supported is true but CIMD-01 failed")
		}
	}
}

// ASM-09: authorization_response_iss_parameter_supported is true iff iss is sent. The responses
// compared are an error response (when the AS redirects one without a login) and the success
// response of the run's shared grant: an AS that shows errors as a page still has one.
func asm09(t *T) {
	m, _ := t.discoverAS()
	advertised, _ := m.Bool("authorization_response_iss_parameter_supported")
	type seen struct {
		what string
		iss  bool
	}
	var responses []seen
	c := t.RegisterClient(nil)
	params := t.AuthParams(&Flow{Client: c})
	params.Set("response_type", "conformance_bogus")
	if p := t.ProbeAuthorize("authorization request with an unsupported response_type", params, nil, c.RedirectURI); p.Kind == ClientRedirect {
		responses = append(responses, seen{"the error response to an unsupported response_type", p.Client.Has("iss")})
	} else {
		t.Logf("an unsupported response_type got no redirect (%s); the success response is compared", p.Describe())
	}
	g := t.SharedGrant()
	responses = append(responses, seen{"the success response of the run's authorization", g.Flow.Response.Has("iss")})
	for _, r := range responses {
		switch {
		case advertised && !r.iss:
			t.Errorf("metadata says authorization_response_iss_parameter_supported, but %s has no iss", r.what)
		case !advertised && r.iss:
			t.Errorf("%s carries iss but metadata does not advertise authorization_response_iss_parameter_supported", r.what)
		}
	}
}

// ASM-10: advertised endpoints are https (loopback excepted), without fragments; revocation auth
// methods are truthful for the client types the AS registers.
func asm10(t *T) {
	m, _ := t.discoverAS()
	for _, f := range []string{"issuer", "authorization_endpoint", "token_endpoint", "registration_endpoint", "revocation_endpoint", "jwks_uri", "introspection_endpoint", "userinfo_endpoint"} {
		v, ok := m.Raw[f].(string)
		if !ok || v == "" {
			continue
		}
		if p := checkEndpointURL(v); p != "" {
			t.Errorf("%s: %s", f, p)
		}
	}
	// Truthful revocation auth methods: a client the server registers must be able to use one.
	if rm := m.RevocationEndpointAuthMethodsSupported; m.RevocationEndpoint != "" && m.Has("revocation_endpoint_auth_methods_supported") && m.RegistrationEndpoint != "" {
		usable := false
		for _, x := range rm {
			usable = usable || slices.Contains(m.TokenEndpointAuthMethodsSupported, x) || (x == "none" && !m.Has("token_endpoint_auth_methods_supported"))
		}
		if !usable {
			t.Errorf("revocation_endpoint_auth_methods_supported %v lists no method the server registers clients with (token_endpoint_auth_methods_supported %v): no registered client can revoke", rm, m.TokenEndpointAuthMethodsSupported)
		}
	}
}

// ASM-11: scopes_supported present.
func asm11(t *T) {
	m, _ := t.discoverAS()
	if !m.Has("scopes_supported") {
		t.Errorf("metadata has no scopes_supported (RECOMMENDED; clients add offline_access only when listed)")
	}
}

// ASM-12: an OpenID configuration, if served, is a valid OIDC provider document.
func asm12(t *T) {
	oidc := t.oidcDocument()
	if oidc == nil {
		t.Logf("no OpenID configuration is served (fine)")
		return
	}
	for _, f := range []string{"jwks_uri", "subject_types_supported", "id_token_signing_alg_values_supported", "issuer", "authorization_endpoint"} {
		if !oidc.Has(f) {
			t.Errorf("the OpenID configuration at %s lacks %s: serve a valid OIDC document or none", oidc.URL, f)
		}
	}
	m, _ := t.discoverAS()
	if oidc.Issuer != m.Issuer {
		t.Errorf("the OpenID configuration names issuer %q, the RFC 8414 metadata %q", oidc.Issuer, m.Issuer)
	}
}

// ASM-13: metadata reachable cross-origin (MAY: warn when not).
func asm13(t *T) {
	m, _ := t.discoverAS()
	resp, err := t.client.Get(t.Label("cross-origin GET of the metadata"), m.URL, http.Header{"Origin": {testOrigin}})
	t.Must(err, "cross-origin GET")
	if !corsAllowed(resp, testOrigin) {
		t.Warnf("the metadata is not readable cross-origin (no Access-Control-Allow-Origin); browser-based clients cannot discover the AS")
	}
}

// ASM-15: no member shadows a registered one under another spelling (code_challenge_methods for
// code_challenge_methods_supported).
func asm15(t *T) {
	m, _ := t.discoverAS()
	t.gradeShadows("the AS metadata", m.Raw, asMembers)
}
