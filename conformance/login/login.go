// Package login drives the human part of an authorization flow in the browser: the MCP server's
// consent page (approve or deny) and the upstream identity provider's login page (username and
// password), in whatever order and number the target puts them.
//
// The defaults fit the mock Auth0 in this repository and Auth0's Universal Login (input#username,
// input#password, button[type=submit][name=action]); every selector can be overridden for other
// providers. The consent page is found by a heuristic (a form with a submit control labelled
// approve/allow/authorize/accept/continue) unless a selector is configured.
package login

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/cnpg-mcp/cnpg-mcp/conformance/browser"
)

// Selectors locate the controls the driver operates. Empty fields use the defaults.
type Selectors struct {
	// Username, Password and Submit locate the upstream login form.
	Username string `json:"username"`
	Password string `json:"password"`
	Submit   string `json:"submit"`
	// UpstreamConsent is the upstream's own consent button (Auth0 shows one to third-party apps).
	UpstreamConsent string `json:"upstreamConsent"`
	// Approve and Deny locate the MCP server's consent buttons; empty = heuristic.
	Approve string `json:"approve"`
	Deny    string `json:"deny"`
}

// DefaultSelectors fit Auth0 Universal Login and the mock Auth0.
func DefaultSelectors() Selectors {
	return Selectors{
		Username:        "input#username",
		Password:        "input#password",
		Submit:          "button[type=submit][name=action]",
		UpstreamConsent: "form[action*='/u/consent'] button[value=accept]",
	}
}

func (s Selectors) withDefaults() Selectors {
	d := DefaultSelectors()
	if s.Username == "" {
		s.Username = d.Username
	}
	if s.Password == "" {
		s.Password = d.Password
	}
	if s.Submit == "" {
		s.Submit = d.Submit
	}
	if s.UpstreamConsent == "" {
		s.UpstreamConsent = d.UpstreamConsent
	}
	return s
}

// Credentials are the upstream user's login.
type Credentials struct {
	Username string
	Password string
}

// ConsentDecision says what to do on the MCP server's consent page.
type ConsentDecision int

const (
	// Approve clicks the approve button.
	Approve ConsentDecision = iota
	// Deny clicks the deny button.
	Deny
	// StopAtConsent returns as soon as the consent page is shown.
	StopAtConsent
)

// Plan is what the driver does with one flow.
type Plan struct {
	Consent ConsentDecision
	// StopAtLogin returns as soon as the upstream login page is shown (after consent, if any):
	// PXY-06 captures the upstream authorization URL in one browser and logs in from another.
	StopAtLogin bool
	// Done reports whether the flow has reached its end (usually: the redirect listener received
	// the authorization response). It is polled between steps.
	Done func() bool
}

// Step is one thing the driver saw or did, for the evidence.
type Step struct {
	Time   time.Time `json:"time"`
	Action string    `json:"action"` // "login", "approve", "deny", "upstream-consent", "consent-page", "login-page", "done"
	URL    string    `json:"url"`
}

// Outcome is where a flow ended.
type Outcome struct {
	Steps []Step `json:"steps"`
	// Stopped is "done", "consent" (StopAtConsent) or "login" (StopAtLogin).
	Stopped string `json:"stopped"`
	URL     string `json:"url"`
	// SawConsent reports whether the MCP server's consent page was shown.
	SawConsent bool `json:"sawConsent"`
	// SawLogin reports whether the upstream login page was shown.
	SawLogin bool `json:"sawLogin"`
}

// FlowError is a flow that could not go on: an error page, a login that did not take, or a page
// with nothing the driver recognises. It carries what the user would have seen.
type FlowError struct {
	Reason     string
	URL        string
	Status     int64
	PageText   string
	Screenshot []byte
	Steps      []Step
}

func (e *FlowError) Error() string {
	msg := fmt.Sprintf("browser flow stopped: %s at %s", e.Reason, e.URL)
	if e.Status != 0 {
		msg += fmt.Sprintf(" (HTTP %d)", e.Status)
	}
	if t := strings.TrimSpace(e.PageText); t != "" {
		msg += fmt.Sprintf("; page says: %q", clip(t, 300))
	}
	return msg
}

// Driver runs flows. The zero value is not usable; use New.
type Driver struct {
	sel   Selectors
	cred  Credentials
	poll  time.Duration
	idle  time.Duration
	limit int
}

