// Package mgmt serves the subset of Auth0's Management API v2 (/api/v2/) that a setup tool needs to
// create the applications and API of a deployment: clients, resource servers, client grants, tenant
// settings, connections and users. Requests carry a client_credentials token for the audience
// https://<domain>/api/v2/ with the scope each endpoint requires; errors have Auth0's shape
// {"statusCode", "error", "message", "errorCode"}.
package mgmt

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/cnpg-mcp/cnpg-mcp/mockauth0/config"
	"github.com/cnpg-mcp/cnpg-mcp/mockauth0/tenant"
	"github.com/cnpg-mcp/cnpg-mcp/mockauth0/tokens"
)

// Handler serves /api/v2/.
type Handler struct {
	tenant *tenant.Tenant
	minter *tokens.Minter
}

// New returns the Management API handler.
func New(t *tenant.Tenant, m *tokens.Minter) *Handler { return &Handler{tenant: t, minter: m} }

// Register adds the routes to mux.
func (h *Handler) Register(mux *http.ServeMux) {
	route := func(pattern, scope string, f func(http.ResponseWriter, *http.Request)) {
		mux.HandleFunc(pattern, h.auth(scope, f))
	}
	route("GET /api/v2/clients", "read:clients", h.listClients)
	route("POST /api/v2/clients", "create:clients", h.createClient)
	route("GET /api/v2/clients/{id}", "read:clients", h.getClient)
	route("PATCH /api/v2/clients/{id}", "update:clients", h.patchClient)
	route("DELETE /api/v2/clients/{id}", "delete:clients", h.deleteClient)
	route("GET /api/v2/resource-servers", "read:resource_servers", h.listAPIs)
	route("POST /api/v2/resource-servers", "create:resource_servers", h.createAPI)
	route("GET /api/v2/resource-servers/{id}", "read:resource_servers", h.getAPI)
	route("PATCH /api/v2/resource-servers/{id}", "update:resource_servers", h.patchAPI)
	route("DELETE /api/v2/resource-servers/{id}", "delete:resource_servers", h.deleteAPI)
	route("GET /api/v2/client-grants", "read:client_grants", h.listGrants)
	route("POST /api/v2/client-grants", "create:client_grants", h.createGrant)
	route("PATCH /api/v2/client-grants/{id}", "update:client_grants", h.patchGrant)
	route("DELETE /api/v2/client-grants/{id}", "delete:client_grants", h.deleteGrant)
	route("GET /api/v2/tenants/settings", "read:tenant_settings", h.getSettings)
	route("PATCH /api/v2/tenants/settings", "update:tenant_settings", h.patchSettings)
	route("GET /api/v2/connections", "read:connections", h.listConnections)
	route("GET /api/v2/connections/{id}", "read:connections", h.getConnection)
	route("PATCH /api/v2/connections/{id}", "update:connections", h.patchConnection)
	route("GET /api/v2/users", "read:users", h.listUsers)
	route("POST /api/v2/users", "create:users", h.createUser)
	route("GET /api/v2/users/{id}", "read:users", h.getUser)
	route("PATCH /api/v2/users/{id}", "update:users", h.patchUser)
	route("DELETE /api/v2/users/{id}", "delete:users", h.deleteUser)
}

// mgmtError writes Auth0's Management API error body.
func mgmtError(w http.ResponseWriter, status int, message, errorCode string) {
	body := map[string]any{"statusCode": status, "error": http.StatusText(status), "message": message}
	if errorCode != "" {
		body["errorCode"] = errorCode
	}
	writeJSON(w, status, body)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// auth checks the bearer token: signed by the tenant, audience = Management API, scope present.
func (h *Handler) auth(scope string, next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		scheme, tok, ok := strings.Cut(r.Header.Get("Authorization"), " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") || tok == "" {
			mgmtError(w, http.StatusUnauthorized, "Missing authentication", "")
			return
		}
		c, err := h.minter.Verify(tok, h.tenant.Now())
		if err != nil {
			mgmtError(w, http.StatusUnauthorized, "Invalid token", "")
			return
		}
		if !slices.Contains(c.Audiences(), tenant.ManagementAudience(h.tenant.Issuer())) {
			mgmtError(w, http.StatusUnauthorized, "Bad audience: "+strings.Join(c.Audiences(), " "), "")
			return
		}
		if !slices.Contains(strings.Fields(c.String("scope")), scope) {
			mgmtError(w, http.StatusForbidden, "Insufficient scope, expected any of: "+scope, "insufficient_scope")
			return
		}
		next(w, r)
	}
}

