// Package oidc serves the mock tenant's public surface, the paths and shapes of Auth0's
// Authentication API: discovery and JWKS, /authorize with the Universal-Login-like pages under /u/,
// /oauth/token (authorization_code with PKCE, refresh_token with rotation and reuse detection,
// client_credentials), /userinfo, /oauth/revoke, /oidc/register (DCR) and /v2/logout.
package oidc

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/cnpg-mcp/cnpg-mcp/mockauth0/config"
	"github.com/cnpg-mcp/cnpg-mcp/mockauth0/tenant"
	"github.com/cnpg-mcp/cnpg-mcp/mockauth0/tokens"
)

// Handler serves the Authentication API.
type Handler struct {
	tenant *tenant.Tenant
	minter *tokens.Minter
	log    *slog.Logger
	secure bool // issuer is https: cookies get Secure
}

// New returns the handler. The issuer is taken from the tenant.
func New(t *tenant.Tenant, m *tokens.Minter, log *slog.Logger) *Handler {
	return &Handler{tenant: t, minter: m, log: log, secure: strings.HasPrefix(t.Issuer(), "https://")}
}

// Register adds the routes to mux.
func (h *Handler) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET /.well-known/openid-configuration", h.discovery)
	mux.HandleFunc("GET /.well-known/jwks.json", h.jwks)
	mux.HandleFunc("GET /authorize", h.authorize)
	mux.HandleFunc("GET /authorize/resume", h.resume)
	mux.HandleFunc("GET /u/login", h.loginPage)
	mux.HandleFunc("POST /u/login", h.loginSubmit)
	mux.HandleFunc("GET /u/consent", h.consentPage)
	mux.HandleFunc("POST /u/consent", h.consentSubmit)
	mux.HandleFunc("POST /oauth/token", h.token)
	mux.HandleFunc("GET /userinfo", h.userinfo)
	mux.HandleFunc("POST /userinfo", h.userinfo)
	mux.HandleFunc("POST /oauth/revoke", h.revoke)
	mux.HandleFunc("POST /oidc/register", h.register)
	mux.HandleFunc("GET /v2/logout", h.logout)
	mux.HandleFunc("GET /oidc/logout", h.logout)
}

// oidcScopes are the scopes Auth0 understands without an API.
var oidcScopes = []string{"openid", "profile", "email", "address", "phone", "offline_access"}

func (h *Handler) discovery(w http.ResponseWriter, _ *http.Request) {
	iss := h.tenant.Issuer()
	methods := []string{"S256"}
	if h.tenant.Settings().AllowPlainPKCE {
		methods = append(methods, "plain")
	}
	doc := map[string]any{
		"issuer":                                     iss,
		"authorization_endpoint":                     iss + "authorize",
		"token_endpoint":                             iss + "oauth/token",
		"device_authorization_endpoint":              iss + "oauth/device/code",
		"userinfo_endpoint":                          iss + "userinfo",
		"mfa_challenge_endpoint":                     iss + "mfa/challenge",
		"jwks_uri":                                   iss + ".well-known/jwks.json",
		"registration_endpoint":                      iss + "oidc/register",
		"revocation_endpoint":                        iss + "oauth/revoke",
		"end_session_endpoint":                       iss + "oidc/logout",
		"scopes_supported":                           []string{"openid", "profile", "offline_access", "name", "given_name", "family_name", "nickname", "email", "email_verified", "picture", "created_at", "identities", "phone", "address"},
		"response_types_supported":                   []string{"code"},
		"code_challenge_methods_supported":           methods,
		"response_modes_supported":                   []string{"query", "form_post"},
		"subject_types_supported":                    []string{"public"},
		"id_token_signing_alg_values_supported":      []string{"RS256"},
		"token_endpoint_auth_methods_supported":      []string{"client_secret_basic", "client_secret_post", "none"},
		"grant_types_supported":                      []string{"authorization_code", "refresh_token", "client_credentials"},
		"claims_supported":                           []string{"aud", "auth_time", "created_at", "email", "email_verified", "exp", "family_name", "given_name", "iat", "identities", "iss", "name", "nickname", "phone_number", "picture", "sub"},
		"request_uri_parameter_supported":            false,
		"request_parameter_supported":                false,
		"revocation_endpoint_auth_methods_supported": []string{"client_secret_basic", "client_secret_post", "none"},
	}
	writeJSON(w, http.StatusOK, doc)
}

func (h *Handler) jwks(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, h.minter.Keys.JWKS())
}

// ---- shared helpers ----------------------------------------------------------------------------------

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// oauthError writes Auth0's Authentication API error body: {"error": ..., "error_description": ...}.
func oauthError(w http.ResponseWriter, status int, code, desc string) {
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
	writeJSON(w, status, map[string]string{"error": code, "error_description": desc})
}

func scopeList(s string) []string {
	var out []string
	for _, f := range strings.Fields(s) {
		if !slices.Contains(out, f) {
			out = append(out, f)
		}
	}
	return out
}

