package checks

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/cnpg-mcp/cnpg-mcp/conformance/browser"
	"github.com/cnpg-mcp/cnpg-mcp/conformance/evidence"
	"github.com/cnpg-mcp/cnpg-mcp/conformance/login"
	"github.com/cnpg-mcp/cnpg-mcp/conformance/oauthclient"
	"github.com/cnpg-mcp/cnpg-mcp/conformance/report"
	"github.com/cnpg-mcp/cnpg-mcp/conformance/upstream"
)

// C.13 Proxy-specific: consent, confused deputy, passthrough.
func proxyChecks() map[string]func(*T) {
	return map[string]func(*T){
		"PXY-01": pxy01, "PXY-02": pxy02, "PXY-03": pxy03, "PXY-04": pxy04, "PXY-05": pxy05, "PXY-06": pxy06,
		"PXY-07": pxy07, "PXY-08": pxy08, "PXY-09": func(t *T) { t.CrossRef("AZ-03") }, "PXY-10": pxy10,
		"PXY-11": pxy11, "PXY-12": pxy12, "PXY-13": pxy13, "PXY-14": pxy14, "PXY-15": pxy15, "PXY-16": pxy16,
		"PXY-17": pxy17, "PXY-18": pxy18, "PXY-19": pxy19, "PXY-20": pxy20,
	}
}

// asOrigin is the authorization server's origin.
func (t *T) asOrigin() *url.URL {
	u, err := url.Parse(t.AS().AuthorizationEndpoint)
	t.Must(err, "parse the authorization endpoint")
	return &url.URL{Scheme: u.Scheme, Host: u.Host}
}

// onAS reports whether raw is on the AS's origin.
func (t *T) onAS(raw string) bool {
	u, err := url.Parse(raw)
	return err == nil && sameOrigin(u, t.asOrigin())
}

// newSession opens a browser session closed at the end of the check.
func (t *T) newSession() *browser.Session {
	b, err := t.env.Browser()
	if err != nil {
		t.Fatalf("cannot run the browser: %v", err)
	}
	s, err := b.NewSession()
	t.Must(err, "open a browser session")
	t.Cleanup(s.Close)
	return s
}

// loggedInTab is the run's logged-in tab (a fresh session with Config.FreshContexts): for checks
// that need one browser across several flows but no fresh upstream login.
func (t *T) loggedInTab() *browser.Session {
	if t.env.cfg.FreshContexts {
		return t.newSession()
	}
	b, err := t.env.Browser()
	if err != nil {
		t.Fatalf("cannot run the browser: %v", err)
	}
	s, err := t.env.acquireTab(b)
	t.Must(err, "open a browser session")
	t.Cleanup(func() { t.env.releaseTab(s, t.Failed()) })
	return s
}

// upstreamAuthorizeURL is the first navigation that left the AS for the upstream.
func (t *T) upstreamAuthorizeURL(r *FlowResult) string {
	for _, n := range r.Navigations {
		if !t.onAS(n.URL) && !strings.HasPrefix(n.URL, "http://127.0.0.1:"+itoa(t.env.redirect.Port())) {
			return n.URL
		}
	}
	return ""
}

func itoa(i int) string { return strconv.Itoa(i) }

// PXY-01: each dynamically registered client gets an MCP-owned consent page before the upstream.
func pxy01(t *T) {
	d := t.design()
	switch {
	case d.Kind == report.DesignPassThrough:
		t.Skipf("not applicable to a pass-through design: %s; the upstream's consent covers each client", d.Evidence)
	case d.Kind == report.DesignStaticNoConsent:
		t.Fatalf("%s: with a static upstream client and open registration this is the confused-deputy hole (MCP security best practices: obtain consent for each client)", d.Evidence)
	case d.Kind == report.DesignOwnAS:
		t.Skipf("not applicable: %s; the row is for proxies in front of an upstream", d.Evidence)
	}
	s := t.loggedInTab()
	r := t.Authorize(Flow{Session: s, Client: t.NewClient(nil), Name: "first client"})
	if !r.Outcome.SawConsent {
		t.Fatalf("the flow went to the upstream without a consent page of the MCP server: with a static upstream client and open registration this is the confused-deputy hole")
	}
	for _, st := range r.Outcome.Steps {
		if st.Action == "login" {
			t.Errorf("the upstream login came before the MCP server's consent page")
			break
		}
		if st.Action == "approve" {
			if !t.onAS(st.URL) {
				t.Errorf("the consent page %s is not served by the MCP server's authorization server", stripQuery(st.URL))
			}
			break
		}
	}
	second := t.Browse(Flow{Session: s, Client: t.NewClient(nil), Consent: login.StopAtConsent, Name: "second client, same browser"})
	if second.Outcome.Stopped != "consent" {
		if second.Got && second.Response.Code() != "" {
			t.Errorf("a second client got a code in the same browser without a consent prompt")
		} else {
			t.Errorf("a second client in the same browser was not shown the consent page (%v)", second.Err)
		}
	}
}

