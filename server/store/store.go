package store

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/cnpg-mcp/cnpg-mcp/server/store/seal"
)

// Clients stores registered clients.
type Clients interface {
	// CreateClient stores a new client; it expires at c.UnusedUntil unless KeepClient is called.
	CreateClient(ctx context.Context, c Client) error
	// KeepClient clears UnusedUntil: the client completed an authorization and is kept.
	KeepClient(ctx context.Context, c Client) error
	GetClient(ctx context.Context, id string) (Client, error)
	// PutClientMetadata caches a Client ID Metadata Document client until exp.
	PutClientMetadata(ctx context.Context, c Client, exp time.Time) error
	DeleteClient(ctx context.Context, id string) error
}

// Transactions stores pending authorization requests, consent CSRF records and upstream sessions.
type Transactions interface {
	PutTransaction(ctx context.Context, t Transaction) error
	GetTransaction(ctx context.Context, id string) (Transaction, error)
	TakeTransaction(ctx context.Context, id string) (Transaction, error)
	PutCSRF(ctx context.Context, token string, c CSRF) error
	TakeCSRF(ctx context.Context, token string) (CSRF, error)
	PutUpstreamSession(ctx context.Context, state string, s UpstreamSession) error
	TakeUpstreamSession(ctx context.Context, state string) (UpstreamSession, error)
}

// Codes stores authorization codes by hash.
type Codes interface {
	PutCode(ctx context.Context, code string, c Code) error
	// IssueCode stores a new grant and its authorization code together (the callback's commit).
	IssueCode(ctx context.Context, g Grant, code string, c Code) error
	// GetCode returns the code and when it was redeemed (zero if not yet).
	GetCode(ctx context.Context, code string) (Code, time.Time, error)
	// RedeemCode is the code exchange's store work as one transaction (see Redemption): of
	// concurrent redemptions exactly one commits, the others get ErrCodeUsed. ErrNotFound: the code
	// is unknown or expired; ErrGrantNotFound: its grant was revoked (nothing is written then).
	RedeemCode(ctx context.Context, r Redemption) error
}

// Grants stores grants with sealed upstream tokens.
type Grants interface {
	CreateGrant(ctx context.Context, g Grant) error
	GetGrant(ctx context.Context, id string) (Grant, error)
	// UpdateGrant rewrites a live grant; it never resurrects a revoked one (ErrNotFound).
	UpdateGrant(ctx context.Context, g Grant) error
	RevokeGrant(ctx context.Context, id string) error
	GrantActive(ctx context.Context, id string) (bool, error)
	// GrantIdentity is GrantActive for a server that impersonates users: one read that returns the
	// grant's upstream identity (opened; zero when none was recorded), or ErrNotFound when the
	// grant was revoked or has expired.
	GrantIdentity(ctx context.Context, id string) (UpstreamIdentity, error)
}

// RefreshTokens stores refresh tokens by hash; refresh.go has the rotation.
type RefreshTokens interface {
	PutRefreshToken(ctx context.Context, token string, r RefreshToken) error
	// GetRefreshToken returns the record and when it was used (zero if not yet).
	GetRefreshToken(ctx context.Context, token string) (RefreshToken, time.Time, error)
	// RefreshState reads a token with what the token endpoint needs to judge a second use.
	RefreshState(ctx context.Context, token string) (RefreshState, error)
	// ClaimRefreshToken reserves an unused token for an upstream refresh until `until` and returns
	// its grant as it is now (ErrRefreshUsed, *ClaimedError, ErrNotFound, ErrGrantNotFound).
	ClaimRefreshToken(ctx context.Context, token, claimID string, until time.Time) (Grant, error)
	// ReleaseRefreshClaim gives a claim back early (the upstream was unreachable).
	ReleaseRefreshClaim(ctx context.Context, token, claimID string) error
	// RotateRefreshToken commits a rotation whole or not at all (see Rotation).
	RotateRefreshToken(ctx context.Context, r Rotation) error
	// SettleRotation finishes a rotation whose commit failed and whose answer was never delivered
	// (see Rotation).
	SettleRotation(ctx context.Context, r Rotation) error
}

// Challenges remembers the PKCE challenges of redeemed codes, by hash, so that a client sending the
// same challenge again (a constant verifier defeats PKCE) is noticed (RFC 9700 §2.1.1, PKCE-08).
type Challenges interface {
	RememberChallenge(ctx context.Context, challenge string, until time.Time) error
	ChallengeSeen(ctx context.Context, challenge string) (bool, error)
}

// Store is everything the OAuth proxy keeps.
type Store interface {
	Clients
	Transactions
	Codes
	Grants
	RefreshTokens
	Challenges
	Sweep(ctx context.Context) (int, error)
	// Ping reports whether the backend can serve requests, naming it and what is wrong.
	Ping(ctx context.Context) error
	// Backend names the backend (driver and location, never a password).
	Backend() string
	Close() error
}

// New builds the typed store on a backend. now is the clock (time.Now when nil).
func New(kv KV, sealer *seal.Sealer, now func() time.Time) Store {
	if now == nil {
		now = time.Now
	}
	return &typed{kv: kv, sealer: sealer, now: now}
}

type typed struct {
	kv     KV
	sealer *seal.Sealer
	now    func() time.Time
}

// HashKey is the storage key for a secret (code, refresh token, CSRF token, upstream state).
func HashKey(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

func (s *typed) create(ctx context.Context, b Bucket, key string, v any, exp time.Time) error {
	raw, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode %s: %w", b, err)
	}
	return s.kv.Create(ctx, b, key, raw, exp, s.now())
}

func decodeInto(b Bucket, e Entry, err error, v any) error {
	if err != nil {
		return err
	}
	if err := json.Unmarshal(e.Value, v); err != nil {
		return fmt.Errorf("decode %s record: %w", b, err)
	}
	return nil
}

func (s *typed) CreateClient(ctx context.Context, c Client) error {
	return s.create(ctx, BucketClients, c.ID, c, c.UnusedUntil)
}

func (s *typed) KeepClient(ctx context.Context, c Client) error {
	c.UnusedUntil = time.Time{}
	raw, err := json.Marshal(c)
	if err != nil {
		return err
	}
	return s.kv.Replace(ctx, BucketClients, c.ID, raw, time.Time{}, s.now())
}

func (s *typed) PutClientMetadata(ctx context.Context, c Client, exp time.Time) error {
	raw, err := json.Marshal(c)
	if err != nil {
		return err
	}
	err = s.kv.Replace(ctx, BucketClients, c.ID, raw, exp, s.now())
	if errors.Is(err, ErrNotFound) {
		err = s.kv.Create(ctx, BucketClients, c.ID, raw, exp, s.now())
	}
	return err
}

func (s *typed) GetClient(ctx context.Context, id string) (Client, error) {
	var c Client
	e, err := s.kv.Get(ctx, BucketClients, id, s.now())
	return c, decodeInto(BucketClients, e, err, &c)
}

func (s *typed) DeleteClient(ctx context.Context, id string) error {
	return s.kv.Delete(ctx, BucketClients, id)
}

func (s *typed) PutTransaction(ctx context.Context, t Transaction) error {
	return s.create(ctx, BucketTxns, t.ID, t, t.ExpiresAt)
}

func (s *typed) GetTransaction(ctx context.Context, id string) (Transaction, error) {
	var t Transaction
	e, err := s.kv.Get(ctx, BucketTxns, id, s.now())
	return t, decodeInto(BucketTxns, e, err, &t)
}

func (s *typed) TakeTransaction(ctx context.Context, id string) (Transaction, error) {
	var t Transaction
	e, err := s.kv.Take(ctx, BucketTxns, id, s.now())
	return t, decodeInto(BucketTxns, e, err, &t)
}

func (s *typed) PutCSRF(ctx context.Context, token string, c CSRF) error {
	return s.create(ctx, BucketCSRF, HashKey(token), c, c.ExpiresAt)
}

func (s *typed) TakeCSRF(ctx context.Context, token string) (CSRF, error) {
	var c CSRF
	e, err := s.kv.Take(ctx, BucketCSRF, HashKey(token), s.now())
	return c, decodeInto(BucketCSRF, e, err, &c)
}

func (s *typed) PutUpstreamSession(ctx context.Context, state string, u UpstreamSession) error {
	return s.create(ctx, BucketUpstream, HashKey(state), u, u.ExpiresAt)
}

func (s *typed) TakeUpstreamSession(ctx context.Context, state string) (UpstreamSession, error) {
	var u UpstreamSession
	e, err := s.kv.Take(ctx, BucketUpstream, HashKey(state), s.now())
	return u, decodeInto(BucketUpstream, e, err, &u)
}

func (s *typed) PutCode(ctx context.Context, code string, c Code) error {
	return s.create(ctx, BucketCodes, HashKey(code), c, c.ExpiresAt)
}

func (s *typed) GetCode(ctx context.Context, code string) (Code, time.Time, error) {
	var c Code
	e, err := s.kv.Get(ctx, BucketCodes, HashKey(code), s.now())
	return c, e.UsedAt, decodeInto(BucketCodes, e, err, &c)
}

func challengeKey(c string) string { return HashKey("pkce-challenge:" + c) }

func (s *typed) RememberChallenge(ctx context.Context, challenge string, until time.Time) error {
	err := s.kv.Create(ctx, BucketChallenges, challengeKey(challenge), []byte("{}"), until, s.now())
	if errors.Is(err, ErrExists) {
		return nil
	}
	return err
}

func (s *typed) ChallengeSeen(ctx context.Context, challenge string) (bool, error) {
	return s.kv.Exists(ctx, BucketChallenges, challengeKey(challenge), s.now())
}

func grantAD(id string) []byte { return []byte("grants/" + id) }

func identityAD(id string) []byte { return []byte("grants/" + id + "/identity") }

