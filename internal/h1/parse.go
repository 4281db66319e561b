// Package h1 is fulcrum's HTTP/1.x wire layer: a strict, allocation-free
// parser for request and response heads, header helpers, and body framing
// (Content-Length, chunked, close-delimited). It knows nothing about load
// balancing.
//
// The request parser is deliberately stricter than RFC 9112 requires: every
// construct that two HTTP engines might frame differently (the request
// smuggling surface) is refused, so that what fulcrum forwards can only be
// read one way. Each refusal carries the status to answer with.
package h1

import (
	"bytes"
	"errors"
	"strconv"
)

// Error is a refusal of a request, with the status code to answer.
type Error struct {
	Status int
	Msg    string
}

func (e *Error) Error() string { return e.Msg }

// Refusals. They are values so that the parser does not allocate.
var (
	ErrHeadTooLarge      = &Error{431, "request header fields too large"}
	ErrBadRequestLine    = &Error{400, "malformed request line"}
	ErrBadMethod         = &Error{400, "malformed method"}
	ErrBadTarget         = &Error{400, "malformed request target"}
	ErrBadVersion        = &Error{400, "malformed HTTP version"}
	ErrVersionNotSupp    = &Error{505, "HTTP version not supported"}
	ErrBareLF            = &Error{400, "line not terminated by CRLF"}
	ErrBadHeaderName     = &Error{400, "malformed header field name"}
	ErrBadHeaderValue    = &Error{400, "invalid character in header field value"}
	ErrObsFold           = &Error{400, "obsolete line folding"}
	ErrTooManyHeaders    = &Error{431, "too many header fields"}
	ErrBadContentLength  = &Error{400, "invalid Content-Length"}
	ErrDupContentLength  = &Error{400, "multiple Content-Length"}
	ErrBadTE             = &Error{400, "invalid Transfer-Encoding"}
	ErrTENotImplemented  = &Error{501, "transfer coding not implemented"}
	ErrTEAndCL           = &Error{400, "both Transfer-Encoding and Content-Length"}
	ErrTEHTTP10          = &Error{400, "Transfer-Encoding in HTTP/1.0 request"}
	ErrLookalikeFraming  = &Error{400, "header name resembles a framing header"}
	ErrMissingHost       = &Error{400, "missing Host header"}
	ErrDupHost           = &Error{400, "multiple Host headers"}
	ErrBadHost           = &Error{400, "invalid Host header"}
	ErrBodyOnGet         = &Error{400, "body not allowed on GET or HEAD"}
	ErrConnectNotAllowed = &Error{405, "CONNECT not allowed"}
	ErrBadChunk          = &Error{400, "malformed chunked body"}
	ErrBodyTooLarge      = &Error{413, "request body too large"}
)

// MaxHeaders is the most header fields a head may carry.
const MaxHeaders = 128

// Header is one field; Name and Value alias the parse buffer.
type Header struct {
	Name, Value []byte
}

// Request is a parsed request head. Slices alias the buffer passed to
// ParseRequest and are valid until that buffer is reused.
type Request struct {
	Method []byte
	Target []byte
	// Minor is the HTTP/1.x minor version (0 or 1).
	Minor   int
	Headers []Header
	Host    []byte

	// ContentLength is the body length, -1 when there is no Content-Length.
	ContentLength int64
	Chunked       bool
	// KeepAlive is false when the connection must close after this exchange.
	KeepAlive bool
	// Upgrade is set when the client asks for a protocol upgrade (WebSocket).
	Upgrade bool
	// ExpectContinue is set for "Expect: 100-continue".
	ExpectContinue bool

	// HeadLen is the number of bytes the head occupied in the buffer.
	HeadLen int
}

// HasBody reports whether a body follows the head.
func (r *Request) HasBody() bool { return r.Chunked || r.ContentLength > 0 }

