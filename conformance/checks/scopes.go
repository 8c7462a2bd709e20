package checks

import (
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/cnpg-mcp/cnpg-mcp/conformance/oauthclient"
)

// ScopeProbe describes an MCP operation that needs a scope a narrow token lacks, so the step-up
// checks (SC-02/03) can be run against any server.
type ScopeProbe struct {
	// Granted is the narrow scope to request (e.g. "mcp:read").
	Granted string
	// Tool is a tool whose call needs more (e.g. a mutating tool); Arguments are its arguments.
	Tool      string
	Arguments map[string]any
	// Needs lists the scopes the call needs that Granted lacks (e.g. ["mcp:write"]).
	Needs []string
	// Implies, when set, is a documented hierarchy [broad, narrow] (SC-04): a token with only the
	// broad scope must pass where the narrow one is required.
	Implies [2]string
	// NarrowTool is a tool that needs Implies[1].
	NarrowTool string
}

// C.3 Scopes, challenges and step-up.
func scopeChecks() map[string]func(*T) {
	return map[string]func(*T){
		"SC-01": sc01, "SC-02": sc02, "SC-03": sc03, "SC-04": sc04, "SC-05": sc05, "SC-06": sc06, "SC-07": sc07,
	}
}

// SC-01: the 401 challenge carries scope.
func sc01(t *T) {
	resp, ch, ok := t.unauthChallenge()
	if resp.Status != http.StatusUnauthorized || !ok {
		t.Inconclusive("send initialize without a token", resp.Describe()+" without a Bearer challenge", "there is no challenge to inspect", "RS-01")
	}
	if s, has := ch.Param("scope"); !has || strings.TrimSpace(s) == "" {
		t.Errorf("the 401 challenge has no scope; clients then guess from scopes_supported (MCP: SHOULD include it)")
	}
}

// mcpSessionCall initializes (with the token) and sends one more request on the session.
func (t *T) mcpSessionCall(token, method string, params any) *oauthclient.Response {
	sid, _ := t.initSession("initialize", token)
	target := t.env.cfg.Target
	auth := oauthclient.Bearer(token)
	if sid != "" {
		_, _ = t.client.CallMCP(t.Label("notifications/initialized"), target, oauthclient.MCPCall{Method: "notifications/initialized", SessionID: sid, Authorization: auth})
	}
	resp, err := t.client.CallMCP(t.Label("%s", method), target, oauthclient.MCPCall{Method: method, Params: params, SessionID: sid, Authorization: auth})
	t.Must(err, method)
	return resp
}

func (t *T) scopeProbe() *ScopeProbe {
	p := t.env.cfg.ScopeProbe
	if p == nil || p.Tool == "" {
		t.Skipf("needs an operation that requires a scope a narrow token lacks (--scope-probe-tool, --scope-probe-granted, --scope-probe-needs)")
	}
	return p
}

// insufficientScope calls the probe tool with a narrow token and returns the response and its challenge.
func (t *T) insufficientScope(p *ScopeProbe) (*oauthclient.Response, oauthclient.Challenge, bool) {
	g := t.Grant(Flow{Name: "narrow grant", Scope: ptr(p.Granted)})
	resp := t.mcpSessionCall(g.Tokens.AccessToken, "tools/call", map[string]any{"name": p.Tool, "arguments": p.Arguments})
	ch, ok, err := oauthclient.BearerChallenge(resp.Header.Values("WWW-Authenticate"))
	if err != nil {
		t.Errorf("malformed WWW-Authenticate on the 403: %v", err)
	}
	return resp, ch, ok
}

// SC-02: runtime insufficient scope → 403 with error="insufficient_scope", scope and resource_metadata.
func sc02(t *T) {
	p := t.scopeProbe()
	resp, ch, ok := t.insufficientScope(p)
	if resp.Status != http.StatusForbidden {
		t.Fatalf("calling %s with scope %q got %s; want 403 with an insufficient_scope challenge (a JSON-RPC error gives the client no way to step up)", p.Tool, p.Granted, resp.Describe())
	}
	if !ok {
		t.Fatalf("the 403 has no Bearer challenge")
	}
	if e, _ := ch.Param("error"); e != "insufficient_scope" {
		t.Errorf("the 403 challenge has error=%q, want insufficient_scope", e)
	}
	if s, has := ch.Param("scope"); !has || s == "" {
		t.Errorf("the 403 challenge names no scope to step up to")
	}
	if _, has := ch.Param("resource_metadata"); !has {
		t.Errorf("the 403 challenge has no resource_metadata")
	}
}

