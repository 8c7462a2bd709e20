package chaos

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/cnpg-mcp/cnpg-mcp/conformance/consentform"
)

// Target is the MCP server under test as its clients see it: nothing but URLs and a user who can log in
// at the upstream. The chaos clients treat it as a black box.
type Target struct {
	// MCPURL is the MCP endpoint, e.g. http://127.0.0.1:8080/mcp.
	MCPURL string
	// AuthBase is where the authorization server's metadata lives (default: the MCP URL's origin).
	AuthBase string
	// Username and Password log in at the upstream's login page.
	Username, Password string
	// Scope is requested at authorization (default "mcp:read").
	Scope string
	// NoKeepAlive opens a new connection per request, so a load balancer spreads requests over
	// replicas (kind: the NodePort Service picks a pod per connection).
	NoKeepAlive bool
	// RequestTimeout bounds one HTTP request (default 30 s: longer than the server's upstream timeout).
	RequestTimeout time.Duration
}

// Metadata is the part of the RFC 8414 authorization-server metadata the clients use.
type Metadata struct {
	Issuer                string `json:"issuer"`
	AuthorizationEndpoint string `json:"authorization_endpoint"`
	TokenEndpoint         string `json:"token_endpoint"`
	RegistrationEndpoint  string `json:"registration_endpoint"`
}

// Kind classifies an answer the way an MCP client has to act on it.
type Kind int

// The kinds of answers.
const (
	// OK: 200 (2xx).
	OK Kind = iota
	// Unavailable: 5xx, 429, a connection error or a timeout. A client retries the same request.
	Unavailable
	// Unauthorized: 401 at the MCP endpoint. A client throws the access token away.
	Unauthorized
	// GrantLost: the token endpoint said the grant is gone (invalid_grant, or invalid_client: the
	// registration is gone). The user has to sign in again.
	GrantLost
	// Unexpected: any other answer (a 4xx the request does not deserve).
	Unexpected
)

func (k Kind) String() string {
	return [...]string{"ok", "unavailable", "unauthorized", "grant lost", "unexpected"}[k]
}

// Result is one request's classified answer.
type Result struct {
	Kind   Kind
	Status int    // 0 on a transport error
	Code   string // the OAuth error code, or the transport error
	At     time.Time
	// RetryAfter is the server's Retry-After (0 when absent).
	RetryAfter time.Duration
}

func (r Result) String() string {
	if r.Status == 0 {
		return fmt.Sprintf("%s (%s)", r.Kind, r.Code)
	}
	if r.Code != "" {
		return fmt.Sprintf("%s (HTTP %d %s)", r.Kind, r.Status, r.Code)
	}
	return fmt.Sprintf("%s (HTTP %d)", r.Kind, r.Status)
}

// Tokens are what a token response carried.
type Tokens struct {
	AccessToken  string
	RefreshToken string
	// Expiry is the access token's expiry by the client's clock (response time + expires_in).
	Expiry time.Time
}

// Client is one MCP client with its own registration and grant.
type Client struct {
	t        Target
	md       Metadata
	http     *http.Client
	clientID string
	redirect string
}

// Discover reads the authorization-server metadata of the target.
func Discover(ctx context.Context, t Target) (Metadata, error) {
	t = t.withDefaults()
	hc := newHTTP(t, nil)
	var md Metadata
	u := strings.TrimSuffix(t.AuthBase, "/") + "/.well-known/oauth-authorization-server"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return md, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return md, fmt.Errorf("authorization server metadata: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return md, fmt.Errorf("authorization server metadata at %s: HTTP %d", u, resp.StatusCode)
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&md); err != nil {
		return md, fmt.Errorf("authorization server metadata: %w", err)
	}
	if md.TokenEndpoint == "" || md.AuthorizationEndpoint == "" || md.RegistrationEndpoint == "" {
		return md, fmt.Errorf("authorization server metadata at %s lacks an authorization, token or registration endpoint", u)
	}
	return md, nil
}

func (t Target) withDefaults() Target {
	if t.AuthBase == "" {
		if u, err := url.Parse(t.MCPURL); err == nil {
			t.AuthBase = u.Scheme + "://" + u.Host
		}
	}
	if t.Scope == "" {
		t.Scope = "mcp:read"
	}
	if t.RequestTimeout == 0 {
		t.RequestTimeout = 30 * time.Second
	}
	return t
}

