package gctune

import (
	"testing"
	"time"
)

func TestBusyThenIdleAfterQuietTime(t *testing.T) {
	tu := tuner{policy: Default, lastTrim: time.Unix(0, 0)}
	start := time.Unix(0, 0)
	at := func(s int) time.Time { return start.Add(time.Duration(s) * time.Second) }
	steps := []struct {
		used time.Duration
		sec  int
		want change
	}{
		{100 * time.Millisecond, 1, unchanged}, // idle stays idle
		{900 * time.Millisecond, 2, becameBusy},
		{500 * time.Millisecond, 3, unchanged},  // still busy
		{10 * time.Millisecond, 4, unchanged},   // quiet from here
		{10 * time.Millisecond, 13, unchanged},  // 9 s quiet
		{400 * time.Millisecond, 14, unchanged}, // busy again: the quiet time restarts
		{10 * time.Millisecond, 15, unchanged},
		{10 * time.Millisecond, 24, unchanged},
		{10 * time.Millisecond, 25, becameIdle}, // 10 s quiet
		{10 * time.Millisecond, 26, unchanged},
	}
	for _, s := range steps {
		if got := tu.observe(s.used, at(s.sec)); got != s.want {
			t.Errorf("at %d s with %v used: %v, want %v", s.sec, s.used, got, s.want)
		}
	}
}

// While idle, memory is returned every TrimEvery, counted from the last
// return (becoming idle returns memory too); never while busy.
func TestIdleTrimsEveryPeriod(t *testing.T) {
	start := time.Unix(0, 0)
	tu := tuner{policy: Default, lastTrim: start}
	at := func(s int) time.Time { return start.Add(time.Duration(s) * time.Second) }
	steps := []struct {
		used time.Duration
		sec  int
		want change
	}{
		{10 * time.Millisecond, 29, unchanged},
		{10 * time.Millisecond, 30, trimIdle},
		{10 * time.Millisecond, 59, unchanged},
		{10 * time.Millisecond, 60, trimIdle},
		{900 * time.Millisecond, 61, becameBusy},
		{900 * time.Millisecond, 95, unchanged}, // busy: no trim
		{10 * time.Millisecond, 96, unchanged},
		{10 * time.Millisecond, 106, becameIdle}, // returns memory itself
		{10 * time.Millisecond, 135, unchanged},
		{10 * time.Millisecond, 136, trimIdle},
	}
	for _, s := range steps {
		if got := tu.observe(s.used, at(s.sec)); got != s.want {
			t.Errorf("at %d s with %v used: %v, want %v", s.sec, s.used, got, s.want)
		}
	}
}
