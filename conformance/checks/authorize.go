package checks

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/cnpg-mcp/cnpg-mcp/conformance/login"
	"github.com/cnpg-mcp/cnpg-mcp/conformance/oauthclient"
)

// C.7 Authorization endpoint.
func authorizeChecks() map[string]func(*T) {
	return map[string]func(*T){
		"AZ-01": az01, "AZ-02": az02, "AZ-03": az03, "AZ-04": az04, "AZ-05": az05, "AZ-06": az06, "AZ-07": az07,
		"AZ-08": az08, "AZ-09": az09, "AZ-10": az10, "AZ-11": az11, "AZ-12": az12, "AZ-13": az13, "AZ-14": az14,
		"AZ-15": az15,
	}
}

// AZ-01: the authorization endpoint works with GET.
func az01(t *T) {
	g := t.SharedGrant()
	if g.Flow.Response.Code() == "" {
		t.Errorf("the GET authorization flow did not yield a code")
	}
}

// AZ-02: a missing or unknown client_id gets an error page, never a redirect.
func az02(t *T) {
	ep := t.env.redirect.NewEndpoint()
	base := url.Values{"response_type": {"code"}, "redirect_uri": {ep.URI()}, "state": {"s"},
		"code_challenge": {oauthclient.S256(oauthclient.NewVerifier())}, "code_challenge_method": {"S256"}}
	unknown := cloneValues(base)
	unknown.Set("client_id", "conformance-unknown-client-"+oauthclient.RandomString(6))
	for name, p := range map[string]url.Values{"an unknown client_id": unknown, "no client_id": base} {
		pr := t.ProbeAuthorize("authorization request with "+name, p, nil, ep.URI())
		switch pr.Kind {
		case ServerError:
			t.refusedAuthz(name, pr)
		case Rejected:
			if pr.Final.Status != http.StatusBadRequest && pr.Final.Status != http.StatusUnauthorized {
				t.Logf("%s: refused with HTTP %d", name, pr.Final.Status)
			}
		case ClientRedirect:
			t.Errorf("%s: the AS redirected to the unverified redirect URI (%s); it must show an error instead", name, pr.Describe())
		default:
			t.Errorf("%s: the AS went on with the flow (%s)", name, pr.Describe())
		}
	}
}

func cloneValues(v url.Values) url.Values {
	out := url.Values{}
	for k, vs := range v {
		out[k] = append([]string(nil), vs...)
	}
	return out
}

// AZ-03: exact redirect-URI matching; loopback may vary the port only.
func az03(t *T) {
	web := "https://conformance-client.example/cb"
	c := t.RegisterClient(func(m map[string]any) {
		m["redirect_uris"] = []string{m["redirect_uris"].([]string)[0], web}
	})
	lb, _ := url.Parse(c.RedirectURI)
	variants := map[string]string{
		"another path":                      strings.TrimSuffix(c.RedirectURI, lb.Path) + lb.Path + "x",
		"an extra query":                    c.RedirectURI + "?x=1",
		"another host":                      "https://conformance-evil.example/cb",
		"the path in upper case":            strings.TrimSuffix(c.RedirectURI, lb.Path) + strings.ToUpper(lb.Path),
		"a trailing slash":                  c.RedirectURI + "/",
		"userinfo to another host":          fmt.Sprintf("http://127.0.0.1:%s@conformance-evil.example%s", lb.Port(), lb.Path),
		"a dot-segment":                     strings.TrimSuffix(c.RedirectURI, lb.Path) + lb.Path + "/../x",
		"the web URI on port 444":           "https://conformance-client.example:444/cb",
		"the web URI with a trailing slash": web + "/",
		"the web URI over http":             "http://conformance-client.example/cb",
		"a fragment":                        c.RedirectURI + "#x",
	}
	for name, ru := range variants {
		p := t.ProbeAuthorize("redirect_uri with "+name, t.AuthParams(&Flow{Client: c, RedirectURI: ptr(ru)}), nil, ru, c.RedirectURI, web)
		switch p.Kind {
		case Rejected:
		case ServerError:
			t.refusedAuthz(fmt.Sprintf("redirect_uri with %s (%s)", name, ru), p)
		case ClientRedirect:
			t.Errorf("redirect_uri with %s (%s): the AS redirected (%s); it must show an error and not redirect", name, ru, p.Describe())
		default:
			t.Errorf("redirect_uri with %s (%s) was accepted (%s); matching must be exact", name, ru, p.Describe())
		}
	}
	port, err := t.env.redirect.AddPort()
	t.Must(err, "open another loopback port")
	alt := c.Endpoint.WithPort(port)
	p := t.ProbeAuthorize("redirect_uri on another loopback port", t.AuthParams(&Flow{Client: c, RedirectURI: ptr(alt)}), nil, alt, c.RedirectURI)
	if p.refused() || p.Kind == ServerError {
		// Exact matching (this row) holds; allowing any loopback port is BCP-04's requirement
		// (graded through CLI-07, which runs the whole flow on another port).
		t.Warnf("the registered loopback redirect URI on another port (%s) was refused (%s): stricter than exact matching requires; loopback ports must be allowed to vary, which BCP-04 grades (see CLI-07)", alt, p.Describe())
	}
	p = t.ProbeAuthorize("the registered web redirect URI", t.AuthParams(&Flow{Client: c, RedirectURI: ptr(web)}), nil, web)
	if p.refused() || p.Kind == ServerError {
		t.Errorf("the exact registered redirect URI %s was refused (%s)", web, p.Describe())
	}
}

