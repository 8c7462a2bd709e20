package checks

import (
	"fmt"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"

	"github.com/cnpg-mcp/cnpg-mcp/conformance/consentform"
	"github.com/cnpg-mcp/cnpg-mcp/conformance/oauthclient"
	"github.com/cnpg-mcp/cnpg-mcp/conformance/report"
)

// ProbeKind classifies where an authorization request led.
type ProbeKind string

// Probe kinds.
const (
	// ClientRedirect: the AS sent the browser to the client's redirect URI (with a code or an error).
	ClientRedirect ProbeKind = "redirect to the client"
	// Proceed: the AS went on with the flow (consent page, its login page, or off to the upstream).
	Proceed ProbeKind = "went on with the flow"
	// Rejected: the AS answered with a client error and no redirect (an error shown to the user).
	Rejected ProbeKind = "rejected with an error page"
	// ServerError: a 5xx.
	ServerError ProbeKind = "answered with a server error"
)

// AuthzProbe is an authorization request sent over plain HTTP and followed within the AS's origin.
type AuthzProbe struct {
	URL   string
	Kind  ProbeKind
	Final *oauthclient.Response
	// FinalURL is the URL of the last response.
	FinalURL string
	// Client is the authorization response when Kind is ClientRedirect.
	Client url.Values
	// Left is the off-origin URL the AS sent the browser to (the upstream) when it proceeded that way.
	Left string
	// Upstream is the upstream URL the probe followed in a pass-through design (the upstream decides).
	Upstream string
	// Form is the consent form when the flow stopped on a consent page.
	Form *consentform.Form
	// Hops are the responses seen, in order.
	Hops []*oauthclient.Response
	// jar holds the cookies the probe collected.
	jar http.CookieJar
}

// Describe summarises the probe for messages.
func (p *AuthzProbe) Describe() string {
	switch p.Kind {
	case ClientRedirect:
		v := url.Values{}
		for k, vs := range p.Client {
			if k == "code" {
				vs = []string{"…"}
			}
			v[k] = vs
		}
		return fmt.Sprintf("%s (%s)", p.Kind, v.Encode())
	case Rejected, ServerError:
		if p.Upstream != "" {
			return fmt.Sprintf("%s at the upstream %s (%s)", p.Kind, stripQuery(p.FinalURL), p.Final.Describe())
		}
		return fmt.Sprintf("%s (%s)", p.Kind, p.Final.Describe())
	}
	if p.Upstream != "" {
		return fmt.Sprintf("%s: the upstream %s answered HTTP %d", p.Kind, stripQuery(p.FinalURL), p.Final.Status)
	}
	if p.Left != "" {
		u, _ := url.Parse(p.Left)
		if u != nil {
			return fmt.Sprintf("%s (to %s://%s%s)", p.Kind, u.Scheme, u.Host, u.Path)
		}
	}
	return fmt.Sprintf("%s (HTTP %d at %s)", p.Kind, p.Final.Status, stripQuery(p.FinalURL))
}

func stripQuery(s string) string {
	if i := strings.IndexAny(s, "?#"); i >= 0 {
		return s[:i]
	}
	return s
}

// NewJar returns an empty cookie jar.
func NewJar() http.CookieJar {
	j, _ := cookiejar.New(nil)
	return j
}

// ClientWithJar returns the check's recording client with a cookie jar.
func (t *T) ClientWithJar(jar http.CookieJar) *oauthclient.Client {
	c := oauthclient.New(&http.Client{Transport: t.client.HTTP.Transport, Timeout: t.client.HTTP.Timeout, Jar: jar})
	c.ProtocolVersion = t.client.ProtocolVersion
	return c
}

func sameOrigin(a, b *url.URL) bool {
	return strings.EqualFold(a.Scheme, b.Scheme) && strings.EqualFold(a.Host, b.Host)
}

// matchesAny reports whether loc points at one of the URIs (same scheme, host and path).
func matchesAny(loc *url.URL, uris []string) bool {
	for _, s := range uris {
		u, err := url.Parse(s)
		if err != nil || u.Scheme == "" {
			continue
		}
		if strings.EqualFold(u.Scheme, loc.Scheme) && strings.EqualFold(u.Host, loc.Host) && u.EscapedPath() == loc.EscapedPath() {
			return true
		}
	}
	return false
}

// ProbeAuthorize sends an authorization request over HTTP (no browser) and follows redirects that
// stay on the AS's origin, stopping at the client's redirect URI (any of clientURIs), at a page, or
// when the flow leaves for another origin (the upstream). In a pass-through design the upstream is
// the authorization server that decides, so the redirects are followed there too: the answer is
// the upstream's (its error page, its error redirect, or its login page). jar may be nil.
func (t *T) ProbeAuthorize(label string, params url.Values, jar http.CookieJar, clientURIs ...string) *AuthzProbe {
	as := t.AS()
	start := oauthclient.AuthorizeURL(as.AuthorizationEndpoint, params)
	return t.probeFrom(label, start, jar, clientURIs)
}

