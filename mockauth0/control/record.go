// Package control holds the mock's test controls: a log of the requests it received, fault injection
// per endpoint (latency, HTTP status, dropped connection) and the admin HTTP API under /mock-admin/v1/
// that exposes them together with the clock, key rotation and grant revocation.
package control

import (
	"bytes"
	"encoding/json"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// RecordedRequest is one request the mock received. The log is for tests: it keeps form values,
// including secrets and tokens, in memory only and never writes them to the process log.
type RecordedRequest struct {
	Seq    int64       `json:"seq"`
	Time   time.Time   `json:"time"`
	Method string      `json:"method"`
	Path   string      `json:"path"`
	Query  url.Values  `json:"query,omitempty"`
	Form   url.Values  `json:"form,omitempty"`
	Header http.Header `json:"header,omitempty"`
	Status int         `json:"status"`
}

// Recorder keeps the last Max requests.
type Recorder struct {
	mu   sync.Mutex
	max  int
	seq  int64
	reqs []RecordedRequest
}

// NewRecorder keeps up to max requests (default 10,000).
func NewRecorder(max int) *Recorder {
	if max <= 0 {
		max = 10000
	}
	return &Recorder{max: max}
}

// Requests returns the recorded requests with Seq > since whose path equals path ("" = any).
func (r *Recorder) Requests(path string, since int64) []RecordedRequest {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := []RecordedRequest{}
	for _, q := range r.reqs {
		if q.Seq > since && (path == "" || q.Path == path) {
			out = append(out, q)
		}
	}
	return out
}

// Reset forgets every request.
func (r *Recorder) Reset() {
	r.mu.Lock()
	r.reqs = nil
	r.mu.Unlock()
}

func (r *Recorder) add(q RecordedRequest) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.seq++
	q.Seq = r.seq
	r.reqs = append(r.reqs, q)
	if len(r.reqs) > r.max {
		r.reqs = append([]RecordedRequest(nil), r.reqs[len(r.reqs)-r.max:]...)
	}
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (s *statusWriter) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusWriter) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the underlying writer (hijacking for dropped connections).
func (s *statusWriter) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// Middleware records every request except those under skipPrefix. now is the mock clock.
func (r *Recorder) Middleware(skipPrefix string, now func() time.Time, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if strings.HasPrefix(req.URL.Path, skipPrefix) {
			next.ServeHTTP(w, req)
			return
		}
		rec := RecordedRequest{Time: now(), Method: req.Method, Path: req.URL.Path, Query: req.URL.Query(), Header: req.Header.Clone()}
		if req.Body != nil && req.Method != http.MethodGet {
			body, err := io.ReadAll(io.LimitReader(req.Body, 256<<10))
			if err == nil {
				req.Body = io.NopCloser(bytes.NewReader(body))
				rec.Form = parseBody(req.Header.Get("Content-Type"), body)
			}
		}
		sw := &statusWriter{ResponseWriter: w}
		next.ServeHTTP(sw, req)
		rec.Status = sw.status
		r.add(rec)
	})
}

func parseBody(contentType string, body []byte) url.Values {
	ct, _, _ := mime.ParseMediaType(contentType)
	switch ct {
	case "application/x-www-form-urlencoded":
		v, err := url.ParseQuery(string(body))
		if err == nil {
			return v
		}
	case "application/json":
		var m map[string]any
		if json.Unmarshal(body, &m) == nil {
			v := url.Values{}
			for k, x := range m {
				if s, ok := x.(string); ok {
					v.Set(k, s)
				} else if b, err := json.Marshal(x); err == nil {
					v.Set(k, string(b))
				}
			}
			return v
		}
	}
	return nil
}
