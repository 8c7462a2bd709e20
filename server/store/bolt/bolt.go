// Package bolt is the embedded storage backend: one bbolt file, zero set-up, survives restarts. bbolt
// allows one process per file, so it serves a single replica (use store/postgres for several).
//
// Writes go through a group commit (groupcommit.go): concurrent writes share one transaction and one
// fsync, which is what lets the token endpoint keep up with many code exchanges per second (see
// BenchmarkCodeExchange in server/oauthproxy).
package bolt

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/cnpg-mcp/cnpg-mcp/server/store"
	bbolt "go.etcd.io/bbolt"
)

// KV implements store.KV on a bbolt file.
type KV struct {
	db    *bbolt.DB
	gc    *groupCommit
	path  string
	close sync.Once
}

var _ store.KV = (*KV)(nil)

// Open opens (creating if needed) the store file. It fails after timeout if another process holds it.
func Open(path string, timeout time.Duration) (*KV, error) {
	if timeout <= 0 {
		timeout = 5 * time.Second
	}
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{Timeout: timeout, NoFreelistSync: true, FreelistType: bbolt.FreelistMapType})
	if err != nil {
		if errors.Is(err, bbolt.ErrTimeout) {
			return nil, fmt.Errorf("open store %s: the file is locked by another process (the embedded store allows one server per file; use storage.driver=postgres for several replicas): %w", path, err)
		}
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	err = db.Update(func(tx *bbolt.Tx) error {
		for _, b := range store.Buckets {
			if _, err := tx.CreateBucketIfNotExists([]byte(b)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("open store %s: create buckets: %w", path, err)
	}
	return &KV{db: db, gc: newGroupCommit(db), path: path}, nil
}

// String names the backend.
func (k *KV) String() string { return "bolt file " + k.path }

// Ping implements store.KV: the file is open and readable.
func (k *KV) Ping(ctx context.Context) error {
	if err := k.db.View(func(tx *bbolt.Tx) error {
		if tx.Bucket([]byte(store.BucketGrants)) == nil {
			return errors.New("bucket grants missing")
		}
		return nil
	}); err != nil {
		return fmt.Errorf("%s: %w", k, err)
	}
	return nil
}

// Close closes the file (once; later calls do nothing).
func (k *KV) Close() error {
	var err error
	k.close.Do(func() {
		k.gc.close()
		err = k.db.Close()
	})
	return err
}

// Record layout: expires(8, unix ns, 0 = never) | used(8, unix ns, 0 = unused) | value.
const hdr = 16

func encode(val []byte, exp, used time.Time) []byte {
	out := make([]byte, hdr+len(val))
	binary.BigEndian.PutUint64(out[0:8], uint64(store.UnixNanos(exp)))
	binary.BigEndian.PutUint64(out[8:16], uint64(store.UnixNanos(used)))
	copy(out[hdr:], val)
	return out
}

func live(raw []byte, now time.Time) bool {
	if len(raw) < hdr {
		return false
	}
	exp := int64(binary.BigEndian.Uint64(raw[0:8]))
	return exp == 0 || exp > now.UnixNano()
}

func decode(raw []byte) store.Entry {
	return store.Entry{
		Value:     append([]byte(nil), raw[hdr:]...),
		ExpiresAt: store.FromUnixNanos(int64(binary.BigEndian.Uint64(raw[0:8]))),
		UsedAt:    store.FromUnixNanos(int64(binary.BigEndian.Uint64(raw[8:16]))),
	}
}

func (k *KV) update(ctx context.Context, fn func(tx *bbolt.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return k.gc.do(fn)
}

// Create implements store.KV.
func (k *KV) Create(ctx context.Context, b store.Bucket, key string, val []byte, exp, now time.Time) error {
	return k.update(ctx, func(tx *bbolt.Tx) error {
		bk := tx.Bucket([]byte(b))
		if raw := bk.Get([]byte(key)); raw != nil && live(raw, now) {
			return store.ErrExists
		}
		return bk.Put([]byte(key), encode(val, exp, time.Time{}))
	})
}

// Replace implements store.KV.
func (k *KV) Replace(ctx context.Context, b store.Bucket, key string, val []byte, exp, now time.Time) error {
	_, err := k.modifyLive(ctx, b, key, now, func(bk *bbolt.Bucket, e store.Entry) error {
		return bk.Put([]byte(key), encode(val, exp, e.UsedAt))
	})
	return err
}

// Get implements store.KV.
func (k *KV) Get(ctx context.Context, b store.Bucket, key string, now time.Time) (store.Entry, error) {
	var e store.Entry
	err := k.db.View(func(tx *bbolt.Tx) error {
		raw := tx.Bucket([]byte(b)).Get([]byte(key))
		if raw == nil || !live(raw, now) {
			return store.ErrNotFound
		}
		e = decode(raw)
		return nil
	})
	return e, err
}

// Exists implements store.KV.
func (k *KV) Exists(ctx context.Context, b store.Bucket, key string, now time.Time) (bool, error) {
	var ok bool
	err := k.db.View(func(tx *bbolt.Tx) error {
		raw := tx.Bucket([]byte(b)).Get([]byte(key))
		ok = raw != nil && live(raw, now)
		return nil
	})
	return ok, err
}

// modifyLive runs fn on a live record inside one batched write transaction.
func (k *KV) modifyLive(ctx context.Context, b store.Bucket, key string, now time.Time, fn func(bk *bbolt.Bucket, e store.Entry) error) (store.Entry, error) {
	var e store.Entry
	err := k.update(ctx, func(tx *bbolt.Tx) error {
		e = store.Entry{} // Batch may retry the function
		bk := tx.Bucket([]byte(b))
		raw := bk.Get([]byte(key))
		if raw == nil || !live(raw, now) {
			return store.ErrNotFound
		}
		e = decode(raw)
		return fn(bk, e)
	})
	return e, err
}

// Take implements store.KV.
func (k *KV) Take(ctx context.Context, b store.Bucket, key string, now time.Time) (store.Entry, error) {
	return k.modifyLive(ctx, b, key, now, func(bk *bbolt.Bucket, _ store.Entry) error { return bk.Delete([]byte(key)) })
}

// Delete implements store.KV.
func (k *KV) Delete(ctx context.Context, b store.Bucket, key string) error {
	return k.update(ctx, func(tx *bbolt.Tx) error { return tx.Bucket([]byte(b)).Delete([]byte(key)) })
}

// Sweep implements store.KV. It deletes in chunks so one sweep never holds the write lock for long.
func (k *KV) Sweep(ctx context.Context, now time.Time) (int, error) {
	total := 0
	for _, b := range store.Buckets {
		for {
			if err := ctx.Err(); err != nil {
				return total, err
			}
			n := 0
			err := k.db.Update(func(tx *bbolt.Tx) error {
				c := tx.Bucket([]byte(b)).Cursor()
				for key, raw := c.First(); key != nil && n < 1000; key, raw = c.Next() {
					if !live(raw, now) {
						if err := c.Delete(); err != nil {
							return err
						}
						n++
					}
				}
				return nil
			})
			if err != nil {
				return total, fmt.Errorf("sweep %s: %w", b, err)
			}
			total += n
			if n < 1000 {
				break
			}
		}
	}
	return total, nil
}

// Update implements store.KV. fn runs inside the group commit's shared write transaction, but its
// writes are buffered until it returns nil, so a failing fn leaves the shared transaction untouched
// and is answered on its own (a refused check is not a fault of the batch).
func (k *KV) Update(ctx context.Context, now time.Time, fn func(tx store.KVTx) error) error {
	err := k.update(ctx, func(tx *bbolt.Tx) error {
		t := &boltTx{tx: tx, now: now} // the batch may be re-run: start clean each time
		if err := fn(t); err != nil {
			return refused{err}
		}
		return t.apply()
	})
	var r refused
	if errors.As(err, &r) {
		return r.err
	}
	return err
}

// refused carries fn's own error through the group commit: nothing was written.
type refused struct{ err error }

func (r refused) Error() string { return r.err.Error() }

type bkey struct {
	b   store.Bucket
	key string
}

// boltTx buffers writes (nil = delete) over a bbolt write transaction.
type boltTx struct {
	tx     *bbolt.Tx
	now    time.Time
	writes map[bkey][]byte
	order  []bkey
}

func (t *boltTx) Get(b store.Bucket, key string) (store.Entry, error) {
	raw, ok := t.writes[bkey{b, key}]
	if !ok {
		bk := t.tx.Bucket([]byte(b))
		if bk == nil {
			return store.Entry{}, fmt.Errorf("bolt: unknown bucket %q", b)
		}
		raw = bk.Get([]byte(key))
	}
	if raw == nil || !live(raw, t.now) {
		return store.Entry{}, store.ErrNotFound
	}
	return decode(raw), nil
}

func (t *boltTx) put(b store.Bucket, key string, raw []byte) {
	k := bkey{b, key}
	if t.writes == nil {
		t.writes = map[bkey][]byte{}
	}
	if _, seen := t.writes[k]; !seen {
		t.order = append(t.order, k)
	}
	t.writes[k] = raw
}

func (t *boltTx) Put(b store.Bucket, key string, e store.Entry) error {
	t.put(b, key, encode(e.Value, e.ExpiresAt, e.UsedAt))
	return nil
}

func (t *boltTx) Delete(b store.Bucket, key string) error {
	t.put(b, key, nil)
	return nil
}

func (t *boltTx) apply() error {
	for _, k := range t.order {
		bk := t.tx.Bucket([]byte(k.b))
		if bk == nil {
			return fmt.Errorf("bolt: unknown bucket %q", k.b)
		}
		var err error
		if raw := t.writes[k]; raw == nil {
			err = bk.Delete([]byte(k.key))
		} else {
			err = bk.Put([]byte(k.key), raw)
		}
		if err != nil {
			return fmt.Errorf("bolt: write %s: %w", k.b, err)
		}
	}
	return nil
}
