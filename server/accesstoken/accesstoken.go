// Package accesstoken issues and verifies the server's own access tokens: RFC 9068 JWTs signed with
// HS256 (golang-jwt), header `typ: at+jwt` and `kid`, claims iss (the canonical issuer), aud (the MCP
// resource URL), sub (the upstream subject), client_id, scope, exp, iat, jti and sid (the grant).
//
// Keys come from configuration and are never derived from the upstream client secret. The first key
// signs; the others only verify, each until its NotAfter (rotation with a grace period: add the new key
// first, keep the old one for at least one access-token lifetime).
//
// Verify checks, in order (tests in accesstoken_test.go): three-part JWS (JWE and other shapes refused),
// alg HS256 only (alg=none and RS/ES refused), typ at+jwt (so an id_token or another JWT type is
// refused), known kid within its validity, signature, iss exact, aud exact, exp present and not passed
// (leeway configurable, default 0), iat not in the future, and finally that the grant (sid) has not been
// revoked, through GrantChecker — revoking a grant therefore kills all its access tokens at once. When
// the grant cannot be looked up (the store is down) Verify returns ErrUnavailable, not *Error: that is
// no verdict on the token.
package accesstoken

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/cnpg-mcp/cnpg-mcp/server/identity"
)

// Key is an HMAC key with its key ID.
type Key struct {
	ID       string
	Secret   []byte    // at least 32 bytes
	NotAfter time.Time // verify-only keys are refused after this (zero: no limit)
}

// GrantChecker tells whether a grant is still active (store.Grants satisfies it).
type GrantChecker interface {
	GrantActive(ctx context.Context, id string) (bool, error)
}

// KubeUsers resolves the Kubernetes user a grant's tool calls act as, for a server that impersonates
// users; it replaces GrantActive (one store read for both). active=false: the grant was revoked or
// has expired. A grant whose claims cannot be mapped is active with KubeUser.Err set.
type KubeUsers interface {
	KubeUser(ctx context.Context, grantID string) (u identity.KubeUser, active bool, err error)
}

// Options configures Tokens.
type Options struct {
	Issuer   string // canonical issuer, byte-identical to the metadata
	Audience string // the MCP resource URL
	Keys     []Key  // Keys[0] signs
	Grants   GrantChecker
	// KubeUsers, when set, is asked instead of Grants.GrantActive, and the access token's claims
	// carry the Kubernetes user (Claims.Kube).
	KubeUsers KubeUsers
	Leeway    time.Duration
	Now       func() time.Time
	// CacheSize bounds the verified-token cache (cache.go): 0 means DefaultCacheSize, a negative
	// value turns the cache off.
	CacheSize int
}

// Claims are the facts an access token carries.
type Claims struct {
	Subject   string
	ClientID  string
	Scope     string // space-separated
	GrantID   string
	TokenID   string
	IssuedAt  time.Time
	ExpiresAt time.Time
	// Kube is the Kubernetes user of the grant (set by Verify with Options.KubeUsers).
	Kube *identity.KubeUser
}

// Scopes splits Scope.
func (c Claims) Scopes() []string { return strings.Fields(c.Scope) }

// Tokens issues and verifies access tokens.
type Tokens struct {
	o       Options
	headers map[string]*verifyKey // exact base64url protected header → key
	method  jwt.SigningMethod
	cache   *tokenCache // nil: off
}

type verifyKey struct {
	Key
	pool sync.Pool // of hmac hash.Hash
}

