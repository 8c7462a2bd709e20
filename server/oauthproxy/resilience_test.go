package oauthproxy

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cnpg-mcp/cnpg-mcp/server/accesstoken"
	"github.com/cnpg-mcp/cnpg-mcp/server/store"
	"github.com/cnpg-mcp/cnpg-mcp/server/store/bolt"
	"github.com/cnpg-mcp/cnpg-mcp/server/store/postgres"
)

// Tests of the refresh rotation under races and store faults (refresh.go), on both backends.

// withWindow sets lifetimes.refresh_reuse_window (the harness default is 0: strict).
func withWindow(d time.Duration) harnessOpt {
	return func(o *Options) { o.Lifetimes.RefreshReuseWindow = d }
}

// noCommitRetry makes a failing commit answer 503 at once (the settler still runs).
func noCommitRetry(o *Options) { o.Rotation.CommitRetry = time.Nanosecond }

// paths are the two ways a refresh runs: without an upstream call (the upstream access token is
// still fresh), and with one (it expires before our access token would: claim, upstream, commit).
var paths = []struct {
	name     string
	upstream time.Duration // the upstream access token's lifetime
}{{"local", 0}, {"upstream", 10 * time.Minute}}

func (h *harness) wantRetryAfter(r resp) {
	h.t.Helper()
	if r.StatusCode != http.StatusServiceUnavailable || r.Header.Get("Retry-After") == "" {
		h.t.Fatalf("want 503 with Retry-After, got %d (Retry-After %q): %s", r.StatusCode, r.Header.Get("Retry-After"), r.body)
	}
}

// grantOf returns the grant behind a refresh token.
func (h *harness) grantOf(rt string) store.Grant {
	h.t.Helper()
	st, err := h.store.RefreshState(context.Background(), rt)
	if err != nil {
		h.t.Fatal(err)
	}
	g, err := h.store.GetGrant(context.Background(), st.Record.GrantID)
	if err != nil {
		h.t.Fatal(err)
	}
	return g
}

// concurrentRefresh fires n refreshes of rt at once.
func (h *harness) concurrentRefresh(id, rt string, n int) []resp {
	out := make([]resp, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range out {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			out[i] = h.refresh(id, rt, nil)
		}()
	}
	close(start)
	wg.Wait()
	return out
}

// RT-10 with the reuse window (the server's default): concurrent refreshes of one token all get the
// identical answer — one rotation, one upstream call — and the grant lives on. With a strict window
// exactly one wins (the others are reuse: the catalogue's strict reading, and the family ends).
// Both backends, with and without an upstream refresh.
func TestRT10_ConcurrentRefresh(t *testing.T) {
	for _, backend := range backends {
		for _, p := range paths {
			t.Run(backend+"/"+p.name+"/window", func(t *testing.T) {
				h := newHarnessOn(t, backend, withWindow(time.Minute))
				h.up.expiresIn = p.upstream
				id, m := h.flow()
				ups := h.up.refreshCount()
				out := h.concurrentRefresh(id, m["refresh_token"].(string), 5)
				for i, r := range out {
					if r.StatusCode != 200 {
						t.Fatalf("refresh %d: %d %s", i, r.StatusCode, r.body)
					}
					if r.json(t)["access_token"] != out[0].json(t)["access_token"] || r.json(t)["refresh_token"] != out[0].json(t)["refresh_token"] {
						t.Fatalf("refresh %d got another answer: two token families", i)
					}
				}
				if p.upstream != 0 && h.up.refreshCount() != ups+1 {
					t.Fatalf("%d upstream refreshes for one rotation", h.up.refreshCount()-ups)
				}
				if !h.accessOK(out[0].json(t)["access_token"].(string)) {
					t.Fatal("the winner's access token was revoked by the race")
				}
				if r := h.refresh(id, out[0].json(t)["refresh_token"].(string), nil); r.StatusCode != 200 {
					t.Fatalf("the new refresh token after the race: %d %s", r.StatusCode, r.body)
				}
			})
			t.Run(backend+"/"+p.name+"/strict", func(t *testing.T) {
				h := newHarnessOn(t, backend)
				h.up.expiresIn = p.upstream
				id, m := h.flow()
				wins := 0
				for _, r := range h.concurrentRefresh(id, m["refresh_token"].(string), 5) {
					switch r.StatusCode {
					case 200:
						wins++
					case 400:
						wantOAuthError(t, r, 400, "invalid_grant")
					default:
						t.Fatalf("unexpected %d %s", r.StatusCode, r.body)
					}
				}
				if wins != 1 {
					t.Fatalf("%d winners, want 1", wins)
				}
			})
		}
	}
}

