// Package stack starts what the interop tier and the page checks run against, in-process and on
// loopback: the mock Auth0 (default dev tenant) and the reference server (OAuth proxy + MCP endpoint,
// wired by server/app exactly as cnpg-mcp-server is), sharing one clock the tests can advance, and
// optionally a real kube-apiserver with the CloudNativePG CRDs (internal/kubetest) for the tools. A
// recorder in front of the server keeps what each request was, so a test can show which protocol
// version a client spoke and which grant refreshed its token.
package stack

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/cnpg-mcp/cnpg-mcp/internal/kubetest"
	"github.com/cnpg-mcp/cnpg-mcp/mockauth0"
	"github.com/cnpg-mcp/cnpg-mcp/mockauth0/clock"
	mconfig "github.com/cnpg-mcp/cnpg-mcp/mockauth0/config"
	"github.com/cnpg-mcp/cnpg-mcp/server/app"
	"github.com/cnpg-mcp/cnpg-mcp/server/config"
)

// Options tune the stack.
type Options struct {
	// Kube starts a kube-apiserver with the CloudNativePG CRDs for the tools (else tool calls fail
	// with "cannot reach Kubernetes").
	Kube *kubetest.Env
	// Logger receives the server's and the mock's logs (default: discarded).
	Logger *slog.Logger
	// Config adjusts the server configuration before it is validated.
	Config func(*config.Config)
}

// Stack is the running stack.
type Stack struct {
	Mock     *mockauth0.Server
	App      *app.App
	MCP      string // the MCP endpoint URL
	Base     string // the server's base URL (also its OAuth issuer)
	Clock    *clock.Offset
	Recorder *Recorder

	dir     string
	server  *http.Server
	closers []func()
}

// Start builds and starts the stack. Close it.
func Start(ctx context.Context, o Options) (s *Stack, err error) {
	s = &Stack{Clock: &clock.Offset{}, Recorder: &Recorder{}}
	defer func() {
		if err != nil {
			s.Close()
		}
	}()
	if s.dir, err = os.MkdirTemp("", "cnpg-mcp-interop-"); err != nil {
		return nil, err
	}
	s.closers = append(s.closers, func() { _ = os.RemoveAll(s.dir) })
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	mc := mockauth0.DefaultConfig()
	s.Mock, err = mockauth0.Start(ctx, mc, mockauth0.WithClock(s.Clock), mockauth0.WithRSABits(2048), mockauth0.WithLogger(log.With("component", "mockauth0")))
	if err != nil {
		return nil, fmt.Errorf("start the mock Auth0: %w", err)
	}
	s.closers = append(s.closers, func() { _ = s.Mock.Close() })

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	write := func(name, content string) string {
		p := filepath.Join(s.dir, name)
		if err == nil {
			err = os.WriteFile(p, []byte(content), 0o600)
		}
		return p
	}
	cfg := &config.Config{
		Issuer: s.Mock.Issuer(), Audience: mconfig.DefaultAPIIdentifier, ClientID: mconfig.DefaultClientID,
		ClientSecretFile: write("client-secret", mconfig.DefaultClientSecret),
		SigningKeyFile:   write("signing-key", base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 32))),
		SealingKeyFile:   write("sealing-key", base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{9}, 32))),
		PublicURL:        "http://" + ln.Addr().String(), LogLevel: "warn",
		Storage: config.Storage{Driver: "bolt", Path: filepath.Join(s.dir, "store.db")},
	}
	if o.Kube != nil {
		cfg.Kubernetes.Kubeconfig = write("kubeconfig", "")
		if err == nil {
			err = o.Kube.WriteKubeconfig(cfg.Kubernetes.Kubeconfig)
		}
	}
	if err != nil {
		_ = ln.Close()
		return nil, err
	}
	if o.Config != nil {
		o.Config(cfg)
	}
	cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		_ = ln.Close()
		return nil, fmt.Errorf("server config: %w", err)
	}
	s.App, err = app.New(ctx, cfg, app.Options{Logger: log.With("component", "cnpg-mcp-server"), Listener: ln, Now: s.Clock.Now,
		AllowMissingKubernetes: o.Kube == nil})
	if err != nil {
		_ = ln.Close()
		return nil, fmt.Errorf("start the reference server: %w", err)
	}
	s.closers = append(s.closers, func() { _ = s.App.Store.Close() })
	s.MCP = cfg.ResourceURL()
	s.Base = strings.TrimSuffix(cfg.PublicURL, "/")
	s.server = &http.Server{Handler: s.Recorder.wrap(s.App.Handler), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = s.server.Serve(ln) }()
	return s, nil
}

