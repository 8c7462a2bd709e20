package app

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cnpg-mcp/cnpg-mcp/internal/kubetest"
	"github.com/cnpg-mcp/cnpg-mcp/server/config"
)

// kubeconfigFor writes a kubeconfig for the test API server's admin identity.
func kubeconfigFor(t *testing.T, env *kubetest.Env, dir string) string {
	t.Helper()
	p := filepath.Join(dir, "kubeconfig")
	if err := env.WriteKubeconfig(p); err != nil {
		t.Fatal(err)
	}
	return p
}

// startKube starts kube-apiserver and etcd for the test (skipped without the binaries, unless
// CNPG_MCP_REQUIRE_ALL=1).
func startKube(t *testing.T) *kubetest.Env {
	t.Helper()
	if !kubetest.Available() {
		if os.Getenv("CNPG_MCP_REQUIRE_ALL") == "1" {
			t.Fatal(kubetest.ErrNoBinaries)
		}
		t.Skip(kubetest.ErrNoBinaries.Error())
	}
	env, err := kubetest.Start(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(env.Stop)
	return env
}

// rpc posts one JSON-RPC message to /mcp with our token and returns the status and body.
func (s *stack) rpc(in *instance, token, session, body string) (int, http.Header, string) {
	s.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, in.base+"/mcp", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("MCP-Protocol-Version", "2025-06-18")
	if session != "" {
		req.Header.Set("Mcp-Session-Id", session)
	}
	res, b := s.do(nil, req)
	return res.StatusCode, res.Header, b
}

// The whole product path: OAuth flow against the mock Auth0 → our JWT → the bearer check → a CNPG
// tool against a real kube-apiserver. A token narrowed to mcp:read (RT-05 at refresh) reads, and a
// mutating tool call with it gets HTTP 403 insufficient_scope (SC-02) from the bearer check, which
// reads the scopes from our token.
func TestE2E_ToolCallWithOurToken(t *testing.T) {
	env := startKube(t)
	s := newStack(t, nil)
	kubeconfig := kubeconfigFor(t, env, s.dir)
	in := s.start(func(c *config.Config) { c.Kubernetes.Kubeconfig = kubeconfig })
	id := s.register(in)
	loc := s.login(in, in, id, nil)
	m := s.exchange(in, id, loc.Query().Get("code"))

	st, hdr, body := s.rpc(in, m["access_token"].(string), "", initialize)
	if st != 200 {
		t.Fatalf("initialize: %d %s", st, body)
	}
	session := hdr.Get("Mcp-Session-Id")
	st, _, body = s.rpc(in, m["access_token"].(string), session, `{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"list_postgres_clusters","arguments":{"namespace":"default"}}}`)
	if st != 200 || !strings.Contains(body, `"result"`) || strings.Contains(body, `"isError":true`) {
		t.Fatalf("tools/call list_postgres_clusters: %d %s", st, body)
	}
	if res, _ := s.get(nil, in.base+"/readyz"); res.StatusCode != 200 {
		t.Fatalf("/readyz with a reachable API server: %d", res.StatusCode)
	}

	st2, narrowed := s.token(in, map[string][]string{"grant_type": {"refresh_token"}, "refresh_token": {m["refresh_token"].(string)}, "client_id": {id}, "scope": {"mcp:read"}})
	if st2 != 200 {
		t.Fatalf("narrowing refresh: %d %v", st2, narrowed)
	}
	ro := narrowed["access_token"].(string)
	st, hdr, body = s.rpc(in, ro, session, `{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"create_postgres_cluster","arguments":{"name":"pg1","namespace":"default","dry_run":true}}}`)
	if st != 403 || !strings.Contains(hdr.Get("WWW-Authenticate"), `error="insufficient_scope"`) || !strings.Contains(hdr.Get("WWW-Authenticate"), "mcp:write") {
		t.Fatalf("mutating call with a read-only token: %d %q %s", st, hdr.Get("WWW-Authenticate"), body)
	}
	if !strings.Contains(s.logs.String(), `"tool":"list_postgres_clusters"`) || !strings.Contains(s.logs.String(), `"client_id":"`+id+`"`) {
		t.Fatal("no audit line with our token's client_id")
	}
}
