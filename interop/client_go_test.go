package interop

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/cnpg-mcp/cnpg-mcp/interop/internal/stack"
	"github.com/cnpg-mcp/cnpg-mcp/mockauth0/clock"
	mcpgoclient "github.com/mark3labs/mcp-go/client"
	mcpgotransport "github.com/mark3labs/mcp-go/client/transport"
	mcpgo "github.com/mark3labs/mcp-go/mcp"
	"github.com/modelcontextprotocol/go-sdk/auth"
	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/modelcontextprotocol/go-sdk/oauthex"
	"golang.org/x/oauth2"
)

// callbackListener is the loopback redirect listener a desktop application runs: it receives the
// authorization response the browser is sent to.
type callbackListener struct {
	URL    string
	params chan url.Values
	srv    *http.Server
}

func newCallbackListener() (*callbackListener, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	c := &callbackListener{URL: "http://" + ln.Addr().String() + "/callback", params: make(chan url.Values, 4)}
	c.srv = &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/callback" {
			c.params <- r.URL.Query()
		}
		_, _ = w.Write([]byte("Signed in. You can close this window."))
	})}
	go func() { _ = c.srv.Serve(ln) }()
	return c, nil
}

func (c *callbackListener) wait(ctx context.Context) (url.Values, error) {
	select {
	case p := <-c.params:
		if p.Get("code") == "" {
			return nil, fmt.Errorf("authorization response without a code: %s", p.Encode())
		}
		return p, nil
	case <-ctx.Done():
		return nil, errors.New("the callback listener received nothing")
	}
}

func (c *callbackListener) Close() { _ = c.srv.Close() }

// goSDK drives the official Go SDK's client: mcp.Client over StreamableClientTransport with an
// auth.AuthorizationCodeHandler that registers dynamically, takes its scopes from the challenge and
// hands the authorization URL to the person (our browser step).
func goSDK(f *flow) {
	ctx, cancel := context.WithTimeout(f.ctx, 3*time.Minute)
	defer cancel()
	cb, err := newCallbackListener()
	if err != nil {
		f.fail("register", err)
		return
	}
	defer cb.Close()
	authorized := 0
	h, err := goSDKHandler(f, cb, "interop: official Go SDK client", func(ctx context.Context, authURL string) error {
		authorized++
		f.pass("register", "registered dynamically, then sent the browser to the authorization endpoint")
		if !f.browse(authURL, cb.URL, stack.UserAction{}) {
			return f.stopped
		}
		return nil
	}, func(ctx context.Context, cfg *oauth2.Config, tok *oauth2.Token) (oauth2.TokenSource, error) {
		return &clockedTokenSource{ctx: ctx, cfg: cfg, tok: tok, clock: f.env.st.Clock, issuedAt: f.env.st.Clock.Offset()}, nil
	})
	if err != nil {
		f.fail("register", err)
		return
	}
	client := mcp.NewClient(&mcp.Implementation{Name: "interop-go-sdk", Version: "1.0.0"}, nil)
	cs, err := client.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: f.env.st.MCP, OAuthHandler: h}, &mcp.ClientSessionOptions{ProtocolVersion: f.cell.Version})
	if err != nil {
		f.fail(firstUnreported(f, "register", "consent", "login", "initialize"), fmt.Errorf("connect: %w", err))
		return
	}
	defer cs.Close()
	f.version = cs.InitializeResult().ProtocolVersion
	f.pass("initialize", "negotiated %s after %d authorization(s)", f.version, authorized)
	lt, err := cs.ListTools(ctx, nil)
	if err != nil {
		f.fail("list-tools", err)
		return
	}
	f.tools = len(lt.Tools)
	f.pass("list-tools", "%d tools", f.tools)
	call := func(step, tool string, args map[string]any) bool {
		res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: tool, Arguments: args})
		switch {
		case err != nil:
			f.fail(step, fmt.Errorf("%s: %w", tool, err))
		case res.IsError:
			f.fail(step, fmt.Errorf("%s returned a tool error: %s", tool, contentText(res.Content)))
		default:
			f.pass(step, "%s: %s", tool, clip(contentText(res.Content), 160))
			return true
		}
		return false
	}
	if !call("read-tool", "list_postgres_clusters", map[string]any{"namespace": "default"}) ||
		!call("write-tool", "create_postgres_cluster", map[string]any{"name": f.cluster, "namespace": "default", "instances": 1, "wait": false}) {
		return
	}
	f.expire()
	if !call("refresh", "get_cluster_status", map[string]any{"name": f.cluster, "namespace": "default"}) {
		return
	}
	if authorized > 1 {
		f.fail("refresh", fmt.Errorf("the client authorized %d times instead of refreshing", authorized))
		return
	}
	if !call("call-again", "scale_postgres_cluster", map[string]any{"name": f.cluster, "namespace": "default", "instances": 2, "dry_run": true}) {
		return
	}
	goSDKStepUp(ctx, f)
}

