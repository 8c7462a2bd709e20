package health

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

func TestHealthz(t *testing.T) {
	rec := httptest.NewRecorder()
	New(Options{}).Healthz().ServeHTTP(rec, httptest.NewRequest("GET", "/healthz", nil))
	if rec.Code != 200 || rec.Body.String() != "{\"status\":\"alive\"}\n" {
		t.Fatalf("%d %q", rec.Code, rec.Body.String())
	}
}

func TestReadyz(t *testing.T) {
	okCheck := CheckFunc{"store", func(context.Context) error { return nil }}
	bad := CheckFunc{"kubernetes", func(context.Context) error { return errors.New("connection refused") }}
	slow := CheckFunc{"slow", func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() }}
	tests := []struct {
		name   string
		checks []Checker
		code   int
		failed string
	}{
		{"no checks", nil, 200, ""},
		{"all pass", []Checker{okCheck}, 200, ""},
		{"one fails", []Checker{okCheck, bad}, 503, "kubernetes"},
		{"timeout", []Checker{okCheck, slow}, 503, "slow"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			mux := http.NewServeMux()
			New(Options{Checks: tt.checks, Timeout: 50 * time.Millisecond}).Register(mux)
			mux.ServeHTTP(rec, httptest.NewRequest("GET", "/readyz", nil))
			if rec.Code != tt.code {
				t.Fatalf("code %d, want %d", rec.Code, tt.code)
			}
			var body struct {
				Status string            `json:"status"`
				Checks map[string]string `json:"checks"`
			}
			if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
				t.Fatal(err)
			}
			if tt.failed != "" && (body.Checks[tt.failed] == "ok" || body.Status != "not ready") {
				t.Fatalf("body %+v", body)
			}
			if tt.code == 200 && body.Status != "ready" {
				t.Fatalf("body %+v", body)
			}
		})
	}
}
