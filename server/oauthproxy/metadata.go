package oauthproxy

import (
	"net/http"
	"net/url"
	"strings"
)

// RFC 8414 authorization-server metadata and RFC 9728 protected-resource metadata.
//
//	ASM-01/04/05/06/07/08/09/10/11  TestASM_MetadataDocument
//	ASM-02, PRM-09, CLI-03          TestASM02_IssuerByteIdentical (issuer = PRM entry = iss = JWT iss)
//	ASM-03, CLI-02                  TestASM03_PathInsertedIssuer (issuer with a path)
//	ASM-12, PRM-10                  TestPRM10_UnservedVariants404 (no openid-configuration: we are not an OP)
//	PRM-01/02/03/05/06/07           TestPRM_Document
//	PRM-08, ASM-13, SEC-03          TestSEC03_CORS
//
// The metadata lives at /.well-known/oauth-authorization-server with the issuer's path appended when
// it has one (RFC 8414 §3); the protected-resource metadata at /.well-known/oauth-protected-resource
// with the MCP resource's path appended (RFC 9728 §3). Other variants are not served (404).

func pathOf(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return ""
	}
	return strings.TrimSuffix(u.EscapedPath(), "/")
}

func (p *Proxy) metadataPath() string {
	return "/.well-known/oauth-authorization-server" + pathOf(p.o.Issuer)
}

func (p *Proxy) prmPath() string {
	return "/.well-known/oauth-protected-resource" + pathOf(p.o.Resource)
}

// ProtectedResourceMetadataURL is the absolute URL to put in WWW-Authenticate resource_metadata.
func (p *Proxy) ProtectedResourceMetadataURL() string { return p.Endpoints().ProtectedResource }

func (p *Proxy) serveMetadata(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD, OPTIONS")
		writeJSON(w, http.StatusMethodNotAllowed, oauthError{Error: "invalid_request", Description: "use GET"})
		return
	}
	e := p.Endpoints()
	m := map[string]any{
		"issuer":                                         p.o.Issuer,
		"authorization_endpoint":                         e.Authorize,
		"token_endpoint":                                 e.Token,
		"registration_endpoint":                          e.Register,
		"revocation_endpoint":                            e.Revoke,
		"response_types_supported":                       []string{"code"},
		"response_modes_supported":                       []string{"query"},
		"grant_types_supported":                          []string{"authorization_code", "refresh_token"},
		"code_challenge_methods_supported":               []string{"S256"},
		"token_endpoint_auth_methods_supported":          []string{"none"},
		"revocation_endpoint_auth_methods_supported":     []string{"none"},
		"scopes_supported":                               p.o.ScopesSupported,
		"authorization_response_iss_parameter_supported": true,
		"client_id_metadata_document_supported":          p.o.CIMD != nil,
	}
	w.Header().Set("Cache-Control", "public, max-age=300")
	w.Header().Set("Content-Type", "application/json")
	writeRaw(w, m)
}

func (p *Proxy) serveProtectedResource(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD, OPTIONS")
		writeJSON(w, http.StatusMethodNotAllowed, oauthError{Error: "invalid_request", Description: "use GET"})
		return
	}
	m := map[string]any{
		"resource":                 p.o.Resource,
		"authorization_servers":    []string{p.o.Issuer},
		"scopes_supported":         p.o.ScopesSupported,
		"bearer_methods_supported": []string{"header"},
	}
	if p.o.ResourceName != "" {
		m["resource_name"] = p.o.ResourceName
	}
	w.Header().Set("Cache-Control", "public, max-age=300")
	w.Header().Set("Content-Type", "application/json")
	writeRaw(w, m)
}
