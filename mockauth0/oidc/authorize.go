package oidc

import (
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/cnpg-mcp/cnpg-mcp/mockauth0/config"
	"github.com/cnpg-mcp/cnpg-mcp/mockauth0/tenant"
)

// sessionCookie is the name of the SSO session cookie (Auth0 uses "auth0").
const sessionCookie = "auth0"

// authorize validates an authorization request. Errors about the client or the redirect URI are shown
// to the user (no redirect); the others are sent to the validated redirect URI, as Auth0 does.
func (h *Handler) authorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	for _, p := range []string{"client_id", "redirect_uri", "response_type", "state", "code_challenge", "audience", "scope", "nonce"} {
		if len(q[p]) > 1 {
			errorPage(w, http.StatusBadRequest, "invalid_request", "Parameter '"+p+"' must not be repeated.")
			return
		}
	}
	client, ok := h.tenant.Client(q.Get("client_id"))
	if q.Get("client_id") == "" || !ok {
		errorPage(w, http.StatusBadRequest, "invalid_request", "Unknown client: "+q.Get("client_id"))
		return
	}
	redirectURI, sent := q.Get("redirect_uri"), q.Has("redirect_uri")
	if redirectURI == "" && len(client.Callbacks) > 0 {
		redirectURI = client.Callbacks[0]
	}
	if !callbackAllowed(client, redirectURI) {
		errorPage(w, http.StatusBadRequest, "invalid_request",
			"Callback URL mismatch. "+redirectURI+" is not in the list of allowed callback URLs.")
		return
	}
	req := tenant.AuthRequest{
		ClientID: client.ClientID, RedirectURI: redirectURI, RedirectURISent: sent, ResponseMode: q.Get("response_mode"),
		Nonce: q.Get("nonce"), Prompt: q.Get("prompt"),
	}
	req.State, req.HasState = q.Get("state"), q.Has("state") && q.Get("state") != ""
	switch req.ResponseMode {
	case "":
		req.ResponseMode = "query"
	case "query", "form_post":
	default:
		errorPage(w, http.StatusBadRequest, "invalid_request", "Unsupported response_mode: "+req.ResponseMode)
		return
	}
	fail := func(code, desc string) { h.redirectError(w, req, code, desc) }

	if rt := q.Get("response_type"); rt != "code" {
		if rt == "" {
			fail("invalid_request", "Missing required parameter: response_type")
		} else {
			fail("unsupported_response_type", "Unsupported response type: "+rt)
		}
		return
	}
	if !slices.Contains(client.GrantTypes, "authorization_code") {
		fail("unauthorized_client", "Grant type 'authorization_code' not allowed for the client.")
		return
	}

	settings := h.tenant.Settings()
	audience := q.Get("audience")
	if res := q.Get("resource"); res != "" {
		_, known := h.tenant.APIByIdentifier(res)
		switch {
		case settings.ResourceParameterProfile == "audience" && audience == "":
			audience = res
		case !known:
			fail("invalid_target", "The resource parameter must be the identifier of an API: "+res)
			return
		}
	}
	if audience == "" {
		audience = settings.DefaultAudience
	}
	var api *config.API
	if audience != "" {
		a, ok := h.tenant.APIByIdentifier(audience)
		if !ok {
			fail("access_denied", "Service not found: "+audience)
			return
		}
		api = &a
	}
	req.Audience = audience
	req.Scope = grantableScopes(scopeList(q.Get("scope")), api, client)

	req.CodeChallenge, req.CodeChallengeMethod = q.Get("code_challenge"), q.Get("code_challenge_method")
	switch {
	case req.CodeChallenge == "" && req.CodeChallengeMethod != "":
		fail("invalid_request", "Parameter 'code_challenge' is required when 'code_challenge_method' is set")
		return
	case req.CodeChallenge == "" && client.TokenEndpointAuthMethod == "none":
		fail("invalid_request", "Parameter 'code_challenge' is required for public clients")
		return
	case req.CodeChallenge != "":
		if req.CodeChallengeMethod == "" {
			req.CodeChallengeMethod = "plain"
		}
		switch req.CodeChallengeMethod {
		case "S256":
			if len(req.CodeChallenge) != 43 || strings.Trim(req.CodeChallenge, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") != "" {
				fail("invalid_request", "Parameter 'code_challenge' must be a base64url-encoded SHA-256 hash (43 characters)")
				return
			}
		case "plain":
			if !settings.AllowPlainPKCE {
				fail("invalid_request", "Unsupported code_challenge_method: plain (use S256)")
				return
			}
		default:
			fail("invalid_request", "Unsupported code_challenge_method: "+req.CodeChallengeMethod)
			return
		}
	}

	sess, hasSession := h.session(r)
	if req.Prompt == "login" || !hasSession {
		if req.Prompt == "none" {
			fail("login_required", "Login required")
			return
		}
		tx := h.tenant.NewLogin(req)
		http.Redirect(w, r, "/u/login?state="+url.QueryEscape(tx.State), http.StatusFound)
		return
	}
	if h.needsConsent(client, sess.Sub, req) {
		if req.Prompt == "none" {
			fail("consent_required", "Consent required")
			return
		}
		tx := h.tenant.NewLogin(req)
		h.tenant.MarkAuthenticated(tx.State, sess.Sub, sess.AuthTime)
		http.Redirect(w, r, "/u/consent?state="+url.QueryEscape(tx.State), http.StatusFound)
		return
	}
	code := h.tenant.NewCode(req, sess.Sub, sess.AuthTime, sess.ID)
	h.redirectCode(w, req, code)
}

