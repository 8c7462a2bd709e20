//go:build benchtool

package tools

import (
	"context"
	"encoding/json"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/cnpg-mcp/cnpg-mcp/server/identity"
)

// benchToolset is the toolset of the benchmark's one small tool. This file is compiled only with
// -tags benchtool (make bench-peers builds bin/cnpg-mcp-server-benchtool that way): the benchmark
// runs that binary with --mcp-toolsets bench, so that its tools/list carries one tool like the peers
// it is compared with (conformance/peers/*/server.mjs: "whoami", "Returns the caller", no
// arguments) and the payload is the same size. Release builds have neither the tool nor the toolset.
const benchToolset = "bench"

// benchTools is the benchmark's tool: it answers with the caller's subject and touches nothing else.
func benchTools(*Deps) []Tool {
	// Without mcp-go's default annotations and with the peers' input schema, so that the bytes match
	// theirs (tools/list results: fastmcp 141 bytes, the TS SDK 152, this one 158).
	def := mcp.Tool{Name: "whoami", Description: "Returns the caller",
		RawInputSchema: json.RawMessage(`{"type":"object","properties":{},"additionalProperties":false}`)}
	var handler server.ToolHandlerFunc = func(ctx context.Context, _ mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		if id, ok := identity.FromContext(ctx); ok {
			return mcp.NewToolResultText(id.Subject), nil
		}
		return mcp.NewToolResultText("ok"), nil
	}
	return []Tool{{Def: def, Handler: handler, Area: benchToolset}}
}
