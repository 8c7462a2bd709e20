package mockauth0_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/cnpg-mcp/cnpg-mcp/mockauth0"
	"github.com/cnpg-mcp/cnpg-mcp/mockauth0/config"
	"github.com/cnpg-mcp/cnpg-mcp/mockauth0/control"
)

// The mock's endpoints are fuzzed in-process (Server.Handler). Auth0 answers bad input with a 4xx and
// an error body, never a server error: so must the mock, or third parties' tests would see failures
// that a real tenant never produces.

func fuzzMock(f *testing.F) (*mockauth0.Server, http.Handler) {
	cfg := mockauth0.DefaultConfig()
	cfg.Admin = config.AdminConfig{Enabled: true, Token: "fuzz-admin"}
	m, err := mockauth0.Start(context.Background(), cfg)
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { _ = m.Close() })
	return m, m.Handler()
}

func serveMock(h http.Handler, method, target, contentType, body string, header map[string]string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, "/", strings.NewReader(body))
	u, err := url.ParseRequestURI(target)
	if err != nil {
		u = &url.URL{Path: "/"}
	}
	req.URL = u
	req.RequestURI = u.RequestURI()
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	return w
}

// mgmtToken gets a Management API token for the setup application.
func mgmtToken(f *testing.F, m *mockauth0.Server, h http.Handler) string {
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {config.DefaultSetupClientID}, "client_secret": {config.DefaultSetupSecret},
		"audience": {m.ManagementAudience()}}
	w := serveMock(h, http.MethodPost, "/oauth/token", "application/x-www-form-urlencoded", form.Encode(), nil)
	var out struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &out); err != nil || out.AccessToken == "" {
		f.Fatalf("management token: %d %s", w.Code, w.Body.String())
	}
	return out.AccessToken
}

// FuzzMockTokenEndpoint: /oauth/token with any body, content type and Authorization header answers
// 200 with an access token or a 4xx with Auth0's error body — never a 5xx — and a client_credentials
// token only for the right secret.
func FuzzMockTokenEndpoint(f *testing.F) {
	m, h := fuzzMock(f)
	aud := m.ManagementAudience()
	form := "application/x-www-form-urlencoded"
	f.Add(form, "grant_type=client_credentials&client_id="+config.DefaultSetupClientID+"&client_secret="+config.DefaultSetupSecret+"&audience="+url.QueryEscape(aud), "")
	f.Add(form, "grant_type=client_credentials&client_id="+config.DefaultSetupClientID+"&client_secret=wrong&audience="+url.QueryEscape(aud), "")
	f.Add(form, "grant_type=authorization_code&code=x&client_id="+config.DefaultClientID+"&client_secret="+config.DefaultClientSecret+"&code_verifier=v", "")
	f.Add(form, "grant_type=refresh_token&refresh_token=v1.x&client_id="+config.DefaultClientID, "Basic Y25wZy1tY3AtcHJveHk6Y25wZy1tY3AtcHJveHktZGV2LXNlY3JldA==")
	f.Add("application/json", `{"grant_type":"client_credentials","client_id":"`+config.DefaultSetupClientID+`","client_secret":"`+config.DefaultSetupSecret+`","audience":"`+aud+`"}`, "")
	f.Add("application/json", `{"grant_type":["x"]}`, "")
	f.Add("text/plain", "%%%", "Basic !!!")
	f.Add(form, "grant_type=password&username=a&password=b", "")
	f.Fuzz(func(t *testing.T, contentType, body, auth string) {
		hdr := map[string]string{}
		if auth != "" && !strings.ContainsAny(auth, "\r\n\x00") {
			hdr["Authorization"] = auth
		}
		w := serveMock(h, http.MethodPost, "/oauth/token", contentType, body, hdr)
		if w.Code >= 500 {
			t.Fatalf("status %d for %q %q", w.Code, contentType, body)
		}
		var out map[string]any
		if err := json.Unmarshal(w.Body.Bytes(), &out); err != nil {
			t.Fatalf("status %d with a body that is not JSON: %q", w.Code, w.Body.String())
		}
		if w.Code == http.StatusOK {
			if out["access_token"] == nil {
				t.Fatalf("200 without access_token: %q", w.Body.String())
			}
			if strings.Contains(body, "client_credentials") && !strings.Contains(body, config.DefaultSetupSecret) && !strings.Contains(auth, "Basic ") {
				t.Fatalf("client_credentials token without the client's secret: %q", body)
			}
		} else if out["error"] == nil {
			t.Fatalf("status %d without an error: %q", w.Code, w.Body.String())
		}
	})
}