// RT-10 rarely showed no winner at all (three concurrent refreshes all answered 400: a loser revoked
// the grant between the winner's steps). With one commit that cannot happen: the race runs many
// times (bounded) on both backends, both paths, strict and windowed.
func TestRT10_RaceManyTimes(t *testing.T) {
	rounds := 12
	if testing.Short() {
		rounds = 4
	}
	for _, backend := range backends {
		for _, p := range paths {
			for _, window := range []time.Duration{0, time.Minute} {
				t.Run(fmt.Sprintf("%s/%s/window=%s", backend, p.name, window), func(t *testing.T) {
					h := newHarnessOn(t, backend, withWindow(window))
					h.up.expiresIn = p.upstream
					for round := 0; round < rounds; round++ {
						id, m := h.flow()
						out := h.concurrentRefresh(id, m["refresh_token"].(string), 3)
						var answers []string
						for _, r := range out {
							if r.StatusCode == 200 {
								answers = append(answers, r.json(t)["refresh_token"].(string))
							} else if r.StatusCode != 400 {
								t.Fatalf("round %d: %d %s", round, r.StatusCode, r.body)
							}
						}
						switch {
						case len(answers) == 0:
							t.Fatalf("round %d: no winner among 3 concurrent refreshes", round)
						case window == 0 && len(answers) != 1:
							t.Fatalf("round %d: %d winners in strict mode", round, len(answers))
						case window > 0 && len(answers) != 3:
							t.Fatalf("round %d: %d of 3 concurrent refreshes answered with the window on", round, len(answers))
						}
						for _, a := range answers {
							if a != answers[0] {
								t.Fatalf("round %d: two different refresh tokens handed out", round)
							}
						}
						if window > 0 {
							if r := h.refresh(id, answers[0], nil); r.StatusCode != 200 {
								t.Fatalf("round %d: the grant died in the race: %d %s", round, r.StatusCode, r.body)
							}
						}
					}
				})
			}
		}
	}
}

// RT-03 and the reuse window: the same client presenting the rotated-out token inside the window,
// while the new token is unused, gets the identical pair; another client, a use after the window,
// or a use after the new token was used is reuse and revokes the grant (access tokens too, and the
// upstream grant).
func TestRT03_ReplayWindow(t *testing.T) {
	for _, backend := range backends {
		t.Run(backend, func(t *testing.T) {
			setup := func(t *testing.T) (*harness, string, string, map[string]any) {
				t.Helper()
				h := newHarnessOn(t, backend, withWindow(time.Minute))
				id, m := h.flow()
				rt1 := m["refresh_token"].(string)
				r := h.refresh(id, rt1, nil)
				if r.StatusCode != 200 {
					t.Fatal(r.body)
				}
				return h, id, rt1, r.json(t)
			}
			revoked := func(h *harness, id string, n map[string]any) {
				t.Helper()
				if h.accessOK(n["access_token"].(string)) {
					t.Fatal("access token of the revoked grant still valid")
				}
				wantOAuthError(t, h.refresh(id, n["refresh_token"].(string), nil), 400, "invalid_grant")
				if len(h.up.revoked) == 0 {
					t.Fatal("upstream grant not revoked on reuse")
				}
			}
			t.Run("same client inside the window", func(t *testing.T) {
				h, id, rt1, n := setup(t)
				h.clock.Advance(59 * time.Second)
				r := h.refresh(id, rt1, nil)
				if r.StatusCode != 200 {
					t.Fatalf("replay: %d %s", r.StatusCode, r.body)
				}
				if r.json(t)["access_token"] != n["access_token"] || r.json(t)["refresh_token"] != n["refresh_token"] || r.json(t)["scope"] != n["scope"] {
					t.Fatalf("replay differs from the rotation's answer")
				}
				if r.Header.Get("Cache-Control") != "no-store" {
					t.Fatal("replay without Cache-Control: no-store")
				}
				if !h.accessOK(n["access_token"].(string)) {
					t.Fatal("a replay revoked the grant")
				}
				if r := h.refresh(id, n["refresh_token"].(string), nil); r.StatusCode != 200 {
					t.Fatalf("the new token after a replay: %s", r.body)
				}
			})
			t.Run("another client", func(t *testing.T) {
				h, id, rt1, n := setup(t)
				other := h.register()
				wantOAuthError(t, h.refresh(other, rt1, nil), 400, "invalid_grant")
				revoked(h, id, n)
			})
			t.Run("after the window", func(t *testing.T) {
				h, id, rt1, n := setup(t)
				h.clock.Advance(time.Minute + time.Second)
				wantOAuthError(t, h.refresh(id, rt1, nil), 400, "invalid_grant")
				revoked(h, id, n)
			})
			t.Run("after the new token was used", func(t *testing.T) {
				h, id, rt1, n := setup(t)
				o := h.refresh(id, n["refresh_token"].(string), nil)
				if o.StatusCode != 200 {
					t.Fatal(o.body)
				}
				wantOAuthError(t, h.refresh(id, rt1, nil), 400, "invalid_grant")
				revoked(h, id, o.json(t))
			})
			t.Run("strict", func(t *testing.T) {
				h := newHarnessOn(t, backend)
				id, m := h.flow()
				n := h.refresh(id, m["refresh_token"].(string), nil).json(t)
				wantOAuthError(t, h.refresh(id, m["refresh_token"].(string), nil), 400, "invalid_grant")
				revoked(h, id, n)
			})
		})
	}
}

