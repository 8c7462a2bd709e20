// Package mcpserver is the MCP endpoint: mark3labs/mcp-go over Streamable HTTP (to be mounted
// behind server/bearer) and over stdio, serving the CloudNativePG tools of server/tools.
//
// It speaks MCP 2026-07-28 (stateless; server/discover, per-request _meta) and the older
// initialize-based versions on the same endpoint. Defaults follow the pitfalls measured in
// shared/spec/libraries.md: tool arguments are validated against the input schemas (required
// arguments included, unknown ones rejected) by each tool (server/tools), whose errors name the
// arguments in plain words where mcp-go's WithInputSchemaValidation would print a Go struct;
// DNS-rebinding protection stays on; the request body is
// bounded; sessions are not stored (several replicas work, and a session never authenticates) and
// their IDs are bound to the caller who created them (session.go).
//
// Options.Toolsets exposes only some groups of tools (server/tools.Toolsets). tools/list is answered
// from a tools array marshalled once per server (toolslist.go), not rebuilt per request.
//
// Every tool call gets one structured audit line (who, tool, arguments minus secrets, object,
// dry run, result) and a metrics observation, including calls rejected by schema validation.
package mcpserver

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/cnpg-mcp/cnpg-mcp/server/identity"
	"github.com/cnpg-mcp/cnpg-mcp/server/tools"
)

// ToolObserver receives one observation per tool call (*metrics.Metrics implements it).
type ToolObserver interface {
	ObserveToolCall(tool, result string, d time.Duration)
}

// Options configures the server.
type Options struct {
	Name    string // implementation name; default "cnpg-mcp"
	Version string // implementation version; default "dev"
	// Tools to serve (tools.All(deps)). Mutating tools are dropped when ReadOnly is set.
	Tools []tools.Tool
	// ReadOnly registers no mutating tool at all.
	ReadOnly bool
	// Toolsets, when not empty, registers only the tools of these toolsets (tools.Toolsets); an
	// unknown name is an error.
	Toolsets []string
	// RequireIdentity refuses tool calls whose context carries no identity.Identity: set it when
	// the handler is mounted behind the bearer check, so a wiring mistake fails closed.
	RequireIdentity bool
	// Logger receives the audit lines. Default slog.Default().
	Logger *slog.Logger
	// Observer receives tool-call metrics; may be nil.
	Observer ToolObserver
	// MaxBodyBytes bounds a request body (default 1 MiB).
	MaxBodyBytes int64
	// DisableLocalhostProtection turns off mcp-go's DNS-rebinding check (a loopback connection with
	// a non-loopback Host header gets 403). Only for reverse proxies on the same host.
	DisableLocalhostProtection bool
	// Instructions are sent to clients; default describes the tools' safety rules.
	Instructions string
	// CompressToolsList sends tools/list gzip-compressed to clients whose Accept-Encoding allows it
	// (toolslist.go). Off by default: measured on one machine, inflating the 43 KB list costs a
	// client more CPU than the server saves; it pays off for clients across slow links.
	CompressToolsList bool

	noListCache bool // tests: serve tools/list the way mcp-go does on its own
}

// Server is the MCP server.
type Server struct {
	opts Options
	mcp  *server.MCPServer
	// listMCP answers the plain tools/list requests that list splices the cached array into: the
	// same server without tools (toolslist.go).
	listMCP *server.MCPServer
	tools   map[string]tools.Tool
	names   []string
	starts  sync.Map   // *mcp.CallToolRequest -> time.Time
	list    *toolsList // tools/list from memory (toolslist.go); nil: mcp-go's own
	// listHits counts tools/list answers served from memory (tests).
	listHits atomic.Int64
}

const defaultInstructions = "Tools to manage PostgreSQL clusters run by CloudNativePG. Every mutating tool accepts dry_run: true to preview the exact object or patch. " +
	"Destructive tools need confirm: true after the user agreed (or ask the user through elicitation). Names follow RFC 1123."

