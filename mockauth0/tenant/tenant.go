// Package tenant is the mock tenant's state: the directory (users, APIs, applications, client grants,
// connections, settings — changeable through the Management API) and the short-lived protocol state
// (login transactions, sessions, authorization codes, refresh-token families, consents). Every
// single-use item is consumed under the tenant lock, so concurrent redemptions have exactly one winner.
package tenant

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/cnpg-mcp/cnpg-mcp/mockauth0/clock"
	"github.com/cnpg-mcp/cnpg-mcp/mockauth0/config"
)

// Errors callers map to protocol errors.
var (
	ErrNotFound = errors.New("not found")
	ErrConflict = errors.New("conflict")
)

// Tenant is the whole mutable state. All methods are safe for concurrent use.
type Tenant struct {
	mu    sync.Mutex
	clock clock.Clock

	issuer    string
	settings  config.TenantSettings
	lifetimes config.Lifetimes

	users       map[string]*config.User // by sub
	apis        map[string]*config.API  // by id
	clients     map[string]*config.Client
	grants      map[string]*config.ClientGrant // by id
	connections map[string]*config.Connection  // by id

	logins   map[string]*LoginTxn // by state
	sessions map[string]*Session  // by id
	codes    map[string]*Code     // by code
	refresh  map[string]*Refresh  // by sha256(token)
	families map[string]*Family   // by id
	consents map[string]time.Time // sub|client|audience -> when
}

// ManagementAudience is the Management API identifier for an issuer ("https://<domain>/api/v2/").
func ManagementAudience(issuer string) string { return issuer + "api/v2/" }

// New builds the tenant from a validated configuration. issuer ends with "/".
func New(cfg config.Config, issuer string, clk clock.Clock) (*Tenant, error) {
	t := &Tenant{
		clock: clk, issuer: issuer, settings: cfg.Tenant, lifetimes: cfg.Lifetimes,
		users: map[string]*config.User{}, apis: map[string]*config.API{}, clients: map[string]*config.Client{},
		grants: map[string]*config.ClientGrant{}, connections: map[string]*config.Connection{},
		logins: map[string]*LoginTxn{}, sessions: map[string]*Session{}, codes: map[string]*Code{},
		refresh: map[string]*Refresh{}, families: map[string]*Family{}, consents: map[string]time.Time{},
	}
	for _, u := range cfg.Users {
		u := u
		if u.Sub == "" {
			sum := sha256.Sum256([]byte(strings.ToLower(u.Email)))
			u.Sub = "auth0|" + hex.EncodeToString(sum[:12])
		}
		t.users[u.Sub] = &u
	}
	mgmt := config.API{
		ID: "mgmt" + hexID(20), Name: "Auth0 Management API", Identifier: ManagementAudience(issuer),
		IsSystem: true, TokenLifetime: 86400,
	}
	for _, s := range config.ManagementScopes() {
		mgmt.Scopes = append(mgmt.Scopes, config.Scope{Value: s})
	}
	t.apis[mgmt.ID] = &mgmt
	for _, a := range cfg.APIs {
		a := a
		if a.ID == "" {
			a.ID = hexID(24)
		}
		if a.SigningAlg == "" {
			a.SigningAlg = "RS256"
		}
		t.apis[a.ID] = &a
	}
	for _, c := range cfg.Clients {
		c := c
		normalizeClient(&c)
		t.clients[c.ClientID] = &c
	}
	for _, g := range cfg.ClientGrants {
		g := g
		if g.Audience == "{management}" {
			g.Audience = mgmt.Identifier
		}
		if g.ID == "" {
			g.ID = "cgr_" + randID(12)
		}
		t.grants[g.ID] = &g
	}
	for _, c := range cfg.Connections {
		c := c
		if c.ID == "" {
			c.ID = "con_" + randID(12)
		}
		if c.Strategy == "" {
			c.Strategy = "auth0"
		}
		t.connections[c.ID] = &c
	}
	return t, nil
}

