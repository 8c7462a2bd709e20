package bolt

import (
	"errors"
	"sync"

	"github.com/cnpg-mcp/cnpg-mcp/server/store"
	bbolt "go.etcd.io/bbolt"
)

// groupCommit runs write operations in shared transactions: one writer goroutine takes every
// operation that queued up while the previous commit (and its fsync) was running and commits them
// together. Batches therefore grow with the commit latency instead of being cut by a timer (bbolt's
// DB.Batch cuts them every MaxBatchDelay, so a slow fsync leaves many tiny batches queued behind
// each other), and a lone write is committed at once.
//
// Each operation must do its checks before it modifies anything and report a failed check with
// store.ErrNotFound or store.ErrExists (or, for Update, with whatever its function returned, wrapped
// in refused, since Update buffers its writes until the function succeeds): such an operation is
// answered on its own while the rest of the batch commits. Any other error aborts the shared
// transaction, and every operation of the batch is then run in a transaction of its own, so one
// failure never fails a neighbour.
type groupCommit struct {
	db   *bbolt.DB
	ops  chan *gcOp
	quit chan struct{}
	wg   sync.WaitGroup
}

type gcOp struct {
	fn   func(*bbolt.Tx) error
	done chan error
}

const maxGroup = 512

func newGroupCommit(db *bbolt.DB) *groupCommit {
	g := &groupCommit{db: db, ops: make(chan *gcOp, maxGroup), quit: make(chan struct{})}
	g.wg.Add(1)
	go g.loop()
	return g
}

func logical(err error) bool {
	var r refused
	return errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrExists) || errors.As(err, &r)
}

func (g *groupCommit) loop() {
	defer g.wg.Done()
	for {
		var first *gcOp
		select {
		case first = <-g.ops:
		case <-g.quit:
			return
		}
		batch := []*gcOp{first}
	drain:
		for len(batch) < maxGroup {
			select {
			case op := <-g.ops:
				batch = append(batch, op)
			default:
				break drain
			}
		}
		g.commit(batch)
	}
}

func (g *groupCommit) commit(batch []*gcOp) {
	results := make([]error, len(batch))
	err := g.db.Update(func(tx *bbolt.Tx) error {
		for i, op := range batch {
			results[i] = op.fn(tx)
			if results[i] != nil && !logical(results[i]) {
				return results[i]
			}
		}
		return nil
	})
	if err == nil {
		for i, op := range batch {
			op.done <- results[i]
		}
		return
	}
	// The shared transaction failed: run every operation alone.
	for _, op := range batch {
		op.done <- g.db.Update(op.fn)
	}
}

// do queues fn and waits for its commit.
func (g *groupCommit) do(fn func(*bbolt.Tx) error) error {
	op := &gcOp{fn: fn, done: make(chan error, 1)}
	select {
	case g.ops <- op:
	case <-g.quit:
		return bbolt.ErrDatabaseNotOpen
	}
	return <-op.done
}

func (g *groupCommit) close() {
	close(g.quit)
	g.wg.Wait()
	// Operations that raced with close are answered, never left waiting.
	for {
		select {
		case op := <-g.ops:
			op.done <- bbolt.ErrDatabaseNotOpen
		default:
			return
		}
	}
}