// PXY-02: the consent page names the client and shows the scopes and the redirect URI.
func pxy02(t *T) {
	name := "Conformance Client ZX81 <b>bold</b>"
	c := t.RegisterClient(func(m map[string]any) { m["client_name"] = name })
	text := t.consentText(c)
	if !strings.Contains(text, name) {
		if strings.Contains(text, "Conformance Client ZX81 bold") {
			t.Errorf("the consent page renders the client_name's HTML instead of showing it as text")
		} else {
			t.Errorf("the consent page does not show the client_name %q", name)
		}
	}
	requested := withoutOffline(scopesOf(t.Discovery().DefaultScope))
	var missing []string
	for _, sc := range requested {
		switch how := scopeShown(text, sc); how {
		case "":
			missing = append(missing, sc)
		case "by name":
		default:
			t.Logf("the consent page shows the scope %q %s", sc, how)
		}
	}
	switch {
	case len(missing) == 0:
	case len(missing) == len(requested):
		t.Errorf("the consent page shows none of the requested scopes (%s), neither by name nor by a description the suite recognises", strings.Join(missing, ", "))
	default:
		t.Errorf("the consent page does not show the requested scope(s) %s, neither by name nor by a description the suite recognises", strings.Join(missing, ", "))
	}
	ru, _ := url.Parse(c.RedirectURI)
	if !strings.Contains(text, c.RedirectURI) && !strings.Contains(text, ru.Host) {
		t.Errorf("the consent page does not show the redirect URI %s (or its host)", c.RedirectURI)
	}
}

// scopeDescriptions are the usual human wordings of the OpenID Connect scopes on consent pages
// ("Verify your identity" for openid).
var scopeDescriptions = map[string]*regexp.Regexp{
	"openid":  regexp.MustCompile(`(?i)\b(identity|sign(ed)?[ -]?in|log(ged)?[ -]?in|who you are|openid)\b`),
	"profile": regexp.MustCompile(`(?i)\bprofile\b`),
	"email":   regexp.MustCompile(`(?i)\be-?mail\b`),
	"phone":   regexp.MustCompile(`(?i)\bphone\b`),
	"address": regexp.MustCompile(`(?i)\baddress\b`),
}

var scopeSeparators = strings.NewReplacer(":", " ", "_", " ", "-", " ", ".", " ", "/", " ")

// scopeShown says how a consent page's text shows a scope: "by name", by its name in words
// ("mcp read" for mcp:read, "offline access"), by a usual description of an OpenID scope, or not
// at all ("").
func scopeShown(text, scope string) string {
	if strings.Contains(text, scope) {
		return "by name"
	}
	words := strings.Join(strings.Fields(scopeSeparators.Replace(scope)), " ")
	if words != "" && strings.Contains(strings.ToLower(strings.Join(strings.Fields(scopeSeparators.Replace(text)), " ")), strings.ToLower(words)) {
		return fmt.Sprintf("in words (%q)", words)
	}
	if re, ok := scopeDescriptions[scope]; ok {
		if m := re.FindString(text); m != "" {
			return fmt.Sprintf("by a description (%q)", m)
		}
	}
	return ""
}

var csrfFieldRE = regexp.MustCompile(`(?i)csrf|xsrf|nonce|token`)

// PXY-03: consent CSRF: no cookie, another transaction's token, a used token, cross-site POST.
func pxy03(t *T) {
	crossSite := http.Header{"Origin": {testOrigin}, "Sec-Fetch-Site": {"cross-site"}}
	// (a)/(d) A valid form posted without the browser's cookies, cross-site.
	jar := NewJar()
	f := &Flow{}
	p, _ := t.OpenConsent("open the consent page", f, jar)
	resp := t.SubmitConsent("approve without the consent cookies, cross-site", p.Form, true, NewJar(), crossSite, nil)
	if t.ConsentAccepted(resp, f.Client.RedirectURI) {
		t.Errorf("the consent approval was accepted without the cookies the page set (%s): CSRF protection must be bound to the browser (double-submit cookie)", resp.Describe())
	}
	// (b) The CSRF token of another transaction.
	jar2 := NewJar()
	fx, fy := &Flow{}, &Flow{}
	px, _ := t.OpenConsent("open consent page X", fx, jar2)
	py, _ := t.OpenConsent("open consent page Y", fy, jar2)
	var csrf []string
	for k := range py.Form.Fields {
		if csrfFieldRE.MatchString(k) && px.Form.Fields.Get(k) != py.Form.Fields.Get(k) {
			csrf = append(csrf, k)
		}
	}
	if len(csrf) == 0 {
		t.Logf("(b) skipped: no per-transaction CSRF field recognised in the form")
	} else {
		resp = t.SubmitConsent("approve transaction Y with X's CSRF token", py.Form, true, jar2, nil, func(v url.Values) {
			for _, k := range csrf {
				v.Set(k, px.Form.Fields.Get(k))
			}
		})
		if t.ConsentAccepted(resp, fy.Client.RedirectURI) {
			t.Errorf("transaction Y was approved with transaction X's CSRF token (%s)", resp.Describe())
		}
	}
	// (c) Replay of a used form.
	jar3 := NewJar()
	f3 := &Flow{}
	p3, _ := t.OpenConsent("open consent page", f3, jar3)
	first := t.SubmitConsent("approve", p3.Form, true, jar3, nil, nil)
	if !t.ConsentAccepted(first, f3.Client.RedirectURI) {
		t.Inconclusive("(c) approve a freshly rendered consent form with its cookies", first.Describe(),
			"a genuine approval must be accepted before its replay can be tried; refusing it breaks every flow (see AZ-01)", "AZ-01")
	}
	again := t.SubmitConsent("approve again with the same form", p3.Form, true, jar3, nil, nil)
	if t.ConsentAccepted(again, f3.Client.RedirectURI) {
		t.Errorf("the same consent form was accepted twice (%s): CSRF tokens must be single-use", again.Describe())
	}
}

