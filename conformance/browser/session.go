package browser

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/fetch"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/storage"
	"github.com/chromedp/chromedp"
)

// Navigation is one top-level document request the tab made: what the user's browser actually
// visited, redirects included. It is the browser-side evidence of a flow.
type Navigation struct {
	Time   time.Time `json:"time"`
	Method string    `json:"method"`
	URL    string    `json:"url"`
	// RedirectStatus is the status of the response that redirected to this URL (0 when the
	// request was not the result of a redirect).
	RedirectStatus int64 `json:"redirectStatus,omitempty"`
}

// Cookie is a cookie as the browser stored it.
type Cookie struct {
	Name     string `json:"name"`
	Domain   string `json:"domain"`
	Path     string `json:"path"`
	Secure   bool   `json:"secure"`
	HTTPOnly bool   `json:"httpOnly"`
	SameSite string `json:"sameSite,omitempty"`
}

// Session is one tab in its own browser context.
type Session struct {
	ctx    context.Context
	cancel context.CancelFunc

	mu      sync.Mutex
	navs    []Navigation
	lastDoc DocumentResponse
	blocked []string
}

// DocumentResponse is the HTTP response of the latest top-level document.
type DocumentResponse struct {
	URL    string `json:"url"`
	Status int64  `json:"status"`
}

// onEvent runs on chromedp's event loop: it must be quick and must not run commands.
func (s *Session) onEvent(ev any) {
	if p, ok := ev.(*fetch.EventRequestPaused); ok {
		if p.Request != nil {
			s.mu.Lock()
			s.blocked = append(s.blocked, p.Request.URL)
			s.mu.Unlock()
		}
		// Commands cannot run on the event loop: answer from a goroutine.
		go func(id fetch.RequestID) {
			_ = chromedp.Do(s.ctx, chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
				_, err := cdp.Call(ctx, t, fetch.FailRequest, fetch.FailRequestParams{RequestID: id, ErrorReason: network.ErrorReasonBlockedByClient})
				return err
			}))
		}(p.RequestID)
		return
	}
	if r, ok := ev.(*network.EventResponseReceived); ok {
		if r.Type == network.ResourceTypeDocument && r.Response != nil {
			s.mu.Lock()
			s.lastDoc = DocumentResponse{URL: r.Response.URL, Status: r.Response.Status}
			s.mu.Unlock()
		}
		return
	}
	e, ok := ev.(*network.EventRequestWillBeSent)
	if !ok || e.Type != network.ResourceTypeDocument || e.Request == nil {
		return
	}
	n := Navigation{Time: time.Now(), Method: e.Request.Method, URL: e.Request.URL}
	if e.RedirectResponse != nil {
		n.RedirectStatus = e.RedirectResponse.Status
	}
	s.mu.Lock()
	s.navs = append(s.navs, n)
	s.mu.Unlock()
}

// NavCount is the number of document requests so far (cheap: no browser round trip).
func (s *Session) NavCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.navs)
}

// Navigations returns the document requests made so far, oldest first.
func (s *Session) Navigations() []Navigation {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Navigation(nil), s.navs...)
}

// Block makes the tab fail top-level requests whose URL matches one of the patterns (wildcards '*'
// and '?'), recording their URLs: a check can capture a URL (e.g. the OAuth callback with its code)
// without letting the browser load it. Unblock lifts it.
func (s *Session) Block(ctx context.Context, patterns ...string) error {
	var ps []*fetch.RequestPattern
	for _, p := range patterns {
		ps = append(ps, &fetch.RequestPattern{URLPattern: p, ResourceType: network.ResourceTypeDocument})
	}
	return s.Run(ctx, chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := cdp.Call(ctx, t, fetch.Enable, fetch.EnableParams{Patterns: ps})
		return err
	}))
}

// Unblock stops blocking.
func (s *Session) Unblock(ctx context.Context) error {
	return s.Run(ctx, chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := cdp.Call(ctx, t, fetch.Disable, cdp.Empty{})
		return err
	}))
}

// Blocked returns the URLs blocked so far.
func (s *Session) Blocked() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.blocked...)
}

// LastDocument returns the response of the latest top-level document (zero before the first one).
func (s *Session) LastDocument() DocumentResponse {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lastDoc
}

// Close closes the tab and disposes of its browser context.
func (s *Session) Close() { s.cancel() }

// Run runs chromedp actions in the tab, bounded by ctx as well as by the session's own life.
func (s *Session) Run(ctx context.Context, steps ...chromedp.Action[chromedp.Void]) error {
	runCtx, stop := s.bind(ctx)
	defer stop()
	return chromedp.Do(runCtx, steps...)
}

