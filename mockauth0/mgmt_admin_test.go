package mockauth0_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/cnpg-mcp/cnpg-mcp/mockauth0"
	"github.com/cnpg-mcp/cnpg-mcp/mockauth0/adminclient"
	"github.com/cnpg-mcp/cnpg-mcp/mockauth0/config"
)

func (e *env) mgmtToken(scope string) string {
	e.t.Helper()
	r := e.token(url.Values{"grant_type": {"client_credentials"}, "client_id": {config.DefaultSetupClientID},
		"client_secret": {config.DefaultSetupSecret}, "audience": {e.srv.ManagementAudience()}, "scope": {scope}})
	if r.status != 200 {
		e.t.Fatalf("mgmt token: %v", r.raw)
	}
	return r.str("access_token")
}

func (e *env) mgmt(tok, method, path, body string) (int, map[string]any, []any) {
	e.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, _ := http.NewRequest(method, e.iss+"api/v2/"+path, rd)
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	b := body2(e.t, resp)
	var obj map[string]any
	var list []any
	if strings.HasPrefix(strings.TrimSpace(b), "[") {
		_ = json.Unmarshal([]byte(b), &list)
	} else {
		_ = json.Unmarshal([]byte(b), &obj)
	}
	return resp.StatusCode, obj, list
}

func body2(t *testing.T, resp *http.Response) string { return body(t, resp) }