// A store fault at every step of a refresh (each KV operation from the request on, then the commit
// failing, then the commit committing with its answer lost) leaves nothing partial: the client gets
// 503 with Retry-After, its retry with the same refresh token succeeds, the upstream never saw a
// rotated refresh token again and the grant holds the upstream's newest tokens. Both backends, both
// paths, strict reuse detection (a replay only where the answer was never delivered).
func TestRotationFaultAtEveryStep(t *testing.T) {
	for _, backend := range backends {
		for _, p := range paths {
			t.Run(backend+"/"+p.name, func(t *testing.T) {
				h := newHarnessOn(t, backend, noCommitRetry)
				h.up.expiresIn = p.upstream
				h.up.rotating = true // a second upstream call with the same token would end the grant
				check := func(label, id string, m map[string]any, ups int) {
					t.Helper()
					r := h.refresh(id, m["refresh_token"].(string), nil)
					if r.StatusCode != 200 {
						t.Fatalf("%s: the retry failed: %d %s", label, r.StatusCode, r.body)
					}
					if p.upstream != 0 {
						if h.up.refreshCount() == ups {
							t.Fatalf("%s: the upstream was never refreshed", label)
						}
						if h.up.reuseCount() != 0 {
							t.Fatalf("%s: a rotated upstream refresh token was presented again (%d times)", label, h.up.reuseCount())
						}
						if g := h.grantOf(r.json(t)["refresh_token"].(string)); g.Upstream.RefreshToken != h.up.lastRT {
							t.Fatalf("%s: the grant lost the upstream's newest refresh token", label)
						}
					}
					if r := h.refresh(id, r.json(t)["refresh_token"].(string), nil); r.StatusCode != 200 {
						t.Fatalf("%s: the next refresh: %d %s", label, r.StatusCode, r.body)
					}
				}
				for n := 1; ; n++ {
					id, m := h.flow()
					ups := h.up.refreshCount()
					h.fkv.FailOp(n)
					r := h.refresh(id, m["refresh_token"].(string), nil)
					ops := h.fkv.Ops()
					h.fkv.Reset()
					if n > ops {
						if r.StatusCode != 200 {
							t.Fatalf("no fault (%d operations): %d %s", ops, r.StatusCode, r.body)
						}
						break
					}
					h.wantRetryAfter(r)
					st, err := h.store.RefreshState(context.Background(), m["refresh_token"].(string))
					if err != nil || !st.UsedAt.IsZero() {
						t.Fatalf("fault at operation %d: the old token is used after a 503 (%v)", n, err)
					}
					check(fmt.Sprintf("fault at operation %d", n), id, m, ups)
				}
				id, m := h.flow()
				ups := h.up.refreshCount()
				h.fkv.FailCommit(func() int {
					if p.upstream != 0 {
						return 2 // the claim, then the rotation
					}
					return 1
				}())
				h.wantRetryAfter(h.refresh(id, m["refresh_token"].(string), nil))
				check("failed commit", id, m, ups)

				id, m = h.flow()
				ups = h.up.refreshCount()
				h.fkv.LoseCommit(func() int {
					if p.upstream != 0 {
						return 2
					}
					return 1
				}())
				h.wantRetryAfter(h.refresh(id, m["refresh_token"].(string), nil))
				check("lost commit", id, m, ups)
			})
		}
	}
}

