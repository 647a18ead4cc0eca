package gateway

import (
	"bytes"
	"errors"
	"strings"
)

// HTTP/1.1 framing for the event loop (loop.go). The parser is
// deliberately narrow: a request it does not fully understand is not
// rejected but handed to the net/http server, which is the reference for
// everything unusual (absolute targets, chunked or large bodies, Expect,
// upgrades, HTTP/1.0, obsolete line folding, odd bytes). So nothing the
// fast path accepts can be read differently by net/http, which rules out
// request smuggling between the two.

// maxLoopHead bounds a request head the loop parses; a longer one goes to
// net/http (whose limit is 1 MiB, then 431).
const maxLoopHead = 32 << 10

// maxPodHead bounds a response head from a pod.
const maxPodHead = 64 << 10

// loopBodyInMemory is the largest request body the loop reads whole
// before forwarding; larger ones go to net/http, which streams them.
const loopBodyInMemory = 1 << 20

type parse int

const (
	needMore parse = iota
	parsed
	notForLoop // hand the connection to net/http
	// bothLengths: Content-Length and Transfer-Encoding together, which
	// RFC 9112 §6.1 says may be smuggling: answered 400, connection closed.
	bothLengths
)

// requestHead is a parsed request head; the slices point into the
// connection's buffer.
type requestHead struct {
	size          int // the head's bytes, blank line included
	method        []byte
	target        []byte
	host, tag     []byte
	contentLength int
	close         bool     // Connection: close
	lines         [][]byte // header lines to forward, without CRLF
}

var crlfcrlf = []byte("\r\n\r\n")

// parseRequest parses the head at the start of b.
func parseRequest(b []byte, h *requestHead) parse {
	*h = requestHead{lines: h.lines[:0]} // size stays 0 until the head is whole
	end := bytes.Index(b, crlfcrlf)
	if end < 0 {
		// Lines ended by a bare LF (which net/http accepts) would never
		// show the blank line looked for.
		if len(b) >= maxLoopHead || (len(b) > 0 && (b[0] < 'A' || b[0] > 'Z')) || hasBareLF(b) {
			return notForLoop
		}
		return needMore
	}
	if end > maxLoopHead {
		return notForLoop
	}
	h.size = end + 4
	// A bare LF or CR inside a line is refused below (as a control
	// character in a value or target). Whatever is not for the loop, the
	// whole head is read for both lengths, which net/http would accept.
	line, rest, _ := bytes.Cut(b[:end], []byte("\r\n"))
	method, line, ok1 := bytes.Cut(line, []byte(" "))
	target, version, ok2 := bytes.Cut(line, []byte(" "))
	forLoop := ok1 && ok2 && isMethod(method) && isOriginTarget(target) && string(version) == "HTTP/1.1"
	h.method, h.target = method, target
	hosts, lengths, encodings := 0, 0, 0
	for len(rest) > 0 {
		line, rest, _ = bytes.Cut(rest, []byte("\r\n"))
		name, value, ok := bytes.Cut(line, []byte(":"))
		if !ok || !isToken(name) || !isFieldValue(value) {
			forLoop = false
			continue
		}
		value = bytes.Trim(value, " \t")
		forward := true
		switch headerID(name) {
		case hHost:
			hosts++
			h.host, forward = value, false
		case hContentLength:
			lengths++
			n, ok := parseLength(value)
			forLoop = forLoop && ok && n <= loopBodyInMemory
			h.contentLength = n
		case hTransferEncoding:
			encodings++
			forLoop = false
		case hUpgrade, hExpect:
			forLoop = false
		case hConnection:
			for tok := range bytes.SplitSeq(value, []byte(",")) {
				switch tok = bytes.Trim(tok, " \t"); {
				case bytes.EqualFold(tok, []byte("close")):
					h.close = true
				case len(tok) == 0, bytes.EqualFold(tok, []byte("keep-alive")):
				default:
					forLoop = false // it names other headers as hop-by-hop, or asks for an upgrade
				}
			}
			forward = false
		case hTag:
			h.tag = value
		case hHopByHop, hGateway:
			forward = false
		}
		if forward {
			h.lines = append(h.lines, line)
		}
	}
	switch {
	case encodings > 0 && lengths > 0:
		return bothLengths
	case !forLoop || hosts != 1 || lengths > 1 || len(h.host) == 0:
		return notForLoop
	}
	if len(b) < h.size+h.contentLength {
		return needMore
	}
	return parsed
}

