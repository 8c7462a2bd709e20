package oauthproxy

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/cnpg-mcp/cnpg-mcp/server/store"
	"github.com/cnpg-mcp/cnpg-mcp/server/upstream"
)

// RotationOptions tune the refresh rotation under faults; zero values take the defaults.
type RotationOptions struct {
	// Lease is how long a refresh token is claimed while its upstream refresh runs (default 20 s).
	// The upstream call gets Lease minus 5 s; a crash leaves only this lease behind.
	Lease time.Duration
	// Wait bounds how long a concurrent refresh of the same token waits for the winner's commit
	// before answering 503 (default 10 s).
	Wait time.Duration
	// CommitRetry is how long a request retries its own failing commit before answering 503
	// (default 2 s).
	CommitRetry time.Duration
	// SettleFor and SettleAttempts bound the background retries of a rotation whose commit failed
	// (default 10 min, 100 attempts): the upstream's new tokens are kept in memory until saved.
	SettleFor      time.Duration
	SettleAttempts int
}

func (o *RotationOptions) defaults() {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&o.Lease, 20*time.Second)
	def(&o.Wait, 10*time.Second)
	def(&o.CommitRetry, 2*time.Second)
	def(&o.SettleFor, 10*time.Minute)
	if o.SettleAttempts <= 0 {
		o.SettleAttempts = 100
	}
}

// refreshGrant is the refresh_token grant. Its design, for zero lost grants (server/README.md,
// "Refresh rotation"):
//
//   - One commit. The old token's use, the new token, the grant's new sealed upstream tokens and its
//     timestamps are one store transaction (store.RotateRefreshToken); nothing is undone afterwards,
//     so a crash or an outage leaves either the old state or the new one.
//     [store: TestRotation*; here: TestRotationFaultAtEveryStep]
//   - One upstream call per upstream refresh token. When the upstream must be refreshed, the token is
//     first claimed with a short lease (store.ClaimRefreshToken) — a crash leaves only a lease that
//     expires, never a "used" mark — and the rotation commits only over the grant's upstream version
//     the call started from. Concurrent refreshes of the same token find the claim, wait (bounded by
//     RotationOptions.Wait) for the winner's commit and then take the replay below, so two callers
//     never present the same rotating upstream refresh token, and a race kills no grant.
//     [TestRT10_ConcurrentRefresh, TestRT10_RaceManyTimes]
//   - Replay. Every rotation keeps its answer, sealed with a key derived from the old token, on the
//     old token's record. The same client presenting the old token within
//     Lifetimes.RefreshReuseWindow, while the new token is unused, gets the identical answer; any
//     other second use (another client, after the window, after the new token was used) is reuse and
//     revokes the grant (RT-03). A zero window is strict.  [TestRT03_*, TestRefreshReplayWindow]
//   - Nothing from the upstream is dropped. If the commit fails on a store fault the request retries
//     it for RotationOptions.CommitRetry, then answers 503 and hands the rotation to the settler,
//     which retries in memory with backoff (bounded) until the store is back: it saves the new
//     upstream tokens to the grant and releases the claim, so the refresh token the client still
//     holds works on its retry; if the rotation had committed after all (a lost COMMIT answer), the
//     kept answer becomes replayable until the old token's own expiry, because it was never
//     delivered.  [TestRefreshSurvivesStoreOutage*, TestRefreshAfterLostCommit]
//   - kill -9 between the upstream call and the commit loses the upstream's answer: the claim
//     expires after the lease and the retry calls the upstream again with the previous upstream
//     refresh token. A rotating upstream must allow that (Auth0: "Reuse Interval" ≥ the lease, 20 s
//     by default); otherwise the upstream refuses and the grant ends with invalid_grant.
//     [TestRefreshAfterCrashBetweenUpstreamAndCommit]
//   - The user's identity is read again with every upstream refresh and committed in the same
//     rotation (store.Rotation.Identity); with Options.Identity.MaxAge a rotation refreshes upstream
//     once the kept identity is older than that, so a group removed upstream stops counting at the
//     latest MaxAge plus one access-token lifetime later.  [TestIdentityRefreshedWithUpstream]
//   - A store fault is never a verdict: every store error that is not a decision of the store answers
//     503 temporarily_unavailable with Retry-After, and the refresh token stays usable.
func (p *Proxy) refreshGrant(w http.ResponseWriter, r *http.Request, client store.Client, v map[string]string, basic bool) {
	ctx := r.Context()
	rt := v["refresh_token"]
	if rt == "" {
		p.tokenError(w, "invalid_request", "refresh_token is required", basic)
		return
	}
	if !client.HasGrantType("refresh_token") {
		p.tokenError(w, "unauthorized_client", "the client is not registered for the refresh_token grant", basic)
		return
	}
	deadline := time.Now().Add(p.rot.Wait)
	backoff := 10 * time.Millisecond
	var scopes []string
	checked := false
	for {
		st, err := p.o.Store.RefreshState(ctx, rt)
		if errors.Is(err, store.ErrNotFound) {
			p.tokenError(w, "invalid_grant", "the refresh token is invalid or expired", basic)
			return
		}
		if err != nil {
			p.log.Error("token: refresh lookup", "err", err)
			tokenUnavailable(w)
			return
		}
		rec := st.Record
		if rec.ClientID == client.ID && p.settle.wait(ctx, rt, deadline) {
			// A failed commit of this token's rotation is being settled here (whether it committed
			// decides between a fresh rotation and a replay): it was nudged and waited for; read
			// the token again.
			if time.Now().After(deadline) || ctx.Err() != nil {
				tokenUnavailable(w)
				return
			}
			continue
		}
		if !st.UsedAt.IsZero() {
			p.secondUse(w, r, client, rt, st, basic)
			return
		}
		if rec.ClientID != client.ID {
			p.tokenError(w, "invalid_grant", "the refresh token was issued to another client", basic)
			return
		}
		if !checked {
			var ok bool
			if scopes, ok = p.refreshScopes(w, rec, v, basic); !ok {
				return
			}
			checked = true
		}
		if !rec.Claimed(p.now()) && p.rotate(w, r, client, rt, rec, scopes, basic) {
			return
		}
		// Another refresh of this token is in flight (or won the commit just now): wait for it.
		if time.Now().Add(backoff).After(deadline) {
			p.log.Warn("token: a concurrent refresh of this token did not finish in time", "client_id", client.ID, "grant", rec.GrantID[:8])
			tokenUnavailable(w)
			return
		}
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
			return
		}
		backoff = min(2*backoff, 200*time.Millisecond)
	}
}