// decodeStrict reads a JSON body into v; unknown properties are a 400 as in Auth0.
func decodeStrict(w http.ResponseWriter, r *http.Request, v any) bool {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 256<<10))
	if err != nil {
		mgmtError(w, http.StatusBadRequest, "Payload validation error: request body too large", "invalid_body")
		return false
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		mgmtError(w, http.StatusBadRequest, "Payload validation error: "+err.Error(), "invalid_body")
		return false
	}
	return true
}

// patch overlays a JSON object on cur (top-level keys replace) and decodes strictly into out.
func patch[T any](w http.ResponseWriter, r *http.Request, cur T, readOnly ...string) (T, bool) {
	var zero T
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 256<<10))
	if err != nil {
		mgmtError(w, http.StatusBadRequest, "Payload validation error: request body too large", "invalid_body")
		return zero, false
	}
	var p map[string]json.RawMessage
	if err := json.Unmarshal(body, &p); err != nil {
		mgmtError(w, http.StatusBadRequest, "Payload validation error: body must be a JSON object", "invalid_body")
		return zero, false
	}
	for _, f := range readOnly {
		if _, ok := p[f]; ok {
			mgmtError(w, http.StatusBadRequest, fmt.Sprintf("Payload validation error: 'Additional properties not allowed: %s'.", f), "invalid_body")
			return zero, false
		}
	}
	curJSON, _ := json.Marshal(cur)
	var m map[string]json.RawMessage
	_ = json.Unmarshal(curJSON, &m)
	if m == nil {
		m = map[string]json.RawMessage{}
	}
	for k, v := range p {
		m[k] = v
	}
	merged, _ := json.Marshal(m)
	dec := json.NewDecoder(bytes.NewReader(merged))
	dec.DisallowUnknownFields()
	var out T
	if err := dec.Decode(&out); err != nil {
		mgmtError(w, http.StatusBadRequest, "Payload validation error: "+err.Error(), "invalid_body")
		return zero, false
	}
	return out, true
}

// page applies Auth0's page/per_page/include_totals to a list.
func page[T any](w http.ResponseWriter, r *http.Request, key string, items []T) {
	q := r.URL.Query()
	perPage, pageNo := 50, 0
	if v := q.Get("per_page"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 100 {
			mgmtError(w, http.StatusBadRequest, "Query validation error: per_page must be between 1 and 100", "invalid_query_string")
			return
		}
		perPage = n
	}
	if v := q.Get("page"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			mgmtError(w, http.StatusBadRequest, "Query validation error: page must be 0 or more", "invalid_query_string")
			return
		}
		pageNo = n
	}
	start := min(pageNo*perPage, len(items))
	end := min(start+perPage, len(items))
	sel := items[start:end]
	if sel == nil {
		sel = []T{}
	}
	if q.Get("include_totals") == "true" {
		writeJSON(w, http.StatusOK, map[string]any{"start": start, "limit": perPage, "length": len(sel), "total": len(items), key: sel})
		return
	}
	writeJSON(w, http.StatusOK, sel)
}

func notFound(w http.ResponseWriter, what, code string) {
	mgmtError(w, http.StatusNotFound, "The "+what+" does not exist", code)
}

// ---- clients -----------------------------------------------------------------------------------------