// framingProtected reports XFO or a CSP frame-ancestors header.
func framingProtected(h http.Header) bool {
	if x := strings.ToUpper(h.Get("X-Frame-Options")); x == "DENY" || x == "SAMEORIGIN" {
		return true
	}
	for _, v := range h.Values("Content-Security-Policy") {
		if strings.Contains(strings.ToLower(v), "frame-ancestors") {
			return true
		}
	}
	return false
}

// PXY-04: the consent (and error) pages cannot be framed.
func pxy04(t *T) {
	f := &Flow{}
	p, _ := t.OpenConsent("open the consent page", f, nil)
	if !framingProtected(p.Final.Header) {
		t.Errorf("the consent page has neither X-Frame-Options nor a CSP frame-ancestors header (a <meta> CSP cannot set frame-ancestors): clickjacking")
	}
	csp := strings.ToLower(strings.Join(p.Final.Header.Values("Content-Security-Policy"), ";"))
	if !strings.Contains(csp, "frame-ancestors") {
		t.Warnf("the consent page has no CSP frame-ancestors header (OAuth 2.1 §7.10 SHOULD)")
	}
	ep := t.env.redirect.NewEndpoint()
	e := t.ProbeAuthorize("an error page (unknown client)", url.Values{"response_type": {"code"}, "client_id": {"conformance-unknown"}, "redirect_uri": {ep.URI()}}, nil, ep.URI())
	if e.Kind == Rejected && strings.Contains(e.Final.MediaType(), "html") && !framingProtected(e.Final.Header) {
		t.Warnf("the authorization error page can be framed")
	}
}

// cookieProblems checks the attributes of Set-Cookie headers.
func (t *T) cookieProblems(where string, h http.Header, https bool) {
	for _, raw := range h.Values("Set-Cookie") {
		c, err := http.ParseSetCookie(raw)
		if err != nil {
			t.Errorf("%s: unparseable Set-Cookie: %v", where, err)
			continue
		}
		if c.MaxAge < 0 || (!c.Expires.IsZero() && c.Expires.Before(time.Now())) {
			continue // a deletion
		}
		if !c.HttpOnly {
			t.Errorf("%s: cookie %s is not HttpOnly", where, c.Name)
		}
		if c.SameSite != http.SameSiteLaxMode && c.SameSite != http.SameSiteStrictMode {
			t.Errorf("%s: cookie %s is not SameSite=Lax (or Strict)", where, c.Name)
		}
		if https {
			if !c.Secure {
				t.Errorf("%s: cookie %s is not Secure", where, c.Name)
			}
			if !strings.HasPrefix(c.Name, "__Host-") {
				t.Errorf("%s: cookie %s has no __Host- prefix", where, c.Name)
			}
		}
	}
}

// PXY-05: consent cookies are __Host-, Secure, HttpOnly, SameSite=Lax.
func pxy05(t *T) {
	https := t.asOrigin().Scheme == "https"
	if !https {
		t.Logf("the authorization server runs on plain http (loopback): __Host- and Secure cannot be checked")
	}
	jar := NewJar()
	f := &Flow{}
	p, _ := t.OpenConsent("open the consent page", f, jar)
	n := 0
	for _, h := range p.Hops {
		t.cookieProblems("consent page", h.Header, https)
		n += len(h.Header.Values("Set-Cookie"))
	}
	resp := t.SubmitConsent("approve", p.Form, true, jar, nil, nil)
	t.cookieProblems("consent approval", resp.Header, https)
	n += len(resp.Header.Values("Set-Cookie"))
	if n == 0 {
		t.Logf("the consent flow sets no cookies; PXY-06 shows whether the flow is still bound to the browser")
	}
}

