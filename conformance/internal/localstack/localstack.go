// Package localstack starts the whole local stack in-process, on loopback: the mock Auth0 and the
// reference server (OAuth proxy + MCP endpoint, the same wiring as cnpg-mcp-server), each behind a
// switchable HTTP wrapper so the self-test can inject one defect at a time. It also gives the
// suite what only an in-process target can: the target's clock (expiry checks), the upstream's
// request log and controls, a second user, a sibling deployment, and a client-metadata document
// host the server may fetch from.
package localstack

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cnpg-mcp/cnpg-mcp/conformance/checks"
	"github.com/cnpg-mcp/cnpg-mcp/conformance/cimdhost"
	"github.com/cnpg-mcp/cnpg-mcp/conformance/internal/defects"
	"github.com/cnpg-mcp/cnpg-mcp/conformance/login"
	"github.com/cnpg-mcp/cnpg-mcp/mockauth0"
	mconfig "github.com/cnpg-mcp/cnpg-mcp/mockauth0/config"
	"github.com/cnpg-mcp/cnpg-mcp/server/app"
	"github.com/cnpg-mcp/cnpg-mcp/server/config"
	"github.com/cnpg-mcp/cnpg-mcp/server/tools"
)

// SecondUser is the mock tenant's second user (RS-09).
var SecondUser = login.Credentials{Username: "second@example.com", Password: "second-password"}

// Options tune the stack.
type Options struct {
	// Dir holds the stack's files (store, keys); a temporary directory when empty.
	Dir string
	// Logger receives the server's and the mock's logs (default: discarded).
	Logger *slog.Logger
	// Sibling also starts a second deployment of the server (other public URL and store, the same
	// upstream application and signing key) for RS-04.
	Sibling bool
}

// Stack is the running local stack.
type Stack struct {
	Mock    *mockauth0.Server
	MockURL string // the issuer, served through the upstream wrapper
	App     *app.App
	Target  string // the MCP endpoint URL
	Sibling string // the sibling deployment's MCP URL ("" without one)
	CIMD    *cimdhost.Host
	State   *defects.State

	clock   *offsetClock
	dir     string
	servers []*http.Server
	closers []func()

	target   atomic.Pointer[http.Handler]
	upstream atomic.Pointer[http.Handler]
	baseT    http.Handler // observer(server)
	baseU    http.Handler // the mock
	mu       sync.Mutex
}

type offsetClock struct {
	mu  sync.Mutex
	off time.Duration
}

func (c *offsetClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.off)
}

func (c *offsetClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.off += d
	c.mu.Unlock()
}

// switchable serves whatever handler is current.
type switchable struct{ p *atomic.Pointer[http.Handler] }

func (s switchable) ServeHTTP(w http.ResponseWriter, r *http.Request) { (*s.p.Load()).ServeHTTP(w, r) }

func serve(ln net.Listener, h http.Handler) *http.Server {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	return srv
}

// Start builds and starts the stack. Close it.
func Start(ctx context.Context, o Options) (s *Stack, err error) {
	s = &Stack{clock: &offsetClock{}, dir: o.Dir}
	defer func() {
		if err != nil {
			s.Close()
		}
	}()
	if s.dir == "" {
		s.dir, err = os.MkdirTemp("", "cnpg-mcp-conformance-")
		if err != nil {
			return nil, err
		}
		s.closers = append(s.closers, func() { _ = os.RemoveAll(s.dir) })
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}

	// The mock Auth0, reached through the upstream wrapper.
	mockLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s.MockURL = "http://" + mockLn.Addr().String() + "/"
	mc := mockauth0.DefaultConfig()
	mc.Issuer = s.MockURL
	mc.Users = append(mc.Users, mconfig.User{Email: SecondUser.Username, Password: SecondUser.Password, Sub: "auth0|5ec0nd000000000000000002", Name: "Second User"})
	s.Mock, err = mockauth0.Start(ctx, mc, mockauth0.WithRSABits(2048), mockauth0.WithLogger(log))
	if err != nil {
		_ = mockLn.Close()
		return nil, fmt.Errorf("start the mock Auth0: %w", err)
	}
	s.closers = append(s.closers, func() { _ = s.Mock.Close() })
	s.baseU = s.Mock.Handler()
	s.upstream.Store(&s.baseU)
	s.servers = append(s.servers, serve(mockLn, switchable{&s.upstream}))

	// The client-metadata document host: https on loopback with its own CA.
	cimdTLS, cimdTrust, err := selfSigned()
	if err != nil {
		return nil, err
	}
	s.CIMD, err = cimdhost.Start(cimdhost.Options{Listen: "127.0.0.1:0", TLS: cimdTLS})
	if err != nil {
		return nil, err
	}
	s.closers = append(s.closers, func() { _ = s.CIMD.Close() })
	cimdIP := netip.MustParseAddrPort(s.CIMD.Addr()).Addr()

	// The reference server.
	a, ln, err := s.startServer(ctx, "main", log, cimdIP, cimdTrust)
	if err != nil {
		return nil, err
	}
	s.App = a
	s.Target = a.Config.ResourceURL()
	e := a.Proxy.Endpoints()
	s.State = defects.NewState(defects.Paths{Authorize: path(e.Authorize), Token: path(e.Token), Register: path(e.Register),
		Revoke: path(e.Revoke), Consent: path(e.Consent), Callback: path(e.Callback), MCP: path(s.Target),
		PRM: path(e.ProtectedResource), Metadata: path(e.Metadata)})
	s.State.Upstream = s.MockURL
	s.baseT = defects.Observe(a.Handler, s.State)
	s.target.Store(&s.baseT)
	s.servers = append(s.servers, serve(ln, switchable{&s.target}))

	if o.Sibling {
		b, bln, err := s.startServer(ctx, "sibling", log, cimdIP, cimdTrust)
		if err != nil {
			return nil, err
		}
		s.Sibling = b.Config.ResourceURL()
		s.servers = append(s.servers, serve(bln, b.Handler))
	}
	return s, nil
}

