package checks

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/cnpg-mcp/cnpg-mcp/conformance/browser"
	"github.com/cnpg-mcp/cnpg-mcp/conformance/evidence"
	"github.com/cnpg-mcp/cnpg-mcp/conformance/login"
	"github.com/cnpg-mcp/cnpg-mcp/conformance/oauthclient"
	"github.com/cnpg-mcp/cnpg-mcp/conformance/redirect"
)

// Client is a client the suite registered, with the loopback endpoint behind its redirect URI.
type Client struct {
	ID          string
	RedirectURI string
	Endpoint    *redirect.Endpoint
	Reg         *oauthclient.Registration
	Metadata    map[string]any
	// AuthMethod is how the client authenticates at the token and revocation endpoints: "none"
	// (a public client: client_id in the body), "client_secret_basic" or "client_secret_post".
	AuthMethod string
	Secret     string
}

// Confidential reports whether the client authenticates with a secret.
func (c *Client) Confidential() bool { return c != nil && c.Secret != "" }

// authenticate adds the client's authentication to a token or revocation request body and
// returns the headers to send (the Basic credentials of client_secret_basic).
func (c *Client) authenticate(form url.Values) http.Header {
	if !c.Confidential() {
		return nil
	}
	switch c.AuthMethod {
	case "client_secret_basic":
		form.Del("client_id")
		form.Del("client_secret")
		return http.Header{"Authorization": {"Basic " + b64([]byte(url.QueryEscape(c.ID)+":"+url.QueryEscape(c.Secret)))}}
	default:
		form.Set("client_id", c.ID)
		form.Set("client_secret", c.Secret)
		return nil
	}
}

// RegisterClient returns a registered public loopback client. Without mod it is the run's shared
// client (registered once: authorization servers rate-limit registration); with mod, or through
// NewClient, a fresh registration.
func (t *T) RegisterClient(mod func(meta map[string]any)) *Client {
	if mod != nil {
		return t.NewClient(mod)
	}
	s := &t.env.sharedClient
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.c == nil {
		s.c = t.NewClient(func(m map[string]any) { m["client_name"] = "mcp-auth-conformance (shared client)" })
	}
	return s.c
}

// NewClient registers a fresh public loopback client (mod may change the metadata). Without a
// registration endpoint it publishes a client ID metadata document instead, when the run has a
// CIMD host and the target supports CIMD; otherwise the check is skipped. A refused registration
// makes the check inconclusive: a standard public loopback client refused is DCR-01's failure,
// a client changed by mod refused is the server's registration policy.
func (t *T) NewClient(mod func(meta map[string]any)) *Client {
	as := t.AS()
	if as.RegistrationEndpoint == "" {
		if v, _ := as.Bool("client_id_metadata_document_supported"); v && t.env.cfg.CIMD != nil {
			c, _ := t.cimdClient(t.env.cfg.CIMD, mod)
			return c
		}
		t.SkipFor("--cimd-base-url", "the authorization server offers no dynamic client registration (no registration_endpoint) and the run has no client-metadata document host; this check needs a client of its own")
	}
	ep := t.env.redirect.NewEndpoint()
	meta := oauthclient.PublicClientMetadata("mcp-auth-conformance "+t.entry.ID, ep.URI())
	standard := mod == nil || isStandardMod(mod)
	if mod != nil {
		mod(meta)
	}
	return t.registerMeta(meta, ep, standard)
}

// isStandardMod reports whether mod changes only the client name (the shared and pool clients).
func isStandardMod(mod func(map[string]any)) bool {
	a := oauthclient.PublicClientMetadata("x", "http://127.0.0.1/cb")
	mod(a)
	b := oauthclient.PublicClientMetadata("x", "http://127.0.0.1/cb")
	delete(a, "client_name")
	delete(b, "client_name")
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return string(ja) == string(jb)
}