// captureUpstream approves consent in s and stops at the upstream login page, returning the
// upstream authorization URL the browser was sent to.
func (t *T) captureUpstream(s *browser.Session, name string) (*FlowResult, string) {
	r := t.Browse(Flow{Session: s, Client: t.NewClient(nil), StopAtLogin: true, Name: name})
	if r.Err != nil || r.Outcome.Stopped != "login" {
		t.Inconclusive(fmt.Sprintf("approve consent in a fresh browser %s and stop at the upstream login page", name), fmt.Sprintf("the flow ended %q: %v", r.Outcome.Stopped, r.Err),
			"this check needs the upstream login page after an approved consent (see AZ-01 for the plain flow)", "")
	}
	up := t.upstreamAuthorizeURL(r)
	if up == "" {
		t.Inconclusive(fmt.Sprintf("find the upstream authorization URL in browser %s's navigations", name), "none left the authorization server's origin", "", "")
	}
	return r, up
}

// completeElsewhere logs in at the upstream from another browser with the captured URL and fails
// the check when the client's redirect URI received a code.
func (t *T) completeElsewhere(r *FlowResult, upstreamURL string, b *browser.Session) {
	if t.codeElsewhere(r, upstreamURL, b) {
		t.Screenshot(b, "browser B received a code")
		t.Errorf("browser B, which never approved consent, completed the flow and the client received a code: the upstream state is not bound to the browser that consented (confused deputy, GHSA-rww4-4w9c-7733)")
	}
}

// codeElsewhere logs in at the upstream from another browser with the captured URL and reports
// whether the client's redirect URI received a code.
func (t *T) codeElsewhere(r *FlowResult, upstreamURL string, b *browser.Session) bool {
	before := len(r.Client.Endpoint.Hits())
	ctx, cancel := context.WithTimeout(t.ctx, t.env.cfg.FlowTimeout)
	defer cancel()
	t.Must(b.StartNavigation(ctx, upstreamURL), "open the upstream URL in browser B")
	out, err := t.env.driver.Run(ctx, b, login.Plan{Consent: login.Approve, Done: func() bool { return len(r.Client.Endpoint.Hits()) > before }})
	for _, n := range b.Navigations() {
		t.rec.AddNavigation(evidence.Navigation{Session: "B", Time: n.Time, Method: n.Method, URL: n.URL, RedirectStatus: n.RedirectStatus})
	}
	t.Logf("browser B: %s (%v)", out.Stopped, err)
	hits := r.Client.Endpoint.Hits()
	if len(hits) <= before {
		return false
	}
	for _, h := range hits[before:] {
		if h.Code() != "" {
			return true
		}
	}
	t.Logf("the client received an error instead of a code: %s", hits[before].Error())
	return false
}

// PXY-06: upstream state is bound to the browser that consented.
func pxy06(t *T) {
	t.requireConsentPage()
	t.requireUpstreamLeg()
	a, b := t.newSession(), t.newSession()
	r, up := t.captureUpstream(a, "A")
	t.completeElsewhere(r, up, b)
}

// PXY-07: nothing set before approval binds the browser: a browser that only viewed the consent
// page cannot complete the flow. A browser that got no cookie from the authorization server by
// viewing the page holds nothing that could bind it: the row holds. Otherwise browser B views A's
// consent page, A approves and B completes the upstream login with A's upstream URL. B's view
// comes after A's: a server that accepts only the latest rendered form (PXY-18's defect) would
// refuse A's approval, so A reloads its page before approving, and a refused approval is
// inconclusive here (PXY-18 grades it). When B completes the flow, it is this row's failure only
// if a browser that never saw the page cannot (PXY-06): otherwise no browser is bound at all, and
// that is PXY-06's failure.
func pxy07(t *T) {
	t.requireConsentPage()
	t.requireUpstreamLeg()
	a, b := t.newSession(), t.newSession()
	stop := t.Browse(Flow{Session: a, Client: t.NewClient(nil), Consent: login.StopAtConsent, Name: "A"})
	if stop.Outcome.Stopped != "consent" {
		t.Inconclusive("show the consent page in a fresh browser A", fmt.Sprintf("the flow ended %q: %v", stop.Outcome.Stopped, stop.Err), "", "")
	}
	consentURL := stop.Outcome.URL
	ctx, cancel := context.WithTimeout(t.ctx, t.env.cfg.FlowTimeout)
	defer cancel()
	t.Must(b.Navigate(ctx, consentURL), "open A's consent page in browser B")
	ckB, err := b.Cookies(ctx)
	t.Must(err, "read browser B's cookies")
	var fromAS []string
	for _, c := range ckB {
		if strings.EqualFold(strings.TrimPrefix(c.Domain, "."), t.asOrigin().Hostname()) {
			fromAS = append(fromAS, c.Name)
		}
	}
	if len(fromAS) == 0 {
		t.Logf("viewing the consent page set no cookie of the authorization server in browser B: nothing set before approval can bind a browser (whether the callback is bound to the consenting browser is PXY-06's)")
		return
	}
	t.Logf("cookies of the authorization server browser B holds after viewing the consent page: %v", fromAS)
	t.Must(a.Navigate(ctx, consentURL), "reload the consent page in browser A")
	out, err := t.env.driver.Run(ctx, a, login.Plan{Consent: login.Approve, StopAtLogin: true})
	if err != nil || out.Stopped != "login" {
		t.Inconclusive("approve the consent page in browser A after browser B viewed it", fmt.Sprintf("browser A did not reach the upstream login: %v", err),
			"this check needs A's approval to go through; a consent form invalidated by another rendering of the page is PXY-18's defect", "PXY-18")
	}
	navs := a.Navigations()
	up := ""
	for _, n := range navs {
		if !t.onAS(n.URL) && !strings.HasPrefix(n.URL, "http://127.0.0.1:"+itoa(t.env.redirect.Port())) {
			up = n.URL
			break
		}
	}
	if up == "" {
		t.Inconclusive("find the upstream authorization URL in browser A's navigations", "none left the authorization server's origin", "", "")
	}
	stop.Navigations = navs
	if !t.codeElsewhere(stop, up, b) {
		return
	}
	t.Screenshot(b, "browser B received a code")
	if res := t.ranRows("PXY-06"); len(res) == 1 && res[0].Status == report.Fail {
		t.Inconclusive("complete A's flow in browser B, which only viewed the consent page", "browser B completed it and the client received a code",
			"a browser that never saw the consent page completes such flows too (PXY-06): the callback is bound to no browser, so whether the cookies B got by viewing the page bind it cannot be seen", "PXY-06")
	}
	t.Errorf("browser B, which only viewed the consent page (cookies %v) and never approved it, completed A's flow and the client received a code, while a browser that never saw the page cannot (PXY-06): a cookie set before approval binds the browser", fromAS)
}