// Reset clears r for reuse, keeping its header slice's capacity.
func (r *Request) Reset() {
	h := r.Headers[:0]
	*r = Request{Headers: h, ContentLength: -1}
}

// IsMethod reports whether the method equals m (case-sensitive, as methods are).
func (r *Request) IsMethod(m string) bool { return string(r.Method) == m }

// ErrNeedMore is returned by the parsers when buf does not yet hold a whole head.
var ErrNeedMore = errors.New("h1: incomplete head")

// tchar per RFC 9110 5.6.2.
var tchar = func() (t [256]bool) {
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c] = true
	}
	for c := 'A'; c <= 'Z'; c++ {
		t[c] = true
	}
	for _, c := range "!#$%&'*+-.^_`|~" {
		t[c] = true
	}
	return
}()

// IsToken reports whether b is a non-empty RFC 9110 token.
func IsToken(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	for _, c := range b {
		if !tchar[c] {
			return false
		}
	}
	return true
}

// findHeadEnd returns the length of the head (through the blank line) or -1.
// Lines must end in CRLF; a bare LF is reported as ErrBareLF once seen.
func findHeadEnd(buf []byte) (int, error) {
	for i := 0; i < len(buf); {
		j := bytes.IndexByte(buf[i:], '\n')
		if j < 0 {
			return -1, nil
		}
		j += i
		if j == 0 || buf[j-1] != '\r' {
			return -1, ErrBareLF
		}
		// An empty line (CRLF at the start of a line) ends the head.
		if j == i+1 {
			return j + 1, nil
		}
		i = j + 1
	}
	return -1, nil
}

