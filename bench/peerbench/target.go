// Package peerbench is `make bench-peers`: our server and the npm peers of conformance/peers, each in
// front of its own mock Auth0, signed in to through a real browser, then measured in interleaved
// rounds — authenticated tools/list and ping at several concurrencies (bench/load), refresh chains,
// CPU per 1,000 requests and RSS from /proc (bench/procstat) — and summed up in one table of ratios.
package peerbench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/cnpg-mcp/cnpg-mcp/conformance/browser"
	"github.com/cnpg-mcp/cnpg-mcp/conformance/login"
	"github.com/cnpg-mcp/cnpg-mcp/conformance/oauthclient"
	"github.com/cnpg-mcp/cnpg-mcp/conformance/redirect"
)

// ProtocolVersion is the MCP version every target is spoken to in: the newest one all of them
// speak (the peers' SDK 1.32.2 knows no later one), and one that still has ping.
const ProtocolVersion = "2025-11-25"

// Target is one MCP server under test.
type Target struct {
	// Name labels the target in the table ("ours", "ours-1tool", "ts-sdk-proxy", "fastmcp-ts").
	Name string
	// MCP is its MCP endpoint.
	MCP string
	// PID is the server's process (its descendants count too); UpstreamPID its mock Auth0's.
	PID, UpstreamPID int
	// Scope is what the benchmark's client asks for when it authorizes.
	Scope string
	// Tools describes what its tools/list holds, for the table.
	Tools string

	grant
}

// grant is what the sign-in gave the benchmark's client.
type grant struct {
	clientID, tokenEndpoint string
	access, refresh         string
}

// Login is what a target's sign-in needs: the browser and its login driver, the loopback redirect
// listener and an HTTP client that does not follow redirects.
type Login struct {
	Browser  *browser.Browser
	Driver   *login.Driver
	Redirect *redirect.Listener
	OAuth    *oauthclient.Client
}

// SignIn obtains an access and a refresh token the way an MCP client does: the 401's challenge,
// the protected-resource metadata, the authorization server's metadata, a dynamic registration,
// then the authorization code flow with PKCE through the browser (consent and the mock's login
// page), and the code exchange.
func (t *Target) SignIn(ctx context.Context, l Login) error {
	fail := func(step string, err error) error { return fmt.Errorf("%s: sign-in, %s: %w", t.Name, step, err) }
	resp, err := l.OAuth.CallMCP(ctx, t.MCP, oauthclient.MCPCall{})
	if err != nil {
		return fail("unauthenticated initialize", err)
	}
	prmURL := ""
	if c, ok, _ := oauthclient.BearerChallenge(resp.Header.Values("WWW-Authenticate")); ok {
		prmURL, _ = c.Param("resource_metadata")
	}
	if prmURL == "" {
		urls, err := oauthclient.PRMURLs(t.MCP)
		if err != nil {
			return fail("protected-resource metadata URL", err)
		}
		prmURL = urls[0]
	}
	prm, _, err := l.OAuth.FetchPRM(ctx, prmURL)
	if err != nil {
		return fail("protected-resource metadata", err)
	}
	if len(prm.AuthorizationServers) == 0 {
		return fail("protected-resource metadata", errors.New("no authorization_servers"))
	}
	as, _, err := l.OAuth.DiscoverAS(ctx, prm.AuthorizationServers[0])
	if err != nil {
		return fail("authorization server metadata", err)
	}
	ep := l.Redirect.NewEndpoint()
	reg, _, err := l.OAuth.Register(ctx, as.RegistrationEndpoint, oauthclient.PublicClientMetadata("cnpg-mcp bench-peers", ep.URI()))
	if err != nil {
		return fail("registration", err)
	}
	verifier, state := oauthclient.NewVerifier(), oauthclient.RandomString(16)
	authURL := oauthclient.AuthorizeURL(as.AuthorizationEndpoint, url.Values{
		"response_type": {"code"}, "client_id": {reg.ClientID}, "redirect_uri": {ep.URI()},
		"code_challenge": {oauthclient.S256(verifier)}, "code_challenge_method": {"S256"},
		"state": {state}, "scope": {t.Scope}, "resource": {t.MCP},
	})
	s, err := l.Browser.NewSession()
	if err != nil {
		return fail("browser", err)
	}
	defer s.Close()
	if err := s.StartNavigation(ctx, authURL); err != nil {
		return fail("open the authorization URL", err)
	}
	if _, err := l.Driver.Run(ctx, s, login.Plan{Consent: login.Approve, Done: ep.Received}); err != nil {
		return fail("browser flow", err)
	}
	cb, err := ep.Wait(ctx)
	if err != nil {
		return fail("authorization response", err)
	}
	if cb.Code() == "" || cb.State() != state {
		return fail("authorization response", fmt.Errorf("no code or another state (error %q)", cb.Error()))
	}
	resp, err = l.OAuth.Token(ctx, as.TokenEndpoint, oauthclient.CodeExchange{
		ClientID: reg.ClientID, Code: cb.Code(), RedirectURI: ep.URI(), CodeVerifier: verifier, Resource: t.MCP}.Form())
	if err != nil {
		return fail("code exchange", err)
	}
	tok, err := oauthclient.DecodeToken(resp)
	if err != nil {
		return fail("code exchange", err)
	}
	if tok.RefreshToken == "" {
		return fail("code exchange", errors.New("no refresh token (the refresh chains need one)"))
	}
	t.grant = grant{clientID: reg.ClientID, tokenEndpoint: as.TokenEndpoint, access: tok.AccessToken, refresh: tok.RefreshToken}
	return nil
}

