// Package postgres is the storage backend for several replicas: one table in a PostgreSQL database
// (pgx). The simple operations are one SQL statement each whose WHERE clause is the compare, so
// concurrent replicas get exactly one winner (Take is DELETE … RETURNING). Update is one REPEATABLE
// READ transaction: every Get locks its row (SELECT … FOR UPDATE), the writes go out in one batch
// before COMMIT, and a serialization failure or deadlock (two replicas inserting the same key, or
// updating a row another transaction changed) is retried a bounded number of times.
package postgres

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/cnpg-mcp/cnpg-mcp/server/store"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
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
	name string // host:port/database, for logs and /readyz
	// beforeCommit runs in Update after fn and the writes, before COMMIT (tests: make two
	// transactions overlap).
	beforeCommit func()
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
	return &KV{pool: pool, name: fmt.Sprintf("postgres %s:%d/%s", cfg.ConnConfig.Host, cfg.ConnConfig.Port, cfg.ConnConfig.Database)}, nil
}

// Close closes the pool.
func (k *KV) Close() error { k.pool.Close(); return nil }

// String names the backend (host, port and database; never the password).
func (k *KV) String() string { return k.name }

// Ping implements store.KV: one round trip to the database.
func (k *KV) Ping(ctx context.Context) error {
	var one int
	if err := k.pool.QueryRow(ctx, "SELECT 1").Scan(&one); err != nil {
		return fmt.Errorf("%s: %w", k.name, err)
	}
	return nil
}

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

// maxAttempts bounds Update's retries of serialization failures and deadlocks.
const maxAttempts = 8

// Update implements store.KV.
func (k *KV) Update(ctx context.Context, now time.Time, fn func(tx store.KVTx) error) error {
	for attempt := 1; ; attempt++ {
		err := k.update(ctx, now, fn)
		if !retryable(err) || attempt == maxAttempts {
			return err
		}
		// Two transactions wanted the same rows: back off a little, with jitter, and run fn again.
		d := time.Duration(attempt*attempt)*time.Millisecond + rand.N(2*time.Millisecond)
		select {
		case <-time.After(d):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// retryable reports serialization failures (40001) and deadlocks (40P01).
func retryable(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && (pe.Code == "40001" || pe.Code == "40P01")
}

func (k *KV) update(ctx context.Context, now time.Time, fn func(tx store.KVTx) error) error {
	tx, err := k.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead})
	if err != nil {
		return fmt.Errorf("store update: begin: %w", err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	t := &pgTx{ctx: ctx, tx: tx, now: now}
	if err := fn(t); err != nil {
		return err
	}
	if t.err != nil { // fn ignored a storage error of its own transaction
		return t.err
	}
	if len(t.order) > 0 {
		batch := &pgx.Batch{}
		for _, key := range t.order {
			w := t.writes[key]
			if w == nil {
				batch.Queue(`DELETE FROM `+Table+` WHERE bucket = $1 AND key = $2`, string(key.b), key.key)
				continue
			}
			var used *int64
			if !w.UsedAt.IsZero() {
				u := w.UsedAt.UnixNano()
				used = &u
			}
			batch.Queue(`INSERT INTO `+Table+` (bucket, key, value, expires_at, used_at) VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (bucket, key) DO UPDATE SET value = EXCLUDED.value, expires_at = EXCLUDED.expires_at, used_at = EXCLUDED.used_at`,
				string(key.b), key.key, w.Value, store.UnixNanos(w.ExpiresAt), used)
		}
		if err := tx.SendBatch(ctx, batch).Close(); err != nil {
			return fmt.Errorf("store update: write: %w", err)
		}
	}
	if k.beforeCommit != nil {
		k.beforeCommit()
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("store update: commit: %w", err)
	}
	return nil
}

type bkey struct {
	b   store.Bucket
	key string
}

// pgTx buffers writes (nil = delete) until fn returns; Get reads through them.
type pgTx struct {
	ctx    context.Context
	tx     pgx.Tx
	now    time.Time
	writes map[bkey]*store.Entry
	order  []bkey
	err    error
}

func (t *pgTx) Get(b store.Bucket, key string) (store.Entry, error) {
	if w, ok := t.writes[bkey{b, key}]; ok {
		if w == nil || (!w.ExpiresAt.IsZero() && !w.ExpiresAt.After(t.now)) {
			return store.Entry{}, store.ErrNotFound
		}
		return *w, nil
	}
	var (
		val  []byte
		exp  int64
		used *int64
	)
	// Lock the row whether or not it is live, so an updater that finds it expired still serializes
	// with one that recreates it.
	err := t.tx.QueryRow(t.ctx, `SELECT value, expires_at, used_at FROM `+Table+` WHERE bucket = $1 AND key = $2 FOR UPDATE`,
		string(b), key).Scan(&val, &exp, &used)
	if errors.Is(err, pgx.ErrNoRows) {
		return store.Entry{}, store.ErrNotFound
	}
	if err != nil {
		err = fmt.Errorf("store update: get %s: %w", b, err)
		if t.err == nil {
			t.err = err
		}
		return store.Entry{}, err
	}
	if exp != 0 && exp <= t.now.UnixNano() {
		return store.Entry{}, store.ErrNotFound
	}
	return entry(val, exp, used), nil
}

func (t *pgTx) set(b store.Bucket, key string, e *store.Entry) {
	k := bkey{b, key}
	if t.writes == nil {
		t.writes = map[bkey]*store.Entry{}
	}
	if _, seen := t.writes[k]; !seen {
		t.order = append(t.order, k)
	}
	t.writes[k] = e
}

func (t *pgTx) Put(b store.Bucket, key string, e store.Entry) error {
	e.Value = append([]byte(nil), e.Value...)
	t.set(b, key, &e)
	return nil
}

func (t *pgTx) Delete(b store.Bucket, key string) error {
	t.set(b, key, nil)
	return nil
}
