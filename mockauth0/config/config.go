// Package config is the mock Auth0 tenant's configuration: users, APIs (resource servers), applications
// (clients), client grants and tenant settings, loaded from YAML with defaults that a newcomer can log in
// to without writing anything.
package config

import (
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	"sigs.k8s.io/yaml"
)

// Config is one mock tenant.
type Config struct {
	// Addr is the listen address (host:port, port 0 picks a free port). Default 127.0.0.1:0.
	Addr string `json:"addr,omitempty"`
	// Issuer is the public base URL, Auth0 style with a trailing slash (https://tenant.us.auth0.com/).
	// Empty: derived from the listen address as http://<addr>/.
	Issuer string `json:"issuer,omitempty"`
	// Admin enables the test controls under /mock-admin/v1/ (off by default).
	Admin AdminConfig `json:"admin,omitempty"`
	// Tenant holds the tenant-wide settings the Management API exposes under /api/v2/tenants/settings.
	Tenant TenantSettings `json:"tenant,omitempty"`
	// Lifetimes of the artefacts the mock mints.
	Lifetimes Lifetimes `json:"lifetimes,omitempty"`
	// Users who can log in on the Universal-Login-like page.
	Users []User `json:"users,omitempty"`
	// APIs are Auth0 "APIs" (resource servers); an access token is a JWT only for one of these audiences.
	APIs []API `json:"apis,omitempty"`
	// Clients are Auth0 "Applications".
	Clients []Client `json:"clients,omitempty"`
	// ClientGrants authorise clients for the client_credentials grant against an API (incl. the Management API).
	ClientGrants []ClientGrant `json:"client_grants,omitempty"`
	// Connections are listed by the Management API; only the database connection authenticates users.
	Connections []Connection `json:"connections,omitempty"`
}

// AdminConfig configures the test-control endpoints.
type AdminConfig struct {
	Enabled bool `json:"enabled,omitempty"`
	// Token, when set, must be sent as "Authorization: Bearer <token>" to every admin endpoint.
	Token string `json:"token,omitempty"`
}

// TenantSettings mirrors the parts of Auth0's tenant settings the mock honours.
type TenantSettings struct {
	FriendlyName string `json:"friendly_name,omitempty"`
	// DefaultAudience is used when /authorize names no audience (Auth0 "API Authorization Settings").
	DefaultAudience string `json:"default_audience,omitempty"`
	// EnableDynamicClientRegistration switches /oidc/register on (Auth0 flag of the same name).
	EnableDynamicClientRegistration *bool `json:"enable_dynamic_client_registration,omitempty"`
	// ResourceParameterProfile is "audience" (Auth0's compatibility profile: `resource` acts as `audience`)
	// or "reject" (default: a `resource` that is not an API identifier is refused with invalid_target).
	ResourceParameterProfile string `json:"resource_parameter_profile,omitempty"`
	// AllowPlainPKCE accepts code_challenge_method=plain (Auth0 advertises it). Default false.
	AllowPlainPKCE bool `json:"allow_plain_pkce,omitempty"`
	// ShowCredentialsOnLogin lists the users' emails and passwords on the login page: a development
	// aid (make run). On in Default(); off in a tenant loaded from a file unless set there.
	ShowCredentialsOnLogin bool `json:"show_credentials_on_login,omitempty"`
	// PostLoginAction adds the users' groups and roles to their tokens as custom claims, as an Auth0
	// post-login Action does (nil: no Action).
	PostLoginAction *PostLoginAction `json:"post_login_action,omitempty"`
}

// PostLoginAction is what this Auth0 post-login Action does at every login and refresh-token
// exchange (Auth0 runs post-login Actions on both):
//
//	exports.onExecutePostLogin = async (event, api) => {
//	  const groups = event.user.app_metadata.groups || [], roles = event.authorization?.roles || [];
//	  api.idToken.setCustomClaim(GROUPS_CLAIM, groups); api.accessToken.setCustomClaim(GROUPS_CLAIM, groups);
//	  api.idToken.setCustomClaim(ROLES_CLAIM, roles);   api.accessToken.setCustomClaim(ROLES_CLAIM, roles);
//	};
//
// The claims also appear in /userinfo when they are put in the ID token (as Auth0 does). A user's
// groups and roles are changed through the Management API (PATCH /api/v2/users/{id} with
// app_metadata.groups / app_metadata.roles) or the admin API, and the next token shows the change.
type PostLoginAction struct {
	// GroupsClaim and RolesClaim name the custom claims ("" leaves one out), e.g.
	// https://cnpg-mcp.example/groups (Auth0 recommends namespaced names).
	GroupsClaim string `json:"groups_claim,omitempty"`
	RolesClaim  string `json:"roles_claim,omitempty"`
	// IDToken and AccessToken select the tokens that get the claims (default: both). Access tokens
	// get them only for an API audience (the opaque /userinfo token has no room for them).
	IDToken     *bool `json:"id_token,omitempty"`
	AccessToken *bool `json:"access_token,omitempty"`
}

