package postgres

import (
	"context"
	"errors"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cnpg-mcp/cnpg-mcp/server/store"
	"github.com/cnpg-mcp/cnpg-mcp/server/store/postgres/pgtest"
	"github.com/cnpg-mcp/cnpg-mcp/server/store/storetest"
)

var shared pgtest.Shared

func TestMain(m *testing.M) {
	code := m.Run()
	shared.Close()
	os.Exit(code)
}

// openFresh opens the backend on a new database of the package's server.
func openFresh(t *testing.T) *KV {
	kv, err := Open(context.Background(), shared.NewDatabase(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { kv.Close() })
	return kv
}

func TestKVContract(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.KV { return openFresh(t) })
}

// The typed store's atomic operations (rotation, redemption, claims, settling) on PostgreSQL, with
// injected faults at every step.
func TestStoreAtomicOperations(t *testing.T) {
	storetest.RunStore(t, func(t *testing.T) store.KV {
		kv, err := Open(context.Background(), shared.NewDatabase(t))
		if err != nil {
			t.Fatal(err)
		}
		return kv
	})
}

func TestOpenBadDSNDoesNotEchoPassword(t *testing.T) {
	_, err := Open(context.Background(), "postgres://u:s3cretpw@%zz/db")
	if err == nil {
		t.Fatal("bad DSN accepted")
	}
	if got := err.Error(); strings.Contains(got, "s3cretpw") {
		t.Fatalf("error echoes the password: %s", got)
	}
}

// Two replicas creating the same record at once: the second transaction's snapshot predates the
// first's insert, so its write is a serialization failure, and Update runs its function again on a
// fresh snapshot, where it sees the record and refuses (exactly one creator, nothing lost). The
// overlap is forced: A waits before COMMIT until B is blocked on A's row.
func TestUpdateRetriesSerializationFailure(t *testing.T) {
	ctx := context.Background()
	kv := openFresh(t)
	now := time.Unix(1_800_000_000, 0)
	b := store.BucketRefresh
	create := func(runs *atomic.Int32) func(tx store.KVTx) error {
		return func(tx store.KVTx) error {
			runs.Add(1)
			if _, err := tx.Get(b, "k"); err == nil {
				return store.ErrExists
			} else if !errors.Is(err, store.ErrNotFound) {
				return err
			}
			return tx.Put(b, "k", store.Entry{Value: []byte("v")})
		}
	}
	var aRuns, bRuns atomic.Int32
	bDone := make(chan error, 1)
	kv.beforeCommit = func() {
		kv.beforeCommit = nil // only A waits
		go func() { bDone <- kv.Update(ctx, now, create(&bRuns)) }()
		deadline := time.Now().Add(20 * time.Second)
		for {
			var waiting int
			if err := kv.pool.QueryRow(ctx, "SELECT count(*) FROM pg_locks WHERE NOT granted").Scan(&waiting); err != nil {
				t.Error(err)
				return
			}
			if waiting > 0 {
				return
			}
			if time.Now().After(deadline) {
				t.Error("B never blocked on A's insert")
				return
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	if err := kv.Update(ctx, now, create(&aRuns)); err != nil {
		t.Fatalf("A: %v", err)
	}
	if err := <-bDone; !errors.Is(err, store.ErrExists) {
		t.Fatalf("B: %v, want ErrExists after a retry", err)
	}
	if aRuns.Load() != 1 || bRuns.Load() != 2 {
		t.Fatalf("A ran %d times, B %d times; want 1 and 2 (one retry after the serialization failure)", aRuns.Load(), bRuns.Load())
	}
}