// Options tune a Driver.
type Options struct {
	Selectors   Selectors
	Credentials Credentials
	// PollInterval is the page polling period; 25 ms when zero.
	PollInterval time.Duration
	// IdleTimeout is how long a page with nothing to do may sit before the flow fails; 10 s when zero.
	// An error status (≥ 400) on the current document fails the flow at once.
	IdleTimeout time.Duration
	// MaxSteps bounds the number of actions; 12 when zero.
	MaxSteps int
}

// New returns a driver.
func New(opts Options) *Driver {
	d := &Driver{sel: opts.Selectors.withDefaults(), cred: opts.Credentials, poll: opts.PollInterval,
		idle: opts.IdleTimeout, limit: opts.MaxSteps}
	if d.poll == 0 {
		d.poll = 25 * time.Millisecond
	}
	if d.idle == 0 {
		d.idle = 10 * time.Second
	}
	if d.limit == 0 {
		d.limit = 12
	}
	return d
}

// pageState is what the probe script reports.
type pageState struct {
	URL             string `json:"url"`
	Acted           bool   `json:"acted"`
	Ready           bool   `json:"ready"`
	Login           bool   `json:"login"`
	Approve         bool   `json:"approve"`
	Deny            bool   `json:"deny"`
	UpstreamConsent bool   `json:"upstreamConsent"`
}

// Run drives s from its current page (the caller has started the navigation) according to plan.
func (d *Driver) Run(ctx context.Context, s *browser.Session, plan Plan) (Outcome, error) {
	var out Outcome
	logins := 0
	lastChange := time.Now()
	lastURL := ""
	// After an action, the page is not probed again until the browser starts another document
	// (or a moment has passed, for pages that change without navigating): probing costs the
	// browser far more than watching its navigation events.
	navAtAction, actedAt := -1, time.Time{}
	acted := func() { navAtAction, actedAt = s.NavCount(), time.Now() }
	for {
		if plan.Done != nil && plan.Done() {
			out.Stopped = "done"
			out.Steps = append(out.Steps, Step{Time: time.Now(), Action: "done", URL: lastURL})
			out.URL = lastURL
			return out, nil
		}
		if err := ctx.Err(); err != nil {
			return out, d.fail(ctx, s, out, "timed out", lastURL, err)
		}
		if navAtAction >= 0 && s.NavCount() == navAtAction && time.Since(actedAt) < 300*time.Millisecond {
			if err := sleep(ctx, 10*time.Millisecond); err != nil {
				return out, d.fail(ctx, s, out, "timed out", lastURL, err)
			}
			continue
		}
		st, err := d.probe(ctx, s)
		if err != nil {
			// Navigation in progress: the execution context went away between probes.
			if sleepErr := sleep(ctx, d.poll); sleepErr != nil {
				return out, d.fail(ctx, s, out, "timed out", lastURL, sleepErr)
			}
			continue
		}
		if st.URL != lastURL {
			lastURL, lastChange = st.URL, time.Now()
		}
		out.URL = st.URL
		if st.Acted || !st.Ready {
			if time.Since(lastChange) > d.idle {
				return out, d.fail(ctx, s, out, "the page did not move on after the last action", st.URL, nil)
			}
			if err := sleep(ctx, d.poll); err != nil {
				return out, d.fail(ctx, s, out, "timed out", st.URL, err)
			}
			continue
		}
		if len(out.Steps) >= d.limit {
			return out, d.fail(ctx, s, out, fmt.Sprintf("more than %d steps", d.limit), st.URL, nil)
		}
		switch {
		case st.Login:
			out.SawLogin = true
			if plan.StopAtLogin {
				out.Stopped = "login"
				out.Steps = append(out.Steps, Step{Time: time.Now(), Action: "login-page", URL: st.URL})
				return out, nil
			}
			logins++
			if logins > 1 {
				return out, d.fail(ctx, s, out, "the login page came back after submitting the credentials (wrong username or password?)", st.URL, nil)
			}
			acted()
			if err := d.login(ctx, s); err != nil {
				return out, d.fail(ctx, s, out, "could not fill in the login form", st.URL, err)
			}
			out.Steps = append(out.Steps, Step{Time: time.Now(), Action: "login", URL: st.URL})
		case st.UpstreamConsent:
			acted()
			if err := d.click(ctx, s, d.sel.UpstreamConsent); err != nil {
				return out, d.fail(ctx, s, out, "could not accept the upstream consent", st.URL, err)
			}
			out.Steps = append(out.Steps, Step{Time: time.Now(), Action: "upstream-consent", URL: st.URL})
		case st.Approve || st.Deny:
			out.SawConsent = true
			switch plan.Consent {
			case StopAtConsent:
				out.Stopped = "consent"
				out.Steps = append(out.Steps, Step{Time: time.Now(), Action: "consent-page", URL: st.URL})
				return out, nil
			case Deny:
				if !st.Deny {
					return out, d.fail(ctx, s, out, "the consent page has no deny button", st.URL, nil)
				}
				acted()
				if err := d.clickConsent(ctx, s, false); err != nil {
					return out, d.fail(ctx, s, out, "could not click deny", st.URL, err)
				}
				out.Steps = append(out.Steps, Step{Time: time.Now(), Action: "deny", URL: st.URL})
			default:
				if !st.Approve {
					return out, d.fail(ctx, s, out, "the consent page has no approve button", st.URL, nil)
				}
				acted()
				if err := d.clickConsent(ctx, s, true); err != nil {
					return out, d.fail(ctx, s, out, "could not click approve", st.URL, err)
				}
				out.Steps = append(out.Steps, Step{Time: time.Now(), Action: "approve", URL: st.URL})
			}
		default:
			if doc := s.LastDocument(); doc.Status >= 400 && doc.URL == st.URL {
				return out, d.fail(ctx, s, out, "error page", st.URL, nil)
			}
			if time.Since(lastChange) > d.idle {
				return out, d.fail(ctx, s, out, "no login form, consent button or redirect on this page", st.URL, nil)
			}
			if err := sleep(ctx, d.poll); err != nil {
				return out, d.fail(ctx, s, out, "timed out", st.URL, err)
			}
			continue
		}
		lastChange = time.Now()
	}
}

