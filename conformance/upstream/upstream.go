// Package upstream gives checks the upstream identity provider's view of a flow: the requests the
// MCP server's OAuth proxy sent to it (PKCE upstream, no `resource` forwarded, which token was
// revoked) and a few controls (revoke a user's grants, inject faults). It is available when the
// target's upstream is this repository's mock Auth0.
package upstream

import (
	"context"
	"net/http"
	"net/url"
	"time"
)

// Request is one request the upstream received.
type Request struct {
	Time   time.Time
	Method string
	Path   string
	Query  url.Values
	Form   url.Values
	Header http.Header
}

// Param returns a parameter from the query or the form.
func (r Request) Param(name string) string {
	if v := r.Query.Get(name); v != "" {
		return v
	}
	return r.Form.Get(name)
}

// Has reports whether a parameter is present in the query or the form.
func (r Request) Has(name string) bool { return r.Query.Has(name) || r.Form.Has(name) }

// Fault makes an upstream endpoint misbehave.
type Fault struct {
	Status  int
	Latency time.Duration
	Drop    bool
	// Count limits the fault to the next Count requests (0 = until cleared).
	Count int
}

// View is the upstream's log and controls.
type View interface {
	// Requests returns what the upstream received, oldest first.
	Requests(ctx context.Context) ([]Request, error)
	// RevokeUserGrants revokes every grant (refresh token) of a user.
	RevokeUserGrants(ctx context.Context, sub string) error
	// SetFault injects a fault on a path; ClearFaults removes all.
	SetFault(ctx context.Context, path string, f Fault) error
	ClearFaults(ctx context.Context) error
}

// Since filters requests at or after t on a path ("" = any).
func Since(reqs []Request, t time.Time, path string) []Request {
	var out []Request
	for _, r := range reqs {
		if !r.Time.Before(t) && (path == "" || r.Path == path) {
			out = append(out, r)
		}
	}
	return out
}