// Upstream results are never dropped: the store goes down right after the upstream rotated its
// refresh token. The client gets 503; valid access tokens are unavailable (not refused) meanwhile;
// when the store is back the kept result is saved, and the client's retry with its old refresh
// token succeeds without presenting the rotated upstream refresh token again (a rotating upstream
// would end the grant).
func TestRefreshSurvivesStoreOutage(t *testing.T) {
	for _, backend := range backends {
		t.Run(backend, func(t *testing.T) {
			h := newHarnessOn(t, backend, noCommitRetry)
			h.up.expiresIn = 10 * time.Minute
			h.up.rotating = true
			id, m := h.flow()
			h.up.mu.Lock()
			h.up.onRefresh = func() { h.fkv.Down(true) }
			h.up.mu.Unlock()
			rt := m["refresh_token"].(string)
			h.wantRetryAfter(h.refresh(id, rt, nil))
			h.up.mu.Lock()
			h.up.onRefresh = nil
			h.up.mu.Unlock()
			h.wantRetryAfter(h.refresh(id, rt, nil)) // still down
			if _, err := h.tokens.Verify(context.Background(), m["access_token"].(string)); !errors.Is(err, accesstoken.ErrUnavailable) {
				t.Fatalf("access token during the outage: %v, want ErrUnavailable", err)
			}
			h.fkv.Down(false)
			r := h.refresh(id, rt, nil)
			if r.StatusCode != 200 {
				t.Fatalf("after the outage: %d %s", r.StatusCode, r.body)
			}
			if h.up.reuseCount() != 0 {
				t.Fatalf("the rotated upstream refresh token was presented again (%d times)", h.up.reuseCount())
			}
			if g := h.grantOf(r.json(t)["refresh_token"].(string)); g.Upstream.RefreshToken != h.up.lastRT {
				t.Fatal("the upstream's new refresh token was dropped")
			}
			if !strings.Contains(h.logs.String(), "rotation settled after a store fault") {
				t.Fatal("the settle is not logged")
			}
		})
	}
}

// kill -9 between the upstream call and the commit (the in-memory result is lost: the store is
// down, then the process is gone and a new one opens the same store): the claim is only a lease,
// so after it ends the client's retry claims again and calls the upstream with the previous upstream
// refresh token. An upstream whose reuse interval covers the lease (Auth0 "Reuse Interval") answers,
// and the grant lives; without that leeway the upstream refuses and the grant ends (invalid_grant,
// documented in server/README.md). Both backends: bbolt reopens its file, PostgreSQL its database.
func TestRefreshAfterCrashBetweenUpstreamAndCommit(t *testing.T) {
	for _, backend := range backends {
		for _, leeway := range []time.Duration{30 * time.Second, 0} {
			t.Run(fmt.Sprintf("%s/upstream-leeway=%s", backend, leeway), func(t *testing.T) {
				var dsn, path string
				var kv store.KV
				switch backend {
				case "postgres":
					dsn = sharedPG.NewDatabase(t)
					kv = openPG(t, dsn)
				default:
					path = t.TempDir() + "/store.db"
					kv = openBolt(t, path)
				}
				h := newHarnessKV(t, kv, &clock{t: time.Unix(1_800_000_000, 0)}, nil)
				h.up.expiresIn = 10 * time.Minute
				h.up.rotating, h.up.leeway = true, leeway
				id, m := h.flow()
				h.up.mu.Lock()
				h.up.onRefresh = func() { h.fkv.Down(true) }
				h.up.mu.Unlock()
				rt := m["refresh_token"].(string)
				h.wantRetryAfter(h.refresh(id, rt, nil))
				// The process dies: nothing it held in memory survives.
				cancelled, cancel := context.WithCancel(context.Background())
				cancel()
				h.proxy.Close(cancelled)
				h.store.Close()
				h.up.mu.Lock()
				h.up.onRefresh = nil
				h.up.mu.Unlock()
				switch backend {
				case "postgres":
					kv = openPG(t, dsn)
				default:
					kv = openBolt(t, path)
				}
				h2 := newHarnessKV(t, kv, h.clock, h.up)
				h2.clock.Advance(21 * time.Second) // the claim's lease (20 s) ends
				r := h2.refresh(id, rt, nil)
				if leeway == 0 {
					wantOAuthError(t, r, 400, "invalid_grant")
					return
				}
				if r.StatusCode != 200 {
					t.Fatalf("retry after the crash: %d %s", r.StatusCode, r.body)
				}
				if g := h2.grantOf(r.json(t)["refresh_token"].(string)); g.Upstream.RefreshToken != h.up.lastRT {
					t.Fatal("the grant does not hold the upstream's newest refresh token")
				}
			})
		}
	}
}

