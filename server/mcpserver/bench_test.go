package mcpserver_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"syscall"
	"testing"
	"time"

	mcpclient "github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/cnpg-mcp/cnpg-mcp/server/bearer"
	"github.com/cnpg-mcp/cnpg-mcp/server/bearer/bearertest"
	"github.com/cnpg-mcp/cnpg-mcp/server/mcpserver"
	"github.com/cnpg-mcp/cnpg-mcp/server/tools"
)

// endpoint is the MCP endpoint as the server mounts it: the bearer check (HS256 verification, scope
// checks, body inspection) in front of the Streamable HTTP handler, with the server and a token. No
// Kubernetes is needed: tools/list and ping never reach it. uncached serves tools/list as mcp-go does.
func endpoint(tb testing.TB, opts mcpserver.Options, uncached bool) (http.Handler, string, *mcpserver.Server) {
	tb.Helper()
	opts.Tools = tools.All(&tools.Deps{})
	opts.RequireIdentity = true
	opts.Logger = slog.New(slog.NewJSONHandler(io.Discard, nil))
	newServer := mcpserver.New
	if uncached {
		newServer = mcpserver.NewUncached
	}
	srv, err := newServer(opts)
	if err != nil {
		tb.Fatal(err)
	}
	iss := bearertest.NewIssuer("https://mcp.test", "https://mcp.test/mcp")
	bm, err := bearer.New(bearer.Options{Verifier: iss, ResourceMetadataURL: "https://mcp.test/.well-known/oauth-protected-resource/mcp",
		RequiredScopes: []string{tools.ScopeRead}, ToolScopes: srv.ToolScopes})
	if err != nil {
		tb.Fatal(err)
	}
	return bm.Wrap(srv.Handler()), iss.Mint(tb, bearertest.Claims{Scopes: []string{tools.ScopeRead, tools.ScopeWrite}}), srv
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
		if err := legacyPing(ctx, c); err != nil {
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

// BenchmarkToolsList measures one tools/list through the real handler with the bearer check,
// in-process, per protocol era: as the server answers it (from memory), as mcp-go answers it on its
// own (tools_list_mcp-go, what the server did before), and, for comparison, one ping (server/discover
// at 2026-07-28, which has no ping). cpu-ns/op is the process's CPU time per request. Run:
//
//	make bench-tools-list   (go test ./server/mcpserver -run '^$' -bench ToolsList -benchmem)
func BenchmarkToolsList(b *testing.B) {
	for _, pv := range []string{mcp.LATEST_PROTOCOL_VERSION, "2025-06-18"} {
		h, tok, _ := endpoint(b, mcpserver.Options{}, false)
		gz, gzTok, _ := endpoint(b, mcpserver.Options{CompressToolsList: true}, false)
		plain, plainTok, _ := endpoint(b, mcpserver.Options{}, true)
		list, ping := recordListAndPing(b, h, tok, pv)
		pingName := map[bool]string{true: "discover", false: "ping"}[pv == mcp.LATEST_PROTOCOL_VERSION]
		identity := list
		identity.header = list.header.Clone()
		identity.header.Del("Accept-Encoding")
		for _, op := range []struct {
			name  string
			h     http.Handler
			token string
			req   recordedRequest
		}{
			{"tools_list", h, tok, list},                 // the server as it runs by default: tools/list from memory, uncompressed
			{"tools_list_gzip", gz, gzTok, list},         // with mcp.compress_tools_list, to the client's Accept-Encoding: gzip
			{"tools_list_identity", gz, gzTok, identity}, // the same without Accept-Encoding: uncompressed
			{"tools_list_mcp-go", plain, plainTok, list}, // mcp-go's own tools/list (what the server did before)
			{pingName, h, tok, ping},
		} {
			b.Run(op.name+"/"+pv, func(b *testing.B) {
				hdr := op.req.header.Clone()
				hdr.Set("Authorization", "Bearer "+op.token)
				// Once, outside the measurement: the whole answer, decoded, is a JSON-RPC result.
				rec := httptest.NewRecorder()
				r := httptest.NewRequest(http.MethodPost, "/mcp", bytes.NewReader(op.req.body))
				r.Header = hdr.Clone()
				op.h.ServeHTTP(rec, r)
				if body := decodedBody(b, rec); rec.Code != http.StatusOK || !json.Valid(body) || !bytes.Contains(body, []byte(`"result"`)) {
					b.Fatalf("status %d: %.300s", rec.Code, body)
				}
				b.ReportAllocs()
				var size int
				cpu0 := cpuTime()
				for i := 0; i < b.N; i++ {
					r := httptest.NewRequest(http.MethodPost, "/mcp", bytes.NewReader(op.req.body))
					r.Header = hdr.Clone()
					w := &sink{header: http.Header{}}
					op.h.ServeHTTP(w, r)
					if w.status != http.StatusOK || !bytes.Contains(w.head, []byte(`"result"`)) {
						b.Fatalf("status %d: %s", w.status, w.head)
					}
					size = w.n
				}
				// CPU time of the whole process (GC included) per request: unlike ns/op it does not
				// grow while the machine's other processes hold the cores.
				b.ReportMetric(float64((cpuTime()-cpu0).Nanoseconds())/float64(b.N), "cpu-ns/op")
				b.ReportMetric(float64(size), "resp_bytes")
			})
		}
	}
}

// decodedBody is w's body, gunzipped when it was sent with Content-Encoding: gzip.
func decodedBody(tb testing.TB, w *httptest.ResponseRecorder) []byte {
	tb.Helper()
	if w.Header().Get("Content-Encoding") != "gzip" {
		return w.Body.Bytes()
	}
	zr, err := gzip.NewReader(w.Body)
	if err != nil {
		tb.Fatal(err)
	}
	b, err := io.ReadAll(zr)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// cpuTime is the process's user + system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// sink is a ResponseWriter like net/http's (it flushes, it does not keep the body): the benchmark
// measures the handler, not a recorder growing a 40 KB buffer. It keeps the first bytes to check.
type sink struct {
	header http.Header
	status int
	n      int
	head   []byte
}

func (s *sink) Header() http.Header { return s.header }
func (s *sink) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
}
func (s *sink) Write(p []byte) (int, error) {
	s.WriteHeader(http.StatusOK)
	if len(s.head) < 512 {
		s.head = append(s.head, p[:min(len(p), 512-len(s.head))]...)
	}
	s.n += len(p)
	return len(p), nil
}
func (s *sink) Flush() {}

// legacyPing sends the ping RPC of the initialize-based protocol versions through the client's
// transport. mcp-go's Client.Ping is deprecated (2026-07-28 removed ping; on such a connection it
// sends nothing), and these tests mean the request on the wire.
func legacyPing(ctx context.Context, c *mcpclient.Client) error {
	resp, err := c.GetTransport().SendRequest(ctx, transport.JSONRPCRequest{JSONRPC: mcp.JSONRPC_VERSION,
		ID: mcp.NewRequestId(int64(1 << 20)), Method: string(mcp.MethodPing)})
	if err != nil {
		return err
	}
	if resp.Error != nil {
		return fmt.Errorf("ping: JSON-RPC error %d: %s", resp.Error.Code, resp.Error.Message)
	}
	return nil
}
