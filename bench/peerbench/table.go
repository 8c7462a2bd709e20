package peerbench

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// Comparison is one column of the ratio table: Ours against Peer.
type Comparison struct {
	Ours, Peer string
}

func (c Comparison) String() string { return c.Ours + " ÷ " + c.Peer }

// Goal is a speed-up the benchmark checks: Ours answers Methods at least Factor times as fast as
// Peer (median over the rounds of the per-round throughput ratio) at every concurrency.
type Goal struct {
	Name    string
	Compare Comparison
	Methods []string
	Factor  float64
}

type key struct {
	method string
	c      int
}

// Ratio is a comparison at one workload: the median over the rounds of the per-round ratios, and
// their range.
type Ratio struct {
	Throughput, Min, Max float64 // ours' requests per second ÷ the peer's
	CPU                  float64 // the peer's CPU per request ÷ ours (server processes only)
	Rounds               int
}

func (r Ratio) String() string {
	if r.Rounds == 0 {
		return "–"
	}
	s := fmt.Sprintf("%.1f× (%.1f–%.1f)", r.Throughput, r.Min, r.Max)
	if r.CPU > 0 {
		s += fmt.Sprintf(", CPU %.1f×", r.CPU)
	}
	return s
}

// Compare computes a comparison's ratio at each workload.
func Compare(ms []Measurement, c Comparison) map[key]Ratio {
	byRound := map[key]map[int][2]*Measurement{}
	for i := range ms {
		m := &ms[i]
		side := -1
		switch m.Target {
		case c.Ours:
			side = 0
		case c.Peer:
			side = 1
		}
		if side < 0 || m.Requests == 0 {
			continue
		}
		k := key{m.Method, m.Concurrency}
		if byRound[k] == nil {
			byRound[k] = map[int][2]*Measurement{}
		}
		pair := byRound[k][m.Round]
		pair[side] = m
		byRound[k][m.Round] = pair
	}
	out := map[key]Ratio{}
	for k, rounds := range byRound {
		var tp, cpu []float64
		for _, p := range rounds {
			if p[0] == nil || p[1] == nil || p[1].Throughput() == 0 {
				continue
			}
			tp = append(tp, p[0].Throughput()/p[1].Throughput())
			if p[0].CPUPer1000() > 0 {
				cpu = append(cpu, float64(p[1].CPUPer1000())/float64(p[0].CPUPer1000()))
			}
		}
		if len(tp) == 0 {
			continue
		}
		slices.Sort(tp)
		out[k] = Ratio{Throughput: median(tp), Min: tp[0], Max: tp[len(tp)-1], CPU: median(cpu), Rounds: len(tp)}
	}
	return out
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	v = slices.Clone(v)
	slices.Sort(v)
	if len(v)%2 == 1 {
		return v[len(v)/2]
	}
	return (v[len(v)/2-1] + v[len(v)/2]) / 2
}

func medianDuration(v []time.Duration) time.Duration {
	f := make([]float64, len(v))
	for i, d := range v {
		f[i] = float64(d)
	}
	return time.Duration(median(f))
}

// workloads lists the measured workloads in the order they ran.
func workloads(ms []Measurement) []key {
	var out []key
	for _, m := range ms {
		k := key{m.Method, m.Concurrency}
		if !slices.Contains(out, k) {
			out = append(out, k)
		}
	}
	return out
}

func (k key) label() string {
	if k.method == MethodRefresh {
		return "refresh chain"
	}
	return fmt.Sprintf("%s c=%d", k.method, k.c)
}

// RatioTable is the table of ratios: one row per workload, one column per comparison. Each cell is
// the median over the rounds of ours' throughput ÷ the peer's, the range over the rounds, and the
// peer's server CPU per request ÷ ours.
func RatioTable(ms []Measurement, comps []Comparison) string {
	var b strings.Builder
	b.WriteString("| workload |")
	for _, c := range comps {
		fmt.Fprintf(&b, " %s |", c)
	}
	b.WriteString("\n|---|")
	b.WriteString(strings.Repeat("---|", len(comps)))
	b.WriteString("\n")
	ratios := make([]map[key]Ratio, len(comps))
	for i, c := range comps {
		ratios[i] = Compare(ms, c)
	}
	for _, k := range workloads(ms) {
		fmt.Fprintf(&b, "| %s |", k.label())
		for i := range comps {
			fmt.Fprintf(&b, " %s |", ratios[i][k])
		}
		b.WriteString("\n")
	}
	return b.String()
}

// AbsoluteTable lists each target's medians over the rounds at each workload.
func AbsoluteTable(ms []Measurement, targets []string) string {
	var b strings.Builder
	b.WriteString("| workload | target | req/s | p50 | p99 | server CPU / 1,000 | upstream CPU / 1,000 | RSS (max) | body bytes | errors |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|---|---|\n")
	for _, k := range workloads(ms) {
		for _, t := range targets {
			var tp []float64
			var p50, p99, cpu, ucpu []time.Duration
			var rss int64
			bytes, errs, gz := 0, 0, false
			for _, m := range ms {
				if m.Target != t || m.Method != k.method || m.Concurrency != k.c {
					continue
				}
				tp = append(tp, m.Throughput())
				p50, p99 = append(p50, m.P50), append(p99, m.P99)
				cpu, ucpu = append(cpu, m.CPUPer1000()), append(ucpu, m.UpstreamCPUPer1000())
				rss = max(rss, m.RSS)
				bytes, errs = m.Bytes, errs+m.Errors
				gz = gz || m.Compressed > 0
			}
			if len(tp) == 0 {
				continue
			}
			body := "–"
			if bytes > 0 {
				body = fmt.Sprint(bytes)
				if gz {
					body += " (sent gzip)"
				}
			}
			fmt.Fprintf(&b, "| %s | %s | %.0f | %s | %s | %s | %s | %.0f MB | %s | %d |\n", k.label(), t, median(tp),
				round(medianDuration(p50)), round(medianDuration(p99)), round(medianDuration(cpu)), round(medianDuration(ucpu)),
				float64(rss)/1e6, body, errs)
		}
	}
	return b.String()
}

// Verdicts says for each goal whether it was met, at each concurrency.
func Verdicts(ms []Measurement, goals []Goal) []string {
	var out []string
	for _, g := range goals {
		ratios := Compare(ms, g.Compare)
		var parts []string
		met := true
		for _, k := range workloads(ms) {
			if !slices.Contains(g.Methods, k.method) {
				continue
			}
			r, ok := ratios[k]
			if !ok {
				continue
			}
			word := "met"
			if r.Throughput < g.Factor {
				word, met = "MISSED", false
			}
			parts = append(parts, fmt.Sprintf("%s %.1f× %s", k.label(), r.Throughput, word))
		}
		if len(parts) == 0 {
			out = append(out, fmt.Sprintf("%s: not measured", g.Name))
			continue
		}
		overall := "MET"
		if !met {
			overall = "NOT MET"
		}
		out = append(out, fmt.Sprintf("%s (%s ≥ %.0f×): %s — %s", g.Name, g.Compare, g.Factor, overall, strings.Join(parts, "; ")))
	}
	return out
}
