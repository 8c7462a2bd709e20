package oidc

import (
	"crypto/subtle"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"time"

	"github.com/cnpg-mcp/cnpg-mcp/mockauth0/config"
)

// The pages use Universal Login's selectors (input#username, input#password,
// button[type=submit][name=action]) so one browser driver works here and on a real tenant. They are
// styled like the reference server's pages (a card, light and dark), with no JavaScript except the
// form_post page, which submits itself as Auth0's does.
const pageCSS = `:root{color-scheme:light dark;--bg:#eef0f3;--card:#fff;--fg:#1f2328;--muted:#57606a;--line:#d0d7de;--accent:#5b3cc4;` +
	`--accent-fg:#fff;--accent-hover:#472fa0;--note-bg:#eef3ff;--note-line:#9db4f0;--err:#cf222e}` +
	`@media (prefers-color-scheme:dark){:root{--bg:#0d1117;--card:#161b22;--fg:#e6edf3;--muted:#9da7b3;--line:#3d444d;` +
	`--accent:#a08cf5;--accent-fg:#0d1117;--accent-hover:#bdb0f8;--note-bg:#15213a;--note-line:#3a5a9c;--err:#f85149}}` +
	`*{box-sizing:border-box}body{margin:0;background:var(--bg);color:var(--fg);font:16px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif}` +
	`main{max-width:26rem;margin:0 auto;padding:3rem 1rem}.card{background:var(--card);border:1px solid var(--line);border-radius:12px;padding:2rem}` +
	`h1{font-size:1.5rem;margin:0 0 .25rem;text-align:center}header p{margin:0 0 1.5rem;text-align:center;color:var(--muted)}` +
	`label{display:block;font-weight:600;font-size:.9375rem}` +
	`input.input{display:block;width:100%;margin:.375rem 0 1rem;padding:.625rem .75rem;font:inherit;color:inherit;background:var(--card);border:1px solid var(--muted);border-radius:8px}` +
	`button{font:inherit;font-weight:600;border-radius:8px;padding:.625rem 1.25rem;cursor:pointer;border:1px solid var(--line);background:transparent;color:var(--fg)}` +
	`.ulp-button-primary{display:block;width:100%;background:var(--accent);border-color:var(--accent);color:var(--accent-fg)}` +
	`.ulp-button-primary:hover{background:var(--accent-hover)}.actions{display:flex;gap:.75rem}.actions button{flex:1}` +
	`.ulp-input-error-message{display:block;color:var(--err);margin:0 0 1rem}` +
	`.dev{background:var(--note-bg);border:1px solid var(--note-line);border-radius:8px;padding:.75rem 1rem;margin:0 0 1.5rem;font-size:.9375rem}` +
	`.dev p{margin:0 0 .25rem}.dev ul{margin:0;padding-left:1.25rem}code{font:.9em ui-monospace,SFMono-Regular,Menlo,Consolas,monospace}` +
	`:focus-visible{outline:3px solid var(--accent);outline-offset:2px}`

