package oidc

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/cnpg-mcp/cnpg-mcp/mockauth0/config"
	"github.com/cnpg-mcp/cnpg-mcp/mockauth0/tenant"
)

// maxBody bounds request bodies of the Authentication API.
const maxBody = 64 << 10

// apiError is an Authentication API error: HTTP status + Auth0's {"error", "error_description"}.
type apiError struct {
	status int
	code   string
	desc   string
}

func (e *apiError) Error() string { return e.code + ": " + e.desc }

func newErr(status int, code, desc string) *apiError { return &apiError{status, code, desc} }

var errUnauthorized = newErr(http.StatusUnauthorized, "access_denied", "Unauthorized")

// readParams reads a form or JSON body (Auth0 accepts both). Repeated parameters are rejected.
func readParams(r *http.Request) (url.Values, *apiError) {
	r.Body = http.MaxBytesReader(nil, r.Body, maxBody)
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	var v url.Values
	switch ct {
	case "application/json":
		var m map[string]any
		body, err := io.ReadAll(r.Body)
		if err != nil {
			return nil, newErr(http.StatusBadRequest, "invalid_request", "Request body too large or unreadable")
		}
		if err := json.Unmarshal(body, &m); err != nil {
			return nil, newErr(http.StatusBadRequest, "invalid_request", "Malformed JSON body")
		}
		v = url.Values{}
		for k, x := range m {
			switch t := x.(type) {
			case string:
				v.Set(k, t)
			case float64, bool:
				v.Set(k, fmt.Sprint(t))
			}
		}
	case "application/x-www-form-urlencoded", "":
		if err := r.ParseForm(); err != nil {
			return nil, newErr(http.StatusBadRequest, "invalid_request", "Malformed form body")
		}
		v = r.PostForm
	default:
		return nil, newErr(http.StatusBadRequest, "invalid_request", "Unsupported Content-Type: use application/x-www-form-urlencoded or application/json")
	}
	for k, vals := range v {
		if len(vals) > 1 {
			return nil, newErr(http.StatusBadRequest, "invalid_request", "Parameter '"+k+"' must not be repeated")
		}
	}
	return v, nil
}

// authenticateClient implements client_secret_basic, client_secret_post and none (public clients).
func (h *Handler) authenticateClient(r *http.Request, p url.Values) (config.Client, *apiError) {
	basicID, basicSecret, hasBasic := r.BasicAuth()
	if hasBasic {
		// RFC 6749 §2.3.1: the Basic credentials are form-urlencoded.
		if id, err := url.QueryUnescape(basicID); err == nil {
			basicID = id
		}
		if s, err := url.QueryUnescape(basicSecret); err == nil {
			basicSecret = s
		}
		if p.Get("client_secret") != "" {
			return config.Client{}, newErr(http.StatusBadRequest, "invalid_request", "Use only one client authentication method")
		}
		if p.Get("client_id") != "" && p.Get("client_id") != basicID {
			return config.Client{}, newErr(http.StatusBadRequest, "invalid_request", "client_id does not match the Authorization header")
		}
	}
	id, secret := p.Get("client_id"), p.Get("client_secret")
	if hasBasic {
		id, secret = basicID, basicSecret
	}
	if id == "" {
		return config.Client{}, newErr(http.StatusUnauthorized, "access_denied", "Unauthorized: missing client_id")
	}
	c, ok := h.tenant.Client(id)
	if !ok {
		return config.Client{}, errUnauthorized
	}
	if c.TokenEndpointAuthMethod == "none" {
		return c, nil
	}
	if secret == "" || subtle.ConstantTimeCompare([]byte(secret), []byte(c.ClientSecret)) != 1 {
		return config.Client{}, errUnauthorized
	}
	return c, nil
}

// tokenResponse is Auth0's token endpoint answer.
type tokenResponse struct {
	AccessToken  string `json:"access_token"`
	IDToken      string `json:"id_token,omitempty"`
	RefreshToken string `json:"refresh_token,omitempty"`
	Scope        string `json:"scope,omitempty"`
	ExpiresIn    int    `json:"expires_in"`
	TokenType    string `json:"token_type"`
}

func (h *Handler) token(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
	resp, aerr := h.tokenGrant(r)
	if aerr != nil {
		oauthError(w, aerr.status, aerr.code, aerr.desc)
		return
	}
	writeJSON(w, http.StatusOK, resp)
}

