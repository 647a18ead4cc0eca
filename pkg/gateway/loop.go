package gateway

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strconv"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
	"k8s.io/klog/v2"
)

// The event loop: the gateway's fast path, one goroutine that reads, forwards
// and answers the common request — HTTP/1.1, simple framing, to a revision
// with a free ready pod — the way nginx's worker does: non-blocking
// sockets, one epoll set for clients and pods, no goroutine per
// connection. Go's goroutine-per-connection servers (net/http, fasthttp)
// park and wake two goroutines per proxied request through the runtime's
// poller; on this machine that cost more than nginx's whole request
// (docs/benchmarks.md). Everything else — a connection whose request the
// loop does not take (see http1.go), no free pod (queueing, cold starts),
// h2c revisions, response-start and idle timeouts — is handed with its
// connection to the net/http server and httputil.ReverseProxy (gateway.go).
// The loop's state is its own: only its goroutine touches it.

const (
	readBufSize   = 16 << 10
	clientBacklog = 256 << 10 // unsent response bytes before the pod is read no more
	keepAliveIdle = 90 * time.Second
	headerTime    = 30 * time.Second
	drainTime     = 10 * time.Second
)

type connKind uint8

const (
	clientSide connKind = iota
	podSide
)

// lconn is one socket of the loop.
type lconn struct {
	fd     int
	gen    uint32 // tells a reused fd number from the one an event was for
	kind   connKind
	events uint32 // what epoll watches
	closed bool
	in     []byte // read, not yet used
	out    []byte // to write when the socket takes it

	// client side
	ip         string
	req        requestHead
	ex         exchange // the request being served, if ex.active
	waitSince  time.Time
	flushClose bool      // close once out is written
	picked     *loopPick // the revision picked for the request handed over

	// pod side
	pool       *podPool
	connecting bool
	lastUsed   time.Time
	serving    *exchange
}

// exchange is one request on its way to a pod and its response back.
type exchange struct {
	active     bool
	client     *lconn
	pc         *lconn
	rev        *revision
	entry      hostEntry
	p          *pod
	start      time.Time
	deadline   time.Time
	headReq    bool
	attempts   int
	got, sent  bool // a response byte came from the pod / went to the client
	resp       responseHead
	headDone   bool
	remaining  int
	chunks     chunkedBody
	closeAfter bool // close the client's connection after the response
}

// podPool is the loop's idle connections to one pod.
type podPool struct {
	p    *pod
	sa   unix.Sockaddr
	idle []*lconn
}

type loop struct {
	g              *Gateway
	ep, wake       int
	lfd            int
	epf            *os.File        // ep in Go's poller: the loop parks there
	epRaw          syscall.RawConn // epf's descriptor
	events         []unix.EpollEvent
	ready          int   // events ready, from epollReady
	waitErr        error // epoll_wait's error, from epollReady
	epollReadyFunc func(uintptr) bool
	wakeBy         time.Time // epf's read deadline
	conns          []*lconn  // by fd
	gen            uint32
	pools          map[*pod]*podPool
	free           [][]byte // read buffers
	now            time.Time
	swept          time.Time
	timed          bool // some connection has a deadline within seconds
	clients        int
	stopping       bool
	stopBy         time.Time
	done           chan struct{}
	head           []byte // scratch for heads being built
	acceptBackoff  time.Duration
	acceptResume   time.Time // when set, the listener is paused until then
	acceptLog      throttledLog
}

func newLoop(g *Gateway) (*loop, error) {
	ln, ok := g.ln.(*net.TCPListener)
	if !ok {
		return nil, errors.New("gateway: the event loop needs a TCP listener")
	}
	rc, err := ln.SyscallConn()
	if err != nil {
		return nil, err
	}
	l := &loop{g: g, lfd: -1, pools: map[*pod]*podPool{}, done: make(chan struct{}), events: make([]unix.EpollEvent, 256)}
	l.epollReadyFunc = l.epollReady
	// The listener stays registered with Go's poller too; nothing waits
	// on it there, so only the loop accepts.
	if err := rc.Control(func(fd uintptr) { l.lfd = int(fd) }); err != nil {
		return nil, err
	}
	if l.ep, err = unix.EpollCreate1(unix.EPOLL_CLOEXEC); err != nil {
		return nil, err
	}
	if l.wake, err = unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC); err != nil {
		unix.Close(l.ep)
		return nil, err
	}
	for _, fd := range []int{l.lfd, l.wake} {
		if err := unix.EpollCtl(l.ep, unix.EPOLL_CTL_ADD, fd, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(fd)}); err != nil {
			unix.Close(l.ep)
			unix.Close(l.wake)
			return nil, err
		}
	}
	// An epoll set is itself readable while it has events, so Go's poller
	// can watch it: the loop never blocks its thread in a system call.
	if err := unix.SetNonblock(l.ep, true); err != nil {
		unix.Close(l.ep)
		unix.Close(l.wake)
		return nil, err
	}
	l.epf = os.NewFile(uintptr(l.ep), "gateway-epoll")
	if l.epRaw, err = l.epf.SyscallConn(); err != nil {
		l.epf.Close()
		unix.Close(l.wake)
		return nil, err
	}
	return l, nil
}

