package metrics

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestMiddlewareAndToolCalls(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := New(reg)
	h := m.Middleware("token", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("fail") != "" {
			http.Error(w, "no", http.StatusBadRequest)
			return
		}
		_, _ = io.WriteString(w, "ok")
	}))
	for _, q := range []string{"", "", "?fail=1"} {
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodPost, "/oauth/token"+q, nil))
	}
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("BREW", "/oauth/token", nil))
	if got := testutil.ToFloat64(m.requests.WithLabelValues("token", "POST", "200")); got != 2 {
		t.Fatalf("200s = %v", got)
	}
	if got := testutil.ToFloat64(m.requests.WithLabelValues("token", "POST", "400")); got != 1 {
		t.Fatalf("400s = %v", got)
	}
	if got := testutil.ToFloat64(m.requests.WithLabelValues("token", "other", "200")); got != 1 {
		t.Fatalf("unknown methods must be folded into 'other': %v", got)
	}
	m.ObserveToolCall("list_postgres_clusters", "ok", 3*time.Millisecond)
	srv := httptest.NewServer(Handler(reg))
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		`cnpg_mcp_http_requests_total{code="200",method="POST",route="token"} 2`,
		`cnpg_mcp_tool_calls_total{result="ok",tool="list_postgres_clusters"} 1`,
		`cnpg_mcp_tool_call_duration_seconds_count{tool="list_postgres_clusters"} 1`,
		`cnpg_mcp_http_request_duration_seconds_count{method="POST",route="token"} 3`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("exposition lacks %q", want)
		}
	}
}
