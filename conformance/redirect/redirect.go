// Package redirect plays the OAuth client's redirect URI: a loopback HTTP listener that captures
// the authorization response (code, state, iss, error, …) a browser is sent to.
//
// Every flow gets its own Endpoint (a unique path), so concurrent flows never mix their responses
// and a flow that sends no state can still be told apart. The page the browser lands on reports
// its URL fragment back (fragments never reach a server), so tokens leaked in a fragment
// (implicit-style responses) are caught too.
package redirect

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"html"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// Response is one hit on an endpoint: an authorization response as the client would receive it.
type Response struct {
	Time     time.Time  `json:"time"`
	URL      string     `json:"url"`
	Query    url.Values `json:"query"`
	Fragment string     `json:"fragment,omitempty"`
	// Reported is set once the landing page's script reported the fragment (empty or not).
	Reported bool `json:"-"`
}

// Has reports whether the parameter is present (even with an empty value).
func (r Response) Has(name string) bool { _, ok := r.Query[name]; return ok }

// Get returns the first value of a parameter.
func (r Response) Get(name string) string { return r.Query.Get(name) }

// Count returns how many times a parameter appears (RFC 9207 `iss` must appear exactly once).
func (r Response) Count(name string) int { return len(r.Query[name]) }

// Code, State, Iss and Error are the usual parameters.
func (r Response) Code() string  { return r.Get("code") }
func (r Response) State() string { return r.Get("state") }
func (r Response) Iss() string   { return r.Get("iss") }
func (r Response) Error() string { return r.Get("error") }

// Listener is the loopback server behind every Endpoint of a run.
type Listener struct {
	srv   *http.Server
	lns   []net.Listener
	ports []int

	mu        sync.Mutex
	endpoints map[string]*Endpoint
	closed    bool
}

// Start listens on 127.0.0.1 with an OS-chosen port.
func Start() (*Listener, error) {
	l := &Listener{endpoints: map[string]*Endpoint{}}
	l.srv = &http.Server{Handler: http.HandlerFunc(l.serve), ReadHeaderTimeout: 5 * time.Second}
	if _, err := l.AddPort(); err != nil {
		return nil, err
	}
	return l, nil
}

// AddPort opens one more loopback port served by the same handler and returns it (CLI-07: a
// loopback client may come back on another port than the one it registered).
func (l *Listener) AddPort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("redirect listener: %w", err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	l.mu.Lock()
	l.lns = append(l.lns, ln)
	l.ports = append(l.ports, port)
	l.mu.Unlock()
	go func() { _ = l.srv.Serve(ln) }()
	return port, nil
}

// Port returns the main port.
func (l *Listener) Port() int { return l.ports[0] }

// Close stops the listener.
func (l *Listener) Close() error {
	l.mu.Lock()
	l.closed = true
	l.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	return l.srv.Shutdown(ctx)
}

// Endpoint is one redirect URI.
type Endpoint struct {
	path string
	uri  string
	// flow is held by the flow under way (see Hold).
	flow sync.Mutex

	mu     sync.Mutex
	hits   []Response
	notify chan struct{}
}

// NewEndpoint returns a fresh redirect URI http://127.0.0.1:PORT/cb/<random>.
func (l *Listener) NewEndpoint() *Endpoint { return l.NewEndpointHost("127.0.0.1") }

// NewEndpointHost is NewEndpoint with another loopback host name (e.g. "localhost").
func (l *Listener) NewEndpointHost(host string) *Endpoint {
	var b [8]byte
	_, _ = rand.Read(b[:])
	path := "/cb/" + hex.EncodeToString(b[:])
	e := &Endpoint{path: path, uri: fmt.Sprintf("http://%s:%d%s", host, l.Port(), path), notify: make(chan struct{}, 1)}
	l.mu.Lock()
	l.endpoints[path] = e
	l.mu.Unlock()
	return e
}

// NewEndpointAt returns an endpoint with a fixed path on the main port (for redirect URIs that
// another party registered, such as an upstream application's http://127.0.0.1/auth/callback). It
// replaces an earlier endpoint with the same path.
func (l *Listener) NewEndpointAt(path string) *Endpoint {
	e := &Endpoint{path: path, uri: fmt.Sprintf("http://127.0.0.1:%d%s", l.Port(), path), notify: make(chan struct{}, 1)}
	l.mu.Lock()
	l.endpoints[path] = e
	l.mu.Unlock()
	return e
}

// URI is the redirect URI to register and send.
func (e *Endpoint) URI() string { return e.uri }

// Path is the endpoint's path.
func (e *Endpoint) Path() string { return e.path }

