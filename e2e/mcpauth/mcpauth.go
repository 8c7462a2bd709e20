// Package mcpauth gets an access token from an MCP server's own authorization server the way an MCP
// client does — Dynamic Client Registration, PKCE, consent and the upstream login in a real headless
// Chromium, code exchange — so the e2e suite can call the tools as an authenticated user.
//
// It is deliberately the plain happy path; the conformance suite (conformance/) is what checks every
// rule of the flow.
package mcpauth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/chromedp/chromedp"
)

// Options of one authorization.
type Options struct {
	PublicURL string // the server, e.g. http://127.0.0.1:30080
	Resource  string // the MCP endpoint (RFC 8707 resource), e.g. <PublicURL>/mcp
	Scope     string // e.g. "mcp:read mcp:write"
	// Username/Password log in at the upstream (the mock Auth0's user by default).
	Username, Password string
	Chromium           string // /usr/lib/chromium/chromium
	Timeout            time.Duration
}

// Token is the result of the code exchange.
type Token struct {
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int    `json:"expires_in"`
	Scope        string `json:"scope"`
}

// Authorize runs the whole flow and returns the server's tokens.
func Authorize(ctx context.Context, o Options) (Token, error) {
	if o.Timeout == 0 {
		o.Timeout = 90 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()

	// The redirect URI: a loopback listener that receives the authorization response.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return Token{}, err
	}
	redirect := fmt.Sprintf("http://%s/callback", l.Addr())
	got := make(chan url.Values, 1)
	srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/callback" {
			select {
			case got <- r.URL.Query():
			default:
			}
			_, _ = w.Write([]byte("done"))
			return
		}
		http.NotFound(w, r)
	})}
	go func() { _ = srv.Serve(l) }()
	defer srv.Close()

	hc := &http.Client{Timeout: 15 * time.Second}
	clientID, err := register(ctx, hc, o.PublicURL, redirect)
	if err != nil {
		return Token{}, err
	}
	verifier := randomString(48)
	sum := sha256.Sum256([]byte(verifier))
	state := randomString(24)
	q := url.Values{
		"response_type": {"code"}, "client_id": {clientID}, "redirect_uri": {redirect},
		"code_challenge": {base64.RawURLEncoding.EncodeToString(sum[:])}, "code_challenge_method": {"S256"},
		"state": {state}, "scope": {o.Scope}, "resource": {o.Resource},
	}
	if err := browse(ctx, o, o.PublicURL+"/authorize?"+q.Encode(), got); err != nil {
		return Token{}, err
	}
	var resp url.Values
	select {
	case resp = <-got:
	case <-ctx.Done():
		return Token{}, fmt.Errorf("no authorization response at %s: %w", redirect, ctx.Err())
	}
	if e := resp.Get("error"); e != "" {
		return Token{}, fmt.Errorf("authorization failed: %s: %s", e, resp.Get("error_description"))
	}
	if resp.Get("state") != state {
		return Token{}, errors.New("authorization response carries another state")
	}
	return exchange(ctx, hc, o, url.Values{
		"grant_type": {"authorization_code"}, "code": {resp.Get("code")}, "redirect_uri": {redirect},
		"client_id": {clientID}, "code_verifier": {verifier}, "resource": {o.Resource},
	})
}

func register(ctx context.Context, hc *http.Client, base, redirect string) (string, error) {
	body, _ := json.Marshal(map[string]any{
		"client_name": "cnpg-mcp e2e", "redirect_uris": []string{redirect}, "token_endpoint_auth_method": "none",
		"grant_types": []string{"authorization_code", "refresh_token"}, "response_types": []string{"code"},
	})
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, base+"/register", strings.NewReader(string(body)))
	req.Header.Set("Content-Type", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		return "", fmt.Errorf("register: %w", err)
	}
	defer resp.Body.Close()
	var out struct {
		ClientID string `json:"client_id"`
		Error    string `json:"error"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&out)
	if resp.StatusCode != http.StatusCreated || out.ClientID == "" {
		return "", fmt.Errorf("register: %d %s", resp.StatusCode, out.Error)
	}
	return out.ClientID, nil
}

func exchange(ctx context.Context, hc *http.Client, o Options, form url.Values) (Token, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, o.PublicURL+"/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := hc.Do(req)
	if err != nil {
		return Token{}, fmt.Errorf("token: %w", err)
	}
	defer resp.Body.Close()
	var t Token
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Error string `json:"error"`
		}
		_ = json.NewDecoder(resp.Body).Decode(&e)
		return Token{}, fmt.Errorf("token: %d %s", resp.StatusCode, e.Error)
	}
	if err := json.NewDecoder(resp.Body).Decode(&t); err != nil || t.AccessToken == "" {
		return Token{}, fmt.Errorf("token response without access_token: %v", err)
	}
	return t, nil
}

// browse drives the consent page (#approve) and the upstream login (input#username, input#password,
// button[type=submit][name=action]) until the redirect URI receives the response.
func browse(ctx context.Context, o Options, start string, done chan url.Values) error {
	actx, cancelAlloc := chromedp.NewExecAllocator(ctx, append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(o.Chromium), chromedp.Flag("headless", true))...)
	defer cancelAlloc()
	bctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	if err := chromedp.Do(bctx, chromedp.Navigate(start)); err != nil {
		return fmt.Errorf("open %s: %w", start, err)
	}
	const probe = `(() => {
		if (document.querySelector('#approve')) return 'consent';
		if (document.querySelector('input#username')) return 'login';
		return 'other';
	})()`
	approved, loggedIn := false, false
	for i := 0; i < 200; i++ {
		if len(done) > 0 {
			return nil
		}
		page, _ := chromedp.Run(bctx, chromedp.Evaluate[string](probe))
		switch {
		case page == "consent" && !approved:
			approved = true
			if err := chromedp.Do(bctx, chromedp.Click(chromedp.CSS("#approve"))); err != nil {
				return fmt.Errorf("consent: %w", err)
			}
		case page == "login" && !loggedIn:
			loggedIn = true
			if err := chromedp.Do(bctx,
				chromedp.SendKeys(chromedp.CSS("input#username"), o.Username),
				chromedp.SendKeys(chromedp.CSS("input#password"), o.Password),
				chromedp.Click(chromedp.CSS("button[type=submit][name=action]"))); err != nil {
				return fmt.Errorf("upstream login: %w", err)
			}
		}
		select {
		case <-ctx.Done():
			u, _ := chromedp.Run(bctx, chromedp.Location())
			return fmt.Errorf("browser flow stuck at %s (consent approved: %t, logged in: %t): %w", u, approved, loggedIn, ctx.Err())
		case <-time.After(250 * time.Millisecond):
		}
	}
	return errors.New("browser flow did not finish in 200 steps")
}

func randomString(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}
