// Package config turns oidc.yaml, environment variables and command-line flags (in that order of
// precedence, lowest first) into a validated Config. The seed's oidc.yaml keys (issuer, audience,
// client_id, client_secret_file, public_url, jwks_uri, scope) work unchanged; the rest are ours.
//
// Every scalar setting has an environment variable CNPG_MCP_<PATH> and a flag --<path> (see Fields).
// Secrets are only read from files (client_secret_file, signing_keys[].secret_file,
// sealing_keys[].secret_file, storage.dsn_file, upstream_jwe_private_key_file) and never logged.
// Validate reports every invalid or missing field at once, each by name with what to do.
package config

import (
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Config is the whole server configuration.
type Config struct {
	// Upstream OpenID provider (Auth0 or any OIDC provider) — the seed's oidc.yaml keys.
	Issuer           string `yaml:"issuer"`             // upstream issuer, e.g. https://tenant.eu.auth0.com/
	Audience         string `yaml:"audience"`           // Auth0 API identifier, sent upstream as audience
	ClientID         string `yaml:"client_id"`          // our confidential client at the upstream
	ClientSecretFile string `yaml:"client_secret_file"` // file holding its secret
	PublicURL        string `yaml:"public_url"`         // this server's public URL; also our issuer, verbatim
	JWKSURI          string `yaml:"jwks_uri"`           // overrides the upstream's discovered jwks_uri
	Scope            string `yaml:"scope"`              // scopes requested upstream

	// ClientAuthMethod is how we authenticate at the upstream token endpoint: client_secret_basic
	// (default) or client_secret_post — it must match the application's setting at the provider.
	ClientAuthMethod string `yaml:"client_auth_method"`

	ForwardResource    bool   `yaml:"forward_resource"`              // forward the client's resource upstream (default false)
	UpstreamJWEKeyFile string `yaml:"upstream_jwe_private_key_file"` // RSA key (PEM) to decrypt nested-JWE upstream access tokens
	CallbackPath       string `yaml:"callback_path"`                 // default /auth/callback
	Listen             string `yaml:"listen"`                        // default :8080
	LogLevel           string `yaml:"log_level"`                     // debug, info, warn, error
	ResourceName       string `yaml:"resource_name"`
	// InvalidGrantStatus is the HTTP status of invalid_grant token errors: 400 (RFC 6749, default)
	// or 401 for clients that only re-authorize on 401.
	InvalidGrantStatus int      `yaml:"invalid_grant_status"`
	ScopesSupported    []string `yaml:"scopes_supported"` // our scopes; default mcp:read mcp:write
	// ScopeDescriptions say in plain words what each scope allows; the consent page shows them.
	// Defaults describe mcp:read and mcp:write; an entry here replaces the default for its scope.
	ScopeDescriptions       map[string]string `yaml:"scope_descriptions"`
	ClientMetadataDocuments *bool             `yaml:"client_id_metadata_documents"`

	SigningKeyFile string       `yaml:"signing_key_file"` // shortcut for signing_keys: [{id: default, secret_file: …}]
	SealingKeyFile string       `yaml:"sealing_key_file"` // shortcut for sealing_keys: [{id: 1, secret_file: …}]
	SigningKeys    []SigningKey `yaml:"signing_keys"`
	SealingKeys    []SealingKey `yaml:"sealing_keys"`
	Storage        Storage      `yaml:"storage"`
	Lifetimes      Lifetimes    `yaml:"lifetimes"`
	Consent        Consent      `yaml:"consent"`
	MCP            MCP          `yaml:"mcp"`
	Kubernetes     Kubernetes   `yaml:"kubernetes"`

	// Filled by Validate from the files above.
	Secrets Secrets `yaml:"-"`
}

// SigningKey is one HMAC key for our access tokens. The first signs; the others verify until NotAfter.
type SigningKey struct {
	ID         string    `yaml:"id"`
	SecretFile string    `yaml:"secret_file"` // base64 of ≥ 32 random bytes
	NotAfter   time.Time `yaml:"not_after"`
}

// SealingKey is one AES-256 key for upstream tokens at rest. The first seals; all open.
type SealingKey struct {
	ID         int    `yaml:"id"`          // 1..255
	SecretFile string `yaml:"secret_file"` // base64 of exactly 32 random bytes
}

// Storage selects the backend.
type Storage struct {
	Driver  string `yaml:"driver"`   // bolt (default) or postgres
	Path    string `yaml:"path"`     // bolt file, default cnpg-mcp.db
	DSN     string `yaml:"dsn"`      // postgres; prefer dsn_file when it holds a password
	DSNFile string `yaml:"dsn_file"` // postgres DSN read from a file
}

// Lifetimes of the things we issue.
type Lifetimes struct {
	AccessToken          time.Duration `yaml:"access_token"`           // default 1h
	AuthorizationCode    time.Duration `yaml:"authorization_code"`     // default 5m, at most 10m
	Transaction          time.Duration `yaml:"transaction"`            // consent + upstream login, default 10m
	RefreshTokenIdle     time.Duration `yaml:"refresh_token_idle"`     // inactivity expiry, default 336h (14 days)
	RefreshTokenAbsolute time.Duration `yaml:"refresh_token_absolute"` // default 2160h (90 days)
	ClientMetadataCache  time.Duration `yaml:"client_metadata_cache"`  // CIMD default/max cache, default 1h
	// UnusedRegistration is how long a dynamically registered client that never completes an
	// authorization is kept (open registration must not grow the store without bound), default 24h.
	UnusedRegistration time.Duration `yaml:"unused_registration"`
	// RefreshReuseWindow: for this long after a rotation, the same client presenting the old
	// refresh token (while the new one is unused) gets the identical answer again — a retry of an
	// answer lost on the way — instead of being treated as reuse. 0 is strict reuse detection.
	// Default 60s, at most 10m (see server/README.md, "Refresh rotation").
	RefreshReuseWindow *time.Duration `yaml:"refresh_reuse_window"`
}

// DefaultRefreshReuseWindow is lifetimes.refresh_reuse_window when unset.
const DefaultRefreshReuseWindow = 60 * time.Second

// ReuseWindow is lifetimes.refresh_reuse_window with its default.
func (l Lifetimes) ReuseWindow() time.Duration {
	if l.RefreshReuseWindow == nil {
		return DefaultRefreshReuseWindow
	}
	return *l.RefreshReuseWindow
}

// Consent configures the consent page.
type Consent struct {
	Mode string `yaml:"mode"` // always (the only mode: consent on every authorization)
}

// MCP configures the MCP endpoint (read by the tools).
type MCP struct {
	Path     string `yaml:"path"` // default /mcp
	ReadOnly bool   `yaml:"read_only"`
	// Toolsets are the groups of tools to expose (server/tools.Toolsets); empty: all.
	Toolsets []string `yaml:"toolsets"`
	// AllowedOrigins are browser origins (https://host[:port]) allowed to call the MCP endpoint,
	// e.g. the MCP Inspector; the server's own origin is always allowed.
	AllowedOrigins []string `yaml:"allowed_origins"`
	// CompressToolsList sends tools/list gzip-compressed to clients that accept it (43 KB → 7 KB);
	// off by default (docs/mcp-endpoint.md#tool-list says when it pays).
	CompressToolsList bool `yaml:"compress_tools_list"`
}

// Kubernetes configures the cluster access of the tools.
type Kubernetes struct {
	Namespaces []string `yaml:"namespaces"` // allow-list; empty = all
	Kubeconfig string   `yaml:"kubeconfig"` // empty = in-cluster, then $KUBECONFIG
	Context    string   `yaml:"context"`    // kubeconfig context; empty = current
	// ImageTemplate turns a tool's postgres_version into spec.imageName, e.g.
	// "ghcr-mirror.example/cloudnative-pg/postgresql:{version}"; or ImageCatalog names a
	// ClusterImageCatalog. Both empty: the operator's default image.
	ImageTemplate string `yaml:"image_template"`
	ImageCatalog  string `yaml:"image_catalog"`
	// Identity is who tool calls act as in Kubernetes: "service-account" (default: the server's own
	// identity, the same for every user) or "impersonate" (the signed-in user: every request carries
	// Impersonate-User and Impersonate-Group from the grant's upstream identity; docs/rbac.md).
	Identity      string        `yaml:"identity"`
	Impersonation Impersonation `yaml:"impersonation"`
}

// Impersonation maps the signed-in user's upstream identity to the Kubernetes user and groups the
// server impersonates (kubernetes.identity: impersonate).
type Impersonation struct {
	UserClaim    string   `yaml:"user_claim"`    // claim naming the user: email (default, must be verified) or sub
	UserPrefix   string   `yaml:"user_prefix"`   // prepended to the user, e.g. "oidc:" (default none)
	GroupsClaim  string   `yaml:"groups_claim"`  // claim with the groups, e.g. https://example.com/groups (default none: no groups)
	GroupsPrefix string   `yaml:"groups_prefix"` // prepended to every group (default none)
	Users        []string `yaml:"users"`         // only these Kubernetes users (after the prefix); empty: any
	Groups       []string `yaml:"groups"`        // only these groups are passed on (others dropped); empty: all
	// MaxIdentityAge: a refresh of our tokens refreshes upstream, re-reading the user's claims, once
	// the kept ones are older (default 15m). A group removed upstream stops counting at the latest
	// max_identity_age + lifetimes.access_token later.
	MaxIdentityAge time.Duration `yaml:"max_identity_age"`
	CacheSize      int           `yaml:"cache_size"` // impersonated identities whose clients are kept (default 256)
}

// Identity modes (kubernetes.identity).
const (
	IdentityServiceAccount = "service-account"
	IdentityImpersonate    = "impersonate"
)

// Impersonating reports whether tool calls act as the signed-in user.
func (k Kubernetes) Impersonating() bool { return k.Identity == IdentityImpersonate }

// ToolsetNames are the toolsets of server/tools (a test there keeps this list equal to
// tools.ToolsetNames; config does not import the tools).
const ToolsetNames = "clusters, instances, roles, databases, backups, poolers, operations, observability"

// Secrets are the values read from the secret files.
type Secrets struct {
	ClientSecret   string
	SigningKeys    [][]byte
	SealingKeys    [][]byte
	DSN            string
	UpstreamJWEKey *rsa.PrivateKey
}

// Defaults fills unset fields.
func (c *Config) Defaults() {
	def := func(p *string, v string) {
		if *p == "" {
			*p = v
		}
	}
	defD := func(p *time.Duration, v time.Duration) {
		if *p == 0 {
			*p = v
		}
	}
	def(&c.Scope, "openid profile email offline_access")
	if c.SigningKeyFile != "" {
		c.SigningKeys = append([]SigningKey{{ID: "default", SecretFile: c.SigningKeyFile}}, c.SigningKeys...)
	}
	if c.SealingKeyFile != "" {
		c.SealingKeys = append([]SealingKey{{ID: 1, SecretFile: c.SealingKeyFile}}, c.SealingKeys...)
	}
	def(&c.CallbackPath, "/auth/callback")
	def(&c.ClientAuthMethod, "client_secret_basic")
	def(&c.Listen, ":8080")
	def(&c.LogLevel, "info")
	def(&c.Storage.Driver, "bolt")
	if c.Storage.Driver == "bolt" {
		def(&c.Storage.Path, "cnpg-mcp.db")
	}
	def(&c.Consent.Mode, "always")
	def(&c.MCP.Path, "/mcp")
	def(&c.ResourceName, "CloudNativePG MCP server")
	if c.InvalidGrantStatus == 0 {
		c.InvalidGrantStatus = 400
	}
	if len(c.ScopesSupported) == 0 {
		c.ScopesSupported = []string{"mcp:read", "mcp:write"}
	}
	for scope, text := range DefaultScopeDescriptions {
		if _, set := c.ScopeDescriptions[scope]; !set {
			if c.ScopeDescriptions == nil {
				c.ScopeDescriptions = map[string]string{}
			}
			c.ScopeDescriptions[scope] = text
		}
	}
	if c.ClientMetadataDocuments == nil {
		t := true
		c.ClientMetadataDocuments = &t
	}
	defD(&c.Lifetimes.AccessToken, time.Hour)
	defD(&c.Lifetimes.AuthorizationCode, 5*time.Minute)
	defD(&c.Lifetimes.Transaction, 10*time.Minute)
	defD(&c.Lifetimes.RefreshTokenIdle, 14*24*time.Hour)
	defD(&c.Lifetimes.RefreshTokenAbsolute, 90*24*time.Hour)
	defD(&c.Lifetimes.ClientMetadataCache, time.Hour)
	defD(&c.Lifetimes.UnusedRegistration, 24*time.Hour)
	if c.Lifetimes.RefreshReuseWindow == nil {
		d := DefaultRefreshReuseWindow
		c.Lifetimes.RefreshReuseWindow = &d
	}
	def(&c.Kubernetes.Identity, IdentityServiceAccount)
	def(&c.Kubernetes.Impersonation.UserClaim, "email")
	defD(&c.Kubernetes.Impersonation.MaxIdentityAge, 15*time.Minute)
	if c.Kubernetes.Impersonation.CacheSize == 0 {
		c.Kubernetes.Impersonation.CacheSize = 256
	}
}

// DefaultScopeDescriptions are the consent page's words for the tools' scopes.
var DefaultScopeDescriptions = map[string]string{
	"mcp:read":  "See your PostgreSQL clusters, databases, roles, backups and logs",
	"mcp:write": "Create, change and delete them",
}

// Field is one scalar setting reachable by environment variable and flag.
type Field struct {
	Path  string // yaml path, e.g. storage.driver
	Usage string
	Kind  string // string, bool, duration, int or list: the flag's type in --help
	Set   func(c *Config, v string) error
	Get   func(c *Config) string
}

// Env is the environment variable for the field: CNPG_MCP_STORAGE_DRIVER.
func (f Field) Env() string {
	return "CNPG_MCP_" + strings.ToUpper(strings.NewReplacer(".", "_", "-", "_").Replace(f.Path))
}

// Flag is the flag name: storage-driver.
func (f Field) Flag() string {
	return strings.NewReplacer(".", "-", "_", "-").Replace(f.Path)
}

func str(path, usage string, p func(*Config) *string) Field {
	return Field{Path: path, Usage: usage, Kind: "string",
		Set: func(c *Config, v string) error { *p(c) = v; return nil },
		Get: func(c *Config) string { return *p(c) }}
}

func parseBool(path, v string) (bool, error) {
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, fmt.Errorf("%s: %q is not a boolean (true/false)", path, v)
	}
	return b, nil
}

func boolean(path, usage string, p func(*Config) *bool) Field {
	return Field{Path: path, Usage: usage, Kind: "bool",
		Set: func(c *Config, v string) error {
			b, err := parseBool(path, v)
			*p(c) = b
			return err
		},
		Get: func(c *Config) string { return strconv.FormatBool(*p(c)) }}
}

// optBool is a boolean whose unset state means "the default" (nil until Defaults).
func optBool(path, usage string, p func(*Config) **bool) Field {
	return Field{Path: path, Usage: usage, Kind: "bool",
		Set: func(c *Config, v string) error {
			b, err := parseBool(path, v)
			if err == nil {
				*p(c) = &b
			}
			return err
		},
		Get: func(c *Config) string {
			if *p(c) == nil {
				return ""
			}
			return strconv.FormatBool(**p(c))
		}}
}

func duration(path, usage string, p func(*Config) *time.Duration) Field {
	return Field{Path: path, Usage: usage, Kind: "duration",
		Set: func(c *Config, v string) error {
			d, err := time.ParseDuration(v)
			if err != nil {
				return fmt.Errorf("%s: %q is not a duration (e.g. 1h, 15m)", path, v)
			}
			*p(c) = d
			return nil
		},
		Get: func(c *Config) string { return FormatDuration(*p(c)) }}
}

// FormatDuration prints d the way people write it: 1h, 15m, 336h, 1h30m (not 1h0m0s).
func FormatDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

func integer(path, usage string, p func(*Config) *int) Field {
	return Field{Path: path, Usage: usage, Kind: "int",
		Set: func(c *Config, v string) error {
			n, err := strconv.Atoi(v)
			if err != nil {
				return fmt.Errorf("%s: %q is not a whole number", path, v)
			}
			*p(c) = n
			return nil
		},
		Get: func(c *Config) string { return strconv.Itoa(*p(c)) }}
}

func list(path, usage string, p func(*Config) *[]string) Field {
	return Field{Path: path, Usage: usage, Kind: "list",
		Set: func(c *Config, v string) error {
			*p(c) = nil
			for _, s := range strings.Split(v, ",") {
				if s = strings.TrimSpace(s); s != "" {
					*p(c) = append(*p(c), s)
				}
			}
			return nil
		},
		Get: func(c *Config) string { return strings.Join(*p(c), ",") }}
}

// Fields lists every scalar setting with its environment variable and flag.
func Fields() []Field {
	return []Field{
		str("issuer", "upstream OIDC issuer URL", func(c *Config) *string { return &c.Issuer }),
		str("audience", "upstream API audience (Auth0 API identifier)", func(c *Config) *string { return &c.Audience }),
		str("client_id", "client ID at the upstream provider", func(c *Config) *string { return &c.ClientID }),
		str("client_secret_file", "file holding the upstream client secret", func(c *Config) *string { return &c.ClientSecretFile }),
		str("public_url", "public URL of this server (our OAuth issuer)", func(c *Config) *string { return &c.PublicURL }),
		str("jwks_uri", "override the upstream JWKS URL", func(c *Config) *string { return &c.JWKSURI }),
		str("scope", "scopes requested from the upstream", func(c *Config) *string { return &c.Scope }),
		str("client_auth_method", "client_secret_basic or client_secret_post at the upstream token endpoint", func(c *Config) *string { return &c.ClientAuthMethod }),
		boolean("forward_resource", "forward the client's resource parameter upstream", func(c *Config) *bool { return &c.ForwardResource }),
		str("upstream_jwe_private_key_file", "RSA private key (PEM) to decrypt nested-JWE upstream tokens", func(c *Config) *string { return &c.UpstreamJWEKeyFile }),
		str("callback_path", "path of the upstream callback", func(c *Config) *string { return &c.CallbackPath }),
		str("listen", "listen address", func(c *Config) *string { return &c.Listen }),
		str("log_level", "debug, info, warn or error", func(c *Config) *string { return &c.LogLevel }),
		str("resource_name", "human-readable name in the protected-resource metadata", func(c *Config) *string { return &c.ResourceName }),
		{Path: "invalid_grant_status", Usage: "HTTP status of invalid_grant token errors (400 or 401)", Kind: "int",
			Set: func(c *Config, v string) error {
				n, err := strconv.Atoi(v)
				if err != nil {
					return fmt.Errorf("invalid_grant_status: %q is not a number", v)
				}
				c.InvalidGrantStatus = n
				return nil
			},
			Get: func(c *Config) string { return strconv.Itoa(c.InvalidGrantStatus) }},
		list("scopes_supported", "scopes this server grants", func(c *Config) *[]string { return &c.ScopesSupported }),
		optBool("client_id_metadata_documents", "accept Client ID Metadata Documents (URL client IDs)", func(c *Config) **bool { return &c.ClientMetadataDocuments }),
		str("signing_key_file", "shortcut: a single access-token signing key file (id \"default\")", func(c *Config) *string { return &c.SigningKeyFile }),
		str("sealing_key_file", "shortcut: a single sealing key file (id 1)", func(c *Config) *string { return &c.SealingKeyFile }),
		str("storage.driver", "bolt or postgres", func(c *Config) *string { return &c.Storage.Driver }),
		str("storage.path", "bolt database file", func(c *Config) *string { return &c.Storage.Path }),
		str("storage.dsn_file", "file holding the PostgreSQL DSN", func(c *Config) *string { return &c.Storage.DSNFile }),
		str("storage.dsn", "PostgreSQL DSN (prefer storage.dsn_file for passwords)", func(c *Config) *string { return &c.Storage.DSN }),
		duration("lifetimes.access_token", "access-token lifetime (at most 24h)", func(c *Config) *time.Duration { return &c.Lifetimes.AccessToken }),
		duration("lifetimes.authorization_code", "authorization-code lifetime (at most 10m)", func(c *Config) *time.Duration { return &c.Lifetimes.AuthorizationCode }),
		duration("lifetimes.transaction", "consent + upstream login time limit (at most 1h)", func(c *Config) *time.Duration { return &c.Lifetimes.Transaction }),
		duration("lifetimes.refresh_token_idle", "refresh-token inactivity expiry", func(c *Config) *time.Duration { return &c.Lifetimes.RefreshTokenIdle }),
		duration("lifetimes.refresh_token_absolute", "refresh-token absolute expiry", func(c *Config) *time.Duration { return &c.Lifetimes.RefreshTokenAbsolute }),
		duration("lifetimes.refresh_reuse_window", "how long the same client may retry a rotated-out refresh token and get the identical answer (0: strict)", func(c *Config) *time.Duration {
			if c.Lifetimes.RefreshReuseWindow == nil {
				c.Lifetimes.RefreshReuseWindow = new(time.Duration)
			}
			return c.Lifetimes.RefreshReuseWindow
		}),
		duration("lifetimes.client_metadata_cache", "default and longest cache time of client metadata documents (at most 24h)", func(c *Config) *time.Duration { return &c.Lifetimes.ClientMetadataCache }),
		duration("lifetimes.unused_registration", "how long a registered client that never completes an authorization is kept", func(c *Config) *time.Duration { return &c.Lifetimes.UnusedRegistration }),
		str("consent.mode", "when to ask for consent: always (the only mode)", func(c *Config) *string { return &c.Consent.Mode }),
		str("mcp.path", "path of the MCP endpoint", func(c *Config) *string { return &c.MCP.Path }),
		boolean("mcp.read_only", "expose read-only tools only", func(c *Config) *bool { return &c.MCP.ReadOnly }),
		list("mcp.toolsets", "groups of tools to expose, of "+ToolsetNames+" (default: all)", func(c *Config) *[]string { return &c.MCP.Toolsets }),
		list("mcp.allowed_origins", "browser origins allowed to call the MCP endpoint", func(c *Config) *[]string { return &c.MCP.AllowedOrigins }),
		boolean("mcp.compress_tools_list", "send tools/list gzip-compressed to clients that accept it (for clients across slow links)", func(c *Config) *bool { return &c.MCP.CompressToolsList }),
		list("kubernetes.namespaces", "namespaces the tools may touch (empty: all)", func(c *Config) *[]string { return &c.Kubernetes.Namespaces }),
		str("kubernetes.context", "kubeconfig context (empty: current)", func(c *Config) *string { return &c.Kubernetes.Context }),
		str("kubernetes.image_template", "postgres_version → image, e.g. registry/postgresql:{version}", func(c *Config) *string { return &c.Kubernetes.ImageTemplate }),
		str("kubernetes.image_catalog", "ClusterImageCatalog used for postgres_version", func(c *Config) *string { return &c.Kubernetes.ImageCatalog }),
		str("kubernetes.kubeconfig", "kubeconfig file (empty: in-cluster, then $KUBECONFIG, then ~/.kube/config)", func(c *Config) *string { return &c.Kubernetes.Kubeconfig }),
		str("kubernetes.identity", "who tool calls act as in Kubernetes: service-account (the server) or impersonate (the signed-in user)", func(c *Config) *string { return &c.Kubernetes.Identity }),
		str("kubernetes.impersonation.user_claim", "claim naming the Kubernetes user: email (must be verified) or sub", func(c *Config) *string { return &c.Kubernetes.Impersonation.UserClaim }),
		str("kubernetes.impersonation.user_prefix", "prefix of the Kubernetes user name, e.g. oidc:", func(c *Config) *string { return &c.Kubernetes.Impersonation.UserPrefix }),
		str("kubernetes.impersonation.groups_claim", "claim holding the user's groups, e.g. https://example.com/groups (empty: no groups)", func(c *Config) *string { return &c.Kubernetes.Impersonation.GroupsClaim }),
		str("kubernetes.impersonation.groups_prefix", "prefix of every Kubernetes group name, e.g. oidc:", func(c *Config) *string { return &c.Kubernetes.Impersonation.GroupsPrefix }),
		list("kubernetes.impersonation.users", "the only Kubernetes users the server may act as (empty: any)", func(c *Config) *[]string { return &c.Kubernetes.Impersonation.Users }),
		list("kubernetes.impersonation.groups", "the only groups passed on to Kubernetes (empty: all)", func(c *Config) *[]string { return &c.Kubernetes.Impersonation.Groups }),
		duration("kubernetes.impersonation.max_identity_age", "re-read the user's claims upstream at the next token refresh once they are this old", func(c *Config) *time.Duration { return &c.Kubernetes.Impersonation.MaxIdentityAge }),
		integer("kubernetes.impersonation.cache_size", "impersonated identities whose Kubernetes clients are kept", func(c *Config) *int { return &c.Kubernetes.Impersonation.CacheSize }),
	}
}

// Describe names a setting the way an operator fixes it: the config key, its environment variable
// and its flag, e.g. "client_secret_file (CNPG_MCP_CLIENT_SECRET_FILE / --client-secret-file)".
func Describe(path string) string {
	for _, f := range Fields() {
		if f.Path == path {
			return fmt.Sprintf("%s (%s / --%s)", f.Path, f.Env(), f.Flag())
		}
	}
	return path
}

// fieldFlag is a Field as a command-line flag: it records the value given (applied later, after
// the file and the environment, so flags win) and tells --help its type, default and variable.
type fieldFlag struct {
	field Field
	def   string // shown as the default in --help
	value string
	set   bool
}

func (v *fieldFlag) String() string {
	if v == nil {
		return ""
	}
	return v.value
}

func (v *fieldFlag) Set(s string) error { v.value, v.set = s, true; return nil }

// IsBoolFlag lets --mcp-read-only stand alone (flag package convention); --mcp-read-only=false works too.
func (v *fieldFlag) IsBoolFlag() bool { return v.field.Kind == "bool" }

// Type, DefaultText and EnvVar feed PrintFlags.
func (v *fieldFlag) Type() string        { return v.field.Kind }
func (v *fieldFlag) DefaultText() string { return v.def }
func (v *fieldFlag) EnvVar() string      { return v.field.Env() }

// Flags are config fields registered on a FlagSet.
type Flags struct{ vals []*fieldFlag }

// RegisterFlags adds fields to fs as typed flags (--storage-driver, --mcp-read-only, …) whose help
// shows the default each gets from Defaults.
func RegisterFlags(fs *flag.FlagSet, fields []Field) *Flags {
	defaults := &Config{}
	defaults.Defaults()
	fl := &Flags{}
	for _, f := range fields {
		v := &fieldFlag{field: f, def: f.Get(defaults)}
		if v.def == "false" || v.def == "0" {
			v.def = ""
		}
		fs.Var(v, f.Flag(), f.Usage)
		fl.vals = append(fl.vals, v)
	}
	return fl
}

// Apply sets on c the fields whose flags were given, reporting every bad value at once.
func (fl *Flags) Apply(c *Config) error {
	var errs []error
	for _, v := range fl.vals {
		if v.set {
			if err := v.field.Set(c, v.value); err != nil {
				errs = append(errs, fmt.Errorf("--%s: %w", v.field.Flag(), err))
			}
		}
	}
	return errors.Join(errs...)
}

// PrintFlags writes fs's flags for --help: one "--name type" line each, then what it does, its
// default and its environment variable. Flags registered with RegisterFlags know their type,
// default and variable; plain flag package flags use their own (and a back-quoted name in the
// usage, as flag.PrintDefaults does).
func PrintFlags(w io.Writer, fs *flag.FlagSet) {
	fs.VisitAll(func(f *flag.Flag) {
		typ, usage := flag.UnquoteUsage(f)
		def, env := f.DefValue, ""
		if fv, ok := f.Value.(*fieldFlag); ok {
			typ, usage, def, env = fv.Type(), fv.field.Usage, fv.DefaultText(), fv.EnvVar()
			if typ == "bool" {
				typ = ""
			}
		}
		if def == "false" || def == "0" {
			def = ""
		}
		line := "  --" + f.Name
		if typ != "" {
			line += " " + typ
		}
		var notes []string
		if typ == "list" {
			notes = append(notes, "comma-separated")
		}
		if def != "" {
			notes = append(notes, "default "+def)
		}
		if env != "" {
			notes = append(notes, "env "+env)
		}
		if len(notes) > 0 {
			usage += " (" + strings.Join(notes, "; ") + ")"
		}
		fmt.Fprintf(w, "%s\n        %s\n", line, usage)
	})
}

// FlagError explains a command-line parse error: the flag package's message, the flag the user
// probably meant for an unknown one, and where the list is.
func FlagError(fs *flag.FlagSet, err error, help string) error {
	msg := strings.Replace(err.Error(), ": -", ": --", 1)
	if name, ok := strings.CutPrefix(err.Error(), "flag provided but not defined: -"); ok {
		name = strings.TrimPrefix(name, "-")
		var near []string
		fs.VisitAll(func(f *flag.Flag) {
			if strings.HasSuffix(f.Name, "-"+name) || strings.HasPrefix(f.Name, name+"-") || strings.Contains(f.Name, name) && len(name) >= 4 {
				near = append(near, "--"+f.Name)
			}
		})
		if len(near) > 0 {
			msg += "; did you mean " + strings.Join(near, " or ") + "?"
		}
	}
	return fmt.Errorf("%s (%s lists the flags)", msg, help)
}

// Load reads the config file named by --config (or $CNPG_MCP_CONFIG), then applies environment
// variables and flags, fills defaults and validates. args excludes the program name. --help
// returns flag.ErrHelp (the caller prints PrintFlags(NewFlagSet()) on stdout and exits 0).
func Load(args []string, getenv func(string) string) (*Config, error) {
	fs, path, flags := newFlagSet(getenv)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, err
		}
		return nil, FlagError(fs, err, "cnpg-mcp-server --help")
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments: %q (cnpg-mcp-server --help lists the commands and flags)", fs.Args())
	}
	c := &Config{}
	if *path != "" {
		b, err := os.ReadFile(*path)
		if err != nil {
			return nil, fmt.Errorf("read config file: %w", err)
		}
		if err := Parse(b, c); err != nil {
			return nil, fmt.Errorf("config file %s: %w", *path, err)
		}
	}
	var errs []error
	for _, f := range Fields() {
		if v := getenv(f.Env()); v != "" {
			if err := f.Set(c, v); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", f.Env(), err))
			}
		}
	}
	if err := flags.Apply(c); err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	c.Defaults()
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return c, nil
}

// NewFlagSet returns the flags of `cnpg-mcp-server serve` (for --help).
func NewFlagSet() *flag.FlagSet {
	fs, _, _ := newFlagSet(func(string) string { return "" })
	return fs
}

func newFlagSet(getenv func(string) string) (*flag.FlagSet, *string, *Flags) {
	fs := flag.NewFlagSet("cnpg-mcp-server", flag.ContinueOnError)
	fs.SetOutput(io.Discard) // the caller reports errors and prints the help
	fs.Usage = func() {}
	path := fs.String("config", getenv("CNPG_MCP_CONFIG"), "config `file` (oidc.yaml) with every setting below as a YAML key (env CNPG_MCP_CONFIG)")
	return fs, path, RegisterFlags(fs, Fields())
}

// Parse decodes YAML strictly (unknown keys are errors, so typos do not pass silently).
func Parse(b []byte, c *Config) error {
	dec := yaml.NewDecoder(strings.NewReader(string(b)))
	dec.KnownFields(true)
	if err := dec.Decode(c); err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	return nil
}

// IssuerURL is our canonical issuer: public_url exactly as configured (byte-identical everywhere).
func (c *Config) IssuerURL() string { return c.PublicURL }

// BaseURL is the public URL without a trailing slash; endpoints are BaseURL + path.
func (c *Config) BaseURL() string { return strings.TrimSuffix(c.PublicURL, "/") }

// ResourceURL is the canonical MCP resource URI (the aud of our tokens).
func (c *Config) ResourceURL() string { return c.BaseURL() + c.MCP.Path }

// Dev reports whether the public URL is plain http on loopback (development only).
func (c *Config) Dev() bool {
	u, err := url.Parse(c.PublicURL)
	return err == nil && u.Scheme == "http" && IsLoopbackHost(u.Hostname())
}