// WithPort returns the endpoint's URI with another port (the endpoint still captures hits on any
// port the listener serves).
func (e *Endpoint) WithPort(port int) string {
	u, _ := url.Parse(e.uri)
	u.Host = fmt.Sprintf("%s:%d", u.Hostname(), port)
	return u.String()
}

// Hold reserves the endpoint for one authorization flow until Release: the flows of one client
// (one redirect URI) run one after another, so each reads the response it caused even when
// checks run side by side.
func (e *Endpoint) Hold() { e.flow.Lock() }

// TryHold is Hold when no flow holds the endpoint; it reports whether it did.
func (e *Endpoint) TryHold() bool { return e.flow.TryLock() }

// Release ends Hold.
func (e *Endpoint) Release() { e.flow.Unlock() }

// Hits returns every response received so far.
func (e *Endpoint) Hits() []Response {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]Response(nil), e.hits...)
}

// Received reports whether at least one response arrived.
func (e *Endpoint) Received() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.hits) > 0
}

func (e *Endpoint) wake() {
	select {
	case e.notify <- struct{}{}:
	default:
	}
}

// WaitReported waits until the i-th response's landing page has reported its URL fragment (the
// page's script always does, also when there is none) and returns that response.
func (e *Endpoint) WaitReported(ctx context.Context, i int) (Response, error) {
	for {
		e.mu.Lock()
		if len(e.hits) > i && e.hits[i].Reported {
			r := e.hits[i]
			e.mu.Unlock()
			return r, nil
		}
		e.mu.Unlock()
		select {
		case <-ctx.Done():
			return Response{}, ctx.Err()
		case <-e.notify:
		}
	}
}

// ErrNoResponse means the endpoint received nothing before the context ended.
var ErrNoResponse = errors.New("the redirect URI received no authorization response")

// Wait returns the first response, waiting for it until ctx ends. The fragment, reported by the
// landing page's script, may arrive a moment after the query; Wait gives it up to 300 ms.
func (e *Endpoint) Wait(ctx context.Context) (Response, error) {
	for {
		e.mu.Lock()
		if len(e.hits) > 0 {
			r := e.hits[0]
			e.mu.Unlock()
			return r, nil
		}
		e.mu.Unlock()
		select {
		case <-ctx.Done():
			return Response{}, fmt.Errorf("%w at %s: %v", ErrNoResponse, e.uri, ctx.Err())
		case <-e.notify:
		}
	}
}

const landing = `<!doctype html><html><head><meta charset="utf-8"><title>mcp-auth-conformance redirect</title></head>
<body><p id="done">Authorization response received by the conformance suite. You can close this page.</p>
<script>fetch(location.pathname + "?__fragment=1", {method: "POST", body: location.hash});</script>
</body></html>`

// LaunchURL is a page on this listener (reached as host, e.g. "localhost" to be cross-site from
// 127.0.0.1) that navigates the browser to `to` by a link click, as a third-party site would: the
// navigation carries Sec-Fetch-Site: cross-site.
func (l *Listener) LaunchURL(host, to string) string {
	return fmt.Sprintf("http://%s:%d/launch?%s", host, l.Port(), url.Values{"to": {to}}.Encode())
}

func (l *Listener) serve(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/launch" {
		to := r.URL.Query().Get("to")
		if u, err := url.Parse(to); err != nil || (u.Scheme != "http" && u.Scheme != "https") {
			http.Error(w, "bad target", http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, `<!doctype html><html><body><a id="go" href="%s">continue</a>
<script>document.getElementById("go").click();</script></body></html>`, html.EscapeString(to))
		return
	}
	l.mu.Lock()
	e := l.endpoints[r.URL.Path]
	l.mu.Unlock()
	if e == nil {
		http.NotFound(w, r)
		return
	}
	if r.Method == http.MethodPost && r.URL.Query().Get("__fragment") == "1" {
		b, _ := io.ReadAll(io.LimitReader(r.Body, 64<<10))
		e.mu.Lock()
		if n := len(e.hits); n > 0 {
			e.hits[n-1].Fragment = strings.TrimPrefix(string(b), "#")
			e.hits[n-1].Reported = true
		}
		e.mu.Unlock()
		e.wake()
		w.WriteHeader(http.StatusNoContent)
		return
	}
	if r.Method != http.MethodGet {
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	u := *r.URL
	u.Scheme, u.Host = "http", r.Host
	e.mu.Lock()
	e.hits = append(e.hits, Response{Time: time.Now(), URL: u.String(), Query: r.URL.Query()})
	e.mu.Unlock()
	e.wake()
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = io.WriteString(w, landing)
}