func TestManagementAPI(t *testing.T) {
	e := start(t, nil)
	all := e.mgmtToken(strings.Join(config.ManagementScopes(), " "))

	t.Run("auth", func(t *testing.T) {
		if s, m, _ := e.mgmt("", "GET", "clients", ""); s != 401 || m["statusCode"].(float64) != 401 || m["message"] == "" {
			t.Fatalf("no token: %d %v", s, m)
		}
		if s, m, _ := e.mgmt(e.mgmtToken("read:clients"), "POST", "clients", `{"name":"x"}`); s != 403 || m["errorCode"] != "insufficient_scope" {
			t.Fatalf("insufficient scope: %d %v", s, m)
		}
		p := newPKCE()
		userTok := e.exchange(e.code(e.authParams(p)), p.verifier).str("access_token")
		if s, _, _ := e.mgmt(userTok, "GET", "clients", ""); s != 401 {
			t.Fatalf("API token accepted by the Management API: %d", s)
		}
	})

	t.Run("resource servers", func(t *testing.T) {
		body := `{"name":"mcp","identifier":"https://mcp.example/api","signing_alg":"RS256","allow_offline_access":true,"token_lifetime":3600,"scopes":[{"value":"mcp:read","description":"r"}]}`
		s, api, _ := e.mgmt(all, "POST", "resource-servers", body)
		if s != 201 || api["id"] == "" || api["identifier"] != "https://mcp.example/api" {
			t.Fatalf("create: %d %v", s, api)
		}
		if s, m, _ := e.mgmt(all, "POST", "resource-servers", body); s != 409 || m["errorCode"] != "resource_server_conflict" {
			t.Fatalf("duplicate: %d %v", s, m)
		}
		if s, m, _ := e.mgmt(all, "PATCH", "resource-servers/"+api["id"].(string), `{"token_lifetime":7200}`); s != 200 || m["token_lifetime"].(float64) != 7200 {
			t.Fatalf("patch: %d %v", s, m)
		}
		if s, _, _ := e.mgmt(all, "PATCH", "resource-servers/"+api["id"].(string), `{"identifier":"x"}`); s != 400 {
			t.Fatalf("patch read-only identifier: %d", s)
		}
		if s, m, _ := e.mgmt(all, "GET", "resource-servers/"+url.PathEscape("https://mcp.example/api"), ""); s != 200 || m["id"] != api["id"] {
			t.Fatalf("get by identifier: %d %v", s, m)
		}
		if s, _, _ := e.mgmt(all, "POST", "resource-servers", `{"name":"x","identifier":"y","bogus":1}`); s != 400 {
			t.Fatalf("unknown field: %d", s)
		}
		if s, m, _ := e.mgmt(all, "GET", "resource-servers?include_totals=true&per_page=1", ""); s != 200 || m["total"].(float64) != 3 || len(m["resource_servers"].([]any)) != 1 {
			t.Fatalf("list with totals: %d %v", s, m)
		}
	})

	t.Run("clients and grants", func(t *testing.T) {
		s, c, _ := e.mgmt(all, "POST", "clients", `{"name":"server","app_type":"regular_web","callbacks":["https://mcp.example/auth/callback"],"grant_types":["authorization_code","refresh_token"],"token_endpoint_auth_method":"client_secret_post","oidc_conformant":true,"jwt_configuration":{"alg":"RS256"}}`)
		if s != 201 || c["client_id"] == "" || c["client_secret"] == "" {
			t.Fatalf("create client: %d %v", s, c)
		}
		id := c["client_id"].(string)
		if s, m, _ := e.mgmt(all, "PATCH", "clients/"+id, `{"callbacks":["https://mcp.example/cb2"]}`); s != 200 || m["callbacks"].([]any)[0] != "https://mcp.example/cb2" || m["name"] != "server" {
			t.Fatalf("patch client: %d %v", s, m)
		}
		if s, _, _ := e.mgmt(all, "PATCH", "clients/"+id, `{"app_type":"nonsense"}`); s != 400 {
			t.Fatalf("invalid patch: %d", s)
		}
		if s, _, list := e.mgmt(all, "GET", "clients?app_type=regular_web", ""); s != 200 || len(list) != 2 {
			t.Fatalf("list clients: %d %d", s, len(list))
		}
		g := `{"client_id":"` + id + `","audience":"https://cnpg-mcp.example/api","scope":["mcp:read"]}`
		s, grant, _ := e.mgmt(all, "POST", "client-grants", g)
		if s != 201 || grant["id"] == "" {
			t.Fatalf("create grant: %d %v", s, grant)
		}
		if s, _, _ := e.mgmt(all, "POST", "client-grants", g); s != 409 {
			t.Fatalf("duplicate grant: %d", s)
		}
		if s, _, list := e.mgmt(all, "GET", "client-grants?client_id="+id, ""); s != 200 || len(list) != 1 {
			t.Fatalf("list grants: %d %v", s, list)
		}
		if s, _, _ := e.mgmt(all, "DELETE", "clients/"+id, ""); s != 204 {
			t.Fatalf("delete: %d", s)
		}
		if s, m, _ := e.mgmt(all, "GET", "clients/"+id, ""); s != 404 || m["errorCode"] != "inexistent_client" {
			t.Fatalf("get deleted: %d %v", s, m)
		}
	})

	t.Run("settings connections users", func(t *testing.T) {
		if s, m, _ := e.mgmt(all, "PATCH", "tenants/settings", `{"default_audience":"https://cnpg-mcp.example/api","flags":{"enable_dynamic_client_registration":false}}`); s != 200 || m["default_audience"] != "https://cnpg-mcp.example/api" {
			t.Fatalf("settings: %d %v", s, m)
		}
		if resp, _ := http.Post(e.iss+"oidc/register", "application/json", strings.NewReader(`{"redirect_uris":["`+redirect+`"]}`)); resp.StatusCode != 403 {
			t.Fatalf("DCR after disabling: %d", resp.StatusCode)
		}
		s, _, conns := e.mgmt(all, "GET", "connections", "")
		if s != 200 || len(conns) != 1 {
			t.Fatalf("connections: %d %v", s, conns)
		}
		cid := conns[0].(map[string]any)["id"].(string)
		if s, m, _ := e.mgmt(all, "PATCH", "connections/"+cid, `{"enabled_clients":["a","b"]}`); s != 200 || len(m["enabled_clients"].([]any)) != 2 {
			t.Fatalf("patch connection: %d %v", s, m)
		}
		s, u, _ := e.mgmt(all, "POST", "users", `{"email":"second@example.com","password":"pw-2","connection":"Username-Password-Authentication"}`)
		if s != 201 || !strings.HasPrefix(u["user_id"].(string), "auth0|") || u["password"] != nil {
			t.Fatalf("create user: %d %v", s, u)
		}
		if s, _, _ := e.mgmt(all, "POST", "users", `{"email":"second@example.com","password":"x","connection":"c"}`); s != 409 {
			t.Fatalf("duplicate user: %d", s)
		}
		// The new user can log in.
		p := newPKCE()
		got := e.login(browser(t), e.authParams(p), "second@example.com", "pw-2")
		if got.Query().Get("code") == "" {
			t.Fatalf("new user login: %s", got)
		}
	})
}

