// Package metrics exposes Prometheus metrics for the HTTP routes (MCP endpoint, OAuth endpoints,
// health) and for MCP tool calls. Labels carry only route names, methods, status codes, tool names
// and result classes: never tokens, subjects or arguments.
package metrics

import (
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics holds the collectors. Create one per process with New.
type Metrics struct {
	requests     *prometheus.CounterVec
	duration     *prometheus.HistogramVec
	inflight     *prometheus.GaugeVec
	toolCalls    *prometheus.CounterVec
	toolDuration *prometheus.HistogramVec
}

// New registers the collectors with reg (use prometheus.NewRegistry() in tests).
func New(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cnpg_mcp_http_requests_total",
			Help: "HTTP requests by route, method and status code.",
		}, []string{"route", "method", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "cnpg_mcp_http_request_duration_seconds",
			Help:    "HTTP request latency by route and method.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"route", "method"}),
		inflight: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "cnpg_mcp_http_requests_in_flight",
			Help: "HTTP requests being served, by route.",
		}, []string{"route"}),
		toolCalls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cnpg_mcp_tool_calls_total",
			Help: "MCP tool calls by tool and result (ok, error, dry_run, rejected, input_required).",
		}, []string{"tool", "result"}),
		toolDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "cnpg_mcp_tool_call_duration_seconds",
			Help:    "MCP tool call latency by tool.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"tool"}),
	}
	reg.MustRegister(m.requests, m.duration, m.inflight, m.toolCalls, m.toolDuration)
	return m
}

// Middleware counts and times the requests of one route. route must be a fixed name
// ("mcp", "token", "authorize", ...), never a raw path.
func (m *Metrics) Middleware(route string, next http.Handler) http.Handler {
	inflight := m.inflight.WithLabelValues(route)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		inflight.Inc()
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		defer func() {
			inflight.Dec()
			method := normalizeMethod(r.Method)
			m.requests.WithLabelValues(route, method, strconv.Itoa(rec.status)).Inc()
			m.duration.WithLabelValues(route, method).Observe(time.Since(start).Seconds())
		}()
		next.ServeHTTP(rec, r)
	})
}

// ObserveToolCall records one tool call. The caller bounds the tool label to registered tools.
func (m *Metrics) ObserveToolCall(tool, result string, d time.Duration) {
	m.toolCalls.WithLabelValues(tool, result).Inc()
	m.toolDuration.WithLabelValues(tool).Observe(d.Seconds())
}

// Handler serves the metrics of g in the Prometheus exposition format.
func Handler(g prometheus.Gatherer) http.Handler {
	return promhttp.HandlerFor(g, promhttp.HandlerOpts{})
}

func normalizeMethod(m string) string {
	switch m {
	case http.MethodGet, http.MethodPost, http.MethodDelete, http.MethodOptions, http.MethodHead, http.MethodPut, http.MethodPatch:
		return m
	}
	return "other"
}

type statusRecorder struct {
	http.ResponseWriter
	status      int
	wroteHeader bool
}

func (s *statusRecorder) WriteHeader(code int) {
	if !s.wroteHeader {
		s.status, s.wroteHeader = code, true
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	s.wroteHeader = true
	return s.ResponseWriter.Write(b)
}

// Flush keeps SSE streaming working through the middleware.
func (s *statusRecorder) Flush() {
	if f, ok := s.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }
