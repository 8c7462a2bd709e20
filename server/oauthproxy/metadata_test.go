package oauthproxy

import (
	"net/http"
	"strings"
	"testing"
)

// ASM-01/04/05/06/07/08/09/10/11: the RFC 8414 document.
func TestASM_MetadataDocument(t *testing.T) {
	h := newHarness(t)
	r := h.get(nil, h.issuer+"/.well-known/oauth-authorization-server")
	if r.StatusCode != 200 || !strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
		t.Fatal(r.StatusCode)
	}
	m := r.json(t)
	has := func(k, v string) bool {
		for _, x := range m[k].([]any) {
			if x == v {
				return true
			}
		}
		return false
	}
	if m["issuer"] != h.issuer || m["authorization_endpoint"] != h.issuer+"/authorize" || m["token_endpoint"] != h.issuer+"/token" ||
		m["registration_endpoint"] != h.issuer+"/register" || m["revocation_endpoint"] != h.issuer+"/revoke" {
		t.Fatalf("endpoints %v", m)
	}
	if !has("response_types_supported", "code") || !has("code_challenge_methods_supported", "S256") || has("code_challenge_methods_supported", "plain") ||
		has("grant_types_supported", "implicit") || has("grant_types_supported", "password") || !has("token_endpoint_auth_methods_supported", "none") ||
		has("revocation_endpoint_auth_methods_supported", "client_secret_basic") || m["authorization_response_iss_parameter_supported"] != true ||
		!has("scopes_supported", "mcp:read") || has("scopes_supported", "offline_access") || m["client_id_metadata_document_supported"] != false {
		t.Fatalf("fields %v", m)
	}
}

// ASM-02, PRM-09: issuer byte-identical in metadata, PRM, iss and the JWT (end-to-end version in
// server/app TestE2E_FlowAgainstMockAuth0); here with a trailing-slash issuer kept verbatim.
func TestASM02_IssuerByteIdentical(t *testing.T) {
	var iss string
	h := newHarness(t, func(o *Options) { o.Issuer += "/"; iss = o.Issuer })
	if h.get(nil, h.issuer+"/.well-known/oauth-authorization-server").json(t)["issuer"] != iss {
		t.Fatal("metadata issuer differs from the configured one")
	}
	prm := h.get(nil, h.issuer+"/.well-known/oauth-protected-resource/mcp").json(t)
	if prm["authorization_servers"].([]any)[0] != iss {
		t.Fatal("PRM issuer differs")
	}
	id := h.register()
	_, loc := h.authorize(id, authorizeQuery(id, "http://127.0.0.1:5000/cb"))
	if loc.Query().Get("iss") != iss {
		t.Fatalf("iss parameter %q", loc.Query().Get("iss"))
	}
	if !strings.Contains(h.get(nil, h.issuer+"/.well-known/oauth-authorization-server").body, `"authorization_endpoint":"`+h.issuer+`/authorize"`) {
		t.Fatal("endpoint with a doubled slash")
	}
}

// ASM-03, CLI-02: an issuer with a path serves the path-inserted metadata URL; the others 404.
func TestASM03_PathInsertedIssuer(t *testing.T) {
	var iss string
	h := newHarness(t, func(o *Options) { o.Issuer += "/tenant-a"; o.Resource = o.Issuer + "/mcp"; iss = o.Issuer })
	r := h.get(nil, h.issuer+"/.well-known/oauth-authorization-server/tenant-a")
	if r.StatusCode != 200 || r.json(t)["issuer"] != iss || r.json(t)["token_endpoint"] != iss+"/token" {
		t.Fatalf("%d %s", r.StatusCode, r.body)
	}
	for _, p := range []string{"/.well-known/oauth-authorization-server", "/.well-known/openid-configuration/tenant-a", "/tenant-a/.well-known/openid-configuration"} {
		if r := h.get(nil, h.issuer+p); r.StatusCode != 404 {
			t.Errorf("%s: %d", p, r.StatusCode)
		}
	}
	if r := h.get(nil, h.issuer+"/.well-known/oauth-protected-resource/tenant-a/mcp"); r.StatusCode != 200 || r.json(t)["resource"] != iss+"/mcp" {
		t.Fatalf("PRM with path: %d", r.StatusCode)
	}
	if r := h.postJSON("/tenant-a/register", `{"redirect_uris":["http://127.0.0.1/cb"]}`); r.StatusCode != 201 {
		t.Fatalf("register under the path: %d", r.StatusCode)
	}
}

// PRM-01/02/03/05/06/07: the RFC 9728 document for the MCP resource.
func TestPRM_Document(t *testing.T) {
	h := newHarness(t)
	r := h.get(nil, h.issuer+"/.well-known/oauth-protected-resource/mcp")
	m := r.json(t)
	if r.StatusCode != 200 || m["resource"] != h.resource || m["authorization_servers"].([]any)[0] != h.issuer || m["resource_name"] != "Test MCP" {
		t.Fatalf("%v", m)
	}
	if b := m["bearer_methods_supported"].([]any); len(b) != 1 || b[0] != "header" {
		t.Fatal(b)
	}
	if strings.Contains(r.body, "offline_access") {
		t.Fatal("PRM-07: offline_access advertised")
	}
}

// PRM-10, ASM-12: other well-known variants are 404, never a wrong document; no OIDC document.
func TestPRM10_UnservedVariants404(t *testing.T) {
	h := newHarness(t)
	for _, p := range []string{"/.well-known/oauth-protected-resource", "/.well-known/openid-configuration", "/.well-known/oauth-protected-resource/other", "/.well-known/oauth-authorization-server/x"} {
		if r := h.get(nil, h.issuer+p); r.StatusCode != http.StatusNotFound {
			t.Errorf("%s: %d", p, r.StatusCode)
		}
	}
}

// SEC-03, PRM-08, ASM-13, AZ-08, CLI-17: CORS on metadata, register, token, revoke; never on authorize
// or consent.
func TestSEC03_CORS(t *testing.T) {
	h := newHarness(t)
	for _, p := range []string{"/.well-known/oauth-authorization-server", "/.well-known/oauth-protected-resource/mcp", "/register", "/token", "/revoke"} {
		req, _ := http.NewRequest(http.MethodOptions, h.issuer+p, nil)
		req.Header.Set("Origin", "https://inspector.example")
		req.Header.Set("Access-Control-Request-Method", "POST")
		r := h.do(nil, req)
		if r.StatusCode != 204 || r.Header.Get("Access-Control-Allow-Origin") != "*" {
			t.Errorf("%s preflight: %d %v", p, r.StatusCode, r.Header)
		}
	}
	id := h.register()
	for _, p := range []string{"/authorize?" + authorizeQuery(id, "http://127.0.0.1:5000/cb").Encode(), "/consent?txn=x"} {
		req, _ := http.NewRequest(http.MethodGet, h.issuer+p, nil)
		req.Header.Set("Origin", "https://evil.example")
		if r := h.do(nil, req); r.Header.Get("Access-Control-Allow-Origin") != "" {
			t.Errorf("%s has CORS", p)
		}
	}
}
