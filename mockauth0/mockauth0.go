// Package mockauth0 is a mock Auth0 tenant that behaves like the real one from the outside: the same
// paths, token shapes (RS256 JWTs for APIs, JWE for no audience and for encrypted APIs, opaque rotating
// refresh tokens with reuse detection), login page selectors, error bodies and a Management API subset.
// Tests start it in-process on a loopback port; the mockauth0 binary serves the same thing.
//
//	srv, err := mockauth0.Start(ctx, mockauth0.DefaultConfig())
//	defer srv.Close()
//	issuer := srv.Issuer() // "http://127.0.0.1:PORT/"
//
// Test controls (clock, faults, key rotation, grant revocation, request log) are methods of Server and,
// when Config.Admin.Enabled, an HTTP API under /mock-admin/v1/ (client: package adminclient).
package mockauth0

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/cnpg-mcp/cnpg-mcp/mockauth0/clock"
	"github.com/cnpg-mcp/cnpg-mcp/mockauth0/config"
	"github.com/cnpg-mcp/cnpg-mcp/mockauth0/control"
	"github.com/cnpg-mcp/cnpg-mcp/mockauth0/keys"
	"github.com/cnpg-mcp/cnpg-mcp/mockauth0/mgmt"
	"github.com/cnpg-mcp/cnpg-mcp/mockauth0/oidc"
	"github.com/cnpg-mcp/cnpg-mcp/mockauth0/tenant"
	"github.com/cnpg-mcp/cnpg-mcp/mockauth0/tokens"
)

// Config is the tenant configuration (see package config).
type Config = config.Config

// RecordedRequest is one request the mock received.
type RecordedRequest = control.RecordedRequest

// Fault is injected into an endpoint's responses.
type Fault = control.Fault

// DefaultConfig is one tenant with one user, one API and the proxy's application (see config.Default).
func DefaultConfig() Config { return config.Default() }

// LoadConfig reads a YAML configuration file.
func LoadConfig(path string) (Config, error) { return config.Load(path) }

type options struct {
	log     *slog.Logger
	clock   *clock.Offset
	rsaBits int
}

// Option customises Start.
type Option func(*options)

// WithLogger sets the logger (default: discard).
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.log = l } }

// WithClock shares a clock with the caller, e.g. the server under test.
func WithClock(c *clock.Offset) Option { return func(o *options) { o.clock = c } }

// WithRSABits sets the signing-key size (default 2048).
func WithRSABits(n int) Option { return func(o *options) { o.rsaBits = n } }

// Server is a running mock tenant.
type Server struct {
	cfg      Config
	issuer   string
	listener net.Listener
	srv      *http.Server
	handler  http.Handler
	done     chan struct{}
	tenant   *tenant.Tenant
	keys     *keys.Set
	clock    *clock.Offset
	rec      *control.Recorder
	faults   *control.Faults
}

// Start validates cfg, listens on cfg.Addr (default 127.0.0.1:0) and serves until Close or ctx ends.
func Start(ctx context.Context, cfg Config, opts ...Option) (*Server, error) {
	o := options{log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	for _, f := range opts {
		f(&o)
	}
	if o.clock == nil {
		o.clock = &clock.Offset{}
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	addr := cfg.Addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w (choose another --addr)", addr, err)
	}
	issuer := cfg.Issuer
	if issuer == "" {
		issuer = "http://" + ln.Addr().String() + "/"
	}
	s, err := build(cfg, issuer, o)
	if err != nil {
		_ = ln.Close()
		return nil, err
	}
	s.listener = ln
	s.srv = &http.Server{Handler: s.handler, ReadHeaderTimeout: 10 * time.Second, ErrorLog: slog.NewLogLogger(o.log.Handler(), slog.LevelDebug)}
	s.done = make(chan struct{})
	go func() {
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			o.log.Error("mock Auth0 stopped serving", "error", err)
		}
		close(s.done)
	}()
	go func() {
		select {
		case <-ctx.Done():
			_ = s.Close()
		case <-s.done:
		}
	}()
	return s, nil
}