// Refresh redeems the current refresh token and keeps the tokens it returns.
func (t *Target) Refresh(ctx context.Context, c *oauthclient.Client) error {
	resp, err := c.Token(ctx, t.tokenEndpoint, oauthclient.RefreshRequest{ClientID: t.clientID, RefreshToken: t.refresh, Resource: t.MCP}.Form())
	if err != nil {
		return err
	}
	tok, err := oauthclient.DecodeToken(resp)
	if err != nil {
		return err
	}
	t.access = tok.AccessToken
	if tok.RefreshToken != "" {
		t.refresh = tok.RefreshToken
	}
	return nil
}

// Session is one MCP session (an empty ID for a stateless server).
type Session struct {
	ID string
}

// Open initializes a session with the current access token.
func (t *Target) Open(ctx context.Context, c *oauthclient.Client) (Session, error) {
	resp, err := c.CallMCP(ctx, t.MCP, oauthclient.MCPCall{Authorization: oauthclient.Bearer(t.access)})
	if err != nil {
		return Session{}, err
	}
	if resp.Status != http.StatusOK || !bytes.Contains(resp.Body, []byte(`"protocolVersion"`)) {
		return Session{}, fmt.Errorf("%s: initialize: %s", t.Name, resp.Describe())
	}
	s := Session{ID: resp.Header.Get("Mcp-Session-Id")}
	resp, err = c.CallMCP(ctx, t.MCP, oauthclient.MCPCall{Method: "notifications/initialized", Authorization: oauthclient.Bearer(t.access), SessionID: s.ID})
	if err != nil {
		return Session{}, err
	}
	if resp.Status/100 != 2 {
		return Session{}, fmt.Errorf("%s: notifications/initialized: %s", t.Name, resp.Describe())
	}
	return s, nil
}

// Close ends a session (HTTP DELETE); servers without sessions need nothing.
func (t *Target) Close(ctx context.Context, c *http.Client, s Session) {
	if s.ID == "" {
		return
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodDelete, t.MCP, nil)
	if err != nil {
		return
	}
	req.Header.Set("Authorization", "Bearer "+t.access)
	req.Header.Set("Mcp-Session-Id", s.ID)
	req.Header.Set("Mcp-Protocol-Version", ProtocolVersion)
	if resp, err := c.Do(req); err == nil {
		resp.Body.Close()
	}
}

