package store

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Errors of the atomic code and refresh operations. Each is a verdict the operation reached inside
// its transaction; any other error is a storage fault (the caller answers 503 and keeps state).
var (
	// ErrGrantNotFound: the grant was revoked or has expired (errors.Is(err, ErrNotFound) holds).
	ErrGrantNotFound = fmt.Errorf("%w: grant", ErrNotFound)
	// ErrCodeUsed: the authorization code was redeemed before.
	ErrCodeUsed = errors.New("store: authorization code already redeemed")
	// ErrRefreshUsed: the refresh token was rotated out by an earlier (or concurrent) rotation.
	ErrRefreshUsed = errors.New("store: refresh token already used")
	// ErrUpstreamChanged: the grant's upstream tokens were replaced after the upstream refresh
	// that produced Rotation.Upstream started, so these newer-looking tokens are in fact stale.
	ErrUpstreamChanged = errors.New("store: the grant's upstream tokens changed meanwhile")
)

// ClaimedError: another caller holds a live claim on the refresh token (an upstream refresh is in
// progress) until Until.
type ClaimedError struct{ Until time.Time }

func (e *ClaimedError) Error() string {
	return "store: refresh token claimed by a refresh in progress until " + e.Until.UTC().Format(time.RFC3339Nano)
}

// Redemption is the code exchange's store work (RedeemCode): the code is marked redeemed, the grant
// gets its family expiry, the first refresh token is stored, the client's registration is kept and
// the PKCE challenge remembered — together or not at all.
type Redemption struct {
	Code           string
	RedemptionID   string // random per redemption: a retried commit recognizes its own success
	GrantID        string
	GrantExpiresAt time.Time
	RefreshToken   string // "" when the client gets none
	Refresh        RefreshToken
	KeepClient     string // the client whose registration is now kept ("" none)
	Challenge      string // the redeemed code's PKCE challenge, remembered until ChallengeUntil
	ChallengeUntil time.Time
}

// IssueCode implements Codes.
func (s *typed) IssueCode(ctx context.Context, g Grant, code string, c Code) error {
	if err := s.sealGrant(&g); err != nil {
		return fmt.Errorf("seal upstream tokens: %w", err)
	}
	return s.kv.Update(ctx, s.now(), func(tx KVTx) error {
		if _, err := tx.Get(BucketGrants, g.ID); err == nil {
			return ErrExists
		} else if !errors.Is(err, ErrNotFound) {
			return err
		}
		if err := putJSON(tx, BucketGrants, g.ID, g, g.ExpiresAt, time.Time{}); err != nil {
			return err
		}
		return putJSON(tx, BucketCodes, HashKey(code), c, c.ExpiresAt, time.Time{})
	})
}

// RedeemCode implements Codes.
func (s *typed) RedeemCode(ctx context.Context, r Redemption) error {
	now := s.now()
	return s.kv.Update(ctx, now, func(tx KVTx) error {
		key := HashKey(r.Code)
		ce, err := tx.Get(BucketCodes, key)
		if err != nil {
			return err
		}
		var c Code
		if err := json.Unmarshal(ce.Value, &c); err != nil {
			return fmt.Errorf("decode code record: %w", err)
		}
		if !ce.UsedAt.IsZero() {
			if r.RedemptionID != "" && c.RedemptionID == r.RedemptionID {
				return nil // this redemption committed before (a retried commit)
			}
			return ErrCodeUsed
		}
		g, ge, err := getGrantRecord(tx, r.GrantID)
		if err != nil {
			return err
		}
		c.RedemptionID = r.RedemptionID
		if err := putJSON(tx, BucketCodes, key, c, ce.ExpiresAt, now); err != nil {
			return err
		}
		g.ExpiresAt = r.GrantExpiresAt
		if err := putJSON(tx, BucketGrants, r.GrantID, g, g.ExpiresAt, ge.UsedAt); err != nil {
			return err
		}
		if r.RefreshToken != "" {
			if err := putJSON(tx, BucketRefresh, HashKey(r.RefreshToken), r.Refresh, r.Refresh.Expiry(), time.Time{}); err != nil {
				return err
			}
		}
		if r.KeepClient != "" {
			switch e, err := tx.Get(BucketClients, r.KeepClient); {
			case errors.Is(err, ErrNotFound): // forgotten meanwhile: nothing to keep
			case err != nil:
				return err
			default:
				var c Client
				if err := json.Unmarshal(e.Value, &c); err != nil {
					return fmt.Errorf("decode client record: %w", err)
				}
				c.UnusedUntil = time.Time{}
				if err := putJSON(tx, BucketClients, r.KeepClient, c, time.Time{}, e.UsedAt); err != nil {
					return err
				}
			}
		}
		if r.Challenge != "" {
			ck := challengeKey(r.Challenge)
			switch _, err := tx.Get(BucketChallenges, ck); {
			case errors.Is(err, ErrNotFound):
				if err := tx.Put(BucketChallenges, ck, Entry{Value: []byte("{}"), ExpiresAt: r.ChallengeUntil}); err != nil {
					return err
				}
			case err != nil:
				return err
			}
		}
		return nil
	})
}

