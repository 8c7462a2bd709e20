// Package postgres is the storage backend for several replicas: one table in a PostgreSQL database
// (pgx). Every single-use operation is one SQL statement whose WHERE clause is the compare, so
// concurrent replicas get exactly one winner: Take is DELETE … RETURNING, MarkUsed is
// UPDATE … WHERE used_at IS NULL RETURNING.
package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/cnpg-mcp/cnpg-mcp/server/store"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Table is the table the backend creates and uses.
const Table = "cnpg_mcp_kv"

// Times are unix nanoseconds in bigint columns (0 = never expires; NULL used_at = unused), so values
// compare exactly across replicas and with the injectable clock.
const schema = `
CREATE TABLE IF NOT EXISTS ` + Table + ` (
	bucket     text   NOT NULL,
	key        text   NOT NULL,
	value      bytea  NOT NULL,
	expires_at bigint NOT NULL DEFAULT 0,
	used_at    bigint,
	PRIMARY KEY (bucket, key)
);
CREATE INDEX IF NOT EXISTS ` + Table + `_expires ON ` + Table + ` (expires_at) WHERE expires_at > 0;`

const liveCond = `(expires_at = 0 OR expires_at > $3)`

// KV implements store.KV on PostgreSQL.
type KV struct {
	pool *pgxpool.Pool
	// afterMarkMiss runs between MarkUsed's UPDATE that found no unused record and its read of the
	// earlier use (tests: a concurrent Unmark lands there).
	afterMarkMiss func()
}

var _ store.KV = (*KV)(nil)

// Open connects with a libpq DSN or URL and creates the table if needed.
func Open(ctx context.Context, dsn string) (*KV, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		// The DSN may hold a password: do not echo it.
		return nil, errors.New("storage.dsn is not a valid PostgreSQL connection string (libpq key=value or postgres:// URL)")
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connect to PostgreSQL at %s: %w", cfg.ConnConfig.Host, err)
	}
	if _, err := pool.Exec(ctx, schema); err != nil {
		pool.Close()
		return nil, fmt.Errorf("PostgreSQL at %s:%d: create table %s: %w", cfg.ConnConfig.Host, cfg.ConnConfig.Port, Table, err)
	}
	return &KV{pool: pool}, nil
}

// Close closes the pool.
func (k *KV) Close() error { k.pool.Close(); return nil }

func entry(val []byte, exp int64, used *int64) store.Entry {
	e := store.Entry{Value: val, ExpiresAt: store.FromUnixNanos(exp)}
	if used != nil {
		e.UsedAt = store.FromUnixNanos(*used)
	}
	return e
}

// Create implements store.KV: it inserts, or overwrites an expired record.
func (k *KV) Create(ctx context.Context, b store.Bucket, key string, val []byte, exp, now time.Time) error {
	tag, err := k.pool.Exec(ctx, `INSERT INTO `+Table+` (bucket, key, value, expires_at, used_at) VALUES ($1, $2, $4, $5, NULL)
ON CONFLICT (bucket, key) DO UPDATE SET value = EXCLUDED.value, expires_at = EXCLUDED.expires_at, used_at = NULL
WHERE NOT (`+Table+`.expires_at = 0 OR `+Table+`.expires_at > $3)`, string(b), key, now.UnixNano(), val, store.UnixNanos(exp))
	if err != nil {
		return fmt.Errorf("store create %s: %w", b, err)
	}
	if tag.RowsAffected() == 0 {
		return store.ErrExists
	}
	return nil
}

// Replace implements store.KV.
func (k *KV) Replace(ctx context.Context, b store.Bucket, key string, val []byte, exp, now time.Time) error {
	tag, err := k.pool.Exec(ctx, `UPDATE `+Table+` SET value = $4, expires_at = $5 WHERE bucket = $1 AND key = $2 AND `+liveCond,
		string(b), key, now.UnixNano(), val, store.UnixNanos(exp))
	if err != nil {
		return fmt.Errorf("store replace %s: %w", b, err)
	}
	if tag.RowsAffected() == 0 {
		return store.ErrNotFound
	}
	return nil
}