// Header names the loop acts on.
const (
	hOther = iota
	hHost
	hContentLength
	hTransferEncoding
	hUpgrade
	hExpect
	hConnection
	hTag
	hHopByHop // describes one connection: never passed on either way
	hGateway  // set by the gateway for the pod, never taken from a client
)

// headerIDs are the header names the loop acts on, lower-cased.
var headerIDs = map[string]int{
	"host":                           hHost,
	"content-length":                 hContentLength,
	"transfer-encoding":              hTransferEncoding,
	"upgrade":                        hUpgrade,
	"expect":                         hExpect,
	"connection":                     hConnection,
	strings.ToLower(TagHeader):       hTag,
	"trailer":                        hHopByHop,
	"keep-alive":                     hHopByHop,
	"te":                             hHopByHop,
	"proxy-connection":               hHopByHop,
	"proxy-authenticate":             hHopByHop,
	"proxy-authorization":            hHopByHop,
	"forwarded":                      hGateway,
	"x-forwarded-for":                hGateway,
	"x-forwarded-host":               hGateway,
	"x-forwarded-proto":              hGateway,
	strings.ToLower(RevisionHeader):  hGateway,
	strings.ToLower(NamespaceHeader): hGateway,
}

// headerID classifies a request or response header name.
func headerID(name []byte) int {
	var lower [32]byte
	if len(name) > len(lower) {
		return hOther
	}
	for i, c := range name {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		lower[i] = c
	}
	return headerIDs[string(lower[:len(name)])] // no allocation for a lookup
}

func hasBareLF(b []byte) bool {
	for i, c := range b {
		if c == '\n' && (i == 0 || b[i-1] != '\r') {
			return true
		}
	}
	return false
}

func isMethod(m []byte) bool {
	if len(m) == 0 || string(m) == "CONNECT" || string(m) == "PRI" {
		return false
	}
	for _, c := range m {
		if c < 'A' || c > 'Z' {
			return false
		}
	}
	return true
}

// isOriginTarget accepts /path?query of visible ASCII whose path has only
// whole %XX escapes (net/http refuses others; found by fuzzing).
func isOriginTarget(t []byte) bool {
	if len(t) == 0 || t[0] != '/' {
		return false
	}
	inPath := true
	for i, c := range t {
		switch {
		case c <= ' ' || c >= 0x7f:
			return false
		case c == '?':
			inPath = false
		case c == '%' && inPath && (i+2 >= len(t) || hexValue(t[i+1]) < 0 || hexValue(t[i+2]) < 0):
			return false
		}
	}
	return true
}

func isToken(s []byte) bool {
	if len(s) == 0 {
		return false
	}
	for _, c := range s {
		if c >= 0x80 || !tokenChar[c] {
			return false
		}
	}
	return true
}

var tokenChar = func() (t [128]bool) {
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c], t[c-'a'+'A'] = true, true
	}
	for _, c := range "!#$%&'*+-.^_`|~" {
		t[c] = true
	}
	return t
}()

// isHead accepts a message head's lines: no control characters but tab,
// and CR and LF only together, as line ends.
func isHead(b []byte) bool {
	for i, c := range b {
		switch {
		case c == '\r':
			if i+1 >= len(b) || b[i+1] != '\n' {
				return false
			}
		case c == '\n':
			if i == 0 || b[i-1] != '\r' {
				return false
			}
		case (c < ' ' && c != '\t') || c == 0x7f:
			return false
		}
	}
	return true
}