// InIDToken reports whether the Action adds its claims to ID tokens (and /userinfo).
func (a *PostLoginAction) InIDToken() bool { return a != nil && (a.IDToken == nil || *a.IDToken) }

// InAccessToken reports whether the Action adds its claims to API access tokens.
func (a *PostLoginAction) InAccessToken() bool {
	return a != nil && (a.AccessToken == nil || *a.AccessToken)
}

// Claims are the custom claims the Action adds for u (empty arrays included, as the Action above).
func (a *PostLoginAction) Claims(u User) map[string]any {
	out := map[string]any{}
	if a == nil {
		return out
	}
	if a.GroupsClaim != "" {
		out[a.GroupsClaim] = nonNil(u.Groups)
	}
	if a.RolesClaim != "" {
		out[a.RolesClaim] = nonNil(u.Roles)
	}
	return out
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return slices.Clone(s)
}

// DCREnabled reports whether /oidc/register is on (default true for the mock).
func (t TenantSettings) DCREnabled() bool {
	return t.EnableDynamicClientRegistration == nil || *t.EnableDynamicClientRegistration
}

// Lifetimes of codes and tokens. Zero values take the defaults.
type Lifetimes struct {
	AuthorizationCode Duration `json:"authorization_code,omitempty"` // default 10m
	IDToken           Duration `json:"id_token,omitempty"`           // default 10h (Auth0 default 36000s)
	UserinfoToken     Duration `json:"userinfo_token,omitempty"`     // opaque/JWE token without audience, default 24h
	Session           Duration `json:"session,omitempty"`            // login session cookie, default 72h
	LoginTransaction  Duration `json:"login_transaction,omitempty"`  // /u/login state, default 15m
}

// User is a database-connection user.
type User struct {
	Sub           string         `json:"sub,omitempty"` // default auth0|<24 hex chars derived from the email>
	Email         string         `json:"email"`
	Password      string         `json:"password"`
	Name          string         `json:"name,omitempty"`
	Nickname      string         `json:"nickname,omitempty"`
	Picture       string         `json:"picture,omitempty"`
	EmailVerified *bool          `json:"email_verified,omitempty"`
	Blocked       bool           `json:"blocked,omitempty"`
	Claims        map[string]any `json:"claims,omitempty"`              // extra claims in id_token and /userinfo
	AccessClaims  map[string]any `json:"access_token_claims,omitempty"` // extra claims in API access tokens
	Permissions   []string       `json:"permissions,omitempty"`         // RBAC permissions (token_dialect *_authz)
	// Groups (app_metadata.groups) and Roles (Auth0 RBAC role names) reach the tokens through the
	// tenant's post_login_action.
	Groups []string `json:"groups,omitempty"`
	Roles  []string `json:"roles,omitempty"`
}

// API is an Auth0 resource server.
type API struct {
	ID                 string           `json:"id,omitempty"`
	Name               string           `json:"name"`
	Identifier         string           `json:"identifier"` // the audience
	Scopes             []Scope          `json:"scopes,omitempty"`
	SigningAlg         string           `json:"signing_alg,omitempty"` // RS256 only
	AllowOfflineAccess bool             `json:"allow_offline_access,omitempty"`
	TokenLifetime      int              `json:"token_lifetime,omitempty"` // seconds, default 86400
	TokenLifetimeWeb   int              `json:"token_lifetime_for_web,omitempty"`
	TokenDialect       string           `json:"token_dialect,omitempty"` // access_token (default), access_token_authz, rfc9068_profile, rfc9068_profile_authz
	SkipConsent        bool             `json:"skip_consent_for_verifiable_first_party_clients,omitempty"`
	EnforcePolicies    bool             `json:"enforce_policies,omitempty"`
	TokenEncryption    *TokenEncryption `json:"token_encryption,omitempty"`
	IsSystem           bool             `json:"is_system,omitempty"`
}

