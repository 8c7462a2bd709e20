// Package load is the benchmark's load generator: a fixed number of HTTP requests sent by a fixed
// number of workers, each with its own request (its own MCP session), over kept-alive connections.
// A run is bounded in count and in time and stops by itself.
//
// Requests go out as a default Go client sends them: unless NewRequest sets Accept-Encoding itself,
// net/http's Transport asks for gzip and decompresses the answer (verifying its CRC-32 and length),
// so Check sees, and BodyBytes counts, the decoded body; Result.Compressed says how many answers
// came compressed.
package load

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Config is one run.
type Config struct {
	// Client sends the requests; its transport should keep at least Concurrency idle connections.
	Client *http.Client
	// Concurrency is the number of workers, each sending its next request when its previous answer
	// has been read in full.
	Concurrency int
	// Requests is the number of measured requests in all (the run's bound in count).
	Requests int
	// Warmup requests are sent first and not measured.
	Warmup int
	// MaxDuration bounds the measured part (the run's bound in time): the workers stop when it has
	// passed, and the result says how many requests were sent.
	MaxDuration time.Duration
	// NewRequest returns worker's next request (a new one each time: bodies are read once).
	NewRequest func(ctx context.Context, worker int) (*http.Request, error)
	// Measuring, when set, is called between the warm-up and the measured requests (e.g. to read
	// the server's CPU time then).
	Measuring func()
	// Check judges an answer (status and the whole body); nil accepts any 200.
	Check func(status int, body []byte) error
}

// Result is what a run measured.
type Result struct {
	// Requests is the number of measured requests that were answered (successfully or not).
	Requests int
	// Errors counts failed requests (transport errors and answers Check refused); FirstError is
	// the first of them.
	Errors     int
	FirstError error
	// Elapsed is the wall time of the measured part.
	Elapsed time.Duration
	// BodyBytes is the size of the last good answer's body, decoded (a gzip answer's JSON).
	BodyBytes int
	// Compressed counts the measured good answers the client's transport decompressed (sent with
	// Content-Encoding: gzip to its Accept-Encoding: gzip).
	Compressed int
	// Latencies of the measured requests, sorted.
	Latencies []time.Duration
	// TimedOut reports that MaxDuration ended the run before Requests were sent.
	TimedOut bool
}

// Throughput is the measured requests per second.
func (r Result) Throughput() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Requests) / r.Elapsed.Seconds()
}

// Percentile returns the p-th percentile latency (0 < p ≤ 100), nearest rank.
func (r Result) Percentile(p float64) time.Duration {
	if len(r.Latencies) == 0 {
		return 0
	}
	i := int(float64(len(r.Latencies))*p/100+0.999999) - 1
	return r.Latencies[max(0, min(i, len(r.Latencies)-1))]
}

// Run sends the warm-up requests, then the measured ones, and returns the measurement. It fails
// only on a configuration error or when ctx ends; failed requests are counted in the Result.
func Run(ctx context.Context, c Config) (Result, error) {
	if c.Client == nil || c.NewRequest == nil || c.Concurrency < 1 || c.Requests < 1 || c.MaxDuration <= 0 {
		return Result{}, errors.New("load: Client, NewRequest, Concurrency ≥ 1, Requests ≥ 1 and MaxDuration > 0 are required")
	}
	if c.Check == nil {
		c.Check = func(status int, _ []byte) error {
			if status != http.StatusOK {
				return fmt.Errorf("HTTP %d", status)
			}
			return nil
		}
	}
	if c.Warmup > 0 {
		if _, err := phase(ctx, c, c.Warmup, c.MaxDuration); err != nil {
			return Result{}, err
		}
	}
	if c.Measuring != nil {
		c.Measuring()
	}
	return phase(ctx, c, c.Requests, c.MaxDuration)
}

func phase(ctx context.Context, c Config, n int, limit time.Duration) (Result, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	deadline := time.NewTimer(limit)
	defer deadline.Stop()
	var (
		next     atomic.Int64 // tickets: a worker sends request i when it draws i < n
		timedOut atomic.Bool
		mu       sync.Mutex
		res      Result
		wg       sync.WaitGroup
	)
	go func() {
		select {
		case <-deadline.C:
			timedOut.Store(true)
		case <-ctx.Done():
		}
	}()
	lat := make([][]time.Duration, c.Concurrency)
	start := time.Now()
	for w := range c.Concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(n) && !timedOut.Load() && ctx.Err() == nil {
				t := time.Now()
				size, gz, err := one(ctx, c, w)
				d := time.Since(t)
				if ctx.Err() != nil {
					return
				}
				lat[w] = append(lat[w], d)
				mu.Lock()
				if err != nil {
					res.Errors++
					if res.FirstError == nil {
						res.FirstError = err
					}
				} else {
					res.BodyBytes = size
					if gz {
						res.Compressed++
					}
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	res.Elapsed = time.Since(start)
	if err := ctx.Err(); err != nil {
		return res, err
	}
	for _, l := range lat {
		res.Latencies = append(res.Latencies, l...)
	}
	slices.Sort(res.Latencies)
	res.Requests = len(res.Latencies)
	res.TimedOut = timedOut.Load() && res.Requests < n
	return res, nil
}

// one sends worker w's next request and reads the answer in full; it returns the decoded body's
// size and whether the transport decompressed it.
func one(ctx context.Context, c Config, w int) (int, bool, error) {
	req, err := c.NewRequest(ctx, w)
	if err != nil {
		return -1, false, err
	}
	resp, err := c.Client.Do(req)
	if err != nil {
		return -1, false, err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return -1, false, err
	}
	if err := c.Check(resp.StatusCode, body); err != nil {
		return -1, false, err
	}
	return len(body), resp.Uncompressed, nil
}