// stop makes the loop stop accepting, finish the requests it holds (up
// to drainTime) and return; Done closes then.
func (l *loop) stop() {
	var one [8]byte
	one[0] = 1
	_, _ = unix.Write(l.wake, one[:])
}

func (l *loop) run() {
	defer close(l.done)
	l.now = time.Now()
	for {
		n, err := l.wait()
		if err != nil {
			klog.ErrorS(err, "gateway: epoll_wait")
			break
		}
		l.now = time.Now()
		l.resumeAccepting()
		for i := 0; i < n; i++ {
			l.handle(l.events[i])
		}
		if l.now.Sub(l.swept) >= 100*time.Millisecond {
			l.sweep()
		}
		if l.stopping && (l.clients == 0 || l.now.After(l.stopBy)) {
			break
		}
	}
	for _, c := range l.conns {
		if c != nil {
			l.closeConn(c)
		}
	}
	l.epf.Close()
	unix.Close(l.wake)
}

// wait returns the ready events. It never sleeps in epoll_wait: when
// nothing is ready the goroutine parks in Go's poller until the set is
// readable. A thread asleep in a system call has its processor taken by
// the runtime's monitor after 20 µs, which then wakes every 20 µs while
// it keeps doing so; under load that was a third of the loop's context
// switches (docs/benchmarks.md).
func (l *loop) wait() (int, error) {
	l.setWakeBy()
	if err := l.epRaw.Read(l.epollReadyFunc); err != nil {
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return 0, nil // time to sweep
		}
		return 0, err
	}
	return l.ready, l.waitErr
}

// setWakeBy makes sure a wait ends within waitMillis. Under load the loop
// waits thousands of times a second; the deadline is moved only once it
// has passed or is too far.
func (l *loop) setWakeBy() {
	var by time.Time
	if ms := l.waitMillis(); ms >= 0 {
		by = l.now.Add(time.Duration(ms) * time.Millisecond)
		if l.wakeBy.After(l.now) && !l.wakeBy.After(by) {
			return
		}
	} else if l.wakeBy.IsZero() {
		return
	}
	l.wakeBy = by
	_ = l.epf.SetReadDeadline(by)
}

// epollReady takes the ready events without waiting; as the RawConn.Read
// callback (made once: no allocation per wait) it says whether there were
// any, or else to park until the set is readable.
func (l *loop) epollReady(uintptr) bool {
	l.ready, l.waitErr = unix.EpollWait(l.ep, l.events, 0)
	if l.waitErr == unix.EINTR {
		l.ready, l.waitErr = 0, nil
	}
	return l.ready != 0 || l.waitErr != nil
}

// waitMillis is how long a wait may last: deadlines are checked every
// 100 ms while some are near, keep-alive expiry every second otherwise.
func (l *loop) waitMillis() int {
	ms := -1
	switch {
	case l.timed || l.stopping:
		ms = 100
	case l.clients > 0 || len(l.pools) > 0:
		ms = 1000
	}
	if !l.acceptResume.IsZero() { // a paused listener, to watch again then
		if resume := max(1, int(l.acceptResume.Sub(l.now).Milliseconds())); ms < 0 || resume < ms {
			ms = resume
		}
	}
	return ms
}

func (l *loop) handle(ev unix.EpollEvent) {
	fd := int(ev.Fd)
	switch fd {
	case l.lfd:
		if !l.stopping {
			l.accept()
		}
		return
	case l.wake:
		var b [8]byte
		_, _ = unix.Read(l.wake, b[:])
		l.beginStop()
		return
	}
	if fd >= len(l.conns) {
		return
	}
	c := l.conns[fd]
	if c == nil || c.gen != uint32(ev.Pad) {
		return // the event was for an earlier socket with this number
	}
	if ev.Events&(unix.EPOLLOUT|unix.EPOLLERR|unix.EPOLLHUP) != 0 && (c.connecting || len(c.out) > 0) {
		l.writable(c)
		if c.closed {
			return
		}
	}
	if ev.Events&(unix.EPOLLIN|unix.EPOLLERR|unix.EPOLLHUP|unix.EPOLLRDHUP) != 0 && !c.connecting {
		if c.kind == clientSide {
			l.clientReadable(c)
		} else {
			l.podReadable(c)
		}
	}
}