// isFieldValue refuses control characters other than tab (NUL, CR, LF).
func isFieldValue(v []byte) bool {
	for _, c := range v {
		if (c < ' ' && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}

func parseLength(v []byte) (int, bool) {
	if len(v) == 0 || len(v) > 10 {
		return 0, false
	}
	n := 0
	for _, c := range v {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}

// responseHead is a pod's parsed response head.
type responseHead struct {
	size    int
	code    int
	status  []byte // "200 OK"
	framing framing
	length  int      // for byLength
	close   bool     // the pod closes the connection after this response
	interim bool     // 1xx other than 101: another head follows
	lines   [][]byte // header lines to send on
}

type framing int

const (
	noBody framing = iota
	byLength
	chunked
	untilClose
)

var errBadResponse = errors.New("malformed response head")

// parseResponse parses the head at the start of b; headRequest says the
// request was HEAD (so no body follows whatever the head says).
func parseResponse(b []byte, headRequest bool, h *responseHead) (parse, error) {
	end := bytes.Index(b, crlfcrlf)
	if end < 0 {
		if len(b) >= maxPodHead {
			return needMore, errBadResponse
		}
		return needMore, nil
	}
	*h = responseHead{size: end + 4, lines: h.lines[:0]}
	// A lone CR or LF would end a line for net/http but not here: such a
	// head could be framed two ways, so it is refused (found by fuzzing).
	if !isHead(b[:end]) {
		return needMore, errBadResponse
	}
	line, rest, _ := bytes.Cut(b[:end], []byte("\r\n"))
	version, status, _ := bytes.Cut(line, []byte(" "))
	if len(status) < 3 || (string(version) != "HTTP/1.1" && string(version) != "HTTP/1.0") {
		return needMore, errBadResponse
	}
	code, ok := parseLength(status[:3])
	if !ok || code < 100 || (len(status) > 3 && status[3] != ' ') {
		return needMore, errBadResponse
	}
	h.code, h.status = code, status
	http10 := string(version) == "HTTP/1.0"
	h.close = http10
	length, chunkedTE, otherTE := -1, false, false
	for len(rest) > 0 {
		line, rest, _ = bytes.Cut(rest, []byte("\r\n"))
		name, value, ok := bytes.Cut(line, []byte(":"))
		if !ok || !isToken(name) {
			return needMore, errBadResponse
		}
		value = bytes.Trim(value, " \t")
		forward := true
		switch headerID(name) {
		case hContentLength:
			n, ok := parseLength(value)
			if !ok || (length >= 0 && n != length) {
				return needMore, errBadResponse
			}
			length = n
		case hTransferEncoding:
			if http10 { // HTTP/1.0 has no transfer codings: net/http ignores them too
				break
			}
			if last := bytes.LastIndexByte(value, ','); last >= 0 {
				value = bytes.Trim(value[last+1:], " \t")
			}
			chunkedTE = bytes.EqualFold(value, []byte("chunked"))
			otherTE = !chunkedTE
		case hConnection:
			for tok := range bytes.SplitSeq(value, []byte(",")) {
				switch tok = bytes.Trim(tok, " \t"); {
				case bytes.EqualFold(tok, []byte("close")):
					h.close = true
				case bytes.EqualFold(tok, []byte("keep-alive")):
					h.close = false
				}
			}
			forward = false
		case hUpgrade, hHopByHop: // as net/http's ReverseProxy drops them
			forward = code == 101 // never asked for, so never passed on
		}
		if forward {
			h.lines = append(h.lines, line)
		}
	}
	switch {
	case code == 101:
		return needMore, errBadResponse // the loop sends no upgrades
	case code < 200:
		h.interim = true
	case headRequest || code == 204 || code == 304:
		h.framing = noBody
	case chunkedTE:
		h.framing = chunked
	case otherTE:
		h.framing, h.close = untilClose, true
	case length >= 0:
		h.framing, h.length = byLength, length
	default:
		h.framing, h.close = untilClose, true
	}
	if chunkedTE || otherTE {
		// Transfer-Encoding wins over Content-Length; a proxy drops the latter.
		h.lines = dropHeader(h.lines, "content-length")
	}
	return parsed, nil
}

func dropHeader(lines [][]byte, name string) [][]byte {
	kept := lines[:0]
	for _, l := range lines {
		n, _, _ := bytes.Cut(l, []byte(":"))
		if !bytes.EqualFold(n, []byte(name)) {
			kept = append(kept, l)
		}
	}
	return kept
}

// chunkedBody finds where a chunked body ends, passing its bytes through
// unchanged (chunk sizes, extensions and trailers included).
type chunkedBody struct {
	state   chunkState
	size    int64 // of the chunk being read
	digits  int
	lineLen int // bytes of the trailer line so far
}

type chunkState int

const (
	chunkSize chunkState = iota
	chunkSizeWS
	chunkExt
	chunkSizeLF
	chunkData
	chunkDataCR
	chunkDataLF
	trailerStart
	trailerLine
	trailerEndLF
	chunkDone
)

var errBadChunk = errors.New("malformed chunked body")

// atBoundary says whether the body fed so far ends with a whole chunk, so
// that another chunk may follow.
func (c *chunkedBody) atBoundary() bool { return c.state == chunkSize && c.digits == 0 }

// feed consumes what of b belongs to the body and says how much, and
// whether the body ended there.
func (c *chunkedBody) feed(b []byte) (int, bool, error) {
	i := 0
	for i < len(b) {
		ch := b[i]
		switch c.state {
		case chunkSize:
			switch v := hexValue(ch); {
			case v >= 0:
				if c.digits++; c.digits > 15 {
					return i, false, errBadChunk
				}
				c.size = c.size<<4 | int64(v)
			case c.digits == 0:
				return i, false, errBadChunk
			case ch == '\r':
				c.state = chunkSizeLF
			case ch == ';':
				c.state, c.lineLen = chunkExt, 0
			case ch == ' ' || ch == '\t':
				c.state = chunkSizeWS
			default:
				return i, false, errBadChunk
			}
		case chunkSizeWS: // only blanks, then the line's end (net/http takes no blank before ';')
			switch ch {
			case ' ', '\t':
			case '\r':
				c.state = chunkSizeLF
			default:
				return i, false, errBadChunk
			}
		case chunkExt:
			// net/http refuses a chunk line of 4 KiB or more.
			if c.lineLen++; ch == '\n' || c.lineLen > 4000 {
				return i, false, errBadChunk
			} else if ch == '\r' {
				c.state = chunkSizeLF
			}
		case chunkSizeLF:
			if ch != '\n' {
				return i, false, errBadChunk
			}
			if c.size == 0 {
				c.state = trailerStart
			} else {
				c.state = chunkData
			}
		case chunkData:
			n := min(int64(len(b)-i), c.size)
			c.size -= n
			i += int(n)
			if c.size == 0 {
				c.state = chunkDataCR
			}
			continue
		case chunkDataCR:
			if ch != '\r' {
				return i, false, errBadChunk
			}
			c.state = chunkDataLF
		case chunkDataLF:
			if ch != '\n' {
				return i, false, errBadChunk
			}
			c.state, c.digits = chunkSize, 0
		case trailerStart:
			if ch == '\r' {
				c.state = trailerEndLF
			} else {
				c.state, c.lineLen = trailerLine, 1
			}
		case trailerLine:
			if ch == '\n' {
				c.state = trailerStart
			} else if c.lineLen++; c.lineLen > maxPodHead {
				return i, false, errBadChunk
			}
		case trailerEndLF:
			if ch != '\n' {
				return i, false, errBadChunk
			}
			c.state = chunkDone
			return i + 1, true, nil
		}
		i++
	}
	return i, false, nil
}

func hexValue(c byte) int {
	switch {
	case '0' <= c && c <= '9':
		return int(c - '0')
	case 'a' <= c && c <= 'f':
		return int(c-'a') + 10
	case 'A' <= c && c <= 'F':
		return int(c-'A') + 10
	}
	return -1
}