// deciders are the origins whose answer to an authorization request counts: the AS's, and in a
// pass-through design the upstream's. (Design detection itself looks at the AS's answer only.)
func (t *T) deciders() []*url.URL {
	if t.detecting {
		return nil
	}
	if d := t.design(); d.Kind == report.DesignPassThrough && d.Upstream != "" {
		if u, err := url.Parse(d.Upstream); err == nil {
			return []*url.URL{u}
		}
	}
	return nil
}

func (t *T) probeFrom(label, start string, jar http.CookieJar, clientURIs []string) *AuthzProbe {
	as := t.AS()
	asURL, err := url.Parse(as.AuthorizationEndpoint)
	t.Must(err, "parse the authorization endpoint")
	also := t.deciders()
	decides := func(u *url.URL) bool {
		if sameOrigin(u, asURL) {
			return true
		}
		for _, o := range also {
			if sameOrigin(u, o) {
				return true
			}
		}
		return false
	}
	if jar == nil {
		jar = NewJar()
	}
	c := t.ClientWithJar(jar)
	p := &AuthzProbe{URL: start, jar: jar}
	next := start
	for hop := 0; hop < 8; hop++ {
		resp, err := c.Get(t.Label("%s", label), next, http.Header{"Accept": {"text/html,application/xhtml+xml"}})
		t.Must(err, label)
		t.inconclusiveIfRateLimited(label, resp)
		p.Hops = append(p.Hops, resp)
		p.Final, p.FinalURL = resp, next
		switch {
		case resp.Status >= 500:
			p.Kind = ServerError
			return p
		case resp.Status >= 400:
			p.Kind = Rejected
			return p
		case resp.IsRedirect():
			cur, _ := url.Parse(next)
			loc, err := cur.Parse(resp.Location())
			if err != nil {
				p.Kind = Rejected
				return p
			}
			if matchesAny(loc, clientURIs) {
				p.Kind, p.Client = ClientRedirect, loc.Query()
				return p
			}
			if !decides(loc) {
				p.Kind, p.Left = Proceed, loc.String()
				return p
			}
			if !sameOrigin(loc, asURL) && p.Upstream == "" {
				p.Upstream = loc.String()
			}
			next = loc.String()
		default:
			p.Kind = Proceed
			if cur, err := url.Parse(next); err == nil && sameOrigin(cur, asURL) {
				if f, err := consentform.Parse(next, resp.Body); err == nil {
					p.Form = f
				}
			}
			return p
		}
	}
	p.Kind = Rejected
	return p
}

// SubmitConsent posts a consent form (approve or deny) with jar's cookies; mod may tamper with the
// body. It returns the response (redirects are not followed).
func (t *T) SubmitConsent(label string, f *consentform.Form, approve bool, jar http.CookieJar, header http.Header, mod func(url.Values)) *oauthclient.Response {
	v := f.Values(approve)
	if mod != nil {
		mod(v)
	}
	if jar == nil {
		jar = NewJar()
	}
	c := t.ClientWithJar(jar)
	resp, err := c.PostForm(t.Label("%s", label), f.Action, v, header)
	t.Must(err, label)
	return resp
}

// ConsentAccepted reports whether a consent POST was accepted: a redirect that leaves the AS's
// origin for somewhere other than the client (the upstream), or a redirect further into the AS.
func (t *T) ConsentAccepted(resp *oauthclient.Response, clientURIs ...string) bool {
	if !resp.IsRedirect() {
		return false
	}
	asURL, _ := url.Parse(t.AS().AuthorizationEndpoint)
	loc, err := asURL.Parse(resp.Location())
	if err != nil {
		return false
	}
	if matchesAny(loc, clientURIs) {
		return loc.Query().Get("code") != ""
	}
	return true
}

// OpenConsent sends a valid authorization request for c over HTTP and returns the consent form;
// the check is skipped when the target shows none (then the consent checks cannot apply this way).
func (t *T) OpenConsent(label string, f *Flow, jar http.CookieJar) (*AuthzProbe, url.Values) {
	params := t.AuthParams(f)
	p := t.ProbeAuthorize(label, params, jar, f.Client.RedirectURI)
	if p.Form == nil {
		t.requireConsentPage()
		t.Inconclusive("open the consent page over plain HTTP and read its form", p.Describe(),
			"this check posts the consent form itself, and no approve/deny form was found in the page's HTML (a page built by script, or a login before the consent page)", "")
	}
	return p, params
}
