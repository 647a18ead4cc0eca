// Package autoscaler is knd's KPA: per revision it averages the
// concurrency the gateway sees over a stable and a panic window, decides
// a pod count with upstream's rules, and applies it through the
// Deployment's scale subresource, including scale to zero and back.
package autoscaler

import (
	"math"
	"time"
)

// window averages one sample per second over its size.
type window struct {
	size    time.Duration
	buckets map[int64]bucket
}

type bucket struct {
	sum float64
	n   int
}

func newWindow(size time.Duration) *window {
	return &window{size: size, buckets: map[int64]bucket{}}
}

func (w *window) record(t time.Time, v float64) {
	s := t.Unix()
	b := w.buckets[s]
	b.sum += v
	b.n++
	w.buckets[s] = b
	for k := range w.buckets {
		if k <= s-int64(w.size/time.Second)-1 {
			delete(w.buckets, k)
		}
	}
}

// average is the mean of the per-second values within the window; false
// when the window holds no data.
func (w *window) average(now time.Time) (float64, bool) {
	from := now.Add(-w.size).Unix()
	var total float64
	var n int
	for s, b := range w.buckets {
		if s > from && s <= now.Unix() {
			total += b.sum / float64(b.n)
			n++
		}
	}
	if n == 0 {
		return 0, false
	}
	return total / float64(n), true
}

// Decider is one revision's KPA decision logic (upstream
// pkg/autoscaler/scaling/autoscaler.go).
type Decider struct {
	Target           float64 // concurrent requests per pod
	PanicThreshold   float64 // e.g. 2.0 for 200 %
	MaxScaleUpRate   float64
	MaxScaleDownRate float64
	StableWindow     time.Duration
	Reachable        bool

	stable, panic *window
	panicSince    time.Time
	maxPanicPods  int32
}

// NewDecider returns a decider with empty windows; panicWindow is
// derived from the stable window like upstream.
func NewDecider(target, panicThreshold, maxUp, maxDown float64, stableWindow, panicWindow time.Duration) *Decider {
	return &Decider{Target: max(target, 0.01), PanicThreshold: panicThreshold, MaxScaleUpRate: maxUp,
		MaxScaleDownRate: maxDown, StableWindow: stableWindow, Reachable: true,
		stable: newWindow(stableWindow), panic: newWindow(panicWindow)}
}

// Record adds a concurrency sample.
func (d *Decider) Record(t time.Time, concurrency float64) {
	d.stable.record(t, concurrency)
	d.panic.record(t, concurrency)
}

// Decide returns the desired pod count given the ready pods; false when
// there is no data to decide on.
func (d *Decider) Decide(now time.Time, readyPods int) (int32, bool) {
	stable, ok := d.stable.average(now)
	if !ok {
		return 0, false
	}
	panicValue, _ := d.panic.average(now)
	ready := float64(max(1, readyPods))
	maxUp := int32(math.Ceil(d.MaxScaleUpRate * ready))
	maxDown := int32(0)
	if d.Reachable {
		maxDown = int32(math.Floor(ready / d.MaxScaleDownRate))
	}
	dspc := int32(math.Ceil(stable / d.Target))
	dppc := int32(math.Ceil(panicValue / d.Target))
	desiredStable := min(max(dspc, maxDown), maxUp)
	desiredPanic := min(max(dppc, maxDown), maxUp)

	switch {
	case float64(dppc)/ready >= d.PanicThreshold:
		d.panicSince = now // enter or extend panic
	case !d.panicSince.IsZero() && now.Sub(d.panicSince) >= d.StableWindow:
		d.panicSince, d.maxPanicPods = time.Time{}, 0
	}
	desired := desiredStable
	if !d.panicSince.IsZero() {
		// In panic, never scale down.
		desired = max(desiredStable, desiredPanic, d.maxPanicPods)
		d.maxPanicPods = desired
	}
	return desired, true
}

// InPanic says whether the decider is in panic mode.
func (d *Decider) InPanic() bool { return !d.panicSince.IsZero() }
