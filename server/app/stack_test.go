package app

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cnpg-mcp/cnpg-mcp/mockauth0"
	mconfig "github.com/cnpg-mcp/cnpg-mcp/mockauth0/config"
	"github.com/cnpg-mcp/cnpg-mcp/server/config"
	"github.com/cnpg-mcp/cnpg-mcp/server/upstream"
)

type offsetClock struct {
	mu  sync.Mutex
	off time.Duration
}

func (c *offsetClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return time.Now().Add(c.off) }
func (c *offsetClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.off += d
	c.mu.Unlock()
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// stack is the mock Auth0 plus one or more instances of our server sharing keys (and a store).
type stack struct {
	t      *testing.T
	mock   *mockauth0.Server
	clock  *offsetClock
	logs   *syncBuffer
	bodies *syncBuffer
	dir    string
	cfg    config.Config // template
	// beforeApprove runs before the consent form is submitted (the two-instance test switches
	// replicas there).
	beforeApprove func()

	mu sync.Mutex
	// verifiers maps each code login returned to the PKCE verifier of its authorization; every
	// login uses a fresh pair (the server refuses a redeemed code's challenge again, PKCE-08).
	verifiers    map[string]string
	lastVerifier string
}

func newStack(t *testing.T, mutateMock func(*mockauth0.Config)) *stack {
	t.Helper()
	s := &stack{t: t, clock: &offsetClock{}, logs: &syncBuffer{}, bodies: &syncBuffer{}, dir: t.TempDir()}
	mc := mockauth0.DefaultConfig()
	if mutateMock != nil {
		mutateMock(&mc)
	}
	var err error
	s.mock, err = mockauth0.Start(context.Background(), mc, mockauth0.WithRSABits(2048))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.mock.Close() })
	write := func(name, content string) string {
		p := filepath.Join(s.dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	s.cfg = config.Config{
		Issuer: s.mock.Issuer(), Audience: mconfig.DefaultAPIIdentifier, ClientID: mconfig.DefaultClientID,
		ClientSecretFile: write("secret", mconfig.DefaultClientSecret),
		SigningKeyFile:   write("sign", base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{1}, 32))),
		SealingKeyFile:   write("seal", base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{2}, 32))),
		LogLevel:         "debug",
		Storage:          config.Storage{Driver: "bolt", Path: filepath.Join(s.dir, "store.db")},
	}
	return s
}

type instance struct {
	*App
	cancel context.CancelFunc
	done   chan error
	base   string
}

// start runs one server instance; mutate adjusts its config copy. The listener is fixed first so
// public_url is known.
func (s *stack) start(mutate func(*config.Config)) *instance {
	s.t.Helper()
	return s.startAt("127.0.0.1:0", mutate)
}

