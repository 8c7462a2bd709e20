package mcpserver_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	mcpclient "github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/cnpg-mcp/cnpg-mcp/server/bearer"
	"github.com/cnpg-mcp/cnpg-mcp/server/bearer/bearertest"
	"github.com/cnpg-mcp/cnpg-mcp/server/mcpserver"
	"github.com/cnpg-mcp/cnpg-mcp/server/tools"
)

// benchHandler is the MCP endpoint as the server mounts it: the bearer check (HS256 verification,
// scope checks, body inspection) in front of the Streamable HTTP handler. No Kubernetes is needed:
// tools/list and ping never reach it.
func benchHandler(tb testing.TB, opts mcpserver.Options) (http.Handler, string) {
	tb.Helper()
	opts.Tools = tools.All(&tools.Deps{})
	opts.RequireIdentity = true
	opts.Logger = slog.New(slog.NewJSONHandler(io.Discard, nil))
	srv, err := mcpserver.New(opts)
	if err != nil {
		tb.Fatal(err)
	}
	iss := bearertest.NewIssuer("https://mcp.test", "https://mcp.test/mcp")
	bm, err := bearer.New(bearer.Options{Verifier: iss, ResourceMetadataURL: "https://mcp.test/.well-known/oauth-protected-resource/mcp",
		RequiredScopes: []string{tools.ScopeRead}, ToolScopes: srv.ToolScopes})
	if err != nil {
		tb.Fatal(err)
	}
	return bm.Wrap(srv.Handler()), iss.Mint(tb, bearertest.Claims{Scopes: []string{tools.ScopeRead, tools.ScopeWrite}})
}

type recordedRequest struct {
	header http.Header
	body   []byte
}

// recordListAndPing captures what mcp-go's client sends for tools/list and ping (server/discover at
// 2026-07-28, which has no ping) at protocol version
// pv (2026-07-28: stateless, per-request _meta; older versions: initialize, then a session ID),
// so the benchmark replays exactly those requests in-process.
func recordListAndPing(tb testing.TB, h http.Handler, token, pv string) (list, ping recordedRequest) {
	tb.Helper()
	var mu sync.Mutex
	var reqs []recordedRequest
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		reqs = append(reqs, recordedRequest{r.Header.Clone(), body})
		mu.Unlock()
		r.Body = io.NopCloser(bytes.NewReader(body))
		h.ServeHTTP(w, r)
	}))
	defer ts.Close()
	tr, err := transport.NewStreamableHTTP(ts.URL, transport.WithHTTPHeaders(map[string]string{"Authorization": "Bearer " + token}))
	if err != nil {
		tb.Fatal(err)
	}
	c := mcpclient.NewClient(tr)
	defer c.Close()
	ctx := context.Background()
	if err := c.Start(ctx); err != nil {
		tb.Fatal(err)
	}
	init := mcp.InitializeRequest{}
	init.Params.ClientInfo = mcp.Implementation{Name: "bench", Version: "1"}
	init.Params.ProtocolVersion = pv
	if _, err := c.Initialize(ctx, init); err != nil {
		tb.Fatal(err)
	}
	if _, err := c.ListTools(ctx, mcp.ListToolsRequest{}); err != nil {
		tb.Fatal(err)
	}
	if pv != mcp.LATEST_PROTOCOL_VERSION { // 2026-07-28 removed ping: server/discover is its cheapest request
		if err := c.Ping(ctx); err != nil {
			tb.Fatal(err)
		}
	}
	for _, r := range reqs {
		switch {
		case bytes.Contains(r.body, []byte(`"tools/list"`)):
			list = r
		case bytes.Contains(r.body, []byte(`"ping"`)), bytes.Contains(r.body, []byte(`"server/discover"`)):
			ping = r
		}
	}
	if list.body == nil || ping.body == nil {
		tb.Fatalf("requests not captured (%d requests)", len(reqs))
	}
	return list, ping
}

// BenchmarkToolsList measures one tools/list (and, for comparison, one ping, or server/discover at
// 2026-07-28) through the real
// handler with the bearer check, in-process, per protocol era. Run:
//
//	go test ./server/mcpserver -run '^$' -bench ToolsList -benchmem
func BenchmarkToolsList(b *testing.B) {
	for _, pv := range []string{mcp.LATEST_PROTOCOL_VERSION, "2025-06-18"} {
		h, tok := benchHandler(b, mcpserver.Options{})
		list, ping := recordListAndPing(b, h, tok, pv)
		for _, op := range []struct {
			name string
			req  recordedRequest
		}{{"tools_list", list}, {map[bool]string{true: "discover", false: "ping"}[pv == mcp.LATEST_PROTOCOL_VERSION], ping}} {
			b.Run(op.name+"/"+pv, func(b *testing.B) {
				b.ReportAllocs()
				var size int
				for i := 0; i < b.N; i++ {
					r := httptest.NewRequest(http.MethodPost, "/mcp", bytes.NewReader(op.req.body))
					r.Header = op.req.header.Clone()
					w := httptest.NewRecorder()
					h.ServeHTTP(w, r)
					if w.Code != http.StatusOK || !strings.Contains(w.Body.String(), `"result"`) {
						b.Fatalf("status %d: %s", w.Code, w.Body.String())
					}
					size = w.Body.Len()
				}
				b.ReportMetric(float64(size), "resp_bytes")
			})
		}
	}
}