// registerMeta registers meta for the endpoint ep.
func (t *T) registerMeta(meta map[string]any, ep *redirect.Endpoint, standard bool) *Client {
	as := t.AS()
	reg, resp, err := t.client.Register(t.Label("register a client"), as.RegistrationEndpoint, meta)
	t.inconclusiveIfRateLimited("register a client", resp)
	if err != nil {
		step := fmt.Sprintf("register a client (%s)", describeMeta(meta))
		answer := err.Error()
		if resp != nil {
			answer = resp.Describe()
		}
		if standard {
			t.Inconclusive(step, answer, "a public loopback client (token_endpoint_auth_method none, a loopback redirect URI) is how MCP clients register; this check needs one", "DCR-01")
		}
		t.Inconclusive(step, answer, fmt.Sprintf("the server's registration policy refused the client shape this check needs; a policy refusal is no verdict on %s", t.entry.ID), "")
	}
	c := &Client{ID: reg.ClientID, RedirectURI: ep.URI(), Endpoint: ep, Reg: reg, Metadata: meta, AuthMethod: "none"}
	if m, _ := meta["token_endpoint_auth_method"].(string); m != "" && m != "none" && reg.ClientSecret != "" {
		c.AuthMethod, c.Secret = m, reg.ClientSecret
		if reg.TokenEndpointAuthMethod != "" {
			c.AuthMethod = reg.TokenEndpointAuthMethod
		}
		t.env.rememberClient(c)
	}
	return c
}

// describeMeta names what is unusual about a registration body, for messages.
func describeMeta(meta map[string]any) string {
	var parts []string
	if v, ok := meta["redirect_uris"]; ok {
		parts = append(parts, fmt.Sprintf("redirect_uris %v", v))
	}
	for _, k := range []string{"token_endpoint_auth_method", "grant_types", "application_type", "scope"} {
		if v, ok := meta[k]; ok {
			parts = append(parts, fmt.Sprintf("%s %v", k, v))
		}
	}
	return strings.Join(parts, ", ")
}

// ConfidentialClient registers a confidential loopback client authenticating with one of the
// secret methods the authorization server advertises (client_secret_basic preferred). The check
// is inconclusive when the server advertises none or refuses the registration.
func (t *T) ConfidentialClient(why string) *Client {
	as := t.AS()
	method := ""
	for _, m := range []string{"client_secret_basic", "client_secret_post"} {
		if slices.Contains(as.TokenEndpointAuthMethodsSupported, m) {
			method = m
			break
		}
	}
	if method == "" {
		t.Inconclusive("register a confidential client ("+why+")", fmt.Sprintf("token_endpoint_auth_methods_supported %v offers no client_secret_basic or client_secret_post", as.TokenEndpointAuthMethodsSupported),
			"this check needs a confidential client and the server advertises no way to register one", "")
	}
	if as.RegistrationEndpoint == "" {
		t.SkipFor("", "this check needs a confidential client and the authorization server offers no dynamic client registration")
	}
	ep := t.env.redirect.NewEndpoint()
	meta := oauthclient.PublicClientMetadata("mcp-auth-conformance "+t.entry.ID+" (confidential)", ep.URI())
	meta["token_endpoint_auth_method"] = method
	c := t.registerMeta(meta, ep, false)
	if !c.Confidential() {
		t.Inconclusive("register a confidential client with "+method+" ("+why+")", "the registration response carries no client_secret",
			"this check needs a confidential client; the server registered a public one", "")
	}
	return c
}

// Flow describes one browser authorization. Nil pointers mean "the usual value"; pointers to ""
// mean "omit the parameter".
type Flow struct {
	Client   *Client
	Scope    *string
	Resource *string
	State    *string
	// Verifier is the PKCE verifier (random when empty); Challenge/Method override what is sent.
	Verifier  string
	Challenge *string
	Method    *string
	// RedirectURI overrides the redirect_uri sent (default: the client's).
	RedirectURI *string
	// Params replaces the whole parameter set when set (for repeated or odd parameters).
	Params url.Values
	Extra  url.Values
	// Consent is what to do on the consent page; StopAtLogin stops at the upstream login page.
	Consent     login.ConsentDecision
	StopAtLogin bool
	// Session runs the flow in an existing browser session (the caller closes it); otherwise a
	// fresh isolated session is used and closed.
	Session *browser.Session
	// Credentials override the login (RS-09's second user).
	Credentials *login.Credentials
	// Name labels the session in the evidence ("A", "B").
	Name string
	// Fresh insists on a flow of its own in a fresh browser context (never a prefetched one, never
	// the run's logged-in tab).
	Fresh bool
	// Until ends the flow early when it reports true (e.g. once a blocked request was captured).
	Until func() bool
	// Subject says the flow's success is part of what the check verifies (a request with
	// unusual parameters the server must accept): its failure fails the check. Otherwise the
	// flow is a precondition and its failure makes the check inconclusive.
	Subject bool
	// Browser insists on a browser flow (never replayed over HTTP): the check reads what the
	// browser did (its navigations, the pages it saw).
	Browser bool
	// WantFragment waits for the landing page to report the URL fragment of the authorization
	// response (tokens leaked in a fragment, SEC-04); other flows do not wait for it.
	WantFragment bool
}

