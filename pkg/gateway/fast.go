package gateway

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"iter"
	"net"
	"net/http"
	"net/http/httputil"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/valyala/fasthttp"
)

// The fast path. Go's net/http server and client together spend two to
// three times nginx's CPU on a proxied request (docs/benchmarks.md), so the
// common request — HTTP/1.x, to a revision with a free ready pod — is read,
// forwarded and answered with fasthttp on both sides, in the goroutine that
// read it. Everything else is handed to the net/http server and
// httputil.ReverseProxy (gateway.go), which queue it for a pod (cold
// starts, full revisions), notice clients that go away while it waits,
// and do upgrades, HTTP/2 to h2c revisions, and response-start and idle
// timeouts.

// fastBodyInMemory is the largest request body the fast path reads before
// forwarding; larger and chunked bodies are streamed to the pod.
const fastBodyInMemory = 1 << 20

// maxBodyTime bounds the time a request body may take to arrive:
// upstream's max-revision-timeout-seconds.
const maxBodyTime = 600 * time.Second

// fastHeaderBytes bounds a request's header block on the fast path (a
// larger one is refused with 431); net/http's limit is 1 MiB, nginx's
// 32 KiB.
const fastHeaderBytes = 32 << 10

func (g *Gateway) newFastServer() *fasthttp.Server {
	return &fasthttp.Server{
		Handler:                      g.serveFast,
		NoDefaultServerHeader:        true,
		NoDefaultDate:                true,
		NoDefaultContentType:         true,
		DisablePreParseMultipartForm: true,
		StreamRequestBody:            true,
		MaxRequestBodySize:           fastBodyInMemory,
		ReadBufferSize:               fastHeaderBytes,
		IdleTimeout:                  90 * time.Second,
		// 30 s for a request's header, as the net/http server allows; its
		// body may then take as long as the longest revision timeout.
		ReadTimeout:    30 * time.Second,
		HeaderReceived: bodyReadTimeout,
		Logger:         quietLogger{},
	}
}

// bodyReadTimeout gives a request with a body up to maxBodyTime to send it
// (streamed to the pod as it comes); a bodiless one keeps the header's
// deadline, which nothing reads past.
func bodyReadTimeout(h *fasthttp.RequestHeader) fasthttp.RequestConfig {
	if cl := h.ContentLength(); cl == 0 || cl == -2 {
		return fasthttp.RequestConfig{}
	}
	return fasthttp.RequestConfig{ReadTimeout: maxBodyTime}
}

// newPodClient is the fast path's connection pool to one pod.
func newPodClient(addr string) *fasthttp.HostClient {
	dialer := &net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}
	return &fasthttp.HostClient{
		Addr:                     addr,
		Dial:                     func(addr string) (net.Conn, error) { return dialPod(dialer, addr) },
		RetryIfErr:               retryClosedIdle,
		MaxConns:                 100000, // containerConcurrency and the queue bound requests, not this
		MaxIdleConnDuration:      90 * time.Second,
		NoDefaultUserAgentHeader: true,
		DisablePathNormalizing:   true,
		StreamResponseBody:       true,
		// Bodies of known length up to this are read whole before Do
		// returns; larger ones (and those of unknown length) stream.
		MaxResponseBodySize: fastBodyInMemory,
		ReadBufferSize:      fastHeaderBytes,
	}
}

// serveFast forwards the request if it can, and hands it over otherwise.
func (g *Gateway) serveFast(ctx *fasthttp.RequestCtx) {
	h := &ctx.Request.Header
	if h.ConnectionUpgrade() || len(h.Peek("Upgrade")) > 0 {
		g.handOff(ctx)
		return
	}
	entry, rev, code, msg := g.lookup(hostKey(h.Host()), h.Peek(TagHeader))
	if rev == nil {
		fastError(ctx, msg, code)
		return
	}
	timeout, ok := rev.fastTimeout()
	if !ok || rev.isH2C() {
		g.handOff(ctx)
		return
	}
	p, release := rev.tryAcquire()
	if p == nil {
		g.handOff(ctx) // wait for a pod there
		return
	}
	g.forwardFast(ctx, entry, rev, p, release, timeout)
}

