package accesstoken

import (
	"crypto/sha256"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// The verified-token cache.
//
// An MCP client sends the same access token with every request for up to its lifetime, and what
// Verify learns from the token's bytes never changes: which key signed it, that the HMAC matches,
// the decoded claims, that iss and aud are this server's and the required claims are there. The
// cache keeps exactly that, keyed by the SHA-256 of the token (never the token itself), so a token
// seen before skips the HMAC, the base64 and the JSON decoding. Everything that can change is
// still checked on every request, cached or not: the signing key's NotAfter, exp and iat against
// the clock, and the grant (revoked, expired; the Kubernetes user) in the store.
//
// Only tokens that passed the full check are stored (a forged or altered token never is: its bytes
// hash elsewhere and it fails the HMAC), and only until their exp; the cache belongs to one Tokens,
// that is one issuer, audience and key set. It holds at most Options.CacheSize entries: when full,
// the expired entries go, and if that is not enough, a quarter of the entries, chosen by Go's
// randomised map order.
type tokenCache struct {
	mu   sync.RWMutex
	m    map[[sha256.Size]byte]*verified
	max  int
	hits atomic.Int64 // answers from the cache (tests)
}

// verified is what a token's bytes proved.
type verified struct {
	key    *verifyKey
	claims claims
	scopes []string // claims.Scope split, shared read-only (capacity clipped)
	exp    time.Time
}

// DefaultCacheSize is the number of verified tokens Tokens keeps when Options.CacheSize is 0.
const DefaultCacheSize = 4096

func newTokenCache(size int) *tokenCache {
	if size < 0 {
		return nil
	}
	if size == 0 {
		size = DefaultCacheSize
	}
	return &tokenCache{m: make(map[[sha256.Size]byte]*verified), max: size}
}

func (c *tokenCache) get(k *[sha256.Size]byte) *verified {
	c.mu.RLock()
	v := c.m[*k]
	c.mu.RUnlock()
	if v != nil {
		c.hits.Add(1)
	}
	return v
}

func (c *tokenCache) put(k *[sha256.Size]byte, v *verified, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.m[*k]; !ok && len(c.m) >= c.max {
		for h, e := range c.m {
			if !now.Before(e.exp) {
				delete(c.m, h)
			}
		}
		for h := range c.m {
			if len(c.m) < c.max-c.max/4 {
				break
			}
			delete(c.m, h)
		}
	}
	c.m[*k] = v
}

func (c *tokenCache) drop(k *[sha256.Size]byte) {
	c.mu.Lock()
	delete(c.m, *k)
	c.mu.Unlock()
}

func (c *tokenCache) len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.m)
}

func newVerified(k *verifyKey, c claims) *verified {
	return &verified{key: k, claims: c, scopes: slices.Clip(strings.Fields(c.Scope)), exp: time.Unix(c.Exp, 0)}
}