// goSDKStepUp: a new session whose first sign-in grants read only (the person unticks write); the
// write tool's 403 insufficient_scope makes the handler authorize again with the union of granted
// and challenged scopes; the person approves write and the transport retries the call.
func goSDKStepUp(ctx context.Context, f *flow) {
	cb, err := newCallbackListener()
	if err != nil {
		f.fail("step-up", err)
		return
	}
	defer cb.Close()
	f.stepUpMark = f.env.st.Recorder.Mark()
	var acts []stack.UserAction
	h, err := goSDKHandler(f, cb, "interop: official Go SDK client (step-up)", func(ctx context.Context, authURL string) error {
		act := stack.UserAction{}
		if len(acts) == 0 {
			act.Untick = []string{"mcp:write"}
		}
		acts = append(acts, act)
		_, err := stack.Authorize(ctx, f.env.browser, authURL, cb.URL, act)
		return err
	}, nil)
	if err != nil {
		f.fail("step-up", err)
		return
	}
	client := mcp.NewClient(&mcp.Implementation{Name: "interop-go-sdk-step-up", Version: "1.0.0"}, nil)
	connect := func() (*mcp.ClientSession, error) {
		return client.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: f.env.st.MCP, OAuthHandler: h}, &mcp.ClientSessionOptions{ProtocolVersion: f.cell.Version})
	}
	cs, err := connect()
	if err != nil {
		f.fail("step-up", fmt.Errorf("read-only sign-in: %w", err))
		return
	}
	defer func() { _ = cs.Close() }()
	params := &mcp.CallToolParams{Name: "scale_postgres_cluster",
		Arguments: map[string]any{"name": f.cluster, "namespace": "default", "instances": 3, "dry_run": true}}
	// The SDK steps up by registering a new client and retries on the same session: the session is
	// bound to the user (RS-09), so the retry is served; a 404 here would surface as
	// mcp.ErrSessionMissing, which the SDK treats as terminal.
	res, err := cs.CallTool(ctx, params)
	switch {
	case err != nil:
		f.fail("step-up", fmt.Errorf("write tool after a read-only sign-in: %w", err))
	case res.IsError:
		f.fail("step-up", fmt.Errorf("write tool after the step-up returned a tool error: %s", contentText(res.Content)))
	case len(acts) != 2:
		f.fail("step-up", fmt.Errorf("the person signed in %d times, want 2 (read only, then write)", len(acts)))
	default:
		f.pass("step-up", "read-only sign-in, 403 on scale_postgres_cluster, a second authorization approving write, the call went through on the same session")
	}
}