func (l *loop) accept() {
	for range 64 {
		fd, sa, err := unix.Accept4(l.lfd, unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC)
		switch err {
		case nil:
			l.acceptBackoff = 0
		case unix.EAGAIN, unix.EINTR, unix.ECONNABORTED:
			return
		default:
			// Out of descriptors or memory: the listener stays readable,
			// so accepting again at once would spin. Pause, as net/http
			// does, and say so once in a while rather than per try.
			l.pauseAccepting(err)
			return
		}
		if !l.g.clients.admit() {
			l.refuse(fd)
			continue
		}
		_ = unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
		c, err := l.add(fd, clientSide, unix.EPOLLIN|unix.EPOLLRDHUP)
		if err != nil {
			continue
		}
		c.ip = sockaddrIP(sa)
		c.waitSince = l.now
		l.clients++
	}
}

// refuse answers a connection past the client cap with a 503 and closes it.
func (l *loop) refuse(fd int) {
	_, _ = unix.Write(fd, l.g.clients.tooManyConnections())
	// What the client already sent is read and dropped: closing a socket
	// with unread bytes resets it, and the reset can beat the 503 to
	// the client's reads.
	var drain [4096]byte
	_, _ = unix.Read(fd, drain[:])
	unix.Close(fd)
	l.acceptLog.say(l.now, "gateway: refusing client connections past the cap", "cap", l.g.clients.max)
}

// pauseAccepting stops watching the listener for a moment that doubles
// from 5 ms to 1 s while accepting keeps failing.
func (l *loop) pauseAccepting(err error) {
	l.acceptBackoff = min(max(2*l.acceptBackoff, 5*time.Millisecond), time.Second)
	l.acceptResume = l.now.Add(l.acceptBackoff)
	_ = unix.EpollCtl(l.ep, unix.EPOLL_CTL_MOD, l.lfd, &unix.EpollEvent{Fd: int32(l.lfd)})
	l.acceptLog.say(l.now, "gateway: cannot accept client connections; pausing", "err", err.Error(), "pause", l.acceptBackoff)
}

// resumeAccepting watches the listener again once the pause is over.
func (l *loop) resumeAccepting() {
	if l.acceptResume.IsZero() || l.now.Before(l.acceptResume) || l.stopping {
		return
	}
	l.acceptResume = time.Time{}
	_ = unix.EpollCtl(l.ep, unix.EPOLL_CTL_MOD, l.lfd, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(l.lfd)})
}

// throttledLog logs a message at most once per interval, with how many
// times it was said meanwhile.
type throttledLog struct {
	last     time.Time
	repeated int
}

func (t *throttledLog) say(now time.Time, msg string, kv ...any) {
	if !t.last.IsZero() && now.Sub(t.last) < 10*time.Second {
		t.repeated++
		return
	}
	klog.InfoS(msg, append(kv, "timesSinceLastLog", t.repeated)...)
	t.last, t.repeated = now, 0
}

func sockaddrIP(sa unix.Sockaddr) string {
	switch a := sa.(type) {
	case *unix.SockaddrInet4:
		return netip.AddrFrom4(a.Addr).String()
	case *unix.SockaddrInet6:
		return netip.AddrFrom16(a.Addr).Unmap().String()
	}
	return ""
}

func (l *loop) add(fd int, kind connKind, events uint32) (*lconn, error) {
	l.gen++
	c := &lconn{fd: fd, gen: l.gen, kind: kind, events: events}
	if err := unix.EpollCtl(l.ep, unix.EPOLL_CTL_ADD, fd, &unix.EpollEvent{Events: events, Fd: int32(fd), Pad: int32(c.gen)}); err != nil {
		unix.Close(fd)
		return nil, err
	}
	for fd >= len(l.conns) {
		l.conns = append(l.conns, make([]*lconn, len(l.conns)+64)...)
	}
	l.conns[fd] = c
	return c, nil
}

func (l *loop) watch(c *lconn, events uint32) {
	if c.events == events || c.closed {
		return
	}
	c.events = events
	_ = unix.EpollCtl(l.ep, unix.EPOLL_CTL_MOD, c.fd, &unix.EpollEvent{Events: events, Fd: int32(c.fd), Pad: int32(c.gen)})
}

// release forgets c without closing its descriptor.
func (l *loop) release(c *lconn) {
	if c.closed {
		return
	}
	c.closed = true
	l.conns[c.fd] = nil
	l.putBuf(c)
	c.out = nil
	if c.kind == clientSide {
		l.clients--
	}
}