// Scope of an API.
type Scope struct {
	Value       string `json:"value"`
	Description string `json:"description,omitempty"`
}

// TokenEncryption is Auth0's "JSON Web Encryption" for an API: access tokens become nested JWTs
// (an RS256 JWS inside a JWE Compact, RSA-OAEP-256 + A256GCM) encrypted to this public key.
type TokenEncryption struct {
	Format        string        `json:"format,omitempty"` // compact-nested-jwe
	EncryptionKey EncryptionKey `json:"encryption_key"`
}

// EncryptionKey holds the resource server's RSA public key.
type EncryptionKey struct {
	Name string `json:"name,omitempty"`
	Alg  string `json:"alg,omitempty"` // RSA-OAEP-256
	Kid  string `json:"kid,omitempty"`
	PEM  string `json:"pem,omitempty"`      // PEM public key (PKIX) or certificate
	File string `json:"pem_file,omitempty"` // or a file holding it (mock extension)
}

// Client is an Auth0 application.
type Client struct {
	ClientID                string             `json:"client_id"`
	ClientSecret            string             `json:"client_secret,omitempty"`
	Name                    string             `json:"name"`
	Description             string             `json:"description,omitempty"`
	LogoURI                 string             `json:"logo_uri,omitempty"`
	InitiateLoginURI        string             `json:"initiate_login_uri,omitempty"`
	WebOrigins              []string           `json:"web_origins,omitempty"`
	AllowedOrigins          []string           `json:"allowed_origins,omitempty"`
	ClientMetadata          map[string]string  `json:"client_metadata,omitempty"`
	AppType                 string             `json:"app_type,omitempty"` // regular_web (default), spa, native, non_interactive
	Callbacks               []string           `json:"callbacks,omitempty"`
	AllowedLogoutURLs       []string           `json:"allowed_logout_urls,omitempty"`
	GrantTypes              []string           `json:"grant_types,omitempty"`
	TokenEndpointAuthMethod string             `json:"token_endpoint_auth_method,omitempty"` // client_secret_post (default), client_secret_basic, none
	IsFirstParty            *bool              `json:"is_first_party,omitempty"`
	RefreshToken            RefreshTokenPolicy `json:"refresh_token,omitempty"`
	// LoopbackAnyPort makes a loopback callback match on any port (RFC 8252 §7.3). A mock extension:
	// real Auth0 compares callbacks exactly, so keep it off to reproduce that.
	LoopbackAnyPort bool `json:"loopback_any_port,omitempty"`
}

// FirstParty reports whether the client is first party (default true; DCR clients are third party).
func (c Client) FirstParty() bool { return c.IsFirstParty == nil || *c.IsFirstParty }

// RefreshTokenPolicy mirrors Auth0's per-application refresh-token settings.
type RefreshTokenPolicy struct {
	RotationType   string `json:"rotation_type,omitempty"`   // rotating (default) or non-rotating
	ExpirationType string `json:"expiration_type,omitempty"` // expiring (default) or non-expiring
	// Leeway is the reuse interval in seconds during which a just-rotated token may be used again.
	Leeway                    int  `json:"leeway,omitempty"`
	TokenLifetime             int  `json:"token_lifetime,omitempty"`      // absolute, seconds, default 2592000
	IdleTokenLifetime         int  `json:"idle_token_lifetime,omitempty"` // inactivity, seconds, default 1296000
	InfiniteTokenLifetime     bool `json:"infinite_token_lifetime,omitempty"`
	InfiniteIdleTokenLifetime bool `json:"infinite_idle_token_lifetime,omitempty"`
}

// ClientGrant allows a client the client_credentials grant for an audience with these scopes.
type ClientGrant struct {
	ID       string   `json:"id,omitempty"`
	ClientID string   `json:"client_id"`
	Audience string   `json:"audience"`
	Scope    []string `json:"scope,omitempty"`
}

// Connection is an identity source; the mock authenticates "auth0" (database) connections only.
type Connection struct {
	ID             string   `json:"id,omitempty"`
	Name           string   `json:"name"`
	Strategy       string   `json:"strategy,omitempty"` // auth0
	EnabledClients []string `json:"enabled_clients,omitempty"`
}