// Request is a JSON-RPC request to the target in session s with the current access token.
func (t *Target) Request(ctx context.Context, s Session, method string, id int) (*http.Request, error) {
	body := fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":%q,"params":{}}`, id, method)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.MCP, strings.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header = http.Header{
		"Content-Type":         {"application/json"},
		"Accept":               {"application/json, text/event-stream"},
		"Authorization":        {"Bearer " + t.access},
		"Mcp-Protocol-Version": {ProtocolVersion},
	}
	if s.ID != "" {
		req.Header["Mcp-Session-Id"] = []string{s.ID}
	}
	return req, nil
}

// Result extracts the JSON-RPC result of an answer sent as JSON or as one server-sent event, and
// fails on anything else (an error object, a result missing).
func Result(body []byte) (json.RawMessage, error) {
	payload := bytes.TrimSpace(body)
	if bytes.HasPrefix(payload, []byte("event:")) || bytes.HasPrefix(payload, []byte("data:")) || bytes.HasPrefix(payload, []byte("id:")) {
		var data []byte
		for _, line := range bytes.Split(payload, []byte("\n")) {
			if d, ok := bytes.CutPrefix(bytes.TrimRight(line, "\r"), []byte("data:")); ok {
				data = append(data, bytes.TrimSpace(d)...)
			}
		}
		payload = data
	}
	var msg struct {
		Result json.RawMessage `json:"result"`
		Error  *struct {
			Code    int    `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if err := json.Unmarshal(payload, &msg); err != nil {
		return nil, fmt.Errorf("not a JSON-RPC answer (%.120q): %w", body, err)
	}
	if msg.Error != nil {
		return nil, fmt.Errorf("JSON-RPC error %d: %s", msg.Error.Code, msg.Error.Message)
	}
	if len(msg.Result) == 0 {
		return nil, fmt.Errorf("no result in %.120q", body)
	}
	return msg.Result, nil
}

// Payload is what a target's tools/list carries.
type Payload struct {
	Tools       int // number of tools
	ResultBytes int // the JSON-RPC result
	BodyBytes   int // the whole HTTP body (an SSE event or JSON), decoded
	Framing     string
	// Encoding is the answer's Content-Encoding ("gzip": the client's transport decompressed it;
	// "": sent as it is).
	Encoding string
	// Result is the JSON-RPC result.
	Result json.RawMessage
}

func (p Payload) String() string {
	framing := p.Framing
	if p.Encoding != "" {
		framing += ", sent " + p.Encoding
	}
	s := fmt.Sprintf("%d tool(s), result %d bytes, body %d bytes (%s)", p.Tools, p.ResultBytes, p.BodyBytes, framing)
	if len(p.Result) <= 512 {
		s += ": `" + string(p.Result) + "`"
	}
	return s
}

// Payload asks the target for tools/list once, in a new session, and checks the answer in full.
func (t *Target) Payload(ctx context.Context, c *oauthclient.Client) (Payload, error) {
	s, err := t.Open(ctx, c)
	if err != nil {
		return Payload{}, err
	}
	defer t.Close(ctx, c.HTTP, s)
	req, err := t.Request(ctx, s, "tools/list", 2)
	if err != nil {
		return Payload{}, err
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return Payload{}, err
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(resp.Body); err != nil {
		return Payload{}, err
	}
	if resp.StatusCode != http.StatusOK {
		return Payload{}, fmt.Errorf("%s: tools/list: HTTP %d: %.300s", t.Name, resp.StatusCode, buf.Bytes())
	}
	res, err := Result(buf.Bytes())
	if err != nil {
		return Payload{}, fmt.Errorf("%s: tools/list: %w", t.Name, err)
	}
	var list struct {
		Tools []json.RawMessage `json:"tools"`
	}
	if err := json.Unmarshal(res, &list); err != nil {
		return Payload{}, fmt.Errorf("%s: tools/list result: %w", t.Name, err)
	}
	framing := "JSON"
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		framing = "SSE"
	}
	var enc string
	if resp.Uncompressed {
		enc = "gzip" // net/http's Transport asked for it and decoded it, checking CRC-32 and size
	}
	return Payload{Tools: len(list.Tools), ResultBytes: len(res), BodyBytes: buf.Len(), Framing: framing, Encoding: enc, Result: res}, nil
}
