package bearer_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/cnpg-mcp/cnpg-mcp/server/bearer"
	"github.com/cnpg-mcp/cnpg-mcp/server/bearer/bearertest"
)

// FuzzAuthorizationHeader: any Authorization header (one or two of them) gets 200 only when it is
// exactly one Bearer credential with the valid token (scheme case-insensitive, spaces around it),
// otherwise 400 or 401 — never a 5xx — and the token never appears in a challenge or an error body.
// {token} in the fuzzed strings is a valid token with mcp:read.
func FuzzAuthorizationHeader(f *testing.F) {
	iss := bearertest.NewIssuer("https://mcp.example.com", "https://mcp.example.com/mcp")
	tok := iss.Mint(f, bearertest.Claims{Scopes: []string{"mcp:read"}})
	m, err := bearer.New(bearer.Options{Verifier: iss, ResourceMetadataURL: prmURL, RequiredScopes: []string{"mcp:read"}})
	if err != nil {
		f.Fatal(err)
	}
	h := m.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusOK) }))
	for _, s := range [][2]string{{"Bearer {token}", ""}, {"bearer  {token} ", ""}, {"Bearer {token}", "Bearer {token}"}, {"Bearer", ""},
		{"Bearer {token} {token}", ""}, {"Basic dXNlcjpwYXNz", ""}, {"Bearer {token}==", ""}, {"Bearer {token}\t", ""}, {"DPoP {token}", ""},
		{"Bearer " + strings.Repeat("a", 9000), ""}, {"Bearer a.b.c", ""}, {"", ""}} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, first, second string) {
		req := httptest.NewRequest(http.MethodPost, "/mcp", strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"tools/list"}`))
		for _, v := range []string{first, second} {
			v = strings.ReplaceAll(v, "{token}", tok)
			if v != "" && !strings.ContainsAny(v, "\r\n\x00") {
				req.Header.Add("Authorization", v)
			}
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		vals := req.Header.Values("Authorization")
		switch w.Code {
		case http.StatusOK:
			scheme, rest, _ := strings.Cut(strings.TrimLeft(vals[0], " "), " ")
			if len(vals) != 1 || !strings.EqualFold(scheme, "Bearer") || strings.Trim(rest, " ") != tok {
				t.Fatalf("accepted Authorization %q", vals)
			}
		case http.StatusBadRequest, http.StatusUnauthorized:
		default:
			t.Fatalf("status %d for %q", w.Code, vals)
		}
		if w.Code != http.StatusOK && (strings.Contains(w.Header().Get("WWW-Authenticate"), tok) || strings.Contains(w.Body.String(), tok)) {
			t.Fatal("the token is echoed in the rejection")
		}
	})
}

// FuzzToolCallScopes: the bearer check's JSON-RPC parsing against mcp-go's own. Behind the check sits
// a plain mcp-go Streamable HTTP server (no second scope check) with a tool that needs mcp:write; a
// token with mcp:read only sends any body. Whatever the body — single message, batch, duplicate keys,
// odd casing, odd whitespace — the write tool must never run: the check's reading of the body must
// never miss a tools/call that mcp-go executes.
func FuzzToolCallScopes(f *testing.F) {
	iss := bearertest.NewIssuer("https://mcp.example.com", "https://mcp.example.com/mcp")
	reader := iss.Mint(f, bearertest.Claims{Scopes: []string{"mcp:read"}})
	writer := iss.Mint(f, bearertest.Claims{Scopes: []string{"mcp:read", "mcp:write"}})
	var wrote atomic.Int64
	s := server.NewMCPServer("fuzz", "1", server.WithToolCapabilities(false))
	s.AddTool(mcp.NewTool("write_tool", mcp.WithString("name")), func(context.Context, mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		wrote.Add(1)
		return mcp.NewToolResultText("wrote"), nil
	})
	s.AddTool(mcp.NewTool("read_tool", mcp.WithString("name")), func(context.Context, mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		return mcp.NewToolResultText("read"), nil
	})
	m, err := bearer.New(bearer.Options{Verifier: iss, ResourceMetadataURL: prmURL, RequiredScopes: []string{"mcp:read"},
		ToolScopes: func(tool string) []string {
			if tool == "write_tool" {
				return []string{"mcp:write"}
			}
			return nil
		}})
	if err != nil {
		f.Fatal(err)
	}
	h := m.Wrap(server.NewStreamableHTTPServer(s, server.WithStateLess(true)))
	post := func(tok, body string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodPost, "/mcp", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+tok)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		req.Header.Set("Mcp-Protocol-Version", "2025-06-18")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		return w
	}
	call := `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"write_tool","arguments":{"name":"x"}}}`
	// The target is only meaningful if the write tool does run for a token that may call it.
	if w := post(writer, call); w.Code != http.StatusOK || wrote.Load() != 1 {
		b, _ := io.ReadAll(w.Body)
		f.Fatalf("the write tool did not run for a writer (HTTP %d %s): the fuzz target would prove nothing", w.Code, b)
	}
	wrote.Store(0)
	for _, b := range []string{call, `[` + call + `]`, `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"read_tool"}}`,
		`{"jsonrpc":"2.0","id":1,"method":"tools/list","method":"tools/call","params":{"name":"write_tool"}}`,
		`{"jsonrpc":"2.0","id":1,"METHOD":"tools/call","params":{"NAME":"write_tool"}}`,
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"read_tool","name":"write_tool"}}`,
		` ` + "\ufeff" + call, `{"jsonrpc":"2.0","id":1,"method":"tools\/call","params":{"name":"write\u005ftool"}}`,
		`[{"jsonrpc":"2.0","id":1,"method":"tools/list"},` + call + `]`, `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"write_tool"},"params":null}`} {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, body string) {
		w := post(reader, body)
		if w.Code >= 500 {
			t.Fatalf("status %d for %q", w.Code, body)
		}
		if n := wrote.Swap(0); n > 0 {
			t.Fatalf("the write tool ran for a read-only token (HTTP %d): %q", w.Code, body)
		}
	})
}
