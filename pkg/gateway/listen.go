package gateway

import (
	"bytes"
	"io"
	"net"
	"sync"
	"time"
)

// The gateway has two HTTP servers on one port: fasthttp for the common
// HTTP/1.x request (fast.go) and net/http for everything else. Connections
// reach net/http two ways: a client that opens with the HTTP/2 preface
// (h2c with prior knowledge), told apart when the connection is accepted
// (sortConnections), and a request fasthttp hands over (handOff), replayed
// on its hijacked connection.

// h2Preface is how an HTTP/2 client without TLS opens a connection.
var h2Preface = []byte("PRI ")

// sortConnections accepts connections from ln until it closes and queues
// those that open with the HTTP/2 preface on slow, the others (HTTP/1.x)
// on http1.
func sortConnections(ln net.Listener, http1, slow *connQueue) {
	for {
		c, err := ln.Accept()
		if err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				continue
			}
			return
		}
		go sortConnection(c, http1, slow)
	}
}

// sortConnection reads the first four bytes (no request is shorter) and
// queues the connection by them.
func sortConnection(c net.Conn, http1, slow *connQueue) {
	var head [4]byte
	_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
	if _, err := io.ReadFull(c, head[:]); err != nil {
		c.Close()
		return
	}
	_ = c.SetReadDeadline(time.Time{})
	pc := &prefixConn{Conn: c, prefix: head[:]}
	if bytes.Equal(head[:], h2Preface) {
		slow.push(pc)
	} else {
		http1.push(pc)
	}
}

// prefixConn gives back the bytes sniffed off a connection before the
// rest of it.
type prefixConn struct {
	net.Conn
	prefix []byte
}

func (c *prefixConn) Read(p []byte) (int, error) {
	if len(c.prefix) > 0 {
		n := copy(p, c.prefix)
		c.prefix = c.prefix[n:]
		return n, nil
	}
	return c.Conn.Read(p)
}

// connQueue is a listener fed with connections by the gateway itself: one
// for each server.
type connQueue struct {
	addr    net.Addr
	conns   chan net.Conn
	closed  chan struct{}
	once    sync.Once
	onClose func() // also run on Close, if set
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
	q.once.Do(func() {
		close(q.closed)
		if q.onClose != nil {
			q.onClose()
		}
	})
	return nil
}

func (q *connQueue) Addr() net.Addr { return q.addr }

// handedConn is a connection fasthttp hijacked and gave to net/http: it
// reads the replayed request first, and says when net/http closed it.
type handedConn struct {
	net.Conn
	r    io.Reader
	done chan struct{}
	once sync.Once
}

func (c *handedConn) Read(p []byte) (int, error) { return c.r.Read(p) }

func (c *handedConn) Close() error {
	var err error
	c.once.Do(func() {
		err = c.Conn.Close()
		close(c.done)
	})
	return err
}
