// Package storetest is the behaviour every store.KV backend must show; backends call Run from their
// tests so bbolt and PostgreSQL are held to the same contract.
package storetest

import (
	"context"
	"errors"
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
		if _, err := kv.MarkUsed(ctx, b, "k", later); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("expired MarkUsed: %v", err)
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

	t.Run("MarkUsedAndUnmark", func(t *testing.T) {
		kv := open(t)
		_ = kv.Create(ctx, b, "k", []byte("v"), now.Add(time.Minute), now)
		e, err := kv.MarkUsed(ctx, b, "k", now)
		if err != nil || !e.UsedAt.IsZero() || string(e.Value) != "v" {
			t.Fatalf("first MarkUsed: %+v %v", e, err)
		}
		e, err = kv.MarkUsed(ctx, b, "k", now.Add(time.Second))
		if err != nil || !e.UsedAt.Equal(now) {
			t.Fatalf("second MarkUsed must report the first use: %+v %v", e, err)
		}
		if err := kv.Replace(ctx, b, "k", []byte("v2"), now.Add(time.Minute), now); err != nil {
			t.Fatal(err)
		}
		if e, _ := kv.Get(ctx, b, "k", now); !e.UsedAt.Equal(now) {
			t.Fatal("Replace lost UsedAt")
		}
		if err := kv.Unmark(ctx, b, "k", now.Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		if e, _ := kv.Get(ctx, b, "k", now); !e.UsedAt.Equal(now) {
			t.Fatal("Unmark with a stale timestamp must not clear")
		}
		if err := kv.Unmark(ctx, b, "k", now); err != nil {
			t.Fatal(err)
		}
		if e, _ := kv.MarkUsed(ctx, b, "k", now); !e.UsedAt.IsZero() {
			t.Fatal("Unmark did not clear")
		}
	})

	t.Run("ConcurrentSingleUse", func(t *testing.T) {
		kv := open(t)
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
					if e, err := kv.MarkUsed(ctx, b, "mark", now); err == nil && e.UsedAt.IsZero() {
						marks.Add(1)
					}
				}()
			}
			wg.Wait()
			if takes.Load() != 1 || marks.Load() != 1 {
				t.Fatalf("round %d: %d Take winners, %d MarkUsed winners; want exactly 1 each", round, takes.Load(), marks.Load())
			}
			_ = kv.Delete(ctx, b, "mark")
		}
	})
}
