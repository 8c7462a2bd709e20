package checks

import "testing"

// TestShadowOf: misspellings of registered metadata members are named; registered and unrelated
// members are not (PRM-11, ASM-15).
func TestShadowOf(t *testing.T) {
	for _, tc := range []struct {
		name, want string
		reg        []string
	}{
		{"scopes", "scopes_supported", prmMembers},
		{"authorization_server", "authorization_servers", prmMembers},
		{"Scopes_Supported", "scopes_supported", prmMembers},
		{"bearer-methods-supported", "bearer_methods_supported", prmMembers},
		{"scope_supported", "scopes_supported", prmMembers},
		{"scopes_supported", "", prmMembers},
		{"resource_name", "", prmMembers},
		{"x_vendor_feature", "", prmMembers},
		{"code_challenge_methods", "code_challenge_methods_supported", asMembers},
		{"grant_type_supported", "grant_types_supported", asMembers},
		{"registration_endpoints", "registration_endpoint", asMembers},
		{"revocation_endpoint", "", asMembers},
		{"client_id_metadata_document_supported", "", asMembers},
		{"x_cnpg_feature", "", asMembers},
	} {
		if got := shadowOf(tc.name, tc.reg); got != tc.want {
			t.Errorf("shadowOf(%q) = %q, want %q", tc.name, got, tc.want)
		}
	}
}
