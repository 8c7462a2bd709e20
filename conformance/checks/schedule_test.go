package checks

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cnpg-mcp/cnpg-mcp/conformance/catalogue"
	"github.com/cnpg-mcp/cnpg-mcp/conformance/report"
)

// TestSchedule: checks run side by side; a check that must run alone (it calls Exclusive, as
// clock-moving and upstream-log checks do) and was not known to is stopped and run again alone,
// with nothing beside it; rows graded by other rows run last and find their owners' results; every
// check gets exactly one result.
func TestSchedule(t *testing.T) {
	env := testEnv(t)
	env.cfg.Parallel = 4
	var running, maxRunning, aloneOverlap atomic.Int32
	together := make(chan struct{})
	var once sync.Once
	busy := func(t *T) {
		n := running.Add(1)
		defer running.Add(-1)
		for {
			m := maxRunning.Load()
			if n <= m || maxRunning.CompareAndSwap(m, n) {
				break
			}
		}
		if n >= 2 {
			once.Do(func() { close(together) })
		}
		// Wait until two checks run at once (they do, unless the schedule runs one at a time).
		select {
		case <-together:
		case <-time.After(5 * time.Second):
		}
	}
	var aloneStarts atomic.Int32
	mk := func(id string, f func(*T)) Check { return Check{Entry: catalogue.MustLookup(id), Run: f} }
	cs := []Check{
		mk("PRM-01", busy), mk("PRM-02", busy), mk("PRM-03", busy), mk("PRM-04", busy), mk("PRM-05", busy), mk("PRM-06", busy),
		// Not in aloneHint: it finds out it must run alone once it runs.
		mk("TOK-01", func(t *T) {
			aloneStarts.Add(1)
			t.exclusiveOnce()
			if running.Load() != 0 {
				aloneOverlap.Add(1)
			}
			busy(t)
		}),
		mk("BCP-01", func(t *T) { t.CrossRef("PRM-01", "TOK-01") }),
	}
	s := Start(context.Background(), env, cs, 4)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, c := range cs {
		r, ok := s.Result(ctx, c.ID)
		if !ok {
			t.Fatalf("%s: no result", c.ID)
		}
		if r.Status != report.Pass {
			t.Errorf("%s: %s %s", c.ID, r.Status, r.Message())
		}
	}
	if maxRunning.Load() < 2 {
		t.Errorf("checks did not run side by side (at most %d at a time)", maxRunning.Load())
	}
	if aloneStarts.Load() != 2 || aloneOverlap.Load() != 0 {
		t.Errorf("the check that must run alone started %d times (want 2: stopped, then alone), ran beside others %d times", aloneStarts.Load(), aloneOverlap.Load())
	}
	if r, _ := env.Result("BCP-01"); !r.Derived || len(r.Links) != 2 {
		t.Errorf("the derived row did not link its owners: %+v", r.Links)
	}
}