// FlowResult is where a browser flow ended.
type FlowResult struct {
	Client   *Client
	Verifier string
	State    string
	// URL is the authorization request URL that was opened.
	URL     string
	Params  url.Values
	Outcome login.Outcome
	// Response is the authorization response the redirect URI received (Got reports whether one did).
	Response redirect.Response
	Got      bool
	Err      error
	// Navigations are the documents the browser loaded.
	Navigations []browser.Navigation
	// Tokens are set when the code was redeemed by watchedFlow.
	Tokens *oauthclient.TokenResponse
}

func strOr(p *string, def string) (string, bool) {
	if p == nil {
		return def, true
	}
	return *p, *p != ""
}

// AuthParams builds the authorization request parameters for f (a client is registered if f has none).
func (t *T) AuthParams(f *Flow) url.Values {
	if f.Client == nil {
		f.Client = t.RegisterClient(nil)
	}
	if f.Verifier == "" {
		f.Verifier = oauthclient.NewVerifier()
	}
	if f.Params != nil {
		return f.Params
	}
	d := t.Discovery()
	p := url.Values{"response_type": {"code"}, "client_id": {f.Client.ID}}
	if v, ok := strOr(f.RedirectURI, f.Client.RedirectURI); ok {
		p.Set("redirect_uri", v)
	}
	if v, ok := strOr(f.Scope, d.DefaultScope); ok {
		p.Set("scope", v)
	}
	if v, ok := strOr(f.State, oauthclient.RandomString(16)); ok {
		p.Set("state", v)
	}
	if v, ok := strOr(f.Challenge, oauthclient.S256(f.Verifier)); ok {
		p.Set("code_challenge", v)
	}
	if v, ok := strOr(f.Method, "S256"); ok {
		p.Set("code_challenge_method", v)
	}
	if v, ok := strOr(f.Resource, t.Resource()); ok {
		p.Set("resource", v)
	}
	for k, vs := range f.Extra {
		p[k] = append(p[k], vs...)
	}
	return p
}

// Browse runs a browser flow. It does not judge: a flow that ends on an error page returns with
// Err set (and a screenshot in the evidence). A flow that denies consent or stops at the consent
// page runs in the logged-in tab too; when that tab shows no consent page (a server that remembers
// the user's consent, or keeps its own login session) it is repeated in a fresh browser context,
// so the outcome is about the consent page, not the tab.
func (t *T) Browse(f Flow) *FlowResult {
	r := t.browse(f)
	if f.Session == nil && f.tabOK() && f.Consent != login.Approve && !t.env.cfg.FreshContexts && !r.Outcome.SawConsent {
		t.Logf("%s: the logged-in tab showed no consent page (%v); repeating in a fresh browser context", orName(f.Name, "the flow"), r.Err)
		f.Fresh = true
		r = t.browse(f)
	}
	return r
}

