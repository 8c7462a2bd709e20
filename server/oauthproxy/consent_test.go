package oauthproxy

import (
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
)

// consentWith submits the consent form of a fresh authorization with the given extra form fields
// and returns the token response's scope (or the client redirect's error when there is no code).
func consentWith(t *testing.T, h *harness, scope string, fields url.Values) (granted, errCode string) {
	t.Helper()
	id := h.register()
	q := authorizeQuery(id, "http://127.0.0.1:5000/cb")
	if scope != "" {
		q.Set("scope", scope)
	}
	b := h.browser()
	f, _ := h.consentPage(b, q)
	v := url.Values{"txn": {f.txn}, "csrf_token": {f.csrf}, "action": {"approve"}}
	for k, x := range fields {
		v[k] = x
	}
	r := h.postForm(b, "/consent", v)
	if r.StatusCode != http.StatusSeeOther {
		t.Fatalf("approve: %d %s", r.StatusCode, r.body)
	}
	loc := r.location(t)
	if loc.Host != "idp.test" {
		return "", loc.Query().Get("error")
	}
	cb := h.callback(b, loc.Query().Get("state"), nil)
	code := cb.location(t).Query().Get("code")
	h.mu.Lock()
	if h.codeVerifiers == nil {
		h.codeVerifiers = map[string]string{}
	}
	h.codeVerifiers[code] = verifierFor(q.Get("code_challenge"))
	h.mu.Unlock()
	tok := h.exchange(id, code, nil)
	if tok.StatusCode != http.StatusOK {
		t.Fatalf("token: %d %s", tok.StatusCode, tok.body)
	}
	return tok.json(t)["scope"].(string), ""
}

// SC-06 from the authorization server's side: the user may grant less than the client asked for.
// The base scope is always granted, optional scopes only while ticked, nothing beyond the request
// (a forged ticked value is ignored), and the token response names what was granted.
func TestConsentGrantLess(t *testing.T) {
	h := newHarness(t, func(o *Options) { o.BaseScopes = []string{"mcp:read"} })
	for _, c := range []struct {
		name, scope string
		fields      url.Values
		want, err   string
	}{
		{"everything ticked", "mcp:read mcp:write", url.Values{"scope_choice": {"1"}, "scope": {"mcp:write"}}, "mcp:read mcp:write", ""},
		{"write unticked", "mcp:read mcp:write", url.Values{"scope_choice": {"1"}}, "mcp:read", ""},
		{"base scope cannot be unticked", "mcp:read mcp:write", url.Values{"scope_choice": {"1"}, "scope": {"mcp:write"}}, "mcp:read mcp:write", ""},
		{"ticking a scope not requested does not widen", "mcp:read", url.Values{"scope_choice": {"1"}, "scope": {"mcp:write", "admin"}}, "mcp:read", ""},
		{"a form without the choice grants the request", "mcp:read mcp:write", nil, "mcp:read mcp:write", ""},
		{"only an optional scope, unticked: denied", "mcp:write mcp:admin", url.Values{"scope_choice": {"1"}}, "", "access_denied"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if c.scope == "mcp:write mcp:admin" {
				h := newHarness(t, func(o *Options) {
					o.BaseScopes = []string{"mcp:read"}
					o.ScopesSupported = []string{"mcp:read", "mcp:write", "mcp:admin"}
				})
				if got, err := consentWith(t, h, c.scope, c.fields); got != c.want || err != c.err {
					t.Fatalf("granted %q, error %q; want %q, %q", got, err, c.want, c.err)
				}
				return
			}
			if got, err := consentWith(t, h, c.scope, c.fields); got != c.want || err != c.err {
				t.Fatalf("granted %q, error %q; want %q, %q", got, err, c.want, c.err)
			}
		})
	}
}

// The consent page says what each scope allows in plain words, with the scope's name beside it; the
// base scope has no checkbox, an optional one a ticked checkbox with a label; a single requested
// scope has no choice at all.
func TestConsentScopeDescriptions(t *testing.T) {
	h := newHarness(t, func(o *Options) {
		o.BaseScopes = []string{"mcp:read"}
		o.ScopeDescriptions = map[string]string{"mcp:read": "See your <clusters>", "mcp:write": "Create, change and delete them"}
	})
	id := h.register()
	q := authorizeQuery(id, "http://127.0.0.1:5000/cb")
	q.Set("scope", "mcp:read mcp:write")
	_, page := h.consentPage(h.browser(), q)
	for _, want := range []string{"See your &lt;clusters&gt;", "<code>mcp:read</code>", "always included",
		`<input type="checkbox" name="scope" value="mcp:write" id="scope-1" checked`, `<label for="scope-1">`,
		"Create, change and delete them", `name="scope_choice" value="1"`} {
		if !strings.Contains(page.body, want) {
			t.Errorf("consent page lacks %q", want)
		}
	}
	if strings.Contains(page.body, `value="mcp:read" id=`) {
		t.Error("the base scope has a checkbox")
	}
	q = authorizeQuery(id, "http://127.0.0.1:5000/cb")
	q.Set("scope", "mcp:write")
	_, page = h.consentPage(h.browser(), q)
	if strings.Contains(page.body, `type="checkbox"`) || strings.Contains(page.body, "scope_choice") || !strings.Contains(page.body, "Create, change and delete them") {
		t.Errorf("a single requested scope must be shown without a choice:\n%s", page.body)
	}
}

var styleBlockRe = regexp.MustCompile(`(?s)<style>(.*?)</style>`)

// Every page carries exactly one inline stylesheet, allowed by its hash: no 'unsafe-inline', no
// script, no style attributes (the hash would not allow them), nothing loaded from elsewhere.
func TestPageCSPHash(t *testing.T) {
	h := newHarness(t)
	id := h.register()
	_, consent := h.consentPage(h.browser(), authorizeQuery(id, "http://127.0.0.1:5000/cb"))
	expired := h.get(h.browser(), h.issuer+"/consent?txn=nope")
	for name, r := range map[string]resp{"consent": consent, "error": expired} {
		csp := r.Header.Get("Content-Security-Policy")
		m := styleBlockRe.FindAllStringSubmatch(r.body, -1)
		if len(m) != 1 {
			t.Fatalf("%s: %d style blocks", name, len(m))
		}
		sum := sha256.Sum256([]byte(m[0][1]))
		if want := "style-src 'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"; !strings.Contains(csp, want) {
			t.Errorf("%s: CSP %q does not allow the page's stylesheet by hash (%s)", name, csp, want)
		}
		for _, bad := range []string{"unsafe-inline", "script-src"} {
			if strings.Contains(csp, bad) {
				t.Errorf("%s: CSP has %s: %q", name, bad, csp)
			}
		}
		for _, bad := range []string{"<script", " style=", "<link", "src=\"http", "url("} {
			if strings.Contains(r.body, bad) {
				t.Errorf("%s: page contains %q", name, bad)
			}
		}
	}
}
