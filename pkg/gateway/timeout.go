package gateway

import (
	"errors"
	"sync"
	"time"
)

// errRequestTimeout ends a request whose revision's responseStartTimeoutSeconds
// or idleTimeoutSeconds passed; like timeoutSeconds it answers 504
// `request timeout` if nothing was written yet.
var errRequestTimeout = errors.New("request timeout")

// watchdog fires when the response does not start within responseStart,
// or when idle passes without a write.
type watchdog struct {
	mu      sync.Mutex
	timer   *time.Timer
	idle    time.Duration
	fire    func()
	stopped bool
}

func startWatchdog(responseStart, idle time.Duration, fire func()) *watchdog {
	w := &watchdog{idle: idle, fire: fire}
	first := responseStart
	if first <= 0 {
		first = idle
	}
	if first > 0 {
		w.timer = time.AfterFunc(first, fire)
	}
	return w
}

// wrote notes a write: the response has started, and idle time restarts.
func (w *watchdog) wrote() {
	w.mu.Lock()
	defer w.mu.Unlock()
	switch {
	case w.stopped:
	case w.idle > 0 && w.timer != nil:
		w.timer.Reset(w.idle)
	case w.idle > 0:
		w.timer = time.AfterFunc(w.idle, w.fire)
	case w.timer != nil:
		w.timer.Stop()
		w.timer = nil
	}
}

func (w *watchdog) stop() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.stopped = true
	if w.timer != nil {
		w.timer.Stop()
	}
}