func (l *loop) closeConn(c *lconn) {
	if c.closed {
		return
	}
	if c.kind == clientSide {
		l.g.clients.leave()
	}
	fd := c.fd
	l.release(c)
	unix.Close(fd) // also takes it out of the epoll set
}

// read appends what the socket has to c.in.
func (l *loop) read(c *lconn) (int, error) {
	if c.in == nil {
		if n := len(l.free); n > 0 {
			c.in, l.free = l.free[n-1], l.free[:n-1]
		} else {
			c.in = make([]byte, 0, readBufSize)
		}
	}
	if len(c.in) == cap(c.in) {
		c.in = append(c.in, make([]byte, cap(c.in))...)[:len(c.in)]
	}
	n, err := unix.Read(c.fd, c.in[len(c.in):cap(c.in)])
	if n > 0 {
		c.in = c.in[:len(c.in)+n]
	}
	return n, err
}

// consume drops the first n bytes of c.in, giving an emptied buffer back.
func (l *loop) consume(c *lconn, n int) {
	c.in = c.in[:copy(c.in, c.in[n:])]
	if len(c.in) == 0 {
		l.putBuf(c)
	}
}

func (l *loop) putBuf(c *lconn) {
	if c.in != nil && len(c.in) == 0 && cap(c.in) == readBufSize && len(l.free) < 1024 {
		l.free = append(l.free, c.in[:0])
	}
	c.in = nil
}

// write sends head and then body, keeping what the socket does not take.
// A small body is copied after the head (one write, no writev).
func (l *loop) write(c *lconn, head, body []byte) error {
	switch {
	case len(head) == 0:
		head, body = body, nil
	case len(body) > 0 && len(body) <= 4096 && cap(head)-len(head) >= len(body):
		head, body = append(head, body...), nil
	}
	if len(c.out) == 0 {
		var n int
		var err error
		if len(body) == 0 {
			n, err = unix.Write(c.fd, head)
		} else {
			n, err = unix.Writev(c.fd, [][]byte{head, body})
		}
		if err != nil && err != unix.EAGAIN {
			return err
		}
		n = max(n, 0)
		if n >= len(head)+len(body) {
			return nil
		}
		if n >= len(head) {
			head, body = nil, body[n-len(head):]
		} else {
			head = head[n:]
		}
	}
	c.out = append(append(c.out, head...), body...)
	l.watch(c, c.events|unix.EPOLLOUT)
	return nil
}

// writable finishes a connect or writes what is waiting.
func (l *loop) writable(c *lconn) {
	if c.connecting {
		c.connecting = false
		l.watch(c, unix.EPOLLIN|unix.EPOLLRDHUP)
		ex := c.serving
		if errno, err := unix.GetsockoptInt(c.fd, unix.SOL_SOCKET, unix.SO_ERROR); err != nil || errno != 0 {
			l.podFailed(ex, &net.OpError{Op: "dial", Net: "tcp", Err: unix.Errno(errno)})
			return
		}
		l.sendRequest(ex)
		return
	}
	n, err := unix.Write(c.fd, c.out)
	if err != nil && err != unix.EAGAIN {
		if c.kind == clientSide {
			l.clientGone(c)
		} else {
			l.podFailed(c.serving, err)
		}
		return
	}
	c.out = c.out[:copy(c.out, c.out[max(n, 0):])]
	if len(c.out) > 0 {
		return
	}
	c.out = nil
	l.watch(c, c.events&^unix.EPOLLOUT)
	if c.flushClose {
		l.closeConn(c)
		return
	}
	if pc := c.ex.pc; c.kind == clientSide && c.ex.active && pc != nil {
		l.watch(pc, pc.events|unix.EPOLLIN|unix.EPOLLRDHUP) // the backlog is gone: read the pod again
	}
}

func (l *loop) clientReadable(c *lconn) {
	if len(c.in) == 0 {
		c.waitSince = l.now
	}
	n, err := l.read(c)
	if err == unix.EAGAIN {
		return
	}
	if n <= 0 {
		l.clientGone(c)
		return
	}
	if !c.ex.active {
		l.serveNext(c)
	} else if len(c.in) > maxLoopHead+loopBodyInMemory {
		l.watch(c, c.events&^(unix.EPOLLIN|unix.EPOLLRDHUP)) // pipelined too far ahead: wait
	}
}

// clientGone closes a client's connection, and its request's pod
// connection: the app sees the request cancelled, as behind net/http.
func (l *loop) clientGone(c *lconn) {
	if c.ex.active {
		l.endExchange(&c.ex, false)
	}
	l.closeConn(c)
}