func newHTTP(t Target, jar http.CookieJar) *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.DisableKeepAlives = t.NoKeepAlive
	tr.MaxIdleConnsPerHost = 4
	return &http.Client{Transport: tr, Jar: jar, Timeout: t.RequestTimeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// NewClient returns a client that has not registered yet.
func NewClient(t Target, md Metadata) *Client {
	t = t.withDefaults()
	return &Client{t: t, md: md, http: newHTTP(t, nil), redirect: "http://127.0.0.1:1/chaos/callback"}
}

// Authorize registers the client (DCR) and runs the authorization-code flow over plain HTTP with a
// cookie jar, the way a browser would: the consent page is approved, the upstream login form filled
// in, the redirects followed until the client's redirect URI; then the code is exchanged.
func (c *Client) Authorize(ctx context.Context) (Tokens, error) {
	if c.clientID == "" {
		if err := c.register(ctx); err != nil {
			return Tokens{}, err
		}
	}
	jar, _ := cookiejar.New(nil)
	browser := newHTTP(c.t, jar)
	verifier := randomString(48)
	sum := sha256.Sum256([]byte(verifier))
	state := randomString(16)
	q := url.Values{"response_type": {"code"}, "client_id": {c.clientID}, "redirect_uri": {c.redirect},
		"code_challenge": {base64.RawURLEncoding.EncodeToString(sum[:])}, "code_challenge_method": {"S256"},
		"state": {state}, "scope": {c.t.Scope}, "resource": {c.t.MCPURL}}
	next, method, body := c.md.AuthorizationEndpoint+"?"+q.Encode(), http.MethodGet, url.Values(nil)
	for hop := 0; hop < 20; hop++ {
		var rd io.Reader
		if body != nil {
			rd = strings.NewReader(body.Encode())
		}
		req, err := http.NewRequestWithContext(ctx, method, next, rd)
		if err != nil {
			return Tokens{}, err
		}
		if body != nil {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		req.Header.Set("Accept", "text/html")
		resp, err := browser.Do(req)
		if err != nil {
			return Tokens{}, fmt.Errorf("authorize: %w", err)
		}
		page, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		resp.Body.Close()
		switch {
		case resp.StatusCode >= 300 && resp.StatusCode < 400:
			loc, err := req.URL.Parse(resp.Header.Get("Location"))
			if err != nil {
				return Tokens{}, fmt.Errorf("authorize: bad Location: %w", err)
			}
			if strings.HasPrefix(loc.String(), c.redirect) {
				r := loc.Query()
				if e := r.Get("error"); e != "" {
					return Tokens{}, fmt.Errorf("authorize: the client received error %s: %s", e, r.Get("error_description"))
				}
				if r.Get("state") != state || r.Get("code") == "" {
					return Tokens{}, errors.New("authorize: the authorization response lacks the code or carries another state")
				}
				return c.exchange(ctx, r.Get("code"), verifier)
			}
			next, method, body = loc.String(), http.MethodGet, nil
		case resp.StatusCode == http.StatusOK:
			f, err := consentform.Parse(next, page)
			if err != nil {
				return Tokens{}, fmt.Errorf("authorize: page at %s has no form to submit: %w", stripQuery(next), err)
			}
			v := f.Values(true)
			if _, login := f.Fields["password"]; login {
				v.Set("username", c.t.Username)
				v.Set("password", c.t.Password)
			}
			next, method, body = f.Action, http.MethodPost, v
			if f.Method == http.MethodGet {
				u, _ := url.Parse(f.Action)
				u.RawQuery = v.Encode()
				next, method, body = u.String(), http.MethodGet, nil
			}
		default:
			return Tokens{}, fmt.Errorf("authorize: HTTP %d at %s", resp.StatusCode, stripQuery(next))
		}
	}
	return Tokens{}, errors.New("authorize: more than 20 hops")
}

func stripQuery(s string) string {
	if i := strings.IndexAny(s, "?#"); i >= 0 {
		return s[:i]
	}
	return s
}

func (c *Client) register(ctx context.Context) error {
	b, _ := json.Marshal(map[string]any{"client_name": "cnpg-mcp chaos client", "redirect_uris": []string{c.redirect},
		"grant_types": []string{"authorization_code", "refresh_token"}, "response_types": []string{"code"}, "token_endpoint_auth_method": "none"})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.md.RegistrationEndpoint, bytes.NewReader(b))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("register: %w", err)
	}
	defer resp.Body.Close()
	var out struct {
		ClientID string `json:"client_id"`
		Error    string `json:"error"`
	}
	_ = json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&out)
	if resp.StatusCode != http.StatusCreated || out.ClientID == "" {
		return fmt.Errorf("register: HTTP %d %s", resp.StatusCode, out.Error)
	}
	c.clientID = out.ClientID
	return nil
}

func (c *Client) exchange(ctx context.Context, code, verifier string) (Tokens, error) {
	t, r := c.token(ctx, url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {c.redirect},
		"client_id": {c.clientID}, "code_verifier": {verifier}, "resource": {c.t.MCPURL}})
	if r.Kind != OK {
		return Tokens{}, fmt.Errorf("code exchange: %s", r)
	}
	if t.RefreshToken == "" {
		return Tokens{}, errors.New("code exchange: no refresh token issued")
	}
	return t, nil
}

