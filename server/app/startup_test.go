package app

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cnpg-mcp/cnpg-mcp/server/config"
)

// An upstream unreachable at start-up is no crash loop: the server starts, /readyz answers 503 and
// names the upstream and what is wrong, and an authorization needing the upstream answers 503 (the
// refresh of an existing grant would too, keeping the token). The store is closed again on Close
// (a second New on the same bolt file would otherwise block on the file lock).
func TestNewWithUnreachableUpstream(t *testing.T) {
	s := newStack(t, nil)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + ln.Addr().String() + "/"
	ln.Close() // nothing listens there any more
	for i := 0; i < 2; i++ {
		cfg := s.cfg
		cfg.Issuer = dead
		cfg.PublicURL = "http://127.0.0.1:1"
		cfg.Defaults()
		if err := cfg.Validate(); err != nil {
			t.Fatal(err)
		}
		logs := &syncBuffer{}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		a, err := New(context.Background(), &cfg, Options{Logger: slog.New(slog.NewTextHandler(logs, nil)), Listener: ln, AllowMissingKubernetes: true})
		if err != nil {
			t.Fatalf("New with an unreachable upstream: %v (want a server that is not ready)", err)
		}
		if !strings.Contains(logs.String(), "not reachable") {
			t.Errorf("no warning logged: %s", logs.String())
		}
		rec := httptest.NewRecorder()
		a.Handler.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
		var body struct {
			Checks map[string]string `json:"checks"`
		}
		_ = json.Unmarshal(rec.Body.Bytes(), &body)
		if rec.Code != http.StatusServiceUnavailable || !strings.Contains(body.Checks["upstream"], strings.TrimSuffix(dead, "/")) {
			t.Errorf("readyz: %d %s; want 503 naming the upstream", rec.Code, rec.Body.String())
		}
		if body.Checks["store"] != "ok" {
			t.Errorf("readyz store check: %q", body.Checks["store"])
		}
		ln.Close()
		if err := a.closeStore(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
}

// A wrong upstream client secret is found at start-up (the mock answers like Auth0: 401
// access_denied "Unauthorized"): the server refuses to start with an error naming the setting to
// fix (key, environment variable, flag), and closes what it opened. The right secret passes.
func TestStartupCredentialCheck(t *testing.T) {
	s := newStack(t, nil)
	wrong := filepath.Join(s.dir, "wrong-secret")
	if err := os.WriteFile(wrong, []byte("not-the-secret"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, method := range []string{"client_secret_basic", "client_secret_post"} {
		cfg := s.cfg
		cfg.ClientSecretFile = wrong
		cfg.ClientAuthMethod = method
		cfg.PublicURL = "http://127.0.0.1:1"
		cfg.Defaults()
		if err := cfg.Validate(); err != nil {
			t.Fatal(err)
		}
		a, err := New(context.Background(), &cfg, Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), AllowMissingKubernetes: true})
		if err == nil || a != nil {
			t.Fatalf("%s: New with a wrong client secret started", method)
		}
		for _, want := range []string{"client_secret_file", "CNPG_MCP_CLIENT_SECRET_FILE", "--client-secret-file", "401", "client_auth_method"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("%s: the error does not name %q: %v", method, want, err)
			}
		}
		if strings.Contains(err.Error(), "not-the-secret") {
			t.Fatal("the error shows the secret")
		}
	}
	// The right secret: the server starts (and the file lock of the refused starts was released).
	in := s.start(func(c *config.Config) {})
	rec := httptest.NewRecorder()
	in.Handler.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
	if !strings.Contains(rec.Body.String(), `"upstream":"ok"`) || !strings.Contains(s.logs.String(), "upstream client credentials accepted") {
		t.Fatalf("readyz with the right secret: %s", rec.Body.String())
	}
}
