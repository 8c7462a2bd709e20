package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestDefaultIsValid(t *testing.T) {
	c := Default()
	if err := c.Validate(); err != nil {
		t.Fatalf("default config invalid: %v", err)
	}
}

func TestValidateNamesTheField(t *testing.T) {
	cases := []struct {
		name   string
		mutate func(*Config)
		field  string
	}{
		{"issuer without slash", func(c *Config) { c.Issuer = "https://t.example" }, "issuer"},
		{"issuer not a URL", func(c *Config) { c.Issuer = "tenant/" }, "issuer"},
		{"user email", func(c *Config) { c.Users[0].Email = "nope" }, "users[0].email"},
		{"user password", func(c *Config) { c.Users[0].Password = "" }, "users[0].password"},
		{"duplicate user", func(c *Config) { c.Users = append(c.Users[:1], c.Users[0]) }, "users[1].email"},
		{"reserved action claim", func(c *Config) { c.Tenant.PostLoginAction.GroupsClaim = "sub" }, "tenant.post_login_action.groups_claim"},
		{"same action claims", func(c *Config) { c.Tenant.PostLoginAction.RolesClaim = c.Tenant.PostLoginAction.GroupsClaim }, "tenant.post_login_action.roles_claim"},
		{"api identifier", func(c *Config) { c.APIs[0].Identifier = "" }, "apis[0].identifier"},
		{"api alg", func(c *Config) { c.APIs[0].SigningAlg = "HS256" }, "apis[0].signing_alg"},
		{"api dialect", func(c *Config) { c.APIs[0].TokenDialect = "x" }, "apis[0].token_dialect"},
		{"api encryption key", func(c *Config) {
			c.APIs[0].TokenEncryption = &TokenEncryption{EncryptionKey: EncryptionKey{PEM: "not pem"}}
		}, "apis[0].token_encryption.encryption_key"},
		{"client secret", func(c *Config) { c.Clients[0].ClientSecret = "" }, "clients[0].client_secret"},
		{"client callback fragment", func(c *Config) { c.Clients[0].Callbacks = []string{"https://x/cb#f"} }, "clients[0].callbacks[0]"},
		{"client grant type", func(c *Config) { c.Clients[0].GrantTypes = []string{"magic"} }, "clients[0].grant_types[0]"},
		{"client app type", func(c *Config) { c.Clients[0].AppType = "desktop" }, "clients[0].app_type"},
		{"duplicate client", func(c *Config) { c.Clients = append(c.Clients, c.Clients[0]) }, "clients[2].client_id"},
		{"grant client", func(c *Config) { c.ClientGrants[0].ClientID = "ghost" }, "client_grants[0].client_id"},
		{"grant audience", func(c *Config) { c.ClientGrants[0].Audience = "https://nope/" }, "client_grants[0].audience"},
		{"resource profile", func(c *Config) { c.Tenant.ResourceParameterProfile = "forward" }, "tenant.resource_parameter_profile"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := Default()
			tc.mutate(&c)
			err := c.Validate()
			if err == nil || !strings.Contains(err.Error(), "config field "+tc.field+":") {
				t.Fatalf("want an error naming %s, got %v", tc.field, err)
			}
		})
	}
}

func TestLoadStrictAndDurations(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yaml")
	if err := os.WriteFile(good, []byte(`
issuer: https://tenant.example/
lifetimes:
  authorization_code: 2m
  id_token: 600
users:
  - email: a@example.com
    password: pw
apis:
  - name: api
    identifier: https://api.example/
clients:
  - client_id: c1
    client_secret: s1
    name: one
`), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Load(good)
	if err != nil {
		t.Fatal(err)
	}
	if c.Lifetimes.AuthorizationCode.D(0).Minutes() != 2 || c.Lifetimes.IDToken.D(0).Seconds() != 600 {
		t.Fatalf("durations: %+v", c.Lifetimes)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(dir, "bad.yaml")
	_ = os.WriteFile(bad, []byte("users:\n  - email: a@example.com\n    pasword: typo\n"), 0o600)
	if _, err := Load(bad); err == nil || !strings.Contains(err.Error(), "pasword") {
		t.Fatalf("unknown field not reported: %v", err)
	}
	_ = os.WriteFile(bad, []byte("lifetimes:\n  session: soon\n"), 0o600)
	if _, err := Load(bad); err == nil || !strings.Contains(err.Error(), "invalid duration") {
		t.Fatalf("bad duration not reported: %v", err)
	}
	if _, err := Load(filepath.Join(dir, "missing.yaml")); err == nil {
		t.Fatal("missing file accepted")
	}
}

func TestAddCallbacksAndAPIs(t *testing.T) {
	c := Default()
	if err := c.AddCallbacks("http://localhost:8080/oauth/callback", "http://localhost:8080/oauth/callback"); err != nil {
		t.Fatal(err)
	}
	if got := c.Clients[0].Callbacks; len(got) != 3 || got[2] != "http://localhost:8080/oauth/callback" {
		t.Fatalf("callbacks of %s: %v (want the URL added once)", c.Clients[0].ClientID, got)
	}
	if err := c.AddAPIs("http://localhost:8080/mcp"); err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatalf("the tenant with additions is invalid: %v", err)
	}
	if a := c.APIs[len(c.APIs)-1]; a.Identifier != "http://localhost:8080/mcp" || !a.AllowOfflineAccess || len(a.Scopes) != 2 {
		t.Fatalf("added API: %+v", a)
	}
	for _, bad := range []string{"", "relative/cb", "https://x.example/cb#f"} {
		if err := c.AddCallbacks(bad); err == nil {
			t.Errorf("AddCallbacks(%q) accepted", bad)
		}
	}
	for _, bad := range []string{"", "has space", DefaultAPIIdentifier} {
		if err := c.AddAPIs(bad); err == nil {
			t.Errorf("AddAPIs(%q) accepted", bad)
		}
	}
	m2m := Config{Clients: []Client{{ClientID: "m2m", AppType: "non_interactive"}}}
	if err := m2m.AddCallbacks("http://localhost/cb"); err == nil || !strings.Contains(err.Error(), "no interactive application") {
		t.Errorf("a tenant without an interactive application: %v", err)
	}
}