// Duration is a time.Duration that reads "15m" or a number of seconds from YAML.
type Duration time.Duration

// UnmarshalJSON accepts "90s"/"15m" strings or a number of seconds.
func (d *Duration) UnmarshalJSON(b []byte) error {
	s := strings.Trim(string(b), `"`)
	if s == "" || s == "null" {
		*d = 0
		return nil
	}
	if v, err := time.ParseDuration(s); err == nil {
		*d = Duration(v)
		return nil
	}
	var secs int64
	if _, err := fmt.Sscanf(s, "%d", &secs); err != nil || fmt.Sprint(secs) != s {
		return fmt.Errorf("invalid duration %q: use a Go duration such as 15m or a number of seconds", s)
	}
	*d = Duration(time.Duration(secs) * time.Second)
	return nil
}

// MarshalJSON writes the duration as a string such as "15m0s".
func (d Duration) MarshalJSON() ([]byte, error) {
	return []byte(`"` + time.Duration(d).String() + `"`), nil
}

// D returns the value, or def when unset.
func (d Duration) D(def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return time.Duration(d)
}

// Default values of the default tenant (documented in --help and the README).
const (
	DefaultUserEmail     = "dev@example.com"
	DefaultUserPassword  = "dev-password"
	DefaultUserSub       = "auth0|64f0c0ffee0000000000d0e1"
	DefaultAPIIdentifier = "https://cnpg-mcp.example/api"
	DefaultClientID      = "cnpg-mcp-proxy"
	DefaultClientSecret  = "cnpg-mcp-proxy-dev-secret"
	DefaultSetupClientID = "cnpg-mcp-setup"
	DefaultSetupSecret   = "cnpg-mcp-setup-dev-secret"

	// The default tenant's post-login Action puts groups and roles into the tokens under these claims.
	DefaultGroupsClaim = "https://cnpg-mcp.example/groups"
	DefaultRolesClaim  = "https://cnpg-mcp.example/roles"

	// Two more users of the default tenant, for trying per-user Kubernetes rights (impersonation):
	// alice administers the databases of team-a, bob looks at team-b's.
	AliceEmail    = "alice@example.com"
	AlicePassword = "alice-password"
	AliceSub      = "auth0|64f0c0ffee00000000a11ce1"
	BobEmail      = "bob@example.com"
	BobPassword   = "bob-password"
	BobSub        = "auth0|64f0c0ffee0000000000b0b1"
)

// DefaultGroups are the groups of the default tenant's users.
var (
	AliceGroups = []string{"team-a-dba"}
	BobGroups   = []string{"team-b-viewers"}
)

// ManagementScopes are the Management API scopes the mock knows.
var managementScopes = []string{
	"read:clients", "create:clients", "update:clients", "delete:clients",
	"read:client_keys",
	"read:resource_servers", "create:resource_servers", "update:resource_servers", "delete:resource_servers",
	"read:client_grants", "create:client_grants", "update:client_grants", "delete:client_grants",
	"read:tenant_settings", "update:tenant_settings",
	"read:connections", "update:connections",
	"read:users", "create:users", "update:users", "delete:users",
}

// ReservedClaims cannot be set by an Action (Auth0 refuses them; the mock's tokens need them).
var ReservedClaims = []string{"iss", "sub", "aud", "exp", "nbf", "iat", "jti", "azp", "nonce", "auth_time", "at_hash", "c_hash",
	"scope", "gty", "permissions", "client_id", "sid", "acr", "amr", "email", "email_verified", "name", "nickname", "picture", "updated_at"}

// ManagementScopes returns the Management API scopes the mock knows.
func ManagementScopes() []string { return slices.Clone(managementScopes) }