func (s *typed) sealGrant(g *Grant) error {
	if g.Identity != nil && g.identityFrom != g.Identity {
		sealed, err := s.sealIdentity(g.ID, g.Identity)
		if err != nil {
			return err
		}
		g.SealedIdentity, g.identityFrom = sealed, g.Identity
	}
	if g.sealedFrom != nil && *g.sealedFrom == g.Upstream && len(g.Sealed) > 0 {
		return nil
	}
	raw, err := json.Marshal(g.Upstream)
	if err != nil {
		return err
	}
	g.Sealed, err = s.sealer.Seal(raw, grantAD(g.ID))
	u := g.Upstream
	g.sealedFrom = &u
	return err
}

// sealIdentity seals a grant's upstream identity (nil: nothing to seal).
func (s *typed) sealIdentity(grantID string, id *UpstreamIdentity) ([]byte, error) {
	if id == nil {
		return nil, nil
	}
	raw, err := json.Marshal(id)
	if err != nil {
		return nil, err
	}
	sealed, err := s.sealer.Seal(raw, identityAD(grantID))
	if err != nil {
		return nil, fmt.Errorf("seal upstream identity: %w", err)
	}
	return sealed, nil
}

// openIdentity opens a grant's sealed upstream identity into g.Identity (nil when none was kept).
func (s *typed) openIdentity(g *Grant) error {
	if len(g.SealedIdentity) == 0 {
		return nil
	}
	raw, err := s.sealer.Open(g.SealedIdentity, identityAD(g.ID))
	if err != nil {
		return fmt.Errorf("grant %s: upstream identity cannot be opened with the configured sealing keys (was a sealing key removed?): %w", g.ID, err)
	}
	var id UpstreamIdentity
	if err := json.Unmarshal(raw, &id); err != nil {
		return fmt.Errorf("grant %s: decode upstream identity: %w", g.ID, err)
	}
	g.Identity, g.identityFrom = &id, &id
	return nil
}

func (s *typed) CreateGrant(ctx context.Context, g Grant) error {
	if err := s.sealGrant(&g); err != nil {
		return fmt.Errorf("seal upstream tokens: %w", err)
	}
	return s.create(ctx, BucketGrants, g.ID, g, g.ExpiresAt)
}

func (s *typed) UpdateGrant(ctx context.Context, g Grant) error {
	if err := s.sealGrant(&g); err != nil {
		return fmt.Errorf("seal upstream tokens: %w", err)
	}
	raw, err := json.Marshal(g)
	if err != nil {
		return err
	}
	return s.kv.Replace(ctx, BucketGrants, g.ID, raw, g.ExpiresAt, s.now())
}

func (s *typed) GetGrant(ctx context.Context, id string) (Grant, error) {
	var g Grant
	e, err := s.kv.Get(ctx, BucketGrants, id, s.now())
	if err := decodeInto(BucketGrants, e, err, &g); err != nil {
		return Grant{}, err
	}
	if g.ID != id {
		return Grant{}, fmt.Errorf("grant %s: the record names grant %s (moved between keys?)", id, g.ID)
	}
	// The additional data is the record key we were asked for, never the id read from the record.
	if err := s.openGrant(&g); err != nil {
		return Grant{}, err
	}
	return g, nil
}

func (s *typed) RevokeGrant(ctx context.Context, id string) error {
	return s.kv.Delete(ctx, BucketGrants, id)
}

func (s *typed) GrantActive(ctx context.Context, id string) (bool, error) {
	return s.kv.Exists(ctx, BucketGrants, id, s.now())
}

func (s *typed) GrantIdentity(ctx context.Context, id string) (UpstreamIdentity, error) {
	var g Grant
	e, err := s.kv.Get(ctx, BucketGrants, id, s.now())
	if err := decodeInto(BucketGrants, e, err, &g); err != nil {
		return UpstreamIdentity{}, err
	}
	if g.ID != id {
		return UpstreamIdentity{}, fmt.Errorf("grant %s: the record names grant %s (moved between keys?)", id, g.ID)
	}
	if err := s.openIdentity(&g); err != nil || g.Identity == nil {
		return UpstreamIdentity{}, err
	}
	return *g.Identity, nil
}

func (s *typed) PutRefreshToken(ctx context.Context, token string, r RefreshToken) error {
	return s.create(ctx, BucketRefresh, HashKey(token), r, r.Expiry())
}

func (s *typed) GetRefreshToken(ctx context.Context, token string) (RefreshToken, time.Time, error) {
	var r RefreshToken
	e, err := s.kv.Get(ctx, BucketRefresh, HashKey(token), s.now())
	return r, e.UsedAt, decodeInto(BucketRefresh, e, err, &r)
}

func (s *typed) Sweep(ctx context.Context) (int, error) { return s.kv.Sweep(ctx, s.now()) }

func (s *typed) Ping(ctx context.Context) error { return s.kv.Ping(ctx) }

func (s *typed) Backend() string { return s.kv.String() }

func (s *typed) Close() error { return s.kv.Close() }
