package login_test

import (
	"context"
	"net/url"
	"os"
	"strings"
	"testing"

	"github.com/cnpg-mcp/cnpg-mcp/conformance/browser"
	"github.com/cnpg-mcp/cnpg-mcp/conformance/internal/testenv"
	"github.com/cnpg-mcp/cnpg-mcp/conformance/login"
	"github.com/cnpg-mcp/cnpg-mcp/conformance/oauthclient"
	"github.com/cnpg-mcp/cnpg-mcp/conformance/redirect"
	"github.com/cnpg-mcp/cnpg-mcp/mockauth0"
)

// BenchmarkBrowserFlow measures one upstream login flow in a fresh browser context (the unit of
// browser work the suite repeats), with and without a prewarmed session:
//
//	go test -run '^$' -bench BrowserFlow ./conformance/login/
//
// BENCH_CHROMIUM_FLAGS="name=value name2" adds browser switches, to compare settings.
func BenchmarkBrowserFlow(b *testing.B) {
	testenv.SkipWithoutChromium(b)
	ctx := context.Background()
	mock, err := mockauth0.Start(ctx, mockauth0.DefaultConfig())
	if err != nil {
		b.Fatal(err)
	}
	defer mock.Close()
	ln, err := redirect.Start()
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	for _, bc := range []struct {
		name    string
		prewarm int
	}{{"fresh-session", 0}, {"prewarmed-session", 1}} {
		b.Run(bc.name, func(b *testing.B) {
			flags := map[string]any{}
			for _, f := range strings.Fields(os.Getenv("BENCH_CHROMIUM_FLAGS")) {
				k, v, ok := strings.Cut(f, "=")
				if ok {
					flags[k] = v
				} else {
					flags[k] = true
				}
			}
			br, err := browser.Start(ctx, browser.Options{ExecPath: testenv.ChromiumPath(), Flags: flags})
			if err != nil {
				b.Fatal(err)
			}
			defer br.Close()
			br.Prewarm(bc.prewarm)
			d := login.New(login.Options{Credentials: login.Credentials{Username: "dev@example.com", Password: "dev-password"}})
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				s, err := br.NewSession()
				if err != nil {
					b.Fatal(err)
				}
				ep := ln.NewEndpointAt("/auth/callback")
				p := url.Values{"response_type": {"code"}, "client_id": {"cnpg-mcp-proxy"}, "redirect_uri": {ep.URI()}, "scope": {"openid"},
					"state": {"st"}, "code_challenge": {oauthclient.S256(oauthclient.NewVerifier())}, "code_challenge_method": {"S256"}}
				if err := s.StartNavigation(ctx, mock.Issuer()+"authorize?"+p.Encode()); err != nil {
					b.Fatal(err)
				}
				if _, err := d.Run(ctx, s, login.Plan{Done: ep.Received}); err != nil {
					b.Fatal(err)
				}
				s.Close()
			}
		})
	}
}