// clientView is a client as the Management API shows it.
type clientView struct {
	config.Client
	OIDCConformant   bool              `json:"oidc_conformant"`
	JWTConfiguration map[string]string `json:"jwt_configuration"`
}

func viewClient(c config.Client) clientView {
	if c.IsFirstParty == nil {
		t := true
		c.IsFirstParty = &t
	}
	return clientView{Client: c, OIDCConformant: true, JWTConfiguration: map[string]string{"alg": "RS256"}}
}

func (h *Handler) listClients(w http.ResponseWriter, r *http.Request) {
	var out []clientView
	appType := r.URL.Query().Get("app_type")
	for _, c := range h.tenant.Clients() {
		if appType == "" || slices.Contains(strings.Split(appType, ","), c.AppType) {
			out = append(out, viewClient(c))
		}
	}
	page(w, r, "clients", out)
}

func (h *Handler) getClient(w http.ResponseWriter, r *http.Request) {
	c, ok := h.tenant.Client(r.PathValue("id"))
	if !ok {
		notFound(w, "client", "inexistent_client")
		return
	}
	writeJSON(w, http.StatusOK, viewClient(c))
}

func validateClient(c config.Client) error {
	cfg := config.Config{Clients: []config.Client{c}}
	if c.ClientSecret == "" && c.TokenEndpointAuthMethod != "none" {
		cfg.Clients[0].ClientSecret = "to-be-generated"
	}
	return cfg.Validate()
}

func (h *Handler) createClient(w http.ResponseWriter, r *http.Request) {
	var v clientView
	if !decodeStrict(w, r, &v) {
		return
	}
	c := v.Client
	if c.Name == "" {
		mgmtError(w, http.StatusBadRequest, "Payload validation error: 'Missing required property: name'.", "invalid_body")
		return
	}
	if c.ClientID != "" {
		mgmtError(w, http.StatusBadRequest, "Payload validation error: 'Additional properties not allowed: client_id'.", "invalid_body")
		return
	}
	c.ClientID = "tmp"
	if err := validateClient(c); err != nil {
		mgmtError(w, http.StatusBadRequest, "Payload validation error: "+err.Error(), "invalid_body")
		return
	}
	c.ClientID = ""
	writeJSON(w, http.StatusCreated, viewClient(h.tenant.CreateClient(c)))
}

func (h *Handler) patchClient(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	cur, ok := h.tenant.Client(id)
	if !ok {
		notFound(w, "client", "inexistent_client")
		return
	}
	nextView, ok := patch(w, r, viewClient(cur), "client_id")
	if !ok {
		return
	}
	next := nextView.Client
	if err := validateClient(next); err != nil {
		mgmtError(w, http.StatusBadRequest, "Payload validation error: "+err.Error(), "invalid_body")
		return
	}
	updated, err := h.tenant.UpdateClient(id, func(c *config.Client) error { *c = next; return nil })
	if err != nil {
		notFound(w, "client", "inexistent_client")
		return
	}
	writeJSON(w, http.StatusOK, viewClient(updated))
}

