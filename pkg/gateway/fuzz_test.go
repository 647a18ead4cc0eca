package gateway

import (
	"bufio"
	"bytes"
	"io"
	"net/http"
	"net/http/httputil"
	"strings"
	"testing"
)

// Differential fuzz tests: whatever the event loop's parsers accept,
// net/http must read the same way, since the two serve one port and a
// difference would let a request or response be framed two ways
// (smuggling). `make test` runs each briefly; by hand:
//   go test -run '^$' -fuzz FuzzParseRequest -fuzztime 10m ./pkg/gateway

func FuzzParseRequest(f *testing.F) {
	for _, seed := range []string{
		"GET / HTTP/1.1\r\nHost: a.example.com\r\n\r\n",
		"POST /body?x=1 HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello",
		"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\nContent-Length: 0\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n0\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a\r\nX: a\nb\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a\r\n X: folded\r\n\r\n",
		"GET http://a/ HTTP/1.1\r\nHost: a\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
		"GET / HTTP/1.1\r\nhost: a\r\nConnection: keep-alive, close\r\nKnative-Serving-Tag: x\r\n\r\n",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var h requestHead
		switch parseRequest(b, &h) {
		case parsed:
		case bothLengths:
			// Both lengths: refused by the loop, whatever net/http thinks.
			return
		default:
			return
		}
		req, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(b)))
		if err != nil {
			t.Fatalf("the loop parsed %q, net/http refused it: %v", b, err)
		}
		if req.Method != string(h.method) || req.RequestURI != string(h.target) || req.Host != string(h.host) ||
			req.ContentLength != int64(h.contentLength) || req.Close != h.close || len(req.TransferEncoding) > 0 {
			t.Fatalf("%q: loop %s %s host %q length %d close %v; net/http %s %s host %q length %d close %v TE %v", b,
				h.method, h.target, h.host, h.contentLength, h.close,
				req.Method, req.RequestURI, req.Host, req.ContentLength, req.Close, req.TransferEncoding)
		}
		body, err := io.ReadAll(req.Body)
		if err != nil || !bytes.Equal(body, b[h.size:h.size+h.contentLength]) {
			t.Fatalf("%q: net/http read body %q (%v), the loop %q", b, body, err, b[h.size:h.size+h.contentLength])
		}
		// The header lines the loop forwards are ones net/http saw.
		for _, line := range h.lines {
			name, value, _ := bytes.Cut(line, []byte(":"))
			if got := req.Header.Values(string(name)); !containsTrimmed(got, string(bytes.Trim(value, " \t"))) {
				t.Fatalf("%q: the loop forwards %q, net/http has %q", b, line, got)
			}
		}
	})
}

func containsTrimmed(values []string, v string) bool {
	for _, x := range values {
		if strings.Trim(x, " \t") == v {
			return true
		}
	}
	return false
}

func FuzzParseResponse(f *testing.F) {
	for _, seed := range []string{
		"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
		"HTTP/1.1 204 No Content\r\n\r\n",
		"HTTP/1.0 200 OK\r\n\r\nuntil close",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\nContent-Length: 9\r\n\r\n0\r\n\r\n",
		"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
	} {
		f.Add([]byte(seed), false)
	}
	f.Fuzz(func(t *testing.T, b []byte, headRequest bool) {
		var h responseHead
		if st, err := parseResponse(b, headRequest, &h); st != parsed || err != nil || h.interim {
			return
		}
		req := &http.Request{Method: http.MethodGet}
		if headRequest {
			req.Method = http.MethodHead
		}
		res, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(b)), req)
		if err != nil {
			// net/http is stricter about some heads the loop passes on
			// unchanged; what matters is that it never frames one
			// differently.
			return
		}
		isChunked := len(res.TransferEncoding) > 0 && res.TransferEncoding[len(res.TransferEncoding)-1] == "chunked"
		switch h.framing {
		case noBody:
			// (A HEAD response's length describes the GET's body.)
			if !headRequest && (res.ContentLength > 0 || isChunked) {
				t.Fatalf("%q: the loop expects no body, net/http length %d chunked %v", b, res.ContentLength, isChunked)
			}
		case byLength:
			if isChunked || res.ContentLength != int64(h.length) {
				t.Fatalf("%q: the loop expects %d bytes, net/http length %d chunked %v", b, h.length, res.ContentLength, isChunked)
			}
		case chunked:
			if !isChunked {
				t.Fatalf("%q: the loop expects chunks, net/http length %d TE %v", b, res.ContentLength, res.TransferEncoding)
			}
		case untilClose:
			if isChunked || res.ContentLength >= 0 {
				t.Fatalf("%q: the loop reads until close, net/http length %d chunked %v", b, res.ContentLength, isChunked)
			}
		}
		if h.code != res.StatusCode {
			t.Fatalf("%q: status %d, net/http %d", b, h.code, res.StatusCode)
		}
	})
}

func FuzzChunkedBody(f *testing.F) {
	for _, seed := range []string{
		"5\r\nhello\r\n0\r\n\r\n",
		"5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Sum: 42\r\n\r\n",
		"A\r\n0123456789\r\n0\r\n\r\n",
		"5\r\nhello\r\nzz\r\n",
		"0\r\n\r\nextra",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var c chunkedBody
		n, done, err := c.feed(b)
		if err != nil || !done {
			return
		}
		// What the loop took as one whole body, net/http decodes to its
		// end without error.
		if _, err := io.ReadAll(httputil.NewChunkedReader(bytes.NewReader(b[:n]))); err != nil {
			t.Fatalf("the loop took %q as a whole chunked body; net/http: %v", b[:n], err)
		}
	})
}
