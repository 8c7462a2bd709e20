// Package health serves /healthz (the process is alive) and /readyz (every readiness checker
// passes, e.g. the Kubernetes API is reachable and the store is open).
package health

import (
	"context"
	"encoding/json"
	"net/http"
	"sync"
	"time"
)

// Checker is one readiness condition.
type Checker interface {
	Name() string
	Check(ctx context.Context) error
}

// CheckFunc adapts a function to Checker.
type CheckFunc struct {
	CheckName string
	Fn        func(ctx context.Context) error
}

// Name returns the check's name.
func (c CheckFunc) Name() string { return c.CheckName }

// Check runs the function.
func (c CheckFunc) Check(ctx context.Context) error { return c.Fn(ctx) }

// Options configures the handlers.
type Options struct {
	Checks  []Checker
	Timeout time.Duration // per readiness probe; default 3s
}

// Handler serves both endpoints.
type Handler struct{ opts Options }

// New returns the handlers for opts.
func New(opts Options) *Handler {
	if opts.Timeout <= 0 {
		opts.Timeout = 3 * time.Second
	}
	return &Handler{opts: opts}
}

// Healthz answers 200 {"status":"alive"} while the process serves HTTP.
func (h *Handler) Healthz() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"status": "alive"})
	})
}

// Readyz runs every checker concurrently: 200 {"status":"ready"} when all pass, else 503 with the
// failing checks and their errors.
func (h *Handler) Readyz() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), h.opts.Timeout)
		defer cancel()
		results := make(map[string]string, len(h.opts.Checks))
		var mu sync.Mutex
		var wg sync.WaitGroup
		ok := true
		for _, c := range h.opts.Checks {
			wg.Add(1)
			go func(c Checker) {
				defer wg.Done()
				res := "ok"
				if err := c.Check(ctx); err != nil {
					res = err.Error()
				}
				mu.Lock()
				defer mu.Unlock()
				results[c.Name()] = res
				if res != "ok" {
					ok = false
				}
			}(c)
		}
		wg.Wait()
		if !ok {
			writeJSON(w, http.StatusServiceUnavailable, map[string]any{"status": "not ready", "checks": results})
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"status": "ready", "checks": results})
	})
}

// Register mounts /healthz and /readyz on mux.
func (h *Handler) Register(mux *http.ServeMux) {
	mux.Handle("GET /healthz", h.Healthz())
	mux.Handle("GET /readyz", h.Readyz())
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
