package login_test

import (
	"context"
	"net/url"
	"testing"
	"time"

	"github.com/cnpg-mcp/cnpg-mcp/conformance/login"
	"github.com/cnpg-mcp/cnpg-mcp/conformance/oauthclient"
	"github.com/cnpg-mcp/cnpg-mcp/conformance/redirect"
	"github.com/cnpg-mcp/cnpg-mcp/mockauth0"
)

// TestDriverAgainstMockAuth0: the default selectors log in at the mock Auth0's Universal-Login-like
// page, and a wrong password is reported as such.
func TestDriverAgainstMockAuth0(t *testing.T) {
	b := shared.Get(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	mock, err := mockauth0.Start(ctx, mockauth0.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer mock.Close()
	ln, err := redirect.Start()
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()

	for _, tc := range []struct {
		name, password string
		wantCode       bool
	}{{"right password", "dev-password", true}, {"wrong password", "nope", false}} {
		t.Run(tc.name, func(t *testing.T) {
			ep := ln.NewEndpointAt("/auth/callback")
			p := url.Values{"response_type": {"code"}, "client_id": {"cnpg-mcp-proxy"}, "redirect_uri": {ep.URI()},
				"scope": {"openid offline_access"}, "state": {"st"}, "audience": {"https://cnpg-mcp.example/api"},
				"code_challenge": {oauthclient.S256(oauthclient.NewVerifier())}, "code_challenge_method": {"S256"}}
			s, err := b.NewSession()
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			start := time.Now()
			if err := s.StartNavigation(ctx, mock.Issuer()+"authorize?"+p.Encode()); err != nil {
				t.Fatal(err)
			}
			d := login.New(login.Options{Credentials: login.Credentials{Username: "dev@example.com", Password: tc.password}, IdleTimeout: 2 * time.Second})
			out, err := d.Run(ctx, s, login.Plan{Done: ep.Received})
			t.Logf("%s: %s, steps %d, err %v", tc.name, time.Since(start), len(out.Steps), err)
			if tc.wantCode {
				if err != nil {
					t.Fatal(err)
				}
				r, _ := ep.Wait(ctx)
				if r.Code() == "" || r.State() != "st" || !out.SawLogin {
					t.Fatalf("no code: %v (saw login %v)", r.Query, out.SawLogin)
				}
				return
			}
			if err == nil {
				t.Fatal("a wrong password must fail the flow")
			}
		})
	}
}
