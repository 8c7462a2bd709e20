package checks

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/cnpg-mcp/cnpg-mcp/conformance/browser"
	"github.com/cnpg-mcp/cnpg-mcp/conformance/consentform"
	"github.com/cnpg-mcp/cnpg-mcp/conformance/login"
	"github.com/cnpg-mcp/cnpg-mcp/conformance/oauthclient"
)

// The run's logged-in browser. The user logs in at the upstream once, in the run's first
// authorization (the preflight's, a real browser flow), in one browser context; every later flow
// whose verdict cannot depend on a fresh browser runs in a tab of that context — several tabs when
// checks run side by side — like a user who stays logged in and authorizes one client after
// another. Checks whose subject is the browser (consent, cookies, binding, login) use fresh,
// isolated contexts instead.
//
// A flow that is only a precondition (a code to redeem, a grant to refresh or revoke: not the
// check's Subject, nothing about the browser asked) is replayed over plain HTTP with that
// context's cookies instead of driving the browser: the same requests a browser sends — the
// authorization request, the consent form posted with its cookies, the upstream's redirect with
// its login session, the callback — end with a real, fresh authorization code at the client's
// redirect URI, at a fraction of the cost. When a replay does not end with a code (a consent page
// built by script, an upstream that wants the login again), the flow runs in the browser, and
// replays stop for the rest of the run. Config.FreshContexts turns all of this off.
type loggedIn struct {
	mu sync.Mutex
	// holder is the context's first tab: it owns the browser context (closing it would end the
	// login), and flows never run in it.
	holder *browser.Session
	idle   []*browser.Session
	// ready is set once a flow in one of the tabs has completed: the user is logged in.
	ready bool
	// cookies is the context's cookies for replays, read once ready.
	cookies []*http.Cookie
	// off says why replays stopped ("" while they work).
	off string
}

// acquireTab returns a tab of the logged-in context (the self-test's shared tab when set).
func (e *Env) acquireTab(b *browser.Browser) (*browser.Session, error) {
	if e.cfg.SharedTab != nil {
		return e.cfg.SharedTab, nil
	}
	l := &e.logged
	l.mu.Lock()
	defer l.mu.Unlock()
	if n := len(l.idle); n > 0 {
		s := l.idle[n-1]
		l.idle = l.idle[:n-1]
		return s, nil
	}
	if l.holder == nil {
		h, err := b.NewSession()
		if err != nil {
			return nil, err
		}
		l.holder = h
	}
	return l.holder.NewTab()
}

// releaseTab gives a tab back; a tab whose flow broke is closed (it may be left anywhere).
func (e *Env) releaseTab(s *browser.Session, broken bool) {
	if s == e.cfg.SharedTab {
		return
	}
	l := &e.logged
	l.mu.Lock()
	defer l.mu.Unlock()
	if broken || l.holder == nil {
		go s.Close()
		return
	}
	l.idle = append(l.idle, s)
}

// loggedInReady records that a flow in the logged-in context completed; one that logged in
// again (the upstream's session had ended) makes the next replay read the new cookies.
func (e *Env) loggedInReady(loggedInAgain bool) {
	e.logged.mu.Lock()
	e.logged.ready = true
	if loggedInAgain {
		e.logged.cookies = nil
	}
	e.logged.mu.Unlock()
}

func (e *Env) closeLoggedIn() {
	l := &e.logged
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, s := range l.idle {
		s.Close()
	}
	l.idle = nil
	if l.holder != nil {
		l.holder.Close()
		l.holder = nil
	}
}

// replayable reports whether f may be replayed over HTTP: a precondition flow (not the check's
// Subject) that could run in the logged-in tab, once that tab is logged in and replays work.
func (t *T) replayable(f Flow) bool {
	if t.env.cfg.FreshContexts || f.Subject || f.Browser || f.Session != nil || f.Until != nil || !f.canShareTab() {
		return false
	}
	l := &t.env.logged
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.ready && l.off == ""
}

// replayCookies returns a jar with the logged-in context's cookies (read from the browser once).
func (t *T) replayCookies() (http.CookieJar, error) {
	l := &t.env.logged
	l.mu.Lock()
	cks := l.cookies
	l.mu.Unlock()
	if cks == nil {
		var src *browser.Session
		if t.env.cfg.SharedTab != nil {
			src = t.env.cfg.SharedTab
		} else {
			l.mu.Lock()
			src = l.holder
			l.mu.Unlock()
		}
		if src == nil {
			return nil, fmt.Errorf("no logged-in browser context")
		}
		ctx, cancel := context.WithTimeout(t.ctx, 5*time.Second)
		defer cancel()
		var err error
		if cks, err = src.HTTPCookies(ctx); err != nil {
			return nil, err
		}
		l.mu.Lock()
		l.cookies = cks
		l.mu.Unlock()
	}
	jar := NewJar()
	for _, c := range cks {
		host := strings.TrimPrefix(c.Domain, ".")
		scheme := "http"
		if c.Secure {
			scheme = "https"
		}
		ck := *c
		if !strings.HasPrefix(c.Domain, ".") {
			ck.Domain = "" // a host-only cookie
		}
		jar.SetCookies(&url.URL{Scheme: scheme, Host: host, Path: "/"}, []*http.Cookie{&ck})
	}
	return jar, nil
}

