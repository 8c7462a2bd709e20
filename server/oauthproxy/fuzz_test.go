package oauthproxy

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

// FuzzRegister: any body gets 201 or 400, never a 5xx or a panic, and a 201 only with redirect URIs
// that pass the registration rules.
func FuzzRegister(f *testing.F) {
	h := newHarness(f)
	for _, s := range []string{`{"redirect_uris":["http://127.0.0.1/cb"]}`, `{"redirect_uris":["javascript:x"]}`, `{"redirect_uris":["https://a/b#c"],"application_type":"web"}`,
		`{"redirect_uris":[1]}`, `[]`, `{"grant_types":["refresh_token"]}`, `{"redirect_uris":["cursor://x/y"],"scope":"claudeai"}`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		req := httptest.NewRequest(http.MethodPost, "/register", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		w := httptest.NewRecorder()
		h.proxy.serveRegister(w, req)
		switch w.Code {
		case 201:
			c, err := h.store.GetClient(t.Context(), jsonField(t, w.Body.String(), "client_id"))
			if err != nil {
				t.Fatal(err)
			}
			for _, u := range c.RedirectURIs {
				if err := validateRedirectURI(u, c.ApplicationType); err != nil {
					t.Fatalf("registered invalid redirect %q: %v", u, err)
				}
			}
		case 400:
		default:
			t.Fatalf("status %d for %q", w.Code, body)
		}
	})
}

func jsonField(t *testing.T, body, k string) string {
	r := resp{body: body}
	v, _ := r.json(t)[k].(string)
	return v
}

// FuzzAuthorizeParams: any query gets a page (4xx), our consent redirect, or a redirect to the
// registered URI with iss — never a 5xx and never a redirect anywhere else.
func FuzzAuthorizeParams(f *testing.F) {
	h := newHarness(f)
	id := h.register("http://127.0.0.1:5000/cb", "https://c.example/cb")
	f.Add(authorizeQuery(id, "http://127.0.0.1:5000/cb").Encode())
	f.Add(authorizeQuery(id, "http://127.0.0.1:9/cb").Encode() + "&scope=x&scope=y")
	f.Add("client_id=" + id + "&redirect_uri=https%3A%2F%2Fc.example%2Fcb&response_type=token")
	f.Add("client_id=" + id + "&redirect_uri=http%3A%2F%2F127.0.0.1%40evil%2Fcb")
	f.Fuzz(func(t *testing.T, raw string) {
		req := httptest.NewRequest(http.MethodGet, "/authorize", nil)
		req.URL.RawQuery = raw
		w := httptest.NewRecorder()
		h.proxy.serveAuthorize(w, req)
		if w.Code >= 500 {
			t.Fatalf("status %d for %q", w.Code, raw)
		}
		loc := w.Header().Get("Location")
		if loc == "" {
			return
		}
		if strings.HasPrefix(loc, h.issuer+"/consent?") {
			return
		}
		u, err := url.Parse(loc)
		if err != nil || u.Query().Get("iss") != h.issuer || u.Query().Get("error") == "" {
			t.Fatalf("redirect without iss/error: %q", loc)
		}
		if !(u.Scheme == "http" && u.Hostname() == "127.0.0.1" && strings.HasPrefix(u.Path, "/cb")) {
			t.Fatalf("redirected to an unregistered place: %q", loc)
		}
	})
}

// FuzzTokenParams: any form body gets a JSON error with no-store (no valid code exists), never a 5xx.
func FuzzTokenParams(f *testing.F) {
	h := newHarness(f)
	id := h.register()
	f.Add("grant_type=authorization_code&code=x&code_verifier=" + testVerifier + "&client_id=" + id)
	f.Add("grant_type=refresh_token&refresh_token=x&client_id=" + id + "&scope=mcp:read")
	f.Add("grant_type=password&username=a&password=b")
	f.Add("grant_type=authorization_code&grant_type=refresh_token")
	f.Fuzz(func(t *testing.T, body string) {
		req := httptest.NewRequest(http.MethodPost, "/token", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		w := httptest.NewRecorder()
		h.proxy.serveToken(w, req)
		if w.Code != 400 && w.Code != 401 {
			t.Fatalf("status %d for %q", w.Code, body)
		}
		if w.Header().Get("Cache-Control") != "no-store" || !strings.Contains(w.Body.String(), `"error"`) {
			t.Fatalf("bad error response %q", w.Body.String())
		}
	})
}

// FuzzRedirectMatch: a match is either the exact string or a loopback port variant.
func FuzzRedirectMatch(f *testing.F) {
	f.Add("http://127.0.0.1:5000/cb", "http://127.0.0.1:6000/cb")
	f.Add("https://c.example/cb", "https://c.example/cb/")
	f.Add("http://[::1]/cb", "http://[::1]:80/cb")
	f.Fuzz(func(t *testing.T, reg, got string) {
		m, ok := matchRedirectURI([]string{reg}, got)
		if !ok {
			return
		}
		if m != got || strings.Contains(got, "#") {
			t.Fatalf("match returned %q for %q", m, got)
		}
		if reg == got {
			return
		}
		u, err := url.Parse(got)
		if err != nil || u.User != nil || (u.Hostname() != "localhost" && !strings.HasPrefix(u.Hostname(), "127.") && u.Hostname() != "::1") {
			t.Fatalf("non-loopback variant accepted: %q vs %q", reg, got)
		}
	})
}