// serveNext starts the requests waiting in c.in, one at a time.
func (l *loop) serveNext(c *lconn) {
	for !c.closed && !c.ex.active && len(c.in) > 0 {
		switch parseRequest(c.in, &c.req) {
		case needMore:
			l.timed = true // waitSince is when this request began to arrive
			return
		case notForLoop:
			l.handOff(c)
			return
		case bothLengths:
			c.flushClose = true
			l.respond(c, http.StatusBadRequest, "a request may not have both Content-Length and Transfer-Encoding", false)
			return
		}
		c.waitSince = time.Time{}
		l.start(c)
	}
	if !c.closed && !c.ex.active && len(c.in) == 0 {
		c.waitSince = l.now // idle since
	}
}

// start routes the request at the head of c.in and sends it to a pod.
func (l *loop) start(c *lconn) {
	h := &c.req
	host := hostKey(h.host)
	if l.g.custom.Load().HasBytes(host) {
		l.handOff(c) // a custom route's rules are served by net/http
		return
	}
	entry, rev, code, msg := l.g.lookup(host, h.tag)
	if rev == nil && code == http.StatusNotFound && len(l.g.custom.Load().AnyHost()) > 0 {
		l.handOff(c) // an HTTPRoute without hostnames may serve it
		return
	}
	if rev == nil {
		if l.respond(c, code, msg, string(h.method) == http.MethodHead); c.closed {
			return
		}
		l.consume(c, h.size+h.contentLength)
		if h.close {
			l.closeWhenWritten(c)
		}
		return
	}
	if entry.route.sticky {
		l.handOff(c) // the revision comes from a cookie, the answer sets one (sticky.go)
		return
	}
	p, timeout := rev.loopReserve()
	if p == nil {
		// To wait there for a pod, or to be served as only net/http can;
		// with the revision picked here, so that a split's share does not
		// depend on which revisions happen to have a free pod.
		c.picked = &loopPick{host: string(host), tag: string(h.tag), entry: entry, rev: rev}
		l.handOff(c)
		return
	}
	c.ex = exchange{active: true, client: c, rev: rev, entry: entry, p: p, start: l.now, deadline: l.now.Add(timeout),
		headReq: string(h.method) == http.MethodHead, resp: responseHead{lines: c.ex.resp.lines[:0]}}
	l.timed = true
	l.toPod(&c.ex)
}

// closeWhenWritten closes c once what it holds for the client is written.
func (l *loop) closeWhenWritten(c *lconn) {
	c.flushClose = true
	if len(c.out) == 0 {
		l.closeConn(c)
	}
}

// toPod sends the exchange's request over a pooled or new connection.
func (l *loop) toPod(ex *exchange) {
	pc, err := l.podConn(ex.p)
	if err != nil {
		l.podFailed(ex, &net.OpError{Op: "dial", Net: "tcp", Err: err})
		return
	}
	ex.pc = pc
	pc.serving = ex
	if !pc.connecting {
		l.sendRequest(ex)
	}
}

// sendRequest writes the request as the pod gets it: the client's head
// without hop-by-hop and forwarding headers, then the gateway's.
func (l *loop) sendRequest(ex *exchange) {
	c, h := ex.client, &ex.client.req
	b := append(l.head[:0], h.method...)
	b = append(b, ' ')
	b = append(b, h.target...)
	b = append(b, " HTTP/1.1\r\nHost: "...)
	lines := h.lines
	if ex.entry.rewriteHost != "" {
		b = append(b, ex.entry.rewriteHost...)
		b = append(b, "\r\nK-Original-Host: "...)
		lines = dropHeader(lines, "k-original-host")
	}
	b = append(b, h.host...)
	b = append(b, "\r\n"...)
	for _, line := range lines {
		b = append(b, line...)
		b = append(b, "\r\n"...)
	}
	b = append(b, "X-Forwarded-For: "...)
	b = append(b, c.ip...)
	b = append(b, "\r\nX-Forwarded-Host: "...)
	b = append(b, h.host...)
	b = append(b, "\r\nX-Forwarded-Proto: http\r\nForwarded: "...)
	b = appendForwarded(b, c.ip, string(h.host))
	b = append(b, "\r\n"+RevisionHeader+": "...)
	b = append(b, ex.rev.name...)
	b = append(b, "\r\n"+NamespaceHeader+": "...)
	b = append(b, ex.rev.namespace...)
	b = append(b, "\r\n\r\n"...)
	l.head = b
	body := c.in[h.size : h.size+h.contentLength]
	if err := l.write(ex.pc, b, body); err != nil {
		l.podFailed(ex, notWrittenError{err}) // a failed first write wrote nothing
	}
}

