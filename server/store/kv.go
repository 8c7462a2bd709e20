// Package store keeps the OAuth proxy's state: registered clients, authorization transactions, consent
// CSRF records, upstream sessions, authorization codes, grants (with sealed upstream tokens) and refresh
// tokens.
//
// The typed Store is split by concern (Clients, Transactions, Codes, Grants, RefreshTokens) and sits on a
// small KV contract that each backend implements: bbolt (package store/bolt, the embedded default) and
// PostgreSQL (package store/postgres, for several replicas). Everything that must be single-use is
// consumed by an atomic operation of the backend (Take = compare-and-delete, or a check-and-write
// inside Update), never by get-then-delete.
//
// Operations that must be atomic are single methods of the typed store (Dex's storage is the model:
// UpdateRefreshToken(id, func(old) (new, error))). Each is one KV.Update: the backend runs the
// read-modify-write as one transaction (one bbolt write transaction through the group commit; one
// PostgreSQL REPEATABLE READ transaction with row locks, retried on serialization failures), so a
// crash or an outage in the middle leaves either everything or nothing — never a step to undo.
// RotateRefreshToken (refresh.go) is the main one: the old token's use, the new token, the grant's new
// sealed upstream tokens and the replayable answer commit together.
//
// Codes, refresh tokens, CSRF tokens and upstream states are stored under the SHA-256 of the secret,
// never the secret itself; upstream tokens are sealed with AES-256-GCM (package store/seal) with the
// record key as additional data.
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
	UsedAt    time.Time // zero: not used
}

// KVTx is the view of the store inside KV.Update. Get sees the transaction's own writes; nothing is
// visible to others before Update returns nil.
type KVTx interface {
	// Get reads a live record (ErrNotFound when there is none). PostgreSQL locks the row until the
	// transaction ends, so concurrent updaters of one record take turns.
	Get(b Bucket, key string) (Entry, error)
	// Put writes a record whole (value, expiry and UsedAt), creating or overwriting it.
	Put(b Bucket, key string, e Entry) error
	// Delete removes a record; deleting a missing record is not an error.
	Delete(b Bucket, key string) error
}

// KV is the contract a storage backend implements. A record whose ExpiresAt is not after `now` is
// treated as absent by every operation. All operations are atomic.
type KV interface {
	// Update runs fn as one transaction over any buckets: if fn returns nil every write commits
	// together; if fn returns an error nothing is written and Update returns that error unchanged.
	// fn may run more than once (a backend retries serialization failures, and the embedded store
	// re-runs a batch whose shared transaction failed), so it must only read and write through tx
	// and keep no other side effects. A non-nil error that fn did not return is a storage fault, and
	// after a fault at commit time the outcome is unknown (the connection may have died after the
	// commit): callers that must know make their update idempotent and read it back.
	Update(ctx context.Context, now time.Time, fn func(tx KVTx) error) error
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
	// Delete removes a record; deleting a missing record is not an error.
	Delete(ctx context.Context, b Bucket, key string) error
	// Sweep deletes expired records and returns how many it removed.
	Sweep(ctx context.Context, now time.Time) (int, error)
	// Ping reports whether the backend can serve requests now (readiness), saying what is wrong.
	Ping(ctx context.Context) error
	// String names the backend for logs and /readyz (never a password).
	String() string
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
