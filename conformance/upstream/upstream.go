// Package upstream gives checks the upstream identity provider's view of a flow: the requests the
// MCP server's OAuth proxy sent to it (PKCE upstream, no `resource` forwarded, which token was
// revoked) and a few controls (revoke a user's grants, inject faults, move its clock). It is
// available when the target's upstream is this repository's mock Auth0 (MockAdmin).
package upstream

import (
	"context"
	"net/http"
	"net/url"
	"time"
)

// Request is one request the upstream received. Seq orders requests (the mock's clock may have
// been moved, so Time does not).
type Request struct {
	Seq    int64
	Time   time.Time
	Method string
	Path   string
	Query  url.Values
	Form   url.Values
	Header http.Header
	Status int
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
	// Requests returns what the upstream received on path ("" = all) after sequence number since.
	Requests(ctx context.Context, path string, since int64) ([]Request, error)
	// RevokeUserGrants revokes every grant (refresh token, session) of a user.
	RevokeUserGrants(ctx context.Context, sub string) error
	// SetFault injects a fault on a path; ClearFaults removes all.
	SetFault(ctx context.Context, path string, f Fault) error
	ClearFaults(ctx context.Context) error
	// Advance moves the upstream's clock forward.
	Advance(ctx context.Context, d time.Duration) error
}

// LastSeq is the sequence number of the latest request (a mark to read "what came after").
func LastSeq(ctx context.Context, v View) (int64, error) {
	reqs, err := v.Requests(ctx, "", 0)
	if err != nil {
		return 0, err
	}
	var last int64
	for _, r := range reqs {
		if r.Seq > last {
			last = r.Seq
		}
	}
	return last, nil
}