func normalizeClient(c *config.Client) {
	if c.AppType == "" {
		c.AppType = "regular_web"
	}
	if c.TokenEndpointAuthMethod == "" {
		c.TokenEndpointAuthMethod = "client_secret_post"
	}
	if len(c.GrantTypes) == 0 {
		switch c.AppType {
		case "non_interactive":
			c.GrantTypes = []string{"client_credentials"}
		default:
			c.GrantTypes = []string{"authorization_code", "refresh_token"}
		}
	}
	if c.RefreshToken.RotationType == "" {
		c.RefreshToken.RotationType = "rotating"
	}
	if c.RefreshToken.ExpirationType == "" {
		c.RefreshToken.ExpirationType = "expiring"
	}
	if c.RefreshToken.TokenLifetime == 0 {
		c.RefreshToken.TokenLifetime = 2592000
	}
	if c.RefreshToken.IdleTokenLifetime == 0 {
		c.RefreshToken.IdleTokenLifetime = 1296000
	}
}

// Now is the tenant clock.
func (t *Tenant) Now() time.Time { return t.clock.Now() }

// Issuer returns the issuer URL (with trailing slash).
func (t *Tenant) Issuer() string { return t.issuer }

// Lifetimes returns the configured lifetimes.
func (t *Tenant) Lifetimes() config.Lifetimes { return t.lifetimes }

// ---- directory -------------------------------------------------------------------------------------

// Settings returns the tenant settings.
func (t *Tenant) Settings() config.TenantSettings {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.settings
}

// UpdateSettings replaces the tenant settings.
func (t *Tenant) UpdateSettings(f func(*config.TenantSettings)) config.TenantSettings {
	t.mu.Lock()
	defer t.mu.Unlock()
	f(&t.settings)
	return t.settings
}

// Client returns a copy of a client.
func (t *Tenant) Client(id string) (config.Client, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	c, ok := t.clients[id]
	if !ok {
		return config.Client{}, false
	}
	return cloneClient(c), true
}

func cloneClient(c *config.Client) config.Client {
	cp := *c
	cp.Callbacks = slices.Clone(c.Callbacks)
	cp.AllowedLogoutURLs = slices.Clone(c.AllowedLogoutURLs)
	cp.GrantTypes = slices.Clone(c.GrantTypes)
	return cp
}

// Clients lists clients sorted by name.
func (t *Tenant) Clients() []config.Client {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]config.Client, 0, len(t.clients))
	for _, c := range t.clients {
		out = append(out, cloneClient(c))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name+out[i].ClientID < out[j].Name+out[j].ClientID })
	return out
}

// CreateClient adds a client, generating its ID and (for confidential clients) its secret.
func (t *Tenant) CreateClient(c config.Client) config.Client {
	normalizeClient(&c)
	if c.ClientID == "" {
		c.ClientID = randID(24)
	}
	if c.TokenEndpointAuthMethod != "none" && c.ClientSecret == "" {
		c.ClientSecret = randID(48)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.clients[c.ClientID] = &c
	return cloneClient(&c)
}

// UpdateClient applies f to a client.
func (t *Tenant) UpdateClient(id string, f func(*config.Client) error) (config.Client, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	c, ok := t.clients[id]
	if !ok {
		return config.Client{}, ErrNotFound
	}
	cp := cloneClient(c)
	if err := f(&cp); err != nil {
		return config.Client{}, err
	}
	normalizeClient(&cp)
	t.clients[id] = &cp
	return cloneClient(&cp), nil
}

// DeleteClient removes a client and its grants.
func (t *Tenant) DeleteClient(id string) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, ok := t.clients[id]; !ok {
		return ErrNotFound
	}
	delete(t.clients, id)
	for gid, g := range t.grants {
		if g.ClientID == id {
			delete(t.grants, gid)
		}
	}
	return nil
}

// APIByIdentifier finds an API by audience.
func (t *Tenant) APIByIdentifier(identifier string) (config.API, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.apiByIdentifierLocked(identifier)
}

