package gateway

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	servingv1 "github.com/knd-dev/knd/pkg/apis/serving/v1"
	"golang.org/x/sys/unix"
)

// readResponse reads one response off conn.
func readResponse(t *testing.T, conn net.Conn) (int, string) {
	t.Helper()
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("reading a response: %v", err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

func pollUntil(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(timeout); !cond(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// TestClientConnectionCap: past the cap a new client gets a 503 with the
// reason and is closed; connections on both paths count, and closing them
// lets new clients in again.
func TestClientConnectionCap(t *testing.T) {
	const limit = 4
	gw, _, _, g := startGatewayWith(t, Options{MaxConnections: limit}, 0)
	var held []net.Conn
	for i := range limit {
		conn := rawConn(t, gw)
		host := "web.ns.example.com"
		if i%2 == 1 {
			host = "slow.ns.example.com" // served by net/http, handed over
		}
		fmt.Fprintf(conn, "GET /proto HTTP/1.1\r\nHost: %s\r\n\r\n", host)
		if code, body := readResponse(t, conn); code != 200 {
			t.Fatalf("request %d within the cap: %d %q", i, code, body)
		}
		held = append(held, conn)
	}
	over := rawConn(t, gw)
	fmt.Fprintf(over, "GET /proto HTTP/1.1\r\nHost: web.ns.example.com\r\n\r\n")
	code, body := readResponse(t, over)
	if want := "gateway: too many client connections (the cap is 4); retry later\n"; code != 503 || body != want {
		t.Errorf("a connection past the cap got %d %q, want 503 %q", code, body, want)
	}
	if _, err := over.Read(make([]byte, 1)); err != io.EOF {
		t.Errorf("the refused connection was not closed: %v", err)
	}
	for _, c := range held {
		c.Close()
	}
	pollUntil(t, 5*time.Second, "the closed connections to leave the count", func() bool { return g.clients.open.Load() == 0 })
	res, got := send(t, "GET", gw+"/proto", "slow.ns.example.com", nil, nil)
	if res.StatusCode != 200 {
		t.Errorf("after the connections closed: %d %q", res.StatusCode, got)
	}
}

// TestAcceptPausesWithoutDescriptors: when the process is out of file
// descriptors the gateway neither spins on its listener nor dies; it takes
// the waiting client once descriptors are free again.
func TestAcceptPausesWithoutDescriptors(t *testing.T) {
	gw, _, _, _ := startGateway(t, 0)
	if res, body := send(t, "GET", gw+"/proto", "web.ns.example.com", nil, nil); res.StatusCode != 200 {
		t.Fatalf("before: %d %q", res.StatusCode, body) // the gateway is up, with its descriptors
	}
	var old unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &old); err != nil {
		t.Fatal(err)
	}
	lowered := old
	lowered.Cur = 256
	if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &lowered); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = unix.Setrlimit(unix.RLIMIT_NOFILE, &old) })
	// Fill the descriptor table, then free one for the client's socket.
	var fillers []*os.File
	defer func() {
		for _, f := range fillers {
			f.Close()
		}
	}()
	for {
		f, err := os.Open(os.DevNull)
		if err != nil {
			if !errors.Is(err, syscall.EMFILE) {
				t.Fatal(err)
			}
			break
		}
		fillers = append(fillers, f)
	}
	fillers[len(fillers)-1].Close()
	fillers = fillers[:len(fillers)-1]
	conn, err := net.DialTimeout("tcp", strings.TrimPrefix(gw, "http://"), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(conn, "GET /proto HTTP/1.1\r\nHost: web.ns.example.com\r\n\r\n")

	// A second of failing accepts: a loop retrying at once would burn it
	// all on the CPU.
	before := cpuTime(t)
	time.Sleep(time.Second)
	if used := cpuTime(t) - before; used > 300*time.Millisecond {
		t.Errorf("the process used %s of CPU in 1 s while out of descriptors", used)
	}
	for _, f := range fillers {
		f.Close()
	}
	fillers = nil
	if code, body := readResponse(t, conn); code != 200 || body != "HTTP/1.1\n" {
		t.Errorf("the client that waited got %d %q", code, body)
	}
}

func cpuTime(t *testing.T) time.Duration {
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_SELF, &ru); err != nil {
		t.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// crashingPod answers /proto with its protocol and dies on /crash: it
// closes every connection and its listener without answering, as a
// process that crashed on a request would.
func crashingPod(t *testing.T, crashes *atomic.Int32) string {
	return podServer(t, func(c net.Conn, req *http.Request, die func()) bool {
		if req.URL.Path == "/crash" {
			crashes.Add(1)
			die()
			return false
		}
		_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nHTTP/1.1\n")
		return true
	})
}

// TestCrashingRequestIsNotResent: a GET that kills its pod once the pod
// has it gets the client one 502; it is not resent to the revision's other
// pod (which it would kill too). On both paths, over pooled connections.
func TestCrashingRequestIsNotResent(t *testing.T) {
	gw, _, _, g := startGateway(t, 0)
	for _, host := range []string{"web", "slow"} {
		t.Run(host, func(t *testing.T) {
			var crashes atomic.Int32
			g.revision("ns", host+"-00001").setPods(map[string]string{
				"pod-a": crashingPod(t, &crashes), "pod-b": crashingPod(t, &crashes)})
			conn := rawConn(t, gw)
			for range 4 { // connections to both pods go to the pools
				fmt.Fprintf(conn, "GET /proto HTTP/1.1\r\nHost: %s.ns.example.com\r\n\r\n", host)
				if code, body := readResponse(t, conn); code != 200 {
					t.Fatalf("/proto: %d %q", code, body)
				}
			}
			fmt.Fprintf(conn, "GET /crash HTTP/1.1\r\nHost: %s.ns.example.com\r\n\r\n", host)
			code, body := readResponse(t, conn)
			if code != http.StatusBadGateway || !strings.HasPrefix(body, "error reaching revision") {
				t.Errorf("the crashing request got %d %q, want 502 error reaching revision", code, body)
			}
			if n := crashes.Load(); n != 1 {
				t.Errorf("the request crashed %d pods, want 1", n)
			}
		})
	}
}

// TestRequestFramingErrors: a request with both Content-Length and
// Transfer-Encoding is answered 400 and its connection closed (RFC 9112
// §6.1), never kept alive; a malformed chunked body is the client's error,
// a 400, not a 502.
func TestRequestFramingErrors(t *testing.T) {
	gw, _, _, _ := startGateway(t, 0)
	for name, head := range map[string]string{
		"loop":      "POST /body HTTP/1.1\r\nHost: web.ns.example.com\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
		"te first":  "POST /body HTTP/1.1\r\nHost: web.ns.example.com\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n",
		"http/1.0":  "POST /body HTTP/1.0\r\nHost: web.ns.example.com\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
		"expect":    "POST /body HTTP/1.1\r\nHost: web.ns.example.com\r\nExpect: 100-continue\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n",
		"net/http ": "POST /body HTTP/1.1\r\nHost: slow.ns.example.com\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
	} {
		t.Run(name, func(t *testing.T) {
			conn := rawConn(t, gw)
			fmt.Fprint(conn, head+"5\r\nhello\r\n0\r\n\r\nGET /proto HTTP/1.1\r\nHost: web.ns.example.com\r\n\r\n")
			br := bufio.NewReader(conn)
			res, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(res.Body)
			if want := "a request may not have both Content-Length and Transfer-Encoding\n"; res.StatusCode != 400 || string(body) != want || !res.Close {
				t.Errorf("got %d %q (close %v), want 400 %q and Connection: close", res.StatusCode, body, res.Close, want)
			}
			if rest, err := io.ReadAll(br); err != nil || len(rest) > 0 {
				t.Errorf("after the 400 the connection gave %q, %v; want it closed", rest, err)
			}
		})
	}
	for _, host := range []string{"web", "slow"} {
		t.Run("malformed chunk "+host, func(t *testing.T) {
			conn := rawConn(t, gw)
			fmt.Fprintf(conn, "POST /body HTTP/1.1\r\nHost: %s.ns.example.com\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\nzz\r\n", host)
			code, body := readResponse(t, conn)
			if code != 400 || !strings.HasPrefix(body, "malformed request body: ") {
				t.Errorf("got %d %q, want 400 malformed request body", code, body)
			}
		})
	}
}

// TestTimeoutAfterResponseStarted: when timeoutSeconds passes after the pod
// sent its headers, the client keeps the status and gets `request timeout`
// at the end of a properly ended body, as upstream's queue-proxy does.
func TestTimeoutAfterResponseStarted(t *testing.T) {
	gw, _, _, g := startGateway(t, 0)
	for _, host := range []string{"web", "slow"} {
		t.Run(host, func(t *testing.T) {
			rev := g.revision("ns", host+"-00001")
			rev.mu.Lock()
			rev.timeout = 500 * time.Millisecond
			rev.mu.Unlock()
			conn := rawConn(t, gw)
			br := bufio.NewReader(conn)
			for i := range 2 { // the connection stays usable after the first
				fmt.Fprintf(conn, "GET /stream HTTP/1.1\r\nHost: %s.ns.example.com\r\n\r\n", host)
				res, err := http.ReadResponse(br, nil)
				if err != nil {
					t.Fatal(err)
				}
				body, err := io.ReadAll(res.Body)
				if res.StatusCode != 200 || string(body) != "first\nrequest timeout" || err != nil {
					t.Fatalf("request %d: %d %q %v, want 200 %q and a whole body", i, res.StatusCode, body, err, "first\nrequest timeout")
				}
			}
		})
	}
}

// TestSplitShareOfColdRevision: in a 50/50 split, a revision with no pod
// (scaled to zero) gets half of the first requests, as upstream's activator
// gives it; a request the event loop routed to it and handed over to wait
// is not routed again by net/http to the revision that has a free pod.
func TestSplitShareOfColdRevision(t *testing.T) {
	_, _, _, g := startGateway(t, 0)
	g.table.Store(&table{hosts: map[string]hostEntry{
		"split.ns.example.com": {route: &routeEntry{namespace: "ns", name: "split", splits: map[string][]servingv1.Split{
			"": {{Revision: "web-00001", Percent: 50}, {Revision: "cold-00001", Percent: 50}}}}},
	}})
	const n = 100
	for range n {
		conn := rawConn(t, "http://"+g.Addr().String())
		fmt.Fprint(conn, "GET /proto HTTP/1.1\r\nHost: split.ns.example.com\r\n\r\n")
		go func() { _, _ = io.Copy(io.Discard, conn) }()
	}
	var warm, cold int
	pollUntil(t, 10*time.Second, "every request answered or waiting", func() bool {
		warm, cold = int(g.Stats("ns", "web-00001").Requests), g.Stats("ns", "cold-00001").Queued
		return warm+cold == n
	})
	if cold < 35 {
		t.Errorf("the cold revision got %d of %d requests (the warm one %d), want about half", cold, n, warm)
	}
}

// TestBothLengthsOnNetHTTPConnection: on a connection net/http already
// serves (here: the revision needs net/http's path), a request with both
// Content-Length and Transfer-Encoding is answered by its chunks and the
// connection is closed after it, never kept alive.
func TestBothLengthsOnNetHTTPConnection(t *testing.T) {
	gw, _, _, _ := startGateway(t, 0)
	conn := rawConn(t, gw)
	br := bufio.NewReader(conn)
	fmt.Fprint(conn, "GET /proto HTTP/1.1\r\nHost: slow.ns.example.com\r\n\r\n")
	res, err := http.ReadResponse(br, nil)
	if err != nil || res.Close {
		t.Fatalf("first request: %v (close %v)", err, res != nil && res.Close)
	}
	_, _ = io.Copy(io.Discard, res.Body)
	fmt.Fprint(conn, "POST /body HTTP/1.1\r\nHost: slow.ns.example.com\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n")
	res, err = http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	if !res.Close {
		t.Errorf("the answer to a request with both lengths (%d %q) keeps the connection", res.StatusCode, body)
	}
	if rest, err := io.ReadAll(br); err != nil || len(rest) > 0 {
		t.Errorf("after it the connection gave %q, %v; want it closed", rest, err)
	}
}
