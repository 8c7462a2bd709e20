package tools_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	cnpgv1 "github.com/cloudnative-pg/api/pkg/api/v1"
	"github.com/mark3labs/mcp-go/mcp"
	"k8s.io/client-go/rest"

	"github.com/cnpg-mcp/cnpg-mcp/server/tools"
	"github.com/cnpg-mcp/cnpg-mcp/server/tools/kube"
)

// Destructive tools ask through MCP elicitation when the client supports it (2026-07-28:
// input_required + retry; mcp-go's client answers it with its handler).
func TestElicitationConfirm(t *testing.T) {
	accept := &elicitor{action: mcp.ElicitationResponseActionAccept, confirm: true}
	h := newHarness(t, hopt{elicit: accept})
	h.cluster("pg", 1, nil)
	h.ok("create_pooler", map[string]any{"cluster_name": "pg", "name": "p1"})
	h.ok("create_pooler", map[string]any{"cluster_name": "pg", "name": "p2"})
	h.ok("delete_pooler", map[string]any{"name": "p1"})
	if h.exists(&cnpgv1.Pooler{}, "p1") {
		t.Fatal("accepted elicitation did not delete")
	}
	if len(accept.messages) != 1 || !strings.Contains(accept.messages[0], "delete pooler") {
		t.Fatalf("elicitation messages: %q", accept.messages)
	}
	for _, e := range []*elicitor{
		{action: mcp.ElicitationResponseActionDecline},
		{action: mcp.ElicitationResponseActionCancel},
		{action: mcp.ElicitationResponseActionAccept, confirm: false},
	} {
		h2 := newHarness(t, hopt{elicit: e, noNamespace: true})
		h2.ns = h.ns
		h2.c = h2.connect(hopt{elicit: e})
		res := h2.call("delete_pooler", map[string]any{"name": "p2", "namespace": h.ns})
		if !res.IsError || !strings.Contains(text(res), "not confirmed") {
			t.Fatalf("%s/%v: %s", e.action, e.confirm, text(res))
		}
		if !h.exists(&cnpgv1.Pooler{}, "p2") {
			t.Fatalf("%s: deleted without consent", e.action)
		}
	}
	// Older protocol without elicitation capability: refuse and say how to confirm.
	legacy := newHarness(t, hopt{protocol: "2025-06-18", noNamespace: true})
	res := legacy.call("delete_pooler", map[string]any{"name": "p2", "namespace": h.ns})
	if !res.IsError || !strings.Contains(text(res), "confirm: true") || !h.exists(&cnpgv1.Pooler{}, "p2") {
		t.Fatalf("legacy without elicitation: %s", text(res))
	}
}

func TestNamespaceAllowList(t *testing.T) {
	h := newHarness(t, hopt{allowedNS: []string{"team-a"}})
	h.fails("list_postgres_clusters", nil, "allow-list", "team-a")
	h.fails("get_cluster_status", map[string]any{"name": "pg", "namespace": "kube-system"}, "allow-list")
	h.fails("list_postgres_clusters", map[string]any{"namespace": "Not_A_Namespace"}, "RFC 1123")
}

// SC-02 end to end: a token without mcp:write gets an HTTP 403 step-up challenge for a mutating
// tool (the client sees a transport error), while read tools work (SC-06).
func TestScopeStepUpThroughMCP(t *testing.T) {
	h := newHarness(t, hopt{scopes: []string{tools.ScopeRead}})
	h.cluster("pg", 1, nil)
	h.ok("get_cluster_status", map[string]any{"name": "pg"})
	_, err := h.callErr("scale_postgres_cluster", map[string]any{"name": "pg", "instances": 2})
	if err == nil || !strings.Contains(err.Error(), "insufficient_scope") {
		t.Fatalf("mutating call with a read-only token: %v", err)
	}
	if h.getCluster("pg").Spec.Instances != 1 {
		t.Fatal("scaled with a read-only token")
	}
}

func TestAuditLine(t *testing.T) {
	h := newHarness(t, hopt{})
	h.cluster("pg", 1, nil)
	h.ok("scale_postgres_cluster", map[string]any{"name": "pg", "instances": 2, "dry_run": true})
	h.fails("get_cluster_status", map[string]any{"name": "missing"})
	h.fails("create_postgres_cluster", map[string]any{"name": "x", "bogus": 1}) // refused by schema validation, still audited
	lines := h.auditLines()
	if len(lines) != 3 {
		t.Fatalf("want one audit line per call, got %d: %v", len(lines), h.audit.String())
	}
	l := lines[0]
	for k, want := range map[string]any{"sub": "auth0|alice", "client_id": "client-alice", "tool": "scale_postgres_cluster", "namespace": "", "object": "pg", "dry_run": true, "result": "dry_run"} {
		if l[k] != want {
			t.Errorf("audit %s = %v, want %v", k, l[k], want)
		}
	}
	if l["token_id"] == "" || l["arguments"].(map[string]any)["instances"] != float64(2) {
		t.Errorf("audit line: %v", l)
	}
	if lines[1]["result"] != "error" || !strings.Contains(lines[1]["error"].(string), "not found") {
		t.Errorf("error audit: %v", lines[1])
	}
	if lines[2]["result"] != "error" || lines[2]["tool"] != "create_postgres_cluster" {
		t.Errorf("schema-rejected call audit: %v", lines[2])
	}
}

func TestOutputBounded(t *testing.T) {
	h := newHarness(t, hopt{})
	for i := 0; i < 30; i++ {
		h.cluster("pg-"+strings.Repeat("x", 40)+"-"+string(rune('a'+i%26))+string(rune('a'+i/26)), 1, nil)
	}
	res := h.call("list_postgres_clusters", map[string]any{"detail_level": "detailed", "format": "json"})
	if res.IsError || len(text(res)) > tools.MaxTextChars {
		t.Fatalf("text %d chars (limit %d)", len(text(res)), tools.MaxTextChars)
	}
	if structured(t, res)["count"] != float64(30) {
		t.Fatal("structured count")
	}
}

func TestStatelessAndLegacyProtocols(t *testing.T) {
	for _, p := range []string{"", "2025-11-25", "2025-06-18", "2025-03-26"} {
		h := newHarness(t, hopt{protocol: p})
		h.cluster("pg", 1, nil)
		if d := h.ok("list_postgres_clusters", nil); d["count"] != float64(1) {
			t.Fatalf("protocol %q: %v", p, d)
		}
		if p == "" {
			continue // 2026-07-28 has no ping
		}
		if err := legacyPing(context.Background(), h.c); err != nil {
			t.Fatalf("protocol %q ping: %v", p, err)
		}
	}
}

// mcp-go's DNS-rebinding protection stays on: a loopback connection with a foreign Host is refused
// even with a valid token.
func TestDNSRebindingProtection(t *testing.T) {
	h := newHarness(t, hopt{noNamespace: true})
	req, _ := http.NewRequest(http.MethodPost, h.url, strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"ping"}`))
	req.Host = "evil.example"
	req.Header.Set("Authorization", "Bearer "+h.token())
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("foreign Host on loopback: %d, want 403", resp.StatusCode)
	}
}

func TestReadyCheck(t *testing.T) {
	needEnv(t)
	if err := admin.ReadyCheck(context.Background()); err != nil {
		t.Fatal(err)
	}
	cfg := rest.CopyConfig(env.Admin)
	cfg.Host = "https://127.0.0.1:1"
	down, err := kube.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := down.ReadyCheck(ctx); err == nil || !strings.Contains(err.Error(), "not reachable") {
		t.Fatalf("unreachable API: %v", err)
	}
}