func (d *Driver) probe(ctx context.Context, s *browser.Session) (pageState, error) {
	raw, err := browser.Eval[string](ctx, s, probeScript(d.sel))
	if err != nil {
		return pageState{}, err
	}
	var st pageState
	if err := json.Unmarshal([]byte(raw), &st); err != nil {
		return pageState{}, fmt.Errorf("decode page probe: %w", err)
	}
	return st, nil
}

func (d *Driver) login(ctx context.Context, s *browser.Session) error {
	script := fmt.Sprintf(`(() => {
  const set = (sel, v) => { const el = document.querySelector(sel); if (!el) throw new Error("missing " + sel);
    el.focus(); el.value = v; el.dispatchEvent(new Event("input", {bubbles:true})); el.dispatchEvent(new Event("change", {bubbles:true})); };
  set(%q, %q); set(%q, %q);
  const b = document.querySelector(%q); if (!b) throw new Error("missing " + %q);
  window.__mcpconfActed = true; b.click(); return true; })()`,
		d.sel.Username, d.cred.Username, d.sel.Password, d.cred.Password, d.sel.Submit, d.sel.Submit)
	_, err := browser.Eval[bool](ctx, s, script)
	return err
}

func (d *Driver) click(ctx context.Context, s *browser.Session, sel string) error {
	script := fmt.Sprintf(`(() => { const b = document.querySelector(%q); if (!b) throw new Error("missing " + %q);
  window.__mcpconfActed = true; b.click(); return true; })()`, sel, sel)
	_, err := browser.Eval[bool](ctx, s, script)
	return err
}

func (d *Driver) clickConsent(ctx context.Context, s *browser.Session, approve bool) error {
	script := fmt.Sprintf(`(() => { %s
  const b = findConsent(%t); if (!b) throw new Error("consent button not found");
  window.__mcpconfActed = true; b.click(); return true; })()`, consentJS(d.sel), approve)
	_, err := browser.Eval[bool](ctx, s, script)
	return err
}

func (d *Driver) fail(ctx context.Context, s *browser.Session, out Outcome, reason, url string, cause error) error {
	fe := &FlowError{Reason: reason, URL: url, Steps: out.Steps}
	if cause != nil {
		fe.Reason = reason + ": " + cause.Error()
	}
	if doc := s.LastDocument(); doc.URL == url {
		fe.Status = doc.Status
	}
	// The page text and screenshot are evidence: take them even when the check's context has run out.
	shotCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 3*time.Second)
	defer cancel()
	if text, err := browser.Eval[string](shotCtx, s, `document.body ? document.body.innerText.slice(0, 2000) : ""`); err == nil {
		fe.PageText = text
	}
	if png, err := s.Screenshot(shotCtx); err == nil {
		fe.Screenshot = png
	}
	return fe
}

// AsFlowError unwraps a *FlowError.
func AsFlowError(err error) (*FlowError, bool) {
	var fe *FlowError
	ok := errors.As(err, &fe)
	return fe, ok
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

func clip(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
