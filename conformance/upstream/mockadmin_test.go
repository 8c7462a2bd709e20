package upstream_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/cnpg-mcp/cnpg-mcp/conformance/upstream"
	"github.com/cnpg-mcp/cnpg-mcp/mockauth0"
)

// TestMockAdmin: the view reads the mock's request log in order and drives its controls.
func TestMockAdmin(t *testing.T) {
	ctx := context.Background()
	cfg := mockauth0.DefaultConfig()
	cfg.Admin.Enabled = true
	m, err := mockauth0.Start(ctx, cfg, mockauth0.WithRSABits(1024))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	v := upstream.NewMockAdmin(m.Issuer(), "", nil)
	if err := v.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	mark, err := upstream.LastSeq(ctx, v)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get(m.Issuer() + ".well-known/openid-configuration")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	reqs, err := v.Requests(ctx, "/.well-known/openid-configuration", mark)
	if err != nil || len(reqs) != 1 || reqs[0].Seq <= mark {
		t.Fatalf("requests after the mark: %+v %v", reqs, err)
	}
	if err := v.SetFault(ctx, "/userinfo", upstream.Fault{Status: 503, Count: 1}); err != nil {
		t.Fatal(err)
	}
	resp, err = http.Get(m.Issuer() + "userinfo")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 503 {
		t.Fatalf("fault not applied: %d", resp.StatusCode)
	}
	if err := v.ClearFaults(ctx); err != nil {
		t.Fatal(err)
	}
	before := m.Now()
	if err := v.Advance(ctx, time.Hour); err != nil {
		t.Fatal(err)
	}
	if m.Now().Sub(before) < time.Hour {
		t.Fatal("clock not advanced")
	}
	if err := v.RevokeUserGrants(ctx, "auth0|64f0c0ffee0000000000d0e1"); err != nil {
		t.Fatal(err)
	}
}