// Rotation is one refresh-token rotation (RotateRefreshToken): the presented token is marked used
// and remembers its successor and the sealed answer, the successor is stored, and — when the
// upstream was refreshed — the grant gets the new sealed upstream tokens and a new upstream
// version, all in one transaction.
//
// The commit refuses (and writes nothing) when the token was used meanwhile (ErrRefreshUsed; unless
// RotationID matches: the same rotation committed before, e.g. when the connection died after the
// COMMIT, and nil is returned), when another caller holds a live claim (*ClaimedError), when the
// grant is gone (ErrGrantNotFound), or when new upstream tokens are stale (ErrUpstreamChanged).
//
// SettleRotation is the same rotation after a failed commit, when its answer was never delivered
// (the client got 503). It never rotates: it saves the upstream tokens to the grant and releases
// the claim, so the token the client still holds stays usable (unless the grant's upstream version
// moved on: ErrUpstreamChanged). If the rotation did commit after all, it keeps the sealed answer
// for a retry until ReplayUntil (callers pass the old token's own expiry: nobody has received the
// successor, so handing it to the same client later is not a second use).
type Rotation struct {
	Token      string // the refresh token presented (rotated out)
	RotationID string // random per rotation: makes the commit recognizable and idempotent
	ClaimID    string // the claim held for the upstream refresh ("" without one)
	GrantID    string
	// Upstream holds the upstream's new tokens (nil: unchanged) and FromVersion the grant's
	// UpstreamVersion they were refreshed from.
	Upstream    *UpstreamTokens
	FromVersion int64
	// Identity is the user's upstream identity read with the new upstream tokens (nil: unchanged;
	// only stored together with Upstream).
	Identity    *UpstreamIdentity
	Next        string // the new refresh token
	NextRecord  RefreshToken
	Replay      []byte // the answer sealed with SealReplay(Token, …), nil for none
	ReplayUntil time.Time
}

// RefreshState is a refresh token's record as the token endpoint reads it before acting.
type RefreshState struct {
	Record RefreshToken
	UsedAt time.Time // zero: not rotated yet
	// SuccessorUsed is set for a rotated token whose successor has been used (rotated or claimed)
	// or is gone: the client has moved on, so a retry with the old token cannot be a lost answer.
	SuccessorUsed bool
}

// Claimed reports whether another refresh holds a live claim on the token at now.
func (r RefreshToken) Claimed(now time.Time) bool {
	return r.ClaimID != "" && r.ClaimedUntil.After(now)
}

func getGrantRecord(tx KVTx, id string) (Grant, Entry, error) {
	e, err := tx.Get(BucketGrants, id)
	if errors.Is(err, ErrNotFound) {
		return Grant{}, e, ErrGrantNotFound
	}
	if err != nil {
		return Grant{}, e, err
	}
	var g Grant
	if err := json.Unmarshal(e.Value, &g); err != nil {
		return Grant{}, e, fmt.Errorf("decode grant record: %w", err)
	}
	if g.ID != id {
		return Grant{}, e, fmt.Errorf("grant %s: the record names grant %s (moved between keys?)", id, g.ID)
	}
	return g, e, nil
}

func getRefreshRecord(tx KVTx, key string) (RefreshToken, Entry, error) {
	e, err := tx.Get(BucketRefresh, key)
	if err != nil {
		return RefreshToken{}, e, err
	}
	var r RefreshToken
	if err := json.Unmarshal(e.Value, &r); err != nil {
		return RefreshToken{}, e, fmt.Errorf("decode refresh record: %w", err)
	}
	return r, e, nil
}

func putJSON(tx KVTx, b Bucket, key string, v any, exp, used time.Time) error {
	raw, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode %s: %w", b, err)
	}
	return tx.Put(b, key, Entry{Value: raw, ExpiresAt: exp, UsedAt: used})
}