var pages = template.Must(template.New("pages").Parse(`
{{define "head"}}<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{{.Title}}</title>
<meta name="viewport" content="width=device-width, initial-scale=1"><meta name="color-scheme" content="light dark">
<style>` + pageCSS + `</style></head><body><main class="login-id"><div class="card">{{end}}

{{define "login"}}{{template "head" .}}
<header><h1>Welcome</h1><p>Log in to {{.Tenant}} to continue to {{.Client}}.</p></header>
{{if .Credentials}}<div class="dev" id="dev-credentials" role="note"><p><strong>Development tenant.</strong> Log in as:</p><ul>
{{range .Credentials}}<li><code>{{.Email}}</code> / <code>{{.Password}}</code></li>{{end}}</ul></div>{{end}}
{{if .Error}}<div id="prompt-alert" role="alert"><span id="error-element-password" class="ulp-input-error-message" data-error-code="wrong-credentials">{{.Error}}</span></div>{{end}}
<form method="POST" action="/u/login?state={{.State}}" data-form-primary="true">
<input type="hidden" name="state" value="{{.State}}">
<label for="username">Email address</label>
<input class="input" id="username" name="username" type="text" inputmode="email" autocomplete="email" autocapitalize="none" spellcheck="false" value="{{.Username}}" required autofocus>
<label for="password">Password</label>
<input class="input" id="password" name="password" type="password" autocomplete="current-password" required>
<button type="submit" name="action" value="default" class="ulp-button-primary" data-action-button-primary="true">Continue</button>
</form></div></main></body></html>{{end}}

{{define "consent"}}{{template "head" .}}
<header><h1>Authorize {{.Client}}</h1><p>{{.Client}} is requesting access to your {{.Tenant}} account.</p></header>
<ul>{{range .Scopes}}<li class="scope">{{.}}</li>{{end}}</ul>
{{if .Audience}}<p>API: <code>{{.Audience}}</code></p>{{end}}
<form method="POST" action="/u/consent?state={{.State}}">
<input type="hidden" name="state" value="{{.State}}">
<div class="actions"><button type="submit" name="action" value="accept" class="ulp-button-primary" data-action-button-primary="true">Accept</button>
<button type="submit" name="action" value="deny" class="ulp-button-secondary">Decline</button></div>
</form></div></main></body></html>{{end}}

{{define "error"}}{{template "head" .}}
<header><h1>Oops!, something went wrong</h1></header>
<p class="error-code" id="error-code">{{.Code}}</p><p class="error-description" id="error-description">{{.Description}}</p>
</div></main></body></html>{{end}}

{{define "formpost"}}<!DOCTYPE html><html><head><title>Submit This Form</title></head>
<body onload="document.forms[0].submit()"><form method="post" action="{{.Action}}">
{{range $k, $v := .Params}}<input type="hidden" name="{{$k}}" value="{{index $v 0}}">{{end}}
<noscript><button type="submit">Continue</button></noscript></form></body></html>{{end}}
`))

func pageHeaders(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Frame-Options", "deny")
	h.Set("Content-Security-Policy", "frame-ancestors 'none'")
}

func errorPage(w http.ResponseWriter, status int, code, desc string) {
	pageHeaders(w)
	w.WriteHeader(status)
	_ = pages.ExecuteTemplate(w, "error", map[string]string{"Title": "Error", "Code": code, "Description": desc})
}

func renderFormPost(w http.ResponseWriter, action string, params url.Values) {
	pageHeaders(w)
	// form_post sends the response to another origin: the CSP must allow that form action.
	w.Header().Set("Content-Security-Policy", "frame-ancestors 'none'")
	_ = pages.ExecuteTemplate(w, "formpost", map[string]any{"Action": action, "Params": params})
}

func (h *Handler) renderLogin(w http.ResponseWriter, status int, state, clientName, username, errMsg string) {
	pageHeaders(w)
	w.WriteHeader(status)
	_ = pages.ExecuteTemplate(w, "login", map[string]any{
		"Title": "Log in | " + h.tenantName(), "Tenant": h.tenantName(), "Client": clientName,
		"State": state, "Username": username, "Error": errMsg, "Credentials": h.devCredentials(),
	})
}

// devCredentials are the users the login page names when the tenant says so (the default tenant
// does: make run prints no password, the page shows it). Blocked users are left out.
func (h *Handler) devCredentials() []config.User {
	if !h.tenant.Settings().ShowCredentialsOnLogin {
		return nil
	}
	var out []config.User
	for _, u := range h.tenant.Users() {
		if !u.Blocked && u.Password != "" {
			out = append(out, u)
		}
	}
	return out
}

func (h *Handler) tenantName() string {
	if n := h.tenant.Settings().FriendlyName; n != "" {
		return n
	}
	return "mock Auth0"
}

func (h *Handler) loginPage(w http.ResponseWriter, r *http.Request) {
	state := r.URL.Query().Get("state")
	tx, ok := h.tenant.Login(state)
	if !ok {
		errorPage(w, http.StatusBadRequest, "invalid_request", "Invalid or expired state: start the login again.")
		return
	}
	client, _ := h.tenant.Client(tx.Request.ClientID)
	h.renderLogin(w, http.StatusOK, state, client.Name, "", "")
}

