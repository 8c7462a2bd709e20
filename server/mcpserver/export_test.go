package mcpserver

// NewUncached builds a server that answers tools/list the way mcp-go does on its own (the
// reference for the cached answer).
func NewUncached(opts Options) (*Server, error) {
	opts.noListCache = true
	return New(opts)
}

// ListHits counts tools/list requests answered from memory.
func (s *Server) ListHits() int64 { return s.listHits.Load() }
