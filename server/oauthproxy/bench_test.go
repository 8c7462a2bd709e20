package oauthproxy

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cnpg-mcp/cnpg-mcp/server/store"
)

// seedCodes creates n grants with one unredeemed code each, as the callback would.
func seedCodes(b *testing.B, h *harness, clientID string, n int) []string {
	b.Helper()
	ctx := context.Background()
	codes := make([]string, n)
	now := h.clock.Now()
	errc := make(chan error, 64)
	sem := make(chan struct{}, 64)
	for i := range codes {
		codes[i] = randomToken()
		sem <- struct{}{}
		go func(code string) {
			defer func() { <-sem }()
			g := store.Grant{ID: randomToken(), ClientID: clientID, Subject: "auth0|bench", Scopes: []string{"mcp:read", "mcp:write"}, Resource: h.resource,
				CreatedAt: now, ExpiresAt: now.Add(time.Hour),
				Upstream: store.UpstreamTokens{AccessToken: strings.Repeat("a", 900), RefreshToken: "v1.M" + randomToken(), IDToken: strings.Repeat("i", 900), Expiry: now.Add(24 * time.Hour)}}
			err := h.store.CreateGrant(ctx, g)
			if err == nil {
				err = h.store.PutCode(ctx, code, store.Code{GrantID: g.ID, ClientID: clientID, RedirectURI: "http://127.0.0.1:5000/cb",
					CodeChallenge: s256(testVerifier), Scopes: g.Scopes, Resource: h.resource, ExpiresAt: now.Add(5 * time.Minute)})
			}
			if err != nil {
				select {
				case errc <- err:
				default:
				}
			}
		}(codes[i])
	}
	for i := 0; i < cap(sem); i++ {
		sem <- struct{}{}
	}
	select {
	case err := <-errc:
		b.Fatal(err)
	default:
	}
	return codes
}

// BenchmarkCodeExchange measures the token endpoint's authorization_code grant against the embedded
// file store (bbolt, fsync per batch), in-process (no sockets): read code, check PKCE, redeem (atomic),
// read + update the grant (seal), mint the JWT, store the refresh token. Goal: ≥ 1,000 exchanges/s.
func BenchmarkCodeExchange(b *testing.B) {
	h := newHarness(b)
	id := h.register()
	codes := seedCodes(b, h, id, b.N)
	var next atomic.Int64
	handler := h.proxy.Handler()
	b.SetParallelism(16)
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if st := exchangeIn(handler, id, codes[next.Add(1)-1]); st != 200 {
				b.Errorf("exchange: %d", st)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "exchanges/s")
}

// BenchmarkActiveGrants10k holds 10,000 active grants (each redeemed through the token endpoint, so
// each has its access and refresh token state) in one server and reports the process RSS.
// Goal: < 100 MiB.
func BenchmarkActiveGrants10k(b *testing.B) {
	for i := 0; i < b.N; i++ {
		h := newHarness(b)
		id := h.register()
		codes := seedCodes(b, h, id, 10_000)
		handler := h.proxy.Handler()
		sem := make(chan struct{}, 32)
		for _, code := range codes {
			sem <- struct{}{}
			go func(code string) {
				defer func() { <-sem }()
				if st := exchangeIn(handler, id, code); st != 200 {
					b.Errorf("exchange: %d", st)
				}
			}(code)
		}
		for j := 0; j < cap(sem); j++ {
			sem <- struct{}{}
		}
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		b.ReportMetric(rssMiB(b), "RSS-MiB")
		b.ReportMetric(float64(ms.HeapInuse)/(1<<20), "heap-MiB")
	}
}

func rssMiB(b *testing.B) float64 {
	raw, err := os.ReadFile("/proc/self/status")
	if err != nil {
		b.Skip("no /proc/self/status")
	}
	for _, l := range strings.Split(string(raw), "\n") {
		if strings.HasPrefix(l, "VmRSS:") {
			f := strings.Fields(l)
			kb, _ := strconv.Atoi(f[1])
			return float64(kb) / 1024
		}
	}
	b.Fatal(fmt.Errorf("VmRSS not found"))
	return 0
}

// exchangeIn redeems a code through the handler in-process and returns the status.
func exchangeIn(handler http.Handler, clientID, code string) int {
	body := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "code_verifier": {testVerifier}, "client_id": {clientID}}.Encode()
	req := httptest.NewRequest(http.MethodPost, "/token", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	w := httptest.NewRecorder()
	handler.ServeHTTP(w, req)
	return w.Code
}