// Default returns a tenant with one user, one API, the proxy's confidential application and a
// machine-to-machine application allowed to use the Management API.
func Default() Config {
	return Config{
		Addr: "127.0.0.1:0",
		Tenant: TenantSettings{FriendlyName: "cnpg-mcp dev tenant", ShowCredentialsOnLogin: true,
			PostLoginAction: &PostLoginAction{GroupsClaim: DefaultGroupsClaim, RolesClaim: DefaultRolesClaim}},
		Users: []User{{
			Sub: DefaultUserSub, Email: DefaultUserEmail, Password: DefaultUserPassword,
			Name: "Dev User", Nickname: "dev",
		}, {
			Sub: AliceSub, Email: AliceEmail, Password: AlicePassword, Name: "Alice (team-a DBA)", Nickname: "alice",
			Groups: slices.Clone(AliceGroups), Roles: []string{"dba"},
		}, {
			Sub: BobSub, Email: BobEmail, Password: BobPassword, Name: "Bob (team-b viewer)", Nickname: "bob",
			Groups: slices.Clone(BobGroups), Roles: []string{"viewer"},
		}},
		APIs: []API{{
			Name: "cnpg-mcp", Identifier: DefaultAPIIdentifier, AllowOfflineAccess: true,
			Scopes: []Scope{
				{Value: "mcp:read", Description: "Read CloudNativePG resources through MCP"},
				{Value: "mcp:write", Description: "Change CloudNativePG resources through MCP"},
			},
		}},
		Clients: []Client{
			{
				ClientID: DefaultClientID, ClientSecret: DefaultClientSecret, Name: "cnpg-mcp-proxy",
				AppType:                 "regular_web",
				Callbacks:               []string{"http://127.0.0.1/auth/callback", "http://localhost/auth/callback"},
				GrantTypes:              []string{"authorization_code", "refresh_token"},
				TokenEndpointAuthMethod: "client_secret_post",
				LoopbackAnyPort:         true,
			},
			{
				ClientID: DefaultSetupClientID, ClientSecret: DefaultSetupSecret, Name: "cnpg-mcp-setup",
				AppType: "non_interactive", GrantTypes: []string{"client_credentials"},
				TokenEndpointAuthMethod: "client_secret_post",
			},
		},
		ClientGrants: []ClientGrant{{ClientID: DefaultSetupClientID, Audience: "{management}", Scope: ManagementScopes()}},
		Connections: []Connection{{
			Name: "Username-Password-Authentication", Strategy: "auth0",
			EnabledClients: []string{DefaultClientID},
		}},
	}
}

// DefaultApplication returns the index of the application that command-line additions (extra
// callbacks) apply to: the first interactive one (not non_interactive), cnpg-mcp-proxy in the
// default tenant. It is -1 when the tenant has none.
func (c *Config) DefaultApplication() int {
	for i, cl := range c.Clients {
		if cl.AppType != "non_interactive" {
			return i
		}
	}
	return -1
}

// AddCallbacks appends allowed callback URLs to the default application (see DefaultApplication),
// so that a proxy put in front of the mock needs no tenant file. Each URL must be absolute and
// without a fragment; URLs already allowed are not repeated.
func (c *Config) AddCallbacks(urls ...string) error {
	if len(urls) == 0 {
		return nil
	}
	i := c.DefaultApplication()
	if i < 0 {
		return errors.New("the tenant has no interactive application to add callbacks to (add one under clients:)")
	}
	for _, cb := range urls {
		u, err := url.Parse(cb)
		if err != nil || u.Scheme == "" || u.Fragment != "" || strings.Contains(cb, "#") {
			return fmt.Errorf("%q: must be an absolute URL without fragment, e.g. http://localhost:8080/oauth/callback", cb)
		}
		if !slices.Contains(c.Clients[i].Callbacks, cb) {
			c.Clients[i].Callbacks = append(c.Clients[i].Callbacks, cb)
		}
	}
	return nil
}

// AddAPIs adds an API (an audience) per identifier, shaped like the default tenant's API: scopes
// mcp:read and mcp:write, offline access allowed. An identifier the tenant already has is an error
// (it would shadow that API's settings).
func (c *Config) AddAPIs(identifiers ...string) error {
	for _, id := range identifiers {
		if strings.TrimSpace(id) == "" || strings.ContainsAny(id, " \t\n") {
			return fmt.Errorf("%q: must be a non-empty string without spaces, e.g. http://localhost:8080/mcp", id)
		}
		for _, a := range c.APIs {
			if a.Identifier == id {
				return fmt.Errorf("%q: the tenant already has this API", id)
			}
		}
		c.APIs = append(c.APIs, API{
			Name: "extra API " + id, Identifier: id, AllowOfflineAccess: true,
			Scopes: []Scope{
				{Value: "mcp:read", Description: "Read through MCP"},
				{Value: "mcp:write", Description: "Change through MCP"},
			},
		})
	}
	return nil
}

