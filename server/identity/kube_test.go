package identity

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestMapping(t *testing.T) {
	at := time.Unix(1700000000, 0)
	alice := map[string]any{"sub": "auth0|a1", "email": "alice@example.com", "email_verified": true,
		"https://cnpg-mcp.example/groups": []any{"team-a-dba", "developers", "team-a-dba", 7, ""}}
	tests := []struct {
		name    string
		m       Mapping
		claims  map[string]any
		user    string
		groups  []string
		wantErr string
	}{
		{"email by default, no groups claim configured", Mapping{}, alice, "alice@example.com", nil, ""},
		{"prefix and groups, sorted and deduplicated, non-strings dropped", Mapping{UserPrefix: "oidc:", GroupsClaim: "https://cnpg-mcp.example/groups", GroupsPrefix: "oidc:"}, alice,
			"oidc:alice@example.com", []string{"oidc:developers", "oidc:team-a-dba"}, ""},
		{"sub claim", Mapping{UserClaim: "sub"}, alice, "auth0|a1", nil, ""},
		{"groups as one string", Mapping{GroupsClaim: "g"}, map[string]any{"email": "b@x", "email_verified": true, "g": "ops"}, "b@x", []string{"ops"}, ""},
		{"group allow-list drops the others", Mapping{GroupsClaim: "https://cnpg-mcp.example/groups", Groups: []string{"developers"}}, alice, "alice@example.com", []string{"developers"}, ""},
		{"user allow-list refuses the others", Mapping{Users: []string{"bob@example.com"}}, alice, "", nil, "kubernetes.impersonation.users"},
		{"missing user claim", Mapping{UserClaim: "preferred_username"}, alice, "", nil, `"preferred_username"`},
		{"unverified email refused", Mapping{}, map[string]any{"email": "alice@example.com", "email_verified": false}, "", nil, "not verified"},
		{"email_verified absent refused", Mapping{}, map[string]any{"email": "alice@example.com"}, "", nil, "not verified"},
		{"system user refused", Mapping{UserClaim: "sub"}, map[string]any{"sub": "system:admin"}, "", nil, "system identity"},
		{"system user through the prefix refused", Mapping{UserClaim: "sub", UserPrefix: "system:"}, map[string]any{"sub": "x"}, "", nil, "system identity"},
		{"system groups dropped", Mapping{GroupsClaim: "g"}, map[string]any{"email": "e@x", "email_verified": true, "g": []any{"system:masters", "system:nodes", "dba"}}, "e@x", []string{"dba"}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			u, err := tc.m.Map(tc.claims, at)
			if tc.wantErr != "" {
				if err == nil || !errors.Is(err, ErrNoUser) || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("want ErrNoUser mentioning %q, got %v (%+v)", tc.wantErr, err, u)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if u.Name != tc.user || !slices.Equal(u.Groups, tc.groups) || !u.ClaimsAt.Equal(at) {
				t.Fatalf("got %q %q %v, want %q %q", u.Name, u.Groups, u.ClaimsAt, tc.user, tc.groups)
			}
		})
	}
}

func TestMappingBoundsGroups(t *testing.T) {
	var gs []any
	for i := 0; i < 3*MaxGroups; i++ {
		gs = append(gs, strings.Repeat("g", 1+i%7)+string(rune('a'+i%26))+string(rune('a'+i/26)))
	}
	u, err := Mapping{GroupsClaim: "g"}.Map(map[string]any{"email": "e@x", "email_verified": true, "g": gs}, time.Time{})
	if err != nil || len(u.Groups) != MaxGroups {
		t.Fatalf("groups %d, err %v", len(u.Groups), err)
	}
}

func TestPersonClaims(t *testing.T) {
	got := PersonClaims(map[string]any{"sub": "s", "email": "e", "nonce": "n", "exp": 1, "aud": "a", "https://x/groups": []any{"g"}})
	if len(got) != 3 || got["sub"] != "s" || got["email"] != "e" || got["https://x/groups"] == nil {
		t.Fatalf("%v", got)
	}
	if PersonClaims(nil) != nil {
		t.Fatal("nil in, nil out")
	}
}

func TestKeyDistinguishesGroups(t *testing.T) {
	a := KubeUser{Name: "u", Groups: []string{"a", "b"}}
	b := KubeUser{Name: "u", Groups: []string{"a"}}
	c := KubeUser{Name: "u\" \"a"}
	if a.Key() == b.Key() || b.Key() == c.Key() || a.Key() != (KubeUser{Name: "u", Groups: []string{"a", "b"}}).Key() {
		t.Fatal("keys collide")
	}
}
