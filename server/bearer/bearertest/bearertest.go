// Package bearertest mints and verifies HS256 access tokens for tests of the bearer check and the
// MCP endpoint, standing in for the OAuth proxy's token verifier (server/accesstoken). It checks
// what the real verifier checks: signature (HS256 only), iss, aud, exp, typ, revocation.
package bearertest

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/cnpg-mcp/cnpg-mcp/server/identity"
)

// Issuer mints tokens and implements bearer.Verifier.
type Issuer struct {
	issuer, audience string
	key              []byte
	verifications    atomic.Int64
	mu               sync.Mutex
	revoked          map[string]bool
	seq              atomic.Int64
}

// Claims describes a token to mint; zero values get sensible defaults.
type Claims struct {
	Subject, ClientID string
	Scopes            []string
	ExpiresIn         time.Duration // default 1h; negative mints an expired token
	Issuer, Audience  string        // default: the Issuer's
	Type              string        // JOSE typ; default "at+jwt"
	// KubeUser and KubeGroups stand in for the Kubernetes user the real verifier resolves from the
	// grant (an impersonating server): the verified identity carries them (Identity.Kube).
	KubeUser   string
	KubeGroups []string
}

// NewIssuer returns an issuer with a fresh random key.
func NewIssuer(issuer, audience string) *Issuer {
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	return &Issuer{issuer: issuer, audience: audience, key: key, revoked: map[string]bool{}}
}

type tokenClaims struct {
	jwt.RegisteredClaims
	ClientID   string   `json:"client_id,omitempty"`
	Scope      string   `json:"scope,omitempty"`
	KubeUser   string   `json:"test_kube_user,omitempty"`
	KubeGroups []string `json:"test_kube_groups,omitempty"`
}

// Mint returns a signed token.
func (i *Issuer) Mint(t testing.TB, c Claims) string {
	t.Helper()
	tok, err := i.MintErr(c)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// MintErr is Mint without testing.TB (for load generators).
func (i *Issuer) MintErr(c Claims) (string, error) {
	if c.Subject == "" {
		c.Subject = "auth0|test-user"
	}
	if c.ClientID == "" {
		c.ClientID = "test-client"
	}
	if c.ExpiresIn == 0 {
		c.ExpiresIn = time.Hour
	}
	if c.Issuer == "" {
		c.Issuer = i.issuer
	}
	if c.Audience == "" {
		c.Audience = i.audience
	}
	if c.Type == "" {
		c.Type = "at+jwt"
	}
	now := time.Now()
	claims := tokenClaims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer: c.Issuer, Subject: c.Subject, Audience: jwt.ClaimStrings{c.Audience},
			IssuedAt: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(now.Add(c.ExpiresIn)),
			ID: "jti-" + itoa(i.seq.Add(1)),
		},
		ClientID:   c.ClientID,
		Scope:      strings.Join(c.Scopes, " "),
		KubeUser:   c.KubeUser,
		KubeGroups: c.KubeGroups,
	}
	tok := jwt.NewWithClaims(jwt.SigningMethodHS256, claims)
	tok.Header["typ"] = c.Type
	return tok.SignedString(i.key)
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// UnsignedNone returns an alg=none token with plausible claims (must be rejected).
func UnsignedNone(t testing.TB, issuer, audience string) string {
	t.Helper()
	tok := jwt.NewWithClaims(jwt.SigningMethodNone, jwt.RegisteredClaims{
		Issuer: issuer, Subject: "auth0|x", Audience: jwt.ClaimStrings{audience},
		ExpiresAt: jwt.NewNumericDate(time.Now().Add(time.Hour)),
	})
	s, err := tok.SignedString(jwt.UnsafeAllowNoneSignatureType)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// Revoke makes a token fail verification from now on.
func (i *Issuer) Revoke(token string) {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.revoked[token] = true
}

// Verifications counts VerifyAccessToken calls.
func (i *Issuer) Verifications() int64 { return i.verifications.Load() }

// VerifyAccessToken implements bearer.Verifier.
func (i *Issuer) VerifyAccessToken(_ context.Context, token string) (identity.Identity, error) {
	i.verifications.Add(1)
	i.mu.Lock()
	revoked := i.revoked[token]
	i.mu.Unlock()
	if revoked {
		return identity.Identity{}, errors.New("token revoked")
	}
	var c tokenClaims
	parsed, err := jwt.ParseWithClaims(token, &c, func(*jwt.Token) (any, error) { return i.key, nil },
		jwt.WithValidMethods([]string{"HS256"}), jwt.WithIssuer(i.issuer), jwt.WithAudience(i.audience),
		jwt.WithExpirationRequired(), jwt.WithLeeway(5*time.Second))
	if err != nil {
		return identity.Identity{}, err
	}
	if typ, _ := parsed.Header["typ"].(string); !strings.EqualFold(typ, "at+jwt") {
		return identity.Identity{}, errors.New("not an access token (typ " + typ + ")")
	}
	id := identity.Identity{Subject: c.Subject, ClientID: c.ClientID, TokenID: c.ID}
	if c.Scope != "" {
		id.Scopes = strings.Fields(c.Scope)
	}
	if c.ExpiresAt != nil {
		id.ExpiresAt = c.ExpiresAt.Time
	}
	if c.KubeUser != "" {
		id.Kube = &identity.KubeUser{Name: c.KubeUser, Groups: c.KubeGroups}
	}
	return id, nil
}

// RandomString returns n random URL-safe characters.
func RandomString(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)[:n]
}
