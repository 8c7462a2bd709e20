package checks

import (
	"net/url"
	"strings"

	"github.com/cnpg-mcp/cnpg-mcp/conformance/evidence"
)

// C.9 Resource indicators (RFC 8707).
func resourceChecks() map[string]func(*T) {
	return map[string]func(*T){
		"RES-01": res01, "RES-02": res02, "RES-03": res03, "RES-04": res04,
		"RES-05": res05, "RES-06": res06, "RES-07": res07, "RES-08": res08,
	}
}

// RES-01: the canonical resource is accepted and the token is bound to it.
func res01(t *T) {
	g := t.SharedGrant()
	if g.Flow.Params.Get("resource") == "" {
		t.Fatalf("the shared grant was made without resource")
	}
	d := decodeJWT(g.Tokens.AccessToken)
	if d.Kind != evidence.KindJWS {
		t.Logf("the access token is %s; its audience cannot be read (RS-04 checks the binding)", d.Kind)
		return
	}
	if !audContains(d.Claims, t.Resource()) {
		t.Errorf("the access token's aud %v is not the requested resource %s", d.Claims["aud"], t.Resource())
	}
}

// RES-02: a request without resource still works (Claude omits it).
func res02(t *T) {
	g := t.Grant(Flow{Resource: ptr(""), Name: "no resource", Subject: true})
	if ok, resp := t.AcceptedByMCP("the token obtained without resource", g.Tokens.AccessToken); !ok {
		t.Errorf("a token obtained without resource is refused by the MCP endpoint: %s", resp.Describe())
	}
}

// RES-03: a resource for another server → invalid_target.
func res03(t *T) {
	c := t.RegisterClient(nil)
	p := t.ProbeAuthorize("authorization request for another resource", t.AuthParams(&Flow{Client: c, Resource: ptr("https://conformance-other.example/mcp")}), nil, c.RedirectURI)
	t.expectAuthzRefused("resource=https://conformance-other.example/mcp", p, "invalid_target")
}

// RES-04: a resource that is not absolute or has a fragment → invalid_target / invalid_request.
func res04(t *T) {
	c := t.RegisterClient(nil)
	u, _ := url.Parse(t.Resource())
	for _, r := range []string{u.Host + u.Path, t.Resource() + "#x", "/mcp"} {
		p := t.ProbeAuthorize("resource="+r, t.AuthParams(&Flow{Client: c, Resource: ptr(r)}), nil, c.RedirectURI)
		t.expectAuthzRefused("resource="+r, p, "invalid_target", "invalid_request")
	}
}

// RES-05: an upper-case scheme/host and a trailing slash are accepted.
func res05(t *T) {
	c := t.RegisterClient(nil)
	u, _ := url.Parse(t.Resource())
	upper := strings.ToUpper(u.Scheme) + "://" + strings.ToUpper(u.Host) + u.EscapedPath()
	if u.RawQuery != "" {
		upper += "?" + u.RawQuery
	}
	for _, r := range []string{upper, strings.TrimSuffix(t.Resource(), "/") + "/"} {
		p := t.ProbeAuthorize("resource="+r, t.AuthParams(&Flow{Client: c, Resource: ptr(r)}), nil, c.RedirectURI)
		if p.refused() || p.Kind == ServerError {
			t.Errorf("resource=%s (the canonical URI spelled differently) was refused (%s)", r, p.Describe())
		}
	}
}

// RES-06: a token request whose resource differs from the grant's → invalid_target.
func res06(t *T) {
	r := t.Authorize(Flow{Name: "code for resource A"})
	x := r.CodeExchange()
	x.Resource = "https://conformance-other.example/mcp"
	resp := t.Token("redeem for another resource", x.Form())
	t.gradeTokenError("a code redeemed for another resource", resp, "invalid_target", "invalid_grant")
}

// RES-07: a refresh for another resource → invalid_target.
func res07(t *T) {
	g := t.refreshGrant(Flow{Name: "grant to refresh"})
	f := g.RefreshForm(g.Tokens.RefreshToken)
	f.Set("resource", "https://conformance-other.example/mcp")
	resp := t.Token("refresh for another resource", f)
	t.gradeTokenError("a refresh for another resource", resp, "invalid_target", "invalid_grant")
}

// RES-08: when the server's URI has a query, a different query is another resource.
func res08(t *T) {
	u, _ := url.Parse(t.Resource())
	if u.RawQuery == "" {
		t.Skipf("the server's resource URI %s has no query (this row is for multi-tenant URIs such as ?tenant=x)", t.Resource())
	}
	q := u.Query()
	for k := range q {
		q.Set(k, q.Get(k)+"-conformance-other")
	}
	u.RawQuery = q.Encode()
	c := t.RegisterClient(nil)
	p := t.ProbeAuthorize("resource with another tenant query", t.AuthParams(&Flow{Client: c, Resource: ptr(u.String())}), nil, c.RedirectURI)
	t.expectAuthzRefused("resource="+u.String(), p, "invalid_target")
}