func TestAdminAPI(t *testing.T) {
	e := start(t, func(c *mockauth0.Config) { c.Admin.Token = "adm" })
	ctx := context.Background()
	cl := adminclient.New(e.iss, "adm", nil)

	if _, err := adminclient.New(e.iss, "wrong", nil).Requests(ctx, "", 0); err == nil {
		t.Fatal("admin API accepted a wrong token")
	}
	if err := cl.SetFault(ctx, adminclient.Fault{Path: "/oauth/token", Status: 503, Count: 1}); err != nil {
		t.Fatal(err)
	}
	if err := cl.SetFault(ctx, adminclient.Fault{Path: "/oauth/token"}); err == nil {
		t.Fatal("empty fault accepted")
	}
	p := newPKCE()
	code := e.code(e.authParams(p))
	wantError(t, e.exchange(code, p.verifier), 503, "server_error")
	// The fault was used once: the next request goes through (the code was not consumed by the fault).
	r := e.exchange(code, p.verifier)
	if r.status != 200 {
		t.Fatalf("after the fault: %v", r.raw)
	}
	reqs, err := cl.Requests(ctx, "/oauth/token", 0)
	if err != nil || len(reqs) != 2 || reqs[1].Form.Get("code_verifier") != p.verifier || reqs[0].Status != 503 {
		t.Fatalf("recorded token requests: %v %+v", err, reqs)
	}
	authz, _ := cl.Requests(ctx, "/authorize", 0)
	if len(authz) != 1 || authz[0].Query.Get("code_challenge") != p.challenge {
		t.Fatalf("recorded authorize: %+v", authz)
	}

	if err := cl.SetFault(ctx, adminclient.Fault{Path: "/userinfo", Drop: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := http.Get(e.iss + "userinfo"); err == nil {
		t.Fatal("dropped connection answered")
	}
	if err := cl.SetFault(ctx, adminclient.Fault{Path: "/.well-known/jwks.json", Latency: 150 * time.Millisecond, Count: 1}); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if resp, err := http.Get(e.iss + ".well-known/jwks.json"); err != nil || resp.StatusCode != 200 {
		t.Fatalf("latency fault: %v", err)
	}
	if time.Since(start) < 150*time.Millisecond {
		t.Error("latency fault did not delay the response")
	}
	if err := cl.ClearFaults(ctx); err != nil {
		t.Fatal(err)
	}

	before, _ := cl.Now(ctx)
	if err := cl.Advance(ctx, 2*time.Hour); err != nil {
		t.Fatal(err)
	}
	after, _ := cl.Now(ctx)
	if after.Sub(before) < 2*time.Hour {
		t.Fatalf("clock moved %s", after.Sub(before))
	}
	kid, err := cl.RotateSigningKey(ctx)
	if err != nil || kid == "" {
		t.Fatal(err)
	}
	at := e.exchange(e.code(e.authParams(p)), p.verifier).str("access_token")
	if hdr, _ := e.verifyJWS(at); hdr.KeyID != kid {
		t.Fatalf("new token signed with %s, want %s", hdr.KeyID, kid)
	}
	if len(e.srv.SigningKeyIDs()) != 2 {
		t.Fatal("previous key not kept in the JWKS")
	}
	n, err := cl.RevokeUserGrants(ctx, config.DefaultUserSub)
	if err != nil || n != 2 {
		t.Fatalf("revoke grants: %d %v", n, err)
	}
	if err := cl.ResetRequests(ctx); err != nil {
		t.Fatal(err)
	}
	if reqs, _ := cl.Requests(ctx, "", 0); len(reqs) != 0 {
		t.Fatalf("requests after reset: %d", len(reqs))
	}
}

func TestAdminAPIOffByDefault(t *testing.T) {
	cfg := mockauth0.DefaultConfig()
	srv, err := mockauth0.Start(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	_, err = adminclient.New(srv.Issuer(), "", nil).Requests(context.Background(), "", 0)
	if err == nil || !strings.Contains(err.Error(), "--admin") {
		t.Fatalf("admin API reachable without --admin: %v", err)
	}
}

func TestStartRejectsInvalidConfig(t *testing.T) {
	cfg := mockauth0.DefaultConfig()
	cfg.Issuer = "https://tenant.example" // no trailing slash
	cfg.Clients[0].TokenEndpointAuthMethod = "private_key_jwt"
	_, err := mockauth0.Start(context.Background(), cfg)
	var fe *config.FieldError
	if !errors.As(err, &fe) || !strings.Contains(err.Error(), "issuer") || !strings.Contains(err.Error(), "clients[0].token_endpoint_auth_method") {
		t.Fatalf("want field errors for issuer and clients[0], got %v", err)
	}
}