// SC-03: the challenge lists every scope the operation needs, not one at a time.
func sc03(t *T) {
	p := t.scopeProbe()
	resp, ch, ok := t.insufficientScope(p)
	if resp.Status != http.StatusForbidden || !ok {
		t.Inconclusive(fmt.Sprintf("call %s with only scope %q", p.Tool, p.Granted), resp.Describe()+", not a 403 challenge", "there is no step-up challenge to inspect", "SC-02")
	}
	s, _ := ch.Param("scope")
	for _, need := range p.Needs {
		if !slices.Contains(strings.Fields(s), need) {
			t.Errorf("the challenge scope %q does not list %q, which the operation needs", s, need)
		}
	}
}

// SC-04: a documented scope hierarchy is honoured.
func sc04(t *T) {
	p := t.env.cfg.ScopeProbe
	if p == nil || p.Implies[0] == "" || p.NarrowTool == "" {
		t.Skipf("the server documents no scope hierarchy (configure --scope-implies broad=narrow and --scope-probe-narrow-tool)")
	}
	g := t.Grant(Flow{Name: "broad grant", Scope: ptr(p.Implies[0])})
	resp := t.mcpSessionCall(g.Tokens.AccessToken, "tools/call", map[string]any{"name": p.NarrowTool, "arguments": map[string]any{}})
	if resp.Status == http.StatusForbidden || resp.Status == http.StatusUnauthorized {
		t.Errorf("a token with %q was refused for %s, which needs %q that it implies: %s", p.Implies[0], p.NarrowTool, p.Implies[1], resp.Describe())
	}
}

// checkChallengeSyntax parses a challenge strictly (RFC 6750 §3).
func (t *T) checkChallengeSyntax(what string, resp *oauthclient.Response) {
	vals := resp.Header.Values("WWW-Authenticate")
	ch, ok, err := oauthclient.BearerChallenge(vals)
	if err != nil {
		t.Errorf("%s: WWW-Authenticate does not parse: %v", what, err)
		return
	}
	if !ok {
		t.Errorf("%s: no Bearer challenge in %q", what, vals)
		return
	}
	for _, d := range ch.Dups {
		if d == "scope" || d == "error" || d == "error_description" || d == "error_uri" || d == "resource_metadata" {
			t.Errorf("%s: %s appears more than once in the challenge", what, d)
		}
	}
	if s, has := ch.Param("scope"); has && s != "" && badScopeChars(s) {
		t.Errorf("%s: scope %q has characters outside RFC 6749 scope-token syntax", what, s)
	}
	for _, k := range []string{"error", "error_description"} {
		if v, has := ch.Param(k); has && badErrorChars(v) {
			t.Errorf("%s: %s %q has characters outside %%x20-21 / %%x23-5B / %%x5D-7E", what, k, v)
		}
	}
}

// SC-05: challenge attributes appear at most once, with allowed characters.
func sc05(t *T) {
	resp := t.CallMCP("MCP initialize without a token", "")
	t.checkChallengeSyntax("401 without a token", resp)
	resp = t.CallMCP("MCP initialize with a bogus token", oauthclient.Bearer("conformance-bogus-token"))
	t.checkChallengeSyntax("401 with a bogus token", resp)
}

// SC-06: a down-scoped token works for the operations it covers.
func sc06(t *T) {
	scopes := t.supportedScopes()
	if len(scopes) == 0 {
		t.Skipf("the server advertises no scopes to narrow down to")
	}
	narrow := scopes[0]
	if p := t.env.cfg.ScopeProbe; p != nil && p.Granted != "" {
		narrow = p.Granted
	}
	g := t.Grant(Flow{Name: "narrow grant", Scope: ptr(narrow), Subject: true})
	init := t.CallMCP("initialize with only "+narrow, oauthclient.Bearer(g.Tokens.AccessToken))
	if init.Status < 200 || init.Status >= 300 {
		t.Fatalf("a token with only %q could not initialize: %s", narrow, init.Describe())
	}
	resp := t.mcpSessionCall(g.Tokens.AccessToken, "tools/list", map[string]any{})
	if resp.Status < 200 || resp.Status >= 300 {
		t.Errorf("a token with only %q could not list tools: %s", narrow, resp.Describe())
	}
}

// SC-07: an existing client can re-authorize with a larger scope set (step-up).
func sc07(t *T) {
	scopes := t.supportedScopes()
	if len(scopes) < 2 {
		t.Skipf("the server advertises fewer than two scopes; there is nothing to step up to")
	}
	c := t.RegisterClient(nil)
	first := t.Grant(Flow{Name: "narrow grant", Client: c, Scope: ptr(scopes[0])})
	all := strings.Join(scopes, " ")
	second := t.Grant(Flow{Name: "step-up grant", Client: c, Scope: ptr(all), Subject: true})
	if first.Tokens.Scope != "" && second.Tokens.Scope != "" && len(scopesOf(second.Tokens.Scope)) <= len(scopesOf(first.Tokens.Scope)) {
		t.Errorf("re-authorizing with %q granted %q, no more than the first grant's %q", all, second.Tokens.Scope, first.Tokens.Scope)
	}
}