func (t *T) browse(f Flow) *FlowResult {
	held := f.Client == nil
	if held {
		f.Client = t.holdFlowClient()
	}
	params := t.AuthParams(&f)
	res := &FlowResult{Client: f.Client, Verifier: f.Verifier, State: params.Get("state"), Params: params,
		URL: oauthclient.AuthorizeURL(t.AS().AuthorizationEndpoint, params)}
	b, err := t.env.Browser()
	if err != nil {
		t.Inconclusive("start the browser", err.Error(), "the suite's browser did not start (check --chromium or --browser-url)", "")
	}
	s := f.Session
	shared := false
	if s == nil && f.tabOK() && !t.env.cfg.FreshContexts {
		s, err = t.env.acquireTab(b)
		t.Must(err, "open a browser session")
		shared = true
		defer func() {
			t.env.releaseTab(s, res.Err != nil)
			if res.Err == nil && res.Got && res.Response.Code() != "" {
				t.env.loggedInReady(res.Outcome.SawLogin)
			}
		}()
	}
	switch {
	case s == nil:
		s, err = b.NewSession()
		t.Must(err, "open a browser session")
		defer s.Close()
		t.env.addCount("in a fresh browser context")
	case shared:
		t.env.addCount("in the logged-in browser")
	default:
		t.env.addCount("in a browser of " + t.entry.ID)
	}
	name := f.Name
	if name == "" {
		name = "browser"
	}
	if f.Client.Endpoint != nil {
		if !held {
			f.Client.Endpoint.Hold()
		}
		defer f.Client.Endpoint.Release()
	}
	before := len(f.Client.Endpoint.Hits())
	ctx, cancel := context.WithTimeout(t.ctx, t.env.cfg.FlowTimeout)
	defer cancel()
	start := time.Now()
	defer func() { t.env.addTiming("browser flows", time.Since(start)) }()
	navsBefore := len(s.Navigations())
	if err := s.StartNavigation(ctx, res.URL); err != nil {
		res.Err = fmt.Errorf("open the authorization URL: %w", err)
	} else {
		driver := t.env.driver
		if f.Credentials != nil {
			opts := t.env.cfg.Login
			opts.Credentials = *f.Credentials
			driver = login.New(opts)
		}
		res.Outcome, res.Err = driver.Run(ctx, s, login.Plan{Consent: f.Consent, StopAtLogin: f.StopAtLogin,
			Done: func() bool { return len(f.Client.Endpoint.Hits()) > before || (f.Until != nil && f.Until()) }})
	}
	if hits := f.Client.Endpoint.Hits(); len(hits) > before {
		res.Response, res.Got = hits[before], true
		if f.WantFragment {
			// The landing page's script reports the fragment (or that there is none).
			if r, err := f.Client.Endpoint.WaitReported(ctx, before); err == nil {
				res.Response = r
			} else {
				t.Logf("the landing page did not report the URL fragment: %v", err)
			}
		}
	}
	navs := s.Navigations()
	res.Navigations = navs[navsBefore:]
	for _, n := range res.Navigations {
		t.rec.AddNavigation(evidence.Navigation{Session: name, Time: n.Time, Method: n.Method, URL: n.URL, RedirectStatus: n.RedirectStatus})
	}
	if fe, ok := login.AsFlowError(res.Err); ok {
		if fe.Status == http.StatusTooManyRequests {
			t.Inconclusive("authorize in the browser", fmt.Sprintf("HTTP 429 at %s", stripQuery(fe.URL)),
				"the server rate-limited the suite; rate limiting says nothing about this row: raise the limit for the test client or run fewer checks (--label-filter)", "")
		}
		t.rec.AddScreenshot(evidence.Screenshot{Label: fmt.Sprintf("%s: %s", name, fe.Reason), URL: fe.URL, PNG: fe.Screenshot})
	}
	return res
}

// canShareTab reports whether a flow may run in the run's logged-in tab and be prepared ahead or
// replayed: nothing about it depends on a fresh browser (no login page expected, the usual user,
// the consent approved).
func (f Flow) canShareTab() bool { return f.tabOK() && f.Consent == login.Approve }

// tabOK reports whether a flow may run in the logged-in tab at all (no login page expected, the
// usual user); Browse repeats a consent-page flow that saw no consent page in a fresh context.
func (f Flow) tabOK() bool { return f.Credentials == nil && !f.Fresh && !f.StopAtLogin }

// Screenshot adds a screenshot of s to the evidence.
func (t *T) Screenshot(s *browser.Session, label string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(t.ctx), 3*time.Second)
	defer cancel()
	png, err := s.Screenshot(ctx)
	if err != nil {
		return
	}
	u, _ := s.URL(ctx)
	t.rec.AddScreenshot(evidence.Screenshot{Label: label, URL: u, PNG: png})
}

