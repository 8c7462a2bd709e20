package cimdhost_test

import (
	"crypto/tls"
	"crypto/x509"
	"io"
	"net/http"
	"os"
	"testing"

	"github.com/cnpg-mcp/cnpg-mcp/conformance/cimdhost"
)

func TestServeAndCount(t *testing.T) {
	h, err := cimdhost.Start(cimdhost.Options{Listen: "127.0.0.1:0", BaseURL: "https://cimd.example/"})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	if h.BaseURL() != "https://cimd.example" {
		t.Fatalf("base %q", h.BaseURL())
	}
	h.Serve("/c.json", http.StatusOK, http.Header{"Content-Type": {"application/json"}, "Cache-Control": {"max-age=0"}}, []byte(`{"a":1}`))
	h.Serve("/moved.json", http.StatusFound, http.Header{"Location": {"/c.json"}}, nil)
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for _, tc := range []struct {
		path   string
		status int
	}{{"/c.json", 200}, {"/c.json", 200}, {"/moved.json", 302}, {"/none.json", 404}} {
		resp, err := client.Get("http://" + h.Addr() + tc.path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.status {
			t.Fatalf("%s: %d %s", tc.path, resp.StatusCode, b)
		}
	}
	if h.Hits("/c.json") != 2 || h.Hits("/moved.json") != 1 || h.Hits("/none.json") != 1 {
		t.Fatalf("hits %d %d %d", h.Hits("/c.json"), h.Hits("/moved.json"), h.Hits("/none.json"))
	}
}

// TestGenerateTLS: the host serves https with a certificate that verifies against the CA written
// to disk (what the target is told to trust), for the host's address.
func TestGenerateTLS(t *testing.T) {
	dir := t.TempDir()
	cfg, caPath, err := cimdhost.GenerateTLS([]string{"127.0.0.1", "localhost"}, dir)
	if err != nil {
		t.Fatal(err)
	}
	h, err := cimdhost.Start(cimdhost.Options{Listen: "127.0.0.1:0", TLS: cfg})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	h.Serve("/c.json", http.StatusOK, nil, []byte(`{}`))
	pemBytes, err := os.ReadFile(caPath)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pemBytes) {
		t.Fatal("the CA file holds no certificate")
	}
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}
	resp, err := client.Get(h.BaseURL() + "/c.json")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	// Without the CA the certificate is not trusted.
	if _, err := http.Get(h.BaseURL() + "/c.json"); err == nil {
		t.Fatal("an untrusted certificate was accepted")
	}
}