// Load reads a YAML file. Unknown fields are errors so a typo does not silently change behaviour.
// Fields left out keep their zero value (not the defaults): a file describes a whole tenant.
func Load(path string) (Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("read mock Auth0 config: %w", err)
	}
	return Parse(b)
}

// Parse decodes YAML (or JSON) strictly.
func Parse(b []byte) (Config, error) {
	var c Config
	if err := yaml.UnmarshalStrict(b, &c); err != nil {
		return Config{}, fmt.Errorf("parse mock Auth0 config: %w", err)
	}
	return c, nil
}

// FieldError names the offending field of an invalid configuration.
type FieldError struct {
	Field string
	Msg   string
}

func (e *FieldError) Error() string { return fmt.Sprintf("config field %s: %s", e.Field, e.Msg) }

// Validate checks the configuration and returns every problem found, each naming its field.
func (c *Config) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, &FieldError{Field: field, Msg: fmt.Sprintf(format, args...)})
	}
	if c.Issuer != "" {
		u, err := url.Parse(c.Issuer)
		switch {
		case err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "":
			bad("issuer", "must be an absolute http(s) URL such as https://tenant.us.auth0.com/")
		case !strings.HasSuffix(c.Issuer, "/"):
			bad("issuer", "must end with \"/\" like every Auth0 issuer (got %q)", c.Issuer)
		case u.RawQuery != "" || u.Fragment != "":
			bad("issuer", "must not have a query or fragment")
		}
	}
	switch c.Tenant.ResourceParameterProfile {
	case "", "reject", "audience":
	default:
		bad("tenant.resource_parameter_profile", "must be \"reject\" or \"audience\" (got %q)", c.Tenant.ResourceParameterProfile)
	}
	if a := c.Tenant.PostLoginAction; a != nil {
		for f, name := range map[string]string{"groups_claim": a.GroupsClaim, "roles_claim": a.RolesClaim} {
			if slices.Contains(ReservedClaims, name) {
				bad("tenant.post_login_action."+f, "%q is a reserved claim; Actions cannot set it (use a namespaced name such as https://example.com/groups)", name)
			}
		}
		if a.GroupsClaim != "" && a.GroupsClaim == a.RolesClaim {
			bad("tenant.post_login_action.roles_claim", "must differ from groups_claim")
		}
	}
	emails := map[string]bool{}
	subs := map[string]bool{}
	for i, u := range c.Users {
		f := fmt.Sprintf("users[%d]", i)
		if u.Email == "" || !strings.Contains(u.Email, "@") {
			bad(f+".email", "must be an email address")
		}
		if u.Password == "" {
			bad(f+".password", "must not be empty")
		}
		if emails[strings.ToLower(u.Email)] {
			bad(f+".email", "duplicate user %q", u.Email)
		}
		emails[strings.ToLower(u.Email)] = true
		if u.Sub != "" {
			if subs[u.Sub] {
				bad(f+".sub", "duplicate sub %q", u.Sub)
			}
			subs[u.Sub] = true
		}
	}
	ids := map[string]bool{}
	for i, a := range c.APIs {
		f := fmt.Sprintf("apis[%d]", i)
		if a.Identifier == "" {
			bad(f+".identifier", "must not be empty (it is the audience)")
		}
		if ids[a.Identifier] {
			bad(f+".identifier", "duplicate API identifier %q", a.Identifier)
		}
		ids[a.Identifier] = true
		if a.Name == "" {
			bad(f+".name", "must not be empty")
		}
		if a.SigningAlg != "" && a.SigningAlg != "RS256" {
			bad(f+".signing_alg", "only RS256 is supported (got %q)", a.SigningAlg)
		}
		switch a.TokenDialect {
		case "", "access_token", "access_token_authz", "rfc9068_profile", "rfc9068_profile_authz":
		default:
			bad(f+".token_dialect", "unknown dialect %q", a.TokenDialect)
		}
		if a.TokenLifetime < 0 {
			bad(f+".token_lifetime", "must be positive seconds")
		}
		if a.TokenEncryption != nil {
			if _, err := a.TokenEncryption.PublicKey(); err != nil {
				bad(f+".token_encryption.encryption_key", "%v", err)
			}
			if alg := a.TokenEncryption.EncryptionKey.Alg; alg != "" && alg != "RSA-OAEP-256" {
				bad(f+".token_encryption.encryption_key.alg", "only RSA-OAEP-256 is supported (got %q)", alg)
			}
			if ft := a.TokenEncryption.Format; ft != "" && ft != "compact-nested-jwe" {
				bad(f+".token_encryption.format", "only compact-nested-jwe is supported (got %q)", ft)
			}
		}
	}
	cids := map[string]bool{}
	for i, cl := range c.Clients {
		f := fmt.Sprintf("clients[%d]", i)
		if cl.ClientID == "" {
			bad(f+".client_id", "must not be empty")
		}
		if cids[cl.ClientID] {
			bad(f+".client_id", "duplicate client_id %q", cl.ClientID)
		}
		cids[cl.ClientID] = true
		switch cl.AppType {
		case "", "regular_web", "spa", "native", "non_interactive":
		default:
			bad(f+".app_type", "must be regular_web, spa, native or non_interactive (got %q)", cl.AppType)
		}
		switch cl.TokenEndpointAuthMethod {
		case "", "client_secret_post", "client_secret_basic":
			if cl.ClientSecret == "" {
				bad(f+".client_secret", "a confidential client needs a secret (or set token_endpoint_auth_method: none)")
			}
		case "none":
		default:
			bad(f+".token_endpoint_auth_method", "must be client_secret_post, client_secret_basic or none (got %q)", cl.TokenEndpointAuthMethod)
		}
		for j, cb := range cl.Callbacks {
			if u, err := url.Parse(cb); err != nil || u.Scheme == "" || u.Fragment != "" {
				bad(fmt.Sprintf("%s.callbacks[%d]", f, j), "must be an absolute URL without fragment (got %q)", cb)
			}
		}
		for j, g := range cl.GrantTypes {
			switch g {
			case "authorization_code", "refresh_token", "client_credentials", "implicit", "password":
			default:
				bad(fmt.Sprintf("%s.grant_types[%d]", f, j), "unknown grant type %q", g)
			}
		}
		switch cl.RefreshToken.RotationType {
		case "", "rotating", "non-rotating":
		default:
			bad(f+".refresh_token.rotation_type", "must be rotating or non-rotating")
		}
		if cl.RefreshToken.Leeway < 0 || cl.RefreshToken.TokenLifetime < 0 || cl.RefreshToken.IdleTokenLifetime < 0 {
			bad(f+".refresh_token", "lifetimes and leeway must be positive seconds")
		}
	}
	for i, g := range c.ClientGrants {
		f := fmt.Sprintf("client_grants[%d]", i)
		if !cids[g.ClientID] {
			bad(f+".client_id", "no client %q in clients", g.ClientID)
		}
		if g.Audience == "" {
			bad(f+".audience", "must not be empty (use \"{management}\" for the Management API)")
		} else if g.Audience != "{management}" && !ids[g.Audience] {
			bad(f+".audience", "no API with identifier %q in apis", g.Audience)
		}
	}
	return errors.Join(errs...)
}