// goSDKHandler is the Go SDK's authorization-code handler as a desktop application configures it:
// dynamic registration with a loopback redirect, refresh tokens, and a fetcher that sends the person
// to the authorization URL (browse) and reads the code from the redirect listener.
func goSDKHandler(f *flow, cb *callbackListener, name string, browse func(ctx context.Context, authURL string) error,
	tokens func(context.Context, *oauth2.Config, *oauth2.Token) (oauth2.TokenSource, error)) (*auth.AuthorizationCodeHandler, error) {
	return auth.NewAuthorizationCodeHandler(&auth.AuthorizationCodeHandlerConfig{
		DynamicClientRegistrationConfig: &auth.DynamicClientRegistrationConfig{Metadata: &oauthex.ClientRegistrationMetadata{
			ClientName: name, RedirectURIs: []string{cb.URL},
			GrantTypes: []string{"authorization_code", "refresh_token"}, ResponseTypes: []string{"code"}, TokenEndpointAuthMethod: "none",
		}},
		RedirectURL:         cb.URL,
		RequestRefreshToken: true,
		AuthorizationCodeFetcher: func(ctx context.Context, args *auth.AuthorizationArgs) (*auth.AuthorizationResult, error) {
			if err := browse(ctx, args.URL); err != nil {
				return nil, err
			}
			p, err := cb.wait(ctx)
			if err != nil {
				return nil, err
			}
			return &auth.AuthorizationResult{Code: p.Get("code"), State: p.Get("state"), Iss: p.Get("iss")}, nil
		},
		NewTokenSource: tokens,
	})
}

func contentText(cs []mcp.Content) string {
	var b strings.Builder
	for _, c := range cs {
		if t, ok := c.(*mcp.TextContent); ok {
			b.WriteString(t.Text)
		}
	}
	return b.String()
}

// firstUnreported is the first of steps the flow has not reported yet (where a failure belongs).
func firstUnreported(f *flow, steps ...string) string {
	for _, s := range steps {
		if f.results[s] == nil {
			return s
		}
	}
	return steps[len(steps)-1]
}

// clockedTokenSource is golang.org/x/oauth2's reuse-then-refresh token source with one change: the
// client's clock runs as far ahead as the server's test clock has been moved since the token was
// issued, so "an hour later" reaches the client too. The refresh itself is oauth2's, against the
// server's token endpoint.
type clockedTokenSource struct {
	mu       sync.Mutex
	ctx      context.Context
	cfg      *oauth2.Config
	tok      *oauth2.Token
	clock    *clock.Offset
	issuedAt time.Duration
}

func (s *clockedTokenSource) Token() (*oauth2.Token, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now().Add(s.clock.Offset() - s.issuedAt)
	if s.tok.AccessToken != "" && (s.tok.Expiry.IsZero() || now.Add(10*time.Second).Before(s.tok.Expiry)) {
		return s.tok, nil
	}
	nt, err := s.cfg.TokenSource(s.ctx, &oauth2.Token{RefreshToken: s.tok.RefreshToken}).Token()
	if err != nil {
		return nil, err
	}
	s.tok, s.issuedAt = nt, s.clock.Offset()
	return nt, nil
}

// clockedStore is mcp-go's MemoryTokenStore seen through the same shifted clock: a token saved at
// offset o reads back with its expiry moved earlier by however far the test clock moved since.
type clockedStore struct {
	inner    *mcpgotransport.MemoryTokenStore
	clock    *clock.Offset
	mu       sync.Mutex
	issuedAt time.Duration
	saves    int
}

func (s *clockedStore) GetToken(ctx context.Context) (*mcpgotransport.Token, error) {
	t, err := s.inner.GetToken(ctx)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	skew := s.clock.Offset() - s.issuedAt
	s.mu.Unlock()
	c := *t
	if !c.ExpiresAt.IsZero() {
		c.ExpiresAt = c.ExpiresAt.Add(-skew)
	}
	return &c, nil
}

func (s *clockedStore) SaveToken(ctx context.Context, t *mcpgotransport.Token) error {
	s.mu.Lock()
	s.issuedAt = s.clock.Offset()
	s.saves++
	s.mu.Unlock()
	return s.inner.SaveToken(ctx, t)
}

