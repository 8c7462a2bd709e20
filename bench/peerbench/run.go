package peerbench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"time"

	"github.com/cnpg-mcp/cnpg-mcp/bench/load"
	"github.com/cnpg-mcp/cnpg-mcp/bench/procstat"
	"github.com/cnpg-mcp/cnpg-mcp/conformance/oauthclient"
)

// MethodRefresh names the refresh chains in Measurements (a token request, not an MCP method).
const MethodRefresh = "refresh"

// Config is what a benchmark run does.
type Config struct {
	// Rounds of the whole set of runs; every round measures every target one after the other for
	// each workload, so a ratio compares runs seconds apart.
	Rounds int
	// Methods are the MCP methods measured (tools/list, ping) at each of Concurrency.
	Methods     []string
	Concurrency []int
	// Requests per run (its bound in count), Warmup requests before it, MaxDuration its bound in time.
	Requests, Warmup int
	MaxDuration      time.Duration
	// Refreshes is the length of each refresh chain (sequential refresh_token grants; 0: none).
	Refreshes int
	// Proc is the proc file system (default /proc).
	Proc string
	// Log receives one line per run (nil: discarded).
	Log io.Writer
}

// Measurement is one run against one target.
type Measurement struct {
	Round       int
	Target      string
	Method      string
	Concurrency int
	Requests    int
	Errors      int
	FirstError  string
	TimedOut    bool
	Elapsed     time.Duration
	P50, P99    time.Duration
	// CPU is the server's (process tree's) CPU time during the run; UpstreamCPU its mock Auth0's.
	CPU, UpstreamCPU time.Duration
	// RSS is the server's resident memory after the run.
	RSS int64
	// Bytes is the size of an answer's body, decoded; Compressed counts the answers that came
	// gzip-compressed (every target gets the same request headers, Accept-Encoding: gzip among them
	// as from any default Go client).
	Bytes, Compressed int
}

// Throughput is answered requests per second.
func (m Measurement) Throughput() float64 {
	if m.Elapsed <= 0 {
		return 0
	}
	return float64(m.Requests) / m.Elapsed.Seconds()
}

// CPUPer1000 is the server's CPU time per 1,000 requests.
func (m Measurement) CPUPer1000() time.Duration {
	if m.Requests == 0 {
		return 0
	}
	return m.CPU * 1000 / time.Duration(m.Requests)
}

// UpstreamCPUPer1000 is the mock Auth0's CPU time per 1,000 requests to the server.
func (m Measurement) UpstreamCPUPer1000() time.Duration {
	if m.Requests == 0 {
		return 0
	}
	return m.UpstreamCPU * 1000 / time.Duration(m.Requests)
}

// Line is the measurement as one line of the raw output.
func (m Measurement) Line() string {
	s := fmt.Sprintf("round %d  %-13s %-10s c=%-2d  n=%-5d %8.0f req/s  p50 %7s  p99 %7s  cpu/1000 %8s  upstream cpu/1000 %8s  rss %5.1f MB  body %6d B",
		m.Round, m.Target, m.Method, m.Concurrency, m.Requests, m.Throughput(), round(m.P50), round(m.P99),
		round(m.CPUPer1000()), round(m.UpstreamCPUPer1000()), float64(m.RSS)/1e6, m.Bytes)
	if m.Compressed > 0 {
		s += fmt.Sprintf(" (gzip: %d of %d)", m.Compressed, m.Requests)
	}
	if m.TimedOut {
		s += "  (time bound reached)"
	}
	if m.Errors > 0 {
		s += fmt.Sprintf("  ERRORS %d: %s", m.Errors, m.FirstError)
	}
	return s
}

func round(d time.Duration) time.Duration {
	switch {
	case d >= 100*time.Millisecond:
		return d.Round(time.Millisecond)
	case d >= 100*time.Microsecond:
		return d.Round(10 * time.Microsecond)
	default:
		return d.Round(time.Microsecond)
	}
}

// Run measures every target in Rounds interleaved rounds. The targets must be signed in.
func Run(ctx context.Context, targets []*Target, cfg Config) ([]Measurement, error) {
	if cfg.Proc == "" {
		cfg.Proc = "/proc"
	}
	if cfg.Log == nil {
		cfg.Log = io.Discard
	}
	maxConc := 1
	for _, c := range cfg.Concurrency {
		maxConc = max(maxConc, c)
	}
	hc := &http.Client{Transport: &http.Transport{MaxIdleConns: 4 * maxConc, MaxIdleConnsPerHost: 2 * maxConc, IdleConnTimeout: time.Minute}}
	defer hc.CloseIdleConnections()
	oc := oauthclient.New(hc)
	oc.UserAgent, oc.ProtocolVersion = "cnpg-mcp bench-peers", ProtocolVersion

	var out []Measurement
	for r := 1; r <= cfg.Rounds; r++ {
		sessions := map[string][]Session{}
		for _, t := range targets {
			for range maxConc {
				s, err := t.Open(ctx, oc)
				if err != nil {
					return out, err
				}
				sessions[t.Name] = append(sessions[t.Name], s)
			}
		}
		for _, method := range cfg.Methods {
			for _, c := range cfg.Concurrency {
				for _, t := range targets {
					m, err := measure(ctx, cfg, hc, t, sessions[t.Name], method, c)
					if err != nil {
						return out, err
					}
					m.Round = r
					fmt.Fprintln(cfg.Log, m.Line())
					out = append(out, m)
				}
			}
		}
		for _, t := range targets {
			for _, s := range sessions[t.Name] {
				t.Close(ctx, hc, s)
			}
		}
		if cfg.Refreshes > 0 {
			for _, t := range targets {
				m, err := refreshChain(ctx, cfg, oc, t)
				if err != nil {
					return out, err
				}
				m.Round = r
				fmt.Fprintln(cfg.Log, m.Line())
				out = append(out, m)
			}
		}
	}
	return out, nil
}

