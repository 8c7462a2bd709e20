// Package storetest is the behaviour every store.KV backend must show; backends call Run from their
// tests so bbolt and PostgreSQL are held to the same contract.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cnpg-mcp/cnpg-mcp/server/store"
)

// Run exercises a fresh backend returned by open (one per subtest).
func Run(t *testing.T, open func(t *testing.T) store.KV) {
	ctx := context.Background()
	now := time.Unix(1_800_000_000, 0)
	b := store.BucketCodes

	t.Run("CreateGetReplaceDelete", func(t *testing.T) {
		kv := open(t)
		if err := kv.Create(ctx, b, "k", []byte("v1"), now.Add(time.Minute), now); err != nil {
			t.Fatal(err)
		}
		if err := kv.Create(ctx, b, "k", []byte("v2"), now.Add(time.Minute), now); !errors.Is(err, store.ErrExists) {
			t.Fatalf("second Create: want ErrExists, got %v", err)
		}
		e, err := kv.Get(ctx, b, "k", now)
		if err != nil || string(e.Value) != "v1" || !e.ExpiresAt.Equal(now.Add(time.Minute)) {
			t.Fatalf("Get: %+v %v", e, err)
		}
		if err := kv.Replace(ctx, b, "k", []byte("v3"), now.Add(2*time.Minute), now); err != nil {
			t.Fatal(err)
		}
		if e, _ := kv.Get(ctx, b, "k", now); string(e.Value) != "v3" {
			t.Fatalf("after Replace: %q", e.Value)
		}
		if err := kv.Replace(ctx, b, "missing", []byte("x"), time.Time{}, now); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("Replace missing: %v", err)
		}
		if ok, _ := kv.Exists(ctx, b, "k", now); !ok {
			t.Fatal("Exists false for live record")
		}
		if err := kv.Delete(ctx, b, "k"); err != nil {
			t.Fatal(err)
		}
		if _, err := kv.Get(ctx, b, "k", now); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("after Delete: %v", err)
		}
		if err := kv.Delete(ctx, b, "k"); err != nil {
			t.Fatalf("Delete missing: %v", err)
		}
		// Buckets are separate keyspaces.
		if err := kv.Create(ctx, store.BucketGrants, "k", []byte("g"), time.Time{}, now); err != nil {
			t.Fatal(err)
		}
		if _, err := kv.Get(ctx, b, "k", now); !errors.Is(err, store.ErrNotFound) {
			t.Fatal("bucket leak")
		}
	})

	t.Run("Expiry", func(t *testing.T) {
		kv := open(t)
		_ = kv.Create(ctx, b, "k", []byte("v"), now.Add(time.Minute), now)
		_ = kv.Create(ctx, b, "forever", []byte("v"), time.Time{}, now)
		later := now.Add(time.Minute)
		if _, err := kv.Get(ctx, b, "k", later); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("expired Get: %v", err)
		}
		if ok, _ := kv.Exists(ctx, b, "k", later); ok {
			t.Fatal("expired Exists")
		}
		if _, err := kv.Take(ctx, b, "k", later); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("expired Take: %v", err)
		}
		if err := kv.Update(ctx, later, func(tx store.KVTx) error {
			_, err := tx.Get(b, "k")
			return err
		}); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("expired Get in Update: %v", err)
		}
		if err := kv.Replace(ctx, b, "k", []byte("x"), later.Add(time.Hour), later); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("expired Replace: %v", err)
		}
		if err := kv.Create(ctx, b, "k", []byte("new"), later.Add(time.Minute), later); err != nil {
			t.Fatalf("Create over expired: %v", err)
		}
		if e, _ := kv.Get(ctx, b, "k", later); string(e.Value) != "new" || !e.UsedAt.IsZero() {
			t.Fatalf("recreated: %+v", e)
		}
		n, err := kv.Sweep(ctx, later.Add(time.Hour))
		if err != nil || n != 1 {
			t.Fatalf("Sweep: %d %v", n, err)
		}
		if _, err := kv.Get(ctx, b, "forever", later.Add(time.Hour)); err != nil {
			t.Fatalf("non-expiring record swept: %v", err)
		}
	})

	t.Run("Update", func(t *testing.T) {
		kv := open(t)
		if kv.String() == "" {
			t.Fatal("String names nothing")
		}
		if err := kv.Ping(ctx); err != nil {
			t.Fatalf("Ping: %v", err)
		}
		_ = kv.Create(ctx, b, "k", []byte("v"), now.Add(time.Minute), now)
		// Reads see the transaction's own writes; UsedAt and expiry round-trip; buckets are separate.
		err := kv.Update(ctx, now, func(tx store.KVTx) error {
			e, err := tx.Get(b, "k")
			if err != nil || string(e.Value) != "v" || !e.UsedAt.IsZero() {
				return fmt.Errorf("Get: %+v %v", e, err)
			}
			if err := tx.Put(b, "k", store.Entry{Value: []byte("v2"), ExpiresAt: e.ExpiresAt, UsedAt: now}); err != nil {
				return err
			}
			if err := tx.Put(store.BucketGrants, "g", store.Entry{Value: []byte("g1")}); err != nil {
				return err
			}
			if e, err := tx.Get(b, "k"); err != nil || string(e.Value) != "v2" || !e.UsedAt.Equal(now) {
				return fmt.Errorf("own write not visible: %+v %v", e, err)
			}
			if err := tx.Delete(b, "k"); err != nil {
				return err
			}
			if _, err := tx.Get(b, "k"); !errors.Is(err, store.ErrNotFound) {
				return fmt.Errorf("own delete not visible: %v", err)
			}
			if err := tx.Put(b, "k", store.Entry{Value: []byte("v3"), ExpiresAt: now.Add(time.Hour), UsedAt: now}); err != nil {
				return err
			}
			if _, err := tx.Get(store.BucketGrants, "k"); !errors.Is(err, store.ErrNotFound) {
				return fmt.Errorf("bucket leak: %v", err)
			}
			return tx.Put(b, "gone", store.Entry{Value: []byte("x"), ExpiresAt: now})
		})
		if err != nil {
			t.Fatal(err)
		}
		if e, err := kv.Get(ctx, b, "k", now); err != nil || string(e.Value) != "v3" || !e.UsedAt.Equal(now) || !e.ExpiresAt.Equal(now.Add(time.Hour)) {
			t.Fatalf("after Update: %+v %v", e, err)
		}
		if e, err := kv.Get(ctx, store.BucketGrants, "g", now); err != nil || string(e.Value) != "g1" || !e.ExpiresAt.IsZero() {
			t.Fatalf("second bucket after Update: %+v %v", e, err)
		}
		if _, err := kv.Get(ctx, b, "gone", now); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("a record written already expired is live: %v", err)
		}
		// A failing fn writes nothing, whatever it wrote before failing, and its error comes back.
		boom := errors.New("refused by fn")
		err = kv.Update(ctx, now, func(tx store.KVTx) error {
			_ = tx.Put(b, "k", store.Entry{Value: []byte("half")})
			_ = tx.Delete(store.BucketGrants, "g")
			_ = tx.Put(b, "new", store.Entry{Value: []byte("half")})
			return boom
		})
		if err != boom {
			t.Fatalf("Update returned %v, want fn's error unchanged", err)
		}
		if e, _ := kv.Get(ctx, b, "k", now); string(e.Value) != "v3" {
			t.Fatalf("a failed Update changed a record: %q", e.Value)
		}
		if ok, _ := kv.Exists(ctx, store.BucketGrants, "g", now); !ok {
			t.Fatal("a failed Update deleted a record")
		}
		if ok, _ := kv.Exists(ctx, b, "new", now); ok {
			t.Fatal("a failed Update created a record")
		}
		// A cancelled context is refused before anything is written.
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		if err := kv.Update(cctx, now, func(tx store.KVTx) error { return tx.Put(b, "cancelled", store.Entry{Value: []byte("x")}) }); err == nil {
			t.Fatal("Update with a cancelled context succeeded")
		}
		if ok, _ := kv.Exists(ctx, b, "cancelled", now); ok {
			t.Fatal("Update with a cancelled context wrote")
		}
	})

	t.Run("ConcurrentSingleUse", func(t *testing.T) {
		kv := open(t)
		errUsed := errors.New("used")
		for round := 0; round < 5; round++ {
			_ = kv.Create(ctx, b, "take", []byte("v"), now.Add(time.Minute), now)
			_ = kv.Create(ctx, b, "mark", []byte("v"), now.Add(time.Minute), now)
			var takes, marks atomic.Int32
			var wg sync.WaitGroup
			for i := 0; i < 8; i++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					if _, err := kv.Take(ctx, b, "take", now); err == nil {
						takes.Add(1)
					}
					// Compare-and-set inside Update: exactly one caller finds the record unused.
					err := kv.Update(ctx, now, func(tx store.KVTx) error {
						e, err := tx.Get(b, "mark")
						if err != nil {
							return err
						}
						if !e.UsedAt.IsZero() {
							return errUsed
						}
						e.UsedAt = now
						return tx.Put(b, "mark", e)
					})
					switch {
					case err == nil:
						marks.Add(1)
					case !errors.Is(err, errUsed):
						t.Error(err)
					}
				}()
			}
			wg.Wait()
			if takes.Load() != 1 || marks.Load() != 1 {
				t.Fatalf("round %d: %d Take winners, %d Update winners; want exactly 1 each", round, takes.Load(), marks.Load())
			}
			_ = kv.Delete(ctx, b, "mark")
		}
	})

	// Concurrent read-modify-write transactions lose no update, and of concurrent creators of one
	// key exactly one finds it absent (PostgreSQL: row locks and retried serialization failures).
	t.Run("ConcurrentUpdatesSerialize", func(t *testing.T) {
		kv := open(t)
		const workers, each = 8, 15
		var created atomic.Int32
		var wg sync.WaitGroup
		for i := 0; i < workers; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for j := 0; j < each; j++ {
					err := kv.Update(ctx, now, func(tx store.KVTx) error {
						n := 0
						switch e, err := tx.Get(b, "counter"); {
						case errors.Is(err, store.ErrNotFound):
						case err != nil:
							return err
						default:
							n, _ = strconv.Atoi(string(e.Value))
						}
						return tx.Put(b, "counter", store.Entry{Value: []byte(strconv.Itoa(n + 1))})
					})
					if err != nil {
						t.Error(err)
						return
					}
				}
				err := kv.Update(ctx, now, func(tx store.KVTx) error {
					if _, err := tx.Get(b, "once"); err == nil {
						return store.ErrExists
					} else if !errors.Is(err, store.ErrNotFound) {
						return err
					}
					return tx.Put(b, "once", store.Entry{Value: []byte("x")})
				})
				switch {
				case err == nil:
					created.Add(1)
				case !errors.Is(err, store.ErrExists):
					t.Error(err)
				}
			}()
		}
		wg.Wait()
		e, err := kv.Get(ctx, b, "counter", now)
		if err != nil || string(e.Value) != strconv.Itoa(workers*each) {
			t.Fatalf("counter %q (%v), want %d: lost updates", e.Value, err, workers*each)
		}
		if created.Load() != 1 {
			t.Fatalf("%d creators found the key absent, want 1", created.Load())
		}
	})
}
