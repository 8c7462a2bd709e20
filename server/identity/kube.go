package identity

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"
)

// KubeUser is who a tool call acts as in Kubernetes when the server impersonates the signed-in
// user (kubernetes.identity: impersonate): the Impersonate-User and Impersonate-Group of every
// request made for the call. It is derived from the upstream identity claims kept (sealed) with the
// grant — never from anything the MCP client sends.
type KubeUser struct {
	Name   string   // Impersonate-User, e.g. "oidc:alice@example.com"
	Groups []string // Impersonate-Group, sorted, without duplicates
	// ClaimsAt is when the upstream claims were last read from the identity provider (sign-in or
	// upstream refresh): group changes upstream take effect in Kubernetes from the next refresh.
	ClaimsAt time.Time
	// Err is set when the grant's claims cannot be mapped (a claim missing since the configuration
	// changed): tool calls answer with it and never fall back to the service account.
	Err error
}

// Key identifies the Kubernetes identity (user and groups) for client caches.
func (u KubeUser) Key() string {
	return fmt.Sprintf("%q%q", u.Name, u.Groups) // quoted: no name or group can run into the next
}

// Mapping turns upstream identity claims into a KubeUser (config kubernetes.impersonation).
type Mapping struct {
	// UserClaim names the claim that becomes the Kubernetes user: "email" (the default) or "sub"
	// (or any other string claim). With "email", email_verified must be true.
	UserClaim string
	// UserPrefix is prepended to the user, e.g. "oidc:" (default none).
	UserPrefix string
	// GroupsClaim names the claim holding the groups: a string array or a string, e.g. Auth0's
	// namespaced custom claim "https://example.com/groups" added by a post-login Action. Empty: no
	// groups (the user is still in system:authenticated, which Kubernetes adds).
	GroupsClaim string
	// GroupsPrefix is prepended to every group, e.g. "oidc:" (default none).
	GroupsPrefix string
	// Users, when not empty, are the only Kubernetes users (after the prefix) the server acts as:
	// anyone else's tool calls are refused before Kubernetes is asked.
	Users []string
	// Groups, when not empty, are the only Kubernetes groups (after the prefix) passed on; other
	// groups are dropped. It mirrors an impersonation Role restricted by resourceNames.
	Groups []string
}

// MaxGroups bounds the groups passed on: every group is one Impersonate-Group header and one
// authorization check in the API server.
const MaxGroups = 64

// ErrNoUser means the claims do not name the user the mapping needs.
var ErrNoUser = errors.New("identity: the upstream identity has no usable user claim")

// Map derives the Kubernetes user and groups from claims. Names that start with "system:" (after
// the prefix) are refused for the user and dropped for groups: the identity provider must never be
// able to make a tool call run as a Kubernetes system identity (system:masters, service accounts,
// nodes).
func (m Mapping) Map(claims map[string]any, at time.Time) (KubeUser, error) {
	claim := m.UserClaim
	if claim == "" {
		claim = "email"
	}
	v, _ := claims[claim].(string)
	v = strings.TrimSpace(v)
	if v == "" {
		return KubeUser{}, fmt.Errorf("%w: the claim %q (kubernetes.impersonation.user_claim) is missing or empty; ask the identity provider to release it (for email: the `email` scope)", ErrNoUser, claim)
	}
	if claim == "email" {
		if verified, ok := claims["email_verified"].(bool); !ok || !verified {
			return KubeUser{}, fmt.Errorf("%w: the email %q is not verified at the identity provider (email_verified is not true); an unverified email cannot name a Kubernetes user", ErrNoUser, v)
		}
	}
	u := KubeUser{Name: m.UserPrefix + v, ClaimsAt: at}
	if strings.HasPrefix(u.Name, "system:") {
		return KubeUser{}, fmt.Errorf("%w: the user %q would be a Kubernetes system identity; refused (set kubernetes.impersonation.user_prefix, e.g. \"oidc:\")", ErrNoUser, u.Name)
	}
	if len(m.Users) > 0 && !slices.Contains(m.Users, u.Name) {
		return KubeUser{}, fmt.Errorf("%w: %q is not one of the users this server may act as (kubernetes.impersonation.users)", ErrNoUser, u.Name)
	}
	var groups []string
	if m.GroupsClaim != "" {
		groups = groupsOf(claims[m.GroupsClaim])
	}
	for _, g := range groups {
		name := m.GroupsPrefix + g
		if strings.HasPrefix(name, "system:") || (len(m.Groups) > 0 && !slices.Contains(m.Groups, name)) {
			continue
		}
		if !slices.Contains(u.Groups, name) {
			u.Groups = append(u.Groups, name)
		}
	}
	sort.Strings(u.Groups)
	if len(u.Groups) > MaxGroups {
		u.Groups = u.Groups[:MaxGroups]
	}
	return u, nil
}

// groupsOf reads a groups claim: an array of strings (others ignored) or one string.
func groupsOf(v any) []string {
	var out []string
	switch g := v.(type) {
	case string:
		if s := strings.TrimSpace(g); s != "" {
			out = append(out, s)
		}
	case []any:
		for _, x := range g {
			if s, ok := x.(string); ok && strings.TrimSpace(s) != "" {
				out = append(out, strings.TrimSpace(s))
			}
		}
	case []string:
		for _, s := range g {
			if s = strings.TrimSpace(s); s != "" {
				out = append(out, s)
			}
		}
	}
	return out
}

// TokenClaims are claims about a token rather than the person (JWT and OIDC mechanics); they are not
// kept as identity claims.
var TokenClaims = []string{"iss", "aud", "exp", "iat", "nbf", "jti", "nonce", "at_hash", "c_hash", "sid", "auth_time", "azp", "scope", "gty", "typ", "client_id", "permissions", "acr", "amr", "updated_at"}

// PersonClaims returns the claims that describe the person (TokenClaims removed), for keeping.
func PersonClaims(claims map[string]any) map[string]any {
	if claims == nil {
		return nil
	}
	out := make(map[string]any, len(claims))
	for k, v := range claims {
		if !slices.Contains(TokenClaims, k) {
			out[k] = v
		}
	}
	return out
}
