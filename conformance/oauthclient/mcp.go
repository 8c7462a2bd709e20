package oauthclient

import (
	"context"
	"fmt"
	"net/http"
	"strings"
)

// MCPCall is one request to the MCP endpoint.
type MCPCall struct {
	// Method is the JSON-RPC method; "initialize" when empty.
	Method string
	// Params overrides the JSON-RPC params (initialize's defaults otherwise).
	Params any
	// Authorization is the literal Authorization header value ("" sends none).
	Authorization string
	// SessionID is sent as Mcp-Session-Id when set.
	SessionID string
	// Header adds headers (e.g. Origin).
	Header http.Header
	// URL overrides the endpoint (for query-string token tests).
	URL string
}

// Bearer is the Authorization value for a bearer token.
func Bearer(token string) string { return "Bearer " + token }

// CallMCP posts a JSON-RPC request to the MCP endpoint.
func (c *Client) CallMCP(ctx context.Context, endpoint string, call MCPCall) (*Response, error) {
	method := call.Method
	if method == "" {
		method = "initialize"
	}
	params := call.Params
	if params == nil && method == "initialize" {
		params = map[string]any{
			"protocolVersion": c.ProtocolVersion,
			"capabilities":    map[string]any{},
			"clientInfo":      map[string]any{"name": "mcp-auth-conformance", "version": "1"},
		}
	}
	body := map[string]any{"jsonrpc": "2.0", "id": 1, "method": method}
	if params != nil {
		body["params"] = params
	}
	if strings.HasPrefix(method, "notifications/") {
		delete(body, "id")
	}
	h := http.Header{
		"Accept":               {"application/json, text/event-stream"},
		"Mcp-Protocol-Version": {c.ProtocolVersion},
	}
	if call.Authorization != "" {
		h.Set("Authorization", call.Authorization)
	}
	if call.SessionID != "" {
		h.Set("Mcp-Session-Id", call.SessionID)
	}
	for k, vs := range call.Header {
		h[http.CanonicalHeaderKey(k)] = vs
	}
	u := endpoint
	if call.URL != "" {
		u = call.URL
	}
	if method == "initialize" {
		// An initialize carries no session and no protocol-version header.
		h.Del("Mcp-Protocol-Version")
	}
	resp, err := c.PostJSON(ctx, u, body, h)
	if err != nil {
		return nil, fmt.Errorf("MCP %s: %w", method, err)
	}
	return resp, nil
}