func (h *Handler) loginSubmit(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		errorPage(w, http.StatusBadRequest, "invalid_request", "Malformed form.")
		return
	}
	state := r.PostForm.Get("state")
	if state == "" {
		state = r.URL.Query().Get("state")
	}
	tx, ok := h.tenant.Login(state)
	if !ok {
		errorPage(w, http.StatusBadRequest, "invalid_request", "Invalid or expired state: start the login again.")
		return
	}
	client, _ := h.tenant.Client(tx.Request.ClientID)
	username, password := r.PostForm.Get("username"), r.PostForm.Get("password")
	u, found := h.tenant.UserByEmail(username)
	// Compare even when the user is unknown so timing does not reveal which emails exist.
	want := "\x00no-such-user"
	if found {
		want = u.Password
	}
	if subtle.ConstantTimeCompare([]byte(password), []byte(want)) != 1 || !found {
		h.renderLogin(w, http.StatusBadRequest, state, client.Name, username, "Wrong email or password")
		return
	}
	if u.Blocked {
		h.renderLogin(w, http.StatusUnauthorized, state, client.Name, username, "Your account has been blocked.")
		return
	}
	sess := h.tenant.NewSession(u.Sub)
	h.tenant.MarkAuthenticated(state, u.Sub, sess.AuthTime)
	http.SetCookie(w, h.sessionCookie(sess.ID, sess.Expires))
	http.Redirect(w, r, "/authorize/resume?state="+url.QueryEscape(state), http.StatusFound)
}

func (h *Handler) sessionCookie(value string, expires time.Time) *http.Cookie {
	c := &http.Cookie{Name: sessionCookie, Value: value, Path: "/", HttpOnly: true, Expires: expires}
	if h.secure {
		c.Secure, c.SameSite = true, http.SameSiteNoneMode
	} else {
		c.SameSite = http.SameSiteLaxMode
	}
	return c
}

func (h *Handler) consentPage(w http.ResponseWriter, r *http.Request) {
	state := r.URL.Query().Get("state")
	tx, ok := h.tenant.Login(state)
	if !ok || tx.Sub == "" {
		errorPage(w, http.StatusBadRequest, "invalid_request", "Invalid or expired state: start the login again.")
		return
	}
	client, _ := h.tenant.Client(tx.Request.ClientID)
	pageHeaders(w)
	_ = pages.ExecuteTemplate(w, "consent", map[string]any{
		"Title": "Authorize " + client.Name, "Tenant": h.tenantName(), "Client": client.Name,
		"Scopes": tx.Request.Scope, "Audience": tx.Request.Audience, "State": state,
	})
}

func (h *Handler) consentSubmit(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		errorPage(w, http.StatusBadRequest, "invalid_request", "Malformed form.")
		return
	}
	state := r.PostForm.Get("state")
	tx, ok := h.tenant.Login(state)
	if !ok || tx.Sub == "" {
		errorPage(w, http.StatusBadRequest, "invalid_request", "Invalid or expired state: start the login again.")
		return
	}
	switch r.PostForm.Get("action") {
	case "accept":
		h.tenant.GrantConsent(tx.Sub, tx.Request.ClientID, tx.Request.Audience)
		http.Redirect(w, r, "/authorize/resume?state="+url.QueryEscape(state), http.StatusFound)
	case "deny":
		if tx, ok = h.tenant.TakeLogin(state); ok {
			h.redirectError(w, tx.Request, "access_denied", "User did not authorize the request")
			return
		}
		errorPage(w, http.StatusBadRequest, "invalid_request", "Invalid or expired state: start the login again.")
	default:
		errorPage(w, http.StatusBadRequest, "invalid_request", "Unknown action.")
	}
}

// logout ends the SSO session and returns to an allowed URL (/v2/logout and /oidc/logout).
func (h *Handler) logout(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if c, err := r.Cookie(sessionCookie); err == nil {
		h.tenant.EndSession(c.Value)
	}
	expired := h.sessionCookie("", time.Unix(0, 0))
	expired.MaxAge = -1
	http.SetCookie(w, expired)
	returnTo := q.Get("returnTo")
	if returnTo == "" {
		returnTo = q.Get("post_logout_redirect_uri")
	}
	if returnTo == "" {
		pageHeaders(w)
		_, _ = w.Write([]byte("<!DOCTYPE html><html><body><p>You have been logged out.</p></body></html>"))
		return
	}
	allowed := false
	for _, c := range h.clientsFor(q.Get("client_id")) {
		if slices.Contains(c.AllowedLogoutURLs, returnTo) {
			allowed = true
			break
		}
	}
	if !allowed {
		errorPage(w, http.StatusBadRequest, "invalid_request",
			"The \"returnTo\" querystring parameter \""+returnTo+"\" is not defined as a valid URL in \"Allowed Logout URLs\".")
		return
	}
	http.Redirect(w, r, returnTo, http.StatusFound)
}

func (h *Handler) clientsFor(clientID string) []config.Client {
	if clientID == "" {
		return h.tenant.Clients()
	}
	if c, ok := h.tenant.Client(clientID); ok {
		return []config.Client{c}
	}
	return nil
}
