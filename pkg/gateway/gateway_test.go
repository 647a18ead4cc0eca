package gateway

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	servingv1 "github.com/knd-dev/knd/pkg/apis/serving/v1"
)

// The gateway's serving half against real HTTP servers standing in for
// pods: routes and pods are set directly instead of coming from the API.

// testPod is a pod's server: it echoes what it was sent.
func testPod(t *testing.T) (*httptest.Server, chan struct{}) {
	release := make(chan struct{})
	mux := http.NewServeMux()
	mux.HandleFunc("/headers", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Pod", "yes")
		w.Header().Set("X-Forwarded-Host", "pod.example") // the pod's own, passed back
		w.Header().Set("Keep-Alive", "timeout=5")         // its connection's, not passed back
		var lines []string
		for k, v := range r.Header {
			lines = append(lines, k+": "+strings.Join(v, ","))
		}
		sort.Strings(lines)
		fmt.Fprintf(w, "Host: %s\n%s\n", r.Host, strings.Join(lines, "\n"))
	})
	mux.HandleFunc("/body", func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		fmt.Fprintf(w, "%s %d %x\n", r.Method, len(b), sha256.Sum256(b))
	})
	mux.HandleFunc("/big", func(w http.ResponseWriter, r *http.Request) {
		n, _ := strconv.Atoi(r.URL.Query().Get("n"))
		w.Header().Set("Content-Length", strconv.Itoa(n))
		_, _ = w.Write(bytes.Repeat([]byte("x"), n))
	})
	mux.HandleFunc("/hold", func(w http.ResponseWriter, r *http.Request) {
		<-release
		fmt.Fprintln(w, "released")
	})
	mux.HandleFunc("/stream", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(http.StatusOK)
		_ = http.NewResponseController(w).Flush() // the header alone first
		if r.URL.Query().Get("first") != "" {
			<-release
		}
		fmt.Fprintln(w, "first")
		_ = http.NewResponseController(w).Flush()
		<-release
		fmt.Fprintln(w, "second")
	})
	mux.HandleFunc("/upgrade", func(w http.ResponseWriter, r *http.Request) {
		conn, buf, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		buf.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\n")
		buf.Flush()
		_, _ = io.Copy(conn, buf)
	})
	mux.HandleFunc("/proto", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, r.Proto) })
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Echo-Uri") != "" { // before the mux, which cleans paths
			fmt.Fprintln(w, r.RequestURI)
			return
		}
		mux.ServeHTTP(w, r)
	}))
	t.Cleanup(s.Close)
	t.Cleanup(func() {
		select {
		case <-release:
		default:
			close(release)
		}
	})
	return s, release
}

// startGateway serves host web.ns.example.com (revision web-00001) and
// slow.ns.example.com (revision slow-00001, which has an idle timeout and
// so always takes the net/http path), each on its own pod.
func startGateway(t *testing.T, concurrency int) (gw string, webPod, slowPod chan struct{}, g *Gateway) {
	return startGatewayWith(t, Options{}, concurrency)
}

// startGatewayWith is startGateway with more options.
func startGatewayWith(t *testing.T, opts Options, concurrency int) (gw string, webPod, slowPod chan struct{}, g *Gateway) {
	opts.Address = "127.0.0.1:0"
	g, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	split := func(rev string) map[string][]servingv1.Split {
		return map[string][]servingv1.Split{"": {{Revision: rev, Percent: 100}}}
	}
	g.table.Store(&table{hosts: map[string]hostEntry{
		"web.ns.example.com":  {route: &routeEntry{namespace: "ns", name: "web", splits: split("web-00001")}},
		"slow.ns.example.com": {route: &routeEntry{namespace: "ns", name: "slow", splits: split("slow-00001")}},
	}})
	web, webRelease := testPod(t)
	slow, slowRelease := testPod(t)
	w := g.revision("ns", "web-00001")
	w.concurrency = concurrency
	w.setPods(map[string]string{"web-pod": strings.TrimPrefix(web.URL, "http://")})
	s := g.revision("ns", "slow-00001")
	s.idle = time.Minute
	s.setPods(map[string]string{"slow-pod": strings.TrimPrefix(slow.URL, "http://")})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- g.serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("gateway stopped with %v", err)
		}
	})
	return "http://" + g.Addr().String(), webRelease, slowRelease, g
}

