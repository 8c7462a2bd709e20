// Package store keeps the OAuth proxy's state: registered clients, authorization transactions, consent
// CSRF records, upstream sessions, authorization codes, grants (with sealed upstream tokens) and refresh
// tokens.
//
// The typed Store is split by concern (Clients, Transactions, Codes, Grants, RefreshTokens) and sits on a
// small KV contract that each backend implements: bbolt (package store/bolt, the embedded default) and
// PostgreSQL (package store/postgres, for several replicas). Everything that must be single-use is
// consumed by an atomic operation of the backend (Take = compare-and-delete, MarkUsed = compare-and-set),
// never by get-then-delete. Codes, refresh tokens, CSRF tokens and upstream states are stored under the
// SHA-256 of the secret, never the secret itself; upstream tokens are sealed with AES-256-GCM (package
// store/seal) with the record key as additional data.
package store

import (
	"context"
	"errors"
	"time"
)

// ErrNotFound is returned when a record does not exist or has expired.
var ErrNotFound = errors.New("store: not found")

// ErrExists is returned by Create when a live record already has the key.
var ErrExists = errors.New("store: already exists")

// Bucket names a keyspace.
type Bucket string

// The buckets the typed store uses.
const (
	BucketClients  Bucket = "clients"
	BucketTxns     Bucket = "txns"
	BucketCSRF     Bucket = "csrf"
	BucketUpstream Bucket = "upstream"
	BucketCodes    Bucket = "codes"
	BucketGrants   Bucket = "grants"
	BucketRefresh  Bucket = "refresh"
	// BucketChallenges remembers PKCE challenges of redeemed codes (constant-challenge detection).
	BucketChallenges Bucket = "challenges"
)

// Buckets lists every bucket (backends create them up front).
var Buckets = []Bucket{BucketClients, BucketTxns, BucketCSRF, BucketUpstream, BucketCodes, BucketGrants, BucketRefresh, BucketChallenges}

// Entry is a stored value with its bookkeeping.
type Entry struct {
	Value     []byte
	ExpiresAt time.Time // zero: never
	UsedAt    time.Time // zero: not used (MarkUsed returns the value before the call)
}

// KV is the contract a storage backend implements. A record whose ExpiresAt is not after `now` is
// treated as absent by every operation. All operations are atomic.
type KV interface {
	// Create stores a record only if no live record has the key (ErrExists otherwise).
	Create(ctx context.Context, b Bucket, key string, val []byte, exp time.Time, now time.Time) error
	// Replace overwrites a live record (ErrNotFound otherwise) and keeps its UsedAt.
	Replace(ctx context.Context, b Bucket, key string, val []byte, exp time.Time, now time.Time) error
	// Get reads a live record.
	Get(ctx context.Context, b Bucket, key string, now time.Time) (Entry, error)
	// Exists reports whether a live record has the key, without copying it.
	Exists(ctx context.Context, b Bucket, key string, now time.Time) (bool, error)
	// Take reads and deletes a live record in one step (compare-and-delete): of concurrent callers
	// exactly one gets the record, the others ErrNotFound.
	Take(ctx context.Context, b Bucket, key string, now time.Time) (Entry, error)
	// MarkUsed sets UsedAt to now unless it is already set, and returns the entry with UsedAt as it
	// was before the call: of concurrent callers exactly one sees a zero UsedAt.
	MarkUsed(ctx context.Context, b Bucket, key string, now time.Time) (Entry, error)
	// Unmark clears UsedAt if it still equals usedAt (undoing a MarkUsed whose work failed).
	Unmark(ctx context.Context, b Bucket, key string, usedAt time.Time) error
	// Delete removes a record; deleting a missing record is not an error.
	Delete(ctx context.Context, b Bucket, key string) error
	// Sweep deletes expired records and returns how many it removed.
	Sweep(ctx context.Context, now time.Time) (int, error)
	Close() error
}

// UnixNanos encodes a time for storage: unix nanoseconds, 0 for the zero time ("never" / "unused").
func UnixNanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

// FromUnixNanos decodes UnixNanos.
func FromUnixNanos(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n)
}
