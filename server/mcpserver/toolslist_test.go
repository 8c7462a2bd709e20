package mcpserver_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/cnpg-mcp/cnpg-mcp/server/mcpserver"
	"github.com/cnpg-mcp/cnpg-mcp/server/tools"
)

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
		{"all tools", mcpserver.Options{}, len(tools.All(&tools.Deps{}))},
		{"read-only", mcpserver.Options{ReadOnly: true}, 0},
		{"toolsets roles,observability", mcpserver.Options{Toolsets: []string{"roles", "observability"}}, 0},
	} {
		for _, pv := range []string{"2026-07-28", "2025-11-25", "2025-06-18", "2025-03-26"} {
			t.Run(v.name+"/"+pv, func(t *testing.T) {
				cached, tok, srv := endpoint(t, v.opts, false)
				plain, plainTok, _ := endpoint(t, v.opts, true)
				list, _ := recordListAndPing(t, cached, tok, pv)
				before := srv.ListHits()

				got, want := replay(cached, list, tok, list.body), replay(plain, list, plainTok, list.body)
				if srv.ListHits() != before+1 {
					t.Fatalf("tools/list was not served from memory (hits %d → %d)", before, srv.ListHits())
				}
				if got.Code != want.Code || got.Header().Get("Content-Type") != want.Header().Get("Content-Type") || !bytes.Equal(got.Body.Bytes(), want.Body.Bytes()) {
					t.Fatalf("cached answer differs from mcp-go's:\n got %d %s\n%.600s\nwant %d %s\n%.600s", got.Code, got.Header().Get("Content-Type"), got.Body.String(),
						want.Code, want.Header().Get("Content-Type"), want.Body.String())
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