// Refresh presents a refresh token.
func (c *Client) Refresh(ctx context.Context, rt string) (Tokens, Result) {
	return c.token(ctx, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}, "client_id": {c.clientID}, "resource": {c.t.MCPURL}})
}

func (c *Client) token(ctx context.Context, form url.Values) (Tokens, Result) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.md.TokenEndpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return Tokens{}, Result{Kind: Unexpected, Code: err.Error(), At: time.Now()}
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	resp, err := c.http.Do(req)
	now := time.Now()
	if err != nil {
		return Tokens{}, Result{Kind: Unavailable, Code: transportError(err), At: now}
	}
	defer resp.Body.Close()
	b, rerr := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	var out struct {
		AccessToken  string `json:"access_token"`
		RefreshToken string `json:"refresh_token"`
		ExpiresIn    int64  `json:"expires_in"`
		Error        string `json:"error"`
	}
	_ = json.Unmarshal(b, &out)
	r := Result{Status: resp.StatusCode, Code: out.Error, At: now, RetryAfter: retryAfter(resp.Header.Get("Retry-After"))}
	switch {
	case resp.StatusCode == http.StatusOK && rerr == nil && out.AccessToken != "":
		r.Kind = OK
		return Tokens{AccessToken: out.AccessToken, RefreshToken: out.RefreshToken, Expiry: now.Add(time.Duration(out.ExpiresIn) * time.Second)}, r
	case resp.StatusCode == http.StatusOK:
		// A 200 whose body did not arrive whole: the answer was lost on the way.
		r.Kind, r.Code = Unavailable, "truncated token response"
	case resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests:
		r.Kind = Unavailable
	case out.Error == "invalid_grant" || out.Error == "invalid_client":
		r.Kind = GrantLost
	default:
		r.Kind = Unexpected
	}
	return Tokens{}, r
}

// CallMCP sends initialize and then tools/list (with the session, if the server made one) with the
// access token. Only the HTTP status matters: a JSON-RPC error still means the bearer check passed.
func (c *Client) CallMCP(ctx context.Context, at string) Result {
	r, sid := c.mcp(ctx, at, "", "initialize", map[string]any{"protocolVersion": "2025-06-18", "capabilities": map[string]any{},
		"clientInfo": map[string]any{"name": "cnpg-mcp-chaos", "version": "1"}})
	if r.Kind != OK {
		return r
	}
	r, _ = c.mcp(ctx, at, sid, "tools/list", map[string]any{})
	return r
}

func (c *Client) mcp(ctx context.Context, at, sid, method string, params any) (Result, string) {
	b, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": 1, "method": method, "params": params})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.t.MCPURL, bytes.NewReader(b))
	if err != nil {
		return Result{Kind: Unexpected, Code: err.Error(), At: time.Now()}, ""
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("Authorization", "Bearer "+at)
	if sid != "" {
		req.Header.Set("Mcp-Session-Id", sid)
		req.Header.Set("Mcp-Protocol-Version", "2025-06-18")
	}
	resp, err := c.http.Do(req)
	now := time.Now()
	if err != nil {
		return Result{Kind: Unavailable, Code: transportError(err), At: now}, ""
	}
	defer resp.Body.Close()
	_, rerr := io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<20))
	r := Result{Status: resp.StatusCode, At: now, RetryAfter: retryAfter(resp.Header.Get("Retry-After"))}
	switch {
	case resp.StatusCode == http.StatusOK && rerr != nil:
		r.Kind, r.Code = Unavailable, "truncated MCP response"
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		r.Kind = OK
	case resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests:
		r.Kind = Unavailable
	case resp.StatusCode == http.StatusUnauthorized:
		r.Kind = Unauthorized
		r.Code = challengeError(resp.Header.Get("WWW-Authenticate"))
	default:
		r.Kind = Unexpected
	}
	return r, resp.Header.Get("Mcp-Session-Id")
}

// challengeError is the error attribute of a Bearer challenge (invalid_token, …).
func challengeError(h string) string {
	i := strings.Index(h, `error="`)
	if i < 0 {
		return ""
	}
	rest := h[i+len(`error="`):]
	if j := strings.IndexByte(rest, '"'); j >= 0 {
		return rest[:j]
	}
	return ""
}

// transportError names a transport failure without the URL (which may carry nothing secret here,
// but keeps the summaries short).
func transportError(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return "timeout"
	}
	s := err.Error()
	for _, k := range []string{"connection refused", "connection reset", "EOF", "broken pipe", "timeout"} {
		if strings.Contains(s, k) {
			return k
		}
	}
	return s
}

// retryAfter reads a Retry-After in seconds.
func retryAfter(h string) time.Duration {
	n, err := strconv.Atoi(strings.TrimSpace(h))
	if err != nil || n < 0 {
		return 0
	}
	return time.Duration(n) * time.Second
}

func randomString(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)[:n]
}