// rawConn is a TCP connection to the gateway, closed with the test.
func rawConn(t *testing.T, gw string) net.Conn {
	conn, err := net.DialTimeout("tcp", strings.TrimPrefix(gw, "http://"), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	return conn
}

func send(t *testing.T, method, url, host string, body io.Reader, header http.Header) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = host
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}

// Both paths set the same headers for the pod and pass its response
// headers back.
func TestHeadersOnBothPaths(t *testing.T) {
	gw, _, _, _ := startGateway(t, 0)
	for _, host := range []string{"web.ns.example.com", "slow.ns.example.com:80"} {
		resp, body := send(t, http.MethodGet, gw+"/headers", host, nil, http.Header{
			"knative-serving-revision": {"forged"}, "X-Forwarded-For": {"10.1.2.3"}, "Keep-Alive": {"timeout=5"}})
		rev := strings.SplitN(host, ".", 2)[0] + "-00001"
		for _, want := range []string{"Host: " + host + "\n", "Knative-Serving-Revision: " + rev + "\n", "Knative-Serving-Namespace: ns\n",
			"X-Forwarded-For: 127.0.0.1\n", "X-Forwarded-Proto: http\n", "X-Forwarded-Host: " + host + "\n",
			`Forwarded: for="127.0.0.1";proto=http;host="` + host + `"` + "\n"} {
			if !strings.Contains(body, want) {
				t.Errorf("%s: the pod did not get %q; it got:\n%s", host, want, body)
			}
		}
		for _, never := range []string{"forged", "10.1.2.3", "Keep-Alive", "User-Agent: fasthttp"} {
			if strings.Contains(body, never) {
				t.Errorf("%s: %q reached the pod:\n%s", host, never, body)
			}
		}
		if resp.StatusCode != 200 || resp.Header.Get("X-Pod") != "yes" || resp.Header.Get("X-Forwarded-Host") != "pod.example" || resp.Header.Get("Keep-Alive") != "" {
			t.Errorf("%s: response %d, headers %v", host, resp.StatusCode, resp.Header)
		}
	}
	// The request target reaches the pod as the client sent it.
	for _, host := range []string{"web.ns.example.com", "slow.ns.example.com"} {
		const target = "/a%2Fb//c/../d?x=1&y=%20&z"
		conn := rawConn(t, gw)
		fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: %s\r\nX-Echo-Uri: 1\r\n\r\n", target, host)
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		if string(b) != target+"\n" {
			t.Errorf("%s: the pod got %q, want %q", host, b, target)
		}
	}
	resp, body := send(t, http.MethodGet, gw+"/", "nosuch.ns.example.com", nil, nil)
	if resp.StatusCode != 404 || body != "no Route serves host \"nosuch.ns.example.com\"\n" {
		t.Errorf("unknown host: %d %q", resp.StatusCode, body)
	}
	resp, body = send(t, http.MethodHead, gw+"/headers", "web.ns.example.com", nil, nil)
	if resp.StatusCode != 200 || body != "" || resp.ContentLength <= 0 {
		t.Errorf("HEAD: %d, length %d, body %q", resp.StatusCode, resp.ContentLength, body)
	}
}

