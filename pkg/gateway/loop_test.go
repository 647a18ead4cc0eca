package gateway

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// podServer is a raw pod: it reads the requests on each connection and
// gives each to answer, until answer says to stop with that connection.
// die, passed to answer, closes the listener and every connection, as a
// process that crashed would.
func podServer(t *testing.T, answer func(c net.Conn, req *http.Request, die func()) bool) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	var mu sync.Mutex
	var conns []net.Conn
	die := func() {
		ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				for {
					req, err := http.ReadRequest(br)
					if err != nil || !answer(c, req, die) {
						return
					}
				}
			}()
		}
	}()
	return ln.Addr().String()
}

// rawPod is a pod that answers each request on a connection with the
// canned response named by its path, exactly as written; "/close/..."
// responses close the connection after writing.
func rawPod(t *testing.T, responses map[string]string) string {
	return podServer(t, func(c net.Conn, req *http.Request, _ func()) bool {
		_, _ = io.Copy(io.Discard, req.Body)
		_, err := io.WriteString(c, responses[req.URL.Path])
		return err == nil && !strings.HasPrefix(req.URL.Path, "/close/")
	})
}

// The loop passes a pod's response framing through: chunks (trailers
// included), a body that ends with the connection, HEAD and 204 without
// bodies, and 1xx interim responses before the final one; the client's
// connection stays usable after each, except after a body that ended
// with the pod's connection.
func TestResponseFraming(t *testing.T) {
	gw, _, _, g := startGateway(t, 0)
	pod := rawPod(t, map[string]string{
		"/chunked":    "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum\r\n\r\n5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Sum: 42\r\n\r\n",
		"/head":       "HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\n",
		"/nocontent":  "HTTP/1.1 204 No Content\r\nX-A: b\r\n\r\n",
		"/interim":    "HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nbody",
		"/close/http": "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the end",
	})
	g.revision("ns", "web-00001").setPods(map[string]string{"raw-pod": pod})
	conn := rawConn(t, gw)
	br := bufio.NewReader(conn)
	do := func(method, path string) (*http.Response, string) {
		t.Helper()
		fmt.Fprintf(conn, "%s %s HTTP/1.1\r\nHost: web.ns.example.com\r\n\r\n", method, path)
		resp, err := http.ReadResponse(br, &http.Request{Method: method})
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatalf("%s %s: body: %v", method, path, err)
		}
		return resp, string(b)
	}
	if resp, body := do("GET", "/chunked"); body != "hello world" || resp.Trailer.Get("X-Sum") != "42" {
		t.Errorf("chunked: %q, trailer %v", body, resp.Trailer)
	}
	if resp, body := do("HEAD", "/head"); resp.ContentLength != 11 || body != "" {
		t.Errorf("HEAD: length %d, body %q", resp.ContentLength, body)
	}
	if resp, body := do("GET", "/nocontent"); resp.StatusCode != 204 || resp.Header.Get("X-A") != "b" || body != "" {
		t.Errorf("204: %d %v %q", resp.StatusCode, resp.Header, body)
	}
	if resp, _ := do("GET", "/interim"); resp.StatusCode != 103 || resp.Header.Get("Link") != "</s.css>; rel=preload" {
		t.Errorf("interim: %d %v", resp.StatusCode, resp.Header)
	}
	if resp, err := http.ReadResponse(br, nil); err != nil {
		t.Errorf("after 103: %v", err)
	} else if b, _ := io.ReadAll(resp.Body); resp.StatusCode != 200 || string(b) != "body" {
		t.Errorf("after 103: %d %q", resp.StatusCode, b)
	}
	if resp, body := do("GET", "/close/http"); body != "until the end" || !resp.Close {
		t.Errorf("body until close: %q, close %v", body, resp.Close)
	}
	if _, err := br.ReadByte(); err != io.EOF {
		t.Errorf("the client's connection stayed open after a body that ended with the pod's: %v", err)
	}
}

