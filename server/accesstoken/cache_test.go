package accesstoken

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cnpg-mcp/cnpg-mcp/server/bearer"
)

// clock is a settable Options.Now.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

type grantSet struct {
	mu   sync.Mutex
	on   map[string]bool
	down bool
}

func (g *grantSet) GrantActive(_ context.Context, id string) (bool, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.down {
		return false, errors.New("store down")
	}
	return g.on[id], nil
}

func (g *grantSet) set(id string, on bool) { g.mu.Lock(); g.on[id] = on; g.mu.Unlock() }

func cachedTokens(t testing.TB, audience string, g GrantChecker, clk *clock, size int, keys ...Key) *Tokens {
	t.Helper()
	tk, err := New(Options{Issuer: "https://mcp.example", Audience: audience, Keys: keys, Grants: g, Now: clk.Now, CacheSize: size})
	if err != nil {
		t.Fatal(err)
	}
	return tk
}

const audA = "https://mcp.example/mcp"

func refused(t *testing.T, tk *Tokens, tok, why string) {
	t.Helper()
	_, err := tk.Verify(context.Background(), tok)
	var e *Error
	if !errors.As(err, &e) || !strings.Contains(e.Reason, why) {
		t.Fatalf("want refusal %q, got %v", why, err)
	}
}

// A token verified once is answered from the cache afterwards, with the same claims; the grant is
// still looked up every time.
func TestCacheHit(t *testing.T) {
	clk := &clock{t: now}
	g := &grantSet{on: map[string]bool{"g1": true}}
	tk := cachedTokens(t, audA, g, clk, 0, key1)
	s, issued, _ := tk.Issue(claimsFor("g1"))
	for i := range 3 {
		got, err := tk.Verify(context.Background(), s)
		if err != nil || got != issued {
			t.Fatalf("verify %d: %+v, %v; issued %+v", i, got, err, issued)
		}
	}
	if h := tk.cache.hits.Load(); h != 2 || tk.cache.len() != 1 {
		t.Fatalf("%d cache hits, %d entries; want 2, 1", h, tk.cache.len())
	}
	id, err := tk.VerifyAccessToken(context.Background(), s)
	if err != nil || strings.Join(id.Scopes, " ") != "mcp:read mcp:write" || id.Subject != "auth0|u1" {
		t.Fatalf("identity %+v, %v", id, err)
	}
}

