package checks

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/cnpg-mcp/cnpg-mcp/conformance/browser"
	"github.com/cnpg-mcp/cnpg-mcp/conformance/evidence"
	"github.com/cnpg-mcp/cnpg-mcp/conformance/login"
	"github.com/cnpg-mcp/cnpg-mcp/conformance/oauthclient"
	"github.com/cnpg-mcp/cnpg-mcp/conformance/redirect"
	"github.com/cnpg-mcp/cnpg-mcp/conformance/report"
	"github.com/cnpg-mcp/cnpg-mcp/conformance/upstream"
)

// Config is what a run is pointed at and how it logs in.
type Config struct {
	// Target is the MCP endpoint URL (the canonical resource URI), e.g. https://host/mcp.
	Target string
	// SpecVersion selects which catalogue rows apply: 2025-06-18, 2025-11-25 or 2026-07-28.
	SpecVersion string
	// Login drives the upstream login and the consent page.
	Login login.Options
	// SecondUser, when set, is another upstream user (RS-09: a session bound to its user).
	SecondUser *login.Credentials
	// Scope is the scope requested by default; empty = the 401 challenge's scope, else the PRM's
	// scopes_supported (minus offline_access), else none.
	Scope string
	// Upstream is the upstream IdP's view (the mock Auth0's request log and controls); nil when
	// the target's upstream is not ours (checks that need it are skipped).
	Upstream upstream.View
	// ScopeProbe describes an operation needing more scope than a narrow token has (SC-02..04).
	ScopeProbe *ScopeProbe
	// UpstreamSubject is the upstream user's subject (needed when the target's tokens are opaque).
	UpstreamSubject string
	// UpstreamClient lets the suite obtain tokens straight from the upstream (RS-05): an
	// application registered at the upstream whose callbacks accept http://127.0.0.1:<any port>/auth/callback.
	UpstreamClient *UpstreamClient
	// TimeTravel moves the target's clock forward (not the upstream's). Only an in-process target
	// offers it; expiry checks are skipped without it.
	TimeTravel func(ctx context.Context, d time.Duration) error
	// Sibling is the MCP URL of a second deployment behind the same upstream application (RS-04).
	Sibling string
	// SecondInstance is the MCP URL of another replica of the same deployment (PXY-17).
	SecondInstance string
	// CIMD serves client metadata documents the target can fetch (CIMD checks); nil skips them.
	CIMD CIMDHost
	// Browser options; the browser starts on first use.
	Browser browser.Options
	// SharedBrowser, when set, is used instead of starting a browser (and is not closed by the
	// run): the self-test runs many short runs against one browser process.
	SharedBrowser *browser.Browser
	// SharedTab, when set, is the logged-in tab (see checkTab), kept across runs (self-test).
	SharedTab *browser.Session
	// CheckTimeout bounds one check (60 s when zero); HTTPTimeout one request (10 s).
	CheckTimeout time.Duration
	HTTPTimeout  time.Duration
	// Transport is the base HTTP transport (nil = a default one).
	Transport http.RoundTripper
	// FlowTimeout bounds one browser flow (20 s when zero).
	FlowTimeout time.Duration
	// NoPrefetch turns off running plain browser flows ahead of time.
	NoPrefetch bool
	// FreshContexts is the slow, strict mode: every browser flow in a fresh browser context (no
	// logged-in tab, no plain flow replayed over HTTP) and one check at a time.
	FreshContexts bool
	// Parallel is how many checks run side by side (4 when zero; 1 with FreshContexts).
	Parallel int
}

// Mode names how the run drives flows: "fast" or "strict (--fresh-contexts)".
func (e *Env) Mode() string {
	if e.cfg.FreshContexts {
		return ModeStrict
	}
	return ModeFast
}