func (k *KV) row(ctx context.Context, b store.Bucket, op, q string, args ...any) (store.Entry, error) {
	var (
		val  []byte
		exp  int64
		used *int64
	)
	err := k.pool.QueryRow(ctx, q, args...).Scan(&val, &exp, &used)
	if errors.Is(err, pgx.ErrNoRows) {
		return store.Entry{}, store.ErrNotFound
	}
	if err != nil {
		return store.Entry{}, fmt.Errorf("store %s %s: %w", op, b, err)
	}
	return entry(val, exp, used), nil
}

// Get implements store.KV.
func (k *KV) Get(ctx context.Context, b store.Bucket, key string, now time.Time) (store.Entry, error) {
	return k.row(ctx, b, "get", `SELECT value, expires_at, used_at FROM `+Table+` WHERE bucket = $1 AND key = $2 AND `+liveCond,
		string(b), key, now.UnixNano())
}

// Exists implements store.KV.
func (k *KV) Exists(ctx context.Context, b store.Bucket, key string, now time.Time) (bool, error) {
	var one int
	err := k.pool.QueryRow(ctx, `SELECT 1 FROM `+Table+` WHERE bucket = $1 AND key = $2 AND `+liveCond,
		string(b), key, now.UnixNano()).Scan(&one)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("store exists %s: %w", b, err)
	}
	return true, nil
}

// Take implements store.KV.
func (k *KV) Take(ctx context.Context, b store.Bucket, key string, now time.Time) (store.Entry, error) {
	return k.row(ctx, b, "take", `DELETE FROM `+Table+` WHERE bucket = $1 AND key = $2 AND `+liveCond+` RETURNING value, expires_at, used_at`,
		string(b), key, now.UnixNano())
}

// MarkUsed implements store.KV. Only the caller whose UPDATE sets used_at is told the record was
// unused: a caller that finds it used reads the earlier use, and if that mark was undone (Unmark)
// between the two statements it tries the UPDATE again instead of reporting a first use it never
// recorded (TestRT03_MarkUsedRacingUnmark).
func (k *KV) MarkUsed(ctx context.Context, b store.Bucket, key string, now time.Time) (store.Entry, error) {
	for attempt := 0; attempt < 5; attempt++ {
		e, err := k.row(ctx, b, "mark", `UPDATE `+Table+` SET used_at = $3 WHERE bucket = $1 AND key = $2 AND used_at IS NULL AND `+liveCond+` RETURNING value, expires_at, NULL::bigint`,
			string(b), key, now.UnixNano())
		if !errors.Is(err, store.ErrNotFound) {
			return e, err
		}
		if k.afterMarkMiss != nil {
			k.afterMarkMiss()
		}
		// Lost the race or already used: report the earlier use (or absence).
		e, err = k.Get(ctx, b, key, now)
		if err != nil || !e.UsedAt.IsZero() {
			return e, err
		}
	}
	return store.Entry{}, fmt.Errorf("store mark %s: the record was marked and unmarked concurrently too often; try again", b)
}

// Unmark implements store.KV.
func (k *KV) Unmark(ctx context.Context, b store.Bucket, key string, usedAt time.Time) error {
	_, err := k.pool.Exec(ctx, `UPDATE `+Table+` SET used_at = NULL WHERE bucket = $1 AND key = $2 AND used_at = $3`,
		string(b), key, store.UnixNanos(usedAt))
	if err != nil {
		return fmt.Errorf("store unmark %s: %w", b, err)
	}
	return nil
}

// Delete implements store.KV.
func (k *KV) Delete(ctx context.Context, b store.Bucket, key string) error {
	if _, err := k.pool.Exec(ctx, `DELETE FROM `+Table+` WHERE bucket = $1 AND key = $2`, string(b), key); err != nil {
		return fmt.Errorf("store delete %s: %w", b, err)
	}
	return nil
}

// Sweep implements store.KV.
func (k *KV) Sweep(ctx context.Context, now time.Time) (int, error) {
	tag, err := k.pool.Exec(ctx, `DELETE FROM `+Table+` WHERE expires_at > 0 AND expires_at <= $1`, now.UnixNano())
	if err != nil {
		return 0, fmt.Errorf("store sweep: %w", err)
	}
	return int(tag.RowsAffected()), nil
}
