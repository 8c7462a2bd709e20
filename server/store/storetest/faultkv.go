package storetest

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/cnpg-mcp/cnpg-mcp/server/store"
)

// ErrInjected is the storage fault FaultKV injects.
var ErrInjected = errors.New("storetest: injected storage fault")

// FaultKV wraps a backend and injects storage faults: the Nth operation from now fails (every KV
// call and every Get/Put/Delete inside an Update counts), an Update fails at its commit (its
// function ran, nothing is written), an Update commits but reports a failure (the answer to COMMIT
// was lost), or the store is down (every operation fails) until it is brought back.
type FaultKV struct {
	store.KV

	mu         sync.Mutex
	ops        int // operations counted since the last Reset
	failOp     int // the operation number that fails (0: none)
	failCommit int // the Update number (counted like ops) whose commit fails
	loseCommit int // the Update number that commits but reports a fault
	updates    int
	down       bool
}

// NewFaultKV wraps kv.
func NewFaultKV(kv store.KV) *FaultKV { return &FaultKV{KV: kv} }

// Reset clears every planned fault and restarts the counts.
func (f *FaultKV) Reset() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.ops, f.failOp, f.failCommit, f.loseCommit, f.updates, f.down = 0, 0, 0, 0, 0, false
}

// FailOp makes the nth operation from now fail (n ≥ 1), replacing any other plan.
func (f *FaultKV) FailOp(n int) { f.Reset(); f.mu.Lock(); f.failOp = n; f.mu.Unlock() }

// FailCommit makes the nth Update from now fail at its commit (nothing is written), replacing any
// other plan.
func (f *FaultKV) FailCommit(n int) { f.Reset(); f.mu.Lock(); f.failCommit = n; f.mu.Unlock() }

// LoseCommit makes the nth Update from now commit and then report a fault, replacing any other
// plan.
func (f *FaultKV) LoseCommit(n int) { f.Reset(); f.mu.Lock(); f.loseCommit = n; f.mu.Unlock() }

// Down takes the store down (true) or brings it back (false).
func (f *FaultKV) Down(down bool) { f.mu.Lock(); f.down = down; f.mu.Unlock() }

// Ops returns how many operations ran since the last FailOp or Reset.
func (f *FaultKV) Ops() int { f.mu.Lock(); defer f.mu.Unlock(); return f.ops }

func (f *FaultKV) op() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.ops++
	if f.down || f.ops == f.failOp {
		return ErrInjected
	}
	return nil
}

func (f *FaultKV) Create(ctx context.Context, b store.Bucket, key string, val []byte, exp, now time.Time) error {
	if err := f.op(); err != nil {
		return err
	}
	return f.KV.Create(ctx, b, key, val, exp, now)
}

func (f *FaultKV) Replace(ctx context.Context, b store.Bucket, key string, val []byte, exp, now time.Time) error {
	if err := f.op(); err != nil {
		return err
	}
	return f.KV.Replace(ctx, b, key, val, exp, now)
}

func (f *FaultKV) Get(ctx context.Context, b store.Bucket, key string, now time.Time) (store.Entry, error) {
	if err := f.op(); err != nil {
		return store.Entry{}, err
	}
	return f.KV.Get(ctx, b, key, now)
}

func (f *FaultKV) Exists(ctx context.Context, b store.Bucket, key string, now time.Time) (bool, error) {
	if err := f.op(); err != nil {
		return false, err
	}
	return f.KV.Exists(ctx, b, key, now)
}

func (f *FaultKV) Take(ctx context.Context, b store.Bucket, key string, now time.Time) (store.Entry, error) {
	if err := f.op(); err != nil {
		return store.Entry{}, err
	}
	return f.KV.Take(ctx, b, key, now)
}

func (f *FaultKV) Delete(ctx context.Context, b store.Bucket, key string) error {
	if err := f.op(); err != nil {
		return err
	}
	return f.KV.Delete(ctx, b, key)
}

func (f *FaultKV) Ping(ctx context.Context) error {
	if err := f.op(); err != nil {
		return err
	}
	return f.KV.Ping(ctx)
}

// Update implements store.KV with the planned faults.
func (f *FaultKV) Update(ctx context.Context, now time.Time, fn func(tx store.KVTx) error) error {
	if err := f.op(); err != nil {
		return err
	}
	f.mu.Lock()
	f.updates++
	n := f.updates
	failCommit, loseCommit := n == f.failCommit, n == f.loseCommit
	f.mu.Unlock()
	err := f.KV.Update(ctx, now, func(tx store.KVTx) error {
		if err := fn(faultTx{tx, f}); err != nil {
			return err
		}
		if failCommit {
			return ErrInjected
		}
		return nil
	})
	if err == nil && loseCommit {
		return ErrInjected
	}
	return err
}

type faultTx struct {
	tx store.KVTx
	f  *FaultKV
}

func (t faultTx) Get(b store.Bucket, key string) (store.Entry, error) {
	if err := t.f.op(); err != nil {
		return store.Entry{}, err
	}
	return t.tx.Get(b, key)
}

func (t faultTx) Put(b store.Bucket, key string, e store.Entry) error {
	if err := t.f.op(); err != nil {
		return err
	}
	return t.tx.Put(b, key, e)
}

func (t faultTx) Delete(b store.Bucket, key string) error {
	if err := t.f.op(); err != nil {
		return err
	}
	return t.tx.Delete(b, key)
}