// sample reads the CPU and memory of a target's server and mock.
func sample(proc string, t *Target) (server, upstream procstat.Sample, err error) {
	if server, err = procstat.Read(proc, t.PID); err != nil {
		return server, upstream, fmt.Errorf("%s: %w", t.Name, err)
	}
	if t.UpstreamPID != 0 {
		if upstream, err = procstat.Read(proc, t.UpstreamPID); err != nil {
			return server, upstream, fmt.Errorf("%s's mock Auth0: %w", t.Name, err)
		}
	}
	return server, upstream, nil
}

func measure(ctx context.Context, cfg Config, hc *http.Client, t *Target, sessions []Session, method string, c int) (Measurement, error) {
	ids := make([]int, c)
	lc := load.Config{
		Client: hc, Concurrency: c, Requests: cfg.Requests, Warmup: cfg.Warmup, MaxDuration: cfg.MaxDuration,
		NewRequest: func(ctx context.Context, w int) (*http.Request, error) {
			ids[w]++
			return t.Request(ctx, sessions[w%len(sessions)], method, ids[w])
		},
		// A cheap check per answer (the table's payloads were checked in full once, by Payload).
		Check: func(status int, body []byte) error {
			if status != http.StatusOK {
				return fmt.Errorf("HTTP %d: %.200s", status, body)
			}
			if !bytes.Contains(body, []byte(`"result"`)) {
				return fmt.Errorf("no result: %.200s", body)
			}
			return nil
		},
	}
	var s0, u0 procstat.Sample
	var serr error
	lc.Measuring = func() { s0, u0, serr = sample(cfg.Proc, t) }
	res, err := load.Run(ctx, lc)
	if err != nil {
		return Measurement{}, err
	}
	s1, u1, err := sample(cfg.Proc, t)
	if err = errors.Join(serr, err); err != nil {
		return Measurement{}, err
	}
	cpu, ucpu := s1.CPU-s0.CPU, u1.CPU-u0.CPU
	m := Measurement{Target: t.Name, Method: method, Concurrency: c, Requests: res.Requests, Errors: res.Errors,
		TimedOut: res.TimedOut, Elapsed: res.Elapsed, P50: res.Percentile(50), P99: res.Percentile(99),
		CPU: cpu, UpstreamCPU: ucpu, RSS: s1.RSS, Bytes: res.BodyBytes, Compressed: res.Compressed}
	if res.FirstError != nil {
		m.FirstError = res.FirstError.Error()
	}
	return m, nil
}

// refreshChain redeems Refreshes refresh tokens one after the other, each the one the previous
// answer returned (a client that stays signed in for a long time).
func refreshChain(ctx context.Context, cfg Config, oc *oauthclient.Client, t *Target) (Measurement, error) {
	s0, u0, err := sample(cfg.Proc, t)
	if err != nil {
		return Measurement{}, err
	}
	m := Measurement{Target: t.Name, Method: MethodRefresh, Concurrency: 1}
	var lat []time.Duration
	start := time.Now()
	deadline := start.Add(cfg.MaxDuration)
	for i := 0; i < cfg.Refreshes && time.Now().Before(deadline); i++ {
		t0 := time.Now()
		err := t.Refresh(ctx, oc)
		lat = append(lat, time.Since(t0))
		if err != nil {
			// The chain is broken: the rest of the rounds would have no token either.
			return m, fmt.Errorf("%s: refresh %d of the chain: %w", t.Name, i+1, err)
		}
	}
	m.Elapsed = time.Since(start)
	m.Requests = len(lat)
	m.TimedOut = m.Requests < cfg.Refreshes
	s1, u1, err := sample(cfg.Proc, t)
	if err != nil {
		return Measurement{}, err
	}
	m.CPU, m.UpstreamCPU, m.RSS = s1.CPU-s0.CPU, u1.CPU-u0.CPU, s1.RSS
	r := load.Result{Latencies: lat}
	slices.Sort(r.Latencies)
	m.P50, m.P99 = r.Percentile(50), r.Percentile(99)
	return m, nil
}