// FuzzMockAuthorize: /authorize never redirects anywhere but its own login/consent pages or a callback
// the named application registered (loopback on any port for the default application), and never
// answers with a 5xx. An unknown client or callback gets an error page.
func FuzzMockAuthorize(f *testing.F) {
	m, h := fuzzMock(f)
	q := url.Values{"response_type": {"code"}, "client_id": {config.DefaultClientID}, "redirect_uri": {"http://127.0.0.1:9999/auth/callback"},
		"state": {"s"}, "scope": {"openid offline_access"}, "audience": {config.DefaultAPIIdentifier}, "code_challenge": {"E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"},
		"code_challenge_method": {"S256"}}
	f.Add(q.Encode())
	f.Add(strings.Replace(q.Encode(), "127.0.0.1", "127.0.0.1.evil.example", 1))
	f.Add(strings.Replace(q.Encode(), "response_type=code", "response_type=token", 1))
	f.Add(q.Encode() + "&prompt=none")
	f.Add(strings.Replace(q.Encode(), "127.0.0.1", "127.0.0.1.evil.example", 1) + "&prompt=none")
	f.Add(strings.Replace(strings.Replace(q.Encode(), "127.0.0.1", "evil.example", 1), "response_type=code", "response_type=token", 1))
	f.Add(q.Encode() + "&response_mode=form_post&resource=https%3A%2F%2Fother")
	f.Add("client_id=unknown&redirect_uri=https%3A%2F%2Fevil.example%2F")
	f.Add(strings.Replace(q.Encode(), "%2Fauth%2Fcallback", "%2Fauth%2Fcallback%2F..%2F..%2Fevil", 1))
	f.Fuzz(func(t *testing.T, raw string) {
		w := serveMock(h, http.MethodGet, "/authorize?"+raw, "", "", nil)
		if w.Code >= 500 {
			t.Fatalf("status %d for %q", w.Code, raw)
		}
		loc := w.Header().Get("Location")
		if loc == "" {
			return
		}
		u, err := url.Parse(loc)
		if err != nil {
			t.Fatalf("bad Location %q", loc)
		}
		if u.Host == "" && (strings.HasPrefix(u.Path, "/u/login") || strings.HasPrefix(u.Path, "/u/consent") || strings.HasPrefix(u.Path, "/authorize/resume")) {
			return
		}
		host := u.Hostname()
		if u.Scheme != "http" || (host != "127.0.0.1" && host != "localhost") || u.Path != "/auth/callback" || u.User != nil {
			t.Fatalf("redirected to %q, not a registered callback (query %q)", loc, raw)
		}
		_ = m
	})
}