// refreshScopes checks the requested scope (RT-05: a subset of the grant's) and resource.
func (p *Proxy) refreshScopes(w http.ResponseWriter, rec store.RefreshToken, v map[string]string, basic bool) ([]string, bool) {
	scopes := rec.Scopes
	if s := v["scope"]; s != "" {
		scopes = nil
		for _, x := range strings.Fields(s) {
			if !slices.Contains(rec.Scopes, x) {
				p.tokenError(w, "invalid_scope", "the requested scope exceeds the original grant", basic)
				return nil, false
			}
			if !slices.Contains(scopes, x) {
				scopes = append(scopes, x)
			}
		}
	}
	if v["resource"] != "" && !p.checkResource(v["resource"]) {
		p.tokenError(w, "invalid_target", "resource is not this server's MCP endpoint", basic)
		return nil, false
	}
	return scopes, true
}

// needsUpstream: refresh upstream when its access token would expire before ours; without an
// upstream refresh token, keep going until the upstream token has expired (our tokens are capped
// at its expiry).
func (p *Proxy) needsUpstream(up store.UpstreamTokens, now time.Time) bool {
	return !up.Expiry.IsZero() && up.Expiry.Before(now.Add(p.o.Lifetimes.AccessToken)) && (up.RefreshToken != "" || !up.Expiry.After(now))
}

// identityStale reports whether the grant's kept identity is older than Identity.MaxAge (a grant
// without one counts as stale), so this rotation must refresh upstream to read the claims again.
func (p *Proxy) identityStale(g store.Grant, now time.Time) bool {
	max := p.o.Identity.MaxAge
	return max > 0 && (g.Identity == nil || now.Sub(g.Identity.At) >= max)
}