// startAt is start on a given address (restart tests reuse the previous one).
func (s *stack) startAt(addr string, mutate func(*config.Config)) *instance {
	s.t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		s.t.Fatal(err)
	}
	cfg := s.cfg
	cfg.PublicURL = "http://" + ln.Addr().String()
	if mutate != nil {
		mutate(&cfg)
	}
	cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		s.t.Fatal(err)
	}
	log := slog.New(slog.NewJSONHandler(s.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	a, err := New(context.Background(), &cfg, Options{Logger: log, Listener: ln, Now: s.clock.Now, AllowMissingKubernetes: true})
	if err != nil {
		s.t.Fatal(err)
	}
	a.LogStartup()
	ctx, cancel := context.WithCancel(context.Background())
	in := &instance{App: a, cancel: cancel, done: make(chan error, 1), base: cfg.BaseURL()}
	go func() { in.done <- a.Run(ctx) }()
	s.t.Cleanup(in.stop)
	return in
}

func (in *instance) stop() {
	if in.cancel != nil {
		in.cancel()
		<-in.done
		in.cancel = nil
	}
}

func (s *stack) browser() *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar, Timeout: 20 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

func (s *stack) do(c *http.Client, req *http.Request) (*http.Response, string) {
	s.t.Helper()
	if c == nil {
		c = s.browser()
	}
	res, err := c.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	s.bodies.Write(b)
	s.bodies.Write([]byte(res.Header.Get("Location") + "\n"))
	return res, string(b)
}

func (s *stack) get(c *http.Client, u string) (*http.Response, string) {
	req, _ := http.NewRequest(http.MethodGet, u, nil)
	return s.do(c, req)
}

func (s *stack) post(c *http.Client, u string, v url.Values) (*http.Response, string) {
	req, _ := http.NewRequest(http.MethodPost, u, strings.NewReader(v.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return s.do(c, req)
}

func (s *stack) register(in *instance) string {
	s.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, in.base+"/register", strings.NewReader(`{"redirect_uris":["http://127.0.0.1:5000/cb"],"client_name":"E2E","grant_types":["authorization_code","refresh_token"],"token_endpoint_auth_method":"none"}`))
	req.Header.Set("Content-Type", "application/json")
	res, body := s.do(nil, req)
	if res.StatusCode != 201 {
		s.t.Fatalf("register: %d %s", res.StatusCode, body)
	}
	var m map[string]any
	_ = json.Unmarshal([]byte(body), &m)
	return m["client_id"].(string)
}

// verifier is for requests that never redeem a code.
const verifier = "e2e-verifier-0123456789-0123456789-0123456789-abcdef"

func newVerifier() string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

func challenge(v string) string {
	h := sha256.Sum256([]byte(v))
	return base64.RawURLEncoding.EncodeToString(h[:])
}

var (
	csrfRe  = regexp.MustCompile(`name="csrf_token" value="([^"]+)"`)
	txnRe   = regexp.MustCompile(`name="txn" value="([^"]+)"`)
	stateRe = regexp.MustCompile(`name="state" value="([^"]+)"`)
)

// login drives the whole browser part: /authorize on `start` → consent → mock Auth0 login → callback
// on `finish` (another instance in the two-instance test) → the client redirect, returned.
func (s *stack) login(start, finish *instance, clientID string, extra url.Values) *url.URL {
	s.t.Helper()
	return s.loginAs(start, finish, clientID, extra, mconfig.DefaultUserEmail, mconfig.DefaultUserPassword)
}

// loginAs is login as another user of the mock tenant.
func (s *stack) loginAs(start, finish *instance, clientID string, extra url.Values, email, password string) *url.URL {
	s.t.Helper()
	b := s.browser()
	v := newVerifier()
	q := url.Values{"response_type": {"code"}, "client_id": {clientID}, "redirect_uri": {"http://127.0.0.1:5000/cb"}, "state": {"client-state"},
		"code_challenge": {challenge(v)}, "code_challenge_method": {"S256"}, "scope": {"mcp:read mcp:write"}}
	for k, v := range extra {
		q[k] = v
	}
	res, body := s.get(b, start.base+"/authorize?"+q.Encode())
	for i := 0; i < 12; i++ {
		if res.StatusCode != http.StatusFound && res.StatusCode != http.StatusSeeOther {
			if res.StatusCode == http.StatusOK && strings.Contains(body, `name="csrf_token"`) {
				// Our consent page: approve.
				if s.beforeApprove != nil {
					s.beforeApprove()
				}
				res, body = s.post(b, res.Request.URL.String(), url.Values{"txn": {txnRe.FindStringSubmatch(body)[1]}, "csrf_token": {csrfRe.FindStringSubmatch(body)[1]}, "action": {"approve"}})
				continue
			}
			if res.StatusCode == http.StatusOK && strings.Contains(body, `id="username"`) {
				res, body = s.post(b, res.Request.URL.String(), url.Values{"state": {stateRe.FindStringSubmatch(body)[1]}, "username": {email}, "password": {password}, "action": {"default"}})
				continue
			}
			s.t.Fatalf("flow stopped at %s: %d %s", res.Request.URL, res.StatusCode, body)
		}
		loc, err := res.Request.URL.Parse(res.Header.Get("Location"))
		if err != nil {
			s.t.Fatal(err)
		}
		if loc.Host == "127.0.0.1:5000" {
			s.mu.Lock()
			if s.verifiers == nil {
				s.verifiers = map[string]string{}
			}
			s.verifiers[loc.Query().Get("code")] = v
			s.lastVerifier = v
			s.mu.Unlock()
			return loc
		}
		if strings.HasPrefix(loc.String(), start.base+"/auth/callback") && finish != start {
			loc, _ = url.Parse(finish.base + "/auth/callback?" + loc.RawQuery)
		}
		res, body = s.get(b, loc.String())
	}
	s.t.Fatal("too many redirects")
	return nil
}

func (s *stack) token(in *instance, v url.Values) (int, map[string]any) {
	s.t.Helper()
	res, body := s.post(nil, in.base+"/token", v)
	var m map[string]any
	_ = json.Unmarshal([]byte(body), &m)
	return res.StatusCode, m
}

func (s *stack) exchange(in *instance, clientID, code string) map[string]any {
	s.t.Helper()
	s.mu.Lock()
	v, ok := s.verifiers[code]
	s.mu.Unlock()
	if !ok {
		v = verifier
	}
	st, m := s.token(in, url.Values{"grant_type": {"authorization_code"}, "code": {code}, "code_verifier": {v}, "client_id": {clientID}})
	if st != 200 {
		s.t.Fatalf("exchange: %d %v", st, m)
	}
	return m
}

func (s *stack) refresh(in *instance, clientID, rt string) (int, map[string]any) {
	return s.token(in, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}, "client_id": {clientID}})
}

// tokenRequests are the mock's /oauth/token requests made for users: the start-up credential check
// (a made-up code, upstream.StartupCodePrefix) is left out.
func (s *stack) tokenRequests() []mockauth0.RecordedRequest {
	var out []mockauth0.RecordedRequest
	for _, r := range s.mock.RequestsTo("/oauth/token") {
		if !strings.HasPrefix(r.Form.Get("code"), upstream.StartupCodePrefix) {
			out = append(out, r)
		}
	}
	return out
}