func (h *Handler) deleteClient(w http.ResponseWriter, r *http.Request) {
	if err := h.tenant.DeleteClient(r.PathValue("id")); err != nil {
		notFound(w, "client", "inexistent_client")
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// ---- resource servers --------------------------------------------------------------------------------

func (h *Handler) listAPIs(w http.ResponseWriter, r *http.Request) {
	page(w, r, "resource_servers", h.tenant.APIs())
}

func (h *Handler) getAPI(w http.ResponseWriter, r *http.Request) {
	a, ok := h.tenant.API(r.PathValue("id"))
	if !ok {
		notFound(w, "resource server", "inexistent_resource_server")
		return
	}
	writeJSON(w, http.StatusOK, a)
}

func validateAPI(a config.API) error {
	return (&config.Config{APIs: []config.API{a}}).Validate()
}

func (h *Handler) createAPI(w http.ResponseWriter, r *http.Request) {
	var a config.API
	if !decodeStrict(w, r, &a) {
		return
	}
	if a.ID != "" || a.IsSystem {
		mgmtError(w, http.StatusBadRequest, "Payload validation error: 'Additional properties not allowed: id, is_system'.", "invalid_body")
		return
	}
	if a.Name == "" {
		a.Name = a.Identifier
	}
	if err := validateAPI(a); err != nil {
		mgmtError(w, http.StatusBadRequest, "Payload validation error: "+err.Error(), "invalid_body")
		return
	}
	created, err := h.tenant.CreateAPI(a)
	if errors.Is(err, tenant.ErrConflict) {
		mgmtError(w, http.StatusConflict, "A resource server with the same identifier already exists", "resource_server_conflict")
		return
	}
	writeJSON(w, http.StatusCreated, created)
}

func (h *Handler) patchAPI(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	cur, ok := h.tenant.API(id)
	if !ok {
		notFound(w, "resource server", "inexistent_resource_server")
		return
	}
	if cur.IsSystem {
		mgmtError(w, http.StatusForbidden, "You cannot update the Management API", "operation_not_supported")
		return
	}
	next, ok := patch(w, r, cur, "id", "identifier", "is_system")
	if !ok {
		return
	}
	if err := validateAPI(next); err != nil {
		mgmtError(w, http.StatusBadRequest, "Payload validation error: "+err.Error(), "invalid_body")
		return
	}
	updated, err := h.tenant.UpdateAPI(cur.ID, func(a *config.API) error { *a = next; return nil })
	if err != nil {
		notFound(w, "resource server", "inexistent_resource_server")
		return
	}
	writeJSON(w, http.StatusOK, updated)
}

func (h *Handler) deleteAPI(w http.ResponseWriter, r *http.Request) {
	err := h.tenant.DeleteAPI(r.PathValue("id"))
	switch {
	case errors.Is(err, tenant.ErrConflict):
		mgmtError(w, http.StatusForbidden, "You cannot delete the Management API", "operation_not_supported")
	case err != nil:
		notFound(w, "resource server", "inexistent_resource_server")
	default:
		w.WriteHeader(http.StatusNoContent)
	}
}

// ---- client grants -----------------------------------------------------------------------------------

func (h *Handler) listGrants(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	page(w, r, "client_grants", h.tenant.ClientGrants(q.Get("client_id"), q.Get("audience")))
}

func (h *Handler) createGrant(w http.ResponseWriter, r *http.Request) {
	var g config.ClientGrant
	if !decodeStrict(w, r, &g) {
		return
	}
	if g.ClientID == "" || g.Audience == "" || g.Scope == nil {
		mgmtError(w, http.StatusBadRequest, "Payload validation error: 'Missing required property: client_id, audience or scope'.", "invalid_body")
		return
	}
	created, err := h.tenant.CreateClientGrant(g)
	switch {
	case errors.Is(err, tenant.ErrConflict):
		mgmtError(w, http.StatusConflict, "A client grant for this client and audience already exists", "client_grant_conflict")
	case errors.Is(err, tenant.ErrNotFound):
		mgmtError(w, http.StatusNotFound, err.Error(), "inexistent_resource_server")
	case err != nil:
		mgmtError(w, http.StatusBadRequest, err.Error(), "invalid_body")
	default:
		writeJSON(w, http.StatusCreated, created)
	}
}

func (h *Handler) patchGrant(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Scope []string `json:"scope"`
	}
	if !decodeStrict(w, r, &body) {
		return
	}
	g, err := h.tenant.UpdateClientGrant(r.PathValue("id"), body.Scope)
	if err != nil {
		notFound(w, "client grant", "inexistent_client_grant")
		return
	}
	writeJSON(w, http.StatusOK, g)
}

func (h *Handler) deleteGrant(w http.ResponseWriter, r *http.Request) {
	if err := h.tenant.DeleteClientGrant(r.PathValue("id")); err != nil {
		notFound(w, "client grant", "inexistent_client_grant")
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// ---- tenant settings, connections, users -------------------------------------------------------------

// settingsView is the tenant settings document (flags nested as in Auth0).
type settingsView struct {
	FriendlyName    string          `json:"friendly_name,omitempty"`
	DefaultAudience string          `json:"default_audience,omitempty"`
	Flags           map[string]bool `json:"flags"`
	// Mock extensions (documented in the README).
	ResourceParameterProfile string `json:"resource_parameter_profile,omitempty"`
	AllowPlainPKCE           bool   `json:"allow_plain_pkce,omitempty"`
}

func viewSettings(s config.TenantSettings) settingsView {
	return settingsView{
		FriendlyName: s.FriendlyName, DefaultAudience: s.DefaultAudience,
		Flags:                    map[string]bool{"enable_dynamic_client_registration": s.DCREnabled()},
		ResourceParameterProfile: s.ResourceParameterProfile, AllowPlainPKCE: s.AllowPlainPKCE,
	}
}

func (h *Handler) getSettings(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, viewSettings(h.tenant.Settings()))
}

func (h *Handler) patchSettings(w http.ResponseWriter, r *http.Request) {
	next, ok := patch(w, r, viewSettings(h.tenant.Settings()))
	if !ok {
		return
	}
	switch next.ResourceParameterProfile {
	case "", "reject", "audience":
	default:
		mgmtError(w, http.StatusBadRequest, "Payload validation error: resource_parameter_profile must be reject or audience", "invalid_body")
		return
	}
	s := h.tenant.UpdateSettings(func(s *config.TenantSettings) {
		s.FriendlyName, s.DefaultAudience = next.FriendlyName, next.DefaultAudience
		s.ResourceParameterProfile, s.AllowPlainPKCE = next.ResourceParameterProfile, next.AllowPlainPKCE
		if v, ok := next.Flags["enable_dynamic_client_registration"]; ok {
			s.EnableDynamicClientRegistration = &v
		}
	})
	writeJSON(w, http.StatusOK, viewSettings(s))
}

func (h *Handler) listConnections(w http.ResponseWriter, r *http.Request) {
	page(w, r, "connections", h.tenant.Connections())
}

func (h *Handler) getConnection(w http.ResponseWriter, r *http.Request) {
	for _, c := range h.tenant.Connections() {
		if c.ID == r.PathValue("id") {
			writeJSON(w, http.StatusOK, c)
			return
		}
	}
	notFound(w, "connection", "inexistent_connection")
}

func (h *Handler) patchConnection(w http.ResponseWriter, r *http.Request) {
	var body struct {
		EnabledClients *[]string `json:"enabled_clients"`
	}
	if !decodeStrict(w, r, &body) {
		return
	}
	c, err := h.tenant.UpdateConnection(r.PathValue("id"), func(c *config.Connection) {
		if body.EnabledClients != nil {
			c.EnabledClients = *body.EnabledClients
		}
	})
	if err != nil {
		notFound(w, "connection", "inexistent_connection")
		return
	}
	writeJSON(w, http.StatusOK, c)
}

// userView never includes the password.
type userView struct {
	UserID        string         `json:"user_id"`
	Email         string         `json:"email"`
	EmailVerified bool           `json:"email_verified"`
	Name          string         `json:"name,omitempty"`
	Nickname      string         `json:"nickname,omitempty"`
	Blocked       bool           `json:"blocked,omitempty"`
	AppMetadata   map[string]any `json:"app_metadata,omitempty"`
}

func viewUser(u config.User) userView {
	md := map[string]any{}
	for k, v := range u.Claims {
		md[k] = v
	}
	if u.Groups != nil {
		md["groups"] = u.Groups
	}
	if u.Roles != nil {
		md["roles"] = u.Roles
	}
	if len(md) == 0 {
		md = nil
	}
	return userView{UserID: u.Sub, Email: u.Email, EmailVerified: u.EmailVerified == nil || *u.EmailVerified,
		Name: u.Name, Nickname: u.Nickname, Blocked: u.Blocked, AppMetadata: md}
}

// patchUser changes a user as Auth0's PATCH /api/v2/users/{id} does for the fields the mock keeps:
// app_metadata.groups and app_metadata.roles (what the tenant's post-login Action copies into the
// tokens; other app_metadata keys are refused), blocked, email_verified, name and nickname. The
// user's next token (a login or a refresh) shows the change.
func (h *Handler) patchUser(w http.ResponseWriter, r *http.Request) {
	var body struct {
		AppMetadata *struct {
			Groups *[]string `json:"groups"`
			Roles  *[]string `json:"roles"`
		} `json:"app_metadata"`
		Blocked       *bool   `json:"blocked"`
		EmailVerified *bool   `json:"email_verified"`
		Name          *string `json:"name"`
		Nickname      *string `json:"nickname"`
	}
	if !decodeStrict(w, r, &body) {
		return
	}
	u, err := h.tenant.UpdateUser(r.PathValue("id"), func(u *config.User) error {
		if md := body.AppMetadata; md != nil {
			if md.Groups != nil {
				u.Groups = slices.Clone(*md.Groups)
			}
			if md.Roles != nil {
				u.Roles = slices.Clone(*md.Roles)
			}
		}
		if body.Blocked != nil {
			u.Blocked = *body.Blocked
		}
		if body.EmailVerified != nil {
			v := *body.EmailVerified
			u.EmailVerified = &v
		}
		if body.Name != nil {
			u.Name = *body.Name
		}
		if body.Nickname != nil {
			u.Nickname = *body.Nickname
		}
		return nil
	})
	if err != nil {
		notFound(w, "user", "inexistent_user")
		return
	}
	writeJSON(w, http.StatusOK, viewUser(u))
}

func (h *Handler) listUsers(w http.ResponseWriter, r *http.Request) {
	var out []userView
	for _, u := range h.tenant.Users() {
		out = append(out, viewUser(u))
	}
	page(w, r, "users", out)
}

func (h *Handler) getUser(w http.ResponseWriter, r *http.Request) {
	u, ok := h.tenant.User(r.PathValue("id"))
	if !ok {
		notFound(w, "user", "inexistent_user")
		return
	}
	writeJSON(w, http.StatusOK, viewUser(u))
}

func (h *Handler) createUser(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Email         string `json:"email"`
		Password      string `json:"password"`
		Connection    string `json:"connection"`
		Name          string `json:"name,omitempty"`
		Nickname      string `json:"nickname,omitempty"`
		UserID        string `json:"user_id,omitempty"`
		EmailVerified *bool  `json:"email_verified,omitempty"`
	}
	if !decodeStrict(w, r, &body) {
		return
	}
	if body.Email == "" || body.Password == "" || body.Connection == "" {
		mgmtError(w, http.StatusBadRequest, "Payload validation error: 'Missing required property: email, password or connection'.", "invalid_body")
		return
	}
	sub := ""
	if body.UserID != "" {
		sub = "auth0|" + body.UserID
	}
	u, err := h.tenant.CreateUser(config.User{Sub: sub, Email: body.Email, Password: body.Password, Name: body.Name,
		Nickname: body.Nickname, EmailVerified: body.EmailVerified})
	if err != nil {
		mgmtError(w, http.StatusConflict, "The user already exists.", "auth0_idp_error")
		return
	}
	writeJSON(w, http.StatusCreated, viewUser(u))
}

func (h *Handler) deleteUser(w http.ResponseWriter, r *http.Request) {
	if err := h.tenant.DeleteUser(r.PathValue("id")); err != nil {
		notFound(w, "user", "inexistent_user")
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
