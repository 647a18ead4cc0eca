package gateway

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"
)

// MaxQueue bounds the requests one revision holds while it has no free
// pod; past it, callers get 503.
const MaxQueue = 10000

var errQueueFull = errors.New("too many requests waiting for this revision")

// pod is one ready pod of a revision and the requests it is serving.
type pod struct {
	name     string
	addr     string // host:port
	inflight int
	// gone says the revision dropped the pod: the event loop closes its
	// idle connections to it.
	gone atomic.Bool
}

// revision holds a revision's ready pods and enforces its
// containerConcurrency: a pod never gets more requests at once, and
// requests beyond the pods' capacity wait (bounded) for a free one.
type revision struct {
	namespace, name string

	allMetrics  *metrics
	metricsOnce sync.Once
	series      *revisionMetrics // its own, made on first use

	mu          sync.Mutex
	concurrency int           // 0: unlimited
	h2c         atomic.Bool   // its port is named h2c: HTTP/2 without TLS
	timeout     time.Duration // revision timeoutSeconds
	// responseStart and idle are responseStartTimeoutSeconds and
	// idleTimeoutSeconds; 0 means none.
	responseStart, idle time.Duration
	pods                []*pod
	queued              int
	inflight            int
	changed             chan struct{} // closed and replaced when a pod or a slot frees up
	lastRequest         time.Time
	requests            uint64 // arrivals so far, for the rps metric
	// told holds what the node agent said of a pod's readiness before the
	// API shows it, and until when that word beats the API's.
	told map[string]toldState
}

type toldState struct {
	ready bool
	addr  string
	until time.Time
}

// toldFor is how long the node agent's word on a pod beats the API's: the
// time its status write takes to come back through the informer.
const toldFor = 3 * time.Second

func newRevision(ns, name string, m *metrics) *revision {
	return &revision{namespace: ns, name: name, changed: make(chan struct{}), timeout: 300 * time.Second, allMetrics: m}
}

// metrics are the revision's series, made when it first serves a request
// (not for every revision the API lists).
func (r *revision) metrics() *revisionMetrics {
	r.metricsOnce.Do(func() { r.series = r.allMetrics.forRevision(r.namespace, r.name) })
	return r.series
}

// setPods replaces the ready pods, keeping the counts of pods that stay.
func (r *revision) setPods(ready map[string]string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := time.Now()
	if ready == nil {
		ready = map[string]string{}
	}
	for name, t := range r.told {
		switch {
		case now.After(t.until):
			delete(r.told, name)
		case t.ready:
			ready[name] = t.addr
		default:
			delete(ready, name)
		}
	}
	kept := r.pods[:0:0]
	for _, p := range r.pods {
		if addr, ok := ready[p.name]; ok && addr == p.addr {
			kept = append(kept, p)
			delete(ready, p.name)
		} else {
			p.gone.Store(true)
		}
	}
	for name, addr := range ready {
		kept = append(kept, &pod{name: name, addr: addr})
	}
	r.pods = kept
	r.signal()
}

func (r *revision) signal() {
	close(r.changed)
	r.changed = make(chan struct{})
}

// acquire waits for a pod with a free slot and reserves it. waiting is
// called once if the request has to wait for a pod to exist (a cold start).
func (r *revision) acquire(ctx context.Context, waiting func()) (*pod, func(), error) {
	r.mu.Lock()
	r.lastRequest = time.Now()
	r.requests++
	queued := false
	defer func() {
		if queued {
			r.queued--
		}
		r.mu.Unlock()
	}()
	for {
		if p := r.reserveFree(false); p != nil { // counted on arrival, above
			return p, r.releaser(p), nil
		}
		if !queued {
			if r.queued >= MaxQueue {
				return nil, nil, errQueueFull
			}
			r.queued++
			queued = true
			if len(r.pods) == 0 && waiting != nil {
				go waiting()
			}
		}
		ch := r.changed
		r.mu.Unlock()
		select {
		case <-ch:
			r.mu.Lock()
		case <-ctx.Done():
			r.mu.Lock()
			return nil, nil, ctx.Err()
		}
	}
}

// retryReserve takes a slot of a free pod without waiting for a request
// retried on another pod (counted already on arrival), or returns nil.
func (r *revision) retryReserve() *pod {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.reserveFree(false)
}

// loopReserve takes a slot of a free pod without waiting, counting the
// request, and returns the revision's timeoutSeconds with it; it takes
// nothing from a revision whose protocol or timeouts only net/http handles
// (h2c, response-start and idle timeouts).
func (r *revision) loopReserve() (*pod, time.Duration) {
	if r.isH2C() {
		return nil, 0
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.responseStart != 0 || r.idle != 0 {
		return nil, 0
	}
	return r.reserveFree(true), r.timeout
}

// reserveFree takes a slot of the least busy free pod (r.mu held).
func (r *revision) reserveFree(arrival bool) *pod {
	p := r.freePod()
	if p == nil {
		return nil
	}
	if arrival {
		r.lastRequest = time.Now()
		r.requests++
	}
	p.inflight++
	r.inflight++
	return p
}

// freePod is the least busy pod with room, or nil.
func (r *revision) freePod() *pod {
	var best *pod
	for _, p := range r.pods {
		if r.concurrency > 0 && p.inflight >= r.concurrency {
			continue
		}
		if best == nil || p.inflight < best.inflight {
			best = p
		}
	}
	return best
}

// releaser gives back p's slot, once however often it is called.
func (r *revision) releaser(p *pod) func() {
	var once sync.Once
	return func() { once.Do(func() { r.releaseSlot(p) }) }
}

// releaseSlot gives back a slot of p.
func (r *revision) releaseSlot(p *pod) {
	r.mu.Lock()
	defer r.mu.Unlock()
	p.inflight--
	r.inflight--
	r.lastRequest = time.Now()
	if r.queued > 0 {
		r.signal()
	}
}

// Stats is what the autoscaler reads about a revision.
type Stats struct {
	InFlight, Queued, ReadyPods int
	LastRequest                 time.Time
	// Requests counts the requests that arrived since the gateway started.
	Requests uint64
}

func (r *revision) stats() Stats {
	r.mu.Lock()
	defer r.mu.Unlock()
	return Stats{InFlight: r.inflight, Queued: r.queued, ReadyPods: len(r.pods), LastRequest: r.lastRequest, Requests: r.requests}
}

// forget drops a pod that refused a connection (its process is gone,
// though the API may not say so yet); the next resync brings it back if it
// is still ready.
func (r *revision) forget(gone *pod) {
	r.mu.Lock()
	defer r.mu.Unlock()
	gone.gone.Store(true)
	for i, p := range r.pods {
		if p == gone {
			r.pods = append(r.pods[:i:i], r.pods[i+1:]...)
			return
		}
	}
}

func (r *revision) isH2C() bool { return r.h2c.Load() }

// podReadiness applies the node agent's word that a pod became ready or
// stopped being ready, ahead of the API: a cold request is forwarded the
// moment its pod is ready, and none goes to a pod that is shutting down.
func (r *revision) podReadiness(name, addr string, ready bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.told == nil {
		r.told = map[string]toldState{}
	}
	r.told[name] = toldState{ready: ready, addr: addr, until: time.Now().Add(toldFor)}
	kept := r.pods[:0:0]
	present := false
	for _, p := range r.pods {
		if p.name == name {
			if !ready {
				p.gone.Store(true)
				continue
			}
			present = true
		}
		kept = append(kept, p)
	}
	if ready && !present {
		kept = append(kept, &pod{name: name, addr: addr})
	}
	r.pods = kept
	r.signal()
}
