package localstack

import (
	"context"
	"time"

	"github.com/cnpg-mcp/cnpg-mcp/conformance/internal/defects"
	"github.com/cnpg-mcp/cnpg-mcp/conformance/upstream"
	"github.com/cnpg-mcp/cnpg-mcp/mockauth0"
)

// mockView is the upstream.View of an in-process mock Auth0.
type mockView struct{ m *mockauth0.Server }

func (v mockView) Requests(_ context.Context, path string, since int64) ([]upstream.Request, error) {
	var out []upstream.Request
	for _, r := range v.m.RequestsTo(path) {
		if r.Seq > since && r.Header.Get(defects.HiddenHeader) == "" {
			out = append(out, upstream.Request{Seq: r.Seq, Time: r.Time, Method: r.Method, Path: r.Path, Query: r.Query, Form: r.Form, Header: r.Header, Status: r.Status})
		}
	}
	return out, nil
}

func (v mockView) RevokeUserGrants(_ context.Context, sub string) error {
	v.m.RevokeUserGrants(sub)
	return nil
}

func (v mockView) SetFault(_ context.Context, path string, f upstream.Fault) error {
	return v.m.SetFault(path, mockauth0.Fault{Status: f.Status, Latency: f.Latency, Drop: f.Drop, Count: f.Count})
}

func (v mockView) ClearFaults(context.Context) error { v.m.ClearFaults(); return nil }

func (v mockView) Advance(_ context.Context, d time.Duration) error { v.m.Advance(d); return nil }