// ModeDetail describes the run's mode in a sentence (call it after the run: it says whether
// replays stopped).
func (e *Env) ModeDetail() string {
	if e.cfg.FreshContexts {
		return "every browser flow in a fresh browser context, no flow replayed over HTTP, one check at a time"
	}
	e.logged.mu.Lock()
	off := e.logged.off
	e.logged.mu.Unlock()
	replays := "flows that are only a precondition replayed over HTTP with the logged-in browser's cookies"
	if off != "" {
		replays = "flows that are only a precondition ran in the logged-in browser: replays over HTTP stopped (" + off + ")"
	}
	return fmt.Sprintf("one login; %s; up to %d checks side by side; --fresh-contexts for the slow, strict mode", replays, e.Workers())
}

// BrowserInfo names the browser the run used: its binary (or DevTools URL) and version ("" when
// no browser started).
func (e *Env) BrowserInfo(ctx context.Context) string {
	e.browserOnce.Do(func() {}) // the run is over: no browser starts after this
	b := e.browser
	if b == nil {
		return ""
	}
	where := e.cfg.Browser.ExecPath
	switch {
	case e.cfg.SharedBrowser != nil:
		where = "a browser shared by the caller"
	case e.cfg.Browser.RemoteURL != "":
		where = e.cfg.Browser.RemoteURL
	case where == "":
		where = browser.PreferredExecPath()
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if v, err := b.Version(ctx); err == nil {
		return where + " (" + v + ")"
	}
	return where
}

// Run modes (report.Run.Mode).
const (
	ModeFast   = "fast"
	ModeStrict = "strict (--fresh-contexts)"
)

// Workers is how many checks run side by side.
func (e *Env) Workers() int {
	switch {
	case e.cfg.FreshContexts:
		return 1
	case e.cfg.Parallel > 0:
		return e.cfg.Parallel
	}
	return 4
}

// UpstreamClient is an upstream (Auth0) application the suite may use directly.
type UpstreamClient struct {
	Issuer       string // the upstream issuer, e.g. https://tenant.auth0.com/
	ClientID     string
	ClientSecret string
	// Audience is an API identifier: with it the upstream issues a signed JWT, without it Auth0
	// issues a JWE access token.
	Audience string
}

// Env is shared by every check of a run: the discovered metadata, the browser, the redirect
// listener and the results so far (section D rows reuse the results of the rows they map to).
type Env struct {
	cfg       Config
	transport http.RoundTripper

	redirect  *redirect.Listener
	closeOnce sync.Once

	browserOnce sync.Once
	browser     *browser.Browser
	browserErr  error

	discoveryOnce sync.Once
	discovery     *Discovery

	mu      sync.Mutex
	results map[string]report.Result
	running map[string]chan struct{}
	timings map[string]time.Duration
	counts  map[string]int

	driver       *login.Driver
	shared       sharedGrant
	sharedClient sharedClient
	pool         *flowPool
	logged       loggedIn
	upstreamToks upstreamTokens
	clients      map[string]*Client
	design       designOnce
	formats      formatLedger
	// concurrent is set while checks run side by side (see Schedule).
	concurrent concurrentFlag
	// browserCPU is the browser's processor time, read when the run closes it (0: unknown).
	browserCPU time.Duration
}

// BrowserCPU is the processor time the browser the run started used (read from /proc when the
// run closed it; 0 when unknown: a remote or shared browser, or no /proc).
func (e *Env) BrowserCPU() time.Duration {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.browserCPU
}

// NewEnv validates cfg and starts the redirect listener. Close it when the run is over.
func NewEnv(cfg Config) (*Env, error) {
	if cfg.Target == "" {
		return nil, errors.New("no target: pass the MCP endpoint URL (e.g. --target https://host/mcp)")
	}
	u, err := url.Parse(cfg.Target)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, fmt.Errorf("target %q is not an absolute http(s) URL of the MCP endpoint", cfg.Target)
	}
	if cfg.SpecVersion == "" {
		cfg.SpecVersion = "2026-07-28"
	}
	if cfg.CheckTimeout == 0 {
		cfg.CheckTimeout = 60 * time.Second
	}
	if cfg.HTTPTimeout == 0 {
		cfg.HTTPTimeout = 10 * time.Second
	}
	if cfg.FlowTimeout == 0 {
		cfg.FlowTimeout = 20 * time.Second
	}
	if cfg.Login.Credentials.Username == "" {
		return nil, errors.New("no upstream login: pass the test user's username and password (--username, --password)")
	}
	ln, err := redirect.Start()
	if err != nil {
		return nil, err
	}
	tr := cfg.Transport
	if tr == nil {
		tr = &http.Transport{Proxy: http.ProxyFromEnvironment, MaxIdleConnsPerHost: 16, IdleConnTimeout: 30 * time.Second}
	}
	e := &Env{cfg: cfg, transport: tr, redirect: ln, results: map[string]report.Result{}, running: map[string]chan struct{}{},
		timings: map[string]time.Duration{}, counts: map[string]int{}, driver: login.New(cfg.Login)}
	depth := 2
	if cfg.NoPrefetch {
		depth = 0
	}
	e.pool = newFlowPool(e, depth)
	return e, nil
}

