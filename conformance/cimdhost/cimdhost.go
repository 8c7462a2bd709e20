// Package cimdhost serves Client ID Metadata Documents for the CIMD checks: an HTTP server whose
// responses the checks set per path (status, headers, body) and which counts the fetches, so a check
// can tell whether the target fetched a URL it should have refused.
//
// The target must reach it over https at BaseURL: put it behind a TLS-terminating tunnel or
// proxy (for a remote target), or serve TLS directly with a certificate the target trusts.
package cimdhost

import (
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
)

type doc struct {
	status int
	header http.Header
	body   []byte
}

// Host is the document server.
type Host struct {
	base string
	srv  *http.Server
	ln   net.Listener

	mu     sync.Mutex
	docs   map[string]doc
	hits   map[string]int
	filter func(path string, body []byte) []byte
}

// SetFilter installs a function that rewrites every document body as it is served (nil: none).
// The conformance self-test uses it to show the target another document than the suite wrote.
func (h *Host) SetFilter(f func(path string, body []byte) []byte) {
	h.mu.Lock()
	h.filter = f
	h.mu.Unlock()
}

// Options configure a Host.
type Options struct {
	// Listen is the address to listen on (e.g. 127.0.0.1:0).
	Listen string
	// BaseURL is the https URL prefix at which the target reaches the listener (no trailing slash).
	// Empty: https://<listen address> (only useful with TLS set and a target that trusts it).
	BaseURL string
	// TLS, when set, makes the listener serve https itself.
	TLS *tls.Config
}

// Start listens and serves.
func Start(opts Options) (*Host, error) {
	ln, err := net.Listen("tcp", opts.Listen)
	if err != nil {
		return nil, fmt.Errorf("CIMD host: listen on %s: %w", opts.Listen, err)
	}
	h := &Host{ln: ln, docs: map[string]doc{}, hits: map[string]int{}}
	h.base = strings.TrimSuffix(opts.BaseURL, "/")
	if h.base == "" {
		h.base = "https://" + ln.Addr().String()
	}
	h.srv = &http.Server{Handler: http.HandlerFunc(h.serve), ReadHeaderTimeout: 5 * time.Second}
	if opts.TLS != nil {
		ln = tls.NewListener(ln, opts.TLS)
	}
	go func() { _ = h.srv.Serve(ln) }()
	return h, nil
}

// Addr is the listen address.
func (h *Host) Addr() string { return h.ln.Addr().String() }

// BaseURL implements checks.CIMDHost.
func (h *Host) BaseURL() string { return h.base }

// Serve implements checks.CIMDHost.
func (h *Host) Serve(path string, status int, header http.Header, body []byte) {
	h.mu.Lock()
	h.docs[path] = doc{status: status, header: header.Clone(), body: append([]byte(nil), body...)}
	h.mu.Unlock()
}

// Hits implements checks.CIMDHost.
func (h *Host) Hits(path string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.hits[path]
}

// Close stops the server.
func (h *Host) Close() error { return h.srv.Close() }

func (h *Host) serve(w http.ResponseWriter, r *http.Request) {
	h.mu.Lock()
	h.hits[r.URL.Path]++
	d, ok := h.docs[r.URL.Path]
	filter := h.filter
	h.mu.Unlock()
	if !ok {
		http.NotFound(w, r)
		return
	}
	for k, vs := range d.header {
		w.Header()[k] = vs
	}
	if d.status == 0 {
		d.status = http.StatusOK
	}
	body := d.body
	if filter != nil && d.status == http.StatusOK {
		body = filter(r.URL.Path, body)
	}
	w.WriteHeader(d.status)
	_, _ = w.Write(body)
}
