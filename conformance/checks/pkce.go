package checks

import (
	"strings"

	"github.com/cnpg-mcp/cnpg-mcp/conformance/oauthclient"
)

// C.8 PKCE.
func pkceChecks() map[string]func(*T) {
	return map[string]func(*T){
		"PKCE-01": pkce01, "PKCE-02": pkce02, "PKCE-03": pkce03, "PKCE-04": pkce04,
		"PKCE-05": pkce05, "PKCE-06": pkce06, "PKCE-07": pkce07, "PKCE-08": pkce08,
	}
}

// expectAuthzRefused: the request must be refused (error page or error redirect) with one of codes.
func (t *T) expectAuthzRefused(what string, p *AuthzProbe, codes ...string) {
	switch {
	case p.Kind == Rejected:
	case p.Kind == ServerError:
		t.refusedAuthz(what, p)
	case p.Kind == ClientRedirect && p.Client.Get("error") != "":
		if e := p.Client.Get("error"); len(codes) > 0 && !contains(codes, e) {
			t.Warnf("%s: error=%s, expected %s", what, e, strings.Join(codes, " or "))
		}
	default:
		t.Errorf("%s was accepted (%s)", what, p.Describe())
	}
}

func contains(list []string, v string) bool {
	for _, s := range list {
		if s == v {
			return true
		}
	}
	return false
}

// PKCE-01: no code_challenge → invalid_request.
func pkce01(t *T) {
	c := t.RegisterClient(nil)
	p := t.ProbeAuthorize("authorization request without code_challenge", t.AuthParams(&Flow{Client: c, Challenge: ptr(""), Method: ptr("")}), nil, c.RedirectURI)
	t.expectAuthzRefused("an authorization request without code_challenge", p, "invalid_request")
}

// PKCE-02: unsupported methods → invalid_request.
func pkce02(t *T) {
	c := t.RegisterClient(nil)
	methods := []string{"foo"}
	if !contains(t.AS().CodeChallengeMethodsSupported, "plain") {
		methods = append(methods, "plain")
	}
	for _, m := range methods {
		p := t.ProbeAuthorize("code_challenge_method="+m, t.AuthParams(&Flow{Client: c, Method: ptr(m)}), nil, c.RedirectURI)
		t.expectAuthzRefused("code_challenge_method="+m, p, "invalid_request")
	}
}

// PKCE-03: /token without code_verifier is refused.
func pkce03(t *T) {
	r := t.Authorize(Flow{Name: "code for PKCE-03"})
	x := r.CodeExchange()
	x.CodeVerifier = ""
	resp := t.Token("redeem without code_verifier", x.Form())
	t.gradeTokenError("a code redeemed without code_verifier", resp, "invalid_request", "invalid_grant")
}

// PKCE-04: a wrong verifier → invalid_grant (400).
func pkce04(t *T) {
	r := t.Authorize(Flow{Name: "code for PKCE-04"})
	x := r.CodeExchange()
	x.CodeVerifier = oauthclient.NewVerifier()
	resp := t.Token("redeem with another verifier", x.Form())
	t.gradeTokenError("a code redeemed with the wrong code_verifier", resp, "invalid_grant")
}

// PKCE-05: no downgrade: a verifier for a code issued without a challenge is refused.
func pkce05(t *T) {
	c := t.RegisterClient(nil)
	p := t.ProbeAuthorize("authorization request without code_challenge", t.AuthParams(&Flow{Client: c, Challenge: ptr(""), Method: ptr("")}), nil, c.RedirectURI)
	if p.refused() {
		t.Logf("the AS refuses requests without code_challenge (PKCE-01), so no challenge-less code exists to downgrade")
		return
	}
	r := t.Authorize(Flow{Client: c, Challenge: ptr(""), Method: ptr(""), Name: "code without challenge", Subject: true})
	resp := t.Token("redeem a challenge-less code with a code_verifier", r.CodeExchange().Form())
	t.gradeTokenError("a code_verifier for a code issued without a challenge", resp, "invalid_grant", "invalid_request")
}

// PKCE-06: the verifier's syntax (43–128 unreserved characters) is enforced.
func pkce06(t *T) {
	short := oauthclient.RandomString(32)[:42]
	r := t.Authorize(Flow{Verifier: short, Name: "code with a 42-character verifier"})
	resp := t.Token("redeem with a 42-character verifier", r.CodeExchange().Form())
	if resp.Status == 200 {
		t.Errorf("a 42-character code_verifier was accepted (RFC 7636 §4.1: 43–128 characters)")
		return
	}
	t.gradeTokenError("a 42-character code_verifier", resp, "invalid_grant", "invalid_request")
}

// PKCE-07: the proxy uses its own PKCE pair upstream; the client's values never leave it.
func pkce07(t *T) {
	r, auths, toks := t.watchedFlow(Flow{Name: "flow watched upstream"})
	defer t.reportFlow(r)
	clientChallenge := r.Params.Get("code_challenge")
	if len(auths) == 0 {
		t.noUpstreamLeg(r)
	}
	challenges := map[string]bool{}
	for _, a := range auths {
		ch := a.Param("code_challenge")
		switch {
		case ch == "":
			t.Errorf("the upstream authorization request carries no code_challenge")
		case ch == clientChallenge:
			t.Errorf("the proxy forwarded the client's code_challenge upstream instead of its own")
		}
		if m := a.Param("code_challenge_method"); ch != "" && m != "S256" {
			t.Errorf("the upstream authorization request uses code_challenge_method %q, not S256", m)
		}
		challenges[ch] = true
	}
	found := false
	for _, tr := range toks {
		if tr.Form.Get("grant_type") != "authorization_code" {
			continue
		}
		v := tr.Form.Get("code_verifier")
		switch {
		case v == "":
			t.Errorf("the proxy's upstream code exchange carries no code_verifier")
		case v == r.Verifier:
			t.Errorf("the proxy sent the client's code_verifier upstream")
		case challenges[oauthclient.S256(v)]:
			found = true
		}
	}
	if !found && !t.Failed() && len(toks) > 0 {
		t.Errorf("no upstream code exchange carried a verifier matching the upstream challenge")
	}
}

// PKCE-08: constant challenges are noticed (informational). Two ways count: the challenge of a code
// that was already redeemed is refused when sent again, or the same challenge is refused when
// repeated in a row.
func pkce08(t *T) {
	c := t.RegisterClient(nil)
	verifier := oauthclient.NewVerifier()
	t.Grant(Flow{Client: c, Verifier: verifier})
	again := t.AuthParams(&Flow{Client: c, Verifier: verifier})
	again.Set("code_challenge", oauthclient.S256(verifier))
	if p := t.ProbeAuthorize("the code_challenge of a redeemed code again", again, nil, c.RedirectURI); p.refused() {
		return
	}
	verifier = oauthclient.NewVerifier()
	refused := 0
	for i := 0; i < 3; i++ {
		params := t.AuthParams(&Flow{Client: c, Verifier: verifier})
		params.Set("code_challenge", oauthclient.S256(verifier))
		if p := t.ProbeAuthorize("the same code_challenge again", params, nil, c.RedirectURI); p.refused() {
			refused++
		}
	}
	if refused == 0 {
		t.Warnf("the code_challenge of a redeemed code, and the same code_challenge three times in a row, were accepted (RFC 9700 §2.1.1 encourages detecting constant challenges)")
	}
}