// forwardFast sends the request to pod p and streams its response back.
// A pod that refuses the connection is dropped and, for a bodiless
// request, another free one is tried; with none free the request is handed
// over to wait for one.
func (g *Gateway) forwardFast(ctx *fasthttp.RequestCtx, entry hostEntry, rev *revision, p *pod, release func(), timeout time.Duration) {
	start := time.Now()
	deadline := start.Add(timeout)
	out := &ctx.Request
	http10 := !out.Header.IsHTTP11()
	setOutbound(ctx, entry, rev)
	bodiless := out.Header.ContentLength() == 0 || out.Header.ContentLength() == -2
	resp := fasthttp.AcquireResponse()
	for attempt := 0; ; attempt++ {
		err := p.fastClient().DoDeadline(out, resp, deadline)
		if err == nil {
			break
		}
		release()
		if notSent(err) && bodiless && attempt < maxRetries {
			rev.forget(p)
			if p, release = rev.tryAcquire(); p != nil {
				continue
			}
			fasthttp.ReleaseResponse(resp)
			if http10 {
				out.Header.SetProtocol("HTTP/1.0") // handOff replays the request as it came
			}
			g.handOff(ctx)
			return
		}
		fasthttp.ReleaseResponse(resp)
		code := http.StatusBadGateway
		msg := fmt.Sprintf("error reaching revision: %v", err)
		if errors.Is(err, fasthttp.ErrTimeout) {
			code, msg = http.StatusGatewayTimeout, "request timeout"
		}
		fastError(ctx, msg, code)
		rev.metrics().observe(code, time.Since(start))
		return
	}
	code := resp.StatusCode()
	resp.Header.CopyTo(&ctx.Response.Header)
	ctx.Response.Header.ResetConnectionClose() // the pod's connection, not the client's
	if hasHopByHop(ctx.Response.Header.All()) {
		for _, k := range hopByHop {
			ctx.Response.Header.Del(k)
		}
	}
	finish := func() {
		release()
		rev.metrics().observe(code, time.Since(start))
	}
	length := resp.Header.ContentLength()
	if stream := resp.BodyStream(); stream == nil || (length >= 0 && length <= fastBodyInMemory) {
		// The whole body is in memory already: answer with a copy and free
		// the pod's connection and slot now, not after the client has it.
		if stream != nil {
			buf := copyBuffers.Get()
			_, err := io.CopyBuffer(ctx.Response.BodyWriter(), stream, buf)
			copyBuffers.Put(buf)
			if cerr := resp.CloseBodyStream(); err == nil {
				err = cerr
			}
			if err != nil {
				ctx.Response.Reset()
				fastError(ctx, fmt.Sprintf("error reaching revision: %v", err), http.StatusBadGateway)
				code = http.StatusBadGateway
			}
		} else {
			ctx.Response.SetBody(resp.Body())
		}
		fasthttp.ReleaseResponse(resp)
		finish()
		return
	}
	// The pod's slot is held until the body is through; fasthttp closes a
	// body stream once it has written it or failed to. A response of
	// unknown length (a stream, server-sent events) goes out chunk by chunk,
	// its header at once.
	ctx.Response.ImmediateHeaderFlush = length < 0
	ctx.Response.SetBodyStream(&podBody{resp: resp, done: finish}, length)
}

// setOutbound turns the client's request into what the pod gets, in
// place: Knative's and the forwarding headers set, as the slow path's
// Rewrite does. (A hand-off replays the request from its raw header, which
// this leaves alone, and fasthttp decided before the handler whether to
// keep the client's connection.)
func setOutbound(ctx *fasthttp.RequestCtx, entry hostEntry, rev *revision) {
	oh := &ctx.Request.Header
	host := string(oh.Host())
	if hasHopByHop(oh.All()) {
		for _, k := range hopByHop {
			oh.Del(k)
		}
	}
	oh.SetProtocol("HTTP/1.1") // keep-alive to the pod, whatever the client speaks
	oh.ResetConnectionClose()
	if entry.rewriteHost != "" {
		oh.SetHost(entry.rewriteHost)
		oh.Set("K-Original-Host", host)
	}
	// The gateway is the edge: a client's own X-Forwarded-* are not kept.
	xff := ctx.RemoteIP().String()
	oh.Set("X-Forwarded-For", xff)
	oh.Set("X-Forwarded-Host", host)
	oh.Set("X-Forwarded-Proto", "http")
	var buf [256]byte
	oh.SetBytesV("Forwarded", appendForwarded(buf[:0], xff, host))
	oh.Set(RevisionHeader, rev.name)
	oh.Set(NamespaceHeader, rev.namespace)
	// A body fasthttp has read whole goes as bytes rather than as a
	// stream, so that it can be sent again (fasthttp resends no stream).
	if cl := oh.ContentLength(); cl > 0 && cl <= fastBodyInMemory {
		ctx.Request.Body()
	}
}

// forwarded is the Forwarded header (RFC 7239) for a request from client
// addresses xff for host.
func forwarded(xff, host string) string { return string(appendForwarded(nil, xff, host)) }

func appendForwarded(b []byte, xff, host string) []byte {
	b = append(b, "for="...)
	b = appendQuoted(b, xff)
	b = append(b, ";proto=http;host="...)
	return appendQuoted(b, host)
}