// Close stops everything.
func (s *Stack) Close() {
	if s.server != nil {
		_ = s.server.Close()
	}
	for i := len(s.closers) - 1; i >= 0; i-- {
		s.closers[i]()
	}
}

// Credentials of the mock's default user.
var (
	Username = mconfig.DefaultUserEmail
	Password = mconfig.DefaultUserPassword
)

// Request is what the recorder kept of one request to the server.
type Request struct {
	Time   time.Time
	Method string
	Path   string
	Status int
	// ProtocolVersion is the MCP-Protocol-Version header (MCP requests).
	ProtocolVersion string
	// RPC lists the JSON-RPC methods of an MCP POST ("tools/call:<tool>" for tool calls; the
	// protocol version an initialize asked for as "initialize:<version>").
	RPC []string
	// GrantType and ClientID of a token request; Scope its scope parameter.
	GrantType, ClientID, Scope string
	// Challenge is the WWW-Authenticate header of the response.
	Challenge string
}

// Recorder keeps every request to the server, in order.
type Recorder struct {
	mu   sync.Mutex
	reqs []Request
}

// Mark returns a position to read the requests made after it (Since).
func (r *Recorder) Mark() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.reqs)
}

// Since returns the requests recorded after mark.
func (r *Recorder) Since(mark int) []Request {
	r.mu.Lock()
	defer r.mu.Unlock()
	if mark > len(r.reqs) {
		return nil
	}
	return append([]Request(nil), r.reqs[mark:]...)
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (r *Recorder) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		rec := Request{Time: time.Now(), Method: req.Method, Path: req.URL.Path, ProtocolVersion: req.Header.Get("MCP-Protocol-Version")}
		if req.Method == http.MethodPost && req.Body != nil {
			body, _ := io.ReadAll(io.LimitReader(req.Body, 1<<20))
			_ = req.Body.Close()
			req.Body = io.NopCloser(bytes.NewReader(body))
			switch {
			case strings.HasPrefix(req.Header.Get("Content-Type"), "application/json"):
				rec.RPC = rpcMethods(body)
			case strings.HasPrefix(req.Header.Get("Content-Type"), "application/x-www-form-urlencoded"):
				if v, err := url.ParseQuery(string(body)); err == nil {
					rec.GrantType, rec.ClientID, rec.Scope = v.Get("grant_type"), v.Get("client_id"), v.Get("scope")
				}
			}
		}
		sw := &statusWriter{ResponseWriter: w}
		next.ServeHTTP(sw, req)
		rec.Status = sw.status
		rec.Challenge = w.Header().Get("WWW-Authenticate")
		r.mu.Lock()
		r.reqs = append(r.reqs, rec)
		r.mu.Unlock()
	})
}

func rpcMethods(body []byte) []string {
	type msg struct {
		Method string `json:"method"`
		Params struct {
			Name            string `json:"name"`
			ProtocolVersion string `json:"protocolVersion"`
		} `json:"params"`
	}
	var msgs []msg
	if b := bytes.TrimSpace(body); len(b) > 0 && b[0] == '[' {
		_ = json.Unmarshal(b, &msgs)
	} else {
		var m msg
		if json.Unmarshal(b, &m) == nil {
			msgs = []msg{m}
		}
	}
	var out []string
	for _, m := range msgs {
		switch {
		case m.Method == "tools/call":
			out = append(out, m.Method+":"+m.Params.Name)
		case m.Method == "initialize":
			out = append(out, m.Method+":"+m.Params.ProtocolVersion)
		case m.Method != "":
			out = append(out, m.Method)
		}
	}
	return out
}