// AZ-04: no redirect_uri: error when several are registered, the registered one when only one is.
func az04(t *T) {
	two := t.RegisterClient(func(m map[string]any) {
		m["redirect_uris"] = []string{m["redirect_uris"].([]string)[0], t.env.redirect.NewEndpoint().URI()}
	})
	p := t.ProbeAuthorize("no redirect_uri, two registered", t.AuthParams(&Flow{Client: two, RedirectURI: ptr("")}), nil, two.Reg.RedirectURIs...)
	if !(p.Kind == Rejected) {
		t.Errorf("without redirect_uri for a client with two registered URIs the AS did not show an error (%s)", p.Describe())
	}
	one := t.RegisterClient(nil)
	r := t.Browse(Flow{Client: one, RedirectURI: ptr(""), Name: "no redirect_uri"})
	switch {
	case r.Err != nil:
		t.Errorf("without redirect_uri for a client with one registered URI the flow failed: %v (OAuth 2.1 §4.1.1: redirect_uri is optional then)", r.Err)
	case !r.Got || r.Response.Code() == "":
		t.Errorf("without redirect_uri for a client with one registered URI, the registered URI got no code")
	}
}

// AZ-05: state is echoed exactly; none is invented.
func az05(t *T) {
	odd := "conf-state a+b/c?d=e&f%g~ü\"'<>"
	c := t.RegisterClient(nil)
	p := t.ProbeAuthorize("error response with an unusual state", t.AuthParams(&Flow{Client: c, State: ptr(odd), Method: ptr("plain")}), nil, c.RedirectURI)
	if p.Kind == ClientRedirect {
		if got := p.Client.Get("state"); got != odd {
			t.Errorf("error response: state %q came back as %q", odd, got)
		}
	}
	p = t.ProbeAuthorize("error response without state", t.AuthParams(&Flow{Client: c, State: ptr(""), Method: ptr("plain")}), nil, c.RedirectURI)
	if p.Kind == ClientRedirect && p.Client.Has("state") {
		t.Errorf("error response to a request without state carries state=%q", p.Client.Get("state"))
	}
	r := t.Authorize(Flow{Client: c, State: ptr(odd), Name: "unusual state", Subject: true})
	if got := r.Response.State(); got != odd || r.Response.Count("state") != 1 {
		t.Errorf("success response: state %q came back as %q (%d times)", odd, got, r.Response.Count("state"))
	}
	r = t.Authorize(Flow{Client: c, State: ptr(""), Name: "no state", Subject: true})
	if r.Response.Has("state") {
		t.Errorf("success response to a request without state carries state=%q (OAuth 2.1 §4.1.2: only when sent)", r.Response.State())
	}
}

