package bolt

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cnpg-mcp/cnpg-mcp/server/store"
	"github.com/cnpg-mcp/cnpg-mcp/server/store/storetest"
	bbolt "go.etcd.io/bbolt"
)

func TestKVContract(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.KV {
		kv, err := Open(filepath.Join(t.TempDir(), "s.db"), time.Second)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { kv.Close() })
		return kv
	})
}

// The typed store's atomic operations (rotation, redemption, claims, settling) on bbolt, with
// injected faults at every step.
func TestStoreAtomicOperations(t *testing.T) {
	storetest.RunStore(t, func(t *testing.T) store.KV {
		kv, err := Open(filepath.Join(t.TempDir(), "s.db"), time.Second)
		if err != nil {
			t.Fatal(err)
		}
		return kv
	})
}

func TestSecondOpenerGetsClearError(t *testing.T) {
	p := filepath.Join(t.TempDir(), "s.db")
	kv, err := Open(p, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer kv.Close()
	if _, err := Open(p, 100*time.Millisecond); err == nil {
		t.Fatal("second opener succeeded")
	} else if want := "locked by another process"; !strings.Contains(err.Error(), want) {
		t.Fatalf("error %q does not say %q", err, want)
	}
}

// The group commit answers each operation on its own: a logical failure (ErrExists) or a hard error
// in one operation never fails the others of the same batch, and writes of a batch see each other.
func TestGroupCommitIsolation(t *testing.T) {
	kv, err := Open(filepath.Join(t.TempDir(), "s.db"), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer kv.Close()
	ctx := context.Background()
	now := time.Unix(1_800_000_000, 0)
	boom := errors.New("boom")
	var wg sync.WaitGroup
	errs := make([]error, 200)
	for i := range errs {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			switch {
			case i%50 == 7:
				errs[i] = kv.gc.do(func(tx *bbolt.Tx) error {
					_ = tx.Bucket([]byte(store.BucketCodes)).Put([]byte("half-written"), []byte("x"))
					return boom
				})
			default:
				errs[i] = kv.Create(ctx, store.BucketCodes, fmt.Sprintf("k%d", i%100), []byte("v"), time.Time{}, now)
			}
		}(i)
	}
	wg.Wait()
	created, exists := 0, 0
	for i, err := range errs {
		switch {
		case i%50 == 7:
			if !errors.Is(err, boom) {
				t.Fatalf("op %d: %v", i, err)
			}
		case err == nil:
			created++
		case errors.Is(err, store.ErrExists):
			exists++
		default:
			t.Fatalf("op %d: %v", i, err)
		}
	}
	// 196 creates over 100 keys, minus k7 and k57 whose only creators are the failing operations.
	if created != 98 || exists != 98 {
		t.Fatalf("created %d (want 98), exists %d (want 98)", created, exists)
	}
	if _, err := kv.Get(ctx, store.BucketCodes, "half-written", now); !errors.Is(err, store.ErrNotFound) {
		t.Fatal("a failed operation's write was committed")
	}
}