// New validates the options.
func New(o Options) (*Tokens, error) {
	if o.Issuer == "" || o.Audience == "" {
		return nil, errors.New("accesstoken: issuer and audience are required")
	}
	if len(o.Keys) == 0 {
		return nil, errors.New("accesstoken: at least one signing key is required")
	}
	if o.Grants == nil {
		return nil, errors.New("accesstoken: a grant checker is required")
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	t := &Tokens{o: o, headers: map[string]*verifyKey{}, method: jwt.SigningMethodHS256, cache: newTokenCache(o.CacheSize)}
	seen := map[string]bool{}
	for _, k := range o.Keys {
		if k.ID == "" {
			return nil, errors.New("accesstoken: every signing key needs an id (kid)")
		}
		if len(k.Secret) < 32 {
			return nil, fmt.Errorf("accesstoken: signing key %q must be at least 32 bytes, got %d", k.ID, len(k.Secret))
		}
		if seen[k.ID] {
			return nil, fmt.Errorf("accesstoken: duplicate signing key id %q", k.ID)
		}
		seen[k.ID] = true
		hdr, err := headerSegment(k.ID)
		if err != nil {
			return nil, err
		}
		vk := &verifyKey{Key: k}
		secret := k.Secret
		vk.pool.New = func() any { return hmac.New(sha256.New, secret) }
		t.headers[hdr] = vk
	}
	return t, nil
}

// claims is the JSON form; aud is a single string (RFC 9068 allows it and clients compare it as one).
type claims struct {
	Iss      string `json:"iss"`
	Sub      string `json:"sub"`
	Aud      string `json:"aud"`
	Exp      int64  `json:"exp"`
	Iat      int64  `json:"iat"`
	Jti      string `json:"jti"`
	ClientID string `json:"client_id"`
	Scope    string `json:"scope,omitempty"`
	Sid      string `json:"sid"`
}

func (c *claims) GetExpirationTime() (*jwt.NumericDate, error) { return date(c.Exp), nil }
func (c *claims) GetIssuedAt() (*jwt.NumericDate, error)       { return date(c.Iat), nil }
func (c *claims) GetNotBefore() (*jwt.NumericDate, error)      { return nil, nil }
func (c *claims) GetIssuer() (string, error)                   { return c.Iss, nil }
func (c *claims) GetSubject() (string, error)                  { return c.Sub, nil }
func (c *claims) GetAudience() (jwt.ClaimStrings, error)       { return jwt.ClaimStrings{c.Aud}, nil }

func date(s int64) *jwt.NumericDate {
	if s == 0 {
		return nil
	}
	return &jwt.NumericDate{Time: time.Unix(s, 0)}
}

// NewID returns 256 random bits, base64url.
func NewID() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// Issue signs a token for c. TokenID and IssuedAt are filled in when empty; ExpiresAt is required.
func (t *Tokens) Issue(c Claims) (string, Claims, error) {
	if c.ExpiresAt.IsZero() || c.GrantID == "" || c.ClientID == "" || c.Subject == "" {
		return "", c, errors.New("accesstoken: expiry, grant, client and subject are required")
	}
	if c.TokenID == "" {
		c.TokenID = NewID()
	}
	if c.IssuedAt.IsZero() {
		c.IssuedAt = t.o.Now()
	}
	k := t.o.Keys[0]
	tok := jwt.NewWithClaims(t.method, &claims{
		Iss: t.o.Issuer, Sub: c.Subject, Aud: t.o.Audience, Exp: c.ExpiresAt.Unix(), Iat: c.IssuedAt.Unix(),
		Jti: c.TokenID, ClientID: c.ClientID, Scope: c.Scope, Sid: c.GrantID,
	})
	setHeader(tok, k.ID)
	s, err := tok.SignedString(k.Secret)
	if err != nil {
		return "", c, fmt.Errorf("accesstoken: sign: %w", err)
	}
	c.IssuedAt = time.Unix(c.IssuedAt.Unix(), 0)
	c.ExpiresAt = time.Unix(c.ExpiresAt.Unix(), 0)
	return s, c, nil
}

func setHeader(tok *jwt.Token, kid string) {
	tok.Header["typ"] = "at+jwt"
	tok.Header["kid"] = kid
}

// headerSegment is the encoded protected header Issue produces for kid.
func headerSegment(kid string) (string, error) {
	tok := jwt.New(jwt.SigningMethodHS256)
	setHeader(tok, kid)
	s, err := tok.SigningString()
	if err != nil {
		return "", fmt.Errorf("accesstoken: header: %w", err)
	}
	hdr, _, _ := strings.Cut(s, ".")
	return hdr, nil
}

// ErrUnavailable means the token could not be judged: the grant store did not answer. It is no
// verdict on the token (the bearer check answers 503, never 401).
var ErrUnavailable = errors.New("access token: the grant store is unavailable")

// Error says why a token was refused; it never contains the token.
type Error struct{ Reason string }

func (e *Error) Error() string { return "access token refused: " + e.Reason }

func refuse(reason string) error { return &Error{Reason: reason} }

// Verify checks a token and that its grant is still active.
//
// Tokens are issued with golang-jwt; verification is a short hand-written path over the standard
// library because it runs on every MCP request (goal: ≤ 20 µs and ≤ 30 allocations including the grant
// lookup). It accepts only the exact protected headers this server emits (one per configured key, so
// alg, typ and kid need no JSON parsing and anything else — alg=none, HS384, typ JWT, unknown kid — is
// refused), checks the HMAC in constant time, then decodes the claims into a fixed struct. The test
// table in accesstoken_test.go mints the hostile tokens with golang-jwt. A token verified before
// skips the HMAC and the decoding (cache.go); the clock and the grant are checked every time.
func (t *Tokens) Verify(ctx context.Context, token string) (Claims, error) {
	c, _, err := t.verify(ctx, token)
	return c, err
}

// verify is Verify that also returns the token's scopes, split (shared: read only).
func (t *Tokens) verify(ctx context.Context, token string) (Claims, []string, error) {
	v, err := t.static(token)
	if err != nil {
		return Claims{}, nil, err
	}
	c := &v.claims
	now := t.o.Now()
	switch {
	case !v.key.NotAfter.IsZero() && now.After(v.key.NotAfter):
		return Claims{}, nil, refuse("signing key retired")
	case !now.Before(v.exp.Add(t.o.Leeway)):
		return Claims{}, nil, refuse("expired")
	case c.Iat != 0 && now.Add(t.o.Leeway).Before(time.Unix(c.Iat, 0)):
		return Claims{}, nil, refuse("issued in the future")
	}
	var kube *identity.KubeUser
	var active bool
	if t.o.KubeUsers != nil {
		var u identity.KubeUser
		u, active, err = t.o.KubeUsers.KubeUser(ctx, c.Sid)
		kube = &u
	} else {
		active, err = t.o.Grants.GrantActive(ctx, c.Sid)
	}
	if err != nil {
		return Claims{}, nil, fmt.Errorf("%w: grant lookup: %w", ErrUnavailable, err)
	}
	if !active {
		return Claims{}, nil, refuse("grant revoked or expired")
	}
	return Claims{Subject: c.Sub, ClientID: c.ClientID, Scope: c.Scope, GrantID: c.Sid, TokenID: c.Jti,
		IssuedAt: time.Unix(c.Iat, 0), ExpiresAt: v.exp, Kube: kube}, v.scopes, nil
}

// static returns what the token's bytes prove — the key that signed it, the decoded claims, iss
// and aud this server's, the required claims present — from the cache or by checking them.
func (t *Tokens) static(token string) (*verified, error) {
	var sum [sha256.Size]byte
	if t.cache != nil {
		sum = sha256.Sum256([]byte(token))
		if v := t.cache.get(&sum); v != nil {
			if !t.o.Now().Before(v.exp.Add(t.o.Leeway)) {
				t.cache.drop(&sum) // expired: refused below, and no longer worth keeping
			}
			return v, nil
		}
	}
	hdr, rest, ok := strings.Cut(token, ".")
	if !ok {
		return nil, refuse("not a compact JWS")
	}
	payload, sig, ok := strings.Cut(rest, ".")
	if !ok || strings.IndexByte(sig, '.') >= 0 {
		return nil, refuse("not a compact JWS")
	}
	k, ok := t.headers[hdr]
	if !ok {
		return nil, refuse("unexpected header (alg, typ or kid)")
	}
	if !k.NotAfter.IsZero() && t.o.Now().After(k.NotAfter) {
		return nil, refuse("signing key retired") // before the HMAC: nothing to learn from a retired key
	}
	var got [sha256.Size]byte
	if base64.RawURLEncoding.DecodedLen(len(sig)) != sha256.Size {
		return nil, refuse("bad signature")
	}
	if n, err := base64.RawURLEncoding.Decode(got[:], []byte(sig)); err != nil || n != sha256.Size {
		return nil, refuse("bad signature")
	}
	h := k.pool.Get().(hash.Hash)
	h.Reset()
	h.Write([]byte(token[:len(hdr)+1+len(payload)]))
	var want [sha256.Size]byte
	h.Sum(want[:0])
	k.pool.Put(h)
	if !hmac.Equal(got[:], want[:]) {
		return nil, refuse("bad signature")
	}
	raw, err := base64.RawURLEncoding.DecodeString(payload)
	if err != nil {
		return nil, refuse("malformed")
	}
	var c claims
	if err := json.Unmarshal(raw, &c); err != nil {
		return nil, refuse("malformed")
	}
	switch {
	case c.Exp == 0:
		return nil, refuse("required claim missing")
	case c.Iss != t.o.Issuer:
		return nil, refuse("wrong issuer")
	case c.Aud != t.o.Audience:
		return nil, refuse("wrong audience")
	case c.Sid == "" || c.Sub == "" || c.ClientID == "" || c.Jti == "":
		return nil, refuse("missing sid, sub, client_id or jti")
	}
	v := newVerified(k, c)
	if t.cache != nil && t.o.Now().Before(v.exp.Add(t.o.Leeway)) {
		t.cache.put(&sum, v, t.o.Now())
	}
	return v, nil
}
