package mcpserver_test

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/cnpg-mcp/cnpg-mcp/server/identity"
	"github.com/cnpg-mcp/cnpg-mcp/server/mcpserver"
	"github.com/cnpg-mcp/cnpg-mcp/server/tools"
)

// sessionServer serves the MCP handler on loopback behind a stand-in for the bearer check: the
// caller's identity comes from test headers (the real bearer check is exercised by server/app and
// the conformance suite).
func sessionServer(t *testing.T) *httptest.Server {
	t.Helper()
	srv, err := mcpserver.New(mcpserver.Options{Tools: tools.All(&tools.Deps{}), Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	h := srv.Handler()
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := identity.Identity{Subject: r.Header.Get("X-Test-Sub"), ClientID: r.Header.Get("X-Test-Client"), Scopes: []string{"mcp:read"}}
		h.ServeHTTP(w, r.WithContext(identity.NewContext(r.Context(), id)))
	}))
	t.Cleanup(ts.Close)
	return ts
}

type caller struct{ sub, client string }

var (
	userA      = caller{"auth0|a", "client-1"}
	userB      = caller{"auth0|b", "client-1"}
	userAOther = caller{"auth0|a", "client-2"} // the same user through another client
)

func mcpRequest(t *testing.T, ts *httptest.Server, c caller, method, sid, body string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, ts.URL, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Test-Sub", c.sub)
	req.Header.Set("X-Test-Client", c.client)
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("MCP-Protocol-Version", "2025-11-25")
	if sid != "" {
		req.Header.Set("Mcp-Session-Id", sid)
	}
	if method == http.MethodGet {
		// a GET opens a notification stream that stays open: read the status line only
		req.Header.Set("Accept", "text/event-stream")
	}
	resp, err := ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	if method == http.MethodGet && resp.StatusCode == http.StatusOK {
		return resp, ""
	}
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

const (
	initializeBody = `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"0"}}}`
	toolsListBody  = `{"jsonrpc":"2.0","id":2,"method":"tools/list","params":{}}`
)

func initialize(t *testing.T, ts *httptest.Server, c caller) string {
	t.Helper()
	resp, body := mcpRequest(t, ts, c, http.MethodPost, "", initializeBody)
	sid := resp.Header.Get("Mcp-Session-Id")
	if resp.StatusCode != http.StatusOK || sid == "" {
		t.Fatalf("initialize: %d, session %q: %s", resp.StatusCode, sid, body)
	}
	return sid
}

// TestRS09SessionBoundToUser: a session ID created by one user is refused (404) for every other user
// on POST, GET and DELETE, and a forged or foreign-format ID is refused too; the creator keeps using
// it, also through another client of the same user (a step-up that registers a new client keeps its
// session).
func TestRS09SessionBoundToUser(t *testing.T) {
	ts := sessionServer(t)
	sid := initialize(t, ts, userA)
	if !strings.HasPrefix(sid, "mcp-session-") {
		t.Fatalf("session ID %q lacks the mcp-session- prefix", sid)
	}
	last := sid[len(sid)-1]
	flipped := sid[:len(sid)-1] + map[bool]string{true: "A", false: "B"}[last != 'A']

	cases := []struct {
		name   string
		c      caller
		method string
		sid    string
		want   int
	}{
		{"creator, POST", userA, http.MethodPost, sid, http.StatusOK},
		{"creator, GET", userA, http.MethodGet, sid, http.StatusOK},
		{"other user, POST", userB, http.MethodPost, sid, http.StatusNotFound},
		{"other user, GET (the notification stream)", userB, http.MethodGet, sid, http.StatusNotFound},
		{"other user, DELETE", userB, http.MethodDelete, sid, http.StatusNotFound},
		{"same user through another client (a step-up's new registration)", userAOther, http.MethodPost, sid, http.StatusOK},
		{"no identity", caller{}, http.MethodPost, sid, http.StatusNotFound},
		{"tampered binding", userA, http.MethodPost, flipped, http.StatusNotFound},
		{"mcp-go's own format", userA, http.MethodPost, "mcp-session-0b6ef3c4-7a43-4c3e-9a8f-3f1f2c2a9b10", http.StatusNotFound},
		{"binding of another nonce", userA, http.MethodPost, initialize(t, ts, userB), http.StatusNotFound},
		{"creator after the others tried", userA, http.MethodPost, sid, http.StatusOK},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := mcpRequest(t, ts, tc.c, tc.method, tc.sid, toolsListBody)
			if resp.StatusCode != tc.want {
				t.Fatalf("%s with session %q: %d, want %d: %s", tc.method, tc.sid, resp.StatusCode, tc.want, body)
			}
			if tc.want == http.StatusNotFound && !strings.Contains(body, "initialize") {
				t.Errorf("the 404 does not tell the client to initialize again: %s", body)
			}
		})
	}
	// B's own session works for B; a DELETE by its creator ends it cleanly.
	sidB := initialize(t, ts, userB)
	if resp, body := mcpRequest(t, ts, userB, http.MethodPost, sidB, toolsListBody); resp.StatusCode != http.StatusOK {
		t.Fatalf("B on B's session: %d %s", resp.StatusCode, body)
	}
	if resp, body := mcpRequest(t, ts, userB, http.MethodDelete, sidB, ""); resp.StatusCode != http.StatusOK {
		t.Fatalf("B ends B's session: %d %s", resp.StatusCode, body)
	}
}

// TestSEC05SessionIDsRandom: session IDs are unique and share no more than the fixed prefix.
func TestSEC05SessionIDsRandom(t *testing.T) {
	ts := sessionServer(t)
	seen := map[string]bool{}
	for range 20 {
		sid := initialize(t, ts, userA)
		if seen[sid] {
			t.Fatalf("session ID %q issued twice", sid)
		}
		seen[sid] = true
		if len(sid) < len("mcp-session-")+22+1+43 {
			t.Fatalf("session ID %q shorter than its 128-bit nonce and binding", sid)
		}
	}
}