func (t *Tenant) apiByIdentifierLocked(identifier string) (config.API, bool) {
	for _, a := range t.apis {
		if a.Identifier == identifier {
			return cloneAPI(a), true
		}
	}
	return config.API{}, false
}

func cloneAPI(a *config.API) config.API {
	cp := *a
	cp.Scopes = slices.Clone(a.Scopes)
	if a.TokenEncryption != nil {
		te := *a.TokenEncryption
		cp.TokenEncryption = &te
	}
	return cp
}

// API finds an API by id or identifier (the Management API accepts both).
func (t *Tenant) API(idOrIdentifier string) (config.API, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if a, ok := t.apis[idOrIdentifier]; ok {
		return cloneAPI(a), true
	}
	return t.apiByIdentifierLocked(idOrIdentifier)
}

// APIs lists APIs sorted by name.
func (t *Tenant) APIs() []config.API {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]config.API, 0, len(t.apis))
	for _, a := range t.apis {
		out = append(out, cloneAPI(a))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name+out[i].ID < out[j].Name+out[j].ID })
	return out
}

// CreateAPI adds an API; the identifier must be unique.
func (t *Tenant) CreateAPI(a config.API) (config.API, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, ok := t.apiByIdentifierLocked(a.Identifier); ok {
		return config.API{}, ErrConflict
	}
	if a.ID == "" {
		a.ID = hexID(24)
	}
	if a.SigningAlg == "" {
		a.SigningAlg = "RS256"
	}
	if a.TokenLifetime == 0 {
		a.TokenLifetime = 86400
	}
	t.apis[a.ID] = &a
	return cloneAPI(&a), nil
}

// UpdateAPI applies f to an API found by id or identifier.
func (t *Tenant) UpdateAPI(idOrIdentifier string, f func(*config.API) error) (config.API, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	a, ok := t.apis[idOrIdentifier]
	if !ok {
		for _, x := range t.apis {
			if x.Identifier == idOrIdentifier {
				a, ok = x, true
			}
		}
	}
	if !ok {
		return config.API{}, ErrNotFound
	}
	cp := cloneAPI(a)
	if err := f(&cp); err != nil {
		return config.API{}, err
	}
	t.apis[cp.ID] = &cp
	return cloneAPI(&cp), nil
}

// DeleteAPI removes an API and the client grants for it.
func (t *Tenant) DeleteAPI(idOrIdentifier string) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	for id, a := range t.apis {
		if id == idOrIdentifier || a.Identifier == idOrIdentifier {
			if a.IsSystem {
				return fmt.Errorf("%w: system API", ErrConflict)
			}
			delete(t.apis, id)
			for gid, g := range t.grants {
				if g.Audience == a.Identifier {
					delete(t.grants, gid)
				}
			}
			return nil
		}
	}
	return ErrNotFound
}