// stopReplays turns replays off for the rest of the run (the reason goes into the report).
func (e *Env) stopReplays(why string) {
	e.logged.mu.Lock()
	if e.logged.off == "" {
		e.logged.off = why
	}
	e.logged.mu.Unlock()
	e.addCount("(replays stopped: " + why + ")")
}

// replay runs a precondition flow over plain HTTP with the logged-in context's cookies (see
// loggedIn). It returns nil, with where it stopped, when the replay did not end with an
// authorization code at the client's redirect URI: the caller then runs the flow in the browser.
func (t *T) replay(f Flow) (*FlowResult, string) {
	held := f.Client == nil
	if held {
		f.Client = t.holdFlowClient()
		defer f.Client.Endpoint.Release()
	}
	params := t.AuthParams(&f)
	res := &FlowResult{Client: f.Client, Verifier: f.Verifier, State: params.Get("state"), Params: params,
		URL: oauthclient.AuthorizeURL(t.AS().AuthorizationEndpoint, params)}
	jar, err := t.replayCookies()
	if err != nil {
		t.env.stopReplays("the logged-in browser's cookies could not be read: " + err.Error())
		return nil, err.Error()
	}
	start := time.Now()
	defer func() { t.env.addTiming("replayed flows", time.Since(start)) }()
	c := t.ClientWithJar(jar)
	ctx := t.Label("%s (replayed over HTTP with the logged-in browser's cookies)", orName(f.Name, "flow"))
	if !held {
		f.Client.Endpoint.Hold()
		defer f.Client.Endpoint.Release()
	}
	before := len(f.Client.Endpoint.Hits())
	clientURIs := []string{f.Client.RedirectURI}
	if ru := params.Get("redirect_uri"); ru != "" {
		clientURIs = append(clientURIs, ru)
	}
	method, next, body := http.MethodGet, res.URL, url.Values(nil)
	var cur *url.URL // the page the form was on (POST)
	accept := http.Header{"Accept": {"text/html,application/xhtml+xml"}}
	approved := false
	for hop := 0; hop < 12; hop++ {
		var resp *oauthclient.Response
		if method == http.MethodPost {
			// As the browser posts the consent form: from the page, same-origin.
			h := http.Header{"Accept": accept["Accept"], "Origin": {originOf(cur)}, "Referer": {stripQuery(cur.String())},
				"Sec-Fetch-Site": {"same-origin"}, "Sec-Fetch-Mode": {"navigate"}, "Sec-Fetch-Dest": {"document"}}
			resp, err = c.PostForm(ctx, next, body, h)
		} else {
			resp, err = c.Get(ctx, next, accept)
		}
		if err != nil {
			return nil, err.Error()
		}
		cur, _ = url.Parse(next)
		switch {
		case resp.IsRedirect():
			loc, err := cur.Parse(resp.Location())
			if err != nil {
				return nil, fmt.Sprintf("a redirect to %q", resp.Location())
			}
			if resp.Status != http.StatusTemporaryRedirect && resp.Status != http.StatusPermanentRedirect {
				method, body = http.MethodGet, nil
			}
			next = loc.String()
			if !matchesAny(loc, clientURIs) {
				continue
			}
			if q := loc.Query(); q.Get("code") == "" {
				return nil, fmt.Sprintf("the client's redirect URI was sent no code (error=%q)", q.Get("error"))
			}
			// The authorization response: deliver it to the client's redirect URI, as a browser would.
			if _, err := c.Get(ctx, next, nil); err != nil {
				return nil, err.Error()
			}
			hits := f.Client.Endpoint.Hits()
			if len(hits) <= before {
				return nil, "the client's redirect URI received nothing"
			}
			res.Response, res.Got = hits[before], true
			res.Outcome = login.Outcome{Stopped: "done", URL: next, SawConsent: approved}
			t.env.addCount("replayed over HTTP")
			t.Logf("%s: replayed over HTTP with the logged-in browser's cookies", orName(f.Name, "the flow"))
			return res, ""
		case resp.Status == http.StatusOK && !approved && sameOrigin(cur, t.asOrigin()):
			form, err := consentform.Parse(next, resp.Body)
			if err != nil {
				return nil, fmt.Sprintf("%s: %v", stripQuery(next), err)
			}
			values := form.Values(true)
			approved = true
			if strings.EqualFold(form.Method, http.MethodGet) {
				u, err := url.Parse(form.Action)
				if err != nil {
					return nil, err.Error()
				}
				u.RawQuery = values.Encode()
				method, next, body = http.MethodGet, u.String(), nil
			} else {
				method, next, body = http.MethodPost, form.Action, values
			}
		default:
			return nil, fmt.Sprintf("%s answered %s", stripQuery(next), resp.Describe())
		}
	}
	return nil, "too many redirects"
}

// preconditionFlow runs a flow whose browser side the check does not read (it reads what the
// server and the upstream did): replayed over HTTP when it can be, else in the browser. Unlike
// Authorize it does not judge the outcome.
func (t *T) preconditionFlow(f Flow) *FlowResult {
	if t.replayable(f) {
		r, why := t.replay(f)
		if r != nil {
			return r
		}
		t.Logf("%s: the replay over HTTP stopped (%s); running the flow in the browser", orName(f.Name, "the flow"), why)
	}
	return t.Browse(f)
}

func originOf(u *url.URL) string {
	if u == nil {
		return ""
	}
	return u.Scheme + "://" + u.Host
}

func orName(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
