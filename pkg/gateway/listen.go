package gateway

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// The gateway has two HTTP servers on one port: the event loop (loop.go)
// for the common HTTP/1.1 request and net/http for everything else, which
// gets its connections from the loop through a connQueue.

// prefixConn gives back the bytes the loop read off a connection before
// the rest of it.
type prefixConn struct {
	countedConn
	prefix []byte
	picked *loopPick // for the first request in prefix, if the loop routed it
}

// loopPick is the loop's routing of a request it handed over: net/http
// serves that request by it instead of picking again.
type loopPick struct {
	host, tag string
	entry     hostEntry
	rev       *revision
	used      atomic.Bool
}

type pickKey struct{}

// connContext hands the loop's pick to the connection's requests.
func connContext(ctx context.Context, c net.Conn) context.Context {
	if pc, ok := c.(*prefixConn); ok && pc.picked != nil {
		return context.WithValue(ctx, pickKey{}, pc.picked)
	}
	return ctx
}

// pickOf is the loop's pick for r, once: only the connection's first
// request had it.
func pickOf(r *http.Request, host, tag []byte) *loopPick {
	p, ok := r.Context().Value(pickKey{}).(*loopPick)
	if !ok || p.host != string(host) || p.tag != string(tag) || !p.used.CompareAndSwap(false, true) {
		return nil
	}
	return p
}

func (c *prefixConn) Read(p []byte) (int, error) {
	if len(c.prefix) > 0 {
		n := copy(p, c.prefix)
		c.prefix = c.prefix[n:]
		return n, nil
	}
	return c.Conn.Read(p)
}

// connQueue is a listener fed with connections by the gateway itself.
type connQueue struct {
	addr   net.Addr
	conns  chan net.Conn
	closed chan struct{}
	once   sync.Once
}

func newConnQueue(addr net.Addr) *connQueue {
	return &connQueue{addr: addr, conns: make(chan net.Conn), closed: make(chan struct{})}
}

// push hands c to the server, or closes it once the server has stopped.
func (q *connQueue) push(c net.Conn) {
	select {
	case q.conns <- c:
	case <-q.closed:
		c.Close()
	}
}

func (q *connQueue) Accept() (net.Conn, error) {
	select {
	case c := <-q.conns:
		return c, nil
	case <-q.closed:
		return nil, net.ErrClosed
	}
}

func (q *connQueue) Close() error {
	q.once.Do(func() { close(q.closed) })
	return nil
}

func (q *connQueue) Addr() net.Addr { return q.addr }

// clientLimit caps the client connections the gateway holds on both paths
// together, so that knd's API server and etcd, which share its file table,
// always keep descriptors: past the cap a new client gets a 503 and is
// closed. Connections from pods (Options.PodAddress) count too.
type clientLimit struct {
	max  int64
	open atomic.Int64
}

// DefaultMaxConnections is the client connection cap for a process allowed
// nofile descriptors: a quarter of them, as each client may hold a pod
// connection too and the rest is the control plane's.
func DefaultMaxConnections(nofile uint64) int {
	return int(max(64, min(nofile/4, 1<<20)))
}

// admit counts a new connection in, or says it is one too many.
func (l *clientLimit) admit() bool {
	if l.open.Add(1) > l.max {
		l.open.Add(-1)
		return false
	}
	return true
}

func (l *clientLimit) leave() { l.open.Add(-1) }

// tooManyConnections is the whole answer to a connection past the cap.
func (l *clientLimit) tooManyConnections() []byte {
	body := fmt.Sprintf("gateway: too many client connections (the cap is %d); retry later\n", l.max)
	return fmt.Appendf(nil, "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: %d\r\nConnection: close\r\nRetry-After: 1\r\n\r\n%s", len(body), body)
}

// countedConn leaves the limit when it is closed, once.
type countedConn struct {
	net.Conn
	limit  *clientLimit
	closed atomic.Bool
}

func (c *countedConn) Close() error {
	if c.closed.CompareAndSwap(false, true) {
		c.limit.leave()
	}
	return c.Conn.Close()
}

// limitedListener admits the connections a net/http server accepts.
type limitedListener struct {
	net.Listener
	limit *clientLimit
}

func (ln limitedListener) Accept() (net.Conn, error) {
	for {
		c, err := ln.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if ln.limit.admit() {
			return &countedConn{Conn: c, limit: ln.limit}, nil
		}
		_ = c.SetWriteDeadline(time.Now().Add(time.Second))
		_, _ = c.Write(ln.limit.tooManyConnections())
		c.Close()
	}
}