// Authorize runs a browser flow that must end with an authorization code at the redirect URI. A
// plain flow comes from the prefetch pool when one is ready. When the flow does not end with a
// code, the check fails if the flow is its Subject, and is inconclusive otherwise (a plain flow's
// failure is AZ-01's).
func (t *T) Authorize(f Flow) *FlowResult {
	var r *FlowResult
	plain := f.isDefault()
	if t.replayable(f) {
		var why string
		if r, why = t.replay(f); r == nil {
			t.Logf("%s: the replay over HTTP stopped (%s); running the flow in the browser", orName(f.Name, "the flow"), why)
			r = t.Browse(f)
			if r.Err == nil && r.Got && r.Response.Code() != "" && !r.Outcome.SawLogin {
				// (A browser that had to log in again — the upstream's session ended, e.g. after
				// its clock moved — has new cookies for the next replays.)
				t.env.stopReplays(fmt.Sprintf("a flow the browser completed did not complete over HTTP (%s)", why))
			}
		}
	} else if plain {
		if it, ok := t.env.pool.take(t); ok {
			r = it.res
			t.Logf("%s: a prefetched browser flow (made %s before use)", f.Name, time.Since(it.made).Round(time.Millisecond))
			for _, n := range it.rec.Navigations {
				n.Session = f.Name
				t.rec.AddNavigation(n)
			}
		}
	}
	if r == nil {
		r = t.Browse(f)
	}
	problem := ""
	switch {
	case r.Err != nil:
		problem = fmt.Sprintf("the flow did not complete: %v", r.Err)
	case !r.Got:
		problem = "the flow ended without a response at the redirect URI"
	case r.Response.Error() != "":
		problem = fmt.Sprintf("the authorization failed: error=%s error_description=%q", r.Response.Error(), r.Response.Get("error_description"))
	case r.Response.Code() == "":
		problem = fmt.Sprintf("the authorization response has no code: %v", evidence.RedactValues(r.Response.Query))
	}
	if problem != "" {
		name := f.Name
		if name == "" {
			name = "a plain authorization"
		}
		if f.Subject {
			t.Fatalf("%s: %s", name, problem)
		}
		owner := ""
		if f.isPlain() {
			owner = "AZ-01"
		}
		t.Inconclusive("authorize in the browser ("+name+")", problem, "", owner)
	}
	return r
}

// CodeExchange is the usual token request for a flow's code.
func (r *FlowResult) CodeExchange() oauthclient.CodeExchange {
	return oauthclient.CodeExchange{ClientID: r.Client.ID, Code: r.Response.Code(), RedirectURI: r.Params.Get("redirect_uri"),
		CodeVerifier: r.Verifier, Resource: r.Params.Get("resource")}
}

// Token posts a token request. A confidential client the suite registered is authenticated the
// way it registered (found by the form's client_id).
func (t *T) Token(label string, form url.Values) *oauthclient.Response {
	var h http.Header
	if c := t.env.clientByID(form.Get("client_id")); c != nil {
		form = cloneValues(form)
		h = c.authenticate(form)
	}
	resp, err := t.client.PostForm(t.Label("%s", label), t.AS().TokenEndpoint, form, mergeHeader(http.Header{"Accept": {"application/json"}}, h))
	t.Must(err, label)
	t.inconclusiveIfRateLimited(label, resp)
	return resp
}

func mergeHeader(a, b http.Header) http.Header {
	for k, vs := range b {
		a[k] = vs
	}
	return a
}

// Grant is a completed authorization: a flow and the tokens it was exchanged for.
type Grant struct {
	Flow   *FlowResult
	Client *Client
	Tokens *oauthclient.TokenResponse
	Resp   *oauthclient.Response
}

// Grant authorizes in the browser and exchanges the code; the check stops if either fails (see
// Authorize; a refused redemption of a valid code is TOK-03's failure unless the flow is the
// check's Subject).
func (t *T) Grant(f Flow) *Grant {
	r := t.Authorize(f)
	resp := t.Token("redeem the authorization code", r.CodeExchange().Form())
	tok, err := oauthclient.DecodeToken(resp)
	if err != nil {
		if f.Subject {
			t.Fatalf("redeem the authorization code: %v", err)
		}
		t.Inconclusive("redeem the authorization code", resp.Describe(), "", "TOK-03")
	}
	return &Grant{Flow: r, Client: r.Client, Tokens: tok, Resp: resp}
}

// RefreshForm is the usual refresh request for a grant's client.
func (g *Grant) RefreshForm(refreshToken string) url.Values {
	return oauthclient.RefreshRequest{ClientID: g.Client.ID, RefreshToken: refreshToken}.Form()
}