// PXY-08: the callback state is single-use and short-lived.
func pxy08(t *T) {
	t.requireUpstreamLeg()
	s := t.loggedInTab() // the callback's single use is the server's: any browser that approved will do
	r := t.Authorize(Flow{Session: s, Name: "flow whose callback is replayed"})
	cb := ""
	for _, n := range r.Navigations {
		if t.onAS(n.URL) && strings.Contains(n.URL, "code=") && strings.Contains(n.URL, "state=") {
			cb = n.URL
		}
	}
	if cb == "" {
		t.Inconclusive("find the authorization server's callback URL (code and state) in the browser's navigations", "no navigation to the authorization server's origin carries both",
			"without the callback URL its replay cannot be tried", "")
	}
	before := len(r.Client.Endpoint.Hits())
	ctx, cancel := context.WithTimeout(t.ctx, 10*time.Second)
	defer cancel()
	// Navigate returns once the page the replayed callback leads to has loaded: a code would have
	// reached the redirect URI before.
	_ = s.Navigate(ctx, cb)
	for _, h := range r.Client.Endpoint.Hits()[before:] {
		if h.Code() != "" {
			t.Errorf("replaying the callback URL %s produced another code: the upstream state is not single-use", stripQuery(cb))
		}
	}
	if t.env.cfg.TimeTravel == nil {
		t.Logf("staleness not checked: the target's clock cannot be moved")
		return
	}
	// Staleness: hold a fresh callback in a blocked browser, let 11 minutes pass, then deliver it.
	s2 := t.loggedInTab()
	t.Must(s2.Block(t.ctx, t.asOrigin().String()+"/*code=*state=*", t.asOrigin().String()+"/*state=*code=*"), "block the callback")
	t.Cleanup(func() { _ = s2.Unblock(context.Background()) })
	held := t.Browse(Flow{Session: s2, Name: "flow with a held callback", Until: func() bool { return len(s2.Blocked()) > 0 }})
	blocked := s2.Blocked()
	if len(blocked) == 0 {
		t.Inconclusive("hold the callback in a browser that blocks it", fmt.Sprintf("the flow ended without reaching the callback: %v", held.Err), "", "")
	}
	t.TimeTravel(11 * time.Minute)
	t.Must(s2.Unblock(t.ctx), "unblock")
	before = len(held.Client.Endpoint.Hits())
	_ = s2.Navigate(ctx, blocked[0])
	for _, h := range held.Client.Endpoint.Hits()[before:] {
		if h.Code() != "" {
			t.Errorf("a callback delivered 11 minutes late still produced a code: the upstream state does not expire")
		}
	}
}

// PXY-10: remembered consent is per client and never silent for cross-site navigations.
func pxy10(t *T) {
	t.requireConsentPage()
	s := t.loggedInTab()
	c := t.RegisterClient(nil)
	t.Authorize(Flow{Session: s, Client: c, Name: "first approval"})
	again := t.Browse(Flow{Session: s, Client: c, Consent: login.StopAtConsent, Name: "same client again"})
	if again.Outcome.Stopped == "consent" {
		t.Logf("consent is not remembered (asked again), so this row does not apply")
		return
	}
	// Consent was remembered: a cross-site navigation must still prompt.
	params := t.AuthParams(&Flow{Client: c})
	host := "localhost"
	if strings.EqualFold(t.asOrigin().Hostname(), "localhost") {
		host = "127.0.0.1"
	}
	launch := t.env.redirect.LaunchURL(host, oauthclient.AuthorizeURL(t.AS().AuthorizationEndpoint, params))
	before := len(c.Endpoint.Hits())
	ctx, cancel := context.WithTimeout(t.ctx, t.env.cfg.FlowTimeout)
	defer cancel()
	t.Must(s.StartNavigation(ctx, launch), "open the cross-site launch page")
	out, _ := t.env.driver.Run(ctx, s, login.Plan{Consent: login.StopAtConsent, Done: func() bool { return len(c.Endpoint.Hits()) > before }})
	if out.Stopped != "consent" {
		t.Errorf("consent was approved silently for a cross-site navigation (AS-in-the-middle, GHSA-6x8h-498w-gv8c)")
	}
}