// ParseRequest parses the request head at the start of buf. It returns
// ErrNeedMore if the head is not complete yet, or an *Error to answer with.
// maxHead bounds the head size (431 beyond).
func ParseRequest(buf []byte, maxHead int, r *Request) error {
	end, err := findHeadEnd(buf)
	if err != nil {
		return err
	}
	if end < 0 {
		if len(buf) >= maxHead {
			return ErrHeadTooLarge
		}
		return ErrNeedMore
	}
	if end > maxHead {
		return ErrHeadTooLarge
	}
	if end == 2 {
		// The head is a lone empty line: there is no request line. RFC 9112
		// 2.2 lets a server skip it; fulcrum refuses it, as net/http does.
		return ErrBadRequestLine
	}
	r.Reset()
	r.HeadLen = end
	head := buf[:end-2] // without the final CRLF

	// Request line.
	eol := bytes.IndexByte(head, '\n')
	line := head[:eol-1]
	rest := head[eol+1:]
	sp1 := bytes.IndexByte(line, ' ')
	if sp1 <= 0 {
		return ErrBadRequestLine
	}
	r.Method = line[:sp1]
	if !IsToken(r.Method) || len(r.Method) > 32 {
		return ErrBadMethod
	}
	line = line[sp1+1:]
	sp2 := bytes.IndexByte(line, ' ')
	if sp2 <= 0 {
		return ErrBadRequestLine
	}
	r.Target = line[:sp2]
	for _, c := range r.Target {
		if c <= ' ' || c == 0x7f {
			return ErrBadTarget
		}
	}
	ver := line[sp2+1:]
	if len(ver) != 8 || string(ver[:5]) != "HTTP/" || ver[6] != '.' ||
		ver[5] < '0' || ver[5] > '9' || ver[7] < '0' || ver[7] > '9' {
		return ErrBadVersion
	}
	if ver[5] != '1' || ver[7] > '1' {
		return ErrVersionNotSupp
	}
	r.Minor = int(ver[7] - '0')
	r.KeepAlive = r.Minor == 1

	if string(r.Method) == "CONNECT" {
		// A reverse proxy does not tunnel: refuse CONNECT whatever its target.
		return ErrConnectNotAllowed
	}
	switch {
	case r.Target[0] == '/':
	case len(r.Target) == 1 && r.Target[0] == '*':
		if string(r.Method) != "OPTIONS" {
			return ErrBadTarget
		}
	default:
		// absolute-form: the authority becomes the Host towards the
		// backend, so it must be a plain, valid host (no userinfo).
		if !hasHTTPScheme(r.Target) {
			return ErrBadTarget
		}
		auth := r.Target[bytes.Index(r.Target, []byte("://"))+3:]
		if i := bytes.IndexAny(auth, "/?"); i >= 0 {
			auth = auth[:i]
		}
		if !validHost(auth) || bytes.IndexByte(auth, '@') >= 0 {
			return ErrBadTarget
		}
	}

	// Header fields.
	var hosts int
	var te teInfo
	for len(rest) > 0 {
		eol := bytes.IndexByte(rest, '\n')
		var l []byte
		if eol < 0 {
			l = rest
			rest = nil
		} else {
			l = rest[:eol-1]
			rest = rest[eol+1:]
		}
		if len(l) == 0 {
			break
		}
		if l[0] == ' ' || l[0] == '\t' {
			return ErrObsFold
		}
		colon := bytes.IndexByte(l, ':')
		if colon <= 0 {
			return ErrBadHeaderName
		}
		name := l[:colon]
		if !IsToken(name) {
			return ErrBadHeaderName
		}
		val := trimOWS(l[colon+1:])
		for _, c := range val {
			if (c < ' ' && c != '\t') || c == 0x7f {
				return ErrBadHeaderValue
			}
		}
		if len(r.Headers) >= MaxHeaders {
			return ErrTooManyHeaders
		}
		r.Headers = append(r.Headers, Header{Name: name, Value: val})

		switch {
		case EqualFold(name, "Content-Length"):
			if r.ContentLength >= 0 {
				return ErrDupContentLength
			}
			n, ok := parseContentLength(val)
			if !ok {
				return ErrBadContentLength
			}
			r.ContentLength = n
		case EqualFold(name, "Transfer-Encoding"):
			te.add(val)
		case EqualFold(name, "Host"):
			hosts++
			if hosts > 1 {
				return ErrDupHost
			}
			if !validHost(val) {
				return ErrBadHost
			}
			r.Host = val
		case EqualFold(name, "Connection"):
			r.applyConnection(val)
		case EqualFold(name, "Expect"):
			if EqualFold(val, "100-continue") {
				r.ExpectContinue = true
			}
		case EqualFold(name, "Upgrade"):
			// Recorded; Upgrade counts only when Connection names it too.
		default:
			if lookalikeFraming(name) {
				return ErrLookalikeFraming
			}
		}
	}
	if te.fields > 0 {
		if r.ContentLength >= 0 {
			return ErrTEAndCL
		}
		if r.Minor == 0 {
			// RFC 9112 6.1: the framing of an HTTP/1.0 message with
			// Transfer-Encoding is faulty, whatever the coding.
			return ErrTEHTTP10
		}
		if err := te.check(); err != nil {
			return err
		}
		r.Chunked = true
	}
	if r.Minor == 1 && hosts == 0 {
		return ErrMissingHost
	}
	if r.Upgrade && !hasHeader(r.Headers, "Upgrade") {
		r.Upgrade = false
	}
	if (string(r.Method) == "GET" || string(r.Method) == "HEAD") && (r.Chunked || r.ContentLength > 0) {
		return ErrBodyOnGet
	}
	return nil
}

// teInfo accumulates a request's Transfer-Encoding fields, which form one
// list of transfer codings (RFC 9110 5.3, RFC 9112 6.1).
type teInfo struct {
	fields      int  // Transfer-Encoding fields seen
	elems       int  // non-empty list elements over all fields
	chunked     int  // elements whose coding is chunked (with or without parameters)
	lastChunked bool // the last element is chunked
	plain       bool // exactly one field whose value is exactly "chunked"
	bad         bool // an element's coding is not a token
}

func (t *teInfo) add(v []byte) {
	t.fields++
	t.plain = t.fields == 1 && EqualFold(v, "chunked")
	for len(v) > 0 {
		var el []byte
		if i := bytes.IndexByte(v, ','); i < 0 {
			el, v = v, nil
		} else {
			el, v = v[:i], v[i+1:]
		}
		el = trimOWS(el)
		if len(el) == 0 {
			continue
		}
		t.elems++
		coding := el
		if j := bytes.IndexByte(el, ';'); j >= 0 {
			coding = trimOWS(el[:j]) // transfer-parameters follow
		}
		if !IsToken(coding) {
			t.bad = true
		}
		isChunked := EqualFold(coding, "chunked")
		if isChunked {
			t.chunked++
		}
		t.lastChunked = isChunked
	}
}

// check accepts only a single plain "chunked". A well-formed list of other
// codings ("gzip", "gzip, chunked", "chunked;param") is valid HTTP that
// fulcrum does not implement: 501 (RFC 9112 6.1). Malformed lists, chunked
// applied twice or not last are framing errors: 400.
func (t *teInfo) check() *Error {
	switch {
	case t.plain:
		return nil
	case t.bad || t.elems == 0 || t.chunked > 1 || (t.chunked == 1 && !t.lastChunked):
		return ErrBadTE
	}
	return ErrTENotImplemented
}

func (r *Request) applyConnection(val []byte) {
	forEachToken(val, func(tok []byte) {
		switch {
		case EqualFold(tok, "close"):
			r.KeepAlive = false
		case EqualFold(tok, "keep-alive"):
			if r.Minor == 0 {
				r.KeepAlive = true
			}
		case EqualFold(tok, "upgrade"):
			r.Upgrade = true
		}
	})
}

func hasHeader(hs []Header, name string) bool {
	for i := range hs {
		if EqualFold(hs[i].Name, name) {
			return true
		}
	}
	return false
}

// Get returns the first value of the named header, or nil.
func Get(hs []Header, name string) []byte {
	for i := range hs {
		if EqualFold(hs[i].Name, name) {
			return hs[i].Value
		}
	}
	return nil
}

func hasHTTPScheme(t []byte) bool {
	return (len(t) > 7 && EqualFold(t[:7], "http://")) || (len(t) > 8 && EqualFold(t[:8], "https://"))
}

// validHost accepts uri-host [ ":" port ] without whitespace or delimiters
// that could confuse a backend.
func validHost(v []byte) bool {
	if len(v) == 0 || len(v) > 255 {
		return false
	}
	for _, c := range v {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case c == '.', c == '-', c == ':', c == '[', c == ']', c == '_', c == '~', c == '%',
			c == '!', c == '$', c == '&', c == '\'', c == '(', c == ')', c == '*', c == '+', c == ',', c == ';', c == '=':
		default:
			return false
		}
	}
	return true
}

// lookalikeFraming reports header names that are not a framing header but
// normalise to one (Transfer_Encoding, Content--Length, ...): some servers
// treat them as the real thing.
func lookalikeFraming(name []byte) bool {
	if len(name) < 14 || len(name) > 40 {
		return false
	}
	var buf [40]byte
	n := 0
	prevSep := false
	for _, c := range name {
		if c == '_' || c == '-' || c == ' ' {
			if prevSep {
				continue
			}
			prevSep = true
			buf[n] = '-'
			n++
			continue
		}
		prevSep = false
		buf[n] = lower(c)
		n++
	}
	s := string(buf[:n])
	return s == "transfer-encoding" || s == "content-length"
}

