package chaos

import (
	"fmt"
	"sort"
	"strings"
	"text/tabwriter"
	"time"
)

// Report is the outcome of one scenario.
type Report struct {
	Scenario    string
	Description string
	Clients     int
	Duration    time.Duration
	Faults      []Window
	Counts      Counts
	// Lost are the grants that ended (invalid_grant or invalid_client), one per client at most.
	Lost []Event
	// Valid401 are 401 answers to access tokens that were valid (accepted again later, or their grant
	// refreshed afterwards).
	Valid401 []Event
	// FinalFailures are acknowledged tokens that were not usable at the end.
	FinalFailures []Event
	// Unexpected are answers a valid request never deserves (a 4xx other than 401 at the MCP endpoint).
	Unexpected []Event
	// Stuck are requests still unavailable after RetryFor; NotRecovered are clients without a
	// successful refresh within RecoverWithin after a fault.
	Stuck, NotRecovered []Event
	// Recovery has, per fault and per client that kept its grant, the time from the fault's end to the
	// client's first successful refresh.
	Recovery []time.Duration
	// PerFault is Recovery split by fault.
	PerFault [][]time.Duration
}

func (r *Runner) report(sc Scenario, final []Event, took time.Duration) *Report {
	rep := &Report{Scenario: sc.Name, Description: sc.Description, Clients: len(r.workers), Duration: took, FinalFailures: final}
	r.mu.Lock()
	rep.Faults = append(rep.Faults, r.windows...)
	rep.NotRecovered = append(rep.NotRecovered, r.notRecovered...)
	r.mu.Unlock()
	rep.PerFault = make([][]time.Duration, len(rep.Faults))
	for _, w := range r.workers {
		w.mu.Lock()
		rep.Counts.add(w.counts)
		if w.lost != nil {
			rep.Lost = append(rep.Lost, *w.lost)
		}
		rep.Valid401 = append(rep.Valid401, w.valid401...)
		rep.Unexpected = append(rep.Unexpected, w.unexpected...)
		rep.Stuck = append(rep.Stuck, w.stuck...)
		for i, f := range rep.Faults {
			if w.lost != nil && w.lost.At.Before(f.End) {
				continue
			}
			j := sort.Search(len(w.successes), func(k int) bool { return !w.successes[k].Before(f.End) })
			if j < len(w.successes) {
				d := w.successes[j].Sub(f.End)
				rep.Recovery = append(rep.Recovery, d)
				rep.PerFault[i] = append(rep.PerFault[i], d)
			}
		}
		w.mu.Unlock()
	}
	for _, l := range [][]Event{rep.Lost, rep.Valid401, rep.FinalFailures, rep.Unexpected, rep.Stuck, rep.NotRecovered} {
		sort.Slice(l, func(i, j int) bool { return l[i].At.Before(l[j].At) })
	}
	return rep
}

// Passed reports whether every assertion held: no grant lost, no valid token answered 401, every
// acknowledged token usable at the end, no unexpected answer, every client recovered after each fault.
func (r *Report) Passed() bool { return len(r.Problems()) == 0 }

// Problems lists the failed assertions, one line each.
func (r *Report) Problems() []string {
	var p []string
	add := func(n int, what string) {
		if n > 0 {
			p = append(p, fmt.Sprintf("%s: %d %s", r.Scenario, n, what))
		}
	}
	add(len(r.Lost), fmt.Sprintf("of %d grants lost (the client must sign in again)", r.Clients))
	add(len(r.Valid401), "valid access tokens answered 401")
	add(len(r.FinalFailures), "acknowledged tokens unusable at the end")
	add(len(r.Unexpected), "unexpected answers to valid requests")
	add(len(r.Stuck), "requests still unavailable after the retry limit")
	add(len(r.NotRecovered), "clients that did not recover after a fault")
	return p
}

// Percentile is the nearest-rank percentile (0 < p ≤ 100) of ds; 0 when empty.
func Percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	k := int(float64(len(s))*p/100+0.999999) - 1
	k = max(0, min(k, len(s)-1))
	return s[k]
}

func fmtDur(d time.Duration) string {
	switch {
	case d == 0:
		return "-"
	case d < time.Second:
		return d.Round(time.Millisecond).String()
	default:
		return d.Round(10 * time.Millisecond).String()
	}
}

// Table renders one summary row per scenario.
func Table(reports []*Report) string {
	var b strings.Builder
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "scenario\tclients\tfaults\trefreshes ok\tretried (refresh/MCP)\tgrants lost\tvalid-token 401s\tacked tokens unusable\tunexpected\trecovery p50\trecovery max\tresult\t")
	for _, r := range reports {
		res := "PASS"
		if !r.Passed() {
			res = "FAIL"
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d/%d\t%d\t%d\t%d\t%d\t%s\t%s\t%s\t\n", r.Scenario, r.Clients, len(r.Faults), r.Counts.RefreshOK,
			r.Counts.RefreshUnavailable, r.Counts.MCPUnavailable, len(r.Lost), len(r.Valid401), len(r.FinalFailures), len(r.Unexpected),
			fmtDur(Percentile(r.Recovery, 50)), fmtDur(Percentile(r.Recovery, 100)), res)
	}
	_ = tw.Flush()
	return b.String()
}

// Details lists each fault with its recovery times and the first events of every failed assertion.
func (r *Report) Details(maxEvents int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s — %s\n", r.Scenario, r.Description)
	fmt.Fprintf(&b, "  %d clients, %s, %d refreshes (%d answered 200), %d MCP calls (%d answered 200, %d 401)\n", r.Clients,
		r.Duration.Round(time.Second), r.Counts.Refreshes, r.Counts.RefreshOK, r.Counts.MCPCalls, r.Counts.MCPOK, r.Counts.MCP401)
	for i, f := range r.Faults {
		rec := r.PerFault[i]
		fmt.Fprintf(&b, "  fault %d: %s, %s long; recovery p50 %s, max %s (%d clients)\n", i+1, f.Fault, fmtDur(f.End.Sub(f.Start)),
			fmtDur(Percentile(rec, 50)), fmtDur(Percentile(rec, 100)), len(rec))
	}
	var start time.Time
	if len(r.Faults) > 0 {
		start = r.Faults[0].Start
	}
	for _, s := range []struct {
		name string
		l    []Event
	}{{"grants lost", r.Lost}, {"valid access tokens answered 401", r.Valid401}, {"acknowledged tokens unusable at the end", r.FinalFailures},
		{"unexpected answers", r.Unexpected}, {"still unavailable after the retry limit", r.Stuck}, {"not recovered", r.NotRecovered}} {
		if len(s.l) == 0 {
			continue
		}
		fmt.Fprintf(&b, "  %s (%d):\n", s.name, len(s.l))
		for i, e := range s.l {
			if i == maxEvents {
				fmt.Fprintf(&b, "    … %d more\n", len(s.l)-maxEvents)
				break
			}
			at := ""
			if !start.IsZero() {
				at = fmt.Sprintf(" at %+.2fs from the first fault", e.At.Sub(start).Seconds())
			}
			fmt.Fprintf(&b, "    client %d%s: %s\n", e.Client, at, e.What)
		}
	}
	return b.String()
}
