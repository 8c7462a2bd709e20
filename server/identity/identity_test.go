package identity

import (
	"context"
	"slices"
	"testing"
)

func TestContextRoundTrip(t *testing.T) {
	if _, ok := FromContext(context.Background()); ok {
		t.Fatal("empty context reported an identity")
	}
	want := Identity{Subject: "auth0|1", ClientID: "c1", TokenID: "j1", Scopes: []string{"mcp:read"}}
	got, ok := FromContext(NewContext(context.Background(), want))
	if !ok || got.Subject != want.Subject || got.ClientID != want.ClientID || got.TokenID != want.TokenID {
		t.Fatalf("round trip: got %+v, %v", got, ok)
	}
}

func TestScopes(t *testing.T) {
	id := Identity{Scopes: []string{"mcp:read", "openid"}}
	tests := []struct {
		name     string
		required []string
		missing  []string
	}{
		{"none required", nil, nil},
		{"held", []string{"mcp:read"}, nil},
		{"one missing", []string{"mcp:read", "mcp:write"}, []string{"mcp:write"}},
		{"duplicates reported once", []string{"mcp:write", "mcp:write", "x"}, []string{"mcp:write", "x"}},
		{"prefix is not a match", []string{"mcp"}, []string{"mcp"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := id.Missing(tt.required); !slices.Equal(got, tt.missing) {
				t.Fatalf("Missing(%v) = %v, want %v", tt.required, got, tt.missing)
			}
		})
	}
	if !id.HasScope("openid") || id.HasScope("OPENID") {
		t.Fatal("HasScope must match exactly")
	}
}
