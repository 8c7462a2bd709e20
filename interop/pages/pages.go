// Package pages knows every page a person sees during a sign-in — our consent page, our error and
// interstitial pages, the mock Auth0's login page — and how to bring each one up in a browser
// against the local stack. The accessibility check (axe-core, TestAccessibility) and the
// screenshots in docs/screenshots (cmd/screenshots, `make screenshots`) use the same list.
package pages

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"
	"github.com/cnpg-mcp/cnpg-mcp/conformance/browser"
	"github.com/cnpg-mcp/cnpg-mcp/conformance/login"
	"github.com/cnpg-mcp/cnpg-mcp/interop/internal/stack"
)

// Page is one page a person can be shown.
type Page struct {
	Name  string // file name stem, e.g. consent
	Title string // what it is, for docs/screenshots/README.md
	// Open brings the page up in s (which is at about:blank).
	Open func(ctx context.Context, st *stack.Stack, s *browser.Session) error
}

// Schemes are the colour schemes every page is checked and shown in.
var Schemes = []string{"light", "dark"}

// All lists the pages.
func All() []Page {
	return []Page{
		{"consent", "Our consent page: a desktop application on this computer (loopback redirect, so a warning), asking to read and write",
			func(ctx context.Context, st *stack.Stack, s *browser.Session) error {
				return openConsent(ctx, st, s, "Example Assistant", "http://127.0.0.1:33418/callback")
			}},
		{"consent-web", "Our consent page: a web application (https redirect), asking to read and write",
			func(ctx context.Context, st *stack.Stack, s *browser.Session) error {
				return openConsent(ctx, st, s, "Team dashboard", "https://dashboard.example.com/oauth/callback")
			}},
		{"error-unknown-client", "Error page: an authorization request from an application this server does not know",
			func(ctx context.Context, st *stack.Stack, s *browser.Session) error {
				return s.Navigate(ctx, st.Base+"/authorize?response_type=code&client_id=forgotten-client")
			}},
		{"error-expired", "Error page: a consent form or sign-in that was already used or is too old",
			func(ctx context.Context, st *stack.Stack, s *browser.Session) error {
				return s.Navigate(ctx, st.Base+"/consent?txn=already-answered")
			}},
		{"interstitial", "Interstitial (AZ-10): an invalid request from an application whose redirect URI is not on this computer; the person sees where the link goes before following it",
			func(ctx context.Context, st *stack.Stack, s *browser.Session) error {
				id, err := register(ctx, st, "Team dashboard", "https://dashboard.example.com/oauth/callback")
				if err != nil {
					return err
				}
				q := authorizeQuery(id, "https://dashboard.example.com/oauth/callback")
				q.Set("response_type", "token")
				return s.Navigate(ctx, st.Base+"/authorize?"+q.Encode())
			}},
		{"mock-login", "The mock Auth0's login page (development tenant: it shows its users' credentials)",
			func(ctx context.Context, st *stack.Stack, s *browser.Session) error {
				if err := openConsent(ctx, st, s, "Example Assistant", "http://127.0.0.1:33418/callback"); err != nil {
					return err
				}
				d := login.New(login.Options{})
				out, err := d.Run(ctx, s, login.Plan{Consent: login.Approve, StopAtLogin: true})
				if err != nil {
					return err
				}
				if out.Stopped != "login" {
					return fmt.Errorf("no login page after the consent (stopped %q at %s)", out.Stopped, out.URL)
				}
				return nil
			}},
	}
}

// Show opens p in a fresh session with the colour scheme, at a desktop width.
func Show(ctx context.Context, st *stack.Stack, b *browser.Browser, p Page, scheme string) (*browser.Session, error) {
	s, err := b.NewSession()
	if err != nil {
		return nil, err
	}
	err = s.Run(ctx, chromedp.EmulateViewport(760, 560), chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := cdp.Call(ctx, t, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
			Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: scheme}}})
		return err
	}))
	if err == nil {
		err = p.Open(ctx, st, s)
	}
	if err != nil {
		s.Close()
		return nil, fmt.Errorf("open %s (%s): %w", p.Name, scheme, err)
	}
	return s, nil
}

// Screenshot captures the whole page as PNG.
func Screenshot(ctx context.Context, s *browser.Session) ([]byte, error) {
	var png []byte
	err := s.Run(ctx, chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		var err error
		png, err = chromedp.FullScreenshot(100)(ctx, t)
		return err
	}))
	return png, err
}

// openConsent registers a client and opens our consent page for it, asking for both scopes.
func openConsent(ctx context.Context, st *stack.Stack, s *browser.Session, name, redirect string) error {
	id, err := register(ctx, st, name, redirect)
	if err != nil {
		return err
	}
	return s.Navigate(ctx, st.Base+"/authorize?"+authorizeQuery(id, redirect).Encode())
}

func authorizeQuery(clientID, redirect string) url.Values {
	v := make([]byte, 32)
	_, _ = rand.Read(v)
	sum := sha256.Sum256([]byte(base64.RawURLEncoding.EncodeToString(v)))
	return url.Values{"response_type": {"code"}, "client_id": {clientID}, "redirect_uri": {redirect}, "state": {"screenshot"},
		"code_challenge": {base64.RawURLEncoding.EncodeToString(sum[:])}, "code_challenge_method": {"S256"}, "scope": {"mcp:read mcp:write"}}
}

// register is a dynamic client registration (RFC 7591) of a public client.
func register(ctx context.Context, st *stack.Stack, name, redirect string) (string, error) {
	body, _ := json.Marshal(map[string]any{"client_name": name, "redirect_uris": []string{redirect},
		"token_endpoint_auth_method": "none", "grant_types": []string{"authorization_code", "refresh_token"}})
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, st.Base+"/register", bytes.NewReader(body))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer res.Body.Close()
	var m struct {
		ClientID string `json:"client_id"`
		Error    string `json:"error_description"`
	}
	if err := json.NewDecoder(res.Body).Decode(&m); err != nil || m.ClientID == "" {
		return "", fmt.Errorf("register %s: %d %s %v", name, res.StatusCode, m.Error, err)
	}
	return m.ClientID, nil
}
