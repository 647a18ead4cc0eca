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
// (h2c with prior knowledge), told apart when the connection is accepted,
// and a request fasthttp hands over (handOff), replayed on its hijacked
// connection.

// h2Preface is how an HTTP/2 client without TLS opens a connection.
var h2Preface = []byte("PRI ")

// sniffListener accepts connections and passes those that open with the
// HTTP/2 preface to slow; Accept returns the others (HTTP/1.x).
type sniffListener struct {
	net.Listener
	slow   *connQueue
	http1  chan net.Conn
	closed chan struct{}
	once   sync.Once
}

func newSniffListener(ln net.Listener, slow *connQueue) *sniffListener {
	s := &sniffListener{Listener: ln, slow: slow, http1: make(chan net.Conn), closed: make(chan struct{})}
	go s.acceptLoop()
	return s
}

func (s *sniffListener) acceptLoop() {
	for {
		c, err := s.Listener.Accept()
		if err != nil {
			select {
			case <-s.closed:
				return
			default:
			}
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				continue
			}
			_ = s.Close()
			return
		}
		go s.sniff(c)
	}
}

// sniff reads the first four bytes (no request is shorter) and routes the
// connection by them.
func (s *sniffListener) sniff(c net.Conn) {
	var head [4]byte
	_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
	if _, err := io.ReadFull(c, head[:]); err != nil {
		c.Close()
		return
	}
	_ = c.SetReadDeadline(time.Time{})
	pc := &prefixConn{Conn: c, prefix: head[:]}
	if bytes.Equal(head[:], h2Preface) {
		s.slow.push(pc)
		return
	}
	select {
	case s.http1 <- pc:
	case <-s.closed:
		c.Close()
	}
}

func (s *sniffListener) Accept() (net.Conn, error) {
	select {
	case c := <-s.http1:
		return c, nil
	case <-s.closed:
		return nil, net.ErrClosed
	}
}

func (s *sniffListener) Close() error {
	var err error
	s.once.Do(func() {
		close(s.closed)
		err = s.Listener.Close()
	})
	return err
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

// connQueue is a listener fed with connections by the gateway itself:
// the net/http server's.
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