// Request bodies of every kind reach the pod whole: in memory, larger
// than the fast path holds (streamed), chunked, on the fast path and
// handed over to the slow one.
func TestRequestBodies(t *testing.T) {
	gw, _, _, _ := startGateway(t, 0)
	big := strings.Repeat("0123456789abcdef", (3<<20)/16)
	for _, host := range []string{"web.ns.example.com", "slow.ns.example.com"} {
		for name, body := range map[string]func() io.Reader{
			"small":   func() io.Reader { return strings.NewReader("hello") },
			"big":     func() io.Reader { return strings.NewReader(big) },
			"chunked": func() io.Reader { return io.MultiReader(strings.NewReader(big[:5000]), strings.NewReader(big[5000:])) },
		} {
			want := fmt.Sprintf("POST %d %x\n", len(big), sha256.Sum256([]byte(big)))
			if name == "small" {
				want = fmt.Sprintf("POST 5 %x\n", sha256.Sum256([]byte("hello")))
			}
			resp, got := send(t, http.MethodPost, gw+"/body", host, body(), nil)
			if resp.StatusCode != 200 || got != want {
				t.Errorf("%s, %s body: %d %q, want %q", host, name, resp.StatusCode, got, want)
			}
		}
	}
}

// Response bodies of known length, small (copied whole) and larger than
// the fast path holds in memory (streamed), arrive whole with their length.
func TestResponseBodies(t *testing.T) {
	gw, _, _, _ := startGateway(t, 0)
	for _, host := range []string{"web.ns.example.com", "slow.ns.example.com"} {
		for _, n := range []int{0, 10, 5 << 20} {
			resp, body := send(t, http.MethodGet, fmt.Sprintf("%s/big?n=%d", gw, n), host, nil, nil)
			if resp.StatusCode != 200 || len(body) != n || resp.ContentLength != int64(n) || strings.Trim(body, "x") != "" {
				t.Errorf("%s, %d bytes: %d, %d bytes, Content-Length %d", host, n, resp.StatusCode, len(body), resp.ContentLength)
			}
		}
	}
}

// A request that finds every pod busy is handed over and waits there; it
// is answered once a slot frees up.
func TestBusyRevisionQueues(t *testing.T) {
	gw, release, _, g := startGateway(t, 1)
	first := make(chan string, 1)
	go func() {
		_, body := send(t, http.MethodGet, gw+"/hold", "web.ns.example.com", nil, nil)
		first <- body
	}()
	// Wait until the first request holds the pod's only slot.
	rev := g.revision("ns", "web-00001")
	for deadline := time.Now().Add(5 * time.Second); rev.stats().InFlight != 1; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the first request never reached the pod")
		}
	}
	second := make(chan string, 1)
	go func() {
		_, body := send(t, http.MethodPost, gw+"/body", "web.ns.example.com", strings.NewReader("queued"), nil)
		second <- body
	}()
	for deadline := time.Now().Add(5 * time.Second); rev.stats().Queued != 1; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the second request is not queued: %+v", rev.stats())
		}
	}
	close(release)
	if b := <-first; b != "released\n" {
		t.Errorf("first: %q", b)
	}
	if b := <-second; b != fmt.Sprintf("POST 6 %x\n", sha256.Sum256([]byte("queued"))) {
		t.Errorf("second: %q", b)
	}
}

// A response of unknown length reaches the client as the pod writes it,
// its header before any of its body.
func TestStreamedResponse(t *testing.T) {
	gw, release, _, _ := startGateway(t, 0)
	req, _ := http.NewRequest(http.MethodGet, gw+"/stream?first=wait", nil)
	req.Host = "web.ns.example.com"
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Errorf("header %v", resp.Header)
	}
	close(release) // the pod writes its body only now
	br := bufio.NewReader(resp.Body)
	if line, err := br.ReadString('\n'); line != "first\n" {
		t.Fatalf("first line %q %v", line, err)
	}
	if rest, err := io.ReadAll(br); string(rest) != "second\n" {
		t.Errorf("rest %q %v", rest, err)
	}
}

