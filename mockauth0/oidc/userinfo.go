package oidc

import (
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/cnpg-mcp/cnpg-mcp/mockauth0/config"
	"github.com/cnpg-mcp/cnpg-mcp/mockauth0/tokens"
)

// userinfo answers for the opaque (JWE) tokens issued without an audience and for API JWTs whose
// audience includes <issuer>userinfo. Nested-JWE API tokens are not readable by the tenant.
func (h *Handler) userinfo(w http.ResponseWriter, r *http.Request) {
	unauthorized := func(desc string) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="`+strings.TrimSuffix(h.tenant.Issuer(), "/")+`", error="invalid_token", error_description="`+desc+`"`)
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = w.Write([]byte("Unauthorized"))
	}
	scheme, tok, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || tok == "" {
		w.Header().Set("WWW-Authenticate", `Bearer realm="`+strings.TrimSuffix(h.tenant.Issuer(), "/")+`"`)
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = w.Write([]byte("Unauthorized"))
		return
	}
	now := h.tenant.Now()
	var c tokens.Claims
	var err error
	switch tokens.Kind(tok) {
	case "jwe":
		c, err = h.minter.OpenOpaque(tok, now)
	case "jws":
		c, err = h.minter.Verify(tok, now)
		if err == nil && !slices.Contains(c.Audiences(), h.tenant.Issuer()+"userinfo") {
			unauthorized("Invalid audience for /userinfo: request the openid scope")
			return
		}
	default:
		err = tokens.ErrInvalid
	}
	if err != nil {
		unauthorized("invalid token")
		return
	}
	u, ok := h.tenant.User(c.String("sub"))
	if !ok || u.Blocked {
		unauthorized("unknown user")
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, h.userClaims(u, scopeList(c.String("scope"))))
}

// revoke is /oauth/revoke: it revokes a refresh token (its whole grant) for the authenticated client.
// Unknown tokens and tokens of other clients are answered with 200 and left alone (RFC 7009 §2.2).
func (h *Handler) revoke(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	p, aerr := readParams(r)
	if aerr != nil {
		oauthError(w, aerr.status, aerr.code, aerr.desc)
		return
	}
	client, aerr := h.authenticateClient(r, p)
	if aerr != nil {
		oauthError(w, aerr.status, aerr.code, aerr.desc)
		return
	}
	tok := p.Get("token")
	if tok == "" {
		oauthError(w, http.StatusBadRequest, "invalid_request", "Missing required parameter: token")
		return
	}
	h.tenant.RevokeRefresh(tok, client.ClientID)
	w.WriteHeader(http.StatusOK)
}

// registration is the RFC 7591 request body the mock reads.
type registration struct {
	ClientName              string   `json:"client_name"`
	RedirectURIs            []string `json:"redirect_uris"`
	TokenEndpointAuthMethod string   `json:"token_endpoint_auth_method"`
	GrantTypes              []string `json:"grant_types"`
	ApplicationType         string   `json:"application_type"`
}

// register is Auth0's Dynamic Client Registration (/oidc/register): third-party clients, open
// registration when the tenant flag is on.
func (h *Handler) register(w http.ResponseWriter, r *http.Request) {
	if !h.tenant.Settings().DCREnabled() {
		oauthError(w, http.StatusForbidden, "access_denied", "Dynamic Client Registration is disabled for this tenant")
		return
	}
	var req registration
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBody))
	if err := dec.Decode(&req); err != nil {
		oauthError(w, http.StatusBadRequest, "invalid_client_metadata", "The request body must be a JSON object")
		return
	}
	if len(req.RedirectURIs) == 0 {
		oauthError(w, http.StatusBadRequest, "invalid_redirect_uri", "redirect_uris is required")
		return
	}
	for _, u := range req.RedirectURIs {
		if !validRedirectURI(u) {
			oauthError(w, http.StatusBadRequest, "invalid_redirect_uri", "Invalid redirect URI: "+u)
			return
		}
	}
	method := req.TokenEndpointAuthMethod
	switch method {
	case "":
		method = "client_secret_basic"
	case "none", "client_secret_basic", "client_secret_post":
	default:
		oauthError(w, http.StatusBadRequest, "invalid_client_metadata", "Unsupported token_endpoint_auth_method: "+method)
		return
	}
	grants := []string{"authorization_code", "refresh_token"}
	for _, g := range req.GrantTypes {
		if g != "authorization_code" && g != "refresh_token" {
			oauthError(w, http.StatusBadRequest, "invalid_client_metadata", "Unsupported grant type: "+g)
			return
		}
	}
	name := req.ClientName
	if name == "" {
		name = "Dynamic Application"
	}
	appType := "regular_web"
	if method == "none" {
		appType = "spa"
		if req.ApplicationType == "native" {
			appType = "native"
		}
	}
	thirdParty := false
	c := h.tenant.CreateClient(config.Client{
		Name: name, AppType: appType, Callbacks: req.RedirectURIs, GrantTypes: grants,
		TokenEndpointAuthMethod: method, IsFirstParty: &thirdParty,
	})
	resp := map[string]any{
		"client_name": c.Name, "client_id": c.ClientID, "redirect_uris": c.Callbacks,
		"token_endpoint_auth_method": c.TokenEndpointAuthMethod, "grant_types": c.GrantTypes,
		"client_id_issued_at": h.tenant.Now().Unix(),
	}
	if c.ClientSecret != "" {
		resp["client_secret"], resp["client_secret_expires_at"] = c.ClientSecret, 0
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusCreated, resp)
}

func validRedirectURI(raw string) bool {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme == "" || u.Fragment != "" || strings.Contains(raw, "#") {
		return false
	}
	switch strings.ToLower(u.Scheme) {
	case "javascript", "data", "file", "vbscript":
		return false
	case "http":
		return isLoopback(u.Hostname())
	case "https":
		return u.Host != ""
	default:
		return true // native custom schemes
	}
}