func (h *Handler) tokenGrant(r *http.Request) (*tokenResponse, *apiError) {
	p, aerr := readParams(r)
	if aerr != nil {
		return nil, aerr
	}
	gt := p.Get("grant_type")
	if gt == "" {
		return nil, newErr(http.StatusBadRequest, "invalid_request", "Missing required parameter: grant_type")
	}
	client, aerr := h.authenticateClient(r, p)
	if aerr != nil {
		return nil, aerr
	}
	switch gt {
	case "authorization_code", "refresh_token", "client_credentials":
	default:
		return nil, newErr(http.StatusBadRequest, "unsupported_grant_type", "Unsupported grant type: "+gt)
	}
	if !slices.Contains(client.GrantTypes, gt) {
		return nil, newErr(http.StatusForbidden, "unauthorized_client", "Grant type '"+gt+"' not allowed for the client.")
	}
	switch gt {
	case "authorization_code":
		return h.codeGrant(client, p)
	case "refresh_token":
		return h.refreshGrant(client, p)
	default:
		return h.clientCredentialsGrant(client, p)
	}
}

func (h *Handler) codeGrant(client config.Client, p url.Values) (*tokenResponse, *apiError) {
	code := p.Get("code")
	if code == "" {
		return nil, newErr(http.StatusBadRequest, "invalid_request", "Missing required parameter: code")
	}
	invalid := newErr(http.StatusForbidden, "invalid_grant", "Invalid authorization code")
	c, err := h.tenant.RedeemCode(code) // consumed now: a failed attempt burns the code
	if err != nil || c.Request.ClientID != client.ClientID {
		return nil, invalid
	}
	if p.Has("redirect_uri") || c.Request.RedirectURISent {
		if p.Get("redirect_uri") != c.Request.RedirectURI {
			return nil, newErr(http.StatusForbidden, "invalid_grant", "redirect_uri mismatch")
		}
	}
	if aerr := checkPKCE(c.Request, p.Get("code_verifier")); aerr != nil {
		return nil, aerr
	}
	u, ok := h.tenant.User(c.Sub)
	if !ok || u.Blocked {
		return nil, invalid
	}
	return h.issue(client, u, c.Request.Audience, c.Request.Scope, c.Request.Nonce, c.SID, c.AuthTime, "authorization_code", "")
}

// checkPKCE verifies code_verifier against the stored challenge (RFC 7636 §4.6).
func checkPKCE(req tenant.AuthRequest, verifier string) *apiError {
	failed := newErr(http.StatusForbidden, "invalid_grant", "Failed to verify code verifier")
	if req.CodeChallenge == "" {
		if verifier != "" {
			return failed // a verifier for a code issued without a challenge: downgrade attempt
		}
		return nil
	}
	if verifier == "" {
		return newErr(http.StatusBadRequest, "invalid_request", "Parameter 'code_verifier' is required")
	}
	if len(verifier) < 43 || len(verifier) > 128 || strings.Trim(verifier, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~") != "" {
		return failed
	}
	var computed string
	switch req.CodeChallengeMethod {
	case "S256":
		sum := sha256.Sum256([]byte(verifier))
		computed = base64.RawURLEncoding.EncodeToString(sum[:])
	default: // plain
		computed = verifier
	}
	if subtle.ConstantTimeCompare([]byte(computed), []byte(req.CodeChallenge)) != 1 {
		return failed
	}
	return nil
}

func refreshPolicy(c config.Client) tenant.RefreshPolicy {
	rp := c.RefreshToken
	p := tenant.RefreshPolicy{
		Rotating:     rp.RotationType != "non-rotating",
		Leeway:       time.Duration(rp.Leeway) * time.Second,
		NonExpiring:  rp.ExpirationType == "non-expiring",
		ExpectClient: c.ClientID,
	}
	if !rp.InfiniteTokenLifetime {
		p.Absolute = time.Duration(rp.TokenLifetime) * time.Second
	}
	if !rp.InfiniteIdleTokenLifetime {
		p.Idle = time.Duration(rp.IdleTokenLifetime) * time.Second
	}
	return p
}