func parseContentLength(v []byte) (int64, bool) {
	if len(v) == 0 || len(v) > 18 {
		return 0, false
	}
	var n int64
	for _, c := range v {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

func lastTokenIsChunked(v []byte) bool {
	var last []byte
	forEachToken(v, func(tok []byte) { last = tok })
	return EqualFold(last, "chunked")
}

// forEachToken calls f for each comma-separated, OWS-trimmed, non-empty element.
func forEachToken(v []byte, f func([]byte)) {
	for len(v) > 0 {
		i := bytes.IndexByte(v, ',')
		var tok []byte
		if i < 0 {
			tok, v = v, nil
		} else {
			tok, v = v[:i], v[i+1:]
		}
		tok = trimOWS(tok)
		if len(tok) > 0 {
			f(tok)
		}
	}
}

// ForEachToken is the exported form of the comma-list iterator.
func ForEachToken(v []byte, f func([]byte)) { forEachToken(v, f) }

func trimOWS(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}

func lower(c byte) byte {
	if c >= 'A' && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// EqualFold reports whether b equals s ignoring ASCII case, without allocating.
func EqualFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := 0; i < len(b); i++ {
		if lower(b[i]) != lower(s[i]) {
			return false
		}
	}
	return true
}

// Response is a parsed response head from a backend.
type Response struct {
	Minor   int
	Status  int
	Reason  []byte
	Headers []Header
	// ContentLength is -1 when absent.
	ContentLength int64
	Chunked       bool
	// Codings is set when Transfer-Encoding names a coding other than a
	// final chunked (gzip, ...): the body's bytes are in that coding, and a
	// relay must keep it (AppendCodings).
	Codings bool
	// Close is set when the backend will close the connection after the body.
	Close   bool
	HeadLen int
}

// Reset clears r for reuse.
func (r *Response) Reset() {
	h := r.Headers[:0]
	*r = Response{Headers: h, ContentLength: -1}
}

// Backend response refusals (answered 502 to the client).
var (
	ErrBadStatusLine = errors.New("malformed status line from backend")
	ErrBadRespHeader = errors.New("malformed header from backend")
	ErrBadRespLength = errors.New("invalid framing from backend")
	ErrRespTooLarge  = errors.New("backend response head too large")
)

// ParseResponse parses a response head at the start of buf. It is strict on
// framing and lenient elsewhere (it accepts bare LF line ends, as browsers do).
func ParseResponse(buf []byte, maxHead int, r *Response) error {
	end := -1
	for i := 0; i < len(buf); {
		j := bytes.IndexByte(buf[i:], '\n')
		if j < 0 {
			break
		}
		j += i
		lineLen := j - i
		if lineLen == 0 || (lineLen == 1 && buf[i] == '\r') {
			end = j + 1
			break
		}
		i = j + 1
	}
	if end < 0 {
		if len(buf) >= maxHead {
			return ErrRespTooLarge
		}
		return ErrNeedMore
	}
	if end > maxHead {
		return ErrRespTooLarge
	}
	r.Reset()
	r.HeadLen = end
	head := buf[:end]
	first := true
	clSeen, teSeen := false, false
	for len(head) > 0 {
		j := bytes.IndexByte(head, '\n')
		l := head[:j]
		head = head[j+1:]
		if len(l) > 0 && l[len(l)-1] == '\r' {
			l = l[:len(l)-1]
		}
		if len(l) == 0 {
			break
		}
		if first {
			first = false
			// HTTP/1.x SP 3DIGIT [SP reason]
			if len(l) < 12 || string(l[:7]) != "HTTP/1." || l[7] < '0' || l[7] > '9' || l[8] != ' ' {
				return ErrBadStatusLine
			}
			r.Minor = int(l[7] - '0')
			s, err := strconv.Atoi(string(l[9:12]))
			if err != nil || s < 100 || s > 999 {
				return ErrBadStatusLine
			}
			r.Status = s
			if len(l) > 12 {
				if l[12] != ' ' {
					return ErrBadStatusLine
				}
				r.Reason = l[13:]
				for _, c := range r.Reason {
					// A bare CR (or other control) in the reason phrase could
					// split the response for a lenient client.
					if (c < ' ' && c != '\t') || c == 0x7f {
						return ErrBadStatusLine
					}
				}
			}
			r.Close = r.Minor == 0
			continue
		}
		if l[0] == ' ' || l[0] == '\t' {
			return ErrBadRespHeader
		}
		colon := bytes.IndexByte(l, ':')
		if colon <= 0 || !IsToken(l[:colon]) {
			return ErrBadRespHeader
		}
		name := l[:colon]
		val := trimOWS(l[colon+1:])
		for _, c := range val {
			if c == 0 || c == '\r' || c == '\n' {
				return ErrBadRespHeader
			}
		}
		if len(r.Headers) >= MaxHeaders {
			return ErrBadRespHeader
		}
		r.Headers = append(r.Headers, Header{Name: name, Value: val})
		switch {
		case EqualFold(name, "Content-Length"):
			// Identical repeated values (or "5, 5") are tolerated; differing ones are not.
			var n int64 = -1
			ok := true
			forEachToken(val, func(tok []byte) {
				v, good := parseContentLength(tok)
				if !good || (n >= 0 && v != n) {
					ok = false
				}
				n = v
			})
			if !ok || n < 0 || (clSeen && n != r.ContentLength) {
				return ErrBadRespLength
			}
			clSeen = true
			r.ContentLength = n
		case EqualFold(name, "Transfer-Encoding"):
			teSeen = true
			n := 0
			forEachToken(val, func([]byte) { n++ })
			chunkedLast := lastTokenIsChunked(val)
			// Any coding but a lone final chunked: gzip, "gzip, chunked".
			r.Codings = r.Codings || n > 1 || (n == 1 && !chunkedLast)
			if chunkedLast {
				r.Chunked = true
			} else {
				// Not chunked-final: the body runs until close (RFC 9112 6.3).
				r.Chunked = false
				r.Close = true
			}
		case EqualFold(name, "Connection"):
			forEachToken(val, func(tok []byte) {
				if EqualFold(tok, "close") {
					r.Close = true
				} else if EqualFold(tok, "keep-alive") && r.Minor == 0 {
					r.Close = false
				}
			})
		}
	}
	if first {
		// The head was a lone empty line: no status line at all.
		return ErrBadStatusLine
	}
	if teSeen && !r.Chunked {
		// A transfer coding other than chunked last: the body runs until
		// close and Content-Length must be ignored (RFC 9112 6.3).
		r.ContentLength = -1
	}
	if r.Chunked {
		// Transfer-Encoding overrides Content-Length (RFC 9112 6.3); the
		// connection is not reused since the backend framed ambiguously.
		if clSeen {
			r.ContentLength = -1
			r.Close = true
		}
	}
	return nil
}

// AppendCodings appends, comma-separated, every transfer coding of r's
// Transfer-Encoding fields except a final chunked (the framing a relay
// replaces with its own), each followed by ", ". With none it appends nothing.
func (r *Response) AppendCodings(dst []byte) []byte {
	last := -1 // index in r.Headers of the last Transfer-Encoding field
	for i := range r.Headers {
		if EqualFold(r.Headers[i].Name, "Transfer-Encoding") {
			last = i
		}
	}
	// Each token is written when the next one is seen, so the very last one
	// can be left out when it is the final chunked.
	var pending []byte
	for i := 0; i <= last; i++ {
		if h := &r.Headers[i]; EqualFold(h.Name, "Transfer-Encoding") {
			forEachToken(h.Value, func(tok []byte) {
				if pending != nil {
					dst = append(append(dst, pending...), ',', ' ')
				}
				pending = tok
			})
		}
	}
	if pending != nil && !r.Chunked {
		dst = append(append(dst, pending...), ',', ' ')
	}
	return dst
}

// BodylessStatus reports statuses that never carry a body.
func BodylessStatus(s int) bool {
	return (s >= 100 && s < 200) || s == 204 || s == 304
}
