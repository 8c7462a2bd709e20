package upstream

import (
	"context"
	"net/http"
	"time"

	"github.com/cnpg-mcp/cnpg-mcp/mockauth0/adminclient"
)

// MockAdmin is the View of a mock Auth0 reached through its admin API (mockauth0 --admin).
type MockAdmin struct {
	c *adminclient.Client
}

// NewMockAdmin returns a View for the mock at issuer (e.g. http://127.0.0.1:8081/); token is the
// admin token (empty when the mock runs without --admin-token).
func NewMockAdmin(issuer, token string, hc *http.Client) *MockAdmin {
	return &MockAdmin{c: adminclient.New(issuer, token, hc)}
}

// Requests implements View.
func (m *MockAdmin) Requests(ctx context.Context, path string, since int64) ([]Request, error) {
	rs, err := m.c.Requests(ctx, path, since)
	if err != nil {
		return nil, err
	}
	out := make([]Request, 0, len(rs))
	for _, r := range rs {
		out = append(out, Request{Seq: r.Seq, Time: r.Time, Method: r.Method, Path: r.Path, Query: r.Query, Form: r.Form, Header: r.Header, Status: r.Status})
	}
	return out, nil
}

// RevokeUserGrants implements View.
func (m *MockAdmin) RevokeUserGrants(ctx context.Context, sub string) error {
	_, err := m.c.RevokeUserGrants(ctx, sub)
	return err
}

// SetFault implements View.
func (m *MockAdmin) SetFault(ctx context.Context, path string, f Fault) error {
	return m.c.SetFault(ctx, adminclient.Fault{Path: path, Status: f.Status, Latency: f.Latency, Drop: f.Drop, Count: f.Count})
}

// ClearFaults implements View.
func (m *MockAdmin) ClearFaults(ctx context.Context) error { return m.c.ClearFaults(ctx) }

// Advance implements View.
func (m *MockAdmin) Advance(ctx context.Context, d time.Duration) error { return m.c.Advance(ctx, d) }

// Ping checks that the admin API answers (a clear error for a wrong --mock-auth0-admin).
func (m *MockAdmin) Ping(ctx context.Context) error {
	_, err := m.c.Now(ctx)
	return err
}