// rotate tries one rotation of an unused, unclaimed token. It returns false when the token's state
// changed under it (used or claimed by a concurrent refresh): the caller reads it again.
func (p *Proxy) rotate(w http.ResponseWriter, r *http.Request, client store.Client, rt string, rec store.RefreshToken, scopes []string, basic bool) bool {
	ctx := r.Context()
	g, err := p.o.Store.GetGrant(ctx, rec.GrantID)
	if errors.Is(err, store.ErrNotFound) {
		p.tokenError(w, "invalid_grant", "the authorization was revoked", basic)
		return true
	}
	if err != nil {
		p.log.Error("token: load grant", "err", err)
		tokenUnavailable(w)
		return true
	}
	rot := store.Rotation{Token: rt, RotationID: randomToken(), GrantID: g.ID}
	now := p.now()
	stale := p.identityStale(g, now)
	if stale && g.Upstream.RefreshToken == "" {
		// The identity can only be read again at a new sign-in.
		p.log.Info("the user's identity is older than the maximum age and cannot be refreshed upstream (no upstream refresh token): ending the grant", "client_id", client.ID, "grant", g.ID[:8])
		if err := p.revokeGrantLocal(ctx, g.ID); err != nil {
			tokenUnavailable(w)
			return true
		}
		p.tokenError(w, "invalid_grant", "your identity must be read again at the identity provider; authorize again", basic)
		return true
	}
	if stale || p.needsUpstream(g.Upstream, now) {
		rot.ClaimID = randomToken()
		g, err = p.o.Store.ClaimRefreshToken(ctx, rt, rot.ClaimID, now.Add(p.rot.Lease))
		var claimed *store.ClaimedError
		switch {
		case errors.Is(err, store.ErrRefreshUsed), errors.As(err, &claimed):
			return false
		case errors.Is(err, store.ErrGrantNotFound):
			p.tokenError(w, "invalid_grant", "the authorization was revoked", basic)
			return true
		case errors.Is(err, store.ErrNotFound):
			p.tokenError(w, "invalid_grant", "the refresh token is invalid or expired", basic)
			return true
		case err != nil:
			p.log.Error("token: claim refresh token", "err", err)
			tokenUnavailable(w)
			return true
		}
		rot.FromVersion = g.UpstreamVersion
		nt, claims, done := p.refreshUpstream(w, r, client, rt, rot, g, basic)
		if done || nt == nil {
			return done
		}
		rot.Upstream = nt
		g.Upstream = *nt
		rot.Identity = upstreamIdentity(claims, p.now())
	}
	rot.Next, rot.NextRecord = p.newRefreshToken(client, g, p.now(), rec.ExpiresAt)
	ans, err := p.mintAnswer(client, g, scopes, rot.Next)
	if err == nil {
		rot.Replay, err = sealAnswer(rt, ans)
	}
	if err != nil {
		p.log.Error("token: issue", "err", err)
		p.settle.add(rot, rec.Expiry())
		tokenUnavailable(w)
		return true
	}
	rot.ReplayUntil = p.now().Add(p.o.Lifetimes.RefreshReuseWindow)
	err = p.commit(ctx, func(ctx context.Context) error { return p.o.Store.RotateRefreshToken(ctx, rot) })
	var claimed *store.ClaimedError
	switch {
	case err == nil:
		p.writeAnswer(w, client, g.ID, ans)
		return true
	case errors.Is(err, store.ErrRefreshUsed), errors.As(err, &claimed), errors.Is(err, store.ErrUpstreamChanged):
		if rot.Upstream != nil {
			// Only after our lease ran out can another rotation have overtaken ours; its upstream
			// tokens are the ones the grant keeps.
			p.log.Warn("token: a concurrent rotation overtook this one; its upstream result is dropped", "grant", g.ID[:8], "reason", err.Error())
		}
		return false
	case errors.Is(err, store.ErrNotFound):
		if rot.Upstream != nil {
			p.revokeUpstream(ctx, g.ID, rot.Upstream.RefreshToken)
		}
		p.tokenError(w, "invalid_grant", "the authorization was revoked", basic)
		return true
	default:
		p.log.Error("token: rotation commit failed; retrying in the background", "grant", g.ID[:8], "upstream_refreshed", rot.Upstream != nil, "err", err)
		p.settle.add(rot, rec.Expiry())
		tokenUnavailable(w)
		return true
	}
}