// New builds the server.
func New(opts Options) (*Server, error) {
	if len(opts.Tools) == 0 {
		return nil, errors.New("mcpserver: no tools given")
	}
	if opts.Name == "" {
		opts.Name = "cnpg-mcp"
	}
	if opts.Version == "" {
		opts.Version = "dev"
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.MaxBodyBytes <= 0 {
		opts.MaxBodyBytes = 1 << 20
	}
	if opts.Instructions == "" {
		opts.Instructions = defaultInstructions
	}
	selected, err := tools.SelectToolsets(opts.Tools, opts.Toolsets)
	if err != nil {
		return nil, err
	}
	s := &Server{opts: opts, tools: map[string]tools.Tool{}}
	hooks := &server.Hooks{}
	hooks.AddBeforeCallTool(func(_ context.Context, _ any, req *mcp.CallToolRequest) { s.starts.Store(req, time.Now()) })
	hooks.AddAfterCallTool(func(ctx context.Context, _ any, req *mcp.CallToolRequest, result any) {
		res, _ := result.(*mcp.CallToolResult)
		s.audit(ctx, req, res, nil)
	})
	hooks.AddOnError(func(ctx context.Context, _ any, method mcp.MCPMethod, msg any, err error) {
		if req, ok := msg.(*mcp.CallToolRequest); ok && method == mcp.MethodToolsCall {
			s.audit(ctx, req, nil, err)
		}
	})
	serverOpts := []server.ServerOption{
		server.WithToolCapabilities(false),
		server.WithStrictInputSchemaDefault(),
		server.WithRecovery(),
		server.WithHooks(hooks),
		server.WithInstructions(opts.Instructions),
	}
	s.mcp = server.NewMCPServer(opts.Name, opts.Version, serverOpts...)
	for _, t := range selected {
		if opts.ReadOnly && t.Mutating {
			continue
		}
		name := t.Def.Name
		if _, dup := s.tools[name]; dup {
			return nil, fmt.Errorf("mcpserver: tool %q registered twice", name)
		}
		s.tools[name] = t
		s.names = append(s.names, name)
		s.mcp.AddTool(t.Def, s.guard(t))
	}
	if len(s.names) == 0 {
		return nil, fmt.Errorf("mcpserver: no tools left with toolsets %v and read-only %v", opts.Toolsets, opts.ReadOnly)
	}
	sort.Strings(s.names)
	if !opts.noListCache {
		if err := s.buildToolsList(opts, serverOpts); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// MCPServer exposes the underlying mcp-go server (for in-process clients in tests).
func (s *Server) MCPServer() *server.MCPServer { return s.mcp }

// ToolNames returns the registered tool names, sorted.
func (s *Server) ToolNames() []string { return slices.Clone(s.names) }

// ToolScopes returns the scopes a tools/call of name needs beyond the server-wide ones; it is
// meant for bearer.Options.ToolScopes. Unknown tools need nothing extra (mcp-go answers them with
// "tool not found").
func (s *Server) ToolScopes(name string) []string {
	if t, ok := s.tools[name]; ok {
		return t.Scopes()
	}
	return nil
}

// Handler returns the Streamable HTTP handler. Mount it at the MCP path behind the bearer check.
func (s *Server) Handler() http.Handler {
	httpOpts := []server.StreamableHTTPOption{
		server.WithDisableLocalhostProtection(s.opts.DisableLocalhostProtection),
		server.WithStreamableHTTPLogger(s.opts.Logger),
		server.WithSessionIdManagerResolver(sessionBinding{}),
	}
	h := server.NewStreamableHTTPServer(s.mcp, httpOpts...)
	var lh http.Handler
	if s.listMCP != nil {
		lh = server.NewStreamableHTTPServer(s.listMCP, httpOpts...)
	}
	limit := s.opts.MaxBodyBytes
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !checkSessionBinding(w, r) {
			return
		}
		var body []byte
		if rb, ok := r.Body.(readBody); ok && rb.Len() == len(rb.RequestBody()) && int64(rb.Len()) <= limit {
			body = rb.RequestBody() // read by the bearer check already (bearer.Body), and r.Body is still unread
		} else if r.Body != nil {
			r.Body = http.MaxBytesReader(w, r.Body, limit)
			if s.list != nil && r.Method == http.MethodPost {
				body, r.Body = readAllBody(r)
			}
		}
		if s.list != nil && r.Method == http.MethodPost && body != nil && isPlainToolsList(body) {
			s.serveToolsList(w, r, lh, h, body)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// readBody is a request body already read whole in front of the handler (*bearer.Body): Len is
// what is left to read of it.
type readBody interface {
	RequestBody() []byte
	Len() int
}

// ServeStdio serves MCP over in/out until ctx ends or in closes. No bearer check applies: stdio is
// for a local user running the server with their own Kubernetes credentials.
func (s *Server) ServeStdio(ctx context.Context, in io.Reader, out io.Writer) error {
	return server.NewStdioServer(s.mcp).Listen(ctx, in, out)
}

// guard enforces identity and per-tool scopes inside the tool layer as well, so a tool call never
// runs on a wiring mistake (the bearer check normally answers with an HTTP 403 first).
func (s *Server) guard(t tools.Tool) server.ToolHandlerFunc {
	return func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		id, ok := identity.FromContext(ctx)
		if !ok && s.opts.RequireIdentity {
			return mcp.NewToolResultError("this request carries no authenticated identity; the MCP endpoint must be called with an access token"), nil
		}
		if ok {
			if missing := id.Missing(t.Scopes()); len(missing) > 0 {
				return mcp.NewToolResultError(fmt.Sprintf("%s needs the scope(s) %s, which the access token lacks; authorize again requesting them", t.Def.Name, strings.Join(missing, " "))), nil
			}
		}
		return t.Handler(ctx, req)
	}
}