// PXY-11: deny → access_denied + state (+ iss) to the registered redirect URI.
func pxy11(t *T) {
	t.requireConsentPage()
	c := t.RegisterClient(nil)
	r := t.Browse(Flow{Client: c, Consent: login.Deny, State: ptr("conformance-deny"), Name: "deny"})
	if !r.Got {
		t.Fatalf("after deny the browser was not sent back to the client (%v)", r.Err)
	}
	q := r.Response
	if q.Error() != "access_denied" {
		t.Errorf("deny produced error=%q, want access_denied", q.Error())
	}
	if q.Code() != "" {
		t.Errorf("deny produced a code")
	}
	if q.State() != "conformance-deny" {
		t.Errorf("deny response state=%q, want conformance-deny", q.State())
	}
	if adv, _ := t.AS().Bool("authorization_response_iss_parameter_supported"); adv && q.Iss() != t.AS().Issuer {
		t.Errorf("deny response iss=%q, want %q", q.Iss(), t.AS().Issuer)
	}
}

var internalErrorRE = regexp.MustCompile(`(?i)(traceback|exception|panic|goroutine|stack|\.go:\d+|\.py"|sql|dial tcp|connection refused|127\.0\.0\.1:\d+)`)

// PXY-12: an upstream failure reaches the client as an error redirect, with no internal detail.
func pxy12(t *T) {
	t.requireUpstreamLeg()
	up := t.Upstream()
	t.Must(up.SetFault(t.ctx, "/oauth/token", upstream.Fault{Status: http.StatusInternalServerError, Count: 1}), "inject an upstream token failure")
	t.Cleanup(func() { _ = up.ClearFaults(context.Background()) })
	r := t.Browse(Flow{State: ptr("conformance-upstream-failure"), Name: "upstream token endpoint fails"})
	_ = up.ClearFaults(t.ctx)
	if !r.Got {
		t.Errorf("when the upstream token endpoint failed the user was left on a dead end (%v) instead of being sent back to the client with an error", r.Err)
		return
	}
	q := r.Response
	if q.Code() != "" {
		t.Fatalf("the flow produced a code although the upstream code exchange failed")
	}
	if e := q.Error(); e != "server_error" && e != "temporarily_unavailable" && e != "access_denied" {
		t.Errorf("the client got error=%q, want server_error (or temporarily_unavailable / access_denied)", e)
	}
	if q.State() != "conformance-upstream-failure" {
		t.Errorf("the error response state=%q", q.State())
	}
	if d := q.Get("error_description"); internalErrorRE.MatchString(d) {
		t.Errorf("error_description leaks internal detail: %q", d)
	}
}

// PXY-13: the client never receives upstream tokens.
func pxy13(t *T) {
	if t.isPassThrough() {
		t.Skipf("not applicable to a pass-through design (%s): the upstream is the client's authorization server, so its tokens are the client's tokens; RS-04 and RS-05 grade whether the MCP endpoint accepts only tokens issued for it", t.design().Evidence)
	}
	g := t.SharedGrant()
	as := t.AS()
	upURL := t.upstreamAuthorizeURL(g.Flow)
	upHost := ""
	if u, err := url.Parse(upURL); err == nil {
		upHost = u.Host
	}
	for name, tok := range map[string]string{"access_token": g.Tokens.AccessToken, "refresh_token": g.Tokens.RefreshToken, "id_token": g.Tokens.IDToken} {
		if tok == "" {
			continue
		}
		d := decodeJWT(tok)
		switch d.Kind {
		case evidence.KindJWE:
			t.Errorf("the %s is a JWE (header %v): an encrypted upstream token was passed through", name, d.Header)
		case evidence.KindJWS:
			iss := claimString(d.Claims, "iss")
			if u, err := url.Parse(iss); err == nil && upHost != "" && u.Host == upHost {
				t.Errorf("the %s was issued by the upstream (%s), not by this server", name, iss)
			} else if name == "access_token" && iss != as.Issuer {
				t.Errorf("the access token's iss %q is not this authorization server %q", iss, as.Issuer)
			}
		}
	}
	if t.env.cfg.Upstream != nil && g.Tokens.RefreshToken != "" {
		reqs, err := t.env.cfg.Upstream.Requests(t.ctx, "", 0)
		t.Must(err, "read the upstream log")
		for _, r := range reqs {
			if v := r.Param("refresh_token"); v != "" && v == g.Tokens.RefreshToken {
				t.Errorf("the client's refresh token is the upstream's refresh token")
			}
		}
	}
}

// PXY-14: secure storage is white-box.
func pxy14(t *T) {
	t.Skipf("white-box: encryption at rest and hashed refresh tokens can only be checked inside the server (its own store tests cover it)")
}

// watchedFlow runs a browser flow (and redeems its code when there is one) and returns the
// upstream requests it caused. The caller judges those first and reportFlow afterwards, so a
// defect that breaks the flow is still reported by what the upstream saw. A plain flow runs in
// the run's logged-in tab first; when the upstream saw no authorization request there (a server
// that keeps its own login session skips the upstream for a browser it knows), the flow is
// repeated in a fresh browser context, so the verdict is about the upstream leg, not the tab.
func (t *T) watchedFlow(f Flow) (*FlowResult, []upstream.Request, []upstream.Request) {
	t.requireUpstreamLeg()
	start := t.UpstreamMark()
	r := t.preconditionFlow(f)
	auths := t.UpstreamRequests(start, "/authorize")
	if len(auths) == 0 && f.Session == nil && !f.Fresh && !t.env.cfg.FreshContexts && f.canShareTab() {
		t.Logf("the upstream saw no authorization request from the flow in the logged-in tab (the server may keep its own login session); repeating it in a fresh browser context")
		f.Fresh = true
		start = t.UpstreamMark()
		r = t.Browse(f)
		auths = t.UpstreamRequests(start, "/authorize")
	}
	if r.Err == nil && r.Got && r.Response.Code() != "" {
		r.Tokens, _ = oauthclient.DecodeToken(t.Token("redeem the code", r.CodeExchange().Form()))
	}
	return r, auths, t.UpstreamRequests(start, "/oauth/token")
}

// noUpstreamLeg stops a check whose flow reached no upstream authorization request even in a
// fresh browser: a failed flow (AZ-01 grades it), or an upstream log that is not the target's
// upstream's.
func (t *T) noUpstreamLeg(r *FlowResult) {
	if r.Err != nil || !r.Got || r.Response.Code() == "" {
		t.Inconclusive("authorize in a fresh browser while watching the upstream", fmt.Sprintf("the flow did not complete (%v, error=%q)", r.Err, r.Response.Error()),
			"the upstream leg can only be judged on a flow that works", "AZ-01")
	}
	t.Inconclusive("watch the upstream's authorization requests during a flow in a fresh browser", "the flow yielded a code, but the upstream log shows no /authorize request",
		"the upstream whose log the suite reads (--mock-auth0-admin) does not seem to be the upstream the target sends users to", "")
}

// reportFlow fails the check when the flow did not yield a code and nothing else was reported.
func (t *T) reportFlow(r *FlowResult) {
	if t.Failed() {
		return
	}
	switch {
	case r.Err != nil:
		t.Errorf("the authorization flow did not complete: %v", r.Err)
	case !r.Got || r.Response.Code() == "":
		t.Errorf("the authorization flow ended without a code (%s)", r.Response.Error())
	}
}

// PXY-15: the client's resource is not forwarded upstream.
func pxy15(t *T) {
	g, auths, toks := t.watchedFlow(Flow{Name: "flow with resource"})
	defer t.reportFlow(g)
	res := g.Params.Get("resource")
	for _, r := range append(auths, toks...) {
		if v := r.Param("resource"); v != "" {
			if v == res {
				t.Errorf("the client's resource %s was forwarded to the upstream's %s (Auth0 and others reject it)", v, r.Path)
			} else {
				t.Logf("the upstream %s request carries resource=%s", r.Path, v)
			}
		}
	}
}

// PXY-16: the upstream leg uses PKCE S256 and a fresh state.
func pxy16(t *T) {
	g1, a1, _ := t.watchedFlow(Flow{Name: "first flow"})
	if len(a1) == 0 {
		t.noUpstreamLeg(g1)
	}
	g2, a2, _ := t.watchedFlow(Flow{Name: "second flow"})
	if len(a2) == 0 {
		t.noUpstreamLeg(g2)
	}
	defer t.reportFlow(g2)
	defer t.reportFlow(g1)
	for _, a := range append(a1, a2...) {
		if a.Param("code_challenge") == "" || a.Param("code_challenge_method") != "S256" {
			t.Errorf("the upstream authorization request has code_challenge=%q method=%q; want S256 PKCE", evidence.Elide(a.Param("code_challenge")), a.Param("code_challenge_method"))
		}
		if st := a.Param("state"); st == "" {
			t.Errorf("the upstream authorization request has no state")
		} else if st == g1.State {
			t.Errorf("the proxy forwarded the client's state upstream")
		}
	}
	if a1[0].Param("state") == a2[0].Param("state") {
		t.Errorf("two flows used the same upstream state")
	}
}