// RefreshState implements RefreshTokens.
func (s *typed) RefreshState(ctx context.Context, token string) (RefreshState, error) {
	now := s.now()
	var st RefreshState
	e, err := s.kv.Get(ctx, BucketRefresh, HashKey(token), now)
	if err := decodeInto(BucketRefresh, e, err, &st.Record); err != nil {
		return RefreshState{}, err
	}
	st.UsedAt = e.UsedAt
	if st.UsedAt.IsZero() {
		return st, nil
	}
	if st.Record.Successor == "" {
		st.SuccessorUsed = true
		return st, nil
	}
	var next RefreshToken
	ne, err := s.kv.Get(ctx, BucketRefresh, st.Record.Successor, now)
	switch err := decodeInto(BucketRefresh, ne, err, &next); {
	case errors.Is(err, ErrNotFound):
		st.SuccessorUsed = true
	case err != nil:
		return RefreshState{}, err
	default:
		st.SuccessorUsed = !ne.UsedAt.IsZero() || next.Claimed(now)
	}
	return st, nil
}

// ClaimRefreshToken implements RefreshTokens.
func (s *typed) ClaimRefreshToken(ctx context.Context, token, claimID string, until time.Time) (Grant, error) {
	now := s.now()
	var g Grant
	err := s.kv.Update(ctx, now, func(tx KVTx) error {
		key := HashKey(token)
		rec, e, err := getRefreshRecord(tx, key)
		if err != nil {
			return err
		}
		if !e.UsedAt.IsZero() {
			return ErrRefreshUsed
		}
		if rec.Claimed(now) && rec.ClaimID != claimID {
			return &ClaimedError{Until: rec.ClaimedUntil}
		}
		g, _, err = getGrantRecord(tx, rec.GrantID)
		if err != nil {
			return err
		}
		rec.ClaimID, rec.ClaimedUntil = claimID, until
		return putJSON(tx, BucketRefresh, key, rec, e.ExpiresAt, time.Time{})
	})
	if err != nil {
		return Grant{}, err
	}
	return g, s.openGrant(&g)
}

// ReleaseRefreshClaim implements RefreshTokens.
func (s *typed) ReleaseRefreshClaim(ctx context.Context, token, claimID string) error {
	err := s.kv.Update(ctx, s.now(), func(tx KVTx) error {
		key := HashKey(token)
		rec, e, err := getRefreshRecord(tx, key)
		if err != nil {
			return err
		}
		if !e.UsedAt.IsZero() || rec.ClaimID != claimID {
			return nil
		}
		rec.ClaimID, rec.ClaimedUntil = "", time.Time{}
		return putJSON(tx, BucketRefresh, key, rec, e.ExpiresAt, time.Time{})
	})
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	return err
}

// sealUpstream seals new upstream tokens for a grant (outside the transaction: it may run twice).
func (s *typed) sealUpstream(grantID string, u *UpstreamTokens) ([]byte, error) {
	if u == nil {
		return nil, nil
	}
	raw, err := json.Marshal(u)
	if err != nil {
		return nil, err
	}
	sealed, err := s.sealer.Seal(raw, grantAD(grantID))
	if err != nil {
		return nil, fmt.Errorf("seal upstream tokens: %w", err)
	}
	return sealed, nil
}

// sealRotation seals a rotation's new upstream tokens and identity (outside the transaction).
func (s *typed) sealRotation(r Rotation) (tokens, identity []byte, err error) {
	if tokens, err = s.sealUpstream(r.GrantID, r.Upstream); err != nil || r.Upstream == nil {
		return tokens, nil, err
	}
	identity, err = s.sealIdentity(r.GrantID, r.Identity)
	return tokens, identity, err
}

// newUpstream puts a rotation's sealed upstream tokens (and identity, when read) on the grant.
func newUpstream(g *Grant, r Rotation, tokens, identity []byte) {
	g.Sealed, g.UpstreamVersion, g.UpstreamRotation = tokens, g.UpstreamVersion+1, r.RotationID
	if identity != nil {
		g.SealedIdentity = identity
	}
}

// RotateRefreshToken implements RefreshTokens.
func (s *typed) RotateRefreshToken(ctx context.Context, r Rotation) error {
	sealed, sealedID, err := s.sealRotation(r)
	if err != nil {
		return err
	}
	now := s.now()
	return s.kv.Update(ctx, now, func(tx KVTx) error {
		key := HashKey(r.Token)
		rec, e, err := getRefreshRecord(tx, key)
		if err != nil {
			return err
		}
		if !e.UsedAt.IsZero() {
			if rec.RotationID == r.RotationID {
				return nil // this rotation committed before (a retried commit)
			}
			return ErrRefreshUsed
		}
		if rec.Claimed(now) && rec.ClaimID != r.ClaimID {
			return &ClaimedError{Until: rec.ClaimedUntil}
		}
		if rec.GrantID != r.GrantID {
			return fmt.Errorf("refresh token belongs to grant %.8s, not %.8s", rec.GrantID, r.GrantID)
		}
		g, ge, err := getGrantRecord(tx, r.GrantID)
		if err != nil {
			return err
		}
		if r.Upstream != nil {
			if g.UpstreamVersion != r.FromVersion {
				return ErrUpstreamChanged
			}
			newUpstream(&g, r, sealed, sealedID)
		}
		g.RefreshedAt = now
		if err := putJSON(tx, BucketGrants, r.GrantID, g, ge.ExpiresAt, ge.UsedAt); err != nil {
			return err
		}
		rec.ClaimID, rec.ClaimedUntil = "", time.Time{}
		rec.RotationID, rec.Successor, rec.Replay, rec.ReplayUntil = r.RotationID, HashKey(r.Next), r.Replay, r.ReplayUntil
		if err := putJSON(tx, BucketRefresh, key, rec, e.ExpiresAt, now); err != nil {
			return err
		}
		return putJSON(tx, BucketRefresh, HashKey(r.Next), r.NextRecord, r.NextRecord.Expiry(), time.Time{})
	})
}