// refreshUpstream calls the upstream with the claim held. It returns the new tokens and the user's
// claims they carried (nil: none), or done=true when it has answered the request (nil tokens and
// done=false: read the state again).
func (p *Proxy) refreshUpstream(w http.ResponseWriter, r *http.Request, client store.Client, rt string, rot store.Rotation, g store.Grant, basic bool) (*store.UpstreamTokens, map[string]any, bool) {
	ctx := r.Context()
	// The call outlives a client that hangs up: its result must reach the store.
	uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), p.rot.Lease-5*time.Second)
	up := g.Upstream
	nt, err := p.o.Upstream.Refresh(uctx, upstream.Tokens{AccessToken: up.AccessToken, RefreshToken: up.RefreshToken, IDToken: up.IDToken, Expiry: up.Expiry}, g.Subject)
	cancel()
	release := func() {
		if err := p.o.Store.ReleaseRefreshClaim(context.WithoutCancel(ctx), rt, rot.ClaimID); err != nil {
			p.log.Warn("token: release claim (it expires with its lease)", "err", err)
		}
	}
	switch {
	case errors.Is(err, upstream.ErrInvalidGrant):
		// A verdict only if nobody replaced the grant's upstream tokens since the claim (after a lease
		// ran out, another replica may have refreshed them: then the old upstream token is dead
		// for a reason that is no fault of this grant).
		cur, gerr := p.o.Store.GetGrant(ctx, g.ID)
		switch {
		case errors.Is(gerr, store.ErrNotFound):
			p.tokenError(w, "invalid_grant", "the authorization was revoked", basic)
			return nil, nil, true
		case gerr != nil:
			release()
			p.log.Error("token: load grant", "err", gerr)
			tokenUnavailable(w)
			return nil, nil, true
		case cur.UpstreamVersion != rot.FromVersion:
			release()
			return nil, nil, false
		}
		p.log.Info("upstream refused the refresh: ending the grant", "client_id", client.ID, "grant", g.ID[:8], "err", err.Error())
		if err := p.revokeGrantLocal(ctx, g.ID); err != nil {
			tokenUnavailable(w)
			return nil, nil, true
		}
		p.tokenError(w, "invalid_grant", "the sign-in at the identity provider has ended; authorize again", basic)
		return nil, nil, true
	case err != nil:
		p.log.Warn("upstream refresh unavailable: refresh token kept", "client_id", client.ID, "err", err.Error())
		release()
		tokenUnavailable(w)
		return nil, nil, true
	}
	return &store.UpstreamTokens{AccessToken: nt.AccessToken, RefreshToken: nt.RefreshToken, IDToken: nt.IDToken, Expiry: nt.Expiry}, nt.Claims, false
}

// secondUse answers a refresh token that was rotated out: the kept answer for the same client
// within the reuse window while the new token is unused, otherwise reuse (RT-03: the grant ends).
func (p *Proxy) secondUse(w http.ResponseWriter, r *http.Request, client store.Client, rt string, st store.RefreshState, basic bool) {
	ctx := r.Context()
	rec := st.Record
	if rec.ClientID == client.ID && len(rec.Replay) > 0 && p.now().Before(rec.ReplayUntil) && !st.SuccessorUsed {
		active, err := p.o.Store.GrantActive(ctx, rec.GrantID)
		if err != nil {
			p.log.Error("token: grant lookup", "err", err)
			tokenUnavailable(w)
			return
		}
		if !active {
			p.tokenError(w, "invalid_grant", "the authorization was revoked", basic)
			return
		}
		ans, err := openAnswer(rt, rec.Replay)
		if err == nil {
			p.log.Info("refresh replayed: the client retried a rotation whose answer it may have missed", "client_id", client.ID, "grant", rec.GrantID[:8])
			p.writeAnswer(w, client, rec.GrantID, ans)
			return
		}
		p.log.Error("token: kept answer does not open; treating the retry as reuse", "grant", rec.GrantID[:8], "err", err)
	}
	p.log.Warn("refresh token reused: revoking the grant", "client_id", client.ID, "grant", rec.GrantID[:8],
		"other_client", rec.ClientID != client.ID, "new_token_used", st.SuccessorUsed)
	if err := p.revokeGrant(ctx, rec.GrantID); err != nil {
		tokenUnavailable(w) // the retry revokes; never a quiet invalid_grant that leaves the grant alive
		return
	}
	p.tokenError(w, "invalid_grant", "the refresh token was already used", basic)
}

func sealAnswer(rt string, a answer) ([]byte, error) {
	raw, err := json.Marshal(a)
	if err != nil {
		return nil, err
	}
	return store.SealReplay(rt, raw)
}

func openAnswer(rt string, sealed []byte) (answer, error) {
	raw, err := store.OpenReplay(rt, sealed)
	if err != nil {
		return answer{}, err
	}
	var a answer
	if err := json.Unmarshal(raw, &a); err != nil {
		return answer{}, err
	}
	if a.AccessToken == "" || a.TokenID == "" {
		return answer{}, errors.New("kept answer incomplete")
	}
	return a, nil
}

// settler keeps rotations whose commit failed and retries them in the background (bounded in time
// and attempts, every failure logged) until the store takes them: the upstream's new tokens are
// never dropped while the store is down. Requests for the same refresh token wait for it.
type settler struct {
	store store.Store
	log   *slog.Logger
	opts  RotationOptions
	// revokeUpstream revokes an upstream refresh token nobody can use any more.
	revokeUpstream func(ctx context.Context, grantID, token string)

	mu      sync.Mutex
	pending map[string]*settleItem // by the rotated token's storage key
	wg      sync.WaitGroup
	stop    chan struct{}
	stopped bool
}

type settleItem struct {
	rot  store.Rotation
	kick chan struct{}
	done chan struct{}
}

func newSettler(st store.Store, log *slog.Logger, opts RotationOptions, revoke func(ctx context.Context, grantID, token string)) *settler {
	return &settler{store: st, log: log, opts: opts, revokeUpstream: revoke, pending: map[string]*settleItem{}, stop: make(chan struct{})}
}

// add keeps rot until it is settled; replayUntil is the old token's own expiry (its answer was never
// delivered, so a retry may take it for as long as the token would have lived).
func (s *settler) add(rot store.Rotation, replayUntil time.Time) {
	rot.ReplayUntil = replayUntil
	key := store.HashKey(rot.Token)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		s.log.Error("rotation not settled: the server is shutting down", "grant", rot.GrantID[:8], "upstream_refreshed", rot.Upstream != nil)
		return
	}
	if _, ok := s.pending[key]; ok {
		return
	}
	it := &settleItem{rot: rot, kick: make(chan struct{}, 1), done: make(chan struct{})}
	s.pending[key] = it
	s.wg.Add(1)
	go s.run(key, it)
}

func (s *settler) run(key string, it *settleItem) {
	defer s.wg.Done()
	defer func() {
		s.mu.Lock()
		delete(s.pending, key)
		s.mu.Unlock()
		close(it.done)
	}()
	rot := it.rot
	start := time.Now()
	backoff := 250 * time.Millisecond
	for attempt := 1; ; attempt++ {
		select {
		case <-time.After(backoff):
		case <-it.kick:
		case <-s.stop:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err := s.store.SettleRotation(ctx, rot)
		cancel()
		switch {
		case err == nil:
			s.log.Info("rotation settled after a store fault: the grant keeps its upstream tokens and the client's refresh token works",
				"grant", rot.GrantID[:8], "upstream_refreshed", rot.Upstream != nil, "attempts", attempt, "after", time.Since(start).Round(time.Millisecond).String())
			return
		case errors.Is(err, store.ErrUpstreamChanged):
			s.log.Warn("rotation settled: the grant's upstream tokens were replaced meanwhile; this upstream result is dropped", "grant", rot.GrantID[:8])
			return
		case errors.Is(err, store.ErrNotFound):
			s.log.Warn("rotation settled: the grant was revoked meanwhile", "grant", rot.GrantID[:8])
			if rot.Upstream != nil {
				s.revokeUpstream(context.Background(), rot.GrantID, rot.Upstream.RefreshToken)
			}
			return
		}
		if attempt >= s.opts.SettleAttempts || time.Since(start) >= s.opts.SettleFor {
			s.log.Error("rotation could not be saved: giving up (the client may have to sign in again)", "grant", rot.GrantID[:8],
				"upstream_refreshed", rot.Upstream != nil, "attempts", attempt, "after", time.Since(start).Round(time.Second).String(), "err", err)
			return
		}
		s.mu.Lock()
		stopped := s.stopped
		s.mu.Unlock()
		if stopped {
			s.log.Error("rotation not settled before shutdown (the store is still failing)", "grant", rot.GrantID[:8], "upstream_refreshed", rot.Upstream != nil, "err", err)
			return
		}
		s.log.Warn("rotation not settled yet: store still failing; retrying", "grant", rot.GrantID[:8], "attempt", attempt, "err", err)
		backoff = min(2*backoff, 8*time.Second)
	}
}

// wait reports whether a settle of rt was pending; if so it nudges it and waits (until deadline).
func (s *settler) wait(ctx context.Context, rt string, deadline time.Time) bool {
	s.mu.Lock()
	it, ok := s.pending[store.HashKey(rt)]
	s.mu.Unlock()
	if !ok {
		return false
	}
	select {
	case it.kick <- struct{}{}:
	default:
	}
	t := time.NewTimer(max(0, time.Until(deadline)))
	defer t.Stop()
	select {
	case <-it.done:
	case <-t.C:
	case <-ctx.Done():
	}
	return true
}

// close tries every pending settle once more now and waits for them until ctx ends.
func (s *settler) close(ctx context.Context) {
	s.mu.Lock()
	if !s.stopped {
		s.stopped = true
		close(s.stop)
	}
	s.mu.Unlock()
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
	}
}