// AZ-06: response_type missing or unknown, and the implicit grant, are refused.
func az06(t *T) {
	c := t.RegisterClient(nil)
	for name, rt := range map[string]*string{"response_type=token": ptr("token"), "response_type=code token": ptr("code token"), "no response_type": ptr(""), "response_type=bogus": ptr("bogus")} {
		f := &Flow{Client: c}
		params := t.AuthParams(f)
		if *rt == "" {
			params.Del("response_type")
		} else {
			params.Set("response_type", *rt)
		}
		p := t.ProbeAuthorize("authorization request with "+name, params, nil, c.RedirectURI)
		switch {
		case p.Kind == Rejected:
		case p.Kind == ServerError:
			t.refusedAuthz(name, p)
		case p.Kind == ClientRedirect && p.Client.Get("error") != "":
			if e := p.Client.Get("error"); e != "unsupported_response_type" && e != "invalid_request" {
				t.Warnf("%s: error=%s, expected unsupported_response_type", name, e)
			}
		default:
			t.Errorf("%s was not refused (%s)", name, p.Describe())
		}
	}
}

// AZ-07: unknown parameters are ignored; repeated parameters are refused.
func az07(t *T) {
	c := t.RegisterClient(nil)
	p := t.ProbeAuthorize("authorization request with an unknown parameter", t.AuthParams(&Flow{Client: c, Extra: url.Values{"conformance_unknown": {"1"}}}), nil, c.RedirectURI)
	if p.refused() || p.Kind == ServerError {
		t.Errorf("an unknown parameter made the AS refuse the request (%s); it must be ignored", p.Describe())
	}
	for _, dup := range []string{"client_id", "redirect_uri", "code_challenge", "state", "response_type"} {
		params := t.AuthParams(&Flow{Client: c})
		params[dup] = append(params[dup], params.Get(dup))
		p := t.ProbeAuthorize("authorization request with "+dup+" twice", params, nil, c.RedirectURI)
		if !t.refusedAuthz(dup+" sent twice", p) {
			t.Errorf("%s sent twice was accepted (%s); OAuth 2.1 §3.1: parameters MUST NOT repeat", dup, p.Describe())
		} else if e := p.errorCode(); e != "" && e != "invalid_request" {
			t.Warnf("%s twice: error=%s, expected invalid_request", dup, e)
		}
	}
}

// AZ-08: no CORS on the authorization endpoint.
func az08(t *T) {
	c := t.RegisterClient(nil)
	u := oauthclient.AuthorizeURL(t.AS().AuthorizationEndpoint, t.AuthParams(&Flow{Client: c}))
	resp, err := t.client.Get(t.Label("cross-origin GET of the authorization endpoint"), u, http.Header{"Origin": {testOrigin}})
	t.Must(err, "cross-origin GET")
	if v := resp.Header.Get("Access-Control-Allow-Origin"); v != "" {
		t.Errorf("the authorization endpoint answers a cross-origin request with Access-Control-Allow-Origin: %s", v)
	}
	pre, err := t.client.Options(t.Label("CORS preflight to the authorization endpoint"), t.AS().AuthorizationEndpoint, testOrigin, http.MethodGet, "")
	t.Must(err, "preflight")
	if v := pre.Header.Get("Access-Control-Allow-Origin"); v != "" {
		t.Errorf("the authorization endpoint's preflight allows origin %s", v)
	}
}

// expireCode authorizes, then moves the target's clock past the recommended code lifetime.
func (t *T) expiredCode() *FlowResult {
	if t.env.cfg.TimeTravel == nil {
		t.Skipf("needs to move the target's clock past the code lifetime (available against the in-process reference stack)")
	}
	r := t.Authorize(Flow{Name: "code to let expire"})
	t.TimeTravel(10*time.Minute + 5*time.Second)
	return r
}

// AZ-09: codes are short-lived (≤ 10 minutes recommended).
func az09(t *T) {
	r := t.expiredCode()
	resp := t.Token("redeem a code older than 10 minutes", r.CodeExchange().Form())
	if resp.Status == http.StatusOK {
		t.Warnf("a code was still redeemable after 10 minutes (RECOMMENDED maximum lifetime)")
		return
	}
	t.gradeTokenError("an expired code", resp, "invalid_grant")
}

