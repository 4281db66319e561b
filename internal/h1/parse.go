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
