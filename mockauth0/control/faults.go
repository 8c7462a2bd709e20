package control

import (
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"
)

// Fault is injected into the responses of one endpoint.
type Fault struct {
	// Path is the request path the fault applies to, e.g. "/oauth/token".
	Path string `json:"path"`
	// Latency delays the response (before any other effect).
	Latency time.Duration `json:"latency,omitempty"`
	// Status, when non-zero, replaces the response with this status and an Auth0-shaped error body.
	Status int `json:"status,omitempty"`
	// Error and Description fill that body (defaults: "server_error" / "injected fault").
	Error       string `json:"error,omitempty"`
	Description string `json:"error_description,omitempty"`
	// Drop closes the connection without a response.
	Drop bool `json:"drop,omitempty"`
	// Count limits how many requests are affected (0 = until cleared).
	Count int `json:"count,omitempty"`
}

// faultJSON is the wire form: latency in milliseconds.
type faultJSON struct {
	Path        string `json:"path"`
	LatencyMS   int64  `json:"latency_ms,omitempty"`
	Status      int    `json:"status,omitempty"`
	Error       string `json:"error,omitempty"`
	Description string `json:"error_description,omitempty"`
	Drop        bool   `json:"drop,omitempty"`
	Count       int    `json:"count,omitempty"`
}

// MarshalJSON writes latency as latency_ms.
func (f Fault) MarshalJSON() ([]byte, error) {
	return json.Marshal(faultJSON{f.Path, f.Latency.Milliseconds(), f.Status, f.Error, f.Description, f.Drop, f.Count})
}

// UnmarshalJSON reads latency_ms.
func (f *Fault) UnmarshalJSON(b []byte) error {
	var j faultJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	*f = Fault{j.Path, time.Duration(j.LatencyMS) * time.Millisecond, j.Status, j.Error, j.Description, j.Drop, j.Count}
	return nil
}

// Validate checks a fault definition.
func (f Fault) Validate() error {
	switch {
	case !strings.HasPrefix(f.Path, "/"):
		return fmt.Errorf("fault path must start with / (got %q)", f.Path)
	case strings.HasPrefix(f.Path, AdminPrefix):
		return fmt.Errorf("faults cannot be set on the admin API")
	case f.Status != 0 && (f.Status < 100 || f.Status > 599):
		return fmt.Errorf("fault status must be an HTTP status (got %d)", f.Status)
	case f.Latency < 0 || f.Latency > 5*time.Minute:
		return fmt.Errorf("fault latency must be between 0 and 5 minutes")
	case f.Count < 0:
		return fmt.Errorf("fault count must be 0 (unlimited) or more")
	case f.Status == 0 && !f.Drop && f.Latency == 0:
		return fmt.Errorf("a fault needs a status, drop or latency")
	}
	return nil
}

// Faults is the set of active faults, one per path.
type Faults struct {
	mu     sync.Mutex
	faults map[string]*Fault
}

// NewFaults returns an empty set.
func NewFaults() *Faults { return &Faults{faults: map[string]*Fault{}} }

// Set installs (or replaces) the fault for f.Path.
func (fs *Faults) Set(f Fault) error {
	if err := f.Validate(); err != nil {
		return err
	}
	fs.mu.Lock()
	defer fs.mu.Unlock()
	fs.faults[f.Path] = &f
	return nil
}

// Clear removes every fault.
func (fs *Faults) Clear() {
	fs.mu.Lock()
	fs.faults = map[string]*Fault{}
	fs.mu.Unlock()
}

// List returns the active faults sorted by path.
func (fs *Faults) List() []Fault {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	out := []Fault{}
	for _, f := range fs.faults {
		out = append(out, *f)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out
}

// take returns the fault for a path and consumes one use of it.
func (fs *Faults) take(path string) (Fault, bool) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	f, ok := fs.faults[path]
	if !ok {
		return Fault{}, false
	}
	if f.Count > 0 {
		f.Count--
		if f.Count == 0 {
			delete(fs.faults, path)
		}
	}
	return *f, true
}

// Middleware applies the faults to matching requests.
func (fs *Faults) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f, ok := fs.take(r.URL.Path)
		if !ok {
			next.ServeHTTP(w, r)
			return
		}
		if f.Latency > 0 {
			t := time.NewTimer(f.Latency)
			select {
			case <-t.C:
			case <-r.Context().Done():
				t.Stop()
				return
			}
		}
		if f.Drop {
			conn, _, err := http.NewResponseController(w).Hijack()
			if err == nil {
				_ = conn.Close()
				return
			}
			panic(http.ErrAbortHandler) // HTTP/2 or no hijacking: abort the stream
		}
		if f.Status == 0 {
			next.ServeHTTP(w, r)
			return
		}
		code, desc := f.Error, f.Description
		if code == "" {
			code = "server_error"
		}
		if desc == "" {
			desc = "injected fault"
		}
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(f.Status)
		_ = json.NewEncoder(w).Encode(map[string]string{"error": code, "error_description": desc})
	})
}
