// Package tcprelay relays TCP connections from one address to another,
// bytes unchanged: pods reach the API server through it (TLS end to end,
// the server's certificate names the relay's address) without the API
// server listening where pods can reach its other ports.
package tcprelay

import (
	"errors"
	"io"
	"net"
	"sync"
	"time"

	"k8s.io/klog/v2"
)

// Relay accepts on one address and connects each client to the target.
type Relay struct {
	ln     net.Listener
	target string
	slots  chan struct{}
	wg     sync.WaitGroup
	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool
}

// Start listens on listen and relays up to max connections at once to
// target; a client past max is closed at once.
func Start(listen, target string, max int) (*Relay, error) {
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return nil, err
	}
	r := &Relay{ln: ln, target: target, slots: make(chan struct{}, max), conns: map[net.Conn]struct{}{}}
	r.wg.Add(1)
	go r.accept()
	return r, nil
}

// Addr is where the relay listens.
func (r *Relay) Addr() net.Addr { return r.ln.Addr() }

func (r *Relay) accept() {
	defer r.wg.Done()
	delay := 5 * time.Millisecond
	for {
		c, err := r.ln.Accept()
		if errors.Is(err, net.ErrClosed) {
			return
		}
		if err != nil {
			// Out of descriptors: wait instead of spinning.
			klog.ErrorS(err, "tcp relay: accepting", "address", r.ln.Addr())
			time.Sleep(delay)
			delay = min(2*delay, time.Second)
			continue
		}
		delay = 5 * time.Millisecond
		select {
		case r.slots <- struct{}{}:
		default:
			c.Close() // over the limit
			continue
		}
		if !r.track(c) {
			<-r.slots
			c.Close()
			return
		}
		r.wg.Add(1)
		go r.relay(c)
	}
}

func (r *Relay) track(c net.Conn) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return false
	}
	r.conns[c] = struct{}{}
	return true
}

func (r *Relay) forget(c net.Conn) {
	r.mu.Lock()
	delete(r.conns, c)
	r.mu.Unlock()
}

func (r *Relay) relay(client net.Conn) {
	defer r.wg.Done()
	defer func() { <-r.slots }()
	defer r.forget(client)
	defer client.Close()
	server, err := net.DialTimeout("tcp", r.target, 5*time.Second)
	if err != nil {
		return
	}
	if !r.track(server) {
		server.Close()
		return
	}
	defer r.forget(server)
	defer server.Close()
	done := make(chan struct{}, 2)
	pipe := func(dst, src net.Conn) {
		_, _ = io.Copy(dst, src)
		// Half-close, so the other direction can finish what it sends.
		if tc, ok := dst.(*net.TCPConn); ok {
			_ = tc.CloseWrite()
		}
		done <- struct{}{}
	}
	go pipe(server, client)
	go pipe(client, server)
	<-done
	<-done
}

// Close stops accepting, closes every relayed connection and waits for the
// relay's goroutines.
func (r *Relay) Close() error {
	err := r.ln.Close()
	r.mu.Lock()
	r.closed = true
	for c := range r.conns {
		c.Close()
	}
	r.mu.Unlock()
	r.wg.Wait()
	return err
}
