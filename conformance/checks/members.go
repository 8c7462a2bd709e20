package checks

import (
	"slices"
	"sort"
	"strings"
)

// Registered metadata members: a member that is none of these but spells one of them differently
// (scopes for scopes_supported, authorization_server for authorization_servers) shadows it:
// clients read the registered name and find nothing (PRM-11, ASM-15).

// prmMembers are RFC 9728 §2's members and the registered extensions.
var prmMembers = []string{
	"resource", "authorization_servers", "jwks_uri", "scopes_supported", "bearer_methods_supported",
	"resource_signing_alg_values_supported", "resource_name", "resource_documentation", "resource_policy_uri",
	"resource_tos_uri", "tls_client_certificate_bound_access_tokens", "authorization_details_types_supported",
	"dpop_signing_alg_values_supported", "dpop_bound_access_tokens_required", "signed_metadata",
}

// asMembers are RFC 8414 §2's members, OpenID Connect Discovery's, and the registered extensions
// MCP servers use (RFC 9207, CIMD, PAR, DPoP, mTLS, device flow, RP-initiated logout).
var asMembers = []string{
	"issuer", "authorization_endpoint", "token_endpoint", "jwks_uri", "registration_endpoint", "scopes_supported",
	"response_types_supported", "response_modes_supported", "grant_types_supported", "token_endpoint_auth_methods_supported",
	"token_endpoint_auth_signing_alg_values_supported", "service_documentation", "ui_locales_supported", "op_policy_uri",
	"op_tos_uri", "revocation_endpoint", "revocation_endpoint_auth_methods_supported",
	"revocation_endpoint_auth_signing_alg_values_supported", "introspection_endpoint",
	"introspection_endpoint_auth_methods_supported", "introspection_endpoint_auth_signing_alg_values_supported",
	"code_challenge_methods_supported", "signed_metadata", "authorization_response_iss_parameter_supported",
	"client_id_metadata_document_supported", "pushed_authorization_request_endpoint", "require_pushed_authorization_requests",
	"dpop_signing_alg_values_supported", "mtls_endpoint_aliases", "tls_client_certificate_bound_access_tokens",
	"device_authorization_endpoint", "end_session_endpoint", "userinfo_endpoint", "acr_values_supported",
	"subject_types_supported", "id_token_signing_alg_values_supported", "id_token_encryption_alg_values_supported",
	"id_token_encryption_enc_values_supported", "userinfo_signing_alg_values_supported", "userinfo_encryption_alg_values_supported",
	"userinfo_encryption_enc_values_supported", "request_object_signing_alg_values_supported",
	"request_object_encryption_alg_values_supported", "request_object_encryption_enc_values_supported",
	"display_values_supported", "claim_types_supported", "claims_supported", "claims_locales_supported",
	"claims_parameter_supported", "request_parameter_supported", "request_uri_parameter_supported",
	"require_request_uri_registration", "check_session_iframe", "frontchannel_logout_supported",
	"frontchannel_logout_session_supported", "backchannel_logout_supported", "backchannel_logout_session_supported",
	"authorization_details_types_supported", "require_signed_request_object", "prompt_values_supported",
	"protected_resources", "backchannel_authentication_endpoint", "backchannel_token_delivery_modes_supported",
	"backchannel_authentication_request_signing_alg_values_supported", "backchannel_user_code_parameter_supported",
}

// shadowOf returns the registered member that name misspells ("" when it misspells none): the
// same name in another case or with hyphens, the name without its "_supported" suffix, a
// singular/plural variant, or a name within two edits of it.
func shadowOf(name string, registered []string) string {
	if slices.Contains(registered, name) {
		return ""
	}
	n := strings.ReplaceAll(strings.ToLower(name), "-", "_")
	for _, r := range registered {
		switch {
		case n == r, n+"_supported" == r, n+"s" == r, r+"s" == n, strings.TrimSuffix(n, "s")+"_supported" == r:
			return r
		}
	}
	best, bestD := "", 3
	for _, r := range registered {
		if len(r) < 8 {
			continue
		}
		if d := editDistance(n, r); d < bestD {
			best, bestD = r, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			c := 1
			if a[i-1] == b[j-1] {
				c = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+c)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// gradeShadows warns for each member of a metadata document that shadows a registered member the
// document lacks (what: "the PRM", "the AS metadata").
func (t *T) gradeShadows(what string, raw map[string]any, registered []string) {
	var names []string
	for k := range raw {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		r := shadowOf(k, registered)
		if r == "" {
			continue
		}
		if _, has := raw[r]; has {
			t.Logf("%s has both %q and the registered %q", what, k, r)
			continue
		}
		t.Warnf("%s has %q but no %q: clients read the registered member %q and ignore %q", what, k, r, r, k)
	}
}
