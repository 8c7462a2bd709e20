package config

import (
	"reflect"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// FuzzParse: any oidc.yaml is either refused or read into a Config that survives a YAML round trip
// unchanged (what the server runs with is what the file says), and Defaults + Validate never panic.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"issuer: https://t.eu.auth0.com/\naudience: https://api\nclient_id: c\nclient_secret_file: /s\npublic_url: https://mcp.example.com\n",
		"storage:\n  driver: postgres\n  dsn_file: /dsn\nlifetimes:\n  access_token: 15m\n  refresh_token_idle: 24h\n",
		"signing_keys:\n- id: a\n  secret_file: /k\n  not_after: 2030-01-01T00:00:00Z\nsealing_keys:\n- id: 1\n  secret_file: /s\n",
		"mcp:\n  path: /mcp\n  read_only: true\n  allowed_origins: [http://localhost:6274]\nkubernetes:\n  namespaces: [a, b]\n",
		"scopes_supported: [mcp:read]\nclient_id_metadata_documents: false\ninvalid_grant_status: 401\n",
		"scope_descriptions:\n  mcp:read: Read clusters\nmcp:\n  toolsets: [clusters, backups]\nlifetimes:\n  refresh_reuse_window: 0s\n",
		"unknown_key: 1\n", "issuer: [1, 2]\n", "lifetimes:\n  access_token: forever\n", "&a [*a]", "",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, doc string) {
		var c Config
		if err := Parse([]byte(doc), &c); err != nil {
			return
		}
		out, err := yaml.Marshal(&c)
		if err != nil {
			t.Fatalf("marshal: %v", err)
		}
		var back Config
		if err := Parse(out, &back); err != nil {
			t.Fatalf("the re-encoded config does not parse: %v\n%s", err, out)
		}
		if !reflect.DeepEqual(normalize(c), normalize(back)) {
			t.Fatalf("round trip changed the config:\n%+v\n%+v\n%s", c, back, out)
		}
		c.Defaults()
		_ = c.Validate()
	})
}

// normalize makes empty and nil slices and maps equal (YAML cannot tell them apart).
func normalize(c Config) Config {
	empty := func(s []string) []string {
		if len(s) == 0 {
			return nil
		}
		return s
	}
	c.ScopesSupported = empty(c.ScopesSupported)
	c.MCP.AllowedOrigins = empty(c.MCP.AllowedOrigins)
	c.Kubernetes.Namespaces = empty(c.Kubernetes.Namespaces)
	c.MCP.Toolsets = empty(c.MCP.Toolsets)
	c.Kubernetes.Impersonation.Users = empty(c.Kubernetes.Impersonation.Users)
	c.Kubernetes.Impersonation.Groups = empty(c.Kubernetes.Impersonation.Groups)
	if len(c.ScopeDescriptions) == 0 {
		c.ScopeDescriptions = nil
	}
	if len(c.SigningKeys) == 0 {
		c.SigningKeys = nil
	}
	if len(c.SealingKeys) == 0 {
		c.SealingKeys = nil
	}
	return c
}

// FuzzFieldValue: every setting reachable as CNPG_MCP_* and --flag either refuses a value with an
// error naming the setting, or stores it so that reading it back and setting that again is stable.
func FuzzFieldValue(f *testing.F) {
	fields := Fields()
	for i := range fields {
		for _, v := range []string{"", "x", "true", "15m", "400", "a, b,,c", "-1h", "1e9"} {
			f.Add(uint8(i), v)
		}
	}
	f.Fuzz(func(t *testing.T, which uint8, v string) {
		fd := fields[int(which)%len(fields)]
		var c Config
		if err := fd.Set(&c, v); err != nil {
			if !strings.Contains(err.Error(), fd.Path) && !strings.Contains(err.Error(), fd.Env()) {
				t.Fatalf("%s: the error does not name the setting: %v", fd.Path, err)
			}
			return
		}
		got := fd.Get(&c)
		var c2 Config
		if err := fd.Set(&c2, got); err != nil {
			t.Fatalf("%s: %q read back as %q, which is refused: %v", fd.Path, v, got, err)
		}
		if again := fd.Get(&c2); again != got {
			t.Fatalf("%s: %q → %q → %q", fd.Path, v, got, again)
		}
	})
}