// podConn is an idle connection to p, checked if it sat idle a while, or
// a new one (connecting, perhaps).
func (l *loop) podConn(p *pod) (*lconn, error) {
	pool := l.pools[p]
	if pool == nil {
		ap, err := netip.ParseAddrPort(p.addr)
		if err != nil {
			return nil, err
		}
		pool = &podPool{p: p}
		if ap.Addr().Is4() {
			pool.sa = &unix.SockaddrInet4{Port: int(ap.Port()), Addr: ap.Addr().As4()}
		} else {
			pool.sa = &unix.SockaddrInet6{Port: int(ap.Port()), Addr: ap.Addr().As16()}
		}
		l.pools[p] = pool
	}
	for n := len(pool.idle); n > 0; n = len(pool.idle) {
		pc := pool.idle[n-1]
		pool.idle = pool.idle[:n-1]
		if l.now.Sub(pc.lastUsed) > idleCheckAfter && closedByPeer(pc.fd) {
			l.closeConn(pc)
			continue
		}
		return pc, nil
	}
	family := unix.AF_INET
	if _, ok := pool.sa.(*unix.SockaddrInet6); ok {
		family = unix.AF_INET6
	}
	fd, err := unix.Socket(family, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	_ = unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
	connecting := false
	switch err := unix.Connect(fd, pool.sa); err {
	case nil:
	case unix.EINPROGRESS:
		connecting = true
	default:
		unix.Close(fd)
		return nil, err
	}
	events := uint32(unix.EPOLLIN | unix.EPOLLRDHUP)
	if connecting {
		events |= unix.EPOLLOUT
	}
	pc, err := l.add(fd, podSide, events)
	if err != nil {
		return nil, err
	}
	pc.pool, pc.connecting = pool, connecting
	return pc, nil
}

// closedByPeer peeks without blocking: an end of stream, an error, or
// bytes nobody asked for all mean the connection is not usable. Apps
// close idle keep-alive connections after seconds (Node.js 5 s, gunicorn
// 2 s); a request written to one would fail on its way with no safe way
// to tell whether the app saw it.
func closedByPeer(fd int) bool {
	var b [1]byte
	n, _, err := unix.Recvfrom(fd, b[:], unix.MSG_PEEK|unix.MSG_DONTWAIT)
	return err != unix.EAGAIN || n > 0
}

// idleCheckAfter is how long a pod connection must have been unused
// before its next request first checks it: under load one is reused within
// microseconds and skips the check.
const idleCheckAfter = 50 * time.Millisecond

func (l *loop) podReadable(pc *lconn) {
	n, err := l.read(pc)
	if err == unix.EAGAIN {
		return
	}
	ex := pc.serving
	if ex == nil { // idle: the pod closed it, or said something unasked
		l.dropIdle(pc)
		return
	}
	if n <= 0 {
		if err == nil && ex.headDone && ex.resp.framing == untilClose {
			l.endExchange(ex, true) // that was the end of the body
			return
		}
		if err == nil {
			err = errors.New("the pod closed the connection")
		}
		l.podFailed(ex, err)
		return
	}
	ex.got = true
	l.relay(ex)
}

// relay passes on the response bytes read from the pod.
func (l *loop) relay(ex *exchange) {
	pc, c := ex.pc, ex.client
	for len(pc.in) > 0 {
		var head []byte
		used := 0
		if !ex.headDone {
			st, err := parseResponse(pc.in, ex.headReq, &ex.resp)
			if err != nil {
				l.podFailed(ex, err)
				return
			}
			if st == needMore {
				return
			}
			r := &ex.resp
			ex.closeAfter = ex.closeAfter || c.req.close || l.stopping || r.framing == untilClose
			head = append(l.head[:0], "HTTP/1.1 "...)
			head = append(head, r.status...)
			if len(r.status) == 3 {
				head = append(head, ' ')
			}
			head = append(head, "\r\n"...)
			for _, line := range r.lines {
				head = append(head, line...)
				head = append(head, "\r\n"...)
			}
			if ex.closeAfter && !r.interim {
				head = append(head, "Connection: close\r\n"...)
			}
			head = append(head, "\r\n"...)
			l.head = head
			used = r.size
			if r.interim {
				if err := l.write(c, head, nil); err != nil {
					l.clientGone(c)
					return
				}
				ex.sent = true
				l.consume(pc, used)
				continue
			}
			ex.headDone, ex.remaining, ex.chunks = true, r.length, chunkedBody{}
		}
		body := pc.in[used:]
		n, done := len(body), false
		switch ex.resp.framing {
		case noBody:
			n, done = 0, true
		case byLength:
			n = min(n, ex.remaining)
			ex.remaining -= n
			done = ex.remaining == 0
		case chunked:
			var err error
			if n, done, err = ex.chunks.feed(body); err != nil {
				l.podFailed(ex, err)
				return
			}
		}
		if err := l.write(c, head, body[:n]); err != nil {
			l.clientGone(c)
			return
		}
		ex.sent = true
		l.consume(pc, used+n)
		if done {
			l.endExchange(ex, true)
			return
		}
		if len(c.out) > clientBacklog {
			l.watch(pc, pc.events&^(unix.EPOLLIN|unix.EPOLLRDHUP)) // the client is slow: stop reading the pod until it catches up
		}
	}
}

// timeOut ends an exchange whose timeoutSeconds passed. With nothing sent
// the client gets 504 `request timeout`; with the response under way
// `request timeout` ends its body, as upstream's queue-proxy does, where
// the framing allows: as a last chunk, or before the close that ends the
// body. A body of declared length, or one stopped inside a chunk, can
// only be cut (the connection closed).
func (l *loop) timeOut(ex *exchange) {
	const msg = "request timeout"
	c := ex.client
	switch {
	case !ex.sent:
		l.failExchange(ex, http.StatusGatewayTimeout, msg)
	case ex.headDone && ex.resp.framing == chunked && ex.chunks.atBoundary():
		l.endExchange(ex, false)
		if err := l.write(c, fmt.Appendf(l.head[:0], "%x\r\n%s\r\n0\r\n\r\n", len(msg), msg), nil); err != nil {
			l.closeConn(c)
			return
		}
		if ex.closeAfter {
			l.closeWhenWritten(c)
			return
		}
		l.serveNext(c)
	case ex.headDone && ex.resp.framing == untilClose:
		l.endExchange(ex, false)
		if err := l.write(c, []byte(msg), nil); err != nil {
			l.closeConn(c)
			return
		}
		l.closeWhenWritten(c)
	default:
		l.clientGone(c)
	}
}

// podFailed handles a pod connection that failed. The request goes again,
// to another free pod or to net/http to wait for one, only when it
// provably never reached the pod: the pod refused the connection (its
// process is gone, though the API may not say so yet), or the connection
// failed before a byte of the request was written. A request the pod may
// have read is not resent whatever its method, as it may be what killed
// the pod; the client gets 502 (or, with the response under way, its
// connection closed).
func (l *loop) podFailed(ex *exchange, err error) {
	if ex == nil || !ex.active {
		return
	}
	c := ex.client
	if ex.got || ex.sent {
		if ex.sent {
			l.endExchange(ex, false)
			l.closeConn(c)
			return
		}
		l.failExchange(ex, http.StatusBadGateway, fmt.Sprintf("error reaching revision: %v", err))
		return
	}
	refused := notSent(err)
	if refused {
		ex.rev.forget(ex.p)
	}
	if ex.attempts < maxRetries && (refused || errors.As(err, new(notWrittenError))) {
		ex.attempts++
		if ex.pc != nil {
			ex.pc.serving = nil
			l.closeConn(ex.pc)
			ex.pc = nil
		}
		ex.rev.releaseSlot(ex.p)
		if ex.p = ex.rev.retryReserve(); ex.p != nil {
			ex.got = false
			l.toPod(ex)
			return
		}
		ex.active = false
		l.handOff(c)
		return
	}
	l.failExchange(ex, http.StatusBadGateway, fmt.Sprintf("error reaching revision: %v", err))
}

// failExchange answers a request that got no response with code and msg.
func (l *loop) failExchange(ex *exchange, code int, msg string) {
	ex.resp.code = code
	l.endExchange(ex, false)
	c := ex.client
	if c.closed {
		return
	}
	if c.req.close {
		c.flushClose = true
	}
	if l.respond(c, code, msg, ex.headReq); !c.closed && !c.flushClose {
		l.serveNext(c)
	}
}

// endExchange frees the pod slot, records the request and, unless the
// client's connection is to close, goes on to its next request. podOK says
// the pod's connection is at a response's end and may be reused.
func (l *loop) endExchange(ex *exchange, podOK bool) {
	ex.active = false
	ex.rev.releaseSlot(ex.p)
	if ex.resp.code != 0 {
		ex.rev.metrics().observe(ex.resp.code, l.now.Sub(ex.start))
	}
	if pc := ex.pc; pc != nil {
		pc.serving, ex.pc = nil, nil
		if podOK && !ex.resp.close && len(pc.in) == 0 && len(pc.out) == 0 && !ex.p.gone.Load() {
			pc.lastUsed = l.now
			l.watch(pc, unix.EPOLLIN|unix.EPOLLRDHUP)
			pc.pool.idle = append(pc.pool.idle, pc)
		} else {
			l.closeConn(pc)
		}
	}
	c := ex.client
	if c.closed {
		return
	}
	l.consume(c, c.req.size+c.req.contentLength)
	l.watch(c, c.events|unix.EPOLLIN|unix.EPOLLRDHUP)
	if podOK && ex.closeAfter {
		l.closeWhenWritten(c)
		return
	}
	if podOK {
		l.serveNext(c)
	}
}

// respond writes a short plain-text answer, as http.Error does (without
// the body for a HEAD request).
func (l *loop) respond(c *lconn, code int, msg string, headReq bool) {
	b := append(l.head[:0], "HTTP/1.1 "...)
	b = strconv.AppendInt(b, int64(code), 10)
	b = append(b, ' ')
	b = append(b, http.StatusText(code)...)
	b = append(b, "\r\nContent-Type: text/plain; charset=utf-8\r\nX-Content-Type-Options: nosniff\r\nContent-Length: "...)
	b = strconv.AppendInt(b, int64(len(msg)+1), 10)
	if l.stopping || c.flushClose {
		b = append(b, "\r\nConnection: close"...)
		c.flushClose = true
	}
	b = append(b, "\r\n\r\n"...)
	if !headReq {
		b = append(b, msg...)
		b = append(b, '\n')
	}
	l.head = b
	if err := l.write(c, b, nil); err != nil {
		l.closeConn(c)
		return
	}
	if c.flushClose && len(c.out) == 0 {
		l.closeConn(c)
	}
}

// dropIdle closes an idle pod connection the pod closed.
func (l *loop) dropIdle(pc *lconn) {
	idle := pc.pool.idle
	for i, x := range idle {
		if x == pc {
			pc.pool.idle = append(idle[:i], idle[i+1:]...)
			break
		}
	}
	l.closeConn(pc)
}

// handOff gives the client's connection to the net/http server, with what
// the loop read of it and has not answered replayed first.
func (l *loop) handOff(c *lconn) {
	_ = unix.EpollCtl(l.ep, unix.EPOLL_CTL_DEL, c.fd, nil)
	f := os.NewFile(uintptr(c.fd), "client")
	nc, err := net.FileConn(f) // a duplicate, in Go's poller
	f.Close()
	unread := append([]byte(nil), c.in...)
	unsent := c.out
	l.release(c)
	if err != nil {
		l.g.clients.leave()
		klog.ErrorS(err, "gateway: handing a connection over")
		return
	}
	pc := &prefixConn{countedConn: countedConn{Conn: nc, limit: &l.g.clients}, prefix: unread, picked: c.picked}
	c.picked = nil
	go func() {
		if len(unsent) > 0 {
			if _, err := nc.Write(unsent); err != nil {
				pc.Close()
				return
			}
		}
		l.g.slow.push(pc)
	}()
}

// sweep enforces deadlines: a request's timeoutSeconds (504 `request
// timeout` if nothing was written), 30 s for a request head and 600 s for
// its body, keep-alive idleness, and idle pod connections.
func (l *loop) sweep() {
	l.swept = l.now
	l.timed = false
	for _, c := range l.conns {
		if c == nil || c.kind != clientSide {
			continue
		}
		switch {
		case c.ex.active:
			l.timed = true
			if l.now.After(c.ex.deadline) {
				l.timeOut(&c.ex)
			}
		case len(c.in) > 0:
			l.timed = true
			limit := headerTime
			if c.req.size > 0 && len(c.in) >= c.req.size {
				limit = maxBodyTime
			}
			if l.now.Sub(c.waitSince) > limit {
				l.closeConn(c)
			}
		case l.stopping && len(c.out) == 0, l.now.Sub(c.waitSince) > keepAliveIdle:
			l.closeConn(c) // idle, or not reading what it was sent
		}
	}
	for p, pool := range l.pools {
		kept := pool.idle[:0]
		for _, pc := range pool.idle {
			if p.gone.Load() || l.now.Sub(pc.lastUsed) > keepAliveIdle {
				l.closeConn(pc)
			} else {
				kept = append(kept, pc)
			}
		}
		pool.idle = kept
		if len(kept) == 0 && p.gone.Load() {
			delete(l.pools, p)
		}
	}
}

// beginStop stops accepting and closes idle connections; requests under
// way finish, and their connections close after them.
func (l *loop) beginStop() {
	if l.stopping {
		return
	}
	l.stopping = true
	l.stopBy = l.now.Add(drainTime)
	_ = unix.EpollCtl(l.ep, unix.EPOLL_CTL_DEL, l.lfd, nil)
	l.g.ln.Close()
	l.sweep()
}

// maxBodyTime bounds the time a request body may take to arrive:
// upstream's max-revision-timeout-seconds.
const maxBodyTime = 600 * time.Second
