package chaos

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeServer is a tiny authorization server + MCP endpoint with switchable misbehaviour, so the
// harness's own verdicts are tested both ways: a correct server passes, each defect is caught.
type fakeServer struct {
	srv *httptest.Server

	mu       sync.Mutex
	seq      int
	refresh  map[string]*fakeRT // refresh token → record
	access   map[string]string  // access token → grant
	revoked  map[string]bool    // grant → revoked
	lastPair map[string]fakePair

	down         atomic.Bool  // every endpoint answers 503
	false401     atomic.Int32 // the next n MCP calls answer 401 although the token is valid
	dropAfter    atomic.Int32 // the next n refreshes commit the rotation, then the connection is cut
	replayWindow bool         // a retried refresh of a just-rotated token gets the same answer
	forget       atomic.Bool  // the next refresh answered 200 is not stored
}

type fakeRT struct {
	grant, next string
	used        bool
}

type fakePair struct{ at, rt string }

func newFakeServer(t *testing.T) *fakeServer {
	f := &fakeServer{refresh: map[string]*fakeRT{}, access: map[string]string{}, revoked: map[string]bool{}, lastPair: map[string]fakePair{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/oauth-authorization-server", func(w http.ResponseWriter, r *http.Request) {
		b := f.srv.URL
		_ = json.NewEncoder(w).Encode(Metadata{Issuer: b, AuthorizationEndpoint: b + "/authorize", TokenEndpoint: b + "/token", RegistrationEndpoint: b + "/register"})
	})
	mux.HandleFunc("POST /register", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusCreated)
		_, _ = w.Write([]byte(`{"client_id":"c` + f.next() + `"}`))
	})
	mux.HandleFunc("GET /authorize", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		fmt.Fprintf(w, `<form method="post" action="/approve"><input type="hidden" name="redirect" value="%s"><input type="hidden" name="state" value="%s"><button name="action" value="approve">Approve</button></form>`,
			q.Get("redirect_uri"), q.Get("state"))
	})
	mux.HandleFunc("POST /approve", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, r.FormValue("redirect")+"?code=code"+f.next()+"&state="+r.FormValue("state"), http.StatusFound)
	})
	mux.HandleFunc("POST /token", f.token)
	mux.HandleFunc("POST /mcp", func(w http.ResponseWriter, r *http.Request) {
		if f.down.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		if f.false401.Load() > 0 && f.false401.Add(-1) >= 0 {
			w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		f.mu.Lock()
		g, ok := f.access[strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")]
		ok = ok && !f.revoked[g]
		f.mu.Unlock()
		if !ok {
			w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		_, _ = w.Write([]byte(`{"jsonrpc":"2.0","id":1,"result":{}}`))
	})
	f.srv = httptest.NewServer(mux)
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeServer) next() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.seq++
	return fmt.Sprint(f.seq)
}

func (f *fakeServer) issue(grant string) fakePair {
	p := fakePair{at: "at" + f.nextLocked(), rt: "rt" + f.nextLocked()}
	f.access[p.at] = grant
	if !f.forget.CompareAndSwap(true, false) {
		f.refresh[p.rt] = &fakeRT{grant: grant}
	}
	return p
}

func (f *fakeServer) nextLocked() string { f.seq++; return fmt.Sprint(f.seq) }

func (f *fakeServer) token(w http.ResponseWriter, r *http.Request) {
	if f.down.Load() {
		w.Header().Set("Retry-After", "1")
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte(`{"error":"temporarily_unavailable"}`))
		return
	}
	f.mu.Lock()
	var p fakePair
	switch r.FormValue("grant_type") {
	case "authorization_code":
		p = f.issue("g" + f.nextLocked())
	case "refresh_token":
		rec, ok := f.refresh[r.FormValue("refresh_token")]
		switch {
		case !ok || f.revoked[rec.grant]:
			f.mu.Unlock()
			w.WriteHeader(http.StatusBadRequest)
			_, _ = w.Write([]byte(`{"error":"invalid_grant"}`))
			return
		case rec.used && f.replayWindow && f.refresh[rec.next] != nil && !f.refresh[rec.next].used:
			p = f.lastPair[rec.next]
		case rec.used:
			f.revoked[rec.grant] = true
			f.mu.Unlock()
			w.WriteHeader(http.StatusBadRequest)
			_, _ = w.Write([]byte(`{"error":"invalid_grant"}`))
			return
		default:
			rec.used = true
			p = f.issue(rec.grant)
			rec.next = p.rt
			f.lastPair[p.rt] = p
		}
	}
	f.mu.Unlock()
	if f.dropAfter.Load() > 0 && f.dropAfter.Add(-1) >= 0 {
		conn, _, _ := http.NewResponseController(w).Hijack()
		_ = conn.Close()
		return
	}
	_ = json.NewEncoder(w).Encode(map[string]any{"access_token": p.at, "refresh_token": p.rt, "expires_in": 3600, "token_type": "Bearer"})
}

