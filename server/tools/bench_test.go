package tools_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	mcpclient "github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/cnpg-mcp/cnpg-mcp/server/bearer"
	"github.com/cnpg-mcp/cnpg-mcp/server/bearer/bearertest"
	"github.com/cnpg-mcp/cnpg-mcp/server/mcpserver"
	"github.com/cnpg-mcp/cnpg-mcp/server/tools"
)

// benchServer builds the MCP handler for ns, with or without the bearer check in front.
func benchServer(tb testing.TB, ns string, withBearer bool) (http.Handler, *bearertest.Issuer) {
	tb.Helper()
	deps := &tools.Deps{Client: admin.Client, Core: admin.Core, DefaultNamespace: ns}
	srv, err := mcpserver.New(mcpserver.Options{Tools: tools.All(deps), RequireIdentity: withBearer, Logger: slog.New(slog.NewJSONHandler(io.Discard, nil))})
	if err != nil {
		tb.Fatal(err)
	}
	iss := bearertest.NewIssuer("https://mcp.test", "https://mcp.test/mcp")
	if !withBearer {
		return srv.Handler(), iss
	}
	bm, err := bearer.New(bearer.Options{Verifier: iss, ResourceMetadataURL: "https://mcp.test/.well-known/oauth-protected-resource/mcp",
		RequiredScopes: []string{tools.ScopeRead}, ToolScopes: srv.ToolScopes})
	if err != nil {
		tb.Fatal(err)
	}
	return bm.Wrap(srv.Handler()), iss
}

type recorded struct {
	header http.Header
	body   []byte
}

// recordRequests captures what mcp-go's client sends for tools/list and a read tool call (protocol
// 2026-07-28, stateless), so the benchmark can replay exactly those requests in-process.
func recordRequests(b *testing.B, ns string) (list, call recorded) {
	b.Helper()
	h, iss := benchServer(b, ns, true)
	var mu sync.Mutex
	var reqs []recorded
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		reqs = append(reqs, recorded{r.Header.Clone(), body})
		mu.Unlock()
		r.Body = io.NopCloser(bytes.NewReader(body))
		h.ServeHTTP(w, r)
	}))
	defer srv.Close()
	tok := iss.Mint(b, bearertest.Claims{Scopes: []string{tools.ScopeRead}})
	c := benchClient(b, srv.URL, tok)
	defer c.Close()
	if _, err := c.ListTools(context.Background(), mcp.ListToolsRequest{}); err != nil {
		b.Fatal(err)
	}
	req := mcp.CallToolRequest{}
	req.Params.Name, req.Params.Arguments = "get_cluster_status", map[string]any{"name": "pg"}
	if res, err := c.CallTool(context.Background(), req); err != nil || res.IsError {
		b.Fatalf("call: %v %v", err, res)
	}
	for _, r := range reqs {
		switch {
		case bytes.Contains(r.body, []byte(`"tools/list"`)):
			list = r
		case bytes.Contains(r.body, []byte(`"tools/call"`)):
			call = r
		}
	}
	if list.body == nil || call.body == nil {
		b.Fatal("requests not captured")
	}
	return list, call
}

func benchClient(tb testing.TB, url, token string) *mcpclient.Client {
	tb.Helper()
	tr, err := transport.NewStreamableHTTP(url, transport.WithHTTPHeaders(map[string]string{"Authorization": "Bearer " + token}))
	if err != nil {
		tb.Fatal(err)
	}
	c := mcpclient.NewClient(tr)
	ctx := context.Background()
	if err := c.Start(ctx); err != nil {
		tb.Fatal(err)
	}
	init := mcp.InitializeRequest{}
	init.Params.ClientInfo = mcp.Implementation{Name: "bench", Version: "1"}
	init.Params.ProtocolVersion = mcp.LATEST_PROTOCOL_VERSION
	if _, err := c.Initialize(ctx, init); err != nil {
		tb.Fatal(err)
	}
	return c
}

func benchNamespace(b *testing.B) string {
	b.Helper()
	needEnv(b)
	ns := fmt.Sprintf("bench-%d", nsSerial.Add(1))
	if err := admin.Client.Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
		b.Fatal(err)
	}
	h := &harness{t: b, ns: ns}
	h.cluster("pg", 3, nil)
	return ns
}

// BenchmarkBearer compares the MCP handler with and without the bearer check, in-process (the
// handler's own cost, no network) for tools/list and for get_cluster_status (which reads the
// Cluster from kube-apiserver). Run: make bench-tools.
func BenchmarkBearer(b *testing.B) {
	ns := benchNamespace(b)
	list, call := recordRequests(b, ns)
	for _, op := range []struct {
		name string
		req  recorded
	}{{"tools_list", list}, {"get_cluster_status", call}} {
		for _, withBearer := range []bool{false, true} {
			name := op.name + "/no_bearer"
			if withBearer {
				name = op.name + "/bearer"
			}
			b.Run(name, func(b *testing.B) {
				h, iss := benchServer(b, ns, withBearer)
				hdr := op.req.header.Clone()
				hdr.Set("Authorization", "Bearer "+iss.Mint(b, bearertest.Claims{Scopes: []string{tools.ScopeRead}}))
				if !withBearer {
					hdr.Del("Authorization")
				}
				b.ReportAllocs()
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					r := httptest.NewRequest(http.MethodPost, "/mcp", bytes.NewReader(op.req.body))
					r.Header = hdr.Clone()
					w := httptest.NewRecorder()
					h.ServeHTTP(w, r)
					if w.Code != http.StatusOK || bytes.Contains(w.Body.Bytes(), []byte(`"isError":true`)) {
						b.Fatalf("status %d: %s", w.Code, w.Body.String())
					}
				}
			})
		}
	}
}

