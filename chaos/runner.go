package chaos

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// Options of a run.
type Options struct {
	Target Target
	// Clients is the number of concurrent clients, each with its own registration and grant (default 20).
	Clients int
	// Think is the pause between two iterations (refresh + MCP call) of one client (default 50 ms).
	Think time.Duration
	// RetryFor is how long a client retries one request while the server is unavailable (5xx,
	// connection errors) before it gives up on it (default 90 s, longer than any outage we inject).
	RetryFor time.Duration
	// MaxBackoff caps the pause between retries; a Retry-After is honoured up to it (default 1 s, so
	// recovery is measured to within about a second).
	MaxBackoff time.Duration
	// RecheckFor is how long an access token answered 401 is tried again to tell whether it was valid
	// (default 60 s).
	RecheckFor time.Duration
	// MaxIterations bounds each client's loop (default 1,000,000; the run's context bounds the time).
	MaxIterations int
	// Logf receives progress lines (default: none).
	Logf func(format string, args ...any)
}

func (o *Options) defaults() {
	if o.Clients <= 0 {
		o.Clients = 20
	}
	if o.Think <= 0 {
		o.Think = 50 * time.Millisecond
	}
	if o.RetryFor <= 0 {
		o.RetryFor = 90 * time.Second
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = time.Second
	}
	if o.RecheckFor <= 0 {
		o.RecheckFor = 60 * time.Second
	}
	if o.MaxIterations <= 0 {
		o.MaxIterations = 1_000_000
	}
	if o.Logf == nil {
		o.Logf = func(string, ...any) {}
	}
	o.Target = o.Target.withDefaults()
}

// Window is one injected fault: from when it began to when the dependency was back (the server
// restarted and answering, the database accepting connections, the upstream fault cleared).
type Window struct {
	Fault      string
	Start, End time.Time
}

// Scenario is a fault injected repeatedly while the clients run.
type Scenario struct {
	Name        string // short, for the summary table
	Description string // what the fault is, for the details
	// Cycles is how often the fault is injected (default 3).
	Cycles int
	// Settle is how long the clients run normally before each fault (default 2 s).
	Settle time.Duration
	// Inject causes one fault and returns when it has ended.
	Inject func(ctx context.Context, r *Runner, cycle int) (Window, error)
	// RecoverWithin is how long after a fault every client must have refreshed successfully (default 60 s).
	RecoverWithin time.Duration
}

// Event is something that happened to one client.
type Event struct {
	Client int
	At     time.Time
	What   string
}

// Counts are request tallies.
type Counts struct {
	Refreshes, RefreshOK, RefreshUnavailable int
	MCPCalls, MCPOK, MCPUnavailable, MCP401  int
}

func (c *Counts) add(o Counts) {
	c.Refreshes += o.Refreshes
	c.RefreshOK += o.RefreshOK
	c.RefreshUnavailable += o.RefreshUnavailable
	c.MCPCalls += o.MCPCalls
	c.MCPOK += o.MCPOK
	c.MCPUnavailable += o.MCPUnavailable
	c.MCP401 += o.MCP401
}

// Runner drives the clients.
type Runner struct {
	o        Options
	md       Metadata
	workers  []*worker
	inflight atomic.Int64
	stop     chan struct{}
	stopOnce sync.Once
	wg       sync.WaitGroup

	mu           sync.Mutex
	windows      []Window
	notRecovered []Event
}

type pending401 struct {
	at     time.Time
	code   string
	tokens Tokens
}

type worker struct {
	id int
	c  *Client

	mu         sync.Mutex
	tokens     Tokens      // the latest the server acknowledged (a 200 the client received)
	successes  []time.Time // when each successful refresh answered
	lost       *Event
	counts     Counts
	valid401   []Event
	unexpected []Event
	stuck      []Event
	pending    *pending401
}

// NewRunner discovers the target and gets every client its grant (in parallel, a few at a time).
func NewRunner(ctx context.Context, o Options) (*Runner, error) {
	o.defaults()
	r := &Runner{o: o, stop: make(chan struct{})}
	var err error
	for attempt := 0; attempt < 30; attempt++ {
		if r.md, err = Discover(ctx, o.Target); err == nil {
			break
		}
		if !sleep(ctx, time.Second) {
			break
		}
	}
	if err != nil {
		return nil, err
	}
	r.workers = make([]*worker, o.Clients)
	sem := make(chan struct{}, 4)
	errs := make([]error, o.Clients)
	var wg sync.WaitGroup
	for i := range r.workers {
		w := &worker{id: i, c: NewClient(o.Target, r.md)}
		r.workers[i] = w
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			for attempt := 0; attempt < 3; attempt++ {
				t, err := w.c.Authorize(ctx)
				if err == nil {
					w.tokens = t
					errs[w.id] = nil
					return
				}
				errs[w.id] = err
				if !sleep(ctx, 500*time.Millisecond) {
					return
				}
			}
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			return nil, fmt.Errorf("client %d could not get a grant before any fault: %w", i, err)
		}
	}
	return r, nil
}

// Start starts every client's loop: refresh, then an MCP call with the new access token.
func (r *Runner) Start(ctx context.Context) {
	for _, w := range r.workers {
		r.wg.Add(1)
		go r.loop(ctx, w)
	}
}

// Stop asks the clients to stop after their current iteration and waits for them. A request in
// flight is not cancelled: its answer is recorded, as a real client would keep it.
func (r *Runner) Stop() {
	r.stopOnce.Do(func() { close(r.stop) })
	r.wg.Wait()
}

func (r *Runner) stopped() bool {
	select {
	case <-r.stop:
		return true
	default:
		return false
	}
}

// RefreshesInFlight is the number of refresh requests sent and not yet answered.
func (r *Runner) RefreshesInFlight() int64 { return r.inflight.Load() }

// WaitRefreshInFlight returns once at least one refresh request is in flight (or after max), so a
// fault can land in the middle of a refresh.
func (r *Runner) WaitRefreshInFlight(ctx context.Context, max time.Duration) bool {
	deadline := time.Now().Add(max)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		if r.inflight.Load() > 0 {
			return true
		}
		time.Sleep(200 * time.Microsecond)
	}
	return false
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

func (r *Runner) backoff(prev time.Duration, res Result) time.Duration {
	next := prev * 2
	if next == 0 {
		next = 100 * time.Millisecond
	}
	if res.RetryAfter > next {
		next = res.RetryAfter
	}
	return min(next, r.o.MaxBackoff)
}

func (r *Runner) loop(ctx context.Context, w *worker) {
	defer r.wg.Done()
	for i := 0; i < r.o.MaxIterations && ctx.Err() == nil && !r.stopped(); i++ {
		t, ok := r.refresh(ctx, w)
		if !ok {
			if w.isLost() {
				return
			}
			continue
		}
		r.callMCP(ctx, w, t)
		sleep(ctx, r.o.Think)
	}
}

// refresh presents the latest acknowledged refresh token, retrying it while the server is unavailable.
func (r *Runner) refresh(ctx context.Context, w *worker) (Tokens, bool) {
	start := time.Now()
	var pause time.Duration
	for ctx.Err() == nil {
		rt := w.current().RefreshToken
		r.inflight.Add(1)
		t, res := w.c.Refresh(ctx, rt)
		r.inflight.Add(-1)
		switch res.Kind {
		case OK:
			if t.RefreshToken == "" {
				t.RefreshToken = rt // a server that does not rotate
			}
			w.acknowledge(t, res)
			return t, true
		case Unavailable:
			w.add(Counts{Refreshes: 1, RefreshUnavailable: 1})
			if time.Since(start) > r.o.RetryFor {
				w.event(&w.stuck, res.At, fmt.Sprintf("refresh still unavailable after %s: %s", r.o.RetryFor, res))
				return Tokens{}, false
			}
			if r.stopped() {
				return Tokens{}, false // the final check retries the same token
			}
			pause = r.backoff(pause, res)
			sleep(ctx, pause)
		default:
			w.add(Counts{Refreshes: 1})
			w.lose(res.At, "refresh: "+res.String())
			return Tokens{}, false
		}
	}
	return Tokens{}, false
}

// callMCP calls the MCP endpoint with a fresh access token, retrying while the server is unavailable.
func (r *Runner) callMCP(ctx context.Context, w *worker, t Tokens) {
	start := time.Now()
	var pause time.Duration
	for ctx.Err() == nil {
		res := w.c.CallMCP(ctx, t.AccessToken)
		w.add(Counts{MCPCalls: 1})
		switch res.Kind {
		case OK:
			w.add(Counts{MCPOK: 1})
			return
		case Unavailable:
			w.add(Counts{MCPUnavailable: 1})
			if time.Since(start) > r.o.RetryFor {
				w.event(&w.stuck, res.At, fmt.Sprintf("MCP call still unavailable after %s: %s", r.o.RetryFor, res))
				return
			}
			if r.stopped() {
				return
			}
			pause = r.backoff(pause, res)
			sleep(ctx, pause)
		case Unauthorized:
			w.add(Counts{MCP401: 1})
			if !res.At.Before(t.Expiry) {
				return // expired: a 401 is right
			}
			r.recheck(ctx, w, t, res)
			return
		default:
			w.event(&w.unexpected, res.At, "MCP call with a valid access token: "+res.String())
			return
		}
	}
}

// recheck tells whether an access token answered 401 was valid: tokens never come back to life, so
// if the same token is accepted later, the 401 was a false verdict. If it stays refused, the next
// successful refresh of its grant proves the grant alive, and the 401 wrong (acknowledge).
func (r *Runner) recheck(ctx context.Context, w *worker, t Tokens, first Result) {
	deadline := first.At.Add(r.o.RecheckFor)
	if t.Expiry.Before(deadline) {
		deadline = t.Expiry
	}
	var pause time.Duration
	for time.Now().Before(deadline) && ctx.Err() == nil && !r.stopped() {
		pause = r.backoff(pause, Result{})
		sleep(ctx, pause)
		res := w.c.CallMCP(ctx, t.AccessToken)
		if res.Kind == OK {
			w.event(&w.valid401, first.At, fmt.Sprintf("a valid access token was answered 401 %s; the same token was accepted %s later",
				first.Code, res.At.Sub(first.At).Round(time.Millisecond)))
			return
		}
	}
	w.mu.Lock()
	w.pending = &pending401{at: first.At, code: first.Code, tokens: t}
	w.mu.Unlock()
}

func (w *worker) current() Tokens {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.tokens
}

func (w *worker) isLost() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.lost != nil
}

func (w *worker) add(c Counts) {
	w.mu.Lock()
	w.counts.add(c)
	w.mu.Unlock()
}

func (w *worker) event(list *[]Event, at time.Time, what string) {
	w.mu.Lock()
	*list = append(*list, Event{Client: w.id, At: at, What: what})
	w.mu.Unlock()
}

func (w *worker) lose(at time.Time, what string) {
	w.mu.Lock()
	if w.lost == nil {
		w.lost = &Event{Client: w.id, At: at, What: what}
	}
	w.pending = nil // its 401 cannot be judged any more; the grant loss is counted
	w.mu.Unlock()
}

func (w *worker) acknowledge(t Tokens, res Result) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.counts.add(Counts{Refreshes: 1, RefreshOK: 1})
	w.tokens = t
	w.successes = append(w.successes, res.At)
	if p := w.pending; p != nil {
		w.pending = nil
		w.valid401 = append(w.valid401, Event{Client: w.id, At: p.at, What: fmt.Sprintf(
			"an unexpired access token was answered 401 %s while its grant was alive (a refresh of the grant succeeded %s later)",
			p.code, res.At.Sub(p.at).Round(time.Millisecond))})
	}
}

func (w *worker) lastSuccess() time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.successes) == 0 {
		return time.Time{}
	}
	return w.successes[len(w.successes)-1]
}

// waitRecovered waits until every client that still has its grant refreshed successfully after end.
func (r *Runner) waitRecovered(ctx context.Context, end time.Time, within time.Duration) {
	deadline := time.Now().Add(within)
	for {
		var behind []*worker
		for _, w := range r.workers {
			if !w.isLost() && w.lastSuccess().Before(end) {
				behind = append(behind, w)
			}
		}
		if len(behind) == 0 {
			return
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			r.mu.Lock()
			for _, w := range behind {
				r.notRecovered = append(r.notRecovered, Event{Client: w.id, At: end,
					What: fmt.Sprintf("no successful refresh within %s after the fault ended", within)})
			}
			r.mu.Unlock()
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Run gets the grants, starts the clients, injects the scenario's fault Cycles times (waiting for every
// client to recover in between), stops the clients and checks every grant.
func Run(ctx context.Context, o Options, sc Scenario) (*Report, error) {
	if sc.Cycles <= 0 {
		sc.Cycles = 3
	}
	if sc.Settle <= 0 {
		sc.Settle = 2 * time.Second
	}
	if sc.RecoverWithin <= 0 {
		sc.RecoverWithin = 60 * time.Second
	}
	if sc.Inject == nil {
		return nil, errors.New("chaos: the scenario has no fault to inject")
	}
	began := time.Now()
	r, err := NewRunner(ctx, o)
	if err != nil {
		return nil, err
	}
	r.o.Logf("%s: %d clients have their grants; running", sc.Name, len(r.workers))
	r.Start(ctx)
	for i := 0; i < sc.Cycles && ctx.Err() == nil; i++ {
		sleep(ctx, sc.Settle)
		w, err := sc.Inject(ctx, r, i)
		if err != nil {
			r.Stop()
			return nil, fmt.Errorf("%s: fault %d: %w", sc.Name, i+1, err)
		}
		r.mu.Lock()
		r.windows = append(r.windows, w)
		r.mu.Unlock()
		r.o.Logf("%s: fault %d/%d: %s (%s)", sc.Name, i+1, sc.Cycles, w.Fault, w.End.Sub(w.Start).Round(time.Millisecond))
		r.waitRecovered(ctx, w.End, sc.RecoverWithin)
	}
	r.Stop()
	final := r.finalCheck(ctx)
	return r.report(sc, final, time.Since(began)), nil
}

// finalCheck proves every grant alive and every acknowledged token usable: the latest access token the
// server issued to each client is accepted (unless expired), the latest refresh token refreshes, and
// the access token that refresh returns is accepted.
func (r *Runner) finalCheck(ctx context.Context) []Event {
	var (
		mu  sync.Mutex
		out []Event
		wg  sync.WaitGroup
	)
	fail := func(w *worker, what string) {
		mu.Lock()
		out = append(out, Event{Client: w.id, At: time.Now(), What: what})
		mu.Unlock()
	}
	for _, w := range r.workers {
		if w.isLost() {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			t := w.current()
			if time.Now().Before(t.Expiry) {
				res := r.retryMCP(ctx, w, t.AccessToken)
				w.mu.Lock()
				p := w.pending
				w.mu.Unlock()
				if res.Kind == OK && p != nil && p.tokens.AccessToken == t.AccessToken {
					w.event(&w.valid401, p.at, "a valid access token was answered 401 "+p.code+"; the same token was accepted at the end")
					w.mu.Lock()
					w.pending = nil
					w.mu.Unlock()
				}
				if res.Kind != OK {
					fail(w, "the last access token the server issued is refused: "+res.String())
				}
			}
			nt, res := r.retryRefresh(ctx, w, t.RefreshToken)
			if res.Kind != OK {
				if res.Kind == GrantLost {
					w.lose(res.At, "final refresh with the last acknowledged refresh token: "+res.String())
				}
				fail(w, "the last refresh token the server issued does not refresh: "+res.String())
				return
			}
			if nt.RefreshToken == "" {
				nt.RefreshToken = t.RefreshToken
			}
			w.acknowledge(nt, res)
			if res := r.retryMCP(ctx, w, nt.AccessToken); res.Kind != OK {
				fail(w, "the access token of the final refresh is refused: "+res.String())
			}
		}()
	}
	wg.Wait()
	return out
}

func (r *Runner) retryRefresh(ctx context.Context, w *worker, rt string) (Tokens, Result) {
	start := time.Now()
	var pause time.Duration
	for {
		t, res := w.c.Refresh(ctx, rt)
		if res.Kind != Unavailable || time.Since(start) > r.o.RetryFor || ctx.Err() != nil {
			return t, res
		}
		pause = r.backoff(pause, res)
		sleep(ctx, pause)
	}
}

func (r *Runner) retryMCP(ctx context.Context, w *worker, at string) Result {
	start := time.Now()
	var pause time.Duration
	for {
		res := w.c.CallMCP(ctx, at)
		if res.Kind != Unavailable || time.Since(start) > r.o.RetryFor || ctx.Err() != nil {
			return res
		}
		pause = r.backoff(pause, res)
		sleep(ctx, pause)
	}
}