// bind derives a chromedp context from the session that also ends when ctx ends (or hits its
// deadline), so a check's timeout stops a hanging browser step.
func (s *Session) bind(ctx context.Context) (context.Context, func()) {
	runCtx, cancel := context.WithCancel(s.ctx)
	if dl, ok := ctx.Deadline(); ok {
		var c2 context.CancelFunc
		runCtx, c2 = context.WithDeadline(runCtx, dl)
		prev := cancel
		cancel = func() { c2(); prev() }
	}
	stop := context.AfterFunc(ctx, cancel)
	return runCtx, func() { stop(); cancel() }
}

// Eval evaluates a JavaScript expression in the page and decodes its value into T.
func Eval[T any](ctx context.Context, s *Session, expr string) (T, error) {
	runCtx, stop := s.bind(ctx)
	defer stop()
	return chromedp.Run(runCtx, chromedp.Evaluate[T](expr))
}

// WaitLoaded waits for the current page's load event (images, failed ones included, have been
// tried and their handlers have run).
func (s *Session) WaitLoaded(ctx context.Context) error {
	runCtx, stop := s.bind(ctx)
	defer stop()
	_, err := chromedp.Run(runCtx, chromedp.Evaluate[bool](`new Promise(r => document.readyState === "complete" ? r(true) : addEventListener("load", () => r(true)))`, chromedp.EvalAwaitPromise))
	return err
}

// StartNavigation sends the tab to url without waiting for the page to load: flows are driven by
// polling the page, which copes with redirect chains that end anywhere. A network error on the
// first document is returned as a *chromedp.LoadError.
func (s *Session) StartNavigation(ctx context.Context, url string) error {
	return s.Run(ctx, chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		res, err := cdp.Call(ctx, t, page.Navigate, page.NavigateParams{URL: url})
		if err != nil {
			return err
		}
		if res.ErrorText != "" {
			return &chromedp.LoadError{ErrorText: res.ErrorText}
		}
		return nil
	}))
}

// Navigate loads url and waits for the load event of the page the redirects end on.
func (s *Session) Navigate(ctx context.Context, url string) error {
	return s.Run(ctx, chromedp.Navigate(url))
}

// URL returns the address of the current document.
func (s *Session) URL(ctx context.Context) (string, error) {
	return Eval[string](ctx, s, `document.location.href`)
}

// Screenshot captures the visible part of the page as PNG.
func (s *Session) Screenshot(ctx context.Context) ([]byte, error) {
	runCtx, stop := s.bind(ctx)
	defer stop()
	return chromedp.Run(runCtx, chromedp.CaptureScreenshot())
}

// Cookies returns every cookie of the session's browser context (HttpOnly ones included).
func (s *Session) Cookies(ctx context.Context) ([]Cookie, error) {
	runCtx, stop := s.bind(ctx)
	defer stop()
	c := chromedp.FromContext(runCtx)
	if c == nil || c.Browser == nil {
		return nil, fmt.Errorf("session has no browser")
	}
	res, err := chromedp.CallBrowser(runCtx, storage.GetCookies, storage.GetCookiesParams{BrowserContextID: c.BrowserContextID})
	if err != nil {
		return nil, fmt.Errorf("read cookies: %w", err)
	}
	out := make([]Cookie, 0, len(res.Cookies))
	for _, ck := range res.Cookies {
		out = append(out, Cookie{Name: ck.Name, Domain: ck.Domain, Path: ck.Path, Secure: ck.Secure,
			HTTPOnly: ck.HTTPOnly, SameSite: string(ck.SameSite)})
	}
	return out, nil
}

// HTTPCookies returns the cookies of the session's browser context with their values, for an
// HTTP client that continues where the browser is (a flow replayed with the logged-in user's
// session). Expired and session cookies alike are returned as the browser holds them.
func (s *Session) HTTPCookies(ctx context.Context) ([]*http.Cookie, error) {
	runCtx, stop := s.bind(ctx)
	defer stop()
	c := chromedp.FromContext(runCtx)
	if c == nil || c.Browser == nil {
		return nil, fmt.Errorf("session has no browser")
	}
	res, err := chromedp.CallBrowser(runCtx, storage.GetCookies, storage.GetCookiesParams{BrowserContextID: c.BrowserContextID})
	if err != nil {
		return nil, fmt.Errorf("read cookies: %w", err)
	}
	out := make([]*http.Cookie, 0, len(res.Cookies))
	for _, ck := range res.Cookies {
		out = append(out, &http.Cookie{Name: ck.Name, Value: ck.Value, Domain: ck.Domain, Path: ck.Path, Secure: ck.Secure, HttpOnly: ck.HTTPOnly})
	}
	return out, nil
}