// PXY-17: a flow started on one instance completes on another; tokens validate everywhere.
func pxy17(t *T) {
	second := t.env.cfg.SecondInstance
	if second == "" {
		t.Skipf("needs a second instance of the same deployment (--second-instance URL)")
	}
	r := t.Authorize(Flow{Name: "flow on instance 1"})
	c := t.client
	m, _, err := c.FetchPRM(t.Label("PRM of instance 2"), mustPRMURL(t, second))
	t.Must(err, "instance 2's PRM")
	as2, _, err := c.DiscoverAS(t.Label("AS of instance 2"), m.AuthorizationServers[0])
	t.Must(err, "instance 2's AS metadata")
	resp, err := c.Token(t.Label("redeem instance 1's code at instance 2"), as2.TokenEndpoint, r.CodeExchange().Form())
	t.Must(err, "redeem at instance 2")
	tok, err := oauthclient.DecodeToken(resp)
	if err != nil {
		t.Fatalf("a code issued by instance 1 could not be redeemed at instance 2: %v", err)
	}
	resp, err = c.CallMCP(t.Label("use the token at instance 2"), second, oauthclient.MCPCall{Authorization: oauthclient.Bearer(tok.AccessToken)})
	t.Must(err, "call instance 2")
	if resp.Status < 200 || resp.Status >= 300 {
		t.Errorf("instance 2 refused a token it issued for a flow started on instance 1: %s", resp.Describe())
	}
	if ok, resp := t.AcceptedByMCP("use instance 2's token at instance 1", tok.AccessToken); !ok {
		t.Errorf("instance 1 refused a token minted by instance 2: %s", resp.Describe())
	}
}

func mustPRMURL(t *T, mcpURL string) string {
	urls, err := oauthclient.PRMURLs(mcpURL)
	t.Must(err, "PRM URL")
	return urls[0]
}

// PXY-18: a consent page fetched twice: the first form still works.
func pxy18(t *T) {
	jar := NewJar()
	f := &Flow{}
	p1, _ := t.OpenConsent("open the consent page", f, jar)
	p2 := t.probeFrom("open the same consent page again (prefetch)", p1.FinalURL, jar, []string{f.Client.RedirectURI})
	if p2.Form == nil {
		t.Logf("the second fetch showed no form (%s)", p2.Describe())
	}
	resp := t.SubmitConsent("submit the first form", p1.Form, true, jar, nil, nil)
	if !t.ConsentAccepted(resp, f.Client.RedirectURI) {
		t.Errorf("after the consent page was fetched twice, submitting the first form failed (%s): prefetch or a reload breaks consent (FastMCP #4814)", resp.Describe())
	}
}

// PXY-19: consent and error pages are not cacheable.
func pxy19(t *T) {
	f := &Flow{}
	p, _ := t.OpenConsent("open the consent page", f, nil)
	if !hasNoStore(p.Final.Header) {
		t.Errorf("the consent page has Cache-Control %q, want no-store", p.Final.Header.Get("Cache-Control"))
	}
	ep := t.env.redirect.NewEndpoint()
	e := t.ProbeAuthorize("an error page (unknown client)", url.Values{"response_type": {"code"}, "client_id": {"conformance-unknown"}, "redirect_uri": {ep.URI()}}, nil, ep.URI())
	if e.Kind == Rejected && !hasNoStore(e.Final.Header) {
		t.Warnf("the authorization error page has no Cache-Control: no-store")
	}
}

// PXY-20: the upstream identity is verified and a JWE upstream access token does not break the
// flow. An MCP endpoint that does not answer MCP at all (404, 5xx) says nothing about upstream
// token handling: that is inconclusive here (RS-11 grades it).
func pxy20(t *T) {
	t.requireUpstreamLeg()
	var auths []upstream.Request
	var at string
	if t.env.cfg.Upstream != nil {
		var r *FlowResult
		r, auths, _ = t.watchedFlow(Flow{Name: "full flow (watched upstream)"})
		if r.Tokens == nil {
			t.Inconclusive("complete a full flow and redeem its code", fmt.Sprintf("the flow or the redemption failed (%v, error=%q)", r.Err, r.Response.Error()),
				"the token's acceptance can only be judged on a flow that works", "AZ-01")
		}
		at = r.Tokens.AccessToken
	} else {
		at = t.Grant(Flow{Name: "full flow"}).Tokens.AccessToken
	}
	if ok, resp := t.AcceptedOrInconclusive("the token after a full flow", at); !ok {
		t.Errorf("the token issued after the upstream login is refused by the MCP endpoint (%s): the proxy cannot validate what the upstream gave it, e.g. a JWE access token (FastMCP #4850)", resp.Describe())
	}
	for _, a := range auths {
		if a.Param("audience") == "" {
			t.Logf("the upstream authorization request had no audience: the upstream issued a JWE access token, and the flow still works")
		} else {
			t.Logf("the upstream authorization request named audience %s (a signed upstream token)", a.Param("audience"))
		}
		if a.Param("nonce") == "" && strings.Contains(a.Param("scope"), "openid") {
			t.Warnf("the upstream OpenID request carries no nonce")
		}
	}
}