// AcceptedOrInconclusive reports whether the MCP endpoint accepts a token that should work: a
// 2xx is yes, a 401 or 403 no; anything else (404, 5xx, …) says nothing about the token — the
// endpoint itself does not answer MCP — and makes the check inconclusive (RS-11 grades that).
func (t *T) AcceptedOrInconclusive(label, token string) (bool, *oauthclient.Response) {
	ok, resp := t.AcceptedByMCP(label, token)
	if !ok && resp.Status != http.StatusUnauthorized && resp.Status != http.StatusForbidden {
		t.Inconclusive(label, resp.Describe(), "the MCP endpoint answered an authorized initialize with neither success nor an authorization error: it does not answer MCP requests (a misrouted or failing backend), which says nothing about the token", "RS-11")
	}
	return ok, resp
}

// CallMCP calls the MCP endpoint (initialize) with an Authorization header value.
func (t *T) CallMCP(label, authorization string) *oauthclient.Response {
	resp, err := t.client.CallMCP(t.Label("%s", label), t.env.cfg.Target, oauthclient.MCPCall{Authorization: authorization})
	t.Must(err, label)
	return resp
}

// AcceptedByMCP reports whether the MCP endpoint accepts a token (a 2xx to initialize).
func (t *T) AcceptedByMCP(label, token string) (bool, *oauthclient.Response) {
	resp := t.CallMCP(label, oauthclient.Bearer(token))
	return resp.Status >= 200 && resp.Status < 300, resp
}

// ptr returns a pointer to v.
func ptr[T any](v T) *T { return &v }

// loginPlanUntil is a plan that approves any consent and stops when done reports true.
func loginPlanUntil(done func() bool) login.Plan {
	return login.Plan{Consent: login.Approve, Done: done}
}

// evalText returns the visible text of the session's page.
func evalText(t *T, s *browser.Session) (string, error) {
	return browser.Eval[string](t.ctx, s, `document.body ? document.body.innerText : ""`)
}

// inconclusiveIfRateLimited stops the check as inconclusive when the server rate-limited the
// suite: a 429 says nothing about the behaviour under test.
func (t *T) inconclusiveIfRateLimited(step string, resp *oauthclient.Response) {
	if resp != nil && resp.Status == http.StatusTooManyRequests {
		ra := resp.Header.Get("Retry-After")
		if ra == "" {
			ra = "not given"
		}
		t.Inconclusive(step, fmt.Sprintf("HTTP 429 at %s (Retry-After %s)", resp.URL, ra),
			"the server rate-limited the suite; rate limiting says nothing about this row: raise the limit for the test client or run fewer checks (--label-filter)", "")
	}
}

type sharedClient struct {
	mu sync.Mutex
	c  *Client
	// more are further standard clients for flows that need "a client" while the shared one is
	// in another flow (see holdFlowClient).
	more []*Client
}

// holdFlowClient returns a standard client for a flow that names none, with its redirect URI held
// for the flow (release it with Endpoint.Release): the shared client when no other flow holds
// it, else another standard client — a few are registered when checks run side by side, so
// their flows do not wait for one another.
func (t *T) holdFlowClient() *Client {
	first := t.RegisterClient(nil)
	if first.Endpoint == nil {
		return first
	}
	s := &t.env.sharedClient
	s.mu.Lock()
	clients := append([]*Client{first}, s.more...)
	s.mu.Unlock()
	for _, c := range clients {
		if c.Endpoint.TryHold() {
			return c
		}
	}
	if len(clients) < t.env.Workers()+1 {
		c := t.NewClient(func(m map[string]any) { m["client_name"] = "mcp-auth-conformance (shared client)" })
		if c.Endpoint != nil && c.Endpoint.TryHold() {
			s.mu.Lock()
			s.more = append(s.more, c)
			s.mu.Unlock()
			return c
		}
	}
	first.Endpoint.Hold()
	return first
}

// rememberClient keeps a confidential client, so token requests made with its client_id are
// authenticated.
func (e *Env) rememberClient(c *Client) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.clients == nil {
		e.clients = map[string]*Client{}
	}
	e.clients[c.ID] = c
}

func (e *Env) clientByID(id string) *Client {
	if id == "" {
		return nil
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.clients[id]
}