// AZ-10: no automatic error redirect to an untrusted (dynamically registered) redirect URI.
func az10(t *T) {
	attacker := "https://conformance-attacker.example/cb"
	c := t.RegisterClient(func(m map[string]any) {
		m["redirect_uris"] = []string{attacker}
		m["application_type"] = "web"
	})
	params := t.AuthParams(&Flow{Client: c, RedirectURI: ptr(attacker)})
	params.Set("scope", "conformance-bogus-scope")
	p := t.ProbeAuthorize("an invalid request for an attacker-registered redirect URI", params, nil, attacker)
	if p.Kind == ClientRedirect {
		t.Errorf("the AS redirected straight to the dynamically registered %s with an error (%s) before the user saw anything: an open redirector (OAuth 2.1 §7.12.2)", attacker, p.Describe())
	}
}

// AZ-11: no 307 after a credential POST (consent).
func az11(t *T) {
	jar := NewJar()
	f := &Flow{}
	p, _ := t.OpenConsent("open the consent page", f, jar)
	resp := t.SubmitConsent("approve", p.Form, true, jar, nil, nil)
	if resp.Status == http.StatusTemporaryRedirect || resp.Status == http.StatusPermanentRedirect {
		t.Errorf("the consent POST answered %d: the browser would re-POST the form to %s (OAuth 2.1 §7.5.4)", resp.Status, resp.Location())
	}
	g := t.SharedGrant()
	for _, n := range g.Flow.Navigations {
		if n.RedirectStatus == http.StatusTemporaryRedirect || n.RedirectStatus == http.StatusPermanentRedirect {
			t.Errorf("the browser flow had a %d redirect to %s", n.RedirectStatus, stripQuery(n.URL))
		}
	}
}

// errorResponses triggers authorization errors and returns the client-visible responses.
func (t *T) errorResponses(c *Client) map[string]*AuthzProbe {
	out := map[string]*AuthzProbe{}
	mk := func(name string, mod func(url.Values)) {
		params := t.AuthParams(&Flow{Client: c, State: ptr("conf-" + strings.ReplaceAll(name, " ", "-"))})
		mod(params)
		out[name] = t.ProbeAuthorize("authorization error: "+name, params, nil, c.RedirectURI)
	}
	mk("unsupported response_type", func(v url.Values) { v.Set("response_type", "conformance_bogus") })
	mk("plain PKCE method", func(v url.Values) { v.Set("code_challenge_method", "plain") })
	mk("no code_challenge", func(v url.Values) { v.Del("code_challenge"); v.Del("code_challenge_method") })
	mk("foreign resource", func(v url.Values) { v.Set("resource", "https://conformance-other.example/mcp") })
	mk("invalid scope", func(v url.Values) { v.Set("scope", "conformance-bogus-scope") })
	return out
}

// AZ-12: error redirects carry a registered error code, a clean description, state and iss; an
// invalid request is never answered with a 5xx (the other rows' refusals of that form included).
func az12(t *T) {
	defer t.gradeRecordedForms(authorizeErrors, false)
	c := t.RegisterClient(nil)
	as := t.AS()
	advertised, _ := as.Bool("authorization_response_iss_parameter_supported")
	redirects := 0
	for name, p := range t.errorResponses(c) {
		if p.Kind == ServerError {
			t.Errorf("%s: answered %s instead of an error redirect (OAuth 2.1 §4.1.2.1: server_error is redirected)", name, p.Final.Describe())
		}
		if p.Kind != ClientRedirect {
			continue
		}
		redirects++
		q := p.Client
		if e := q.Get("error"); !slices.Contains(authzErrorCodes, e) {
			t.Errorf("%s: error=%q is not an authorization-endpoint error code", name, e)
		}
		for _, k := range []string{"error_description"} {
			if v := q.Get(k); v != "" && badErrorChars(v) {
				t.Errorf("%s: %s %q has characters outside %%x20-21 / %%x23-5B / %%x5D-7E", name, k, v)
			}
		}
		if want := "conf-" + strings.ReplaceAll(name, " ", "-"); q.Get("state") != want {
			t.Errorf("%s: state came back as %q, want %q", name, q.Get("state"), want)
		}
		if advertised && q.Get("iss") != as.Issuer {
			t.Errorf("%s: iss=%q, want %q", name, q.Get("iss"), as.Issuer)
		}
	}
	if redirects == 0 {
		t.Logf("the AS answered every error with an error page, not a redirect")
	}
}

// AZ-13: an invalid scope gets invalid_scope; no scope gets the server's default.
func az13(t *T) {
	c := t.RegisterClient(nil)
	params := t.AuthParams(&Flow{Client: c})
	params.Set("scope", "conformance-bogus-scope")
	p := t.ProbeAuthorize("authorization request with an unknown scope", params, nil, c.RedirectURI)
	switch {
	case p.Kind == ClientRedirect && p.Client.Get("error") == "invalid_scope":
	case p.Kind == ClientRedirect && p.Client.Get("error") != "":
		t.Errorf("an unknown scope got error=%s, want invalid_scope", p.Client.Get("error"))
	case p.Kind == Rejected:
		t.Warnf("an unknown scope got an error page (%s) instead of an invalid_scope redirect", p.Describe())
	default:
		t.Warnf("an unknown scope was accepted (%s): lenient (see CLI-11) — the scope must not be granted", p.Describe())
	}
	g := t.Grant(Flow{Client: c, Scope: ptr(""), Name: "no scope", Subject: true})
	t.Logf("without scope the AS granted %q", g.Tokens.Scope)
}

// AZ-14: iss on every authorization response, equal to the metadata issuer, exactly once.
func az14(t *T) {
	as := t.AS()
	advertised, _ := as.Bool("authorization_response_iss_parameter_supported")
	check := func(what string, q interface {
		Get(string) string
	}, count int) {
		switch {
		case count == 0 && advertised:
			t.Errorf("%s: no iss although metadata advertises authorization_response_iss_parameter_supported", what)
		case count == 0:
			t.Warnf("%s: no iss (RFC 9207; MCP 2026-07-28: SHOULD)", what)
		case count > 1:
			t.Errorf("%s: iss appears %d times", what, count)
		case q.Get("iss") != as.Issuer:
			t.Errorf("%s: iss=%q is not the metadata issuer %q byte for byte", what, q.Get("iss"), as.Issuer)
		}
	}
	g := t.SharedGrant()
	check("success response", g.Flow.Response.Query, g.Flow.Response.Count("iss"))
	c := t.RegisterClient(nil)
	p := t.errorResponses(c)["unsupported response_type"]
	if p.Kind == ClientRedirect {
		check("error response", p.Client, len(p.Client["iss"]))
	}
	d := t.Browse(Flow{Client: c, Consent: login.Deny, Name: "deny"})
	switch {
	case !d.Outcome.SawConsent:
		t.Logf("no consent page of the server's own (pass-through design): no consent-deny response to check")
	case d.Got:
		check("consent-deny response", d.Response.Query, d.Response.Count("iss"))
	default:
		t.Errorf("denying consent did not send the browser back to the client: %v", d.Err)
	}
	// A registered redirect URI that already carries an iss query parameter: refusing to register
	// it is fine; if registered, the response must still carry exactly one iss.
	ep := t.env.redirect.NewEndpoint()
	withIssURI := ep.URI() + "?iss=conformance"
	reg := t.register("register a redirect URI that carries ?iss=", oauthclient.PublicClientMetadata("mcp-auth-conformance AZ-14", withIssURI))
	if reg.Status != http.StatusCreated && reg.Status != http.StatusOK {
		t.Logf("the AS refuses to register a redirect URI carrying iss (%s)", reg.Describe())
		return
	}
	withIss := &Client{ID: reg.Str("client_id"), RedirectURI: withIssURI, Endpoint: ep}
	q := t.errorResponses(withIss)["unsupported response_type"]
	if q.Kind == ClientRedirect {
		if n := len(q.Client["iss"]); n > 1 {
			t.Errorf("with a redirect URI that already has ?iss=, the response carries iss %d times %v", n, q.Client["iss"])
		}
	}
}

// AZ-15: the user is authenticated (upstream login) before a code is issued.
func az15(t *T) {
	r := t.Authorize(Flow{Name: "fresh browser", Fresh: true})
	if !r.Outcome.SawLogin {
		t.Errorf("a browser with no session got a code without logging in")
	}
}