func runFake(t *testing.T, f *fakeServer, inject func(cycle int)) *Report {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	rep, err := Run(ctx, Options{Target: Target{MCPURL: f.srv.URL + "/mcp"}, Clients: 4, Think: 5 * time.Millisecond,
		RetryFor: 10 * time.Second, RecheckFor: 2 * time.Second, MaxBackoff: 50 * time.Millisecond},
		Scenario{Name: "fake", Cycles: 2, Settle: 100 * time.Millisecond, RecoverWithin: 5 * time.Second,
			Inject: func(ctx context.Context, r *Runner, cycle int) (Window, error) {
				start := time.Now()
				inject(cycle)
				return Window{Fault: "fake", Start: start, End: time.Now()}, nil
			}})
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

// A correct server passes, with recovery measured after each outage.
func TestRunnerPassesCorrectServer(t *testing.T) {
	f := newFakeServer(t)
	f.replayWindow = true
	rep := runFake(t, f, func(int) {
		f.down.Store(true)
		time.Sleep(200 * time.Millisecond)
		f.down.Store(false)
	})
	if !rep.Passed() {
		t.Fatalf("a correct server failed: %v\n%s", rep.Problems(), rep.Details(10))
	}
	if len(rep.Recovery) != 2*4 || rep.Counts.RefreshUnavailable+rep.Counts.MCPUnavailable == 0 {
		t.Fatalf("want a recovery time per client and fault and some 503s: %d recoveries, %d+%d unavailable", len(rep.Recovery), rep.Counts.RefreshUnavailable, rep.Counts.MCPUnavailable)
	}
}

// A response lost after the rotation was committed (kill -9 mid-refresh): a strict server ends the
// grant on the retry — a lost grant; a server with a replay window answers the retry — no loss.
func TestRunnerCountsGrantsLostToARetriedRefresh(t *testing.T) {
	for _, replay := range []bool{false, true} {
		t.Run(fmt.Sprintf("replay window %t", replay), func(t *testing.T) {
			f := newFakeServer(t)
			f.replayWindow = replay
			rep := runFake(t, f, func(int) { f.dropAfter.Store(2) })
			if replay != rep.Passed() || (!replay && len(rep.Lost) == 0) {
				t.Fatalf("replay window %t: passed %t, lost %d: %v", replay, rep.Passed(), len(rep.Lost), rep.Problems())
			}
		})
	}
}

// A 401 for a token that is accepted again later is a valid-token 401; a 401 for a revoked grant's
// token is not (that grant is counted as lost).
func TestRunnerTellsValid401s(t *testing.T) {
	f := newFakeServer(t)
	f.replayWindow = true
	rep := runFake(t, f, func(int) { f.false401.Store(1) })
	if len(rep.Valid401) != 2 || len(rep.Lost) != 0 {
		t.Fatalf("want 2 valid-token 401s and no lost grant: %v\n%s", rep.Problems(), rep.Details(10))
	}
}

// A refresh token the server acknowledged but did not keep is unusable: caught at the latest by the
// final check.
func TestRunnerChecksAcknowledgedTokens(t *testing.T) {
	f := newFakeServer(t)
	f.replayWindow = true
	rep := runFake(t, f, func(cycle int) {
		if cycle == 1 {
			f.forget.Store(true)
		}
	})
	if len(rep.Lost)+len(rep.FinalFailures) == 0 || rep.Passed() {
		t.Fatalf("a forgotten refresh token went unnoticed: %v", rep.Problems())
	}
}

func TestPercentile(t *testing.T) {
	ds := []time.Duration{5, 1, 4, 2, 3}
	for p, want := range map[float64]time.Duration{50: 3, 100: 5, 1: 1, 80: 4} {
		if got := Percentile(ds, p); got != want {
			t.Errorf("p%v = %v, want %v", p, got, want)
		}
	}
	if Percentile(nil, 50) != 0 {
		t.Error("empty")
	}
}

// A server that stays unavailable after the fault ended (here 7 s, beyond RecoverWithin's 5 s but
// within RetryFor's 10 s, so no request gives up) fails on recovery, with no grant lost.
func TestRunnerCatchesSlowRecovery(t *testing.T) {
	f := newFakeServer(t)
	f.replayWindow = true
	rep := runFake(t, f, func(int) {
		f.down.Store(true)
		time.AfterFunc(7*time.Second, func() { f.down.Store(false) })
	})
	if rep.Passed() || len(rep.NotRecovered) == 0 || len(rep.Lost) != 0 {
		t.Fatalf("a server that recovered too slowly went unnoticed: passed %t, not recovered %d, lost %d: %v",
			rep.Passed(), len(rep.NotRecovered), len(rep.Lost), rep.Problems())
	}
}