// BenchmarkBearerLoopback is the same comparison over loopback HTTP with mcp-go's client.
func BenchmarkBearerLoopback(b *testing.B) {
	ns := benchNamespace(b)
	for _, withBearer := range []bool{false, true} {
		h, iss := benchServer(b, ns, withBearer)
		srv := httptest.NewServer(h)
		c := benchClient(b, srv.URL, iss.Mint(b, bearertest.Claims{Scopes: []string{tools.ScopeRead}}))
		suffix := map[bool]string{true: "bearer", false: "no_bearer"}[withBearer]
		b.Run("tools_list/"+suffix, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				if _, err := c.ListTools(context.Background(), mcp.ListToolsRequest{}); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("get_cluster_status/"+suffix, func(b *testing.B) {
			req := mcp.CallToolRequest{}
			req.Params.Name, req.Params.Arguments = "get_cluster_status", map[string]any{"name": "pg"}
			for i := 0; i < b.N; i++ {
				if res, err := c.CallTool(context.Background(), req); err != nil || res.IsError {
					b.Fatal(err, res)
				}
			}
		})
		_ = c.Close()
		srv.Close()
	}
}

// TestLoad: 50 concurrent authenticated clients (each its own token and connection) call read
// tools through the bearer check against kube-apiserver for CNPG_MCP_LOAD_DURATION (default 30 s).
// It reports errors, latency percentiles and the process RSS; it asserts no timing, only zero
// errors. Run: make bench-tools (CNPG_MCP_LOAD=1).
func TestLoad(t *testing.T) {
	if os.Getenv("CNPG_MCP_LOAD") != "1" {
		t.Skip("load run: set CNPG_MCP_LOAD=1 (make bench-tools)")
	}
	needEnv(t)
	const clients = 50
	dur := 30 * time.Second
	if v, err := time.ParseDuration(os.Getenv("CNPG_MCP_LOAD_DURATION")); err == nil && v > 0 && v <= 10*time.Minute {
		dur = v
	}
	h := newHarness(t, hopt{})
	h.cluster("pg", 3, nil)
	h.cluster("pg-b", 1, nil)
	handler, iss := benchServer(t, h.ns, true)
	srv := httptest.NewServer(handler)
	defer srv.Close()
	rssBefore := rssKB("VmRSS")
	var wg sync.WaitGroup
	var mu sync.Mutex
	var lat []time.Duration
	var errs []string
	deadline := time.Now().Add(dur)
	const maxCallsPerClient = 200000 // bound in count as well as time
	for i := 0; i < clients; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			tok, _ := iss.MintErr(bearertest.Claims{Subject: "auth0|load-" + strconv.Itoa(i), ClientID: "load", Scopes: []string{tools.ScopeRead}})
			c := benchClient(t, srv.URL, tok)
			defer c.Close()
			calls := []mcp.CallToolRequest{{}, {}, {}}
			calls[0].Params.Name, calls[0].Params.Arguments = "list_postgres_clusters", map[string]any{}
			calls[1].Params.Name, calls[1].Params.Arguments = "get_cluster_status", map[string]any{"name": "pg"}
			calls[2].Params.Name, calls[2].Params.Arguments = "list_postgres_roles", map[string]any{"cluster_name": "pg-b"}
			var mine []time.Duration
			for n := 0; n < maxCallsPerClient && time.Now().Before(deadline); n++ {
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				start := time.Now()
				res, err := c.CallTool(ctx, calls[n%len(calls)])
				d := time.Since(start)
				cancel()
				if err != nil || res.IsError {
					mu.Lock()
					if err != nil {
						errs = append(errs, err.Error())
					} else {
						errs = append(errs, text(res))
					}
					mu.Unlock()
					continue
				}
				mine = append(mine, d)
			}
			mu.Lock()
			lat = append(lat, mine...)
			mu.Unlock()
		}(i)
	}
	wg.Wait()
	slices.Sort(lat)
	pct := func(p float64) time.Duration {
		if len(lat) == 0 {
			return 0
		}
		return lat[min(len(lat)-1, int(float64(len(lat))*p))]
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	t.Logf("load: %d clients, %v: %d calls (%.0f/s), %d errors, p50 %v, p90 %v, p99 %v, max %v; process RSS %d KiB (before %d, peak %d), Go heap in use %d KiB (server, 50 clients and the test share the process; kube-apiserver and etcd are separate)",
		clients, dur, len(lat), float64(len(lat))/dur.Seconds(), len(errs), pct(.50), pct(.90), pct(.99), pct(1), rssKB("VmRSS"), rssBefore, rssKB("VmHWM"), ms.HeapInuse>>10)
	if len(errs) > 0 {
		t.Fatalf("%d errors, first: %s", len(errs), errs[0])
	}
}

func rssKB(field string) int {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return -1
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, field+":") {
			n, _ := strconv.Atoi(strings.Fields(line)[1])
			return n
		}
	}
	return -1
}