// FuzzMockRequest: any method, path, body and headers on every endpoint but the admin API (whose
// faults would make 5xx answers legitimate): never a 5xx. {mgmt} in the Authorization header is a
// valid Management API token with every scope, so the fuzzer reaches the Management API's handlers.
func FuzzMockRequest(f *testing.F) {
	m, h := fuzzMock(f)
	tok := mgmtToken(f, m, h)
	seeds := []struct{ method, path, ct, body, auth string }{
		{"GET", "/api/v2/clients", "", "", "Bearer {mgmt}"},
		{"POST", "/api/v2/clients", "application/json", `{"name":"x","app_type":"regular_web","callbacks":["https://a/cb"]}`, "Bearer {mgmt}"},
		{"PATCH", "/api/v2/clients/" + config.DefaultClientID, "application/json", `{"callbacks":["https://b/cb"],"refresh_token":{"rotation_type":"rotating"}}`, "Bearer {mgmt}"},
		{"POST", "/api/v2/resource-servers", "application/json", `{"identifier":"https://api2","scopes":[{"value":"a"}]}`, "Bearer {mgmt}"},
		{"POST", "/api/v2/client-grants", "application/json", `{"client_id":"x","audience":"https://api2","scope":["a"]}`, "Bearer {mgmt}"},
		{"PATCH", "/api/v2/tenants/settings", "application/json", `{"default_audience":"https://api2"}`, "Bearer {mgmt}"},
		{"POST", "/api/v2/users", "application/json", `{"email":"a@b.c","password":"p","connection":"Username-Password-Authentication"}`, "Bearer {mgmt}"},
		{"GET", "/api/v2/users?q=email%3A%22a%40b.c%22", "", "", "Bearer {mgmt}"},
		{"GET", "/userinfo", "", "", "Bearer {mgmt}"},
		{"POST", "/oauth/revoke", "application/x-www-form-urlencoded", "token=v1.x&client_id=" + config.DefaultClientID, ""},
		{"POST", "/oidc/register", "application/json", `{"client_name":"dcr","redirect_uris":["http://127.0.0.1/cb"]}`, ""},
		{"POST", "/u/login?state=x", "application/x-www-form-urlencoded", "state=x&username=dev%40example.com&password=dev-password&action=default", ""},
		{"POST", "/u/consent?state=x", "application/x-www-form-urlencoded", "state=x&action=accept", ""},
		{"GET", "/authorize/resume?state=x", "", "", ""},
		{"GET", "/v2/logout?returnTo=https%3A%2F%2Fevil", "", "", ""},
		{"GET", "/.well-known/jwks.json", "", "", ""},
	}
	for _, s := range seeds {
		f.Add(s.method, s.path, s.ct, s.body, s.auth)
	}
	f.Fuzz(func(t *testing.T, method, path, contentType, body, auth string) {
		if !strings.HasPrefix(path, "/") || strings.HasPrefix(path, control.AdminPrefix) || strings.Contains(path, "mock-admin") {
			return
		}
		switch method {
		case "GET", "POST", "PATCH", "DELETE", "PUT":
		default:
			return
		}
		hdr := map[string]string{}
		if a := strings.ReplaceAll(auth, "{mgmt}", tok); a != "" && !strings.ContainsAny(a, "\r\n\x00") {
			hdr["Authorization"] = a
		}
		if strings.ContainsAny(contentType, "\r\n\x00") {
			contentType = ""
		}
		w := serveMock(h, method, path, contentType, body, hdr)
		if w.Code >= 500 {
			t.Fatalf("%s %s: status %d (%q)", method, path, w.Code, w.Body.String())
		}
	})
}

// FuzzMockAdminFaults: the admin API accepts only valid faults (Fault.Validate) and never answers
// with a 5xx; every fault it lists validates.
func FuzzMockAdminFaults(f *testing.F) {
	m, h := fuzzMock(f)
	for _, s := range []string{`{"path":"/oauth/token","status":503,"count":2}`, `{"path":"/oauth/token","latency_ms":10}`, `{"path":"/oauth/token","drop":true}`,
		`{"path":"/mock-admin/v1/faults","status":500}`, `{"path":"x","status":503}`, `{"path":"/a","status":99}`, `{"path":"/a","latency_ms":-1}`, `{}`, `[]`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		w := serveMock(h, http.MethodPost, control.AdminPrefix+"faults", "application/json", body, map[string]string{"Authorization": "Bearer fuzz-admin"})
		if w.Code >= 500 {
			t.Fatalf("status %d for %q", w.Code, body)
		}
		lw := serveMock(h, http.MethodGet, control.AdminPrefix+"faults", "", "", map[string]string{"Authorization": "Bearer fuzz-admin"})
		var out struct {
			Faults []control.Fault `json:"faults"`
		}
		if err := json.Unmarshal(lw.Body.Bytes(), &out); err != nil {
			t.Fatal(err)
		}
		for _, fl := range out.Faults {
			if err := fl.Validate(); err != nil {
				t.Fatalf("listed an invalid fault %+v (from %q): %v", fl, body, err)
			}
		}
		m.ClearFaults()
	})
}
