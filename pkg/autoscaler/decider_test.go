package autoscaler

import (
	"testing"
	"time"
)

func feed(d *Decider, start time.Time, seconds int, v float64) time.Time {
	t := start
	for i := 0; i < seconds; i++ {
		t = t.Add(time.Second)
		d.Record(t, v)
	}
	return t
}

func TestStableDecision(t *testing.T) {
	// containerConcurrency 10 → target 7 (70 % utilization).
	d := NewDecider(7, 2, 1000, 2, 60*time.Second, 6*time.Second)
	now := feed(d, time.Unix(1000, 0), 60, 21)
	if got, ok := d.Decide(now, 3); !ok || got != 3 {
		t.Fatalf("21 concurrent at target 7 with 3 pods: %d %v, want 3", got, ok)
	}
	if d.InPanic() {
		t.Error("steady load should not panic")
	}
}

func TestNoDataNoDecision(t *testing.T) {
	d := NewDecider(7, 2, 1000, 2, 60*time.Second, 6*time.Second)
	if _, ok := d.Decide(time.Unix(1000, 0), 1); ok {
		t.Error("decided without data")
	}
}

func TestScaleDownRateLimit(t *testing.T) {
	d := NewDecider(1, 2, 1000, 2, 6*time.Second, time.Second)
	now := feed(d, time.Unix(1000, 0), 6, 0)
	// 10 ready pods, no load: at most halve (max-scale-down-rate 2).
	if got, _ := d.Decide(now, 10); got != 5 {
		t.Errorf("desired %d, want 5", got)
	}
	d.Reachable = false
	if got, _ := d.Decide(now, 10); got != 0 {
		t.Errorf("unreachable: desired %d, want 0", got)
	}
}

func TestPanicHoldsTheMaximum(t *testing.T) {
	d := NewDecider(1, 2, 1000, 2, 60*time.Second, 6*time.Second)
	now := feed(d, time.Unix(1000, 0), 54, 1)
	now = feed(d, now, 6, 20) // a burst: panic window average 20
	got, _ := d.Decide(now, 1)
	if !d.InPanic() || got != 20 {
		t.Fatalf("burst: desired %d panic %v, want 20 in panic", got, d.InPanic())
	}
	// The burst ends; in panic the count never drops.
	now = feed(d, now, 6, 1)
	if got, _ := d.Decide(now, 20); got != 20 || !d.InPanic() {
		t.Errorf("after burst: desired %d panic %v, want 20 still in panic", got, d.InPanic())
	}
	// A stable window without the panic condition ends panic.
	now = feed(d, now, 60, 1)
	if got, _ := d.Decide(now, 20); d.InPanic() || got != 10 {
		t.Errorf("a minute later: desired %d panic %v, want 10 (halving) out of panic", got, d.InPanic())
	}
}

func TestScaleDownDelayKeepsTheWindowMaximum(t *testing.T) {
	st := &paState{}
	t0 := time.Unix(1000, 0)
	if got := st.delayed(t0, 5, 10*time.Second); got != 5 {
		t.Fatalf("first decision %d", got)
	}
	if got := st.delayed(t0.Add(4*time.Second), 1, 10*time.Second); got != 5 {
		t.Errorf("a dip within the delay scaled down to %d", got)
	}
	if got := st.delayed(t0.Add(11*time.Second), 1, 10*time.Second); got != 1 {
		t.Errorf("after the delay: %d, want 1", got)
	}
	if got := st.delayed(t0.Add(12*time.Second), 0, 0); got != 0 {
		t.Errorf("no delay: %d, want 0", got)
	}
}
