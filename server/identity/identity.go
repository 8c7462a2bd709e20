// Package identity carries the authenticated caller of an MCP request through a context.Context.
//
// The bearer check (server/bearer) puts an Identity into the request context after it verified the
// access token; tool handlers read it for scope checks and the audit log, and, when the server
// impersonates users in Kubernetes, the Kubernetes user and groups every request of the call carries
// (KubeUser, mapped from the upstream claims kept with the grant by Mapping). Nothing else is stored:
// the raw token never travels further than the bearer check.
package identity

import (
	"context"
	"slices"
	"time"
)

// Identity is the verified caller of one request.
type Identity struct {
	Subject   string    // the end user (our JWT `sub`, i.e. the upstream subject)
	ClientID  string    // the OAuth client that obtained the token
	TokenID   string    // `jti` of the access token, for audit correlation and revocation
	Scopes    []string  // granted scopes
	ExpiresAt time.Time // token expiry
	// Kube is who tool calls act as in Kubernetes (kubernetes.identity: impersonate), from the
	// grant's upstream identity; nil in service-account mode.
	Kube *KubeUser
}

type ctxKey struct{}

// NewContext returns a copy of ctx that carries id.
func NewContext(ctx context.Context, id Identity) context.Context {
	return context.WithValue(ctx, ctxKey{}, id)
}

// FromContext returns the identity stored in ctx, if any.
func FromContext(ctx context.Context) (Identity, bool) {
	id, ok := ctx.Value(ctxKey{}).(Identity)
	return id, ok
}

// HasScope reports whether the identity was granted scope s (exact match).
func (i Identity) HasScope(s string) bool {
	return slices.Contains(i.Scopes, s)
}

// Missing returns the scopes of required that the identity lacks, in the order given.
func (i Identity) Missing(required []string) []string {
	var out []string
	for _, s := range required {
		if !i.HasScope(s) && !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}