func openPG(t *testing.T, dsn string) store.KV {
	kv, err := postgres.Open(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	return kv
}

func openBolt(t *testing.T, path string) store.KV {
	kv, err := bolt.Open(path, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	return kv
}

// A store fault is never a verdict: with the store down, every endpoint that needs it answers 503
// with Retry-After (pages for the browser endpoints, JSON for the others), and once it is back the
// same requests work — the callback's state and the consent form were not consumed by the failure.
func TestStoreFaultsAre503(t *testing.T) {
	for _, backend := range backends {
		t.Run(backend, func(t *testing.T) {
			h := newHarnessOn(t, backend)
			id, m := h.flow()
			h.fkv.Down(true)
			reg := h.postJSON("/register", `{"redirect_uris":["http://127.0.0.1:5000/cb"]}`)
			h.wantRetryAfter(reg)
			if reg.json(t)["error"] != "temporarily_unavailable" {
				t.Fatalf("register: %s", reg.body)
			}
			h.wantRetryAfter(h.get(nil, h.issuer+"/authorize?"+authorizeQuery(id, "http://127.0.0.1:5000/cb").Encode()))
			h.wantRetryAfter(h.refresh(id, m["refresh_token"].(string), nil))
			h.wantRetryAfter(h.exchange(id, "some-code", nil))
			h.wantRetryAfter(h.postForm(nil, "/revoke", url.Values{"token": {m["refresh_token"].(string)}, "client_id": {id}}))
			h.wantRetryAfter(h.postForm(nil, "/revoke", url.Values{"token": {m["access_token"].(string)}, "client_id": {id}}))
			h.fkv.Down(false)

			// The browser part: each step fails while the store is down, and works when it is back.
			b := h.browser()
			q := authorizeQuery(id, "http://127.0.0.1:5000/cb")
			r := h.get(b, h.issuer+"/authorize?"+q.Encode())
			consentURL := r.location(t).String()
			h.fkv.Down(true)
			h.wantRetryAfter(h.get(b, consentURL))
			h.fkv.Down(false)
			f, _ := h.renderConsent(b, consentURL)
			h.fkv.Down(true)
			h.wantRetryAfter(h.submitConsent(b, f, "approve"))
			h.fkv.Down(false)
			state := h.approve(b, f)
			h.fkv.Down(true)
			h.wantRetryAfter(h.callback(b, state, nil))
			h.fkv.Down(false)
			cb := h.callback(b, state, nil)
			if cb.StatusCode != http.StatusFound || cb.location(t).Query().Get("code") == "" {
				t.Fatalf("callback after the outage: %d %s", cb.StatusCode, cb.body)
			}
			// The grant and its tokens survived it all.
			if !h.accessOK(m["access_token"].(string)) {
				t.Fatal("the outage cost a grant")
			}
			if r := h.refresh(id, m["refresh_token"].(string), nil); r.StatusCode != 200 {
				t.Fatalf("refresh after the outage: %d %s", r.StatusCode, r.body)
			}
		})
	}
}

// A store fault while exchanging a code (each operation in turn) is 503, leaves the code unredeemed
// and the client's retry gets the tokens; TOK-04 single use is untouched by the retries (the codes
// here are redeemed exactly once).
func TestCodeExchangeFaultAtEveryStep(t *testing.T) {
	for _, backend := range backends {
		t.Run(backend, func(t *testing.T) {
			h := newHarnessOn(t, backend, noCommitRetry)
			id := h.register()
			for n := 1; ; n++ {
				code, _ := h.authorize(id, authorizeQuery(id, "http://127.0.0.1:5000/cb"))
				h.fkv.FailOp(n)
				r := h.exchange(id, code, nil)
				ops := h.fkv.Ops()
				h.fkv.Reset()
				if n > ops {
					if r.StatusCode != 200 {
						t.Fatalf("no fault: %d %s", r.StatusCode, r.body)
					}
					break
				}
				h.wantRetryAfter(r)
				r = h.exchange(id, code, nil)
				if r.StatusCode != 200 {
					t.Fatalf("fault at operation %d: the retry got %d %s", n, r.StatusCode, r.body)
				}
				if !h.accessOK(r.json(t)["access_token"].(string)) {
					t.Fatalf("fault at operation %d: the retry's tokens are dead", n)
				}
				wantOAuthError(t, h.exchange(id, code, nil), 400, "invalid_grant") // still single-use
			}
		})
	}
}

// Oversized bodies get 413 naming the limit, not "not valid JSON" or "cannot be parsed", on every
// endpoint that reads a body.
func TestOversizedBodies413(t *testing.T) {
	h := newHarness(t)
	id := h.register()
	big := strings.Repeat("a", 70<<10)
	for _, c := range []struct {
		path, ctype, body, limit string
	}{
		{"/register", "application/json", `{"redirect_uris":["http://127.0.0.1:5000/cb"],"client_name":"` + big + `"}`, "65536"},
		{"/token", "application/x-www-form-urlencoded", "grant_type=refresh_token&client_id=" + id + "&refresh_token=" + big, "65536"},
		{"/revoke", "application/x-www-form-urlencoded", "client_id=" + id + "&token=" + big, "65536"},
		{"/consent", "application/x-www-form-urlencoded", "txn=x&csrf_token=" + big, "16384"},
	} {
		req, _ := http.NewRequest(http.MethodPost, h.issuer+c.path, strings.NewReader(c.body))
		req.Header.Set("Content-Type", c.ctype)
		r := h.do(nil, req)
		if r.StatusCode != http.StatusRequestEntityTooLarge || !strings.Contains(r.body, c.limit) {
			t.Errorf("%s: %d %s; want 413 naming the limit %s bytes", c.path, r.StatusCode, r.body, c.limit)
		}
	}
}

// An upstream provider that cannot be used (not discovered at start-up, unreachable) makes the
// consent approval 503 before anything is consumed: the same form works once it is back.
func TestConsentUpstreamUnavailable(t *testing.T) {
	h := newHarness(t)
	id := h.register()
	b := h.browser()
	f, _ := h.consentPage(b, authorizeQuery(id, "http://127.0.0.1:5000/cb"))
	h.up.mu.Lock()
	h.up.readyErr = errors.New("upstream identity provider unavailable: discovery failed")
	h.up.mu.Unlock()
	h.wantRetryAfter(h.submitConsent(b, f, "approve"))
	h.up.mu.Lock()
	h.up.readyErr = nil
	h.up.mu.Unlock()
	if state := h.approve(b, f); state == "" {
		t.Fatal("no upstream state after the provider came back")
	}
}

// /authorize with a store fault at each of its operations (client lookup, the PKCE-08 challenge
// lookup, storing the transaction) answers the 503 page: a failed lookup is never taken for "not
// seen", and the same URL works on reload.
func TestAuthorizeFaultAtEveryStep(t *testing.T) {
	h := newHarness(t)
	id := h.register()
	q := authorizeQuery(id, "http://127.0.0.1:5000/cb")
	for n := 1; ; n++ {
		h.fkv.FailOp(n)
		r := h.get(nil, h.issuer+"/authorize?"+q.Encode())
		ops := h.fkv.Ops()
		h.fkv.Reset()
		if n > ops {
			if r.StatusCode != http.StatusFound {
				t.Fatalf("no fault: %d %s", r.StatusCode, r.body)
			}
			if n < 4 {
				t.Fatalf("only %d store operations: the test misses a step", ops)
			}
			break
		}
		h.wantRetryAfter(r)
	}
}
