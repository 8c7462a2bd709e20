// Package browser drives a headless Chromium through chromedp for the conformance suite.
//
// One Browser is one Chromium process for a whole run. Every authorization flow gets its own
// Session: a fresh, isolated browser context (its own cookie jar and cache), so cookies never leak
// from one check to the next, and a check that needs two users or two devices (PXY-06) opens two
// Sessions side by side.
package browser

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	cdpbrowser "github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/css"
	"github.com/chromedp/cdproto/dom"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/remote"
)

// DefaultExecPath is where Debian's chromium package puts the real binary (/usr/bin/chromium is a
// wrapper script that adds flags of its own).
const DefaultExecPath = "/usr/lib/chromium/chromium"

// HeadlessShellPath is Debian's chromium-headless-shell: Chromium's "old headless" build, the same
// engine and DevTools protocol without the full browser around it — a fraction of the processor
// time per flow.
const HeadlessShellPath = "/usr/lib/chromium/chromium-headless-shell"

// PreferredExecPath is the browser the suite starts by default: the headless shell when it is
// installed, else the full Chromium.
func PreferredExecPath() string {
	if _, err := os.Stat(HeadlessShellPath); err == nil {
		return HeadlessShellPath
	}
	return DefaultExecPath
}

// Options configure the browser process.
type Options struct {
	// ExecPath is the Chromium binary; PreferredExecPath() when empty.
	ExecPath string
	// StartTimeout bounds the browser start; 30 s when zero.
	StartTimeout time.Duration
	// Flags are extra command-line switches (name without dashes → value; true for a bare switch).
	Flags map[string]any
	// Logf receives chromedp's diagnostics; nil discards them.
	Logf func(format string, args ...any)
	// RemoteURL, when set, attaches to a Chromium already running elsewhere (its DevTools
	// endpoint, e.g. ws://chromium:9222/ or http://chromium:9222/) instead of starting one: the
	// suite's container image carries no browser.
	RemoteURL string
	// NoSandbox starts Chromium with --no-sandbox (containers without user namespaces; chromedp
	// adds it by itself when running as root).
	NoSandbox bool
}

// ErrNoChromium is returned by Start when the Chromium binary is missing.
var ErrNoChromium = errors.New("chromium not found")

// Browser is one running Chromium process.
type Browser struct {
	allocCancel   context.CancelFunc
	browserCtx    context.Context
	browserCancel context.CancelFunc
	closeOnce     sync.Once

	// pool holds sessions opened ahead of time (opening one costs ~0.3 s).
	pool     chan *Session
	poolStop chan struct{}
	poolWG   sync.WaitGroup
}

// Available reports whether the Chromium binary exists, with an error that says how to get it.
func Available(execPath string) error {
	if execPath == "" {
		execPath = PreferredExecPath()
	}
	if _, err := os.Stat(execPath); err != nil {
		return fmt.Errorf("%w at %s (install it with `apt-get install -y chromium-headless-shell` (the lightest) or `chromium`, or pass the binary's path): %v",
			ErrNoChromium, execPath, err)
	}
	return nil
}