func build(cfg Config, issuer string, o options) (*Server, error) {
	host := strings.TrimSuffix(strings.TrimPrefix(strings.TrimPrefix(issuer, "https://"), "http://"), "/")
	ks, err := keys.New(host, o.rsaBits)
	if err != nil {
		return nil, err
	}
	t, err := tenant.New(cfg, issuer, o.clock)
	if err != nil {
		return nil, err
	}
	minter := &tokens.Minter{Keys: ks, Issuer: issuer}
	s := &Server{cfg: cfg, issuer: issuer, tenant: t, keys: ks, clock: o.clock,
		rec: control.NewRecorder(0), faults: control.NewFaults()}

	mux := http.NewServeMux()
	oidc.New(t, minter, o.log).Register(mux)
	mgmt.New(t, minter).Register(mux)
	if cfg.Admin.Enabled {
		mux.Handle(control.AdminPrefix, control.NewAdmin(s.rec, s.faults, s, cfg.Admin.Token))
	}
	var h http.Handler = mux
	h = s.faults.Middleware(h)
	h = s.rec.Middleware(control.AdminPrefix, o.clock.Now, h)
	h = logRequests(o.log, h)
	s.handler = h
	return s, nil
}

// logRequests logs method, path, status and duration — never query strings, bodies or headers,
// which carry codes, secrets and tokens.
func logRequests(log *slog.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		next.ServeHTTP(sw, r)
		log.Debug("request", "method", r.Method, "path", r.URL.Path, "status", sw.status, "duration", time.Since(start))
	})
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) { s.status = code; s.ResponseWriter.WriteHeader(code) }

func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// Issuer is the tenant's issuer URL, with a trailing slash like every Auth0 issuer.
func (s *Server) Issuer() string { return s.issuer }

// Addr is the listen address (host:port).
func (s *Server) Addr() string { return s.listener.Addr().String() }

// ManagementAudience is the Management API audience, https://<domain>/api/v2/ style.
func (s *Server) ManagementAudience() string { return tenant.ManagementAudience(s.issuer) }

// Handler is the whole HTTP handler (for embedding the mock in another server).
func (s *Server) Handler() http.Handler { return s.handler }

// Close stops the server and waits until it stopped serving.
func (s *Server) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := s.srv.Shutdown(ctx)
	<-s.done
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// Done is closed when the server has stopped.
func (s *Server) Done() <-chan struct{} { return s.done }

// Now is the mock's clock.
func (s *Server) Now() time.Time { return s.clock.Now() }

// Advance moves the mock's clock forward: codes, sessions and tokens expire without sleeping.
func (s *Server) Advance(d time.Duration) { s.clock.Advance(d) }

// ClockOffset is how far the clock was advanced.
func (s *Server) ClockOffset() time.Duration { return s.clock.Offset() }

// Requests returns every recorded request (admin API requests excluded).
func (s *Server) Requests() []RecordedRequest { return s.rec.Requests("", 0) }

// RequestsTo returns the recorded requests to one path, e.g. "/oauth/token".
func (s *Server) RequestsTo(path string) []RecordedRequest { return s.rec.Requests(path, 0) }

// ResetRequests forgets the recorded requests.
func (s *Server) ResetRequests() { s.rec.Reset() }

// SetFault injects a fault into the responses of path.
func (s *Server) SetFault(path string, f Fault) error {
	f.Path = path
	return s.faults.Set(f)
}

// ClearFaults removes every fault.
func (s *Server) ClearFaults() { s.faults.Clear() }

// RotateSigningKey makes a new current signing key; earlier keys stay in the JWKS. It returns the new kid.
func (s *Server) RotateSigningKey() (string, error) { return s.keys.Rotate() }

// RevokeSigningKey removes a previous key from the JWKS: tokens it signed no longer verify.
func (s *Server) RevokeSigningKey(kid string) error { return s.keys.Revoke(kid) }

// SigningKeyIDs lists the published key IDs, current first.
func (s *Server) SigningKeyIDs() []string { return s.keys.KIDs() }

// RevokeUserGrants revokes a user's refresh tokens, consents and sessions; it returns the number of
// refresh-token families revoked.
func (s *Server) RevokeUserGrants(sub string) int { return s.tenant.RevokeUserGrants(sub) }

// User returns a user of the tenant as it is now (groups and roles included).
func (s *Server) User(sub string) (config.User, bool) { return s.tenant.User(sub) }

// SetUserGroups replaces a user's groups (app_metadata.groups): the tenant's post-login Action puts
// them into the next tokens the user gets, at a login or a refresh.
func (s *Server) SetUserGroups(sub string, groups []string) error {
	return s.updateUser(sub, func(u *config.User) { u.Groups = slices.Clone(groups) })
}

// SetUserRoles replaces a user's roles (the Action's roles claim).
func (s *Server) SetUserRoles(sub string, roles []string) error {
	return s.updateUser(sub, func(u *config.User) { u.Roles = slices.Clone(roles) })
}

func (s *Server) updateUser(sub string, f func(*config.User)) error {
	_, err := s.tenant.UpdateUser(sub, func(u *config.User) error { f(u); return nil })
	if err != nil {
		return fmt.Errorf("user %q: %w", sub, err)
	}
	return nil
}
