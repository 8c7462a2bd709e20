package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cnpg-mcp/cnpg-mcp/server/store"
	"github.com/cnpg-mcp/cnpg-mcp/server/store/seal"
)

// Clock is an injectable clock for the typed store.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// NewClock starts at a fixed instant.
func NewClock() *Clock { return &Clock{t: time.Unix(1_800_000_000, 0)} }

// Now returns the current instant.
func (c *Clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }

// Advance moves the clock.
func (c *Clock) Advance(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

// Sealer is a fixed test sealer.
func Sealer(t testing.TB) *seal.Sealer {
	s, err := seal.New([]seal.Key{{ID: 1, Secret: bytes.Repeat([]byte{7}, 32)}})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

type fixture struct {
	t     *testing.T
	st    store.Store
	fkv   *FaultKV
	clock *Clock
	ctx   context.Context
}

func (f *fixture) must(err error) {
	f.t.Helper()
	if err != nil {
		f.t.Fatal(err)
	}
}

// grant creates a grant with one live refresh token and returns the token.
func (f *fixture) grant(id string) string {
	f.t.Helper()
	now := f.clock.Now()
	f.must(f.st.CreateGrant(f.ctx, store.Grant{ID: id, ClientID: "c", Subject: "auth0|u", ExpiresAt: now.Add(24 * time.Hour),
		Upstream: store.UpstreamTokens{AccessToken: "up-at-0", RefreshToken: "up-rt-0", Expiry: now.Add(time.Hour)}}))
	rt := "rt-" + id + "-1"
	f.must(f.st.PutRefreshToken(f.ctx, rt, f.record(id)))
	return rt
}

func (f *fixture) record(grant string) store.RefreshToken {
	now := f.clock.Now()
	return store.RefreshToken{GrantID: grant, ClientID: "c", IssuedAt: now, ExpiresAt: now.Add(24 * time.Hour), IdleUntil: now.Add(12 * time.Hour)}
}

func (f *fixture) rotation(grant, from, next, id string, upstream *store.UpstreamTokens, fromVersion int64) store.Rotation {
	replay, err := store.SealReplay(from, []byte(`{"next":"`+next+`"}`))
	f.must(err)
	return store.Rotation{Token: from, RotationID: id, GrantID: grant, Upstream: upstream, FromVersion: fromVersion,
		Next: next, NextRecord: f.record(grant), Replay: replay, ReplayUntil: f.clock.Now().Add(time.Minute)}
}

// unchanged asserts that a failed operation left no trace: rt unused and unclaimed by anyone but
// claim, the next token absent, the grant's upstream as it was.
func (f *fixture) unchanged(grant, rt, next string, version int64, upstreamRT string) {
	f.t.Helper()
	st, err := f.st.RefreshState(f.ctx, rt)
	f.must(err)
	if !st.UsedAt.IsZero() || st.Record.Successor != "" || st.Record.RotationID != "" {
		f.t.Fatalf("partial rotation visible: %+v used %v", st.Record, st.UsedAt)
	}
	if _, _, err := f.st.GetRefreshToken(f.ctx, next); !errors.Is(err, store.ErrNotFound) {
		f.t.Fatalf("the next token exists after a failed rotation: %v", err)
	}
	g, err := f.st.GetGrant(f.ctx, grant)
	f.must(err)
	if g.UpstreamVersion != version || g.Upstream.RefreshToken != upstreamRT {
		f.t.Fatalf("grant changed by a failed rotation: version %d, upstream %s", g.UpstreamVersion, g.Upstream.RefreshToken)
	}
}

// RunStore exercises the typed store's atomic operations (code redemption, refresh rotation,
// claims, settling) on a backend; open returns a fresh backend per subtest.
func RunStore(t *testing.T, open func(t *testing.T) store.KV) {
	setup := func(t *testing.T) *fixture {
		f := &fixture{t: t, clock: NewClock(), ctx: context.Background()}
		f.fkv = NewFaultKV(open(t))
		f.st = store.New(f.fkv, Sealer(t), f.clock.Now)
		t.Cleanup(func() { f.st.Close() })
		return f
	}

	t.Run("RotationCommitsWhole", func(t *testing.T) {
		f := setup(t)
		rt := f.grant("g1")
		up := &store.UpstreamTokens{AccessToken: "up-at-1", RefreshToken: "up-rt-1", Expiry: f.clock.Now().Add(2 * time.Hour)}
		rot := f.rotation("g1", rt, "rt-g1-2", "rot-1", up, 0)
		f.must(f.st.RotateRefreshToken(f.ctx, rot))
		st, err := f.st.RefreshState(f.ctx, rt)
		f.must(err)
		if st.UsedAt.IsZero() || st.Record.RotationID != "rot-1" || st.Record.Successor != store.HashKey("rt-g1-2") || st.SuccessorUsed {
			f.t.Fatalf("old token after rotation: %+v used %v successorUsed %v", st.Record, st.UsedAt, st.SuccessorUsed)
		}
		raw, err := store.OpenReplay(rt, st.Record.Replay)
		if err != nil || string(raw) != `{"next":"rt-g1-2"}` {
			t.Fatalf("replay: %q %v", raw, err)
		}
		if _, err := store.OpenReplay("rt-g1-2", st.Record.Replay); err == nil {
			t.Fatal("the replay opens with another token")
		}
		if _, used, err := f.st.GetRefreshToken(f.ctx, "rt-g1-2"); err != nil || !used.IsZero() {
			t.Fatalf("new token: used %v %v", used, err)
		}
		g, err := f.st.GetGrant(f.ctx, "g1")
		f.must(err)
		if g.UpstreamVersion != 1 || g.UpstreamRotation != "rot-1" || g.Upstream.RefreshToken != up.RefreshToken || g.Upstream.AccessToken != up.AccessToken ||
			!g.Upstream.Expiry.Equal(up.Expiry) || !g.RefreshedAt.Equal(f.clock.Now()) {
			t.Fatalf("grant after rotation: %+v", g)
		}
		// The same rotation again (a retried commit) is a success that changes nothing; another is a second use.
		f.must(f.st.RotateRefreshToken(f.ctx, rot))
		if err := f.st.RotateRefreshToken(f.ctx, f.rotation("g1", rt, "rt-g1-x", "rot-2", nil, 1)); !errors.Is(err, store.ErrRefreshUsed) {
			t.Fatalf("second rotation: %v", err)
		}
		// Once the successor is used, the old token's retry cannot be a lost answer any more.
		f.must(f.st.RotateRefreshToken(f.ctx, f.rotation("g1", "rt-g1-2", "rt-g1-3", "rot-3", nil, 1)))
		if st, _ := f.st.RefreshState(f.ctx, rt); !st.SuccessorUsed {
			t.Fatal("successor used, but the old token's state does not say so")
		}
	})

	// The upstream identity read with new upstream tokens replaces the grant's in the same commit
	// (a group removed upstream takes effect from that refresh); a rotation without an upstream
	// refresh, or with one that read no identity, keeps it; a settled rotation saves it too.
	t.Run("RotationReplacesIdentity", func(t *testing.T) {
		f := setup(t)
		now := f.clock.Now()
		rt := "rt-idg-1"
		f.must(f.st.IssueCode(f.ctx, store.Grant{ID: "idg", ClientID: "c", Subject: "auth0|u", ExpiresAt: now.Add(24 * time.Hour),
			Upstream: store.UpstreamTokens{RefreshToken: "up-rt-0"},
			Identity: &store.UpstreamIdentity{Claims: map[string]any{"email": "a@x", "groups": []any{"dba"}}, At: now}},
			"code-idg", store.Code{GrantID: "idg", ClientID: "c", ExpiresAt: now.Add(time.Minute)}))
		f.must(f.st.PutRefreshToken(f.ctx, rt, f.record("idg")))
		groups := func() any {
			t.Helper()
			id, err := f.st.GrantIdentity(f.ctx, "idg")
			f.must(err)
			return fmt.Sprint(id.Claims["groups"])
		}
		if g := groups(); g != "[dba]" {
			t.Fatalf("identity at sign-in: %v", g)
		}
		f.clock.Advance(time.Minute)
		f.must(f.st.RotateRefreshToken(f.ctx, f.rotation("idg", rt, "rt-idg-2", "r1", nil, 0)))
		if g := groups(); g != "[dba]" {
			t.Fatalf("a rotation without an upstream refresh changed the identity: %v", g)
		}
		rot := f.rotation("idg", "rt-idg-2", "rt-idg-3", "r2", &store.UpstreamTokens{RefreshToken: "up-rt-1"}, 0)
		rot.Identity = &store.UpstreamIdentity{Claims: map[string]any{"email": "a@x", "groups": []any{}}, At: f.clock.Now()}
		f.must(f.st.RotateRefreshToken(f.ctx, rot))
		if g := groups(); g != "[]" {
			t.Fatalf("the refreshed identity was not stored: %v", g)
		}
		if id, _ := f.st.GrantIdentity(f.ctx, "idg"); !id.At.Equal(f.clock.Now()) {
			t.Fatalf("identity time %v, want %v", id.At, f.clock.Now())
		}
		f.must(f.st.RotateRefreshToken(f.ctx, f.rotation("idg", "rt-idg-3", "rt-idg-4", "r3", &store.UpstreamTokens{RefreshToken: "up-rt-2"}, 1)))
		if g := groups(); g != "[]" {
			t.Fatalf("an upstream refresh without an identity dropped the kept one: %v", g)
		}
		settle := f.rotation("idg", "rt-idg-4", "rt-idg-5", "r4", &store.UpstreamTokens{RefreshToken: "up-rt-3"}, 2)
		settle.Identity = &store.UpstreamIdentity{Claims: map[string]any{"email": "a@x", "groups": []any{"viewers"}}, At: f.clock.Now()}
		f.must(f.st.SettleRotation(f.ctx, settle))
		if g := groups(); g != "[viewers]" {
			t.Fatalf("a settled rotation did not save its identity: %v", g)
		}
	})

	t.Run("RotationRefusals", func(t *testing.T) {
		f := setup(t)
		rt := f.grant("g1")
		up := &store.UpstreamTokens{AccessToken: "up-at-1", RefreshToken: "up-rt-1"}
		// Upstream tokens refreshed from a version the grant has left behind are stale.
		if err := f.st.RotateRefreshToken(f.ctx, f.rotation("g1", rt, "rt-2", "r", up, 7)); !errors.Is(err, store.ErrUpstreamChanged) {
			t.Fatalf("stale upstream: %v", err)
		}
		f.unchanged("g1", rt, "rt-2", 0, "up-rt-0")
		// A claim by another refresh blocks a rotation until it is released or its lease ends.
		g, err := f.st.ClaimRefreshToken(f.ctx, rt, "claim-a", f.clock.Now().Add(20*time.Second))
		f.must(err)
		if g.Upstream.RefreshToken != "up-rt-0" || g.ID != "g1" {
			t.Fatalf("claim returned grant %+v", g)
		}
		var claimed *store.ClaimedError
		if _, err := f.st.ClaimRefreshToken(f.ctx, rt, "claim-b", f.clock.Now().Add(20*time.Second)); !errors.As(err, &claimed) {
			t.Fatalf("second claim: %v", err)
		}
		if err := f.st.RotateRefreshToken(f.ctx, f.rotation("g1", rt, "rt-2", "r", nil, 0)); !errors.As(err, &claimed) {
			t.Fatalf("rotation without the claim: %v", err)
		}
		f.unchanged("g1", rt, "rt-2", 0, "up-rt-0")
		f.must(f.st.ReleaseRefreshClaim(f.ctx, rt, "claim-b")) // not the holder: no effect
		if _, err := f.st.ClaimRefreshToken(f.ctx, rt, "claim-b", f.clock.Now().Add(20*time.Second)); !errors.As(err, &claimed) {
			t.Fatalf("claim released by a stranger: %v", err)
		}
		f.clock.Advance(21 * time.Second) // the lease ends: a crash leaves nothing behind
		if _, err := f.st.ClaimRefreshToken(f.ctx, rt, "claim-b", f.clock.Now().Add(20*time.Second)); err != nil {
			t.Fatalf("claim after the lease ended: %v", err)
		}
		f.must(f.st.ReleaseRefreshClaim(f.ctx, rt, "claim-b"))
		f.must(f.st.RotateRefreshToken(f.ctx, f.rotation("g1", rt, "rt-2", "r", nil, 0)))
		// A revoked grant rotates nothing.
		f.must(f.st.RevokeGrant(f.ctx, "g1"))
		if err := f.st.RotateRefreshToken(f.ctx, f.rotation("g1", "rt-2", "rt-3", "r2", nil, 0)); !errors.Is(err, store.ErrGrantNotFound) || !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("rotation of a revoked grant: %v", err)
		}
		if _, err := f.st.ClaimRefreshToken(f.ctx, "rt-2", "c", f.clock.Now().Add(time.Second)); !errors.Is(err, store.ErrGrantNotFound) {
			t.Fatalf("claim on a revoked grant: %v", err)
		}
		if st, _ := f.st.RefreshState(f.ctx, "rt-2"); !st.UsedAt.IsZero() {
			t.Fatal("a refused rotation used the token")
		}
	})

	// Every storage fault at every step of a rotation leaves nothing partial behind; a fault after
	// the commit (a lost answer) leaves the whole rotation, which its retry recognizes.
	t.Run("RotationFaultAtEveryStep", func(t *testing.T) {
		f := setup(t)
		for n := 1; ; n++ {
			grant := fmt.Sprintf("g%d", n)
			rt := f.grant(grant)
			up := &store.UpstreamTokens{AccessToken: "up-at-1", RefreshToken: "up-rt-1"}
			rot := f.rotation(grant, rt, "next-"+grant, "rot-"+grant, up, 0)
			f.fkv.FailOp(n)
			err := f.st.RotateRefreshToken(f.ctx, rot)
			ops := f.fkv.Ops()
			f.fkv.Reset()
			if n > ops {
				f.must(err)
				if n < 4 {
					t.Fatalf("a rotation of %d operations is not one that reads and writes three records", ops)
				}
				break
			}
			if !errors.Is(err, ErrInjected) {
				t.Fatalf("fault at operation %d of %d: %v", n, ops, err)
			}
			f.unchanged(grant, rt, "next-"+grant, 0, "up-rt-0")
			f.must(f.st.RotateRefreshToken(f.ctx, rot)) // the retry works
		}
		rt := f.grant("commit")
		rot := f.rotation("commit", rt, "next-commit", "rot-c", &store.UpstreamTokens{RefreshToken: "up-rt-1"}, 0)
		f.fkv.FailCommit(1)
		if err := f.st.RotateRefreshToken(f.ctx, rot); !errors.Is(err, ErrInjected) {
			t.Fatalf("failed commit: %v", err)
		}
		f.unchanged("commit", rt, "next-commit", 0, "up-rt-0")
		// Settling a rotation that did not commit saves the upstream tokens and releases the claim;
		// the old token stays usable.
		rot.ClaimID = "claim-c"
		_, err := f.st.ClaimRefreshToken(f.ctx, rt, "claim-c", f.clock.Now().Add(time.Minute))
		f.must(err)
		rot.ReplayUntil = f.clock.Now().Add(12 * time.Hour)
		f.must(f.st.SettleRotation(f.ctx, rot))
		f.must(f.st.SettleRotation(f.ctx, rot)) // idempotent
		st, err := f.st.RefreshState(f.ctx, rt)
		f.must(err)
		if !st.UsedAt.IsZero() || st.Record.ClaimID != "" {
			t.Fatalf("settled token: %+v used %v", st.Record, st.UsedAt)
		}
		g, _ := f.st.GetGrant(f.ctx, "commit")
		if g.UpstreamVersion != 1 || g.Upstream.RefreshToken != "up-rt-1" {
			t.Fatalf("settled grant: %+v", g)
		}
		// A stale settle (the grant moved on) is refused.
		stale := f.rotation("commit", rt, "x", "rot-stale", &store.UpstreamTokens{RefreshToken: "up-rt-stale"}, 0)
		if err := f.st.SettleRotation(f.ctx, stale); !errors.Is(err, store.ErrUpstreamChanged) {
			t.Fatalf("stale settle: %v", err)
		}
		// A commit whose answer was lost did commit; settling it keeps its answer replayable.
		rt = f.grant("lost")
		rot = f.rotation("lost", rt, "next-lost", "rot-l", &store.UpstreamTokens{RefreshToken: "up-rt-1"}, 0)
		f.fkv.LoseCommit(1)
		if err := f.st.RotateRefreshToken(f.ctx, rot); !errors.Is(err, ErrInjected) {
			t.Fatalf("lost commit: %v", err)
		}
		if st, _ := f.st.RefreshState(f.ctx, rt); st.UsedAt.IsZero() || st.Record.RotationID != "rot-l" {
			t.Fatal("the lost commit did not commit")
		}
		f.must(f.st.RotateRefreshToken(f.ctx, rot)) // its retry recognizes it
		rot.ReplayUntil = f.clock.Now().Add(12 * time.Hour)
		f.must(f.st.SettleRotation(f.ctx, rot))
		st, _ = f.st.RefreshState(f.ctx, rt)
		if !st.Record.ReplayUntil.Equal(rot.ReplayUntil) {
			t.Fatalf("replay kept until %v, want %v (the answer was never delivered)", st.Record.ReplayUntil, rot.ReplayUntil)
		}
		if g, _ := f.st.GetGrant(f.ctx, "lost"); g.UpstreamVersion != 1 {
			t.Fatalf("settling a committed rotation changed the grant again: version %d", g.UpstreamVersion)
		}
	})

	// RT-10, TOK-04 at the store: of concurrent rotations of one token, and of concurrent
	// redemptions of one code, exactly one commits.
	t.Run("RT10_TOK04_ConcurrentSingleWinner", func(t *testing.T) {
		f := setup(t)
		for round := 0; round < 5; round++ {
			grant := fmt.Sprintf("g%d", round)
			rt := f.grant(grant)
			code := "code-" + grant
			f.must(f.st.PutCode(f.ctx, code, store.Code{GrantID: grant, ClientID: "c", ExpiresAt: f.clock.Now().Add(time.Minute)}))
			var rotated, redeemed atomic.Int32
			var wg sync.WaitGroup
			for i := 0; i < 10; i++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					switch err := f.st.RotateRefreshToken(f.ctx, f.rotation(grant, rt, fmt.Sprintf("n-%s-%d", grant, i), fmt.Sprintf("r%d", i), nil, 0)); {
					case err == nil:
						rotated.Add(1)
					case !errors.Is(err, store.ErrRefreshUsed):
						t.Error(err)
					}
					switch err := f.st.RedeemCode(f.ctx, store.Redemption{Code: code, RedemptionID: fmt.Sprint(i), GrantID: grant, GrantExpiresAt: f.clock.Now().Add(time.Hour)}); {
					case err == nil:
						redeemed.Add(1)
					case !errors.Is(err, store.ErrCodeUsed):
						t.Error(err)
					}
				}()
			}
			wg.Wait()
			if rotated.Load() != 1 || redeemed.Load() != 1 {
				t.Fatalf("round %d: %d rotations and %d redemptions committed; want exactly 1 each", round, rotated.Load(), redeemed.Load())
			}
		}
	})

	t.Run("RedeemCode", func(t *testing.T) {
		f := setup(t)
		now := f.clock.Now()
		f.must(f.st.CreateClient(f.ctx, store.Client{ID: "c", UnusedUntil: now.Add(time.Hour)}))
		f.must(f.st.CreateGrant(f.ctx, store.Grant{ID: "g", ClientID: "c", Subject: "s", ExpiresAt: now.Add(10 * time.Minute)}))
		f.must(f.st.PutCode(f.ctx, "code", store.Code{GrantID: "g", ClientID: "c", ExpiresAt: now.Add(time.Minute)}))
		red := store.Redemption{Code: "code", RedemptionID: "red-1", GrantID: "g", GrantExpiresAt: now.Add(90 * 24 * time.Hour),
			RefreshToken: "rt", Refresh: f.record("g"), KeepClient: "c", Challenge: "chal", ChallengeUntil: now.Add(24 * time.Hour)}
		for n := 1; ; n++ { // a fault anywhere leaves the code unredeemed
			f.fkv.FailOp(n)
			err := f.st.RedeemCode(f.ctx, red)
			ops := f.fkv.Ops()
			f.fkv.Reset()
			if n > ops {
				if err != nil {
					t.Fatalf("redemption without a fault (%d operations): %v", ops, err)
				}
				break
			}
			if !errors.Is(err, ErrInjected) {
				t.Fatalf("fault at operation %d: %v", n, err)
			}
			if _, used, _ := f.st.GetCode(f.ctx, "code"); !used.IsZero() {
				t.Fatalf("fault at operation %d: the code was redeemed", n)
			}
			if _, _, err := f.st.GetRefreshToken(f.ctx, "rt"); !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("fault at operation %d: the refresh token was stored", n)
			}
		}
		if _, used, _ := f.st.GetCode(f.ctx, "code"); !used.Equal(now) {
			t.Fatal("code not redeemed")
		}
		if g, _ := f.st.GetGrant(f.ctx, "g"); !g.ExpiresAt.Equal(red.GrantExpiresAt) {
			t.Fatalf("grant expiry %v", g.ExpiresAt)
		}
		if _, _, err := f.st.GetRefreshToken(f.ctx, "rt"); err != nil {
			t.Fatal(err)
		}
		f.must(f.st.RedeemCode(f.ctx, red)) // its own retry
		red.RedemptionID = "red-2"
		if err := f.st.RedeemCode(f.ctx, red); !errors.Is(err, store.ErrCodeUsed) {
			t.Fatalf("second redemption: %v", err)
		}
		f.clock.Advance(2 * time.Hour)
		if c, err := f.st.GetClient(f.ctx, "c"); err != nil || !c.UnusedUntil.IsZero() {
			t.Fatalf("client not kept: %+v %v", c, err)
		}
		if seen, _ := f.st.ChallengeSeen(f.ctx, "chal"); !seen {
			t.Fatal("challenge not remembered")
		}
		// A code whose grant was revoked redeems nothing.
		now = f.clock.Now()
		f.must(f.st.PutCode(f.ctx, "code2", store.Code{GrantID: "gone", ClientID: "c", ExpiresAt: now.Add(time.Minute)}))
		if err := f.st.RedeemCode(f.ctx, store.Redemption{Code: "code2", RedemptionID: "x", GrantID: "gone"}); !errors.Is(err, store.ErrGrantNotFound) {
			t.Fatalf("redemption for a revoked grant: %v", err)
		}
		if _, used, _ := f.st.GetCode(f.ctx, "code2"); !used.IsZero() {
			t.Fatal("code redeemed for a revoked grant")
		}
	})
}