// From the attacker's side: what a cached token proved does not outlive the grant, the clock, the
// key or its own bytes, and does not carry over to another resource.
func TestCacheNegative(t *testing.T) {
	ctx := context.Background()
	t.Run("revoked grant: 401 through the bearer check", func(t *testing.T) {
		clk := &clock{t: now}
		g := &grantSet{on: map[string]bool{"g1": true}}
		tk := cachedTokens(t, audA, g, clk, 0, key1)
		s, _, _ := tk.Issue(claimsFor("g1"))
		mw, err := bearer.New(bearer.Options{Verifier: tk, ResourceMetadataURL: "https://mcp.example/.well-known/oauth-protected-resource/mcp"})
		if err != nil {
			t.Fatal(err)
		}
		h := mw.Wrap(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
		call := func() int {
			r := httptest.NewRequest(http.MethodPost, "/mcp", strings.NewReader(`{}`))
			r.Header.Set("Authorization", "Bearer "+s)
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			return w.Code
		}
		if c := call(); c != http.StatusOK {
			t.Fatalf("before revocation: %d", c)
		}
		if c := call(); c != http.StatusOK || tk.cache.hits.Load() == 0 {
			t.Fatalf("cached: %d, %d hits", c, tk.cache.hits.Load())
		}
		g.set("g1", false)
		if c := call(); c != http.StatusUnauthorized {
			t.Fatalf("revoked grant, cached token: %d, want 401", c)
		}
		g.set("g1", true)
		g.mu.Lock()
		g.down = true
		g.mu.Unlock()
		if c := call(); c != http.StatusServiceUnavailable {
			t.Fatalf("grant store down, cached token: %d, want 503", c)
		}
	})
	t.Run("expired", func(t *testing.T) {
		clk := &clock{t: now}
		tk := cachedTokens(t, audA, &grantSet{on: map[string]bool{"g1": true}}, clk, 0, key1)
		c := claimsFor("g1")
		c.ExpiresAt = now.Add(time.Minute)
		s, _, _ := tk.Issue(c)
		if _, err := tk.Verify(ctx, s); err != nil {
			t.Fatal(err)
		}
		clk.Set(now.Add(time.Minute - time.Second))
		if _, err := tk.Verify(ctx, s); err != nil || tk.cache.hits.Load() != 1 {
			t.Fatalf("a second before exp: %v (%d hits)", err, tk.cache.hits.Load())
		}
		clk.Set(now.Add(time.Minute))
		refused(t, tk, s, "expired")
		if tk.cache.len() != 0 {
			t.Fatal("expired entry kept")
		}
		refused(t, tk, s, "expired") // and again, now verified in full
	})
	t.Run("signing key retired meanwhile", func(t *testing.T) {
		clk := &clock{t: now}
		grace := key1
		grace.NotAfter = now.Add(time.Minute)
		tk := cachedTokens(t, audA, &grantSet{on: map[string]bool{"g1": true}}, clk, 0, key2, grace)
		old := cachedTokens(t, audA, &grantSet{}, clk, 0, key1)
		s, _, _ := old.Issue(claimsFor("g1"))
		if _, err := tk.Verify(ctx, s); err != nil {
			t.Fatal(err)
		}
		clk.Set(now.Add(2 * time.Minute))
		refused(t, tk, s, "signing key retired")
	})
	t.Run("one byte different", func(t *testing.T) {
		clk := &clock{t: now}
		tk := cachedTokens(t, audA, &grantSet{on: map[string]bool{"g1": true}}, clk, 0, key1)
		s, _, _ := tk.Issue(claimsFor("g1"))
		if _, err := tk.Verify(ctx, s); err != nil {
			t.Fatal(err)
		}
		dot1, dot2 := strings.IndexByte(s, '.'), strings.LastIndexByte(s, '.')
		for _, i := range []int{0, dot1 - 1, dot1 + 1, (dot1 + dot2) / 2, dot2 - 1, dot2 + 1, (dot2 + len(s)) / 2, len(s) - 2} {
			b := []byte(s)
			if b[i] == 'A' {
				b[i] = 'B'
			} else {
				b[i] = 'A'
			}
			hits := tk.cache.hits.Load()
			if _, err := tk.Verify(ctx, string(b)); err == nil {
				t.Errorf("byte %d changed: accepted", i)
			}
			if tk.cache.hits.Load() != hits {
				t.Errorf("byte %d changed: served from the cache", i)
			}
		}
		for _, tok := range []string{s + "A", s[:len(s)-1], "x" + s, s + "."} {
			hits := tk.cache.hits.Load()
			if _, err := tk.Verify(ctx, tok); err == nil || tk.cache.hits.Load() != hits {
				t.Errorf("%d-byte variant: err %v, hits %d → %d", len(tok)-len(s), err, hits, tk.cache.hits.Load())
			}
		}
		if tk.cache.len() != 1 {
			t.Fatalf("%d entries: refused tokens were cached", tk.cache.len())
		}
	})
	t.Run("verified for resource A, refused on resource B", func(t *testing.T) {
		clk := &clock{t: now}
		g := &grantSet{on: map[string]bool{"g1": true}}
		a := cachedTokens(t, audA, g, clk, 0, key1)
		b := cachedTokens(t, "https://other.example/mcp", g, clk, 0, key1)
		s, _, _ := a.Issue(claimsFor("g1"))
		for range 2 {
			if _, err := a.Verify(ctx, s); err != nil {
				t.Fatal(err)
			}
		}
		refused(t, b, s, "wrong audience")
		refused(t, b, s, "wrong audience")
		if b.cache.len() != 0 {
			t.Fatal("resource B cached a token for A")
		}
	})
}

// Many distinct valid tokens (from many clients) never grow the cache beyond its bound, and every
// one of them still verifies; concurrent use is safe (go test -race).
func TestCacheBound(t *testing.T) {
	clk := &clock{t: now}
	g := &grantSet{on: map[string]bool{"g1": true}}
	tk := cachedTokens(t, audA, g, clk, 64, key1)
	toks := make([]string, 1000)
	for i := range toks {
		toks[i], _, _ = tk.Issue(claimsFor("g1"))
	}
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < len(toks); i += 4 {
				for range 2 {
					if _, err := tk.Verify(context.Background(), toks[i]); err != nil {
						errs <- err
						return
					}
				}
				if n := tk.cache.len(); n > 64 {
					errs <- errors.New("cache over its bound")
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if n := tk.cache.len(); n == 0 || n > 64 {
		t.Fatalf("%d entries, bound 64", n)
	}
	// Entries that expired go first when the cache is full.
	short := claimsFor("g1")
	short.ExpiresAt = now.Add(time.Second)
	tk2 := cachedTokens(t, audA, g, clk, 8, key1)
	for range 8 {
		s, _, _ := tk2.Issue(short)
		_, _ = tk2.Verify(context.Background(), s)
	}
	clk.Set(now.Add(time.Hour - time.Minute))
	long, _, _ := tk2.Issue(claimsFor("g1"))
	if _, err := tk2.Verify(context.Background(), long); err != nil || tk2.cache.len() != 1 {
		t.Fatalf("after expiry: %v, %d entries (want only the new one)", err, tk2.cache.len())
	}
}

// CacheSize < 0 turns the cache off.
func TestCacheOff(t *testing.T) {
	clk := &clock{t: now}
	tk := cachedTokens(t, audA, &grantSet{on: map[string]bool{"g1": true}}, clk, -1, key1)
	s, _, _ := tk.Issue(claimsFor("g1"))
	for range 2 {
		if _, err := tk.Verify(context.Background(), s); err != nil {
			t.Fatal(err)
		}
	}
	if tk.cache != nil {
		t.Fatal("cache on")
	}
}
