package bearer_test

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/cnpg-mcp/cnpg-mcp/server/bearer"
	"github.com/cnpg-mcp/cnpg-mcp/server/bearer/bearertest"
)

// BenchmarkCheck measures the check's own cost (token verification with HS256, scope checks, body
// read and tools/call inspection) in front of a handler that only drains the body.
func BenchmarkCheck(b *testing.B) {
	iss := bearertest.NewIssuer("https://mcp.example.com", "https://mcp.example.com/mcp")
	m, err := bearer.New(bearer.Options{Verifier: iss, ResourceMetadataURL: prmURL, RequiredScopes: []string{"mcp:read"},
		ToolScopes: func(string) []string { return nil }})
	if err != nil {
		b.Fatal(err)
	}
	next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.Copy(io.Discard, r.Body) })
	tok := "Bearer " + iss.Mint(b, bearertest.Claims{Scopes: []string{"mcp:read"}})
	body := []byte(`{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"get_cluster_status","arguments":{"name":"pg"},"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}}}`)
	for _, tc := range []struct {
		name string
		h    http.Handler
	}{{"without", next}, {"with", m.Wrap(next)}} {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				r := httptest.NewRequest(http.MethodPost, "/mcp", bytes.NewReader(body))
				r.Header.Set("Authorization", tok)
				w := httptest.NewRecorder()
				tc.h.ServeHTTP(w, r)
				if w.Code != http.StatusOK {
					b.Fatal(w.Code)
				}
			}
		})
	}
}
