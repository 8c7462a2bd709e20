package load

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"
)

func TestRunCountsAndChecks(t *testing.T) {
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := hits.Add(1)
		if r.Header.Get("X-Worker") == "" {
			http.Error(w, "no worker", http.StatusBadRequest)
			return
		}
		if n%10 == 0 {
			http.Error(w, "every tenth fails", http.StatusInternalServerError)
			return
		}
		_, _ = w.Write([]byte(`{"result":{}}`))
	}))
	defer srv.Close()
	var measuring atomic.Bool
	res, err := Run(context.Background(), Config{
		Client: srv.Client(), Concurrency: 4, Requests: 200, Warmup: 20, MaxDuration: time.Minute,
		Measuring: func() { measuring.Store(true) },
		NewRequest: func(ctx context.Context, w int) (*http.Request, error) {
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL, nil)
			if err == nil {
				req.Header.Set("X-Worker", string(rune('a'+w)))
			}
			return req, err
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := hits.Load(); got != 220 {
		t.Errorf("server saw %d requests, want 220 (20 warm-up + 200)", got)
	}
	if !measuring.Load() {
		t.Error("Measuring was not called")
	}
	if res.Requests != 200 || len(res.Latencies) != 200 {
		t.Errorf("measured %d requests (%d latencies), want 200", res.Requests, len(res.Latencies))
	}
	if res.Errors != 20 || res.FirstError == nil {
		t.Errorf("%d errors (first %v), want 20", res.Errors, res.FirstError)
	}
	if res.BodyBytes != len(`{"result":{}}`) || res.TimedOut || res.Throughput() <= 0 {
		t.Errorf("body %d, timed out %v, throughput %f", res.BodyBytes, res.TimedOut, res.Throughput())
	}
	if res.Percentile(50) > res.Percentile(99) || res.Percentile(100) != res.Latencies[len(res.Latencies)-1] {
		t.Error("percentiles out of order")
	}
}

// A run stops at its time bound and says so.
func TestRunTimeBound(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(20 * time.Millisecond)
	}))
	defer srv.Close()
	start := time.Now()
	res, err := Run(context.Background(), Config{
		Client: srv.Client(), Concurrency: 2, Requests: 1_000_000, MaxDuration: 200 * time.Millisecond,
		NewRequest: func(ctx context.Context, _ int) (*http.Request, error) {
			return http.NewRequestWithContext(ctx, http.MethodGet, srv.URL, nil)
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if !res.TimedOut || res.Requests == 0 || res.Requests > 100 {
		t.Errorf("timed out %v after %d requests", res.TimedOut, res.Requests)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("the run took %s", d)
	}
}

func TestRunRefusesBadConfig(t *testing.T) {
	if _, err := Run(context.Background(), Config{}); err == nil {
		t.Error("an empty config was accepted")
	}
	_, err := Run(context.Background(), Config{Client: http.DefaultClient, Concurrency: 1, Requests: 1, MaxDuration: time.Second,
		NewRequest: func(context.Context, int) (*http.Request, error) { return nil, errors.New("no") }})
	if err != nil {
		t.Errorf("a failing request builder is a failed request, not a run error: %v", err)
	}
}

// Requests ask for gzip as a default Go client does; Check and BodyBytes see the decoded body, and
// Compressed counts the compressed answers. A gzip answer whose CRC-32 does not match is an error.
func TestRunDecodesGzip(t *testing.T) {
	const answer = `{"jsonrpc":"2.0","id":1,"result":{"tools":[]}}`
	var zipped bytes.Buffer
	zw := gzip.NewWriter(&zipped)
	_, _ = zw.Write([]byte(answer))
	_ = zw.Close()
	corrupt := bytes.Clone(zipped.Bytes())
	corrupt[len(corrupt)-8] ^= 1 // the CRC-32
	var hits, asked atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := hits.Add(1)
		if r.Header.Get("Accept-Encoding") != "gzip" {
			_, _ = w.Write([]byte(answer))
			return
		}
		asked.Add(1)
		w.Header().Set("Content-Encoding", "gzip")
		if n == 5 {
			_, _ = w.Write(corrupt)
			return
		}
		_, _ = w.Write(zipped.Bytes())
	}))
	defer srv.Close()
	res, err := Run(context.Background(), Config{
		Client: srv.Client(), Concurrency: 2, Requests: 10, MaxDuration: time.Minute,
		NewRequest: func(ctx context.Context, _ int) (*http.Request, error) {
			return http.NewRequestWithContext(ctx, http.MethodPost, srv.URL, nil)
		},
		Check: func(status int, body []byte) error {
			if status != http.StatusOK || string(body) != answer {
				return fmt.Errorf("HTTP %d: %q", status, body)
			}
			return nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if asked.Load() != 10 {
		t.Errorf("%d of 10 requests asked for gzip", asked.Load())
	}
	if res.Requests != 10 || res.Errors != 1 || res.FirstError == nil || res.Compressed != 9 || res.BodyBytes != len(answer) {
		t.Errorf("requests %d, errors %d (%v), compressed %d, body %d bytes; want 10, 1, 9, %d", res.Requests, res.Errors, res.FirstError, res.Compressed, res.BodyBytes, len(answer))
	}
}
