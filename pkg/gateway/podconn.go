package gateway

import (
	"errors"
	"net"
	"syscall"
	"time"

	"github.com/valyala/fasthttp"
)

// errPodClosedIdle says a pooled connection to a pod was closed by the pod
// while it sat idle; nothing of the request was sent, so any request can
// go again on a new connection.
var errPodClosedIdle = errors.New("the pod closed the idle connection")

// idleCheckAfter is how long a connection must have been unused before
// its next request first checks (one non-blocking peek) that the pod has
// not closed it: apps close idle keep-alive connections after seconds
// (Node.js 5 s, gunicorn 2 s), and a request written to one would fail
// once on its way, with no safe way to tell whether the pod saw it. Under
// load a connection is reused within microseconds and skips the check.
const idleCheckAfter = 50 * time.Millisecond

// podConn is a connection to a pod that knows when it last sent a request.
// (A response follows its request within the timeout, so the time since
// the last write is the connection's idle time, give or take the
// response's own; measuring reads as well would cost a clock read each.)
type podConn struct {
	*net.TCPConn
	lastWrite time.Time
}

func dialPod(d *net.Dialer, addr string) (net.Conn, error) {
	c, err := d.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	return &podConn{TCPConn: c.(*net.TCPConn), lastWrite: time.Now()}, nil
}

func (c *podConn) Write(p []byte) (int, error) {
	now := time.Now()
	if now.Sub(c.lastWrite) > idleCheckAfter && c.closedByPeer() {
		return 0, errPodClosedIdle
	}
	c.lastWrite = now
	return c.TCPConn.Write(p)
}

// closedByPeer peeks at the socket without blocking: an end of stream, an
// error, or bytes nobody asked for (a 408 before the close) all mean the
// connection is not usable for a new request.
func (c *podConn) closedByPeer() bool {
	raw, err := c.SyscallConn()
	if err != nil {
		return true
	}
	var buf [1]byte
	closed := false
	if err := raw.Read(func(fd uintptr) bool {
		n, _, err := syscall.Recvfrom(int(fd), buf[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		closed = !errors.Is(err, syscall.EAGAIN) || n > 0
		return true
	}); err != nil {
		return true
	}
	return closed
}

// retryClosedIdle is the pod clients' retry rule: a request that found its
// connection closed by the pod goes again whatever its method; otherwise
// fasthttp's own rule (idempotent methods only).
func retryClosedIdle(req *fasthttp.Request, _ int, err error) (resetTimeout, retry bool) {
	if errors.Is(err, errPodClosedIdle) {
		return false, true
	}
	return false, req.Header.IsGet() || req.Header.IsHead() || req.Header.IsPut()
}
