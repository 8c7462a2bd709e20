package oauthclient_test

import (
	"reflect"
	"testing"

	"github.com/cnpg-mcp/cnpg-mcp/conformance/oauthclient"
)

func TestParseWWWAuthenticate(t *testing.T) {
	cases := []struct {
		name    string
		in      []string
		schemes []string
		params  map[string]string // of the Bearer challenge
		dups    []string
		wantErr bool
	}{
		{name: "rfc 9728", in: []string{`Bearer resource_metadata="https://rs.example/.well-known/oauth-protected-resource/mcp", scope="mcp:read mcp:write"`},
			schemes: []string{"Bearer"}, params: map[string]string{"resource_metadata": "https://rs.example/.well-known/oauth-protected-resource/mcp", "scope": "mcp:read mcp:write"}},
		{name: "error and lower-case scheme", in: []string{`bearer error="invalid_token", error_description="expired"`},
			schemes: []string{"bearer"}, params: map[string]string{"error": "invalid_token", "error_description": "expired"}},
		{name: "two challenges in one header", in: []string{`Basic realm="x", Bearer realm="y", error=invalid_token`},
			schemes: []string{"Basic", "Bearer"}, params: map[string]string{"realm": "y", "error": "invalid_token"}},
		{name: "two headers", in: []string{`DPoP algs="ES256"`, `Bearer realm="r"`}, schemes: []string{"DPoP", "Bearer"}, params: map[string]string{"realm": "r"}},
		{name: "duplicate scope", in: []string{`Bearer scope="a", scope="b"`}, schemes: []string{"Bearer"}, params: map[string]string{"scope": "b"}, dups: []string{"scope"}},
		{name: "bare scheme", in: []string{`Bearer`}, schemes: []string{"Bearer"}, params: map[string]string{}},
		{name: "escaped quote", in: []string{`Bearer error_description="a \"b\""`}, schemes: []string{"Bearer"}, params: map[string]string{"error_description": `a "b"`}},
		{name: "unterminated", in: []string{`Bearer realm="x`}, wantErr: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cs, err := oauthclient.ParseWWWAuthenticate(tc.in)
			if tc.wantErr {
				if err == nil {
					t.Fatalf("want an error, got %+v", cs)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var schemes []string
			for _, c := range cs {
				schemes = append(schemes, c.Scheme)
			}
			if !reflect.DeepEqual(schemes, tc.schemes) {
				t.Fatalf("schemes = %v, want %v", schemes, tc.schemes)
			}
			b, ok, _ := oauthclient.BearerChallenge(tc.in)
			if !ok {
				t.Fatal("no Bearer challenge")
			}
			if !reflect.DeepEqual(b.Params, tc.params) || !reflect.DeepEqual(b.Dups, tc.dups) {
				t.Fatalf("params = %v dups %v, want %v dups %v", b.Params, b.Dups, tc.params, tc.dups)
			}
		})
	}
}

func TestDiscoveryURLOrder(t *testing.T) {
	got, _ := oauthclient.ASMetadataURLs("https://as.example/tenant1")
	want := []string{
		"https://as.example/.well-known/oauth-authorization-server/tenant1",
		"https://as.example/.well-known/openid-configuration/tenant1",
		"https://as.example/tenant1/.well-known/openid-configuration",
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("with path: %v", got)
	}
	got, _ = oauthclient.ASMetadataURLs("https://as.example")
	if !reflect.DeepEqual(got, []string{"https://as.example/.well-known/oauth-authorization-server", "https://as.example/.well-known/openid-configuration"}) {
		t.Fatalf("root: %v", got)
	}
	got, _ = oauthclient.PRMURLs("https://rs.example/mcp")
	if !reflect.DeepEqual(got, []string{"https://rs.example/.well-known/oauth-protected-resource/mcp", "https://rs.example/.well-known/oauth-protected-resource"}) {
		t.Fatalf("prm: %v", got)
	}
	if oauthclient.S256("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk") != "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM" {
		t.Fatal("S256 does not match RFC 7636 appendix B")
	}
}