// appendQuoted is strconv.AppendQuote, without its per-rune work for the
// plain ASCII that addresses and host names are.
func appendQuoted(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' {
			return strconv.AppendQuote(b, s)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// hopByHop are the headers that describe one connection and are not
// forwarded (RFC 9110 §7.6.1); fasthttp itself handles Connection,
// Content-Length and Transfer-Encoding. Expect goes too: fasthttp has
// answered a 100-continue itself.
var hopByHop = []string{"Keep-Alive", "Proxy-Connection", "Proxy-Authenticate", "Proxy-Authorization", "Te", "Trailer", "Upgrade", "Expect"}

// hasHopByHop says, in one pass over a header, whether any hop-by-hop
// header is there: most requests and responses have none, and a Del per
// name costs a search each.
func hasHopByHop(all iter.Seq2[[]byte, []byte]) bool {
	for k := range all {
		for _, h := range hopByHop {
			if len(k) == len(h) && strings.EqualFold(string(k), h) {
				return true
			}
		}
	}
	return false
}

// podBody is a pod's response body on its way to the client.
type podBody struct {
	resp *fasthttp.Response
	done func()
	once sync.Once
}

func (b *podBody) Read(p []byte) (int, error) { return b.resp.BodyStream().Read(p) }

func (b *podBody) Close() error {
	var err error
	b.once.Do(func() {
		err = b.resp.CloseBodyStream()
		fasthttp.ReleaseResponse(b.resp)
		b.done()
	})
	return err
}

// handOff gives the request, and its connection from then on, to the
// net/http server: the request is replayed to it as it arrived.
func (g *Gateway) handOff(ctx *fasthttp.RequestCtx) {
	h := &ctx.Request.Header
	var head bytes.Buffer
	fmt.Fprintf(&head, "%s %s %s\r\n", h.Method(), h.RequestURI(), h.Protocol())
	raw := h.RawHeaders() // ends with the blank line
	var body io.Reader
	var rechunked *io.PipeReader
	switch cl := h.ContentLength(); {
	case cl == -1 || cl > fastBodyInMemory:
		// Part of a streamed body is already read: replay the whole body,
		// then close the connection (where the next request starts in
		// the connection is then fasthttp's to know, not ours).
		head.Write(bytes.TrimSuffix(raw, []byte("\r\n")))
		head.WriteString("Connection: close\r\n\r\n")
		body = ctx.RequestBodyStream()
		if cl == -1 {
			rechunked = rechunk(body)
			body = rechunked
		}
	case cl > 0:
		head.Write(raw)
		body = bytes.NewReader(append([]byte(nil), ctx.Request.Body()...))
	default:
		head.Write(raw)
	}
	ctx.HijackSetNoResponse(true)
	ctx.Hijack(func(c net.Conn) {
		readers := []io.Reader{&head}
		if body != nil {
			readers = append(readers, body)
		}
		hc := &handedConn{Conn: c, r: io.MultiReader(append(readers, c)...), done: make(chan struct{})}
		g.slow.push(hc)
		<-hc.done
		if rechunked != nil {
			rechunked.Close() // ends rechunk's copy if net/http left the body unread
		}
	})
}

// rechunk encodes a body in HTTP/1.1 chunks again.
func rechunk(body io.Reader) *io.PipeReader {
	pr, pw := io.Pipe()
	go func() {
		cw := httputil.NewChunkedWriter(pw)
		_, err := io.Copy(cw, body)
		if err == nil {
			err = cw.Close()
		}
		if err == nil {
			_, err = pw.Write([]byte("\r\n"))
		}
		pw.CloseWithError(err)
	}()
	return pr
}

// fastError answers as http.Error does.
func fastError(ctx *fasthttp.RequestCtx, msg string, code int) {
	ctx.Response.Header.Set("Content-Type", "text/plain; charset=utf-8")
	ctx.Response.Header.Set("X-Content-Type-Options", "nosniff")
	ctx.SetStatusCode(code)
	ctx.SetBodyString(msg + "\n")
}

// hostKey is the lower-cased host of a Host header, without its port.
func hostKey(h []byte) []byte {
	if i := bytes.LastIndexByte(h, ':'); i >= 0 && bytes.IndexByte(h[i:], ']') < 0 {
		h = h[:i]
	}
	h = bytes.TrimSuffix(bytes.TrimPrefix(h, []byte("[")), []byte("]"))
	for _, c := range h {
		if 'A' <= c && c <= 'Z' {
			return bytes.ToLower(h)
		}
	}
	return h
}

// quietLogger drops fasthttp's per-connection error lines (clients that
// go away); failures that matter reach the client as a status.
type quietLogger struct{}

func (quietLogger) Printf(string, ...any) {}