func (h *Handler) refreshGrant(client config.Client, p url.Values) (*tokenResponse, *apiError) {
	rt := p.Get("refresh_token")
	if rt == "" {
		return nil, newErr(http.StatusBadRequest, "invalid_request", "Missing required parameter: refresh_token")
	}
	invalid := newErr(http.StatusForbidden, "invalid_grant", "Unknown or invalid refresh token.")
	// Peek first so a scope error does not rotate; UseRefresh then detects reuse of a rotated token.
	fam, ok := h.tenant.PeekRefresh(rt)
	if !ok || fam.ClientID != client.ClientID {
		return nil, invalid
	}
	scope := fam.Scope
	if s := p.Get("scope"); s != "" {
		req := scopeList(s)
		for _, x := range req {
			if !slices.Contains(fam.Scope, x) {
				return nil, newErr(http.StatusForbidden, "access_denied", "Refresh token scope can not be expanded: "+x)
			}
		}
		scope = req
	}
	res, err := h.tenant.UseRefresh(rt, refreshPolicy(client))
	if err != nil {
		return nil, invalid
	}
	u, ok := h.tenant.User(res.Family.Sub)
	if !ok || u.Blocked {
		return nil, invalid
	}
	return h.issue(client, u, res.Family.Audience, scope, "", res.Family.SID, time.Time{}, "refresh_token", res.Token)
}

func (h *Handler) clientCredentialsGrant(client config.Client, p url.Values) (*tokenResponse, *apiError) {
	if client.TokenEndpointAuthMethod == "none" {
		return nil, newErr(http.StatusForbidden, "unauthorized_client", "Grant type 'client_credentials' not allowed for the client.")
	}
	audience := p.Get("audience")
	if audience == "" {
		audience = h.tenant.Settings().DefaultAudience
	}
	if audience == "" {
		return nil, newErr(http.StatusForbidden, "access_denied", "No audience parameter was provided, and no default audience has been configured")
	}
	if _, ok := h.tenant.APIByIdentifier(audience); !ok {
		return nil, newErr(http.StatusForbidden, "access_denied", "Service not found: "+audience)
	}
	grants := h.tenant.ClientGrants(client.ClientID, audience)
	if len(grants) == 0 {
		return nil, newErr(http.StatusForbidden, "access_denied", fmt.Sprintf(
			"Client is not authorized to access %q. You need to create a \"client-grant\" associated to this API.", audience))
	}
	scope := grants[0].Scope
	if s := p.Get("scope"); s != "" {
		var missing []string
		req := scopeList(s)
		for _, x := range req {
			if !slices.Contains(grants[0].Scope, x) {
				missing = append(missing, x)
			}
		}
		if len(missing) > 0 {
			return nil, newErr(http.StatusForbidden, "access_denied", "Client has not been granted scopes: "+strings.Join(missing, ", "))
		}
		scope = req
	}
	at, life, err := h.mintAccess(client.ClientID+"@clients", client.ClientID, audience, scope, "client_credentials")
	if err != nil {
		h.log.Error("mint access token", "error", err)
		return nil, newErr(http.StatusInternalServerError, "server_error", "Could not issue the token")
	}
	return &tokenResponse{AccessToken: at, Scope: strings.Join(scope, " "), ExpiresIn: life, TokenType: "Bearer"}, nil
}

// issue mints the user tokens of a code or refresh grant. newRefresh is the rotated refresh token of a
// refresh grant ("" keeps the old one); a code grant starts a family when offline_access was granted.
func (h *Handler) issue(client config.Client, u config.User, audience string, scope []string, nonce, sid string, authTime time.Time, grant, newRefresh string) (*tokenResponse, *apiError) {
	at, life, err := h.mintAccess(u.Sub, client.ClientID, audience, scope, grant)
	if err != nil {
		if errors.Is(err, tenant.ErrNotFound) {
			return nil, newErr(http.StatusForbidden, "access_denied", "Service not found: "+audience)
		}
		h.log.Error("mint access token", "error", err)
		return nil, newErr(http.StatusInternalServerError, "server_error", "Could not issue the token")
	}
	resp := &tokenResponse{AccessToken: at, Scope: strings.Join(scope, " "), ExpiresIn: life, TokenType: "Bearer"}
	if slices.Contains(scope, "openid") {
		if resp.IDToken, err = h.mintIDToken(u, client.ClientID, scope, nonce, sid, authTime); err != nil {
			h.log.Error("mint id token", "error", err)
			return nil, newErr(http.StatusInternalServerError, "server_error", "Could not issue the token")
		}
	}
	switch {
	case grant == "refresh_token":
		resp.RefreshToken = newRefresh
	case slices.Contains(scope, "offline_access"):
		resp.RefreshToken = h.tenant.NewFamily(client.ClientID, u.Sub, audience, scope, sid)
	}
	return resp, nil
}