// grantableScopes filters requested scopes the way Auth0 does: OIDC scopes always, API scopes that the
// API defines, offline_access only when the API allows it and the client may use refresh tokens.
func grantableScopes(requested []string, api *config.API, client config.Client) []string {
	var out []string
	for _, s := range requested {
		switch {
		case s == "offline_access":
			if (api == nil || api.AllowOfflineAccess) && slices.Contains(client.GrantTypes, "refresh_token") {
				out = append(out, s)
			}
		case slices.Contains(oidcScopes, s):
			out = append(out, s)
		case api != nil && slices.ContainsFunc(api.Scopes, func(x config.Scope) bool { return x.Value == s }):
			out = append(out, s)
		}
	}
	return out
}

// mintAccess produces an access token for sub (a user or "<client>@clients") and its lifetime.
func (h *Handler) mintAccess(sub, clientID, audience string, scope []string, grantType string) (string, int, error) {
	now := h.tenant.Now()
	if audience == "" {
		life := h.tenant.Lifetimes().UserinfoToken.D(24 * time.Hour)
		tok, err := h.minter.Opaque(tokens.Claims{
			"iss": h.tenant.Issuer(), "sub": sub, "azp": clientID, "scope": strings.Join(scope, " "),
			"iat": now.Unix(), "exp": now.Add(life).Unix(),
		})
		return tok, int(life / time.Second), err
	}
	api, ok := h.tenant.APIByIdentifier(audience)
	if !ok {
		return "", 0, tenant.ErrNotFound
	}
	life := api.TokenLifetime
	if life <= 0 {
		life = 86400
	}
	c := tokens.Claims{
		"iss": h.tenant.Issuer(), "sub": sub, "iat": now.Unix(), "exp": now.Add(time.Duration(life) * time.Second).Unix(),
		"azp": clientID,
	}
	if len(scope) > 0 {
		c["scope"] = strings.Join(scope, " ")
	}
	if slices.Contains(scope, "openid") {
		c["aud"] = []string{audience, h.tenant.Issuer() + "userinfo"}
	} else {
		c["aud"] = audience
	}
	if grantType == "client_credentials" {
		c["gty"] = "client-credentials"
	}
	typ := "JWT"
	if strings.HasPrefix(api.TokenDialect, "rfc9068") {
		typ = "at+jwt"
		c["client_id"] = clientID
		c["jti"] = tenant.RandomToken(16)
	}
	if u, ok := h.tenant.User(sub); ok {
		if strings.HasSuffix(api.TokenDialect, "_authz") {
			c["permissions"] = u.Permissions
		}
		for k, v := range u.AccessClaims {
			if _, reserved := c[k]; !reserved {
				c[k] = v
			}
		}
		if a := h.tenant.Settings().PostLoginAction; a.InAccessToken() && grantType != "client_credentials" {
			for k, v := range a.Claims(u) {
				c[k] = v
			}
		}
	} else if strings.HasSuffix(api.TokenDialect, "_authz") {
		c["permissions"] = scope
	}
	tok, err := h.minter.Sign(c, typ)
	if err != nil {
		return "", 0, err
	}
	if api.TokenEncryption != nil {
		pub, err := api.TokenEncryption.PublicKey()
		if err != nil {
			return "", 0, err
		}
		tok, err = h.minter.EncryptNested(tok, pub, api.TokenEncryption.EncryptionKey.Kid)
		if err != nil {
			return "", 0, err
		}
	}
	return tok, life, nil
}

// profileClaims are the user claims released for the granted scopes.
func profileClaims(u config.User, scope []string) map[string]any {
	c := map[string]any{"sub": u.Sub}
	if slices.Contains(scope, "profile") {
		name := u.Name
		if name == "" {
			name = u.Email
		}
		nick := u.Nickname
		if nick == "" {
			nick, _, _ = strings.Cut(u.Email, "@")
		}
		c["name"], c["nickname"] = name, nick
		if u.Picture != "" {
			c["picture"] = u.Picture
		}
		c["updated_at"] = "2026-01-01T00:00:00.000Z"
	}
	if slices.Contains(scope, "email") {
		c["email"] = u.Email
		c["email_verified"] = u.EmailVerified == nil || *u.EmailVerified
	}
	for k, v := range u.Claims {
		if _, reserved := c[k]; !reserved {
			c[k] = v
		}
	}
	return c
}

// userClaims are the claims of an ID token and of /userinfo: the profile for the granted scopes and
// the post-login Action's custom claims.
func (h *Handler) userClaims(u config.User, scope []string) map[string]any {
	c := profileClaims(u, scope)
	if a := h.tenant.Settings().PostLoginAction; a.InIDToken() {
		for k, v := range a.Claims(u) {
			c[k] = v
		}
	}
	return c
}

func (h *Handler) mintIDToken(u config.User, clientID string, scope []string, nonce, sid string, authTime time.Time) (string, error) {
	now := h.tenant.Now()
	c := tokens.Claims(h.userClaims(u, scope))
	c["iss"], c["aud"], c["iat"] = h.tenant.Issuer(), clientID, now.Unix()
	c["exp"] = now.Add(h.tenant.Lifetimes().IDToken.D(10 * time.Hour)).Unix()
	if !authTime.IsZero() {
		c["auth_time"] = authTime.Unix()
	}
	if sid != "" {
		c["sid"] = sid
	}
	if nonce != "" {
		c["nonce"] = nonce
	}
	return h.minter.Sign(c, "JWT")
}