// resume continues an authorization after login (and consent): it issues the code.
func (h *Handler) resume(w http.ResponseWriter, r *http.Request) {
	state := r.URL.Query().Get("state")
	tx, ok := h.tenant.Login(state)
	if !ok || tx.Sub == "" {
		errorPage(w, http.StatusBadRequest, "invalid_request", "Invalid or expired state: start the login again.")
		return
	}
	client, ok := h.tenant.Client(tx.Request.ClientID)
	if !ok {
		errorPage(w, http.StatusBadRequest, "invalid_request", "Unknown client: "+tx.Request.ClientID)
		return
	}
	if h.needsConsent(client, tx.Sub, tx.Request) {
		http.Redirect(w, r, "/u/consent?state="+url.QueryEscape(state), http.StatusFound)
		return
	}
	tx, ok = h.tenant.TakeLogin(state)
	if !ok {
		errorPage(w, http.StatusBadRequest, "invalid_request", "Invalid or expired state: start the login again.")
		return
	}
	sid := ""
	if s, ok := h.session(r); ok {
		sid = s.ID
	}
	code := h.tenant.NewCode(tx.Request, tx.Sub, tx.AuthTime, sid)
	h.redirectCode(w, tx.Request, code)
}

// needsConsent: third-party applications must be consented to by the user for an API (Auth0 shows
// its consent page for them); first-party applications are never asked.
func (h *Handler) needsConsent(client config.Client, sub string, req tenant.AuthRequest) bool {
	if client.FirstParty() {
		return false
	}
	return !h.tenant.HasConsent(sub, client.ClientID, req.Audience)
}

func (h *Handler) session(r *http.Request) (tenant.Session, bool) {
	c, err := r.Cookie(sessionCookie)
	if err != nil || c.Value == "" {
		return tenant.Session{}, false
	}
	return h.tenant.Session(c.Value)
}

// callbackAllowed compares the redirect URI with the client's callbacks exactly. With the mock's
// loopback_any_port extension, a loopback callback also matches on another port.
func callbackAllowed(c config.Client, redirectURI string) bool {
	if redirectURI == "" {
		return false
	}
	if slices.Contains(c.Callbacks, redirectURI) {
		return true
	}
	if !c.LoopbackAnyPort {
		return false
	}
	got, err := url.Parse(redirectURI)
	if err != nil || got.User != nil || got.Fragment != "" || !isLoopback(got.Hostname()) {
		return false
	}
	for _, cb := range c.Callbacks {
		want, err := url.Parse(cb)
		if err != nil || !isLoopback(want.Hostname()) {
			continue
		}
		if want.Scheme == got.Scheme && want.Hostname() == got.Hostname() && want.EscapedPath() == got.EscapedPath() && want.RawQuery == got.RawQuery {
			return true
		}
	}
	return false
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// redirectCode sends the authorization response to the client.
func (h *Handler) redirectCode(w http.ResponseWriter, req tenant.AuthRequest, code string) {
	params := url.Values{"code": {code}}
	if req.HasState {
		params.Set("state", req.State)
	}
	h.respond(w, req, params)
}

// redirectError sends an error authorization response to the (already validated) redirect URI.
func (h *Handler) redirectError(w http.ResponseWriter, req tenant.AuthRequest, code, desc string) {
	params := url.Values{"error": {code}, "error_description": {desc}}
	if req.HasState {
		params.Set("state", req.State)
	}
	h.respond(w, req, params)
}

func (h *Handler) respond(w http.ResponseWriter, req tenant.AuthRequest, params url.Values) {
	w.Header().Set("Cache-Control", "no-store")
	if req.ResponseMode == "form_post" {
		renderFormPost(w, req.RedirectURI, params)
		return
	}
	u, err := url.Parse(req.RedirectURI)
	if err != nil {
		errorPage(w, http.StatusBadRequest, "invalid_request", "Invalid redirect_uri")
		return
	}
	q := u.Query()
	for k, v := range params {
		q[k] = v
	}
	u.RawQuery = q.Encode()
	w.Header().Set("Location", u.String())
	w.WriteHeader(http.StatusFound)
}
