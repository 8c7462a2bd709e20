package mcpserver

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/mark3labs/mcp-go/mcp"
)

// tools/list from memory.
//
// mcp-go rebuilds the tool list for every tools/list and marshals each tool's schema maps through
// reflection: 1.5–3 ms of CPU per request for 35 tools (a ping costs 0.1 ms), for an answer that
// never changes while the server runs. Here the tools array is marshalled once, when the server is
// built, and spliced into mcp-go's own response, so every check mcp-go makes (protocol version,
// headers, session, DNS rebinding), the JSON-RPC envelope and the 2026-07-28 result metadata
// (resultType, serverInfo, ttlMs, cacheScope) stay mcp-go's:
//
//  1. Handler sees a POST whose body is one tools/list request without a cursor, and marks the
//     request's context.
//  2. mcp-go validates and dispatches it as usual; its tool filter (listFilter, the only one) sees
//     the mark, checks that the list it was given is exactly the cached one, and returns no tools,
//     so mcp-go marshals {"tools":[]} — microseconds.
//  3. Handler replaces the one `"tools":[]` of that buffered response with the cached array.
//
// Anything unexpected (another filter or session tools changed the list, a response that is not one
// JSON object with one empty tools array) falls back to mcp-go's normal path for that request.
// The cache key is the server: one Server serves one (read-only, toolsets) configuration, and the
// tools array mcp-go sends is the same for every protocol version (TestToolsListFromMemory compares
// the spliced response with mcp-go's own, byte for byte, at every version).
type toolsList struct {
	names []string // tool names in mcp-go's order (sorted)
	field []byte   // `"tools":` and the tools array exactly as mcp-go marshals it
}

type fastListKey struct{}

// fastList is the per-request mark of step 1; used records step 2.
type fastList struct{ used bool }

var emptyTools = []byte(`"tools":[]`)

// buildToolsList asks mcp-go for its tools/list answer once and keeps its tools array.
func (s *Server) buildToolsList() error {
	resp := s.mcp.HandleMessage(context.Background(), json.RawMessage(`{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{}}`))
	r, ok := resp.(mcp.JSONRPCResponse)
	if !ok {
		return fmt.Errorf("mcpserver: tools/list: unexpected answer %T", resp)
	}
	res, ok := r.Result.(mcp.ListToolsResult)
	if !ok {
		return fmt.Errorf("mcpserver: tools/list: unexpected result %T", r.Result)
	}
	b, err := json.Marshal(res.Tools)
	if err != nil {
		return fmt.Errorf("mcpserver: tools/list: %w", err)
	}
	tl := &toolsList{field: append([]byte(`"tools":`), b...)}
	for _, t := range res.Tools {
		tl.names = append(tl.names, t.Name)
	}
	s.list = tl
	return nil
}

// listFilter is mcp-go's tool filter: it hides the tools only from a marked tools/list whose list
// is the cached one (step 2); tool calls and every other request see the tools unchanged.
func (s *Server) listFilter(ctx context.Context, tools []mcp.Tool) []mcp.Tool {
	fl, ok := ctx.Value(fastListKey{}).(*fastList)
	if !ok || fl.used || s.list == nil || len(tools) != len(s.list.names) {
		return tools
	}
	for i, t := range tools {
		if t.Name != s.list.names[i] {
			return tools
		}
	}
	fl.used = true
	return []mcp.Tool{}
}

// isPlainToolsList reports whether body is a single JSON-RPC tools/list request without a cursor.
func isPlainToolsList(body []byte) bool {
	if !bytes.Contains(body, []byte(`"tools/list"`)) {
		return false
	}
	b := bytes.TrimSpace(body)
	if len(b) == 0 || b[0] != '{' {
		return false // a batch, or not JSON
	}
	var m struct {
		Method string `json:"method"`
		Params struct {
			Cursor *string `json:"cursor"`
		} `json:"params"`
	}
	return json.Unmarshal(b, &m) == nil && m.Method == string(mcp.MethodToolsList) && m.Params.Cursor == nil
}

// serveToolsList runs steps 1–3 for one tools/list request whose body was read already.
func (s *Server) serveToolsList(w http.ResponseWriter, r *http.Request, next http.Handler, body []byte) {
	fl := &fastList{}
	buf := &bufferedResponse{header: http.Header{}}
	marked := r.WithContext(context.WithValue(r.Context(), fastListKey{}, fl))
	marked.Body = io.NopCloser(bytes.NewReader(body))
	next.ServeHTTP(buf, marked)
	if !fl.used {
		buf.copyTo(w) // mcp-go refused it, or listed tools other than the cached ones: its answer as is
		return
	}
	resp := buf.body.Bytes()
	if i := bytes.Index(resp, emptyTools); i >= 0 && buf.status == http.StatusOK && strings.HasPrefix(buf.header.Get("Content-Type"), "application/json") &&
		bytes.LastIndex(resp, emptyTools) == i {
		for k, v := range buf.header {
			w.Header()[k] = v
		}
		w.Header().Set("Content-Length", strconv.Itoa(len(resp)-len(emptyTools)+len(s.list.field)))
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(resp[:i])
		_, _ = w.Write(s.list.field)
		_, _ = w.Write(resp[i+len(emptyTools):])
		s.listHits.Add(1)
		return
	}
	s.opts.Logger.Warn("tools/list: mcp-go's answer has an unexpected shape; serving it without the cache", "status", buf.status, "content_type", buf.header.Get("Content-Type"))
	r.Body = io.NopCloser(bytes.NewReader(body))
	next.ServeHTTP(w, r)
}

// bufferedResponse holds a response until it is complete. It is not an http.Flusher, so mcp-go
// answers with one JSON body instead of upgrading to an event stream.
type bufferedResponse struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (b *bufferedResponse) Header() http.Header { return b.header }

func (b *bufferedResponse) WriteHeader(status int) {
	if b.status == 0 {
		b.status = status
	}
}

func (b *bufferedResponse) Write(p []byte) (int, error) {
	b.WriteHeader(http.StatusOK)
	return b.body.Write(p)
}

func (b *bufferedResponse) copyTo(w http.ResponseWriter) {
	for k, v := range b.header {
		w.Header()[k] = v
	}
	if b.status == 0 {
		b.status = http.StatusOK
	}
	w.WriteHeader(b.status)
	_, _ = w.Write(b.body.Bytes())
}

// readBody reads a request body whole; on an error (too large) the returned body replays what was
// read and then fails the same way, so mcp-go reports it as it would have.
func readBody(r *http.Request) ([]byte, io.ReadCloser) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return nil, io.NopCloser(io.MultiReader(bytes.NewReader(body), errReader{err}))
	}
	return body, io.NopCloser(bytes.NewReader(body))
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }
