package checks

import (
	"context"
	"sync"
	"time"

	"github.com/cnpg-mcp/cnpg-mcp/conformance/evidence"
	"github.com/cnpg-mcp/cnpg-mcp/conformance/login"
)

// flowPool runs plain authorization flows (the default request, for a pool client of its own)
// ahead of time, while the run goes on with other checks: most checks that need "a code" or "a
// grant" need nothing more specific, and a browser flow is by far the most expensive thing the
// suite does (most of the run's CPU is the browser's).
//
// These flows run in one long-lived browser tab, like a user who stays logged in at the upstream
// and authorizes one client after another: the upstream skips its login page, and no browser
// context is created per flow. That halves the browser's work for these flows; every check whose
// subject is the browser (consent, cookies, binding, login) runs its own flows in fresh isolated
// contexts instead. Config.FreshContexts turns the shared tab off.
//
// Checks that move clocks, inject upstream faults or watch the upstream log pause the pool
// (Exclusive), so nothing runs beside them.
type flowPool struct {
	env   *Env
	depth int

	mu      sync.Mutex
	started bool
	ready   chan pooled
	paused  int
	cond    *sync.Cond
	running bool
	epoch   int
	dead    bool
	client  *Client
	stop    chan struct{}
	wg      sync.WaitGroup
	ctx     context.Context
	cancel  context.CancelFunc
}

type pooled struct {
	res   *FlowResult
	rec   evidence.Snapshot
	epoch int
	made  time.Time
}

func newFlowPool(env *Env, depth int) *flowPool {
	p := &flowPool{env: env, depth: depth, ready: make(chan pooled, depth), stop: make(chan struct{})}
	p.ctx, p.cancel = context.WithCancel(context.Background())
	p.cond = sync.NewCond(&p.mu)
	return p
}

// isPlain reports whether a flow is a plain authorization: the usual request for a standard
// client, approved, by the usual user (its failure is AZ-01's).
func (f Flow) isPlain() bool {
	return f.Client == nil && f.Scope == nil && f.Resource == nil && f.State == nil && f.Verifier == "" &&
		f.Challenge == nil && f.Method == nil && f.RedirectURI == nil && f.Params == nil && f.Extra == nil &&
		f.Consent == login.Approve && !f.StopAtLogin && f.Credentials == nil
}

// isDefault reports whether a flow is the plain kind the pool makes ahead of time.
func (f Flow) isDefault() bool {
	return f.isPlain() && f.Session == nil && !f.Fresh && f.Until == nil && !f.Subject && !f.Browser
}

// take returns a prefetched flow, starting the producer on first use. ok is false when the pool
// is disabled or has nothing usable in time (the caller then runs the flow itself).
func (p *flowPool) take(t *T) (pooled, bool) {
	if p.depth <= 0 {
		return pooled{}, false
	}
	p.start()
	p.mu.Lock()
	unusable := p.paused > 0 || p.dead
	p.mu.Unlock()
	if unusable {
		return pooled{}, false
	}
	timeout := time.NewTimer(t.env.cfg.FlowTimeout)
	defer timeout.Stop()
	for {
		select {
		case it := <-p.ready:
			p.mu.Lock()
			stale := it.epoch != p.epoch
			p.mu.Unlock()
			if stale {
				continue
			}
			return it, true
		case <-timeout.C:
			return pooled{}, false
		case <-p.stop:
			return pooled{}, false
		case <-t.ctx.Done():
			return pooled{}, false
		}
	}
}

// start runs the producer (once).
func (p *flowPool) start() {
	if p.depth <= 0 {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.started {
		return
	}
	select {
	case <-p.stop:
		return
	default:
	}
	p.started = true
	p.wg.Add(1)
	go p.produce()
}

func (p *flowPool) produce() {
	defer p.wg.Done()
	for {
		p.mu.Lock()
		for p.paused > 0 {
			p.cond.Wait()
		}
		select {
		case <-p.stop:
			p.mu.Unlock()
			return
		default:
		}
		epoch := p.epoch
		p.running = true
		p.mu.Unlock()

		it, ok := p.makeOne(epoch)

		p.mu.Lock()
		p.running = false
		p.cond.Broadcast()
		stale := epoch != p.epoch
		p.mu.Unlock()
		if !ok {
			p.mu.Lock()
			p.dead = true // the checks run their flows themselves (and report why they fail)
			p.mu.Unlock()
			return
		}
		if stale {
			continue
		}
		select {
		case p.ready <- it:
		case <-p.stop:
			return
		}
	}
}

// makeOne runs one flow detached from any check (its own evidence, failures swallowed).
func (p *flowPool) makeOne(epoch int) (it pooled, ok bool) {
	rec := &evidence.Record{}
	ctx, cancel := context.WithTimeout(p.ctx, p.env.cfg.FlowTimeout+5*time.Second)
	defer cancel()
	t := &T{ctx: ctx, env: p.env, rec: rec, client: p.env.newClient(rec)}
	t.entry.ID = "flow pool"
	defer func() {
		if r := recover(); r != nil {
			ok = false
		}
	}()
	p.mu.Lock()
	c := p.client
	p.mu.Unlock()
	if c == nil {
		c = t.NewClient(func(m map[string]any) { m["client_name"] = "mcp-auth-conformance (prefetched flows)" })
		p.mu.Lock()
		p.client = c
		p.mu.Unlock()
	}
	r := t.Browse(Flow{Client: c, Name: "prefetched flow"})
	if r.Err != nil || !r.Got || r.Response.Code() == "" {
		return pooled{}, false
	}
	return pooled{res: r, rec: rec.Snapshot(), epoch: epoch, made: time.Now()}, true
}

// Exclusive pauses the pool for the rest of the check: no prefetched flow runs beside a check that
// moves clocks, injects upstream faults or reads the upstream log, and flows made before it are
// discarded when the check changes state (call Invalidate).
func (t *T) Exclusive() {
	p := t.env.pool
	p.mu.Lock()
	p.paused++
	for p.running {
		p.cond.Wait()
	}
	p.mu.Unlock()
	t.Cleanup(func() {
		p.mu.Lock()
		p.paused--
		p.cond.Broadcast()
		p.mu.Unlock()
	})
}

// invalidatePool discards prefetched flows (their codes are stale after a clock move).
func (t *T) invalidatePool() {
	p := t.env.pool
	p.mu.Lock()
	p.epoch++
	p.mu.Unlock()
}

func (p *flowPool) close() {
	p.mu.Lock()
	started := p.started
	p.mu.Unlock()
	if !started {
		return
	}
	close(p.stop)
	p.cancel()
	p.mu.Lock()
	p.paused = 0
	p.cond.Broadcast()
	p.mu.Unlock()
	p.wg.Wait()
}
