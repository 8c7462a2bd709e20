package stack

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/cnpg-mcp/cnpg-mcp/conformance/browser"
	"github.com/cnpg-mcp/cnpg-mcp/conformance/login"
)

// UserAction is what the person in the browser does on the consent page.
type UserAction struct {
	// Untick lists scopes to untick before approving (e.g. mcp:write: "read only").
	Untick []string
}

// BrowserResult is what the browser step saw.
type BrowserResult struct {
	SawConsent, SawLogin bool
	// ConsentText is the consent page's visible text.
	ConsentText string
	// Landed is the redirect URL the browser was sent to (the client's callback, with the code).
	Landed string
}

// Authorize plays the person: it opens authURL in a fresh browser context, approves our consent page
// (after unticking what act says), logs in to the mock Auth0 and stops once the browser has been
// sent to a URL starting with redirectPrefix — the client's own callback listener, which receives
// the code as it would from a real browser.
func Authorize(ctx context.Context, b *browser.Browser, authURL, redirectPrefix string, act UserAction) (BrowserResult, error) {
	var res BrowserResult
	ctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	s, err := b.NewSession()
	if err != nil {
		return res, err
	}
	defer s.Close()
	if err := s.StartNavigation(ctx, authURL); err != nil {
		return res, fmt.Errorf("open the authorization URL: %w", err)
	}
	d := login.New(login.Options{Credentials: login.Credentials{Username: Username, Password: Password}})
	landed := func() bool {
		for _, n := range s.Navigations() {
			if strings.HasPrefix(n.URL, redirectPrefix) {
				res.Landed = n.URL
				return true
			}
		}
		return false
	}
	out, err := d.Run(ctx, s, login.Plan{Consent: login.StopAtConsent, Done: landed})
	if err != nil {
		return res, err
	}
	if out.Stopped == "consent" {
		res.SawConsent = true
		res.ConsentText, _ = browser.Eval[string](ctx, s, `document.body.innerText`)
		for _, scope := range act.Untick {
			js := fmt.Sprintf(`(() => { const c = document.querySelector('input[type=checkbox][name=scope][value=%q]');
  if (!c) return false; c.checked = false; return true; })()`, scope)
			if ok, err := browser.Eval[bool](ctx, s, js); err != nil || !ok {
				return res, fmt.Errorf("untick %s on the consent page: no such checkbox (%v)", scope, err)
			}
		}
		out, err = d.Run(ctx, s, login.Plan{Consent: login.Approve, Done: landed})
		if err != nil {
			return res, err
		}
	}
	res.SawLogin = out.SawLogin
	if res.Landed == "" {
		return res, fmt.Errorf("the browser never reached the client's callback %s (stopped %q at %s)", redirectPrefix, out.Stopped, out.URL)
	}
	return res, nil
}
