package config

import (
	"encoding/base64"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func key32() string { return base64.StdEncoding.EncodeToString([]byte(strings.Repeat("k", 32))) }

// The seed's oidc.yaml (issuer, audience, client_id, client_secret_file, public_url, jwks_uri, scope)
// loads unchanged; ours add keys and storage.
func seed(t *testing.T) (dir, cfgPath string) {
	dir = t.TempDir()
	sec := writeFile(t, dir, "secret", "upstream-secret\n")
	sk := writeFile(t, dir, "sign", key32())
	ek := writeFile(t, dir, "seal", key32())
	cfgPath = writeFile(t, dir, "oidc.yaml", `issuer: https://tenant.eu.auth0.com/
audience: https://cnpg-mcp.example/api
client_id: abc123
client_secret_file: `+sec+`
public_url: https://mcp.example.com
jwks_uri: https://tenant.eu.auth0.com/.well-known/jwks.json
scope: openid profile email offline_access
signing_key_file: `+sk+`
sealing_key_file: `+ek+`
`)
	return dir, cfgPath
}

func TestSeedKeysAndDefaults(t *testing.T) {
	_, p := seed(t)
	c, err := Load([]string{"--config", p}, func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	if c.Issuer != "https://tenant.eu.auth0.com/" || c.Audience != "https://cnpg-mcp.example/api" || c.ClientID != "abc123" ||
		c.Secrets.ClientSecret != "upstream-secret" || c.JWKSURI == "" || c.Scope != "openid profile email offline_access" {
		t.Fatalf("seed keys not loaded: %+v", c)
	}
	if c.IssuerURL() != "https://mcp.example.com" || c.ResourceURL() != "https://mcp.example.com/mcp" {
		t.Fatalf("issuer/resource: %s %s", c.IssuerURL(), c.ResourceURL())
	}
	if c.Lifetimes.AccessToken != time.Hour || c.Storage.Driver != "bolt" || c.Consent.Mode != "always" || c.ForwardResource {
		t.Fatalf("defaults: %+v", c)
	}
	if len(c.Secrets.SigningKeys[0]) != 32 || len(c.Secrets.SealingKeys[0]) != 32 {
		t.Fatal("keys not read")
	}
}

func TestEnvAndFlagOverrides(t *testing.T) {
	dir, p := seed(t)
	env := map[string]string{"CNPG_MCP_PUBLIC_URL": "https://env.example", "CNPG_MCP_LOG_LEVEL": "debug", "CNPG_MCP_KUBERNETES_NAMESPACES": "a, b"}
	c, err := Load([]string{"--config", p, "--public-url", "https://flag.example/", "--lifetimes-access-token", "15m", "--storage-path", filepath.Join(dir, "x.db")},
		func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	if c.PublicURL != "https://flag.example/" || c.LogLevel != "debug" || c.Lifetimes.AccessToken != 15*time.Minute || strings.Join(c.Kubernetes.Namespaces, "|") != "a|b" {
		t.Fatalf("overrides: public_url=%s log=%s at=%s ns=%v", c.PublicURL, c.LogLevel, c.Lifetimes.AccessToken, c.Kubernetes.Namespaces)
	}
	// The canonical issuer keeps the configured trailing slash; endpoints and resource do not double it.
	if c.IssuerURL() != "https://flag.example/" || c.ResourceURL() != "https://flag.example/mcp" {
		t.Fatalf("issuer %s resource %s", c.IssuerURL(), c.ResourceURL())
	}
}

// A server without an upstream refuses to start, naming what to set; every problem is reported.
func TestValidationNamesEveryField(t *testing.T) {
	dir := t.TempDir()
	short := writeFile(t, dir, "short", base64.StdEncoding.EncodeToString([]byte("tooshort")))
	_, err := Load([]string{"--public-url", "http://mcp.example.com", "--signing-key-file", short, "--sealing-key-file", filepath.Join(dir, "missing"),
		"--storage-driver", "redis", "--consent-mode", "never", "--log-level", "loud", "--mcp-path", "mcp"}, func(string) string { return "" })
	if err == nil {
		t.Fatal("invalid config accepted")
	}
	msg := err.Error()
	for _, want := range []string{"upstream identity provider is not configured", "public_url", "must use https", "signing_keys[0].secret_file", "at least 32 bytes",
		"sealing_keys[0].secret_file", "storage.driver", "consent.mode", "log_level", "mcp.path"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error lacks %q:\n%s", want, msg)
		}
	}
}

func TestRejectsUnknownYAMLKeysAndBadValues(t *testing.T) {
	var c Config
	if err := Parse([]byte("issuer: x\nissuerr: y\n"), &c); err == nil {
		t.Error("unknown key accepted")
	}
	if _, err := Load([]string{"--lifetimes-access-token", "forever"}, func(string) string { return "" }); err == nil || !strings.Contains(err.Error(), "lifetimes.access_token") {
		t.Errorf("bad duration: %v", err)
	}
	if _, err := Load(nil, func(k string) string {
		if k == "CNPG_MCP_MCP_READ_ONLY" {
			return "perhaps"
		}
		return ""
	}); err == nil || !strings.Contains(err.Error(), "CNPG_MCP_MCP_READ_ONLY") {
		t.Errorf("bad bool env: %v", err)
	}
}

func TestPostgresDSNFromFileNeverInErrors(t *testing.T) {
	dir, p := seed(t)
	dsn := writeFile(t, dir, "dsn", "postgres://u:topsecretpw@db/cnpg")
	c, err := Load([]string{"--config", p, "--storage-driver", "postgres", "--storage-dsn-file", dsn, "--public-url", "https://x.example/mcp-prefix/"}, func(string) string { return "" })
	if err != nil {
		if strings.Contains(err.Error(), "topsecretpw") {
			t.Fatal("password in error")
		}
		t.Fatal(err)
	}
	if c.Secrets.DSN != "postgres://u:topsecretpw@db/cnpg" {
		t.Fatal("dsn not read")
	}
}

// lifetimes.refresh_reuse_window: 60 s by default, 0 (strict) is a value and not "unset", from the
// file, the environment or a flag; beyond 10m, negative, or longer than the idle lifetime is refused.
func TestRefreshReuseWindow(t *testing.T) {
	_, p := seed(t)
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	c, err := Load([]string{"--config", p}, env(nil))
	if err != nil || c.Lifetimes.ReuseWindow() != 60*time.Second {
		t.Fatalf("default: %v %v", c.Lifetimes.ReuseWindow(), err)
	}
	c, err = Load([]string{"--config", p}, env(map[string]string{"CNPG_MCP_LIFETIMES_REFRESH_REUSE_WINDOW": "0s"}))
	if err != nil || c.Lifetimes.ReuseWindow() != 0 {
		t.Fatalf("env 0s (strict): %v %v", c.Lifetimes.ReuseWindow(), err)
	}
	c, err = Load([]string{"--config", p, "--lifetimes-refresh-reuse-window", "30s"}, env(nil))
	if err != nil || c.Lifetimes.ReuseWindow() != 30*time.Second {
		t.Fatalf("flag 30s: %v %v", c.Lifetimes.ReuseWindow(), err)
	}
	b, _ := os.ReadFile(p)
	if err := os.WriteFile(p, append(b, []byte("lifetimes:\n  refresh_reuse_window: 0s\n")...), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err = Load([]string{"--config", p}, env(nil))
	if err != nil || c.Lifetimes.RefreshReuseWindow == nil || c.Lifetimes.ReuseWindow() != 0 {
		t.Fatalf("file 0s (strict): %v %v", c.Lifetimes.ReuseWindow(), err)
	}
	for _, bad := range []string{"11m", "-1s"} {
		_, err := Load([]string{"--config", p}, env(map[string]string{"CNPG_MCP_LIFETIMES_REFRESH_REUSE_WINDOW": bad}))
		if err == nil || !strings.Contains(err.Error(), "lifetimes.refresh_reuse_window") {
			t.Fatalf("%s accepted: %v", bad, err)
		}
	}
}

// The consent page's words for each scope: defaults for mcp:read and mcp:write, replaced per scope
// by scope_descriptions; a description of a scope the server does not grant, or an empty one, is
// refused by name.
func TestScopeDescriptions(t *testing.T) {
	dir, p := seed(t)
	c, err := Load([]string{"--config", p}, func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	if c.ScopeDescriptions["mcp:read"] != DefaultScopeDescriptions["mcp:read"] || c.ScopeDescriptions["mcp:write"] != DefaultScopeDescriptions["mcp:write"] {
		t.Fatalf("defaults: %v", c.ScopeDescriptions)
	}
	base, _ := os.ReadFile(p)
	p2 := writeFile(t, dir, "custom.yaml", string(base)+"scopes_supported: [mcp:read, mcp:write, mcp:admin]\nscope_descriptions:\n  mcp:write: Change things\n  mcp:admin: Everything else\n")
	c, err = Load([]string{"--config", p2}, func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	if c.ScopeDescriptions["mcp:write"] != "Change things" || c.ScopeDescriptions["mcp:admin"] != "Everything else" || c.ScopeDescriptions["mcp:read"] != DefaultScopeDescriptions["mcp:read"] {
		t.Fatalf("custom: %v", c.ScopeDescriptions)
	}
	for name, extra := range map[string]string{
		"unknown scope":     "scope_descriptions:\n  mcp:admin: Everything else\n",
		"empty description": "scope_descriptions:\n  mcp:write: \"  \"\n",
	} {
		p3 := writeFile(t, dir, "bad.yaml", string(base)+extra)
		if _, err := Load([]string{"--config", p3}, func(string) string { return "" }); err == nil || !strings.Contains(err.Error(), "scope_descriptions") {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// Flags are typed: a boolean stands alone (--mcp-read-only) or takes =false, durations and numbers
// are parsed as such; the precedence file < environment < flags holds for each type.
func TestTypedFlagsAndPrecedence(t *testing.T) {
	_, p := seed(t)
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	p2 := writeFile(t, filepath.Dir(p), "oidc2.yaml", string(b)+"mcp:\n  read_only: true\nlifetimes:\n  access_token: 2h\ninvalid_grant_status: 401\n")
	for _, tc := range []struct {
		name     string
		args     []string
		env      map[string]string
		readOnly bool
		at       time.Duration
		status   int
	}{
		{"file", []string{"--config", p2}, nil, true, 2 * time.Hour, 401},
		{"env over file", []string{"--config", p2}, map[string]string{"CNPG_MCP_MCP_READ_ONLY": "false", "CNPG_MCP_LIFETIMES_ACCESS_TOKEN": "30m", "CNPG_MCP_INVALID_GRANT_STATUS": "400"}, false, 30 * time.Minute, 400},
		{"flags over env", []string{"--config", p2, "--mcp-read-only", "--lifetimes-access-token", "15m", "--invalid-grant-status", "401"},
			map[string]string{"CNPG_MCP_MCP_READ_ONLY": "false", "CNPG_MCP_LIFETIMES_ACCESS_TOKEN": "30m", "CNPG_MCP_INVALID_GRANT_STATUS": "400"}, true, 15 * time.Minute, 401},
		{"--flag=false over file", []string{"--config", p2, "--mcp-read-only=false"}, nil, false, 2 * time.Hour, 401},
		{"a bare boolean before another flag", []string{"--mcp-read-only", "--config", p}, nil, true, time.Hour, 400},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Load(tc.args, func(k string) string { return tc.env[k] })
			if err != nil {
				t.Fatal(err)
			}
			if c.MCP.ReadOnly != tc.readOnly || c.Lifetimes.AccessToken != tc.at || c.InvalidGrantStatus != tc.status {
				t.Fatalf("read_only=%v access_token=%s invalid_grant_status=%d", c.MCP.ReadOnly, c.Lifetimes.AccessToken, c.InvalidGrantStatus)
			}
		})
	}
}

// An unknown flag names the one the user probably meant and where the list is; --help is
// flag.ErrHelp (the command prints the list on stdout and exits 0).
func TestFlagErrorsAndHelp(t *testing.T) {
	_, err := Load([]string{"--read-only"}, func(string) string { return "" })
	if err == nil || !strings.Contains(err.Error(), "flag provided but not defined: --read-only; did you mean --mcp-read-only?") || !strings.Contains(err.Error(), "cnpg-mcp-server --help") {
		t.Fatalf("unknown flag: %v", err)
	}
	for _, h := range []string{"-h", "--help", "-help"} {
		if _, err := Load([]string{"--mcp-read-only", h}, func(string) string { return "" }); !errors.Is(err, flag.ErrHelp) {
			t.Fatalf("%s: %v", h, err)
		}
	}
	if _, err := Load([]string{"--lifetimes-access-token", "forever", "--invalid-grant-status", "four"}, func(string) string { return "" }); err == nil ||
		!strings.Contains(err.Error(), "--lifetimes-access-token: lifetimes.access_token: \"forever\" is not a duration") || !strings.Contains(err.Error(), "--invalid-grant-status") {
		t.Fatalf("bad typed values should all be reported: %v", err)
	}
}

// --help shows each flag with its type (none for booleans), its default and its variable.
func TestPrintFlags(t *testing.T) {
	var b strings.Builder
	PrintFlags(&b, NewFlagSet())
	help := b.String()
	for _, want := range []string{
		"  --mcp-read-only\n        expose read-only tools only (env CNPG_MCP_MCP_READ_ONLY)\n",
		"  --lifetimes-access-token duration\n        access-token lifetime (at most 24h) (default 1h; env CNPG_MCP_LIFETIMES_ACCESS_TOKEN)\n",
		"  --invalid-grant-status int\n",
		"(default 400; env CNPG_MCP_INVALID_GRANT_STATUS)",
		"  --kubernetes-namespaces list\n",
		"(comma-separated; env CNPG_MCP_KUBERNETES_NAMESPACES)",
		"  --storage-driver string\n        bolt or postgres (default bolt; env CNPG_MCP_STORAGE_DRIVER)\n",
		"(default 336h; env CNPG_MCP_LIFETIMES_REFRESH_TOKEN_IDLE)",
		"  --client-id-metadata-documents\n", "(default true; env CNPG_MCP_CLIENT_ID_METADATA_DOCUMENTS)",
		"  --config file\n",
	} {
		if !strings.Contains(help, want) {
			t.Errorf("the help lacks %q", want)
		}
	}
	for _, f := range Fields() {
		if f.Kind == "" || !strings.Contains(help, "  --"+f.Flag()+map[bool]string{true: "\n", false: " " + f.Kind + "\n"}[f.Kind == "bool"]) || !strings.Contains(help, "env "+f.Env()+")") {
			t.Errorf("%s: kind %q, not shown as typed with its variable", f.Path, f.Kind)
		}
	}
	if strings.Contains(help, "string\n        expose read-only") {
		t.Error("a boolean is shown as a string")
	}
}

func TestFormatDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{time.Hour: "1h", 5 * time.Minute: "5m", 336 * time.Hour: "336h", 90 * time.Minute: "1h30m", 30 * time.Second: "30s", time.Hour + time.Second: "1h0m1s"} {
		if got := FormatDuration(d); got != want {
			t.Errorf("%s: %s, want %s", d, got, want)
		}
	}
}

// kubernetes.identity: service-account by default; impersonate with its mapping settings from the
// file, the environment or flags; every bad value refused by name.
func TestKubernetesIdentity(t *testing.T) {
	_, p := seed(t)
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	c, err := Load([]string{"--config", p}, env(nil))
	if err != nil || c.Kubernetes.Identity != IdentityServiceAccount || c.Kubernetes.Impersonating() {
		t.Fatalf("default: %q %v", c.Kubernetes.Identity, err)
	}
	c, err = Load([]string{"--config", p, "--kubernetes-identity", "impersonate", "--kubernetes-impersonation-groups-claim", "https://x/groups",
		"--kubernetes-impersonation-user-prefix", "oidc:", "--kubernetes-impersonation-cache-size", "8"},
		env(map[string]string{"CNPG_MCP_KUBERNETES_IMPERSONATION_MAX_IDENTITY_AGE": "5m", "CNPG_MCP_KUBERNETES_IMPERSONATION_GROUPS": "oidc:dba, oidc:dev"}))
	im := c.Kubernetes.Impersonation
	if err != nil || !c.Kubernetes.Impersonating() || im.UserClaim != "email" || im.UserPrefix != "oidc:" || im.GroupsClaim != "https://x/groups" ||
		im.MaxIdentityAge != 5*time.Minute || im.CacheSize != 8 || len(im.Groups) != 2 || im.Groups[1] != "oidc:dev" {
		t.Fatalf("impersonate: %+v %v", im, err)
	}
	for _, tc := range []struct {
		args []string
		env  map[string]string
		want string
	}{
		{[]string{"--kubernetes-identity", "root"}, nil, "kubernetes.identity"},
		{[]string{"--kubernetes-identity", "impersonate", "--scope", "openid offline_access"}, nil, "add email to scope"},
		{[]string{"--kubernetes-identity", "impersonate", "--kubernetes-impersonation-user-prefix", "system:"}, nil, "kubernetes.impersonation.user_prefix"},
		{[]string{"--kubernetes-identity", "impersonate", "--kubernetes-impersonation-groups-prefix", "system:x"}, nil, "kubernetes.impersonation.groups_prefix"},
		{[]string{"--kubernetes-identity", "impersonate", "--kubernetes-impersonation-max-identity-age", "48h"}, nil, "kubernetes.impersonation.max_identity_age"},
		{[]string{"--kubernetes-identity", "impersonate", "--kubernetes-impersonation-cache-size", "-1"}, nil, "kubernetes.impersonation.cache_size"},
		{nil, map[string]string{"CNPG_MCP_KUBERNETES_IMPERSONATION_CACHE_SIZE": "many"}, "not a whole number"},
		{[]string{"--kubernetes-identity", "impersonate", "--kubernetes-impersonation-user-claim", " "}, nil, "kubernetes.impersonation.user_claim"},
	} {
		_, err := Load(append([]string{"--config", p}, tc.args...), env(tc.env))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v %v: %v, want an error naming %q", tc.args, tc.env, err, tc.want)
		}
	}
}
