package mcpserver_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/cnpg-mcp/cnpg-mcp/server/mcpserver"
	"github.com/cnpg-mcp/cnpg-mcp/server/tools"
)

// docs/tools.md is generated from the tool definitions; this fails when someone changed a tool
// without running `make tools-doc`.
func TestToolsDocUpToDate(t *testing.T) {
	want, err := mcpserver.ToolsMarkdown()
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile("../../docs/tools.md")
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != want {
		t.Fatal("docs/tools.md is stale: run `make tools-doc` (go generate ./server/mcpserver) and commit the result")
	}
}

func TestWriteToolsJSON(t *testing.T) {
	var buf bytes.Buffer
	if err := mcpserver.WriteToolsJSON(&buf, false, nil); err != nil {
		t.Fatal(err)
	}
	var out struct {
		Tools []mcpserver.ToolInfo `json:"tools"`
	}
	if err := json.Unmarshal(buf.Bytes(), &out); err != nil {
		t.Fatal(err)
	}
	if len(out.Tools) != len(tools.All(&tools.Deps{})) {
		t.Fatalf("%d tools", len(out.Tools))
	}
	for _, ti := range out.Tools {
		var schema map[string]any
		if err := json.Unmarshal(ti.InputSchema, &schema); err != nil || schema["type"] != "object" || schema["additionalProperties"] != false {
			t.Fatalf("%s: schema %s", ti.Name, ti.InputSchema)
		}
		if ti.Annotations.ReadOnlyHint == nil || (ti.Mutating == *ti.Annotations.ReadOnlyHint) {
			t.Fatalf("%s: annotations %+v mutating=%v", ti.Name, ti.Annotations, ti.Mutating)
		}
		if ti.Mutating != strings.Contains(strings.Join(ti.RequiredScopes, " "), tools.ScopeWrite) || len(ti.KubernetesCalls) == 0 {
			t.Fatalf("%s: scopes %v calls %v", ti.Name, ti.RequiredScopes, ti.KubernetesCalls)
		}
	}
	buf.Reset()
	_ = mcpserver.WriteToolsJSON(&buf, true, nil)
	if strings.Contains(buf.String(), `"mutating": true`) {
		t.Fatal("read-only list has mutating tools")
	}
}

func TestNewRejectsDuplicatesAndEmpty(t *testing.T) {
	if _, err := mcpserver.New(mcpserver.Options{}); err == nil {
		t.Fatal("no tools accepted")
	}
	all := tools.All(&tools.Deps{})
	if _, err := mcpserver.New(mcpserver.Options{Tools: append(all, all[0])}); err == nil {
		t.Fatal("duplicate tool accepted")
	}
}

func TestRedactArguments(t *testing.T) {
	got := mcpserver.RedactArguments(map[string]any{"password": "p", "client_secret": "s", "name": "pg", "long": strings.Repeat("a", 300)})
	if got["password"] != "<redacted>" || got["client_secret"] != "<redacted>" || got["name"] != "pg" || len(got["long"].(string)) > 300 {
		t.Fatal(got)
	}
}

// Over stdio (local use, no bearer): tools/list works; a tool call without identity is allowed
// only when RequireIdentity is off, and audited.
func TestStdio(t *testing.T) {
	var logs bytes.Buffer
	obs := &observer{}
	srv, err := mcpserver.New(mcpserver.Options{Tools: tools.All(&tools.Deps{AllowedNamespaces: []string{"only-this"}}), Logger: slog.New(slog.NewJSONHandler(&logs, nil)), Observer: obs})
	if err != nil {
		t.Fatal(err)
	}
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	go func() { _ = srv.ServeStdio(ctx, inR, outW) }()
	dec := json.NewDecoder(outR)
	send := func(v string) map[string]any {
		if _, err := io.WriteString(inW, v+"\n"); err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		if err := dec.Decode(&m); err != nil {
			t.Fatal(err)
		}
		return m
	}
	init := send(`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}`)
	if init["result"] == nil {
		t.Fatalf("initialize: %v", init)
	}
	_, _ = io.WriteString(inW, `{"jsonrpc":"2.0","method":"notifications/initialized"}`+"\n")
	list := send(`{"jsonrpc":"2.0","id":2,"method":"tools/list"}`)
	if n := len(list["result"].(map[string]any)["tools"].([]any)); n != len(srv.ToolNames()) {
		t.Fatalf("tools/list over stdio: %d", n)
	}
	// The namespace allow-list answers before any Kubernetes call.
	call := send(`{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"list_postgres_clusters","arguments":{"namespace":"other"}}}`)
	res := call["result"].(map[string]any)
	if res["isError"] != true || !strings.Contains(res["content"].([]any)[0].(map[string]any)["text"].(string), "allow-list") {
		t.Fatalf("call: %v", call)
	}
	if !strings.Contains(logs.String(), `"tool":"list_postgres_clusters"`) {
		t.Fatalf("no audit line: %s", logs.String())
	}
	// Metrics: a bounded label even for a tool that does not exist.
	send(`{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":"no_such_tool","arguments":{}}}`)
	obs.mu.Lock()
	defer obs.mu.Unlock()
	if len(obs.calls) != 2 || obs.calls[0] != "list_postgres_clusters/error" || obs.calls[1] != "unknown/error" {
		t.Fatalf("observed %v", obs.calls)
	}
}

func TestRequireIdentity(t *testing.T) {
	srv, err := mcpserver.New(mcpserver.Options{Tools: tools.All(&tools.Deps{}), RequireIdentity: true, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	req := mcp.CallToolRequest{}
	req.Params.Name = "list_postgres_clusters"
	res := srv.MCPServer().HandleMessage(context.Background(), []byte(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"list_postgres_clusters","arguments":{}}}`))
	b, _ := json.Marshal(res)
	if !strings.Contains(string(b), "no authenticated identity") {
		t.Fatalf("tool ran without identity: %s", b)
	}
}

type observer struct {
	mu    sync.Mutex
	calls []string
}

func (o *observer) ObserveToolCall(tool, result string, _ time.Duration) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.calls = append(o.calls, tool+"/"+result)
}