// PublicKey parses the API's encryption public key (PEM public key or certificate).
func (t *TokenEncryption) PublicKey() (*rsa.PublicKey, error) {
	data := []byte(t.EncryptionKey.PEM)
	if t.EncryptionKey.File != "" {
		b, err := os.ReadFile(t.EncryptionKey.File)
		if err != nil {
			return nil, fmt.Errorf("read pem_file: %w", err)
		}
		data = b
	}
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, errors.New("no PEM data: set pem (an RSA public key or certificate) or pem_file")
	}
	var pub any
	switch block.Type {
	case "CERTIFICATE":
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("parse certificate: %w", err)
		}
		pub = cert.PublicKey
	case "PUBLIC KEY":
		k, err := x509.ParsePKIXPublicKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("parse public key: %w", err)
		}
		pub = k
	case "RSA PUBLIC KEY":
		k, err := x509.ParsePKCS1PublicKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("parse RSA public key: %w", err)
		}
		pub = k
	default:
		return nil, fmt.Errorf("PEM block %q is not a public key or certificate", block.Type)
	}
	rk, ok := pub.(*rsa.PublicKey)
	if !ok {
		return nil, errors.New("the encryption key must be RSA (RSA-OAEP-256)")
	}
	if rk.N.BitLen() < 2048 {
		return nil, errors.New("the encryption key must be at least 2048 bits")
	}
	return rk, nil
}
