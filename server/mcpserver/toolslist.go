package mcpserver

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
)

// tools/list from memory.
//
// mcp-go rebuilds the tool list for every tools/list and marshals each tool's schema maps through
// reflection: 1.5–3 ms of CPU per request for 35 tools (a ping costs 0.1 ms), for an answer that
// never changes while the server runs. Even before it marshals, it copies every registered tool
// into a fresh slice, merges them with the session's tools (a new, empty map for every Streamable
// HTTP request) and sorts the copies by reflection: about half of a tools/list's remaining CPU and
// most of its garbage. Here the tools array is marshalled once, when the server is built, and
// spliced into an answer mcp-go makes itself, so every check mcp-go makes (protocol version,
// headers, session, DNS rebinding), the JSON-RPC envelope and the 2026-07-28 result metadata
// (resultType, serverInfo, ttlMs, cacheScope) stay mcp-go's:
//
//  1. Handler sees a POST whose body is one tools/list request without a cursor, marks the
//     request's context and hands it to listMCP: the same mcp-go server (same options, same
//     Streamable HTTP options) with no tools registered.
//  2. mcp-go validates and dispatches it as usual; with nothing to copy or sort, its tool filter
//     (listFilter) only records that the marked request reached it, and mcp-go marshals
//     {"tools":[]} — microseconds.
//  3. Handler replaces the one `"tools":[]` of that buffered response with the cached array. When
//     the request's Accept-Encoding allows gzip and the array is at least gzipMinBytes, the answer
//     is sent gzip-compressed (the 43 KB of JSON of all tools become 7.3 KB) from the array
//     deflated once (gzip.go), with `Content-Encoding: gzip` and `Vary: Accept-Encoding`. Only this
//     JSON answer is ever compressed, never an event stream.
//
// Anything unexpected (a response that is not one JSON object with one empty tools array) falls
// back to the full server's normal path for that request; an answer mcp-go refused is sent as it is.
// The cache key is the server: one Server serves one (read-only, toolsets) configuration, its tools
// are registered once in New and never change, and the tools array mcp-go sends is the same for
// every protocol version (TestToolsListFromMemory compares the spliced response with the full
// server's own, byte for byte, at every version).
type toolsList struct {
	field []byte      // `"tools":` and the tools array exactly as mcp-go marshals it
	gz    *gzipSplice // field deflated once, for answers sent with Content-Encoding: gzip (gzip.go); nil: too small to bother
}

// gzipMinBytes is the smallest tools array sent compressed: below it the bytes saved do not pay for
// the client's inflater (compress/gzip allocates 42 KB for each reader).
const gzipMinBytes = 1024

// gzipBufs holds the buffers gzip answers are assembled in.
var gzipBufs = sync.Pool{New: func() any { return new([]byte) }}

type fastListKey struct{}

// fastList is the per-request mark of step 1; used records step 2.
type fastList struct{ used bool }

var emptyTools = []byte(`"tools":[]`)

// buildToolsList asks mcp-go for its tools/list answer once, keeps its tools array, and builds
// listMCP with the full server's options.
func (s *Server) buildToolsList(opts Options, serverOpts []server.ServerOption) error {
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
	field := append([]byte(`"tools":`), b...)
	s.list = &toolsList{field: field}
	if opts.CompressToolsList && len(field) >= gzipMinBytes {
		if s.list.gz, err = newGzipSplice(field); err != nil {
			return fmt.Errorf("mcpserver: tools/list: gzip: %w", err)
		}
	}
	s.listMCP = server.NewMCPServer(opts.Name, opts.Version, append(slices.Clone(serverOpts), server.WithToolFilter(listFilter))...)
	return nil
}

// listFilter is listMCP's tool filter (step 2): it records that a marked tools/list got through
// mcp-go's checks to the listing, and lists nothing (listMCP has no tools; anything else would be a
// wiring mistake, and then the request is not spliced).
func listFilter(ctx context.Context, tools []mcp.Tool) []mcp.Tool {
	if fl, ok := ctx.Value(fastListKey{}).(*fastList); ok && !fl.used && len(tools) == 0 {
		fl.used = true
	}
	return tools
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

// serveToolsList runs steps 1–3 for one tools/list request whose body was read already: list is
// listMCP's handler, full the full server's.
func (s *Server) serveToolsList(w http.ResponseWriter, r *http.Request, list, full http.Handler, body []byte) {
	fl := &fastList{}
	buf := &bufferedResponse{header: http.Header{}}
	marked := r.WithContext(context.WithValue(r.Context(), fastListKey{}, fl))
	marked.Body = io.NopCloser(bytes.NewReader(body))
	list.ServeHTTP(buf, marked)
	if !fl.used {
		buf.copyTo(w) // mcp-go refused it before listing (the full server makes the same checks): its answer as is
		return
	}
	resp := buf.body.Bytes()
	if i := bytes.Index(resp, emptyTools); i >= 0 && buf.status == http.StatusOK && strings.HasPrefix(buf.header.Get("Content-Type"), "application/json") &&
		bytes.LastIndex(resp, emptyTools) == i {
		h := w.Header()
		for k, v := range buf.header {
			h[k] = v
		}
		prefix, suffix := resp[:i], resp[i+len(emptyTools):]
		if gz := s.list.gz; gz != nil {
			h.Add("Vary", "Accept-Encoding")
		}
		if gz := s.list.gz; gz != nil && acceptsGzip(r.Header.Values("Accept-Encoding")) {
			bp := gzipBufs.Get().(*[]byte)
			out := gz.appendTo((*bp)[:0], prefix, suffix)
			h.Set("Content-Encoding", "gzip")
			h.Set("Content-Length", strconv.Itoa(len(out)))
			w.WriteHeader(http.StatusOK)
			_, _ = w.Write(out)
			*bp = out
			gzipBufs.Put(bp)
		} else {
			h.Set("Content-Length", strconv.Itoa(len(prefix)+len(s.list.field)+len(suffix)))
			w.WriteHeader(http.StatusOK)
			_, _ = w.Write(prefix)
			_, _ = w.Write(s.list.field)
			_, _ = w.Write(suffix)
		}
		s.listHits.Add(1)
		return
	}
	s.opts.Logger.Warn("tools/list: mcp-go's answer has an unexpected shape; serving it without the cache", "status", buf.status, "content_type", buf.header.Get("Content-Type"))
	r.Body = io.NopCloser(bytes.NewReader(body))
	full.ServeHTTP(w, r)
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

// readAllBody reads a request body whole; on an error (too large) the returned body replays what was
// read and then fails the same way, so mcp-go reports it as it would have.
func readAllBody(r *http.Request) ([]byte, io.ReadCloser) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return nil, io.NopCloser(io.MultiReader(bytes.NewReader(body), errReader{err}))
	}
	return body, io.NopCloser(bytes.NewReader(body))
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }
