package checks

import (
	"context"
	"net/url"
	"strings"
	"sync"

	"github.com/cnpg-mcp/cnpg-mcp/conformance/browser"
	"github.com/cnpg-mcp/cnpg-mcp/conformance/oauthclient"
)

// upstreamTokens caches tokens the suite obtained straight from the upstream.
type upstreamTokens struct {
	mu   sync.Mutex
	toks map[string]string
	err  string
}

// UpstreamTokens logs in at the upstream directly (as the configured upstream application) and
// returns access tokens it issued: with an audience (a signed JWT) and without (Auth0: a JWE).
// The check is skipped when no upstream application is configured.
func (t *T) UpstreamTokens() map[string]string {
	uc := t.env.cfg.UpstreamClient
	if uc == nil {
		t.Skipf("needs an upstream application to obtain upstream tokens directly (--upstream-client-id/--upstream-client-secret)")
	}
	u := &t.env.upstreamToks
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.toks != nil {
		return u.toks
	}
	if u.err != "" {
		t.Inconclusive("log in at the upstream directly as --upstream-client-id", u.err, "the suite could not obtain upstream tokens to present (check the upstream application's callback URLs and secret)", "")
	}
	meta, _, err := t.client.FetchASMetadata(t.Label("upstream OIDC discovery"), strings.TrimSuffix(uc.Issuer, "/")+"/.well-known/openid-configuration")
	if err != nil {
		u.err = err.Error()
		t.Inconclusive("discover the upstream at --upstream-issuer", err.Error(), "the suite could not obtain upstream tokens to present", "")
	}
	out := map[string]string{}
	for _, aud := range []string{uc.Audience, ""} {
		name := "an upstream access token without audience"
		if aud != "" {
			name = "an upstream access token for audience " + aud
		}
		tok, err := t.upstreamLogin(meta, uc, aud)
		if err != nil {
			u.err = err.Error()
			t.Inconclusive("obtain "+name, err.Error(), "the suite could not obtain upstream tokens to present (check the upstream application's callback URLs and secret)", "")
		}
		out[name] = tok
		t.rec.AddToken(name, tok)
	}
	u.toks = out
	return out
}

type errString string

func (e errString) Error() string { return string(e) }

func (t *T) upstreamLogin(meta *oauthclient.ASMetadata, uc *UpstreamClient, audience string) (tok string, err error) {
	ep := t.env.redirect.NewEndpointAt("/auth/callback")
	verifier := oauthclient.NewVerifier()
	state := oauthclient.RandomString(12)
	p := url.Values{"response_type": {"code"}, "client_id": {uc.ClientID}, "redirect_uri": {ep.URI()},
		"scope": {"openid profile email"}, "state": {state}, "nonce": {oauthclient.RandomString(12)},
		"code_challenge": {oauthclient.S256(verifier)}, "code_challenge_method": {"S256"}}
	if audience != "" {
		p.Set("audience", audience)
	}
	b, err := t.env.Browser()
	if err != nil {
		return "", err
	}
	var s *browser.Session
	if t.env.cfg.FreshContexts {
		if s, err = b.NewSession(); err != nil {
			return "", err
		}
		defer s.Close()
	} else {
		if s, err = t.env.acquireTab(b); err != nil {
			return "", err
		}
		defer func() { t.env.releaseTab(s, err != nil) }()
	}
	ctx, cancel := context.WithTimeout(t.ctx, t.env.cfg.FlowTimeout)
	defer cancel()
	if err := s.StartNavigation(ctx, oauthclient.AuthorizeURL(meta.AuthorizationEndpoint, p)); err != nil {
		return "", err
	}
	if _, err := t.env.driver.Run(ctx, s, loginPlanUntil(ep.Received)); err != nil {
		return "", err
	}
	r, err := ep.Wait(ctx)
	if err != nil {
		return "", err
	}
	if r.Code() == "" {
		return "", errString("the upstream answered without a code: " + r.Error())
	}
	resp, err := t.client.Token(t.Label("upstream code exchange"), meta.TokenEndpoint, url.Values{
		"grant_type": {"authorization_code"}, "code": {r.Code()}, "redirect_uri": {ep.URI()}, "client_id": {uc.ClientID},
		"client_secret": {uc.ClientSecret}, "code_verifier": {verifier}})
	if err != nil {
		return "", err
	}
	tr, err := oauthclient.DecodeToken(resp)
	if err != nil {
		return "", err
	}
	return tr.AccessToken, nil
}
