package kube

import (
	"context"
	"encoding/pem"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"

	"github.com/cnpg-mcp/cnpg-mcp/server/identity"
)

// fakeAPI is a TLS server that answers GET /api/v1/namespaces/<name> and records, per request, the
// impersonation headers, and how many TCP connections were opened.
type fakeAPI struct {
	srv   *httptest.Server
	mu    sync.Mutex
	seen  []string // "user|group,group"
	conns int
}

func newFakeAPI(t *testing.T) *fakeAPI {
	f := &fakeAPI{}
	f.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		f.seen = append(f.seen, r.Header.Get("Impersonate-User")+"|"+strings.Join(r.Header.Values("Impersonate-Group"), ","))
		f.mu.Unlock()
		name := strings.TrimPrefix(r.URL.Path, "/api/v1/namespaces/")
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"kind":"Namespace","apiVersion":"v1","metadata":{"name":"` + name + `"}}`))
	}))
	f.srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			f.mu.Lock()
			f.conns++
			f.mu.Unlock()
		}
	}
	f.srv.StartTLS()
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeAPI) config() *rest.Config {
	ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: f.srv.Certificate().Raw})
	return &rest.Config{Host: f.srv.URL, BearerToken: "server-sa-token", TLSClientConfig: rest.TLSClientConfig{CAData: ca}}
}

func (f *fakeAPI) last() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.seen[len(f.seen)-1]
}

func asUser(name string, groups ...string) context.Context {
	return identity.NewContext(context.Background(), identity.Identity{Subject: "s", Kube: &identity.KubeUser{Name: name, Groups: groups}})
}

func get(t *testing.T, p *Provider, ctx context.Context) error {
	t.Helper()
	c, err := p.For(ctx)
	if err != nil {
		return err
	}
	_, err = c.Core.CoreV1().Namespaces().Get(ctx, "team-a", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return nil
}

func TestProviderServiceAccount(t *testing.T) {
	f := newFakeAPI(t)
	base, err := New(f.config())
	if err != nil {
		t.Fatal(err)
	}
	p, err := NewProvider(base, ProviderOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// In service-account mode even a request with a user identity runs as the server.
	if err := get(t, p, asUser("alice")); err != nil {
		t.Fatal(err)
	}
	if got := f.last(); got != "|" {
		t.Fatalf("service-account mode sent impersonation headers: %q", got)
	}
}

// Each call carries exactly its user's Impersonate-User and Impersonate-Group; identities are
// cached (a changed group set is another identity), bounded by the LRU size; a call without a user
// is refused, never run as the server; and all identities share the server's one transport: many
// users, one TCP connection.
func TestProviderImpersonates(t *testing.T) {
	f := newFakeAPI(t)
	cfg := f.config()
	// A custom dialer (as exec credential plugins and proxies bring) keeps client-go from sharing
	// TLS transports between configs by itself: only the Provider's own sharing keeps one pool.
	cfg.Dial = (&net.Dialer{}).DialContext
	base, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	p, err := NewProvider(base, ProviderOptions{Impersonate: true, CacheSize: 3})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		ctx  context.Context
		want string
	}{
		{asUser("oidc:alice@example.com", "oidc:team-a-dba"), "oidc:alice@example.com|oidc:team-a-dba"},
		{asUser("oidc:bob@example.com"), "oidc:bob@example.com|"},
		{asUser("oidc:alice@example.com", "oidc:team-a-dba"), "oidc:alice@example.com|oidc:team-a-dba"},
		{asUser("oidc:alice@example.com", "oidc:developers", "oidc:team-a-dba"), "oidc:alice@example.com|oidc:developers,oidc:team-a-dba"},
	} {
		if err := get(t, p, tc.ctx); err != nil {
			t.Fatal(err)
		}
		if got := f.last(); got != tc.want {
			t.Fatalf("headers %q, want %q", got, tc.want)
		}
	}
	if cached, built, evicted := p.Stats(); cached != 3 || built != 3 || evicted != 0 {
		t.Fatalf("cache: %d cached, %d built, %d evicted; want 3, 3, 0 (alice's second call is a hit)", cached, built, evicted)
	}
	for _, u := range []string{"u1", "u2", "u3", "u4"} {
		if err := get(t, p, asUser(u)); err != nil {
			t.Fatal(err)
		}
	}
	if cached, built, evicted := p.Stats(); cached != 3 || built != 7 || evicted != 4 {
		t.Fatalf("bounded cache: %d cached, %d built, %d evicted; want 3, 7, 4", cached, built, evicted)
	}
	f.mu.Lock()
	conns := f.conns
	f.mu.Unlock()
	if conns != 1 {
		t.Fatalf("%d TCP connections for 8 calls as 7 identities: the transport is not shared", conns)
	}

	for _, tc := range []struct {
		name string
		ctx  context.Context
		want string
	}{
		{"no identity", context.Background(), "never falls back"},
		{"identity without a Kubernetes user", identity.NewContext(context.Background(), identity.Identity{Subject: "s"}), "never falls back"},
		{"unmappable claims", identity.NewContext(context.Background(), identity.Identity{Subject: "s", Kube: &identity.KubeUser{Err: errors.New("no email claim")}}), "no email claim"},
	} {
		n := len(f.seen)
		err := get(t, p, tc.ctx)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if len(f.seen) != n {
			t.Fatalf("%s: a request reached the API server", tc.name)
		}
	}
}

func TestProviderRefusesAnImpersonatingKubeconfig(t *testing.T) {
	f := newFakeAPI(t)
	cfg := f.config()
	cfg.Impersonate = rest.ImpersonationConfig{UserName: "admin"}
	base, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := NewProvider(base, ProviderOptions{Impersonate: true}); err == nil || !strings.Contains(err.Error(), "already impersonates") {
		t.Fatalf("got %v", err)
	}
	if _, err := NewProvider(Unconfigured(errors.New("none")), ProviderOptions{Impersonate: true}); err != nil {
		t.Fatalf("an unconfigured server must still start: %v", err)
	}
}