// SettleRotation implements RefreshTokens.
func (s *typed) SettleRotation(ctx context.Context, r Rotation) error {
	sealed, sealedID, err := s.sealRotation(r)
	if err != nil {
		return err
	}
	now := s.now()
	return s.kv.Update(ctx, now, func(tx KVTx) error {
		g, ge, err := getGrantRecord(tx, r.GrantID)
		if err != nil {
			return err
		}
		key := HashKey(r.Token)
		rec, e, err := getRefreshRecord(tx, key)
		if err != nil && !errors.Is(err, ErrNotFound) {
			return err
		}
		found := err == nil
		rotated := found && !e.UsedAt.IsZero() && rec.RotationID == r.RotationID
		if r.Upstream != nil && !rotated && g.UpstreamRotation != r.RotationID {
			if g.UpstreamVersion != r.FromVersion {
				return ErrUpstreamChanged
			}
			newUpstream(&g, r, sealed, sealedID)
			if err := putJSON(tx, BucketGrants, r.GrantID, g, ge.ExpiresAt, ge.UsedAt); err != nil {
				return err
			}
			if found && e.UsedAt.IsZero() && rec.ClaimID == r.ClaimID && r.ClaimID != "" {
				rec.ClaimID, rec.ClaimedUntil = "", time.Time{}
				return putJSON(tx, BucketRefresh, key, rec, e.ExpiresAt, time.Time{})
			}
			return nil
		}
		if rotated && r.ReplayUntil.After(rec.ReplayUntil) {
			rec.ReplayUntil = r.ReplayUntil
			return putJSON(tx, BucketRefresh, key, rec, e.ExpiresAt, e.UsedAt)
		}
		return nil
	})
}

// openGrant opens a grant's sealed upstream tokens and identity.
func (s *typed) openGrant(g *Grant) error {
	if err := s.openIdentity(g); err != nil {
		return err
	}
	raw, err := s.sealer.Open(g.Sealed, grantAD(g.ID))
	if err != nil {
		return fmt.Errorf("grant %s: upstream tokens cannot be opened with the configured sealing keys (was a sealing key removed?): %w", g.ID, err)
	}
	if err := json.Unmarshal(raw, &g.Upstream); err != nil {
		return fmt.Errorf("grant %s: decode upstream tokens: %w", g.ID, err)
	}
	u := g.Upstream
	g.sealedFrom = &u
	return nil
}

// Replays are sealed with AES-256-GCM under a key derived from the refresh token they answer
// (HKDF-SHA256): only a request presenting that token can open one. The store keeps only the
// token's SHA-256, so neither a copy of the store nor the sealing keys reveal the successor token
// or the access token kept for the replay.
const replayInfo = "cnpg-mcp refresh replay v1"

func replayAEAD(token string) (cipher.AEAD, error) {
	key, err := hkdf.Key(sha256.New, []byte(token), nil, replayInfo, 32)
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

func replayAD(token string) []byte { return []byte("refresh-replay/" + HashKey(token)) }

// SealReplay seals a rotation's answer for a retry with token.
func SealReplay(token string, plaintext []byte) ([]byte, error) {
	aead, err := replayAEAD(token)
	if err != nil {
		return nil, err
	}
	nonce := make([]byte, aead.NonceSize(), aead.NonceSize()+len(plaintext)+aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	return aead.Seal(nonce, nonce, plaintext, replayAD(token)), nil
}

// OpenReplay opens what SealReplay sealed for token.
func OpenReplay(token string, sealed []byte) ([]byte, error) {
	aead, err := replayAEAD(token)
	if err != nil {
		return nil, err
	}
	if len(sealed) < aead.NonceSize() {
		return nil, errors.New("store: sealed replay too short")
	}
	out, err := aead.Open(nil, sealed[:aead.NonceSize()], sealed[aead.NonceSize():], replayAD(token))
	if err != nil {
		return nil, errors.New("store: sealed replay does not open with this refresh token")
	}
	return out, nil
}
