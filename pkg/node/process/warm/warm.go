// Package warm keeps a few things made ahead of need (sandbox inits
// started, pod networks made), so that a cold start takes one that is
// ready instead of waiting for it to be made.
package warm

import (
	"sync"
	"time"
)

// RefillDelay is how long a pool waits after one was taken before it
// makes the next: making one costs CPU, which would otherwise be taken
// from the container that is starting with it (on 2 cores).
const RefillDelay = 100 * time.Millisecond

// retryDelay is how long a pool waits after making one failed.
const retryDelay = time.Second

// Pool holds up to size things made ahead.
type Pool[T any] struct {
	create  func() (T, error)
	discard func(T)
	ready   chan T
	taken   chan struct{} // signalled when Get takes a ready one
	stop    chan struct{}
	stopped sync.Once
	filling chan struct{} // closed when fill has returned
}

// New starts filling a pool of size made by create; discard releases one
// that is never taken (0: Get always creates its own).
func New[T any](size int, create func() (T, error), discard func(T)) *Pool[T] {
	p := &Pool[T]{create: create, discard: discard, ready: make(chan T, size), taken: make(chan struct{}, 1),
		stop: make(chan struct{}), filling: make(chan struct{})}
	if size > 0 {
		go func() { defer close(p.filling); p.fill() }()
	} else {
		close(p.filling)
	}
	return p
}

// Get returns a ready one, or creates one when none is.
func (p *Pool[T]) Get() (T, error) {
	select {
	case v := <-p.ready:
		select {
		case p.taken <- struct{}{}:
		default:
		}
		return v, nil
	default:
		return p.create()
	}
}

// fill keeps the pool topped up. It is the only sender on ready, so a
// send below capacity never blocks.
func (p *Pool[T]) fill() {
	for {
		wait := time.Duration(0)
		if len(p.ready) == cap(p.ready) {
			select {
			case <-p.taken:
				wait = RefillDelay
			case <-p.stop:
				return
			}
		} else if v, err := p.create(); err != nil {
			wait = retryDelay // Get creates its own meanwhile, and reports why it cannot
		} else {
			p.ready <- v
		}
		if wait > 0 {
			select {
			case <-time.After(wait):
			case <-p.stop:
				return
			}
		}
	}
}

// Close stops filling and discards what is ready.
func (p *Pool[T]) Close() {
	p.stopped.Do(func() { close(p.stop) })
	<-p.filling
	for {
		select {
		case v := <-p.ready:
			p.discard(v)
		default:
			return
		}
	}
}