// Start launches Chromium headless. The process lives until Close (or until ctx ends).
func Start(ctx context.Context, opts Options) (*Browser, error) {
	if opts.RemoteURL != "" {
		allocCtx, allocCancel := remote.NewAllocator(context.WithoutCancel(ctx), opts.RemoteURL)
		return finishStart(ctx, allocCtx, allocCancel, opts, opts.RemoteURL)
	}
	execPath := opts.ExecPath
	if execPath == "" {
		execPath = PreferredExecPath()
	}
	if err := Available(execPath); err != nil {
		return nil, err
	}
	allocOpts := append([]chromedp.ExecAllocatorOption{}, chromedp.DefaultExecAllocatorOptions[:]...)
	allocOpts = append(allocOpts,
		chromedp.ExecPath(execPath),
		chromedp.Flag("headless", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.WindowSize(800, 600),
	)
	if opts.NoSandbox {
		allocOpts = append(allocOpts, chromedp.NoSandbox)
	}
	for name, v := range opts.Flags {
		allocOpts = append(allocOpts, chromedp.Flag(name, v))
	}
	allocCtx, allocCancel := chromedp.NewExecAllocator(context.WithoutCancel(ctx), allocOpts...)
	return finishStart(ctx, allocCtx, allocCancel, opts, execPath)
}

func finishStart(ctx, allocCtx context.Context, allocCancel context.CancelFunc, opts Options, what string) (*Browser, error) {
	var ctxOpts []chromedp.ContextOption
	if opts.Logf != nil {
		ctxOpts = append(ctxOpts, chromedp.WithLogf(opts.Logf), chromedp.WithErrorf(opts.Logf))
	} else {
		discard := func(string, ...any) {}
		ctxOpts = append(ctxOpts, chromedp.WithLogf(discard), chromedp.WithErrorf(discard))
	}
	browserCtx, browserCancel := chromedp.NewContext(allocCtx, ctxOpts...)
	b := &Browser{allocCancel: allocCancel, browserCtx: browserCtx, browserCancel: browserCancel, poolStop: make(chan struct{})}

	timeout := opts.StartTimeout
	if timeout == 0 {
		timeout = 30 * time.Second
	}
	// The first Do on the browser context starts the process and opens its first tab.
	startErr := make(chan error, 1)
	go func() { startErr <- chromedp.Do(browserCtx) }()
	select {
	case err := <-startErr:
		if err != nil {
			b.Close()
			return nil, fmt.Errorf("start chromium %s: %w", what, err)
		}
	case <-time.After(timeout):
		b.Close()
		return nil, fmt.Errorf("start chromium %s: no answer within %s", what, timeout)
	case <-ctx.Done():
		b.Close()
		return nil, fmt.Errorf("start chromium: %w", ctx.Err())
	}
	return b, nil
}

// Version is the browser's product and version (e.g. "HeadlessChrome/156.0.8078.129").
func (b *Browser) Version(ctx context.Context) (string, error) {
	runCtx, cancel := context.WithCancel(b.browserCtx)
	defer cancel()
	stop := context.AfterFunc(ctx, cancel)
	defer stop()
	r, err := chromedp.CallBrowser(runCtx, cdpbrowser.GetVersion, cdp.Empty{})
	if err != nil {
		return "", err
	}
	return r.Product, nil
}

// Close stops the browser process. It is safe to call more than once.
func (b *Browser) Close() {
	b.closeOnce.Do(func() {
		close(b.poolStop)
		b.poolWG.Wait()
		if b.pool != nil {
			for {
				select {
				case s := <-b.pool:
					s.cancel()
					continue
				default:
				}
				break
			}
		}
		b.browserCancel()
		b.allocCancel()
	})
}

// Prewarm keeps up to n fresh sessions open ahead of time, so NewSession returns at once. Call it
// once, before the first NewSession.
func (b *Browser) Prewarm(n int) {
	if n <= 0 || b.pool != nil {
		return
	}
	b.pool = make(chan *Session, n)
	b.poolWG.Add(1)
	go func() {
		defer b.poolWG.Done()
		for {
			s, err := b.open()
			if err != nil {
				return // NewSession opens sessions itself when the pool is empty
			}
			select {
			case b.pool <- s:
			case <-b.poolStop:
				s.cancel()
				return
			}
		}
	}()
}

// NewSession returns a tab in a new, isolated browser context (an incognito-like profile with its
// own cookie jar), from the prewarmed pool when there is one. Close it when the flow is done.
func (b *Browser) NewSession() (*Session, error) {
	if b.pool != nil {
		select {
		case s := <-b.pool:
			return s, nil
		default:
		}
	}
	return b.open()
}

func (b *Browser) open() (*Session, error) {
	return openTab(b.browserCtx, chromedp.WithNewBrowserContext())
}

// NewTab opens another tab in the session's browser context: it shares the session's cookies
// (a user logged in at the upstream in one tab is logged in in the other). Close it when done; the
// browser context lives as long as the session that created it.
func (s *Session) NewTab() (*Session, error) { return openTab(s.ctx) }

func openTab(parent context.Context, opts ...chromedp.ContextOption) (*Session, error) {
	s := &Session{}
	ctx, cancel := chromedp.NewContext(parent, append(opts, chromedp.WithListener(s.onEvent))...)
	s.ctx, s.cancel = ctx, cancel
	if err := chromedp.Do(ctx); err != nil {
		cancel()
		return nil, fmt.Errorf("open browser context: %w", err)
	}
	// chromedp enables the DOM and CSS domains for its selector queries; this package only
	// evaluates JavaScript, and those two domains make the browser stream every DOM and style
	// change to us: turn them off (a large share of the browser's CPU per flow).
	if err := chromedp.Do(ctx, chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		if _, err := cdp.Call(ctx, t, css.Disable, cdp.Empty{}); err != nil {
			return err
		}
		_, err := cdp.Call(ctx, t, dom.Disable, cdp.Empty{})
		return err
	})); err != nil {
		cancel()
		return nil, fmt.Errorf("configure browser context: %w", err)
	}
	return s, nil
}