func path(raw string) string {
	u, err := urlParse(raw)
	if err != nil {
		return raw
	}
	return u.Path
}

func (s *Stack) startServer(ctx context.Context, name string, log *slog.Logger, cimdIP netip.Addr, cimdTrust *x509.CertPool) (*app.App, net.Listener, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, nil, err
	}
	write := func(file, content string) (string, error) {
		p := filepath.Join(s.dir, name+"-"+file)
		return p, os.WriteFile(p, []byte(content), 0o600)
	}
	secret, err := write("client-secret", mconfig.DefaultClientSecret)
	if err != nil {
		return nil, nil, err
	}
	// The sibling shares the signing key: only the audience keeps its tokens apart (RS-04).
	sign, err := write("signing-key", base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 32)))
	if err != nil {
		return nil, nil, err
	}
	seal, err := write("sealing-key", base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{9}, 32)))
	if err != nil {
		return nil, nil, err
	}
	cfg := config.Config{
		Issuer: s.MockURL, Audience: mconfig.DefaultAPIIdentifier, ClientID: mconfig.DefaultClientID,
		ClientSecretFile: secret, SigningKeyFile: sign, SealingKeyFile: seal, LogLevel: "error",
		Storage:   config.Storage{Driver: "bolt", Path: filepath.Join(s.dir, name+"-store.db")},
		PublicURL: "http://" + ln.Addr().String(),
	}
	cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		_ = ln.Close()
		return nil, nil, fmt.Errorf("%s server config: %w", name, err)
	}
	a, err := app.New(ctx, &cfg, app.Options{
		Logger: log, Listener: ln, Now: s.clock.Now,
		CIMDAllowIP: func(ip netip.Addr) bool { return ip == cimdIP },
		CIMDTLS:     &tls.Config{RootCAs: cimdTrust, MinVersion: tls.VersionTLS12},
		// The MCP endpoint as cnpg-mcp-server serves it; no cluster is needed: the checks
		// initialize, list tools and call a mutating tool without the scope for it (refused by
		// the bearer check before any Kubernetes call).
		AllowMissingKubernetes: true,
	})
	if err != nil {
		_ = ln.Close()
		return nil, nil, fmt.Errorf("start the %s reference server: %w", name, err)
	}
	s.closers = append(s.closers, func() { _ = a.Store.Close() })
	return a, ln, nil
}

// Config is a suite configuration pointing at the stack, with every in-process capability on.
func (s *Stack) Config() checks.Config {
	return checks.Config{
		Target:     s.Target,
		Login:      login.Options{Credentials: login.Credentials{Username: mconfig.DefaultUserEmail, Password: mconfig.DefaultUserPassword}},
		SecondUser: &SecondUser,
		Upstream:   mockView{s.Mock},
		TimeTravel: func(_ context.Context, d time.Duration) error { s.clock.Advance(d); return nil },
		UpstreamClient: &checks.UpstreamClient{Issuer: s.MockURL, ClientID: mconfig.DefaultClientID,
			ClientSecret: mconfig.DefaultClientSecret, Audience: mconfig.DefaultAPIIdentifier},
		ScopeProbe: &checks.ScopeProbe{Granted: tools.ScopeRead, Tool: "scale_postgres_cluster",
			Arguments: map[string]any{"name": "conformance", "instances": 2, "dry_run": true}, Needs: []string{tools.ScopeWrite}},
		Sibling: s.Sibling,
		CIMD:    s.CIMD,
	}
}

// SetDefect puts a defect in front of the server and the mock (nil: none). It resets the
// observer's state.
func (s *Stack) SetDefect(d *defects.Defect) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.State.Reset()
	t, u := s.baseT, s.baseU
	if d != nil && d.Target != nil {
		t = d.Target(s.State, s.baseT)
	}
	if d != nil && d.Upstream != nil {
		u = d.Upstream(s.State, s.baseU)
	}
	s.target.Store(&t)
	s.upstream.Store(&u)
	if d != nil && d.CIMD != nil {
		f, st := d.CIMD, s.State
		s.CIMD.SetFilter(func(path string, body []byte) []byte { return f(st, path, body) })
	} else {
		s.CIMD.SetFilter(nil)
	}
}

// Close stops everything.
func (s *Stack) Close() {
	for _, srv := range s.servers {
		_ = srv.Close()
	}
	for i := len(s.closers) - 1; i >= 0; i-- {
		s.closers[i]()
	}
}
