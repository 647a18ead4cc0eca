package warm

import (
	"errors"
	"sync"
	"testing"
	"time"
)

type counter struct {
	mu                 sync.Mutex
	created, discarded int
	fail               bool
}

func (c *counter) create() (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.fail {
		return 0, errors.New("cannot make one")
	}
	c.created++
	return c.created, nil
}

func (c *counter) discard(int) { c.mu.Lock(); c.discarded++; c.mu.Unlock() }

func (c *counter) counts() (int, int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.created, c.discarded
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestPoolKeepsSizeReadyAndRefillsAfterADelay(t *testing.T) {
	c := &counter{}
	p := New(2, c.create, c.discard)
	waitFor(t, "two made ahead", func() bool { created, _ := c.counts(); return created == 2 })
	taken := time.Now()
	if v, err := p.Get(); err != nil || v != 1 {
		t.Fatalf("Get = %d, %v; want the first made ahead", v, err)
	}
	if created, _ := c.counts(); created != 2 {
		t.Fatalf("Get made one of its own (%d made) while one was ready", created)
	}
	waitFor(t, "a refill", func() bool { created, _ := c.counts(); return created == 3 })
	if d := time.Since(taken); d < RefillDelay {
		t.Errorf("refilled %s after a take; want at least %s", d, RefillDelay)
	}
	p.Close()
	if _, discarded := c.counts(); discarded != 2 {
		t.Errorf("Close discarded %d; want the 2 ready", discarded)
	}
}

func TestPoolGetCreatesWhenNoneIsReady(t *testing.T) {
	c := &counter{fail: true}
	p := New(1, c.create, c.discard)
	defer p.Close()
	if _, err := p.Get(); err == nil || err.Error() != "cannot make one" {
		t.Fatalf("Get = %v; want create's error", err)
	}
	c.mu.Lock()
	c.fail = false
	c.mu.Unlock()
	if v, err := p.Get(); err != nil || v != 1 {
		t.Fatalf("Get = %d, %v; want one made on the spot", v, err)
	}
}

func TestPoolOfSizeZeroCreatesOnGet(t *testing.T) {
	c := &counter{}
	p := New(0, c.create, c.discard)
	p.Close() // returns at once: nothing fills a pool of size 0
	if v, err := p.Get(); err != nil || v != 1 {
		t.Fatalf("Get = %d, %v; want one made on the spot", v, err)
	}
	if created, discarded := c.counts(); created != 1 || discarded != 0 {
		t.Fatalf("made %d, discarded %d; want 1 and 0", created, discarded)
	}
}
