package checks

import (
	"context"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cnpg-mcp/cnpg-mcp/conformance/report"
)

// Scheduling a run. Most checks are independent of one another: they run side by side, a few at
// a time (phase 1). A check that moves the target's clock, injects upstream faults or reads the
// upstream's request log must run alone (phase 2, one after another): nothing may run beside it.
// Rows graded by other rows (section D, the client-interop rows, the owners of an endpoint's error
// format) run last, once their owners have results (phase 3). A check that turns out to need to
// run alone while it runs beside others (it calls Exclusive) is stopped and run again in phase 2:
// the lists below only save that wasted start.

// aloneHint are the checks known to run alone (they move clocks or read the upstream's log).
var aloneHint = map[string]bool{
	"AZ-09": true, "TOK-09": true, "PXY-08": true, "PXY-12": true, "PKCE-07": true, "PXY-15": true, "PXY-16": true,
	"PXY-20": true, "RT-08": true, "RT-09": true, "REV-06": true, "RS-10": true,
}

// upstreamClockLast are the alone checks that move the upstream's clock: its login session ends,
// so the browser has to log in again after them. They run after the other alone checks.
var upstreamClockLast = map[string]bool{"RS-10": true, "RT-08": true, "RT-09": true}

// firstHint are checks that open fresh browsers (and log in): started first among the checks that
// run side by side, so the longest do not end the phase alone.
var firstHint = []string{"PXY-07", "PXY-06", "AZ-15", "CIMD-08", "PXY-10", "PXY-01", "AZ-14", "PXY-11", "CIMD-01", "CIMD-09", "SEC-02", "PXY-02"}

// lastHint are the checks that grade what other rows saw.
var lastHint = map[string]bool{
	"TOK-10": true, "DCR-03": true, "AZ-12": true, "CLI-15": true, "PXY-09": true,
	"CLI-03": true, "CLI-04": true, "CLI-06": true, "CLI-10": true, "CLI-12": true, "CLI-13": true, "CLI-14": true, "CLI-16": true,
}

// needsAlone is the panic a check raises when it must run alone but runs beside others.
type needsAlone struct{}

// Schedule runs the checks (in their catalogue order within each phase) with up to workers of
// them at a time in phase 1, and returns when every check has a result. result(id) may be
// called at any time: it waits for that check. The run's results are also in env.Result.
type Schedule struct {
	env  *Env
	done map[string]chan struct{}
}

// Start schedules cs against env in the background.
func Start(ctx context.Context, env *Env, cs []Check, workers int) *Schedule {
	s := &Schedule{env: env, done: map[string]chan struct{}{}}
	for _, c := range cs {
		s.done[c.ID] = make(chan struct{})
	}
	go s.run(ctx, cs, max(1, workers))
	return s
}

// Result waits for a check's result.
func (s *Schedule) Result(ctx context.Context, id string) (report.Result, bool) {
	ch, ok := s.done[id]
	if !ok {
		return report.Result{}, false
	}
	select {
	case <-ch:
	case <-ctx.Done():
		return report.Result{}, false
	}
	return s.env.Result(id)
}

func (s *Schedule) finish(id string) {
	if ch, ok := s.done[id]; ok {
		select {
		case <-ch:
		default:
			close(ch)
		}
	}
}

func (s *Schedule) run(ctx context.Context, cs []Check, workers int) {
	var concurrent, alone, last []Check
	for _, c := range cs {
		switch {
		case lastHint[c.ID] || c.SectionID() == "D":
			last = append(last, c)
		case aloneHint[c.ID]:
			alone = append(alone, c)
		default:
			concurrent = append(concurrent, c)
		}
	}
	start := time.Now()
	var mu sync.Mutex
	var wg sync.WaitGroup
	queue := make(chan Check)
	s.env.concurrent.Store(workers > 1)
	for i := 0; i < workers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for c := range queue {
				if _, ok := s.runOne(ctx, c); !ok {
					mu.Lock()
					alone = append(alone, c)
					mu.Unlock()
					s.env.addCount("(checks restarted to run alone)")
					continue
				}
				s.finish(c.ID)
			}
		}()
	}
	rank := map[string]int{}
	for i, id := range firstHint {
		rank[id] = len(firstHint) - i
	}
	sort.SliceStable(concurrent, func(i, j int) bool { return rank[concurrent[i].ID] > rank[concurrent[j].ID] })
	for _, c := range concurrent {
		queue <- c
	}
	close(queue)
	wg.Wait()
	s.env.concurrent.Store(false)
	if workers > 1 {
		s.env.addTiming("checks side by side", time.Since(start))
	} else {
		s.env.addTiming("checks", time.Since(start))
	}
	start = time.Now()
	sortByCatalogue(alone)
	sort.SliceStable(alone, func(i, j int) bool { return !upstreamClockLast[alone[i].ID] && upstreamClockLast[alone[j].ID] })
	for _, c := range alone {
		s.runOne(ctx, c)
		s.finish(c.ID)
	}
	s.env.addTiming("checks run alone", time.Since(start))
	for _, c := range last {
		s.runOne(ctx, c)
		s.finish(c.ID)
	}
	for id := range s.done {
		s.finish(id) // a check whose result is missing (the run was cancelled) does not block its spec
	}
}

// runOne runs a check; ok is false when it has to run alone (and did not finish).
func (s *Schedule) runOne(ctx context.Context, c Check) (res report.Result, ok bool) {
	defer func() {
		if r := recover(); r != nil {
			if _, alone := r.(needsAlone); !alone {
				panic(r)
			}
			ok = false
		}
	}()
	return Run(ctx, s.env, c), true
}

func sortByCatalogue(cs []Check) {
	order := map[string]int{}
	for i, c := range All() {
		order[c.ID] = i
	}
	for i := 1; i < len(cs); i++ {
		for j := i; j > 0 && order[cs[j].ID] < order[cs[j-1].ID]; j-- {
			cs[j], cs[j-1] = cs[j-1], cs[j]
		}
	}
}

// concurrentFlag is set while checks run side by side.
type concurrentFlag = atomic.Bool
