package checks

import "testing"

// TestScopeShown: a consent page shows a scope by its name, in words, or (OpenID scopes) by its
// usual description; a page that shows none of them does not show it.
func TestScopeShown(t *testing.T) {
	for _, tc := range []struct {
		text, scope string
		shown       bool
	}{
		{"Access requested: mcp:read", "mcp:read", true},
		{"Mcp Read — list your clusters", "mcp:read", true},
		{"Verify your identity", "openid", true},
		{"offline access", "offline_access", true},
		{"Your e-mail address", "email", true},
		{"MCP Client wants access", "mcp:read", false},
		{"MCP Client wants access", "openid", false},
		{"read your data", "mcp:read", false},
	} {
		if got := scopeShown(tc.text, tc.scope) != ""; got != tc.shown {
			t.Errorf("scopeShown(%q, %q) = %q, want shown=%v", tc.text, tc.scope, scopeShown(tc.text, tc.scope), tc.shown)
		}
	}
}
