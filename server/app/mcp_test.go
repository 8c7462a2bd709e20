package app

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/cnpg-mcp/cnpg-mcp/server/config"
)

const initialize = `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"e2e","version":"1"}}}`

func (s *stack) mcp(in *instance, token string) *http.Response {
	s.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, in.base+"/mcp", strings.NewReader(initialize))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, _ := s.do(nil, req)
	return res
}

// The MCP endpoint behind the bearer check with our verifier: RS-01 (401 + absolute resource_metadata
// of our PRM), RS-11 (a fresh token works at once), RS-05 (an Auth0 token is refused), REV-04 (a
// revoked token is refused at the resource server), and /healthz, /readyz, /metrics are served.
func TestMCPEndpointWithOurTokens(t *testing.T) {
	s := newStack(t, nil)
	in := s.start(nil)
	res := s.mcp(in, "")
	if res.StatusCode != 401 || !strings.Contains(res.Header.Get("WWW-Authenticate"), `resource_metadata="`+in.base+`/.well-known/oauth-protected-resource/mcp"`) {
		t.Fatalf("no token: %d %q", res.StatusCode, res.Header.Get("WWW-Authenticate"))
	}
	id := s.register(in)
	loc := s.login(in, in, id, nil)
	m := s.exchange(in, id, loc.Query().Get("code"))
	at := m["access_token"].(string)
	if res := s.mcp(in, at); res.StatusCode != 200 {
		t.Fatalf("RS-11: fresh token at /mcp: %d", res.StatusCode)
	}
	g, _ := in.Store.GetGrant(t.Context(), claimsOf(t, at)["sid"].(string))
	if res := s.mcp(in, g.Upstream.AccessToken); res.StatusCode != 401 {
		t.Fatalf("RS-05: Auth0 token accepted: %d", res.StatusCode)
	}
	s.post(nil, in.base+"/revoke", url.Values{"token": {at}, "client_id": {id}})
	if res := s.mcp(in, at); res.StatusCode != 401 {
		t.Fatalf("REV-04: revoked token accepted: %d", res.StatusCode)
	}
	for path, want := range map[string]int{"/healthz": 200, "/readyz": 503, "/metrics": 200} {
		if res, _ := s.get(nil, in.base+path); res.StatusCode != want {
			t.Errorf("%s: %d, want %d", path, res.StatusCode, want)
		}
	}
	if _, body := s.get(nil, in.base+"/metrics"); !strings.Contains(body, `route="token"`) {
		t.Error("OAuth endpoints not in the metrics")
	}
}

// The scope strategy end to end (SC-01, docs/mcp-endpoint.md "Scopes"): the first 401 names every
// scope the served tools need and the protected-resource metadata lists the same; a read-only
// server asks for, advertises and grants mcp:read only (its consent page never offers mcp:write).
func TestScopeStrategy(t *testing.T) {
	s := newStack(t, nil)
	for _, c := range []struct {
		readOnly bool
		want     string
	}{{false, "mcp:read mcp:write"}, {true, "mcp:read"}} {
		in := s.start(func(cfg *config.Config) { cfg.MCP.ReadOnly = c.readOnly })
		res := s.mcp(in, "")
		if res.StatusCode != 401 || !strings.Contains(res.Header.Get("WWW-Authenticate"), `scope="`+c.want+`"`) {
			t.Fatalf("read-only %v: 401 challenge %q, want scope %q", c.readOnly, res.Header.Get("WWW-Authenticate"), c.want)
		}
		for _, doc := range []string{"/.well-known/oauth-protected-resource/mcp", "/.well-known/oauth-authorization-server"} {
			_, body := s.get(nil, in.base+doc)
			var m struct {
				Scopes []string `json:"scopes_supported"`
			}
			if err := json.Unmarshal([]byte(body), &m); err != nil || strings.Join(m.Scopes, " ") != c.want {
				t.Fatalf("read-only %v: %s scopes_supported %v, want %q (%v)", c.readOnly, doc, m.Scopes, c.want, err)
			}
		}
		id := s.register(in)
		loc := s.login(in, in, id, url.Values{"scope": {"mcp:read mcp:write"}})
		if got := s.exchange(in, id, loc.Query().Get("code"))["scope"]; got != c.want {
			t.Fatalf("read-only %v: granted %v, want %q", c.readOnly, got, c.want)
		}
		in.stop()
	}
}