// A client that goes away while its request is at the pod cancels it
// there: the pod's request context ends, as behind upstream's proxies.
func TestClientGoneCancelsPodRequest(t *testing.T) {
	gw, _, _, g := startGateway(t, 0)
	cancelled := make(chan struct{})
	pod := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done()
		close(cancelled)
	}))
	t.Cleanup(pod.Close)
	g.revision("ns", "web-00001").setPods(map[string]string{"waiting-pod": strings.TrimPrefix(pod.URL, "http://")})
	conn := rawConn(t, gw)
	fmt.Fprint(conn, "GET /wait HTTP/1.1\r\nHost: web.ns.example.com\r\n\r\n")
	time.Sleep(100 * time.Millisecond) // the request reaches the pod
	conn.Close()
	select {
	case <-cancelled:
	case <-time.After(5 * time.Second):
		t.Fatal("the pod's request was not cancelled when the client went away")
	}
}

// Requests the loop does not parse reach net/http, which answers as it
// always does: a malformed header line is a 400.
func TestMalformedRequestGoesToNetHTTP(t *testing.T) {
	gw, _, _, _ := startGateway(t, 0)
	conn := rawConn(t, gw)
	fmt.Fprint(conn, "GET /headers HTTP/1.1\r\nHost: web.ns.example.com\r\nNo colon here\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("malformed header line: %d, want 400", resp.StatusCode)
	}
}

// timeoutSeconds on the loop: 504 `request timeout` when the pod has not
// answered in time, and the connection serves the next request.
func TestLoopRequestTimeout(t *testing.T) {
	gw, release, _, g := startGateway(t, 0)
	rev := g.revision("ns", "web-00001")
	rev.mu.Lock()
	rev.timeout = 300 * time.Millisecond
	rev.mu.Unlock()
	start := time.Now()
	resp, body := send(t, http.MethodGet, gw+"/hold", "web.ns.example.com", nil, nil)
	if resp.StatusCode != http.StatusGatewayTimeout || body != "request timeout\n" {
		t.Errorf("held request: %d %q", resp.StatusCode, body)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("the 300 ms timeout took %v", took)
	}
	close(release)
	if resp, body := send(t, http.MethodGet, gw+"/proto", "web.ns.example.com", nil, nil); resp.StatusCode != 200 || body != "HTTP/1.1\n" {
		t.Errorf("after the timeout: %d %q", resp.StatusCode, body)
	}
}

// The chunked framing finds a body's end however its bytes arrive.
func TestChunkedBodyEnd(t *testing.T) {
	body := "4\r\nWiki\r\n5;name=v\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n0\r\nExpires: never\r\n\r\n"
	for _, step := range []int{1, 2, 7, len(body)} {
		var c chunkedBody
		used, done := 0, false
		for i := 0; i < len(body) && !done; i += step {
			n, d, err := c.feed([]byte(body[i:min(i+step, len(body))]))
			if err != nil {
				t.Fatalf("step %d at %d: %v", step, i, err)
			}
			used, done = used+n, d
		}
		if !done || used != len(body) {
			t.Errorf("step %d: done %v after %d of %d bytes", step, done, used, len(body))
		}
	}
	var c chunkedBody
	if n, done, _ := c.feed([]byte(body + "HTTP/1.1 200 OK\r\n")); !done || n != len(body) {
		t.Errorf("with the next response after it: %d bytes, done %v", n, done)
	}
	for _, bad := range []string{"x\r\n", "4\r\nWikiX", "1000000000000000\r\n", "\r\n"} {
		var c chunkedBody
		if _, _, err := c.feed([]byte(bad)); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

// Every header name the loop acts on is recognised in any case.
func TestHeaderIDs(t *testing.T) {
	for name, id := range headerIDs {
		for _, n := range []string{name, strings.ToUpper(name), http.CanonicalHeaderKey(name)} {
			if got := headerID([]byte(n)); got != id {
				t.Errorf("%q: %d, want %d", n, got, id)
			}
		}
	}
	if got := headerID([]byte("X-Other")); got != hOther {
		t.Errorf("X-Other: %d", got)
	}
}