// mcpGo drives mark3labs/mcp-go's client as its oauth_client example does: the application starts
// the client, and on OAuthAuthorizationRequiredError registers, sends the person to the
// authorization URL, takes the code from its redirect listener and retries. mcp-go sends the scopes
// the application configured: none, so the server offers every scope it grants.
func mcpGo(f *flow) {
	ctx, cancel := context.WithTimeout(f.ctx, 3*time.Minute)
	defer cancel()
	cb, err := newCallbackListener()
	if err != nil {
		f.fail("register", err)
		return
	}
	defer cb.Close()
	store := &clockedStore{inner: mcpgotransport.NewMemoryTokenStore(), clock: f.env.st.Clock}
	tr, err := mcpgotransport.NewStreamableHTTP(f.env.st.MCP, mcpgotransport.WithHTTPOAuth(mcpgoclient.OAuthConfig{
		RedirectURI: cb.URL, TokenStore: store, PKCEEnabled: true,
	}))
	if err != nil {
		f.fail("register", err)
		return
	}
	c := mcpgoclient.NewClient(tr, mcpgoclient.WithProtocolVersion(f.cell.Version))
	defer c.Close()
	if err := c.Start(ctx); err != nil {
		f.fail("register", err)
		return
	}
	initReq := mcpgo.InitializeRequest{}
	initReq.Params.ProtocolVersion = f.cell.Version
	initReq.Params.ClientInfo = mcpgo.Implementation{Name: "interop-mcp-go", Version: "1.0.0"}
	res, err := c.Initialize(ctx, initReq)
	if err != nil {
		if !mcpgoclient.IsOAuthAuthorizationRequiredError(err) {
			f.fail("register", fmt.Errorf("initialize without a token: %v (want OAuthAuthorizationRequiredError)", err))
			return
		}
		h := mcpgoclient.GetOAuthHandler(err)
		if err := h.RegisterClient(ctx, "interop: mcp-go client"); err != nil {
			f.fail("register", err)
			return
		}
		f.pass("register", "registered as %s", h.GetClientID())
		verifier, err := mcpgoclient.GenerateCodeVerifier()
		if err != nil {
			f.fail("consent", err)
			return
		}
		state, _ := mcpgoclient.GenerateState()
		authURL, err := h.GetAuthorizationURL(ctx, state, mcpgoclient.GenerateCodeChallenge(verifier))
		if err != nil {
			f.fail("consent", err)
			return
		}
		if !f.browse(authURL, cb.URL, stack.UserAction{}) {
			return
		}
		p, err := cb.wait(ctx)
		if err != nil {
			f.fail("login", err)
			return
		}
		if err := h.ProcessAuthorizationResponse(ctx, p.Get("code"), p.Get("state"), verifier); err != nil {
			f.fail("login", fmt.Errorf("code exchange: %w", err))
			return
		}
		if res, err = c.Initialize(ctx, initReq); err != nil {
			f.fail("initialize", err)
			return
		}
	} else {
		f.fail("register", errors.New("initialize succeeded without a token"))
		return
	}
	f.version = res.ProtocolVersion
	f.pass("initialize", "negotiated %s", f.version)
	lt, err := c.ListTools(ctx, mcpgo.ListToolsRequest{})
	if err != nil {
		f.fail("list-tools", err)
		return
	}
	f.tools = len(lt.Tools)
	f.pass("list-tools", "%d tools", f.tools)
	call := func(step, tool string, args map[string]any) bool {
		req := mcpgo.CallToolRequest{}
		req.Params.Name, req.Params.Arguments = tool, args
		r, err := c.CallTool(ctx, req)
		switch {
		case err != nil:
			f.fail(step, fmt.Errorf("%s: %w", tool, err))
		case r.IsError:
			f.fail(step, fmt.Errorf("%s returned a tool error: %v", tool, r.Content))
		default:
			f.pass(step, "%s: ok", tool)
			return true
		}
		return false
	}
	if !call("read-tool", "list_postgres_clusters", map[string]any{"namespace": "default"}) ||
		!call("write-tool", "create_postgres_cluster", map[string]any{"name": f.cluster, "namespace": "default", "instances": 1, "wait": false}) {
		return
	}
	saves := store.saves
	f.expire()
	if !call("refresh", "get_cluster_status", map[string]any{"name": f.cluster, "namespace": "default"}) {
		return
	}
	if store.saves == saves {
		f.fail("refresh", errors.New("the call succeeded without a new token: nothing was refreshed"))
		return
	}
	call("call-again", "scale_postgres_cluster", map[string]any{"name": f.cluster, "namespace": "default", "instances": 2, "dry_run": true})
}