// ClientGrants lists grants, optionally filtered.
func (t *Tenant) ClientGrants(clientID, audience string) []config.ClientGrant {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []config.ClientGrant
	for _, g := range t.grants {
		if (clientID == "" || g.ClientID == clientID) && (audience == "" || g.Audience == audience) {
			cp := *g
			cp.Scope = slices.Clone(g.Scope)
			out = append(out, cp)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// CreateClientGrant adds a grant; one per (client, audience).
func (t *Tenant) CreateClientGrant(g config.ClientGrant) (config.ClientGrant, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, ok := t.clients[g.ClientID]; !ok {
		return config.ClientGrant{}, fmt.Errorf("%w: client %s", ErrNotFound, g.ClientID)
	}
	if _, ok := t.apiByIdentifierLocked(g.Audience); !ok {
		return config.ClientGrant{}, fmt.Errorf("%w: API %s", ErrNotFound, g.Audience)
	}
	for _, x := range t.grants {
		if x.ClientID == g.ClientID && x.Audience == g.Audience {
			return config.ClientGrant{}, ErrConflict
		}
	}
	g.ID = "cgr_" + randID(12)
	if g.Scope == nil {
		g.Scope = []string{}
	}
	t.grants[g.ID] = &g
	return g, nil
}

// UpdateClientGrant replaces a grant's scopes.
func (t *Tenant) UpdateClientGrant(id string, scope []string) (config.ClientGrant, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	g, ok := t.grants[id]
	if !ok {
		return config.ClientGrant{}, ErrNotFound
	}
	g.Scope = slices.Clone(scope)
	return *g, nil
}

// DeleteClientGrant removes a grant.
func (t *Tenant) DeleteClientGrant(id string) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, ok := t.grants[id]; !ok {
		return ErrNotFound
	}
	delete(t.grants, id)
	return nil
}

// Connections lists connections sorted by name.
func (t *Tenant) Connections() []config.Connection {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]config.Connection, 0, len(t.connections))
	for _, c := range t.connections {
		cp := *c
		cp.EnabledClients = slices.Clone(c.EnabledClients)
		out = append(out, cp)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// UpdateConnection applies f to a connection.
func (t *Tenant) UpdateConnection(id string, f func(*config.Connection)) (config.Connection, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	c, ok := t.connections[id]
	if !ok {
		return config.Connection{}, ErrNotFound
	}
	f(c)
	cp := *c
	cp.EnabledClients = slices.Clone(c.EnabledClients)
	return cp, nil
}

// UserByEmail finds a user by email (case-insensitive).
func (t *Tenant) UserByEmail(email string) (config.User, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, u := range t.users {
		if strings.EqualFold(u.Email, email) {
			return *u, true
		}
	}
	return config.User{}, false
}

// User finds a user by sub.
func (t *Tenant) User(sub string) (config.User, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	u, ok := t.users[sub]
	if !ok {
		return config.User{}, false
	}
	return *u, true
}

// Users lists users sorted by email.
func (t *Tenant) Users() []config.User {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]config.User, 0, len(t.users))
	for _, u := range t.users {
		out = append(out, *u)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Email < out[j].Email })
	return out
}

// CreateUser adds a user; the email must be unique.
func (t *Tenant) CreateUser(u config.User) (config.User, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, x := range t.users {
		if strings.EqualFold(x.Email, u.Email) {
			return config.User{}, ErrConflict
		}
	}
	if u.Sub == "" {
		u.Sub = "auth0|" + hexID(24)
	}
	if _, ok := t.users[u.Sub]; ok {
		return config.User{}, ErrConflict
	}
	t.users[u.Sub] = &u
	return u, nil
}

// UpdateUser applies f to a user (f must replace slices, never change them in place).
func (t *Tenant) UpdateUser(sub string, f func(*config.User) error) (config.User, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	u, ok := t.users[sub]
	if !ok {
		return config.User{}, ErrNotFound
	}
	next := *u
	if err := f(&next); err != nil {
		return config.User{}, err
	}
	*u = next
	return next, nil
}

// DeleteUser removes a user and revokes everything issued to them.
func (t *Tenant) DeleteUser(sub string) error {
	t.mu.Lock()
	if _, ok := t.users[sub]; !ok {
		t.mu.Unlock()
		return ErrNotFound
	}
	delete(t.users, sub)
	t.mu.Unlock()
	t.RevokeUserGrants(sub)
	return nil
}

// ---- helpers ---------------------------------------------------------------------------------------

// RandomToken returns n random bytes, base64url-encoded.
func RandomToken(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(fmt.Sprintf("crypto/rand failed: %v", err)) // cannot happen on Linux ≥ 3.17
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

const idAlphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"

func randID(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(fmt.Sprintf("crypto/rand failed: %v", err))
	}
	for i := range b {
		b[i] = idAlphabet[int(b[i])%len(idAlphabet)]
	}
	return string(b)
}

func hexID(n int) string {
	b := make([]byte, (n+1)/2)
	if _, err := rand.Read(b); err != nil {
		panic(fmt.Sprintf("crypto/rand failed: %v", err))
	}
	return hex.EncodeToString(b)[:n]
}

func hashToken(tok string) string {
	sum := sha256.Sum256([]byte(tok))
	return hex.EncodeToString(sum[:])
}
