// Package gctune sets the garbage collector's target by the process's load.
// knd holds the API server's heap: a tight target keeps an idle server
// small, but under load (many objects created at once, a stream of requests
// through the gateway) the same target spends a third of the CPU marking
// that heap. So the target is lean while the process is idle and Go's
// default while it is busy. While idle, it also collects and gives memory
// back every so often: the few megabytes a minute an idle server allocates
// (leases, resyncs) would otherwise stay resident until the next
// collection, minutes later, and the runtime returns freed memory slowly.
package gctune

import (
	"context"
	"runtime/debug"
	"syscall"
	"time"
)

// Policy is when to switch targets.
type Policy struct {
	Idle, Busy int           // GOGC values
	BusyCPU    time.Duration // CPU time per second above which the process is busy
	IdleAfter  time.Duration // quiet time before going back to Idle
	TrimEvery  time.Duration // while idle, collect and return memory this often (0: never)
}

// Default: lean (40) when idle, Go's default (100) while knd uses more than
// a third of a core, back to lean after 10 quiet seconds; while idle, memory
// is returned every 30 s (a collection of the idle heap costs ~0.1 s of CPU).
var Default = Policy{Idle: 40, Busy: 100, BusyCPU: 330 * time.Millisecond, IdleAfter: 10 * time.Second, TrimEvery: 30 * time.Second}

// Run applies p until ctx ends, sampling the process's CPU time each second.
func Run(ctx context.Context, p Policy) {
	debug.SetGCPercent(p.Idle)
	t := tuner{policy: p}
	last := cpuTime()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-tick.C:
			used := cpuTime()
			switch t.observe(used-last, now) {
			case becameBusy:
				debug.SetGCPercent(p.Busy)
			case becameIdle:
				debug.SetGCPercent(p.Idle)
				// Give the memory the busy period grew back to the system now
				// rather than over the scavenger's minutes.
				debug.FreeOSMemory()
			case trimIdle:
				debug.FreeOSMemory()
			}
			last = used
		}
	}
}

type change int

const (
	unchanged change = iota
	becameBusy
	becameIdle
	trimIdle // still idle, and time to return memory
)

// tuner decides from one second's CPU time at a time.
type tuner struct {
	policy     Policy
	busy       bool
	quietSince time.Time
	lastTrim   time.Time
}

func (t *tuner) observe(used time.Duration, now time.Time) change {
	switch {
	case used > t.policy.BusyCPU:
		t.quietSince = time.Time{}
		if !t.busy {
			t.busy = true
			return becameBusy
		}
	case !t.busy:
		if t.policy.TrimEvery > 0 && now.Sub(t.lastTrim) >= t.policy.TrimEvery {
			t.lastTrim = now
			return trimIdle
		}
	case t.quietSince.IsZero():
		t.quietSince = now
	case now.Sub(t.quietSince) >= t.policy.IdleAfter:
		t.busy = false
		t.lastTrim = now
		return becameIdle
	}
	return unchanged
}

// cpuTime is the user and system CPU time the process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
