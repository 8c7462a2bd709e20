// Package clock is the mock's injectable time source: real time plus an offset that tests advance, so
// codes and tokens expire without sleeping.
package clock

import (
	"sync"
	"time"
)

// Clock tells the time.
type Clock interface {
	Now() time.Time
}

// Offset is the wall clock shifted by an adjustable offset. The zero value is the wall clock.
type Offset struct {
	mu     sync.RWMutex
	offset time.Duration
}

// Now returns the wall-clock time plus the offset.
func (o *Offset) Now() time.Time {
	o.mu.RLock()
	defer o.mu.RUnlock()
	return time.Now().Add(o.offset)
}

// Advance moves the clock forward by d (negative d is ignored: time does not run backwards).
func (o *Offset) Advance(d time.Duration) {
	if d <= 0 {
		return
	}
	o.mu.Lock()
	o.offset += d
	o.mu.Unlock()
}

// Offset returns how far the clock has been advanced.
func (o *Offset) Offset() time.Duration {
	o.mu.RLock()
	defer o.mu.RUnlock()
	return o.offset
}