// IsLoopbackHost reports whether host is localhost or a loopback IP literal.
func IsLoopbackHost(h string) bool {
	if strings.EqualFold(h, "localhost") {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// Validate checks every field, reads the secret files into c.Secrets, and reports all problems.
func (c *Config) Validate() error {
	var errs []error
	bad := func(field, format string, a ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", field, fmt.Sprintf(format, a...)))
	}
	if c.Issuer == "" || c.ClientID == "" || c.ClientSecretFile == "" {
		errs = append(errs, errors.New("the upstream identity provider is not configured: set issuer, client_id and client_secret_file (oidc.yaml, CNPG_MCP_ISSUER/CNPG_MCP_CLIENT_ID/CNPG_MCP_CLIENT_SECRET_FILE or flags); the server never starts without one"))
	}
	if c.Issuer != "" {
		if u, err := url.Parse(c.Issuer); err != nil || u.Host == "" || (u.Scheme != "https" && !(u.Scheme == "http" && IsLoopbackHost(u.Hostname()))) {
			bad("issuer", "%q must be an absolute https URL (http only on loopback for development)", c.Issuer)
		}
	}
	if c.JWKSURI != "" {
		if u, err := url.Parse(c.JWKSURI); err != nil || u.Host == "" || (u.Scheme != "https" && !(u.Scheme == "http" && IsLoopbackHost(u.Hostname()))) {
			bad("jwks_uri", "%q must be an absolute https URL", c.JWKSURI)
		}
	}
	if c.ClientSecretFile != "" {
		s, err := readSecret(c.ClientSecretFile)
		if err != nil {
			bad("client_secret_file", "%v", err)
		}
		c.Secrets.ClientSecret = s
	}
	if c.PublicURL == "" {
		bad("public_url", "required: the URL MCP clients use to reach this server, e.g. https://mcp.example.com")
	} else if u, err := url.Parse(c.PublicURL); err != nil || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" || strings.Contains(c.PublicURL, "#") {
		bad("public_url", "%q must be an absolute URL without user info, query or fragment", c.PublicURL)
	} else if u.Scheme != "https" && !(u.Scheme == "http" && IsLoopbackHost(u.Hostname())) {
		bad("public_url", "%q must use https (plain http is allowed only on a loopback host, for development)", c.PublicURL)
	}
	for _, p := range []struct{ name, v string }{{"mcp.path", c.MCP.Path}, {"callback_path", c.CallbackPath}} {
		if !strings.HasPrefix(p.v, "/") || strings.ContainsAny(p.v, "?#") {
			bad(p.name, "%q must be an absolute path starting with /", p.v)
		}
	}
	if len(c.SigningKeys) == 0 {
		bad("signing_keys", "at least one access-token signing key is required (e.g. signing_key_file: /secrets/signing.key holding `openssl rand -base64 32`); it is never derived from the upstream secret")
	}
	seenKid := map[string]bool{}
	c.Secrets.SigningKeys = nil
	for i, k := range c.SigningKeys {
		f := fmt.Sprintf("signing_keys[%d]", i)
		if k.ID == "" || seenKid[k.ID] {
			bad(f+".id", "required and unique")
		}
		seenKid[k.ID] = true
		b, err := readKey(k.SecretFile)
		if err != nil {
			bad(f+".secret_file", "%v", err)
		} else if len(b) < 32 {
			bad(f+".secret_file", "key must be at least 32 bytes after base64 decoding, got %d", len(b))
		}
		c.Secrets.SigningKeys = append(c.Secrets.SigningKeys, b)
	}
	if len(c.SealingKeys) == 0 {
		bad("sealing_keys", "at least one sealing key is required to encrypt upstream tokens at rest (e.g. sealing_key_file: /secrets/sealing.key holding `openssl rand -base64 32`)")
	}
	seenID := map[int]bool{}
	c.Secrets.SealingKeys = nil
	for i, k := range c.SealingKeys {
		f := fmt.Sprintf("sealing_keys[%d]", i)
		if k.ID < 1 || k.ID > 255 || seenID[k.ID] {
			bad(f+".id", "must be a unique number from 1 to 255")
		}
		seenID[k.ID] = true
		b, err := readKey(k.SecretFile)
		if err != nil {
			bad(f+".secret_file", "%v", err)
		} else if len(b) != 32 {
			bad(f+".secret_file", "key must be exactly 32 bytes after base64 decoding, got %d", len(b))
		}
		c.Secrets.SealingKeys = append(c.Secrets.SealingKeys, b)
	}
	switch c.Storage.Driver {
	case "bolt":
		if c.Storage.Path == "" {
			bad("storage.path", "required for the bolt driver")
		}
	case "postgres":
		c.Secrets.DSN = c.Storage.DSN
		if c.Storage.DSNFile != "" {
			s, err := readSecret(c.Storage.DSNFile)
			if err != nil {
				bad("storage.dsn_file", "%v", err)
			}
			c.Secrets.DSN = s
		}
		if c.Secrets.DSN == "" {
			bad("storage.dsn_file", "the postgres driver needs a DSN (storage.dsn_file or storage.dsn)")
		}
	default:
		bad("storage.driver", "%q is not a driver: use bolt (embedded file, one replica) or postgres (several replicas)", c.Storage.Driver)
	}
	l := c.Lifetimes
	pos := func(name string, d, max time.Duration) {
		if d <= 0 || (max > 0 && d > max) {
			bad("lifetimes."+name, "%s must be positive and at most %s", d, max)
		}
	}
	pos("access_token", l.AccessToken, 24*time.Hour)
	pos("authorization_code", l.AuthorizationCode, 10*time.Minute)
	pos("transaction", l.Transaction, time.Hour)
	pos("refresh_token_idle", l.RefreshTokenIdle, 0)
	pos("refresh_token_absolute", l.RefreshTokenAbsolute, 0)
	pos("client_metadata_cache", l.ClientMetadataCache, 24*time.Hour)
	pos("unused_registration", l.UnusedRegistration, 0)
	if l.RefreshTokenIdle > l.RefreshTokenAbsolute {
		bad("lifetimes.refresh_token_idle", "must not exceed lifetimes.refresh_token_absolute")
	}
	if w := l.ReuseWindow(); w < 0 || w > 10*time.Minute || w > l.RefreshTokenIdle {
		bad("lifetimes.refresh_reuse_window", "%s must be from 0 (strict reuse detection) to 10m, and not longer than lifetimes.refresh_token_idle", w)
	}
	if c.InvalidGrantStatus != 400 && c.InvalidGrantStatus != 401 {
		bad("invalid_grant_status", "%d: use 400 (RFC 6749) or 401", c.InvalidGrantStatus)
	}
	if c.ClientAuthMethod != "client_secret_basic" && c.ClientAuthMethod != "client_secret_post" {
		bad("client_auth_method", "%q: use client_secret_basic or client_secret_post (as set for the application at the provider)", c.ClientAuthMethod)
	}
	if c.Consent.Mode != "always" {
		bad("consent.mode", "%q is not supported: the only mode is always (consent on every authorization; remembered consent is not offered)", c.Consent.Mode)
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		bad("log_level", "%q: use debug, info, warn or error", c.LogLevel)
	}
	for _, s := range c.ScopesSupported {
		if s == "" || strings.ContainsAny(s, " \"\\") || s == "offline_access" {
			bad("scopes_supported", "%q is not a valid scope (offline_access is implied by refresh support and not listed)", s)
		}
	}
	for scope, text := range c.ScopeDescriptions {
		_, isDefault := DefaultScopeDescriptions[scope]
		switch {
		case !isDefault && !slices.Contains(c.ScopesSupported, scope):
			bad("scope_descriptions", "%q is not one of scopes_supported (%s): describe only scopes this server grants", scope, strings.Join(c.ScopesSupported, ", "))
		case strings.TrimSpace(text) == "" || len(text) > 200:
			bad("scope_descriptions", "%q: the description must be 1 to 200 characters of plain words for the consent page", scope)
		}
	}
	switch k := c.Kubernetes; k.Identity {
	case IdentityServiceAccount:
	case IdentityImpersonate:
		im := k.Impersonation
		if strings.TrimSpace(im.UserClaim) == "" {
			bad("kubernetes.impersonation.user_claim", "must name the claim that becomes the Kubernetes user, e.g. email or sub")
		}
		if im.UserClaim == "email" && !slices.Contains(strings.Fields(c.Scope), "email") {
			bad("kubernetes.impersonation.user_claim", "is email, but scope (%q) does not ask the identity provider for it: add email to scope", c.Scope)
		}
		for name, prefix := range map[string]string{"user_prefix": im.UserPrefix, "groups_prefix": im.GroupsPrefix} {
			if strings.HasPrefix(prefix, "system:") {
				bad("kubernetes.impersonation."+name, "%q would name Kubernetes system identities; use another prefix such as oidc:", prefix)
			}
		}
		if im.MaxIdentityAge <= 0 || im.MaxIdentityAge > 24*time.Hour {
			bad("kubernetes.impersonation.max_identity_age", "%s must be positive and at most 24h", im.MaxIdentityAge)
		}
		if im.CacheSize < 1 || im.CacheSize > 100000 {
			bad("kubernetes.impersonation.cache_size", "%d must be from 1 to 100000", im.CacheSize)
		}
	default:
		bad("kubernetes.identity", "%q: use service-account (tool calls act as the server) or impersonate (as the signed-in user)", k.Identity)
	}
	if c.UpstreamJWEKeyFile != "" {
		k, err := readRSAKey(c.UpstreamJWEKeyFile)
		if err != nil {
			bad("upstream_jwe_private_key_file", "%v", err)
		}
		c.Secrets.UpstreamJWEKey = k
	}
	return errors.Join(errs...)
}

func readSecret(path string) (string, error) {
	if path == "" {
		return "", errors.New("no file given")
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("cannot read %s: %w", path, err)
	}
	s := strings.TrimSpace(string(b))
	if s == "" {
		return "", fmt.Errorf("%s is empty", path)
	}
	return s, nil
}

// readKey reads base64 (standard or URL alphabet, padded or not) key material.
func readKey(path string) ([]byte, error) {
	s, err := readSecret(path)
	if err != nil {
		return nil, err
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			return b, nil
		}
	}
	return nil, fmt.Errorf("%s must hold base64 key material (generate with `openssl rand -base64 32`)", path)
}

func readRSAKey(path string) (*rsa.PrivateKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read %s: %w", path, err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		return nil, fmt.Errorf("%s is not PEM", path)
	}
	if k, err := x509.ParsePKCS1PrivateKey(blk.Bytes); err == nil {
		return k, nil
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%s: not an RSA private key (PKCS#1 or PKCS#8)", path)
	}
	rk, ok := k.(*rsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("%s: not an RSA private key", path)
	}
	return rk, nil
}