// Config returns the configuration.
func (e *Env) Config() Config { return e.cfg }

// Close stops the browser and the redirect listener. It may be called more than once.
func (e *Env) Close() { e.closeOnce.Do(e.close) }

func (e *Env) close() {
	e.pool.close()
	e.closeLoggedIn()
	e.browserOnce.Do(func() {}) // waits for a start in progress
	if e.browser != nil && e.cfg.SharedBrowser == nil {
		if d, err := e.browser.CPUTime(); err == nil {
			e.mu.Lock()
			e.browserCPU = d
			e.mu.Unlock()
		}
		e.browser.Close()
	}
	_ = e.redirect.Close()
}

// Redirect is the loopback redirect listener.
func (e *Env) Redirect() *redirect.Listener { return e.redirect }

// StartBrowser starts the browser in the background (the preflight's first steps need none),
// with one session kept open ahead of time.
func (e *Env) StartBrowser() {
	go func() { _, _ = e.Browser() }()
}

// Browser returns the browser, starting it on first use.
func (e *Env) Browser() (*browser.Browser, error) {
	e.browserOnce.Do(func() {
		if e.cfg.SharedBrowser != nil {
			e.browser = e.cfg.SharedBrowser
			return
		}
		start := time.Now()
		e.browser, e.browserErr = browser.Start(context.Background(), e.cfg.Browser)
		e.addTiming("browser start", time.Since(start))
		if e.browserErr == nil {
			e.browser.Prewarm(1)
		}
	})
	return e.browser, e.browserErr
}

// Driver is the login/consent driver.
func (e *Env) Driver() *login.Driver { return e.driver }

func (e *Env) newClient(rec *evidence.Record) *oauthclient.Client {
	c := oauthclient.New(&http.Client{Transport: &evidence.Transport{Base: e.transport, Record: rec}, Timeout: e.cfg.HTTPTimeout})
	c.ProtocolVersion = protocolVersionFor(e.cfg.SpecVersion)
	return c
}

func protocolVersionFor(spec string) string {
	switch spec {
	case "2025-06-18", "A":
		return "2025-06-18"
	default:
		return "2025-11-25"
	}
}

func (e *Env) storeResult(r report.Result) {
	e.mu.Lock()
	e.results[r.ID] = r
	e.mu.Unlock()
}

// Result returns the result of a check that already ran in this run.
func (e *Env) Result(id string) (report.Result, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	r, ok := e.results[id]
	return r, ok
}

func (e *Env) addTiming(name string, d time.Duration) {
	e.mu.Lock()
	e.timings[name] += d
	e.mu.Unlock()
}

func (e *Env) addCount(name string) {
	e.mu.Lock()
	e.counts[name]++
	e.mu.Unlock()
}

// Counts returns how many times each costly activity ran (browser flows by kind, …).
func (e *Env) Counts() map[string]int {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make(map[string]int, len(e.counts))
	for k, v := range e.counts {
		out[k] = v
	}
	return out
}

// Timings returns the accumulated time per activity (browser start, browser flows, …).
func (e *Env) Timings() map[string]time.Duration {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make(map[string]time.Duration, len(e.timings))
	for k, v := range e.timings {
		out[k] = v
	}
	return out
}
