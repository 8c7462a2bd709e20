package mcpserver_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/cnpg-mcp/cnpg-mcp/server/mcpserver"
	"github.com/cnpg-mcp/cnpg-mcp/server/tools"
)

// gunzip returns w's body, decompressed when it was sent with Content-Encoding: gzip; its
// Content-Length must be the bytes sent.
func gunzip(t *testing.T, w *httptest.ResponseRecorder) []byte {
	t.Helper()
	if cl := w.Header().Get("Content-Length"); cl != strconv.Itoa(w.Body.Len()) {
		t.Fatalf("Content-Length %s, body %d bytes", cl, w.Body.Len())
	}
	if w.Header().Get("Content-Encoding") != "gzip" {
		return w.Body.Bytes()
	}
	br := bytes.NewReader(w.Body.Bytes()) // an io.ByteReader: the gzip reader reads no further than it must
	zr, err := gzip.NewReader(br)
	if err != nil {
		t.Fatal(err)
	}
	zr.Multistream(false)
	b, err := io.ReadAll(zr)
	if err != nil {
		t.Fatalf("gzip answer: %v", err)
	}
	if br.Len() != 0 {
		t.Fatalf("%d bytes after the gzip member", br.Len())
	}
	return b
}

func replay(h http.Handler, req recordedRequest, token string, body []byte) *httptest.ResponseRecorder {
	r := httptest.NewRequest(http.MethodPost, "/mcp", bytes.NewReader(body))
	r.Header = req.header.Clone()
	r.Header.Set("Authorization", "Bearer "+token)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

// tools/list served from memory is byte for byte mcp-go's own answer — at every protocol version,
// read-only or not, with toolsets — and it is really served from memory (the hit counter moves);
// requests the cache does not cover (a cursor, no session on an older version, a batch) get
// mcp-go's answer unchanged.
func TestToolsListFromMemory(t *testing.T) {
	for _, v := range []struct {
		name string
		opts mcpserver.Options
		want int
	}{
		{"all tools", mcpserver.Options{CompressToolsList: true}, len(tools.All(&tools.Deps{}))},
		{"read-only", mcpserver.Options{ReadOnly: true, CompressToolsList: true}, 0},
		{"toolsets roles,observability", mcpserver.Options{Toolsets: []string{"roles", "observability"}, CompressToolsList: true}, 0},
	} {
		for _, pv := range []string{"2026-07-28", "2025-11-25", "2025-06-18", "2025-03-26"} {
			t.Run(v.name+"/"+pv, func(t *testing.T) {
				cached, tok, srv := endpoint(t, v.opts, false)
				plain, plainTok, _ := endpoint(t, v.opts, true)
				list, _ := recordListAndPing(t, cached, tok, pv)
				before := srv.ListHits()

				// mcp-go's client sends what Go's http.Transport sends: Accept-Encoding: gzip.
				if ae := list.header.Get("Accept-Encoding"); ae != "gzip" {
					t.Fatalf("recorded Accept-Encoding %q, want gzip", ae)
				}
				got, want := replay(cached, list, tok, list.body), replay(plain, list, plainTok, list.body)
				if srv.ListHits() != before+1 {
					t.Fatalf("tools/list was not served from memory (hits %d → %d)", before, srv.ListHits())
				}
				if got.Header().Get("Content-Encoding") != "gzip" || want.Header().Get("Content-Encoding") != "" || !slices.Contains(got.Header().Values("Vary"), "Accept-Encoding") {
					t.Fatalf("Content-Encoding %q (mcp-go's %q), Vary %q: want gzip, Vary: Accept-Encoding", got.Header().Get("Content-Encoding"), want.Header().Get("Content-Encoding"), got.Header().Values("Vary"))
				}
				gotBody := gunzip(t, got)
				if got.Code != want.Code || got.Header().Get("Content-Type") != want.Header().Get("Content-Type") || !bytes.Equal(gotBody, want.Body.Bytes()) {
					t.Fatalf("cached answer (decompressed) differs from mcp-go's:\n got %d %s\n%.600s\nwant %d %s\n%.600s", got.Code, got.Header().Get("Content-Type"), gotBody,
						want.Code, want.Header().Get("Content-Type"), want.Body.String())
				}
				if got.Body.Len() > len(gotBody)/3 {
					t.Errorf("gzip answer is %d bytes for %d bytes of JSON", got.Body.Len(), len(gotBody))
				}
				// Without Accept-Encoding, or with one that refuses gzip: the same bytes as mcp-go's,
				// uncompressed.
				for _, ae := range []string{"", "gzip;q=0", "deflate, br", "identity;q=1, gzip;q=0.5"} {
					identity := list
					identity.header = list.header.Clone()
					identity.header.Del("Accept-Encoding")
					if ae != "" {
						identity.header.Set("Accept-Encoding", ae)
					}
					before = srv.ListHits()
					got, want = replay(cached, identity, tok, list.body), replay(plain, identity, plainTok, list.body)
					if srv.ListHits() != before+1 {
						t.Fatalf("Accept-Encoding %q: tools/list was not served from memory (hits %d → %d)", ae, before, srv.ListHits())
					}
					if got.Header().Get("Content-Encoding") != "" || got.Header().Get("Content-Length") != strconv.Itoa(got.Body.Len()) || got.Code != want.Code ||
						got.Header().Get("Content-Type") != want.Header().Get("Content-Type") || !bytes.Equal(got.Body.Bytes(), want.Body.Bytes()) {
						t.Fatalf("Accept-Encoding %q: cached answer differs from mcp-go's:\n got %d %s %q\n%.600s\nwant %d %s\n%.600s", ae, got.Code, got.Header().Get("Content-Type"), got.Header().Get("Content-Encoding"), got.Body.String(),
							want.Code, want.Header().Get("Content-Type"), want.Body.String())
					}
				}
				var res struct {
					Result struct {
						Tools []struct {
							Name        string `json:"name"`
							Annotations struct {
								ReadOnly bool `json:"readOnlyHint"`
							} `json:"annotations"`
						} `json:"tools"`
					} `json:"result"`
				}
				if err := json.Unmarshal(got.Body.Bytes(), &res); err != nil || len(res.Result.Tools) == 0 {
					t.Fatalf("answer %v: %s", err, got.Body.String())
				}
				if v.want > 0 && len(res.Result.Tools) != v.want {
					t.Errorf("%d tools, want %d", len(res.Result.Tools), v.want)
				}
				for _, tl := range res.Result.Tools {
					if v.opts.ReadOnly && !tl.Annotations.ReadOnly {
						t.Errorf("read-only server lists %s", tl.Name)
					}
					if len(v.opts.Toolsets) > 0 && !strings.Contains(tl.Name, "role") && !strings.Contains(tl.Name, "logs") && !strings.Contains(tl.Name, "diagnose") && !strings.Contains(tl.Name, "permissions") {
						t.Errorf("toolsets %v list %s", v.opts.Toolsets, tl.Name)
					}
				}

				// Not covered by the cache: mcp-go's answer, unchanged.
				withCursor := bytes.Replace(list.body, []byte(`"params":{`), []byte(`"params":{"cursor":"ZGVsZXRl",`), 1)
				if !bytes.Contains(withCursor, []byte("cursor")) {
					t.Fatalf("no params in %s", list.body)
				}
				batch := append(append([]byte("["), list.body...), ']')
				for name, body := range map[string][]byte{"cursor": withCursor, "batch": batch} {
					before := srv.ListHits()
					got, want := replay(cached, list, tok, body), replay(plain, list, plainTok, body)
					if srv.ListHits() != before || got.Code != want.Code || !bytes.Equal(got.Body.Bytes(), want.Body.Bytes()) {
						t.Errorf("%s: hits %d → %d; %d %s, want %d %s", name, before, srv.ListHits(), got.Code, got.Body.String(), want.Code, want.Body.String())
					}
				}
				if pv != "2026-07-28" {
					noSession := list
					noSession.header = list.header.Clone()
					noSession.header.Del("Mcp-Session-Id")
					before := srv.ListHits()
					got, want := replay(cached, noSession, tok, list.body), replay(plain, noSession, plainTok, list.body)
					if srv.ListHits() != before || got.Code != want.Code || !bytes.Equal(got.Body.Bytes(), want.Body.Bytes()) {
						t.Errorf("no session: hits %d → %d; %d %s, want %d %s", before, srv.ListHits(), got.Code, got.Body.String(), want.Code, want.Body.String())
					}
				}
			})
		}
	}
}

// Unknown toolsets are refused at start-up with the valid names; toolsets and read-only combine.
func TestToolsetsOption(t *testing.T) {
	_, err := mcpserver.New(mcpserver.Options{Tools: tools.All(&tools.Deps{}), Toolsets: []string{"backup"}})
	if err == nil || !strings.Contains(err.Error(), `unknown toolset "backup": use any of clusters, instances, roles, databases, backups, poolers, operations, observability`) {
		t.Fatalf("unknown toolset: %v", err)
	}
	srv, err := mcpserver.New(mcpserver.Options{Tools: tools.All(&tools.Deps{}), Toolsets: []string{"databases"}, ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	if got := srv.ToolNames(); !slices.Equal(got, []string{"get_postgres_database_status", "list_postgres_databases"}) {
		t.Fatalf("read-only databases: %v", got)
	}
	if srv.ToolScopes("create_postgres_cluster") != nil {
		t.Fatal("a tool outside the toolsets has scopes")
	}
}

// Without CompressToolsList (the default), a client asking for gzip gets the list as mcp-go sends it,
// uncompressed, byte for byte, still from memory.
func TestToolsListUncompressedByDefault(t *testing.T) {
	cached, tok, srv := endpoint(t, mcpserver.Options{}, false)
	plain, plainTok, _ := endpoint(t, mcpserver.Options{}, true)
	list, _ := recordListAndPing(t, cached, tok, "2025-11-25")
	if ae := list.header.Get("Accept-Encoding"); ae != "gzip" {
		t.Fatalf("recorded Accept-Encoding %q, want gzip", ae)
	}
	before := srv.ListHits()
	got, want := replay(cached, list, tok, list.body), replay(plain, list, plainTok, list.body)
	if srv.ListHits() != before+1 {
		t.Fatalf("tools/list was not served from memory (hits %d → %d)", before, srv.ListHits())
	}
	if ce := got.Header().Get("Content-Encoding"); ce != "" {
		t.Fatalf("Content-Encoding %q without CompressToolsList", ce)
	}
	if got.Code != want.Code || !bytes.Equal(got.Body.Bytes(), want.Body.Bytes()) {
		t.Fatalf("answer differs from mcp-go's:\n got %d %.300s\nwant %d %.300s", got.Code, got.Body.String(), want.Code, want.Body.String())
	}
}

// A tools array below gzipMinBytes (one small tool, like the benchmark's) is always sent as it is,
// without Vary: compressing it saves nothing worth the client's inflater.
func TestToolsListSmallNotCompressed(t *testing.T) {
	small := tools.Tool{Def: mcp.Tool{Name: "whoami", Description: "Returns the caller", RawInputSchema: json.RawMessage(`{"type":"object","properties":{},"additionalProperties":false}`)},
		Handler: func(context.Context, mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			return mcp.NewToolResultText("ok"), nil
		}}
	srv, err := mcpserver.New(mcpserver.Options{Tools: []tools.Tool{small}, Logger: slog.New(slog.NewJSONHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	h := srv.Handler()
	list, _ := recordListAndPing(t, h, "unused", "2025-11-25")
	if list.header.Get("Accept-Encoding") != "gzip" {
		t.Fatalf("recorded Accept-Encoding %q", list.header.Get("Accept-Encoding"))
	}
	before := srv.ListHits()
	got := replay(h, list, "unused", list.body)
	if srv.ListHits() != before+1 || got.Code != http.StatusOK || got.Header().Get("Content-Encoding") != "" || len(got.Header().Values("Vary")) != 0 ||
		!bytes.Contains(got.Body.Bytes(), []byte(`"tools":[{`)) || got.Header().Get("Content-Length") != strconv.Itoa(got.Body.Len()) {
		t.Fatalf("hits %d → %d, %d, Content-Encoding %q, Vary %q: %s", before, srv.ListHits(), got.Code, got.Header().Get("Content-Encoding"), got.Header().Values("Vary"), got.Body.String())
	}
}