// One connection carries a fast request, then one the fast path hands
// over, then an upgrade; HTTP/2 clients are served too.
func TestConnectionHandOffAndProtocols(t *testing.T) {
	gw, _, _, _ := startGateway(t, 0)
	conn := rawConn(t, gw)
	// Pipelined: the second request is already buffered when the first is served.
	fmt.Fprint(conn, "GET /proto HTTP/1.1\r\nHost: web.ns.example.com\r\n\r\nGET /proto HTTP/1.1\r\nHost: slow.ns.example.com\r\n\r\n")
	br := bufio.NewReader(conn)
	for i := range 2 {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("response %d: %v", i, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(b) != "HTTP/1.1\n" {
			t.Errorf("response %d: %d %q", i, resp.StatusCode, b)
		}
	}
	fmt.Fprint(conn, "GET /upgrade HTTP/1.1\r\nHost: web.ns.example.com\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade: %v %v", resp, err)
	}
	fmt.Fprint(conn, "ping\n")
	if got, err := br.ReadString('\n'); got != "ping\n" {
		t.Errorf("echo: %q %v", got, err)
	}

	h2 := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{Protocols: func() *http.Protocols {
		p := new(http.Protocols)
		p.SetUnencryptedHTTP2(true)
		return p
	}()}}
	req, _ := http.NewRequest(http.MethodGet, gw+"/proto", nil)
	req.Host = "web.ns.example.com"
	hresp, err := h2.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(hresp.Body)
	hresp.Body.Close()
	if hresp.ProtoMajor != 2 || string(b) != "HTTP/1.1\n" {
		t.Errorf("h2c client: %s %q", hresp.Proto, b)
	}

	// A head longer than the loop parses goes to net/http, whole.
	big := strings.Repeat("x", maxLoopHead+1000)
	resp2, body := send(t, http.MethodGet, gw+"/headers", "web.ns.example.com", nil, http.Header{"X-Big": {big}})
	if resp2.StatusCode != 200 || !strings.Contains(body, "X-Big: "+big+"\n") {
		t.Errorf("a %d-byte header: %d", len(big), resp2.StatusCode)
	}
}

// An HTTP/1.0 client is answered, and its connection closed after the
// response; the pod still gets HTTP/1.1 (a connection it can keep).
func TestHTTP10Client(t *testing.T) {
	gw, _, _, _ := startGateway(t, 0)
	conn := rawConn(t, gw)
	fmt.Fprint(conn, "GET /proto HTTP/1.0\r\nHost: web.ns.example.com\r\n\r\n")
	all, err := io.ReadAll(conn) // to the end: the gateway closes it
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(strings.NewReader(string(all))), nil)
	if err != nil {
		t.Fatalf("%v in %q", err, all)
	}
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || string(body) != "HTTP/1.1\n" {
		t.Errorf("HTTP/1.0 client: %d %q", resp.StatusCode, body)
	}
}

// A pod that closes idle keep-alive connections (Node.js after 5 s,
// gunicorn after 2 s) never costs a request: a POST after the pod closed
// the connection it would have reused still reaches the pod.
func TestPodClosesIdleConnections(t *testing.T) {
	g, err := New(Options{Address: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	pod := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "%s %s\n", r.Method, b)
	}))
	pod.Config.IdleTimeout = 100 * time.Millisecond
	pod.Start()
	t.Cleanup(pod.Close)
	g.table.Store(&table{hosts: map[string]hostEntry{
		"idle.ns.example.com": {route: &routeEntry{namespace: "ns", name: "idle", splits: map[string][]servingv1.Split{"": {{Revision: "idle-00001", Percent: 100}}}}},
	}})
	g.revision("ns", "idle-00001").setPods(map[string]string{"idle-pod": strings.TrimPrefix(pod.URL, "http://")})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- g.serve(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	gw := "http://" + g.Addr().String()
	for i := range 3 {
		resp, body := send(t, http.MethodPost, gw+"/", "idle.ns.example.com", strings.NewReader(fmt.Sprint(i)), nil)
		if resp.StatusCode != 200 || body != fmt.Sprintf("POST %d\n", i) {
			t.Errorf("request %d: %d %q", i, resp.StatusCode, body)
		}
		time.Sleep(300 * time.Millisecond) // the pod closes the idle connection meanwhile
	}
}
